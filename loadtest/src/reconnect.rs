//! `reconnect`: a reconnect storm. C connections to a server the harness started; the harness
//! stops it (SIGTERM) and starts it again on the same port; every client reconnects with
//! socket.io-client's backoff (reconnectionDelay 1000 ms, reconnectionDelayMax 5000 ms,
//! randomizationFactor 0.5, each client its own attempt counter) and sends one echo with ack.

use crate::client::{Conn, Msg, Registry};
use crate::report::{Better, PlotData, Row, RunResult};
use crate::scenario::progress::wait_until;
use crate::server::Server;
use std::cell::{Cell, RefCell};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Clients not back this long after the restart count as failures.
pub const DEADLINE: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// socket.io-client's backoff (engine.io `Backoff`, factor 2): the delay before attempt
/// `attempts` (0-based), with `rand` in [0, 1).
pub fn backoff_ms(attempts: u32, rand: f64) -> u64 {
    let (min, max, jitter) = (1000.0f64, 5000.0f64, 0.5f64);
    let mut ms = min * 2f64.powi(attempts.min(30) as i32);
    let deviation = (rand * jitter * ms).floor();
    ms = if ((rand * 10.0).floor() as u64) & 1 == 0 {
        ms - deviation
    } else {
        ms + deviation
    };
    ms.min(max) as u64
}

/// xorshift64*: a per-client random stream in [0, 1).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Shared {
    target: SocketAddr,
    host_header: String,
    bind_src: bool,
    conns: usize,
    rate: f64,
    threads: usize,
    ramp_at: OnceLock<Instant>,
    connected: AtomicUsize,
    failed: AtomicUsize,
    down: AtomicUsize,
    back: AtomicUsize,
    stop: AtomicBool,
    first_error: OnceLock<String>,
}

impl Shared {
    fn src(&self, i: usize) -> Option<IpAddr> {
        self.bind_src
            .then(|| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (i % 200) as u8)))
    }
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
}

#[derive(Default)]
struct Out {
    /// (instant back: reconnected and echo acked, connect attempts it took)
    back: Vec<(Instant, u32)>,
    /// attempts of clients that never got back
    not_back_attempts: Vec<u32>,
}

async fn open(sh: &Shared, i: usize, reg: &Registry) -> std::io::Result<Conn> {
    let conn = Conn::connect(sh.target, sh.src(i), &sh.host_header, Some(reg), i as u64);
    crate::client::within(CONNECT_TIMEOUT, "connect + handshake timed out", conn).await
}

/// Sleeps `d` in short steps; false when STOP came meanwhile.
async fn sleep_unless_stop(sh: &Shared, d: Duration) -> bool {
    let end = Instant::now() + d;
    while !sh.stopped() {
        let now = Instant::now();
        if now >= end {
            return true;
        }
        monoio::time::sleep((end - now).min(Duration::from_millis(50))).await;
    }
    false
}

/// Reads (answering pings) until the connection ends or STOP.
async fn hold(sh: &Shared, conn: &mut Conn) {
    while !sh.stopped() {
        match conn.next().await {
            Ok(Msg::Disconnect) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

async fn client(sh: Arc<Shared>, i: usize, reg: Registry, out: Rc<RefCell<Out>>) {
    let mut conn = match open(&sh, i, &reg).await {
        Ok(c) => c,
        Err(e) => {
            let _ = sh.first_error.set(format!("initial connect: {e}"));
            sh.failed.fetch_add(1, Ordering::AcqRel);
            return;
        }
    };
    sh.connected.fetch_add(1, Ordering::AcqRel);
    hold(&sh, &mut conn).await;
    drop(conn);
    if sh.stopped() {
        return;
    }
    sh.down.fetch_add(1, Ordering::AcqRel);
    let mut rng = Rng((i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut attempts = 0u32;
    let body = "[\"echo\",\"back\"]";
    loop {
        let d = backoff_ms(attempts, rng.next());
        attempts += 1;
        if !sleep_unless_stop(&sh, Duration::from_millis(d)).await {
            out.borrow_mut().not_back_attempts.push(attempts - 1);
            return;
        }
        let mut c = match open(&sh, i, &reg).await {
            Ok(c) => c,
            Err(_) => continue,
        };
        let r = monoio::time::timeout(CONNECT_TIMEOUT, async {
            let id = c.emit_with_ack(body).await?;
            c.wait_ack(id).await
        })
        .await;
        match r {
            Ok(Ok(_)) => {
                out.borrow_mut().back.push((Instant::now(), attempts));
                sh.back.fetch_add(1, Ordering::AcqRel);
                hold(&sh, &mut c).await;
                return;
            }
            Ok(Err(e)) => {
                let _ = sh.first_error.set(format!("echo after reconnect: {e}"));
            }
            Err(_) => {
                let _ = sh.first_error.set("echo after reconnect timed out".into());
            }
        }
    }
}

async fn client_thread(t: usize, sh: Arc<Shared>) -> Out {
    let reg = Registry::default();
    let out = Rc::new(RefCell::new(Out::default()));
    let active = Rc::new(Cell::new(0usize));
    while sh.ramp_at.get().is_none() && !sh.stopped() {
        monoio::time::sleep(Duration::from_millis(2)).await;
    }
    let start = sh.ramp_at.get().copied().unwrap_or_else(Instant::now);
    let mut i = t;
    while i < sh.conns && !sh.stopped() {
        let slot = start + Duration::from_secs_f64(i as f64 / sh.rate);
        let now = Instant::now();
        if slot > now {
            monoio::time::sleep(slot - now).await;
        }
        let (sh2, reg2, out2, act) = (sh.clone(), reg.clone(), out.clone(), active.clone());
        act.set(act.get() + 1);
        monoio::spawn(async move {
            client(sh2, i, reg2, out2).await;
            act.set(act.get() - 1);
        });
        i += sh.threads;
    }
    while !sh.stopped() {
        monoio::time::sleep(Duration::from_millis(5)).await;
    }
    reg.shutdown_all();
    let cap = Instant::now() + Duration::from_secs(5);
    while active.get() > 0 && Instant::now() < cap {
        monoio::time::sleep(Duration::from_millis(5)).await;
    }
    let r = std::mem::take(&mut *out.borrow_mut());
    r
}

/// The client threads of the storm, each with its own monoio runtime.
fn spawn_threads(sh: &Arc<Shared>) -> Vec<std::thread::JoinHandle<Out>> {
    (0..sh.threads)
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

/// What the restart measured.
struct Restart {
    /// connections before the restart
    connected: usize,
    /// the new server listening
    t_ready: Instant,
    /// SIGTERM -> new server listening (None: the restart failed)
    restart_s: Option<f64>,
    /// the old process's whole CPU, the new one's until everyone was back (or the deadline)
    old_cpu: Option<u64>,
    new_cpu: Option<u64>,
    notes: Vec<String>,
}

/// Ramps the clients up, stops the server, waits `down_ms`, starts it again and waits until
/// every client is back or `DEADLINE`; then stops the clients.
fn restart(srv: &mut Server, sh: &Shared, down_ms: u64) -> Restart {
    let _ = sh.ramp_at.set(Instant::now() + Duration::from_millis(5));
    let budget = Duration::from_secs_f64(sh.conns as f64 / sh.rate) + Duration::from_secs(15);
    wait_until(Instant::now() + budget, || {
        sh.connected.load(Ordering::Acquire) + sh.failed.load(Ordering::Acquire) >= sh.conns
    });
    let connected = sh.connected.load(Ordering::Acquire);
    std::thread::sleep(Duration::from_secs(1));
    let old_cpu = srv.sample().map(|s| s.cpu_ns);
    // stop (SIGTERM; SIGKILL after 3 s) and start again on the same port
    let t_stop = Instant::now();
    srv.stop();
    std::thread::sleep(Duration::from_millis(down_ms));
    let restarted = srv.restart();
    let t_ready = Instant::now();
    let mut notes = Vec::new();
    let mut restart_s = None;
    if let Err(e) = &restarted {
        notes.push(format!("restart failed: {e}"));
    } else {
        restart_s = Some(t_ready.duration_since(t_stop).as_secs_f64());
    }
    wait_until(t_ready + DEADLINE, || {
        sh.back.load(Ordering::Acquire) >= connected
    });
    let new_cpu = srv.sample().map(|s| s.cpu_ns);
    sh.stop.store(true, Ordering::Release);
    Restart {
        connected,
        t_ready,
        restart_s,
        old_cpu,
        new_cpu,
        notes,
    }
}

/// The result rows: time until 50 / 99 / 100 % were back, attempts, failures, CPU.
fn rows(r: &Restart, back: &[(Instant, u32)], not_back: Vec<u32>, failed: usize) -> Vec<Row> {
    // time from the new server listening until each client was back
    let mut secs: Vec<f64> = back
        .iter()
        .filter(|(at, _)| *at <= r.t_ready + DEADLINE)
        .map(|(at, _)| at.saturating_duration_since(r.t_ready).as_secs_f64())
        .collect();
    secs.sort_by(f64::total_cmp);
    let n_back = secs.len();
    let at_frac = |f: f64| {
        let k = ((r.connected as f64 * f).ceil() as usize).max(1);
        (k <= n_back).then(|| secs[k - 1] * 1000.0)
    };
    let attempts: Vec<u32> = back.iter().map(|b| b.1).chain(not_back).collect();
    let mean = (!attempts.is_empty())
        .then(|| attempts.iter().map(|&a| a as f64).sum::<f64>() / attempts.len() as f64);
    let max = attempts.iter().max().map(|&m| m as f64);
    let failures = r.connected.saturating_sub(n_back);
    let ms = |label: &str, key: &str, v: Option<f64>| Row::new(key, label, v, "ms", Better::Lower);
    let mut rows = vec![
        Row::new(
            "connections",
            "connections before the restart",
            Some(r.connected as f64),
            "",
            Better::Info,
        ),
        ms(
            "SIGTERM -> new server listening (incl. --down-ms)",
            "restart_ms",
            r.restart_s.map(|s| s * 1000.0),
        ),
        ms("restart -> 50% back", "back_p50_ms", at_frac(0.5)),
        ms("restart -> 99% back", "back_p99_ms", at_frac(0.99)),
        ms("restart -> 100% back", "back_p100_ms", at_frac(1.0)),
        Row::new(
            "attempts_mean",
            "reconnect attempts per client, mean",
            mean,
            "",
            Better::Lower,
        ),
        Row::new(
            "attempts_max",
            "reconnect attempts per client, max",
            max,
            "",
            Better::Lower,
        ),
        Row::new(
            "failures",
            "failures (not back within 30 s)",
            Some(failures as f64 + failed as f64),
            "",
            Better::Lower,
        ),
        Row::new(
            "server_cpu_us_per_op",
            "server CPU per reconnect (new process)",
            r.new_cpu
                .map(|ns| ns as f64 / 1000.0 / n_back.max(1) as f64),
            "us",
            Better::Lower,
        ),
        Row::new(
            "old_server_cpu_ms",
            "old server CPU (whole life)",
            r.old_cpu.map(|ns| ns as f64 / 1e6),
            "ms",
            Better::Info,
        ),
    ];
    if failed > 0 {
        rows.push(Row::new(
            "initial_failures",
            "initial connect failures",
            Some(failed as f64),
            "",
            Better::Lower,
        ));
    }
    rows
}

/// Runs the reconnect storm against `srv` (which must be restartable: started by the harness).
pub fn run(
    srv: &mut Server,
    conns: usize,
    rate: f64,
    threads: usize,
    down_ms: u64,
) -> Result<RunResult, String> {
    let sh = Arc::new(Shared {
        target: srv.addr,
        host_header: srv.host_header.clone(),
        bind_src: srv.addr.ip().is_loopback(),
        conns,
        rate,
        threads,
        ramp_at: OnceLock::new(),
        connected: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        down: AtomicUsize::new(0),
        back: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        first_error: OnceLock::new(),
    });
    let handles = spawn_threads(&sh);
    std::thread::sleep(Duration::from_millis(200));
    let r = restart(srv, &sh, down_ms);
    let mut back: Vec<(Instant, u32)> = Vec::new();
    let mut not_back: Vec<u32> = Vec::new();
    for h in handles {
        if let Ok(o) = h.join() {
            back.extend(o.back);
            not_back.extend(o.not_back_attempts);
        }
    }
    let rows = rows(&r, &back, not_back, sh.failed.load(Ordering::Acquire));
    let mut notes = r.notes;
    notes.push(
        "server CPU per reconnect: the new process's whole CPU (start-up included) / clients back"
            .into(),
    );
    if let Some(e) = sh.first_error.get() {
        notes.push(format!("first error: {e}"));
    }
    Ok(RunResult {
        scenario: "reconnect".into(),
        server: srv.label.clone(),
        server_kind: srv.kind.name().into(),
        generator: "rust".into(),
        description: format!(
            "{conns} conns at {rate}/s, SIGTERM + restart on the same port ({down_ms} ms down), socket.io-client \
             backoff 1000..5000 ms x2 +-50%, 1 echo+ack after reconnecting, {threads} client threads"
        ),
        params: serde_json::json!({
            "scenario": "reconnect", "conns": conns, "connect_rate_per_s": rate,
            "client_threads": threads, "reconnection_delay_ms": 1000,
            "reconnection_delay_max_ms": 5000, "randomization_factor": 0.5,
            "deadline_s": DEADLINE.as_secs(), "down_ms": down_ms, "generator": "rust",
        }),
        rows,
        client_bound: false,
        notes,
        plot: PlotData::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_matches_socket_io_client() {
        // rand 0.0: floor(0)&1 == 0 -> ms - 0
        assert_eq!(backoff_ms(0, 0.0), 1000);
        // rand 0.15: floor(1.5)=1 odd -> ms + floor(0.15*0.5*ms)
        assert_eq!(backoff_ms(0, 0.15), 1075);
        // rand 0.25: floor(2.5)=2 even -> ms - floor(0.25*0.5*2000)
        assert_eq!(backoff_ms(1, 0.25), 1750);
        assert_eq!(backoff_ms(3, 0.0), 5000);
        assert_eq!(backoff_ms(10, 0.99), 5000);
        let mut r = Rng(7);
        for _ in 0..1000 {
            let x = r.next();
            assert!((0.0..1.0).contains(&x));
        }
    }
}
