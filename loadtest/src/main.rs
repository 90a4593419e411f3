//! `loadtest`: the load-test harness for Socket.IO servers (ringio, Node socket.io).
//!
//! `cargo run --release -p loadtest` runs a short default suite against `ringio serve` (built
//! first when target/release/ringio is missing). Scenarios: `idle`, `echo`, `fanout`, `suite`;
//! `compare` runs scenarios against ringio and Node's socket.io 4.8 one after another and prints
//! them side by side with ratios. Method: /work/shared/docs/benchmarking.md; handler set:
//! bench-handlers.md.

mod client;
mod floor;
mod plot;
mod reconnect;
mod report;
mod scenario;
mod server;

use clap::{Parser, Subcommand};
use report::RunResult;
use scenario::{Params, Scenario};
use server::Server;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "loadtest",
    about = "Load-test harness for Socket.IO servers: ringio vs Node socket.io",
    long_about = "Without a subcommand: a short suite (idle 1000 conns, echo 5 s, fanout 1000 x 10) \
                  against `ringio serve`, building target/release/ringio first if missing."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    opts: Opts,
}

#[derive(clap::Args, Clone, Debug)]
struct Opts {
    /// Measure an external server (http://host:port) instead of starting ringio.
    #[arg(long, global = true)]
    url: Option<String>,
    /// Pid of the external server, to read its CPU time and RSS from /proc.
    #[arg(long, global = true)]
    server_pid: Option<u32>,
    /// Client threads (one monoio runtime each); default: one per core.
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// Shards of the ringio server started by the harness; default: one per core.
    #[arg(long, global = true)]
    shards: Option<usize>,
    /// Connections (idle), in-flight connections (echo) or receivers (fanout), for every
    /// scenario run; the per-scenario options below take precedence.
    #[arg(long, short = 'c', global = true)]
    conns: Option<usize>,
    /// idle: connections (default 2000; suite 1000).
    #[arg(long, global = true)]
    idle_conns: Option<usize>,
    /// echo: connections, each with one echo+ack in flight (default 200).
    #[arg(long, global = true)]
    echo_conns: Option<usize>,
    /// fanout: receivers (default 2000; suite 1000).
    #[arg(long, global = true)]
    fanout_receivers: Option<usize>,
    /// Connection arrival rate per second of the connect ramp (default 1000).
    #[arg(long, global = true)]
    rate: Option<f64>,
    /// idle: seconds to hold the connections open (default 5).
    #[arg(long, global = true)]
    hold: Option<f64>,
    /// echo: measured seconds (default 10; suite 5).
    #[arg(long, short = 'd', global = true)]
    duration: Option<f64>,
    /// echo: length of the echoed string (default 48).
    #[arg(long, global = true, default_value_t = 48)]
    payload_len: usize,
    /// fanout: number of broadcasts (default 20; suite 10).
    #[arg(long, short = 'b', global = true)]
    broadcasts: Option<usize>,
    /// fanout: milliseconds between broadcasts (default 100).
    #[arg(long, global = true, default_value_t = 100)]
    interval_ms: u64,
    /// fanout: `bcast` messages per slot, sent back to back without waiting for each ack (the
    /// floor's trigger sends as many seqs per slot); default 1.
    #[arg(long, global = true, default_value_t = 1)]
    burst: usize,
    /// echo-open: total echo+ack rate per second over all connections (default 10000).
    #[arg(long, global = true, default_value_t = 10_000.0)]
    open_rate: f64,
    /// rooms: number of rooms the connections cycle through (default 50).
    #[arg(long, global = true, default_value_t = 50)]
    rooms: usize,
    /// Write SVG plots (echo latency CDF, fan-out time to the last receiver per broadcast) into
    /// this directory.
    #[arg(long, global = true)]
    plot: Option<PathBuf>,
    /// Write the results as JSON to this file.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    /// Generator processes (idle, echo): this one plus N-1 child `loadtest` processes, each
    /// opening its slice of the connections under its own open-file limit (default 1).
    #[arg(long, global = true, default_value_t = 1)]
    procs: usize,
    /// Client source addresses: each client socket binds to 127.0.0.(2 + j) before connecting
    /// (IP_BIND_ADDRESS_NO_PORT: the port is picked at connect time), j = the connection's
    /// index among its server's modulo N; 0 = no bind. Default: one per started 5,000
    /// connections to one server address (connect() slows down sharply past ~14k per source and
    /// server address: even ports first); churn: 200; 0 for a server not on loopback.
    #[arg(long, global = true)]
    src_ips: Option<usize>,
    /// Do not build the ringio binary when it is missing.
    #[arg(long, global = true)]
    no_build: bool,
}

/// `--servers K` (idle, echo): not a global option, as `compare --servers` names servers.
#[derive(clap::Args, Clone, Debug)]
struct ServerProcs {
    /// Server processes the harness starts (`ringio serve`, each on its own port, same
    /// --shards): connection i goes to server i % K; server RSS and CPU are summed over them.
    /// For more connections than one process's open-file limit allows (default 1).
    #[arg(long, default_value_t = 1)]
    servers: usize,
}

#[derive(Subcommand, Clone, Debug)]
enum Cmd {
    /// Open C connections at a fixed arrival rate, hold them: server RSS per connection.
    Idle(ServerProcs),
    /// Closed loop: C connections each keep one echo with ack in flight: acks/s, RTT, CPU/op.
    Echo(ServerProcs),
    /// C receivers on "/", one sender emits `bcast` null every interval: time to the LAST
    /// receiver, deliveries/s, server CPU per delivery.
    Fanout,
    /// Open loop: a fixed total rate of echo+ack (--open-rate, default 10000/s) over C conns
    /// (default 200) for -d s; latency from each request's scheduled send time.
    EchoOpen,
    /// Connect/disconnect churn: C slots (default 50) each loop connect, one echo+ack,
    /// disconnect for -d s: connects/s, server CPU per cycle, server RSS before/after.
    Churn,
    /// Room churn: C conns (default 200) loop join room k / bcast to room k / leave room k.
    Rooms,
    /// Closed-loop echo (C = 200) with 5% of the connections on HTTP long-polling.
    PollingMix,
    /// Reconnect storm: C conns (default 2000); the harness stops the server (SIGTERM) and
    /// starts it again on the same port; clients reconnect with socket.io-client's backoff and
    /// send one echo+ack: time until 50/99/100% are back, attempts, failures, CPU/reconnect.
    Reconnect {
        /// Server to start and restart: ringio or node.
        #[arg(long, default_value = "ringio")]
        server: String,
        /// Milliseconds to keep the server down between its exit and the new start.
        #[arg(long, default_value_t = 0)]
        down_ms: u64,
    },
    /// The short default suite: idle 1000, echo 5 s, fanout 1000 x 10.
    Suite,
    /// The same scenario(s) against ringio and Node socket.io 4.8, side by side with ratios.
    Compare {
        /// Scenarios to compare (default: echo).
        #[arg(value_enum)]
        scenarios: Vec<Scenario>,
        /// Servers, in order (ringio, node, socketioxide); default: all three (socketioxide when
        /// its peer project is present).
        #[arg(long, value_delimiter = ',')]
        servers: Vec<String>,
        /// Also run the floor (raw TCP on monoio) and add its column and ratios.
        #[arg(long)]
        with_floor: bool,
    },
    /// ringio against the floor of this machine (raw TCP echo and raw fan-out on monoio, no
    /// protocol), in the same run: server CPU per op and ops/s with ratios ringio/floor.
    Floor {
        /// Scenarios (default: echo fanout).
        #[arg(value_enum)]
        scenarios: Vec<Scenario>,
    },
    /// The floor server (started by `floor` / `compare --with-floor`).
    #[command(hide = true)]
    FloorServer {
        #[arg(long)]
        port: u16,
    },
    /// A child generator process of `--procs N` (driven over stdin/stdout by its parent).
    #[command(hide = true)]
    Worker {
        /// the server addresses, comma-separated (connection i on the (i % len)-th)
        #[arg(long, value_delimiter = ',', required = true)]
        targets: Vec<std::net::SocketAddr>,
        /// their Host headers, same order
        #[arg(long, value_delimiter = ',', required = true)]
        host_headers: Vec<String>,
        #[arg(long)]
        proc_index: usize,
        #[arg(long, value_enum)]
        scenario: Scenario,
        #[arg(long)]
        floor: bool,
    },
    /// Run one scenario by name (same as the subcommands).
    Run {
        #[arg(long, value_enum)]
        scenario: Scenario,
        #[command(flatten)]
        sp: ServerProcs,
    },
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn params(s: Scenario, o: &Opts, suite: bool) -> Params {
    let conns = match s {
        Scenario::Idle => o
            .idle_conns
            .or(o.conns)
            .unwrap_or(if suite { 1000 } else { 2000 }),
        Scenario::Echo | Scenario::EchoOpen | Scenario::Rooms | Scenario::PollingMix => {
            o.echo_conns.or(o.conns).unwrap_or(200)
        }
        Scenario::Churn => o.conns.unwrap_or(50),
        Scenario::Fanout => {
            o.fanout_receivers
                .or(o.conns)
                .unwrap_or(if suite { 1000 } else { 2000 })
        }
    };
    Params {
        scenario: s,
        conns,
        rate: o.rate.unwrap_or(1000.0).max(1.0),
        hold: Duration::from_secs_f64(o.hold.unwrap_or(5.0)),
        duration: Duration::from_secs_f64(o.duration.unwrap_or(if suite { 5.0 } else { 10.0 })),
        payload_len: o.payload_len,
        broadcasts: o.broadcasts.unwrap_or(if suite { 10 } else { 20 }).max(1),
        interval: Duration::from_millis(o.interval_ms),
        burst: o.burst.max(1),
        threads: o.threads.unwrap_or_else(cores).max(1),
        open_rate: o.open_rate.max(1.0),
        rooms: o.rooms.max(1),
        floor: false,
        procs: o.procs.max(1),
        proc_index: 0,
        servers: 1,
        src_ips: o.src_ips,
    }
}

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

fn start(kind: &str, o: &Opts) -> Result<Server, String> {
    if let Some(url) = &o.url {
        return Server::external(url, o.server_pid);
    }
    let shards = o.shards.unwrap_or_else(cores).max(1);
    match kind {
        "ringio" => Server::start_ringio(shards, !o.no_build),
        "node" => Server::start_node(),
        "socketioxide" => Server::start_socketioxide(!o.no_build),
        "floor" => Server::start_floor(shards),
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
        let srv = start(kind, o)?; // on error, those started already stop when dropped
        eprintln!(
            "loadtest: {} on {} ({}), pid {}",
            p.scenario.name(),
            srv.label,
            srv.addr,
            srv.pid.map_or("?".into(), |p| p.to_string())
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
    let mut srv = match start(kind, o) {
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

fn main() {
    let cli = Cli::parse();
    let o = cli.opts.clone();
    if let Some(Cmd::FloorServer { port }) = &cli.cmd {
        floor::serve(*port, o.shards.unwrap_or_else(cores));
    }
    let nofile = raise_nofile();
    if let Some(Cmd::Worker {
        targets,
        host_headers,
        proc_index,
        scenario,
        floor,
    }) = &cli.cmd
    {
        if targets.len() != host_headers.len() {
            eprintln!(
                "loadtest worker {proc_index}: --targets and --host-headers differ in length"
            );
            std::process::exit(2);
        }
        let mut p = params(*scenario, &o, false);
        p.proc_index = *proc_index;
        p.floor = *floor;
        p.servers = targets.len();
        if (p.local_conns() + 64) as u64 > nofile {
            eprintln!(
                "loadtest worker {proc_index}: {} connections exceed its open-file limit ({nofile})",
                p.local_conns()
            );
            std::process::exit(2);
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
        std::process::exit(scenario::multi::worker(targets, src_ips, p));
    }
    if let Some(Cmd::Reconnect { server, down_ms }) = &cli.cmd {
        std::process::exit(run_reconnect(server, *down_ms, &o, nofile));
    }
    let cmd = cli.cmd.unwrap_or(Cmd::Suite);
    let server_procs = match &cmd {
        Cmd::Idle(sp) | Cmd::Echo(sp) | Cmd::Run { sp, .. } => sp.servers.max(1),
        _ => 1,
    };
    if server_procs > 1 && o.url.is_some() {
        eprintln!(
            "loadtest: --servers {server_procs} starts the server processes itself; --url (one \
             external server) is not allowed"
        );
        std::process::exit(2);
    }
    if let Some(n) = o.src_ips.filter(|n| *n > scenario::MAX_SRC_IPS) {
        eprintln!(
            "loadtest: --src-ips {n}: at most {} source addresses (127.0.0.2 ..= 127.0.0.255)",
            scenario::MAX_SRC_IPS
        );
        std::process::exit(2);
    }
    let (suite, scenarios, servers): (bool, Vec<Scenario>, Vec<String>) = match &cmd {
        Cmd::Idle(_) => (false, vec![Scenario::Idle], vec!["ringio".into()]),
        Cmd::Echo(_) => (false, vec![Scenario::Echo], vec!["ringio".into()]),
        Cmd::Fanout => (false, vec![Scenario::Fanout], vec!["ringio".into()]),
        Cmd::EchoOpen => (false, vec![Scenario::EchoOpen], vec!["ringio".into()]),
        Cmd::Churn => (false, vec![Scenario::Churn], vec!["ringio".into()]),
        Cmd::Rooms => (false, vec![Scenario::Rooms], vec!["ringio".into()]),
        Cmd::PollingMix => (false, vec![Scenario::PollingMix], vec!["ringio".into()]),
        Cmd::Run { scenario, .. } => (false, vec![*scenario], vec!["ringio".into()]),
        Cmd::Suite => (
            true,
            vec![Scenario::Idle, Scenario::Echo, Scenario::Fanout],
            vec!["ringio".into()],
        ),
        Cmd::FloorServer { .. } | Cmd::Reconnect { .. } | Cmd::Worker { .. } => {
            unreachable!("handled above")
        }
        Cmd::Floor { scenarios } => {
            if o.url.is_some() {
                eprintln!("loadtest: floor starts its own servers; --url is not allowed");
                std::process::exit(2);
            }
            let sc = if scenarios.is_empty() {
                vec![Scenario::Echo, Scenario::Fanout]
            } else {
                scenarios.clone()
            };
            (false, sc, vec!["ringio".into(), "floor".into()])
        }
        Cmd::Compare {
            scenarios,
            servers,
            with_floor,
        } => {
            if o.url.is_some() {
                eprintln!("loadtest: compare starts its own servers; --url is not allowed");
                std::process::exit(2);
            }
            let sc = if scenarios.is_empty() {
                vec![Scenario::Echo]
            } else {
                scenarios.clone()
            };
            let mut servers = servers.clone();
            if servers.is_empty() {
                servers = vec!["ringio".into(), "node".into()];
                if server::socketioxide_available() {
                    servers.push("socketioxide".into());
                }
            }
            if *with_floor && !servers.iter().any(|s| s == "floor") {
                servers.push("floor".into());
            }
            (false, sc, servers)
        }
    };
    let compare = matches!(cmd, Cmd::Compare { .. } | Cmd::Floor { .. });
    let mut groups: Vec<Vec<RunResult>> = Vec::new();
    let mut all: Vec<RunResult> = Vec::new();
    let mut failed = false;
    for s in &scenarios {
        let mut p = params(*s, &o, suite);
        p.servers = server_procs;
        if p.procs > 1 && !scenario::multi::supported(*s) {
            eprintln!(
                "loadtest: --procs {} is supported for idle and echo only, not {}",
                p.procs,
                s.name()
            );
            std::process::exit(2);
        }
        if p.servers > 1 && !scenario::multi::supported(*s) {
            eprintln!(
                "loadtest: --servers {} is supported for idle and echo only, not {}",
                p.servers,
                s.name()
            );
            std::process::exit(2);
        }
        let slice = p.local_conns(); // process 0 has the largest slice
        if p.procs > 1 {
            eprintln!(
                "loadtest: {} generator processes, open-file limit per process {nofile}, \
                 up to {slice} connections each",
                p.procs
            );
        }
        if !scenario::fits_fd_limit(slice, nofile) {
            eprintln!(
                "loadtest: {slice} connections per generator process exceed the per-process \
                 open-file limit ({nofile}, ulimit -n) with {} fds to spare; raise --procs \
                 (now {}) or lower --conns",
                scenario::FD_SPARE,
                p.procs
            );
            std::process::exit(2);
        }
        // the servers the harness starts inherit this process's (raised) open-file limit
        let per_server = scenario::local_count(p.conns, p.servers, 0);
        if o.url.is_none() && !scenario::fits_fd_limit(per_server, nofile) {
            eprintln!(
                "loadtest: {per_server} connections per server process exceed its open-file \
                 limit ({nofile}, inherited ulimit -n) with {} fds to spare; raise --servers \
                 (now {}) or lower --conns",
                scenario::FD_SPARE,
                p.servers
            );
            std::process::exit(2);
        }
        if p.servers > 1 {
            eprintln!(
                "loadtest: {} server processes, up to {per_server} connections each",
                p.servers
            );
        }
        let mut group = Vec::new();
        for kind in &servers {
            if kind == "floor" && !s.has_floor() {
                continue;
            }
            match run_one(kind, &p, &o) {
                Ok(r) => {
                    if !compare {
                        report::print_single(&r);
                    }
                    group.push(r);
                }
                Err(e) => {
                    eprintln!("loadtest: {} on {kind}: {e}", s.name());
                    failed = true;
                }
            }
            if compare {
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        if compare {
            for r in &group {
                report::print_single(r);
            }
            report::print_compare(&group);
        }
        all.extend(group.iter().cloned());
        groups.push(group);
    }
    if servers.iter().any(|s| s == "floor") {
        report::print_floor(&groups);
    }
    if let Some(dir) = &o.plot {
        match plot::write_all(dir, &groups) {
            Ok(files) => {
                for f in files {
                    eprintln!("loadtest: plot {}", f.display());
                }
            }
            Err(e) => {
                eprintln!("loadtest: cannot write plots to {}: {e}", dir.display());
                failed = true;
            }
        }
    }
    if let Some(path) = &o.json {
        match report::write_json(path, &all, machine_json()) {
            Ok(()) => eprintln!("loadtest: results written to {}", path.display()),
            Err(e) => {
                eprintln!("loadtest: cannot write {}: {e}", path.display());
                failed = true;
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
}
