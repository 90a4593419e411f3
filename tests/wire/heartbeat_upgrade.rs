//! The upgrade from polling to WebSocket, and the heartbeat.

use super::*;

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
