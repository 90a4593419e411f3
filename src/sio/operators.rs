//! Broadcast operators: `to` / `in` (several rooms = union), `except`, `local`, `volatile`,
//! `compress`, then `emit`. The packet is encoded once and shared by every recipient.
//!
//! With a cluster adapter ([`super::cluster`]) every operation that is not `local` /
//! `this_node` is also handed to the other nodes, and requests wait for their answers too.
//!
//! Must not: deliver anything itself: the adapter does.

use super::adapter::{AckReply, BroadcastMsg, Op};
use super::cluster::{Answer, ClusterAdapter, ClusterOp, EventData, Target};
use super::local;
use super::remote::RemoteSocket;
use crate::proto::eio::OutPacket;
use crate::proto::sio::args::{to_writer, IntoArgs, RawArgs};
use crate::proto::sio::{encode_packet, write_array};
use bytes::BytesMut;
use futures_channel::mpsc::UnboundedReceiver;
use futures_core::Stream;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// Node's default timeout of cluster requests and broadcasts with acks.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A broadcast being built. Obtain one from [`crate::Socket::to`], [`crate::Socket::broadcast`]
/// or [`crate::Io::of`].
#[derive(Clone)]
pub struct BroadcastOperator {
    ns: Rc<str>,
    /// A parent namespace of dynamic ones (`Io::parent`).
    parent: Option<usize>,
    rooms: Vec<Box<str>>,
    except: Vec<Box<str>>,
    local: bool,
    /// Every shard of this node, no other node (Node's `local` flag).
    this_node: bool,
    volatile: bool,
    timeout: Option<Duration>,
}

/// A broadcast with acks that did not collect every ack in time.
#[derive(Debug)]
pub struct BroadcastAckError {
    /// The acks that did arrive.
    pub responses: Vec<RawArgs>,
    /// How many sockets were targeted.
    pub expected: usize,
}

impl std::fmt::Display for BroadcastAckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "operation has timed out ({} of {} acks)",
            self.responses.len(),
            self.expected
        )
    }
}
impl std::error::Error for BroadcastAckError {}

impl BroadcastOperator {
    pub(crate) fn new(ns: Rc<str>) -> Self {
        BroadcastOperator {
            ns,
            parent: None,
            rooms: Vec::new(),
            except: Vec::new(),
            local: false,
            this_node: false,
            volatile: false,
            timeout: None,
        }
    }
    /// Adds a target room (union with the rooms already named).
    pub fn to(mut self, room: &str) -> Self {
        if !self.rooms.iter().any(|r| &**r == room) {
            self.rooms.push(room.into());
        }
        self
    }
    /// Same as [`Self::to`].
    pub fn within(self, room: &str) -> Self {
        self.to(room)
    }
    /// Excludes the members of a room (a socket id excludes that socket).
    pub fn except(mut self, room: &str) -> Self {
        self.except.push(room.into());
        self
    }
    /// Only this shard's sockets (and no other node).
    pub fn local(mut self) -> Self {
        self.local = true;
        self
    }
    /// Only this node's sockets, on every shard: Node's `local` flag in a cluster (no other
    /// node is told).
    pub fn this_node(mut self) -> Self {
        self.this_node = true;
        self
    }
    /// May be dropped for clients that are not ready (slow or reconnecting).
    pub fn volatile(mut self) -> Self {
        self.volatile = true;
        self
    }
    /// Accepted for API parity; compression is not implemented yet, so this has no effect.
    pub fn compress(self, _on: bool) -> Self {
        self
    }
    /// The parent namespace number `index` of dynamic namespaces.
    pub(crate) fn parent(index: usize) -> Self {
        let mut op = BroadcastOperator::new(format!("/_{index}").into());
        op.parent = Some(index);
        op
    }

    /// Emits the event to every targeted socket (across all shards).
    pub fn emit(self, event: &str, args: impl IntoArgs) {
        let w = to_writer(args);
        if self.parent.is_some() {
            let mut json = BytesMut::with_capacity(event.len() + w.json.len() + 8);
            write_array(&mut json, Some(event), &w.json);
            let op = Op::EmitPerNamespace {
                event_json: json.freeze(),
                attachments: w.attachments,
                volatile: self.volatile,
            };
            self.send(op);
            return;
        }
        if let Some(c) = self.cluster() {
            let data = event_data(event, &w);
            let (target, volatile) = (self.target(), self.volatile);
            c.send(ClusterOp::Broadcast {
                target,
                data,
                volatile,
            });
        }
        let (text, att) = encode_packet(&self.ns, Some(event), None, w, false);
        let mut packets = Vec::with_capacity(1 + att.len());
        packets.push(OutPacket::Text(text));
        packets.extend(att.into_iter().map(OutPacket::Binary));
        let volatile = self.volatile;
        self.send(Op::Emit { packets, volatile });
    }

    /// The cluster adapter, when this operation reaches other nodes.
    fn cluster(&self) -> Option<Arc<dyn ClusterAdapter>> {
        if self.local || self.this_node || self.parent.is_some() {
            return None;
        }
        local().cluster.clone()
    }

    fn target(&self) -> Target {
        let strings = |v: &[Box<str>]| v.iter().map(|r| r.to_string()).collect();
        Target {
            ns: self.ns.to_string(),
            rooms: strings(&self.rooms),
            except: strings(&self.except),
        }
    }

    fn send(&self, op: Op) -> usize {
        let msg = BroadcastMsg {
            ns: (*self.ns).into(),
            parent: self.parent,
            rooms: self.rooms.clone(),
            except: self.except.clone(),
            op,
        };
        local().adapter.broadcast(msg, self.local)
    }

    /// Sets the timeout of [`Self::emit_with_ack`] (default 5 s, like the Redis adapter's
    /// request timeout).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// Emits to every targeted socket on every shard (and node) and collects one ack per
    /// socket. Fails with the acks received so far when the timeout passes first.
    pub fn emit_with_ack(
        self,
        event: &str,
        args: impl IntoArgs,
    ) -> impl std::future::Future<Output = Result<Vec<RawArgs>, BroadcastAckError>> + 'static {
        let w = to_writer(args);
        let data = event_data(event, &w);
        let (tx, rx) = futures_channel::mpsc::unbounded();
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let cluster = self.cluster();
        if let Some(c) = &cluster {
            c.send(ClusterOp::BroadcastWithAck {
                target: self.target(),
                data: data.clone(),
                timeout,
                replies: tx.clone(),
            });
        }
        let op = Op::EmitWithAck {
            event_json: data.json,
            attachments: data.attachments,
            replies: tx,
        };
        let shards = self.send(op);
        collect_acks(rx, shards, cluster.is_some(), timeout)
    }

    /// Snapshots of the targeted sockets on every shard and node (`fetchSockets`); with other
    /// nodes, what arrived before the timeout (default 5 s).
    pub fn fetch_sockets(self) -> impl std::future::Future<Output = Vec<RemoteSocket>> + 'static {
        let (tx, rx) = futures_channel::mpsc::unbounded();
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let cluster = self.cluster();
        if let Some(c) = &cluster {
            let (target, replies) = (self.target(), tx.clone());
            c.send(ClusterOp::Fetch {
                target,
                timeout,
                replies,
            });
        }
        let shards = self.send(Op::Fetch(tx));
        let collect = collect_answers(rx, shards, cluster.is_some(), timeout);
        async move {
            let mut all = Vec::new();
            for a in collect.await.0 {
                if let Answer::Sockets(v) = a {
                    all.extend(v);
                }
            }
            all
        }
    }

    /// Every room of the namespace on every shard and node, socket ids included (Node's
    /// `adapter.allRooms()`); with other nodes, what arrived before the timeout.
    pub fn all_rooms(self) -> impl std::future::Future<Output = Vec<String>> + 'static {
        let (tx, rx) = futures_channel::mpsc::unbounded();
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let cluster = self.cluster();
        if let Some(c) = &cluster {
            let (ns, replies) = (self.ns.to_string(), tx.clone());
            c.send(ClusterOp::AllRooms {
                ns,
                timeout,
                replies,
            });
        }
        let op = BroadcastOperator::new(self.ns.clone());
        let shards = op.send(Op::Rooms(tx));
        let collect = collect_answers(rx, shards, cluster.is_some(), timeout);
        async move {
            let mut all = Vec::new();
            for a in collect.await.0 {
                if let Answer::Rooms(v) = a {
                    all.extend(v);
                }
            }
            all.sort_unstable();
            all.dedup();
            all
        }
    }

    /// The number of nodes of the cluster, this one included (1 without a cluster adapter).
    pub fn server_count(self) -> impl std::future::Future<Output = usize> + 'static {
        let (tx, rx) = futures_channel::oneshot::channel();
        if let Some(c) = self.cluster() {
            let ns = self.ns.to_string();
            c.send(ClusterOp::ServerCount { ns, reply: tx });
        } else {
            let _ = tx.send(1);
        }
        async move { rx.await.unwrap_or(1).max(1) }
    }

    /// Emits an event to the other nodes of the cluster (Node's `serverSideEmit`): their
    /// namespace's [`crate::Namespace::on_server_side_emit`] listeners get it, once per node.
    /// Rooms do not apply. Without a cluster adapter, nothing happens (as in Node).
    pub fn server_side_emit(self, event: &str, args: impl IntoArgs) {
        if let Some(c) = self.cluster() {
            let data = event_data(event, &to_writer(args));
            let ns = self.ns.to_string();
            c.send(ClusterOp::ServerSideEmit {
                ns,
                data,
                replies: None,
            });
        }
    }

    /// [`Self::server_side_emit`] with one ack per other node (Node's
    /// `serverSideEmitWithAck`): their answers, or an error with the answers that came
    /// before the timeout (default 5 s).
    pub fn server_side_emit_with_ack(
        self,
        event: &str,
        args: impl IntoArgs,
    ) -> impl std::future::Future<Output = Result<Vec<RawArgs>, BroadcastAckError>> + 'static {
        let (tx, rx) = futures_channel::mpsc::unbounded();
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let cluster = self.cluster();
        if let Some(c) = &cluster {
            let data = event_data(event, &to_writer(args));
            let ns = self.ns.to_string();
            c.send(ClusterOp::ServerSideEmit {
                ns,
                data,
                replies: Some((timeout, tx)),
            });
        } else {
            drop(tx);
        }
        let collect = collect_answers(rx, 0, cluster.is_some(), timeout);
        async move {
            let (answers, expected, complete) = collect.await;
            let responses: Vec<RawArgs> = answers
                .into_iter()
                .filter_map(|a| match a {
                    Answer::Ack(a) => Some(a),
                    _ => None,
                })
                .collect();
            if complete {
                Ok(responses)
            } else {
                Err(BroadcastAckError {
                    responses,
                    expected,
                })
            }
        }
    }

    /// Makes the targeted sockets join a room (`socketsJoin`).
    pub fn sockets_join(self, room: &str) {
        if let Some(c) = self.cluster() {
            let (target, rooms) = (self.target(), vec![room.to_string()]);
            c.send(ClusterOp::Join { target, rooms });
        }
        self.send(Op::Join(vec![room.into()]));
    }

    /// Makes the targeted sockets leave a room (`socketsLeave`).
    pub fn sockets_leave(self, room: &str) {
        if let Some(c) = self.cluster() {
            let (target, rooms) = (self.target(), vec![room.to_string()]);
            c.send(ClusterOp::Leave { target, rooms });
        }
        self.send(Op::Leave(vec![room.into()]));
    }

    /// Disconnects the targeted sockets (`disconnectSockets`); `close` closes their whole
    /// connection instead of just the namespace.
    pub fn disconnect_sockets(self, close: bool) {
        if let Some(c) = self.cluster() {
            let target = self.target();
            c.send(ClusterOp::Disconnect { target, close });
        }
        self.send(Op::Disconnect { close });
    }
}

/// The event as it crosses nodes: `["event", args...]` and the attachments.
fn event_data(event: &str, w: &crate::proto::sio::args::ArgWriter) -> EventData {
    let mut json = BytesMut::with_capacity(event.len() + w.json.len() + 8);
    write_array(&mut json, Some(event), &w.json);
    EventData {
        json: json.freeze(),
        attachments: w.attachments.clone(),
    }
}

async fn next<T>(rx: &mut UnboundedReceiver<T>) -> Option<T> {
    std::future::poll_fn(|cx| Pin::new(&mut *rx).poll_next(cx)).await
}

/// Collects `shards` answers, plus, with a cluster, [`Answer::Nodes`] and that many more, until
/// the timeout: the answers (without `Nodes`), how many were expected, and whether all came.
async fn collect_answers(
    mut rx: UnboundedReceiver<Answer>,
    shards: usize,
    cluster: bool,
    timeout: Duration,
) -> (Vec<Answer>, usize, bool) {
    let mut expected = shards;
    let mut known = !cluster;
    let mut got = Vec::new();
    let collect = async {
        while !known || got.len() < expected {
            match next(&mut rx).await {
                Some(Answer::Nodes(n)) => {
                    known = true;
                    expected += n;
                }
                Some(a) => got.push(a),
                None => break,
            }
        }
    };
    let _ = monoio::time::timeout(timeout, collect).await;
    let complete = known && got.len() >= expected;
    (got, expected, complete)
}

/// Collects the counts of every shard (and node) and one ack per counted socket.
async fn collect_acks(
    mut rx: UnboundedReceiver<AckReply>,
    shards: usize,
    cluster: bool,
    timeout: Duration,
) -> Result<Vec<RawArgs>, BroadcastAckError> {
    {
        let (mut counts, mut servers, mut expected) = (0usize, shards, 0usize);
        let mut known = !cluster;
        let mut responses = Vec::new();
        let collect = async {
            while !known || counts < servers || responses.len() < expected {
                match next(&mut rx).await {
                    Some(AckReply::Nodes(n)) => {
                        known = true;
                        servers += n;
                    }
                    Some(AckReply::Count(n)) => {
                        counts += 1;
                        expected += n;
                    }
                    Some(AckReply::Ack(a)) => responses.push(a),
                    None => break,
                }
            }
        };
        let done = monoio::time::timeout(timeout, collect).await.is_ok();
        if done && known && counts >= servers && responses.len() >= expected {
            Ok(responses)
        } else {
            Err(BroadcastAckError {
                responses,
                expected,
            })
        }
    }
}
