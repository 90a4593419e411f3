//! The thread-per-core client runner of the Rust generator: N client threads, each with its own
//! monoio runtime, connections split between them (connection i on thread i % N). The
//! coordinator drives them through the atomics of `Shared`; each thread hands back a
//! `ThreadOut`.

use super::hist::{hist, us};
use super::params::{is_poller, server_of, src_addr, Params, Scenario, Target};
use super::{floor_tasks, more, tasks};
use crate::client::{Conn, Registry};
use hdrhistogram::Histogram;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// State shared between the coordinator and the client threads.
pub struct Shared {
    /// the server addresses; connection i goes to `targets[server_of(i, len)]`
    pub targets: Vec<Target>,
    /// source addresses in use (0: no bind), resolved from `params.src_ips`
    pub src_ips: usize,
    pub params: Params,
    /// the connect ramp's start: `base` + this many ns (set before `ramp`)
    pub base: Instant,
    pub ramp_start_ns: AtomicU64,
    pub ramp: AtomicBool,
    pub go: AtomicBool,
    pub stop: AtomicBool,
    pub connected: AtomicUsize,
    pub failed: AtomicUsize,
    pub dropped: AtomicUsize,
    pub delivered: AtomicU64,
    pub sender_ready: AtomicBool,
    pub sender_done: AtomicBool,
    pub sender_failed: AtomicBool,
    pub first_error: OnceLock<String>,
    /// echo-open: GO instant (ns after `base`), tasks done with their schedule
    pub go_ns: AtomicU64,
    pub finished: AtomicUsize,
}

impl Shared {
    /// Fresh state for a run against `targets` from `src_ips` source addresses.
    pub fn new(targets: Vec<Target>, src_ips: usize, params: Params) -> Shared {
        Shared {
            targets,
            src_ips,
            params,
            base: Instant::now(),
            ramp_start_ns: AtomicU64::new(0),
            ramp: AtomicBool::new(false),
            go: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            connected: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            dropped: AtomicUsize::new(0),
            delivered: AtomicU64::new(0),
            sender_ready: AtomicBool::new(false),
            sender_done: AtomicBool::new(false),
            sender_failed: AtomicBool::new(false),
            first_error: OnceLock::new(),
            go_ns: AtomicU64::new(0),
            finished: AtomicUsize::new(0),
        }
    }
    pub fn note_error(&self, e: &std::io::Error) {
        let _ = self.first_error.set(e.to_string());
    }
    pub fn target(&self, i: usize) -> &Target {
        &self.targets[server_of(i, self.targets.len())]
    }
    pub fn src(&self, i: usize) -> Option<IpAddr> {
        src_addr(i, self.targets.len(), self.src_ips).map(IpAddr::V4)
    }
    /// Starts the connect ramp `delay` from now.
    pub fn start_ramp(&self, delay: Duration) {
        let at = self.base.elapsed() + delay;
        self.ramp_start_ns
            .store(at.as_nanos() as u64, Ordering::Release);
        self.ramp.store(true, Ordering::Release);
    }
}

/// Records the outcome of one closed-loop round trip started at `t`: its latency, or a failure
/// (the connection is then lost: false, and the task ends). Nothing counts once the run stops.
pub fn record_round_trip<T>(
    sh: &Shared,
    out: &RefCell<ThreadOut>,
    t: Instant,
    r: std::io::Result<T>,
) -> bool {
    match r {
        Ok(_) => {
            if !sh.stop.load(Ordering::Relaxed) {
                let mut o = out.borrow_mut();
                let _ = o.rtt.record(us(t.elapsed()));
                o.ops += 1;
            }
            true
        }
        Err(e) => {
            if !sh.stop.load(Ordering::Acquire) {
                sh.note_error(&e);
                sh.dropped.fetch_add(1, Ordering::AcqRel);
                out.borrow_mut().failures += 1;
            }
            false
        }
    }
}

/// What one client thread (or generator process) hands back.
pub struct ThreadOut {
    pub connect: Histogram<u64>,
    pub rtt: Histogram<u64>,
    pub ops: u64,
    pub failures: u64,
    /// fanout: (seq, receive instant) per delivery to a receiver
    pub recv: Vec<(u64, Instant)>,
    /// fanout: (seq, slot, the slot's first send instant, ack rtt from it) per `bcast` message
    /// (thread 0 only)
    pub sends: Vec<(u64, usize, Instant, Duration)>,
    /// polling-mix: long-polling round trips
    pub rtt2: Histogram<u64>,
    pub ops2: u64,
    /// echo-open: sends more than 5 ms behind schedule, requests never answered
    pub late: u64,
    pub unanswered: u64,
}

pub fn new_out() -> ThreadOut {
    ThreadOut {
        connect: hist(),
        rtt: hist(),
        ops: 0,
        failures: 0,
        recv: Vec::new(),
        sends: Vec::new(),
        rtt2: hist(),
        ops2: 0,
        late: 0,
        unanswered: 0,
    }
}

pub fn merge(outs: Vec<ThreadOut>) -> ThreadOut {
    let mut m = new_out();
    for o in outs {
        let _ = m.connect.add(&o.connect);
        let _ = m.rtt.add(&o.rtt);
        m.ops += o.ops;
        m.failures += o.failures;
        m.recv.extend(o.recv);
        m.sends.extend(o.sends);
        let _ = m.rtt2.add(&o.rtt2);
        m.ops2 += o.ops2;
        m.late += o.late;
        m.unanswered += o.unanswered;
    }
    m
}

pub async fn open(sh: &Shared, i: usize, reg: &Registry) -> std::io::Result<Conn> {
    let t = sh.target(i);
    let conn = Conn::connect(t.addr, sh.src(i), &t.host_header, Some(reg), i as u64);
    crate::client::within(CONNECT_TIMEOUT, "connect + handshake timed out", conn).await
}

/// Connects connection `i` during the ramp and counts it; None (counted as failed) on error.
pub async fn connect_counted(
    sh: &Shared,
    i: usize,
    reg: &Registry,
    out: &Rc<RefCell<ThreadOut>>,
) -> Option<Conn> {
    let t0 = Instant::now();
    match open(sh, i, reg).await {
        Ok(c) => {
            let _ = out.borrow_mut().connect.record(us(t0.elapsed()));
            sh.connected.fetch_add(1, Ordering::AcqRel);
            Some(c)
        }
        Err(e) => {
            sh.note_error(&e);
            sh.failed.fetch_add(1, Ordering::AcqRel);
            out.borrow_mut().failures += 1;
            None
        }
    }
}

pub async fn wait_flag(f: &AtomicBool, stop: &AtomicBool) {
    while !f.load(Ordering::Acquire) && !stop.load(Ordering::Acquire) {
        monoio::time::sleep(Duration::from_millis(2)).await;
    }
}

type Task = Pin<Box<dyn Future<Output = ()>>>;

/// The task of connection `i`, and whether it is a closed loop (it notices STOP by itself and
/// gets a grace period to finish its round trip).
fn task_of(
    sh: &Arc<Shared>,
    i: usize,
    reg: &Registry,
    out: &Rc<RefCell<ThreadOut>>,
) -> (Task, bool) {
    let p = &sh.params;
    let (sh, reg, out) = (sh.clone(), reg.clone(), out.clone());
    match (p.scenario, p.floor) {
        (Scenario::Echo, false) if p.is_echoer(i) => {
            (Box::pin(tasks::echoer(sh, i, reg, out)), true)
        }
        (Scenario::PollingMix, false) if is_poller(i) => {
            (Box::pin(more::poller(sh, i, reg, out)), true)
        }
        (Scenario::PollingMix, false) => (Box::pin(tasks::echoer(sh, i, reg, out)), true),
        (Scenario::EchoOpen, false) => (Box::pin(more::open_echoer(sh, i, reg, out)), false),
        (Scenario::Churn, false) => (Box::pin(more::churner(sh, i, reg, out)), true),
        (Scenario::Rooms, false) => (Box::pin(more::roomer(sh, i, reg, out)), true),
        (_, false) => (Box::pin(tasks::reader(sh, i, reg, out)), false),
        (Scenario::Echo, true) => (Box::pin(floor_tasks::floor_echoer(sh, i, reg, out)), true),
        (_, true) => (Box::pin(floor_tasks::floor_reader(sh, i, reg, out)), false),
    }
}

/// Counts the tasks of one client thread that are still running (`loops`: the closed loops).
#[derive(Clone, Default)]
struct Active {
    all: Rc<Cell<usize>>,
    loops: Rc<Cell<usize>>,
}

impl Active {
    fn spawn(&self, fut: Task, looped: bool) {
        let me = self.clone();
        me.all.set(me.all.get() + 1);
        if looped {
            me.loops.set(me.loops.get() + 1);
        }
        monoio::spawn(async move {
            fut.await;
            me.all.set(me.all.get() - 1);
            if looped {
                me.loops.set(me.loops.get() - 1);
            }
        });
    }

    /// Waits while `cell` is above 0, up to `d`.
    async fn wait(cell: &Cell<usize>, d: Duration) {
        let end = Instant::now() + d;
        while cell.get() > 0 && Instant::now() < end {
            monoio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn client_thread(t: usize, sh: Arc<Shared>) -> ThreadOut {
    let p = sh.params.clone();
    let reg = Registry::default();
    let out = Rc::new(RefCell::new(new_out()));
    let active = Active::default();
    wait_flag(&sh.ramp, &sh.stop).await;
    let start = sh.base + Duration::from_nanos(sh.ramp_start_ns.load(Ordering::Acquire));
    let mut i = p.proc_index + p.procs * t;
    while i < p.conns {
        if sh.stop.load(Ordering::Acquire) {
            break;
        }
        let slot = start + Duration::from_secs_f64(i as f64 / p.rate);
        let now = Instant::now();
        if slot > now {
            monoio::time::sleep(slot - now).await;
        }
        let (task, looped) = task_of(&sh, i, &reg, &out);
        active.spawn(task, looped);
        i += p.threads * p.procs;
    }
    if p.scenario == Scenario::Fanout && t == 0 && p.proc_index == 0 {
        let (sh2, reg2, out2) = (sh.clone(), reg.clone(), out.clone());
        if p.floor {
            active.spawn(Box::pin(floor_tasks::floor_sender(sh2, reg2, out2)), false);
        } else {
            active.spawn(Box::pin(tasks::sender(sh2, reg2, out2)), false);
        }
    }
    wait_flag(&sh.stop, &sh.stop).await;
    // let closed-loop tasks notice STOP, then cut whatever still waits on a read
    Active::wait(&active.loops, Duration::from_secs(2)).await;
    reg.shutdown_all();
    Active::wait(&active.all, Duration::from_secs(5)).await;
    let r = std::mem::replace(&mut *out.borrow_mut(), new_out());
    r
}

/// Starts the client threads of this process (pinned to `params.client_cpus` when set).
pub fn spawn_clients(sh: &Arc<Shared>) -> Vec<std::thread::JoinHandle<ThreadOut>> {
    (0..sh.params.threads)
        .map(|t| {
            let sh = sh.clone();
            std::thread::Builder::new()
                .name(format!("client-{t}"))
                .spawn(move || {
                    if let Some(cpus) = &sh.params.client_cpus {
                        if let Err(e) = crate::pin::set_current_thread(cpus) {
                            eprintln!("loadtest: client-{t}: cannot pin: {e}");
                        }
                    }
                    let mut rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
                        .enable_timer()
                        .with_entries(4096)
                        .build()
                        .expect("monoio runtime");
                    rt.block_on(client_thread(t, sh))
                })
                .expect("spawn client thread")
        })
        .collect()
}
