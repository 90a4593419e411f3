//! The scenarios. One run: start the generator (the Rust client threads of this process and its
//! worker processes, or the Node generator's processes), ramp the connections up at a fixed
//! arrival rate, then the scenario's own measured phase (one function per scenario), metering
//! the server, the client and the whole machine over the same windows from /proc.
//!
//! Modules: `params` (what a run is), `runner` / `tasks` / `more` / `floor_tasks` (the Rust
//! generator's threads and tasks), `multi` (generator processes: Rust workers and Node),
//! `node` (the Node generator), `gen` (the generator of one run, whichever it is), `meter`
//! (/proc), `hist`, `progress`, and one module per scenario family: `idle`, `echo` (echo,
//! polling-mix, echo-open), `loops` (churn, rooms), `fanout`.

use crate::report::{Better, PlotData, Row, RunResult};
use crate::server::Server;
use meter::{Meter, Window};
use std::time::Duration;

mod echo;
mod fanout;
mod floor_tasks;
pub mod gen;
mod hist;
mod idle;
mod loops;
mod meter;
mod more;
pub mod multi;
pub mod node;
pub mod params;
pub mod progress;
mod runner;
mod tasks;

pub use params::{
    fits_fd_limit, local_count, resolve_src_ips, Generator, Params, Scenario, Target, FD_SPARE,
    MAX_SRC_IPS,
};

/// What every scenario function gets: the run so far (generator started, connections ramped).
struct Ctx<'a> {
    srvs: &'a [Server],
    p: &'a Params,
    gen: gen::Gen,
    /// meters before and after the ramp
    m0: Meter,
    m1: Meter,
    ramp: gen::Ramped,
    ramp_w: Window,
}

/// What every scenario function hands back.
struct Outcome {
    rows: Vec<Row>,
    notes: Vec<String>,
    /// the measured window: the client-bound test and the other processes' load use it
    w: Window,
    plot: PlotData,
}

/// Server RSS growth per connection between two meters.
fn rss_per_conn(a: &Meter, b: &Meter, connected: usize) -> Option<f64> {
    match (a.srv, b.srv) {
        (Some(a), Some(b)) => Some((b.rss_kb as f64 - a.rss_kb as f64) / connected.max(1) as f64),
        _ => None,
    }
}

/// Notes about pinning: server threads allowed outside the server's CPU set (ringio pins its
/// shards itself, see `pin::threads_outside`).
fn pin_notes(srvs: &[Server], p: &Params) -> Vec<String> {
    let Some(cpus) = &p.server_cpus else {
        return Vec::new();
    };
    let mut notes = Vec::new();
    for pid in srvs.iter().filter_map(|s| s.pid) {
        let out = crate::pin::threads_outside(pid, cpus);
        if !out.is_empty() {
            notes.push(format!(
                "--pin: server threads outside cpu {}: {}",
                crate::pin::fmt_list(cpus),
                out.join(", ")
            ));
        }
    }
    notes
}

/// Runs one scenario against `srvs` (several server processes: connection i on server
/// i % len; CPU and RSS summed over them).
pub fn run(srvs: &[Server], p: &Params) -> Result<RunResult, String> {
    let srv = srvs.first().ok_or("no server")?;
    let targets: Vec<Target> = srvs
        .iter()
        .map(|s| Target {
            addr: s.addr,
            host_header: s.host_header.clone(),
        })
        .collect();
    let mut p = p.clone();
    p.servers = targets.len();
    let src_ips = resolve_src_ips(&p, &targets)?;
    p.src_ips = Some(src_ips);
    let p = &p;
    let mut gen = gen::Gen::start(&targets, src_ips, p)?;
    let mut notes = pin_notes(srvs, p);
    std::thread::sleep(Duration::from_millis(200)); // runtimes up, server settled
    let m0 = gen.meter(srvs);
    let ramp = gen.ramp();
    let m1 = gen.meter(srvs);
    if !ramp.done {
        notes.push(format!(
            "connect ramp incomplete: {}/{} connected after {:.1} s",
            ramp.connected,
            p.conns,
            ramp.budget.as_secs_f64()
        ));
    }
    let threads = gen.threads;
    let first_error = gen.sh.clone();
    let ramp_w = meter::window(&m0, &m1);
    let c = Ctx {
        srvs,
        p,
        gen,
        m0,
        m1,
        ramp,
        ramp_w,
    };
    let mut o = match p.scenario {
        Scenario::Idle => idle::run(c),
        Scenario::Echo | Scenario::PollingMix => echo::closed(c),
        Scenario::EchoOpen => echo::open(c),
        Scenario::Churn | Scenario::Rooms => loops::run(c),
        Scenario::Fanout => fanout::run(c),
    };
    notes.append(&mut o.notes);
    if let Some(e) = first_error.first_error.get() {
        notes.push(format!("first error: {e}"));
    }
    if srvs.iter().any(|s| s.pid.is_none()) {
        notes.push("no server pid: server CPU and RSS not measured (use --server-pid)".into());
    }
    let client_bound = finish_rows(&mut o, p, threads, &mut notes);
    Ok(RunResult {
        scenario: p.scenario.name().into(),
        server: if srvs.len() > 1 {
            format!("{} x {} processes", srv.label, srvs.len())
        } else {
            srv.label.clone()
        },
        server_kind: srv.kind.name().into(),
        generator: p.generator.name().into(),
        description: p.describe(),
        params: p.to_json(),
        rows: o.rows,
        client_bound,
        notes,
        plot: o.plot,
    })
}

/// The rows and notes every scenario ends with (the other processes' load); returns whether
/// the client limited the figures.
fn finish_rows(o: &mut Outcome, p: &Params, threads: usize, notes: &mut Vec<String>) -> bool {
    // CPU used by processes other than this client and the server (others' builds, ...)
    let other = meter::other_cores(&o.w);
    o.rows.push(Row::new(
        "other_load_cores",
        "other processes' CPU (cores)",
        Some(other),
        "",
        Better::Info,
    ));
    // a fixed arrival rate that was met is not limited by anyone
    let rate_met = p.scenario == Scenario::Idle
        && o.rows
            .iter()
            .find(|r| r.key == "ops_per_s")
            .and_then(|r| r.value)
            .is_some_and(|v| v >= 0.9 * p.rate);
    if other > 0.25 {
        notes.push(format!(
            "the machine was shared: other processes used {other:.2} of {} cores during the measured phase; figures are noisy",
            meter::cores()
        ));
    }
    !rate_met && meter::client_bound(&o.w, threads, other)
}
