//! Request heads and responses: exact bytes, limits, Node's error answers.
use super::*;

fn parse(s: &str) -> Result<Option<Head>, HttpError> {
    let mut b = BytesMut::from(s.as_bytes());
    parse_head(&mut b)
}

#[test]
fn parses_polling_get() {
    let h = parse("GET /socket.io/?EIO=4&transport=polling&t=abc HTTP/1.1\r\nHost: x\r\nOrigin: http://a\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(h.method, Method::Get);
    assert_eq!(h.path(), "/socket.io/");
    assert_eq!(h.param("EIO"), Some("4"));
    assert_eq!(h.param("transport"), Some("polling"));
    assert_eq!(h.param("sid"), None);
    assert_eq!(h.origin(), Some("http://a"));
    assert!(h.keep_alive);
    assert_eq!(h.headers()[0], ("host".to_string(), "x".to_string()));
}

#[test]
fn leaves_body_in_buffer() {
    let mut b = BytesMut::from(&b"POST /x?sid=1 HTTP/1.1\r\nContent-Length: 6\r\n\r\n4hello"[..]);
    let h = parse_head(&mut b).unwrap().unwrap();
    assert_eq!(h.content_length, 6);
    assert_eq!(&b[..], b"4hello");
}

#[test]
fn partial_and_errors() {
    assert!(parse("GET / HTTP/1.1\r\nHost: x\r\n").unwrap().is_none());
    assert_eq!(parse("GARBAGE\r\n\r\n").unwrap_err(), HttpError::Malformed);
    assert_eq!(
        parse("GET / HTTP/2.0\r\n\r\n").unwrap_err(),
        HttpError::Malformed
    );
    assert_eq!(
        parse("POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n").unwrap_err(),
        HttpError::Malformed
    );
    assert_eq!(
        parse("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").unwrap_err(),
        HttpError::Malformed
    );
    let many: String = (0..70).map(|i| format!("h{i}: v\r\n")).collect();
    assert_eq!(
        parse(&format!("GET / HTTP/1.1\r\n{many}\r\n")).unwrap_err(),
        HttpError::HeadTooLarge
    );
    let long = "a".repeat(MAX_HEAD + 1);
    assert_eq!(
        parse(&format!("GET /{long}")).unwrap_err(),
        HttpError::HeadTooLarge
    );
}

#[test]
fn websocket_headers() {
    let h = parse("GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: abc==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(h.upgrade_websocket);
    assert_eq!(h.ws_key(), Some(&b"abc=="[..]));
    assert_eq!(h.ws_version(), Some("13"));
}

#[test]
fn error_bodies_match_node() {
    assert_eq!(
        EioError::UnknownTransport.body(),
        r#"{"code":0,"message":"Transport unknown"}"#
    );
    assert_eq!(
        EioError::UnknownSid.body(),
        r#"{"code":1,"message":"Session ID unknown"}"#
    );
    assert_eq!(
        EioError::BadHandshakeMethod.body(),
        r#"{"code":2,"message":"Bad handshake method"}"#
    );
    assert_eq!(
        EioError::BadRequest.body(),
        r#"{"code":3,"message":"Bad request"}"#
    );
    assert_eq!(
        EioError::Forbidden.body(),
        r#"{"code":4,"message":"Forbidden"}"#
    );
    assert_eq!(
        EioError::UnsupportedProtocolVersion.body(),
        r#"{"code":5,"message":"Unsupported protocol version"}"#
    );
    let r = error_response(EioError::Forbidden, &Cors::Off, None, true);
    assert!(r.starts_with(
        b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: 32\r\n"
    ));
}

#[test]
fn cors_headers() {
    let mut out = BytesMut::new();
    Cors::List(vec!["http://a".into()]).write_headers(Some("http://b"), &mut out);
    assert!(out.is_empty());
    Cors::List(vec!["http://a".into()]).write_headers(Some("http://a"), &mut out);
    assert_eq!(&out[..], &b"Access-Control-Allow-Origin: http://a\r\nAccess-Control-Allow-Credentials: true\r\nVary: Origin\r\n"[..]);
    let h = parse("OPTIONS /socket.io/ HTTP/1.1\r\nOrigin: http://a\r\nAccess-Control-Request-Headers: x-y\r\n\r\n").unwrap().unwrap();
    let r = preflight_response(&Cors::Any, &h);
    let s = std::str::from_utf8(&r).unwrap();
    assert!(s.starts_with("HTTP/1.1 204 No Content\r\n"));
    assert!(s.contains("Access-Control-Allow-Headers: x-y\r\n"));
}

#[test]
fn percent_decoding() {
    assert_eq!(percent_decode("a%20b+c%2"), "a b c%2");
}

#[test]
fn js_dates_and_query_pairs() {
    assert_eq!(
        js_date_string(0),
        "Thu Jan 01 1970 00:00:00 GMT+0000 (Coordinated Universal Time)"
    );
    // 2026-12-07T05:38:41.123Z
    assert_eq!(
        js_date_string(1_796_621_921_123),
        "Mon Dec 07 2026 05:38:41 GMT+0000 (Coordinated Universal Time)"
    );
    // a leap day
    assert_eq!(
        js_date_string(951_782_400_000),
        "Tue Feb 29 2000 00:00:00 GMT+0000 (Coordinated Universal Time)"
    );
    assert_eq!(
        query_pairs("EIO=4&transport=polling&x=a%20b&flag"),
        vec![
            ("EIO".to_string(), "4".to_string()),
            ("transport".to_string(), "polling".to_string()),
            ("x".to_string(), "a b".to_string()),
            ("flag".to_string(), String::new()),
        ]
    );
}
