//! Files served from memory: the official client bundle under the Socket.IO path (Node's
//! `serveClient`: `ETag`, `304` on a matching `If-None-Match`, `Cache-Control: public,
//! max-age=0`) and fixed pages (the demo's chat page).
//!
//! Must not: read the disk (the server layer loads the files once, at start).

use super::{write_status, Head, Method};
use bytes::{BufMut, Bytes, BytesMut};
use std::collections::HashMap;

/// The names Node's socket.io serves from the client package's `dist/` folder (`CLIENT_FILES`).
pub const CLIENT_FILES: [&str; 8] = [
    "socket.io.esm.min.js",
    "socket.io.esm.min.js.map",
    "socket.io.js",
    "socket.io.js.map",
    "socket.io.min.js",
    "socket.io.min.js.map",
    "socket.io.msgpack.min.js",
    "socket.io.msgpack.min.js.map",
];

/// One file in memory.
#[derive(Debug, Clone)]
pub struct StaticFile {
    /// The content.
    pub body: Bytes,
    /// `Content-Type`.
    pub content_type: String,
    /// `ETag` (quoted), when the file has one: requests carrying it (or its weak form) in
    /// `If-None-Match` get `304`.
    pub etag: Option<String>,
    /// `Cache-Control`, when sent.
    pub cache_control: Option<String>,
}

impl StaticFile {
    /// A client bundle file as Node's socket.io serves it: `application/javascript` (maps:
    /// `application/json`) `; charset=utf-8`, `Cache-Control: public, max-age=0`, the ETag.
    pub fn client(name: &str, body: Bytes, etag: String) -> StaticFile {
        let kind = if name.ends_with(".map") {
            "json"
        } else {
            "javascript"
        };
        StaticFile {
            body,
            content_type: format!("application/{kind}; charset=utf-8"),
            etag: Some(etag),
            cache_control: Some("public, max-age=0".into()),
        }
    }

    /// The answer to `head`: `304` when its `If-None-Match` is the ETag or its weak form (the
    /// exact strings, as Node compares them), else `200` with the file (no body for `HEAD`).
    /// `extra` holds header lines to add (CORS).
    pub fn respond(&self, head: &Head, extra: &[u8]) -> Bytes {
        let mut out = BytesMut::with_capacity(256 + self.body.len());
        let inm = head.if_none_match();
        if let (Some(tag), Some(inm)) = (&self.etag, inm) {
            if inm == tag || inm.strip_prefix("W/") == Some(tag) {
                write_status(&mut out, 304);
                out.put_slice(extra);
                finish(&mut out, head.keep_alive);
                return out.freeze();
            }
        }
        write_status(&mut out, 200);
        out.put_slice(extra);
        if let Some(c) = &self.cache_control {
            line(&mut out, "Cache-Control", c);
        }
        line(&mut out, "Content-Type", &self.content_type);
        if let Some(t) = &self.etag {
            line(&mut out, "ETag", t);
        }
        line(&mut out, "Content-Length", &self.body.len().to_string());
        finish(&mut out, head.keep_alive);
        if head.method != Method::Head {
            out.put_slice(&self.body);
        }
        out.freeze()
    }
}

fn line(out: &mut BytesMut, name: &str, value: &str) {
    out.put_slice(name.as_bytes());
    out.put_slice(b": ");
    out.put_slice(value.as_bytes());
    out.put_slice(b"\r\n");
}

fn finish(out: &mut BytesMut, keep_alive: bool) {
    if !keep_alive {
        out.put_slice(b"Connection: close\r\n");
    }
    out.put_slice(b"\r\n");
}

/// Files by name.
#[derive(Debug, Clone, Default)]
pub struct StaticFiles {
    files: HashMap<String, StaticFile>,
}

impl StaticFiles {
    /// No files.
    pub fn new() -> StaticFiles {
        StaticFiles::default()
    }
    /// Adds (or replaces) a file.
    pub fn insert(&mut self, name: impl Into<String>, file: StaticFile) {
        self.files.insert(name.into(), file);
    }
    /// The file called `name`.
    pub fn get(&self, name: &str) -> Option<&StaticFile> {
        self.files.get(name)
    }
    /// Number of files.
    pub fn len(&self) -> usize {
        self.files.len()
    }
    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// The name Node's socket.io extracts from a request under `path` (`/socket.io/x.js?v=1` ->
/// `x.js`): what follows the path, when the request path is exactly `<path>/<name>`.
pub fn file_name<'a>(request_path: &'a str, path: &str) -> Option<&'a str> {
    let base = path.trim_end_matches('/');
    request_path
        .strip_prefix(base)?
        .strip_prefix('/')
        .filter(|n| !n.is_empty())
}

/// A deterministic ETag from content (64-bit FNV-1a, hex, quoted): used for the client bundle
/// when its package version cannot be read.
pub fn content_etag(parts: &[&[u8]]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in *p {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("\"{h:016x}\"")
}
