//! Requests from other nodes, served on one shard of this node (`Node::run`): the shard
//! collects from every shard of the node, as its own operations do, and hands the encoded
//! answer to the pub thread.
//!
//! Must not: block the shard (answers are handed over with `try_send`).

use super::msgpack::{self, Value};
use super::wire::{sockets, Incoming};
use super::Shared;
use crate::sio::cluster::{self, Node};
use crate::sio::AckReply;
use crate::RawArgs;
use futures_core::Stream;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// How long acks are collected for another node's broadcast when it gave no timeout.
const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) fn serve(node: &Node, shared: &Arc<Shared>, m: Incoming) {
    let shared = shared.clone();
    match m {
        Incoming::Fetch {
            requester,
            request_id,
            target,
        } => node.run(Box::new(move || {
            monoio::spawn(async move {
                let ns = target.ns.clone();
                let found = cluster::fetch_here(target).await;
                let v = Value::Array(found.iter().map(sockets::to_value).collect());
                let p = shared.proto.fetch_answer(&requester, &request_id, &ns, v);
                shared.publish(p);
            });
        })),
        Incoming::AllRooms { request_id, ns, .. } => node.run(Box::new(move || {
            monoio::spawn(async move {
                let rooms = cluster::rooms_here(&ns).await;
                shared.publish(shared.proto.rooms_answer(&request_id, &ns, &rooms));
            });
        })),
        Incoming::ServerSideEmit {
            requester,
            request_id,
            ns,
            data,
        } => node.run(Box::new(move || {
            let ack = request_id.map(|id| {
                let (shared, ns) = (shared.clone(), ns.clone());
                Box::new(move |args: RawArgs| {
                    let p = shared
                        .proto
                        .server_side_answer(&requester, &id, &ns, first(&args));
                    shared.publish(p);
                }) as Box<dyn FnOnce(RawArgs)>
            });
            cluster::server_side_emit_here(&ns, &data, ack);
        })),
        Incoming::BroadcastAck {
            requester,
            request_id,
            target,
            data,
            timeout,
        } => node.run(Box::new(move || {
            let ns = target.ns.clone();
            let (shards, rx) = cluster::broadcast_with_ack_here(target, data);
            let timeout = timeout.unwrap_or(DEFAULT_ACK_TIMEOUT);
            monoio::spawn(async move {
                let answer = Answerer {
                    shared,
                    requester,
                    request_id,
                    ns,
                };
                let _ = monoio::time::timeout(timeout, answer.run(shards, rx)).await;
            });
        })),
        _ => {}
    }
}

/// Answers another node's broadcast with acks: this node's client count (once every shard
/// counted), then each ack, as Node does.
struct Answerer {
    shared: Arc<Shared>,
    requester: String,
    request_id: String,
    ns: String,
}

impl Answerer {
    async fn run(self, shards: usize, mut rx: futures_channel::mpsc::UnboundedReceiver<AckReply>) {
        let (mut counts, mut total, mut acked) = (0usize, 0usize, 0usize);
        let mut early = Vec::new();
        while counts < shards || acked < total {
            let next = std::future::poll_fn(|cx| Pin::new(&mut rx).poll_next(cx)).await;
            match next {
                Some(AckReply::Count(n)) => {
                    counts += 1;
                    total += n;
                    if counts == shards {
                        let p = self.shared.proto.count_answer(
                            &self.requester,
                            &self.request_id,
                            &self.ns,
                            total,
                        );
                        self.shared.publish(p);
                        for a in early.drain(..) {
                            self.ack(a);
                        }
                    }
                }
                Some(AckReply::Ack(a)) => {
                    acked += 1;
                    if counts == shards {
                        self.ack(a);
                    } else {
                        early.push(a);
                    }
                }
                Some(AckReply::Nodes(_)) => {}
                None => return,
            }
        }
    }

    fn ack(&self, args: RawArgs) {
        let p =
            self.shared
                .proto
                .ack_answer(&self.requester, &self.request_id, &self.ns, first(&args));
        self.shared.publish(p);
    }
}

/// The first argument of an ack, as a value (Node's callbacks pass on one argument).
fn first(args: &RawArgs) -> Value {
    match args.raw(0) {
        Some(raw) => msgpack::from_json(raw.as_bytes(), args.attachments()).unwrap_or(Value::Nil),
        None => Value::Nil,
    }
}
