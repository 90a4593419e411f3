//! Response headers that applications add: what Node's engine `headers` and `initial_headers`
//! listeners see and change (the `Set-Cookie` of the `cookie` option is one of them), written
//! into a response head without letting a value break out of its line.
//!
//! Must not: hold the headers the server itself needs (Content-Length, Content-Type, ...):
//! those are written by the response builders.

use bytes::{BufMut, BytesMut};

/// Headers added to a response by the `cookie` option and the engine's header hooks, in order.
/// Names compare without regard to case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseHeaders {
    list: Vec<(String, String)>,
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Node's `checkInvalidHeaderChar`: tab, visible ASCII, space and bytes >= 0x80.
fn is_value(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

impl ResponseHeaders {
    /// No headers.
    pub fn new() -> ResponseHeaders {
        ResponseHeaders::default()
    }
    /// Sets `name` (replacing every header of that name), as `headers[name] = value` in Node.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        self.remove(&name);
        self.list.push((name, value.into()));
    }
    /// Adds one more header line (several `Set-Cookie`, for example).
    pub fn append(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.list.push((name.into(), value.into()));
    }
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.list
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// Removes every header named `name`.
    pub fn remove(&mut self, name: &str) {
        self.list.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }
    /// Every header, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.list.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
    /// Writes `Name: value\r\n` lines. A header whose name is not a token or whose value holds
    /// a control character (Node throws `ERR_INVALID_CHAR` there) is left out, and logged.
    pub fn write_to(&self, out: &mut BytesMut) {
        for (n, v) in &self.list {
            if !is_token(n) || !is_value(v) {
                tracing::warn!(name = %n, "response header left out: invalid name or value");
                continue;
            }
            out.put_slice(n.as_bytes());
            out.put_slice(b": ");
            out.put_slice(v.as_bytes());
            out.put_slice(b"\r\n");
        }
    }
}
