//! The responses the server writes, byte for byte as Node's engine.io (and the `ws` package)
//! write them: Engine.IO payloads and JSON errors, the `101`, the refusals of an upgrade.
//!
//! Must not: decide which answer a request gets (the engine does).

use super::{EioError, Head};
use bytes::{BufMut, Bytes, BytesMut};

fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        _ => "Unknown",
    }
}

/// Builds a complete response with a body; `extra` holds header lines to add (CORS, hooks).
pub fn response(
    status: u16,
    content_type: &str,
    body: &[u8],
    extra: &[u8],
    keep_alive: bool,
) -> Bytes {
    let mut out = BytesMut::with_capacity(96 + extra.len() + body.len());
    write_status(&mut out, status);
    out.put_slice(b"Content-Type: ");
    out.put_slice(content_type.as_bytes());
    out.put_slice(b"\r\nContent-Length: ");
    out.put_slice(itoa(body.len()).as_bytes());
    out.put_slice(b"\r\n");
    out.put_slice(extra);
    if !keep_alive {
        out.put_slice(b"Connection: close\r\n");
    }
    out.put_slice(b"\r\n");
    out.put_slice(body);
    out.freeze()
}

/// A response without a body nor a Content-Type (Node's `res.writeHead(400).end()`).
pub fn empty_response(status: u16, extra: &[u8], keep_alive: bool) -> Bytes {
    let mut out = BytesMut::with_capacity(64 + extra.len());
    write_status(&mut out, status);
    out.put_slice(extra);
    out.put_slice(b"Content-Length: 0\r\n");
    if !keep_alive {
        out.put_slice(b"Connection: close\r\n");
    }
    out.put_slice(b"\r\n");
    out.freeze()
}

pub(crate) fn write_status(out: &mut BytesMut, status: u16) {
    out.put_slice(b"HTTP/1.1 ");
    out.put_slice(itoa(status as usize).as_bytes());
    out.put_u8(b' ');
    out.put_slice(reason(status).as_bytes());
    out.put_slice(b"\r\n");
}

fn itoa(n: usize) -> String {
    n.to_string()
}

/// The header a polling transport adds to each of its answers (Node's polling `headers()`).
pub const POLLING_HEADERS: &[u8] = b"cache-control: no-store\r\n";

/// The 200 answer carrying an Engine.IO payload (the handshake, a polling GET).
pub fn payload_response(body: &[u8], extra: &[u8], keep_alive: bool) -> Bytes {
    response(200, "text/plain; charset=UTF-8", body, extra, keep_alive)
}

/// An Engine.IO error response (JSON body with Node's code and message).
pub fn error_response(err: EioError, extra: &[u8], keep_alive: bool) -> Bytes {
    let body = err.body();
    response(
        err.status(),
        "application/json",
        body.as_bytes(),
        extra,
        keep_alive,
    )
}

/// A plain-text response that closes the connection (400, 404, 413, 431).
pub fn simple_response(status: u16, text: &str) -> Bytes {
    response(status, "text/plain", text.as_bytes(), b"", false)
}

/// The `101 Switching Protocols` answer for a WebSocket key; `extra` holds header lines to add
/// (CORS, hooks).
pub fn upgrade_response(accept: &str, extra: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(160 + extra.len());
    out.put_slice(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ");
    out.put_slice(accept.as_bytes());
    out.put_slice(b"\r\n");
    out.put_slice(extra);
    out.put_slice(b"\r\n");
    out.freeze()
}

/// An Engine.IO refusal of a WebSocket upgrade, byte for byte as engine.io's `abortUpgrade`:
/// always 400, the message as a `text/html` body; the connection is then closed.
pub fn upgrade_error(message: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(96 + message.len());
    out.put_slice(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-type: text/html\r\nContent-Length: ");
    out.put_slice(itoa(message.len()).as_bytes());
    out.put_slice(b"\r\n\r\n");
    out.put_slice(message.as_bytes());
    out.freeze()
}

/// Why a WebSocket handshake is refused after the Engine.IO checks passed (the `ws` package's
/// checks, its messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsHandshakeError {
    /// No `Sec-WebSocket-Key`, or not 16 bytes in base64.
    Key,
    /// `Sec-WebSocket-Version` missing or not 13.
    Version,
}

impl WsHandshakeError {
    /// Checks the key and the version of a WebSocket handshake.
    pub fn check(head: &Head) -> Result<(), WsHandshakeError> {
        let key_ok = head.ws_key().is_some_and(|k| {
            k.len() == 24
                && k.ends_with(b"==")
                && k[..22]
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        });
        if !key_ok {
            return Err(WsHandshakeError::Key);
        }
        if head.ws_version() != Some("13") {
            return Err(WsHandshakeError::Version);
        }
        Ok(())
    }

    /// The 400 answer, as `ws`'s `abortHandshake` writes it; an unsupported version carries
    /// `Sec-WebSocket-Version: 13`, the only version served (RFC 6455 4.4).
    pub fn response(self) -> Bytes {
        let (msg, extra): (&str, &[u8]) = match self {
            WsHandshakeError::Key => ("Missing or invalid Sec-WebSocket-Key header", b""),
            WsHandshakeError::Version => (
                "Missing or invalid Sec-WebSocket-Version header",
                b"Sec-WebSocket-Version: 13\r\n",
            ),
        };
        let mut out = BytesMut::with_capacity(160);
        out.put_slice(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/html\r\nContent-Length: ");
        out.put_slice(itoa(msg.len()).as_bytes());
        out.put_slice(b"\r\n");
        out.put_slice(extra);
        out.put_slice(b"\r\n");
        out.put_slice(msg.as_bytes());
        out.freeze()
    }
}

/// `resp` with `lines` (complete header lines) added at the end of its head.
pub fn insert_headers(resp: &[u8], lines: &[u8]) -> Bytes {
    let Some(end) = resp.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Bytes::copy_from_slice(resp);
    };
    let mut out = BytesMut::with_capacity(resp.len() + lines.len());
    out.put_slice(&resp[..end + 2]);
    out.put_slice(lines);
    out.put_slice(&resp[end + 2..]);
    out.freeze()
}
