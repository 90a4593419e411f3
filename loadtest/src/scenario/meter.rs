//! /proc metering over a measured window: the server processes' CPU (schedstat) and RSS, the
//! client's CPU (every generator process: this one's own client threads and/or its child
//! processes, Rust or Node) and the whole machine's busy time from /proc/stat; and the rows that
//! report them, per operation and as cores busy.

use crate::report::{Better, Row};
use crate::server::{self, ProcSample, Server};
use std::time::Instant;

/// A coordinator-side snapshot: server /proc figures, client CPU, machine CPU.
#[derive(Clone, Copy)]
pub struct Meter {
    pub srv: Option<ProcSample>,
    pub client_ns: u64,
    /// /proc/stat jiffies: (busy, total)
    pub machine: (u64, u64),
    pub at: Instant,
}

/// CPU time and RSS summed over all server processes (None when any is not measurable).
fn sample_all(srvs: &[Server]) -> Option<ProcSample> {
    srvs.iter().map(Server::sample).try_fold(
        ProcSample {
            cpu_ns: 0,
            rss_kb: 0,
        },
        |acc, s| {
            s.map(|s| ProcSample {
                cpu_ns: acc.cpu_ns + s.cpu_ns,
                rss_kb: acc.rss_kb + s.rss_kb,
            })
        },
    )
}

/// A snapshot; the client's CPU is the generator processes `workers` plus, with `with_self`,
/// this process (its client threads and the coordinator).
pub fn meter(srvs: &[Server], workers: &[u32], with_self: bool) -> Meter {
    let wk: u64 = workers
        .iter()
        .filter_map(|&pid| ProcSample::of(pid))
        .map(|x| x.cpu_ns)
        .sum();
    Meter {
        srv: sample_all(srvs),
        client_ns: if with_self { server::self_cpu_ns() } else { 0 } + wk,
        machine: server::machine_cpu(),
        at: Instant::now(),
    }
}

/// CPU figures over a window between two meters.
pub struct Window {
    pub wall_s: f64,
    pub server_cpu_ns: Option<u64>,
    pub server_cores: Option<f64>,
    pub client_cpu_ns: u64,
    pub client_cores: f64,
    /// whole machine: busy share of all CPUs, and busy CPU time in ns (user + nice + system +
    /// irq + softirq + steal of /proc/stat's `cpu` line; idle and iowait are not busy)
    pub machine_busy: f64,
    pub machine_cpu_ns: u64,
}

pub fn window(a: &Meter, b: &Meter) -> Window {
    let wall_s = b.at.duration_since(a.at).as_secs_f64().max(1e-9);
    let server_cpu_ns = match (a.srv, b.srv) {
        (Some(x), Some(y)) => Some(y.cpu_ns.saturating_sub(x.cpu_ns)),
        _ => None,
    };
    let client_cpu_ns = b.client_ns.saturating_sub(a.client_ns);
    let (db, dt) = (
        b.machine.0.saturating_sub(a.machine.0),
        b.machine.1.saturating_sub(a.machine.1),
    );
    Window {
        wall_s,
        server_cpu_ns,
        server_cores: server_cpu_ns.map(|n| n as f64 / 1e9 / wall_s),
        client_cpu_ns,
        client_cores: client_cpu_ns as f64 / 1e9 / wall_s,
        machine_busy: if dt > 0 { db as f64 / dt as f64 } else { 0.0 },
        machine_cpu_ns: db * (1_000_000_000 / server::clk_tck()),
    }
}

/// Cores of this machine.
pub fn cores() -> f64 {
    std::thread::available_parallelism().map_or(1, |n| n.get()) as f64
}

/// CPU used by processes other than the client and the server over `w` (others' builds, ...),
/// in cores.
pub fn other_cores(w: &Window) -> f64 {
    (w.machine_busy * cores() - w.client_cores - w.server_cores.unwrap_or(0.0)).max(0.0)
}

/// True when the client limited the figure: its threads were ~100% busy, or the machine was
/// saturated by this client and the server alone (other load under 0.25 core) and the client
/// used at least as much CPU as the server.
pub fn client_bound(w: &Window, threads: usize, other_cores: f64) -> bool {
    let util = w.client_cores / threads as f64;
    util >= 0.9
        || (w.machine_busy >= 0.95
            && other_cores < 0.25
            && w.client_cores >= w.server_cores.unwrap_or(0.0))
}

/// The CPU rows of a measured window: per operation (`ops` of them, each a `op`) for the server
/// process, the client (all generator processes) and the whole machine, side by side; then the
/// cores busy / utilisation figures. `threads`: the client's threads (Rust) or processes (Node).
pub fn cpu_rows(rows: &mut Vec<Row>, w: &Window, threads: usize, ops: u64, op: &str) {
    let per_op = |ns: u64| ns as f64 / 1000.0 / ops.max(1) as f64;
    rows.push(Row::new(
        "server_cpu_us_per_op",
        &format!("server CPU per {op}"),
        w.server_cpu_ns.map(per_op),
        "us",
        Better::Lower,
    ));
    rows.push(Row::new(
        "client_cpu_us_per_op",
        &format!("client CPU per {op}"),
        Some(per_op(w.client_cpu_ns)),
        "us",
        Better::Lower,
    ));
    rows.push(Row::new(
        "machine_cpu_us_per_op",
        &format!("machine CPU per {op} (/proc/stat busy)"),
        Some(per_op(w.machine_cpu_ns)),
        "us",
        Better::Lower,
    ));
    rows.push(Row::new(
        "server_cpu_cores",
        "server CPU (cores busy)",
        w.server_cores,
        "",
        Better::Info,
    ));
    rows.push(Row::new(
        "client_cpu_util",
        "client CPU (% of its threads)",
        Some(100.0 * w.client_cores / threads as f64),
        "%",
        Better::Info,
    ));
    rows.push(Row::new(
        "machine_busy",
        "machine CPU busy",
        Some(100.0 * w.machine_busy),
        "%",
        Better::Info,
    ));
}

/// The rows of a window with no traffic (idle hold): server, client and machine CPU as % of
/// one core.
pub fn hold_rows(rows: &mut Vec<Row>, w: &Window) {
    rows.push(Row::new(
        "server_cpu_hold_pct",
        "server CPU while idle (hold, % of one core)",
        w.server_cores.map(|c| c * 100.0),
        "%",
        Better::Lower,
    ));
    rows.push(Row::new(
        "client_cpu_hold_pct",
        "client CPU while idle (hold, % of one core)",
        Some(w.client_cores * 100.0),
        "%",
        Better::Info,
    ));
    rows.push(Row::new(
        "machine_cpu_hold_pct",
        "machine CPU while idle (hold, % of one core)",
        Some(w.machine_busy * cores() * 100.0),
        "%",
        Better::Lower,
    ));
}
