//! Rooms and broadcasting: the per-shard room index, the global presence table keyed by room
//! hash, and cross-shard fan-out.
//!
//! - Per shard: `ns -> room -> members`, looked up by full name (a hash collision in the
//!   presence table never leaks a message into another room).
//! - Presence: `Box<[AtomicU64]>`, slot = hash(ns, room) & mask, bit i = shard i may have
//!   members. Only shard i writes bit i, synchronously on its local 0->1 / 1->0 transitions of
//!   the slot, so a broadcast issued after `join()` returned always sees the join.
//! - A broadcast is encoded once; one `Arc` message goes to each destination shard through its
//!   bounded inbox (`try_send`; on Full the message waits in a per-destination overflow queue,
//!   keeping per-origin FIFO order). Each shard de-duplicates locally with a per-socket mark.

use crate::args::RawArgs;
use crate::proto::eio::OutPacket;
use crate::proto::sio::{self, Kind};
use crate::server::shard::{ShardCtx, ShardMsg};
use crate::server::{shard, EndpointRt, Sid};
use crate::socket::RemoteSocket;
use crate::socket::Socket;
use bytes::{BufMut, Bytes, BytesMut};
use futures_channel::mpsc::UnboundedSender;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash, Hasher};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The global presence table.
pub(crate) struct Presence {
    slots: Box<[AtomicU64]>,
    mask: usize,
}

impl Presence {
    /// A table of `size` slots (rounded up to a power of two, at least 1).
    pub fn new(size: usize) -> Presence {
        let size = size.max(1).next_power_of_two();
        Presence {
            slots: (0..size).map(|_| AtomicU64::new(0)).collect(),
            mask: size - 1,
        }
    }
    /// The slot of a room.
    pub fn slot(&self, ns: &str, room: &str) -> usize {
        // fixed keys: every shard must compute the same slot
        let mut h =
            std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
                .build_hasher();
        ns.hash(&mut h);
        room.hash(&mut h);
        (h.finish() as usize) & self.mask
    }
    fn set(&self, slot: usize, shard: usize, on: bool) {
        let bit = 1u64 << shard;
        if on {
            self.slots[slot].fetch_or(bit, Ordering::SeqCst);
        } else {
            self.slots[slot].fetch_and(!bit, Ordering::SeqCst);
        }
    }
    /// Shards that may have members of the room.
    pub fn shards(&self, slot: usize) -> u64 {
        self.slots[slot].load(Ordering::SeqCst)
    }
}

/// A broadcast (or a server-wide operation) as it travels between shards.
pub(crate) struct BroadcastMsg {
    pub ep: usize,
    pub ns: Box<str>,
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
    /// `fetchSockets`: each shard answers once.
    Fetch(UnboundedSender<Vec<RemoteSocket>>),
}

/// Replies of a broadcast with acks.
pub(crate) enum AckReply {
    /// How many sockets this shard targeted.
    Count(usize),
    /// One client's ack.
    Ack(RawArgs),
}

type Members = HashMap<Sid, Socket>;
type RoomIndex = HashMap<Rc<str>, HashMap<Rc<str>, Members>>;

/// Per-shard rooms and the sender side of cross-shard broadcasts.
#[derive(Default)]
pub(crate) struct LocalAdapter {
    rooms: RefCell<RoomIndex>,
    slot_counts: RefCell<HashMap<usize, u32>>,
    seq: Cell<u64>,
    overflow: RefCell<HashMap<usize, VecDeque<Arc<BroadcastMsg>>>>,
    flushing: Cell<bool>,
}

impl LocalAdapter {
    pub fn join(&self, socket: &Socket, room: &str) {
        if socket.0.rooms.borrow().iter().any(|r| &**r == room) {
            return;
        }
        let sh = shard();
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
            room_event(socket, crate::ns::RoomEvent::CreateRoom, room);
        }
        room_event(socket, crate::ns::RoomEvent::JoinRoom, room);
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
        room_event(socket, crate::ns::RoomEvent::LeaveRoom, room);
        if emptied {
            room_event(socket, crate::ns::RoomEvent::DeleteRoom, room);
            let sh = shard();
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

    /// Sends a broadcast to every shard that may have recipients.
    /// Returns the number of shards the message went to.
    pub fn broadcast(&self, msg: BroadcastMsg, local_only: bool) -> usize {
        let sh = shard();
        let n = sh.peers.inboxes.len();
        // Only emits are pruned by the presence table. Control operations (fetch, acks,
        // sockets_join/leave, disconnect) go to every shard: a remote join posted earlier from
        // this shard may not have set its presence bit yet, and per-origin FIFO then orders the
        // operation after it on every shard.
        let prune = matches!(msg.op, Op::Emit { .. });
        let mask: u64 = if local_only {
            1 << sh.id
        } else if msg.rooms.is_empty() || !prune {
            if n >= 64 {
                u64::MAX
            } else {
                (1u64 << n) - 1
            }
        } else {
            msg.rooms.iter().fold(0, |m, r| {
                // a socket id is also the (virtual) room of that socket, on its owner shard
                let own = Sid::parse(r).map_or(0, |sid| 1u64 << (sid.shard() & 63));
                m | own | sh.peers.presence.shards(sh.peers.presence.slot(&msg.ns, r))
            })
        };
        let msg = Arc::new(msg);
        let mut sent = 0;
        for dest in 0..n {
            if mask & (1 << dest) == 0 {
                continue;
            }
            sent += 1;
            if dest == sh.id {
                deliver_local(&sh, &msg);
            } else {
                self.post(&sh, dest, msg.clone());
            }
        }
        sent
    }

    fn post(&self, sh: &Rc<ShardCtx>, dest: usize, msg: Arc<BroadcastMsg>) {
        let mut overflow = self.overflow.borrow_mut();
        let q = overflow.entry(dest).or_default();
        if q.is_empty() {
            match sh.peers.try_post(dest, ShardMsg::Broadcast(msg)) {
                Ok(()) => return,
                Err(ShardMsg::Broadcast(m)) => q.push_back(m),
                Err(_) => return,
            }
        } else {
            q.push_back(msg);
        }
        sh.metrics().overflowed.fetch_add(1, Ordering::Relaxed);
        if !self.flushing.replace(true) {
            monoio::spawn(flush_overflow(sh.clone()));
        }
    }
}

fn room_event(socket: &Socket, ev: crate::ns::RoomEvent, room: &str) {
    for f in &socket.0.ns.def.room_events {
        f(ev, room, socket.id());
    }
}

async fn flush_overflow(sh: Rc<ShardCtx>) {
    loop {
        monoio::time::sleep(std::time::Duration::from_millis(1)).await;
        let mut overflow = sh.adapter.overflow.borrow_mut();
        for (&dest, q) in overflow.iter_mut() {
            while let Some(m) = q.pop_front() {
                if let Err(ShardMsg::Broadcast(m)) = sh.peers.try_post(dest, ShardMsg::Broadcast(m))
                {
                    q.push_front(m);
                    break;
                }
            }
        }
        overflow.retain(|_, q| !q.is_empty());
        if overflow.is_empty() {
            sh.adapter.flushing.set(false);
            return;
        }
    }
}

/// Delivers a broadcast to this shard's matching sockets, each at most once.
pub(crate) fn deliver_local(sh: &ShardCtx, msg: &BroadcastMsg) {
    let EndpointRt::SocketIo(namespaces) = &sh.endpoints[msg.ep] else {
        return;
    };
    let Some(ns) = namespaces.get(&msg.ns) else {
        return;
    };
    let a = &sh.adapter;
    let seq = a.seq.get() + 2;
    a.seq.set(seq);
    let rooms = a.rooms.borrow();
    let by_room = rooms.get(&*msg.ns);
    // a reused vector (a nested broadcast from a disconnect handler just allocates its own)
    let mut targets = TARGETS.with(|t| t.take()).unwrap_or_default();
    let sockets = ns.sockets.borrow();
    // the members of a room: joined sockets, plus the socket whose id names the room
    let members = |r: &str| {
        let joined = by_room
            .and_then(|b| b.get(r))
            .into_iter()
            .flat_map(|m| m.values());
        let own = Sid::parse(r).and_then(|sid| sockets.get(&sid));
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
    apply(sh, &msg.op, &mut targets);
    targets.clear();
    TARGETS.with(|t| t.set(Some(targets)));
}

thread_local! {
    static TARGETS: Cell<Option<Vec<Socket>>> = const { Cell::new(None) };
}

fn apply(sh: &ShardCtx, op: &Op, targets: &mut Vec<Socket>) {
    let live = |s: &Socket| s.connected().then(|| s.0.sess.upgrade()).flatten();
    match op {
        Op::Emit { packets, volatile } => {
            for s in targets.iter() {
                if let Some(sess) = live(s) {
                    sess.send_many_with(packets.iter().cloned(), *volatile);
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
            let kind = if attachments.is_empty() {
                Kind::Event
            } else {
                Kind::BinaryEvent
            };
            for s in targets.iter() {
                let id = s.register_remote_ack(replies.clone());
                let mut out = BytesMut::with_capacity(16 + event_json.len());
                sio::write_header(&mut out, kind, s.ns(), Some(id), attachments.len());
                out.put_slice(event_json);
                s.send_packets(out.freeze(), attachments.clone());
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
                    s.close_connection();
                } else {
                    s.disconnect();
                }
            }
        }
        Op::Fetch(reply) => {
            let _ = reply.unbounded_send(targets.iter().map(RemoteSocket::of).collect());
        }
    }
}
