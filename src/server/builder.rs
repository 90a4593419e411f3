//! `Server::builder()`: the options of a server (Node's names and defaults) and the setup
//! closures of its namespaces (shared by the shards, hence `Send + Sync`).
//!
//! Must not: start anything (`Server::listen` does).

use super::{Config, Driver, EndpointCfg, IdlePolicy, Server, UringSetup};
use crate::engine::hooks::{AllowOutcome, AllowRequest, ConnectionError};
use crate::engine::raw::RawHandler;
use crate::engine::{EngineConfig, EngineLimits};
use crate::proto::http::{CookieOptions, Cors, Head, ResponseHeaders, StaticFile, StaticFiles};
use crate::sio::cluster::ClusterAdapter;
use crate::sio::ns::{Matcher, Setup};
use crate::sio::{Namespace, SioConfig};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// A raw Engine.IO message handler factory (called once per shard).
pub type EngineHandlerFactory = Arc<dyn Fn() -> RawHandler + Send + Sync>;

/// Builds a [`Server`].
///
/// The HTTP options and the engine's hooks, as Node's:
///
/// ```no_run
/// use ringio::{CookieOptions, CorsOptions, CorsOrigin, Server};
///
/// let server = Server::builder()
///     // Node: cors: { origin: ["https://app.example"], credentials: true, maxAge: 600 }
///     .cors(
///         CorsOptions::new(CorsOrigin::List(vec!["https://app.example".into()]))
///             .credentials(true)
///             .max_age(600),
///     )
///     .cookie(CookieOptions::default()) // Set-Cookie: io=<sid>; Path=/; HttpOnly; SameSite=Lax
///     .on_headers(|headers, _req| headers.set("X-Served-By", "ringio"))
///     .on_connection_error(|e| eprintln!("{} {} {}", e.code, e.message, e.context.to_json()))
///     // runs on the shard that received the request; the shard goes on meanwhile
///     .allow_request_async(|req| async move {
///         match req.origin() {
///             Some(_) => Ok(()),
///             None => Err("an Origin is required".to_string()), // 403 {"code":4,"message":"an Origin is required"}
///         }
///     })
///     .build();
/// # let _ = server;
/// ```
pub struct ServerBuilder {
    engine: EngineConfig,
    sio: SioConfig,
    extra: Vec<EndpointCfg>,
    shards: usize,
    presence_slots: usize,
    inbox_capacity: usize,
    driver: Driver,
    idle: IdlePolicy,
    uring_setup: UringSetup,
    pin: bool,
    limits: EngineLimits,
    pages: StaticFiles,
    node_id: Option<u16>,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        ServerBuilder {
            engine: EngineConfig::default(),
            sio: SioConfig {
                statics: Vec::new(),
                dynamic: Vec::new(),
                connect_timeout: Duration::from_millis(45_000),
                max_attachments: 10,
                cluster: None,
            },
            extra: Vec::new(),
            shards: std::thread::available_parallelism().map_or(1, |n| n.get()),
            presence_slots: 1 << 16,
            inbox_capacity: 4096,
            driver: Driver::Auto,
            idle: IdlePolicy::DEFAULT,
            uring_setup: UringSetup::Auto,
            pin: false,
            limits: EngineLimits::default(),
            pages: StaticFiles::new(),
            node_id: None,
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
        self.sio.connect_timeout = d;
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
    /// `allowEIO3`: also accept Engine.IO v3 clients (socket.io-client 2.x: Socket.IO protocol
    /// v4, where "/" is joined without a CONNECT and the client pings the server).
    pub fn allow_eio3(mut self, on: bool) -> Self {
        self.engine.allow_eio3 = on;
        self
    }
    /// CORS: [`Cors::Any`], [`Cors::Reflect`], [`Cors::List`], or every option of the `cors`
    /// package with [`crate::CorsOptions`].
    pub fn cors(mut self, cors: impl Into<Cors>) -> Self {
        self.engine.cors = cors.into().into_options();
        self
    }
    /// The `cookie` option: polling handshakes set a cookie holding the session id.
    pub fn cookie(mut self, cookie: CookieOptions) -> Self {
        self.engine.cookie = Some(cookie);
        self
    }
    /// `allowRequest`: return `false` or `Err(message)` to refuse a handshake (403, code 4;
    /// the message, when not empty, replaces "Forbidden" in the body).
    pub fn allow_request<R: AllowOutcome>(
        mut self,
        f: impl Fn(&Head) -> R + Send + Sync + 'static,
    ) -> Self {
        let f = move |h: &Head| f(h).into_result();
        self.engine.hooks.allow_request = Some(AllowRequest::Sync(Arc::new(f)));
        self
    }
    /// `allowRequest` decided by a future that runs on the shard that received the request
    /// (the request waits; the shard goes on). `Err(message)` refuses (403, code 4).
    pub fn allow_request_async<F>(mut self, f: impl Fn(Head) -> F + Send + Sync + 'static) -> Self
    where
        F: Future<Output = Result<(), String>> + 'static,
    {
        let f = move |h: Head| -> crate::engine::AllowFuture { Box::pin(f(h)) };
        self.engine.hooks.allow_request = Some(AllowRequest::Async(Arc::new(f)));
        self
    }
    /// Node's engine `headers` event: headers added to every transport response (polling
    /// handshake, GET and POST answers, every WebSocket `101`).
    pub fn on_headers(
        mut self,
        f: impl Fn(&mut ResponseHeaders, &Head) + Send + Sync + 'static,
    ) -> Self {
        self.engine.hooks.headers = Some(Arc::new(f));
        self
    }
    /// Node's engine `initial_headers` event: headers added to the first response of a
    /// session (polling handshake, WebSocket `101` without a sid), before `headers` runs; it
    /// sees the `Set-Cookie` of the `cookie` option.
    pub fn on_initial_headers(
        mut self,
        f: impl Fn(&mut ResponseHeaders, &Head) + Send + Sync + 'static,
    ) -> Self {
        self.engine.hooks.initial_headers = Some(Arc::new(f));
        self
    }
    /// Node's engine `connection_error` event: called for every refused request with Node's
    /// code, message and context.
    pub fn on_connection_error(
        mut self,
        f: impl Fn(&ConnectionError<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.engine.hooks.connection_error = Some(Arc::new(f));
        self
    }
    /// Node's `serveClient`: serves the official client bundle (`socket.io.js`,
    /// `socket.io.min.js`, `socket.io.esm.min.js`, `socket.io.msgpack.min.js` and their `.map`
    /// files) under the path, from `dir`: the `dist/` folder of the `socket.io-client` npm
    /// package. The files are read now, once; `socket.io.js` must be there.
    pub fn serve_client(mut self, dir: impl AsRef<std::path::Path>) -> std::io::Result<Self> {
        self.engine.files = Some(Arc::new(super::client_files::load(dir.as_ref())?));
        Ok(self)
    }
    /// Serves `body` at the exact request path `path` (outside the Socket.IO path), for GET
    /// and HEAD.
    pub fn page(mut self, path: &str, content_type: &str, body: impl Into<bytes::Bytes>) -> Self {
        let file = StaticFile {
            body: body.into(),
            content_type: content_type.into(),
            etag: None,
            cache_control: Some("no-cache".into()),
        };
        self.pages.insert(path, file);
        self
    }
    /// Most binary attachments accepted in one packet (default 10).
    pub fn max_attachments(mut self, n: usize) -> Self {
        self.sio.max_attachments = n;
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
    /// How a shard waits for work between bursts (see [`IdlePolicy`]; BENCHMARKS.md has the
    /// measurements behind the default).
    pub fn idle(mut self, policy: IdlePolicy) -> Self {
        self.idle = policy;
        self
    }
    /// io_uring setup flags (default: what the idle policy needs).
    pub fn uring_setup(mut self, setup: UringSetup) -> Self {
        self.uring_setup = setup;
        self
    }
    /// Pin shard i to core i % cores (default: off; pinned shards share a core with whatever
    /// else runs there, and on a small machine that cost more than it saved: BENCHMARKS.md,
    /// "The wakeup tax").
    pub fn pin_shards(mut self, on: bool) -> Self {
        self.pin = on;
        self
    }
    /// Per-connection output queue caps (frames, bytes). A connection whose queue would pass
    /// either is closed with reason "slow consumer"; volatile packets are dropped before that,
    /// whenever the transport is not ready. Defaults: 16 384 frames, 8 MiB.
    pub fn max_queue(mut self, frames: usize, bytes: usize) -> Self {
        self.limits.queue.frames = frames.max(1);
        self.limits.queue.bytes = bytes.max(1);
        self
    }
    /// Capacity of each shard's inbox (jobs from other shards).
    pub fn inbox_capacity(mut self, n: usize) -> Self {
        self.inbox_capacity = n.max(1);
        self
    }
    /// Size of the room presence table (tests use tiny tables to force hash collisions).
    pub fn presence_slots(mut self, n: usize) -> Self {
        self.presence_slots = n;
        self
    }
    /// The cluster adapter that carries broadcasts and server-wide operations to the other
    /// nodes (Node's `adapter` option), e.g. [`crate::cluster::RedisAdapter`]. Without one the
    /// server is a cluster of one.
    pub fn adapter(mut self, adapter: impl ClusterAdapter) -> Self {
        self.sio.cluster = Some(Arc::new(adapter));
        self
    }
    /// This node's id (0..4096), carried by every session and socket id so that a request
    /// landing on another node is refused at once (and a load balancer can route by it);
    /// default: random. Give each node of a cluster its own.
    pub fn node_id(mut self, id: u16) -> Self {
        self.node_id = Some(id & (crate::proto::id::MAX_NODES as u16 - 1));
        self
    }
    /// A namespace; `setup` runs once per shard to register its handlers.
    pub fn ns(
        mut self,
        name: &str,
        setup: impl Fn(&mut Namespace) + Send + Sync + 'static,
    ) -> Self {
        let setup: Setup = Arc::new(setup);
        self.sio.statics.push((name.to_string(), setup));
        self
    }
    /// Dynamic namespaces: any name the predicate accepts is created on first connect.
    pub fn dynamic_ns(
        mut self,
        pred: impl Fn(&str) -> bool + Send + Sync + 'static,
        setup: impl Fn(&mut Namespace) + Send + Sync + 'static,
    ) -> Self {
        let setup: Setup = Arc::new(setup);
        self.sio
            .dynamic
            .push((Matcher::Predicate(Arc::new(pred)), setup));
        self
    }
    /// Dynamic namespaces matching a regular expression.
    pub fn ns_regex(
        mut self,
        pattern: &str,
        setup: impl Fn(&mut Namespace) + Send + Sync + 'static,
    ) -> Result<Self, regex_lite::Error> {
        let re = regex_lite::Regex::new(pattern)?;
        let setup: Setup = Arc::new(setup);
        self.sio.dynamic.push((Matcher::Regex(re), setup));
        Ok(self)
    }
    /// A raw Engine.IO endpoint at `path` with the current engine options; `factory` runs once
    /// per shard and returns the message handler.
    pub fn engine_endpoint(
        mut self,
        path: &str,
        factory: impl Fn() -> RawHandler + Send + Sync + 'static,
    ) -> Self {
        let mut engine = self.engine.clone();
        engine.path = path.into();
        // the client bundle is Socket.IO's (a raw engine.io server does not serve it)
        engine.files = None;
        self.extra.push(EndpointCfg::Raw(engine, Arc::new(factory)));
        self
    }
    #[cfg_attr(not(feature = "bench-support"), allow(dead_code))]
    pub(crate) fn config(self) -> Arc<Config> {
        self.build().cfg
    }
    /// Finishes the configuration.
    pub fn build(self) -> Server {
        let mut endpoints = vec![EndpointCfg::SocketIo(self.engine, self.sio)];
        endpoints.extend(self.extra);
        Server {
            cfg: Arc::new(Config {
                driver: self.driver,
                idle: self.idle,
                uring_setup: self.uring_setup,
                pin: self.pin,
                limits: self.limits,
                endpoints,
                shards: self.shards,
                presence_slots: self.presence_slots,
                inbox_capacity: self.inbox_capacity,
                pages: Arc::new(self.pages),
                node_id: self.node_id.unwrap_or_else(crate::proto::id::random_node),
            }),
        }
    }
}
