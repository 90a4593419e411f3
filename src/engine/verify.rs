//! Node's `verify` and `handshake` checks on a request for an Engine.IO endpoint, in Node's
//! order, with the `connection_error` context of each refusal, and the answer to a refusal:
//! Node's JSON error for a plain request, engine.io's `abortUpgrade` for a WebSocket upgrade
//! (400 and close, whatever the code).
//!
//! Must not: touch sessions (their owner shard checks the sid; see `polling` and `ws_conn`).

use super::hooks::ErrorContext;
use super::EngineConfig;
use crate::proto::eio::Sid;
use crate::proto::http::{self, EioError, Head, Method};
use crate::rt;
use bytes::Bytes;

/// Where a request goes once its checks passed.
pub(crate) enum Route {
    /// A polling handshake.
    Handshake,
    /// A polling request for a session.
    Poll(Sid),
    /// A WebSocket handshake: a new session (`None`) or the upgrade of one.
    WebSocket(Option<Sid>),
}

/// A refused request.
#[derive(Debug, Clone)]
pub(crate) struct Reject {
    pub err: EioError,
    pub ctx: ErrorContext,
}

impl Reject {
    pub fn new(err: EioError, ctx: ErrorContext) -> Reject {
        Reject { err, ctx }
    }

    /// The message of the answer: an `allow_request` refusal's own, else Node's.
    pub fn message(&self) -> &str {
        match &self.ctx {
            ErrorContext::Forbidden { message: Some(m) } if !m.is_empty() => m,
            _ => self.err.message(),
        }
    }

    /// The answer: JSON (with `extra` header lines: CORS) for a plain request, or engine.io's
    /// `abortUpgrade` for an upgrade request.
    pub fn response(&self, upgrade: bool, extra: &[u8], keep_alive: bool) -> Bytes {
        if upgrade {
            return http::upgrade_error(self.message());
        }
        let custom =
            matches!(&self.ctx, ErrorContext::Forbidden { message: Some(m) } if !m.is_empty());
        let body = self.err.body_with(custom.then(|| self.message()));
        http::response(
            self.err.status(),
            "application/json",
            body.as_bytes(),
            extra,
            keep_alive,
        )
    }
}

/// Node's protocol revision of a request: 4 for `EIO=4`, 3 for anything else.
pub(crate) fn protocol(head: &Head) -> u8 {
    if head.param("EIO") == Some("4") {
        4
    } else {
        3
    }
}

/// The checks of Node's `verify` (transport, sid, handshake method, upgrade, `allowRequest`)
/// then `handshake` (protocol version), in that order.
pub(crate) async fn route(head: &Head, cfg: &EngineConfig) -> Result<Route, Reject> {
    let transport = head.param("transport");
    let polling = transport == Some("polling") && cfg.polling;
    let websocket = transport == Some("websocket") && cfg.websocket;
    if !polling && !websocket {
        let transport = transport.map(http::percent_decode);
        return Err(Reject::new(
            EioError::UnknownTransport,
            ErrorContext::UnknownTransport { transport },
        ));
    }
    if let Some(raw) = head.param("sid") {
        let sh = rt::shard();
        let (shards, node) = (sh.count(), sh.peers.node());
        // a session of another node (a load balancer without sticky sessions) is unknown here:
        // Node's answer, never another session's data
        let Some(sid) = Sid::parse(raw).filter(|s| s.shard() < shards && s.node() == node) else {
            let sid = http::percent_decode(raw);
            return Err(Reject::new(
                EioError::UnknownSid,
                ErrorContext::UnknownSid { sid },
            ));
        };
        if !websocket {
            return Ok(Route::Poll(sid));
        }
        if !head.upgrade_websocket {
            return Err(handshake_error());
        }
        return Ok(Route::WebSocket(Some(sid)));
    }
    if head.method != Method::Get {
        let method = head.method_str().to_string();
        return Err(Reject::new(
            EioError::BadHandshakeMethod,
            ErrorContext::BadHandshakeMethod { method },
        ));
    }
    if websocket && !head.upgrade_websocket {
        return Err(handshake_error());
    }
    if let Some(allow) = &cfg.hooks.allow_request {
        if let Err(m) = allow.check(head).await {
            let message = (!m.is_empty()).then_some(m);
            return Err(Reject::new(
                EioError::Forbidden,
                ErrorContext::Forbidden { message },
            ));
        }
    }
    let protocol = protocol(head);
    if protocol != 4 && !(protocol == 3 && cfg.allow_eio3) {
        return Err(Reject::new(
            EioError::UnsupportedProtocolVersion,
            ErrorContext::UnsupportedProtocolVersion { protocol },
        ));
    }
    Ok(if websocket {
        Route::WebSocket(None)
    } else {
        Route::Handshake
    })
}

fn handshake_error() -> Reject {
    Reject::new(EioError::BadRequest, ErrorContext::TransportHandshakeError)
}
