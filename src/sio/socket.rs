//! The user-facing socket: one client connected to one namespace.
//!
//! Owns: emitting (encoded once into `Bytes`), acks in both directions, per-socket handlers,
//! the per-socket event queue that keeps async handlers in arrival order, rooms membership,
//! per-socket data, and the disconnect path.
//!
//! Must not: touch transports (it queues through its session) or other shards except through jobs.

use super::ack::{AckMap, AckSlot};
use super::adapter::AckReply;
use super::conn::Sess;
use super::listeners::Listeners;
use super::ns::NsRt;
use super::operators::BroadcastOperator;
use super::{local, DisconnectReason};
use crate::engine::Handshake;
use crate::proto::eio::{CloseReason, OutPacket};
use crate::proto::sio::args::{to_writer, ArgWriter, IntoArgs, RawArgs};
use crate::proto::sio::{self, encode_packet, AckError, Kind, SocketId, RESERVED_EVENTS};
use crate::rt;
use bytes::Bytes;
use smallvec::SmallVec;
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use std::time::Duration;

/// An event waiting behind an async middleware or listener: name, arguments, ack id.
pub(crate) type Queued = (Rc<str>, RawArgs, Option<u64>);

/// What few sockets use (their own listeners, middlewares, disconnect callbacks, shared data),
/// boxed so that a socket without them pays one pointer.
#[derive(Default)]
pub(crate) struct Ext {
    shared: Option<String>,
    pub(crate) listeners: Listeners,
}

/// Every connected client holds one of these for its whole life: keep it small.
pub(crate) struct SocketInner {
    pub id: SocketId,
    pub ns: Rc<NsRt>,
    pub sess: Weak<Sess>,
    /// The CONNECT payload, copied out of the packet (a slice would pin the read buffer);
    /// `None` for none (`{}`).
    auth: Option<Box<[u8]>>,
    state: Cell<State>,
    /// Acks this server waits for from the client: created on the first one.
    acks: RefCell<Option<Box<AckMap>>>,
    next_ack: Cell<u64>,
    data: RefCell<Option<Box<dyn Any>>>,
    pub(crate) ext: RefCell<Option<Box<Ext>>>,
    pub(crate) queue: RefCell<VecDeque<Queued>>,
    pub(crate) busy: Cell<bool>,
    pub rooms: RefCell<SmallVec<[Rc<str>; 2]>>,
    /// The de-duplication mark of broadcasts (see `adapter::deliver_local`).
    pub mark: Cell<u64>,
}

/// Where a socket is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Created, waiting for the connect middlewares.
    Connecting,
    Connected,
    /// `disconnecting` listeners are running (still connected for them, as in Node).
    Disconnecting,
    Disconnected,
}

/// A client connected to a namespace. Cheap to clone (an `Rc`); lives on its shard.
#[derive(Clone)]
pub struct Socket(pub(crate) Rc<SocketInner>);

/// Flags of one emit from a socket to its own client: [`Socket::volatile`],
/// [`Socket::timeout`], [`Socket::compress`].
#[derive(Clone)]
pub struct SocketEmitter {
    socket: Socket,
    volatile: bool,
    timeout: Option<Duration>,
}

impl SocketEmitter {
    /// May be dropped when the transport is not ready (Node's `socket.volatile`).
    pub fn volatile(mut self) -> Self {
        self.volatile = true;
        self
    }
    /// The ack timeout of [`Self::emit_with_ack`].
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }
    /// Accepted for parity with Node; compression is not implemented, so this has no effect.
    pub fn compress(self, _on: bool) -> Self {
        self
    }
    /// Emits with these flags; false when nothing was queued (gone, or a volatile drop).
    pub fn emit(self, event: &str, args: impl IntoArgs) -> bool {
        let w = to_writer(args);
        self.socket.emit_writer(event, None, w, self.volatile)
    }
    /// Emits and waits for the client's ack, at most the timeout (default 5 s, like the
    /// cluster adapters' requests).
    pub fn emit_with_ack(
        self,
        event: &str,
        args: impl IntoArgs,
    ) -> impl std::future::Future<Output = Result<RawArgs, AckError>> + 'static {
        let timeout = self.timeout.unwrap_or(Duration::from_secs(5));
        self.socket
            .emit_with_ack_flags(event, args, timeout, self.volatile)
    }
}

impl Socket {
    pub(crate) fn new(ns: Rc<NsRt>, sess: &Rc<Sess>, auth: &[u8]) -> Socket {
        // a v3 (socket.io-client 2.x) socket's id is its connection's, as the client computes
        // it (Node: the sid on "/", "<nsp>#<sid>" elsewhere; ringio uses the sid in every
        // namespace: ids are unique within a namespace, and the shard is in it)
        let sh = rt::shard();
        let id = sess
            .is_v3()
            .then(|| SocketId::parse(sess.sid().as_str()))
            .flatten()
            .unwrap_or_else(|| SocketId::new(sh.peers.node(), sh.id));
        Socket(Rc::new(SocketInner {
            id,
            ns,
            sess: Rc::downgrade(sess),
            auth: (!auth.iter().all(u8::is_ascii_whitespace)).then(|| auth.into()),
            state: Cell::new(State::Connecting),
            acks: RefCell::new(None),
            next_ack: Cell::new(0),
            data: RefCell::new(None),
            ext: RefCell::new(None),
            queue: RefCell::new(VecDeque::new()),
            busy: Cell::new(false),
            rooms: RefCell::new(SmallVec::new()),
            mark: Cell::new(0),
        }))
    }

    /// The socket id (per namespace; distinct from the Engine.IO session id).
    pub fn id(&self) -> &str {
        self.0.id.as_str()
    }
    pub(crate) fn sid(&self) -> SocketId {
        self.0.id
    }
    /// The rarely used parts, created on first use.
    pub(crate) fn ext(&self) -> std::cell::RefMut<'_, Ext> {
        std::cell::RefMut::map(self.0.ext.borrow_mut(), |e| {
            &mut **e.get_or_insert_with(Default::default)
        })
    }
    pub(crate) fn shared_json(&self) -> Option<String> {
        self.0.ext.borrow().as_ref().and_then(|e| e.shared.clone())
    }
    /// The namespace name.
    pub fn ns(&self) -> &str {
        &self.0.ns.name
    }
    /// True from the connect until the socket has disconnected.
    pub fn connected(&self) -> bool {
        matches!(self.0.state.get(), State::Connected | State::Disconnecting)
    }
    /// The connect middlewares accepted the socket.
    pub(crate) fn set_connected(&self) {
        self.0.state.set(State::Connected);
    }
    /// The Engine.IO connection under this socket (Node's `socket.conn`).
    pub fn conn(&self) -> super::conn::Conn {
        match self.0.sess.upgrade() {
            Some(s) => super::conn::Conn::of(&s),
            None => super::conn::Conn(Default::default()),
        }
    }
    /// The handshake of the underlying connection.
    pub fn handshake(&self) -> Rc<Handshake> {
        self.0
            .sess
            .upgrade()
            .map(|s| s.handshake().clone())
            .unwrap_or_default()
    }
    /// The CONNECT payload as raw JSON (`{}` when the client sent none).
    pub fn auth_raw(&self) -> &str {
        std::str::from_utf8(self.auth_bytes()).unwrap_or("{}")
    }
    fn auth_bytes(&self) -> &[u8] {
        self.0.auth.as_deref().unwrap_or(b"{}")
    }
    /// The CONNECT payload deserialized.
    pub fn auth<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        sonic_rs::from_slice(self.auth_bytes()).ok()
    }
    /// One field of the CONNECT payload.
    pub fn auth_field<T: serde::de::DeserializeOwned>(&self, name: &str) -> Option<T> {
        let v = sonic_rs::get_from_slice(self.auth_bytes(), [name]).ok()?;
        sonic_rs::from_str(v.as_raw_str()).ok()
    }

    /// Emits an event to this client. Returns false when the socket is gone (or the event
    /// name is reserved: `connect`, `disconnect`, ...; Node throws there).
    pub fn emit(&self, event: &str, args: impl IntoArgs) -> bool {
        self.emit_writer(event, None, to_writer(args), false)
    }

    /// Flags for the next emit to this client (Node's `socket.volatile.emit(..)`).
    pub fn volatile(&self) -> SocketEmitter {
        self.emitter().volatile()
    }
    /// An ack timeout for the next emit (Node's `socket.timeout(ms).emit(.., cb)`).
    pub fn timeout(&self, d: Duration) -> SocketEmitter {
        self.emitter().timeout(d)
    }
    /// Accepted for parity with Node (`socket.compress(false).emit(..)`); no effect yet.
    pub fn compress(&self, on: bool) -> SocketEmitter {
        self.emitter().compress(on)
    }
    fn emitter(&self) -> SocketEmitter {
        SocketEmitter {
            socket: self.clone(),
            volatile: false,
            timeout: None,
        }
    }

    /// Encodes and queues an event (with an ack id when `id` is set).
    fn emit_writer(&self, event: &str, id: Option<u64>, w: ArgWriter, volatile: bool) -> bool {
        if RESERVED_EVENTS.contains(&event) {
            tracing::warn!(event, "a reserved event name cannot be emitted");
            return false;
        }
        // outgoing catch-all listeners see the arguments (re-read only when there are some)
        let json = self
            .has_outgoing_listeners()
            .then(|| w.json.clone().freeze());
        let (text, att) = encode_packet(&self.0.ns.name, Some(event), id, w, false);
        if let Some(json) = json {
            self.notify_outgoing(event, RawArgs::from_array_items(json, att.clone()));
        }
        self.queue_packets(text, att, volatile)
    }

    /// Emits an event and waits for the client's ack, at most `timeout`.
    pub fn emit_with_ack(
        &self,
        event: &str,
        args: impl IntoArgs,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Result<RawArgs, AckError>> + 'static {
        self.emit_with_ack_flags(event, args, timeout, false)
    }

    fn emit_with_ack_flags(
        &self,
        event: &str,
        args: impl IntoArgs,
        timeout: Duration,
        volatile: bool,
    ) -> impl std::future::Future<Output = Result<RawArgs, AckError>> + 'static {
        let (tx, rx) = futures_channel::oneshot::channel();
        let id = self.register_ack(AckSlot::One(tx));
        let sent = self.emit_writer(event, Some(id), to_writer(args), volatile);
        let me = Rc::downgrade(&self.0);
        async move {
            if !sent {
                if let Some(s) = me.upgrade() {
                    Socket(s).forget_ack(id);
                }
                return Err(AckError::Disconnected);
            }
            match monoio::time::timeout(timeout, rx).await {
                Ok(Ok(args)) => Ok(args),
                Ok(Err(_)) => Err(AckError::Disconnected),
                Err(_) => {
                    if let Some(s) = me.upgrade() {
                        Socket(s).forget_ack(id);
                    }
                    Err(AckError::Timeout)
                }
            }
        }
    }

    /// Queues an encoded packet and its attachments; false when nothing was queued.
    pub(crate) fn send_packets(&self, text: Bytes, attachments: Vec<Bytes>) -> bool {
        self.queue_packets(text, attachments, false)
    }

    fn queue_packets(&self, text: Bytes, attachments: Vec<Bytes>, volatile: bool) -> bool {
        if !self.connected() {
            return false;
        }
        let Some(sess) = self.0.sess.upgrade() else {
            return false;
        };
        let packets = std::iter::once(OutPacket::Text(text))
            .chain(attachments.into_iter().map(OutPacket::Binary));
        sess.send_many(packets, volatile)
    }

    /// Stores per-socket data.
    pub fn set_data<T: 'static>(&self, v: T) {
        *self.0.data.borrow_mut() = Some(Box::new(v));
    }
    /// Stores per-socket data as JSON, visible to other shards in `fetch_sockets` (Node's
    /// `socket.data`, which crosses servers serialized).
    pub fn set_shared_data<T: serde::Serialize>(&self, v: &T) {
        self.ext().shared = sonic_rs::to_string(v).ok();
    }
    /// The shared data (JSON) deserialized.
    pub fn shared_data<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        self.shared_json().and_then(|s| sonic_rs::from_str(&s).ok())
    }
    /// Reads per-socket data.
    pub fn with_data<T: 'static, R>(&self, f: impl FnOnce(Option<&mut T>) -> R) -> R {
        let mut d = self.0.data.borrow_mut();
        f(d.as_mut().and_then(|b| b.downcast_mut::<T>()))
    }

    /// Joins a room.
    pub fn join(&self, room: &str) {
        local().adapter.join(self, room);
    }
    /// Leaves a room.
    pub fn leave(&self, room: &str) {
        local().adapter.leave(self, room);
    }
    /// The rooms this socket is in (its own id included).
    pub fn rooms(&self) -> Vec<String> {
        let mut v = vec![self.id().to_string()];
        v.extend(self.0.rooms.borrow().iter().map(|r| r.to_string()));
        v
    }

    /// Everyone in `room` but this socket (Node's `socket.to(room)`: the sender is left out
    /// even when it is a member; `Io::of(ns).to(room)` includes everyone).
    pub fn to(&self, room: &str) -> BroadcastOperator {
        self.broadcast().to(room)
    }
    /// Same as [`Self::to`] (Node's `socket.in(room)`).
    pub fn within(&self, room: &str) -> BroadcastOperator {
        self.to(room)
    }
    /// Everyone in the namespace but this socket and the members of `room`.
    pub fn except(&self, room: &str) -> BroadcastOperator {
        self.broadcast().except(room)
    }
    /// Everyone in the namespace but this socket.
    pub fn broadcast(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.0.ns.name.clone()).except(self.id())
    }

    /// Disconnects this socket from its namespace (`41` to the client, reason
    /// "server namespace disconnect"); the connection stays open.
    pub fn disconnect(&self) {
        if self.0.state.get() != State::Connected {
            return;
        }
        let nsp = self.0.ns.name.clone();
        self.send_packets(sio::encode(Kind::Disconnect, &nsp, None, b""), Vec::new());
        if let Some(sess) = self.0.sess.upgrade() {
            sess.app().remove(&nsp);
        }
        self.on_closed(DisconnectReason::ServerNamespaceDisconnect);
    }

    /// Node's `socket.disconnect(true)`: every namespace of this client is disconnected (the
    /// client sees "io server disconnect" on each and does not reconnect), then the
    /// connection closes once they are written.
    pub fn disconnect_client(&self) {
        let Some(sess) = self.0.sess.upgrade() else {
            return;
        };
        super::conn::disconnect_all(&sess);
    }

    /// Closes the whole underlying connection (every namespace) without disconnect packets,
    /// like a network loss for the client: it reconnects by itself (Node's
    /// `socket.conn.close()`).
    pub fn close_connection(&self) {
        if let Some(sess) = self.0.sess.upgrade() {
            sess.close(CloseReason::ForcedClose);
        }
    }

    /// Called once when the socket leaves its namespace: `disconnecting` listeners (rooms
    /// still readable), then it leaves its rooms, then `disconnect` listeners.
    pub(crate) fn on_closed(&self, reason: DisconnectReason) {
        if self.0.state.get() != State::Connected {
            return;
        }
        self.0.state.set(State::Disconnecting);
        let take = |f: fn(&mut Listeners) -> &mut Vec<super::listeners::DisconnectFn>| match self
            .0
            .ext
            .borrow_mut()
            .as_mut()
        {
            Some(e) => std::mem::take(f(&mut e.listeners)),
            None => Vec::new(),
        };
        for cb in take(|l| &mut l.on_disconnecting) {
            cb(self.clone(), reason);
        }
        self.0.state.set(State::Disconnected);
        local().adapter.leave_all(self);
        self.0.ns.sockets.borrow_mut().remove(&self.0.id);
        let (ns, id) = (self.ns(), self.id());
        super::cluster::notify(
            || super::cluster::LocalChange::SocketDisconnected(ns.into(), id.into()),
            false,
        );
        *self.0.acks.borrow_mut() = None;
        self.0.queue.borrow_mut().clear();
        for cb in take(|l| &mut l.on_disconnect) {
            cb(self.clone(), reason);
        }
        if let Some(e) = self.0.ext.borrow_mut().as_mut() {
            e.listeners = Listeners::default();
        }
    }

    pub(crate) fn on_ack(&self, id: u64, args: RawArgs) {
        if let Some(slot) = self.forget_ack(id) {
            slot.deliver(args);
        }
    }

    fn forget_ack(&self, id: u64) -> Option<AckSlot> {
        self.0
            .acks
            .borrow_mut()
            .as_mut()
            .and_then(|a| a.remove(&id))
    }

    /// Registers an ack expected by a broadcast; returns the ack id to put in the packet.
    pub(crate) fn register_remote_ack(
        &self,
        tx: futures_channel::mpsc::UnboundedSender<AckReply>,
    ) -> u64 {
        self.register_ack(AckSlot::Many(tx))
    }

    /// Allocates the next ack id (sequential per socket) for `slot`.
    fn register_ack(&self, slot: AckSlot) -> u64 {
        let id = self.0.next_ack.get();
        self.0.next_ack.set(id + 1);
        self.0
            .acks
            .borrow_mut()
            .get_or_insert_with(Default::default)
            .insert(id, slot);
        id
    }
}
