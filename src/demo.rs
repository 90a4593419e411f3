//! Ready-made handler sets: the demo/bench set of `ringio serve` and the set of `ringio
//! conformance`. They double as examples of the API.
//!
//! Must not: use anything but the public API (they are examples).

use crate::{AckSender, EngineMessage, RawArgs, ServerBuilder, Socket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// The `bcast` sequence: one counter per server process, so every receiver of one `bcast` sees
/// the `seq` its ack returned.
static BCAST_SEQ: AtomicU64 = AtomicU64::new(0);

/// The `b` payload of `bcast`. Objects are written in field order, as Node keeps insertion
/// order (`sonic_rs::json!` does not: it is not used for objects a client sees).
#[derive(serde::Serialize)]
struct Bcast {
    seq: u64,
    t: f64,
}

/// A `/chat` message as every other member receives it: `{"from":..,"text":..}`.
#[derive(serde::Serialize)]
struct ChatMessage {
    from: String,
    text: sonic_rs::Value,
}

/// The demo/bench handler set of `ringio serve` (shared with the load harness and its peers;
/// see `bench-handlers.md`): `echo`, `join`, `leave`, `bcast`, `bcast-payload`, `to-room`,
/// `disconnect-me` on `/`, and `message` on `/chat`.
pub fn bench(builder: ServerBuilder) -> ServerBuilder {
    builder
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
                |_socket: Socket, (room,): (Option<String>,), ack: AckSender| {
                    let n = BCAST_SEQ.fetch_add(1, Ordering::Relaxed) + 1;
                    let payload = Bcast {
                        seq: n,
                        t: now_ms(),
                    };
                    // to the room's members, the sender included (bench-handlers.md)
                    match room {
                        Some(r) => crate::Io::of("/").to(&r).emit("b", (payload,)),
                        None => crate::Io::of("/").emit("b", (payload,)),
                    }
                    ack.send((n,));
                },
            );
            ns.on(
                "bcast-payload",
                |_socket: Socket, args: RawArgs, ack: AckSender| {
                    let room: Option<String> = args.get(0).unwrap_or(None);
                    // argument 1 alone, with the attachments: binary inside it survives
                    let payload = args.only(1);
                    match room {
                        Some(r) => crate::Io::of("/").to(&r).emit("b", payload),
                        None => crate::Io::of("/").emit("b", payload),
                    }
                    ack.send((true,));
                },
            );
            ns.on(
                "to-room",
                |socket: Socket, args: RawArgs, ack: AckSender| {
                    let Ok(room) = args.get::<String>(0) else {
                        return;
                    };
                    // everyone in the room but the sender (Node's `socket.to(room)`)
                    socket.to(&room).emit("b", args.only(1));
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
                    let msg = ChatMessage { from, text };
                    socket.broadcast().emit("message", (msg,));
                },
            );
        })
        .cors(crate::Cors::Any)
}

/// The chat page of `ringio serve` (`src/demo_chat.html`): it loads the official client bundle
/// from `/socket.io/socket.io.js` (so the server needs `serve_client`), joins namespace `/chat`
/// (the transports come from its URL: `?transports=polling`), sends `message` and shows what
/// the others send.
pub const CHAT_PAGE: &str = include_str!("demo_chat.html");

/// Serves [`CHAT_PAGE`] at `/` and `/chat.html`.
pub fn chat_page(builder: ServerBuilder) -> ServerBuilder {
    let ct = "text/html; charset=utf-8";
    builder
        .page("/", ct, CHAT_PAGE.as_bytes())
        .page("/chat.html", ct, CHAT_PAGE.as_bytes())
}

/// The handler set the official protocol suites need: `/engine.io/` raw echo, `/socket.io/`
/// with `auth`, `message` -> `message-back`, `message-with-ack`, namespace `/custom`,
/// pingInterval 300 ms, pingTimeout 200 ms, connectTimeout 1000 ms.
pub fn conformance(builder: ServerBuilder) -> ServerBuilder {
    fn send_auth(socket: &Socket) {
        let auth = crate::args::RawJson(socket.auth_raw().to_string());
        socket.emit("auth", auth);
    }
    builder
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(200))
        .max_payload(1_000_000)
        .connect_timeout(Duration::from_millis(1000))
        .cors(crate::Cors::Any)
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
            Box::new(|socket: &crate::EngineSocket, msg: EngineMessage| socket.send(msg))
        })
}
