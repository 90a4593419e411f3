//! Broadcast operators: `to` / `in` (several rooms = union), `except`, `local`, `volatile`,
//! `compress`, then `emit`. The packet is encoded once and shared by every recipient.
//!
//! Must not: deliver anything itself: the adapter does.

use super::adapter::{AckReply, BroadcastMsg, Op};
use super::local;
use super::remote::RemoteSocket;
use crate::proto::eio::OutPacket;
use crate::proto::sio::args::{to_writer, IntoArgs, RawArgs};
use crate::proto::sio::{encode_packet, write_array};
use bytes::BytesMut;
use futures_core::Stream;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

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
    /// Only this shard's sockets.
    pub fn local(mut self) -> Self {
        self.local = true;
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
        let (text, att) = encode_packet(&self.ns, Some(event), None, w, false);
        let mut packets = Vec::with_capacity(1 + att.len());
        packets.push(OutPacket::Text(text));
        packets.extend(att.into_iter().map(OutPacket::Binary));
        let volatile = self.volatile;
        self.send(Op::Emit { packets, volatile });
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

    /// Emits to every targeted socket on every shard and collects one ack per socket. Fails
    /// with the acks received so far when the timeout passes first.
    pub fn emit_with_ack(
        self,
        event: &str,
        args: impl IntoArgs,
    ) -> impl std::future::Future<Output = Result<Vec<RawArgs>, BroadcastAckError>> + 'static {
        let w = to_writer(args);
        let mut json = BytesMut::with_capacity(event.len() + w.json.len() + 8);
        write_array(&mut json, Some(event), &w.json);
        let (tx, mut rx) = futures_channel::mpsc::unbounded();
        let op = Op::EmitWithAck {
            event_json: json.freeze(),
            attachments: w.attachments,
            replies: tx,
        };
        let shards = self.send(op);
        let timeout = self.timeout.unwrap_or(Duration::from_secs(5));
        async move {
            let (mut counts, mut expected, mut responses) = (0usize, 0usize, Vec::new());
            let collect = async {
                while counts < shards || responses.len() < expected {
                    match std::future::poll_fn(|cx| Pin::new(&mut rx).poll_next(cx)).await {
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
            if done && counts == shards && responses.len() >= expected {
                Ok(responses)
            } else {
                Err(BroadcastAckError {
                    responses,
                    expected,
                })
            }
        }
    }

    /// Snapshots of the targeted sockets on every shard (`fetchSockets`).
    pub fn fetch_sockets(self) -> impl std::future::Future<Output = Vec<RemoteSocket>> + 'static {
        let (tx, mut rx) = futures_channel::mpsc::unbounded();
        let shards = self.send(Op::Fetch(tx));
        async move {
            let mut all = Vec::new();
            for _ in 0..shards {
                match std::future::poll_fn(|cx| Pin::new(&mut rx).poll_next(cx)).await {
                    Some(v) => all.extend(v),
                    None => break,
                }
            }
            all
        }
    }

    /// Makes the targeted sockets join a room (`socketsJoin`).
    pub fn sockets_join(self, room: &str) {
        self.send(Op::Join(vec![room.into()]));
    }

    /// Makes the targeted sockets leave a room (`socketsLeave`).
    pub fn sockets_leave(self, room: &str) {
        self.send(Op::Leave(vec![room.into()]));
    }

    /// Disconnects the targeted sockets (`disconnectSockets`); `close` closes their whole
    /// connection instead of just the namespace.
    pub fn disconnect_sockets(self, close: bool) {
        self.send(Op::Disconnect { close });
    }
}
