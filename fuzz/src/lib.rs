//! Invariant checks for ringio's sans-IO parsers, shared by the libFuzzer targets
//! (`fuzz_targets/*.rs`, run with `cargo fuzz`) and the stable-toolchain `replay` driver
//! (`src/bin/replay.rs`). Every check panics (`assert!`) when an invariant breaks; "no panic" is
//! the weakest of them.
//!
//! Chunked feeds split the input at a point derived from a hash of the input itself (so seeds stay
//! plain protocol bytes), and short inputs are additionally fed one byte at a time.

use bytes::{Bytes, BytesMut};
use ringio::proto::{eio, http, sio, ws};
use sonic_rs::JsonContainerTrait as _;

/// Known, reported issues a run may be told to tolerate, as a comma-separated list in the
/// environment variable `RINGIO_FUZZ_KNOWN` (default: none, every check is strict). They exist so
/// a fuzzer can get past a bug that is already reported (a crash stops libFuzzer) while it stays
/// unfixed; see fuzz/README.md for each id.
///
/// - `sonic-value`: a Socket.IO argument need not parse as `sonic_rs::Value`; it is checked with
///   the JSON.parse grammar instead (sonic-rs' full parser refuses lone surrogate escapes and
///   numbers that overflow f64, which Node's JSON.parse accepts).
/// - `bad-u-escape`: the JSON.parse grammar check accepts `\u` followed by any 4 bytes (as
///   sonic-rs' lazy skip does, even a `"`), not only 4 hex digits.
/// - `formfeed`: the JSON.parse grammar check treats form feed (0x0C) as whitespace.
/// - `non-utf8`: `sio_packet` skips input that is not UTF-8 (sonic-rs' `LazyValue` parse, used
///   by `sio::decode` for CONNECT / CONNECT_ERROR payloads and non-array ACK/EVENT payloads, trips
///   a debug assertion on a non-UTF-8 byte, and is `from_utf8_unchecked` UB in release builds).
pub fn known(id: &str) -> bool {
    static KNOWN: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    KNOWN
        .get_or_init(|| {
            std::env::var("RINGIO_FUZZ_KNOWN")
                .unwrap_or_default()
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .iter()
        .any(|k| k == id)
}

/// Every target: name (= `fuzz/seeds/<name>/`, `fuzz/corpus/<name>/`) and check function.
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("http_head", http_head),
    ("ws_decoder", ws_decoder),
    ("eio_payload", eio_payload),
    ("sio_packet", sio_packet),
];

/// Inputs up to this length are also fed one byte at a time.
const BYTEWISE_MAX: usize = 256;

/// FNV-1a: a cheap, deterministic split point chosen by the input's contents.
fn split_point(data: &[u8]) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (h % (data.len() as u64 + 1)) as usize
}

/// The chunkings every incremental check runs: two chunks at a hashed point, two chunks at the
/// middle, and (short inputs) one byte at a time.
fn chunkings(data: &[u8]) -> Vec<Vec<usize>> {
    let n = data.len();
    let mut out = vec![vec![split_point(data), n], vec![n / 2, n]];
    if n <= BYTEWISE_MAX {
        out.push((1..=n).collect());
    }
    out
}

/// Chunks of `data` ending at each cut in `cuts` (cuts ascending, last == data.len()).
fn chunks<'a>(data: &'a [u8], cuts: &'a [usize]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut from = 0;
    cuts.iter().map(move |&to| {
        let c = &data[from..to];
        from = to;
        c
    })
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

// ------------------------------------------------------------------------------------------------
// http_head

/// Everything observable about a parsed head (Head has no PartialEq).
#[derive(Debug, PartialEq)]
struct HeadView {
    method: http::Method,
    path: String,
    query: String,
    content_length: usize,
    chunked: bool,
    upgrade_websocket: bool,
    keep_alive: bool,
    ws_key: Option<Vec<u8>>,
    ws_version: Option<String>,
    origin: Option<String>,
    request_headers: Option<String>,
    headers: Vec<(String, String)>,
}

impl HeadView {
    fn of(h: &http::Head) -> HeadView {
        HeadView {
            method: h.method,
            path: h.path().to_owned(),
            query: h.query().to_owned(),
            content_length: h.content_length,
            chunked: h.chunked,
            upgrade_websocket: h.upgrade_websocket,
            keep_alive: h.keep_alive,
            ws_key: h.ws_key().map(<[u8]>::to_vec),
            ws_version: h.ws_version().map(str::to_owned),
            origin: h.origin().map(str::to_owned),
            request_headers: h.request_headers().map(str::to_owned),
            headers: h.headers(),
        }
    }
}

/// The final outcome of feeding a byte stream to `parse_head`.
#[derive(Debug, PartialEq)]
enum HttpOutcome {
    /// A head, and the bytes left in the buffer after it.
    Head(HeadView, Vec<u8>),
    /// Still incomplete after all input.
    NeedMore,
    Err(http::HttpError),
}

/// Feeds `data` in the chunks given by `cuts`, calling `parse_head` after each chunk until it
/// returns a head or an error (the server stops reading heads at either).
fn http_feed(data: &[u8], cuts: &[usize]) -> HttpOutcome {
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let mut it = chunks(data, cuts);
    for chunk in it.by_ref() {
        buf.extend_from_slice(chunk);
        fed += chunk.len();
        let before = buf.clone();
        match http::parse_head(&mut buf) {
            Ok(None) => assert_eq!(buf, before, "Ok(None) must not consume"),
            Ok(Some(h)) => {
                let consumed = fed - buf.len();
                assert_eq!(
                    &buf[..],
                    &data[consumed..fed],
                    "remaining is not the suffix"
                );
                let mut rest = buf.to_vec();
                for c in it {
                    rest.extend_from_slice(c);
                }
                return HttpOutcome::Head(HeadView::of(&h), rest);
            }
            Err(e) => {
                assert_eq!(buf, before, "Err must not consume");
                return HttpOutcome::Err(e);
            }
        }
    }
    HttpOutcome::NeedMore
}

/// `http::parse_head` on arbitrary bytes: consumed prefix + remaining == input, path/query/header
/// fields are substrings of the consumed head, and chunked feeds give the one-shot result.
pub fn http_head(data: &[u8]) {
    let mut buf = BytesMut::from(data);
    let one_shot = match http::parse_head(&mut buf) {
        Ok(Some(h)) => {
            assert!(buf.len() < data.len(), "a head consumes at least one byte");
            let consumed = data.len() - buf.len();
            assert_eq!(consumed + buf.len(), data.len());
            assert!(
                consumed <= http::MAX_HEAD,
                "head of {consumed} bytes over MAX_HEAD"
            );
            assert_eq!(
                &buf[..],
                &data[consumed..],
                "remaining is not the input's suffix"
            );
            let head = &data[..consumed];
            assert_eq!(head.last(), Some(&b'\n'), "head does not end a line");
            assert!(contains(head, h.path().as_bytes()), "path not in input");
            assert!(contains(head, h.query().as_bytes()), "query not in input");
            assert!(!h.path().contains('?'), "path keeps the '?'");
            if !h.query().is_empty() {
                let pq = format!("{}?{}", h.path(), h.query());
                assert!(contains(head, pq.as_bytes()), "path?query not in input");
            }
            for v in [h.ws_key()].into_iter().flatten() {
                assert!(contains(head, v), "ws key not in input");
            }
            for v in [h.ws_version(), h.origin(), h.request_headers()]
                .into_iter()
                .flatten()
            {
                assert!(contains(head, v.as_bytes()), "header value not in input");
                assert_eq!(v.trim_matches(|c: char| c.is_ascii_whitespace()), v);
            }
            if h.chunked || h.content_length > 0 || h.upgrade_websocket {
                assert!(!h.headers().is_empty(), "header flags without headers");
            }
            // The accessors and response builders used on every request must not panic.
            for name in ["EIO", "transport", "sid", "t", ""] {
                if let Some(v) = h.param(name) {
                    assert!(contains(head, v.as_bytes()));
                    let _ = http::percent_decode(v);
                }
            }
            // what a Handshake keeps: the raw head (u16 offsets) and the path/query ranges
            let (pr, qr) = h.path_and_query_ranges();
            assert!(
                h.raw().len() <= http::MAX_HEAD,
                "head over MAX_HEAD accepted"
            );
            assert!(pr.end <= h.raw().len() && qr.end <= h.raw().len());
            assert_eq!(std::str::from_utf8(&h.raw()[pr]).unwrap_or(""), h.path());
            assert_eq!(std::str::from_utf8(&h.raw()[qr]).unwrap_or(""), h.query());
            let pre = http::preflight_response(&http::Cors::Reflect, &h);
            assert!(pre.ends_with(b"\r\n\r\n"));
            HttpOutcome::Head(HeadView::of(&h), buf.to_vec())
        }
        Ok(None) => {
            assert_eq!(&buf[..], data, "Ok(None) must not consume");
            assert!(
                data.len() <= http::MAX_HEAD,
                "incomplete head over MAX_HEAD not refused"
            );
            HttpOutcome::NeedMore
        }
        Err(e) => {
            assert_eq!(&buf[..], data, "Err must not consume");
            assert!(!e.response().is_empty());
            HttpOutcome::Err(e)
        }
    };
    for cuts in chunkings(data) {
        let got = http_feed(data, &cuts);
        assert_eq!(got, one_shot, "chunked feed {cuts:?} differs from one-shot");
    }
}

// ------------------------------------------------------------------------------------------------
// ws_decoder

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

// ------------------------------------------------------------------------------------------------
// eio_payload

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

// ------------------------------------------------------------------------------------------------
// sio_packet

/// Most attachments the target allows `sio::decode`.
pub const SIO_MAX_ATTACHMENTS: usize = 10;

/// An argument must parse as `sonic_rs::Value` (what typed handlers deserialize with) unless the
/// `sonic-value` issue is tolerated, and must always be JSON that Node's JSON.parse accepts.
fn json_valid(raw: &[u8]) -> bool {
    (known("sonic-value") || sonic_rs::from_slice::<sonic_rs::Value>(raw).is_ok())
        && node_json::valid(raw)
}

/// A validator for the grammar of ECMAScript's `JSON.parse` (ECMA-404), the oracle for what
/// Node's socket.io-parser accepts. Unlike `sonic_rs::Value` it accepts lone surrogate escapes and
/// numbers of any size (JSON.parse gives `Infinity`); bytes >= 0x80 in strings are accepted (the
/// text was UTF-8 decoded before JSON.parse sees it).
pub mod node_json {
    use super::known;

    /// Deeper than this is not judged (treated as valid) to keep the recursion bounded.
    const MAX_DEPTH: usize = 2000;

    /// True when `d` is exactly one JSON value with optional JSON whitespace around it.
    pub fn valid(d: &[u8]) -> bool {
        let mut p = P {
            d,
            i: 0,
            deep: false,
        };
        p.ws();
        let ok = p.value(0) && {
            p.ws();
            p.i == d.len()
        };
        ok || p.deep
    }

    struct P<'a> {
        d: &'a [u8],
        i: usize,
        deep: bool,
    }

    impl P<'_> {
        fn peek(&self) -> Option<u8> {
            self.d.get(self.i).copied()
        }
        fn eat(&mut self, c: u8) -> bool {
            let hit = self.peek() == Some(c);
            self.i += usize::from(hit);
            hit
        }
        fn ws(&mut self) {
            while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
                self.i += 1;
            }
            if known("formfeed") && self.peek() == Some(0x0c) {
                self.i += 1;
                self.ws();
            }
        }
        fn lit(&mut self, s: &[u8]) -> bool {
            let hit = self.d[self.i..].starts_with(s);
            self.i += if hit { s.len() } else { 0 };
            hit
        }
        fn digits(&mut self) -> usize {
            let s = self.i;
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.i += 1;
            }
            self.i - s
        }
        fn value(&mut self, depth: usize) -> bool {
            if depth > MAX_DEPTH {
                self.deep = true;
                return false;
            }
            match self.peek() {
                Some(b'{') => {
                    self.i += 1;
                    self.ws();
                    if self.eat(b'}') {
                        return true;
                    }
                    loop {
                        if !self.string() {
                            return false;
                        }
                        self.ws();
                        if !self.eat(b':') {
                            return false;
                        }
                        self.ws();
                        if !self.value(depth + 1) {
                            return false;
                        }
                        self.ws();
                        if self.eat(b'}') {
                            return true;
                        }
                        if !self.eat(b',') {
                            return false;
                        }
                        self.ws();
                    }
                }
                Some(b'[') => {
                    self.i += 1;
                    self.ws();
                    if self.eat(b']') {
                        return true;
                    }
                    loop {
                        if !self.value(depth + 1) {
                            return false;
                        }
                        self.ws();
                        if self.eat(b']') {
                            return true;
                        }
                        if !self.eat(b',') {
                            return false;
                        }
                        self.ws();
                    }
                }
                Some(b'"') => self.string(),
                Some(b't') => self.lit(b"true"),
                Some(b'f') => self.lit(b"false"),
                Some(b'n') => self.lit(b"null"),
                Some(b'-' | b'0'..=b'9') => self.number(),
                _ => false,
            }
        }
        fn number(&mut self) -> bool {
            self.eat(b'-');
            if !self.eat(b'0') && self.digits() == 0 {
                return false;
            }
            if self.eat(b'.') && self.digits() == 0 {
                return false;
            }
            if self.eat(b'e') || self.eat(b'E') {
                let _ = self.eat(b'+') || self.eat(b'-');
                if self.digits() == 0 {
                    return false;
                }
            }
            true
        }
        fn string(&mut self) -> bool {
            if !self.eat(b'"') {
                return false;
            }
            loop {
                match self.peek() {
                    None => return false,
                    Some(b'"') => {
                        self.i += 1;
                        return true;
                    }
                    Some(0..=0x1f) => return false,
                    Some(b'\\') => {
                        self.i += 1;
                        match self.peek() {
                            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                                self.i += 1
                            }
                            Some(b'u') => {
                                self.i += 1;
                                let hex = self.d.len() >= self.i + 4
                                    && self.d[self.i..self.i + 4].iter().all(u8::is_ascii_hexdigit);
                                if hex || (known("bad-u-escape") && self.d.len() >= self.i + 4) {
                                    // sonic-rs skips any 4 bytes after `\u`, quotes included.
                                    self.i += 4;
                                } else {
                                    return false;
                                }
                            }
                            _ => return false,
                        }
                    }
                    Some(_) => self.i += 1,
                }
            }
        }
    }
}

/// Checks `split_array` ranges: ascending, disjoint, inside `d`, each valid JSON; and that an
/// accepted array is valid JSON as a whole with as many elements.
fn check_ranges(d: &[u8], ranges: &[std::ops::Range<u32>]) {
    let mut prev_end = 0u32;
    for r in ranges {
        assert!(
            r.start >= prev_end && r.start < r.end,
            "range {r:?} out of order/empty"
        );
        assert!(
            r.end as usize <= d.len(),
            "range {r:?} past the data ({})",
            d.len()
        );
        let raw = &d[r.start as usize..r.end as usize];
        assert!(
            json_valid(raw),
            "element {:?} is not valid JSON",
            String::from_utf8_lossy(raw)
        );
        prev_end = r.end;
    }
}

fn check_split_array(d: &[u8]) {
    if let Ok(ranges) = sio::split_array(d) {
        check_ranges(d, &ranges);
        assert!(
            node_json::valid(d),
            "split_array accepted what JSON.parse refuses"
        );
        if !known("sonic-value") {
            let whole: sonic_rs::Value =
                sonic_rs::from_slice(d).expect("split_array accepted invalid JSON");
            let arr = whole.as_array().expect("split_array on non-array");
            assert_eq!(
                arr.len(),
                ranges.len(),
                "element count differs from a full parse"
            );
        }
    }
}

fn check_event_name(d: &[u8]) -> bool {
    match sio::event_name(d) {
        Ok((name, args)) => {
            let mut all = vec![name.clone()];
            all.extend(args.iter().cloned());
            check_ranges(d, &all);
            let raw = &d[name.start as usize..name.end as usize];
            assert!(
                matches!(raw[0], b'"' | b'-' | b'0'..=b'9'),
                "event name kind"
            );
            if raw[0] == b'"' {
                let s: String = sonic_rs::from_slice(raw).expect("name string");
                assert!(
                    !sio::RESERVED_EVENTS.contains(&s.as_str()),
                    "reserved name accepted"
                );
            }
            true
        }
        Err(_) => false,
    }
}

/// `sio::decode(_, 10)`: event payloads split into a name and in-bounds, valid-JSON arguments;
/// acks are JSON arrays; the data is the packet's suffix; re-encoding (`encode` for plain kinds,
/// `write_header` + data for binary kinds) and decoding again gives the same packet.
pub fn sio_packet(data: &[u8]) {
    if known("non-utf8") && std::str::from_utf8(data).is_err() {
        return;
    }
    // The helpers on the raw input too. `decode` refuses non-UTF-8 before calling them, so on
    // such input they only have to not panic.
    if std::str::from_utf8(data).is_ok() {
        check_split_array(data);
        check_event_name(data);
    } else {
        let _ = sio::split_array(data);
        let _ = sio::event_name(data);
    }

    let msg = Bytes::copy_from_slice(data);
    let Ok(p) = sio::decode(msg.clone(), SIO_MAX_ATTACHMENTS) else {
        return;
    };
    assert!(p.attachments <= SIO_MAX_ATTACHMENTS);
    if !p.kind.is_binary() {
        assert_eq!(p.attachments, 0);
    }
    assert_eq!(p.nsp.first(), Some(&b'/'), "namespace without '/'");
    assert!(!p.nsp.contains(&b','), "namespace with ','");
    assert!(data.ends_with(&p.data), "data is not the packet's suffix");
    match p.kind {
        sio::Kind::Event | sio::Kind::BinaryEvent => {
            assert!(
                check_event_name(&p.data),
                "event accepted but event_name fails"
            );
            check_split_array(&p.data);
        }
        sio::Kind::Ack | sio::Kind::BinaryAck => {
            assert!(
                sio::split_array(&p.data).is_ok(),
                "ack accepted but split_array fails"
            );
            check_split_array(&p.data);
        }
        sio::Kind::Connect => {
            let blank = p.data.iter().all(|c| c.is_ascii_whitespace());
            assert!(
                blank || json_valid(&p.data),
                "CONNECT payload is not valid JSON"
            );
        }
        sio::Kind::ConnectError => {
            assert!(
                json_valid(&p.data),
                "CONNECT_ERROR payload is not valid JSON"
            );
        }
        sio::Kind::Disconnect => {}
    }
    // Re-encode. Namespaces are written from &str, so only UTF-8 ones can round-trip.
    let Ok(nsp) = std::str::from_utf8(&p.nsp) else {
        return;
    };
    let wire = if p.kind.is_binary() {
        let mut out = BytesMut::new();
        sio::write_header(&mut out, p.kind, nsp, p.id, p.attachments);
        out.extend_from_slice(&p.data);
        out.freeze()
    } else {
        sio::encode(p.kind, nsp, p.id, &p.data)
    };
    assert_eq!(wire.first(), Some(&b'4'), "no Engine.IO prefix");
    let again = sio::decode(wire.slice(1..), SIO_MAX_ATTACHMENTS);
    assert_eq!(
        again.as_ref(),
        Ok(&p),
        "re-encoded as {:?}",
        String::from_utf8_lossy(&wire)
    );
}

#[cfg(test)]
mod tests {
    use super::node_json::valid;

    #[test]
    fn node_json_grammar() {
        for ok in [
            "1",
            " [ ] ",
            "-0.5e+3",
            "\"\\ud83d\"",
            "1e999",
            "{\"a\":[true,false,null]}",
            "\"\\u00e9\\n\\/\"",
            "[[[[]]]]",
            "\"\u{e9}\"",
        ] {
            assert!(valid(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            "01",
            "1.",
            "-",
            ".5",
            "[1,]",
            "{\"a\"}",
            "{1:2}",
            "\"\\q\"",
            "\"\\uZZZZ\"",
            "\"\\u12\"",
            "\"\x01\"",
            "tru",
            "[1 2]",
            "\x0c1",
            "1 x",
            "\"abc",
        ] {
            assert!(!valid(bad.as_bytes()), "{bad:?}");
        }
    }
}
