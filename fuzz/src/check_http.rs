//! `http_head`: the HTTP request head parser.

use crate::*;

/// Everything observable about a parsed head (Head has no PartialEq).
#[derive(Debug, PartialEq)]
struct HeadView {
    method: http::Method,
    path: String,
    query: String,
    content_length: usize,
    chunked: bool,
    upgrade_websocket: bool,
    keep_alive: bool,
    ws_key: Option<Vec<u8>>,
    ws_version: Option<String>,
    origin: Option<String>,
    request_headers: Option<String>,
    headers: Vec<(String, String)>,
}

impl HeadView {
    fn of(h: &http::Head) -> HeadView {
        HeadView {
            method: h.method,
            path: h.path().to_owned(),
            query: h.query().to_owned(),
            content_length: h.content_length,
            chunked: h.chunked,
            upgrade_websocket: h.upgrade_websocket,
            keep_alive: h.keep_alive,
            ws_key: h.ws_key().map(<[u8]>::to_vec),
            ws_version: h.ws_version().map(str::to_owned),
            origin: h.origin().map(str::to_owned),
            request_headers: h.request_headers().map(str::to_owned),
            headers: h.headers(),
        }
    }
}

/// The final outcome of feeding a byte stream to `parse_head`.
#[derive(Debug, PartialEq)]
enum HttpOutcome {
    /// A head, and the bytes left in the buffer after it.
    Head(HeadView, Vec<u8>),
    /// Still incomplete after all input.
    NeedMore,
    Err(http::HttpError),
}

/// Feeds `data` in the chunks given by `cuts`, calling `parse_head` after each chunk until it
/// returns a head or an error (the server stops reading heads at either).
fn http_feed(data: &[u8], cuts: &[usize]) -> HttpOutcome {
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let mut it = chunks(data, cuts);
    for chunk in it.by_ref() {
        buf.extend_from_slice(chunk);
        fed += chunk.len();
        let before = buf.clone();
        match http::parse_head(&mut buf) {
            Ok(None) => assert_eq!(buf, before, "Ok(None) must not consume"),
            Ok(Some(h)) => {
                let consumed = fed - buf.len();
                assert_eq!(
                    &buf[..],
                    &data[consumed..fed],
                    "remaining is not the suffix"
                );
                let mut rest = buf.to_vec();
                for c in it {
                    rest.extend_from_slice(c);
                }
                return HttpOutcome::Head(HeadView::of(&h), rest);
            }
            Err(e) => {
                assert_eq!(buf, before, "Err must not consume");
                return HttpOutcome::Err(e);
            }
        }
    }
    HttpOutcome::NeedMore
}

/// `http::parse_head` on arbitrary bytes: consumed prefix + remaining == input, path/query/header
/// fields are substrings of the consumed head, and chunked feeds give the one-shot result.
pub fn http_head(data: &[u8]) {
    let mut buf = BytesMut::from(data);
    let one_shot = match http::parse_head(&mut buf) {
        Ok(Some(h)) => {
            assert!(buf.len() < data.len(), "a head consumes at least one byte");
            let consumed = data.len() - buf.len();
            assert_eq!(consumed + buf.len(), data.len());
            assert!(
                consumed <= http::MAX_HEAD,
                "head of {consumed} bytes over MAX_HEAD"
            );
            assert_eq!(
                &buf[..],
                &data[consumed..],
                "remaining is not the input's suffix"
            );
            let head = &data[..consumed];
            assert_eq!(head.last(), Some(&b'\n'), "head does not end a line");
            assert!(contains(head, h.path().as_bytes()), "path not in input");
            assert!(contains(head, h.query().as_bytes()), "query not in input");
            assert!(!h.path().contains('?'), "path keeps the '?'");
            if !h.query().is_empty() {
                let pq = format!("{}?{}", h.path(), h.query());
                assert!(contains(head, pq.as_bytes()), "path?query not in input");
            }
            for v in [h.ws_key()].into_iter().flatten() {
                assert!(contains(head, v), "ws key not in input");
            }
            for v in [h.ws_version(), h.origin(), h.request_headers()]
                .into_iter()
                .flatten()
            {
                assert!(contains(head, v.as_bytes()), "header value not in input");
                assert_eq!(v.trim_matches(|c: char| c.is_ascii_whitespace()), v);
            }
            if h.chunked || h.content_length > 0 || h.upgrade_websocket {
                assert!(!h.headers().is_empty(), "header flags without headers");
            }
            // The accessors and response builders used on every request must not panic.
            for name in ["EIO", "transport", "sid", "t", ""] {
                if let Some(v) = h.param(name) {
                    assert!(contains(head, v.as_bytes()));
                    let _ = http::percent_decode(v);
                }
            }
            // what a Handshake keeps: the raw head (u16 offsets) and the path/query ranges
            let (pr, qr) = h.path_and_query_ranges();
            assert!(
                h.raw().len() <= http::MAX_HEAD,
                "head over MAX_HEAD accepted"
            );
            assert!(pr.end <= h.raw().len() && qr.end <= h.raw().len());
            assert_eq!(std::str::from_utf8(&h.raw()[pr]).unwrap_or(""), h.path());
            assert_eq!(std::str::from_utf8(&h.raw()[qr]).unwrap_or(""), h.query());
            let cors = http::Cors::Reflect.into_options().expect("reflect is on");
            let pre = cors.preflight(&h).expect("reflect answers every preflight");
            assert!(pre.ends_with(b"\r\n\r\n"));
            let _ = (h.content_type(), h.if_none_match(), h.method_str());
            HttpOutcome::Head(HeadView::of(&h), buf.to_vec())
        }
        Ok(None) => {
            assert_eq!(&buf[..], data, "Ok(None) must not consume");
            assert!(
                data.len() <= http::MAX_HEAD,
                "incomplete head over MAX_HEAD not refused"
            );
            HttpOutcome::NeedMore
        }
        Err(e) => {
            assert_eq!(&buf[..], data, "Err must not consume");
            assert!(!e.response().is_empty());
            HttpOutcome::Err(e)
        }
    };
    for cuts in chunkings(data) {
        let got = http_feed(data, &cuts);
        assert_eq!(got, one_shot, "chunked feed {cuts:?} differs from one-shot");
    }
}
