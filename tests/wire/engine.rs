//! Engine.IO handshakes and Node's error answers.

use super::*;

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
