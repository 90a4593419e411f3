//! [`ClientSocket`]: the client's end of one namespace, multiplexed on its [`Client`]'s
//! connection.
//!
//! Owns: CONNECT (with the namespace's auth) on every new connection, the socket id, handlers,
//! emitting (encoded once; binary arguments become attachments), the send buffer (emits made
//! while disconnected, flushed in order on connect; volatile emits are dropped instead), events
//! received before the CONNECT reply (delivered after it), acks in both directions with their
//! timeouts, the at-least-once retry queue (`retries`), and the disconnect reasons
//! (`"io server disconnect"`, `"io client disconnect"`, or the connection's).
//!
//! Must not: touch the transports (everything goes through the manager), or call user code while
//! one of its `RefCell`s is borrowed.

use super::manager::{Listeners, ManagerInner};
use super::receive::ClientAck;
use super::retry::Queued;
use super::Client;
use crate::proto::eio::OutPacket;
use crate::proto::sio::args::{to_writer, ArgWriter, FromArgs, IntoArgs, RawArgs};
use crate::proto::sio::encode_packet;
use crate::proto::sio::AckError;
use crate::proto::sio::{self, Kind, RESERVED_EVENTS};
use bytes::Bytes;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

pub(crate) type AckFn = Box<dyn FnOnce(Result<RawArgs, AckError>)>;
pub(super) type EventFn = Rc<dyn Fn(RawArgs, ClientAck)>;
type ConnectErrorFn = dyn Fn(&str, Option<&sonic_rs::Value>);

/// An ack this socket waits for.
pub(crate) struct PendingAck {
    pub cb: AckFn,
    /// Called with an error when the socket disconnects (acks with a timeout, and futures).
    pub with_error: bool,
    pub timeout: Option<Duration>,
}

/// An emit made while disconnected.
pub(super) struct Buffered {
    pub(super) id: Option<u64>,
    pub(super) packets: Vec<OutPacket>,
}

#[derive(Default)]
pub(crate) struct SockState {
    pub connected: bool,
    /// Subscribed to the manager (socket.io-client's `active`): connects on every connection.
    pub active: bool,
    pub(super) id: Option<String>,
    pub(super) ids: u64,
    pub(super) acks: HashMap<u64, PendingAck>,
    pub(super) send_buffer: VecDeque<Buffered>,
    pub(super) receive_buffer: Vec<(String, RawArgs, Option<u64>)>,
    pub queue: VecDeque<Queued>,
    pub queue_seq: u64,
}

pub(crate) struct SocketInner {
    pub(super) nsp: String,
    pub mgr: Rc<ManagerInner>,
    pub st: RefCell<SockState>,
    pub(super) handlers: RefCell<HashMap<String, Vec<EventFn>>>,
    pub(super) on_connect: Listeners<dyn Fn()>,
    pub(super) on_disconnect: Listeners<dyn Fn(&str)>,
    pub(super) on_connect_error: Listeners<ConnectErrorFn>,
}

/// One namespace of a [`Client`]'s connection. Cheap to clone (an `Rc`).
///
/// Dropping every handle stops its events and reconnection (the namespace stays connected on
/// the server until the connection closes); call [`ClientSocket::disconnect`] to leave it.
#[derive(Clone)]
pub struct ClientSocket(pub(crate) Rc<SocketInner>);

/// Emits of [`ClientSocket::volatile`]: dropped unless the socket is connected.
pub struct Volatile<'a>(&'a ClientSocket);

impl Volatile<'_> {
    /// Emits now, or drops the event when not connected; false when dropped.
    pub fn emit(&self, event: &str, args: impl IntoArgs) -> bool {
        self.0.emit_inner(event, to_writer(args), true)
    }
}

pub(super) fn packets(text: Bytes, attachments: Vec<Bytes>) -> Vec<OutPacket> {
    std::iter::once(OutPacket::Text(text))
        .chain(attachments.into_iter().map(OutPacket::Binary))
        .collect()
}

fn reserved(event: &str) -> bool {
    if RESERVED_EVENTS.contains(&event) {
        tracing::warn!(event, "reserved event name, not emitted");
        return true;
    }
    false
}

impl ClientSocket {
    pub(crate) fn new(mgr: Rc<ManagerInner>, nsp: String) -> ClientSocket {
        ClientSocket(Rc::new(SocketInner {
            nsp,
            mgr,
            st: RefCell::new(SockState::default()),
            handlers: RefCell::new(HashMap::new()),
            on_connect: Listeners::default(),
            on_disconnect: Listeners::default(),
            on_connect_error: Listeners::default(),
        }))
    }

    /// The namespace (`"/"`, `"/chat"`).
    pub fn nsp(&self) -> &str {
        &self.0.nsp
    }

    /// The socket id the server assigned (while connected).
    pub fn id(&self) -> Option<String> {
        self.0.st.borrow().id.clone()
    }

    /// True while connected to the namespace.
    pub fn connected(&self) -> bool {
        self.0.st.borrow().connected
    }

    pub(crate) fn is_active(&self) -> bool {
        self.0.st.borrow().active
    }

    /// The client (connection) this socket belongs to.
    pub fn client(&self) -> Client {
        Client(self.0.mgr.clone())
    }

    /// Adds a handler for `event`; its arguments convert like a server handler's
    /// (`RawArgs`, `(String,)`, `(u32, Binary)`, ...; events that do not convert are dropped).
    /// The [`ClientAck`] answers the server when it asked for an ack.
    pub fn on<A: FromArgs + 'static>(&self, event: &str, f: impl Fn(A, ClientAck) + 'static) {
        let h: EventFn = Rc::new(
            move |args: RawArgs, ack: ClientAck| match A::from_args(args) {
                Ok(a) => f(a, ack),
                Err(e) => tracing::debug!("event dropped: {e}"),
            },
        );
        self.0
            .handlers
            .borrow_mut()
            .entry(event.to_string())
            .or_default()
            .push(h);
    }

    /// Removes every handler of `event`.
    pub fn off(&self, event: &str) {
        self.0.handlers.borrow_mut().remove(event);
    }

    /// Called on every successful CONNECT (initial and after reconnections).
    pub fn on_connect(&self, f: impl Fn() + 'static) {
        self.0.on_connect.push(Rc::new(f));
    }

    /// Called when the socket disconnects, with the reason: `"io server disconnect"`,
    /// `"io client disconnect"`, `"transport close"`, `"transport error"`, `"ping timeout"`,
    /// `"parse error"` or `"forced close"`.
    pub fn on_disconnect(&self, f: impl Fn(&str) + 'static) {
        self.0.on_disconnect.push(Rc::new(f));
    }

    /// Called when connecting fails: the server refused the namespace (message and `data` of
    /// its CONNECT_ERROR; the socket then stays disconnected), or the connection could not be
    /// established (the error's text, no data; reconnection goes on).
    pub fn on_connect_error(&self, f: impl Fn(&str, Option<&sonic_rs::Value>) + 'static) {
        self.0.on_connect_error.push(Rc::new(f));
    }

    /// Emits `event`. While disconnected the packet is buffered and sent, in order, on the next
    /// CONNECT. With `retries(n)` configured it goes through the retry queue instead (the server
    /// must ack it). False only for reserved event names (`connect`, `disconnect`, ...).
    pub fn emit(&self, event: &str, args: impl IntoArgs) -> bool {
        if reserved(event) {
            return false;
        }
        let w = to_writer(args);
        if self.0.mgr.cfg.retries > 0 {
            self.enqueue(event, w, self.0.mgr.cfg.ack_timeout, None);
            return true;
        }
        self.emit_inner(event, w, false)
    }

    /// Emits that are dropped, not buffered, while disconnected.
    pub fn volatile(&self) -> Volatile<'_> {
        Volatile(self)
    }

    /// Emits `event` asking for an ack; resolves to the ack's arguments, or
    /// [`AckError::Timeout`] after `timeout` (counted from this call, buffering included), or
    /// [`AckError::Disconnected`] when the socket disconnects after sending it. The emit happens
    /// at once, even if the future is never awaited. With `retries(n)`, a timed-out attempt is
    /// sent again (each with this timeout) up to `n` times.
    pub fn emit_with_ack(
        &self,
        event: &str,
        args: impl IntoArgs,
        timeout: Duration,
    ) -> impl Future<Output = Result<RawArgs, AckError>> + 'static {
        let (tx, rx) = futures_channel::oneshot::channel();
        if !reserved(event) {
            let cb: AckFn = Box::new(move |r| {
                let _ = tx.send(r);
            });
            let w = to_writer(args);
            if self.0.mgr.cfg.retries > 0 {
                self.enqueue(event, w, Some(timeout), Some(cb));
            } else {
                let ack = PendingAck {
                    cb,
                    with_error: true,
                    timeout: Some(timeout),
                };
                self.send_event(event, w, Some(ack), false);
            }
        }
        async move { rx.await.unwrap_or(Err(AckError::Disconnected)) }
    }

    /// Connects the namespace (again), opening the connection if needed. Sockets connect when
    /// created; this is for after [`ClientSocket::disconnect`], a server disconnect or a refusal.
    pub fn connect(&self) {
        {
            let mut st = self.0.st.borrow_mut();
            if st.connected {
                return;
            }
            st.active = true;
        }
        let mgr = self.0.mgr.clone();
        if !mgr.reconnecting() {
            mgr.open();
        }
        if mgr.is_open() {
            self.on_open();
        }
    }

    /// Leaves the namespace (DISCONNECT); no reconnection. When no other namespace is in use the
    /// connection closes.
    pub fn disconnect(&self) {
        let was = self.connected();
        if was {
            let p = sio::encode(Kind::Disconnect, &self.0.nsp, None, b"");
            self.0.mgr.write(vec![OutPacket::Text(p)]);
        }
        self.destroy();
        if was {
            self.on_close("io client disconnect");
        }
    }

    pub(crate) fn emit_inner(&self, event: &str, w: ArgWriter, volatile: bool) -> bool {
        if reserved(event) {
            return false;
        }
        self.send_event(event, w, None, volatile)
    }

    /// Encodes and sends (or buffers) one event; false when a volatile event was dropped.
    pub(crate) fn send_event(
        &self,
        event: &str,
        w: ArgWriter,
        ack: Option<PendingAck>,
        volatile: bool,
    ) -> bool {
        let engine = self.0.mgr.engine();
        let connected = self.connected() && engine.as_ref().is_some_and(|e| !e.ping_expired());
        if volatile && !connected {
            return false;
        }
        let id = ack.map(|a| self.register_ack(a));
        let (text, att) = encode_packet(&self.0.nsp, Some(event), id, w, false);
        let packets = packets(text, att);
        match engine {
            Some(e) if connected => e.write(packets),
            _ => self
                .0
                .st
                .borrow_mut()
                .send_buffer
                .push_back(Buffered { id, packets }),
        }
        true
    }

    fn register_ack(&self, ack: PendingAck) -> u64 {
        let timeout = ack.timeout;
        let id = {
            let mut st = self.0.st.borrow_mut();
            let id = st.ids;
            st.ids += 1;
            st.acks.insert(id, ack);
            id
        };
        if let Some(t) = timeout {
            let weak = Rc::downgrade(&self.0);
            monoio::spawn(async move {
                monoio::time::sleep(t).await;
                if let Some(s) = weak.upgrade() {
                    ClientSocket(s).ack_timed_out(id);
                }
            });
        }
        id
    }

    fn ack_timed_out(&self, id: u64) {
        let ack = {
            let mut st = self.0.st.borrow_mut();
            let ack = st.acks.remove(&id);
            if ack.is_some() {
                st.send_buffer.retain(|b| b.id != Some(id));
            }
            ack
        };
        if let Some(a) = ack {
            (a.cb)(Err(AckError::Timeout));
        }
    }

    /// Sends CONNECT (the connection is open).
    pub(crate) fn on_open(&self) {
        let cfg = &self.0.mgr.cfg;
        let auth = cfg
            .auth_for
            .iter()
            .find(|(n, _)| *n == self.0.nsp)
            .map(|(_, a)| a)
            .or(cfg.auth.as_ref());
        let data = auth.map_or(&b""[..], |a| a.as_bytes());
        let p = sio::encode(Kind::Connect, &self.0.nsp, None, data);
        self.0.mgr.write(vec![OutPacket::Text(p)]);
    }

    /// The connection failed while this socket was not connected.
    pub(crate) fn on_error(&self, msg: &str) {
        if !self.connected() {
            self.connect_error(msg, None);
        }
    }

    pub(super) fn connect_error(&self, msg: &str, data: Option<&sonic_rs::Value>) {
        for f in self.0.on_connect_error.snapshot() {
            f(msg, data);
        }
    }

    pub(super) fn destroy(&self) {
        let was_active = std::mem::replace(&mut self.0.st.borrow_mut().active, false);
        if was_active {
            self.0.mgr.on_socket_destroyed();
        }
    }

    /// Disconnected with `reason`: acks not waiting in the send buffer fail.
    pub(crate) fn on_close(&self, reason: &str) {
        let (was, failed) = {
            let mut st = self.0.st.borrow_mut();
            let was = std::mem::replace(&mut st.connected, false);
            st.id = None;
            let buffered: Vec<u64> = st.send_buffer.iter().filter_map(|b| b.id).collect();
            let ids: Vec<u64> = st
                .acks
                .keys()
                .copied()
                .filter(|id| !buffered.contains(id))
                .collect();
            let failed: Vec<PendingAck> = ids.iter().filter_map(|id| st.acks.remove(id)).collect();
            (was, failed)
        };
        if was {
            for f in self.0.on_disconnect.snapshot() {
                f(reason);
            }
        }
        for a in failed {
            if a.with_error {
                (a.cb)(Err(AckError::Disconnected));
            }
        }
    }
}

impl std::fmt::Debug for ClientSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSocket")
            .field("nsp", &self.0.nsp)
            .field("id", &self.id())
            .field("connected", &self.connected())
            .finish()
    }
}
