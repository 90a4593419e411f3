//! Byte-exact wire tests against an in-process conformance server, each run under every
//! configuration: driver {Auto (io_uring), Epoll} x shards {1, 2}.
//!
//! With 2 shards, SO_REUSEPORT spreads connections by hash, so tests that care about
//! cross-shard forwarding open many fresh connections per session (every `get`/`post` helper
//! uses a new connection) or repeat over several sessions.

#[path = "../common/mod.rs"]
mod common;

mod bad_input;
mod engine;
mod heartbeat_upgrade;
mod hooks;
mod options;
mod polling;
mod socketio;

use common::*;
use ringio::proto::ws::{Message, OpCode};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const SIO: &str = "/socket.io/";
const EIO: &str = "/engine.io/";

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json_error(code: u8, message: &str) -> String {
    format!(r#"{{"code":{code},"message":"{message}"}}"#)
}

/// Asserts an Engine.IO JSON error answer.
fn assert_eio_error(r: &Resp, code: u8, message: &str, what: &str) {
    assert_eq!(
        (r.status, r.text()),
        (400, json_error(code, message)),
        "{what}"
    );
    assert_eq!(r.header("content-type"), Some("application/json"), "{what}");
}

/// Collects at least `n` non-ping packets from polling GETs (answering pings with a `3` POST).
fn poll_packets(addr: SocketAddr, path: &str, sid: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut out = Vec::new();
    while out.len() < n {
        assert!(Instant::now() < deadline, "only got {out:?}");
        let r = request(addr, "GET", &poll_url(path, sid), b"");
        assert_eq!(r.status, 200, "poll GET: {}", r.text());
        let mut pinged = false;
        for p in split_payload(&r.body) {
            if p == b"2" {
                pinged = true;
            } else {
                out.push(s(&p));
            }
        }
        if pinged {
            let r = request(addr, "POST", &poll_url(path, sid), b"3");
            assert_eq!((r.status, r.text()), (200, "ok".into()));
        }
    }
    out
}

fn poll_post(addr: SocketAddr, path: &str, sid: &str, body: &[u8]) {
    let r = request(addr, "POST", &poll_url(path, sid), body);
    assert_eq!(
        (r.status, r.text()),
        (200, "ok".to_string()),
        "POST {:?}",
        s(body)
    );
    assert_eq!(r.header("content-type"), Some("text/html"));
}

fn assert_sid_like(id: &str) {
    assert_eq!(id.len(), 24, "id {id:?}");
    assert!(
        id.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
        "id {id:?}"
    );
}

/// `40[<nsp>,]{"sid":"<24>"}` byte for byte; returns the socket id.
fn check_connect_ok(text: &str, nsp_prefix: &str) -> String {
    let head = format!(r#"40{nsp_prefix}{{"sid":""#);
    let rest = text
        .strip_prefix(&head)
        .and_then(|r| r.strip_suffix(r#""}"#))
        .unwrap_or_else(|| panic!("connect answer {text:?}"));
    assert_sid_like(rest);
    assert_eq!(text, format!(r#"{head}{rest}"}}"#));
    rest.to_string()
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}
