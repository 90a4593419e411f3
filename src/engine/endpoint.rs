//! One Engine.IO endpoint on one shard: its options, its application, its sessions.
//!
//! [`EndpointImpl`] is generic over the application; the connection code reaches it through
//! the object-safe [`Endpoint`] trait, once per request (the per-message paths stay generic).
//!
//! Must not: parse requests (conn.rs does) or know what a message means.

use super::config::{EngineConfig, Handshake};
use super::conn::ConnGuard;
use super::hooks::ErrorContext;
use super::session::Session;
use super::{polling, ws_conn, App};
use crate::proto::eio::session::{QueueLimits, Timing};
use crate::proto::eio::{self, CloseReason, Sid, Transport};
use crate::proto::http::{EioError, Head, Method};
use crate::rt;
use bytes::{Bytes, BytesMut};
use monoio::net::TcpStream;
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// A boxed future of the shard (requests in progress pay for their state only while they run).
pub(crate) type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// A polling request for a session of this endpoint (local, or forwarded by another shard).
pub(crate) struct PollRequest {
    pub sid: Sid,
    pub method: Method,
    pub body: Bytes,
    /// Header lines for every answer (CORS), computed by the shard that received the request.
    pub extra: Bytes,
    pub keep_alive: bool,
    /// The request's protocol revision (4 for `EIO=4`, else 3).
    pub protocol: u8,
    /// `b64` in the query: the client takes no binary polling payload (EIO=3).
    pub b64: bool,
    /// `Content-Type: application/octet-stream` (refused under EIO=4, as Node does).
    pub octet_stream: bool,
}

/// The answer to a polling request.
pub(crate) struct PollReply {
    /// The complete HTTP response.
    pub resp: Bytes,
    /// A transport answer (200): the `headers` hook applies to it.
    pub ok: bool,
    /// The request was refused (for the `connection_error` hook of the receiving shard).
    pub reject: Option<(EioError, ErrorContext)>,
}

impl PollReply {
    pub fn ok(resp: Bytes) -> PollReply {
        PollReply {
            resp,
            ok: true,
            reject: None,
        }
    }
    pub fn plain(resp: Bytes) -> PollReply {
        PollReply {
            resp,
            ok: false,
            reject: None,
        }
    }
    pub fn rejected(resp: Bytes, err: EioError, ctx: ErrorContext) -> PollReply {
        PollReply {
            resp,
            ok: false,
            reject: Some((err, ctx)),
        }
    }
}

/// What the connection code needs from an endpoint.
pub(crate) trait Endpoint {
    /// The endpoint's options.
    fn cfg(&self) -> &EngineConfig;
    /// A polling handshake: opens a session and returns its id and the open packet.
    fn open_polling(self: Rc<Self>, head: &Head, peer: SocketAddr) -> (Sid, Bytes);
    /// Serves a polling GET or POST on the owner shard; the future gives the whole response.
    fn poll(self: Rc<Self>, req: PollRequest) -> LocalBoxFuture<PollReply>;
    /// Runs a WebSocket connection: a new session, or the upgrade of `sid`; `extra` holds
    /// header lines for the `101` (CORS, hooks).
    #[allow(clippy::too_many_arguments)]
    fn websocket(
        self: Rc<Self>,
        stream: TcpStream,
        head: Head,
        sid: Option<Sid>,
        extra: Bytes,
        buf: BytesMut,
        peer: SocketAddr,
        guard: ConnGuard,
    ) -> LocalBoxFuture<()>;
    /// Closes a session of this shard, if it exists.
    fn close_session(&self, sid: Sid, reason: CloseReason);
    /// Closes every session of this shard.
    fn close_all(&self, reason: CloseReason);
    /// Open sessions on this shard.
    fn sessions(&self) -> usize;
}

/// An endpoint's per-shard state.
pub(crate) struct EndpointImpl<A: App> {
    pub cfg: EngineConfig,
    pub timing: Timing,
    pub limits: QueueLimits,
    pub app: A,
    sessions: RefCell<HashMap<Sid, Rc<Session<A>>>>,
    /// Polling sessions closed while no GET was pending, with what the next GET still gets:
    /// `6` when the client closed with `1` (a GET racing the close), or the packets the server
    /// queued before closing deliberately, then `1`. Answered once, until the deadline.
    tombstones: RefCell<HashMap<Sid, (Instant, Vec<Bytes>)>>,
}

impl<A: App> EndpointImpl<A> {
    pub fn new(cfg: EngineConfig, limits: QueueLimits, app: A) -> Rc<Self> {
        Rc::new(EndpointImpl {
            timing: cfg.timing(),
            cfg,
            limits,
            app,
            sessions: Default::default(),
            tombstones: Default::default(),
        })
    }

    /// Registers a session (counted in the shard's `clients_count`).
    pub fn insert(&self, s: Rc<Session<A>>) {
        if self.sessions.borrow_mut().insert(s.sid(), s).is_none() {
            rt::shard().metrics().sessions.fetch_add(1, Relaxed);
        }
    }

    /// Forgets a session (once).
    pub fn remove(&self, sid: Sid) {
        if self.sessions.borrow_mut().remove(&sid).is_some() {
            rt::shard().metrics().sessions.fetch_sub(1, Relaxed);
        }
    }

    /// A live session of this shard (the heartbeat deadline is checked here too).
    pub fn lookup(&self, sid: Sid) -> Option<Rc<Session<A>>> {
        let sess = self.sessions.borrow().get(&sid).cloned()?;
        (!sess.check_expired()).then_some(sess)
    }

    /// Keeps the answer of the next GET of a closed polling session: a second for a GET
    /// racing the client's close, a heartbeat for packets the client has yet to fetch.
    pub fn tombstone(&self, sid: Sid, answers: &[Vec<eio::OutPacket>], v3: bool) {
        if answers.is_empty() {
            return;
        }
        let bodies: Vec<Bytes> = answers
            .iter()
            .rev()
            .map(|packets| {
                let mut body = BytesMut::new();
                if v3 {
                    // a string payload: valid whatever the client said about binary
                    eio::v3::encode_payload(packets, false, &mut body);
                } else {
                    eio::encode_payload(packets, &mut body);
                }
                body.freeze()
            })
            .collect();
        let keep = if answers == [vec![eio::OutPacket::NOOP]] {
            Duration::from_secs(1)
        } else {
            self.cfg.ping_interval + self.cfg.ping_timeout
        };
        let mut t = self.tombstones.borrow_mut();
        let now = Instant::now();
        if t.len() > 256 {
            t.retain(|_, (until, _)| *until > now);
        }
        t.insert(sid, (now + keep, bodies));
    }

    /// The next of the last answers of a polling session closed a moment ago (each once).
    pub fn take_tombstone(&self, sid: Sid) -> Option<Bytes> {
        let mut t = self.tombstones.borrow_mut();
        let (until, bodies) = t.get_mut(&sid)?;
        let body = (*until > Instant::now()).then(|| bodies.pop()).flatten();
        if bodies.is_empty() || body.is_none() {
            t.remove(&sid);
        }
        body
    }

    /// The open packet of a new session.
    pub fn open_packet(&self, sid: Sid, upgrades: bool) -> Bytes {
        eio::open_packet(
            sid.as_str(),
            upgrades,
            self.cfg.ping_interval.as_millis() as u64,
            self.cfg.ping_timeout.as_millis() as u64,
            self.cfg.max_payload,
        )
    }

    /// Every session of this shard (a snapshot).
    pub fn all(&self) -> Vec<Rc<Session<A>>> {
        self.sessions.borrow().values().cloned().collect()
    }
}

impl<A: App> Endpoint for EndpointImpl<A> {
    fn cfg(&self) -> &EngineConfig {
        &self.cfg
    }

    fn open_polling(self: Rc<Self>, head: &Head, peer: SocketAddr) -> (Sid, Bytes) {
        let hs = Rc::new(Handshake::new(head, peer));
        let v3 = super::verify::protocol(head) == 3;
        // the open packet is this request's answer, before anything the application queues
        let sess = Session::open(&self, Transport::Polling, hs, None, v3, |_| None);
        // Node: no upgrades when allowUpgrades is off or WebSocket is not a transport
        let upgrades = self.cfg.websocket && self.cfg.allow_upgrades;
        let open = self.open_packet(sess.sid(), upgrades);
        if !v3 {
            return (sess.sid(), open);
        }
        // a v3 polling answer is a v3 payload
        let mut body = BytesMut::new();
        eio::v3::encode_payload(&[eio::OutPacket::Text(open)], false, &mut body);
        (sess.sid(), body.freeze())
    }

    fn poll(self: Rc<Self>, req: PollRequest) -> LocalBoxFuture<PollReply> {
        Box::pin(polling::serve(self, req))
    }

    fn websocket(
        self: Rc<Self>,
        stream: TcpStream,
        head: Head,
        sid: Option<Sid>,
        extra: Bytes,
        buf: BytesMut,
        peer: SocketAddr,
        guard: ConnGuard,
    ) -> LocalBoxFuture<()> {
        Box::pin(ws_conn::run(
            self,
            ws_conn::Upgrade {
                stream,
                head,
                sid,
                extra,
                buf,
                peer,
            },
            guard,
        ))
    }

    fn close_session(&self, sid: Sid, reason: CloseReason) {
        if let Some(s) = self.lookup(sid) {
            s.close(reason);
        }
    }

    fn close_all(&self, reason: CloseReason) {
        for s in self.all() {
            s.close(reason);
        }
    }

    fn sessions(&self) -> usize {
        self.sessions.borrow().len()
    }
}
