//! Socket.IO: namespaces, middleware, events, acks, binary, order.

use super::*;

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
