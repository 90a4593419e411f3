//! Engine.IO over monoio: accepted connections, HTTP long-polling, WebSocket, sessions and
//! their output, on each shard.
//!
//! Owns: the endpoints of this shard (each with its options, its application and its
//! sessions), the connection tasks, the session drivers around the sans-IO state machine,
//! the WebSocket writer. Applications plug in through [`App`]: the Socket.IO layer is one, a
//! raw Engine.IO endpoint ([`raw`]) another.
//!
//! Must not: know what a message means (no Socket.IO type is named here).

pub mod config;
pub(crate) mod conn;
pub(crate) mod endpoint;
pub mod hooks;
mod polling;
pub mod raw;
mod session;
mod verify;
mod writer;
mod ws_conn;

pub use config::{EngineConfig, EngineLimits, Handshake};
pub use hooks::{
    AllowFuture, AllowOutcome, AllowRequest, ConnectionError, ErrorContext, HeadersHook, Hooks,
};
pub use session::Session;

use crate::proto::eio::{CloseReason, Packet};
use crate::proto::http::{Head, Method, StaticFiles};
use endpoint::{Endpoint, EndpointImpl};
use std::cell::RefCell;
use std::collections::HashSet;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// An application on top of Engine.IO sessions (one instance per endpoint and shard).
pub trait App: Sized + 'static {
    /// Per-session state of the application, kept inline in the session.
    type Conn: Default;
    /// A session opened (before its open packet is written).
    fn on_open(&self, sess: &Rc<Session<Self>>);
    /// A message from the client: [`Packet::Message`] (text, without its `4`) or
    /// [`Packet::Binary`].
    fn on_message(&self, sess: &Rc<Session<Self>>, msg: Packet);
    /// The session closed (once); its state is still in place.
    fn on_close(&self, sess: &Rc<Session<Self>>, reason: CloseReason);
    /// A timer set with [`Session::set_app_timer`] passed.
    fn on_app_timer(&self, _sess: &Rc<Session<Self>>) {}
    /// The client probes an upgrade to `to` (Node's `socket.conn` `upgrading` event).
    fn on_upgrading(&self, _sess: &Rc<Session<Self>>, _to: crate::proto::eio::Transport) {}
    /// The session moved to `to` (Node's `upgrade` event).
    fn on_upgrade(&self, _sess: &Rc<Session<Self>>, _to: crate::proto::eio::Transport) {}
}

/// Names an endpoint: its index among the server's endpoints, the same on every shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EndpointId(usize);

/// The engine's state on one shard.
pub(crate) struct EngineShard {
    endpoints: Vec<Rc<dyn Endpoint>>,
    /// Files served at exact paths outside every endpoint (the demo's page).
    pages: Option<Arc<StaticFiles>>,
    /// File descriptors of this shard's open connections (shut down at server shutdown so
    /// their tasks end and the sockets close).
    pub conns: RefCell<HashSet<RawFd>>,
}

thread_local! {
    static ENGINE: RefCell<Option<Rc<EngineShard>>> = const { RefCell::new(None) };
}

/// This shard's engine state. Panics off a shard thread.
pub(crate) fn local() -> Rc<EngineShard> {
    ENGINE
        .with(|e| e.borrow().clone())
        .expect("ringio engine used outside a shard thread")
}

/// Builds the endpoints of this shard, in the server's order (endpoint indices are the same on
/// every shard).
#[derive(Default)]
pub struct EndpointsBuilder {
    endpoints: Vec<Rc<dyn Endpoint>>,
    pages: Option<Arc<StaticFiles>>,
}

impl EndpointsBuilder {
    /// Adds an endpoint running `app`.
    pub fn add<A: App>(&mut self, cfg: EngineConfig, limits: &EngineLimits, app: A) -> EndpointId {
        let id = EndpointId(self.endpoints.len());
        let ep: Rc<dyn Endpoint> = EndpointImpl::new(cfg, limits.queue, app);
        self.endpoints.push(ep);
        id
    }

    /// Files served at exact request paths (`/chat.html`) that no endpoint covers.
    pub fn pages(&mut self, pages: Arc<StaticFiles>) {
        self.pages = Some(pages);
    }

    /// Makes these the endpoints of the current shard.
    pub fn install(self) {
        let shard = Rc::new(EngineShard {
            endpoints: self.endpoints,
            pages: self.pages,
            conns: Default::default(),
        });
        ENGINE.with(|e| *e.borrow_mut() = Some(shard));
    }
}

impl EngineShard {
    /// The endpoint whose path covers `path`.
    pub fn endpoint_for(&self, path: &str) -> Option<EndpointId> {
        self.endpoints
            .iter()
            .position(|e| e.cfg().matches(path))
            .map(EndpointId)
    }

    /// An endpoint of this shard.
    pub fn endpoint(&self, id: EndpointId) -> Rc<dyn Endpoint> {
        self.endpoints[id.0].clone()
    }

    /// The answer of a page at the request's exact path (GET and HEAD only).
    pub fn page(&self, head: &Head) -> Option<bytes::Bytes> {
        if !matches!(head.method, Method::Get | Method::Head) {
            return None;
        }
        let file = self.pages.as_ref()?.get(head.path())?;
        Some(file.respond(head, b""))
    }
}

/// Accepts connections on this shard's listener until the shard stops.
pub async fn accept_loop(listener: monoio::net::TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                crate::rt::note_activity();
                monoio::spawn(conn::serve(stream, peer));
            }
            Err(e) => {
                tracing::warn!("accept: {e}");
                monoio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Closes every session of this shard ("server shutting down"), lets the close frames and
/// final answers go out, then ends every connection task.
pub async fn shutdown() {
    let eng = local();
    for ep in &eng.endpoints {
        ep.close_all(CloseReason::ServerShuttingDown);
    }
    monoio::time::sleep(Duration::from_millis(50)).await;
    for &fd in eng.conns.borrow().iter() {
        crate::rt::sys::shutdown_fd(fd);
    }
}

/// Open sessions of endpoint `ep` on this shard (`engine.clientsCount` is their sum over
/// shards).
pub fn sessions(ep: EndpointId) -> usize {
    local().endpoint(ep).sessions()
}

/// Open Engine.IO sessions of the server, every shard and every endpoint (Node's
/// `engine.clientsCount`). Callable from any handler; panics off a shard thread.
pub fn clients_count() -> usize {
    let peers = &crate::rt::shard().peers;
    (0..peers.len())
        .map(|i| {
            peers
                .metrics(i)
                .sessions
                .load(std::sync::atomic::Ordering::Relaxed) as usize
        })
        .sum()
}
