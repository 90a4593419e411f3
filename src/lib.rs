//! # ringio
//!
//! A Socket.IO server (Engine.IO v4 + Socket.IO v5) for Rust on io_uring, thread-per-core,
//! wire-compatible with the official clients.
//!
//! ```no_run
//! use ringio::{AckSender, RawArgs, Server, Socket};
//!
//! let server = Server::builder()
//!     .ns("/", |ns| {
//!         ns.on_connect(|socket| {
//!             socket.emit("hello", ("world",));
//!         });
//!         // echo with ack: the arguments stay raw JSON (binary included)
//!         ns.on("echo", |_socket: Socket, args: RawArgs, ack: AckSender| ack.send(args));
//!         ns.on("chat", |socket: Socket, (room, text): (String, String), _ack: AckSender| {
//!             socket.to(&room).emit("chat", (text,));
//!         });
//!     })
//!     .build();
//! let running = server.listen("0.0.0.0:3000".parse().unwrap()).unwrap();
//! running.wait();
//! ```
//!
//! # Layout
//!
//! Layers, each importing only the ones below it (cycles stay inside one folder):
//!
//! ```text
//! server/    top: the builder, Server, RunningServer, the boot of each shard
//! cluster/   the Redis adapter (Node's @socket.io/redis-adapter wire format: wire, msgpack),
//!            its pub and sub threads, and requests of other nodes served on a shard
//! sio/       Socket.IO: conn (the engine's application), socket, ns, operators, adapter,
//!            cluster (the interface to other nodes), remote; the user API
//! engine/    Engine.IO over monoio: conn (HTTP keep-alive, routing), polling, ws_conn,
//!            session (the driver of the state machine), writer, raw endpoints; the App trait
//! rt/        shard core: Shard (id, peers, ordered post), inbox of jobs, timers, presence
//!            table, listeners, sys helpers
//! proto/     sans-IO: HTTP heads, WebSocket frames, Engine.IO packets and the session state
//!            machine (eio::session), Socket.IO packets and arguments; no monoio, no clock
//! client/    the Rust client: the same proto code in the client role
//! demo.rs    the handler sets of `ringio serve` and `ringio conformance`
//! ```
//!
//! # Data flow
//!
//! ```text
//!  TCP ─► engine::conn (HTTP head) ─► polling GET/POST ─────────────┐ other shard? a job to the
//!             │ 101 (an upgrade for another shard moves its fd)       │ owner (rt inbox)
//!             ▼                                                       ▼
//!        engine::ws_conn ─► proto::ws ─► proto::eio ─► engine::Session ─► sio::conn (App)
//!                                     (machine: heartbeat,     │  ▲              │
//!                                      upgrade, queue)         │  │ queue        ▼
//!                                                              ▼  │        handlers (sio::ns)
//!  engine::writer ◄─ flush task (writev) ◄─ frames ◄─ Session ◄───┘              │
//!                                                         ▲                      ▼
//!  socket.emit / to(room).emit ── encode once (Bytes) ── sio::adapter ─► other shards: ordered
//!                                                                      jobs (rt::Shard::post)
//! ```
//!
//! Each shard is a thread with its own monoio runtime and `SO_REUSEPORT` listener; everything
//! inside a shard is `Rc`/`RefCell`. Session and socket ids carry their owner shard: polling
//! requests landing elsewhere are forwarded, WebSocket upgrades move their file descriptor to
//! the owner. With a cluster adapter (`cluster/`), an operation meant for other nodes is also
//! handed, without blocking, to the adapter's threads, which publish it to Redis; what other
//! nodes publish comes back to the shards through their inboxes. Ids also carry the node.
#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

#[cfg(feature = "bench-support")]
#[doc(hidden)]
pub mod bench_support;
pub mod client;
pub mod cluster;
pub mod demo;
pub mod engine;
pub mod proto;
pub mod rt;
pub mod server;
pub mod sio;

pub use engine::raw::{EngineMessage, EngineSocket};
pub use engine::{clients_count, ConnectionError, EngineConfig, ErrorContext, Handshake};
pub use proto::eio::{CloseReason, Transport};
pub use proto::http::{
    CookieOptions, Cors, CorsOptions, CorsOrigin, Head, ResponseHeaders, SameSite,
};
pub use proto::sio::args;
pub use proto::sio::args::{Binary, FromArgs, IntoArgs, RawArgs};
pub use proto::sio::AckError;
pub use server::{Driver, IdlePolicy, Metrics, RunningServer, Server, ServerBuilder, UringSetup};
pub use sio::remote::RemoteError;
pub use sio::{
    AckSender, BroadcastAckError, BroadcastOperator, Conn, ConnectError, DisconnectReason, Io,
    ListenerId, LocalFuture, Namespace, PacketError, RemoteSocket, RoomEvent, ServerAck, Socket,
    SocketEmitter,
};
