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
//! ```text
//! proto/            sans-IO: no sockets, no clock
//!   http.rs           request heads (httparse), Node's error codes, CORS, 101
//!   ws.rs             RFC 6455 frames, unmask in place, close codes
//!   eio/              Engine.IO packets, polling payloads (0x1E, b64 binary)
//!   sio/              Socket.IO packets: decode zero-copy, encode once
//! server/           monoio: shards, listeners, connections, sessions, timers, writer
//! sio_conn.rs       Socket.IO layer of one connection (namespaces, binary reassembly)
//! socket.rs ns.rs operators.rs   the user API
//! adapter.rs        rooms index, presence table, cross-shard broadcast and server-wide ops
//! args.rs           raw arguments in, serialized arguments out, binary placeholders
//! client/           the Rust client (same proto code, client role): tests and users
//! demo.rs           the handler sets of `ringio serve` and `ringio conformance`
//! listener.rs       SO_REUSEPORT listeners, refusing a port another socket holds
//! ```
//!
//! # Data flow
//!
//! ```text
//!   TCP bytes ──► server::conn (HTTP head) ──► polling GET/POST ──┐
//!                        │ 101                                     │ other shard? forward
//!                        ▼                                         ▼ to owner (inbox)
//!                  server::ws_conn ──► proto::ws ──► proto::eio ──► Session ──► sio_conn
//!                                                                     ▲            │
//!   socket.emit / to(room).emit ── encode once (Bytes) ── adapter ────┘ (queue)     ▼
//!                                     └─► other shards' inboxes            handlers (ns.rs)
//! ```
//!
//! Each shard is a thread with its own monoio runtime and `SO_REUSEPORT` listener; everything
//! inside a shard is `Rc`/`RefCell`. The session id carries its owner shard: polling requests
//! landing elsewhere are forwarded, WebSocket upgrades move their file descriptor to the owner.
#![warn(missing_docs)]

mod adapter;
pub mod args;
#[cfg(feature = "bench-support")]
#[doc(hidden)]
pub mod bench_support;
pub mod client;
pub mod demo;
mod listener;
mod ns;
mod operators;
pub mod proto;
pub mod server;
mod sio_conn;
mod socket;

pub use args::{Binary, FromArgs, IntoArgs, RawArgs};
pub use ns::{ConnectError, LocalFuture, Namespace, RoomEvent};
pub use operators::{BroadcastAckError, BroadcastOperator};
pub use proto::http::Cors;
pub use server::{Driver, EngineConfig, Metrics, RunningServer, Server, ServerBuilder};
pub use socket::{AckError, AckSender, RemoteSocket, Socket};

use bytes::Bytes;
use std::net::SocketAddr;
use std::rc::Rc;

/// Why a socket disconnected (Node's reason strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The connection was closed (client left, or network loss).
    TransportClose,
    /// The connection failed (write error, protocol violation, overlapping requests).
    TransportError,
    /// The server closed the connection ([`Socket::close_connection`]).
    ForcedClose,
    /// No pong within pingTimeout.
    PingTimeout,
    /// The client sent an invalid packet.
    ParseError,
    /// The server is shutting down.
    ServerShuttingDown,
    /// The client disconnected this namespace.
    ClientNamespaceDisconnect,
    /// The server disconnected this namespace ([`Socket::disconnect`]).
    ServerNamespaceDisconnect,
    /// The socket's output queue passed its hard cap (a consumer too slow to keep up).
    SlowConsumer,
}

impl DisconnectReason {
    /// Node's string for the reason.
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::TransportClose => "transport close",
            DisconnectReason::TransportError => "transport error",
            DisconnectReason::ForcedClose => "forced close",
            DisconnectReason::PingTimeout => "ping timeout",
            DisconnectReason::ParseError => "parse error",
            DisconnectReason::ServerShuttingDown => "server shutting down",
            DisconnectReason::ClientNamespaceDisconnect => "client namespace disconnect",
            DisconnectReason::ServerNamespaceDisconnect => "server namespace disconnect",
            DisconnectReason::SlowConsumer => "slow consumer",
        }
    }
}

impl std::fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The handshake of a connection: request head, peer address, time.
///
/// Kept compact (every connection holds one for its whole life): the raw request head, once,
/// with the path and query located in it; headers are parsed again when asked for.
#[derive(Debug, Clone, Default)]
pub struct Handshake {
    raw: Box<[u8]>,
    path: (u16, u16),
    query: (u16, u16),
    /// The peer's address.
    pub address: Option<SocketAddr>,
    /// When the connection was made (ms since the Unix epoch).
    pub issued: u64,
}

// the offsets of a Handshake are u16
const _: () = assert!(proto::http::MAX_HEAD <= u16::MAX as usize);

impl Handshake {
    pub(crate) fn new(head: &proto::http::Head, peer: SocketAddr) -> Handshake {
        let issued = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let (path, query) = head.path_and_query_ranges();
        // a head is at most MAX_HEAD (16 KiB) long, so offsets fit u16
        let r16 = |r: std::ops::Range<usize>| (r.start as u16, r.end as u16);
        Handshake {
            raw: head.raw().into(),
            path: r16(path),
            query: r16(query),
            address: Some(peer),
            issued,
        }
    }
    fn str_at(&self, (s, e): (u16, u16)) -> &str {
        self.raw
            .get(s as usize..e as usize)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }
    /// Request headers, names lower-cased.
    pub fn headers(&self) -> Vec<(String, String)> {
        proto::http::headers_of(&self.raw)
    }
    /// The raw query string.
    pub fn query(&self) -> &str {
        self.str_at(self.query)
    }
    /// One query parameter (percent-decoded).
    pub fn query_param(&self, name: &str) -> Option<String> {
        proto::http::query_param(self.query(), name).map(proto::http::percent_decode)
    }
    /// The request path.
    pub fn url(&self) -> &str {
        self.str_at(self.path)
    }
}

/// Server-level operations from inside a handler (on the current shard's thread).
pub struct Io;

impl Io {
    /// A broadcast to a namespace of the Socket.IO endpoint (all shards).
    pub fn of(ns: &str) -> BroadcastOperator {
        BroadcastOperator::new(0, ns.into())
    }
}

/// A raw Engine.IO message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineMessage {
    /// Text message.
    Text(Bytes),
    /// Binary message.
    Binary(Bytes),
}

/// A raw Engine.IO session, for [`ServerBuilder::engine_endpoint`] handlers.
pub struct EngineSocket(pub(crate) Rc<server::Session>);

impl EngineSocket {
    /// The session id.
    pub fn id(&self) -> String {
        self.0.sid().to_string()
    }
    /// Sends a message.
    pub fn send(&self, msg: EngineMessage) {
        use proto::eio::OutPacket;
        let p = match msg {
            EngineMessage::Text(t) => {
                let mut b = bytes::BytesMut::with_capacity(t.len() + 1);
                b.extend_from_slice(b"4");
                b.extend_from_slice(&t);
                OutPacket::Text(b.freeze())
            }
            EngineMessage::Binary(b) => OutPacket::Binary(b),
        };
        self.0.send(p);
    }
    /// Closes the session.
    pub fn close(&self) {
        self.0.close(DisconnectReason::ForcedClose);
    }
}
