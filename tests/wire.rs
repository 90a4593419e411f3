//! Byte-exact wire tests against an in-process conformance server, each run under every
//! configuration: driver {Auto (io_uring), Epoll} x shards {1, 2}.
//!
//! With 2 shards, SO_REUSEPORT spreads connections by hash, so tests that care about
//! cross-shard forwarding open many fresh connections per session (every `get`/`post` helper
//! uses a new connection) or repeat over several sessions.

mod common;

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

// ------------------------------------------------------------------------------------------------
// Engine.IO handshakes
// ------------------------------------------------------------------------------------------------

#[test]
fn polling_handshake_open_packet() {
    each_config_ctx(|c| {
        for _ in 0..4 {
            let r = request(c.addr, "GET", "/socket.io/?EIO=4&transport=polling", b"");
            assert_eq!(r.status, 200);
            assert_eq!(r.header("content-type"), Some("text/plain; charset=UTF-8"));
            assert_eq!(r.header("access-control-allow-origin"), Some("*"));
            let sid = check_open(&r.body, r#"["websocket"]"#);
            assert!(
                sid_shard(&sid) < c.shards,
                "sid {sid} names a shard that does not exist"
            );
        }
        // the raw engine endpoint hands out the same open packet
        polling_handshake(c.addr, EIO);
    });
}

#[test]
fn websocket_only_handshake_open_packet() {
    each_config_ctx(|c| {
        for path in [SIO, EIO] {
            let (mut ws, sid) = ws_session(c.addr, path);
            assert!(sid_shard(&sid) < c.shards);
            ws.send_text("1"); // close
        }
    });
}

// ------------------------------------------------------------------------------------------------
// Engine.IO errors
// ------------------------------------------------------------------------------------------------

#[test]
fn error_unknown_transport() {
    each_config(|addr| {
        for pq in [
            "/socket.io/?EIO=4&transport=foo",
            "/socket.io/?EIO=4",
            "/engine.io/?EIO=4&transport=flashsocket",
        ] {
            let r = request(addr, "GET", pq, b"");
            assert_eio_error(&r, 0, "Transport unknown", pq);
        }
    });
}

#[test]
fn error_unknown_sid() {
    each_config(|addr| {
        for pq in [
            "/socket.io/?EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAAAAAA",
            "/socket.io/?EIO=4&transport=polling&sid=abc",
            // a well-formed sid naming shard 63
            "/socket.io/?EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAAAA__",
        ] {
            let r = request(addr, "GET", pq, b"");
            assert_eio_error(&r, 1, "Session ID unknown", pq);
            let r = request(addr, "POST", pq, b"4x");
            assert_eio_error(&r, 1, "Session ID unknown", pq);
        }
        // a sid of one endpoint is unknown on the other
        let sid = polling_handshake(addr, SIO);
        let r = request(addr, "GET", &poll_url(EIO, &sid), b"");
        assert_eio_error(
            &r,
            1,
            "Session ID unknown",
            "sid of /socket.io/ on /engine.io/",
        );
    });
}

#[test]
fn error_post_handshake() {
    each_config(|addr| {
        let r = request(addr, "POST", "/socket.io/?EIO=4&transport=polling", b"40");
        assert_eio_error(&r, 2, "Bad handshake method", "POST handshake");
    });
}

#[test]
fn error_websocket_without_upgrade_headers() {
    each_config(|addr| {
        let r = request(addr, "GET", "/socket.io/?EIO=4&transport=websocket", b"");
        assert_eio_error(&r, 3, "Bad request", "transport=websocket without Upgrade");
        let sid = polling_handshake(addr, EIO);
        let pq = format!("/engine.io/?EIO=4&transport=websocket&sid={sid}");
        let r = request(addr, "GET", &pq, b"");
        assert_eio_error(
            &r,
            3,
            "Bad request",
            "transport=websocket&sid without Upgrade",
        );
    });
}

#[test]
fn error_unsupported_protocol_version() {
    each_config(|addr| {
        for pq in [
            "/socket.io/?EIO=3&transport=polling",
            "/socket.io/?transport=polling",
            "/socket.io/?EIO=5&transport=polling",
        ] {
            let r = request(addr, "GET", pq, b"");
            assert_eio_error(&r, 5, "Unsupported protocol version", pq);
        }
    });
}

#[test]
fn error_polling_on_upgraded_session() {
    each_config(|addr| {
        let sid = polling_handshake(addr, EIO);
        let mut ws = Ws::connect(
            addr,
            &format!("/engine.io/?EIO=4&transport=websocket&sid={sid}"),
        );
        ws.send_text("2probe");
        assert_eq!(ws.recv_text(), "3probe");
        ws.send_text("5");
        ws.send_text("4up");
        assert_eq!(ws.recv_text(), "4up");
        for _ in 0..8 {
            let r = request(addr, "GET", &poll_url(EIO, &sid), b"");
            assert_eio_error(&r, 3, "Bad request", "polling GET after upgrade");
            let r = request(addr, "POST", &poll_url(EIO, &sid), b"4x");
            assert_eio_error(&r, 3, "Bad request", "polling POST after upgrade");
        }
        // the websocket is unaffected
        ws.send_text("4still");
        assert_eq!(ws.recv_text(), "4still");
    });
}

// ------------------------------------------------------------------------------------------------
// polling
// ------------------------------------------------------------------------------------------------

#[test]
fn polling_echo_exact() {
    each_config(|addr| {
        let sid = polling_handshake(addr, EIO);
        let (status, headers, body) = post(addr, &poll_url(EIO, &sid), b"4hello\x1ebAQIDBA==");
        assert_eq!((status, s(&body)), (200, "ok".into()));
        assert!(headers
            .iter()
            .any(|(n, v)| n == "content-type" && v == "text/html"));
        let (status, headers, body) = get(addr, &poll_url(EIO, &sid));
        assert_eq!(status, 200);
        assert_eq!(s(&body), "4hello\x1ebAQIDBA==");
        assert!(headers
            .iter()
            .any(|(n, v)| n == "content-type" && v == "text/plain; charset=UTF-8"));
    });
}

#[test]
fn polling_echo_many_fresh_connections() {
    each_config(|addr| {
        for _ in 0..2 {
            let sid = polling_handshake(addr, EIO);
            for i in 0..16 {
                let msg = format!("4m{i}");
                let bin = format!("b{}", base64_of(&[i as u8, 0xff, 0]));
                poll_post(addr, EIO, &sid, format!("{msg}\x1e{bin}").as_bytes());
                let got = poll_packets(addr, EIO, &sid, 2);
                assert_eq!(got, vec![msg, bin], "round {i}");
            }
        }
    });
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[test]
fn polling_keep_alive_connection() {
    each_config(|addr| {
        // everything on one keep-alive connection
        let mut conn = HttpConn::open(addr);
        let r = conn.request("GET", "/engine.io/?EIO=4&transport=polling", b"");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("connection"), None);
        let sid = check_open(&r.body, r#"["websocket"]"#);
        for i in 0..5 {
            let r = conn.request("POST", &poll_url(EIO, &sid), format!("4k{i}").as_bytes());
            assert_eq!((r.status, r.text()), (200, "ok".into()));
            assert_eq!(r.header("connection"), None);
            let r = conn.request("GET", &poll_url(EIO, &sid), b"");
            assert_eq!((r.status, r.text()), (200, format!("4k{i}")));
        }
        // an Engine.IO error answer keeps the connection too
        let r = conn.request("GET", "/engine.io/?EIO=4&transport=nope", b"");
        assert_eio_error(&r, 0, "Transport unknown", "keep-alive error");
        // pipelined: two requests written at once, answered in order
        conn.send("POST", &poll_url(EIO, &sid), b"4pipe");
        conn.send("GET", &poll_url(EIO, &sid), b"");
        let r = conn.read();
        assert_eq!((r.status, r.text()), (200, "ok".into()));
        let r = conn.read();
        assert_eq!((r.status, r.text()), (200, "4pipe".into()));
        // a keep-alive connection on a session made on another connection (maybe another shard)
        for _ in 0..4 {
            let sid = polling_handshake(addr, EIO);
            let mut conn = HttpConn::open(addr);
            for i in 0..3 {
                let r = conn.request("POST", &poll_url(EIO, &sid), format!("4x{i}").as_bytes());
                assert_eq!((r.status, r.text()), (200, "ok".into()));
                let r = conn.request("GET", &poll_url(EIO, &sid), b"");
                assert_eq!((r.status, r.text()), (200, format!("4x{i}")));
            }
        }
    });
}

#[test]
fn polling_concurrent_gets() {
    each_config(|addr| {
        for _ in 0..4 {
            let sid = polling_handshake(addr, EIO);
            let mut first = HttpConn::open(addr);
            first.send("GET", &poll_url(EIO, &sid), b"");
            std::thread::sleep(Duration::from_millis(50));
            let r = request(addr, "GET", &poll_url(EIO, &sid), b"");
            // Node answers an overlapping GET with a bare 400 (ringio adds the code-3 body)
            assert_eq!(r.status, 400, "second concurrent GET: {:?}", r.text());
            let r = first.read();
            assert_eq!((r.status, r.text()), (200, "1".into()), "first GET");
            let r = request(addr, "GET", &poll_url(EIO, &sid), b"");
            assert_eio_error(&r, 1, "Session ID unknown", "GET after the session ended");
        }
    });
}

/// Polls with POSTs (answered at once while the session lives) until the sid is unknown.
fn session_gone_within(addr: SocketAddr, sid: &str, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let r = request(addr, "POST", &poll_url(SIO, sid), b"6");
        if r.status == 400 {
            assert_eio_error(&r, 1, "Session ID unknown", "POST after the session ended");
            return true;
        }
        assert_eq!((r.status, r.text()), (200, "ok".into()), "POST while alive");
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn polling_client_gone_mid_request() {
    // Node: a client that drops a pending GET ("poll connection closed prematurely") or a POST
    // before its body is complete ("data request connection closed prematurely") ends the
    // session with "transport error" at once; the sid is unknown from then on. On `/socket.io/`
    // the heartbeat and the connect timeout are 20 s here, so only the closed connection can end
    // the sessions within the 1 s allowed.
    let mut failed = Vec::new();
    for (driver, shards) in CONFIGS {
        let server = ringio::demo::conformance(ringio::Server::builder())
            .ping_interval(Duration::from_secs(20))
            .ping_timeout(Duration::from_secs(20))
            .connect_timeout(Duration::from_secs(20))
            .shards(shards)
            .driver(driver)
            .build()
            .listen("127.0.0.1:0".parse().unwrap())
            .expect("listen");
        let addr = server.local_addr();
        let res = std::panic::catch_unwind(|| client_gone_mid_request(addr));
        server.shutdown();
        if let Err(e) = res {
            let msg = e.downcast_ref::<String>().cloned().unwrap_or_default();
            failed.push(format!("{driver:?} x {shards}: {msg}"));
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

/// A polling handshake on `/socket.io/` (any heartbeat); returns the sid.
fn long_heartbeat_handshake(addr: SocketAddr) -> String {
    let (status, _, body) = get(addr, &format!("{SIO}?EIO=4&transport=polling"));
    let text = String::from_utf8(body).expect("utf-8 open packet");
    assert_eq!(status, 200, "handshake: {text}");
    assert!(
        text.contains(r#""pingInterval":20000"#),
        "open packet: {text}"
    );
    let start = text.find(r#""sid":""#).expect("sid") + 7;
    let len = text[start..].find('"').expect("sid end");
    text[start..start + len].to_string()
}

fn client_gone_mid_request(addr: SocketAddr) {
    let limit = Duration::from_secs(1);
    for i in 0..4 {
        let sid = long_heartbeat_handshake(addr);
        let mut conn = HttpConn::open(addr);
        conn.send("GET", &poll_url(SIO, &sid), b"");
        std::thread::sleep(Duration::from_millis(50));
        drop(conn);
        assert!(
            session_gone_within(addr, &sid, limit),
            "GET {i} (owner shard {}): session still alive after the client left",
            sid_shard(&sid)
        );

        let sid = long_heartbeat_handshake(addr);
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n6",
            poll_url(SIO, &sid)
        );
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        std::io::Write::write_all(&mut s, head.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        drop(s);
        assert!(
            session_gone_within(addr, &sid, limit),
            "POST {i} (owner shard {}): session still alive after the client left",
            sid_shard(&sid)
        );
    }
    // a GET answered normally leaves the session and its connection usable
    let sid = long_heartbeat_handshake(addr);
    let mut conn = HttpConn::open(addr);
    conn.send("GET", &poll_url(SIO, &sid), b"");
    std::thread::sleep(Duration::from_millis(20));
    let r = request(addr, "POST", &poll_url(SIO, &sid), b"40");
    assert_eq!((r.status, r.text()), (200, "ok".into()));
    let r = conn.read();
    assert_eq!(r.status, 200);
    assert!(r.text().starts_with("40{"), "CONNECT reply: {}", r.text());
    let r = conn.request("POST", &poll_url(SIO, &sid), br#"42["message","x"]"#);
    assert_eq!((r.status, r.text()), (200, "ok".into()));
    let mut got = String::new();
    while !got.contains(r#"42["message-back","x"]"#) {
        let r = conn.request("GET", &poll_url(SIO, &sid), b"");
        assert_eq!(r.status, 200, "{}", r.text());
        got.push_str(&r.text());
    }
}

#[test]
fn polling_post_over_max_payload() {
    each_config(|addr| {
        for i in 0..8 {
            let sid = polling_handshake(addr, EIO);
            let head = format!(
                "POST {} HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: 1000001\r\n\r\n",
                poll_url(EIO, &sid)
            );
            let r = parse_raw(&raw(addr, head.as_bytes()));
            assert_eq!(r.status, 413, "session {i}: {:?}", r.text());
            let r = request(addr, "GET", &poll_url(EIO, &sid), b"");
            assert_eio_error(
                &r,
                1,
                "Session ID unknown",
                &format!("session {i} (owner shard {}) after a 413", sid_shard(&sid)),
            );
        }
    });
}

// ------------------------------------------------------------------------------------------------
// upgrade
// ------------------------------------------------------------------------------------------------

#[test]
fn upgrade_polling_to_websocket() {
    each_config(|addr| {
        for i in 0..8 {
            let sid = polling_handshake(addr, EIO);
            let mut pending = HttpConn::open(addr);
            pending.send("GET", &poll_url(EIO, &sid), b"");
            std::thread::sleep(Duration::from_millis(20));
            let pq = format!("/engine.io/?EIO=4&transport=websocket&sid={sid}");
            let mut ws = Ws::connect(addr, &pq);
            ws.send_text("2probe");
            match ws.recv() {
                Some(Message::Text(t)) => assert_eq!(s(&t), "3probe", "session {i}"),
                other => panic!("session {i}: expected 3probe, got {other:?}"),
            }
            let r = pending.read();
            assert_eq!(
                (r.status, r.text()),
                (200, "6".into()),
                "pending GET, session {i}"
            );
            ws.send_text("5");
            ws.send_text("4hello");
            assert_eq!(ws.recv_text(), "4hello", "session {i}");
            ws.send_binary(&[1, 2, 3, 4]);
            assert_eq!(ws.recv_binary(), vec![1, 2, 3, 4]);
            // a second websocket on the same sid: 101, then a close frame
            let mut second = Ws::connect(addr, &pq);
            match second.recv_event(Duration::from_secs(2)) {
                WsEvent::Msg(Message::Close(_)) => {}
                other => {
                    panic!("second websocket, session {i}: expected a close frame, got {other:?}")
                }
            }
            // the first keeps working
            ws.send_text("4again");
            assert_eq!(ws.recv_text(), "4again", "session {i}");
        }
    });
}

#[test]
fn upgrade_messages_queued_before_upgrade_are_delivered() {
    each_config(|addr| {
        for i in 0..4 {
            let sid = polling_handshake(addr, EIO);
            let pq = format!("/engine.io/?EIO=4&transport=websocket&sid={sid}");
            let mut ws = Ws::connect(addr, &pq);
            ws.send_text("2probe");
            assert_eq!(ws.recv_text(), "3probe");
            // queued while upgrading, over polling, not yet fetched
            poll_post(addr, EIO, &sid, b"4queued");
            ws.send_text("5");
            assert_eq!(ws.recv_text(), "4queued", "session {i}");
        }
    });
}

// ------------------------------------------------------------------------------------------------
// heartbeat
// ------------------------------------------------------------------------------------------------

#[test]
fn heartbeat_ping_after_interval() {
    each_config(|addr| {
        let (mut ws, _) = ws_session(addr, EIO);
        let t0 = Instant::now();
        match ws.recv_event(Duration::from_millis(1500)) {
            WsEvent::Msg(Message::Text(t)) => assert_eq!(s(&t), "2"),
            other => panic!("expected a ping, got {other:?}"),
        }
        let at = t0.elapsed();
        assert!(at >= Duration::from_millis(250), "ping too early: {at:?}");
        assert!(at <= Duration::from_millis(700), "ping too late: {at:?}");
        ws.send_text("3");
    });
}

#[test]
fn heartbeat_no_pong_closes() {
    each_config(|addr| {
        let (mut ws, _) = ws_session(addr, EIO);
        let t0 = Instant::now();
        match ws.recv_event(Duration::from_millis(1500)) {
            WsEvent::Msg(Message::Text(t)) => assert_eq!(s(&t), "2"),
            other => panic!("expected a ping, got {other:?}"),
        }
        // no pong: closed ~200 ms after the ping (500 ms after the open)
        let closed_at = match ws.recv_event(Duration::from_millis(1000)) {
            WsEvent::Msg(Message::Close(_)) | WsEvent::Eof => t0.elapsed(),
            WsEvent::Msg(m) => panic!("unexpected frame before the close: {m:?}"),
            WsEvent::Timeout => panic!("not closed 1 s after an unanswered ping"),
            WsEvent::Protocol(e) => panic!("invalid frame: {e}"),
        };
        assert!(
            closed_at >= Duration::from_millis(430),
            "closed too early: {closed_at:?}"
        );
        assert!(
            closed_at <= Duration::from_millis(900),
            "closed too late: {closed_at:?}"
        );
        assert!(
            ws.eof_within(Duration::from_secs(1)),
            "TCP not closed after the close frame"
        );
    });
}

#[test]
fn heartbeat_pong_keeps_alive() {
    each_config(|addr| {
        let (mut ws, _) = ws_session(addr, EIO);
        let t0 = Instant::now();
        let mut pings = 0;
        while t0.elapsed() < Duration::from_millis(1300) {
            match ws.recv_event(Duration::from_millis(100)) {
                WsEvent::Timeout => {}
                WsEvent::Msg(Message::Text(t)) if &t[..] == b"2" => {
                    pings += 1;
                    ws.send_text("3");
                }
                other => panic!("at {:?}: {other:?}", t0.elapsed()),
            }
        }
        assert!(pings >= 3, "only {pings} pings in 1.3 s");
        ws.send_text("4alive");
        assert_eq!(ws.recv_text(), "4alive");
    });
}

#[test]
fn heartbeat_polling_session() {
    each_config(|addr| {
        let sid = polling_handshake(addr, EIO);
        let t0 = Instant::now();
        let r = request(addr, "GET", &poll_url(EIO, &sid), b"");
        let at = t0.elapsed();
        assert_eq!((r.status, r.text()), (200, "2".into()));
        assert!(at >= Duration::from_millis(200), "ping too early: {at:?}");
        poll_post(addr, EIO, &sid, b"3");
        // no pong this time: the session ends
        let r = request(addr, "GET", &poll_url(EIO, &sid), b"");
        assert_eq!((r.status, r.text()), (200, "2".into()));
        std::thread::sleep(Duration::from_millis(350));
        let r = request(addr, "GET", &poll_url(EIO, &sid), b"");
        assert_eio_error(&r, 1, "Session ID unknown", "after a ping timeout");
    });
}

// ------------------------------------------------------------------------------------------------
// Socket.IO
// ------------------------------------------------------------------------------------------------

#[test]
fn sio_connect_root() {
    each_config(|addr| {
        let (mut ws, _) = ws_session(addr, SIO);
        ws.send_text("40");
        check_connect_ok(&ws.recv_text(), "");
        assert_eq!(ws.recv_text(), r#"42["auth",{}]"#);
        // with an auth payload
        let (mut ws, _) = ws_session(addr, SIO);
        ws.send_text(r#"40{"token":"abc"}"#);
        check_connect_ok(&ws.recv_text(), "");
        assert_eq!(ws.recv_text(), r#"42["auth",{"token":"abc"}]"#);
    });
}

#[test]
fn sio_connect_custom_namespace_with_auth() {
    each_config(|addr| {
        let (mut ws, _) = ws_session(addr, SIO);
        ws.send_text(r#"40/custom,{"token":"abc"}"#);
        check_connect_ok(&ws.recv_text(), "/custom,");
        assert_eq!(ws.recv_text(), r#"42/custom,["auth",{"token":"abc"}]"#);
    });
}

#[test]
fn sio_connect_invalid_namespace() {
    each_config(|addr| {
        let (mut ws, _) = ws_session(addr, SIO);
        ws.send_text("40/random");
        assert_eq!(
            ws.recv_text(),
            r#"44/random,{"message":"Invalid namespace"}"#
        );
        // the connection stays usable
        ws.send_text("40");
        check_connect_ok(&ws.recv_text(), "");
    });
}

#[test]
fn sio_connect_middleware() {
    each_config(|addr| {
        let (mut ws, _) = ws_session(addr, SIO);
        ws.send_text("40/mw,");
        assert_eq!(
            ws.recv_text(),
            r#"44/mw,{"message":"not authorized","data":{"code":401}}"#
        );
        ws.send_text(r#"40/mw,{"token":"wrong"}"#);
        assert_eq!(
            ws.recv_text(),
            r#"44/mw,{"message":"not authorized","data":{"code":401}}"#
        );
        ws.send_text(r#"40/mw,{"token":"secret"}"#);
        check_connect_ok(&ws.recv_text(), "/mw,");
        assert_eq!(ws.recv_text(), r#"42/mw,["auth",{"token":"secret"}]"#);
    });
}

#[test]
fn sio_event_and_ack() {
    each_config(|addr| {
        let mut ws = sio_ws(addr);
        ws.send_text(r#"42456["message-with-ack",1,"2",{"3":[false]}]"#);
        assert_eq!(ws.recv_text(), r#"43456[1,"2",{"3":[false]}]"#);
        ws.send_text(r#"42["message",1,"2",{"3":[false]}]"#);
        assert_eq!(ws.recv_text(), r#"42["message-back",1,"2",{"3":[false]}]"#);
    });
}

#[test]
fn sio_binary_event_ws() {
    each_config(|addr| {
        let mut ws = sio_ws(addr);
        ws.send_text(r#"451-["message",{"_placeholder":true,"num":0}]"#);
        ws.send_binary(&[1, 2, 3]);
        assert_eq!(
            ws.recv_text(),
            r#"451-["message-back",{"_placeholder":true,"num":0}]"#
        );
        assert_eq!(ws.recv_binary(), vec![1, 2, 3]);
        // two attachments
        ws.send_text(
            r#"452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
        );
        ws.send_binary(&[4]);
        ws.send_binary(&[5, 6]);
        assert_eq!(
            ws.recv_text(),
            r#"452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
        );
        assert_eq!(ws.recv_binary(), vec![4]);
        assert_eq!(ws.recv_binary(), vec![5, 6]);
    });
}

#[test]
fn sio_binary_ack_ws() {
    each_config(|addr| {
        let mut ws = sio_ws(addr);
        ws.send_text(r#"451-0["message-with-ack",{"_placeholder":true,"num":0}]"#);
        ws.send_binary(&[1, 2, 3]);
        assert_eq!(ws.recv_text(), r#"461-0[{"_placeholder":true,"num":0}]"#);
        assert_eq!(ws.recv_binary(), vec![1, 2, 3]);
    });
}

#[test]
fn sio_binary_event_polling() {
    each_config(|addr| {
        for _ in 0..2 {
            let sid = polling_handshake(addr, SIO);
            poll_post(addr, SIO, &sid, b"40");
            let got = poll_packets(addr, SIO, &sid, 2);
            check_connect_ok(&got[0], "");
            assert_eq!(got[1..], [r#"42["auth",{}]"#.to_string()]);
            for i in 0..6u8 {
                let b64 = base64_of(&[1, 2, i]);
                let body =
                    format!("451-[\"message\",{{\"_placeholder\":true,\"num\":0}}]\x1eb{b64}");
                poll_post(addr, SIO, &sid, body.as_bytes());
                let got = poll_packets(addr, SIO, &sid, 2);
                assert_eq!(
                    got,
                    vec![
                        r#"451-["message-back",{"_placeholder":true,"num":0}]"#.to_string(),
                        format!("b{b64}")
                    ],
                    "round {i}"
                );
                // binary ack over polling, the attachment in its own POST
                poll_post(
                    addr,
                    SIO,
                    &sid,
                    br#"451-7["message-with-ack",{"_placeholder":true,"num":0}]"#,
                );
                poll_post(addr, SIO, &sid, format!("b{b64}").as_bytes());
                let got = poll_packets(addr, SIO, &sid, 2);
                assert_eq!(
                    got,
                    vec![
                        r#"461-7[{"_placeholder":true,"num":0}]"#.to_string(),
                        format!("b{b64}")
                    ],
                    "ack round {i}"
                );
            }
        }
    });
}

#[test]
fn sio_namespace_disconnect_keeps_connection() {
    each_config(|addr| {
        let t0 = Instant::now();
        let mut ws = sio_ws(addr);
        ws.send_text("41");
        // nothing is sent back; the next frame is the heartbeat
        match ws.recv_event(Duration::from_millis(1000)) {
            WsEvent::Msg(Message::Text(t)) => assert_eq!(s(&t), "2", "at {:?}", t0.elapsed()),
            other => panic!("expected a ping after 41, got {other:?}"),
        }
        ws.send_text("3");
        // events on the left namespace are ignored; reconnecting works
        ws.send_text(r#"42["message",1]"#);
        ws.send_text("40");
        check_connect_ok(&ws.recv_text(), "");
        assert_eq!(ws.recv_text(), r#"42["auth",{}]"#);
        ws.send_text(r#"42["message",2]"#);
        assert_eq!(ws.recv_text(), r#"42["message-back",2]"#);
    });
}

#[test]
fn sio_200_events_in_order() {
    each_config(|addr| {
        let mut ws = sio_ws(addr);
        let mut frames = Vec::new();
        for i in 0..200 {
            let f = ringio::proto::ws::client_frame(
                OpCode::Text,
                format!(r#"42["message",{i}]"#).as_bytes(),
                [9, 8, 7, 6],
            );
            frames.extend_from_slice(&f);
        }
        ws.send_raw(&frames);
        for i in 0..200 {
            assert_eq!(ws.recv_text(), format!(r#"42["message-back",{i}]"#));
        }
    });
}

// ------------------------------------------------------------------------------------------------
// bad input: the server refuses it, and every shard keeps serving
// ------------------------------------------------------------------------------------------------

/// Sends `req` on `n` fresh connections; each must get `status` with `body` and be closed.
fn expect_http_refusal(addr: SocketAddr, req: &[u8], status: u16, n: usize) {
    for i in 0..n {
        let out = raw(addr, req);
        let r = parse_raw(&out);
        assert_eq!(
            r.status,
            status,
            "attempt {i} for {:?}: {:?}",
            s(&req[..req.len().min(80)]),
            r.text()
        );
        assert_eq!(r.header("connection"), Some("close"));
    }
}

#[test]
fn bad_http_garbage_request_line() {
    each_config_ctx(|c| {
        let w = Witnesses::open(c);
        expect_http_refusal(c.addr, b"GARBAGE\r\n\r\n", 400, 8);
        w.check("garbage request line");
    });
}

#[test]
fn bad_http_version_2() {
    each_config_ctx(|c| {
        let w = Witnesses::open(c);
        expect_http_refusal(c.addr, b"GET / HTTP/2.0\r\n\r\n", 400, 8);
        w.check("HTTP/2.0 request line");
    });
}

#[test]
fn bad_http_content_length() {
    each_config_ctx(|c| {
        let w = Witnesses::open(c);
        let sid = polling_handshake(c.addr, EIO);
        let req = format!(
            "POST {} HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n4hi",
            poll_url(EIO, &sid)
        );
        expect_http_refusal(c.addr, req.as_bytes(), 400, 8);
        let req = format!(
            "POST {} HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n4hi",
            poll_url(EIO, &sid)
        );
        expect_http_refusal(c.addr, req.as_bytes(), 400, 8);
        w.check("bad Content-Length");
    });
}

#[test]
fn bad_http_too_many_headers() {
    each_config_ctx(|c| {
        let w = Witnesses::open(c);
        let many: String = (0..70).map(|i| format!("X-H{i}: v\r\n")).collect();
        let req = format!("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n{many}\r\n");
        expect_http_refusal(c.addr, req.as_bytes(), 431, 8);
        w.check("70 headers");
    });
}

#[test]
fn bad_http_url_too_long() {
    each_config_ctx(|c| {
        let w = Witnesses::open(c);
        let req = format!(
            "GET /socket.io/?EIO=4&transport=polling&x={} HTTP/1.1\r\nHost: x\r\n\r\n",
            "a".repeat(20 * 1024)
        );
        expect_http_refusal(c.addr, req.as_bytes(), 431, 8);
        w.check("20 KB URL");
    });
}

#[test]
fn bad_http_unknown_path() {
    each_config_ctx(|c| {
        let w = Witnesses::open(c);
        expect_http_refusal(c.addr, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", 404, 8);
        w.check("unknown path");
    });
}

/// Opens Socket.IO sessions (connected to `/`) on fresh connections until every shard owned
/// one (at least `min` sessions), runs `f` on each.
fn on_sio_sessions_every_shard(c: &Ctx, min: usize, f: impl Fn(&mut Ws, &str)) {
    let mut seen = vec![false; c.shards];
    let mut n = 0;
    while n < min || !seen.iter().all(|&x| x) {
        assert!(n < 64, "no session landed on every shard: {seen:?}");
        let (mut ws, sid) = ws_session(c.addr, SIO);
        ws.send_text("40");
        check_connect_ok(&ws.recv_text(), "");
        assert_eq!(ws.recv_text(), r#"42["auth",{}]"#);
        seen[sid_shard(&sid)] = true;
        f(&mut ws, &sid);
        n += 1;
    }
}

fn expect_sio_payload_closes(c: &Ctx, payloads: &[&str]) {
    let w = Witnesses::open(c);
    for p in payloads {
        on_sio_sessions_every_shard(c, 2, |ws, sid| {
            ws.send_text(p);
            let (_frame, _code) = ws.expect_closed(Duration::from_secs(2));
            assert!(
                ws.eof_within(Duration::from_secs(1)),
                "TCP of {sid} not closed after {p:?}"
            );
        });
        w.check(p);
    }
}

#[test]
fn bad_sio_non_json_payloads_close() {
    each_config_ctx(|c| {
        expect_sio_payload_closes(
            c,
            &[
                "42{}",
                "4abc",
                r#"42abc["message"]"#,
                r#"42["message""#,
                "42[]",
                r#"42["message"]x"#,
                r#"42[{"a":1},2]"#,
                r#"42["disconnect"]"#,
            ],
        );
    });
}

#[test]
fn bad_sio_attachment_count_closes() {
    each_config_ctx(|c| {
        expect_sio_payload_closes(
            c,
            &[
                r#"45x-["message",{"_placeholder":true,"num":0}]"#,
                r#"451["message"]"#,
            ],
        );
    });
}

/// Sends `frame` on fresh WebSocket sessions (every shard) and expects a close frame carrying
/// `code`, then EOF.
fn expect_ws_close_code(c: &Ctx, frame: &[u8], code: u16, what: &str) {
    let w = Witnesses::open(c);
    on_sio_sessions_every_shard(c, 2, |ws, sid| {
        ws.send_raw(frame);
        let (got_frame, got) = ws.expect_closed(Duration::from_secs(2));
        assert!(got_frame, "{what}: no close frame before EOF on {sid}");
        assert_eq!(got, Some(code), "{what}: close code on {sid}");
        assert!(
            ws.eof_within(Duration::from_secs(1)),
            "{what}: TCP of {sid} not closed after the close frame"
        );
    });
    w.check(what);
}

fn masked(b0: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x11, 0x22, 0x33, 0x44];
    let mut f = ringio::proto::ws::client_frame(OpCode::Binary, payload, key).to_vec();
    f[0] = b0;
    f
}

#[test]
fn bad_ws_unmasked_frame() {
    each_config_ctx(|c| {
        let mut f = vec![0x81, 5];
        f.extend_from_slice(br#"42[1]"#);
        expect_ws_close_code(c, &f, 1002, "unmasked client frame");
    });
}

#[test]
fn bad_ws_reserved_opcode() {
    each_config_ctx(|c| {
        expect_ws_close_code(c, &masked(0x83, b"x"), 1002, "reserved opcode 3");
    });
}

#[test]
fn bad_ws_invalid_utf8() {
    each_config_ctx(|c| {
        expect_ws_close_code(
            c,
            &masked(0x81, b"42[\"\xff\xfe\"]"),
            1007,
            "invalid UTF-8 text",
        );
    });
}

#[test]
fn bad_ws_long_ping() {
    each_config_ctx(|c| {
        let key = [1, 2, 3, 4];
        let f = ringio::proto::ws::client_frame(OpCode::Ping, &[0u8; 126], key);
        assert_eq!(&f[..4], &[0x89, 0x80 | 126, 0, 126]);
        expect_ws_close_code(c, &f, 1002, "ping with a 126-byte payload");
    });
}

#[test]
fn bad_ws_message_over_max_payload() {
    each_config_ctx(|c| {
        let mut f = vec![0x81, 0x80 | 127];
        f.extend_from_slice(&2_000_000u64.to_be_bytes());
        f.extend_from_slice(&[1, 2, 3, 4]); // the mask key; no payload follows
        expect_ws_close_code(c, &f, 1009, "text frame declaring 2,000,000 bytes");
    });
}

/// A JSON argument nested 100000 levels deep (in an event, and in a CONNECT auth payload) must
/// not take the server down. A stack overflow aborts the whole process, so each configuration
/// runs in a child process (this test binary, filtered to this test, with
/// `RINGIO_WIRE_CHILD=<config index>:<kind>`) and the parent checks how each exited.
/// `RINGIO_WIRE_DEPTH` overrides the depth (to find the limit by hand).
#[test]
fn bad_sio_deeply_nested_json() {
    if let Ok(v) = std::env::var("RINGIO_WIRE_CHILD") {
        let (i, kind) = v.split_once(':').expect("RINGIO_WIRE_CHILD=<index>:<kind>");
        let (driver, shards) = CONFIGS[i.parse::<usize>().unwrap()];
        if let Err(m) = with_config(driver, shards, |c| deeply_nested_json_body(c, kind)) {
            panic!("{m}");
        }
        return;
    }
    let mut failed = Vec::new();
    for kind in ["event", "connect"] {
        for (i, (driver, shards)) in CONFIGS.iter().enumerate() {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "bad_sio_deeply_nested_json",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("RINGIO_WIRE_CHILD", format!("{i}:{kind}"))
                .env("RUST_BACKTRACE", "0")
                .output()
                .expect("spawn the test binary");
            if !out.status.success() {
                let stderr = s(&out.stderr);
                let tail: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
                failed.push(format!(
                    "[{kind}, driver {driver:?}, {shards} shard(s)] child {}: {}",
                    out.status,
                    tail[tail.len().saturating_sub(4)..].join(" | ")
                ));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} runs failed:\n{}",
        failed.len(),
        2 * CONFIGS.len(),
        failed.join("\n")
    );
}

fn deeply_nested_json_body(c: &Ctx, kind: &str) {
    let depth: usize = std::env::var("RINGIO_WIRE_DEPTH")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(100_000);
    let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let (msg, answer_prefix) = match kind {
        "event" => (
            format!(r#"42["message",{deep}]"#),
            r#"42["message-back",[[["#,
        ),
        _ => (format!(r#"40{{"a":{deep}}}"#), r#"40{"sid":""#),
    };
    let w = Witnesses::open(c);
    let mut seen = vec![false; c.shards];
    let mut n = 0;
    while n < 2 || !seen.iter().all(|&x| x) {
        assert!(n < 64, "no session landed on every shard: {seen:?}");
        n += 1;
        let (mut ws, sid) = ws_session(c.addr, SIO);
        seen[sid_shard(&sid)] = true;
        if kind == "event" {
            ws.send_text("40");
            check_connect_ok(&ws.recv_text(), "");
            assert_eq!(ws.recv_text(), r#"42["auth",{}]"#);
        }
        ws.send_text(&msg);
        // either answered or closed; both are fine, as long as the server lives
        let t0 = Instant::now();
        loop {
            match ws.recv_event(Duration::from_secs(2)) {
                WsEvent::Msg(Message::Text(t)) if &t[..] == b"2" => ws.send_text("3"),
                WsEvent::Msg(Message::Text(t)) => {
                    assert!(
                        t.starts_with(answer_prefix.as_bytes()),
                        "{:?}",
                        s(&t[..40.min(t.len())])
                    );
                    break;
                }
                WsEvent::Msg(Message::Close(_)) | WsEvent::Eof => break,
                other => panic!("after a deeply nested {kind} payload on {sid}: {other:?}"),
            }
            assert!(t0.elapsed() < Duration::from_secs(3));
        }
    }
    w.check(&format!("a deeply nested {kind} payload"));
}

/// A ping (`2`) from the client, an unknown packet type and an empty message are protocol
/// errors for Engine.IO: the connection is closed.
#[test]
fn bad_eio_client_packets_close() {
    each_config_ctx(|c| {
        let w = Witnesses::open(c);
        for p in ["2", "9", ""] {
            for _ in 0..2 {
                let (mut ws, sid) = ws_session(c.addr, EIO);
                ws.send_text(p);
                ws.expect_closed(Duration::from_secs(2));
                assert!(ws.eof_within(Duration::from_secs(1)), "{p:?} on {sid}");
            }
        }
        w.check("bad Engine.IO packets");
    });
}

#[test]
fn ws_upgrade_with_unknown_sid() {
    each_config(|addr| {
        let pq = "/engine.io/?EIO=4&transport=websocket&sid=AAAAAAAAAAAAAAAAAAAAAAAA";
        match Ws::try_connect(addr, pq) {
            Ok(_) => panic!("upgrade with an unknown sid accepted"),
            Err(r) => assert_eio_error(&r, 1, "Session ID unknown", "ws unknown sid"),
        }
    });
}
