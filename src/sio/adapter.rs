//! Rooms and broadcasting: the per-shard room index and cross-shard fan-out (the local
//! adapter).
//!
//! - Per shard: `ns -> room -> members`, looked up by full name (a hash collision in the
//!   presence table never leaks a message into another room).
//! - Presence ([`crate::rt::Presence`]): bit i of a room's slot = shard i may have members,
//!   kept here on the local 0->1 / 1->0 transitions of the slot, so a broadcast issued after
//!   `join()` returned always sees the join.
//! - A broadcast is encoded once; one `Arc` message goes to each destination shard as an
//!   ordered job ([`crate::rt::Shard::post`]: on a full inbox it waits in a per-destination
//!   overflow queue, keeping per-origin FIFO order). Each shard de-duplicates locally with a
//!   per-socket mark.
//!
//! Must not: touch transports; recipients are reached through their sessions' queues.

use super::cluster::{self, Answer, LocalChange};
use super::ns::{NsRt, RoomEvent};
use super::remote::RemoteSocket;
use super::socket::Socket;
use super::{local, SioShard};
use crate::proto::eio::OutPacket;
use crate::proto::sio::args::RawArgs;
use crate::proto::sio::{self, Kind, SocketId};
use crate::rt;
use bytes::{BufMut, Bytes, BytesMut};
use futures_channel::mpsc::UnboundedSender;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

/// A broadcast (or a server-wide operation) as it travels between shards.
pub(crate) struct BroadcastMsg {
    pub ns: Box<str>,
    /// A parent namespace of dynamic ones: the operation applies to each of its children.
    pub parent: Option<usize>,
    pub rooms: Vec<Box<str>>,
    pub except: Vec<Box<str>>,
    pub op: Op,
}

/// What to do with the selected sockets.
pub(crate) enum Op {
    /// Queue these packets (encoded once) on every selected socket.
    Emit {
        packets: Vec<OutPacket>,
        volatile: bool,
    },
    /// An emit to the children of a parent namespace: encoded once per child (the namespace
    /// name is part of the packet).
    EmitPerNamespace {
        event_json: Bytes,
        attachments: Vec<Bytes>,
        volatile: bool,
    },
    /// Emit with a per-socket ack id; each shard reports its count, then each ack.
    EmitWithAck {
        event_json: Bytes,
        attachments: Vec<Bytes>,
        replies: UnboundedSender<AckReply>,
    },
    /// `socketsJoin`.
    Join(Vec<Box<str>>),
    /// `socketsLeave`.
    Leave(Vec<Box<str>>),
    /// `disconnectSockets(close)`.
    Disconnect { close: bool },
    /// `fetchSockets`: each shard answers once ([`Answer::Sockets`]).
    Fetch(UnboundedSender<Answer>),
    /// The rooms of the namespace (socket ids included): each shard answers once
    /// ([`Answer::Rooms`]).
    Rooms(UnboundedSender<Answer>),
}

/// Replies of a broadcast with acks.
#[derive(Debug)]
pub enum AckReply {
    /// How many other nodes will report a count (sent once by the cluster adapter).
    Nodes(usize),
    /// How many sockets one shard (or one other node) targeted.
    Count(usize),
    /// One client's ack.
    Ack(RawArgs),
}

type Members = HashMap<SocketId, Socket>;
type RoomIndex = HashMap<Rc<str>, HashMap<Rc<str>, Members>>;

/// Per-shard rooms and the sender side of cross-shard broadcasts.
#[derive(Default)]
pub(crate) struct LocalAdapter {
    rooms: RefCell<RoomIndex>,
    /// Local rooms per presence slot: the slot's bit is set while this is above 0.
    slot_counts: RefCell<HashMap<usize, u32>>,
    /// The de-duplication mark of the current delivery (see [`deliver_local`]).
    seq: Cell<u64>,
}

impl LocalAdapter {
    pub fn join(&self, socket: &Socket, room: &str) {
        if socket.0.rooms.borrow().iter().any(|r| &**r == room) {
            return;
        }
        let sh = rt::shard();
        let ns = socket.0.ns.name.clone();
        let mut rooms = self.rooms.borrow_mut();
        let by_room = rooms.entry(ns.clone()).or_default();
        let (key, created) = match by_room.get_key_value(room) {
            Some((k, _)) => (k.clone(), false),
            None => (Rc::<str>::from(room), true),
        };
        by_room
            .entry(key.clone())
            .or_default()
            .insert(socket.sid(), socket.clone());
        drop(rooms);
        if created {
            cluster::notify(
                || LocalChange::RoomCreated(ns.to_string(), room.into()),
                true,
            );
            let slot = sh.peers.presence.slot(&ns, room);
            let mut counts = self.slot_counts.borrow_mut();
            let c = counts.entry(slot).or_insert(0);
            *c += 1;
            if *c == 1 {
                sh.peers.presence.set(slot, sh.id, true);
            }
        }
        socket.0.rooms.borrow_mut().push(key);
        if created {
            room_event(socket, RoomEvent::CreateRoom, room);
        }
        room_event(socket, RoomEvent::JoinRoom, room);
    }

    pub fn leave(&self, socket: &Socket, room: &str) {
        let pos = socket.0.rooms.borrow().iter().position(|r| &**r == room);
        let Some(pos) = pos else { return };
        socket.0.rooms.borrow_mut().swap_remove(pos);
        self.remove_member(socket, room);
    }

    pub fn leave_all(&self, socket: &Socket) {
        let rooms = std::mem::take(&mut *socket.0.rooms.borrow_mut());
        for r in rooms {
            self.remove_member(socket, &r);
        }
    }

    fn remove_member(&self, socket: &Socket, room: &str) {
        let ns = &socket.0.ns.name;
        let emptied = {
            let mut rooms = self.rooms.borrow_mut();
            let Some(by_room) = rooms.get_mut(&**ns) else {
                return;
            };
            let Some(members) = by_room.get_mut(room) else {
                return;
            };
            members.remove(&socket.sid());
            let empty = members.is_empty();
            if empty {
                by_room.remove(room);
            }
            empty
        };
        room_event(socket, RoomEvent::LeaveRoom, room);
        if emptied {
            cluster::notify(
                || LocalChange::RoomDeleted(ns.to_string(), room.into()),
                true,
            );
            room_event(socket, RoomEvent::DeleteRoom, room);
            let sh = rt::shard();
            let slot = sh.peers.presence.slot(ns, room);
            let mut counts = self.slot_counts.borrow_mut();
            if let Some(c) = counts.get_mut(&slot) {
                *c -= 1;
                if *c == 0 {
                    counts.remove(&slot);
                    sh.peers.presence.set(slot, sh.id, false);
                }
            }
        }
    }

    /// Number of local members of a room.
    #[allow(dead_code)]
    pub fn room_len(&self, ns: &str, room: &str) -> usize {
        self.rooms
            .borrow()
            .get(ns)
            .and_then(|r| r.get(room))
            .map_or(0, |m| m.len())
    }

    /// Sends a broadcast to every shard that may have recipients (this one directly, the
    /// others through ordered jobs). Returns the number of shards the message went to.
    pub fn broadcast(&self, msg: BroadcastMsg, local_only: bool) -> usize {
        let sh = rt::shard();
        let mask = destinations(&sh.peers, &msg, local_only.then_some(sh.id));
        let msg = Arc::new(msg);
        let mut sent = 0;
        for dest in 0..sh.count() {
            if mask & (1 << dest) == 0 {
                continue;
            }
            sent += 1;
            if dest == sh.id {
                deliver_local(&local(), &msg);
            } else {
                let msg = msg.clone();
                sh.post(dest, Box::new(move || deliver_local(&local(), &msg)));
            }
        }
        sent
    }

    /// This shard's rooms of `ns` and the ids of its sockets there (Node's `rooms` keys).
    fn rooms_of(&self, ns: &NsRt) -> Vec<String> {
        let mut v: Vec<String> = ns
            .sockets
            .borrow()
            .keys()
            .map(|id| id.to_string())
            .collect();
        if let Some(by_room) = self.rooms.borrow().get(&*ns.name) {
            v.extend(by_room.keys().map(|r| r.to_string()));
        }
        v
    }
}

/// The shards a message goes to, as a bit mask: `only` alone when set; else for an emit the
/// shards whose presence bits say they may hold a member of a target room (every shard when
/// the emit targets the whole namespace); every shard for the other operations.
pub(crate) fn destinations(peers: &rt::ShardSet, msg: &BroadcastMsg, only: Option<usize>) -> u64 {
    let n = peers.len();
    // Only emits are pruned by the presence table. Control operations (fetch, acks,
    // sockets_join/leave, disconnect) go to every shard: a remote join posted earlier from
    // this shard may not have set its presence bit yet, and per-origin FIFO then orders the
    // operation after it on every shard.
    let prune = matches!(msg.op, Op::Emit { .. }) && msg.parent.is_none();
    if let Some(id) = only {
        1 << id
    } else if msg.rooms.is_empty() || !prune {
        if n >= 64 {
            u64::MAX
        } else {
            (1u64 << n) - 1
        }
    } else {
        let presence = &peers.presence;
        msg.rooms.iter().fold(0, |m, r| {
            // a socket id is also the (virtual) room of that socket, on its owner shard
            let own = SocketId::parse(r).map_or(0, |id| 1u64 << (id.shard() & 63));
            m | own | presence.shards(presence.slot(&msg.ns, r))
        })
    }
}

fn room_event(socket: &Socket, ev: RoomEvent, room: &str) {
    for f in &socket.0.ns.def.room_events {
        f(ev, room, socket.id());
    }
}

/// Delivers a broadcast to this shard's matching sockets, each at most once.
///
/// De-duplication without a set: each delivery takes two fresh values of a per-shard counter,
/// `seq` and `seq + 1`, and writes them into the sockets' `mark` cell. Excluded sockets are
/// marked `seq + 1` first; a target is taken when its mark is neither (then marked `seq`), so a
/// socket in two target rooms, or in a target and an excluded room, is visited once or not at
/// all. Marks from older deliveries are smaller and never match.
pub(crate) fn deliver_local(sh: &SioShard, msg: &BroadcastMsg) {
    match msg.parent {
        None => match sh.namespaces.get(&msg.ns) {
            Some(ns) => deliver_ns(sh, &ns, msg, &msg.op),
            None => answer_empty(&msg.op),
        },
        Some(p) => {
            for ns in sh.namespaces.children(p) {
                match &msg.op {
                    Op::EmitPerNamespace {
                        event_json,
                        attachments,
                        volatile,
                    } => {
                        let packets = event_packets(&ns.name, None, event_json, attachments);
                        let op = Op::Emit {
                            packets,
                            volatile: *volatile,
                        };
                        deliver_ns(sh, &ns, msg, &op);
                    }
                    op => deliver_ns(sh, &ns, msg, op),
                }
            }
        }
    }
}

/// The answer of a shard without the namespace to the operations that expect one from every
/// shard (a request from another node may name a namespace this node lacks).
fn answer_empty(op: &Op) {
    match op {
        Op::Fetch(r) | Op::Rooms(r) => {
            let empty = match op {
                Op::Fetch(_) => Answer::Sockets(Vec::new()),
                _ => Answer::Rooms(Vec::new()),
            };
            let _ = r.unbounded_send(empty);
        }
        Op::EmitWithAck { replies, .. } => {
            let _ = replies.unbounded_send(AckReply::Count(0));
        }
        _ => {}
    }
}

/// An event packet for namespace `nsp` (with ack id `id`) from its JSON array, and its
/// attachments.
pub(crate) fn event_packets(
    nsp: &str,
    id: Option<u64>,
    event_json: &[u8],
    attachments: &[Bytes],
) -> Vec<OutPacket> {
    let kind = if attachments.is_empty() {
        Kind::Event
    } else {
        Kind::BinaryEvent
    };
    let mut out = BytesMut::with_capacity(16 + nsp.len() + event_json.len());
    sio::write_header(&mut out, kind, nsp, id, attachments.len());
    out.put_slice(event_json);
    let mut packets = Vec::with_capacity(1 + attachments.len());
    packets.push(OutPacket::Text(out.freeze()));
    packets.extend(attachments.iter().cloned().map(OutPacket::Binary));
    packets
}

/// Delivers `op` to the sockets of `ns` that `msg`'s rooms and exceptions select.
fn deliver_ns(sh: &SioShard, ns: &NsRt, msg: &BroadcastMsg, op: &Op) {
    let a = &sh.adapter;
    if let Op::Rooms(reply) = op {
        let _ = reply.unbounded_send(Answer::Rooms(a.rooms_of(ns)));
        return;
    }
    let seq = a.seq.get() + 2;
    a.seq.set(seq);
    let rooms = a.rooms.borrow();
    let by_room = rooms.get(&*ns.name);
    // a reused vector (a nested broadcast from a disconnect handler just allocates its own)
    let mut targets = TARGETS.with(|t| t.take()).unwrap_or_default();
    let sockets = ns.sockets.borrow();
    // the members of a room: joined sockets, plus the socket whose id names the room
    let members = |r: &str| {
        let joined = by_room
            .and_then(|b| b.get(r))
            .into_iter()
            .flat_map(|m| m.values());
        let own = SocketId::parse(r).and_then(|id| sockets.get(&id));
        joined.chain(own)
    };
    for r in &msg.except {
        members(r).for_each(|s| s.0.mark.set(seq + 1));
    }
    let mut visit = |s: &Socket| {
        let m = s.0.mark.get();
        if m != seq && m != seq + 1 {
            s.0.mark.set(seq);
            targets.push(s.clone());
        }
    };
    if msg.rooms.is_empty() {
        sockets.values().for_each(&mut visit);
    } else {
        for r in &msg.rooms {
            members(r).for_each(&mut visit);
        }
    }
    drop(sockets);
    drop(rooms);
    apply(sh, op, &mut targets);
    targets.clear();
    TARGETS.with(|t| t.set(Some(targets)));
}

thread_local! {
    static TARGETS: Cell<Option<Vec<Socket>>> = const { Cell::new(None) };
}

fn apply(sh: &SioShard, op: &Op, targets: &mut Vec<Socket>) {
    let live = |s: &Socket| s.connected().then(|| s.0.sess.upgrade()).flatten();
    match op {
        Op::Emit { packets, volatile } => {
            for s in targets.iter() {
                if let Some(sess) = live(s) {
                    sess.send_many(packets.iter().cloned(), *volatile);
                }
            }
        }
        Op::EmitPerNamespace {
            event_json,
            attachments,
            volatile,
        } => {
            // every target is in one namespace: encoded once for it
            let Some(first) = targets.first() else { return };
            let packets = event_packets(first.ns(), None, event_json, attachments);
            for s in targets.iter() {
                if let Some(sess) = live(s) {
                    sess.send_many(packets.iter().cloned(), *volatile);
                }
            }
        }
        Op::EmitWithAck {
            event_json,
            attachments,
            replies,
        } => {
            targets.retain(|s| s.connected());
            let _ = replies.unbounded_send(AckReply::Count(targets.len()));
            for s in targets.iter() {
                let id = s.register_remote_ack(replies.clone());
                let packets = event_packets(s.ns(), Some(id), event_json, attachments);
                if let Some(sess) = live(s) {
                    sess.send_many(packets, false);
                }
            }
        }
        Op::Join(rooms) => {
            for s in targets.iter() {
                rooms.iter().for_each(|r| sh.adapter.join(s, r));
            }
        }
        Op::Leave(rooms) => {
            for s in targets.iter() {
                rooms.iter().for_each(|r| sh.adapter.leave(s, r));
            }
        }
        Op::Disconnect { close } => {
            for s in targets.iter() {
                if *close {
                    s.disconnect_client();
                } else {
                    s.disconnect();
                }
            }
        }
        Op::Fetch(reply) => {
            let sockets = targets.iter().map(RemoteSocket::of).collect();
            let _ = reply.unbounded_send(Answer::Sockets(sockets));
        }
        Op::Rooms(_) => {}
    }
}
