//! HTTP long-polling on the session's owner shard: a GET waits for packets, a POST carries
//! packets from the client. One GET and one POST at a time (the state machine enforces it).
//! The checks Node makes once the sid is known (transport and protocol of the session, a
//! binary body under EIO=4) are made here.
//!
//! Must not: decide protocol rules (the state machine does) or read request bodies (conn.rs does).

use super::endpoint::{EndpointImpl, PollReply, PollRequest};
use super::hooks::ErrorContext;
use super::App;
use crate::proto::eio::session::TransportError;
use crate::proto::eio::{self, CloseReason, Transport};
use crate::proto::http::{self, EioError, Method, POLLING_HEADERS};
use bytes::{BufMut, Bytes, BytesMut};
use std::future::poll_fn;
use std::rc::Rc;

fn mismatch() -> ErrorContext {
    ErrorContext::TransportMismatch {
        transport: "polling".into(),
        previous_transport: "websocket".into(),
    }
}

/// Serves a polling GET or POST; returns the full HTTP response.
pub(crate) async fn serve<A: App>(ep: Rc<EndpointImpl<A>>, req: PollRequest) -> PollReply {
    let keep_alive = req.keep_alive;
    let reject = |e: EioError, ctx: ErrorContext| {
        PollReply::rejected(http::error_response(e, &req.extra, keep_alive), e, ctx)
    };
    // the headers of a transport's answer: CORS, then Node's `cache-control: no-store`
    let ok_extra = if req.extra.is_empty() {
        Bytes::from_static(POLLING_HEADERS)
    } else {
        let mut b = BytesMut::with_capacity(req.extra.len() + POLLING_HEADERS.len());
        b.put_slice(&req.extra);
        b.put_slice(POLLING_HEADERS);
        b.freeze()
    };
    let Some(sess) = ep.lookup(req.sid) else {
        if req.method == Method::Get {
            if let Some(body) = ep.take_tombstone(req.sid) {
                return PollReply::ok(http::payload_response(&body, &ok_extra, keep_alive));
            }
        }
        let sid = req.sid.to_string();
        return reject(EioError::UnknownSid, ErrorContext::UnknownSid { sid });
    };
    if sess.transport() != Transport::Polling {
        return reject(EioError::BadRequest, mismatch());
    }
    let v3 = sess.is_v3();
    let previous = if v3 { 3 } else { 4 };
    if req.protocol != previous {
        let ctx = ErrorContext::ProtocolMismatch {
            protocol: req.protocol,
            previous_protocol: previous,
        };
        return reject(EioError::BadRequest, ctx);
    }
    let get = match req.method {
        Method::Get => true,
        Method::Post => false,
        // Node's polling transport answers other methods with a bare 500
        _ => return PollReply::plain(http::empty_response(500, &req.extra, keep_alive)),
    };
    match sess.request_arrived(get) {
        Ok(()) => {}
        Err(TransportError::NotPolling) => return reject(EioError::BadRequest, mismatch()),
        Err(TransportError::Overlap) => {
            return PollReply::plain(http::error_response(
                EioError::BadRequest,
                &req.extra,
                keep_alive,
            ))
        }
    }
    if get {
        let packets = poll_fn(|cx| sess.poll_payload(cx)).await;
        sess.request_done(true);
        let mut body = BytesMut::new();
        if !v3 {
            eio::encode_payload(&packets, &mut body);
            return PollReply::ok(http::payload_response(&body, &ok_extra, keep_alive));
        }
        eio::v3::encode_payload(&packets, !req.b64, &mut body);
        let resp = if eio::v3::payload_is_binary(&packets, !req.b64) {
            http::response(
                200,
                "application/octet-stream",
                &body,
                &ok_extra,
                keep_alive,
            )
        } else {
            http::payload_response(&body, &ok_extra, keep_alive)
        };
        PollReply::ok(resp)
    } else if v3 {
        // EIO=3: a string payload, or a binary one (`application/octet-stream`)
        match eio::v3::decode_payload(&req.body, req.octet_stream) {
            Ok(packets) => deliver(&sess, packets.into_iter().map(Ok)),
            Err(_) => sess.close(CloseReason::ParseError),
        }
        sess.request_done(false);
        let resp = http::response(200, "text/html", b"ok", &ok_extra, keep_alive);
        PollReply::ok(resp)
    } else if req.octet_stream {
        // Node: "invalid content" (binary bodies are EIO=3 only); the session closes
        sess.close(CloseReason::TransportError);
        sess.request_done(false);
        PollReply::plain(http::empty_response(400, &req.extra, keep_alive))
    } else {
        post(&sess, req.body);
        sess.request_done(false);
        let resp = http::response(200, "text/html", b"ok", &ok_extra, keep_alive);
        PollReply::ok(resp)
    }
}

fn post<A: App>(sess: &Rc<super::Session<A>>, body: Bytes) {
    deliver(sess, eio::decode_payload(body));
}

/// Hands a POST's packets to the session, in order, until one is invalid or it closes.
fn deliver<A: App>(
    sess: &Rc<super::Session<A>>,
    packets: impl Iterator<Item = Result<eio::Packet, eio::DecodeError>>,
) {
    for p in packets {
        match p {
            Ok(p) => sess.on_packet(p),
            Err(_) => sess.close(CloseReason::ParseError),
        }
        if sess.is_closed() {
            break;
        }
    }
}
