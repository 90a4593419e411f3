//! The monoio side: configuration, shard threads, listeners, connections.
//!
//! `Server::builder()` collects options and namespace setup closures (shared, `Send + Sync`);
//! `listen` binds one `SO_REUSEPORT` listener per shard, starts one pinned thread per shard with
//! its own runtime (io_uring, falling back to epoll), and each shard builds its own handler
//! tables by calling the setup closures.

pub(crate) mod conn;
pub(crate) mod session;
pub(crate) mod shard;
mod writer;
mod ws_conn;

pub(crate) use session::Session;
pub use session::Sid;
pub(crate) use shard::shard;

use crate::ns::{Matcher, Namespace, Namespaces, Setup};
use crate::proto::eio::Packet;
use crate::proto::http::{Cors, Head};
use shard::{Inbox, Peers, ShardCtx, ShardMsg, Timers};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

/// The `allowRequest` hook.
pub type AllowRequest = Arc<dyn Fn(&Head) -> bool + Send + Sync>;

/// Engine.IO options of one endpoint (Node's names and defaults).
#[derive(Clone)]
pub struct EngineConfig {
    /// Path the endpoint answers on (default `/socket.io/`).
    pub path: String,
    /// `pingInterval` (default 25 s).
    pub ping_interval: Duration,
    /// `pingTimeout` (default 20 s).
    pub ping_timeout: Duration,
    /// `upgradeTimeout`: an upgrade probe that does not finish in time is abandoned (10 s).
    pub upgrade_timeout: Duration,
    /// `maxHttpBufferSize`, advertised as `maxPayload` (default 1e6 bytes).
    pub max_payload: usize,
    /// Long-polling enabled.
    pub polling: bool,
    /// WebSocket enabled.
    pub websocket: bool,
    /// Polling sessions may upgrade to WebSocket.
    pub allow_upgrades: bool,
    /// CORS policy.
    pub cors: Cors,
    /// `allowRequest`: refuse a handshake with 403 (code 4).
    pub allow_request: Option<AllowRequest>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            path: "/socket.io/".into(),
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            upgrade_timeout: Duration::from_millis(10_000),
            max_payload: 1_000_000,
            polling: true,
            websocket: true,
            allow_upgrades: true,
            cors: Cors::Off,
            allow_request: None,
        }
    }
}

/// A raw Engine.IO message handler, built once per shard.
pub type EngineHandlerFactory =
    Arc<dyn Fn() -> Box<dyn Fn(&crate::EngineSocket, crate::EngineMessage)> + Send + Sync>;

#[derive(Clone)]
pub(crate) enum AppCfg {
    SocketIo {
        statics: Vec<(String, Setup)>,
        dynamic: Vec<(Matcher, Setup)>,
    },
    Engine(EngineHandlerFactory),
}

#[derive(Clone)]
pub(crate) struct EndpointCfg {
    pub engine: EngineConfig,
    pub app: AppCfg,
    pub connect_timeout: Duration,
    pub max_attachments: usize,
}

/// Which I/O driver the shards use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Driver {
    /// io_uring when the kernel supports it (and `MONOIO_FORCE_LEGACY_DRIVER` is unset), else epoll.
    #[default]
    Auto,
    /// epoll (monoio's legacy driver).
    Epoll,
}

/// Shared, read-only configuration.
pub(crate) struct Config {
    pub driver: Driver,
    pub max_queue_frames: usize,
    pub max_queue_bytes: usize,
    pub endpoints: Vec<EndpointCfg>,
    pub shards: usize,
    pub presence_slots: usize,
    pub inbox_capacity: usize,
}

impl Config {
    pub fn endpoint_for(&self, path: &str) -> Option<usize> {
        self.endpoints.iter().position(|e| {
            let p = e.engine.path.trim_end_matches('/');
            path == p || (path.starts_with(p) && path[p.len()..].starts_with('/'))
        })
    }
}

type EngineHandler = Box<dyn Fn(&Rc<Session>, Packet)>;

/// An endpoint's per-shard runtime.
pub(crate) enum EndpointRt {
    SocketIo(Namespaces),
    Engine(EngineHandler),
}

impl EndpointRt {
    pub fn is_sio(&self) -> bool {
        matches!(self, EndpointRt::SocketIo(_))
    }
}

/// Builds a [`Server`].
pub struct ServerBuilder {
    engine: EngineConfig,
    statics: Vec<(String, Setup)>,
    dynamic: Vec<(Matcher, Setup)>,
    extra: Vec<EndpointCfg>,
    connect_timeout: Duration,
    max_attachments: usize,
    shards: usize,
    presence_slots: usize,
    inbox_capacity: usize,
    driver: Driver,
    max_queue_frames: usize,
    max_queue_bytes: usize,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        ServerBuilder {
            engine: EngineConfig::default(),
            statics: Vec::new(),
            dynamic: Vec::new(),
            extra: Vec::new(),
            connect_timeout: Duration::from_millis(45_000),
            max_attachments: 10,
            shards: std::thread::available_parallelism().map_or(1, |n| n.get()),
            presence_slots: 1 << 16,
            inbox_capacity: 4096,
            driver: Driver::Auto,
            max_queue_frames: 16_384,
            max_queue_bytes: 8 << 20,
        }
    }
}

impl ServerBuilder {
    /// Socket.IO path (default `/socket.io/`).
    pub fn path(mut self, p: &str) -> Self {
        self.engine.path = p.into();
        self
    }
    /// `pingInterval`.
    pub fn ping_interval(mut self, d: Duration) -> Self {
        self.engine.ping_interval = d;
        self
    }
    /// `pingTimeout`.
    pub fn ping_timeout(mut self, d: Duration) -> Self {
        self.engine.ping_timeout = d;
        self
    }
    /// `upgradeTimeout`.
    pub fn upgrade_timeout(mut self, d: Duration) -> Self {
        self.engine.upgrade_timeout = d;
        self
    }
    /// `maxHttpBufferSize` (also the WebSocket message limit).
    pub fn max_payload(mut self, n: usize) -> Self {
        self.engine.max_payload = n;
        self
    }
    /// `connectTimeout`: close a connection that joins no namespace in time.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }
    /// Enabled transports.
    pub fn transports(mut self, polling: bool, websocket: bool) -> Self {
        self.engine.polling = polling;
        self.engine.websocket = websocket;
        self
    }
    /// `allowUpgrades`.
    pub fn allow_upgrades(mut self, on: bool) -> Self {
        self.engine.allow_upgrades = on;
        self
    }
    /// CORS policy.
    pub fn cors(mut self, cors: Cors) -> Self {
        self.engine.cors = cors;
        self
    }
    /// `allowRequest`: return false to refuse a handshake (403, code 4).
    pub fn allow_request(mut self, f: impl Fn(&Head) -> bool + Send + Sync + 'static) -> Self {
        self.engine.allow_request = Some(Arc::new(f));
        self
    }
    /// Most binary attachments accepted in one packet (default 10).
    pub fn max_attachments(mut self, n: usize) -> Self {
        self.max_attachments = n;
        self
    }
    /// Number of shards (threads); default one per core.
    pub fn shards(mut self, n: usize) -> Self {
        self.shards = n.clamp(1, 64);
        self
    }
    /// The I/O driver (default: io_uring with fallback to epoll).
    pub fn driver(mut self, d: Driver) -> Self {
        self.driver = d;
        self
    }
    /// Per-connection output queue caps (frames, bytes). A connection whose queue would pass
    /// either is closed with reason "slow consumer"; volatile packets are dropped before that,
    /// whenever the transport is not ready. Defaults: 16 384 frames, 8 MiB.
    pub fn max_queue(mut self, frames: usize, bytes: usize) -> Self {
        self.max_queue_frames = frames.max(1);
        self.max_queue_bytes = bytes.max(1);
        self
    }
    /// Capacity of each shard's inbox (messages from other shards).
    pub fn inbox_capacity(mut self, n: usize) -> Self {
        self.inbox_capacity = n.max(1);
        self
    }
    /// Size of the room presence table (tests use tiny tables to force hash collisions).
    pub fn presence_slots(mut self, n: usize) -> Self {
        self.presence_slots = n;
        self
    }
    /// A namespace; `setup` runs once per shard to register its handlers.
    pub fn ns(
        mut self,
        name: &str,
        setup: impl Fn(&mut Namespace) + Send + Sync + 'static,
    ) -> Self {
        self.statics.push((name.to_string(), Arc::new(setup)));
        self
    }
    /// Dynamic namespaces: any name the predicate accepts is created on first connect.
    pub fn dynamic_ns(
        mut self,
        pred: impl Fn(&str) -> bool + Send + Sync + 'static,
        setup: impl Fn(&mut Namespace) + Send + Sync + 'static,
    ) -> Self {
        self.dynamic
            .push((Matcher::Predicate(Arc::new(pred)), Arc::new(setup)));
        self
    }
    /// Dynamic namespaces matching a regular expression.
    pub fn ns_regex(
        mut self,
        pattern: &str,
        setup: impl Fn(&mut Namespace) + Send + Sync + 'static,
    ) -> Result<Self, String> {
        let re = regex_lite::Regex::new(pattern).map_err(|e| e.to_string())?;
        self.dynamic.push((Matcher::Regex(re), Arc::new(setup)));
        Ok(self)
    }
    /// A raw Engine.IO endpoint at `path` with the current engine options; `factory` runs once
    /// per shard and returns the message handler.
    pub fn engine_endpoint(
        mut self,
        path: &str,
        factory: impl Fn() -> Box<dyn Fn(&crate::EngineSocket, crate::EngineMessage)>
            + Send
            + Sync
            + 'static,
    ) -> Self {
        let mut engine = self.engine.clone();
        engine.path = path.into();
        self.extra.push(EndpointCfg {
            engine,
            app: AppCfg::Engine(Arc::new(factory)),
            connect_timeout: self.connect_timeout,
            max_attachments: self.max_attachments,
        });
        self
    }
    #[cfg_attr(not(feature = "bench-support"), allow(dead_code))]
    pub(crate) fn config(self) -> Arc<Config> {
        self.build().cfg
    }
    /// Finishes the configuration.
    pub fn build(self) -> Server {
        let mut endpoints = vec![EndpointCfg {
            engine: self.engine,
            app: AppCfg::SocketIo {
                statics: self.statics,
                dynamic: self.dynamic,
            },
            connect_timeout: self.connect_timeout,
            max_attachments: self.max_attachments,
        }];
        endpoints.extend(self.extra);
        Server {
            cfg: Arc::new(Config {
                driver: self.driver,
                max_queue_frames: self.max_queue_frames,
                max_queue_bytes: self.max_queue_bytes,
                endpoints,
                shards: self.shards,
                presence_slots: self.presence_slots,
                inbox_capacity: self.inbox_capacity,
            }),
        }
    }
}

/// A configured server, ready to listen.
pub struct Server {
    cfg: Arc<Config>,
}

/// A running server: its address, and the handle to stop it.
pub struct RunningServer {
    addr: SocketAddr,
    peers: Arc<Peers>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Starts configuring a server.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// Binds `addr` (refusing a port another process holds) and starts the shards.
    pub fn listen(self, addr: SocketAddr) -> std::io::Result<RunningServer> {
        let listeners = crate::listener::bind_shards(addr, self.cfg.shards)?;
        let addr = listeners[0].local_addr()?;
        let n = self.cfg.shards;
        let mut rxs = Vec::with_capacity(n);
        let mut inboxes = Vec::with_capacity(n);
        for _ in 0..n {
            let (tx, rx) = crossbeam_channel::bounded(self.cfg.inbox_capacity);
            rxs.push(rx);
            inboxes.push(Inbox {
                tx,
                waker: Default::default(),
                full: Default::default(),
            });
        }
        let peers = Arc::new(Peers {
            inboxes,
            presence: crate::adapter::Presence::new(self.cfg.presence_slots),
            metrics: (0..n).map(|_| Default::default()).collect(),
        });
        let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let mut threads = Vec::with_capacity(n);
        for (id, (listener, rx)) in listeners.into_iter().zip(rxs).enumerate() {
            let cfg = self.cfg.clone();
            let peers = peers.clone();
            let ready = ready_tx.clone();
            let t = std::thread::Builder::new()
                .name(format!("ringio-shard-{id}"))
                .stack_size(16 << 20)
                .spawn(move || {
                    let _ = monoio::utils::bind_to_cpu_set([id % ncpu]);
                    run_shard(id, cfg, peers, listener, rx, ready);
                })?;
            threads.push(t);
        }
        for _ in 0..n {
            let _ = ready_rx.recv();
        }
        Ok(RunningServer {
            addr,
            peers,
            threads,
        })
    }
}

/// Server-wide counters (sums over shards).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Volatile packets dropped because the transport was not ready.
    pub volatile_dropped: u64,
    /// Connections closed because their output queue passed its cap ("slow consumer").
    pub slow_consumers: u64,
    /// Cross-shard messages refused by a full inbox (then retried from the sender's overflow
    /// queue, in order; never dropped).
    pub inbox_full: u64,
    /// Broadcasts that waited in an overflow queue.
    pub overflowed: u64,
}

impl RunningServer {
    /// Current counters.
    pub fn metrics(&self) -> Metrics {
        let mut m = Metrics::default();
        for (i, s) in self.peers.metrics.iter().enumerate() {
            m.volatile_dropped += s.volatile_dropped.load(Relaxed);
            m.slow_consumers += s.slow_consumers.load(Relaxed);
            m.overflowed += s.overflowed.load(Relaxed);
            m.inbox_full += self.peers.inboxes[i].full.load(Relaxed);
        }
        m
    }
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
    /// Closes every session ("server shutting down") and stops the shards.
    pub fn shutdown(self) {
        for i in 0..self.peers.inboxes.len() {
            let mut msg = ShardMsg::Shutdown;
            for _ in 0..1000 {
                match self.peers.try_post(i, msg) {
                    Ok(()) => break,
                    Err(m) => {
                        msg = m;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
        }
        for t in self.threads {
            let _ = t.join();
        }
    }
    /// Blocks until the shards exit.
    pub fn wait(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

impl ShardCtx {
    /// Builds a shard's state: each endpoint's handler tables are created here, on the shard.
    pub(crate) fn new(id: usize, cfg: Arc<Config>, peers: Arc<Peers>) -> ShardCtx {
        let endpoints = cfg
            .endpoints
            .iter()
            .map(|e| match &e.app {
                AppCfg::SocketIo { statics, dynamic } => {
                    EndpointRt::SocketIo(Namespaces::build(statics, dynamic))
                }
                AppCfg::Engine(factory) => {
                    let h = factory();
                    EndpointRt::Engine(Box::new(move |s: &Rc<Session>, p: Packet| {
                        let msg = match p {
                            Packet::Message(t) => crate::EngineMessage::Text(t),
                            Packet::Binary(b) => crate::EngineMessage::Binary(b),
                            _ => return,
                        };
                        h(&crate::EngineSocket(s.clone()), msg)
                    }))
                }
            })
            .collect();
        ShardCtx {
            id,
            cfg,
            endpoints,
            sessions: Default::default(),
            tombstones: Default::default(),
            conns: Default::default(),
            timers: Rc::new(Timers::default()),
            peers,
            adapter: Default::default(),
            shutting_down: Default::default(),
        }
    }
}

/// Which I/O driver a shard runs.
pub fn driver_name() -> &'static str {
    if monoio::utils::is_legacy() {
        "epoll"
    } else {
        "io_uring"
    }
}

fn run_shard(
    id: usize,
    cfg: Arc<Config>,
    peers: Arc<Peers>,
    listener: std::net::TcpListener,
    rx: crossbeam_channel::Receiver<ShardMsg>,
    ready: std::sync::mpsc::Sender<()>,
) {
    let use_uring = cfg.driver == Driver::Auto && monoio::utils::detect_uring();
    let main = move || shard_main(id, cfg, peers, listener, rx, ready);
    #[cfg(target_os = "linux")]
    if use_uring {
        match monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .with_entries(1024)
            .enable_timer()
            .build()
        {
            Ok(mut rt) => {
                tracing::info!(shard = id, "driver: io_uring");
                rt.block_on(main());
                return;
            }
            Err(e) => tracing::warn!(
                shard = id,
                "io_uring runtime failed ({e}); falling back to epoll"
            ),
        }
    }
    match monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
    {
        Ok(mut rt) => {
            tracing::info!(shard = id, "driver: epoll");
            rt.block_on(main());
        }
        Err(e) => tracing::error!(shard = id, "cannot build a runtime: {e}"),
    }
}

async fn shard_main(
    id: usize,
    cfg: Arc<Config>,
    peers: Arc<Peers>,
    listener: std::net::TcpListener,
    rx: crossbeam_channel::Receiver<ShardMsg>,
    ready: std::sync::mpsc::Sender<()>,
) {
    let ctx = Rc::new(ShardCtx::new(id, cfg, peers));
    shard::install(ctx.clone());
    let listener = match monoio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(shard = id, "listener: {e}");
            let _ = ready.send(());
            return;
        }
    };
    monoio::spawn(ctx.timers.clone().run());
    let inbox = monoio::spawn(shard::run_inbox(ctx.clone(), rx));
    let _ = ready.send(());
    let accept = async {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    monoio::spawn(conn::serve(stream, peer));
                }
                Err(e) => {
                    tracing::warn!(shard = id, "accept: {e}");
                    monoio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    };
    let listen_fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
    monoio::select! {
        _ = accept => {}
        _ = inbox => {}
    }
    // an accept may still be in flight: shutting the socket down completes it, so the
    // listener really closes when dropped below
    writer::shutdown_fd(listen_fd);
    // let close frames and final polling answers go out
    monoio::time::sleep(Duration::from_millis(100)).await;
}
