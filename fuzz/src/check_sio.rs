//! `sio_packet`: Socket.IO packets and event arguments.

use crate::*;

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
