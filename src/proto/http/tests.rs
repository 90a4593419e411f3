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
    let r = error_response(EioError::Forbidden, b"", true);
    assert!(r.starts_with(
        b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: 32\r\n"
    ));
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

fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap()
}

fn actual(o: &CorsOptions, origin: Option<&str>) -> String {
    let mut out = BytesMut::new();
    o.write_actual(origin, &mut out);
    text(&out).to_string()
}

fn preflight(o: &CorsOptions, origin: Option<&str>, acrh: Option<&str>) -> Option<String> {
    let mut req = String::from("OPTIONS /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n");
    if let Some(o) = origin {
        req += &format!("Origin: {o}\r\n");
    }
    if let Some(h) = acrh {
        req += &format!("Access-Control-Request-Headers: {h}\r\n");
    }
    let h = parse(&(req + "\r\n")).unwrap().unwrap();
    o.preflight(&h).map(|b| text(&b).to_string())
}

/// The bytes Node's engine.io (cors 2.8.6) writes, measured against socket.io 4.8.4 with
/// `cors: {origin: ["http://a.example", /\.b\.example$/], credentials: true, exposedHeaders:
/// ["X-A","X-B"], maxAge: 600}` (Node's Date and Connection headers left out).
#[test]
fn cors_matches_node_list_regex_credentials() {
    let re = regex_lite::Regex::new(r"\.b\.example$").unwrap();
    let mut o = CorsOptions::new(CorsOrigin::List(vec!["http://a.example".into()]))
        .credentials(true)
        .exposed_headers(&["X-A", "X-B"])
        .max_age(600);
    assert_eq!(
        actual(&o, Some("http://a.example")),
        "Access-Control-Allow-Origin: http://a.example\r\nVary: Origin\r\nAccess-Control-Allow-Credentials: true\r\nAccess-Control-Expose-Headers: X-A,X-B\r\n"
    );
    // not allowed: no Allow-Origin, the rest stays (as Node)
    assert_eq!(
        actual(&o, Some("http://c")),
        "Vary: Origin\r\nAccess-Control-Allow-Credentials: true\r\nAccess-Control-Expose-Headers: X-A,X-B\r\n"
    );
    o.origin = CorsOrigin::Regex(re);
    assert_eq!(
        preflight(&o, Some("http://x.b.example"), Some("x-y")).unwrap(),
        "HTTP/1.1 204 No Content\r\nAccess-Control-Allow-Origin: http://x.b.example\r\nVary: Origin, Access-Control-Request-Headers\r\nAccess-Control-Allow-Credentials: true\r\nAccess-Control-Allow-Methods: GET,HEAD,PUT,PATCH,POST,DELETE\r\nAccess-Control-Allow-Headers: x-y\r\nAccess-Control-Max-Age: 600\r\nAccess-Control-Expose-Headers: X-A,X-B\r\nContent-Length: 0\r\n\r\n"
    );
    assert!(!actual(&o, Some("http://x.b.example.evil")).contains("Allow-Origin"));
}

#[test]
fn cors_any_fixed_reflect_and_fn() {
    let any = CorsOptions::default();
    assert_eq!(
        actual(&any, Some("http://a")),
        "Access-Control-Allow-Origin: *\r\n"
    );
    // no Vary: Origin for `*`; the reflected request headers bring their own Vary
    assert_eq!(
        preflight(&any, Some("http://a"), Some("x-y")).unwrap(),
        "HTTP/1.1 204 No Content\r\nAccess-Control-Allow-Origin: *\r\nAccess-Control-Allow-Methods: GET,HEAD,PUT,PATCH,POST,DELETE\r\nVary: Access-Control-Request-Headers\r\nAccess-Control-Allow-Headers: x-y\r\nContent-Length: 0\r\n\r\n"
    );
    let fixed = CorsOptions::new(CorsOrigin::Fixed("https://app".into()))
        .methods(&["GET", "POST"])
        .allowed_headers(&["X-Token"]);
    assert_eq!(
        preflight(&fixed, Some("http://other"), Some("x-y")).unwrap(),
        "HTTP/1.1 204 No Content\r\nAccess-Control-Allow-Origin: https://app\r\nVary: Origin\r\nAccess-Control-Allow-Methods: GET,POST\r\nAccess-Control-Allow-Headers: X-Token\r\nContent-Length: 0\r\n\r\n"
    );
    let reflect = Cors::Reflect.into_options().unwrap();
    assert_eq!(
        actual(&reflect, Some("http://z")),
        "Access-Control-Allow-Origin: http://z\r\nVary: Origin\r\nAccess-Control-Allow-Credentials: true\r\n"
    );
    assert_eq!(
        actual(&reflect, None),
        "Vary: Origin\r\nAccess-Control-Allow-Credentials: true\r\n"
    );
    let f = CorsOptions::new(CorsOrigin::Fn(std::sync::Arc::new(|o: Option<&str>| {
        o == Some("http://ok")
    })));
    assert_eq!(
        actual(&f, Some("http://ok")),
        "Access-Control-Allow-Origin: http://ok\r\nVary: Origin\r\n"
    );
    // refused by the function: no CORS at all, and the preflight goes on to the engine
    assert!(!f.applies(Some("http://no")));
    assert_eq!(actual(&f, Some("http://no")), "");
    assert_eq!(preflight(&f, Some("http://no"), None), None);
    assert!(Cors::Off.into_options().is_none());
    let list = Cors::List(vec!["http://a".into()]).into_options().unwrap();
    assert!(list.credentials);
}

#[test]
fn cookie_serializes_as_the_cookie_package() {
    let c = CookieOptions::default();
    assert_eq!(c.serialize("abc"), "io=abc; Path=/; HttpOnly; SameSite=Lax");
    let c = CookieOptions {
        name: "sticky".into(),
        path: None,
        http_only: false,
        same_site: Some(SameSite::parse("Strict").unwrap()),
        domain: Some("example.com".into()),
        secure: true,
        max_age: Some(60),
    };
    assert_eq!(
        c.serialize("x"),
        "sticky=x; Max-Age=60; Domain=example.com; Secure; SameSite=Strict"
    );
    let c = CookieOptions {
        same_site: Some(SameSite::None),
        ..Default::default()
    };
    assert!(c.serialize("x").ends_with("; HttpOnly; SameSite=None"));
    assert!(SameSite::parse("bogus").is_err());
    let bad = CookieOptions {
        name: "a b".into(),
        ..Default::default()
    };
    assert!(bad.validate().is_err());
    let bad = CookieOptions {
        path: Some("/\r\nX: y".into()),
        ..Default::default()
    };
    assert!(bad.validate().is_err());
    assert!(CookieOptions::default().validate().is_ok());
}

#[test]
fn response_headers_set_append_and_refuse_bad_lines() {
    let mut h = ResponseHeaders::new();
    h.set("Set-Cookie", "io=1");
    h.append("set-cookie", "b=2");
    h.set("X-A", "1");
    h.set("x-a", "2");
    h.set("Bad Name", "v");
    h.set("X-Split", "v\r\nInjected: 1");
    assert_eq!(h.get("X-A"), Some("2"));
    let mut out = BytesMut::new();
    h.write_to(&mut out);
    assert_eq!(
        text(&out),
        "Set-Cookie: io=1\r\nset-cookie: b=2\r\nx-a: 2\r\n"
    );
    h.remove("SET-COOKIE");
    assert_eq!(h.iter().count(), 3);
}

fn client_file() -> StaticFile {
    StaticFile::client(
        "socket.io.js",
        Bytes::from_static(b"var io;"),
        "\"4.8.4\"".into(),
    )
}

#[test]
fn client_files_etag_304_and_head() {
    let f = client_file();
    let get = |extra: &str| {
        let h = parse(&format!(
            "GET /socket.io/socket.io.js HTTP/1.1\r\n{extra}\r\n"
        ))
        .unwrap()
        .unwrap();
        text(&f.respond(&h, b"")).to_string()
    };
    assert_eq!(
        get(""),
        "HTTP/1.1 200 OK\r\nCache-Control: public, max-age=0\r\nContent-Type: application/javascript; charset=utf-8\r\nETag: \"4.8.4\"\r\nContent-Length: 7\r\n\r\nvar io;"
    );
    assert_eq!(
        get("If-None-Match: \"4.8.4\"\r\n"),
        "HTTP/1.1 304 Not Modified\r\n\r\n"
    );
    assert_eq!(
        get("If-None-Match: W/\"4.8.4\"\r\n"),
        "HTTP/1.1 304 Not Modified\r\n\r\n"
    );
    assert!(get("If-None-Match: \"4.8.3\"\r\n").starts_with("HTTP/1.1 200 OK"));
    let h = parse("HEAD /socket.io/socket.io.js HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap()
        .unwrap();
    let r = f.respond(&h, b"Access-Control-Allow-Origin: *\r\n");
    let r = text(&r);
    assert!(r.starts_with("HTTP/1.1 200 OK\r\nAccess-Control-Allow-Origin: *\r\n"));
    assert!(
        r.ends_with("Content-Length: 7\r\nConnection: close\r\n\r\n"),
        "{r}"
    );
    assert_eq!(
        file_name("/socket.io/socket.io.js", "/socket.io/"),
        Some("socket.io.js")
    );
    assert_eq!(file_name("/socket.io/", "/socket.io/"), None);
    assert_eq!(file_name("/socket.iox/a.js", "/socket.io"), None);
    assert_eq!(content_etag(&[b"a"]), content_etag(&[b"a"]));
    assert_ne!(content_etag(&[b"a"]), content_etag(&[b"b"]));
}

#[test]
fn refusals_of_upgrades_match_node() {
    assert_eq!(
        text(&upgrade_error("Session ID unknown")),
        "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-type: text/html\r\nContent-Length: 18\r\n\r\nSession ID unknown"
    );
    assert_eq!(
        text(&WsHandshakeError::Version.response()),
        "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/html\r\nContent-Length: 47\r\nSec-WebSocket-Version: 13\r\n\r\nMissing or invalid Sec-WebSocket-Version header"
    );
    let ws = |key: &str, version: &str| {
        let h = parse(&format!("GET /socket.io/ HTTP/1.1\r\nUpgrade: websocket\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: {version}\r\n\r\n")).unwrap().unwrap();
        WsHandshakeError::check(&h)
    };
    assert_eq!(ws("dGhlIHNhbXBsZSBub25jZQ==", "13"), Ok(()));
    assert_eq!(
        ws("dGhlIHNhbXBsZSBub25jZQ==", "8"),
        Err(WsHandshakeError::Version)
    );
    assert_eq!(ws("short==", "13"), Err(WsHandshakeError::Key));
    assert_eq!(
        text(&upgrade_response("abc", b"X-A: 1\r\n")),
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: abc\r\nX-A: 1\r\n\r\n"
    );
}

#[test]
fn custom_messages_empty_answers_and_inserted_headers() {
    assert_eq!(
        EioError::Forbidden.body_with(Some("go \"away\"\n\u{1}")),
        r#"{"code":4,"message":"go \"away\"\n\u0001"}"#
    );
    assert_eq!(
        text(&empty_response(400, b"Vary: Origin\r\n", true)),
        "HTTP/1.1 400 Bad Request\r\nVary: Origin\r\nContent-Length: 0\r\n\r\n"
    );
    let r = payload_response(b"6", POLLING_HEADERS, false);
    let r = insert_headers(&r, b"X-Every: 2\r\n");
    assert_eq!(
        text(&r),
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: 1\r\ncache-control: no-store\r\nConnection: close\r\nX-Every: 2\r\n\r\n6"
    );
    let h = parse(
        "PUT /x HTTP/1.1\r\nContent-Type: application/octet-stream\r\nIf-None-Match: \"1\"\r\n\r\n",
    )
    .unwrap()
    .unwrap();
    assert_eq!(h.method_str(), "PUT");
    assert_eq!(h.content_type(), Some("application/octet-stream"));
    assert_eq!(h.if_none_match(), Some("\"1\""));
}
