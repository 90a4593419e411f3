//! Engine.IO v4 packets and long-polling payloads (sans-IO).
//!
//! Owns: the packet types (`0` open .. `6` noop), decoding a text packet or a binary message
//! without copying (the data is a slice of the caller's `Bytes`), the polling payload format
//! (packets joined by the record separator 0x1E, binary as `b` + base64), and the open packet.
//!
//! The session state machine is in [`session`]; the session id is [`Sid`].
//!
//! Must not: touch sockets or read the clock.

use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};

pub mod session;
pub mod v3;
pub use session::{CloseReason, Side, Transport};

crate::proto::id::id_type!(
    /// A session id: 22 base64url characters of CSPRNG output (128 bits) + 2 for the owner
    /// shard.
    Sid
);

/// The record separator that joins packets in a polling payload.
pub const SEPARATOR: u8 = 0x1e;

/// An Engine.IO packet as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// `0` + handshake JSON (client side).
    Open(Bytes),
    /// `1`
    Close,
    /// `2` + optional data (`2probe`).
    Ping(Bytes),
    /// `3` + optional data (`3probe`).
    Pong(Bytes),
    /// `4` + text message.
    Message(Bytes),
    /// A binary message (WebSocket binary frame, or `b` + base64 in polling).
    Binary(Bytes),
    /// `5`
    Upgrade,
    /// `6`
    Noop,
}

/// A packet that is not valid Engine.IO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Empty packet.
    Empty,
    /// Unknown type character.
    UnknownType(u8),
    /// `b` payload that is not base64.
    BadBase64,
}

impl Packet {
    /// Decodes a text packet (a WebSocket text frame, or one polling segment), zero copy.
    pub fn decode_text(data: Bytes) -> Result<Packet, DecodeError> {
        let Some(&t) = data.first() else {
            return Err(DecodeError::Empty);
        };
        let rest = || data.slice(1..);
        Ok(match t {
            b'0' => Packet::Open(rest()),
            b'1' => Packet::Close,
            b'2' => Packet::Ping(rest()),
            b'3' => Packet::Pong(rest()),
            b'4' => Packet::Message(rest()),
            b'5' => Packet::Upgrade,
            b'6' => Packet::Noop,
            b'b' => Packet::Binary(
                base64::engine::general_purpose::STANDARD
                    .decode(&data[1..])
                    .map_err(|_| DecodeError::BadBase64)?
                    .into(),
            ),
            other => return Err(DecodeError::UnknownType(other)),
        })
    }
}

/// Splits a polling POST body into packets.
pub fn decode_payload(body: Bytes) -> impl Iterator<Item = Result<Packet, DecodeError>> {
    let mut rest = Some(body);
    std::iter::from_fn(move || {
        let mut cur = rest.take()?;
        match cur.iter().position(|&b| b == SEPARATOR) {
            Some(i) => {
                let seg = cur.split_to(i);
                cur.advance_one();
                rest = Some(cur);
                Some(Packet::decode_text(seg))
            }
            None => Some(Packet::decode_text(cur)),
        }
    })
}

trait AdvanceOne {
    fn advance_one(&mut self);
}
impl AdvanceOne for Bytes {
    fn advance_one(&mut self) {
        let _ = self.split_to(1);
    }
}

/// A packet queued for sending: text packets carry their type character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutPacket {
    /// A text packet including its type character, e.g. `42["a"]` or `2`.
    Text(Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl OutPacket {
    /// The ping packet `2`.
    pub const PING: OutPacket = OutPacket::Text(Bytes::from_static(b"2"));
    /// The pong packet `3` (a client's answer to a ping).
    pub const PONG: OutPacket = OutPacket::Text(Bytes::from_static(b"3"));
    /// The noop packet `6`.
    pub const NOOP: OutPacket = OutPacket::Text(Bytes::from_static(b"6"));
    /// The close packet `1`.
    pub const CLOSE: OutPacket = OutPacket::Text(Bytes::from_static(b"1"));
    /// `3probe`, the answer to the upgrade probe.
    pub const PONG_PROBE: OutPacket = OutPacket::Text(Bytes::from_static(b"3probe"));

    /// Bytes this packet occupies.
    pub fn len(&self) -> usize {
        match self {
            OutPacket::Text(b) | OutPacket::Binary(b) => b.len(),
        }
    }
    /// True for an empty packet (never produced by the encoders).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Encoded size of a packet inside a polling payload (text as is, binary as `b` + base64).
pub fn payload_len(p: &OutPacket) -> usize {
    match p {
        OutPacket::Text(b) => b.len(),
        OutPacket::Binary(b) => 1 + b.len().div_ceil(3) * 4,
    }
}

/// Joins packets into one polling response body.
pub fn encode_payload<'a>(packets: impl IntoIterator<Item = &'a OutPacket>, out: &mut BytesMut) {
    for (i, p) in packets.into_iter().enumerate() {
        if i > 0 {
            out.put_u8(SEPARATOR);
        }
        match p {
            OutPacket::Text(b) => out.put_slice(b),
            OutPacket::Binary(b) => {
                out.put_u8(b'b');
                let start = out.len();
                let n = base64::encoded_len(b.len(), true).unwrap_or(0);
                out.resize(start + n, 0);
                let w = base64::engine::general_purpose::STANDARD
                    .encode_slice(b, &mut out[start..])
                    .unwrap_or(0);
                out.truncate(start + w);
            }
        }
    }
}

/// The open packet: `0{"sid":..,"upgrades":[..],"pingInterval":..,"pingTimeout":..,"maxPayload":..}`.
pub fn open_packet(
    sid: &str,
    upgrades: bool,
    ping_interval_ms: u64,
    ping_timeout_ms: u64,
    max_payload: usize,
) -> Bytes {
    let upgrades = if upgrades { r#"["websocket"]"# } else { "[]" };
    Bytes::from(format!(
        r#"0{{"sid":"{sid}","upgrades":{upgrades},"pingInterval":{ping_interval_ms},"pingTimeout":{ping_timeout_ms},"maxPayload":{max_payload}}}"#
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn decodes_every_type() {
        assert_eq!(Packet::decode_text(b("0{}")), Ok(Packet::Open(b("{}"))));
        assert_eq!(Packet::decode_text(b("1")), Ok(Packet::Close));
        assert_eq!(
            Packet::decode_text(b("2probe")),
            Ok(Packet::Ping(b("probe")))
        );
        assert_eq!(Packet::decode_text(b("3")), Ok(Packet::Pong(b(""))));
        assert_eq!(
            Packet::decode_text(b("4hello")),
            Ok(Packet::Message(b("hello")))
        );
        assert_eq!(Packet::decode_text(b("5")), Ok(Packet::Upgrade));
        assert_eq!(Packet::decode_text(b("6")), Ok(Packet::Noop));
        assert_eq!(
            Packet::decode_text(b("bAQIDBA==")),
            Ok(Packet::Binary(Bytes::from_static(&[1, 2, 3, 4])))
        );
        assert_eq!(Packet::decode_text(b("")), Err(DecodeError::Empty));
        assert_eq!(
            Packet::decode_text(b("abc")),
            Err(DecodeError::UnknownType(b'a'))
        );
        assert_eq!(Packet::decode_text(b("b!!")), Err(DecodeError::BadBase64));
    }

    #[test]
    fn payload_round_trip() {
        let body = b("4hello\x1ebAQIDBA==\x1e4test3");
        let packets: Vec<_> = decode_payload(body).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            packets,
            vec![
                Packet::Message(b("hello")),
                Packet::Binary(Bytes::from_static(&[1, 2, 3, 4])),
                Packet::Message(b("test3"))
            ]
        );
        let out = [
            OutPacket::Text(b("4hello")),
            OutPacket::Binary(Bytes::from_static(&[1, 2, 3, 4])),
            OutPacket::NOOP,
        ];
        let mut buf = BytesMut::new();
        encode_payload(&out, &mut buf);
        assert_eq!(&buf[..], b"4hello\x1ebAQIDBA==\x1e6");
    }

    #[test]
    fn open_packet_exact() {
        assert_eq!(
            open_packet("abc", true, 300, 200, 1_000_000),
            b(
                r#"0{"sid":"abc","upgrades":["websocket"],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}"#
            )
        );
        assert!(open_packet("abc", false, 1, 2, 3).starts_with(br#"0{"sid":"abc","upgrades":[]"#));
    }
}
