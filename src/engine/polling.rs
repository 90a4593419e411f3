//! HTTP long-polling on the session's owner shard: a GET waits for packets, a POST carries
//! packets from the client. One GET and one POST at a time (the state machine enforces it).
//!
//! Must not: decide protocol rules (the state machine does) or read request bodies (conn.rs does).

use super::endpoint::{EndpointImpl, PollRequest};
use super::App;
use crate::proto::eio::session::TransportError;
use crate::proto::eio::{self, CloseReason};
use crate::proto::http::{self, EioError, Method};
use bytes::{Bytes, BytesMut};
use std::future::poll_fn;
use std::rc::Rc;

/// Serves a polling GET or POST; returns the full HTTP response.
pub(crate) async fn serve<A: App>(ep: Rc<EndpointImpl<A>>, req: PollRequest) -> Bytes {
    let cors = &ep.cfg.cors;
    let origin = req.origin.as_deref();
    let keep_alive = req.keep_alive;
    let err = |e: EioError| http::error_response(e, cors, origin, keep_alive);
    let Some(sess) = ep.lookup(req.sid) else {
        if req.method == Method::Get {
            if let Some(body) = ep.take_tombstone(req.sid) {
                return http::payload_response(&body, cors, origin, keep_alive);
            }
        }
        return err(EioError::UnknownSid);
    };
    let get = match req.method {
        Method::Get => true,
        Method::Post => false,
        _ => return err(EioError::BadRequest),
    };
    match sess.request_arrived(get) {
        Ok(()) => {}
        Err(TransportError::NotPolling | TransportError::Overlap) => {
            return err(EioError::BadRequest)
        }
    }
    if get {
        let packets = poll_fn(|cx| sess.poll_payload(cx)).await;
        sess.request_done(true);
        let mut body = BytesMut::new();
        eio::encode_payload(&packets, &mut body);
        http::payload_response(&body, cors, origin, keep_alive)
    } else {
        for p in eio::decode_payload(req.body) {
            match p {
                Ok(p) => sess.on_packet(p),
                Err(_) => sess.close(CloseReason::ParseError),
            }
            if sess.is_closed() {
                break;
            }
        }
        sess.request_done(false);
        http::response(200, "text/html", b"ok", cors, origin, keep_alive)
    }
}
