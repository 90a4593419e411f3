//! The manager ([`Client`]): one Engine.IO connection shared by the namespaces' sockets, the
//! reconnection loop, and the Socket.IO decoding of what arrives.
//!
//! Owns: the ready state (closed / opening / open), the connect timeout, reconnection with
//! [`Backoff`] (reset on success, `reconnectionAttempts` bound, no reconnection after a forced
//! close), re-CONNECTing every active namespace on each new connection, binary packet
//! reassembly, and routing packets to the socket of their namespace. A generation number makes
//! every step of a superseded connection loop end quietly (after `close()`, or a new `open()`).
//!
//! Must not: keep per-namespace state (sockets do), or run user callbacks while a `RefCell` of
//! its own is borrowed.

use super::backoff::Backoff;
use super::engine::{Engine, EngineEvent};
use super::notify::{wait_until, Notify};
use super::socket::{ClientSocket, SocketInner};
use super::{ClientError, Config};
use crate::proto::eio::{CloseReason, OutPacket, Packet};
use crate::proto::sio;
use std::cell::RefCell;
use std::rc::{Rc, Weak};

/// Callbacks registered for one kind of event.
pub(crate) struct Listeners<F: ?Sized>(RefCell<Vec<Rc<F>>>);

impl<F: ?Sized> Default for Listeners<F> {
    fn default() -> Self {
        Listeners(RefCell::new(Vec::new()))
    }
}

impl<F: ?Sized> Listeners<F> {
    /// Adds a callback.
    pub fn push(&self, f: Rc<F>) {
        self.0.borrow_mut().push(f);
    }
    /// The callbacks, copied out so that they may register more while running.
    pub fn snapshot(&self) -> Vec<Rc<F>> {
        self.0.borrow().clone()
    }
}

#[derive(Default)]
pub(crate) struct Hooks {
    pub(crate) open: Listeners<dyn Fn()>,
    pub(crate) close: Listeners<dyn Fn(&str)>,
    pub(crate) error: Listeners<dyn Fn(&ClientError)>,
    pub(crate) reconnect_attempt: Listeners<dyn Fn(u32)>,
    pub(crate) reconnect: Listeners<dyn Fn(u32)>,
    pub(crate) reconnect_failed: Listeners<dyn Fn()>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ready {
    Closed,
    Opening,
    Open,
}

struct MgrState {
    ready: Ready,
    gen: u64,
    engine: Option<Engine>,
    reconnecting: bool,
    backoff: Backoff,
    partial: Option<sio::Partial>,
}

/// Shared state of a [`Client`].
pub(crate) struct ManagerInner {
    pub cfg: Rc<Config>,
    st: RefCell<MgrState>,
    notify: Notify,
    nsps: RefCell<Vec<(String, Weak<SocketInner>)>>,
    pub(crate) hooks: Hooks,
}

/// A connection to a Socket.IO server (socket.io-client's `Manager`): one Engine.IO connection
/// that the namespaces' [`ClientSocket`]s share. Cheap to clone; lives on its runtime's thread.
///
/// The connection (and its reconnection loop) runs as a task of that runtime until
/// [`Client::close`] is called or the last socket disconnects, even when every handle is
/// dropped.
#[derive(Clone)]
pub struct Client(pub(crate) Rc<ManagerInner>);

type FirstResult = futures_channel::oneshot::Sender<Result<(), ClientError>>;

impl ManagerInner {
    pub(crate) fn new(cfg: Config) -> Rc<ManagerInner> {
        let backoff = Backoff::new(
            cfg.reconnection_delay,
            cfg.reconnection_delay_max,
            cfg.randomization_factor,
        );
        Rc::new(ManagerInner {
            cfg: Rc::new(cfg),
            st: RefCell::new(MgrState {
                ready: Ready::Closed,
                gen: 0,
                engine: None,
                reconnecting: false,
                backoff,
                partial: None,
            }),
            notify: Notify::default(),
            nsps: RefCell::new(Vec::new()),
            hooks: Hooks::default(),
        })
    }

    /// Starts a connection loop unless one is opening or open; `first` receives the outcome of
    /// the first attempt (which then is not retried).
    pub(crate) fn open_with(self: &Rc<Self>, first: Option<FirstResult>) {
        let gen = {
            let mut st = self.st.borrow_mut();
            if st.ready != Ready::Closed {
                return;
            }
            st.ready = Ready::Opening;
            st.reconnecting = false;
            st.gen += 1;
            st.gen
        };
        self.notify.notify();
        monoio::spawn(drive(self.clone(), gen, first));
    }

    /// Starts connecting (socket.io-client's `manager.open()`).
    pub(crate) fn open(self: &Rc<Self>) {
        self.open_with(None);
    }

    /// Closes for good (no reconnection): socket.io-client's `manager._close()`.
    pub(crate) fn close(&self) {
        let engine = {
            let mut st = self.st.borrow_mut();
            st.gen += 1;
            st.ready = Ready::Closed;
            st.reconnecting = false;
            st.partial = None;
            st.backoff.reset();
            st.engine.take()
        };
        self.notify.notify();
        if let Some(e) = engine {
            e.close();
        }
        self.closed("forced close");
    }

    /// True while a connection is established.
    pub(crate) fn is_open(&self) -> bool {
        self.st.borrow().ready == Ready::Open
    }

    /// True while waiting to reconnect.
    pub(crate) fn reconnecting(&self) -> bool {
        self.st.borrow().reconnecting
    }

    /// The established connection.
    pub(crate) fn engine(&self) -> Option<Engine> {
        self.st.borrow().engine.clone()
    }

    /// Sends packets on the established connection (dropped when there is none).
    pub(crate) fn write(&self, packets: Vec<OutPacket>) {
        if let Some(e) = self.engine() {
            e.write(packets);
        }
    }

    /// Live sockets, in creation order.
    fn sockets(&self) -> Vec<ClientSocket> {
        let mut nsps = self.nsps.borrow_mut();
        nsps.retain(|(_, w)| w.strong_count() > 0);
        nsps.iter()
            .filter_map(|(_, w)| w.upgrade().map(ClientSocket))
            .collect()
    }

    fn active_sockets(&self) -> Vec<ClientSocket> {
        let mut v = self.sockets();
        v.retain(|s| s.is_active());
        v
    }

    /// A socket left (disconnect, refused, or server disconnect): with none active, close.
    pub(crate) fn on_socket_destroyed(&self) {
        if self.active_sockets().is_empty() {
            self.close();
        }
    }

    pub(crate) fn socket(self: &Rc<Self>, nsp: &str) -> ClientSocket {
        let nsp = if nsp.starts_with('/') {
            nsp.to_string()
        } else {
            format!("/{nsp}")
        };
        let existing = self.sockets().into_iter().find(|s| s.nsp() == nsp);
        if let Some(s) = existing {
            if !s.is_active() {
                s.connect();
            }
            return s;
        }
        let s = ClientSocket::new(self.clone(), nsp.clone());
        self.nsps.borrow_mut().push((nsp, Rc::downgrade(&s.0)));
        s.connect();
        s
    }

    fn is_gen(&self, gen: u64) -> bool {
        self.st.borrow().gen == gen
    }

    /// The connection is gone: sockets disconnect with `reason`.
    fn closed(&self, reason: &str) {
        for s in self.active_sockets() {
            s.on_close(reason);
        }
        for f in self.hooks.close.snapshot() {
            f(reason);
        }
    }

    fn opened(&self, engine: Engine) {
        {
            let mut st = self.st.borrow_mut();
            st.engine = Some(engine);
            st.ready = Ready::Open;
            st.partial = None;
        }
        for f in self.hooks.open.snapshot() {
            f();
        }
        for s in self.active_sockets() {
            s.on_open();
        }
    }

    fn failed(&self, e: &ClientError) {
        for f in self.hooks.error.snapshot() {
            f(e);
        }
        let msg = e.to_string();
        for s in self.active_sockets() {
            s.on_error(&msg);
        }
    }

    /// Handles one Engine.IO message: Socket.IO decoding, binary reassembly, routing.
    fn on_engine_packet(&self, engine: &Engine, p: Packet) {
        let complete = {
            let mut st = self.st.borrow_mut();
            match p {
                Packet::Message(text) => {
                    if st.partial.is_some() {
                        Err(sio::ParseError::UnexpectedAttachment)
                    } else {
                        match sio::decode(text, usize::MAX) {
                            Ok(pk) if pk.kind.is_binary() && pk.attachments > 0 => {
                                st.partial = Some(sio::Partial {
                                    packet: pk,
                                    attachments: Vec::new(),
                                });
                                Ok(None)
                            }
                            Ok(pk) => Ok(Some((pk, Vec::new()))),
                            Err(e) => Err(e),
                        }
                    }
                }
                Packet::Binary(data) => match st.partial.as_mut().map(|p| p.push(data)) {
                    None => Err(sio::ParseError::UnexpectedAttachment),
                    Some(true) => {
                        let p = st.partial.take().expect("partial");
                        Ok(Some((p.packet, p.attachments)))
                    }
                    Some(false) => Ok(None),
                },
                _ => Ok(None),
            }
        };
        match complete {
            Ok(Some((packet, attachments))) => {
                let nsp = String::from_utf8_lossy(&packet.nsp).into_owned();
                let target = self.active_sockets().into_iter().find(|s| s.nsp() == nsp);
                if let Some(s) = target {
                    s.on_packet(packet, attachments);
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(?e, "invalid packet from the server");
                engine.abort(CloseReason::ParseError);
            }
        }
    }
}

/// Waits for `fut` unless generation `gen` ends first (then `None`).
async fn unless_superseded<T>(
    mgr: &ManagerInner,
    gen: u64,
    fut: impl std::future::Future<Output = T>,
) -> Option<T> {
    let notifies = [&mgr.notify];
    monoio::select! {
        biased;
        _ = wait_until(&notifies, || !mgr.is_gen(gen)) => None,
        r = fut => Some(r),
    }
}

/// One connection loop: open, pump events until the connection closes, back off, reopen.
async fn drive(mgr: Rc<ManagerInner>, gen: u64, mut first: Option<FirstResult>) {
    let cfg = mgr.cfg.clone();
    loop {
        mgr.st.borrow_mut().ready = Ready::Opening;
        let attempt = monoio::time::timeout(cfg.timeout, Engine::open(cfg.clone()));
        let Some(res) = unless_superseded(&mgr, gen, attempt).await else {
            return;
        };
        let res = res.unwrap_or(Err(ClientError::Timeout));
        if !mgr.is_gen(gen) {
            if let Ok(e) = res {
                e.abort(CloseReason::ForcedClose);
            }
            return;
        }
        match res {
            Ok(engine) => {
                let (was_reconnecting, attempts) = {
                    let mut st = mgr.st.borrow_mut();
                    let r = (st.reconnecting, st.backoff.attempts);
                    st.reconnecting = false;
                    st.backoff.reset();
                    r
                };
                if let Some(tx) = first.take() {
                    if tx.send(Ok(())).is_err() {
                        // nobody waits for this client any more
                        engine.abort(CloseReason::ForcedClose);
                        mgr.close();
                        return;
                    }
                }
                mgr.opened(engine.clone());
                if was_reconnecting {
                    for f in mgr.hooks.reconnect.snapshot() {
                        f(attempts);
                    }
                }
                let reason = loop {
                    if !mgr.is_gen(gen) {
                        return;
                    }
                    match engine.pop_event() {
                        Some(EngineEvent::Packet(p)) => mgr.on_engine_packet(&engine, p),
                        Some(EngineEvent::Closed(r)) => break r,
                        None => {
                            wait_until(&[engine.notify(), &mgr.notify], || {
                                !mgr.is_gen(gen) || engine.has_events()
                            })
                            .await
                        }
                    }
                };
                {
                    let mut st = mgr.st.borrow_mut();
                    st.engine = None;
                    st.ready = Ready::Closed;
                    st.partial = None;
                    st.backoff.reset();
                }
                mgr.closed(reason.as_str());
                if !mgr.is_gen(gen) || !cfg.reconnection {
                    return;
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "connection attempt failed");
                mgr.st.borrow_mut().ready = Ready::Closed;
                if let Some(tx) = first.take() {
                    let _ = tx.send(Err(e));
                    mgr.st.borrow_mut().gen += 1;
                    return;
                }
                mgr.st.borrow_mut().reconnecting = false;
                mgr.failed(&e);
                if !mgr.is_gen(gen) || !cfg.reconnection {
                    return;
                }
            }
        }
        // back off, then try again
        let delay = {
            let mut st = mgr.st.borrow_mut();
            if st.backoff.attempts >= cfg.reconnection_attempts {
                st.backoff.reset();
                st.reconnecting = false;
                None
            } else {
                st.reconnecting = true;
                Some(st.backoff.duration())
            }
        };
        let Some(delay) = delay else {
            for f in mgr.hooks.reconnect_failed.snapshot() {
                f();
            }
            return;
        };
        tracing::debug!(?delay, "reconnecting");
        if unless_superseded(&mgr, gen, monoio::time::sleep(delay))
            .await
            .is_none()
        {
            return;
        }
        let attempts = mgr.st.borrow().backoff.attempts;
        for f in mgr.hooks.reconnect_attempt.snapshot() {
            f(attempts);
        }
        if !mgr.is_gen(gen) {
            return;
        }
    }
}
