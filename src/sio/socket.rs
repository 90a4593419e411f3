//! The user-facing socket: one client connected to one namespace.
//!
//! Owns: emitting (encoded once into `Bytes`), acks in both directions, per-socket handlers,
//! the per-socket event queue that keeps async handlers in arrival order, rooms membership,
//! per-socket data, and the disconnect path.
//!
//! Must not: touch transports (it queues through its session) or other shards except through jobs.

use super::adapter::AckReply;
use super::conn::Sess;
use super::ns::{ErasedHandler, LocalFuture, NsRt};
use super::operators::BroadcastOperator;
use super::{local, DisconnectReason};
use crate::engine::Handshake;
use crate::proto::eio::{CloseReason, OutPacket};
use crate::proto::sio::args::{to_writer, FromArgs, IntoArgs, RawArgs};
use crate::proto::sio::{self, encode_packet, AckError, Kind, SocketId};
use crate::rt;
use bytes::Bytes;
use smallvec::SmallVec;
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasherDefault;
use std::rc::{Rc, Weak};
use std::time::Duration;

type DisconnectFn = Box<dyn FnOnce(Socket, DisconnectReason)>;
/// Who waits for an ack: one emitter, or a broadcast collecting acks from many sockets.
enum AckSlot {
    One(futures_channel::oneshot::Sender<RawArgs>),
    Many(futures_channel::mpsc::UnboundedSender<AckReply>),
}

type Handlers = HashMap<String, Rc<dyn ErasedHandler>>;
type Queued = (Rc<dyn ErasedHandler>, RawArgs, AckSender);

/// Ack ids are chosen here (sequential), so the table needs no keyed hasher: a zero-sized one.
type AckMap = HashMap<u64, AckSlot, BuildHasherDefault<DefaultHasher>>;

/// What few sockets use (per-socket handlers, disconnect callbacks, shared data), boxed so
/// that a socket without them pays one pointer.
#[derive(Default)]
struct Ext {
    shared: Option<String>,
    handlers: Handlers,
    on_disconnect: Vec<DisconnectFn>,
}

/// Every connected client holds one of these for its whole life: keep it small.
pub(crate) struct SocketInner {
    pub id: SocketId,
    pub ns: Rc<NsRt>,
    pub sess: Weak<Sess>,
    /// The CONNECT payload, copied out of the packet (a slice would pin the read buffer);
    /// `None` for none (`{}`).
    auth: Option<Box<[u8]>>,
    pub connected: Cell<bool>,
    /// Acks this server waits for from the client: created on the first one.
    acks: RefCell<Option<Box<AckMap>>>,
    next_ack: Cell<u64>,
    data: RefCell<Option<Box<dyn Any>>>,
    ext: RefCell<Option<Box<Ext>>>,
    queue: RefCell<VecDeque<Queued>>,
    busy: Cell<bool>,
    pub rooms: RefCell<SmallVec<[Rc<str>; 2]>>,
    pub mark: Cell<u64>,
}

/// A client connected to a namespace. Cheap to clone (an `Rc`); lives on its shard.
#[derive(Clone)]
pub struct Socket(pub(crate) Rc<SocketInner>);

/// Answers a client's emit-with-ack. Sending is a no-op when the client asked for no ack.
pub struct AckSender {
    socket: Option<Socket>,
    id: Option<u64>,
}

impl AckSender {
    /// True when the client is waiting for an ack.
    pub fn expected(&self) -> bool {
        self.id.is_some()
    }
    /// Sends the ack with these arguments (`43<id>[...]`, or `46` with binary).
    pub fn send(self, args: impl IntoArgs) {
        if let (Some(s), Some(id)) = (self.socket, self.id) {
            let w = to_writer(args);
            let (text, att) = encode_packet(&s.0.ns.name, None, Some(id), w, true);
            s.send_packets(text, att);
        }
    }
}

impl Socket {
    pub(crate) fn new(ns: Rc<NsRt>, sess: &Rc<Sess>, auth: &[u8]) -> Socket {
        let id = SocketId::new(rt::shard().id);
        Socket(Rc::new(SocketInner {
            id,
            ns,
            sess: Rc::downgrade(sess),
            auth: (!auth.iter().all(u8::is_ascii_whitespace)).then(|| auth.into()),
            connected: Cell::new(false),
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
    fn ext(&self) -> std::cell::RefMut<'_, Ext> {
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
    /// True until the socket disconnects.
    pub fn connected(&self) -> bool {
        self.0.connected.get()
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

    /// Emits an event to this client. Returns false when the socket is gone.
    pub fn emit(&self, event: &str, args: impl IntoArgs) -> bool {
        let w = to_writer(args);
        let (text, att) = encode_packet(&self.0.ns.name, Some(event), None, w, false);
        self.send_packets(text, att)
    }

    /// Emits an event and waits for the client's ack, at most `timeout`.
    pub fn emit_with_ack(
        &self,
        event: &str,
        args: impl IntoArgs,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Result<RawArgs, AckError>> + 'static {
        let (tx, rx) = futures_channel::oneshot::channel();
        let id = self.register_ack(AckSlot::One(tx));
        let w = to_writer(args);
        let (text, att) = encode_packet(&self.0.ns.name, Some(event), Some(id), w, false);
        let sent = self.send_packets(text, att);
        let me = Rc::downgrade(&self.0);
        async move {
            if !sent {
                return Err(AckError::Disconnected);
            }
            match monoio::time::timeout(timeout, rx).await {
                Ok(Ok(args)) => Ok(args),
                Ok(Err(_)) => Err(AckError::Disconnected),
                Err(_) => {
                    if let Some(s) = me.upgrade() {
                        if let Some(a) = s.acks.borrow_mut().as_mut() {
                            a.remove(&id);
                        }
                    }
                    Err(AckError::Timeout)
                }
            }
        }
    }

    pub(crate) fn send_packets(&self, text: Bytes, attachments: Vec<Bytes>) -> bool {
        if !self.0.connected.get() {
            return false;
        }
        let Some(sess) = self.0.sess.upgrade() else {
            return false;
        };
        if attachments.is_empty() {
            sess.send(OutPacket::Text(text));
        } else {
            let packets = std::iter::once(OutPacket::Text(text))
                .chain(attachments.into_iter().map(OutPacket::Binary));
            sess.send_many(packets, false);
        }
        true
    }

    /// A per-socket handler (checked before the namespace's handlers).
    pub fn on<A: FromArgs + 'static>(
        &self,
        event: &str,
        f: impl Fn(Socket, A, AckSender) + 'static,
    ) {
        self.ext()
            .handlers
            .insert(event.to_string(), super::ns::sync_handler(f));
    }

    /// A per-socket async handler.
    pub fn on_async<A, Fut>(&self, event: &str, f: impl Fn(Socket, A, AckSender) -> Fut + 'static)
    where
        A: FromArgs + 'static,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        self.ext()
            .handlers
            .insert(event.to_string(), super::ns::async_handler(f));
    }

    /// Runs `f` once when the socket disconnects, with the reason.
    pub fn on_disconnect(&self, f: impl FnOnce(Socket, DisconnectReason) + 'static) {
        self.ext().on_disconnect.push(Box::new(f));
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

    /// Targets a room: the sender is included when it is a member.
    pub fn to(&self, room: &str) -> BroadcastOperator {
        self.operator().to(room)
    }
    /// Everyone in the namespace but this socket.
    pub fn broadcast(&self) -> BroadcastOperator {
        self.operator().except(self.id())
    }
    fn operator(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.0.ns.name.clone())
    }

    /// Disconnects this socket from its namespace (`41` to the client, reason
    /// "server namespace disconnect"); the connection stays open.
    pub fn disconnect(&self) {
        if !self.0.connected.get() {
            return;
        }
        let nsp = self.0.ns.name.clone();
        self.send_packets(sio::encode(Kind::Disconnect, &nsp, None, b""), Vec::new());
        if let Some(sess) = self.0.sess.upgrade() {
            sess.app().remove(&nsp);
        }
        self.on_closed(DisconnectReason::ServerNamespaceDisconnect);
    }

    /// Closes the whole underlying connection (every namespace), like a network loss for the
    /// client: it reconnects by itself.
    pub fn close_connection(&self) {
        if let Some(sess) = self.0.sess.upgrade() {
            sess.close(CloseReason::ForcedClose);
        }
    }

    /// Called once when the socket leaves its namespace.
    pub(crate) fn on_closed(&self, reason: DisconnectReason) {
        if !self.0.connected.replace(false) {
            return;
        }
        let cbs = match self.0.ext.borrow_mut().as_mut() {
            Some(e) => std::mem::take(&mut e.on_disconnect),
            None => Vec::new(),
        };
        for cb in cbs {
            cb(self.clone(), reason);
        }
        local().adapter.leave_all(self);
        self.0.ns.sockets.borrow_mut().remove(&self.0.id);
        *self.0.acks.borrow_mut() = None;
        self.0.queue.borrow_mut().clear();
        if let Some(e) = self.0.ext.borrow_mut().as_mut() {
            e.handlers = Handlers::default();
        }
    }

    pub(crate) fn on_ack(&self, id: u64, args: RawArgs) {
        let slot = self
            .0
            .acks
            .borrow_mut()
            .as_mut()
            .and_then(|a| a.remove(&id));
        match slot {
            Some(AckSlot::One(tx)) => {
                let _ = tx.send(args);
            }
            Some(AckSlot::Many(tx)) => {
                let _ = tx.unbounded_send(AckReply::Ack(args));
            }
            None => {}
        }
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

    /// Dispatches one event, in arrival order even when handlers are async.
    pub(crate) fn on_event(&self, event: &str, args: RawArgs, id: Option<u64>) {
        let handler = self
            .0
            .ext
            .borrow()
            .as_ref()
            .and_then(|e| e.handlers.get(event).cloned())
            .or_else(|| self.0.ns.def.handlers.get(event).cloned());
        let Some(h) = handler else {
            tracing::trace!(event, "no handler");
            return;
        };
        let ack = AckSender {
            socket: id.map(|_| self.clone()),
            id,
        };
        if self.0.busy.get() {
            self.0.queue.borrow_mut().push_back((h, args, ack));
            return;
        }
        if let Some(fut) = h.call(self.clone(), args, ack) {
            self.0.busy.set(true);
            monoio::spawn(self.clone().drain(fut));
        }
    }

    async fn drain(self, first: LocalFuture) {
        first.await;
        loop {
            let next = self.0.queue.borrow_mut().pop_front();
            let Some((h, args, ack)) = next else { break };
            if let Some(fut) = h.call(self.clone(), args, ack) {
                fut.await;
            }
        }
        self.0.busy.set(false);
    }
}
