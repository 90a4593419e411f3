//! The generator of one run, whichever it is: the Rust client threads of this process plus its
//! `--procs` worker processes, or the Node generator's processes. The coordinator drives the
//! phases (ramp, go, stop) through it, meters the client's CPU through it and gets everything
//! merged back from it in one place.

use super::meter::{self, Meter};
use super::multi::{self, Workers};
use super::node;
use super::params::{Generator, Params, Scenario, Target};
use super::progress::{wait_until, Progress};
use super::runner::{merge, spawn_clients, Shared, ThreadOut};
use crate::server::Server;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct Gen {
    pub sh: Arc<Shared>,
    handles: Vec<JoinHandle<ThreadOut>>,
    workers: Workers,
    pids: Vec<u32>,
    /// the client's threads (Rust: all processes' client threads) or processes (Node): the
    /// denominator of the client utilisation
    pub threads: usize,
    /// connections the client threads of this process open
    local: usize,
    /// this thread's CPU set before the run pinned it
    restore: Option<Vec<usize>>,
}

/// The end of the ramp.
pub struct Ramped {
    pub connected: usize,
    /// every connection either connected or failed within the budget
    pub done: bool,
    pub budget: Duration,
}

/// What the generator did, merged over all its threads and processes.
pub struct Finished {
    pub out: ThreadOut,
    /// connections that failed to open / that dropped before STOP
    pub failed: usize,
    pub dropped: usize,
}

impl Drop for Gen {
    fn drop(&mut self) {
        if let Some(cpus) = self.restore.take() {
            let _ = crate::pin::set_current_thread(&cpus);
        }
    }
}

impl Gen {
    /// Starts the generator for `p` against `targets`; returns once every thread and process
    /// is up and waiting for the ramp. With `--pin`, this thread (the coordinator) moves to the
    /// client's CPUs until the run ends, and every client thread or process starts there.
    pub fn start(targets: &[Target], src_ips: usize, p: &Params) -> Result<Gen, String> {
        let restore = match &p.client_cpus {
            Some(cpus) => {
                let old = crate::pin::allowed_cpus();
                crate::pin::set_current_thread(cpus).map_err(|e| format!("--pin: {e}"))?;
                Some(old)
            }
            None => None,
        };
        let mut g = Gen {
            sh: Arc::new(Shared::new(targets.to_vec(), src_ips, p.clone())),
            handles: Vec::new(),
            workers: Workers::default(),
            pids: Vec::new(),
            threads: p.threads * p.procs,
            local: 0,
            restore,
        };
        let cpus = p.client_cpus.as_deref();
        match p.generator {
            Generator::Rust => {
                if p.procs > 1 {
                    g.workers = Workers::start(multi::rust_commands(targets, src_ips, p)?, cpus)?;
                }
                g.handles = spawn_clients(&g.sh);
                g.local = p.local_conns();
            }
            Generator::Node => {
                g.workers = Workers::start(node::commands(targets, src_ips, p)?, cpus)?;
                g.threads = p.procs;
            }
        }
        g.pids = g.workers.pids();
        Ok(g)
    }

    fn node(&self) -> bool {
        self.sh.params.generator == Generator::Node
    }

    /// A meter snapshot: the client's CPU is the generator processes', plus this process's
    /// with the Rust generator (its client threads run here).
    pub fn meter(&self, srvs: &[Server]) -> Meter {
        meter::meter(srvs, &self.pids, !self.node())
    }

    /// Runs the connect ramp: connection i at i / rate from now (in whichever process opens
    /// it), until every connection connected or failed (fanout: and the sender is up) or the
    /// budget (ramp length + 15 s) ran out.
    pub fn ramp(&mut self) -> Ramped {
        let (sh, p) = (&self.sh, &self.sh.params);
        sh.start_ramp(Duration::from_millis(5));
        self.workers.send("ramp");
        let n = self.local;
        // the arrival schedule is global (connection i at i / rate), whichever process opens it
        let ramp_len = Duration::from_secs_f64(p.conns as f64 / p.rate);
        let budget = ramp_len + Duration::from_secs(15);
        let local_sender = p.scenario == Scenario::Fanout && !self.node();
        let mut pr = Progress::new(&format!("{} ramp", p.scenario.name()), ramp_len);
        let local_done = wait_until(Instant::now() + budget, || {
            let ok = sh.connected.load(Ordering::Relaxed);
            pr.tick(&format!("{ok}/{n} connected"));
            ok + sh.failed.load(Ordering::Acquire) >= n
                && (!local_sender
                    || sh.sender_ready.load(Ordering::Acquire)
                    || sh.sender_failed.load(Ordering::Acquire))
        });
        pr.finish();
        let (w_ok, w_failed) = self.workers.ramped();
        let connected = sh.connected.load(Ordering::Acquire) + w_ok;
        let failed = sh.failed.load(Ordering::Acquire) + w_failed;
        Ramped {
            connected,
            done: local_done && connected + failed >= p.conns,
            budget,
        }
    }

    /// Starts the measured phase everywhere.
    pub fn go(&mut self) {
        let sh = &self.sh;
        sh.go_ns
            .store(sh.base.elapsed().as_nanos() as u64, Ordering::Release);
        self.workers.send("go");
        sh.go.store(true, Ordering::Release);
    }

    /// fanout: (deliveries so far, the sender is done, the sender failed).
    pub fn fanout_progress(&mut self) -> (u64, bool, bool) {
        let sh = &self.sh;
        let mut s = (
            sh.delivered.load(Ordering::Acquire),
            sh.sender_done.load(Ordering::Acquire),
            sh.sender_failed.load(Ordering::Acquire),
        );
        if self.node() {
            match self.workers.status() {
                Some((n, done, failed)) => {
                    s = (s.0 + n, s.1 || done, s.2 || failed);
                }
                None => s.2 = true, // a generator process is gone
            }
        }
        s
    }

    /// fanout: waits for every delivery (`expected`), or until 10 s after the sender is done or
    /// failed, or `hard`. Node processes are asked every 20 ms.
    pub fn wait_deliveries(&mut self, expected: u64, hard: Instant) {
        let mut done_at: Option<Instant> = None;
        let step = if self.node() {
            Duration::from_millis(20)
        } else {
            Duration::from_millis(1)
        };
        while Instant::now() < hard {
            let (n, done, failed) = self.fanout_progress();
            if n >= expected && done {
                return;
            }
            if done || failed {
                let d = *done_at.get_or_insert_with(Instant::now);
                if d.elapsed() > Duration::from_secs(10) {
                    return;
                }
            }
            std::thread::sleep(step);
        }
    }

    /// echo-open: waits until every connection's schedule is over and its echoes answered, up
    /// to `timeout`.
    pub fn drain(&mut self, timeout: Duration) {
        if self.node() {
            self.workers.drain(timeout);
        } else {
            let sh = &self.sh;
            wait_until(Instant::now() + timeout, || {
                sh.finished.load(Ordering::Acquire) >= sh.connected.load(Ordering::Acquire)
            });
        }
    }

    /// Stops the run (STOP to the client threads, `stop` to the processes) and merges what
    /// every thread and process measured.
    pub fn finish(mut self) -> Finished {
        self.sh.stop.store(true, Ordering::Release);
        let handles = std::mem::take(&mut self.handles);
        let mut out = merge(handles.into_iter().filter_map(|h| h.join().ok()).collect());
        let wo = self.workers.finish(&mut out);
        if let Some(e) = wo.first_error {
            let _ = self.sh.first_error.set(e);
        }
        Finished {
            out,
            failed: self.sh.failed.load(Ordering::Acquire) + wo.failed,
            dropped: self.sh.dropped.load(Ordering::Acquire) + wo.dropped,
        }
    }
}
