//! The cluster side of the adapter: the interface between this node's shards and the other
//! nodes of a cluster. The local adapter ([`super::adapter`]) stays the fast path: without a
//! [`ClusterAdapter`] nothing here runs, and with one a shard only adds one non-blocking hand-off
//! per cluster-wide operation.
//!
//! ```text
//!  shard ── ClusterOp (ClusterAdapter::send, never blocks) ──► the adapter's threads ──► peers
//!  peers ──► the adapter's threads ── Node::emit / join / leave / disconnect ──► shard inboxes
//!                                  └─ Node::run(job): a request served on one shard of this
//!                                     node (fetch_here, rooms_here, ...), answered back
//! ```
//!
//! Semantics are those of Node's cluster adapters (socket.io-adapter's `ClusterAdapter`,
//! `@socket.io/redis-adapter`): a broadcast is delivered where it was made and published for
//! the others; requests (`fetch_sockets`, `server_side_emit` with acks, broadcasts with acks,
//! all rooms) first learn how many other nodes will answer ([`Answer::Nodes`]), then collect
//! their answers until the timeout, and end with what came.
//!
//! Must not: name an implementation (Redis lives above, in `crate::cluster`); block a shard.

use super::adapter::{self, AckReply, BroadcastMsg, Op};
use super::remote::RemoteSocket;
use super::{local, try_local};
use crate::proto::sio;
use crate::proto::sio::args::RawArgs;
use crate::rt::{Job, PostError, ShardSet};
use bytes::Bytes;
use futures_channel::mpsc::{UnboundedReceiver, UnboundedSender};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Carries cluster-wide operations between this node and the others (e.g.
/// [`crate::cluster::RedisAdapter`]). Shared by every shard and the adapter's own threads.
pub trait ClusterAdapter: Send + Sync + 'static {
    /// Starts the adapter for a server that is starting: `node` reaches its shards.
    fn start(&self, node: Node) -> std::io::Result<()>;
    /// Hands one operation to the other nodes. Called on shards: must never block.
    fn send(&self, op: ClusterOp);
    /// Which local changes the adapter wants to hear of ([`ClusterOp::Local`]).
    fn interest(&self) -> Interest {
        Interest::default()
    }
    /// Stops the adapter's threads (the server is shutting down).
    fn stop(&self) {
        // an adapter without threads has nothing to stop
    }
}

/// The local changes an adapter subscribes to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Interest {
    /// A room got its first member, or lost its last one, on a shard.
    pub rooms: bool,
    /// A socket connected or disconnected.
    pub sockets: bool,
}

/// Which sockets of a namespace an operation selects: members of any of `rooms` (all sockets
/// when empty), minus the members of `except`. A socket id names that socket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// The namespace.
    pub ns: String,
    /// Rooms (union).
    pub rooms: Vec<String>,
    /// Rooms whose members are left out.
    pub except: Vec<String>,
}

/// An event as it crosses nodes: the JSON array `["event", args...]` (binary as Socket.IO
/// placeholders `{"_placeholder":true,"num":i}`) and the attachments they number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventData {
    /// The JSON array, event name first.
    pub json: Bytes,
    /// Binary attachments, in placeholder order.
    pub attachments: Vec<Bytes>,
}

/// Answers to a cluster request, as they arrive (from this node's shards and from other nodes).
#[derive(Debug)]
pub enum Answer {
    /// How many other nodes will answer (sent once by the adapter; 0 when it cannot tell, e.g.
    /// while Redis is unreachable).
    Nodes(usize),
    /// The sockets held by one shard or one node (`fetch_sockets`).
    Sockets(Vec<RemoteSocket>),
    /// The rooms of one shard or one node (`all_rooms`).
    Rooms(Vec<String>),
    /// One node's answer to a `server_side_emit` with ack (its first argument).
    Ack(RawArgs),
}

/// A local change (see [`Interest`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalChange {
    /// A namespace now exists on this node (a dynamic one was created).
    Namespace(String),
    /// `room` of `ns` got its first member on one shard.
    RoomCreated(String, String),
    /// `room` of `ns` lost its last member on one shard.
    RoomDeleted(String, String),
    /// A socket connected (`ns`, id).
    SocketConnected(String, String),
    /// A socket disconnected (`ns`, id).
    SocketDisconnected(String, String),
}

/// An operation a shard hands to the other nodes.
#[derive(Debug)]
pub enum ClusterOp {
    /// Emit to the targeted sockets of the other nodes.
    Broadcast {
        /// Which sockets.
        target: Target,
        /// The event.
        data: EventData,
        /// May be dropped for clients that are not ready.
        volatile: bool,
    },
    /// Emit with one ack per socket: [`AckReply::Nodes`] first, then each node's
    /// [`AckReply::Count`] and acks.
    BroadcastWithAck {
        /// Which sockets.
        target: Target,
        /// The event.
        data: EventData,
        /// How long acks are collected.
        timeout: Duration,
        /// Where answers go.
        replies: UnboundedSender<AckReply>,
    },
    /// `socketsJoin`.
    Join {
        /// Which sockets.
        target: Target,
        /// Rooms to join.
        rooms: Vec<String>,
    },
    /// `socketsLeave`.
    Leave {
        /// Which sockets.
        target: Target,
        /// Rooms to leave.
        rooms: Vec<String>,
    },
    /// `disconnectSockets`.
    Disconnect {
        /// Which sockets.
        target: Target,
        /// Close the whole connection.
        close: bool,
    },
    /// `fetchSockets`: [`Answer::Nodes`], then one [`Answer::Sockets`] per node.
    Fetch {
        /// Which sockets.
        target: Target,
        /// How long answers are collected.
        timeout: Duration,
        /// Where answers go.
        replies: UnboundedSender<Answer>,
    },
    /// `allRooms`: [`Answer::Nodes`], then one [`Answer::Rooms`] per node.
    AllRooms {
        /// The namespace.
        ns: String,
        /// How long answers are collected.
        timeout: Duration,
        /// Where answers go.
        replies: UnboundedSender<Answer>,
    },
    /// `serverSideEmit`; with `replies`, [`Answer::Nodes`] then one [`Answer::Ack`] per node.
    ServerSideEmit {
        /// The namespace.
        ns: String,
        /// The event.
        data: EventData,
        /// How long acks are collected, and where they go (no ack wanted when `None`).
        replies: Option<(Duration, UnboundedSender<Answer>)>,
    },
    /// `serverCount`: the number of nodes (this one included).
    ServerCount {
        /// The namespace.
        ns: String,
        /// Where the count goes.
        reply: futures_channel::oneshot::Sender<usize>,
    },
    /// A local change the adapter asked for.
    Local(LocalChange),
}

/// What an adapter's threads use to reach this node's shards. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Node {
    peers: Arc<ShardSet>,
    adapter: Arc<dyn ClusterAdapter>,
    namespaces: Arc<[String]>,
    next: Arc<AtomicUsize>,
    retries: Arc<AtomicU64>,
}

impl Node {
    pub(crate) fn new(
        peers: Arc<ShardSet>,
        adapter: Arc<dyn ClusterAdapter>,
        namespaces: Vec<String>,
    ) -> Node {
        Node {
            peers,
            adapter,
            namespaces: namespaces.into(),
            next: Default::default(),
            retries: Default::default(),
        }
    }

    /// The static namespaces (dynamic ones are announced by [`LocalChange::Namespace`]).
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// The adapter this node runs (for the [`RemoteSocket`]s of other nodes' sockets).
    pub fn adapter(&self) -> Arc<dyn ClusterAdapter> {
        self.adapter.clone()
    }

    /// Posts that had to wait for a full shard inbox (each retried until taken).
    pub fn inbox_retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Emits to this node's targeted sockets (a broadcast from another node): encoded once,
    /// posted to the shards that may hold recipients.
    pub fn emit(&self, target: Target, data: &EventData, volatile: bool) {
        let packets = adapter::event_packets(&target.ns, None, &data.json, &data.attachments);
        let op = Op::Emit { packets, volatile };
        self.deliver(target, op);
    }

    /// Makes this node's targeted sockets join rooms.
    pub fn join(&self, target: Target, rooms: Vec<String>) {
        self.deliver(
            target,
            Op::Join(rooms.into_iter().map(Into::into).collect()),
        );
    }

    /// Makes this node's targeted sockets leave rooms.
    pub fn leave(&self, target: Target, rooms: Vec<String>) {
        self.deliver(
            target,
            Op::Leave(rooms.into_iter().map(Into::into).collect()),
        );
    }

    /// Disconnects this node's targeted sockets.
    pub fn disconnect(&self, target: Target, close: bool) {
        self.deliver(target, Op::Disconnect { close });
    }

    fn deliver(&self, target: Target, op: Op) {
        let msg = msg_for(target, op);
        let mask = adapter::destinations(&self.peers, &msg, None);
        let msg = Arc::new(msg);
        for dest in (0..self.peers.len()).filter(|d| mask & (1 << d) != 0) {
            let msg = msg.clone();
            self.post(
                dest,
                Box::new(move || adapter::deliver_local(&local(), &msg)),
            );
        }
    }

    /// Runs `job` on one shard of this node (round robin): how requests from other nodes are
    /// served ([`fetch_here`], [`rooms_here`], [`server_side_emit_here`],
    /// [`broadcast_with_ack_here`]).
    pub fn run(&self, job: Job) {
        let dest = self.next.fetch_add(1, Ordering::Relaxed) % self.peers.len();
        self.post(dest, job);
    }

    /// Posts a job from a thread that is not a shard: while the inbox is full it waits and
    /// retries (counted), so nothing is dropped or reordered; a stopped shard drops it.
    fn post(&self, dest: usize, mut job: Job) {
        loop {
            match self.peers.try_post(dest, job) {
                Ok(()) | Err(PostError::Stopped(_)) => return,
                Err(PostError::Full(j)) => {
                    job = j;
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        }
    }
}

/// The cluster adapter of this shard, if any.
pub(crate) fn adapter_here() -> Option<Arc<dyn ClusterAdapter>> {
    try_local().and_then(|s| s.cluster.clone())
}

/// Tells the adapter of a local change it asked for.
pub(crate) fn notify(change: impl FnOnce() -> LocalChange, rooms: bool) {
    if let Some(c) = try_local().and_then(|s| s.cluster.clone()) {
        let i = c.interest();
        if (rooms && i.rooms) || (!rooms && i.sockets) {
            c.send(ClusterOp::Local(change()));
        }
    }
}

/// Tells the adapter that a dynamic namespace now exists here.
pub(crate) fn notify_namespace(ns: &str) {
    if let Some(c) = adapter_here() {
        c.send(ClusterOp::Local(LocalChange::Namespace(ns.into())));
    }
}

fn msg_for(target: Target, op: Op) -> BroadcastMsg {
    BroadcastMsg {
        ns: target.ns.into(),
        parent: None,
        rooms: target.rooms.into_iter().map(Into::into).collect(),
        except: target.except.into_iter().map(Into::into).collect(),
        op,
    }
}

/// This node's targeted sockets (every shard), for a fetch request from another node. Call on
/// a shard ([`Node::run`]).
pub async fn fetch_here(target: Target) -> Vec<RemoteSocket> {
    let (tx, rx) = futures_channel::mpsc::unbounded();
    let shards = local()
        .adapter
        .broadcast(msg_for(target, Op::Fetch(tx)), false);
    collect(rx, shards, |a, out: &mut Vec<RemoteSocket>| {
        if let Answer::Sockets(v) = a {
            out.extend(v)
        }
    })
    .await
}

/// This node's rooms of `ns` (socket ids included, as Node lists them). Call on a shard.
pub async fn rooms_here(ns: &str) -> Vec<String> {
    let (tx, rx) = futures_channel::mpsc::unbounded();
    let target = Target {
        ns: ns.into(),
        ..Default::default()
    };
    let shards = local()
        .adapter
        .broadcast(msg_for(target, Op::Rooms(tx)), false);
    let mut all = collect(rx, shards, |a, out: &mut Vec<String>| {
        if let Answer::Rooms(v) = a {
            out.extend(v)
        }
    })
    .await;
    all.sort_unstable();
    all.dedup();
    all
}

async fn collect<T: Default>(
    mut rx: UnboundedReceiver<Answer>,
    answers: usize,
    mut add: impl FnMut(Answer, &mut T),
) -> T {
    use futures_core::Stream;
    let mut out = T::default();
    for _ in 0..answers {
        match std::future::poll_fn(|cx| std::pin::Pin::new(&mut rx).poll_next(cx)).await {
            Some(a) => add(a, &mut out),
            None => break,
        }
    }
    out
}

/// Emits to this node's targeted sockets with one ack each, for a request from another node:
/// returns the number of shards that will report a count, and the receiver of their counts and
/// of the acks. Call on a shard.
pub fn broadcast_with_ack_here(
    target: Target,
    data: EventData,
) -> (usize, UnboundedReceiver<AckReply>) {
    let (tx, rx) = futures_channel::mpsc::unbounded();
    let op = Op::EmitWithAck {
        event_json: data.json,
        attachments: data.attachments,
        replies: tx,
    };
    let shards = local().adapter.broadcast(msg_for(target, op), false);
    (shards, rx)
}

/// Calls this shard's `server_side_emit` listeners of `ns` with the event (`["event",
/// args...]`); `ack` gets the first listener's answer. Returns false when the namespace has no
/// listener for the event (or the data is not an event). Call on a shard.
pub fn server_side_emit_here(
    ns: &str,
    data: &EventData,
    ack: Option<Box<dyn FnOnce(RawArgs)>>,
) -> bool {
    let Some((event, args)) = split_event(data) else {
        return false;
    };
    match local().namespaces.get(ns) {
        Some(n) => super::ns::call_server_side(&n.def, &event, args, ack),
        None => false,
    }
}

/// The event name and the arguments of an event's JSON array.
pub fn split_event(data: &EventData) -> Option<(String, RawArgs)> {
    let (name, ranges) = sio::event_name(&data.json).ok()?;
    let event = sio::event_str(&data.json, &name).ok()?.into_owned();
    let args = RawArgs::new(data.json.clone(), ranges, data.attachments.clone());
    Some((event, args))
}

/// A JSON array (with placeholders) and attachments as arguments, e.g. an ack's.
pub fn args_of(json: Bytes, attachments: Vec<Bytes>) -> Option<RawArgs> {
    let ranges = sio::split_array(&json).ok()?;
    Some(RawArgs::new(json, ranges, attachments))
}
