//! Socket.IO v5 packets (sans-IO): decode without copying, encode once.
//!
//! Owns: the packet grammar `<type>[<attachments>-][<nsp>,][<ack id>][<JSON>]`, the validity rules
//! Node's `socket.io-parser` applies per type, splitting an event's JSON array into the event name
//! and raw argument slices (SIMD-validated by sonic-rs; arguments stay unparsed), reassembling
//! binary packets from their attachments, and writing packets with the Engine.IO `4` prefix.
//!
//! Must not: know about sockets, namespaces' handlers or transports.

use bytes::{BufMut, Bytes, BytesMut};
use smallvec::SmallVec;
use std::ops::Range;

pub mod args;
mod json;
pub use json::{validate as validate_json, JsonError};

crate::proto::id::id_type!(
    /// A socket id (one per namespace a client joins; distinct from the Engine.IO session
    /// id): 128 random bits + the owner shard, like [`crate::proto::eio::Sid`].
    SocketId
);

/// Why an emit's ack did not arrive (server or client side).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckError {
    /// No ack within the timeout.
    Timeout,
    /// The socket disconnected first.
    Disconnected,
}

impl std::fmt::Display for AckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AckError::Timeout => "operation has timed out",
            AckError::Disconnected => "socket has been disconnected",
        })
    }
}
impl std::error::Error for AckError {}

/// Socket.IO packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 0
    Connect,
    /// 1
    Disconnect,
    /// 2
    Event,
    /// 3
    Ack,
    /// 4
    ConnectError,
    /// 5
    BinaryEvent,
    /// 6
    BinaryAck,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            b'0' => Kind::Connect,
            b'1' => Kind::Disconnect,
            b'2' => Kind::Event,
            b'3' => Kind::Ack,
            b'4' => Kind::ConnectError,
            b'5' => Kind::BinaryEvent,
            b'6' => Kind::BinaryAck,
            _ => return None,
        })
    }
    fn byte(self) -> u8 {
        match self {
            Kind::Connect => b'0',
            Kind::Disconnect => b'1',
            Kind::Event => b'2',
            Kind::Ack => b'3',
            Kind::ConnectError => b'4',
            Kind::BinaryEvent => b'5',
            Kind::BinaryAck => b'6',
        }
    }
    /// True for the two binary kinds.
    pub fn is_binary(self) -> bool {
        matches!(self, Kind::BinaryEvent | Kind::BinaryAck)
    }
}

/// Why a packet was refused (each closes the connection with reason "parse error").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Empty or unknown type character.
    UnknownType,
    /// Attachment count missing its `-`, not a number, or over the limit.
    BadAttachments,
    /// An ack id that does not fit in u64.
    BadAckId,
    /// JSON that does not parse, or has trailing bytes.
    InvalidJson,
    /// Valid JSON of the wrong shape for the packet type (e.g. `42{}`), or a reserved event name.
    InvalidPayload,
    /// A binary attachment arrived when none was expected.
    UnexpectedAttachment,
    /// JSON nested deeper than [`MAX_DEPTH`] (refused before any recursive parsing).
    TooDeep,
}

pub use json::MAX_DEPTH;

/// A decoded packet; every field borrows the received `Bytes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// The type.
    pub kind: Kind,
    /// The namespace (`/` when absent).
    pub nsp: Bytes,
    /// The ack id, when present.
    pub id: Option<u64>,
    /// Number of binary attachments that follow (binary kinds only).
    pub attachments: usize,
    /// The raw JSON payload (possibly empty).
    pub data: Bytes,
    /// Events: the event name's range and the argument ranges in `data`; acks: an empty name
    /// range and the argument ranges. Computed once by [`decode`].
    pub parts: Option<(Range<u32>, ArgRanges)>,
}

const ROOT: Bytes = Bytes::from_static(b"/");

/// Names an event may not use (Node's RESERVED_EVENTS).
pub const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// Decodes one Socket.IO packet from an Engine.IO message (without its `4`).
pub fn decode(msg: Bytes, max_attachments: usize) -> Result<Packet, ParseError> {
    let b: &[u8] = &msg;
    if simdutf8::basic::from_utf8(b).is_err() {
        return Err(ParseError::InvalidJson);
    }
    let kind = b
        .first()
        .and_then(|&c| Kind::from_byte(c))
        .ok_or(ParseError::UnknownType)?;
    let mut i = 1;
    let mut attachments = 0usize;
    if kind.is_binary() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start || i >= b.len() || b[i] != b'-' || i - start > 6 {
            return Err(ParseError::BadAttachments);
        }
        attachments = std::str::from_utf8(&b[start..i])
            .unwrap()
            .parse()
            .map_err(|_| ParseError::BadAttachments)?;
        if attachments > max_attachments {
            return Err(ParseError::BadAttachments);
        }
        i += 1;
    }
    let nsp = if b.get(i) == Some(&b'/') {
        let start = i;
        while i < b.len() && b[i] != b',' {
            i += 1;
        }
        let ns = msg.slice(start..i);
        if i < b.len() {
            i += 1; // the comma
        }
        ns
    } else {
        ROOT
    };
    let mut id = None;
    let start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i > start {
        id = Some(
            std::str::from_utf8(&b[start..i])
                .unwrap()
                .parse::<u64>()
                .map_err(|_| ParseError::BadAckId)?,
        );
    }
    let data = msg.slice(i..);
    let mut p = Packet {
        kind,
        nsp,
        id,
        attachments,
        data,
        parts: None,
    };
    p.parts = validate(&p)?;
    Ok(p)
}

fn validate(p: &Packet) -> Result<Option<(Range<u32>, ArgRanges)>, ParseError> {
    let d = &p.data[..];
    let empty = d.iter().all(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'));
    match p.kind {
        Kind::Connect if empty => Ok(None),
        Kind::Connect => {
            check_json(d)?;
            match d.iter().find(|c| !c.is_ascii_whitespace()) {
                Some(b'{') => Ok(None),
                _ => Err(ParseError::InvalidPayload),
            }
        }
        Kind::Disconnect if empty => Ok(None),
        Kind::Disconnect => Err(ParseError::InvalidPayload),
        Kind::ConnectError => check_json(d).map(|_| None),
        Kind::Event | Kind::BinaryEvent => event_name(d).map(Some),
        Kind::Ack | Kind::BinaryAck => split_array(d).map(|a| Some((0..0, a))),
    }
}

fn json_err(e: json::JsonError) -> ParseError {
    match e {
        json::JsonError::Invalid => ParseError::InvalidJson,
        json::JsonError::TooDeep => ParseError::TooDeep,
    }
}

fn check_json(d: &[u8]) -> Result<(), ParseError> {
    json::validate(d).map_err(json_err)
}

/// Byte ranges of the elements of a JSON array.
pub type ArgRanges = SmallVec<[Range<u32>; 4]>;

/// Splits a JSON array into raw element ranges, validating the whole document (no trailing
/// bytes). Valid JSON that is not an array is `InvalidPayload`.
pub fn split_array(d: &[u8]) -> Result<ArgRanges, ParseError> {
    let mut out = SmallVec::new();
    let is_array =
        json::split_array(d, |r| out.push(r.start as u32..r.end as u32)).map_err(json_err)?;
    if is_array {
        Ok(out)
    } else {
        Err(ParseError::InvalidPayload)
    }
}

/// Splits an event payload into the raw event name (a JSON string or number) and argument
/// ranges; refuses reserved event names.
pub fn event_name(d: &[u8]) -> Result<(Range<u32>, ArgRanges), ParseError> {
    let mut items = split_array(d)?;
    if items.is_empty() {
        return Err(ParseError::InvalidPayload);
    }
    let name = items.remove(0);
    let raw = &d[name.start as usize..name.end as usize];
    match raw.first() {
        Some(b'"') => {
            let plain = &raw[1..raw.len() - 1];
            let reserved = if plain.contains(&b'\\') {
                let s: String = sonic_rs::from_slice(raw).map_err(|_| ParseError::InvalidJson)?;
                RESERVED_EVENTS.contains(&s.as_str())
            } else {
                RESERVED_EVENTS.iter().any(|r| r.as_bytes() == plain)
            };
            if reserved {
                return Err(ParseError::InvalidPayload);
            }
        }
        Some(b'0'..=b'9') | Some(b'-') => {}
        _ => return Err(ParseError::InvalidPayload),
    }
    Ok((name, items))
}

/// The event name of a validated event packet as text (unescaped when needed).
pub fn event_str<'a>(
    d: &'a [u8],
    name: &Range<u32>,
) -> Result<std::borrow::Cow<'a, str>, ParseError> {
    let raw = &d[name.start as usize..name.end as usize];
    if raw.first() != Some(&b'"') {
        return std::str::from_utf8(raw)
            .map(Into::into)
            .map_err(|_| ParseError::InvalidJson);
    }
    let plain = &raw[1..raw.len() - 1];
    if plain.contains(&b'\\') {
        sonic_rs::from_slice::<String>(raw)
            .map(Into::into)
            .map_err(|_| ParseError::InvalidJson)
    } else {
        std::str::from_utf8(plain)
            .map(Into::into)
            .map_err(|_| ParseError::InvalidJson)
    }
}

/// Writes the header of a packet, Engine.IO `4` prefix included: `4<type>[<n>-][<nsp>,][<id>]`.
pub fn write_header(
    out: &mut BytesMut,
    kind: Kind,
    nsp: &str,
    id: Option<u64>,
    attachments: usize,
) {
    out.put_u8(b'4');
    out.put_u8(kind.byte());
    if kind.is_binary() {
        out.put_slice(attachments.to_string().as_bytes());
        out.put_u8(b'-');
    }
    if nsp != "/" {
        out.put_slice(nsp.as_bytes());
        out.put_u8(b',');
    }
    if let Some(id) = id {
        out.put_slice(id.to_string().as_bytes());
    }
}

/// Encodes an event (`event` is `Some`) or an ack (`ack` true): the text packet, Engine.IO
/// prefix included, and its attachments. Arguments come serialized once by an
/// [`args::ArgWriter`].
pub fn encode_packet(
    nsp: &str,
    event: Option<&str>,
    id: Option<u64>,
    w: args::ArgWriter,
    ack: bool,
) -> (Bytes, Vec<Bytes>) {
    let binary = !w.attachments.is_empty();
    let kind = match (ack, binary) {
        (false, false) => Kind::Event,
        (false, true) => Kind::BinaryEvent,
        (true, false) => Kind::Ack,
        (true, true) => Kind::BinaryAck,
    };
    let mut out =
        BytesMut::with_capacity(16 + nsp.len() + event.map_or(0, |e| e.len()) + w.json.len());
    write_header(&mut out, kind, nsp, id, w.attachments.len());
    write_array(&mut out, event, &w.json);
    (out.freeze(), w.attachments)
}

/// Writes the JSON array `[<event>,<args>]` (or `[<args>]` without an event): the one place an
/// event's name and its serialized arguments are assembled.
pub fn write_array(out: &mut BytesMut, event: Option<&str>, args_json: &[u8]) {
    out.put_u8(b'[');
    if let Some(ev) = event {
        let _ = sonic_rs::to_writer((&mut *out).writer(), ev);
        if !args_json.is_empty() {
            out.put_u8(b',');
        }
    }
    out.put_slice(args_json);
    out.put_u8(b']');
}

/// A complete packet (Engine.IO prefix included) with a raw JSON payload.
pub fn encode(kind: Kind, nsp: &str, id: Option<u64>, data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(8 + nsp.len() + data.len());
    write_header(&mut out, kind, nsp, id, 0);
    out.put_slice(data);
    out.freeze()
}

/// The CONNECT reply `40[<nsp>,]{"sid":"..."}`.
pub fn connect_ok(nsp: &str, sid: &str) -> Bytes {
    encode(
        Kind::Connect,
        nsp,
        None,
        format!("{{\"sid\":\"{sid}\"}}").as_bytes(),
    )
}

/// A CONNECT_ERROR `44[<nsp>,]{"message":..[,"data":..]}`; `data` is raw JSON.
pub fn connect_error(nsp: &str, message: &str, data: Option<&[u8]>) -> Bytes {
    let mut body = b"{\"message\":".to_vec();
    body.extend_from_slice(sonic_rs::to_string(message).unwrap_or_default().as_bytes());
    if let Some(d) = data {
        body.extend_from_slice(b",\"data\":");
        body.extend_from_slice(d);
    }
    body.push(b'}');
    encode(Kind::ConnectError, nsp, None, &body)
}

/// A binary packet being reassembled from its attachments.
#[derive(Debug)]
pub struct Partial {
    /// The header packet.
    pub packet: Packet,
    /// Attachments received so far.
    pub attachments: Vec<Bytes>,
}

impl Partial {
    /// Adds one attachment; returns true when all have arrived.
    pub fn push(&mut self, data: Bytes) -> bool {
        self.attachments.push(data);
        self.attachments.len() >= self.packet.attachments
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Result<Packet, ParseError> {
        decode(Bytes::copy_from_slice(s.as_bytes()), 10)
    }

    #[test]
    fn decodes_exact_wire_strings() {
        let p = d("0").unwrap();
        assert_eq!(
            (p.kind, &p.nsp[..], p.id, &p.data[..]),
            (Kind::Connect, &b"/"[..], None, &b""[..])
        );
        let p = d("0/custom,{\"token\":\"abc\"}").unwrap();
        assert_eq!(
            (&p.nsp[..], &p.data[..]),
            (&b"/custom"[..], &b"{\"token\":\"abc\"}"[..])
        );
        let p = d("0/random").unwrap();
        assert_eq!(&p.nsp[..], b"/random");
        let p = d("1/custom,").unwrap();
        assert_eq!((p.kind, &p.nsp[..]), (Kind::Disconnect, &b"/custom"[..]));
        let p = d("2456[\"message-with-ack\",1,\"2\",{\"3\":[false]}]").unwrap();
        assert_eq!((p.kind, p.id), (Kind::Event, Some(456)));
        let p =
            d("52-789[\"m\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]")
                .unwrap();
        assert_eq!(
            (p.kind, p.attachments, p.id),
            (Kind::BinaryEvent, 2, Some(789))
        );
        let p = d("51-/a,3[\"x\",{\"_placeholder\":true,\"num\":0}]").unwrap();
        assert_eq!((&p.nsp[..], p.id), (&b"/a"[..], Some(3)));
        let p = d("3/a,12[]").unwrap();
        assert_eq!(
            (p.kind, p.id, &p.data[..]),
            (Kind::Ack, Some(12), &b"[]"[..])
        );
    }

    #[test]
    fn refuses_what_node_refuses() {
        assert_eq!(d("abc").unwrap_err(), ParseError::UnknownType);
        assert_eq!(d("").unwrap_err(), ParseError::UnknownType);
        assert_eq!(d("7").unwrap_err(), ParseError::UnknownType);
        assert_eq!(d("2{}").unwrap_err(), ParseError::InvalidPayload);
        assert_eq!(
            d("2abc[\"message-with-ack\",1]").unwrap_err(),
            ParseError::InvalidJson
        );
        assert_eq!(d("2[]").unwrap_err(), ParseError::InvalidPayload);
        assert_eq!(
            d("2[\"disconnect\"]").unwrap_err(),
            ParseError::InvalidPayload
        );
        assert_eq!(d("2[{}]").unwrap_err(), ParseError::InvalidPayload);
        assert_eq!(d("2[\"a\"]x").unwrap_err(), ParseError::InvalidJson);
        assert_eq!(d("2[\"a\"]]").unwrap_err(), ParseError::InvalidJson);
        assert_eq!(d("2[\"a\",]").unwrap_err(), ParseError::InvalidJson);
        assert_eq!(d("5[\"a\"]").unwrap_err(), ParseError::BadAttachments);
        assert_eq!(d("5x-[\"a\"]").unwrap_err(), ParseError::BadAttachments);
        assert_eq!(d("511-[\"a\"]").unwrap_err(), ParseError::BadAttachments);
        assert_eq!(d("0\"str\"").unwrap_err(), ParseError::InvalidPayload);
        assert_eq!(d("1{}").unwrap_err(), ParseError::InvalidPayload);
        assert_eq!(d("3{}").unwrap_err(), ParseError::InvalidPayload);
        assert_eq!(
            d("299999999999999999999999[\"a\"]").unwrap_err(),
            ParseError::BadAckId
        );
    }

    #[test]
    fn splits_event_arguments_without_parsing() {
        let data = br#"["message",1,"2",{"3":[true]}]"#;
        let (name, args) = event_name(data).unwrap();
        assert_eq!(
            &data[name.start as usize..name.end as usize],
            b"\"message\""
        );
        let raw: Vec<&[u8]> = args
            .iter()
            .map(|r| &data[r.start as usize..r.end as usize])
            .collect();
        assert_eq!(raw, vec![&b"1"[..], &b"\"2\""[..], &br#"{"3":[true]}"#[..]]);
        assert_eq!(split_array(b" [ ] ").unwrap().len(), 0);
    }

    #[test]
    fn survives_deep_nesting() {
        let depth = 100_000;
        let s = format!("2[\"a\",{}{}]", "[".repeat(depth), "]".repeat(depth));
        assert_eq!(d(&s).unwrap_err(), ParseError::TooDeep);
        let s = format!("2[\"a\",{}]", "[".repeat(depth));
        assert_eq!(d(&s).unwrap_err(), ParseError::TooDeep);
        // at the limit: parsed (on a stack like a shard's)
        let ok = format!(
            "2[\"a\",{}{}]",
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        let t = std::thread::Builder::new()
            .stack_size(16 << 20)
            .spawn(move || d(&ok).is_ok());
        assert!(t.unwrap().join().unwrap());
        let strings = format!("2[\"a\",\"{}\"]", "[".repeat(1000));
        assert!(d(&strings).is_ok());
    }

    #[test]
    fn encodes_exact_wire_strings() {
        assert_eq!(
            connect_ok("/", "abc"),
            Bytes::from_static(b"40{\"sid\":\"abc\"}")
        );
        assert_eq!(
            connect_ok("/custom", "abc"),
            Bytes::from_static(b"40/custom,{\"sid\":\"abc\"}")
        );
        assert_eq!(
            connect_error("/random", "Invalid namespace", None),
            Bytes::from_static(b"44/random,{\"message\":\"Invalid namespace\"}")
        );
        assert_eq!(
            connect_error("/", "no", Some(b"{\"code\":401}")),
            Bytes::from_static(b"44{\"message\":\"no\",\"data\":{\"code\":401}}")
        );
        assert_eq!(
            encode(Kind::Ack, "/", Some(456), b"[1]"),
            Bytes::from_static(b"43456[1]")
        );
        assert_eq!(
            encode(Kind::Disconnect, "/", None, b""),
            Bytes::from_static(b"41")
        );
        let mut out = BytesMut::new();
        write_header(&mut out, Kind::BinaryAck, "/", Some(789), 2);
        assert_eq!(&out[..], b"462-789");
        out.clear();
        write_header(&mut out, Kind::BinaryEvent, "/x", None, 1);
        assert_eq!(&out[..], b"451-/x,");
    }
}
