//! The `ringio` binary: `serve` (the demo/bench handler set) and `conformance` (the handler set
//! the official protocol suites need).

use clap::{Parser, Subcommand};
use ringio::{AckSender, EngineMessage, RawArgs, Server, Socket};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    #[arg(long)]
    shards: Option<usize>,
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

fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

static BCAST_SEQ: AtomicU64 = AtomicU64::new(0);

fn bench_server() -> ringio::ServerBuilder {
    Server::builder()
        .ns("/", |ns| {
            ns.on("echo", |socket: Socket, args: RawArgs, ack: AckSender| {
                if ack.expected() {
                    ack.send(args);
                } else {
                    socket.emit("echo", args);
                }
            });
            ns.on(
                "join",
                |socket: Socket, (room,): (String,), ack: AckSender| {
                    socket.join(&room);
                    ack.send((true,));
                },
            );
            ns.on(
                "leave",
                |socket: Socket, (room,): (String,), ack: AckSender| {
                    socket.leave(&room);
                    ack.send((true,));
                },
            );
            ns.on(
                "bcast",
                |socket: Socket, (room,): (Option<String>,), ack: AckSender| {
                    let n = BCAST_SEQ.fetch_add(1, Ordering::Relaxed) + 1;
                    let payload = sonic_rs::json!({"seq": n, "t": now_ms()});
                    match room {
                        Some(r) => socket.to(&r).emit("b", (payload,)),
                        None => ringio::Io::of("/").emit("b", (payload,)),
                    }
                    ack.send((n,));
                },
            );
            ns.on(
                "bcast-payload",
                |socket: Socket, args: RawArgs, ack: AckSender| {
                    let room: Option<String> = args.get(0).unwrap_or(None);
                    let payload = args.raw(1).unwrap_or("null").to_string();
                    let raw = ringio::args::RawJson(payload);
                    match room {
                        Some(r) => socket.to(&r).emit("b", raw),
                        None => ringio::Io::of("/").emit("b", raw),
                    }
                    ack.send((true,));
                },
            );
            ns.on("disconnect-me", |socket: Socket, _: (), _ack: AckSender| {
                socket.disconnect()
            });
        })
        .ns("/chat", |ns| {
            ns.on(
                "message",
                |socket: Socket, (text,): (sonic_rs::Value,), _ack: AckSender| {
                    let from = socket.id().to_string();
                    socket
                        .broadcast()
                        .emit("message", (sonic_rs::json!({"from": from, "text": text}),));
                },
            );
        })
        .cors(ringio::Cors::Any)
}

fn conformance_server() -> ringio::ServerBuilder {
    fn send_auth(socket: &Socket) {
        let auth = ringio::args::RawJson(socket.auth_raw().to_string());
        socket.emit("auth", auth);
    }
    Server::builder()
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(200))
        .max_payload(1_000_000)
        .connect_timeout(Duration::from_millis(1000))
        .cors(ringio::Cors::Any)
        .ns("/", |ns| {
            ns.on_connect(|socket| send_auth(&socket));
            ns.on(
                "message",
                |socket: Socket, args: RawArgs, _ack: AckSender| {
                    socket.emit("message-back", args);
                },
            );
            ns.on(
                "message-with-ack",
                |_socket: Socket, args: RawArgs, ack: AckSender| ack.send(args),
            );
        })
        .ns("/custom", |ns| {
            ns.on_connect(|socket| send_auth(&socket));
        })
        .engine_endpoint("/engine.io/", || {
            Box::new(|socket: &ringio::EngineSocket, msg: EngineMessage| socket.send(msg))
        })
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
        Cmd::Serve(c) => (bench_server(), c, "serve"),
        Cmd::Conformance(c) => (conformance_server(), c, "conformance"),
    };
    let builder = match common.shards {
        Some(n) => builder.shards(n),
        None => builder,
    };
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
        "ringio {what} listening on {} ({} shards)",
        running.local_addr(),
        common
            .shards
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    );
    while !STOP.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("ringio: shutting down");
    running.shutdown();
}
