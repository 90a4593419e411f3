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
            cluster(ns);
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

/// Which sockets a cluster handler targets: `{"to": [rooms], "except": [rooms], "volatile":
/// bool, "thisNode": bool}` (every field optional).
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct Sel {
    to: Vec<String>,
    except: Vec<String>,
    volatile: bool,
    #[serde(rename = "thisNode")]
    this_node: bool,
}

impl Sel {
    fn op(&self) -> crate::BroadcastOperator {
        let mut op = crate::Io::of("/");
        for r in &self.to {
            op = op.to(r);
        }
        for r in &self.except {
            op = op.except(r);
        }
        if self.volatile {
            op = op.volatile();
        }
        if self.this_node {
            op = op.this_node();
        }
        op
    }
}

/// `{ok, responses}`: the answer of the handlers that collect acks.
#[derive(serde::Serialize)]
struct Collected {
    ok: bool,
    responses: Vec<sonic_rs::Value>,
}

fn collected(r: Result<Vec<RawArgs>, crate::BroadcastAckError>) -> Collected {
    let (ok, list) = match r {
        Ok(v) => (true, v),
        Err(e) => (false, e.responses),
    };
    let responses = list.iter().map(|a| a.get(0).unwrap_or_default()).collect();
    Collected { ok, responses }
}

/// A socket as the `c-fetch` handler reports it.
#[derive(serde::Serialize)]
struct Found {
    id: String,
    rooms: Vec<String>,
    remote: bool,
}

/// The cluster handlers of `/` (README "Several servers"; tests/cluster.rs and the Node
/// server of tests/js drive them): `c-emit(sel, payload)` emits `c`; `c-fetch(sel)`,
/// `c-join(sel, room)`, `c-leave(sel, room)`, `c-disconnect(sel, close)`,
/// `c-sse(event, arg)` (server-side emit with acks), `c-sse-noack(event, arg)`,
/// `c-ask(sel, ms)` (emits `vote` with acks), `c-rooms()`, `c-count()`, and
/// `c-remote(id, action, arg)` (emit/join/leave/disconnect on a fetched socket); server-side
/// listeners `ping` (answers `pong`) and `notify` (emits `notified` to this node's clients).
fn cluster(ns: &mut crate::Namespace) {
    ns.on(
        "c-emit",
        |_s: Socket, (sel, payload): (Sel, sonic_rs::Value), ack: AckSender| {
            sel.op().emit("c", (payload,));
            ack.send((true,));
        },
    );
    ns.on_async(
        "c-fetch",
        |_s: Socket, (sel,): (Sel,), ack: AckSender| async move {
            let mut found: Vec<Found> = (sel.op().fetch_sockets().await)
                .into_iter()
                .map(|s| Found {
                    remote: s.is_remote(),
                    id: s.id,
                    rooms: s.rooms,
                })
                .collect();
            found.sort_by(|a, b| a.id.cmp(&b.id));
            ack.send((found,));
        },
    );
    ns.on(
        "c-join",
        |_s: Socket, (sel, room): (Sel, String), ack: AckSender| {
            sel.op().sockets_join(&room);
            ack.send((true,));
        },
    );
    ns.on(
        "c-leave",
        |_s: Socket, (sel, room): (Sel, String), ack: AckSender| {
            sel.op().sockets_leave(&room);
            ack.send((true,));
        },
    );
    ns.on(
        "c-disconnect",
        |_s: Socket, (sel, close): (Sel, bool), ack: AckSender| {
            sel.op().disconnect_sockets(close);
            ack.send((true,));
        },
    );
    ns.on_async(
        "c-sse",
        |_s: Socket, (event, arg): (String, sonic_rs::Value), ack: AckSender| async move {
            let r = crate::Io::of("/")
                .server_side_emit_with_ack(&event, (arg,))
                .await;
            ack.send((collected(r),));
        },
    );
    ns.on(
        "c-sse-noack",
        |_s: Socket, (event, arg): (String, sonic_rs::Value), ack: AckSender| {
            crate::Io::of("/").server_side_emit(&event, (arg,));
            ack.send((true,));
        },
    );
    ns.on_async(
        "c-ask",
        |_s: Socket, (sel, ms): (Sel, u64), ack: AckSender| async move {
            let op = sel.op().timeout(Duration::from_millis(ms));
            ack.send((collected(op.emit_with_ack("vote", ("q",)).await),));
        },
    );
    ns.on_async("c-rooms", |_s: Socket, _: (), ack: AckSender| async move {
        ack.send((crate::Io::of("/").all_rooms().await,));
    });
    ns.on_async("c-count", |_s: Socket, _: (), ack: AckSender| async move {
        ack.send((crate::Io::of("/").server_count().await,));
    });
    ns.on_async(
        "c-remote",
        |_s: Socket, (id, action, arg): (String, String, String), ack: AckSender| async move {
            let found = crate::Io::of("/").to(&id).fetch_sockets().await;
            for s in &found {
                let _ = match action.as_str() {
                    "emit" => s.emit("c", (arg.as_str(),)),
                    "join" => s.join(&arg),
                    "leave" => s.leave(&arg),
                    _ => s.disconnect(arg == "close"),
                };
            }
            ack.send((found.len(),));
        },
    );
    ns.on_server_side_emit("ping", |(x,): (sonic_rs::Value,), ack: crate::ServerAck| {
        ack.send((("pong", x),));
    });
    ns.on_server_side_emit(
        "notify",
        |(x,): (sonic_rs::Value,), _ack: crate::ServerAck| {
            crate::Io::of("/").this_node().emit("notified", (x,));
        },
    );
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
