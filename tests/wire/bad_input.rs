//! Bad input: the server refuses it with the protocol's answer, and every shard keeps serving.

use super::*;
use std::io::Write;

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

/// Sends `req` on a fresh connection; the server must answer and then close the connection
/// (EOF well before the client's own 3 s timeout).
fn answer_then_close(addr: SocketAddr, req: &[u8]) -> String {
    let t0 = Instant::now();
    let out = raw_timeout(addr, req, Duration::from_secs(3));
    assert!(
        t0.elapsed() < Duration::from_millis(2500),
        "connection left open after {:?}",
        s(&out)
    );
    s(&out)
}

fn upgrade(pq: &str, version: &str) -> String {
    format!(
        "GET {pq} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: {version}\r\n\r\n"
    )
}

/// engine.io's `abortUpgrade`, byte for byte: 400, the message as text/html, then close.
fn abort_upgrade(message: &str) -> String {
    format!(
        "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-type: text/html\r\nContent-Length: {}\r\n\r\n{message}",
        message.len()
    )
}

/// An upgrade for a session that does not exist: a sid that cannot be one, a well-formed sid of
/// each shard, and the sid of a session that just closed (its owner looks it up).
#[test]
fn ws_upgrade_with_unknown_sid() {
    each_config_ctx(|c| {
        let w = Witnesses::open(c);
        let mut sids = vec!["nope".to_string()];
        for shard in 0..c.shards {
            let b64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
            sids.push(format!("{}A{}", "A".repeat(22), b64[shard] as char));
        }
        for _ in 0..4 {
            let sid = polling_handshake(c.addr, EIO);
            poll_post(c.addr, EIO, &sid, b"1");
            sids.push(sid);
        }
        for sid in &sids {
            let pq = format!("{EIO}?EIO=4&transport=websocket&sid={sid}");
            let got = answer_then_close(c.addr, upgrade(&pq, "13").as_bytes());
            assert_eq!(got, abort_upgrade("Session ID unknown"), "sid {sid}");
        }
        w.check("upgrades with unknown sids");
    });
}

/// Upgrades refused by the Engine.IO checks answer as engine.io's `abortUpgrade` (400 even for
/// a refusal that is 403 over HTTP) and close; the same request without `Upgrade` gets the JSON.
#[test]
fn ws_upgrade_refusals_close() {
    each_config(|addr| {
        for (pq, msg) in [
            (format!("{SIO}?EIO=4&transport=bogus"), "Transport unknown"),
            (
                format!("{SIO}?EIO=3&transport=websocket"),
                "Unsupported protocol version",
            ),
        ] {
            let got = answer_then_close(addr, upgrade(&pq, "13").as_bytes());
            assert_eq!(got, abort_upgrade(msg), "{pq}");
        }
    });
}

/// RFC 6455 4.4: an unsupported `Sec-WebSocket-Version` gets 400 naming the version served,
/// with the `ws` package's message, and the connection closes; so does a missing key.
#[test]
fn ws_upgrade_bad_version_or_key() {
    each_config(|addr| {
        let pq = format!("{SIO}?EIO=4&transport=websocket");
        for version in ["8", "12", ""] {
            let got = answer_then_close(addr, upgrade(&pq, version).as_bytes());
            assert_eq!(
                got,
                "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/html\r\nContent-Length: 47\r\nSec-WebSocket-Version: 13\r\n\r\nMissing or invalid Sec-WebSocket-Version header",
                "version {version:?}"
            );
        }
        let req = upgrade(&pq, "13").replace("dGhlIHNhbXBsZSBub25jZQ==", "short");
        let got = answer_then_close(addr, req.as_bytes());
        assert!(
            got.ends_with("\r\n\r\nMissing or invalid Sec-WebSocket-Key header"),
            "{got:?}"
        );
    });
}

/// A polling POST declaring `application/octet-stream` under EIO=4: Node answers a bare 400
/// ("invalid content") and closes the session.
#[test]
fn bad_polling_post_octet_stream() {
    each_config_ctx(|c| {
        let w = Witnesses::open(c);
        for _ in 0..4 {
            let sid = polling_handshake(c.addr, EIO);
            let req = format!(
                "POST {} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 3\r\n\r\n4hi",
                poll_url(EIO, &sid)
            );
            let mut conn = HttpConn::open(c.addr);
            conn.stream.write_all(req.as_bytes()).unwrap();
            let r = conn.read();
            assert_eq!(
                (r.status, r.text()),
                (400, String::new()),
                "octet-stream POST"
            );
            assert_eq!(r.header("content-length"), Some("0"));
            assert_eq!(r.header("content-type"), None);
            // the session is gone
            let r = request(c.addr, "GET", &poll_url(EIO, &sid), b"");
            assert_eio_error(&r, 1, "Session ID unknown", "GET after the refused POST");
        }
        w.check("octet-stream POST");
    });
}
