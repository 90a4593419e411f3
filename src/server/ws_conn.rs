//! A WebSocket connection on its session's owner shard: the `101`, the upgrade probe
//! (`2probe` -> `3probe`, then `5`), and the read loop feeding the session.
//!
//! The write half lives in the session (see `writer`); this task only reads. Protocol errors
//! from the frame codec close the connection with their close code (1002, 1007, 1009).

use super::conn::lookup;
use super::session::{Out, Session, Sid, Transport};
use super::shard::shard;
use crate::proto::eio::{self, OutPacket, Packet};
use crate::proto::http::{self, EioError, Head};
use crate::proto::ws::{self, Decoder, Message, OpCode, Role, WsError};
use crate::DisconnectReason;
use bytes::{Bytes, BytesMut};
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt, OwnedReadHalf, Splitable};
use monoio::net::TcpStream;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;

enum ReadErr {
    Eof,
    Ws(WsError),
}

async fn next_message(
    r: &mut OwnedReadHalf<TcpStream>,
    buf: &mut BytesMut,
    dec: &mut Decoder,
) -> Result<Message, ReadErr> {
    loop {
        match dec.decode(buf) {
            Ok(Some(m)) => return Ok(m),
            Ok(None) => {}
            Err(e) => return Err(ReadErr::Ws(e)),
        }
        if buf.capacity() - buf.len() < 512 {
            buf.reserve(4096);
        }
        let len = buf.len();
        let (res, slice) = r.read(std::mem::take(buf).slice_mut(len..)).await;
        *buf = slice.into_inner();
        if !matches!(res, Ok(n) if n > 0) {
            return Err(ReadErr::Eof);
        }
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
    mut buf: BytesMut,
    peer: SocketAddr,
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
    let (mut r, w) = stream.into_split();
    let mut dec = Decoder::new(Role::Server, eng.max_payload);
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
        Some(s) => match probe(&s, &mut r, w, fd, &mut buf, &mut dec).await {
            Some(()) => s,
            None => return,
        },
    };
    read_loop(&sess, &mut r, &mut buf, &mut dec).await;
}

/// The upgrade: answers `2probe`, waits for `5`, then moves the session onto this socket.
///
/// Answers are written only when no complete frame is left in the read buffer, so a client
/// that sends `2probe` and `5` back to back has both handled before anything else (a polling
/// GET racing the upgrade) can run on this shard.
async fn probe(
    s: &Rc<Session>,
    r: &mut OwnedReadHalf<TcpStream>,
    mut w: monoio::io::OwnedWriteHalf<TcpStream>,
    fd: i32,
    buf: &mut BytesMut,
    dec: &mut Decoder,
) -> Option<()> {
    let mut pending: Vec<Out> = Vec::new();
    loop {
        let msg = match dec.decode(buf) {
            Ok(Some(m)) => m,
            Ok(None) => {
                for o in pending.drain(..) {
                    let frame = match o {
                        Out::WsPong(p) => ws::server_frame(OpCode::Pong, &p),
                        _ => ws::server_frame(OpCode::Text, b"3probe"),
                    };
                    w.write_all(frame).await.0.ok()?;
                }
                next_message(r, buf, dec).await.ok()?
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

async fn read_loop(
    sess: &Rc<Session>,
    r: &mut OwnedReadHalf<TcpStream>,
    buf: &mut BytesMut,
    dec: &mut Decoder,
) {
    loop {
        match next_message(r, buf, dec).await {
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
