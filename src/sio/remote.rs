//! `RemoteSocket`: a socket as `fetch_sockets` returns it. A `Send + Clone` snapshot whose
//! operations reach the live socket on its owner shard, from any thread; a socket of another
//! node is reached through the cluster adapter, as Node does (a broadcast, join, leave or
//! disconnect aimed at the room named by the socket's id).
//!
//! Must not: hold a reference to the live socket (it may be used on another thread).

use super::cluster::{ClusterAdapter, ClusterOp, EventData, Target};
use super::local;
use super::socket::Socket;
use crate::proto::sio::args::{to_writer, IntoArgs};
use crate::proto::sio::{encode_packet, write_array, SocketId};
use crate::rt::{self, ShardSet};
use std::sync::Arc;

/// Where the live socket is.
#[derive(Clone)]
enum Home {
    /// On a shard of this node.
    Here(Arc<ShardSet>),
    /// On another node, reached through the cluster adapter.
    Node(Arc<dyn ClusterAdapter>),
}

/// A socket as returned by `fetch_sockets`: a snapshot that can cross shards and threads, with
/// operations that reach the live socket wherever it is.
#[derive(Clone)]
pub struct RemoteSocket {
    /// Socket id.
    pub id: String,
    /// Namespace.
    pub ns: String,
    /// Rooms at the time of the fetch (its own id included).
    pub rooms: Vec<String>,
    /// Request headers of the handshake (names lower-cased).
    pub headers: Vec<(String, String)>,
    /// Query string of the handshake.
    pub query: String,
    /// The URL of the first request (path and query).
    pub url: String,
    /// Peer address.
    pub address: Option<std::net::SocketAddr>,
    /// Handshake time (ms since the Unix epoch).
    pub issued: u64,
    /// The CONNECT payload (raw JSON).
    pub auth: String,
    /// The socket's shared data ([`Socket::set_shared_data`]) as raw JSON, if any.
    pub data: Option<String>,
    home: Home,
}

impl std::fmt::Debug for RemoteSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteSocket")
            .field("id", &self.id)
            .field("ns", &self.ns)
            .field("rooms", &self.rooms)
            .field("query", &self.query)
            .field("address", &self.address)
            .field("data", &self.data)
            .finish_non_exhaustive()
    }
}

/// An operation on a remote socket could not be handed to its shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteError {
    /// Called off a shard while the owner shard's inbox was full: try again.
    InboxFull,
    /// The socket id names no shard of this server, or the server stopped.
    Gone,
}

impl std::fmt::Display for RemoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RemoteError::InboxFull => "the owner shard's inbox is full",
            RemoteError::Gone => "the socket's shard is gone",
        })
    }
}
impl std::error::Error for RemoteError {}

impl RemoteSocket {
    pub(crate) fn of(s: &Socket) -> RemoteSocket {
        let hs = s.handshake();
        RemoteSocket {
            id: s.id().to_string(),
            ns: s.ns().to_string(),
            rooms: s.rooms(),
            headers: hs.headers(),
            query: hs.query().to_string(),
            url: hs.url(),
            address: hs.address,
            issued: hs.issued,
            auth: s.auth_raw().to_string(),
            data: s.shared_json(),
            home: Home::Here(rt::shard().peers.clone()),
        }
    }

    /// A socket of another node (from a cluster adapter's fetch answer): its operations go
    /// through `adapter`. The handshake fields are filled by the caller.
    pub fn of_node(id: String, ns: String, adapter: Arc<dyn ClusterAdapter>) -> RemoteSocket {
        RemoteSocket {
            id,
            ns,
            rooms: Vec::new(),
            headers: Vec::new(),
            query: String::new(),
            url: String::new(),
            address: None,
            issued: 0,
            auth: "{}".into(),
            data: None,
            home: Home::Node(adapter),
        }
    }

    /// True when the socket lives on another node of the cluster.
    pub fn is_remote(&self) -> bool {
        matches!(self.home, Home::Node(_))
    }

    /// An operation aimed at this socket alone, through the cluster adapter.
    fn target(&self) -> Target {
        Target {
            ns: self.ns.clone(),
            rooms: vec![self.id.clone()],
            except: Vec::new(),
        }
    }

    /// Runs `f` on the live socket, on its owner shard: at once when that is this thread,
    /// else as a job (ordered after this shard's earlier jobs for that shard, when called on a
    /// shard).
    fn on_owner(
        &self,
        f: impl FnOnce(&Socket) + Send + 'static,
        remote: impl FnOnce() -> ClusterOp,
    ) -> Result<(), RemoteError> {
        let peers = match &self.home {
            Home::Here(p) => p,
            Home::Node(a) => {
                a.send(remote());
                return Ok(());
            }
        };
        let id = SocketId::parse(&self.id).ok_or(RemoteError::Gone)?;
        let owner = id.shard();
        if owner >= peers.len() {
            return Err(RemoteError::Gone);
        }
        let ns = self.ns.clone();
        let job = move || {
            let found = local().namespaces.get(&ns);
            let socket = found.and_then(|n| n.sockets.borrow().get(&id).cloned());
            if let Some(s) = socket {
                f(&s);
            }
        };
        match rt::try_shard() {
            Some(sh) if sh.id == owner => job(),
            Some(sh) => sh.post(owner, Box::new(job)),
            None => match peers.try_post(owner, Box::new(job)) {
                Ok(()) => {}
                Err(rt::PostError::Full(_)) => return Err(RemoteError::InboxFull),
                Err(rt::PostError::Stopped(_)) => return Err(RemoteError::Gone),
            },
        }
        Ok(())
    }

    /// Emits to this socket (on whichever shard holds it); works from any thread.
    pub fn emit(&self, event: &str, args: impl IntoArgs) -> Result<(), RemoteError> {
        let w = to_writer(args);
        let mut json = bytes::BytesMut::new();
        write_array(&mut json, Some(event), &w.json);
        let data = EventData {
            json: json.freeze(),
            attachments: w.attachments.clone(),
        };
        let (text, att) = encode_packet(&self.ns, Some(event), None, w, false);
        let target = self.target();
        self.on_owner(
            move |s| {
                s.send_packets(text, att);
            },
            move || ClusterOp::Broadcast {
                target,
                data,
                volatile: false,
            },
        )
    }
    /// Makes the socket join a room.
    pub fn join(&self, room: &str) -> Result<(), RemoteError> {
        let (room, target) = (room.to_string(), self.target());
        let rooms = vec![room.clone()];
        self.on_owner(
            move |s| s.join(&room),
            move || ClusterOp::Join { target, rooms },
        )
    }
    /// Makes the socket leave a room.
    pub fn leave(&self, room: &str) -> Result<(), RemoteError> {
        let (room, target) = (room.to_string(), self.target());
        let rooms = vec![room.clone()];
        self.on_owner(
            move |s| s.leave(&room),
            move || ClusterOp::Leave { target, rooms },
        )
    }
    /// Disconnects the socket (`close`: the whole connection).
    pub fn disconnect(&self, close: bool) -> Result<(), RemoteError> {
        let target = self.target();
        self.on_owner(
            move |s| {
                if close {
                    s.disconnect_client();
                } else {
                    s.disconnect();
                }
            },
            move || ClusterOp::Disconnect { target, close },
        )
    }
}

// a RemoteSocket may be used from any thread
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<RemoteSocket>();
};
