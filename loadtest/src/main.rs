//! `loadtest`: the load-test harness for Socket.IO servers (ringio, Node socket.io, socketioxide).
//!
//! `cargo run --release -p loadtest` runs a short default suite against `ringio serve` (built
//! first when target/release/ringio is missing). Scenarios: `idle`, `echo`, `fanout`, `suite`,
//! ...; `compare` runs scenarios against ringio, Node's socket.io 4.8 and socketioxide one after
//! another, with this harness's Rust client and the official socket.io-client in Node as the
//! generators, and prints them side by side with ratios. Method:
//! /work/shared/docs/benchmarking.md; handler set: bench-handlers.md.

mod cli;
mod client;
mod floor;
mod pin;
mod plot;
mod reconnect;
mod report;
mod scenario;
mod server;

use clap::Parser;
use cli::{cores, params, Cli, Cmd, Opts};
use report::RunResult;
use scenario::{Generator, Params, Scenario};
use server::Server;
use std::time::Duration;

/// Raises the soft open-file limit to the hard one; returns the soft limit now in force.
fn raise_nofile() -> u64 {
    // SAFETY: getrlimit/setrlimit on a local struct.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 1024;
        }
        if r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        }
        r.rlim_cur as u64
    }
}

/// Starts server `kind` (on `cpus` with `--pin`; ringio then gets as many shards as CPUs unless
/// `--shards` says otherwise).
fn start(kind: &str, o: &Opts, cpus: Option<&[usize]>) -> Result<Server, String> {
    if let Some(url) = &o.url {
        return Server::external(url, o.server_pid);
    }
    let shards = o
        .shards
        .unwrap_or_else(|| cpus.map_or_else(cores, <[usize]>::len))
        .max(1);
    match kind {
        "ringio" => Server::start_ringio(shards, !o.no_build, cpus),
        "node" => Server::start_node(cpus),
        "socketioxide" => Server::start_socketioxide(!o.no_build, cpus),
        "floor" => Server::start_floor(shards, cpus),
        other => Err(format!(
            "unknown server {other:?} (ringio, node, socketioxide, floor)"
        )),
    }
}

fn run_one(kind: &str, p: &Params, o: &Opts) -> Result<RunResult, String> {
    let mut p = p.clone();
    p.floor = kind == "floor";
    let p = &p;
    let mut srvs = Vec::with_capacity(p.servers);
    for _ in 0..p.servers.max(1) {
        // on error, those started already stop when dropped
        let srv = start(kind, o, p.server_cpus.as_deref())?;
        eprintln!(
            "loadtest: {} on {} ({}), pid {}, generator {}",
            p.scenario.name(),
            srv.label,
            srv.addr,
            srv.pid.map_or("?".into(), |p| p.to_string()),
            p.generator.name()
        );
        srvs.push(srv);
    }
    let r = scenario::run(&srvs, p);
    for srv in &mut srvs {
        srv.stop();
        if let (Err(_), Some(log)) = (&r, &srv.log) {
            eprintln!("loadtest: server log: {}", log.display());
        }
    }
    r
}

/// `loadtest reconnect`: returns the exit code.
fn run_reconnect(kind: &str, down_ms: u64, o: &Opts, nofile: u64) -> i32 {
    if o.url.is_some() {
        eprintln!(
            "loadtest: reconnect stops and restarts the server itself; --url (an external \
             server) is not allowed"
        );
        return 2;
    }
    if kind != "ringio" && kind != "node" {
        eprintln!("loadtest: reconnect: --server must be ringio or node (got {kind:?})");
        return 2;
    }
    let conns = o.conns.unwrap_or(2000);
    if (conns + 1) as u64 + 64 > nofile {
        eprintln!("loadtest: {conns} connections exceed this process's open-file limit ({nofile})");
        return 2;
    }
    let threads = o.threads.unwrap_or_else(cores).max(1);
    let rate = o.rate.unwrap_or(1000.0).max(1.0);
    let mut srv = match start(kind, o, None) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("loadtest: reconnect on {kind}: {e}");
            return 1;
        }
    };
    eprintln!(
        "loadtest: reconnect on {} ({}), pid {}",
        srv.label,
        srv.addr,
        srv.pid.map_or("?".into(), |p| p.to_string())
    );
    let r = reconnect::run(&mut srv, conns, rate, threads, down_ms);
    srv.stop();
    match r {
        Ok(r) => {
            report::print_single(&r);
            if let Some(path) = &o.json {
                if let Err(e) = report::write_json(path, std::slice::from_ref(&r), machine_json()) {
                    eprintln!("loadtest: cannot write {}: {e}", path.display());
                    return 1;
                }
            }
            0
        }
        Err(e) => {
            eprintln!("loadtest: reconnect on {kind}: {e}");
            1
        }
    }
}

fn machine_json() -> serde_json::Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|x| x.trim().to_string())
        })
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    serde_json::json!({ "cores": cores(), "cpu": cpu, "kernel": kernel })
}

/// The hidden `worker` subcommand (a child generator process of `--procs N`).
fn run_worker(cmd: &Cmd, o: &Opts, nofile: u64) -> i32 {
    let Cmd::Worker {
        targets,
        host_headers,
        proc_index,
        scenario,
        floor,
    } = cmd
    else {
        return 2;
    };
    if targets.len() != host_headers.len() {
        eprintln!("loadtest worker {proc_index}: --targets and --host-headers differ in length");
        return 2;
    }
    let mut p = params(*scenario, o, false, Generator::Rust, None);
    p.proc_index = *proc_index;
    p.floor = *floor;
    p.servers = targets.len();
    if (p.local_conns() + 64) as u64 > nofile {
        eprintln!(
            "loadtest worker {proc_index}: {} connections exceed its open-file limit ({nofile})",
            p.local_conns()
        );
        return 2;
    }
    let targets = targets
        .iter()
        .zip(host_headers)
        .map(|(a, h)| scenario::Target {
            addr: *a,
            host_header: h.clone(),
        })
        .collect();
    let src_ips = p.src_ips.unwrap_or(0);
    scenario::multi::worker(targets, src_ips, p)
}

/// What a command runs: scenarios x generators x servers.
struct Plan {
    suite: bool,
    scenarios: Vec<Scenario>,
    servers: Vec<String>,
    generators: Vec<Generator>,
    /// side by side (compare, floor)
    compare: bool,
    /// `--servers K`: server processes per run
    server_procs: usize,
    /// `--pin`: (server CPUs, client CPUs)
    pin: Option<pin::CpuSets>,
}

/// The scenarios and servers of `compare` (default: echo; ringio, node and socketioxide when
/// its peer project is present; the floor with `--with-floor`).
fn compare_plan(
    scenarios: &[Scenario],
    servers: &[String],
    with_floor: bool,
) -> (Vec<Scenario>, Vec<String>) {
    let sc = if scenarios.is_empty() {
        vec![Scenario::Echo]
    } else {
        scenarios.to_vec()
    };
    let mut servers = servers.to_vec();
    if servers.is_empty() {
        servers = vec!["ringio".into(), "node".into()];
        if server::socketioxide_available() {
            servers.push("socketioxide".into());
        }
    }
    if with_floor && !servers.iter().any(|s| s == "floor") {
        servers.push("floor".into());
    }
    (sc, servers)
}

fn plan(cmd: &Cmd, o: &Opts) -> Result<Plan, String> {
    let server_procs = match cmd {
        Cmd::Idle(sp) | Cmd::Echo(sp) | Cmd::Run { sp, .. } => sp.servers.max(1),
        _ => 1,
    };
    if server_procs > 1 && o.url.is_some() {
        return Err(format!(
            "--servers {server_procs} starts the server processes itself; --url (one external \
             server) is not allowed"
        ));
    }
    if let Some(n) = o.src_ips.filter(|n| *n > scenario::MAX_SRC_IPS) {
        return Err(format!(
            "--src-ips {n}: at most {} source addresses (127.0.0.2 ..= 127.0.0.255)",
            scenario::MAX_SRC_IPS
        ));
    }
    if o.pin != pin::Pin::None && o.url.is_some() {
        return Err("--pin pins the servers the harness starts; not with --url".into());
    }
    let pin = o.pin.plan(&pin::allowed_cpus())?;
    let one = |s: Scenario| (vec![s], vec!["ringio".to_string()]);
    let mut generators = vec![o.generator];
    let (scenarios, servers) = match cmd {
        Cmd::Idle(_) => one(Scenario::Idle),
        Cmd::Echo(_) => one(Scenario::Echo),
        Cmd::Fanout => one(Scenario::Fanout),
        Cmd::EchoOpen => one(Scenario::EchoOpen),
        Cmd::Churn => one(Scenario::Churn),
        Cmd::Rooms => one(Scenario::Rooms),
        Cmd::PollingMix => one(Scenario::PollingMix),
        Cmd::Run { scenario, .. } => one(*scenario),
        Cmd::Suite => (
            vec![Scenario::Idle, Scenario::Echo, Scenario::Fanout],
            vec!["ringio".into()],
        ),
        Cmd::FloorServer { .. } | Cmd::Reconnect { .. } | Cmd::Worker { .. } => {
            unreachable!("handled before")
        }
        Cmd::Floor { scenarios } => {
            if o.url.is_some() {
                return Err("floor starts its own servers; --url is not allowed".into());
            }
            let sc = if scenarios.is_empty() {
                vec![Scenario::Echo, Scenario::Fanout]
            } else {
                scenarios.clone()
            };
            (sc, vec!["ringio".into(), "floor".into()])
        }
        Cmd::Compare {
            scenarios,
            servers,
            with_floor,
            generators: g,
        } => {
            if o.url.is_some() {
                return Err("compare starts its own servers; --url is not allowed".into());
            }
            generators = if g.is_empty() {
                vec![Generator::Rust, Generator::Node]
            } else {
                g.clone()
            };
            compare_plan(scenarios, servers, *with_floor)
        }
    };
    let compare = matches!(cmd, Cmd::Compare { .. } | Cmd::Floor { .. });
    if !compare {
        if let Some(s) = scenarios
            .iter()
            .find(|s| o.generator == Generator::Node && !s.supports_node())
        {
            return Err(format!(
                "--generator node runs idle, echo, echo-open and fanout, not {}",
                s.name()
            ));
        }
    }
    Ok(Plan {
        suite: matches!(cmd, Cmd::Suite),
        scenarios,
        servers,
        generators,
        compare,
        server_procs,
        pin,
    })
}

/// Refuses a run the limits do not allow (`--procs`, `--servers`, open files).
fn check(p: &Params, o: &Opts, nofile: u64) -> Result<(), String> {
    let s = p.scenario;
    let multi_ok = p.generator == Generator::Node || scenario::multi::supported(s);
    if p.procs > 1 && !multi_ok {
        return Err(format!(
            "--procs {} is supported for idle and echo only (node: idle, echo, echo-open, \
             fanout), not {}",
            p.procs,
            s.name()
        ));
    }
    if p.servers > 1 && !scenario::multi::supported(s) {
        return Err(format!(
            "--servers {} is supported for idle and echo only, not {}",
            p.servers,
            s.name()
        ));
    }
    let slice = scenario::local_count(p.conns, p.procs, 0); // process 0 has the largest slice
    if p.procs > 1 {
        eprintln!(
            "loadtest: {} generator processes, open-file limit per process {nofile}, up to \
             {slice} connections each",
            p.procs
        );
    }
    if !scenario::fits_fd_limit(slice, nofile) {
        return Err(format!(
            "{slice} connections per generator process exceed the per-process open-file limit \
             ({nofile}, ulimit -n) with {} fds to spare; raise --procs (now {}) or lower --conns",
            scenario::FD_SPARE,
            p.procs
        ));
    }
    // the servers the harness starts inherit this process's (raised) open-file limit
    let per_server = scenario::local_count(p.conns, p.servers, 0);
    if o.url.is_none() && !scenario::fits_fd_limit(per_server, nofile) {
        return Err(format!(
            "{per_server} connections per server process exceed its open-file limit ({nofile}, \
             inherited ulimit -n) with {} fds to spare; raise --servers (now {}) or lower --conns",
            scenario::FD_SPARE,
            p.servers
        ));
    }
    if p.servers > 1 {
        eprintln!(
            "loadtest: {} server processes, up to {per_server} connections each",
            p.servers
        );
    }
    Ok(())
}

/// One scenario with one generator against every server of the plan.
fn run_group(p: &Params, plan: &Plan, o: &Opts, failed: &mut bool) -> Vec<RunResult> {
    let mut group = Vec::new();
    for kind in &plan.servers {
        let floor_ok = p.scenario.has_floor() && p.generator == Generator::Rust;
        if kind == "floor" && !floor_ok {
            continue;
        }
        match run_one(kind, p, o) {
            Ok(r) => {
                if !plan.compare {
                    report::print_single(&r);
                }
                group.push(r);
            }
            Err(e) => {
                eprintln!(
                    "loadtest: {} on {kind} ({} generator): {e}",
                    p.scenario.name(),
                    p.generator.name()
                );
                *failed = true;
            }
        }
        if plan.compare {
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    if plan.compare {
        for r in &group {
            report::print_single(r);
        }
        report::print_compare(&group);
    }
    group
}

/// Runs the plan: every scenario, with every generator that runs it, against every server.
fn run_plan(plan: &Plan, o: &Opts, nofile: u64) -> (Vec<Vec<RunResult>>, bool) {
    let mut groups = Vec::new();
    let mut failed = false;
    for s in &plan.scenarios {
        for g in &plan.generators {
            if *g == Generator::Node && !s.supports_node() {
                eprintln!(
                    "loadtest: {}: no Node generator variant, rust only",
                    s.name()
                );
                continue;
            }
            let mut p = params(*s, o, plan.suite, *g, plan.pin.clone());
            p.servers = plan.server_procs;
            if let Err(e) = check(&p, o, nofile) {
                eprintln!("loadtest: {e}");
                std::process::exit(2);
            }
            groups.push(run_group(&p, plan, o, &mut failed));
        }
    }
    (groups, failed)
}

/// The tables over all groups, `--plot` and `--json`; false when a file could not be written.
fn output(plan: &Plan, groups: &[Vec<RunResult>], o: &Opts) -> bool {
    let mut ok = true;
    let servers = plan.servers.iter().filter(|s| *s != "floor").count();
    if plan.compare && servers > 1 && plan.servers.iter().any(|s| s == "ringio") {
        report::print_cpu(groups, "ringio", "node");
    }
    if plan.servers.iter().any(|s| s == "floor") {
        report::print_floor(groups);
    }
    if let Some(dir) = &o.plot {
        match plot::write_all(dir, groups) {
            Ok(files) => {
                for f in files {
                    eprintln!("loadtest: plot {}", f.display());
                }
            }
            Err(e) => {
                eprintln!("loadtest: cannot write plots to {}: {e}", dir.display());
                ok = false;
            }
        }
    }
    if let Some(path) = &o.json {
        let all: Vec<RunResult> = groups.iter().flatten().cloned().collect();
        match report::write_json(path, &all, machine_json()) {
            Ok(()) => eprintln!("loadtest: results written to {}", path.display()),
            Err(e) => {
                eprintln!("loadtest: cannot write {}: {e}", path.display());
                ok = false;
            }
        }
    }
    ok
}

fn main() {
    let cli = Cli::parse();
    let o = cli.opts.clone();
    if let Some(Cmd::FloorServer { port }) = &cli.cmd {
        floor::serve(*port, o.shards.unwrap_or_else(cores));
    }
    let nofile = raise_nofile();
    match &cli.cmd {
        Some(cmd @ Cmd::Worker { .. }) => std::process::exit(run_worker(cmd, &o, nofile)),
        Some(Cmd::Reconnect { server, down_ms }) => {
            std::process::exit(run_reconnect(server, *down_ms, &o, nofile))
        }
        _ => {}
    }
    let cmd = cli.cmd.unwrap_or(Cmd::Suite);
    let plan = match plan(&cmd, &o) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("loadtest: {e}");
            std::process::exit(2);
        }
    };
    let (groups, failed) = run_plan(&plan, &o, nofile);
    let ok = output(&plan, &groups, &o);
    if failed || !ok {
        std::process::exit(1);
    }
}
