//! The Redis adapter: ringio nodes, and Node servers using `@socket.io/redis-adapter`, share one
//! cluster through Redis, speaking Node's wire format ([`wire`], [`msgpack`]): the classic
//! pub/sub protocol, or the sharded one (Redis 7 SSUBSCRIBE/SPUBLISH) as an option.
//!
//! ```text
//!  shards ── ClusterOp (bounded channel, try_send: never blocks; full = dropped, counted) ─┐
//!                                                                                        ▼
//!   "ringio-redis-pub" thread: encodes, PUBLISH/SPUBLISH in pipelines, PUBSUB NUMSUB for
//!   requests, (un)subscribes, reconnects with backoff ── registers pending requests ──┐
//!                                                                                    ▼
//!   "ringio-redis-sub" thread: reads the subscriber connection, decodes, and reaches the
//!   shards through their inboxes (sio::cluster::Node): broadcasts, joins, leaves and
//!   disconnects directly; requests run on one shard, which hands its answer back to the
//!   pub thread; answers to this node's requests go to the waiting futures
//! ```
//!
//! Why two threads with the sync `redis` client, and not an async client: the shards run
//! monoio, which no Redis client supports, so the client runs beside them on its own
//! threads either way; the subscriber connection must take SUBSCRIBE/SSUBSCRIBE commands while
//! another thread blocks reading it (sharded mode subscribes per room as rooms come and go),
//! which the redis crate's sync `PubSub` cannot do and its async `PubSub` does not offer for
//! SSUBSCRIBE without cluster support; a plain `TcpStream` split in two (commands written by
//! the pub thread, replies parsed on the sub thread with the crate's RESP `Parser`) does, with
//! no polling and no idle wakeup. Publishing uses the crate's `Connection` with pipelines:
//! everything queued while one pipeline is in flight goes in the next, in order.
//!
//! While Redis is unreachable, local delivery goes on (the shards never wait for Redis);
//! operations for other nodes are dropped and counted, requests learn that no other node will
//! answer; the pub thread retries with backoff (100 ms doubling to 5 s), then resubscribes
//! everything. The outage is logged when it starts and when it ends, and counted
//! ([`RedisAdapter::metrics`]).
//!
//! Must not: be imported by the layers below; block a shard.

mod conn;
pub mod msgpack;
mod reader;
mod serve;
pub(crate) mod wire;
mod writer;

use crate::sio::cluster::{Answer, ClusterAdapter, ClusterOp, Interest, Node};
use crate::sio::AckReply;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use futures_channel::mpsc::UnboundedSender;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use wire::{Proto, Publish};

/// Options of the Redis adapter (Node's names in parentheses).
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// `redis://[user:password@]host:port[/db]`.
    pub url: String,
    /// Sharded pub/sub (`createShardedAdapter`) instead of the classic protocol
    /// (`createAdapter`); needs Redis 7.
    pub sharded: bool,
    /// Channel prefix (`key` / `channelPrefix`; default `socket.io`).
    pub prefix: String,
    /// Sharded mode: one channel per room (`subscriptionMode: "dynamic"`, the default), or
    /// every message on the namespace's channel (`"static"`).
    pub dynamic: bool,
    /// Operations that may wait for the pub thread (beyond that they are dropped, counted).
    pub queue: usize,
}

impl RedisOptions {
    /// The defaults for a Redis URL: classic protocol, prefix `socket.io`.
    pub fn new(url: &str) -> RedisOptions {
        RedisOptions {
            url: url.into(),
            sharded: false,
            prefix: "socket.io".into(),
            dynamic: true,
            queue: 65_536,
        }
    }
}

/// Counters of the adapter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RedisMetrics {
    /// True while both connections are up.
    pub connected: bool,
    /// Messages published.
    pub published: u64,
    /// Operations for other nodes not published: Redis down, queue full, or a failed publish.
    pub dropped: u64,
    /// Messages received from Redis.
    pub received: u64,
    /// Received messages that could not be decoded (ignored).
    pub bad_messages: u64,
    /// Connections lost (outages begun).
    pub outages: u64,
    /// Reconnections after an outage.
    pub reconnects: u64,
    /// Posts to a full shard inbox that had to wait (then retried in order; never dropped).
    pub inbox_retries: u64,
}

#[derive(Default)]
struct Counters {
    connected: AtomicBool,
    published: AtomicU64,
    dropped: AtomicU64,
    received: AtomicU64,
    bad_messages: AtomicU64,
    outages: AtomicU64,
    reconnects: AtomicU64,
}

/// What the pub thread is handed.
pub(crate) enum ToWriter {
    /// An operation from a shard.
    Op(ClusterOp),
    /// An answer built on a shard.
    Publish(Publish),
    /// The subscriber connection failed (from the sub thread).
    SubLost,
    /// The server is shutting down.
    Stop,
}

/// State shared by the adapter's handle and threads.
pub(crate) struct Shared {
    pub proto: Proto,
    pub opts: RedisOptions,
    tx: Sender<ToWriter>,
    rx: Receiver<ToWriter>,
    counters: Counters,
    stopping: AtomicBool,
    node: std::sync::OnceLock<Node>,
}

impl Shared {
    /// Hands an answer to the pub thread (never blocks: counted when the queue is full).
    pub fn publish(&self, p: Publish) {
        self.to_writer(ToWriter::Publish(p));
    }
    fn to_writer(&self, m: ToWriter) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.tx.try_send(m) {
            self.counters.dropped.fetch_add(1, Relaxed);
        }
    }
}

/// The Redis adapter (`Server::builder().adapter(RedisAdapter::new(..)?)`). Cheap to clone;
/// a clone reads the same counters.
#[derive(Clone)]
pub struct RedisAdapter {
    shared: Arc<Shared>,
}

impl RedisAdapter {
    /// An adapter for `opts` (the URL is checked here; Redis itself is reached once the server
    /// starts, and retried while it is down).
    pub fn new(opts: RedisOptions) -> Result<RedisAdapter, String> {
        redis::Client::open(opts.url.as_str()).map_err(|e| format!("redis url: {e}"))?;
        let proto = Proto {
            prefix: opts.prefix.clone(),
            sharded: opts.sharded,
            dynamic: opts.dynamic,
            uid: wire::random_id(if opts.sharded { 16 } else { 6 }, opts.sharded),
        };
        let (tx, rx) = crossbeam_channel::bounded(opts.queue.max(16));
        let shared = Shared {
            proto,
            opts,
            tx,
            rx,
            counters: Counters::default(),
            stopping: AtomicBool::new(false),
            node: Default::default(),
        };
        Ok(RedisAdapter {
            shared: Arc::new(shared),
        })
    }

    /// The current counters.
    pub fn metrics(&self) -> RedisMetrics {
        let c = &self.shared.counters;
        RedisMetrics {
            connected: c.connected.load(Relaxed),
            published: c.published.load(Relaxed),
            dropped: c.dropped.load(Relaxed),
            received: c.received.load(Relaxed),
            bad_messages: c.bad_messages.load(Relaxed),
            outages: c.outages.load(Relaxed),
            reconnects: c.reconnects.load(Relaxed),
            inbox_retries: self.shared.node.get().map_or(0, Node::inbox_retries),
        }
    }

    /// This node's uid on the wire.
    pub fn uid(&self) -> &str {
        &self.shared.proto.uid
    }
}

impl ClusterAdapter for RedisAdapter {
    fn start(&self, node: Node) -> std::io::Result<()> {
        let _ = self.shared.node.set(node.clone());
        let (to_reader, from_writer) = crossbeam_channel::unbounded();
        let (s, n) = (self.shared.clone(), node.clone());
        let rx = self.shared.rx.clone();
        std::thread::Builder::new()
            .name("ringio-redis-pub".into())
            .spawn(move || writer::run(s, n, rx, to_reader))?;
        let s = self.shared.clone();
        std::thread::Builder::new()
            .name("ringio-redis-sub".into())
            .spawn(move || reader::run(s, node, from_writer))?;
        Ok(())
    }

    fn send(&self, op: ClusterOp) {
        self.shared.to_writer(ToWriter::Op(op));
    }

    fn interest(&self) -> Interest {
        let dynamic = self.shared.proto.sharded && self.shared.proto.dynamic;
        Interest {
            rooms: dynamic,
            sockets: dynamic,
        }
    }

    fn stop(&self) {
        self.shared.stopping.store(true, Relaxed);
        let _ = self
            .shared
            .tx
            .send_timeout(ToWriter::Stop, Duration::from_secs(1));
    }
}

/// Where the answers to one of this node's requests go.
pub(crate) enum AnswerRoute {
    /// Fetch, all rooms, server-side emit.
    Answers(UnboundedSender<Answer>),
    /// A broadcast with acks.
    Acks(UnboundedSender<AckReply>),
}

/// One of this node's requests, waiting for answers (held by the sub thread).
pub(crate) struct Pending {
    pub route: AnswerRoute,
    pub ns: String,
    pub deadline: std::time::Instant,
}
