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

/// Deepest JSON nesting accepted in a packet. Node crashes on 100k levels; sonic-rs validates
/// nested containers recursively (about 54 KB of stack per level in debug builds, far less in
/// release), so the limit is checked first, iteratively. Shard threads get 16 MiB stacks.
pub const MAX_DEPTH: usize = 64;

/// Iterative nesting check (strings and escapes skipped). Payloads shorter than the limit
/// cannot exceed it and are not scanned.
fn check_depth(d: &[u8]) -> Result<(), ParseError> {
    if d.len() <= MAX_DEPTH {
        return Ok(());
    }
    let (mut depth, mut in_str, mut esc) = (0usize, false, false);
    for &c in d {
        if in_str {
            if esc {
                esc = false;
            } else if c == b'\\' {
                esc = true;
            } else if c == b'"' {
                in_str = false;
            }
            continue;
        }
        match c {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(ParseError::TooDeep);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

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
    let p = Packet {
        kind,
        nsp,
        id,
        attachments,
        data,
    };
    validate(&p)?;
    Ok(p)
}

fn first_non_ws(d: &[u8]) -> Option<u8> {
    d.iter().copied().find(|c| !c.is_ascii_whitespace())
}

fn validate(p: &Packet) -> Result<(), ParseError> {
    let d = &p.data[..];
    check_depth(d)?;
    match p.kind {
        Kind::Connect => match first_non_ws(d) {
            None => Ok(()),
            Some(b'{') => check_json(d),
            Some(_) => {
                check_json(d)?;
                Err(ParseError::InvalidPayload)
            }
        },
        Kind::Disconnect => {
            if first_non_ws(d).is_none() {
                Ok(())
            } else {
                Err(ParseError::InvalidPayload)
            }
        }
        Kind::ConnectError => check_json(d),
        Kind::Event | Kind::BinaryEvent => {
            event_name(d)?;
            Ok(())
        }
        Kind::Ack | Kind::BinaryAck => split_array(d).map(|_| ()),
    }
}

fn check_json(d: &[u8]) -> Result<(), ParseError> {
    sonic_rs::from_slice::<sonic_rs::LazyValue>(d)
        .map(|_| ())
        .map_err(|_| ParseError::InvalidJson)
}

/// Byte ranges of the elements of a JSON array.
pub type ArgRanges = SmallVec<[Range<u32>; 4]>;

/// Splits a JSON array into raw element ranges, validating the whole array (no trailing bytes).
pub fn split_array(d: &[u8]) -> Result<SmallVec<[Range<u32>; 4]>, ParseError> {
    match first_non_ws(d) {
        Some(b'[') => {}
        None => return Err(ParseError::InvalidPayload),
        Some(_) => {
            check_json(d)?;
            return Err(ParseError::InvalidPayload);
        }
    }
    let base = d.as_ptr() as usize;
    let mut out = SmallVec::new();
    let mut end = d.iter().position(|&c| c == b'[').unwrap() + 1;
    for item in sonic_rs::to_array_iter(d) {
        let v = item.map_err(|_| ParseError::InvalidJson)?;
        let raw = v.as_raw_str();
        let s = raw.as_ptr() as usize - base;
        end = s + raw.len();
        out.push(s as u32..end as u32);
    }
    // after the last element: whitespace, ']', whitespace, nothing else
    let mut rest = d[end..]
        .iter()
        .copied()
        .skip_while(|c| c.is_ascii_whitespace());
    if rest.next() != Some(b']') || rest.any(|c| !c.is_ascii_whitespace()) {
        return Err(ParseError::InvalidJson);
    }
    Ok(out)
}

/// Splits an event payload into the raw event name (a JSON string) and argument ranges.
pub fn event_name(d: &[u8]) -> Result<(Range<u32>, ArgRanges), ParseError> {
    let mut items = split_array(d)?;
    if items.is_empty() {
        return Err(ParseError::InvalidPayload);
    }
    let name = items.remove(0);
    let raw = &d[name.start as usize..name.end as usize];
    match raw.first() {
        Some(b'"') => {
            let s: String = sonic_rs::from_slice(raw).map_err(|_| ParseError::InvalidJson)?;
            if RESERVED_EVENTS.contains(&s.as_str()) {
                return Err(ParseError::InvalidPayload);
            }
        }
        Some(b'0'..=b'9') | Some(b'-') => {}
        _ => return Err(ParseError::InvalidPayload),
    }
    Ok((name, items))
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
