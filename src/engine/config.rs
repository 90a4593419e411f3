//! Engine.IO options of one endpoint (Node's names and defaults) and the handshake details a
//! session keeps.
//!
//! Must not: hold per-shard or per-session state.

use super::hooks::Hooks;
use crate::proto::eio::session::{QueueLimits, Timing};
use crate::proto::http::{CookieOptions, CorsOptions, Head, StaticFiles};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Engine.IO options of one endpoint (Node's names and defaults).
#[derive(Clone)]
pub struct EngineConfig {
    /// Path the endpoint answers on (default `/socket.io/`).
    pub path: String,
    /// `pingInterval` (default 25 s).
    pub ping_interval: Duration,
    /// `pingTimeout` (default 20 s).
    pub ping_timeout: Duration,
    /// `upgradeTimeout`: an upgrade probe that does not finish in time is abandoned (10 s).
    pub upgrade_timeout: Duration,
    /// `maxHttpBufferSize`, advertised as `maxPayload` (default 1e6 bytes).
    pub max_payload: usize,
    /// Long-polling enabled.
    pub polling: bool,
    /// WebSocket enabled.
    pub websocket: bool,
    /// Polling sessions may upgrade to WebSocket.
    pub allow_upgrades: bool,
    /// `allowEIO3`: accept Engine.IO v3 clients (socket.io-client 2.x); refused with Node's
    /// "Unsupported protocol version" (400, code 5) otherwise.
    pub allow_eio3: bool,
    /// CORS (Node's `cors` option, the `cors` package's semantics); `None`: no CORS headers.
    pub cors: Option<CorsOptions>,
    /// The `cookie` option: `Set-Cookie` with the sid on polling handshakes.
    pub cookie: Option<CookieOptions>,
    /// Files served under the path (the client bundle of `serveClient`), loaded at start.
    pub files: Option<Arc<StaticFiles>>,
    /// `allowRequest`, `headers`, `initial_headers`, `connection_error`.
    pub hooks: Hooks,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            path: "/socket.io/".into(),
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            upgrade_timeout: Duration::from_millis(10_000),
            max_payload: 1_000_000,
            polling: true,
            websocket: true,
            allow_upgrades: true,
            allow_eio3: false,
            cors: None,
            cookie: None,
            files: None,
            hooks: Hooks::default(),
        }
    }
}

impl EngineConfig {
    /// The session state machine's timing.
    pub fn timing(&self) -> Timing {
        Timing {
            ping_interval: self.ping_interval,
            ping_timeout: self.ping_timeout,
            upgrade_timeout: self.upgrade_timeout,
        }
    }

    /// True when `path` is this endpoint's path or below it.
    pub fn matches(&self, path: &str) -> bool {
        let p = self.path.trim_end_matches('/');
        path == p || (path.starts_with(p) && path[p.len()..].starts_with('/'))
    }
}

/// Limits that apply to every endpoint of a server.
#[derive(Debug, Clone, Copy, Default)]
pub struct EngineLimits {
    /// Output queue caps per connection.
    pub queue: QueueLimits,
}

/// The handshake of a connection: request head, peer address, time.
///
/// Kept compact (every connection holds one for its whole life): the raw request head, once,
/// with the path and query located in it; headers are parsed again when asked for.
#[derive(Debug, Clone, Default)]
pub struct Handshake {
    raw: Box<[u8]>,
    path: (u16, u16),
    query: (u16, u16),
    /// The peer's address.
    pub address: Option<SocketAddr>,
    /// When the connection was made (ms since the Unix epoch).
    pub issued: u64,
}

// the offsets of a Handshake are u16
const _: () = assert!(crate::proto::http::MAX_HEAD <= u16::MAX as usize);

impl Handshake {
    pub(crate) fn new(head: &Head, peer: SocketAddr) -> Handshake {
        let issued = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let (path, query) = head.path_and_query_ranges();
        // a head is at most MAX_HEAD (16 KiB) long, so offsets fit u16
        let r16 = |r: std::ops::Range<usize>| (r.start as u16, r.end as u16);
        Handshake {
            raw: head.raw().into(),
            path: r16(path),
            query: r16(query),
            address: Some(peer),
            issued,
        }
    }
    fn str_at(&self, (s, e): (u16, u16)) -> &str {
        self.raw
            .get(s as usize..e as usize)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }
    /// Request headers, names lower-cased.
    pub fn headers(&self) -> Vec<(String, String)> {
        crate::proto::http::headers_of(&self.raw)
    }
    /// The raw query string.
    pub fn query(&self) -> &str {
        self.str_at(self.query)
    }
    /// One query parameter (percent-decoded).
    pub fn query_param(&self, name: &str) -> Option<String> {
        crate::proto::http::query_param(self.query(), name).map(crate::proto::http::percent_decode)
    }
    /// The request path.
    pub fn path(&self) -> &str {
        self.str_at(self.path)
    }
    /// The URL of the first request, path and query (Node's `handshake.url`).
    pub fn url(&self) -> String {
        match self.query() {
            "" => self.path().to_string(),
            q => format!("{}?{q}", self.path()),
        }
    }
    /// Every query parameter, percent-decoded, in order (Node's `handshake.query`).
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        crate::proto::http::query_pairs(self.query())
    }
    /// True when the request came with an `Origin` header (Node's `handshake.xdomain`).
    pub fn xdomain(&self) -> bool {
        self.headers().iter().any(|(k, _)| k == "origin")
    }
    /// True when the connection is TLS (Node's `handshake.secure`): ringio terminates no TLS,
    /// so this is false; a TLS proxy in front of it tells through its own headers.
    pub fn secure(&self) -> bool {
        false
    }
    /// When the connection was made, as JavaScript's `Date.prototype.toString` writes it
    /// (Node's `handshake.time`), in UTC.
    pub fn time(&self) -> String {
        crate::proto::http::js_date_string(self.issued)
    }
}
