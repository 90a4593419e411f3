//! socketioxide 0.18 peer for the ringio load harness: exactly the bench handler set of
//! shared/docs/bench-handlers.md, on 127.0.0.1:$PORT, socketioxide defaults otherwise.

use serde::de::{Deserialize, Deserializer, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeTuple, Serializer};
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::handler::{FromMessageParts, Value};
use socketioxide::socket::Socket;
use socketioxide::SocketIo;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// All the arguments of an event, as many as the client sent. Tuple-like in the serde model, so
/// socketioxide hands over (and sends back) every argument rather than the first one only.
struct Args(Vec<rmpv::Value>);

impl<'de> Deserialize<'de> for Args {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Args;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("event arguments")
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut s: S) -> Result<Args, S::Error> {
                let mut v = Vec::new();
                while let Some(x) = s.next_element()? {
                    v.push(x);
                }
                Ok(Args(v))
            }
        }
        d.deserialize_tuple(usize::MAX, V)
    }
}

impl Serialize for Args {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(self.0.len())?;
        for x in &self.0 {
            t.serialize_element(x)?;
        }
        t.end()
    }
}

/// Whether the client asked for an ack (AckSender alone does not tell).
struct HasAck(bool);
impl<A: Adapter> FromMessageParts<A> for HasAck {
    type Error = Infallible;
    fn from_message_parts(
        _: &Arc<Socket<A>>,
        _: &mut Value,
        ack_id: &Option<i64>,
    ) -> Result<Self, Infallible> {
        Ok(HasAck(ack_id.is_some()))
    }
}

/// One counter per server process: every receiver of one `bcast` sees the seq its ack returned.
static SEQ: AtomicU64 = AtomicU64::new(0);

fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

async fn on_main(s: SocketRef) {
    s.on(
        "echo",
        async |s: SocketRef, HasAck(has): HasAck, ack: AckSender, Data(args): Data<Args>| {
            if has {
                let _ = ack.send(&args);
            } else {
                let _ = s.emit("echo", &args);
            }
        },
    );
    s.on(
        "join",
        async |s: SocketRef, Data(room): Data<String>, ack: AckSender| {
            s.join(room);
            let _ = ack.send(&true);
        },
    );
    s.on(
        "leave",
        async |s: SocketRef, Data(room): Data<String>, ack: AckSender| {
            s.leave(room);
            let _ = ack.send(&true);
        },
    );
    s.on(
        "bcast",
        async |io: SocketIo, Data(room): Data<Option<String>>, ack: AckSender| {
            let n = SEQ.fetch_add(1, Ordering::Relaxed) + 1;
            let payload = serde_json::json!({ "seq": n, "t": now_ms() });
            // a room includes the sender when it is a member; null reaches every socket on "/"
            let _ = match room {
                Some(r) => io.to(r).emit("b", &payload).await,
                None => io.emit("b", &payload).await,
            };
            let _ = ack.send(&n);
        },
    );
    s.on(
        "bcast-payload",
        async |io: SocketIo,
               Data((room, payload)): Data<(Option<String>, rmpv::Value)>,
               ack: AckSender| {
            let _ = match room {
                Some(r) => io.to(r).emit("b", &payload).await,
                None => io.emit("b", &payload).await,
            };
            let _ = ack.send(&true);
        },
    );
    s.on(
        "to-room",
        async |s: SocketRef,
               Data((room, payload)): Data<(String, rmpv::Value)>,
               ack: AckSender| {
            // everyone in the room except the sender
            let _ = s.to(room).emit("b", &payload).await;
            let _ = ack.send(&true);
        },
    );
    s.on("disconnect-me", async |s: SocketRef| {
        // Socket.IO DISCONNECT for "/" only
        let _ = s.disconnect();
    });
}

async fn on_chat(s: SocketRef) {
    // to every socket in /chat except the sender: { from: <the sender's /chat id>, text }
    s.on(
        "message",
        async |s: SocketRef, Data(text): Data<rmpv::Value>| {
            let out = ChatOut {
                from: s.id.to_string(),
                text,
            };
            let _ = s.broadcast().emit("message", &out).await;
        },
    );
}

#[derive(serde::Serialize)]
struct ChatOut {
    from: String,
    text: rmpv::Value,
}

#[tokio::main]
async fn main() {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let (layer, io) = SocketIo::new_layer();
    io.ns("/", on_main);
    io.ns("/chat", on_chat);
    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind((host.as_str(), port))
        .await
        .expect("bind");
    eprintln!("socketioxide 0.18 listening on {host}:{port}");
    axum::serve(listener, app).await.expect("serve");
}
