//! Generator processes: the Rust generator's `--procs N` children (this executable's hidden
//! `worker` subcommand: processes 1..N, the harness itself is process 0) and the Node generator's
//! processes (`loadtest/generator/node/generator.js`: processes 0..N). Each opens its slice of
//! the connections (connection i in process i % N) under its own open-file limit. Phases are
//! driven over the child's stdin (`ramp`, `go`, `status`, `drain <ms>`, `stop`); the child
//! answers on stdout (`ready`, `ramped <ok> <failed>`, `status <deliveries> <done> <failed>`,
//! `drained`, then one JSON line with its counts, histograms as lists of [value, count] pairs
//! and, for fanout, its deliveries and sends with CLOCK_MONOTONIC ns).

use super::hist::{hist_from, hist_json, MonoClock};
use super::params::{Params, Scenario, Target};
use super::progress::wait_until;
use super::runner::{merge, spawn_clients, Shared, ThreadOut};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Whether a scenario can run on several Rust generator processes.
pub fn supported(s: Scenario) -> bool {
    matches!(s, Scenario::Idle | Scenario::Echo)
}

/// What the workers report at the end, besides what is merged into the `ThreadOut`.
#[derive(Default)]
pub struct WorkerOut {
    pub failed: usize,
    pub dropped: usize,
    pub first_error: Option<String>,
}

struct Proc {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// The child generator processes of one run.
#[derive(Default)]
pub struct Workers {
    procs: Vec<Proc>,
}

impl Drop for Workers {
    fn drop(&mut self) {
        for p in &mut self.procs {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }
}

/// The server addresses and Host headers, comma-separated, in the same order.
fn joined(targets: &[Target]) -> (String, String) {
    let addrs = targets.iter().map(|t| t.addr.to_string());
    let hosts = targets.iter().map(|t| t.host_header.as_str());
    (
        addrs.collect::<Vec<_>>().join(","),
        hosts.collect::<Vec<_>>().join(","),
    )
}

/// The command lines of Rust worker processes 1..N of `p.procs`. Every worker gets all server
/// addresses (`--targets`, `--host-headers`) and the resolved `--src-ips`.
pub fn rust_commands(
    targets: &[Target],
    src_ips: usize,
    p: &Params,
) -> Result<Vec<Command>, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let (addrs, hosts) = joined(targets);
    let cmds = (1..p.procs).map(|k| {
        let mut cmd = Command::new(&exe);
        cmd.args(["worker", "--targets", &addrs, "--host-headers", &hosts]);
        let args = [
            ("--src-ips", src_ips.to_string()),
            ("--proc-index", k.to_string()),
            ("--procs", p.procs.to_string()),
            ("--scenario", p.scenario.name().to_string()),
            ("--conns", p.conns.to_string()),
            ("--in-flight", p.in_flight.to_string()),
            ("--rate", p.rate.to_string()),
            ("--threads", p.threads.to_string()),
            ("--payload-len", p.payload_len.to_string()),
        ];
        for (k, v) in args {
            cmd.arg(k).arg(v);
        }
        if p.floor {
            cmd.arg("--floor");
        }
        cmd
    });
    Ok(cmds.collect())
}

impl Workers {
    /// Starts one generator process per command (on `cpus` when set) and waits until each
    /// says `ready`.
    pub fn start(cmds: Vec<Command>, cpus: Option<&[usize]>) -> Result<Workers, String> {
        let mut w = Workers::default();
        for (k, mut cmd) in cmds.into_iter().enumerate() {
            if let Some(c) = cpus {
                crate::pin::on_exec(&mut cmd, c);
            }
            cmd.stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit());
            let mut child = cmd
                .spawn()
                .map_err(|e| format!("cannot start generator process {k}: {e}"))?;
            let stdin = child.stdin.take().expect("piped stdin");
            let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
            w.procs.push(Proc {
                child,
                stdin,
                stdout,
            });
        }
        for l in w.lines()? {
            if l != "ready" {
                return Err(format!("generator process: expected `ready`, got {l:?}"));
            }
        }
        Ok(w)
    }

    pub fn pids(&self) -> Vec<u32> {
        self.procs.iter().map(|p| p.child.id()).collect()
    }

    pub fn send(&mut self, cmd: &str) {
        for p in &mut self.procs {
            let _ = writeln!(p.stdin, "{cmd}");
            let _ = p.stdin.flush();
        }
    }

    /// One line from each worker.
    fn lines(&mut self) -> Result<Vec<String>, String> {
        let mut v = Vec::new();
        for (k, p) in self.procs.iter_mut().enumerate() {
            let mut l = String::new();
            match p.stdout.read_line(&mut l) {
                Ok(n) if n > 0 => v.push(l.trim().to_string()),
                _ => return Err(format!("generator process {k} exited")),
            }
        }
        Ok(v)
    }

    /// Waits for every worker's `ramped <connected> <failed>`; returns the sums.
    pub fn ramped(&mut self) -> (usize, usize) {
        let (mut ok, mut failed) = (0, 0);
        for l in self.lines().unwrap_or_default() {
            let mut it = l.split_whitespace().skip(1).map(|x| x.parse().unwrap_or(0));
            ok += it.next().unwrap_or(0);
            failed += it.next().unwrap_or(0);
        }
        (ok, failed)
    }

    /// fanout: (deliveries so far, the sender is done, the sender failed) over all workers;
    /// None when a worker is gone.
    pub fn status(&mut self) -> Option<(u64, bool, bool)> {
        self.send("status");
        let (mut n, mut done, mut failed) = (0, false, false);
        for l in self.lines().ok()? {
            let f: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .map(|x| x.parse().unwrap_or(0))
                .collect();
            n += f.first().copied().unwrap_or(0);
            done |= f.get(1) == Some(&1);
            failed |= f.get(2) == Some(&1);
        }
        Some((n, done, failed))
    }

    /// echo-open: waits until every worker's schedule is over and its echoes answered, or
    /// `timeout`.
    pub fn drain(&mut self, timeout: Duration) {
        self.send(&format!("drain {}", timeout.as_millis()));
        let _ = self.lines();
    }

    /// Sends `stop`, reads each worker's JSON result and merges it into `into`.
    pub(super) fn finish(&mut self, into: &mut ThreadOut) -> WorkerOut {
        if self.procs.is_empty() {
            return WorkerOut::default();
        }
        self.send("stop");
        let mut w = WorkerOut::default();
        let clock = MonoClock::now();
        for l in self.lines().unwrap_or_default() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&l) else {
                w.first_error
                    .get_or_insert(format!("bad worker result {:.200}", l));
                continue;
            };
            let n = |k: &str| v.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
            w.failed += n("failed") as usize;
            w.dropped += n("dropped") as usize;
            into.ops += n("ops");
            into.failures += n("failures");
            into.late += n("late");
            into.unanswered += n("unanswered");
            let _ = into.connect.add(hist_from(&v["connect"]));
            let _ = into.rtt.add(hist_from(&v["rtt"]));
            merge_fanout(&v, &clock, into);
            if let Some(e) = v.get("first_error").and_then(|x| x.as_str()) {
                w.first_error.get_or_insert(e.to_string());
            }
        }
        for p in &mut self.procs {
            let _ = p.child.wait();
        }
        self.procs.clear();
        w
    }
}

/// fanout: a worker's deliveries `[[seq, t_ns], ...]` and sends `[[seq, slot, t_ns, rtt_us],
/// ...]` (CLOCK_MONOTONIC ns) into `into`.
fn merge_fanout(v: &serde_json::Value, clock: &MonoClock, into: &mut ThreadOut) {
    let u = |x: &serde_json::Value, k: usize| {
        let y = x.get(k)?;
        y.as_u64().or_else(|| y.as_f64().map(|f| f as u64))
    };
    for r in v["recv"].as_array().into_iter().flatten() {
        if let (Some(seq), Some(t)) = (u(r, 0), u(r, 1)) {
            into.recv.push((seq, clock.instant(t)));
        }
    }
    for s in v["sends"].as_array().into_iter().flatten() {
        if let (Some(seq), Some(slot), Some(t), Some(rtt)) = (u(s, 0), u(s, 1), u(s, 2), u(s, 3)) {
            into.sends.push((
                seq,
                slot as usize,
                clock.instant(t),
                Duration::from_micros(rtt),
            ));
        }
    }
}

/// The `worker` subcommand: runs its slice of `p` against `targets` (connection i on
/// `targets[i % len]`) from `src_ips` source addresses, driven over stdin.
pub fn worker(targets: Vec<Target>, src_ips: usize, p: Params) -> i32 {
    let sh = Arc::new(Shared::new(targets, src_ips, p.clone()));
    let handles = spawn_clients(&sh);
    std::thread::sleep(Duration::from_millis(100));
    let out = std::io::stdout();
    let say = |s: &str| {
        let mut o = out.lock();
        let _ = writeln!(o, "{s}");
        let _ = o.flush();
    };
    say("ready");
    let n = p.local_conns();
    let count = |a: &std::sync::atomic::AtomicUsize| a.load(Ordering::Acquire);
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        match line.trim() {
            "ramp" => {
                sh.start_ramp(Duration::from_millis(5));
                let budget =
                    Duration::from_secs_f64(p.conns as f64 / p.rate) + Duration::from_secs(15);
                wait_until(Instant::now() + budget, || {
                    count(&sh.connected) + count(&sh.failed) >= n
                });
                say(&format!(
                    "ramped {} {}",
                    count(&sh.connected),
                    count(&sh.failed)
                ));
            }
            "go" => sh.go.store(true, Ordering::Release),
            "status" => say(&format!(
                "status {} {} {}",
                sh.delivered.load(Ordering::Acquire),
                sh.sender_done.load(Ordering::Acquire) as u8,
                sh.sender_failed.load(Ordering::Acquire) as u8
            )),
            _ => break, // "stop" or anything else
        }
    }
    sh.stop.store(true, Ordering::Release);
    let o = merge(handles.into_iter().filter_map(|h| h.join().ok()).collect());
    let v = serde_json::json!({
        "connected": count(&sh.connected),
        "failed": count(&sh.failed),
        "dropped": count(&sh.dropped),
        "ops": o.ops,
        "failures": o.failures,
        "connect": hist_json(&o.connect),
        "rtt": hist_json(&o.rtt),
        "first_error": sh.first_error.get(),
    });
    say(&v.to_string());
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cover_all_connections() {
        for procs in 1..5 {
            let total: usize = (0..procs)
                .map(|k| super::super::params::local_count(1001, procs, k))
                .sum();
            assert_eq!(total, 1001);
        }
    }

    #[test]
    fn fanout_results_merge() {
        let clock = MonoClock::now();
        let now = super::super::hist::mono_ns();
        let v = serde_json::json!({
            "recv": [[1, now], [2, now + 1000], [null, now]],
            "sends": [[1, 0, now - 5_000_000, 250]],
        });
        let mut out = super::super::runner::new_out();
        merge_fanout(&v, &clock, &mut out);
        assert_eq!(out.recv.len(), 2);
        assert_eq!(out.sends.len(), 1);
        let (seq, slot, t, rtt) = out.sends[0];
        assert_eq!((seq, slot, rtt), (1, 0, Duration::from_micros(250)));
        let gap = out.recv[0].1 - t;
        assert!(gap >= Duration::from_millis(4) && gap <= Duration::from_millis(6));
    }
}
