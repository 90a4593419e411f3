//! `eio_payload`: Engine.IO polling payloads.

use crate::*;

/// The text form of a decoded packet (type character included), or the binary message.
fn eio_out(p: &eio::Packet) -> eio::OutPacket {
    let text = |t: u8, rest: &[u8]| {
        let mut v = Vec::with_capacity(1 + rest.len());
        v.push(t);
        v.extend_from_slice(rest);
        eio::OutPacket::Text(v.into())
    };
    match p {
        eio::Packet::Open(d) => text(b'0', d),
        eio::Packet::Close => text(b'1', b""),
        eio::Packet::Ping(d) => text(b'2', d),
        eio::Packet::Pong(d) => text(b'3', d),
        eio::Packet::Message(d) => text(b'4', d),
        eio::Packet::Binary(d) => eio::OutPacket::Binary(d.clone()),
        eio::Packet::Upgrade => text(b'5', b""),
        eio::Packet::Noop => text(b'6', b""),
    }
}

/// `eio::decode_payload` over arbitrary bytes: one item per 0x1E-separated segment, each equal to
/// `Packet::decode_text` of that segment, text payloads borrowed from the body; the Ok packets
/// re-encoded with `encode_payload` decode to the same packets (Message/Binary alone, then all).
pub fn eio_payload(data: &[u8]) {
    let body = Bytes::copy_from_slice(data);
    let items: Vec<_> = eio::decode_payload(body.clone()).collect();
    let segments: Vec<&[u8]> = data.split(|&b| b == eio::SEPARATOR).collect();
    assert_eq!(items.len(), segments.len(), "one item per segment");
    let span = body.as_ptr() as usize..body.as_ptr() as usize + body.len() + 1;
    for (seg, item) in segments.iter().zip(&items) {
        let direct = eio::Packet::decode_text(Bytes::copy_from_slice(seg));
        assert_eq!(
            item, &direct,
            "payload item differs from decode_text of its segment"
        );
        match item {
            Ok(eio::Packet::Open(d) | eio::Packet::Ping(d))
            | Ok(eio::Packet::Pong(d) | eio::Packet::Message(d)) => {
                assert_eq!(&d[..], &seg[1..]);
                assert!(
                    d.is_empty() || span.contains(&(d.as_ptr() as usize)),
                    "copied"
                );
            }
            Ok(eio::Packet::Binary(b)) => assert!(b.len() <= seg.len() * 3 / 4),
            Ok(_) => {}
            Err(eio::DecodeError::Empty) => assert!(seg.is_empty()),
            Err(eio::DecodeError::UnknownType(t)) => assert_eq!(Some(t), seg.first()),
            Err(eio::DecodeError::BadBase64) => assert_eq!(seg.first(), Some(&b'b')),
        }
    }
    if !data.contains(&eio::SEPARATOR) {
        assert_eq!(items[0], eio::Packet::decode_text(body.clone()));
    }
    let ok: Vec<&eio::Packet> = items.iter().filter_map(|r| r.as_ref().ok()).collect();
    let data_only: Vec<&eio::Packet> = ok
        .iter()
        .copied()
        .filter(|p| matches!(p, eio::Packet::Message(_) | eio::Packet::Binary(_)))
        .collect();
    for packets in [data_only, ok] {
        if packets.is_empty() {
            continue;
        }
        let out: Vec<eio::OutPacket> = packets.iter().map(|p| eio_out(p)).collect();
        let mut buf = BytesMut::new();
        eio::encode_payload(&out, &mut buf);
        let again: Vec<_> = eio::decode_payload(buf.freeze()).collect();
        let want: Vec<_> = packets.iter().map(|&p| Ok(p.clone())).collect();
        assert_eq!(again, want, "encode_payload/decode_payload round trip");
    }
}
