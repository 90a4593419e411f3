//! A WebSocket connection on its session's owner shard: the `101`, the upgrade probe
//! (`2probe` -> `3probe`, then `5`), and the read loop feeding the session.
//!
//! The write half lives in the session (see `writer`); this task only reads. Protocol errors
//! from the frame codec close the connection with their close code (1002, 1007, 1009).

use super::conn::{lookup, recv_now, ConnGuard};
use super::session::{Out, Session, Sid, Transport};
use super::shard::shard;
use crate::proto::eio::{self, OutPacket, Packet};
use crate::proto::http::{self, EioError, Head};
use crate::proto::ws::{self, Decoder, Message, OpCode, Role, WsError};
use crate::DisconnectReason;
use bytes::{Bytes, BytesMut};
use monoio::io::{AsyncWriteRentExt, OwnedReadHalf, Splitable};
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
            if self.drained {
                // SAFETY: the read half shares the stream with the write half through monoio's
                // split (an `Rc<UnsafeCell<TcpStream>>`, aliased the same way by monoio's own
                // read and write ops); `readable` only clones the fd into a poll operation.
                let stream = unsafe { &*self.r.0.get() };
                if stream.readable(false).await.is_err() {
                    return Err(ReadErr::Eof);
                }
            }
            let hint = self.hint as usize;
            if self.buf.capacity() - self.buf.len() < hint / 2 {
                self.buf.reserve(hint);
            }
            let fd = self.r_fd();
            let spare = self.buf.spare_capacity_mut();
            let asked = spare.len();
            let n = match recv_now(fd, spare, 0) {
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
            self.drained = n < asked;
            if n >= asked {
                self.hint = (self.hint * 2).min(READ_MAX);
            } else if n < hint / 4 {
                self.hint = (self.hint / 2).max(READ_MIN);
            }
        }
    }

    fn r_fd(&self) -> i32 {
        // SAFETY: as in `next`: a shared borrow of the stream only to read its fd.
        unsafe { &*self.r.0.get() }.as_raw_fd()
    }

    /// A decodable message already in the buffer, without reading.
    fn buffered(&mut self) -> Result<Option<Message>, WsError> {
        self.dec.decode(&mut self.buf)
    }
}

async fn reject(mut stream: TcpStream, resp: Bytes) {
    let _ = stream.write_all(resp).await;
}

/// Completes the handshake and runs the connection until it closes.
pub(crate) async fn run(
    mut stream: TcpStream,
    head: Head,
    ep: usize,
    sid: Option<Sid>,
    buf: BytesMut,
    peer: SocketAddr,
    guard: ConnGuard,
) {
    let sh = shard();
    let eng = &sh.cfg.endpoints[ep].engine;
    let accept = http::upgrade_response(&ws::accept_key(head.ws_key().unwrap_or_default()));
    let target = match sid {
        None => None,
        Some(sid) => match lookup(sid).filter(|s| s.ep == ep) {
            None => {
                return reject(
                    stream,
                    http::error_response(EioError::UnknownSid, &eng.cors, head.origin(), false),
                )
                .await
            }
            Some(s) => {
                let busy = {
                    let st = s.st.borrow();
                    st.transport != Transport::Polling || st.upgrading || !eng.allow_upgrades
                };
                if busy {
                    // Node accepts the socket, then closes it
                    let _ = stream.write_all(accept).await;
                    let _ = stream
                        .write_all(ws::server_frame(
                            OpCode::Close,
                            &ws::close_payload(1000, ""),
                        ))
                        .await;
                    return;
                }
                Some(s)
            }
        },
    };
    if stream.write_all(accept).await.0.is_err() {
        return;
    }
    let fd = stream.as_raw_fd();
    let (r, w) = stream.into_split();
    let mut rd = Reader::new(r, buf, Decoder::new(Role::Server, eng.max_payload));
    let sess = match target {
        None => {
            let s = Session::new(
                ep,
                Transport::WebSocket,
                Rc::new(crate::Handshake::new(&head, peer)),
            );
            {
                let mut st = s.st.borrow_mut();
                st.ws_writer = Some(w);
                st.ws_fd = fd;
            }
            let open = eio::open_packet(
                s.sid().as_str(),
                false,
                eng.ping_interval.as_millis() as u64,
                eng.ping_timeout.as_millis() as u64,
                eng.max_payload,
            );
            s.send(OutPacket::Text(open));
            s
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
async fn probe(
    s: &Rc<Session>,
    rd: &mut Reader,
    mut w: monoio::io::OwnedWriteHalf<TcpStream>,
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
                let sh = shard();
                let due = std::time::Instant::now() + sh.cfg.endpoints[s.ep].engine.upgrade_timeout;
                sh.timers
                    .schedule(due, s, 0, super::shard::TimerKind::UpgradeTimeout);
                let mut st = s.st.borrow_mut();
                st.upgrading = true;
                if let Some(wk) = st.poll_waker.take() {
                    wk.wake();
                }
            }
            Ok(Packet::Upgrade) if s.st.borrow().upgrading => {
                {
                    let mut st = s.st.borrow_mut();
                    st.transport = Transport::WebSocket;
                    st.upgrading = false;
                    st.ws_writer = Some(w);
                    st.ws_fd = fd;
                    // answers not yet written go first, then what was queued for polling
                    for o in pending.into_iter().rev() {
                        if let Out::Eio(p) = &o {
                            st.out_bytes += p.len();
                        }
                        st.out.push_front(o);
                    }
                    if let Some(wk) = st.poll_waker.take() {
                        wk.wake();
                    }
                }
                s.send_many(std::iter::empty());
                return Some(());
            }
            _ => {
                s.st.borrow_mut().upgrading = false;
                return None;
            }
        }
    }
}

/// The steady state. Written as an `async move` block rather than an `async fn`: the block
/// uses its captures in place, where an `async fn` would keep a second copy of its arguments
/// in every connection's task (216 bytes instead of 368, measured with -Zprint-type-sizes).
#[allow(clippy::manual_async_fn)]
fn read_loop(
    sess: Rc<Session>,
    mut rd: Reader,
    guard: ConnGuard,
) -> impl std::future::Future<Output = ()> {
    async move {
        let _guard = &guard;
        loop {
            match rd.next().await {
                Ok(Message::Text(t)) => match Packet::decode_text(t) {
                    Ok(p) => sess.on_packet(p),
                    Err(_) => sess.close(DisconnectReason::ParseError),
                },
                Ok(Message::Binary(b)) => sess.on_packet(Packet::Binary(b)),
                Ok(Message::Ping(p)) => sess.send_ws(Out::WsPong(p)),
                Ok(Message::Pong(_)) => {}
                Ok(Message::Close(_)) | Err(ReadErr::Eof) => {
                    sess.close(DisconnectReason::TransportClose)
                }
                Err(ReadErr::Ws(e)) => {
                    sess.close_with_code(DisconnectReason::TransportError, e.close_code())
                }
            }
            if sess.is_closed() {
                return;
            }
        }
    }
}
