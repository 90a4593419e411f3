//! Helpers for the wire tests: an in-process conformance server, a tiny blocking HTTP/1.1 client,
//! a tiny blocking WebSocket client on the crate's sans-IO codec, and a runner that executes a
//! test body under every driver x shard-count configuration.
//!
//! Every read has a timeout, so a misbehaving server fails a test instead of hanging it.
#![allow(dead_code)]

pub mod node;

use bytes::BytesMut;
use ringio::proto::ws::{accept_key, client_frame, Decoder, Message, OpCode, Role};
use ringio::{
    AckSender, ConnectError, Driver, RawArgs, RunningServer, Server, ServerBuilder, Socket,
};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Default timeout of a single read.
pub const READ_TIMEOUT: Duration = Duration::from_secs(2);

// ---------------------------------------------------------------------------------------------
// server
// ---------------------------------------------------------------------------------------------

/// The handler set of `ringio conformance` (`ringio::demo::conformance`), plus a `/mw`
/// namespace guarded by [`refuse_unless_secret`], listening on 127.0.0.1:0.
pub fn start(shards: usize, driver: Driver) -> RunningServer {
    ringio::demo::conformance(Server::builder())
        .shards(shards)
        .driver(driver)
        .ns("/mw", |ns| {
            ns.use_middleware(refuse_unless_secret);
            ns.on_connect(|socket| {
                socket.emit("auth", ringio::args::RawJson(socket.auth_raw().to_string()));
            });
        })
        .build()
        .listen("127.0.0.1:0".parse().unwrap())
        .expect("listen on 127.0.0.1:0")
}

/// Connect middleware: accepts `auth.token == "secret"`, else CONNECT_ERROR
/// `{"message":"not authorized","data":{"code":401}}`.
pub fn refuse_unless_secret(socket: &Socket) -> Result<(), ConnectError> {
    if socket.auth_field::<String>("token").as_deref() == Some("secret") {
        Ok(())
    } else {
        Err(ConnectError::new("not authorized").with_data(&sonic_rs::json!({"code": 401})))
    }
}

/// The handler set of `tests/js/reference-server.mjs` (the JS interop suite and the Rust client
/// tests): the bench set, plus `drop-transport` and `ask` on `/`, `echo` on `/custom`, and
/// `/secure` behind [`refuse_unless_secret`] emitting `welcome` with the auth payload.
pub fn interop(builder: ServerBuilder) -> ServerBuilder {
    fn echo(socket: Socket, args: RawArgs, ack: AckSender) {
        if ack.expected() {
            ack.send(args)
        } else {
            socket.emit("echo", args);
        }
    }
    ringio::demo::bench(builder)
        .ns("/", |ns| {
            ns.on(
                "drop-transport",
                |socket: Socket, _: (), _ack: AckSender| socket.close_connection(),
            );
            ns.on(
                "except-me",
                |socket: Socket, args: RawArgs, ack: AckSender| {
                    let room: String = args.get(0).unwrap_or_default();
                    socket.to(&room).emit("b", args.only(1));
                    ack.send((true,));
                },
            );
            ns.on(
                "disconnect-all",
                |socket: Socket, _: (), _ack: AckSender| socket.disconnect_client(),
            );
            ns.on_async(
                "ask",
                |socket: Socket, (x,): (sonic_rs::Value,), ack: AckSender| async move {
                    match socket
                        .emit_with_ack("question", (x,), Duration::from_millis(500))
                        .await
                    {
                        Ok(args) => ack.send(args),
                        Err(_) => ack.send(("timeout",)),
                    }
                },
            );
        })
        .ns("/custom", |ns| {
            ns.on("echo", echo);
        })
        .ns("/secure", |ns| {
            ns.use_middleware(refuse_unless_secret);
            ns.on_connect(|socket| {
                socket.emit(
                    "welcome",
                    ringio::args::RawJson(socket.auth_raw().to_string()),
                );
            });
        })
}

/// One server configuration under test.
#[derive(Debug, Clone, Copy)]
pub struct Ctx {
    pub addr: SocketAddr,
    pub shards: usize,
    pub driver: Driver,
}

/// The four configurations: {Auto (io_uring here), Epoll} x {1, 2} shards.
pub const CONFIGS: [(Driver, usize); 4] = [
    (Driver::Auto, 1),
    (Driver::Auto, 2),
    (Driver::Epoll, 1),
    (Driver::Epoll, 2),
];

/// Runs `f` against a fresh server of one configuration, shut down afterwards; `Err` carries
/// the panic message of a failure.
pub fn with_config(driver: Driver, shards: usize, f: impl Fn(&Ctx)) -> Result<(), String> {
    let server = start(shards, driver);
    let ctx = Ctx {
        addr: server.local_addr(),
        shards,
        driver,
    };
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&ctx)));
    server.shutdown();
    res.map_err(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

/// Runs `f` once per configuration (all four, even after a failure); fails listing every
/// configuration that failed.
pub fn each_config_ctx(f: impl Fn(&Ctx)) {
    let mut failed = Vec::new();
    for (driver, shards) in CONFIGS {
        match with_config(driver, shards, &f) {
            Ok(()) => println!("[driver {driver:?}, {shards} shard(s)] ok"),
            Err(m) => failed.push(format!("[driver {driver:?}, {shards} shard(s)] {m}")),
        }
    }
    if !failed.is_empty() {
        panic!(
            "{} of {} configurations failed:\n{}",
            failed.len(),
            CONFIGS.len(),
            failed.join("\n")
        );
    }
}

/// [`each_config_ctx`] for bodies that only need the address.
pub fn each_config(f: impl Fn(SocketAddr)) {
    each_config_ctx(|c| f(c.addr))
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, READ_TIMEOUT).expect("connect");
    s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
    let _ = s.set_nodelay(true);
    s
}

/// Finds the end of an HTTP head (`\r\n\r\n`), returning the index after it.
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Parses a response head: (status, headers).
fn parse_head(head: &[u8]) -> (u16, Vec<(String, String)>) {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    assert!(
        version.starts_with("HTTP/1."),
        "bad status line {status_line:?}"
    );
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers)
}

/// Reads one response (head + Content-Length body) from `stream`, keeping extra bytes in `buf`.
/// Panics on timeout or EOF before a complete response.
fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Resp {
    let deadline = Instant::now() + READ_TIMEOUT;
    let mut tmp = [0u8; 16384];
    let end = loop {
        if let Some(e) = head_end(buf) {
            break e;
        }
        assert!(
            Instant::now() < deadline,
            "timed out reading a response head"
        );
        match stream.read(&mut tmp) {
            Ok(0) => panic!(
                "EOF before a complete response head; got {:?}",
                String::from_utf8_lossy(buf)
            ),
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
            Err(e) => panic!(
                "reading a response head: {e}; got {:?}",
                String::from_utf8_lossy(buf)
            ),
        }
    };
    let (status, headers) = parse_head(&buf[..end]);
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map(|(_, v)| v.parse().expect("numeric Content-Length"))
        .unwrap_or(0);
    while buf.len() < end + len {
        assert!(
            Instant::now() < deadline,
            "timed out reading a response body"
        );
        match stream.read(&mut tmp) {
            Ok(0) => panic!("EOF inside a response body"),
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
            Err(e) => panic!("reading a response body: {e}"),
        }
    }
    let body = buf[end..end + len].to_vec();
    buf.drain(..end + len);
    Resp {
        status,
        headers,
        body,
    }
}

fn request_bytes(method: &str, pq: &str, body: &[u8], keep_alive: bool) -> Vec<u8> {
    let mut req = format!("{method} {pq} HTTP/1.1\r\nHost: localhost\r\n");
    if method == "POST" {
        req.push_str(&format!(
            "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    if !keep_alive {
        req.push_str("Connection: close\r\n");
    }
    req.push_str("\r\n");
    let mut out = req.into_bytes();
    out.extend_from_slice(body);
    out
}

/// One request on a fresh connection (`Connection: close`).
pub fn request(addr: SocketAddr, method: &str, pq: &str, body: &[u8]) -> Resp {
    let mut s = connect(addr);
    s.write_all(&request_bytes(method, pq, body, false))
        .expect("write request");
    read_response(&mut s, &mut Vec::new())
}

/// `GET` on a fresh connection: (status, headers, body).
pub fn get(addr: SocketAddr, pq: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let r = request(addr, "GET", pq, b"");
    (r.status, r.headers, r.body)
}

/// `POST` on a fresh connection: (status, headers, body).
pub fn post(addr: SocketAddr, pq: &str, body: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let r = request(addr, "POST", pq, body);
    (r.status, r.headers, r.body)
}

/// Sends `bytes` on a fresh connection, then reads until EOF (or error) or 2 s.
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    raw_timeout(addr, bytes, READ_TIMEOUT)
}

/// [`raw`] with a chosen overall timeout.
pub fn raw_timeout(addr: SocketAddr, bytes: &[u8], timeout: Duration) -> Vec<u8> {
    let mut s = connect(addr);
    // the server may answer and close before reading everything: ignore write errors
    let _ = s.write_all(bytes);
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut tmp = [0u8; 16384];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut tmp) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&tmp[..n]),
        }
    }
    out
}

/// Parses a raw response (as returned by [`raw`]).
pub fn parse_raw(bytes: &[u8]) -> Resp {
    let end = head_end(bytes).unwrap_or_else(|| {
        panic!(
            "no complete response head in {:?}",
            String::from_utf8_lossy(bytes)
        )
    });
    let (status, headers) = parse_head(&bytes[..end]);
    Resp {
        status,
        headers,
        body: bytes[end..].to_vec(),
    }
}

/// A keep-alive HTTP/1.1 connection (several requests on one socket).
pub struct HttpConn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl HttpConn {
    pub fn open(addr: SocketAddr) -> HttpConn {
        HttpConn {
            stream: connect(addr),
            buf: Vec::new(),
        }
    }
    /// Sends a request without reading the answer.
    pub fn send(&mut self, method: &str, pq: &str, body: &[u8]) {
        self.stream
            .write_all(&request_bytes(method, pq, body, true))
            .expect("write request");
    }
    /// Reads one answer.
    pub fn read(&mut self) -> Resp {
        read_response(&mut self.stream, &mut self.buf)
    }
    pub fn request(&mut self, method: &str, pq: &str, body: &[u8]) -> Resp {
        self.send(method, pq, body);
        self.read()
    }
    /// True when the server closed the connection (EOF or reset) within `timeout`; bytes that
    /// arrive before are discarded.
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut tmp = [0u8; 1024];
        let closed = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break false;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.stream.read(&mut tmp) {
                Ok(0) => break true,
                Ok(_) => {}
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    break false
                }
                Err(_) => break true,
            }
        };
        self.stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        closed
    }
}

// ---------------------------------------------------------------------------------------------
// Engine.IO helpers
// ---------------------------------------------------------------------------------------------

/// Splits a polling payload on the record separator.
pub fn split_payload(body: &[u8]) -> Vec<Vec<u8>> {
    body.split(|&b| b == 0x1e).map(|p| p.to_vec()).collect()
}

/// Checks an open packet byte for byte (sid substituted) and returns the sid.
pub fn check_open(packet: &[u8], upgrades: &str) -> String {
    let s = std::str::from_utf8(packet).expect("open packet is UTF-8");
    let rest = s
        .strip_prefix(r#"0{"sid":""#)
        .unwrap_or_else(|| panic!("open packet {s:?}"));
    assert!(rest.len() >= 24, "open packet {s:?}");
    let sid = &rest[..24];
    assert!(
        sid.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
        "sid {sid:?}"
    );
    let want = format!(
        r#"0{{"sid":"{sid}","upgrades":{upgrades},"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}}"#
    );
    assert_eq!(s, want, "open packet");
    sid.to_string()
}

/// The owner shard of a sid (its last two base64url characters).
pub fn sid_shard(sid: &str) -> usize {
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let b = sid.as_bytes();
    let v = |c: u8| B64.iter().position(|&x| x == c).unwrap();
    (v(b[22]) << 6) | v(b[23])
}

/// Polling handshake on `path` (e.g. `/socket.io/`); returns the sid.
pub fn polling_handshake(addr: SocketAddr, path: &str) -> String {
    let (status, _, body) = get(addr, &format!("{path}?EIO=4&transport=polling"));
    assert_eq!(status, 200, "handshake: {}", String::from_utf8_lossy(&body));
    check_open(&body, r#"["websocket"]"#)
}

pub fn poll_url(path: &str, sid: &str) -> String {
    format!("{path}?EIO=4&transport=polling&sid={sid}")
}

// ---------------------------------------------------------------------------------------------
// WebSocket
// ---------------------------------------------------------------------------------------------

/// What one read of the WebSocket client saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsEvent {
    Msg(Message),
    /// The server closed the TCP connection (EOF or reset).
    Eof,
    /// Nothing within the timeout.
    Timeout,
    /// The server sent a frame the client codec refused.
    Protocol(String),
}

/// A blocking WebSocket client (masked frames, server frames decoded by the crate's codec).
pub struct Ws {
    pub stream: TcpStream,
    buf: BytesMut,
    dec: Decoder,
    mask: u32,
    eof: bool,
}

const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn upgrade_request(pq: &str) -> String {
    format!(
        "GET {pq} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {WS_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

impl Ws {
    /// Connects and upgrades; panics unless the server answers 101 with the right accept key.
    pub fn connect(addr: SocketAddr, pq: &str) -> Ws {
        match Ws::try_connect(addr, pq) {
            Ok(ws) => ws,
            Err(r) => panic!(
                "websocket upgrade of {pq} refused: {} {:?}",
                r.status,
                r.text()
            ),
        }
    }

    /// Connects; `Err` carries a non-101 answer.
    pub fn try_connect(addr: SocketAddr, pq: &str) -> Result<Ws, Resp> {
        let mut stream = connect(addr);
        stream
            .write_all(upgrade_request(pq).as_bytes())
            .expect("write upgrade request");
        // keep whatever follows the head for the frame decoder
        let mut buf = Vec::new();
        let deadline = Instant::now() + READ_TIMEOUT;
        let mut tmp = [0u8; 4096];
        let end = loop {
            if let Some(e) = head_end(&buf) {
                break e;
            }
            assert!(Instant::now() < deadline, "timed out waiting for the 101");
            match stream.read(&mut tmp) {
                Ok(0) => panic!(
                    "EOF before the upgrade answer; got {:?}",
                    String::from_utf8_lossy(&buf)
                ),
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
                Err(e) => panic!("reading the upgrade answer: {e}"),
            }
        };
        let (status, headers) = parse_head(&buf[..end]);
        if status != 101 {
            let mut resp_buf = buf;
            // complete the body if any
            let len: usize = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            while resp_buf.len() < end + len {
                match stream.read(&mut tmp) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => resp_buf.extend_from_slice(&tmp[..n]),
                }
            }
            let body = resp_buf[end..(end + len).min(resp_buf.len())].to_vec();
            return Err(Resp {
                status,
                headers,
                body,
            });
        }
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        assert_eq!(
            get("sec-websocket-accept"),
            accept_key(WS_KEY.as_bytes()),
            "Sec-WebSocket-Accept"
        );
        assert!(
            get("upgrade").eq_ignore_ascii_case("websocket"),
            "Upgrade header"
        );
        assert!(
            get("connection").to_ascii_lowercase().contains("upgrade"),
            "Connection header"
        );
        let mut rest = BytesMut::new();
        rest.extend_from_slice(&buf[end..]);
        Ok(Ws {
            stream,
            buf: rest,
            dec: Decoder::new(Role::Client, 64 << 20),
            mask: 0x1234_5678,
            eof: false,
        })
    }

    fn next_mask(&mut self) -> [u8; 4] {
        // xorshift32: masks vary between frames like a real client's
        let mut x = self.mask;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.mask = x;
        x.to_be_bytes()
    }

    pub fn send_frame(&mut self, op: OpCode, payload: &[u8]) {
        let m = self.next_mask();
        let f = client_frame(op, payload, m);
        self.send_raw(&f);
    }
    pub fn send_text(&mut self, s: &str) {
        self.send_frame(OpCode::Text, s.as_bytes());
    }
    pub fn send_binary(&mut self, b: &[u8]) {
        self.send_frame(OpCode::Binary, b);
    }
    /// Writes bytes as they are (hand-made frames). Write errors are ignored: the server may
    /// already have closed a connection it refuses.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    /// Reads the next frame within `timeout`.
    pub fn recv_event(&mut self, timeout: Duration) -> WsEvent {
        let deadline = Instant::now() + timeout;
        let mut tmp = [0u8; 65536];
        loop {
            match self.dec.decode(&mut self.buf) {
                Ok(Some(m)) => return WsEvent::Msg(m),
                Ok(None) => {}
                Err(e) => return WsEvent::Protocol(e.to_string()),
            }
            if self.eof {
                return WsEvent::Eof;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return WsEvent::Timeout;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.stream.read(&mut tmp) {
                Ok(0) => self.eof = true,
                Ok(n) => self.buf.extend_from_slice(&tmp[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return WsEvent::Timeout
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => self.eof = true,
            }
        }
    }

    /// The next message within 2 s, `None` on EOF, timeout or a protocol error.
    pub fn recv(&mut self) -> Option<Message> {
        match self.recv_event(READ_TIMEOUT) {
            WsEvent::Msg(m) => Some(m),
            _ => None,
        }
    }

    /// The next message that is not an Engine.IO ping (`2`); pings are answered with `3` so the
    /// session stays alive.
    pub fn recv_skip_pings(&mut self) -> Option<Message> {
        self.recv_skip_pings_timeout(READ_TIMEOUT)
    }

    pub fn recv_skip_pings_timeout(&mut self, timeout: Duration) -> Option<Message> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv_event(left) {
                WsEvent::Msg(Message::Text(t)) if &t[..] == b"2" => self.send_text("3"),
                WsEvent::Msg(m) => return Some(m),
                _ => return None,
            }
        }
    }

    /// The next non-ping message, which must be text; returns it as a String.
    pub fn recv_text(&mut self) -> String {
        match self.recv_skip_pings() {
            Some(Message::Text(t)) => String::from_utf8(t.to_vec()).unwrap(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// The next non-ping message, which must be binary.
    pub fn recv_binary(&mut self) -> Vec<u8> {
        match self.recv_skip_pings() {
            Some(Message::Binary(b)) => b.to_vec(),
            other => panic!("expected a binary frame, got {other:?}"),
        }
    }

    /// Waits for the server to end the connection: returns the close frame's code (None for a
    /// close frame without code, or EOF without a close frame) and whether a close frame came.
    /// Data frames before it are skipped (pings answered). Panics on timeout.
    pub fn expect_closed(&mut self, timeout: Duration) -> (bool, Option<u16>) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv_event(left) {
                WsEvent::Msg(Message::Close(c)) => return (true, c.map(|(code, _)| code)),
                WsEvent::Msg(Message::Text(t)) if &t[..] == b"2" => self.send_text("3"),
                WsEvent::Msg(_) => {}
                WsEvent::Eof => return (false, None),
                WsEvent::Protocol(e) => panic!("server sent an invalid frame: {e}"),
                WsEvent::Timeout => {
                    panic!("the server did not close the connection within {timeout:?}")
                }
            }
        }
    }

    /// After a close frame: true when the TCP connection is closed within `timeout`.
    pub fn eof_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv_event(left) {
                WsEvent::Eof => return true,
                WsEvent::Timeout => return false,
                _ => {}
            }
        }
    }
}

/// A WebSocket-only Engine.IO session (`transport=websocket`, no sid): (client, sid).
pub fn ws_session(addr: SocketAddr, path: &str) -> (Ws, String) {
    let mut ws = Ws::connect(addr, &format!("{path}?EIO=4&transport=websocket"));
    let open = match ws.recv() {
        Some(Message::Text(t)) => t,
        other => panic!("expected the open packet, got {other:?}"),
    };
    let sid = check_open(&open, "[]");
    (ws, sid)
}

/// A Socket.IO client connected to `/` over WebSocket (`40` sent, `40{..}` and the auth event
/// consumed).
pub fn sio_ws(addr: SocketAddr) -> Ws {
    let (mut ws, _) = ws_session(addr, "/socket.io/");
    ws.send_text("40");
    let ok = ws.recv_text();
    assert!(ok.starts_with(r#"40{"sid":""#), "connect answer {ok:?}");
    assert_eq!(ws.recv_text(), r#"42["auth",{}]"#);
    ws
}

/// Raw Engine.IO WebSocket sessions on `/engine.io/` used to check that every shard still
/// serves after bad input: one session per shard at least (found from the sid's owner shard).
/// Each runs on its own thread that answers pings, so the sessions stay alive however long the
/// test body takes between checks.
pub struct Witnesses {
    witnesses: Vec<Witness>,
}

struct Witness {
    sid: String,
    tx: std::sync::mpsc::Sender<(String, std::sync::mpsc::Sender<Result<(), String>>)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Witness {
    fn spawn(mut ws: Ws, sid: String) -> Witness {
        let (tx, rx) =
            std::sync::mpsc::channel::<(String, std::sync::mpsc::Sender<Result<(), String>>)>();
        let thread = std::thread::spawn(move || {
            use std::sync::mpsc::TryRecvError;
            let mut dead: Option<String> = None;
            loop {
                match rx.try_recv() {
                    Ok((tag, reply)) => {
                        if let Some(d) = &dead {
                            let _ = reply.send(Err(d.clone()));
                            continue;
                        }
                        let msg = format!("4alive-{tag}");
                        ws.send_text(&msg);
                        let res = match ws.recv_skip_pings() {
                            Some(Message::Text(t)) if t[..] == *msg.as_bytes() => Ok(()),
                            other => Err(format!("expected {msg:?}, got {other:?}")),
                        };
                        if let Err(e) = &res {
                            dead = Some(e.clone());
                        }
                        let _ = reply.send(res);
                    }
                    Err(TryRecvError::Disconnected) => return,
                    Err(TryRecvError::Empty) => {
                        if dead.is_some() {
                            std::thread::sleep(Duration::from_millis(20));
                            continue;
                        }
                        match ws.recv_event(Duration::from_millis(20)) {
                            WsEvent::Timeout => {}
                            WsEvent::Msg(Message::Text(t)) if &t[..] == b"2" => ws.send_text("3"),
                            other => dead = Some(format!("unexpected while idle: {other:?}")),
                        }
                    }
                }
            }
        });
        Witness {
            sid,
            tx,
            thread: Some(thread),
        }
    }
}

impl Drop for Witness {
    fn drop(&mut self) {
        let (tx, _) = std::sync::mpsc::channel();
        drop(std::mem::replace(&mut self.tx, tx));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Witnesses {
    pub fn open(ctx: &Ctx) -> Witnesses {
        let mut witnesses = Vec::new();
        let mut seen = vec![false; ctx.shards];
        for _ in 0..64 {
            let (ws, sid) = ws_session(ctx.addr, "/engine.io/");
            let sh = sid_shard(&sid);
            if !seen[sh] {
                seen[sh] = true;
                witnesses.push(Witness::spawn(ws, sid));
            }
            if seen.iter().all(|&s| s) {
                break;
            }
        }
        assert!(
            seen.iter().all(|&s| s),
            "could not get a session on every shard: {seen:?}"
        );
        Witnesses { witnesses }
    }

    /// Every witness echoes `4alive-<tag>` back.
    pub fn check(&self, tag: &str) {
        for w in &self.witnesses {
            let (tx, rx) = std::sync::mpsc::channel();
            w.tx.send((tag.to_string(), tx))
                .expect("witness thread alive");
            let res = rx
                .recv_timeout(Duration::from_secs(5))
                .unwrap_or_else(|_| Err("no answer from the witness thread".into()));
            if let Err(e) = res {
                panic!(
                    "the session {} on shard {} stopped working after {tag}: {e}",
                    w.sid,
                    sid_shard(&w.sid)
                );
            }
        }
    }
}
