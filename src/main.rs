//! The `ringio` binary: `serve` (the demo/bench handler set) and `conformance` (the handler set
//! the official protocol suites need).
//!
//! Must not: contain server logic (it parses options and calls the library).

use clap::builder::BoolishValueParser;
use clap::{Parser, Subcommand};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "ringio",
    version,
    about = "Socket.IO server on io_uring, thread-per-core"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
struct Common {
    /// Port to listen on.
    #[arg(long, env = "RINGIO_PORT", default_value_t = 3000)]
    port: u16,
    /// Address to bind.
    #[arg(long, env = "RINGIO_HOST", default_value = "0.0.0.0")]
    host: IpAddr,
    /// Number of shards (threads); default: one per core.
    #[arg(long, env = "RINGIO_SHARDS")]
    shards: Option<usize>,
    /// How a shard waits between bursts of work: `park`, `spin:<us>` (poll for up to <us>
    /// after the last event while traffic is dense) or `coalesce:<us>` (while traffic is dense,
    /// handle arrivals in batches at most <us> apart instead of being woken per message)
    /// [default: coalesce:200].
    #[arg(long, env = "RINGIO_IDLE", value_parser = ringio::IdlePolicy::parse)]
    idle: Option<ringio::IdlePolicy>,
    /// io_uring setup flags: `auto` (what --idle needs), `plain`, `coop`
    /// (COOP_TASKRUN|TASKRUN_FLAG) or `defer` (SINGLE_ISSUER|DEFER_TASKRUN).
    #[arg(long, env = "RINGIO_URING_SETUP", value_parser = ringio::UringSetup::parse)]
    uring_setup: Option<ringio::UringSetup>,
    /// Pin shard i to core i (default: the scheduler places the shards).
    #[arg(long, env = "RINGIO_PIN", value_parser = BoolishValueParser::new())]
    pin: bool,
    /// Join a cluster through Redis (Node's @socket.io/redis-adapter protocol), e.g.
    /// redis://127.0.0.1:6379.
    #[arg(long, env = "RINGIO_REDIS")]
    redis: Option<String>,
    /// Use Redis 7 sharded pub/sub (Node's createShardedAdapter) instead of the classic
    /// protocol.
    #[arg(long, env = "RINGIO_REDIS_SHARDED", value_parser = BoolishValueParser::new())]
    redis_sharded: bool,
    /// Channel prefix of the Redis adapter (Node's `key` / `channelPrefix`).
    #[arg(long, env = "RINGIO_REDIS_PREFIX", default_value = "socket.io")]
    redis_prefix: String,
    /// This node's id (0-4095), carried by its session ids; default: random. Give each node
    /// its own when a load balancer routes by it.
    #[arg(long, env = "RINGIO_NODE_ID")]
    node_id: Option<u16>,
    #[command(flatten)]
    server: ServerOpts,
}

/// Server options (Node's names and units: durations in milliseconds). Absent, each keeps the
/// default of the handler set: Node's for `serve`. `conformance` applies them first, then the
/// settings the official suites assert (ping 300/200 ms, max payload 1e6, connect timeout
/// 1000 ms, CORS `*`), which win.
#[derive(clap::Args, Clone)]
struct ServerOpts {
    /// Socket.IO path (Node's `path`) [default: /socket.io/].
    #[arg(long, env = "RINGIO_PATH")]
    path: Option<String>,
    /// `pingInterval`, ms [default: 25000; conformance: always 300].
    #[arg(long, env = "RINGIO_PING_INTERVAL", value_name = "MS")]
    ping_interval: Option<u64>,
    /// `pingTimeout`, ms [default: 20000; conformance: always 200].
    #[arg(long, env = "RINGIO_PING_TIMEOUT", value_name = "MS")]
    ping_timeout: Option<u64>,
    /// `upgradeTimeout`, ms [default: 10000].
    #[arg(long, env = "RINGIO_UPGRADE_TIMEOUT", value_name = "MS")]
    upgrade_timeout: Option<u64>,
    /// `maxHttpBufferSize` (advertised as maxPayload; also the WebSocket message limit), bytes
    /// [default: 1000000; conformance: always 1000000].
    #[arg(long, env = "RINGIO_MAX_PAYLOAD", value_name = "BYTES")]
    max_payload: Option<usize>,
    /// `connectTimeout`: close a connection that joins no namespace in time, ms
    /// [default: 45000; conformance: always 1000].
    #[arg(long, env = "RINGIO_CONNECT_TIMEOUT", value_name = "MS")]
    connect_timeout: Option<u64>,
    /// `transports`: `polling`, `websocket`, or both, comma-separated
    /// [default: polling,websocket].
    #[arg(long, env = "RINGIO_TRANSPORTS", value_delimiter = ',', value_parser = ["polling", "websocket"])]
    transports: Option<Vec<String>>,
    /// `allowUpgrades: false`: polling sessions are not offered the upgrade to WebSocket.
    #[arg(long, env = "RINGIO_NO_UPGRADES", value_parser = BoolishValueParser::new())]
    no_upgrades: bool,
    /// `allowEIO3`: also accept Engine.IO v3 clients (socket.io-client 2.x); without it they
    /// get Node's "Unsupported protocol version" (400, code 5).
    #[arg(long, env = "RINGIO_ALLOW_EIO3", value_parser = BoolishValueParser::new())]
    allow_eio3: bool,
    /// CORS: `*` for any origin, else an allowed origin (reflected, with credentials);
    /// repeatable, or comma-separated in the environment [default: `*`; conformance: always
    /// `*`].
    #[arg(
        long,
        env = "RINGIO_CORS",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    cors: Vec<String>,
    /// `serveClient`: serve socket.io.js, socket.io.min.js, socket.io.esm.min.js (and their
    /// .map files) under the path, from DIR: the dist/ folder of the socket.io-client npm
    /// package (e.g. tests/js/node_modules/socket.io-client/dist) [default: not served].
    #[arg(long, env = "RINGIO_SERVE_CLIENT", value_name = "DIR")]
    serve_client: Option<std::path::PathBuf>,
    /// `cookie`: set a cookie with this name holding the session id on polling handshakes
    /// [default: no cookie; Node's default name when enabled: io].
    #[arg(long, env = "RINGIO_COOKIE", value_name = "NAME")]
    cookie: Option<String>,
    /// The cookie's `path` (`none`: no Path attribute) [default: /].
    #[arg(long, env = "RINGIO_COOKIE_PATH", requires = "cookie")]
    cookie_path: Option<String>,
    /// The cookie's `sameSite`: strict, lax, none, or off (no attribute) [default: lax].
    #[arg(long, env = "RINGIO_COOKIE_SAME_SITE", requires = "cookie")]
    cookie_same_site: Option<String>,
    /// The cookie without `HttpOnly` [default: HttpOnly].
    #[arg(long, env = "RINGIO_COOKIE_NO_HTTP_ONLY", requires = "cookie", value_parser = BoolishValueParser::new())]
    cookie_no_http_only: bool,
}

impl ServerOpts {
    /// Applies the options that were given.
    fn apply(self, mut b: ringio::ServerBuilder) -> Result<ringio::ServerBuilder, String> {
        let ms = Duration::from_millis;
        if let Some(p) = self.path {
            b = b.path(&p);
        }
        if let Some(v) = self.ping_interval {
            b = b.ping_interval(ms(v));
        }
        if let Some(v) = self.ping_timeout {
            b = b.ping_timeout(ms(v));
        }
        if let Some(v) = self.upgrade_timeout {
            b = b.upgrade_timeout(ms(v));
        }
        if let Some(v) = self.max_payload {
            b = b.max_payload(v);
        }
        if let Some(v) = self.connect_timeout {
            b = b.connect_timeout(ms(v));
        }
        if let Some(t) = self.transports {
            let has = |n: &str| t.iter().any(|x| x == n);
            b = b.transports(has("polling"), has("websocket"));
        }
        if self.no_upgrades {
            b = b.allow_upgrades(false);
        }
        if self.allow_eio3 {
            b = b.allow_eio3(true);
        }
        if self.cors.iter().any(|o| o == "*") {
            b = b.cors(ringio::Cors::Any);
        } else if !self.cors.is_empty() {
            b = b.cors(ringio::Cors::List(self.cors));
        }
        if let Some(name) = self.cookie {
            let mut c = ringio::CookieOptions {
                name,
                http_only: !self.cookie_no_http_only,
                ..Default::default()
            };
            if let Some(p) = self.cookie_path {
                c.path = (p != "none").then_some(p);
            }
            if let Some(s) = self.cookie_same_site {
                c.same_site = match s.as_str() {
                    "off" => None,
                    s => Some(ringio::SameSite::parse(s)?),
                };
            }
            c.validate()?;
            b = b.cookie(c);
        }
        if let Some(dir) = self.serve_client {
            b = b.serve_client(&dir).map_err(|e| e.to_string())?;
        }
        Ok(b)
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the demo/bench handler set (echo, join, leave, bcast, bcast-payload, to-room,
    /// disconnect-me, /chat) and the chat page at / (it needs --serve-client).
    Serve(Common),
    /// Run the handler set of the official Engine.IO / Socket.IO protocol suites.
    Conformance(Common),
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let options = |c: &Common, b| {
        c.server.clone().apply(b).unwrap_or_else(|e| {
            eprintln!("ringio: {e}");
            std::process::exit(2);
        })
    };
    let (builder, common, what) = match cli.cmd {
        Cmd::Serve(c) => {
            let b = ringio::demo::chat_page(ringio::demo::bench(ringio::Server::builder()));
            (options(&c, b), c, "serve")
        }
        Cmd::Conformance(c) => {
            let b = options(&c, ringio::Server::builder());
            (ringio::demo::conformance(b), c, "conformance")
        }
    };
    let mut builder = builder.pin_shards(common.pin);
    if let Some(n) = common.shards {
        builder = builder.shards(n);
    }
    if let Some(p) = common.idle {
        builder = builder.idle(p);
    }
    if let Some(s) = common.uring_setup {
        builder = builder.uring_setup(s);
    }
    if let Some(id) = common.node_id {
        builder = builder.node_id(id);
    }
    if let Some(url) = &common.redis {
        let mut opts = ringio::cluster::RedisOptions::new(url);
        opts.sharded = common.redis_sharded;
        opts.prefix = common.redis_prefix.clone();
        match ringio::cluster::RedisAdapter::new(opts) {
            Ok(a) => builder = builder.adapter(a),
            Err(e) => {
                eprintln!("ringio: {e}");
                std::process::exit(2);
            }
        }
    }
    let addr = SocketAddr::new(common.host, common.port);
    let running = match builder.build().listen(addr) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ringio: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    // SAFETY: installing a handler that only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    eprintln!(
        "ringio {what} listening on {} ({} shards, node {})",
        running.local_addr(),
        common
            .shards
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        running.node_id()
    );
    while !STOP.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("ringio: shutting down ({:?})", running.metrics());
    running.shutdown();
}
