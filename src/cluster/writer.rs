//! The pub thread: everything this node sends to Redis, in the order the shards handed it
//! over. It owns the publishing connection, the write half of the subscriber connection, the
//! subscription state (namespaces; rooms and sockets in sharded dynamic mode) and the
//! reconnection backoff.
//!
//! Must not: read from the subscriber connection (the sub thread does).

use super::wire::{Publish, Sub};
use super::{conn, AnswerRoute, Pending, Shared, ToWriter};
use crate::sio::cluster::{Answer, ClusterOp, LocalChange, Node};
use crate::sio::AckReply;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::collections::{BTreeSet, HashMap};
use std::net::TcpStream;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Operations handled before the batch is published.
const MAX_BATCH: usize = 512;
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Pending requests are forgotten this long after their timeout.
const PENDING_SLACK: Duration = Duration::from_secs(1);

/// What the sub thread is handed.
pub(crate) enum ToReader {
    /// A new subscriber connection (read half).
    Conn(TcpStream),
    /// A request of this node, registered before it is published.
    Pending(String, Pending),
}

struct Writer {
    shared: Arc<Shared>,
    to_reader: Sender<ToReader>,
    publisher: Option<redis::Connection>,
    sub: Option<TcpStream>,
    namespaces: BTreeSet<String>,
    /// Dynamic subscriptions (rooms, socket ids), counted per shard holding them.
    dynamic: HashMap<Sub, u32>,
    batch: Vec<Publish>,
    backoff: Duration,
    next_try: Instant,
    /// The current outage has been logged.
    down_logged: bool,
    ever_up: bool,
}

pub(crate) fn run(
    shared: Arc<Shared>,
    node: Node,
    rx: Receiver<ToWriter>,
    to_reader: Sender<ToReader>,
) {
    let mut w = Writer {
        shared,
        to_reader,
        publisher: None,
        sub: None,
        namespaces: node.namespaces().iter().cloned().collect(),
        dynamic: HashMap::new(),
        batch: Vec::new(),
        backoff: MIN_BACKOFF,
        next_try: Instant::now(),
        down_logged: false,
        ever_up: false,
    };
    w.connect();
    loop {
        let first = if w.up() {
            rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            rx.recv_timeout(w.next_try.saturating_duration_since(Instant::now()))
        };
        let mut go_on = match first {
            Ok(m) => w.handle(m),
            Err(RecvTimeoutError::Timeout) => true,
            Err(RecvTimeoutError::Disconnected) => false,
        };
        for _ in 0..MAX_BATCH {
            if !go_on {
                break;
            }
            match rx.try_recv() {
                Ok(m) => go_on = w.handle(m),
                Err(_) => break,
            }
        }
        w.flush();
        if !go_on || w.shared.stopping.load(Relaxed) {
            break;
        }
        if !w.up() && Instant::now() >= w.next_try {
            w.connect();
        }
    }
    if let Some(s) = w.sub.take() {
        let _ = s.shutdown(std::net::Shutdown::Both);
    }
}

impl Writer {
    fn up(&self) -> bool {
        self.publisher.is_some() && self.sub.is_some()
    }

    /// False on Stop.
    fn handle(&mut self, m: ToWriter) -> bool {
        match m {
            ToWriter::Op(op) => self.op(op),
            ToWriter::Publish(p) => self.push(p),
            ToWriter::SubLost => {
                // usually Redis restarted: the publishing connection is gone too
                self.sub = None;
                self.publisher = None;
                self.lost("the subscriber connection closed");
            }
            ToWriter::Stop => return false,
        }
        true
    }

    fn push(&mut self, p: Publish) {
        if self.publisher.is_some() {
            self.batch.push(p);
        } else {
            self.shared.counters.dropped.fetch_add(1, Relaxed);
        }
    }

    fn op(&mut self, op: ClusterOp) {
        let proto = self.shared.proto.clone();
        match op {
            ClusterOp::Broadcast {
                target,
                data,
                volatile,
            } => match proto.broadcast(&target, &data, volatile) {
                Ok(p) => self.push(p),
                Err(e) => tracing::debug!("redis adapter: event not encoded: {e:?}"),
            },
            ClusterOp::Join { target, rooms } => self.push(proto.rooms_op(&target, &rooms, true)),
            ClusterOp::Leave { target, rooms } => self.push(proto.rooms_op(&target, &rooms, false)),
            ClusterOp::Disconnect { target, close } => self.push(proto.disconnect(&target, close)),
            ClusterOp::Local(change) => self.local(change),
            ClusterOp::ServerCount { ns, reply } => {
                let _ = reply.send(self.others(&ns) + 1);
            }
            ClusterOp::ServerSideEmit {
                ns,
                data,
                replies: None,
            } => match proto.server_side_emit(None, &ns, &data) {
                Ok(p) => self.push(p),
                Err(e) => tracing::debug!("redis adapter: event not encoded: {e:?}"),
            },
            request => self.request(request),
        }
    }

    /// A request: how many other nodes will answer, then (if any) register and publish it.
    fn request(&mut self, op: ClusterOp) {
        let proto = self.shared.proto.clone();
        let id = super::wire::random_id(if proto.sharded { 16 } else { 6 }, proto.sharded);
        let (ns, timeout, route, publish) = match op {
            ClusterOp::BroadcastWithAck {
                target,
                data,
                timeout,
                replies,
            } => {
                let p = proto.broadcast_ack(&id, &target, &data, timeout).ok();
                let others = self.others(&target.ns);
                let _ = replies.unbounded_send(AckReply::Nodes(others));
                (target.ns, timeout, AnswerRoute::Acks(replies), p)
            }
            ClusterOp::Fetch {
                target,
                timeout,
                replies,
            } => {
                let p = Some(proto.fetch(&id, &target));
                self.answers(target.ns, timeout, replies, p)
            }
            ClusterOp::AllRooms {
                ns,
                timeout,
                replies,
            } => {
                let p = proto.all_rooms(&id, &ns);
                self.answers(ns, timeout, replies, p)
            }
            ClusterOp::ServerSideEmit {
                ns,
                data,
                replies: Some((timeout, replies)),
            } => {
                let p = proto.server_side_emit(Some(&id), &ns, &data).ok();
                self.answers(ns, timeout, replies, p)
            }
            _ => return,
        };
        let Some(p) = publish else { return };
        let pending = Pending {
            route,
            ns,
            deadline: Instant::now() + timeout + PENDING_SLACK,
        };
        // registered before it is published: an answer never comes before its request
        let _ = self.to_reader.send(ToReader::Pending(id, pending));
        self.push(p);
    }

    /// Tells `replies` how many nodes will answer; `None` to publish when none will.
    fn answers(
        &mut self,
        ns: String,
        timeout: Duration,
        replies: futures_channel::mpsc::UnboundedSender<Answer>,
        p: Option<Publish>,
    ) -> (String, Duration, AnswerRoute, Option<Publish>) {
        let others = if p.is_some() { self.others(&ns) } else { 0 };
        let _ = replies.unbounded_send(Answer::Nodes(others));
        let p = p.filter(|_| others > 0);
        (ns, timeout, AnswerRoute::Answers(replies), p)
    }

    /// The number of other nodes (`PUBSUB NUMSUB` / `SHARDNUMSUB` minus this one); 0 while
    /// Redis is unreachable. What is queued goes out first (the count is a round trip).
    fn others(&mut self, ns: &str) -> usize {
        self.flush();
        let (sub, channel) = self.shared.proto.count_query(ns);
        let Some(c) = self.publisher.as_mut() else {
            return 0;
        };
        let r: redis::RedisResult<Vec<redis::Value>> =
            redis::cmd("PUBSUB").arg(sub).arg(&channel).query(c);
        match r {
            Ok(v) => match v.get(1) {
                Some(redis::Value::Int(n)) => (*n as usize).saturating_sub(1),
                _ => 0,
            },
            Err(e) => {
                self.publisher = None;
                self.lost(&format!("PUBSUB {sub}: {e}"));
                0
            }
        }
    }

    /// Publishes the batch in one pipeline.
    fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        let Some(c) = self.publisher.as_mut() else {
            let n = batch.len() as u64;
            self.shared.counters.dropped.fetch_add(n, Relaxed);
            return;
        };
        let cmd = if self.shared.proto.sharded {
            "SPUBLISH"
        } else {
            "PUBLISH"
        };
        let mut pipe = redis::pipe();
        for (channel, payload) in &batch {
            pipe.cmd(cmd).arg(channel).arg(payload).ignore();
        }
        let n = batch.len() as u64;
        match pipe.query::<()>(c) {
            Ok(()) => {
                self.shared.counters.published.fetch_add(n, Relaxed);
            }
            Err(e) => {
                self.shared.counters.dropped.fetch_add(n, Relaxed);
                self.publisher = None;
                self.lost(&format!("publish: {e}"));
            }
        }
    }

    fn local(&mut self, change: LocalChange) {
        let proto = &self.shared.proto;
        let (sub, add) = match change {
            LocalChange::Namespace(ns) => {
                let subs = proto.subscriptions(&ns);
                if self.namespaces.insert(ns) {
                    self.subscribe(&subs, true);
                }
                return;
            }
            LocalChange::RoomCreated(ns, r) | LocalChange::SocketConnected(ns, r) => {
                (proto.room_subscription(&ns, &r), true)
            }
            LocalChange::RoomDeleted(ns, r) | LocalChange::SocketDisconnected(ns, r) => {
                (proto.room_subscription(&ns, &r), false)
            }
        };
        let Some(sub) = sub else { return };
        let n = self.dynamic.entry(sub.clone()).or_insert(0);
        if add {
            *n += 1;
            if *n == 1 {
                self.subscribe(&[sub], true);
            }
        } else {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.dynamic.remove(&sub);
                self.subscribe(&[sub], false);
            }
        }
    }

    fn subscribe(&mut self, subs: &[Sub], on: bool) {
        let Some(s) = self.sub.as_mut() else { return };
        if let Err(e) = conn::write_subs(s, subs, on) {
            self.sub = None;
            self.lost(&format!("subscribe: {e}"));
        }
    }

    /// Connects what is down, resubscribes, and hands the new subscriber connection to the
    /// sub thread; on failure, waits longer before the next try.
    fn connect(&mut self) {
        let url = self.shared.opts.url.clone();
        if self.publisher.is_none() {
            match conn::publisher(&url) {
                Ok(c) => self.publisher = Some(c),
                Err(e) => return self.failed(&e.to_string()),
            }
        }
        if self.sub.is_none() {
            let mut s = match conn::subscriber(&url) {
                Ok(s) => s,
                Err(e) => return self.failed(&e.to_string()),
            };
            let mut subs: Vec<Sub> = self
                .namespaces
                .iter()
                .flat_map(|ns| self.shared.proto.subscriptions(ns))
                .collect();
            subs.extend(self.dynamic.keys().cloned());
            let read_half = s.try_clone();
            match (conn::write_subs(&mut s, &subs, true), read_half) {
                (Ok(()), Ok(r)) => {
                    let _ = self.to_reader.send(ToReader::Conn(r));
                    self.sub = Some(s);
                }
                (Err(e), _) | (_, Err(e)) => return self.failed(&e.to_string()),
            }
        }
        let c = &self.shared.counters;
        c.connected.store(true, Relaxed);
        if self.ever_up {
            c.reconnects.fetch_add(1, Relaxed);
            tracing::info!("redis adapter: reconnected to {url}, subscriptions restored");
        } else {
            tracing::info!(uid = %self.shared.proto.uid, "redis adapter: connected to {url}");
        }
        self.ever_up = true;
        self.down_logged = false;
        self.backoff = MIN_BACKOFF;
    }

    /// A connection was lost: the outage starts (logged and counted once).
    fn lost(&mut self, why: &str) {
        if !self.down_logged {
            self.down_logged = true;
            self.shared.counters.outages.fetch_add(1, Relaxed);
            self.shared.counters.connected.store(false, Relaxed);
            tracing::warn!(
                "redis adapter: connection lost ({why}); local delivery goes on, other nodes \
                 are unreachable until it comes back"
            );
        }
        self.next_try = Instant::now();
    }

    fn failed(&mut self, why: &str) {
        if !self.down_logged {
            self.down_logged = true;
            self.shared.counters.connected.store(false, Relaxed);
            if self.ever_up {
                self.shared.counters.outages.fetch_add(1, Relaxed);
            }
            tracing::warn!("redis adapter: cannot reach Redis ({why}); retrying with backoff");
        }
        self.next_try = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }
}
