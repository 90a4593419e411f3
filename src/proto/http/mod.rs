//! HTTP/1.1 request heads and the responses Engine.IO needs (sans-IO).
//!
//! Owns: parsing a request head out of a caller's read buffer (borrowed `httparse`, then one
//! zero-copy `Bytes` of the raw head plus byte ranges of the fields Engine.IO reads), the query
//! parameters (`EIO`, `transport`, `sid`), and the byte-exact responses: Node's JSON errors with
//! codes 0-5, `413`, `431`, the WebSocket `101` and the refusals of an upgrade. CORS
//! (`cors`), the `cookie` option (`cookie`), headers added by applications (`headers`) and
//! files served from memory (`static_files`) have their own modules.
//!
//! Must not: touch sockets, clocks or the runtime. The server's hot path parses heads here rather
//! than with monoio-http, which allocates 8+8 KiB per connection and cannot hand a connection
//! over after a `101` (see BENCHMARKS.md).

use bytes::{Bytes, BytesMut};
use std::ops::Range;

mod cookie;
mod cors;
mod headers;
mod response;
mod static_files;

pub use cookie::{CookieOptions, SameSite};
pub use cors::{Cors, CorsOptions, CorsOrigin, OriginFn, DEFAULT_METHODS};
pub use headers::ResponseHeaders;
pub(crate) use response::write_status;
pub use response::{
    empty_response, error_response, insert_headers, payload_response, response, simple_response,
    upgrade_error, upgrade_response, WsHandshakeError, POLLING_HEADERS,
};
pub use static_files::{content_etag, file_name, StaticFile, StaticFiles, CLIENT_FILES};

/// Most headers accepted in one request head.
pub const MAX_HEADERS: usize = 64;
/// Largest request head accepted (request line plus headers).
pub const MAX_HEAD: usize = 16 * 1024;

/// The request methods Engine.IO distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// HEAD
    Head,
    /// OPTIONS (CORS preflight)
    Options,
    /// Any other method (PUT, DELETE, ...).
    Other,
}

/// Why a head could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    /// Not HTTP/1.x, bad token, bad header syntax or bad Content-Length: 400 and close.
    Malformed,
    /// Head, URL or header count over the limits: 431 and close.
    HeadTooLarge,
}

impl HttpError {
    /// The response to send before closing.
    pub fn response(&self) -> Bytes {
        match self {
            HttpError::Malformed => simple_response(400, "Bad Request"),
            HttpError::HeadTooLarge => simple_response(431, "Request Header Fields Too Large"),
        }
    }
}

/// A parsed request head. Field values are ranges into `raw` (zero copy).
#[derive(Debug, Clone)]
pub struct Head {
    raw: Bytes,
    /// The method.
    pub method: Method,
    path: Range<usize>,
    query: Range<usize>,
    /// Declared body length (0 when absent).
    pub content_length: usize,
    /// `Transfer-Encoding: chunked` was present (refused by the server).
    pub chunked: bool,
    /// `Upgrade: websocket` was present.
    pub upgrade_websocket: bool,
    /// The connection stays open after the response (HTTP/1.1 default, or keep-alive).
    pub keep_alive: bool,
    ws_key: Option<Range<usize>>,
    ws_version: Option<Range<usize>>,
    origin: Option<Range<usize>>,
    acr_headers: Option<Range<usize>>,
    content_type: Option<Range<usize>>,
    if_none_match: Option<Range<usize>>,
}

fn range_of(base: &[u8], part: &[u8]) -> Range<usize> {
    let start = part.as_ptr() as usize - base.as_ptr() as usize;
    start..start + part.len()
}

/// Parses one request head from the front of `buf`.
///
/// Returns `Ok(None)` when more bytes are needed; on success the head's bytes are split off
/// `buf` (the body, if any, stays in `buf`).
pub fn parse_head(buf: &mut BytesMut) -> Result<Option<Head>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let n = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if buf.len() > MAX_HEAD {
                Err(HttpError::HeadTooLarge)
            } else {
                Ok(None)
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeadTooLarge),
        Err(_) => return Err(HttpError::Malformed),
    };
    if n > MAX_HEAD {
        return Err(HttpError::HeadTooLarge);
    }
    let base: &[u8] = buf;
    let method = match req.method.unwrap_or("") {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "HEAD" => Method::Head,
        "OPTIONS" => Method::Options,
        _ => Method::Other,
    };
    let target = req.path.unwrap_or("/");
    let (p, q) = match target.find('?') {
        Some(i) => (&target[..i], &target[i + 1..]),
        None => (target, &target[target.len()..]),
    };
    let version = req.version.unwrap_or(1);
    let mut head = Head {
        raw: Bytes::new(),
        method,
        path: range_of(base, p.as_bytes()),
        query: range_of(base, q.as_bytes()),
        content_length: 0,
        chunked: false,
        upgrade_websocket: false,
        keep_alive: version == 1,
        ws_key: None,
        ws_version: None,
        origin: None,
        acr_headers: None,
        content_type: None,
        if_none_match: None,
    };
    let mut seen_length = false;
    for h in req.headers.iter() {
        let v = h.value;
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let len = std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
                .ok_or(HttpError::Malformed)?;
            if seen_length && len != head.content_length {
                return Err(HttpError::Malformed);
            }
            seen_length = true;
            head.content_length = len;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = true;
        } else if name.eq_ignore_ascii_case("upgrade") {
            head.upgrade_websocket = trim(v).eq_ignore_ascii_case(b"websocket");
        } else if name.eq_ignore_ascii_case("connection") {
            for tok in v.split(|&b| b == b',') {
                let tok = trim(tok);
                if tok.eq_ignore_ascii_case(b"close") {
                    head.keep_alive = false;
                } else if tok.eq_ignore_ascii_case(b"keep-alive") {
                    head.keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            head.ws_key = Some(range_of(base, trim(v)));
        } else if name.eq_ignore_ascii_case("sec-websocket-version") {
            head.ws_version = Some(range_of(base, trim(v)));
        } else if name.eq_ignore_ascii_case("origin") {
            head.origin = Some(range_of(base, trim(v)));
        } else if name.eq_ignore_ascii_case("access-control-request-headers") {
            head.acr_headers = Some(range_of(base, trim(v)));
        } else if name.eq_ignore_ascii_case("content-type") {
            head.content_type = Some(range_of(base, trim(v)));
        } else if name.eq_ignore_ascii_case("if-none-match") {
            head.if_none_match = Some(range_of(base, trim(v)));
        }
    }
    head.raw = buf.split_to(n).freeze();
    Ok(Some(head))
}

fn trim(v: &[u8]) -> &[u8] {
    let s = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let e = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(s, |e| e + 1);
    &v[s..e]
}

impl Head {
    /// The raw head bytes, request line to the blank line.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }
    /// Where the path and the query string lie in [`Head::raw`].
    pub fn path_and_query_ranges(&self) -> (Range<usize>, Range<usize>) {
        (self.path.clone(), self.query.clone())
    }
    fn str_at(&self, r: &Range<usize>) -> &str {
        std::str::from_utf8(&self.raw[r.clone()]).unwrap_or("")
    }
    /// The path, without the query string.
    pub fn path(&self) -> &str {
        self.str_at(&self.path)
    }
    /// The raw query string (without `?`).
    pub fn query(&self) -> &str {
        self.str_at(&self.query)
    }
    /// The first value of query parameter `name` (raw, not percent-decoded).
    pub fn param(&self, name: &str) -> Option<&str> {
        query_param(self.query(), name)
    }
    /// `Sec-WebSocket-Key`, when present.
    pub fn ws_key(&self) -> Option<&[u8]> {
        self.ws_key.as_ref().map(|r| &self.raw[r.clone()])
    }
    /// `Sec-WebSocket-Version`, when present.
    pub fn ws_version(&self) -> Option<&str> {
        self.ws_version.as_ref().map(|r| self.str_at(r))
    }
    /// `Origin`, when present.
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_ref().map(|r| self.str_at(r))
    }
    /// `Access-Control-Request-Headers`, when present.
    pub fn request_headers(&self) -> Option<&str> {
        self.acr_headers.as_ref().map(|r| self.str_at(r))
    }
    /// `Content-Type`, when present.
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_ref().map(|r| self.str_at(r))
    }
    /// `If-None-Match`, when present.
    pub fn if_none_match(&self) -> Option<&str> {
        self.if_none_match.as_ref().map(|r| self.str_at(r))
    }
    /// The request method as sent (`GET`, `PUT`, ...).
    pub fn method_str(&self) -> &str {
        let end = self.raw.iter().position(|&b| b == b' ').unwrap_or(0);
        std::str::from_utf8(&self.raw[..end]).unwrap_or("")
    }
    /// Every header, names lower-cased (re-parsed from the raw head; for handshake details).
    pub fn headers(&self) -> Vec<(String, String)> {
        headers_of(&self.raw)
    }
}

/// Every header of a raw request head, names lower-cased.
pub fn headers_of(raw: &[u8]) -> Vec<(String, String)> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let _ = req.parse(raw);
    req.headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect()
}

/// Every `name=value` pair of a query string, percent-decoded, in order.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// The civil date (year, month 1-12, day 1-31) of a day counted from 1970-01-01 (Howard
/// Hinnant's `civil_from_days`; proleptic Gregorian, any sign).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// A Unix time in milliseconds as JavaScript's `Date.prototype.toString` writes it in UTC:
/// `Mon Dec 07 2026 05:38:41 GMT+0000 (Coordinated Universal Time)`.
pub fn js_date_string(unix_ms: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = unix_ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{} {} {:02} {} {:02}:{:02}:{:02} GMT+0000 (Coordinated Universal Time)",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        day,
        year,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The first value of `name` in a query string.
pub fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then_some(v)
    })
}

/// Decodes `%XX` and `+` in a query value.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (
                    b.get(i + 1).and_then(|&c| hex(c)),
                    b.get(i + 2).and_then(|&c| hex(c)),
                ) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Engine.IO handshake errors, with Node's codes and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EioError {
    /// 0 "Transport unknown"
    UnknownTransport,
    /// 1 "Session ID unknown"
    UnknownSid,
    /// 2 "Bad handshake method"
    BadHandshakeMethod,
    /// 3 "Bad request"
    BadRequest,
    /// 4 "Forbidden" (allowRequest refused; HTTP 403)
    Forbidden,
    /// 5 "Unsupported protocol version"
    UnsupportedProtocolVersion,
}

impl EioError {
    /// Node's numeric code.
    pub fn code(self) -> u8 {
        match self {
            EioError::UnknownTransport => 0,
            EioError::UnknownSid => 1,
            EioError::BadHandshakeMethod => 2,
            EioError::BadRequest => 3,
            EioError::Forbidden => 4,
            EioError::UnsupportedProtocolVersion => 5,
        }
    }
    /// Node's message.
    pub fn message(self) -> &'static str {
        match self {
            EioError::UnknownTransport => "Transport unknown",
            EioError::UnknownSid => "Session ID unknown",
            EioError::BadHandshakeMethod => "Bad handshake method",
            EioError::BadRequest => "Bad request",
            EioError::Forbidden => "Forbidden",
            EioError::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }
    /// The HTTP status Node answers with.
    pub fn status(self) -> u16 {
        if self == EioError::Forbidden {
            403
        } else {
            400
        }
    }
    /// The JSON body, byte for byte as Node writes it.
    pub fn body(self) -> String {
        self.body_with(None)
    }
    /// The JSON body with `message` in place of Node's (an `allowRequest` refusal carrying
    /// its own message), escaped as `JSON.stringify` does.
    pub fn body_with(self, message: Option<&str>) -> String {
        let mut s = format!("{{\"code\":{},\"message\":", self.code());
        json_string(message.unwrap_or(self.message()), &mut s);
        s.push('}');
        s
    }
}

/// Appends `v` as a JSON string, escaped as `JSON.stringify` does.
pub fn json_string(v: &str, out: &mut String) {
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests;
