//! One accepted TCP connection: HTTP/1.1 keep-alive loop, routing to an endpoint, Engine.IO
//! request validation (Node's order and codes), long-polling GET/POST, WebSocket handshakes.
//!
//! A polling request whose sid belongs to another shard is forwarded to the owner with its
//! body; the owner answers with the complete HTTP response. A WebSocket upgrade whose sid
//! belongs to another shard moves its file descriptor to the owner (after a completed read,
//! never with an operation in flight).

use super::session::{PollOutcome, Session, Sid, Transport};
use super::shard::{shard, ShardMsg};
use super::ws_conn;
use crate::proto::eio;
use crate::proto::http::{self, EioError, Head, Method};
use crate::DisconnectReason;
use bytes::{Bytes, BytesMut};
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};
use std::rc::Rc;
use std::task::Poll;
use std::time::Instant;

/// A polling request forwarded to the session's owner shard.
pub(crate) struct ForwardedPoll {
    pub sid: Sid,
    pub ep: usize,
    pub method: Method,
    pub body: Bytes,
    pub origin: Option<String>,
    pub keep_alive: bool,
    pub reply: futures_channel::oneshot::Sender<Bytes>,
}

/// A WebSocket connection moved to its session's owner.
pub(crate) struct MovedWs {
    pub fd: RawFd,
    pub head: Box<Head>,
    pub ep: usize,
    pub sid: Sid,
    pub leftover: Bytes,
}

/// Size of the first read of a request (allocated once the socket is readable).
const READ_MIN: usize = 512;

/// Reads more bytes into `buf`; false on EOF or error.
///
/// A connection waiting for its next request (a fresh one, or keep-alive between polling
/// requests) holds no buffer: it waits for readiness first, then reads into a new one.
pub(crate) async fn read_more(stream: &mut TcpStream, buf: &mut BytesMut) -> bool {
    if buf.is_empty() {
        *buf = BytesMut::new();
        if stream.readable(false).await.is_err() {
            return false;
        }
        *buf = BytesMut::with_capacity(READ_MIN);
    } else if buf.capacity() - buf.len() < 512 {
        buf.reserve(4096);
    }
    let len = buf.len();
    let owned = std::mem::take(buf);
    let (res, slice) = stream.read(owned.slice_mut(len..)).await;
    *buf = slice.into_inner();
    matches!(res, Ok(n) if n > 0)
}

async fn write(stream: &mut TcpStream, data: Bytes) -> bool {
    stream.write_all(data).await.0.is_ok()
}

/// Registers a connection's fd with its shard for the shutdown sweep.
pub(crate) struct ConnGuard(RawFd);

impl ConnGuard {
    pub(crate) fn new(fd: RawFd) -> ConnGuard {
        shard().conns.borrow_mut().insert(fd);
        ConnGuard(fd)
    }
    /// The fd leaves this shard (moved to another one).
    fn release(self) {
        shard().conns.borrow_mut().remove(&self.0);
        std::mem::forget(self);
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        shard().conns.borrow_mut().remove(&self.0);
    }
}

/// Serves one accepted connection.
///
/// An `async move` block rather than an `async fn`, which would keep a second copy of its
/// arguments in the task of every connection.
#[allow(clippy::manual_async_fn)]
pub(crate) fn serve(mut stream: TcpStream, peer: SocketAddr) -> impl Future<Output = ()> {
    async move {
        let _ = stream.set_nodelay(true);
        let sh = shard();
        let guard = ConnGuard::new(stream.as_raw_fd());
        let mut buf = BytesMut::new();
        loop {
            let head = loop {
                match http::parse_head(&mut buf) {
                    Ok(Some(h)) => break h,
                    Ok(None) => {}
                    Err(e) => {
                        write(&mut stream, e.response()).await;
                        return;
                    }
                }
                if !read_more(&mut stream, &mut buf).await {
                    return;
                }
            };
            tracing::trace!(method = ?head.method, path = head.path(), query = head.query(), len = head.content_length, "request");
            if head.chunked {
                write(
                    &mut stream,
                    http::simple_response(400, "chunked bodies are not supported"),
                )
                .await;
                return;
            }
            let Some(ep) = sh.cfg.endpoint_for(head.path()) else {
                write(&mut stream, http::simple_response(404, "Not Found")).await;
                return;
            };
            let eng = &sh.cfg.endpoints[ep].engine;
            if head.method == Method::Options && !matches!(eng.cors, http::Cors::Off) {
                if !write(&mut stream, http::preflight_response(&eng.cors, &head)).await {
                    return;
                }
                continue;
            }
            match route(&head, ep) {
                Route::Error(e) => {
                    let keep = head.keep_alive && head.content_length == 0;
                    let resp = http::response(
                        e.status(),
                        "application/json",
                        e.body().as_bytes(),
                        &eng.cors,
                        head.origin(),
                        keep,
                    );
                    if !write(&mut stream, resp).await || !keep {
                        return;
                    }
                }
                Route::Handshake => {
                    let sess = Session::new(
                        ep,
                        Transport::Polling,
                        Rc::new(crate::Handshake::new(&head, peer)),
                    );
                    let open = eio::open_packet(
                        sess.sid().as_str(),
                        eng.websocket,
                        ms(eng.ping_interval),
                        ms(eng.ping_timeout),
                        eng.max_payload,
                    );
                    let resp = http::response(
                        200,
                        "text/plain; charset=UTF-8",
                        &open,
                        &eng.cors,
                        head.origin(),
                        head.keep_alive,
                    );
                    if !write(&mut stream, resp).await || !head.keep_alive {
                        return;
                    }
                }
                Route::Poll(sid) => {
                    let body = if head.method == Method::Post {
                        if head.content_length > eng.max_payload {
                            refuse_oversized(sid);
                            write(&mut stream, http::simple_response(413, "Payload Too Large"))
                                .await;
                            return;
                        }
                        while buf.len() < head.content_length {
                            if !read_more(&mut stream, &mut buf).await {
                                // Node: "data request connection closed prematurely"
                                close_session(sid, DisconnectReason::TransportError);
                                return;
                            }
                        }
                        buf.split_to(head.content_length).freeze()
                    } else {
                        Bytes::new()
                    };
                    let origin = head.origin().map(str::to_string);
                    // boxed: only a request in progress pays for its state
                    let resp: std::pin::Pin<Box<dyn Future<Output = Bytes> + '_>> =
                        if sid.shard() == sh.id {
                            Box::pin(poll_local(
                                sid,
                                ep,
                                head.method,
                                body,
                                origin.as_deref(),
                                head.keep_alive,
                            ))
                        } else {
                            let (tx, rx) = futures_channel::oneshot::channel();
                            let msg = ForwardedPoll {
                                sid,
                                ep,
                                method: head.method,
                                body,
                                origin,
                                keep_alive: head.keep_alive,
                                reply: tx,
                            };
                            if sh.peers.try_post(sid.shard(), ShardMsg::Poll(msg)).is_err() {
                                Box::pin(std::future::ready(http::simple_response(
                                    500,
                                    "shard inbox full",
                                )))
                            } else {
                                Box::pin(async {
                                    rx.await.unwrap_or_else(|_| {
                                        http::error_response(
                                            EioError::UnknownSid,
                                            &eng.cors,
                                            head.origin(),
                                            head.keep_alive,
                                        )
                                    })
                                })
                            }
                        };
                    let resp = if head.method == Method::Get {
                        match watch_get(&stream, sid, resp).await {
                            Some(r) => r,
                            None => return,
                        }
                    } else {
                        resp.await
                    };
                    if !write(&mut stream, resp).await || !head.keep_alive {
                        return;
                    }
                }
                Route::WebSocket(sid) => {
                    if head.ws_version() != Some("13") || head.ws_key().is_none() {
                        write(&mut stream, http::simple_response(400, "Bad Request")).await;
                        return;
                    }
                    match sid {
                        Some(sid) if sid.shard() != sh.id => {
                            let leftover = buf.split().freeze();
                            guard.release();
                            let fd = stream.into_raw_fd();
                            let msg = MovedWs {
                                fd,
                                head: Box::new(head),
                                ep,
                                sid,
                                leftover,
                            };
                            if let Err(ShardMsg::AdoptWs(m)) =
                                sh.peers.try_post(sid.shard(), ShardMsg::AdoptWs(msg))
                            {
                                // SAFETY: the fd came from into_raw_fd above and was not sent.
                                drop(unsafe { std::net::TcpStream::from_raw_fd(m.fd) });
                            }
                        }
                        // boxed: the accept loop's task stays small while it waits for a request
                        _ => Box::pin(ws_conn::run(stream, head, ep, sid, buf, peer, guard)).await,
                    }
                    return;
                }
            }
        }
    }
}

fn ms(d: std::time::Duration) -> u64 {
    d.as_millis() as u64
}

enum Route {
    Error(EioError),
    Handshake,
    Poll(Sid),
    WebSocket(Option<Sid>),
}

/// Node's `verify` + `handshake` checks, in Node's order.
fn route(head: &Head, ep: usize) -> Route {
    let sh = shard();
    let eng = &sh.cfg.endpoints[ep].engine;
    let transport = head.param("transport");
    let polling = transport == Some("polling") && eng.polling;
    let websocket = transport == Some("websocket") && eng.websocket;
    if !polling && !websocket {
        return Route::Error(EioError::UnknownTransport);
    }
    match head.param("sid") {
        Some(raw) => {
            let Some(sid) = Sid::parse(raw).filter(|s| s.shard() < sh.peers.inboxes.len()) else {
                return Route::Error(EioError::UnknownSid);
            };
            if websocket {
                if !head.upgrade_websocket {
                    return Route::Error(EioError::BadRequest);
                }
                Route::WebSocket(Some(sid))
            } else {
                Route::Poll(sid)
            }
        }
        None => {
            if head.method != Method::Get {
                return Route::Error(EioError::BadHandshakeMethod);
            }
            if websocket && !head.upgrade_websocket {
                return Route::Error(EioError::BadRequest);
            }
            if head.param("EIO") != Some("4") {
                return Route::Error(EioError::UnsupportedProtocolVersion);
            }
            if let Some(allow) = &eng.allow_request {
                if !allow(head) {
                    return Route::Error(EioError::Forbidden);
                }
            }
            if websocket {
                Route::WebSocket(None)
            } else {
                Route::Handshake
            }
        }
    }
}

/// Looks up a live session on this shard (the pong deadline is checked here too).
pub(crate) fn lookup(sid: Sid) -> Option<Rc<Session>> {
    let sess = shard().sessions.borrow().get(&sid).cloned()?;
    if sess.expired() {
        sess.close(DisconnectReason::PingTimeout);
        return None;
    }
    Some(sess)
}

/// A POST over maxHttpBufferSize: the session is closed (as Node does), on its owner shard.
fn refuse_oversized(sid: Sid) {
    close_session(sid, DisconnectReason::TransportError);
}

/// Closes a session on its owner shard (this one, or through the owner's inbox).
fn close_session(sid: Sid, reason: DisconnectReason) {
    let sh = shard();
    if sid.shard() == sh.id {
        if let Some(s) = lookup(sid) {
            s.close(reason);
        }
    } else {
        let _ = sh
            .peers
            .try_post(sid.shard(), ShardMsg::CloseSession(sid, reason));
    }
}

/// Awaits a long-poll GET's response while watching its connection. A client that goes away
/// mid-poll ends the session with "transport error", as Node does ("poll connection closed
/// prematurely"), instead of holding it until the ping timeout; then nothing is written and
/// `None` comes back (the response future is still awaited, so the owner's side of the GET
/// ends cleanly: closing the session answers it).
async fn watch_get(
    stream: &TcpStream,
    sid: Sid,
    resp: impl Future<Output = Bytes>,
) -> Option<Bytes> {
    let mut resp = std::pin::pin!(resp);
    let mut gone = std::pin::pin!(peer_gone(stream));
    let mut aborted = false;
    let r = poll_fn(|cx| {
        if let Poll::Ready(r) = resp.as_mut().poll(cx) {
            return Poll::Ready(r);
        }
        if !aborted && gone.as_mut().poll(cx).is_ready() {
            aborted = true;
            close_session(sid, DisconnectReason::TransportError);
            // closing answers the pending GET; poll the response again
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    })
    .await;
    (!aborted).then_some(r)
}

/// One non-blocking `recv` (MSG_DONTWAIT, whatever the fd's flags, plus `flags`) into `buf`.
pub(crate) fn recv_now(
    fd: RawFd,
    buf: &mut [std::mem::MaybeUninit<u8>],
    flags: libc::c_int,
) -> std::io::Result<usize> {
    // SAFETY: `buf` is writable memory of `buf.len()` bytes; recv writes at most that many
    // and keeps no pointer.
    let n = unsafe {
        libc::recv(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            flags | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Completes when the peer has closed its side (EOF) or the socket failed; stays pending once
/// the peer sends data instead (a next request, read after the current one is answered).
async fn peer_gone(stream: &TcpStream) {
    loop {
        if stream.readable(false).await.is_err() {
            return;
        }
        let mut b = [std::mem::MaybeUninit::uninit()];
        match recv_now(stream.as_raw_fd(), &mut b, libc::MSG_PEEK) {
            Ok(0) => return,
            Ok(_) => std::future::pending::<()>().await,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Serves a polling GET or POST on the owner shard; returns the full HTTP response.
pub(crate) async fn poll_local(
    sid: Sid,
    ep: usize,
    method: Method,
    body: Bytes,
    origin: Option<&str>,
    keep_alive: bool,
) -> Bytes {
    let sh = shard();
    let cors = &sh.cfg.endpoints[ep].engine.cors;
    let err = |e: EioError| http::error_response(e, cors, origin, keep_alive);
    let Some(sess) = lookup(sid).filter(|s| s.ep == ep) else {
        let raced = method == Method::Get
            && sh
                .tombstones
                .borrow_mut()
                .remove(&sid)
                .is_some_and(|t| t > Instant::now());
        if raced {
            return http::response(
                200,
                "text/plain; charset=UTF-8",
                b"6",
                cors,
                origin,
                keep_alive,
            );
        }
        return err(EioError::UnknownSid);
    };
    if sess.st.borrow().transport != Transport::Polling {
        return err(EioError::BadRequest);
    }
    match method {
        Method::Get => {
            if sess.st.borrow().get_active {
                // a second concurrent GET: the first gets `1`, this one 400, the session ends
                sess.close(DisconnectReason::TransportError);
                return err(EioError::BadRequest);
            }
            sess.st.borrow_mut().get_active = true;
            let outcome = poll_fn(|cx| sess.poll_packets(cx)).await;
            sess.st.borrow_mut().get_active = false;
            let packets = match outcome {
                PollOutcome::Packets(p) => p,
                PollOutcome::Closed(p) => vec![p],
            };
            let mut body = BytesMut::new();
            eio::encode_payload(&packets, &mut body);
            http::response(
                200,
                "text/plain; charset=UTF-8",
                &body,
                cors,
                origin,
                keep_alive,
            )
        }
        Method::Post => {
            if sess.st.borrow().post_active {
                sess.close(DisconnectReason::TransportError);
                return err(EioError::BadRequest);
            }
            sess.st.borrow_mut().post_active = true;
            for p in eio::decode_payload(body) {
                match p {
                    Ok(p) => sess.on_packet(p),
                    Err(_) => {
                        sess.close(DisconnectReason::ParseError);
                        break;
                    }
                }
                if sess.is_closed() {
                    break;
                }
            }
            sess.st.borrow_mut().post_active = false;
            http::response(200, "text/html", b"ok", cors, origin, keep_alive)
        }
        _ => err(EioError::BadRequest),
    }
}

/// Runs a forwarded polling request on this (owner) shard.
pub(crate) async fn serve_forwarded_poll(p: ForwardedPoll) {
    let resp = poll_local(
        p.sid,
        p.ep,
        p.method,
        p.body,
        p.origin.as_deref(),
        p.keep_alive,
    )
    .await;
    let _ = p.reply.send(resp);
}

/// Takes over a WebSocket connection moved here from another shard.
pub(crate) async fn adopt_ws(m: MovedWs) {
    // SAFETY: the fd was produced by into_raw_fd on the sending shard and ownership moved here.
    let std_stream = unsafe { std::net::TcpStream::from_raw_fd(m.fd) };
    let _ = std_stream.set_nonblocking(true);
    let peer = std_stream
        .peer_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let Ok(stream) = TcpStream::from_std(std_stream) else {
        return;
    };
    let guard = ConnGuard::new(stream.as_raw_fd());
    let mut buf = BytesMut::with_capacity(m.leftover.len());
    buf.extend_from_slice(&m.leftover);
    ws_conn::run(stream, *m.head, m.ep, Some(m.sid), buf, peer, guard).await;
}
