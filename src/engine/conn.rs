//! One accepted TCP connection: the HTTP/1.1 keep-alive loop, routing to an endpoint, Engine.IO
//! request validation (Node's order and codes), long-polling requests, WebSocket handshakes.
//!
//! A polling request whose sid belongs to another shard is forwarded to the owner (a job with
//! its body); the owner answers with the complete HTTP response. A WebSocket upgrade whose sid
//! belongs to another shard moves its file descriptor to the owner (after a completed read,
//! never with an operation in flight).
//!
//! Must not: look inside a session (the endpoint and its sessions do that) or know what a message means.

use super::endpoint::{Endpoint, PollRequest};
use super::EndpointId;
use crate::proto::eio::{CloseReason, Sid};
use crate::proto::http::{self, EioError, Head, Method};
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
                Next::WebSocket { head, ep, sid } => {
                    return websocket(stream, *head, ep, sid, buf, peer, guard).await
                }
            }
        }
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
        write(stream, http::simple_response(404, "Not Found")).await;
        return Next::Close;
    };
    let ep = eng.endpoint(ep_idx);
    let cfg = ep.cfg();
    if head.method == Method::Options && !matches!(cfg.cors, http::Cors::Off) {
        let ok = write(stream, http::preflight_response(&cfg.cors, &head)).await;
        return if ok { Next::KeepAlive } else { Next::Close };
    }
    let resp = match route(&head, &*ep) {
        Route::Error(e) => {
            let keep = head.keep_alive && head.content_length == 0;
            let body = e.body();
            let resp = http::response(
                e.status(),
                "application/json",
                body.as_bytes(),
                &cfg.cors,
                head.origin(),
                keep,
            );
            let ok = write(stream, resp).await;
            return if ok && keep {
                Next::KeepAlive
            } else {
                Next::Close
            };
        }
        Route::WebSocket(sid) => {
            return Next::WebSocket {
                head: Box::new(head),
                ep: ep_idx,
                sid,
            }
        }
        Route::Handshake => {
            let open = ep.clone().open_polling(&head, peer);
            http::payload_response(&open, &cfg.cors, head.origin(), head.keep_alive)
        }
        Route::Poll(sid) => match poll(stream, buf, &head, ep_idx, &ep, sid).await {
            Some(r) => r,
            None => return Next::Close,
        },
    };
    if write(stream, resp).await && head.keep_alive {
        Next::KeepAlive
    } else {
        Next::Close
    }
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
        origin: head.origin().map(str::to_string),
        keep_alive: head.keep_alive,
    };
    let resp = if sid.shard() == rt::shard().id {
        ep.clone().poll(req)
    } else {
        forward(ep_idx, req, head, cfg)
    };
    if head.method == Method::Get {
        watch_get(stream, ep_idx, sid, resp).await
    } else {
        Some(resp.await)
    }
}

/// Sends a polling request to the owner shard of its session; the future gives its answer.
fn forward(
    ep_idx: EndpointId,
    req: PollRequest,
    head: &Head,
    cfg: &super::EngineConfig,
) -> super::endpoint::LocalBoxFuture<Bytes> {
    let (tx, rx) = futures_channel::oneshot::channel();
    let owner = req.sid.shard();
    let job: rt::Job = Box::new(move || {
        let ep = super::local().endpoint(ep_idx);
        monoio::spawn(async move {
            let _ = tx.send(ep.poll(req).await);
        });
    });
    if rt::shard().peers.try_post(owner, job).is_err() {
        return Box::pin(std::future::ready(http::simple_response(
            500,
            "shard inbox full",
        )));
    }
    let gone = http::error_response(
        EioError::UnknownSid,
        &cfg.cors,
        head.origin(),
        head.keep_alive,
    );
    Box::pin(async move { rx.await.unwrap_or(gone) })
}

/// Hands a WebSocket handshake to its endpoint, on this shard or on the session's owner.
async fn websocket(
    mut stream: TcpStream,
    head: Head,
    ep_idx: EndpointId,
    sid: Option<Sid>,
    mut buf: BytesMut,
    peer: SocketAddr,
    guard: ConnGuard,
) {
    if head.ws_version() != Some("13") || head.ws_key().is_none() {
        write(&mut stream, http::simple_response(400, "Bad Request")).await;
        return;
    }
    match sid {
        Some(sid) if sid.shard() != rt::shard().id => {
            let leftover = buf.split().freeze();
            guard.release();
            // SAFETY: the fd was just released by the stream (no operation in flight: the
            // last read completed); OwnedFd closes it if the job never runs.
            let fd = unsafe { OwnedFd::from_raw_fd(stream.into_raw_fd()) };
            let job: rt::Job = Box::new(move || {
                monoio::spawn(adopt_ws(fd, head, ep_idx, sid, leftover));
            });
            // a refused job is dropped, and the fd with it
            let _ = rt::shard().peers.try_post(sid.shard(), job);
        }
        _ => {
            let ep = super::local().endpoint(ep_idx);
            ep.websocket(stream, head, sid, buf, peer, guard).await
        }
    }
}

/// Takes over a WebSocket connection moved here from another shard.
async fn adopt_ws(fd: OwnedFd, head: Head, ep_idx: EndpointId, sid: Sid, leftover: Bytes) {
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
    ep.websocket(stream, head, Some(sid), buf, peer, guard)
        .await;
}

enum Route {
    Error(EioError),
    Handshake,
    Poll(Sid),
    WebSocket(Option<Sid>),
}

/// Node's `verify` + `handshake` checks, in Node's order.
fn route(head: &Head, ep: &dyn Endpoint) -> Route {
    let cfg = ep.cfg();
    let transport = head.param("transport");
    let polling = transport == Some("polling") && cfg.polling;
    let websocket = transport == Some("websocket") && cfg.websocket;
    if !polling && !websocket {
        return Route::Error(EioError::UnknownTransport);
    }
    match head.param("sid") {
        Some(raw) => {
            let sh = rt::shard();
            let (shards, node) = (sh.count(), sh.peers.node());
            // a session of another node (a load balancer without sticky sessions) is unknown
            // here: Node's answer, never another session's data
            let Some(sid) = Sid::parse(raw).filter(|s| s.shard() < shards && s.node() == node)
            else {
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
            if let Some(allow) = &cfg.allow_request {
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
async fn watch_get(
    stream: &TcpStream,
    ep_idx: EndpointId,
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
