//! Engine.IO v3 framing (socket.io-client 2.x), for servers with `allowEIO3` (sans-IO).
//!
//! Owns what differs from v4 on the wire, as Node's `engine.io` `parser-v3` writes and reads it:
//! - polling payloads as strings: `<length>:<packet>` repeated, the length in UTF-16 code units
//!   (JavaScript string length), binary packets as `b<type><base64>`;
//! - polling payloads as binary (when the client supports it and a packet is binary):
//!   `<0 string | 1 binary><length digits as bytes><255><packet>` repeated, strings as UTF-8;
//! - WebSocket binary frames and binary packets carry their type byte (`4` for a message).
//!
//! The heartbeat's direction (the v3 client pings, the server answers) is the state machine's.
//!
//! Must not: touch sockets or read the clock.

use super::{DecodeError, OutPacket, Packet};
use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};

/// Length of `s` as JavaScript counts it (UTF-16 code units).
fn js_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// The byte offset in `s` after `units` UTF-16 code units (None past the end, or inside a
/// character).
fn js_offset(s: &str, units: usize) -> Option<usize> {
    let mut n = 0;
    for (i, c) in s.char_indices() {
        if n == units {
            return Some(i);
        }
        n += c.len_utf16();
    }
    (n == units).then_some(s.len())
}

/// A text packet as a v3 string payload writes it (binary as `b4<base64>`).
fn text_form(p: &OutPacket) -> String {
    match p {
        OutPacket::Text(t) => String::from_utf8_lossy(t).into_owned(),
        OutPacket::Binary(b) => {
            format!("b4{}", base64::engine::general_purpose::STANDARD.encode(b))
        }
    }
}

/// Encodes a polling payload: binary when `supports_binary` and a packet is binary, else a
/// string (`0:` for no packet at all).
pub fn encode_payload(packets: &[OutPacket], supports_binary: bool, out: &mut BytesMut) {
    let binary = supports_binary && packets.iter().any(|p| matches!(p, OutPacket::Binary(_)));
    if binary {
        for p in packets {
            let (kind, data): (u8, &[u8]) = match p {
                OutPacket::Text(t) => (0, t),
                OutPacket::Binary(b) => (1, b),
            };
            // a binary packet carries its type byte
            let len = data.len() + usize::from(kind == 1);
            out.put_u8(kind);
            out.extend(len.to_string().bytes().map(|d| d - b'0'));
            out.put_u8(255);
            if kind == 1 {
                out.put_u8(4);
            }
            out.put_slice(data);
        }
        return;
    }
    if packets.is_empty() {
        out.put_slice(b"0:");
    }
    for p in packets {
        let s = text_form(p);
        out.put_slice(js_len(&s).to_string().as_bytes());
        out.put_u8(b':');
        out.put_slice(s.as_bytes());
    }
}

/// True when a polling response in this form is binary (`application/octet-stream`).
pub fn payload_is_binary(packets: &[OutPacket], supports_binary: bool) -> bool {
    supports_binary && packets.iter().any(|p| matches!(p, OutPacket::Binary(_)))
}

/// Decodes one packet of a v3 string payload (or a WebSocket text frame).
pub fn decode_text(s: &str) -> Result<Packet, DecodeError> {
    match s.as_bytes().first() {
        Some(b'b') => {
            // `b<type><base64>`: binary data of a packet of that type (a message)
            let rest = s.get(2..).ok_or(DecodeError::BadBase64)?;
            let data = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .map_err(|_| DecodeError::BadBase64)?;
            Ok(Packet::Binary(data.into()))
        }
        _ => Packet::decode_text(Bytes::copy_from_slice(s.as_bytes())),
    }
}

/// Decodes a binary WebSocket frame or binary packet: its first byte is the type (`4`).
pub fn decode_binary(mut data: Bytes) -> Result<Packet, DecodeError> {
    match data.first() {
        Some(4) => {
            let _ = data.split_to(1);
            Ok(Packet::Binary(data))
        }
        Some(&t) => Err(DecodeError::UnknownType(t)),
        None => Err(DecodeError::Empty),
    }
}

/// A binary message as a v3 WebSocket frame carries it: the type byte, then the data.
pub fn binary_frame(data: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(data.len() + 1);
    b.put_u8(4);
    b.put_slice(data);
    b.freeze()
}

/// Splits a polling POST body into packets: a binary payload when `binary` (the request was
/// `application/octet-stream`), else a string payload. Any framing error refuses the whole
/// payload, as Node does.
pub fn decode_payload(body: &[u8], binary: bool) -> Result<Vec<Packet>, DecodeError> {
    if binary {
        return decode_binary_payload(body);
    }
    let s = std::str::from_utf8(body).map_err(|_| DecodeError::Empty)?;
    if s.is_empty() {
        return Err(DecodeError::Empty);
    }
    let mut packets = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let colon = rest.find(':').ok_or(DecodeError::Empty)?;
        let n: usize = rest[..colon].parse().map_err(|_| DecodeError::Empty)?;
        let body = &rest[colon + 1..];
        let end = js_offset(body, n).ok_or(DecodeError::Empty)?;
        if end > 0 {
            packets.push(decode_text(&body[..end])?);
        }
        rest = &body[end..];
    }
    Ok(packets)
}

fn decode_binary_payload(mut b: &[u8]) -> Result<Vec<Packet>, DecodeError> {
    let mut packets = Vec::new();
    while let Some((&kind, tail)) = b.split_first() {
        let sep = tail
            .iter()
            .position(|&x| x == 255)
            .ok_or(DecodeError::Empty)?;
        if sep == 0 || sep > 20 || tail[..sep].iter().any(|&d| d > 9) {
            return Err(DecodeError::Empty);
        }
        let len = tail[..sep]
            .iter()
            .fold(0usize, |n, &d| n * 10 + usize::from(d));
        let body = &tail[sep + 1..];
        let msg = body.get(..len).ok_or(DecodeError::Empty)?;
        packets.push(match kind {
            0 => {
                let s = std::str::from_utf8(msg).map_err(|_| DecodeError::Empty)?;
                decode_text(s)?
            }
            _ => decode_binary(Bytes::copy_from_slice(msg))?,
        });
        b = &body[len..];
    }
    Ok(packets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> OutPacket {
        OutPacket::Text(Bytes::copy_from_slice(s.as_bytes()))
    }

    fn enc(packets: &[OutPacket], binary: bool) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode_payload(packets, binary, &mut out);
        out.to_vec()
    }

    #[test]
    fn string_payloads_count_utf16_units() {
        assert_eq!(enc(&[], false), b"0:");
        assert_eq!(
            enc(&[text("2probe"), text("42[\"a\"]")], false),
            b"6:2probe7:42[\"a\"]"
        );
        // "é" is 1 unit, "😀" 2 units (4 UTF-8 bytes)
        assert_eq!(enc(&[text("4é😀")], false), "4:4é😀".as_bytes());
        let bin = OutPacket::Binary(Bytes::from_static(&[1, 2, 3]));
        assert_eq!(
            enc(&[text("451-[]"), bin.clone()], false),
            b"6:451-[]6:b4AQID"
        );
        let back = decode_payload("4:4é😀6:b4AQID1:2".as_bytes(), false).unwrap();
        assert_eq!(
            back,
            vec![
                Packet::Message(Bytes::copy_from_slice("é😀".as_bytes())),
                Packet::Binary(Bytes::from_static(&[1, 2, 3])),
                Packet::Ping(Bytes::new())
            ]
        );
        for bad in ["", "3:42", "x:4", "2:4", "5:4é😀"] {
            assert!(decode_payload(bad.as_bytes(), false).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn binary_payloads_round_trip() {
        let bin = OutPacket::Binary(Bytes::from_static(&[9, 8]));
        let out = enc(&[text("451-[]"), bin], true);
        assert_eq!(
            out,
            [&[0u8, 6, 255][..], b"451-[]", &[1, 3, 255, 4, 9, 8]].concat()
        );
        let back = decode_payload(&out, true).unwrap();
        assert_eq!(back[1], Packet::Binary(Bytes::from_static(&[9, 8])));
        assert!(payload_is_binary(&[OutPacket::Binary(Bytes::new())], true));
        assert!(!payload_is_binary(&[text("4a")], true));
        // a text-only payload stays a string even when binary is supported
        assert_eq!(enc(&[text("4a")], true), b"2:4a");
        assert!(decode_payload(&[0, 5, 255, b'4'], true).is_err());
        assert!(decode_payload(&[0, 12, 255, b'4'], true).is_err());
    }

    #[test]
    fn websocket_binary_frames_carry_the_type() {
        assert_eq!(&binary_frame(&[7])[..], &[4, 7]);
        assert_eq!(
            decode_binary(Bytes::from_static(&[4, 7])),
            Ok(Packet::Binary(Bytes::from_static(&[7])))
        );
        assert!(decode_binary(Bytes::from_static(&[3])).is_err());
    }
}
