//! One Engine.IO session on its owner shard: transport state, the outbound queue, heartbeat
//! bookkeeping, and the close path.
//!
//! A session lives in its shard's `sessions` map (`Rc`, no locks). Polling GETs wait on the
//! queue through a stored waker; a WebSocket's write half sits in the session and a short-lived
//! flush task is spawned only while frames are queued (idle sockets have no writer task and no
//! write buffer). Frames queued for one socket go out in one vectored write.

use super::shard::{shard, TimerKind};
use super::writer;
use crate::proto::eio::{OutPacket, Packet};
use crate::sio_conn::SioConn;
use crate::DisconnectReason;
use bytes::Bytes;
use monoio::io::OwnedWriteHalf;
use monoio::net::TcpStream;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::Waker;
use std::time::Instant;

/// A session id: 22 base64url characters of CSPRNG output (128 bits) + 2 for the owner shard.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sid([u8; 24]);

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

impl Sid {
    /// A fresh id owned by `shard`.
    pub fn new(shard: usize) -> Sid {
        use base64::Engine as _;
        let mut rnd = [0u8; 16];
        getrandom::fill(&mut rnd).expect("CSPRNG");
        let mut s = [0u8; 24];
        let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode_slice(rnd, &mut s[..22])
            .expect("22 chars");
        debug_assert_eq!(n, 22);
        s[22] = B64[(shard >> 6) & 63];
        s[23] = B64[shard & 63];
        Sid(s)
    }
    /// Parses a sid from a query parameter.
    pub fn parse(s: &str) -> Option<Sid> {
        let b = s.as_bytes();
        if b.len() != 24 || !b.iter().all(|c| B64.contains(c)) {
            return None;
        }
        let mut out = [0u8; 24];
        out.copy_from_slice(b);
        Some(Sid(out))
    }
    /// The shard that owns this session.
    pub fn shard(&self) -> usize {
        let v = |c: u8| B64.iter().position(|&x| x == c).unwrap_or(0);
        (v(self.0[22]) << 6) | v(self.0[23])
    }
    /// The id as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl std::fmt::Debug for Sid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
impl std::fmt::Display for Sid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The transport a session currently uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// HTTP long-polling.
    Polling,
    /// WebSocket.
    WebSocket,
}

/// One queued frame. WebSocket control frames never reach a polling transport.
#[derive(Debug, Clone)]
pub enum Out {
    /// An Engine.IO packet.
    Eio(OutPacket),
    /// A WebSocket pong answering a ping.
    WsPong(Bytes),
    /// A WebSocket close frame; the connection shuts down once it is written.
    WsClose(u16),
}

/// What a pending polling GET is answered with.
pub enum PollOutcome {
    /// Encoded packets.
    Packets(Vec<OutPacket>),
    /// The session closed while waiting: answer with this packet.
    Closed(OutPacket),
}

impl State {
    /// Nothing queued and the transport can take a frame now.
    fn ready(&self) -> bool {
        self.out.is_empty()
            && match self.transport {
                Transport::Polling => self.poll_waker.is_some() && !self.upgrading,
                Transport::WebSocket => self.ws_writer.is_some() && !self.writing,
            }
    }
}

pub(crate) struct State {
    pub transport: Transport,
    pub upgrading: bool,
    pub closed: bool,
    pub out: VecDeque<Out>,
    pub out_bytes: usize,
    pub poll_waker: Option<Waker>,
    pub get_active: bool,
    pub post_active: bool,
    /// The packet a polling GET gets once the session is closed: `6` (noop) after the
    /// client's own close, else `1` (close). A flag, not an `OutPacket`: 40 bytes less per
    /// session.
    pub close_with_noop: bool,
    pub ws_writer: Option<OwnedWriteHalf<TcpStream>>,
    pub ws_fd: i32,
    pub writing: bool,
    pub hb_gen: u32,
    pub pong_deadline: Option<Instant>,
}

/// An Engine.IO session.
pub struct Session {
    pub(crate) sid: Sid,
    pub(crate) ep: usize,
    pub(crate) st: RefCell<State>,
    pub(crate) sio: RefCell<Option<SioConn>>,
    pub(crate) handshake: Rc<crate::Handshake>,
}

impl Session {
    pub(crate) fn new(
        ep: usize,
        transport: Transport,
        handshake: Rc<crate::Handshake>,
    ) -> Rc<Session> {
        let sh = shard();
        let sid = Sid::new(sh.id);
        let sess = Rc::new(Session {
            sid,
            ep,
            st: RefCell::new(State {
                transport,
                upgrading: false,
                closed: false,
                out: VecDeque::new(),
                out_bytes: 0,
                poll_waker: None,
                get_active: false,
                post_active: false,
                close_with_noop: false,
                ws_writer: None,
                ws_fd: -1,
                writing: false,
                hb_gen: 0,
                pong_deadline: None,
            }),
            sio: RefCell::new(None),
            handshake,
        });
        sh.sessions.borrow_mut().insert(sid, sess.clone());
        let eng = &sh.cfg.endpoints[ep].engine;
        let now = Instant::now();
        sh.timers
            .schedule(now + eng.ping_interval, &sess, 0, TimerKind::Ping);
        if sh.endpoints[ep].is_sio() {
            *sess.sio.borrow_mut() = Some(SioConn::default());
            sh.timers.schedule(
                now + sh.cfg.endpoints[ep].connect_timeout,
                &sess,
                0,
                TimerKind::ConnectTimeout,
            );
        }
        sess
    }

    /// The session id.
    pub fn sid(&self) -> Sid {
        self.sid
    }

    /// True once closed.
    pub fn is_closed(&self) -> bool {
        self.st.borrow().closed
    }

    /// Queues an Engine.IO packet and wakes the transport.
    pub(crate) fn send(self: &Rc<Self>, p: OutPacket) {
        self.send_many(std::iter::once(p));
    }

    /// Queues several packets (e.g. a binary event and its attachments) at once.
    pub(crate) fn send_many(self: &Rc<Self>, ps: impl IntoIterator<Item = OutPacket>) -> bool {
        self.send_many_with(ps, false)
    }

    /// Queues packets. Policy of the bounded queue: a volatile send is dropped (and counted)
    /// unless the transport is idle and ready; a send that takes the queue past its frame or
    /// byte cap closes the session with [`DisconnectReason::SlowConsumer`] (counted).
    pub(crate) fn send_many_with(
        self: &Rc<Self>,
        ps: impl IntoIterator<Item = OutPacket>,
        volatile: bool,
    ) -> bool {
        let sh = shard();
        let mut st = self.st.borrow_mut();
        if st.closed {
            return false;
        }
        if volatile && !st.ready() {
            sh.metrics().volatile_dropped.fetch_add(1, Relaxed);
            return false;
        }
        for p in ps {
            st.out_bytes += p.len();
            st.out.push_back(Out::Eio(p));
        }
        if st.out.len() > sh.cfg.max_queue_frames || st.out_bytes > sh.cfg.max_queue_bytes {
            drop(st);
            sh.metrics().slow_consumers.fetch_add(1, Relaxed);
            self.close(DisconnectReason::SlowConsumer);
            return false;
        }
        self.wake(&mut st);
        true
    }

    pub(crate) fn send_ws(self: &Rc<Self>, o: Out) {
        let mut st = self.st.borrow_mut();
        st.out.push_back(o);
        self.wake(&mut st);
    }

    fn wake(self: &Rc<Self>, st: &mut State) {
        match st.transport {
            Transport::Polling => {
                if let Some(w) = st.poll_waker.take() {
                    w.wake();
                }
            }
            Transport::WebSocket => {
                if !st.writing && st.ws_writer.is_some() {
                    st.writing = true;
                    monoio::spawn(writer::flush(self.clone()));
                }
            }
        }
    }

    /// Waits for packets to answer a polling GET with.
    pub(crate) fn poll_packets(
        &self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<PollOutcome> {
        let mut st = self.st.borrow_mut();
        if st.closed {
            return std::task::Poll::Ready(PollOutcome::Closed(if st.close_with_noop {
                OutPacket::NOOP
            } else {
                OutPacket::CLOSE
            }));
        }
        if st.transport != Transport::Polling {
            return std::task::Poll::Ready(PollOutcome::Packets(vec![OutPacket::NOOP]));
        }
        let mut packets = Vec::with_capacity(st.out.len());
        while let Some(o) = st.out.pop_front() {
            if let Out::Eio(p) = o {
                st.out_bytes -= p.len();
                packets.push(p);
            }
        }
        if !packets.is_empty() {
            return std::task::Poll::Ready(PollOutcome::Packets(packets));
        }
        if st.upgrading {
            return std::task::Poll::Ready(PollOutcome::Packets(vec![OutPacket::NOOP]));
        }
        st.poll_waker = Some(cx.waker().clone());
        std::task::Poll::Pending
    }

    /// Handles one packet from the client (either transport).
    pub(crate) fn on_packet(self: &Rc<Self>, p: Packet) {
        if self.is_closed() {
            return;
        }
        match p {
            Packet::Pong(_) => {
                let sh = shard();
                let gen = {
                    let mut st = self.st.borrow_mut();
                    st.pong_deadline = None;
                    st.hb_gen += 1;
                    st.hb_gen
                };
                let iv = sh.cfg.endpoints[self.ep].engine.ping_interval;
                sh.timers
                    .schedule(Instant::now() + iv, self, gen, TimerKind::Ping);
            }
            Packet::Close => self.close(DisconnectReason::TransportClose),
            Packet::Message(_) | Packet::Binary(_) => {
                let sh = shard();
                match &sh.endpoints[self.ep] {
                    super::EndpointRt::Engine(h) => h(self, p),
                    super::EndpointRt::SocketIo(_) => crate::sio_conn::on_message(self, p),
                }
            }
            // a ping from the client, an upgrade outside the probe, noop, open: not for us
            Packet::Ping(_) | Packet::Upgrade | Packet::Open(_) => {
                self.close(DisconnectReason::ParseError)
            }
            Packet::Noop => {}
        }
    }

    /// Heartbeat and connect timers.
    pub(crate) fn on_timer(self: &Rc<Self>, kind: TimerKind, gen: u32, due: Instant) {
        if self.is_closed() {
            return;
        }
        let sh = shard();
        let eng = &sh.cfg.endpoints[self.ep].engine;
        match kind {
            TimerKind::Ping => {
                if self.st.borrow().hb_gen != gen {
                    return;
                }
                // the pong deadline counts from when the ping was due, not when the timer ran
                let deadline = due + eng.ping_timeout;
                self.st.borrow_mut().pong_deadline = Some(deadline);
                self.send(OutPacket::PING);
                sh.timers
                    .schedule(deadline, self, gen, TimerKind::PongTimeout);
            }
            TimerKind::PongTimeout => {
                let st = self.st.borrow();
                if st.hb_gen == gen && st.pong_deadline.is_some() {
                    drop(st);
                    self.close(DisconnectReason::PingTimeout);
                }
            }
            TimerKind::UpgradeTimeout => {
                // the probe never completed: polling resumes (Node's upgradeTimeout)
                let mut st = self.st.borrow_mut();
                if st.upgrading {
                    st.upgrading = false;
                }
            }
            TimerKind::ConnectTimeout => {
                let connected = self.sio.borrow().as_ref().is_some_and(|s| s.has_sockets());
                if !connected {
                    // Node's client closes the connection itself: "forced close"
                    self.close(DisconnectReason::ForcedClose);
                }
            }
        }
    }

    /// True when the pong deadline passed (checked lazily by polling requests, so the answer
    /// does not depend on timer latency).
    pub(crate) fn expired(&self) -> bool {
        self.st
            .borrow()
            .pong_deadline
            .is_some_and(|d| Instant::now() >= d)
    }

    /// Closes the session: answers a pending GET, closes a WebSocket, tells Socket.IO.
    pub(crate) fn close(self: &Rc<Self>, reason: DisconnectReason) {
        self.close_with_code(reason, 1000)
    }

    /// Closes the session; a WebSocket gets a close frame with `code`.
    pub(crate) fn close_with_code(self: &Rc<Self>, reason: DisconnectReason, code: u16) {
        {
            let mut st = self.st.borrow_mut();
            if st.closed {
                return;
            }
            st.closed = true;
            st.close_with_noop =
                reason == DisconnectReason::TransportClose && st.transport == Transport::Polling;
            if let Some(w) = st.poll_waker.take() {
                w.wake();
            } else if reason == DisconnectReason::TransportClose
                && st.transport == Transport::Polling
                && !st.get_active
            {
                let sh = shard();
                let mut t = sh.tombstones.borrow_mut();
                let now = Instant::now();
                if t.len() > 256 {
                    t.retain(|_, until| *until > now);
                }
                t.insert(self.sid, now + std::time::Duration::from_secs(1));
            }
            if st.transport == Transport::WebSocket {
                st.out.push_back(Out::WsClose(code));
                if !st.writing && st.ws_writer.is_some() {
                    st.writing = true;
                    monoio::spawn(writer::flush(self.clone()));
                } else if st.ws_writer.is_none() && !st.writing && st.ws_fd >= 0 {
                    writer::shutdown_fd(st.ws_fd);
                }
            }
        }
        shard().sessions.borrow_mut().remove(&self.sid);
        let sio = self.sio.borrow_mut().take();
        if let Some(sio) = sio {
            sio.close(reason);
        }
        tracing::debug!(sid = %self.sid, ?reason, "session closed");
    }
}
