//! A WebSocket connection on its session's owner shard: the `101`, the upgrade probe
//! (`2probe` -> `3probe`, then `5`), and the read loop feeding the session.
//!
//! The write half lives in the session (see `writer`); this task only reads. Protocol errors
//! from the frame codec close the connection with their close code (1002, 1007, 1009).
//!
//! Must not: write to the socket after the handshake (the session's writer does), or know what a message means.

use super::config::Handshake;
use super::conn::ConnGuard;
use super::endpoint::EndpointImpl;
use super::hooks::ErrorContext;
use super::session::Session;
use super::App;
use crate::proto::eio::session::Out;
use crate::proto::eio::{self, CloseReason, OutPacket, Packet, Sid, Transport};
use crate::proto::http::{self, EioError, Head};
use crate::proto::ws::{self, Decoder, Message, OpCode, Role, WsError};
use crate::rt::sys;
use bytes::{Bytes, BytesMut};
use monoio::io::{AsyncWriteRentExt, OwnedReadHalf, OwnedWriteHalf, Splitable};
use monoio::net::TcpStream;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;

enum ReadErr {
    Eof,
    Ws(WsError),
}

/// The read side of a WebSocket connection: the read half, the buffer, the frame decoder.
///
/// Reads are readiness-based: a connection waiting for data has a poll armed on its socket and
/// holds no buffer (idle sockets cost no read memory, as the design asks); once the socket is
/// readable, a non-blocking `recv` takes what the kernel holds into a buffer sized adaptively
/// (`hint`: a read that fills its buffer doubles the next one, small reads shrink it back).
/// The buffer is released whenever it is fully consumed; only a partial frame keeps one.
pub(crate) struct Reader {
    r: OwnedReadHalf<TcpStream>,
    buf: BytesMut,
    dec: Decoder,
    hint: u32,
    /// The last `recv` emptied the socket: wait for readiness before the next one.
    drained: bool,
}

/// Most Socket.IO frames are tens of bytes.
const READ_MIN: u32 = 128;
const READ_MAX: u32 = 64 * 1024;

impl Reader {
    fn new(r: OwnedReadHalf<TcpStream>, buf: BytesMut, dec: Decoder) -> Reader {
        Reader {
            r,
            buf,
            dec,
            hint: READ_MIN,
            drained: true,
        }
    }

    async fn next(&mut self) -> Result<Message, ReadErr> {
        loop {
            match self.dec.decode(&mut self.buf) {
                Ok(Some(m)) => return Ok(m),
                Ok(None) => {}
                Err(e) => return Err(ReadErr::Ws(e)),
            }
            if self.buf.is_empty() && self.buf.capacity() > 0 {
                // drop the old allocation (it may still back zero-copy messages)
                self.buf = BytesMut::new();
            }
            if self.drained
                && sys::read_half_stream(&self.r)
                    .readable(false)
                    .await
                    .is_err()
            {
                return Err(ReadErr::Eof);
            }
            let hint = self.hint as usize;
            if self.buf.capacity() - self.buf.len() < hint / 2 {
                self.buf.reserve(hint);
            }
            let fd = sys::read_half_fd(&self.r);
            let spare = self.buf.spare_capacity_mut();
            let asked = spare.len();
            let n = match sys::recv_now(fd, spare, 0) {
                Ok(0) => return Err(ReadErr::Eof),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.drained = true;
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(ReadErr::Eof),
            };
            // SAFETY: recv initialised the first `n` bytes of the spare capacity.
            unsafe { self.buf.set_len(self.buf.len() + n) };
            crate::rt::note_activity();
            self.drained = n < asked;
            if n >= asked {
                self.hint = (self.hint * 2).min(READ_MAX);
            } else if n < hint / 4 {
                self.hint = (self.hint / 2).max(READ_MIN);
            }
        }
    }

    /// A decodable message already in the buffer, without reading.
    fn buffered(&mut self) -> Result<Option<Message>, WsError> {
        self.dec.decode(&mut self.buf)
    }
}

async fn reject(mut stream: TcpStream, resp: Bytes) {
    let _ = stream.write_all(resp).await;
}

/// A WebSocket handshake that passed the Engine.IO checks.
pub(crate) struct Upgrade {
    pub stream: TcpStream,
    pub head: Head,
    /// The session to upgrade (`None`: a new session).
    pub sid: Option<Sid>,
    /// Header lines for the `101` (CORS, hooks), computed by the shard that received it.
    pub extra: Bytes,
    /// Bytes read after the head.
    pub buf: BytesMut,
    pub peer: SocketAddr,
}

/// Completes the handshake and runs the connection until it closes.
pub(crate) async fn run<A: App>(ep: Rc<EndpointImpl<A>>, up: Upgrade, guard: ConnGuard) {
    let Upgrade {
        mut stream,
        head,
        sid,
        extra,
        buf,
        peer,
    } = up;
    let key = ws::accept_key(head.ws_key().unwrap_or_default());
    let accept = http::upgrade_response(&key, &extra);
    let target = match sid {
        None => None,
        Some(sid) => match ep.lookup(sid) {
            None => {
                // engine.io's abortUpgrade: 400, then the connection closes
                let ctx = ErrorContext::UnknownSid {
                    sid: sid.to_string(),
                };
                ep.cfg.hooks.report(&head, EioError::UnknownSid, ctx);
                let resp = http::upgrade_error(EioError::UnknownSid.message());
                return reject(stream, resp).await;
            }
            Some(s) if super::verify::protocol(&head) != if s.is_v3() { 3 } else { 4 } => {
                // Node's verify: an upgrade must speak its session's protocol revision
                let ctx = ErrorContext::ProtocolMismatch {
                    protocol: super::verify::protocol(&head),
                    previous_protocol: if s.is_v3() { 3 } else { 4 },
                };
                ep.cfg.hooks.report(&head, EioError::BadRequest, ctx);
                let resp = http::upgrade_error(EioError::BadRequest.message());
                return reject(stream, resp).await;
            }
            Some(s) if !s.can_upgrade() || !ep.cfg.allow_upgrades => {
                // Node accepts the socket, then closes it
                let _ = stream.write_all(accept).await;
                let close = ws::server_frame(OpCode::Close, &ws::close_payload(1000, ""));
                let _ = stream.write_all(close).await;
                return;
            }
            Some(s) => Some(s),
        },
    };
    if stream.write_all(accept).await.0.is_err() {
        return;
    }
    let fd = stream.as_raw_fd();
    let (r, w) = stream.into_split();
    let mut rd = Reader::new(r, buf, Decoder::new(Role::Server, ep.cfg.max_payload));
    let sess = match target {
        None => {
            let hs = Rc::new(Handshake::new(&head, peer));
            let v3 = super::verify::protocol(&head) == 3;
            let open = |sid| Some(OutPacket::Text(ep.open_packet(sid, false)));
            Session::open(&ep, Transport::WebSocket, hs, Some((w, fd)), v3, open)
        }
        Some(s) => match probe(&s, &mut rd, w, fd).await {
            Some(()) => s,
            None => return,
        },
    };
    // the steady state runs in its own small task: the handshake's state (request head,
    // HTTP buffers) is freed when this function returns
    monoio::spawn(read_loop(sess, rd, guard));
}

/// The upgrade: answers `2probe`, waits for `5`, then moves the session onto this socket.
///
/// Answers are written only when no complete frame is left in the read buffer, so a client
/// that sends `2probe` and `5` back to back has both handled before anything else (a polling
/// GET racing the upgrade) can run on this shard.
async fn probe<A: App>(
    s: &Rc<Session<A>>,
    rd: &mut Reader,
    mut w: OwnedWriteHalf<TcpStream>,
    fd: i32,
) -> Option<()> {
    let mut pending: Vec<Out> = Vec::new();
    loop {
        let msg = match rd.buffered() {
            Ok(Some(m)) => m,
            Ok(None) => {
                for o in pending.drain(..) {
                    let frame = match o {
                        Out::WsPong(p) => ws::server_frame(OpCode::Pong, &p),
                        _ => ws::server_frame(OpCode::Text, b"3probe"),
                    };
                    w.write_all(frame).await.0.ok()?;
                }
                rd.next().await.ok()?
            }
            Err(_) => return None,
        };
        if s.is_closed() {
            return None;
        }
        let text = match msg {
            Message::Text(t) => t,
            Message::Ping(p) => {
                pending.push(Out::WsPong(p));
                continue;
            }
            Message::Pong(_) => continue,
            _ => return None,
        };
        match Packet::decode_text(text) {
            Ok(Packet::Ping(d)) if &d[..] == b"probe" => {
                pending.push(Out::Eio(OutPacket::PONG_PROBE));
                s.on_probe();
            }
            Ok(Packet::Upgrade) => {
                // answers not yet written go first, then what was queued for polling
                return s.on_upgrade(pending, w, fd).then_some(());
            }
            _ => {
                s.abort_upgrade();
                return None;
            }
        }
    }
}

/// The steady state. Written as an `async move` block rather than an `async fn`: the block
/// uses its captures in place, where an `async fn` would keep a second copy of its arguments
/// in every connection's task (216 bytes instead of 368, measured with -Zprint-type-sizes).
#[allow(clippy::manual_async_fn)]
fn read_loop<A: App>(
    sess: Rc<Session<A>>,
    mut rd: Reader,
    guard: ConnGuard,
) -> impl std::future::Future<Output = ()> {
    async move {
        let _guard = &guard;
        // Engine.IO v3: binary frames carry their type byte, base64 packets theirs too
        let v3 = sess.is_v3();
        loop {
            match rd.next().await {
                Ok(Message::Text(t)) => {
                    let p = if v3 {
                        std::str::from_utf8(&t)
                            .map_err(|_| eio::DecodeError::Empty)
                            .and_then(eio::v3::decode_text)
                    } else {
                        Packet::decode_text(t)
                    };
                    match p {
                        Ok(p) => sess.on_packet(p),
                        Err(_) => sess.close(CloseReason::ParseError),
                    }
                }
                Ok(Message::Binary(b)) if v3 => match eio::v3::decode_binary(b) {
                    Ok(p) => sess.on_packet(p),
                    Err(_) => sess.close(CloseReason::ParseError),
                },
                Ok(Message::Binary(b)) => sess.on_packet(Packet::Binary(b)),
                Ok(Message::Ping(p)) => sess.send_control(Out::WsPong(p)),
                Ok(Message::Pong(_)) => {}
                Ok(Message::Close(_)) | Err(ReadErr::Eof) => {
                    sess.close(CloseReason::TransportClose)
                }
                Err(ReadErr::Ws(e)) => {
                    sess.close_with_code(CloseReason::TransportError, e.close_code())
                }
            }
            if sess.is_closed() {
                return;
            }
        }
    }
}
