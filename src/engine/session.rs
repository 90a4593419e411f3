//! The I/O driver of one Engine.IO session on its owner shard, around the sans-IO state
//! machine of [`crate::proto::eio::session`].
//!
//! Owns: the session's place in its endpoint's table, the transport handles (a waiting polling
//! GET's waker, or the WebSocket write half with its flush task), the shard timer entries for
//! the machine's deadlines, and the application's per-session state (`A::Conn`, inline).
//!
//! Every input goes the same way: the clock is read once, the machine handles the input, then
//! [`Session::settle`] acts on what changed (wake the transport, reschedule the deadline, run
//! the close). A flush task is spawned only while frames are queued: idle sockets have no
//! writer task and no write buffer.
//!
//! Must not: decide protocol rules (the state machine in proto does) or know what a message means.

use super::config::Handshake;
use super::endpoint::EndpointImpl;
use super::writer;
use super::App;
use crate::proto::eio::session::{
    Event, Out, Payload, Queued, Session as Machine, Side, TransportError,
};
use crate::proto::eio::{CloseReason, OutPacket, Packet, Sid, Transport};
use crate::rt::{self, sys, Timed};
use monoio::io::OwnedWriteHalf;
use monoio::net::TcpStream;
use std::cell::{RefCell, RefMut};
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// Timer token of the machine's deadlines.
const TOKEN_ENGINE: u8 = 0;
/// Timer token of [`Session::set_app_timer`].
const TOKEN_APP: u8 = 1;

/// The transport handles (one kind at a time).
pub(crate) enum TransportIo {
    /// Polling: the waker of a GET waiting for packets.
    Polling(Option<Waker>),
    /// WebSocket: the write half (taken by the flush task while it writes) and the fd.
    Ws {
        writer: Option<OwnedWriteHalf<TcpStream>>,
        fd: RawFd,
        writing: bool,
    },
}

pub(crate) struct State {
    pub m: Machine,
    pub io: TransportIo,
}

impl State {
    /// The transport can take a frame now (volatile packets are dropped otherwise).
    fn transport_ready(&self) -> bool {
        match &self.io {
            TransportIo::Polling(w) => w.is_some(),
            TransportIo::Ws {
                writer, writing, ..
            } => writer.is_some() && !writing,
        }
    }
}

/// An Engine.IO session, generic over the application above it.
pub struct Session<A: App> {
    sid: Sid,
    pub(crate) ep: Rc<EndpointImpl<A>>,
    pub(crate) st: RefCell<State>,
    app: RefCell<A::Conn>,
    handshake: Rc<Handshake>,
}

impl<A: App> Session<A> {
    /// Opens a session on this shard, registers it and tells the application (after queuing
    /// `first`: a WebSocket session's open packet goes out before anything the application
    /// sends when it opens).
    pub(crate) fn open(
        ep: &Rc<EndpointImpl<A>>,
        transport: Transport,
        handshake: Rc<Handshake>,
        ws: Option<(OwnedWriteHalf<TcpStream>, RawFd)>,
        v3: bool,
        first: impl FnOnce(Sid) -> Option<OutPacket>,
    ) -> Rc<Self> {
        let sh = rt::shard();
        let now = Instant::now();
        let io = match ws {
            Some((w, fd)) => TransportIo::Ws {
                writer: Some(w),
                fd,
                writing: false,
            },
            None => TransportIo::Polling(None),
        };
        let sess = Rc::new(Session {
            sid: Sid::new(sh.peers.node(), sh.id),
            ep: ep.clone(),
            st: RefCell::new(State {
                m: Machine::with_protocol(Side::Server, v3, transport, now, &ep.timing),
                io,
            }),
            app: RefCell::new(A::Conn::default()),
            handshake,
        });
        ep.insert(sess.clone());
        if let Some(due) = sess.st.borrow().m.poll_timeout() {
            sess.schedule(due, TOKEN_ENGINE);
        }
        if let Some(p) = first(sess.sid) {
            sess.send(p);
        }
        ep.app.on_open(&sess);
        sess
    }

    /// The session id.
    pub fn sid(&self) -> Sid {
        self.sid
    }

    /// The handshake of the connection.
    pub fn handshake(&self) -> &Rc<Handshake> {
        &self.handshake
    }

    /// The application's state of this session.
    pub fn app(&self) -> RefMut<'_, A::Conn> {
        self.app.borrow_mut()
    }

    /// The application's state, when it is not borrowed already.
    pub fn try_app(&self) -> Option<RefMut<'_, A::Conn>> {
        self.app.try_borrow_mut().ok()
    }

    /// The application instance of this session's endpoint.
    pub fn app_instance(&self) -> &A {
        &self.ep.app
    }

    /// Engine.IO v3 (a socket.io-client 2.x connection, `allowEIO3`).
    pub fn is_v3(&self) -> bool {
        self.st.borrow().m.is_v3()
    }

    /// The transport in use.
    pub fn transport(&self) -> Transport {
        self.st.borrow().m.transport()
    }

    /// True once closed.
    pub fn is_closed(&self) -> bool {
        self.st.borrow().m.is_closed()
    }

    /// Queues a packet and wakes the transport. False when the session is closed.
    pub fn send(self: &Rc<Self>, p: OutPacket) -> bool {
        self.send_many(std::iter::once(p), false)
    }

    /// Queues packets (an event and its attachments) at once; `volatile` packets are dropped
    /// (and counted) unless the transport is idle and ready. Packets that take the queue past
    /// its cap close the session ("slow consumer", counted). False when nothing was queued.
    pub fn send_many(
        self: &Rc<Self>,
        ps: impl IntoIterator<Item = OutPacket>,
        volatile: bool,
    ) -> bool {
        let outcome = {
            let mut st = self.st.borrow_mut();
            let ready = st.transport_ready();
            let outcome = st.m.queue(ps, volatile, ready, &self.ep.limits);
            if matches!(outcome, Queued::Yes) {
                // under the same borrow: this runs once per recipient of a broadcast
                self.wake_io(&mut st.io);
            }
            outcome
        };
        let metrics = || rt::shard();
        match outcome {
            Queued::Yes => true,
            Queued::Closed => false,
            Queued::DroppedVolatile => {
                metrics().metrics().volatile_dropped.fetch_add(1, Relaxed);
                false
            }
            Queued::Overflow => {
                metrics().metrics().slow_consumers.fetch_add(1, Relaxed);
                // the machine closed itself: run the close
                self.settle(None);
                false
            }
        }
    }

    /// Queues a WebSocket control frame (a pong).
    pub(crate) fn send_control(self: &Rc<Self>, o: Out) {
        self.st.borrow_mut().m.queue_control(o);
        self.wake();
    }

    /// Calls the application's `on_app_timer` once `due` has passed.
    pub fn set_app_timer(self: &Rc<Self>, due: Instant) {
        self.schedule(due, TOKEN_APP);
    }

    fn schedule(self: &Rc<Self>, due: Instant, token: u8) {
        let weak: std::rc::Weak<dyn Timed> = Rc::downgrade(self) as _;
        rt::shard().timers.schedule(due, weak, token);
    }

    /// Closes the session: answers a pending GET, closes a WebSocket, tells the application.
    pub fn close(self: &Rc<Self>, reason: CloseReason) {
        self.close_with_code(reason, 1000)
    }

    /// Closes the session; a WebSocket gets a close frame with `code`.
    pub(crate) fn close_with_code(self: &Rc<Self>, reason: CloseReason, code: u16) {
        self.input(|m| m.close_with_code(reason, code));
    }

    /// One packet from the client (either transport).
    pub(crate) fn on_packet(self: &Rc<Self>, p: Packet) {
        let timing = &self.ep.timing;
        let msg = self.input(|m| m.handle_packet(Instant::now(), p, timing));
        if let Some(msg) = msg {
            self.ep.app.on_message(self, msg);
        }
    }

    /// Runs one input of the machine, then acts on what it changed.
    fn input<R>(self: &Rc<Self>, f: impl FnOnce(&mut Machine) -> R) -> R {
        let (before, r) = {
            let mut st = self.st.borrow_mut();
            let before = st.m.poll_timeout();
            (before, f(&mut st.m))
        };
        self.settle(before);
        r
    }

    /// Checks the heartbeat deadline now (requests check it so that their answer does not
    /// depend on timer latency); true when the session is (now) closed.
    pub(crate) fn check_expired(self: &Rc<Self>) -> bool {
        let expired = self.st.borrow().m.expired(Instant::now());
        if expired {
            self.close(CloseReason::PingTimeout);
        }
        self.is_closed()
    }

    /// Acts on what the last input changed: the close, queued frames, a new deadline.
    fn settle(self: &Rc<Self>, before: Option<Instant>) {
        let (event, after, queued) = {
            let mut st = self.st.borrow_mut();
            (st.m.poll_event(), st.m.poll_timeout(), !st.m.queue_empty())
        };
        if let Some(Event::Closed { reason, tombstone }) = event {
            self.on_closed(reason, &tombstone);
            return;
        }
        if queued {
            self.wake();
        }
        if let Some(due) = after.filter(|&a| Some(a) != before) {
            self.schedule(due, TOKEN_ENGINE);
        }
    }

    fn on_closed(self: &Rc<Self>, reason: CloseReason, tombstone: &[Vec<OutPacket>]) {
        // a waiting GET gets its final answer; a WebSocket writes its close frame, or is shut
        // down when no writer is left to do it
        if !self.wake() {
            if let TransportIo::Ws { fd, .. } = self.st.borrow().io {
                sys::shutdown_fd(fd);
            }
        }
        self.ep.tombstone(self.sid, tombstone, self.is_v3());
        self.ep.remove(self.sid);
        self.ep.app.on_close(self, reason);
        rt::reclaim::note_release();
        tracing::debug!(sid = %self.sid, %reason, "session closed");
    }

    /// Wakes the transport: a waiting GET, or a flush task for the WebSocket (spawned only
    /// when none runs). False for a WebSocket without a writer: one that has no write half
    /// left (it failed or sent its close frame).
    fn wake(self: &Rc<Self>) -> bool {
        let mut st = self.st.borrow_mut();
        self.wake_io(&mut st.io)
    }

    /// [`Session::wake`] with the state already borrowed (waking a task or spawning one only
    /// queues it: nothing runs while the borrow is held).
    #[inline]
    fn wake_io(self: &Rc<Self>, io: &mut TransportIo) -> bool {
        match io {
            TransportIo::Polling(w) => {
                if let Some(w) = w.take() {
                    w.wake();
                }
                true
            }
            TransportIo::Ws {
                writer, writing, ..
            } => {
                if !*writing && writer.is_some() {
                    *writing = true;
                    monoio::spawn(writer::flush(self.clone()));
                }
                *writing || writer.is_some()
            }
        }
    }

    /// Waits for what a polling GET answers with.
    pub(crate) fn poll_payload(&self, cx: &mut Context<'_>) -> Poll<Vec<OutPacket>> {
        let mut st = self.st.borrow_mut();
        match st.m.poll_payload() {
            Payload::Ready(p) => Poll::Ready(p),
            Payload::Wait => {
                st.io = TransportIo::Polling(Some(cx.waker().clone()));
                Poll::Pending
            }
        }
    }

    /// A polling request arrived (GET or POST): refused while another of its kind is active.
    pub(crate) fn request_arrived(self: &Rc<Self>, get: bool) -> Result<(), TransportError> {
        self.input(|m| {
            if get {
                m.get_arrived()
            } else {
                m.post_arrived()
            }
        })
    }

    /// The polling request is over.
    pub(crate) fn request_done(&self, get: bool) {
        let mut st = self.st.borrow_mut();
        if get {
            st.m.get_done();
            if let TransportIo::Polling(w) = &mut st.io {
                *w = None;
            }
        } else {
            st.m.post_done();
        }
    }

    /// `2probe` arrived on a new WebSocket: pauses polling until the upgrade or its timeout.
    pub(crate) fn on_probe(self: &Rc<Self>) {
        let timing = &self.ep.timing;
        self.input(|m| m.handle_probe(Instant::now(), timing));
        // a waiting GET is answered `6` while the upgrade runs
        if let TransportIo::Polling(w) = &mut self.st.borrow_mut().io {
            if let Some(w) = w.take() {
                w.wake();
            }
        }
        self.ep.app.on_upgrading(self, Transport::WebSocket);
    }

    /// `5` arrived: the session moves onto this WebSocket (`answers`: frames the probe has not
    /// written yet, sent first). False when the upgrade is refused.
    pub(crate) fn on_upgrade(
        self: &Rc<Self>,
        answers: Vec<Out>,
        w: OwnedWriteHalf<TcpStream>,
        fd: RawFd,
    ) -> bool {
        {
            let mut st = self.st.borrow_mut();
            if !st.m.handle_upgrade(answers) {
                return false;
            }
            // a waiting GET is answered `6` (the transport is no longer polling)
            if let TransportIo::Polling(Some(wk)) = std::mem::replace(
                &mut st.io,
                TransportIo::Ws {
                    writer: Some(w),
                    fd,
                    writing: false,
                },
            ) {
                wk.wake();
            }
        }
        self.wake();
        self.ep.app.on_upgrade(self, Transport::WebSocket);
        true
    }

    /// The probe socket failed or sent something else: polling resumes.
    pub(crate) fn abort_upgrade(&self) {
        self.st.borrow_mut().m.abort_upgrade();
    }

    /// True when the session can upgrade now.
    pub(crate) fn can_upgrade(&self) -> bool {
        self.st.borrow().m.can_upgrade()
    }
}

impl<A: App> Timed for Session<A> {
    fn fire(self: Rc<Self>, token: u8, now: Instant) {
        if token == TOKEN_APP {
            if !self.is_closed() {
                self.ep.app.on_app_timer(&self);
            }
            return;
        }
        let timing = &self.ep.timing;
        self.input(|m| m.handle_timeout(now, timing));
    }
}
