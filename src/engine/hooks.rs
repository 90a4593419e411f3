//! The engine's hooks into requests, as Node's engine events and options: `allowRequest`
//! (sync or async, with its own refusal message), `headers` / `initial_headers` (add response
//! headers), `connection_error` (every refused request, with Node's code, message and
//! context). They are shared by the shards (`Send + Sync`) and run on the shard that received
//! the request.
//!
//! Must not: block a shard (an async `allowRequest` returns a future of the shard).

use crate::proto::http::{EioError, Head, ResponseHeaders};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A boxed future of the shard that decides a handshake: `Err(message)` refuses it (403, code
/// 4); an empty message means Node's "Forbidden".
pub type AllowFuture = Pin<Box<dyn Future<Output = Result<(), String>>>>;

/// An `allowRequest` decided at once.
pub type AllowSync = Arc<dyn Fn(&Head) -> Result<(), String> + Send + Sync>;
/// An `allowRequest` decided by a future of the shard.
pub type AllowAsync = Arc<dyn Fn(Head) -> AllowFuture + Send + Sync>;

/// The `allowRequest` hook.
#[derive(Clone)]
pub enum AllowRequest {
    /// Decided at once.
    Sync(AllowSync),
    /// Decided by a future that runs on the shard (the request waits, the shard does not).
    Async(AllowAsync),
}

impl AllowRequest {
    /// Runs the hook for a handshake request.
    pub(crate) async fn check(&self, head: &Head) -> Result<(), String> {
        match self {
            AllowRequest::Sync(f) => f(head),
            AllowRequest::Async(f) => f(head.clone()).await,
        }
    }
}

/// What an `allow_request` function may return: `bool` (false: "Forbidden"), or
/// `Result<(), String>` / `Result<(), &str>` (the message replaces "Forbidden").
pub trait AllowOutcome {
    /// As a result (`Err("")`: "Forbidden").
    fn into_result(self) -> Result<(), String>;
}

impl AllowOutcome for bool {
    fn into_result(self) -> Result<(), String> {
        if self {
            Ok(())
        } else {
            Err(String::new())
        }
    }
}

impl AllowOutcome for Result<(), String> {
    fn into_result(self) -> Result<(), String> {
        self
    }
}

impl AllowOutcome for Result<(), &str> {
    fn into_result(self) -> Result<(), String> {
        self.map_err(str::to_string)
    }
}

/// A `headers` / `initial_headers` hook: adds (or changes) headers of a response to `head`.
pub type HeadersHook = Arc<dyn Fn(&mut ResponseHeaders, &Head) + Send + Sync>;

/// The `connection_error` hook.
pub type ConnectionErrorHook = Arc<dyn Fn(&ConnectionError<'_>) + Send + Sync>;

/// The hooks of an endpoint.
#[derive(Clone, Default)]
pub struct Hooks {
    /// `allowRequest`.
    pub allow_request: Option<AllowRequest>,
    /// `initial_headers`: the first response of a session (polling handshake, WebSocket `101`
    /// without a sid), before `headers`.
    pub initial_headers: Option<HeadersHook>,
    /// `headers`: every response of a transport (polling handshake, GET and POST answers,
    /// every WebSocket `101`).
    pub headers: Option<HeadersHook>,
    /// `connection_error`: every refused request.
    pub connection_error: Option<ConnectionErrorHook>,
}

impl Hooks {
    /// True when a header hook is set (responses then pass through [`Hooks::headers_for`]).
    pub fn any_headers(&self) -> bool {
        self.initial_headers.is_some() || self.headers.is_some()
    }

    /// Runs `initial_headers` (when `initial`) then `headers` on `h`.
    pub fn run_headers(&self, h: &mut ResponseHeaders, head: &Head, initial: bool) {
        if initial {
            if let Some(f) = &self.initial_headers {
                f(h, head);
            }
        }
        if let Some(f) = &self.headers {
            f(h, head);
        }
    }

    /// Reports a refused request.
    pub fn report(&self, head: &Head, err: EioError, context: ErrorContext) {
        if let Some(f) = &self.connection_error {
            f(&ConnectionError {
                head,
                code: err.code(),
                message: err.message(),
                context,
            });
        }
    }
}

/// A refused request, as Node's `connection_error` event describes it.
#[derive(Debug)]
pub struct ConnectionError<'a> {
    /// The request.
    pub head: &'a Head,
    /// Node's code (0-5).
    pub code: u8,
    /// Node's message for the code ("Forbidden" even when `allow_request` gave its own; that
    /// one is in the context).
    pub message: &'static str,
    /// What Node puts in `context`.
    pub context: ErrorContext,
}

/// The `context` of a [`ConnectionError`] (Node's fields; see [`ErrorContext::to_json`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorContext {
    /// Code 0: `{transport}` (absent when the query had none).
    UnknownTransport {
        /// The `transport` query parameter.
        transport: Option<String>,
    },
    /// Code 1: `{sid}`.
    UnknownSid {
        /// The `sid` query parameter.
        sid: String,
    },
    /// Code 2: `{method}`.
    BadHandshakeMethod {
        /// The request method.
        method: String,
    },
    /// Code 3, `TRANSPORT_HANDSHAKE_ERROR`: `transport=websocket` without an upgrade.
    TransportHandshakeError,
    /// Code 3, `TRANSPORT_MISMATCH`: a request for a session on another transport.
    TransportMismatch {
        /// The request's transport.
        transport: String,
        /// The session's.
        previous_transport: String,
    },
    /// Code 3, `PROTOCOL_MISMATCH`: a request for a session with another `EIO`.
    ProtocolMismatch {
        /// The request's protocol (4 for `EIO=4`, else 3, as Node computes it).
        protocol: u8,
        /// The session's.
        previous_protocol: u8,
    },
    /// Code 4: `{message}` (what `allow_request` gave; `None` for a plain refusal).
    Forbidden {
        /// The refusal's message.
        message: Option<String>,
    },
    /// Code 5: `{protocol}`.
    UnsupportedProtocolVersion {
        /// 3 (Node counts anything but `EIO=4` as 3).
        protocol: u8,
    },
}

impl ErrorContext {
    /// The context as Node's JSON (`JSON.stringify(err.context)`).
    pub fn to_json(&self) -> String {
        let mut s = String::from("{");
        let field = |k: &str, v: &str, s: &mut String| {
            if s.len() > 1 {
                s.push(',');
            }
            crate::proto::http::json_string(k, s);
            s.push(':');
            s.push_str(v);
        };
        let q = |v: &str| {
            let mut o = String::new();
            crate::proto::http::json_string(v, &mut o);
            o
        };
        match self {
            ErrorContext::UnknownTransport { transport } => {
                if let Some(t) = transport {
                    field("transport", &q(t), &mut s);
                }
            }
            ErrorContext::UnknownSid { sid } => field("sid", &q(sid), &mut s),
            ErrorContext::BadHandshakeMethod { method } => field("method", &q(method), &mut s),
            ErrorContext::TransportHandshakeError => {
                field("name", &q("TRANSPORT_HANDSHAKE_ERROR"), &mut s)
            }
            ErrorContext::TransportMismatch {
                transport,
                previous_transport,
            } => {
                field("name", &q("TRANSPORT_MISMATCH"), &mut s);
                field("transport", &q(transport), &mut s);
                field("previousTransport", &q(previous_transport), &mut s);
            }
            ErrorContext::ProtocolMismatch {
                protocol,
                previous_protocol,
            } => {
                field("name", &q("PROTOCOL_MISMATCH"), &mut s);
                field("protocol", &protocol.to_string(), &mut s);
                field("previousProtocol", &previous_protocol.to_string(), &mut s);
            }
            ErrorContext::Forbidden { message } => {
                if let Some(m) = message {
                    field("message", &q(m), &mut s);
                }
            }
            ErrorContext::UnsupportedProtocolVersion { protocol } => {
                field("protocol", &protocol.to_string(), &mut s)
            }
        }
        s.push('}');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorContext as C;

    /// `JSON.stringify(context)` of each refusal, as Node's engine.io 6.6 emits them.
    #[test]
    fn contexts_as_node_json() {
        let cases = [
            (
                C::UnknownTransport {
                    transport: Some("foo".into()),
                },
                r#"{"transport":"foo"}"#,
            ),
            (C::UnknownTransport { transport: None }, "{}"),
            (C::UnknownSid { sid: "abc".into() }, r#"{"sid":"abc"}"#),
            (
                C::BadHandshakeMethod {
                    method: "PUT".into(),
                },
                r#"{"method":"PUT"}"#,
            ),
            (
                C::TransportHandshakeError,
                r#"{"name":"TRANSPORT_HANDSHAKE_ERROR"}"#,
            ),
            (
                C::TransportMismatch {
                    transport: "polling".into(),
                    previous_transport: "websocket".into(),
                },
                r#"{"name":"TRANSPORT_MISMATCH","transport":"polling","previousTransport":"websocket"}"#,
            ),
            (
                C::ProtocolMismatch {
                    protocol: 3,
                    previous_protocol: 4,
                },
                r#"{"name":"PROTOCOL_MISMATCH","protocol":3,"previousProtocol":4}"#,
            ),
            (
                C::Forbidden {
                    message: Some("go \"away\"".into()),
                },
                r#"{"message":"go \"away\""}"#,
            ),
            (C::Forbidden { message: None }, "{}"),
            (
                C::UnsupportedProtocolVersion { protocol: 3 },
                r#"{"protocol":3}"#,
            ),
        ];
        for (c, json) in cases {
            assert_eq!(c.to_json(), json);
        }
    }
}
