//! `ws_decoder`: the WebSocket frame decoder, both roles.

use crate::*;

/// Message size limit given to the decoder.
pub const WS_MAX: usize = 4096;

/// Everything a feed produced: the messages, then how it ended.
#[derive(Debug, PartialEq)]
struct WsRun {
    messages: Vec<ws::Message>,
    /// The error that ended the stream, if any.
    error: Option<ws::WsError>,
    /// Unconsumed bytes and fragment state at the end (only when no error).
    remaining: Vec<u8>,
    fragmented: bool,
}

fn check_message(m: &ws::Message) {
    match m {
        ws::Message::Text(t) => {
            assert!(t.len() <= WS_MAX, "text over max");
            assert!(std::str::from_utf8(t).is_ok(), "text is not UTF-8");
        }
        ws::Message::Binary(b) => assert!(b.len() <= WS_MAX, "binary over max"),
        ws::Message::Ping(p) | ws::Message::Pong(p) => assert!(p.len() <= 125),
        ws::Message::Close(None) => {}
        ws::Message::Close(Some((code, reason))) => {
            assert!(ws::is_valid_close_code(*code), "close code {code}");
            assert!(reason.len() <= 123);
            assert!(
                std::str::from_utf8(reason).is_ok(),
                "close reason is not UTF-8"
            );
        }
    }
}

fn ws_feed(role: ws::Role, data: &[u8], cuts: &[usize]) -> WsRun {
    let mut dec = ws::Decoder::new(role, WS_MAX);
    let mut buf = BytesMut::new();
    let mut fed = 0usize;
    let mut messages = Vec::new();
    for chunk in chunks(data, cuts) {
        buf.extend_from_slice(chunk);
        fed += chunk.len();
        loop {
            let before = buf.len();
            let r = dec.decode(&mut buf);
            assert!(buf.len() <= before, "decode grew the buffer");
            assert!(buf.len() <= fed, "consumed more than was fed");
            // Unconsumed bytes must be untouched (unmasking happens in place).
            if r.is_ok() {
                assert_eq!(
                    &buf[..],
                    &data[fed - buf.len()..fed],
                    "unconsumed bytes changed"
                );
            }
            match r {
                Ok(Some(m)) => {
                    assert!(before - buf.len() >= 2, "a message without a frame header");
                    check_message(&m);
                    messages.push(m);
                }
                Ok(None) => break,
                Err(e) => {
                    assert!(matches!(e.close_code(), 1002 | 1007 | 1009));
                    return WsRun {
                        messages,
                        error: Some(e),
                        remaining: Vec::new(),
                        fragmented: false,
                    };
                }
            }
        }
    }
    WsRun {
        messages,
        error: None,
        remaining: buf.to_vec(),
        fragmented: dec.in_fragmented_message(),
    }
}

/// Encodes `m` as one frame the decoder of `role` accepts, decodes it and expects `m` back.
fn ws_reencode(role: ws::Role, m: &ws::Message) {
    use ws::OpCode;
    let (op, payload): (OpCode, Bytes) = match m {
        ws::Message::Text(p) => (OpCode::Text, p.clone()),
        ws::Message::Binary(p) => (OpCode::Binary, p.clone()),
        ws::Message::Ping(p) => (OpCode::Ping, p.clone()),
        ws::Message::Pong(p) => (OpCode::Pong, p.clone()),
        ws::Message::Close(None) => (OpCode::Close, Bytes::new()),
        ws::Message::Close(Some((code, reason))) => (
            OpCode::Close,
            ws::close_payload(*code, std::str::from_utf8(reason).expect("checked UTF-8")),
        ),
    };
    let frame = match role {
        ws::Role::Server => ws::client_frame(op, &payload, [0xa5, 0x5a, 0x01, 0xfe]),
        ws::Role::Client => ws::server_frame(op, &payload),
    };
    let mut buf = BytesMut::from(&frame[..]);
    let got = ws::Decoder::new(role, WS_MAX).decode(&mut buf);
    assert_eq!(
        got.as_ref(),
        Ok(&Some(m.clone())),
        "re-encoded frame decodes differently"
    );
    assert!(buf.is_empty());
}

/// `ws::Decoder` over arbitrary bytes in both roles: never consumes more than it was fed, leaves
/// unconsumed bytes untouched, yields only well-formed messages, and chunked feeds give the same
/// messages / error / leftover as a one-shot feed.
pub fn ws_decoder(data: &[u8]) {
    for role in [ws::Role::Server, ws::Role::Client] {
        let one_shot = ws_feed(role, data, &[data.len()]);
        for m in &one_shot.messages {
            ws_reencode(role, m);
        }
        for cuts in chunkings(data) {
            let got = ws_feed(role, data, &cuts);
            assert_eq!(
                got, one_shot,
                "{role:?}: chunked feed {cuts:?} differs from one-shot"
            );
        }
    }
}
