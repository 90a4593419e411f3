//! RFC 6455 WebSocket frame codec (sans-IO, zero-copy).
//!
//! Owns: frame header encoding/decoding, masking, fragment reassembly, the
//! RFC 6455 framing rules (RSV bits, opcodes, masking direction, control
//! frame limits, close codes), UTF-8 validation of text messages and close
//! reasons, message size limits checked from the length header, and the
//! `Sec-WebSocket-Accept` computation.
//!
//! Must not: perform IO, be async, read clocks, know about HTTP, Engine.IO or
//! Socket.IO, or depend on anything else in this crate. Callers feed bytes in
//! and send the bytes it builds; after any [`WsError`] the connection must be
//! failed (close with [`WsError::close_code`]) and the [`Decoder`] dropped.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Which end of the connection this codec instance is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Server: decodes masked client frames.
    Server,
    /// Client: decodes unmasked server frames.
    Client,
}

/// A WebSocket frame opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    /// 0x0: continuation of a fragmented message.
    Continuation,
    /// 0x1: UTF-8 text.
    Text,
    /// 0x2: binary data.
    Binary,
    /// 0x8: connection close.
    Close,
    /// 0x9: ping.
    Ping,
    /// 0xA: pong.
    Pong,
}

impl OpCode {
    /// The 4-bit wire value.
    pub fn as_u8(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// Parses a 4-bit wire value; `None` for reserved opcodes.
    pub fn from_u8(v: u8) -> Option<OpCode> {
        Some(match v {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return None,
        })
    }

    /// True for close, ping and pong.
    pub fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// A complete decoded message (data messages are fully reassembled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Text message; the bytes are valid UTF-8.
    Text(Bytes),
    /// Binary message.
    Binary(Bytes),
    /// Ping with its application data.
    Ping(Bytes),
    /// Pong with its application data.
    Pong(Bytes),
    /// Close, with `(code, reason)` when the peer sent a code; the reason is
    /// valid UTF-8.
    Close(Option<(u16, Bytes)>),
}

/// A protocol violation detected while decoding; the connection must fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsError {
    /// Server role received a frame without the mask bit.
    UnmaskedFrame,
    /// Client role received a masked frame.
    MaskedFrame,
    /// RSV1-3 set while no extension is negotiated.
    ReservedBits,
    /// Opcode 3-7 or 11-15.
    ReservedOpCode(u8),
    /// Control frame payload longer than 125 bytes.
    ControlFrameTooLong,
    /// Control frame without FIN.
    FragmentedControlFrame,
    /// Continuation frame with no fragmented message in progress.
    UnexpectedContinuation,
    /// New text/binary frame while a fragmented message is in progress.
    ExpectedContinuation,
    /// Text payload or close reason is not valid UTF-8.
    InvalidUtf8,
    /// The message (or the sum of its fragments) exceeds the limit.
    MessageTooLarge {
        /// The configured limit in bytes.
        max: usize,
    },
    /// Close payload of exactly one byte.
    InvalidClosePayload,
    /// Close code not allowed on the wire.
    InvalidCloseCode(u16),
    /// 64-bit payload length with the most significant bit set.
    InvalidLength,
}

impl WsError {
    /// The close code to send when failing the connection for this error:
    /// 1007 for invalid UTF-8, 1009 for too large, 1002 otherwise.
    pub fn close_code(&self) -> u16 {
        match self {
            WsError::InvalidUtf8 => 1007,
            WsError::MessageTooLarge { .. } => 1009,
            _ => 1002,
        }
    }
}

impl std::fmt::Display for WsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WsError::UnmaskedFrame => f.write_str("client frame is not masked"),
            WsError::MaskedFrame => f.write_str("server frame is masked"),
            WsError::ReservedBits => f.write_str("reserved bits set"),
            WsError::ReservedOpCode(op) => write!(f, "reserved opcode {op:#x}"),
            WsError::ControlFrameTooLong => f.write_str("control frame payload over 125 bytes"),
            WsError::FragmentedControlFrame => f.write_str("fragmented control frame"),
            WsError::UnexpectedContinuation => {
                f.write_str("continuation without a started message")
            }
            WsError::ExpectedContinuation => {
                f.write_str("new data frame inside a fragmented message")
            }
            WsError::InvalidUtf8 => f.write_str("invalid UTF-8"),
            WsError::MessageTooLarge { max } => write!(f, "message larger than {max} bytes"),
            WsError::InvalidClosePayload => f.write_str("close payload of length 1"),
            WsError::InvalidCloseCode(c) => write!(f, "invalid close code {c}"),
            WsError::InvalidLength => f.write_str("64-bit payload length with top bit set"),
        }
    }
}

impl std::error::Error for WsError {}

/// True when `code` may appear in a received close frame (RFC 6455 §7.4 and
/// the IANA registry: 1000-1003, 1007-1014, 3000-4999).
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// A fragmented data message being assembled.
#[derive(Debug)]
struct Partial {
    text: bool,
    data: BytesMut,
}

/// Most that `decode` reserves in the caller's buffer for a pending frame.
const RESERVE_CAP: usize = 256 * 1024;

/// A validated frame header.
struct Header {
    header_len: usize,
    fin: bool,
    op: OpCode,
    mask: Option<[u8; 4]>,
    /// Payload length.
    len: usize,
}

/// Incremental frame decoder; keeps fragment state between calls.
#[derive(Debug)]
pub struct Decoder {
    role: Role,
    /// u32: every connection keeps a decoder (limits above 4 GiB are clamped to it).
    max_message: u32,
    /// Boxed: fragmented messages are rare and an idle connection keeps its decoder.
    partial: Option<Box<Partial>>,
}

impl Decoder {
    /// A decoder for `role` refusing data messages over `max_message` bytes.
    pub fn new(role: Role, max_message: usize) -> Self {
        Decoder {
            role,
            max_message: u32::try_from(max_message).unwrap_or(u32::MAX),
            partial: None,
        }
    }

    /// True while a fragmented data message is being assembled.
    pub fn in_fragmented_message(&self) -> bool {
        self.partial.is_some()
    }

    /// Parses as many bytes of `buf` as form ONE complete message (assembling
    /// fragments), consuming them from the front of `buf`. Unfragmented
    /// payloads are split off `buf` without copying and unmasked in place.
    ///
    /// Returns `Ok(None)` when more bytes are needed (bytes of complete
    /// fragments already consumed are kept internally). Control frames
    /// interleaved in a fragmented message are returned as they arrive. A data
    /// message over `max_message` (the fragment sum included) is refused from
    /// its length header alone, before its payload arrives. Text messages and
    /// close reasons are UTF-8 validated once assembled. `max_message` applies
    /// to text/binary messages; control frames are bounded by 125 bytes.
    /// After an `Err` the connection must be failed; do not call again.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, WsError> {
        loop {
            let Some(h) = self.parse_header(buf)? else {
                return Ok(None);
            };
            let (fin, op, len) = (h.fin, h.op, h.len);
            if buf.len() - h.header_len < len {
                // Room for the rest of the frame (capped, so a bare header
                // cannot commit a huge allocation when max_message is large).
                buf.reserve((h.header_len + len - buf.len()).min(RESERVE_CAP));
                return Ok(None);
            }
            buf.advance(h.header_len);
            let mut payload = buf.split_to(len);
            if let Some(key) = h.mask {
                apply_mask(&mut payload, key, 0);
            }
            match op {
                OpCode::Ping => return Ok(Some(Message::Ping(payload.freeze()))),
                OpCode::Pong => return Ok(Some(Message::Pong(payload.freeze()))),
                OpCode::Close => return close_message(payload.freeze()).map(Some),
                OpCode::Text | OpCode::Binary if fin => {
                    return data_message(op == OpCode::Text, payload.freeze()).map(Some);
                }
                OpCode::Text | OpCode::Binary => {
                    self.partial = Some(Box::new(Partial {
                        text: op == OpCode::Text,
                        data: payload,
                    }));
                }
                OpCode::Continuation => {
                    // parse_header guarantees a partial message exists.
                    let p = self
                        .partial
                        .as_mut()
                        .ok_or(WsError::UnexpectedContinuation)?;
                    p.data.extend_from_slice(&payload);
                    if fin {
                        let p = self.partial.take().ok_or(WsError::UnexpectedContinuation)?;
                        return data_message(p.text, p.data.freeze()).map(Some);
                    }
                }
            }
        }
    }

    /// Validates the header at the front of `buf` without consuming anything.
    /// Returns `None` when the header is incomplete. Errors are raised as
    /// early as the available bytes allow (the size limit before the mask key
    /// arrives).
    fn parse_header(&self, buf: &[u8]) -> Result<Option<Header>, WsError> {
        if buf.len() < 2 {
            return Ok(None);
        }
        let (b0, b1) = (buf[0], buf[1]);
        let fin = b0 & 0x80 != 0;
        if b0 & 0x70 != 0 {
            return Err(WsError::ReservedBits);
        }
        let op = OpCode::from_u8(b0 & 0x0F).ok_or(WsError::ReservedOpCode(b0 & 0x0F))?;
        let masked = b1 & 0x80 != 0;
        match (self.role, masked) {
            (Role::Server, false) => return Err(WsError::UnmaskedFrame),
            (Role::Client, true) => return Err(WsError::MaskedFrame),
            _ => {}
        }
        let len7 = b1 & 0x7F;
        if op.is_control() {
            if !fin {
                return Err(WsError::FragmentedControlFrame);
            }
            if len7 > 125 {
                return Err(WsError::ControlFrameTooLong);
            }
        } else if op == OpCode::Continuation {
            if self.partial.is_none() {
                return Err(WsError::UnexpectedContinuation);
            }
        } else if self.partial.is_some() {
            return Err(WsError::ExpectedContinuation);
        }
        let (ext, len) = match len7 {
            126 => match buf.get(2..4) {
                Some(b) => (2, u64::from(u16::from_be_bytes([b[0], b[1]]))),
                None => return Ok(None),
            },
            127 => match buf.get(2..10) {
                Some(b) => (8, u64::from_be_bytes(b.try_into().expect("8 bytes"))),
                None => return Ok(None),
            },
            n => (0, u64::from(n)),
        };
        if len >> 63 != 0 {
            return Err(WsError::InvalidLength);
        }
        if !op.is_control() {
            let already = self.partial.as_ref().map_or(0, |p| p.data.len()) as u64;
            if already.saturating_add(len) > self.max_message as u64 {
                let max = self.max_message as usize;
                return Err(WsError::MessageTooLarge { max });
            }
        }
        // Bounded by max_message (data) or 125 (control), so it fits usize.
        let len = len as usize;
        let mut header_len = 2 + ext;
        let mask = if masked {
            let Some(k) = buf.get(header_len..header_len + 4) else {
                return Ok(None);
            };
            header_len += 4;
            Some([k[0], k[1], k[2], k[3]])
        } else {
            None
        };
        let h = Header {
            header_len,
            fin,
            op,
            mask,
            len,
        };
        Ok(Some(h))
    }
}

fn data_message(text: bool, data: Bytes) -> Result<Message, WsError> {
    if !text {
        return Ok(Message::Binary(data));
    }
    simdutf8::basic::from_utf8(&data).map_err(|_| WsError::InvalidUtf8)?;
    Ok(Message::Text(data))
}

fn close_message(payload: Bytes) -> Result<Message, WsError> {
    match payload.len() {
        0 => Ok(Message::Close(None)),
        1 => Err(WsError::InvalidClosePayload),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            if !is_valid_close_code(code) {
                return Err(WsError::InvalidCloseCode(code));
            }
            let reason = payload.slice(2..);
            simdutf8::basic::from_utf8(&reason).map_err(|_| WsError::InvalidUtf8)?;
            Ok(Message::Close(Some((code, reason))))
        }
    }
}

/// Writes a frame header (FIN set) for `len` payload bytes into `out` and
/// returns its length (2..=14). With `mask` Some, sets the mask bit and
/// appends the key.
pub fn encode_header(
    opcode: OpCode,
    len: usize,
    mask: Option<[u8; 4]>,
    out: &mut [u8; 14],
) -> usize {
    out[0] = 0x80 | opcode.as_u8();
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let mut n = if len <= 125 {
        out[1] = mask_bit | len as u8;
        2
    } else if len <= 0xFFFF {
        out[1] = mask_bit | 126;
        out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        4
    } else {
        out[1] = mask_bit | 127;
        out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    };
    if let Some(key) = mask {
        out[n..n + 4].copy_from_slice(&key);
        n += 4;
    }
    n
}

fn frame(opcode: OpCode, payload: &[u8], mask: Option<[u8; 4]>) -> BytesMut {
    let mut hdr = [0u8; 14];
    let n = encode_header(opcode, payload.len(), mask, &mut hdr);
    let mut out = BytesMut::with_capacity(n + payload.len());
    out.put_slice(&hdr[..n]);
    out.put_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut out[n..], key, 0);
    }
    out
}

/// A complete unmasked (server) frame with FIN set, as one `Bytes`.
pub fn server_frame(opcode: OpCode, payload: &[u8]) -> Bytes {
    frame(opcode, payload, None).freeze()
}

/// A complete masked (client) frame with FIN set; masks a copy of `payload`
/// with `mask`.
pub fn client_frame(opcode: OpCode, payload: &[u8], mask: [u8; 4]) -> Bytes {
    frame(opcode, payload, Some(mask)).freeze()
}

/// Close frame payload: `code` (big endian) followed by `reason`.
pub fn close_payload(code: u16, reason: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(2 + reason.len());
    out.put_u16(code);
    out.put_slice(reason.as_bytes());
    out.freeze()
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64 of the SHA-1 of
/// the key followed by the RFC 6455 GUID.
pub fn accept_key(key: &[u8]) -> String {
    use base64::Engine as _;
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key);
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha.digest().bytes())
}

/// XORs `buf` in place with the 4-byte `mask`, where `buf[0]` lines up with
/// `mask[offset % 4]`. Processes 8 bytes at a time.
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    let m: [u8; 4] = std::array::from_fn(|i| mask[(offset + i) % 4]);
    let wide = u64::from_ne_bytes([m[0], m[1], m[2], m[3], m[0], m[1], m[2], m[3]]);
    let mut chunks = buf.chunks_exact_mut(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        c.copy_from_slice(&(u64::from_ne_bytes(w) ^ wide).to_ne_bytes());
    }
    // Chunks are multiples of 4, so the tail starts at key phase 0 again.
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= m[i % 4];
    }
}

#[cfg(test)]
mod tests;
