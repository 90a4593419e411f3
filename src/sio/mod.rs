//! Socket.IO v5 on top of the engine: namespaces, sockets, handlers, acks, rooms and
//! broadcasting across shards.
//!
//! Owns: this shard's namespaces and room index ([`SioShard`], reached through [`local`]), the
//! engine application of the Socket.IO endpoint ([`conn::SioApp`]), the user API ([`Socket`],
//! [`Namespace`], [`BroadcastOperator`], [`RemoteSocket`], [`Io`]) and the adapter that carries
//! broadcasts and server-wide operations to other shards.
//!
//! Must not: name the server layer above; reach other shards except through the runtime's jobs.

pub(crate) mod ack;
pub(crate) mod adapter;
pub mod cluster;
pub(crate) mod conn;
pub(crate) mod listeners;
pub(crate) mod ns;
pub(crate) mod operators;
pub(crate) mod remote;
pub(crate) mod socket;

pub use ack::AckSender;
pub use adapter::AckReply;
pub use conn::{Conn, SioApp, SioConn};
pub use listeners::{ListenerId, PacketError};
pub use ns::{ConnectError, LocalFuture, Namespace, RoomEvent, ServerAck};
pub use operators::{BroadcastAckError, BroadcastOperator};
pub use remote::{RemoteError, RemoteSocket};
pub use socket::{Socket, SocketEmitter};

use crate::proto::eio::CloseReason;
use ns::{Matcher, Namespaces, Setup};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

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
            DisconnectReason::ClientNamespaceDisconnect => "client namespace disconnect",
            DisconnectReason::ServerNamespaceDisconnect => "server namespace disconnect",
            other => CloseReason::try_from(other).map_or("", CloseReason::as_str),
        }
    }
}

impl From<CloseReason> for DisconnectReason {
    fn from(r: CloseReason) -> Self {
        match r {
            CloseReason::TransportClose => DisconnectReason::TransportClose,
            CloseReason::TransportError => DisconnectReason::TransportError,
            CloseReason::ForcedClose => DisconnectReason::ForcedClose,
            CloseReason::PingTimeout => DisconnectReason::PingTimeout,
            CloseReason::ParseError => DisconnectReason::ParseError,
            CloseReason::ServerShuttingDown => DisconnectReason::ServerShuttingDown,
            CloseReason::SlowConsumer => DisconnectReason::SlowConsumer,
        }
    }
}

impl TryFrom<DisconnectReason> for CloseReason {
    type Error = DisconnectReason;
    /// The engine's reason, for the reasons that close the whole connection.
    fn try_from(r: DisconnectReason) -> Result<Self, DisconnectReason> {
        Ok(match r {
            DisconnectReason::TransportClose => CloseReason::TransportClose,
            DisconnectReason::TransportError => CloseReason::TransportError,
            DisconnectReason::ForcedClose => CloseReason::ForcedClose,
            DisconnectReason::PingTimeout => CloseReason::PingTimeout,
            DisconnectReason::ParseError => CloseReason::ParseError,
            DisconnectReason::ServerShuttingDown => CloseReason::ServerShuttingDown,
            DisconnectReason::SlowConsumer => CloseReason::SlowConsumer,
            other => return Err(other),
        })
    }
}

impl std::fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Options of the Socket.IO layer (the same on every shard).
#[derive(Clone)]
pub(crate) struct SioConfig {
    pub statics: Vec<(String, Setup)>,
    pub dynamic: Vec<(Matcher, Setup)>,
    pub connect_timeout: Duration,
    pub max_attachments: usize,
    /// The cluster adapter (none: this node alone).
    pub cluster: Option<std::sync::Arc<dyn cluster::ClusterAdapter>>,
}

impl SioConfig {
    /// The names of the static namespaces.
    pub(crate) fn namespaces(&self) -> Vec<String> {
        let mut v: Vec<String> = self.statics.iter().map(|(n, _)| n.clone()).collect();
        v.dedup();
        v
    }
}

/// The Socket.IO layer's state on one shard.
pub(crate) struct SioShard {
    pub namespaces: Namespaces,
    pub adapter: adapter::LocalAdapter,
    pub connect_timeout: Duration,
    pub max_attachments: usize,
    pub cluster: Option<std::sync::Arc<dyn cluster::ClusterAdapter>>,
}

thread_local! {
    static SIO: RefCell<Option<Rc<SioShard>>> = const { RefCell::new(None) };
}

/// This shard's Socket.IO state. Panics off a shard thread (or on a server without a
/// Socket.IO endpoint).
pub(crate) fn local() -> Rc<SioShard> {
    try_local().expect("ringio Socket.IO API used outside a shard thread")
}

/// This shard's Socket.IO state, if this thread is a shard.
pub(crate) fn try_local() -> Option<Rc<SioShard>> {
    SIO.with(|s| s.borrow().clone())
}

/// Builds this shard's namespaces (running every setup closure) and installs the layer.
pub(crate) fn install(cfg: &SioConfig) -> SioApp {
    let shard = SioShard {
        namespaces: Namespaces::build(&cfg.statics, &cfg.dynamic),
        adapter: Default::default(),
        connect_timeout: cfg.connect_timeout,
        max_attachments: cfg.max_attachments,
        cluster: cfg.cluster.clone(),
    };
    SIO.with(|s| *s.borrow_mut() = Some(Rc::new(shard)));
    SioApp
}

/// Server-level operations from inside a handler (on a shard's thread).
pub struct Io;

impl Io {
    /// A broadcast to a namespace (all shards).
    pub fn of(ns: &str) -> BroadcastOperator {
        BroadcastOperator::new(ns.into())
    }
    /// A broadcast to every child of a parent namespace (Node's `io.of(regex)` / `io.of(fn)`):
    /// `index` counts the builder's `dynamic_ns` and `ns_regex` calls from 0 (Node names the
    /// parents `/_0`, `/_1`, ...). Emits (with `to`, `except`, `local`, `volatile`) reach every
    /// child namespace created so far, on every shard; the children share the parent's
    /// handlers and middlewares already (its setup runs for each child).
    pub fn parent(index: usize) -> BroadcastOperator {
        BroadcastOperator::parent(index)
    }
}
