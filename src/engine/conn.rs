//! One accepted TCP connection: the HTTP/1.1 keep-alive loop, routing to an endpoint, Engine.IO
//! request validation (Node's order and codes), long-polling requests, WebSocket handshakes.
//!
//! A polling request whose sid belongs to another shard is forwarded to the owner (a job with
//! its body); the owner answers with the complete HTTP response. A WebSocket upgrade whose sid
//! belongs to another shard moves its file descriptor to the owner (after a completed read,
//! never with an operation in flight).
//!
//! Must not: look inside a session (the endpoint and its sessions do that) or know what a message means.

use super::endpoint::{Endpoint, PollReply, PollRequest};
use super::hooks::ErrorContext;
use super::verify::{self, Reject, Route};
use super::EndpointId;
use crate::proto::eio::{CloseReason, Sid};
use crate::proto::http::{self, EioError, Head, Method, ResponseHeaders, WsHandshakeError};
use crate::rt::{self, sys};
use bytes::{Bytes, BytesMut};
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::task::Poll;

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
    crate::rt::note_activity();
    matches!(res, Ok(n) if n > 0)
}

async fn write(stream: &mut TcpStream, data: Bytes) -> bool {
    stream.write_all(data).await.0.is_ok()
}

/// Registers a connection's fd with its shard for the shutdown sweep.
pub(crate) struct ConnGuard(RawFd);

impl ConnGuard {
    pub(crate) fn new(fd: RawFd) -> ConnGuard {
        super::local().conns.borrow_mut().insert(fd);
        ConnGuard(fd)
    }
    /// The fd leaves this shard (moved to another one).
    fn release(self) {
        super::local().conns.borrow_mut().remove(&self.0);
        std::mem::forget(self);
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        super::local().conns.borrow_mut().remove(&self.0);
    }
}

/// What the keep-alive loop does after a request.
enum Next {
    /// Read the next request.
    KeepAlive,
    /// Close the connection.
    Close,
    /// Hand the connection to the WebSocket code of endpoint `ep` (boxed: the head is large).
    WebSocket {
        head: Box<Head>,
        ep: EndpointId,
        sid: Option<Sid>,
        extra: Bytes,
    },
}

/// Serves one accepted connection.
///
/// An `async move` block rather than an `async fn`, which would keep a second copy of its
/// arguments in the task of every connection; each request runs boxed, so that a connection
/// waiting for its next request holds a small task.
#[allow(clippy::manual_async_fn)]
pub(crate) fn serve(mut stream: TcpStream, peer: SocketAddr) -> impl Future<Output = ()> {
    async move {
        let _ = stream.set_nodelay(true);
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
            match Box::pin(request(&mut stream, &mut buf, head, peer)).await {
                Next::KeepAlive => {}
                Next::Close => return,
                Next::WebSocket {
                    head,
                    ep,
                    sid,
                    extra,
                } => {
                    let up = Handoff {
                        head: *head,
                        ep,
                        sid,
                        extra,
                        buf,
                        peer,
                    };
                    return websocket(stream, up, guard).await;
                }
            }
        }
    }
}

/// Writes `resp`; the connection stays open when the request allows it.
async fn answer(stream: &mut TcpStream, resp: Bytes, keep_alive: bool) -> Next {
    if write(stream, resp).await && keep_alive {
        Next::KeepAlive
    } else {
        Next::Close
    }
}

/// One HTTP request that is not a WebSocket handshake (those are handed back).
async fn request(stream: &mut TcpStream, buf: &mut BytesMut, head: Head, peer: SocketAddr) -> Next {
    if head.chunked {
        let resp = http::simple_response(400, "chunked bodies are not supported");
        write(stream, resp).await;
        return Next::Close;
    }
    let eng = super::local();
    let Some(ep_idx) = eng.endpoint_for(head.path()) else {
        return match eng.page(&head) {
            Some(resp) => answer(stream, resp, head.keep_alive).await,
            None => answer(stream, http::simple_response(404, "Not Found"), false).await,
        };
    };
    let ep = eng.endpoint(ep_idx);
    let cfg = ep.cfg();
    // Node's `cors` middleware runs first: a preflight is answered here
    let cors = cfg.cors.as_ref().filter(|c| c.applies(head.origin()));
    let mut extra = BytesMut::new();
    if let Some(c) = cors {
        if head.method == Method::Options {
            if let Some(pre) = c.preflight(&head) {
                return answer(stream, pre, head.keep_alive).await;
            }
        }
        c.write_actual(head.origin(), &mut extra);
    }
    // serveClient: the bundle's files under the path come before the engine
    if let Some(file) = cfg
        .files
        .as_ref()
        .and_then(|f| http::file_name(head.path(), &cfg.path).and_then(|n| f.get(n)))
    {
        let resp = file.respond(&head, &extra);
        return answer(stream, resp, head.keep_alive).await;
    }
    let route = match verify::route(&head, cfg).await {
        Ok(r) => r,
        Err(rej) => return refuse(stream, &head, cfg, rej, &extra).await,
    };
    match route {
        Route::WebSocket(sid) => {
            let extra = headers_101(cfg, &head, sid.is_none(), extra);
            Next::WebSocket {
                head: Box::new(head),
                ep: ep_idx,
                sid,
                extra,
            }
        }
        Route::Handshake => {
            let (sid, open) = ep.clone().open_polling(&head, peer);
            extra.extend_from_slice(http::POLLING_HEADERS);
            let mut h = ResponseHeaders::new();
            if let Some(c) = &cfg.cookie {
                h.set("Set-Cookie", c.serialize(sid.as_str()));
            }
            cfg.hooks.run_headers(&mut h, &head, true);
            h.write_to(&mut extra);
            let resp = http::payload_response(&open, &extra, head.keep_alive);
            answer(stream, resp, head.keep_alive).await
        }
        Route::Poll(sid) => {
            let extra = extra.freeze();
            match poll(stream, buf, &head, ep_idx, &ep, sid, extra).await {
                Some(r) => answer(stream, r, head.keep_alive).await,
                None => Next::Close,
            }
        }
    }
}

/// Answers a refused request (reported to `connection_error` first): Node's JSON error, or
/// for an upgrade request engine.io's `abortUpgrade` and the end of the connection.
async fn refuse(
    stream: &mut TcpStream,
    head: &Head,
    cfg: &super::EngineConfig,
    rej: Reject,
    extra: &[u8],
) -> Next {
    cfg.hooks.report(head, rej.err, rej.ctx.clone());
    if head.upgrade_websocket {
        write(stream, rej.response(true, b"", false)).await;
        return Next::Close;
    }
    let keep = head.keep_alive && head.content_length == 0;
    answer(stream, rej.response(false, extra, keep), keep).await
}

/// The extra header lines of a `101`: CORS, then what the `initial_headers` (a new session)
/// and `headers` hooks add (Node sends no cookie there).
fn headers_101(
    cfg: &super::EngineConfig,
    head: &Head,
    initial: bool,
    mut extra: BytesMut,
) -> Bytes {
    if cfg.hooks.any_headers() {
        let mut h = ResponseHeaders::new();
        cfg.hooks.run_headers(&mut h, head, initial);
        h.write_to(&mut extra);
    }
    extra.freeze()
}

/// A polling GET or POST: the body is read here, the request served by the owner shard. `None`
/// when the connection is done (a body that never came, an oversized one, a client gone).
async fn poll(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    head: &Head,
    ep_idx: EndpointId,
    ep: &Rc<dyn Endpoint>,
    sid: Sid,
    extra: Bytes,
) -> Option<Bytes> {
    let cfg = ep.cfg();
    let body = if head.method == Method::Post {
        if head.content_length > cfg.max_payload {
            // the session is closed, as Node does
            close_session(ep_idx, sid, CloseReason::TransportError);
            write(stream, http::simple_response(413, "Payload Too Large")).await;
            return None;
        }
        while buf.len() < head.content_length {
            if !read_more(stream, buf).await {
                // Node: "data request connection closed prematurely"
                close_session(ep_idx, sid, CloseReason::TransportError);
                return None;
            }
        }
        buf.split_to(head.content_length).freeze()
    } else {
        Bytes::new()
    };
    let req = PollRequest {
        sid,
        method: head.method,
        body,
        extra,
        keep_alive: head.keep_alive,
        protocol: verify::protocol(head),
        b64: head.param("b64").is_some(),
        octet_stream: head.content_type() == Some("application/octet-stream"),
    };
    let resp = if sid.shard() == rt::shard().id {
        ep.clone().poll(req)
    } else {
        forward(ep_idx, req)
    };
    let reply = if head.method == Method::Get {
        watch_get(stream, ep_idx, sid, resp).await?
    } else {
        resp.await
    };
    Some(finish_poll(cfg, head, reply))
}

/// The receiving shard's part of a polling answer: `connection_error` for a refusal, the
/// `headers` hook for a transport's answer.
fn finish_poll(cfg: &super::EngineConfig, head: &Head, reply: PollReply) -> Bytes {
    if let Some((err, ctx)) = reply.reject {
        cfg.hooks.report(head, err, ctx);
    }
    if !reply.ok || !cfg.hooks.any_headers() {
        return reply.resp;
    }
    let mut h = ResponseHeaders::new();
    cfg.hooks.run_headers(&mut h, head, false);
    if h.is_empty() {
        return reply.resp;
    }
    let mut lines = BytesMut::new();
    h.write_to(&mut lines);
    http::insert_headers(&reply.resp, &lines)
}

/// Sends a polling request to the owner shard of its session; the future gives its answer.
fn forward(ep_idx: EndpointId, req: PollRequest) -> super::endpoint::LocalBoxFuture<PollReply> {
    let (tx, rx) = futures_channel::oneshot::channel();
    let owner = req.sid.shard();
    let (sid, extra, keep_alive) = (req.sid, req.extra.clone(), req.keep_alive);
    let job: rt::Job = Box::new(move || {
        let ep = super::local().endpoint(ep_idx);
        monoio::spawn(async move {
            let _ = tx.send(ep.poll(req).await);
        });
    });
    if rt::shard().peers.try_post(owner, job).is_err() {
        let resp = http::simple_response(500, "shard inbox full");
        return Box::pin(std::future::ready(PollReply::plain(resp)));
    }
    Box::pin(async move {
        rx.await.unwrap_or_else(|_| {
            let gone = http::error_response(EioError::UnknownSid, &extra, keep_alive);
            let sid = sid.to_string();
            PollReply::rejected(gone, EioError::UnknownSid, ErrorContext::UnknownSid { sid })
        })
    })
}

/// A WebSocket handshake on its way to its endpoint.
struct Handoff {
    head: Head,
    ep: EndpointId,
    sid: Option<Sid>,
    extra: Bytes,
    buf: BytesMut,
    peer: SocketAddr,
}

/// Hands a WebSocket handshake to its endpoint, on this shard or on the session's owner.
async fn websocket(mut stream: TcpStream, up: Handoff, guard: ConnGuard) {
    if let Err(e) = WsHandshakeError::check(&up.head) {
        write(&mut stream, e.response()).await;
        return;
    }
    let Handoff {
        head,
        ep: ep_idx,
        sid,
        extra,
        mut buf,
        peer,
    } = up;
    match sid {
        Some(sid) if sid.shard() != rt::shard().id => {
            let leftover = buf.split().freeze();
            guard.release();
            // SAFETY: the fd was just released by the stream (no operation in flight: the
            // last read completed); OwnedFd closes it if the job never runs.
            let fd = unsafe { OwnedFd::from_raw_fd(stream.into_raw_fd()) };
            let job: rt::Job = Box::new(move || {
                monoio::spawn(adopt_ws(fd, head, ep_idx, sid, extra, leftover));
            });
            // a refused job is dropped, and the fd with it
            let _ = rt::shard().peers.try_post(sid.shard(), job);
        }
        _ => {
            let ep = super::local().endpoint(ep_idx);
            ep.websocket(stream, head, sid, extra, buf, peer, guard)
                .await
        }
    }
}

/// Takes over a WebSocket connection moved here from another shard.
async fn adopt_ws(
    fd: OwnedFd,
    head: Head,
    ep_idx: EndpointId,
    sid: Sid,
    extra: Bytes,
    leftover: Bytes,
) {
    let std_stream = std::net::TcpStream::from(fd);
    let _ = std_stream.set_nonblocking(true);
    let peer = std_stream
        .peer_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let Ok(stream) = TcpStream::from_std(std_stream) else {
        return;
    };
    let guard = ConnGuard::new(stream.as_raw_fd());
    let mut buf = BytesMut::with_capacity(leftover.len());
    buf.extend_from_slice(&leftover);
    let ep = super::local().endpoint(ep_idx);
    ep.websocket(stream, head, Some(sid), extra, buf, peer, guard)
        .await;
}

/// Closes a session on its owner shard (this one, or through the owner's inbox).
fn close_session(ep_idx: EndpointId, sid: Sid, reason: CloseReason) {
    let sh = rt::shard();
    if sid.shard() == sh.id {
        super::local().endpoint(ep_idx).close_session(sid, reason);
    } else {
        let job: rt::Job = Box::new(move || {
            super::local().endpoint(ep_idx).close_session(sid, reason);
        });
        let _ = sh.peers.try_post(sid.shard(), job);
    }
}

/// Awaits a long-poll GET's response while watching its connection. A client that goes away
/// mid-poll ends the session with "transport error", as Node does ("poll connection closed
/// prematurely"), instead of holding it until the ping timeout; then nothing is written and
/// `None` comes back (the response future is still awaited, so the owner's side of the GET
/// ends cleanly: closing the session answers it).
async fn watch_get<T>(
    stream: &TcpStream,
    ep_idx: EndpointId,
    sid: Sid,
    resp: impl Future<Output = T>,
) -> Option<T> {
    let mut resp = std::pin::pin!(resp);
    let mut gone = std::pin::pin!(peer_gone(stream));
    let mut aborted = false;
    let r = poll_fn(|cx| {
        if let Poll::Ready(r) = resp.as_mut().poll(cx) {
            return Poll::Ready(r);
        }
        if !aborted && gone.as_mut().poll(cx).is_ready() {
            aborted = true;
            close_session(ep_idx, sid, CloseReason::TransportError);
            // closing answers the pending GET; poll the response again
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    })
    .await;
    (!aborted).then_some(r)
}

/// Completes when the peer has closed its side (EOF) or the socket failed; stays pending once
/// the peer sends data instead (a next request, read after the current one is answered).
async fn peer_gone(stream: &TcpStream) {
    loop {
        if stream.readable(false).await.is_err() {
            return;
        }
        let mut b = [std::mem::MaybeUninit::uninit()];
        match sys::recv_now(stream.as_raw_fd(), &mut b, libc::MSG_PEEK) {
            Ok(0) => return,
            Ok(_) => std::future::pending::<()>().await,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}
