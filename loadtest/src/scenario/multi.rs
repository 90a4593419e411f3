//! Several generator processes (`--procs N`): the parent spawns N-1 children (this executable's
//! hidden `worker` subcommand), each opening its slice of the connections (connection i in
//! process i % N) under its own open-file limit. Phases are driven over the child's stdin
//! (`ramp`, `go`, `stop`); the child answers on stdout (`ready`, `ramped <ok> <failed>`, then
//! one JSON line with its counts and histograms as lists of [value, count] pairs).

use super::{hist, merge, spawn_clients, wait_until, Params, Scenario, Shared, Target, ThreadOut};
use hdrhistogram::Histogram;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Whether a scenario can run on several generator processes.
pub fn supported(s: Scenario) -> bool {
    matches!(s, Scenario::Idle | Scenario::Echo)
}

fn hist_json(h: &Histogram<u64>) -> serde_json::Value {
    h.iter_recorded()
        .map(|v| serde_json::json!([v.value_iterated_to(), v.count_at_value()]))
        .collect::<Vec<_>>()
        .into()
}

fn hist_from(v: &serde_json::Value) -> Histogram<u64> {
    let mut h = hist();
    for pair in v.as_array().into_iter().flatten() {
        if let (Some(x), Some(n)) = (
            pair.get(0).and_then(|x| x.as_u64()),
            pair.get(1).and_then(|x| x.as_u64()),
        ) {
            let _ = h.record_n(x, n);
        }
    }
    h
}

/// What a worker reports at the end.
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

impl Workers {
    /// Spawns processes 1..N of `p.procs` and waits until each says `ready`.
    /// Every worker gets all server addresses (`--targets`, `--host-headers`, comma-separated,
    /// in the same order) and the resolved `--src-ips`.
    pub fn spawn(targets: &[Target], src_ips: usize, p: &Params) -> Result<Workers, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let addrs = targets
            .iter()
            .map(|t| t.addr.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let hosts = targets
            .iter()
            .map(|t| t.host_header.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let mut w = Workers::default();
        for k in 1..p.procs {
            let mut cmd = Command::new(&exe);
            cmd.args([
                "worker",
                "--targets",
                &addrs,
                "--host-headers",
                &hosts,
                "--src-ips",
                &src_ips.to_string(),
                "--proc-index",
                &k.to_string(),
                "--procs",
                &p.procs.to_string(),
                "--scenario",
                p.scenario.name(),
                "--conns",
                &p.conns.to_string(),
                "--rate",
                &p.rate.to_string(),
                "--threads",
                &p.threads.to_string(),
                "--payload-len",
                &p.payload_len.to_string(),
            ]);
            if p.floor {
                cmd.arg("--floor");
            }
            cmd.stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit());
            let mut child = cmd
                .spawn()
                .map_err(|e| format!("cannot start worker {k}: {e}"))?;
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
                return Err(format!("worker: expected `ready`, got {l:?}"));
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
                _ => return Err(format!("worker {} exited", k + 1)),
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

    /// Sends `stop`, reads each worker's JSON result and merges it into `into`.
    pub(super) fn finish(&mut self, into: &mut ThreadOut) -> WorkerOut {
        self.send("stop");
        let mut w = WorkerOut::default();
        for l in self.lines().unwrap_or_default() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&l) else {
                w.first_error
                    .get_or_insert(format!("bad worker result {l:?}"));
                continue;
            };
            let n = |k: &str| v.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
            w.failed += n("failed") as usize;
            w.dropped += n("dropped") as usize;
            into.ops += n("ops");
            into.failures += n("failures");
            let _ = into.connect.add(hist_from(&v["connect"]));
            let _ = into.rtt.add(hist_from(&v["rtt"]));
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
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        match line.trim() {
            "ramp" => {
                let at = sh.base.elapsed() + Duration::from_millis(5);
                sh.ramp_start_ns
                    .store(at.as_nanos() as u64, Ordering::Release);
                sh.ramp.store(true, Ordering::Release);
                let budget =
                    Duration::from_secs_f64(p.conns as f64 / p.rate) + Duration::from_secs(15);
                wait_until(Instant::now() + budget, || {
                    sh.connected.load(Ordering::Acquire) + sh.failed.load(Ordering::Acquire) >= n
                });
                say(&format!(
                    "ramped {} {}",
                    sh.connected.load(Ordering::Acquire),
                    sh.failed.load(Ordering::Acquire)
                ));
            }
            "go" => sh.go.store(true, Ordering::Release),
            _ => break, // "stop" or anything else
        }
    }
    sh.stop.store(true, Ordering::Release);
    let o = merge(handles.into_iter().filter_map(|h| h.join().ok()).collect());
    let v = serde_json::json!({
        "connected": sh.connected.load(Ordering::Acquire),
        "failed": sh.failed.load(Ordering::Acquire),
        "dropped": sh.dropped.load(Ordering::Acquire),
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
    fn histogram_round_trip() {
        let mut h = hist();
        for v in [1u64, 5, 5, 900, 123_456, 9_999_999] {
            h.record(v).unwrap();
        }
        let back = hist_from(&serde_json::from_str(&hist_json(&h).to_string()).unwrap());
        assert_eq!(back.len(), h.len());
        assert_eq!(back.value_at_quantile(0.5), h.value_at_quantile(0.5));
        assert_eq!(back.max(), h.max());
    }

    #[test]
    fn slices_cover_all_connections() {
        for procs in 1..5 {
            let total: usize = (0..procs)
                .map(|k| super::super::local_count(1001, procs, k))
                .sum();
            assert_eq!(total, 1001);
        }
    }
}
