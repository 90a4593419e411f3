//! Frame codec tests: exact bytes, limits, every close code.
use super::*;
use OpCode::*;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const MAX: usize = 1 << 20;

fn hdr(op: OpCode, len: usize, mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = [0u8; 14];
    let n = encode_header(op, len, mask, &mut out);
    out[..n].to_vec()
}

/// Raw frame with first byte `b0`; payload masked when `mask` is Some.
fn raw(b0: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut f = frame(Binary, payload, mask);
    f[0] = b0;
    f.to_vec()
}

fn msg(op: OpCode, p: &[u8]) -> Message {
    let p = Bytes::copy_from_slice(p);
    match op {
        Text => Message::Text(p),
        Binary => Message::Binary(p),
        Ping => Message::Ping(p),
        Pong => Message::Pong(p),
        _ => unreachable!(),
    }
}

fn decode_one(role: Role, bytes: &[u8]) -> Result<Option<Message>, WsError> {
    Decoder::new(role, MAX).decode(&mut BytesMut::from(bytes))
}

#[test]
fn encode_header_boundaries() {
    let k = KEY;
    assert_eq!(hdr(Text, 0, None), [0x81, 0]);
    assert_eq!(hdr(Binary, 125, None), [0x82, 125]);
    assert_eq!(hdr(Binary, 126, None), [0x82, 126, 0, 126]);
    assert_eq!(hdr(Binary, 65535, None), [0x82, 126, 0xff, 0xff]);
    assert_eq!(
        hdr(Binary, 65536, None),
        [0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]
    );
    assert_eq!(
        hdr(Ping, 125, Some(k)),
        [0x89, 0xfd, 0x37, 0xfa, 0x21, 0x3d]
    );
    assert_eq!(hdr(Text, 126, Some(k))[..4], [0x81, 0xfe, 0, 126]);
    assert_eq!(hdr(Pong, 65535, Some(k))[..4], [0x8a, 0xfe, 0xff, 0xff]);
    assert_eq!(
        hdr(Close, 65536, Some(k))[..10],
        [0x88, 0xff, 0, 0, 0, 0, 0, 1, 0, 0]
    );
    assert_eq!(hdr(Close, 65536, Some(k))[10..], k);
    assert_eq!(hdr(Pong, 65535, Some(k)).len(), 8);
    assert_eq!(hdr(Continuation, 1, None), [0x80, 1]);
    // RFC 6455 §5.7: masked and unmasked "Hello".
    let masked = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    assert_eq!(client_frame(Text, b"Hello", KEY)[..], masked);
    assert_eq!(server_frame(Text, b"Hello")[..], *b"\x81\x05Hello");
}

fn cases() -> Vec<(OpCode, Vec<u8>, Message)> {
    let big: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
    let close = close_payload(1000, "bye").to_vec();
    let reason = Bytes::from_static(b"bye");
    vec![
        (Text, "héllo €".into(), msg(Text, "héllo €".as_bytes())),
        (Text, vec![], msg(Text, b"")),
        (Binary, big.clone(), msg(Binary, &big)),
        (Binary, big[..300].to_vec(), msg(Binary, &big[..300])),
        (Ping, b"ping".to_vec(), msg(Ping, b"ping")),
        (Pong, vec![], msg(Pong, b"")),
        (Close, vec![], Message::Close(None)),
        (Close, close, Message::Close(Some((1000, reason)))),
    ]
}

#[test]
fn round_trips_both_roles() {
    for (op, payload, want) in cases() {
        let f = client_frame(op, &payload, KEY);
        assert_eq!(decode_one(Role::Server, &f), Ok(Some(want.clone())));
        let f = server_frame(op, &payload);
        assert_eq!(decode_one(Role::Client, &f), Ok(Some(want)));
    }
}

#[test]
fn unfragmented_payload_is_zero_copy() {
    let mut buf = BytesMut::from(&server_frame(Binary, &[7u8; 300])[..]);
    let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
    let got = Decoder::new(Role::Client, MAX).decode(&mut buf);
    let Ok(Some(Message::Binary(p))) = got else {
        panic!("{got:?}")
    };
    assert!(range.contains(&(p.as_ptr() as usize)) && buf.is_empty());
}

#[test]
fn byte_at_a_time() {
    for (op, payload, want) in cases() {
        let f = client_frame(op, &payload, KEY);
        let (mut dec, mut buf) = (Decoder::new(Role::Server, MAX), BytesMut::new());
        for (i, &byte) in f.iter().enumerate() {
            buf.put_u8(byte);
            let done = i + 1 == f.len();
            assert_eq!(dec.decode(&mut buf), Ok(done.then(|| want.clone())));
        }
        assert!(buf.is_empty());
    }
}

#[test]
fn fragmented_text_split_code_point_with_interleaved_ping() {
    let text = "a€b".as_bytes(); // € = e2 82 ac
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&raw(0x01, &text[..2], Some(KEY))); // Text, !FIN
    buf.extend_from_slice(&client_frame(Ping, b"p", KEY));
    buf.extend_from_slice(&raw(0x00, &text[2..3], Some(KEY))); // Cont, !FIN
    buf.extend_from_slice(&raw(0x80, &text[3..], Some(KEY))); // Cont, FIN
    let mut dec = Decoder::new(Role::Server, MAX);
    assert_eq!(dec.decode(&mut buf), Ok(Some(msg(Ping, b"p"))));
    assert!(dec.in_fragmented_message());
    assert_eq!(dec.decode(&mut buf), Ok(Some(msg(Text, text))));
    assert!(buf.is_empty() && !dec.in_fragmented_message());
    // Invalid UTF-8 only detectable on the assembled message.
    let mut bad = raw(0x01, &[0xe2, 0x82], None);
    bad.extend_from_slice(&raw(0x80, &[0x41], None));
    assert_eq!(decode_one(Role::Client, &bad), Err(WsError::InvalidUtf8));
}

#[test]
fn two_frames_in_one_buffer() {
    let mut buf = BytesMut::from(&server_frame(Text, b"one")[..]);
    buf.extend_from_slice(&server_frame(Binary, b"two"));
    let mut dec = Decoder::new(Role::Client, MAX);
    assert_eq!(dec.decode(&mut buf), Ok(Some(msg(Text, b"one"))));
    assert_eq!(dec.decode(&mut buf), Ok(Some(msg(Binary, b"two"))));
    assert_eq!(dec.decode(&mut buf), Ok(None));
}

#[test]
fn too_large_from_header_alone() {
    // Masked 64-bit length header: only the first 10 of its 14 bytes present.
    let mut buf = BytesMut::from(&hdr(Binary, 1 << 30, Some(KEY))[..10]);
    let err = Decoder::new(Role::Server, 1024)
        .decode(&mut buf)
        .unwrap_err();
    assert_eq!(
        (err, err.close_code()),
        (WsError::MessageTooLarge { max: 1024 }, 1009)
    );
    assert!(buf.capacity() < 1 << 20);
    // The fragment sum counts too; exactly at the limit is fine.
    let mut f = raw(0x02, &[0; 600], None);
    f.extend_from_slice(&hdr(Continuation, 600, None));
    let mut dec = Decoder::new(Role::Client, 1024);
    let got = dec.decode(&mut BytesMut::from(&f[..]));
    assert_eq!(got, Err(WsError::MessageTooLarge { max: 1024 }));
    let f = server_frame(Binary, &[0; 1024]);
    let got = Decoder::new(Role::Client, 1024).decode(&mut BytesMut::from(&f[..]));
    assert_eq!(got, Ok(Some(msg(Binary, &[0; 1024]))));
}

#[test]
fn error_variants_and_close_codes() {
    use WsError::*;
    let m = |b0: u8, p: &[u8]| raw(b0, p, Some(KEY));
    let mut open_then_text = m(0x01, b"a");
    open_then_text.extend_from_slice(&m(0x81, b"b"));
    let mut long_len = vec![0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0];
    long_len.extend_from_slice(&KEY);
    let cases: Vec<(Vec<u8>, WsError, u16)> = vec![
        (raw(0x81, b"x", None), UnmaskedFrame, 1002),
        (m(0xC1, b"x"), ReservedBits, 1002),
        (m(0x83, b"x"), ReservedOpCode(3), 1002),
        (m(0x8B, b"x"), ReservedOpCode(11), 1002),
        (m(0x89, &[0; 126]), ControlFrameTooLong, 1002),
        (m(0x09, b"x"), FragmentedControlFrame, 1002),
        (m(0x80, b"x"), UnexpectedContinuation, 1002),
        (open_then_text, ExpectedContinuation, 1002),
        (m(0x81, &[0xff]), InvalidUtf8, 1007),
        (m(0x88, &[3]), InvalidClosePayload, 1002),
        (m(0x88, &[0x03, 0xe8, 0xc3]), InvalidUtf8, 1007),
        (long_len, InvalidLength, 1002),
    ];
    for (bytes, want, code) in cases {
        assert_eq!(decode_one(Role::Server, &bytes), Err(want), "{bytes:02x?}");
        assert_eq!(want.close_code(), code);
        assert!(!want.to_string().is_empty());
    }
    let got = decode_one(Role::Client, &client_frame(Text, b"x", KEY));
    assert_eq!((got, MaskedFrame.close_code()), (Err(MaskedFrame), 1002));
    assert_eq!(MessageTooLarge { max: 1 }.close_code(), 1009);
    for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
        let f = server_frame(Close, &close_payload(code, ""));
        assert_eq!(decode_one(Role::Client, &f), Err(InvalidCloseCode(code)));
        assert_eq!(InvalidCloseCode(code).close_code(), 1002);
    }
    for code in [1000, 1001, 1002, 1003, 1007, 1011, 1012, 1014, 3000, 4999] {
        let f = server_frame(Close, &close_payload(code, "ok"));
        let want = Message::Close(Some((code, Bytes::from_static(b"ok"))));
        assert_eq!(decode_one(Role::Client, &f), Ok(Some(want)));
    }
}

#[test]
fn non_minimal_length_accepted() {
    let got = decode_one(Role::Client, &[0x82, 126, 0, 3, 1, 2, 3]);
    assert_eq!(got, Ok(Some(msg(Binary, &[1, 2, 3]))));
}

#[test]
fn accept_key_rfc_example() {
    // RFC 6455 §1.3 worked example.
    let got = accept_key(b"dGhlIHNhbXBsZSBub25jZQ==");
    assert_eq!(got, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#[test]
fn apply_mask_matches_naive() {
    let key = [0x01, 0x80, 0xfe, 0x5a];
    for len in 0..40 {
        for off in 0..4 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let mut fast = data.clone();
            apply_mask(&mut fast, key, off);
            let naive = data.iter().enumerate().map(|(i, b)| b ^ key[(i + off) % 4]);
            assert_eq!(fast, naive.collect::<Vec<u8>>(), "len {len} off {off}");
        }
    }
}

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_frames_random_splits() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..200 {
        let role = [Role::Server, Role::Client][rng.below(2)];
        let (mut wire, mut want) = (Vec::new(), Vec::new());
        let push = |rng: &mut Rng, wire: &mut Vec<u8>, b0: u8, p: &[u8]| {
            let mask = (role == Role::Server).then(|| (rng.next() as u32).to_ne_bytes());
            wire.extend_from_slice(&raw(b0, p, mask));
        };
        for _ in 0..1 + rng.below(6) {
            let len = [0, 1, 5, 125, 126, 127, 1000, 65535, 65536][rng.below(9)];
            let kind = rng.below(4);
            let op = [Text, Binary, Ping, Pong][kind];
            let payload: Vec<u8> = match op {
                Text => {
                    let chars = ['a', 'é', '€', '😀'];
                    let s: String = (0..len / 3).map(|_| chars[rng.below(4)]).collect();
                    s.into()
                }
                Binary => (0..len).map(|_| rng.next() as u8).collect(),
                _ => (0..len.min(125)).map(|_| rng.next() as u8).collect(),
            };
            if kind < 2 && rng.below(2) == 0 {
                // Fragment at random byte offsets, sometimes with a ping between.
                let mut cuts: Vec<usize> = (0..rng.below(4))
                    .map(|_| rng.below(payload.len() + 1))
                    .collect();
                cuts.push(payload.len());
                cuts.sort_unstable();
                let mut from = 0;
                for (i, &to) in cuts.iter().enumerate() {
                    let fin = if i + 1 == cuts.len() { 0x80 } else { 0 };
                    let opc = if i == 0 { op.as_u8() } else { 0 };
                    push(&mut rng, &mut wire, fin | opc, &payload[from..to]);
                    from = to;
                    if fin == 0 && rng.below(3) == 0 {
                        push(&mut rng, &mut wire, 0x89, b"hi");
                        want.push(msg(Ping, b"hi"));
                    }
                }
            } else {
                push(&mut rng, &mut wire, 0x80 | op.as_u8(), &payload);
            }
            want.push(msg(op, &payload));
        }
        let (mut dec, mut buf) = (Decoder::new(role, MAX), BytesMut::new());
        let (mut got, mut pos) = (Vec::new(), 0);
        while pos < wire.len() {
            let cap = [16, 70_000][rng.below(2)];
            let step = 1 + rng.below((wire.len() - pos).min(cap));
            buf.extend_from_slice(&wire[pos..pos + step]);
            pos += step;
            while let Some(m) = dec.decode(&mut buf).expect("valid stream") {
                got.push(m);
            }
        }
        assert_eq!(got, want);
        assert!(buf.is_empty() && !dec.in_fragmented_message());
    }
}
