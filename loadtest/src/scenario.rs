//! The scenarios (idle, echo, fanout) on a thread-per-core client runner: N client threads, each
//! with its own monoio runtime, connections split between them (connection i on thread i % N).
//! The main thread only coordinates (through atomics) and samples the server's /proc figures at
//! phase boundaries.

use crate::client::{Conn, Msg, Registry};
use crate::report::{Better, PlotData, Row, RunResult};
use crate::server::{self, ProcSample, Server};
use hdrhistogram::Histogram;
use std::cell::{Cell, RefCell};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

mod more;
pub mod multi;

/// Which scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    Idle,
    Echo,
    Fanout,
    /// open loop: a fixed total echo+ack rate, latency from the scheduled send time
    EchoOpen,
    /// connect / one echo+ack / disconnect, again and again
    Churn,
    /// join room k / bcast to room k / leave room k loops
    Rooms,
    /// closed-loop echo with 5% of the connections on HTTP long-polling
    PollingMix,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Idle => "idle",
            Scenario::Echo => "echo",
            Scenario::Fanout => "fanout",
            Scenario::EchoOpen => "echo-open",
            Scenario::Churn => "churn",
            Scenario::Rooms => "rooms",
            Scenario::PollingMix => "polling-mix",
        }
    }

    /// Whether the raw-TCP floor has a variant of this scenario.
    pub fn has_floor(self) -> bool {
        matches!(self, Scenario::Idle | Scenario::Echo | Scenario::Fanout)
    }
}

/// Parameters of one scenario run.
#[derive(Debug, Clone)]
pub struct Params {
    pub scenario: Scenario,
    pub conns: usize,
    /// connection arrival rate (per second) of the connect ramp
    pub rate: f64,
    /// idle: hold time
    pub hold: Duration,
    /// echo: measured duration
    pub duration: Duration,
    /// echo: payload string length
    pub payload_len: usize,
    /// fanout: broadcasts and their spacing
    pub broadcasts: usize,
    pub interval: Duration,
    /// fanout: `bcast` messages per slot, sent back to back (acks collected afterwards)
    pub burst: usize,
    pub threads: usize,
    /// echo-open: total echo+ack rate per second
    pub open_rate: f64,
    /// rooms: number of rooms the connections cycle through
    pub rooms: usize,
    /// run the raw-TCP floor variant of the scenario (against `loadtest floor-server`)
    pub floor: bool,
    /// generator processes (`--procs`) and this process's index: it opens connection i when
    /// i % procs == proc_index
    pub procs: usize,
    pub proc_index: usize,
    /// server processes (`--servers`): connection i goes to server i % servers
    pub servers: usize,
    /// client source addresses (`--src-ips`): None = automatic (see `auto_src_ips`); 0 = no
    /// bind (the kernel picks the source); N = 127.0.0.2 ..= 127.0.0.(1+N)
    pub src_ips: Option<usize>,
}

/// How many of `conns` connections process `k` of `procs` opens (those with i % procs == k).
/// Also how many of them server `k` of `procs` servers gets (connection i on server i % procs).
pub fn local_count(conns: usize, procs: usize, k: usize) -> usize {
    (conns + procs - 1).saturating_sub(k) / procs
}

/// The server process (index into the targets) connection `i` goes to: round robin, the same
/// in every generator process.
pub fn server_of(i: usize, servers: usize) -> usize {
    i % servers.max(1)
}

/// Descriptors a process keeps for itself besides its connections (listeners, io_uring, pipes,
/// logs, ...).
pub const FD_SPARE: u64 = 64;

/// Whether a process holding `slice` connections (plus one: a fan-out sender or a listener)
/// stays under the open-file limit `nofile` with `FD_SPARE` descriptors to spare.
pub fn fits_fd_limit(slice: usize, nofile: u64) -> bool {
    (slice as u64 + 1) + FD_SPARE <= nofile
}

/// Most source addresses `--src-ips` can use: 127.0.0.2 ..= 127.0.0.255.
pub const MAX_SRC_IPS: usize = 254;

/// Connections to one server address (ip, port) from one source address above which the
/// automatic `--src-ips` spreads them over more source addresses. The ephemeral port range
/// (32768-60999: 28,232 ports) bounds the connections of one (source ip, destination ip,
/// destination port), but connect() picks even ports first (14,116 of them) and, once those are
/// taken, scans them all (`__inet_hash_connect` / `__inet_check_established`) before each odd
/// one: measured on the 2-vCPU VM, 17,000 connections to one server at 5,000/s from one source
/// address took 9.6 s of client kernel time and a 3.2 s connect p99, from 2 addresses (8,500
/// each) 4.4 s and 39 ms.
pub const CONNS_PER_SRC_IP: usize = 5_000;

/// The automatic `--src-ips` for `per_server` connections to the busiest server address: one
/// source address per started `CONNS_PER_SRC_IP` connections (at least 1).
pub fn auto_src_ips(per_server: usize) -> usize {
    per_server.div_ceil(CONNS_PER_SRC_IP).clamp(1, MAX_SRC_IPS)
}

/// The source address of connection `i` with `servers` server processes and `src_ips` source
/// addresses (0: none, the kernel's choice): 127.0.0.(2 + j), j the connection's index among
/// those of its server modulo `src_ips`, so that every server sees all source addresses evenly
/// whatever `servers` and `src_ips` are.
pub fn src_addr(i: usize, servers: usize, src_ips: usize) -> Option<Ipv4Addr> {
    if src_ips == 0 {
        return None;
    }
    let j = (i / servers.max(1)) % src_ips.min(MAX_SRC_IPS);
    Some(Ipv4Addr::new(127, 0, 0, 2 + j as u8))
}

/// One server address the clients connect to.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub host_header: String,
}

impl Params {
    /// The connections this process opens.
    pub fn local_conns(&self) -> usize {
        local_count(self.conns, self.procs, self.proc_index)
    }

    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::json!({
            "scenario": self.scenario.name(),
            "conns": self.conns,
            "connect_rate_per_s": self.rate,
            "client_threads": self.threads,
            "floor": self.floor,
            "generator_procs": self.procs,
            "server_procs": self.servers,
            "src_ips": self.src_ips,
        });
        let o = m.as_object_mut().expect("object");
        match self.scenario {
            Scenario::Idle => {
                o.insert("hold_s".into(), self.hold.as_secs_f64().into());
            }
            Scenario::Echo | Scenario::PollingMix => {
                o.insert("duration_s".into(), self.duration.as_secs_f64().into());
                o.insert("payload_len".into(), self.payload_len.into());
                o.insert("in_flight_per_conn".into(), 1.into());
                if self.scenario == Scenario::PollingMix {
                    o.insert("polling_conns".into(), polling_count(self.conns).into());
                }
            }
            Scenario::EchoOpen => {
                o.insert("duration_s".into(), self.duration.as_secs_f64().into());
                o.insert("payload_len".into(), self.payload_len.into());
                o.insert("rate_per_s".into(), self.open_rate.into());
            }
            Scenario::Churn => {
                o.insert("duration_s".into(), self.duration.as_secs_f64().into());
                o.insert("slots".into(), self.conns.into());
            }
            Scenario::Rooms => {
                o.insert("duration_s".into(), self.duration.as_secs_f64().into());
                o.insert("rooms".into(), self.rooms.into());
            }
            Scenario::Fanout => {
                o.insert("broadcasts".into(), self.broadcasts.into());
                o.insert("burst".into(), self.burst.into());
                o.insert(
                    "interval_ms".into(),
                    (self.interval.as_secs_f64() * 1000.0).into(),
                );
            }
        }
        m
    }

    pub fn describe(&self) -> String {
        let what = match self.scenario {
            Scenario::Idle => format!(
                "{} conns at {}/s, hold {} s",
                self.conns,
                self.rate,
                self.hold.as_secs_f64()
            ),
            Scenario::Echo => format!(
                "{} conns x 1 echo+ack in flight, {} s, {}-byte string",
                self.conns,
                self.duration.as_secs_f64(),
                self.payload_len
            ),
            Scenario::Fanout if self.burst > 1 => format!(
                "{} receivers + 1 sender, {} slots every {} ms x {} bcast back to back",
                self.conns,
                self.broadcasts,
                self.interval.as_millis(),
                self.burst
            ),
            Scenario::Fanout => format!(
                "{} receivers + 1 sender, {} bcast every {} ms",
                self.conns,
                self.broadcasts,
                self.interval.as_millis()
            ),
            Scenario::EchoOpen => format!(
                "{} echo+ack/s fixed rate over {} conns, {} s, {}-byte string",
                self.open_rate,
                self.conns,
                self.duration.as_secs_f64(),
                self.payload_len
            ),
            Scenario::Churn => format!(
                "{} slots x (connect, echo+ack, disconnect) loop, {} s",
                self.conns,
                self.duration.as_secs_f64()
            ),
            Scenario::Rooms => format!(
                "{} conns x (join rK, bcast rK, leave rK) loop over {} rooms, {} s",
                self.conns,
                self.rooms,
                self.duration.as_secs_f64()
            ),
            Scenario::PollingMix => format!(
                "{} conns x 1 echo+ack in flight ({} on HTTP long-polling), {} s",
                self.conns,
                polling_count(self.conns),
                self.duration.as_secs_f64()
            ),
        };
        let what = if !self.floor {
            what
        } else {
            match self.scenario {
                Scenario::Echo => format!(
                    "{what} -> raw TCP echo of {} bytes",
                    crate::floor::echo_msg_len(self.payload_len)
                ),
                Scenario::Fanout => format!(
                    "{what} -> raw {}-byte frame to every receiver",
                    crate::floor::FRAME_LEN
                ),
                _ => format!("{what} -> raw TCP"),
            }
        };
        let what = if self.servers > 1 {
            format!("{what}, {} server processes", self.servers)
        } else {
            what
        };
        let what = match self.src_ips {
            Some(n) if n > 1 => format!("{what}, {n} client source addresses"),
            _ => what,
        };
        if self.procs > 1 {
            format!(
                "{what}, {} processes x {} client threads",
                self.procs, self.threads
            )
        } else {
            format!("{what}, {} client threads", self.threads)
        }
    }
}

/// polling-mix: connection i uses long-polling when i % 20 == 19 (5%).
fn is_poller(i: usize) -> bool {
    i % 20 == 19
}

fn polling_count(conns: usize) -> usize {
    (0..conns).filter(|i| is_poller(*i)).count()
}

/// State shared between the coordinator and the client threads.
struct Shared {
    /// the server addresses; connection i goes to `targets[server_of(i, len)]`
    targets: Vec<Target>,
    /// source addresses in use (0: no bind), resolved from `params.src_ips`
    src_ips: usize,
    params: Params,
    /// the connect ramp's start: `base` + this many ns (set before `ramp`)
    base: Instant,
    ramp_start_ns: AtomicU64,
    ramp: AtomicBool,
    go: AtomicBool,
    stop: AtomicBool,
    connected: AtomicUsize,
    failed: AtomicUsize,
    dropped: AtomicUsize,
    delivered: AtomicU64,
    sender_ready: AtomicBool,
    sender_done: AtomicBool,
    sender_failed: AtomicBool,
    first_error: OnceLock<String>,
    /// echo-open: GO instant (ns after `base`), tasks done with their schedule
    go_ns: AtomicU64,
    finished: AtomicUsize,
}

impl Shared {
    /// Fresh state for a run against `targets` from `src_ips` source addresses.
    fn new(targets: Vec<Target>, src_ips: usize, params: Params) -> Shared {
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
    fn note_error(&self, e: &std::io::Error) {
        let _ = self.first_error.set(e.to_string());
    }
    fn target(&self, i: usize) -> &Target {
        &self.targets[server_of(i, self.targets.len())]
    }
    fn src(&self, i: usize) -> Option<IpAddr> {
        src_addr(i, self.targets.len(), self.src_ips).map(IpAddr::V4)
    }
}

/// What one client thread hands back.
struct ThreadOut {
    connect: Histogram<u64>,
    rtt: Histogram<u64>,
    ops: u64,
    failures: u64,
    /// fanout: (seq, receive instant) per delivery to a receiver
    recv: Vec<(u64, Instant)>,
    /// fanout: (seq, slot, the slot's first send instant, ack rtt from it) per `bcast` message
    /// (thread 0 only)
    sends: Vec<(u64, usize, Instant, Duration)>,
    /// polling-mix: long-polling round trips
    rtt2: Histogram<u64>,
    ops2: u64,
    /// echo-open: sends more than 5 ms behind schedule, requests never answered
    late: u64,
    unanswered: u64,
}

fn hist() -> Histogram<u64> {
    // microseconds, up to 10 minutes, 3 significant digits
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds")
}

fn new_out() -> ThreadOut {
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

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Microseconds for a histogram (at least 1: HDR histograms take no zeros).
fn us(d: Duration) -> u64 {
    d.as_micros().max(1) as u64
}

async fn open(sh: &Shared, i: usize, reg: &Registry) -> std::io::Result<Conn> {
    let t = sh.target(i);
    match monoio::time::timeout(
        CONNECT_TIMEOUT,
        Conn::connect(t.addr, sh.src(i), &t.host_header, Some(reg), i as u64),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "connect + handshake timed out",
        )),
    }
}

/// Connects connection `i` during the ramp and counts it; None (counted as failed) on error.
async fn connect_counted(
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

async fn wait_flag(f: &AtomicBool, stop: &AtomicBool) {
    while !f.load(Ordering::Acquire) && !stop.load(Ordering::Acquire) {
        monoio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Receiver task (idle and fanout): connect, then read until the connection ends; fanout
/// deliveries are recorded.
async fn reader(sh: Arc<Shared>, i: usize, reg: Registry, out: Rc<RefCell<ThreadOut>>) {
    let Some(mut conn) = connect_counted(&sh, i, &reg, &out).await else {
        return;
    };
    loop {
        match conn.next().await {
            Ok(Msg::Event { b_seq: Some(seq) }) => {
                out.borrow_mut().recv.push((seq, Instant::now()));
                sh.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Msg::Disconnect) => {
                if !sh.stop.load(Ordering::Acquire) {
                    sh.dropped.fetch_add(1, Ordering::AcqRel);
                }
                return;
            }
            Ok(_) => {}
            Err(e) => {
                if !sh.stop.load(Ordering::Acquire) {
                    sh.note_error(&e);
                    sh.dropped.fetch_add(1, Ordering::AcqRel);
                }
                return;
            }
        }
    }
}

/// Echo task: connect, wait for GO, then keep one echo+ack in flight until STOP.
async fn echoer(sh: Arc<Shared>, i: usize, reg: Registry, out: Rc<RefCell<ThreadOut>>) {
    let Some(mut conn) = connect_counted(&sh, i, &reg, &out).await else {
        return;
    };
    wait_flag(&sh.go, &sh.stop).await;
    let body = format!("[\"echo\",\"{}\"]", "x".repeat(sh.params.payload_len));
    while !sh.stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        let r = async {
            let id = conn.emit_with_ack(&body).await?;
            conn.wait_ack(id).await
        }
        .await;
        match r {
            Ok(_) => {
                if !sh.stop.load(Ordering::Relaxed) {
                    let mut o = out.borrow_mut();
                    let _ = o.rtt.record(us(t.elapsed()));
                    o.ops += 1;
                }
            }
            Err(e) => {
                if !sh.stop.load(Ordering::Acquire) {
                    sh.note_error(&e);
                    sh.dropped.fetch_add(1, Ordering::AcqRel);
                    out.borrow_mut().failures += 1;
                }
                return;
            }
        }
    }
    conn.close().await;
}

/// Fanout sender (thread 0): every interval, `burst` x `bcast` null back to back (distinct ack
/// ids, acks collected afterwards), then the next slot.
async fn sender(sh: Arc<Shared>, reg: Registry, out: Rc<RefCell<ThreadOut>>) {
    let idx = sh.params.conns; // an index past the receivers
    let mut conn = match open(&sh, idx, &reg).await {
        Ok(c) => c,
        Err(e) => {
            sh.note_error(&e);
            sh.sender_failed.store(true, Ordering::Release);
            return;
        }
    };
    sh.sender_ready.store(true, Ordering::Release);
    wait_flag(&sh.go, &sh.stop).await;
    let burst = sh.params.burst.max(1);
    let start = Instant::now();
    let mut ids = Vec::with_capacity(burst);
    for k in 0..sh.params.broadcasts {
        let slot = start + sh.params.interval * k as u32;
        let now = Instant::now();
        if slot > now {
            monoio::time::sleep(slot - now).await;
        }
        if sh.stop.load(Ordering::Acquire) {
            break;
        }
        let t = Instant::now();
        ids.clear();
        let r: std::io::Result<Vec<(u64, Duration)>> = async {
            for _ in 0..burst {
                ids.push(conn.emit_with_ack("[\"bcast\",null]").await?);
            }
            let mut got = Vec::with_capacity(burst);
            while got.len() < burst {
                match conn.next().await? {
                    Msg::Ack { id, num } if ids.contains(&id) => {
                        let Some(seq) = num else {
                            return Err(std::io::Error::other("bcast ack without a numeric seq"));
                        };
                        got.push((seq, t.elapsed()));
                    }
                    Msg::Disconnect => {
                        return Err(std::io::Error::other("disconnected by server"));
                    }
                    _ => {}
                }
            }
            Ok(got)
        }
        .await;
        match r {
            Ok(got) => {
                let mut o = out.borrow_mut();
                for (seq, rtt) in got {
                    o.sends.push((seq, k, t, rtt));
                }
            }
            Err(e) => {
                sh.note_error(&e);
                sh.sender_failed.store(true, Ordering::Release);
                break;
            }
        }
    }
    sh.sender_done.store(true, Ordering::Release);
    // stay connected (and drain our own `b` copies) until the run stops
    while !sh.stop.load(Ordering::Acquire) {
        if conn.next().await.is_err() {
            break;
        }
    }
}

/// A raw TCP connection to the floor server, registered for shutdown.
struct RawConn {
    s: monoio::net::TcpStream,
    reg: Registry,
    key: u64,
}

impl Drop for RawConn {
    fn drop(&mut self) {
        self.reg.deregister(self.key);
    }
}

/// Connects to the floor server and says what this connection is (`E`, `R`, `S`); returns once
/// the server answered `K`.
async fn floor_open(sh: &Shared, i: usize, reg: &Registry, kind: u8) -> std::io::Result<RawConn> {
    use monoio::io::{AsyncReadRentExt, AsyncWriteRentExt};
    let fut = async {
        let mut s = crate::client::tcp_connect(sh.target(i).addr, sh.src(i)).await?;
        let (r, _) = s.write_all(vec![kind]).await;
        r?;
        let (r, b) = s.read_exact(Vec::with_capacity(1)).await;
        r?;
        if b[0] != b'K' {
            return Err(std::io::Error::other("floor server: bad hello answer"));
        }
        Ok(s)
    };
    let s = match monoio::time::timeout(CONNECT_TIMEOUT, fut).await {
        Ok(r) => r?,
        Err(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connect + hello timed out",
            ))
        }
    };
    reg.register(i as u64, std::os::fd::AsRawFd::as_raw_fd(&s));
    Ok(RawConn {
        s,
        reg: reg.clone(),
        key: i as u64,
    })
}

async fn floor_connect(
    sh: &Shared,
    i: usize,
    reg: &Registry,
    out: &Rc<RefCell<ThreadOut>>,
    kind: u8,
) -> Option<RawConn> {
    let t0 = Instant::now();
    match floor_open(sh, i, reg, kind).await {
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

/// Floor echo: one raw message of the echo request's size in flight, read back whole.
async fn floor_echoer(sh: Arc<Shared>, i: usize, reg: Registry, out: Rc<RefCell<ThreadOut>>) {
    use monoio::io::{AsyncReadRentExt, AsyncWriteRentExt};
    let Some(mut c) = floor_connect(&sh, i, &reg, &out, b'E').await else {
        return;
    };
    wait_flag(&sh.go, &sh.stop).await;
    let len = crate::floor::echo_msg_len(sh.params.payload_len);
    let mut wbuf = vec![b'x'; len];
    let mut rbuf = Vec::with_capacity(len);
    while !sh.stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        let (r, b) = c.s.write_all(wbuf).await;
        wbuf = b;
        let r = match r {
            Ok(_) => {
                rbuf.clear();
                let (r, b) = c.s.read_exact(rbuf).await;
                rbuf = b;
                r
            }
            Err(e) => Err(e),
        };
        match r {
            Ok(_) => {
                if !sh.stop.load(Ordering::Relaxed) {
                    let mut o = out.borrow_mut();
                    let _ = o.rtt.record(us(t.elapsed()));
                    o.ops += 1;
                }
            }
            Err(e) => {
                if !sh.stop.load(Ordering::Acquire) {
                    sh.note_error(&e);
                    sh.dropped.fetch_add(1, Ordering::AcqRel);
                    out.borrow_mut().failures += 1;
                }
                return;
            }
        }
    }
}

/// Floor fan-out receiver: reads 42-byte frames, records each seq.
async fn floor_reader(sh: Arc<Shared>, i: usize, reg: Registry, out: Rc<RefCell<ThreadOut>>) {
    use crate::floor::{frame_seq, FRAME_LEN};
    use monoio::io::AsyncReadRent;
    let Some(mut c) = floor_connect(&sh, i, &reg, &out, b'R').await else {
        return;
    };
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = Vec::with_capacity(4096);
    loop {
        let (r, b) = c.s.read(buf).await;
        match r {
            Ok(n) if n > 0 => {}
            Ok(_) => {
                if !sh.stop.load(Ordering::Acquire) {
                    sh.dropped.fetch_add(1, Ordering::AcqRel);
                }
                return;
            }
            Err(e) => {
                if !sh.stop.load(Ordering::Acquire) {
                    sh.note_error(&e);
                    sh.dropped.fetch_add(1, Ordering::AcqRel);
                }
                return;
            }
        }
        let now = Instant::now();
        pending.extend_from_slice(&b);
        let mut at = 0;
        while pending.len() - at >= FRAME_LEN {
            if let Some(seq) = frame_seq(&pending[at..at + FRAME_LEN]) {
                out.borrow_mut().recv.push((seq, now));
                sh.delivered.fetch_add(1, Ordering::Relaxed);
            }
            at += FRAME_LEN;
        }
        pending.drain(..at);
        buf = b;
        buf.clear();
    }
}

/// Floor fan-out trigger (thread 0): every interval, `burst` 8-byte seqs back to back (one
/// write), then their `burst` acks.
async fn floor_sender(sh: Arc<Shared>, reg: Registry, out: Rc<RefCell<ThreadOut>>) {
    use monoio::io::{AsyncReadRentExt, AsyncWriteRentExt};
    let idx = sh.params.conns;
    let mut c = match floor_open(&sh, idx, &reg, b'S').await {
        Ok(c) => c,
        Err(e) => {
            sh.note_error(&e);
            sh.sender_failed.store(true, Ordering::Release);
            return;
        }
    };
    sh.sender_ready.store(true, Ordering::Release);
    wait_flag(&sh.go, &sh.stop).await;
    let burst = sh.params.burst.max(1);
    let start = Instant::now();
    let mut buf = Vec::with_capacity(8 * burst);
    for k in 0..sh.params.broadcasts {
        let slot = start + sh.params.interval * k as u32;
        let now = Instant::now();
        if slot > now {
            monoio::time::sleep(slot - now).await;
        }
        if sh.stop.load(Ordering::Acquire) {
            break;
        }
        let first = (k * burst) as u64 + 1;
        let t = Instant::now();
        buf.clear();
        for q in first..first + burst as u64 {
            buf.extend_from_slice(&q.to_le_bytes());
        }
        let sent = buf.clone();
        let (r, b) = c.s.write_all(buf).await;
        let r = match r {
            Ok(_) => {
                let mut b = b;
                b.clear();
                let (r, b) = c.s.read_exact(b).await;
                buf = b;
                r
            }
            Err(e) => {
                buf = b;
                Err(e)
            }
        };
        let rtt = t.elapsed();
        match r {
            Ok(_) if buf[..8 * burst] == sent[..] => {
                let mut o = out.borrow_mut();
                for q in first..first + burst as u64 {
                    o.sends.push((q, k, t, rtt));
                }
            }
            Ok(_) => {
                sh.note_error(&std::io::Error::other("floor ack with another seq"));
                sh.sender_failed.store(true, Ordering::Release);
                break;
            }
            Err(e) => {
                sh.note_error(&e);
                sh.sender_failed.store(true, Ordering::Release);
                break;
            }
        }
    }
    sh.sender_done.store(true, Ordering::Release);
    wait_flag(&sh.stop, &sh.stop).await;
}

async fn client_thread(t: usize, sh: Arc<Shared>) -> ThreadOut {
    let p = sh.params.clone();
    let reg = Registry::default();
    let out = Rc::new(RefCell::new(new_out()));
    let active = Rc::new(Cell::new(0usize));
    wait_flag(&sh.ramp, &sh.stop).await;
    let start = sh.base + Duration::from_nanos(sh.ramp_start_ns.load(Ordering::Acquire));
    let spawn_tracked = |fut: std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>| {
        let active = active.clone();
        active.set(active.get() + 1);
        monoio::spawn(async move {
            fut.await;
            active.set(active.get() - 1);
        });
    };
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
        let (sh2, reg2, out2) = (sh.clone(), reg.clone(), out.clone());
        match (p.scenario, p.floor) {
            (Scenario::Echo, false) => spawn_tracked(Box::pin(echoer(sh2, i, reg2, out2))),
            (Scenario::PollingMix, false) if is_poller(i) => {
                spawn_tracked(Box::pin(more::poller(sh2, i, reg2, out2)))
            }
            (Scenario::PollingMix, false) => spawn_tracked(Box::pin(echoer(sh2, i, reg2, out2))),
            (Scenario::EchoOpen, false) => {
                spawn_tracked(Box::pin(more::open_echoer(sh2, i, reg2, out2)))
            }
            (Scenario::Churn, false) => spawn_tracked(Box::pin(more::churner(sh2, i, reg2, out2))),
            (Scenario::Rooms, false) => spawn_tracked(Box::pin(more::roomer(sh2, i, reg2, out2))),
            (_, false) => spawn_tracked(Box::pin(reader(sh2, i, reg2, out2))),
            (Scenario::Echo, true) => spawn_tracked(Box::pin(floor_echoer(sh2, i, reg2, out2))),
            (_, true) => spawn_tracked(Box::pin(floor_reader(sh2, i, reg2, out2))),
        }
        i += p.threads * p.procs;
    }
    if p.scenario == Scenario::Fanout && t == 0 && p.proc_index == 0 {
        if p.floor {
            spawn_tracked(Box::pin(floor_sender(sh.clone(), reg.clone(), out.clone())));
        } else {
            spawn_tracked(Box::pin(sender(sh.clone(), reg.clone(), out.clone())));
        }
    }
    wait_flag(&sh.stop, &sh.stop).await;
    // let closed-loop tasks notice STOP, then cut whatever still waits on a read
    let grace = Instant::now() + Duration::from_secs(2);
    let closed_loop = matches!(
        p.scenario,
        Scenario::Echo | Scenario::PollingMix | Scenario::Churn | Scenario::Rooms
    );
    while active.get() > 0 && Instant::now() < grace && closed_loop {
        monoio::time::sleep(Duration::from_millis(5)).await;
    }
    reg.shutdown_all();
    let cap = Instant::now() + Duration::from_secs(5);
    while active.get() > 0 && Instant::now() < cap {
        monoio::time::sleep(Duration::from_millis(5)).await;
    }
    let r = std::mem::replace(&mut *out.borrow_mut(), new_out());
    r
}

fn spawn_clients(sh: &Arc<Shared>) -> Vec<std::thread::JoinHandle<ThreadOut>> {
    (0..sh.params.threads)
        .map(|t| {
            let sh = sh.clone();
            std::thread::Builder::new()
                .name(format!("client-{t}"))
                .spawn(move || {
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

/// A coordinator-side snapshot: server /proc figures, client CPU, machine CPU.
#[derive(Clone, Copy)]
struct Meter {
    srv: Option<ProcSample>,
    client_ns: u64,
    machine: (u64, u64),
    at: Instant,
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

fn meter(srvs: &[Server], workers: &[u32]) -> Meter {
    let wk: u64 = workers
        .iter()
        .filter_map(|&pid| ProcSample::of(pid))
        .map(|x| x.cpu_ns)
        .sum();
    Meter {
        srv: sample_all(srvs),
        client_ns: server::self_cpu_ns() + wk,
        machine: server::machine_cpu(),
        at: Instant::now(),
    }
}

/// CPU figures over a window between two meters.
struct Window {
    wall_s: f64,
    server_cpu_ns: Option<u64>,
    server_cores: Option<f64>,
    client_cores: f64,
    machine_busy: f64,
}

fn window(a: &Meter, b: &Meter) -> Window {
    let wall_s = b.at.duration_since(a.at).as_secs_f64().max(1e-9);
    let server_cpu_ns = match (a.srv, b.srv) {
        (Some(x), Some(y)) => Some(y.cpu_ns.saturating_sub(x.cpu_ns)),
        _ => None,
    };
    let client_ns = b.client_ns.saturating_sub(a.client_ns);
    let (db, dt) = (
        b.machine.0.saturating_sub(a.machine.0),
        b.machine.1.saturating_sub(a.machine.1),
    );
    Window {
        wall_s,
        server_cpu_ns,
        server_cores: server_cpu_ns.map(|n| n as f64 / 1e9 / wall_s),
        client_cores: client_ns as f64 / 1e9 / wall_s,
        machine_busy: if dt > 0 { db as f64 / dt as f64 } else { 0.0 },
    }
}

/// True when the client limited the figure: its threads were ~100% busy, or the machine was
/// saturated by this client and the server alone (other load under 0.25 core) and the client
/// used at least as much CPU as the server.
fn client_bound(w: &Window, threads: usize, other_cores: f64) -> bool {
    let util = w.client_cores / threads as f64;
    util >= 0.9
        || (w.machine_busy >= 0.95
            && other_cores < 0.25
            && w.client_cores >= w.server_cores.unwrap_or(0.0))
}

fn cpu_rows(rows: &mut Vec<Row>, w: &Window, threads: usize) {
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

fn merge(outs: Vec<ThreadOut>) -> ThreadOut {
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

/// The latency CDF of a histogram in microseconds: (ms, fraction) points.
fn cdf(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut v: Vec<(f64, f64)> = h
        .iter_quantiles(20)
        .map(|x| {
            (
                x.value_iterated_to() as f64 / 1000.0,
                x.quantile_iterated_to(),
            )
        })
        .collect();
    v.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    v
}

/// A progress line on stderr (a terminal only) for phases longer than 3 s.
struct Progress {
    label: String,
    total: Duration,
    start: Instant,
    last: Instant,
    on: bool,
}

impl Progress {
    fn new(label: &str, total: Duration) -> Progress {
        // SAFETY: isatty has no preconditions.
        let tty = unsafe { libc::isatty(2) } == 1;
        Progress {
            label: label.into(),
            total,
            start: Instant::now(),
            last: Instant::now(),
            on: tty && total > Duration::from_secs(3),
        }
    }
    fn tick(&mut self, extra: &str) {
        if !self.on || self.last.elapsed() < Duration::from_millis(250) {
            return;
        }
        self.last = Instant::now();
        let e = self.start.elapsed().as_secs_f64();
        let t = self.total.as_secs_f64();
        let w = 30usize;
        let done = ((e / t).min(1.0) * w as f64) as usize;
        eprint!(
            "\r  {:<12} [{}{}] {e:5.1}/{t:.0} s {extra}\x1b[K",
            self.label,
            "#".repeat(done),
            ".".repeat(w - done)
        );
    }
    fn finish(&self) {
        if self.on {
            eprint!("\r\x1b[K");
        }
    }
}

/// Sleeps `d`, with a progress line when it is longer than 3 s.
fn progress_sleep(d: Duration, label: &str) {
    let mut pr = Progress::new(label, d);
    let end = Instant::now() + d;
    while Instant::now() < end {
        pr.tick("");
        std::thread::sleep((end - Instant::now()).min(Duration::from_millis(250)));
    }
    pr.finish();
}

fn wait_until(deadline: Instant, mut done: impl FnMut() -> bool) -> bool {
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    done()
}

/// The `--src-ips` in force for `p` against `targets`: the explicit value (refused above
/// `MAX_SRC_IPS`, or with a server that is not on loopback), else automatic: none for a server
/// that is not on loopback, 200 for churn (every cycle a new 4-tuple, ports in TIME_WAIT spread
/// over them), else `auto_src_ips` of the busiest server address's connections.
pub fn resolve_src_ips(p: &Params, targets: &[Target]) -> Result<usize, String> {
    let loopback = targets.iter().all(|t| t.addr.ip().is_loopback());
    match p.src_ips {
        Some(n) if n > MAX_SRC_IPS => Err(format!(
            "--src-ips {n}: at most {MAX_SRC_IPS} source addresses (127.0.0.2 ..= 127.0.0.255)"
        )),
        Some(n) if n > 0 && !loopback => Err(format!(
            "--src-ips {n}: source addresses 127.0.0.x need a server on loopback; use --src-ips 0"
        )),
        Some(n) => Ok(n),
        None if !loopback => Ok(0),
        None if p.scenario == Scenario::Churn => Ok(200),
        None => Ok(auto_src_ips(local_count(p.conns, targets.len().max(1), 0))),
    }
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
    let sh = Arc::new(Shared::new(targets.clone(), src_ips, p.clone()));
    let mut workers = if p.procs > 1 {
        multi::Workers::spawn(&targets, src_ips, p)?
    } else {
        multi::Workers::default()
    };
    let wp = workers.pids();
    let tthreads = p.threads * p.procs;
    let handles = spawn_clients(&sh);
    std::thread::sleep(Duration::from_millis(200)); // runtimes up, server settled
    let m0 = meter(srvs, &wp);
    let ramp_at = sh.base.elapsed() + Duration::from_millis(5);
    sh.ramp_start_ns
        .store(ramp_at.as_nanos() as u64, Ordering::Release);
    workers.send("ramp");
    sh.ramp.store(true, Ordering::Release);
    let n = p.local_conns();
    // the arrival schedule is global (connection i at i / rate), whichever process opens it
    let ramp_len = Duration::from_secs_f64(p.conns as f64 / p.rate);
    let ramp_budget = ramp_len + Duration::from_secs(15);
    let mut pr = Progress::new(&format!("{} ramp", p.scenario.name()), ramp_len);
    let ramp_done = wait_until(Instant::now() + ramp_budget, || {
        pr.tick(&format!(
            "{}/{n} connected",
            sh.connected.load(Ordering::Relaxed)
        ));
        sh.connected.load(Ordering::Acquire) + sh.failed.load(Ordering::Acquire) >= n
            && (p.scenario != Scenario::Fanout
                || sh.sender_ready.load(Ordering::Acquire)
                || sh.sender_failed.load(Ordering::Acquire))
    });
    pr.finish();
    let (w_ok, w_failed) = workers.ramped();
    let m1 = meter(srvs, &wp);
    let connected = sh.connected.load(Ordering::Acquire) + w_ok;
    let n = p.conns;
    // every connection either connected or failed (the local failures count too)
    let ramp_done = ramp_done && connected + w_failed + sh.failed.load(Ordering::Acquire) >= n;
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    if !ramp_done {
        notes.push(format!(
            "connect ramp incomplete: {connected}/{n} connected after {:.1} s",
            ramp_budget.as_secs_f64()
        ));
    }
    let ramp_w = window(&m0, &m1);
    let wbound;
    let mut plot = PlotData::default();
    match p.scenario {
        Scenario::Idle => {
            progress_sleep(p.hold, "idle hold");
            let m2 = meter(srvs, &wp);
            let hold_w = window(&m1, &m2);
            sh.stop.store(true, Ordering::Release);
            let mut out = merge(handles.into_iter().filter_map(|h| h.join().ok()).collect());
            let wo = workers.finish(&mut out);
            if let Some(e) = wo.first_error {
                let _ = sh.first_error.set(e);
            }
            let failures = sh.failed.load(Ordering::Acquire)
                + sh.dropped.load(Ordering::Acquire)
                + wo.failed
                + wo.dropped;
            rows.push(Row::new(
                "connections",
                "connections open",
                Some(connected as f64),
                "",
                Better::Info,
            ));
            rows.push(Row::new(
                "ops_per_s",
                "connects/s (ramp)",
                Some(connected as f64 / ramp_w.wall_s),
                "/s",
                Better::Higher,
            ));
            rows.extend(Row::latency("connect", "connect+handshake", &out.connect));
            rows.push(Row::new(
                "failures",
                "failures",
                Some(failures as f64),
                "",
                Better::Lower,
            ));
            let rss = match (m0.srv, m2.srv) {
                (Some(a), Some(b)) => Some((a.rss_kb, b.rss_kb)),
                _ => None,
            };
            rows.push(Row::new(
                "rss_per_conn_kb",
                "server RSS per connection",
                rss.map(|(a, b)| (b as f64 - a as f64) / connected.max(1) as f64),
                "KB",
                Better::Lower,
            ));
            rows.push(Row::new(
                "rss_before_mb",
                "server RSS before",
                rss.map(|(a, _)| a as f64 / 1024.0),
                "MB",
                Better::Info,
            ));
            rows.push(Row::new(
                "rss_after_mb",
                "server RSS after hold",
                rss.map(|(_, b)| b as f64 / 1024.0),
                "MB",
                Better::Info,
            ));
            rows.push(Row::new(
                "rss_growth_mb",
                "server RSS growth",
                rss.map(|(a, b)| (b as f64 - a as f64) / 1024.0),
                "MB",
                Better::Lower,
            ));
            if p.servers > 1 {
                rows.push(Row::new(
                    "server_procs",
                    "server processes (RSS, CPU: sums)",
                    Some(p.servers as f64),
                    "",
                    Better::Info,
                ));
            }
            rows.push(Row::new(
                "server_cpu_us_per_op",
                "server CPU per connect",
                ramp_w
                    .server_cpu_ns
                    .map(|ns| ns as f64 / 1000.0 / connected.max(1) as f64),
                "us",
                Better::Lower,
            ));
            rows.push(Row::new(
                "server_cpu_hold_pct",
                "server CPU while idle (hold)",
                hold_w.server_cores.map(|c| c * 100.0),
                "%",
                Better::Lower,
            ));
            cpu_rows(&mut rows, &ramp_w, tthreads);
            wbound = ramp_w;
        }
        Scenario::Echo | Scenario::PollingMix => {
            let m2 = meter(srvs, &wp);
            workers.send("go");
            sh.go.store(true, Ordering::Release);
            progress_sleep(p.duration, p.scenario.name());
            let m3 = meter(srvs, &wp);
            sh.stop.store(true, Ordering::Release);
            let mut out = merge(handles.into_iter().filter_map(|h| h.join().ok()).collect());
            let wo = workers.finish(&mut out);
            if let Some(e) = wo.first_error {
                let _ = sh.first_error.set(e);
            }
            let w = window(&m2, &m3);
            let failures = sh.failed.load(Ordering::Acquire)
                + sh.dropped.load(Ordering::Acquire)
                + wo.failed
                + wo.dropped;
            let polling = p.scenario == Scenario::PollingMix;
            rows.push(Row::new(
                "ops_per_s",
                if polling {
                    "echo acks/s (all)"
                } else {
                    "echo acks/s"
                },
                Some((out.ops + out.ops2) as f64 / w.wall_s),
                "/s",
                Better::Higher,
            ));
            rows.extend(Row::latency(
                "rtt",
                if polling { "ws echo RTT" } else { "echo RTT" },
                &out.rtt,
            ));
            if polling {
                rows.push(Row::new(
                    "poll_ops_per_s",
                    "polling echo acks/s",
                    Some(out.ops2 as f64 / w.wall_s),
                    "/s",
                    Better::Higher,
                ));
                rows.extend(Row::latency("poll_rtt", "polling echo RTT", &out.rtt2));
            }
            plot.cdf = cdf(&out.rtt);
            rows.push(Row::new(
                "failures",
                "failures",
                Some(failures as f64),
                "",
                Better::Lower,
            ));
            rows.push(Row::new(
                "server_cpu_us_per_op",
                "server CPU per echo+ack",
                w.server_cpu_ns
                    .map(|ns| ns as f64 / 1000.0 / (out.ops + out.ops2).max(1) as f64),
                "us",
                Better::Lower,
            ));
            rows.push(Row::new(
                "rss_per_conn_kb",
                "server RSS per connection",
                match (m0.srv, m2.srv) {
                    (Some(a), Some(b)) => {
                        Some((b.rss_kb as f64 - a.rss_kb as f64) / connected.max(1) as f64)
                    }
                    _ => None,
                },
                "KB",
                Better::Lower,
            ));
            rows.push(Row::new(
                "connections",
                "connections",
                Some(connected as f64),
                "",
                Better::Info,
            ));
            cpu_rows(&mut rows, &w, tthreads);
            wbound = w;
        }
        Scenario::EchoOpen => {
            let m2 = meter(srvs, &wp);
            sh.go_ns
                .store(sh.base.elapsed().as_nanos() as u64, Ordering::Release);
            sh.go.store(true, Ordering::Release);
            progress_sleep(p.duration, "echo-open");
            // the schedule is over: let the last acks arrive (up to 5 s)
            wait_until(Instant::now() + Duration::from_secs(5), || {
                sh.finished.load(Ordering::Acquire) >= connected
            });
            let m3 = meter(srvs, &wp);
            sh.stop.store(true, Ordering::Release);
            let out = merge(handles.into_iter().filter_map(|h| h.join().ok()).collect());
            let w = window(&m2, &m3);
            let failures = sh.failed.load(Ordering::Acquire) + sh.dropped.load(Ordering::Acquire);
            let d = p.duration.as_secs_f64();
            rows.push(Row::new(
                "ops_per_s",
                "echo acks/s (answered / duration)",
                Some(out.ops as f64 / d),
                "/s",
                Better::Higher,
            ));
            rows.push(Row::new(
                "offered_per_s",
                "offered rate",
                Some(p.open_rate),
                "/s",
                Better::Info,
            ));
            rows.extend(Row::latency("rtt", "echo latency from schedule", &out.rtt));
            rows.push(Row::new(
                "late_sends",
                "sends > 5 ms behind schedule",
                Some(out.late as f64),
                "",
                Better::Lower,
            ));
            rows.push(Row::new(
                "unanswered",
                "unanswered at the end (+5 s)",
                Some(out.unanswered as f64),
                "",
                Better::Lower,
            ));
            rows.push(Row::new(
                "failures",
                "failures",
                Some(failures as f64),
                "",
                Better::Lower,
            ));
            rows.push(Row::new(
                "server_cpu_us_per_op",
                "server CPU per echo+ack",
                w.server_cpu_ns
                    .map(|ns| ns as f64 / 1000.0 / out.ops.max(1) as f64),
                "us",
                Better::Lower,
            ));
            plot.cdf = cdf(&out.rtt);
            cpu_rows(&mut rows, &w, tthreads);
            wbound = w;
        }
        Scenario::Churn | Scenario::Rooms => {
            let m2 = meter(srvs, &wp);
            sh.go.store(true, Ordering::Release);
            progress_sleep(p.duration, p.scenario.name());
            let m3 = meter(srvs, &wp);
            sh.stop.store(true, Ordering::Release);
            let out = merge(handles.into_iter().filter_map(|h| h.join().ok()).collect());
            let w = window(&m2, &m3);
            let failures = sh.failed.load(Ordering::Acquire) + sh.dropped.load(Ordering::Acquire);
            let churn = p.scenario == Scenario::Churn;
            let (rate, cycle, cpu) = if churn {
                (
                    "connects/s (connect, echo, disconnect)",
                    "cycle",
                    "server CPU per connect+disconnect",
                )
            } else {
                (
                    "cycles/s (join, bcast, leave)",
                    "cycle",
                    "server CPU per join+bcast+leave",
                )
            };
            rows.push(Row::new(
                "ops_per_s",
                rate,
                Some(out.ops as f64 / w.wall_s),
                "/s",
                Better::Higher,
            ));
            rows.extend(Row::latency("cycle", cycle, &out.rtt));
            if churn {
                rows.extend(
                    Row::latency("connect", "connect+handshake", &out.connect)
                        .into_iter()
                        .filter(|r| r.key.ends_with("p50") || r.key.ends_with("p99")),
                );
            }
            rows.push(Row::new(
                "failures",
                "failures",
                Some((failures as u64 + if churn { out.failures } else { 0 }) as f64),
                "",
                Better::Lower,
            ));
            rows.push(Row::new(
                "server_cpu_us_per_op",
                cpu,
                w.server_cpu_ns
                    .map(|ns| ns as f64 / 1000.0 / out.ops.max(1) as f64),
                "us",
                Better::Lower,
            ));
            if churn {
                // memory must come back once the connections are gone
                std::thread::sleep(Duration::from_secs(2));
                let m4 = meter(srvs, &wp);
                let mb = |m: &Meter| m.srv.map(|s| s.rss_kb as f64 / 1024.0);
                rows.push(Row::new(
                    "rss_before_mb",
                    "server RSS before",
                    mb(&m0),
                    "MB",
                    Better::Info,
                ));
                rows.push(Row::new(
                    "rss_end_mb",
                    "server RSS at the end of churn",
                    mb(&m3),
                    "MB",
                    Better::Info,
                ));
                rows.push(Row::new(
                    "rss_after_mb",
                    "server RSS 2 s after",
                    mb(&m4),
                    "MB",
                    Better::Info,
                ));
                rows.push(Row::new(
                    "rss_growth_mb",
                    "RSS growth (after - before)",
                    match (mb(&m4), mb(&m0)) {
                        (Some(a), Some(b)) => Some(a - b),
                        _ => None,
                    },
                    "MB",
                    Better::Lower,
                ));
            }
            cpu_rows(&mut rows, &w, tthreads);
            wbound = w;
        }
        Scenario::Fanout => {
            std::thread::sleep(Duration::from_millis(300));
            let m2 = meter(srvs, &wp);
            sh.go.store(true, Ordering::Release);
            let expected = (connected * p.broadcasts * p.burst.max(1)) as u64;
            let sched = p.interval * p.broadcasts as u32;
            // all deliveries, or 10 s past the sender's last broadcast
            let mut done_at: Option<Instant> = None;
            let hard = Instant::now() + sched + Duration::from_secs(60);
            wait_until(hard, || {
                if sh.delivered.load(Ordering::Acquire) >= expected
                    && sh.sender_done.load(Ordering::Acquire)
                {
                    return true;
                }
                if sh.sender_done.load(Ordering::Acquire)
                    || sh.sender_failed.load(Ordering::Acquire)
                {
                    let d = *done_at.get_or_insert_with(Instant::now);
                    return d.elapsed() > Duration::from_secs(10);
                }
                false
            });
            let m3 = meter(srvs, &wp);
            sh.stop.store(true, Ordering::Release);
            let out = merge(handles.into_iter().filter_map(|h| h.join().ok()).collect());
            let w = window(&m2, &m3);
            // per slot: time from the slot's first send to the LAST receiver having the last
            // `bcast` of the slot (with --burst 1, a slot is one broadcast)
            let burst = p.burst.max(1);
            let sends: std::collections::HashMap<u64, (usize, Instant)> = out
                .sends
                .iter()
                .map(|(s, k, t, _)| (*s, (*k, *t)))
                .collect();
            // slot -> (deliveries, last receive, first send)
            let mut per_slot: std::collections::BTreeMap<usize, (usize, Option<Instant>, Instant)> =
                std::collections::BTreeMap::new();
            for (k, t) in sends.values() {
                per_slot.entry(*k).or_insert((0, None, *t));
            }
            let mut delivery = hist();
            let mut delivered = 0u64;
            for (seq, at) in &out.recv {
                let Some((k, sent)) = sends.get(seq) else {
                    continue;
                };
                delivered += 1;
                let _ = delivery.record(us(at.saturating_duration_since(*sent)));
                let e = per_slot.get_mut(k).expect("slot of a sent seq");
                e.0 += 1;
                if e.1.is_none_or(|l| *at > l) {
                    e.1 = Some(*at);
                }
            }
            let mut last = hist();
            let mut incomplete = 0;
            let mut first_send: Option<Instant> = None;
            let mut last_recv: Option<Instant> = None;
            for (k, (cnt, at, sent)) in &per_slot {
                first_send = Some(first_send.map_or(*sent, |f| f.min(*sent)));
                let Some(at) = at else { continue };
                plot.last_ms.push((
                    *k as u64 + 1,
                    at.saturating_duration_since(*sent).as_secs_f64() * 1000.0,
                ));
                last_recv = Some(last_recv.map_or(*at, |l| l.max(*at)));
                let _ = last.record(us(at.saturating_duration_since(*sent)));
                if *cnt < connected * burst {
                    incomplete += 1;
                }
            }
            let expected = (connected * sends.len()) as u64;
            let missing = expected.saturating_sub(delivered)
                + (connected * (p.broadcasts * burst).saturating_sub(sends.len())) as u64;
            let span = match (first_send, last_recv) {
                (Some(a), Some(b)) => b.duration_since(a).as_secs_f64().max(1e-9),
                _ => w.wall_s,
            };
            if incomplete > 0 {
                notes.push(format!(
                    "{incomplete} broadcast slot(s) did not reach every receiver: their latency is that of the last delivery of the slot"
                ));
            }
            if sh.sender_failed.load(Ordering::Acquire) {
                notes.push("the sender failed; broadcasts not sent count as missing".into());
            }
            rows.push(Row::new(
                "ops_per_s",
                "deliveries/s",
                Some(delivered as f64 / span),
                "/s",
                Better::Higher,
            ));
            rows.extend(Row::latency("last", "send -> LAST receiver", &last));
            rows.extend(
                Row::latency("delivery", "send -> each delivery", &delivery)
                    .into_iter()
                    .filter(|r| r.key.ends_with("p50") || r.key.ends_with("p99")),
            );
            rows.push(Row::new(
                "failures",
                "failures (missing deliveries)",
                Some((missing + sh.failed.load(Ordering::Acquire) as u64) as f64),
                "",
                Better::Lower,
            ));
            rows.push(Row::new(
                "server_cpu_us_per_op",
                "server CPU per delivery",
                w.server_cpu_ns
                    .map(|ns| ns as f64 / 1000.0 / delivered.max(1) as f64),
                "us",
                Better::Lower,
            ));
            let ack: Vec<f64> = out
                .sends
                .iter()
                .map(|s| s.3.as_secs_f64() * 1000.0)
                .collect();
            rows.push(Row::new(
                "bcast_ack_ms_max",
                "bcast ack RTT, max",
                ack.iter().copied().reduce(f64::max),
                "ms",
                Better::Lower,
            ));
            rows.push(Row::new(
                "broadcasts",
                "broadcasts sent",
                Some(sends.len() as f64),
                "",
                Better::Info,
            ));
            rows.push(Row::new(
                "deliveries",
                "deliveries",
                Some(delivered as f64),
                "",
                Better::Info,
            ));
            rows.push(Row::new(
                "rss_per_conn_kb",
                "server RSS per connection",
                match (m0.srv, m2.srv) {
                    (Some(a), Some(b)) => {
                        Some((b.rss_kb as f64 - a.rss_kb as f64) / connected.max(1) as f64)
                    }
                    _ => None,
                },
                "KB",
                Better::Lower,
            ));
            cpu_rows(&mut rows, &w, tthreads);
            wbound = w;
        }
    }
    if let Some(e) = sh.first_error.get() {
        notes.push(format!("first error: {e}"));
    }
    if srvs.iter().any(|s| s.pid.is_none()) {
        notes.push("no server pid: server CPU and RSS not measured (use --server-pid)".into());
    }
    // CPU used by processes other than this client and the server (others' builds, ...)
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let other =
        (wbound.machine_busy * cores - wbound.client_cores - wbound.server_cores.unwrap_or(0.0))
            .max(0.0);
    rows.push(Row::new(
        "other_load_cores",
        "other processes' CPU (cores)",
        Some(other),
        "",
        Better::Info,
    ));
    // a fixed arrival rate that was met is not limited by anyone
    let rate_met = p.scenario == Scenario::Idle
        && rows
            .iter()
            .find(|r| r.key == "ops_per_s")
            .and_then(|r| r.value)
            .is_some_and(|v| v >= 0.9 * p.rate);
    let cb = !rate_met && client_bound(&wbound, tthreads, other);
    if other > 0.25 {
        notes.push(format!(
            "the machine was shared: other processes used {other:.2} of {cores} cores during the measured phase; figures are noisy"
        ));
    }
    Ok(RunResult {
        scenario: p.scenario.name().into(),
        server: if srvs.len() > 1 {
            format!("{} x {} processes", srv.label, srvs.len())
        } else {
            srv.label.clone()
        },
        server_kind: srv.kind.name().into(),
        description: p.describe(),
        params: p.to_json(),
        rows,
        client_bound: cb,
        notes,
        plot,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(conns: usize, servers: usize, src_ips: Option<usize>) -> Params {
        Params {
            scenario: Scenario::Idle,
            conns,
            rate: 1000.0,
            hold: Duration::from_secs(1),
            duration: Duration::from_secs(1),
            payload_len: 48,
            broadcasts: 1,
            interval: Duration::from_millis(100),
            burst: 1,
            threads: 2,
            open_rate: 1000.0,
            rooms: 1,
            floor: false,
            procs: 1,
            proc_index: 0,
            servers,
            src_ips,
        }
    }

    fn targets(ip: [u8; 4], n: usize) -> Vec<Target> {
        (0..n)
            .map(|k| Target {
                addr: (ip, 4000 + k as u16).into(),
                host_header: format!("h{k}"),
            })
            .collect()
    }

    #[test]
    fn round_robin_over_servers_is_the_same_in_every_generator() {
        // 6 generators x 6 servers: generator k opens i % 6 == k, all of them on server k
        let (conns, procs, servers) = (102_000, 6, 6);
        let mut per_server = vec![0usize; servers];
        for k in 0..procs {
            let mut i = k;
            while i < conns {
                assert_eq!(server_of(i, servers), k);
                per_server[server_of(i, servers)] += 1;
                i += procs;
            }
        }
        assert_eq!(per_server, vec![17_000; 6]);
        // 4 generators x 3 servers: every server gets its local_count share
        let mut per_server = vec![0usize; 3];
        for k in 0..4 {
            for i in (k..1001).step_by(4) {
                per_server[server_of(i, 3)] += 1;
            }
        }
        let want: Vec<usize> = (0..3).map(|s| local_count(1001, 3, s)).collect();
        assert_eq!(per_server, want);
        assert_eq!(want, vec![334, 334, 333]);
        assert_eq!(server_of(5, 1), 0);
        assert_eq!(server_of(5, 0), 0);
    }

    #[test]
    fn fd_limit_per_process() {
        // 20,000 descriptors: 19,935 connections + 1 + 64 spare fit, one more does not
        assert!(fits_fd_limit(19_935, 20_000));
        assert!(!fits_fd_limit(19_936, 20_000));
        // 102,000 connections: 6 servers (17,000 each) fit under 20,000, 5 (20,400) do not
        assert!(fits_fd_limit(local_count(102_000, 6, 0), 20_000));
        assert!(!fits_fd_limit(local_count(102_000, 5, 0), 20_000));
        // the busiest server is server 0
        assert_eq!(local_count(100_001, 6, 0), 16_667);
        assert_eq!(local_count(100_001, 6, 5), 16_666);
    }

    #[test]
    fn source_addresses() {
        assert_eq!(src_addr(7, 1, 0), None);
        assert_eq!(src_addr(7, 1, 1), Some(Ipv4Addr::new(127, 0, 0, 2)));
        assert_eq!(src_addr(7, 1, 5), Some(Ipv4Addr::new(127, 0, 0, 4)));
        assert_eq!(
            src_addr(253, 1, MAX_SRC_IPS),
            Some(Ipv4Addr::new(127, 0, 0, 255))
        );
        assert_eq!(
            src_addr(254, 1, MAX_SRC_IPS),
            Some(Ipv4Addr::new(127, 0, 0, 2))
        );
        // 2 servers x 2 source addresses: each server sees both addresses, evenly
        let mut seen = std::collections::HashMap::new();
        for i in 0..1000 {
            *seen
                .entry((server_of(i, 2), src_addr(i, 2, 2).unwrap()))
                .or_insert(0) += 1;
        }
        assert_eq!(seen.len(), 4);
        assert!(seen.values().all(|&n| n == 250));
    }

    #[test]
    fn automatic_source_address_count() {
        assert_eq!(auto_src_ips(0), 1);
        assert_eq!(auto_src_ips(5_000), 1);
        assert_eq!(auto_src_ips(5_001), 2);
        assert_eq!(auto_src_ips(17_000), 4);
        assert_eq!(auto_src_ips(100_000), 20);
        assert_eq!(auto_src_ips(usize::MAX / 2), MAX_SRC_IPS);
        let lo = targets([127, 0, 0, 1], 1);
        assert_eq!(resolve_src_ips(&params(4_000, 1, None), &lo), Ok(1));
        assert_eq!(resolve_src_ips(&params(19_000, 1, None), &lo), Ok(4));
        // spread over 6 servers: 1,000 per server address, one source address
        assert_eq!(
            resolve_src_ips(&params(6_000, 6, None), &targets([127, 0, 0, 1], 6)),
            Ok(1)
        );
        assert_eq!(resolve_src_ips(&params(60_000, 1, Some(0)), &lo), Ok(0));
        assert_eq!(resolve_src_ips(&params(100, 1, Some(7)), &lo), Ok(7));
        let mut churn = params(50, 1, None);
        churn.scenario = Scenario::Churn;
        assert_eq!(resolve_src_ips(&churn, &lo), Ok(200));
        let remote = targets([10, 0, 0, 5], 1);
        assert_eq!(resolve_src_ips(&params(60_000, 1, None), &remote), Ok(0));
        assert!(resolve_src_ips(&params(100, 1, Some(2)), &remote).is_err());
        assert!(resolve_src_ips(&params(100, 1, Some(255)), &lo).is_err());
    }
}
