//! The `ringio` binary: `serve` (the demo/bench handler set) and `conformance` (the handler set
//! the official protocol suites need).
//!
//! Must not: contain server logic (it parses options and calls the library).

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
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "0.0.0.0")]
    host: IpAddr,
    /// Number of shards (threads); default: one per core.
    #[arg(long, env = "RINGIO_SHARDS")]
    shards: Option<usize>,
    /// How a shard waits between bursts of work: `park`, `spin:<us>` (poll for up to <us>
    /// after the last event while traffic is dense) or `coalesce:<us>` (while traffic is dense,
    /// handle arrivals in batches at most <us> apart instead of being woken per message).
    #[arg(long, env = "RINGIO_IDLE", value_parser = ringio::IdlePolicy::parse)]
    idle: Option<ringio::IdlePolicy>,
    /// io_uring setup flags: `auto` (what --idle needs), `plain`, `coop`
    /// (COOP_TASKRUN|TASKRUN_FLAG) or `defer` (SINGLE_ISSUER|DEFER_TASKRUN).
    #[arg(long, env = "RINGIO_URING_SETUP", value_parser = ringio::UringSetup::parse)]
    uring_setup: Option<ringio::UringSetup>,
    /// Do not pin shard i to core i.
    #[arg(long, env = "RINGIO_NO_PIN")]
    no_pin: bool,
    /// Join a cluster through Redis (Node's @socket.io/redis-adapter protocol), e.g.
    /// redis://127.0.0.1:6379.
    #[arg(long, env = "RINGIO_REDIS")]
    redis: Option<String>,
    /// Use Redis 7 sharded pub/sub (Node's createShardedAdapter) instead of the classic
    /// protocol.
    #[arg(long, env = "RINGIO_REDIS_SHARDED")]
    redis_sharded: bool,
    /// Channel prefix of the Redis adapter (Node's `key` / `channelPrefix`).
    #[arg(long, env = "RINGIO_REDIS_PREFIX", default_value = "socket.io")]
    redis_prefix: String,
    /// This node's id (0-4095), carried by its session ids; default: random. Give each node
    /// its own when a load balancer routes by it.
    #[arg(long, env = "RINGIO_NODE_ID")]
    node_id: Option<u16>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the demo/bench handler set (echo, join, leave, bcast, bcast-payload, disconnect-me, /chat).
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
    let (builder, common, what) = match cli.cmd {
        Cmd::Serve(c) => (ringio::demo::bench(ringio::Server::builder()), c, "serve"),
        Cmd::Conformance(c) => (
            ringio::demo::conformance(ringio::Server::builder()),
            c,
            "conformance",
        ),
    };
    let mut builder = builder.pin_shards(!common.no_pin);
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
    eprintln!("ringio: shutting down");
    running.shutdown();
}
