//! A Socket.IO client (Engine.IO v4 / Socket.IO v5) on monoio, behaving like socket.io-client
//! 4.8: HTTP long-polling then an upgrade to WebSocket (or either alone), namespaces multiplexed
//! on one connection, automatic reconnection with exponential backoff, buffered emits, acks
//! with timeouts, at-least-once retries, binary arguments both ways.
//!
//! Like the server, everything is `Rc` and runs on the current thread's monoio runtime, which
//! must have its timer enabled.
//!
//! ```no_run
//! use ringio::client::{ClientAck, ClientBuilder, Transport};
//! use ringio::{Binary, RawArgs};
//! use std::time::Duration;
//!
//! let mut rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
//!     .enable_timer()
//!     .build()
//!     .unwrap();
//! rt.block_on(async {
//!     let client = ClientBuilder::new("http://127.0.0.1:3000")
//!         .transports(&[Transport::Polling, Transport::WebSocket])
//!         .auth(sonic_rs::json!({"token": "secret"}))
//!         .connect()
//!         .await
//!         .expect("connect");
//!     let socket = client.socket("/");
//!     socket.on("news", |(text,): (String,), _ack: ClientAck| println!("news: {text}"));
//!     // the server asks us something and waits for our ack
//!     socket.on("question", |args: RawArgs, ack: ClientAck| ack.send(args));
//!     socket.on_connect(|| println!("connected"));
//!     socket.on_disconnect(|reason| println!("disconnected: {reason}"));
//!     // buffered until the namespace is connected, then sent in order
//!     socket.emit("hello", ("world", 1));
//!     let reply = socket
//!         .emit_with_ack("echo", (Binary(vec![1u8, 2, 3].into()),), Duration::from_secs(5))
//!         .await;
//!     if let Ok(args) = reply {
//!         let (bin,): (Binary,) = ringio::FromArgs::from_args(args).unwrap();
//!         assert_eq!(&bin.0[..], &[1, 2, 3]);
//!     }
//!     let chat = client.socket("/chat"); // same connection
//!     chat.volatile().emit("typing", ()); // dropped unless connected
//!     client.close();
//! });
//! ```
//!
//! # Layout
//!
//! ```text
//! mod.rs        builder, configuration, errors
//! manager.rs    Client: the connection loop, reconnection, Socket.IO decoding and routing
//! socket.rs     ClientSocket: CONNECT, handlers, emits, buffers, acks
//! receive.rs    what a socket receives: CONNECT reply, events, acks, server DISCONNECT
//! retry.rs      the at-least-once retry queue (`retries`)
//! engine.rs     one Engine.IO connection: handshake, heartbeat, write buffer, close
//! polling.rs    HTTP/1.1 long-polling (GET and POST loops)
//! websocket.rs  WebSocket handshake, frames, the upgrade probe
//! backoff.rs    reconnection delays (socket.io-client's formula)
//! notify.rs     wake-ups between the tasks of one client
//! url.rs        server URL and request targets
//! ```
//!
//! # Differences from socket.io-client
//!
//! - [`ClientBuilder::connect`] resolves once the first Engine.IO handshake succeeded and fails
//!   if it does not (no retry of a failed first attempt); [`ClientBuilder::open`] behaves like
//!   `io()` instead, retrying in the background.
//! - Only `http://` (and `ws://`) URLs: there is no TLS. The URL's path is ignored; choose
//!   namespaces with [`Client::socket`].
//! - Volatile emits are dropped only while disconnected (not while a write is in flight).
//! - A zero `reconnection_delay` means no delay (the JavaScript client falls back to 1 s).
//!
//! Must not: depend on the server layers (engine, sio, server); it shares only `proto` with them.

#![warn(missing_docs)]

mod backoff;
mod engine;
mod manager;
mod notify;
mod polling;
mod receive;
mod retry;
mod socket;
mod url;
mod websocket;

pub use crate::proto::sio::AckError;
pub use manager::Client;
pub use receive::ClientAck;
pub use socket::{ClientSocket, Volatile};

use std::rc::Rc;
use std::time::Duration;
use url::Target;

pub use crate::proto::eio::Transport;

/// Why connecting failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// The builder's settings are unusable (bad URL, no transport).
    InvalidConfig(String),
    /// A socket error: its kind and its text.
    Io {
        /// What kind of error (`ConnectionRefused`, `UnexpectedEof`, ...).
        kind: std::io::ErrorKind,
        /// The error's text.
        message: String,
    },
    /// An HTTP response other than the expected one: status (0 for a malformed response) and
    /// body.
    Http(u16, String),
    /// The WebSocket handshake or stream failed.
    WebSocket(String),
    /// The Engine.IO handshake was not understood.
    Handshake(String),
    /// No handshake within the connect timeout.
    Timeout,
    /// The client was closed while connecting.
    Closed,
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::InvalidConfig(m) => write!(f, "invalid configuration: {m}"),
            ClientError::Io { message, .. } => write!(f, "connection error: {message}"),
            ClientError::Http(code, body) => write!(f, "unexpected HTTP response {code}: {body}"),
            ClientError::WebSocket(m) => write!(f, "websocket error: {m}"),
            ClientError::Handshake(m) => write!(f, "handshake error: {m}"),
            ClientError::Timeout => f.write_str("timeout"),
            ClientError::Closed => f.write_str("client closed"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        ClientError::Io {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

/// Resolved client settings.
pub(crate) struct Config {
    pub target: Target,
    pub headers: Vec<(String, String)>,
    pub transports: Vec<Transport>,
    pub upgrade: bool,
    pub reconnection: bool,
    pub reconnection_attempts: u32,
    pub reconnection_delay: Duration,
    pub reconnection_delay_max: Duration,
    pub randomization_factor: f64,
    pub timeout: Duration,
    pub ack_timeout: Option<Duration>,
    pub retries: u32,
    /// CONNECT payload (JSON) for every namespace without its own.
    pub auth: Option<String>,
    /// Per-namespace CONNECT payloads (JSON).
    pub auth_for: Vec<(String, String)>,
}

/// Configures and connects a [`Client`]. Defaults are socket.io-client's.
#[derive(Clone)]
pub struct ClientBuilder {
    url: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    transports: Vec<Transport>,
    upgrade: bool,
    reconnection: bool,
    reconnection_attempts: u32,
    reconnection_delay: Duration,
    reconnection_delay_max: Duration,
    randomization_factor: f64,
    timeout: Duration,
    ack_timeout: Option<Duration>,
    retries: u32,
    auth: Option<Result<String, String>>,
    auth_for: Vec<(String, Result<String, String>)>,
}

fn to_json(v: &impl serde::Serialize) -> Result<String, String> {
    sonic_rs::to_string(v).map_err(|e| e.to_string())
}

impl ClientBuilder {
    /// A client for the server at `url` (`http://host:port`).
    pub fn new(url: &str) -> ClientBuilder {
        ClientBuilder {
            url: url.to_string(),
            path: "/socket.io/".into(),
            query: Vec::new(),
            headers: Vec::new(),
            transports: vec![Transport::Polling, Transport::WebSocket],
            upgrade: true,
            reconnection: true,
            reconnection_attempts: u32::MAX,
            reconnection_delay: Duration::from_millis(1000),
            reconnection_delay_max: Duration::from_millis(5000),
            randomization_factor: 0.5,
            timeout: Duration::from_secs(20),
            ack_timeout: None,
            retries: 0,
            auth: None,
            auth_for: Vec::new(),
        }
    }

    /// The Engine.IO path (default `/socket.io/`).
    pub fn path(mut self, path: &str) -> Self {
        self.path = path.to_string();
        self
    }

    /// The transports, in order of preference: the first one opens the connection; with
    /// polling first and WebSocket listed too, the connection upgrades (default: both).
    pub fn transports(mut self, transports: &[Transport]) -> Self {
        self.transports = transports.to_vec();
        self
    }

    /// Whether to upgrade from polling to WebSocket when the server offers it (default true).
    pub fn upgrade(mut self, on: bool) -> Self {
        self.upgrade = on;
        self
    }

    /// An extra query parameter on every Engine.IO request.
    pub fn query(mut self, key: &str, value: &str) -> Self {
        self.query.push((key.to_string(), value.to_string()));
        self
    }

    /// An extra header on every HTTP request (polling and the WebSocket handshake).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Whether to reconnect after the connection is lost (default true).
    pub fn reconnection(mut self, on: bool) -> Self {
        self.reconnection = on;
        self
    }

    /// Reconnection attempts before giving up (default unlimited, `u32::MAX`).
    pub fn reconnection_attempts(mut self, n: u32) -> Self {
        self.reconnection_attempts = n;
        self
    }

    /// Delay before the first reconnection attempt, doubled on each failure (default 1 s).
    pub fn reconnection_delay(mut self, d: Duration) -> Self {
        self.reconnection_delay = d;
        self
    }

    /// Longest delay between reconnection attempts (default 5 s).
    pub fn reconnection_delay_max(mut self, d: Duration) -> Self {
        self.reconnection_delay_max = d;
        self
    }

    /// Jitter of the reconnection delay, in `(0, 1]`: each delay moves by up to this fraction
    /// (default 0.5; other values mean none).
    pub fn randomization_factor(mut self, f: f64) -> Self {
        self.randomization_factor = f;
        self
    }

    /// Connect timeout: the Engine.IO handshake must complete within it (default 20 s).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// Default ack timeout of each attempt of a retried plain [`ClientSocket::emit`]
    /// (default none).
    pub fn ack_timeout(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.ack_timeout = d.into();
        self
    }

    /// Retries of unacknowledged emits (default 0: emits are sent once, at most once). With
    /// `n > 0`, emits are queued, acked one at a time and resent up to `n` times.
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = n;
        self
    }

    /// The CONNECT payload of every namespace (the server reads it as `handshake.auth`).
    pub fn auth(mut self, auth: impl serde::Serialize) -> Self {
        self.auth = Some(to_json(&auth));
        self
    }

    /// The CONNECT payload of one namespace (overrides [`ClientBuilder::auth`] there).
    pub fn auth_for(mut self, nsp: &str, auth: impl serde::Serialize) -> Self {
        let nsp = if nsp.starts_with('/') {
            nsp.to_string()
        } else {
            format!("/{nsp}")
        };
        self.auth_for.push((nsp, to_json(&auth)));
        self
    }

    pub(crate) fn config(self) -> Result<Config, ClientError> {
        let mut target =
            Target::parse(&self.url, &self.path).map_err(ClientError::InvalidConfig)?;
        for (k, v) in &self.query {
            target.push_query(k, v);
        }
        if self.transports.is_empty() {
            return Err(ClientError::InvalidConfig("no transport".into()));
        }
        let auth = self.auth.transpose().map_err(ClientError::InvalidConfig)?;
        let auth_for = self
            .auth_for
            .into_iter()
            .map(|(n, a)| a.map(|a| (n, a)))
            .collect::<Result<_, _>>()
            .map_err(ClientError::InvalidConfig)?;
        Ok(Config {
            target,
            headers: self.headers,
            transports: self.transports,
            upgrade: self.upgrade,
            reconnection: self.reconnection,
            reconnection_attempts: self.reconnection_attempts,
            reconnection_delay: self.reconnection_delay,
            reconnection_delay_max: self.reconnection_delay_max,
            randomization_factor: self.randomization_factor,
            timeout: self.timeout,
            ack_timeout: self.ack_timeout,
            retries: self.retries,
            auth,
            auth_for,
        })
    }

    /// Connects: resolves once the Engine.IO handshake succeeded (then reconnects on its own
    /// after losses), or fails with the first attempt's error. Call [`Client::socket`] next.
    pub async fn connect(self) -> Result<Client, ClientError> {
        let mgr = manager::ManagerInner::new(self.config()?);
        let (tx, rx) = futures_channel::oneshot::channel();
        mgr.open_with(Some(tx));
        match rx.await {
            Ok(Ok(())) => Ok(Client(mgr)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ClientError::Closed),
        }
    }

    /// Starts connecting in the background and returns at once, like socket.io-client's `io()`:
    /// a failed first attempt is retried with backoff (when reconnection is on), and sockets
    /// created meanwhile connect as soon as the connection is up.
    pub fn open(self) -> Result<Client, ClientError> {
        let mgr = manager::ManagerInner::new(self.config()?);
        mgr.open();
        Ok(Client(mgr))
    }
}

impl Client {
    /// The socket of namespace `nsp` (`"/"`, `"/chat"`), created and connected on first use;
    /// namespaces share this client's connection. Asking again returns the same socket
    /// (reconnecting it if it was disconnected).
    pub fn socket(&self, nsp: &str) -> ClientSocket {
        self.0.socket(nsp)
    }

    /// Closes the connection and every socket (reason `"forced close"`); no reconnection
    /// follows. Buffered packets are flushed first. A later [`ClientSocket::connect`] opens
    /// a new connection.
    pub fn close(&self) {
        self.0.close();
    }

    /// True while the Engine.IO connection is established.
    pub fn is_open(&self) -> bool {
        self.0.is_open()
    }

    /// The Engine.IO session id of the current connection.
    pub fn id(&self) -> Option<String> {
        self.0.engine().map(|e| e.sid().to_string())
    }

    /// The transport of the current connection (changes from polling to WebSocket after an
    /// upgrade).
    pub fn transport(&self) -> Option<Transport> {
        self.0.engine().map(|e| e.transport())
    }

    /// Called on every established connection (initial and reconnections).
    pub fn on_open(&self, f: impl Fn() + 'static) {
        self.0.hooks.open.push(Rc::new(f));
    }

    /// Called when the connection closes, with the reason (`"transport close"`,
    /// `"transport error"`, `"ping timeout"`, `"parse error"`, `"forced close"`).
    pub fn on_close(&self, f: impl Fn(&str) + 'static) {
        self.0.hooks.close.push(Rc::new(f));
    }

    /// Called when a (re)connection attempt fails.
    pub fn on_error(&self, f: impl Fn(&ClientError) + 'static) {
        self.0.hooks.error.push(Rc::new(f));
    }

    /// Called before each reconnection attempt, with its number (from 1).
    pub fn on_reconnect_attempt(&self, f: impl Fn(u32) + 'static) {
        self.0.hooks.reconnect_attempt.push(Rc::new(f));
    }

    /// Called after a successful reconnection, with the number of attempts it took.
    pub fn on_reconnect(&self, f: impl Fn(u32) + 'static) {
        self.0.hooks.reconnect.push(Rc::new(f));
    }

    /// Called when `reconnection_attempts` attempts all failed (reconnection stops).
    pub fn on_reconnect_failed(&self, f: impl Fn() + 'static) {
        self.0.hooks.reconnect_failed.push(Rc::new(f));
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.0.cfg.target.addr)
            .field("id", &self.id())
            .field("transport", &self.transport())
            .finish()
    }
}
