//! HTTP long-polling: exact payloads, keep-alive, concurrent requests, clients that leave.

use super::*;

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
