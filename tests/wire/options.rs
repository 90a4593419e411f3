//! Server options a browser sees over HTTP, byte for byte as Node's socket.io 4.8 / engine.io
//! 6.6 writes them: serveClient, allowUpgrades(false), the cookie option, CORS.

use super::*;
use ringio::{CookieOptions, CorsOptions, CorsOrigin, RunningServer, ServerBuilder};
use std::io::{Read, Write};
use std::path::Path;

/// Runs `f` against the conformance server changed by `build` (applied last, so it may override
/// the set's options), under every driver x shard configuration.
pub(crate) fn each_server(
    build: impl Fn(ServerBuilder) -> ServerBuilder,
    f: impl Fn(&Ctx, &RunningServer),
) {
    let mut failed = Vec::new();
    for (driver, shards) in CONFIGS {
        let server = build(ringio::demo::conformance(ringio::Server::builder()))
            .shards(shards)
            .driver(driver)
            .build()
            .listen("127.0.0.1:0".parse().unwrap())
            .expect("listen");
        let ctx = Ctx {
            addr: server.local_addr(),
            shards,
            driver,
        };
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&ctx, &server)));
        server.shutdown();
        if let Err(e) = res {
            let m = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failed.push(format!("[driver {driver:?}, {shards} shard(s)] {m}"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// Long heartbeats and connect timeout: sessions stay open while a test looks at them.
pub(crate) fn patient(b: ServerBuilder) -> ServerBuilder {
    b.ping_interval(Duration::from_secs(20))
        .ping_timeout(Duration::from_secs(20))
        .connect_timeout(Duration::from_secs(20))
}

/// The sid of an open packet advertising `upgrades` (the timings of [`patient`] servers are not
/// checked: `check_open` expects the conformance set's).
pub(crate) fn open_sid(packet: &[u8], upgrades: &str) -> String {
    let p = s(packet);
    let sid = p
        .strip_prefix(r#"0{"sid":""#)
        .and_then(|r| r.get(..24))
        .unwrap_or_else(|| panic!("open packet {p:?}"))
        .to_string();
    let rest = format!(r#"0{{"sid":"{sid}","upgrades":{upgrades},"pingInterval":"#);
    assert!(p.starts_with(&rest), "open packet {p:?}");
    sid
}

/// A polling handshake on the Socket.IO path: the sid.
pub(crate) fn handshake(addr: SocketAddr) -> String {
    let (status, _, body) = get(addr, &format!("{SIO}?EIO=4&transport=polling"));
    assert_eq!(status, 200, "handshake: {}", s(&body));
    open_sid(&body, r#"["websocket"]"#)
}

/// A WebSocket-only session on the Socket.IO path: (client, sid).
pub(crate) fn ws_open(addr: SocketAddr) -> (Ws, String) {
    let mut ws = Ws::connect(addr, &format!("{SIO}?EIO=4&transport=websocket"));
    let open = ws.recv_text();
    let sid = open_sid(open.as_bytes(), "[]");
    (ws, sid)
}

/// Sends a request with extra header lines on a fresh connection; reads one answer.
pub(crate) fn request_with(addr: SocketAddr, method: &str, pq: &str, headers: &str) -> Resp {
    let mut c = HttpConn::open(addr);
    let req = format!("{method} {pq} HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
    c.stream.write_all(req.as_bytes()).unwrap();
    c.read()
}

/// Sends a WebSocket upgrade with extra header lines; returns the answer's head (status and
/// headers, names lower-cased) and the open connection.
pub(crate) fn upgrade_head(
    addr: SocketAddr,
    pq: &str,
    headers: &str,
) -> (u16, Vec<(String, String)>, std::net::TcpStream) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let req = format!(
        "GET {pq} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{headers}\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let mut b = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut b).expect("reading the answer's head"), 1, "EOF");
        buf.push(b[0]);
    }
    let r = parse_raw(&buf);
    (r.status, r.headers, s)
}

fn client_dist() -> std::path::PathBuf {
    let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    crate::common::node::ensure_node_modules(
        &js,
        "node_modules/socket.io-client/dist/socket.io.js",
    );
    js.join("node_modules/socket.io-client/dist")
}

#[test]
fn serve_client_bundle() {
    let dist = client_dist();
    let files: Vec<(&str, Vec<u8>)> = [
        "socket.io.js",
        "socket.io.min.js",
        "socket.io.esm.min.js",
        "socket.io.js.map",
        "socket.io.min.js.map",
        "socket.io.esm.min.js.map",
    ]
    .into_iter()
    .map(|n| (n, std::fs::read(dist.join(n)).unwrap()))
    .collect();
    each_server(
        |b| b.serve_client(&dist).unwrap(),
        |c, _| {
            let mut conn = HttpConn::open(c.addr);
            for (name, content) in &files {
                let r = conn.request("GET", &format!("{SIO}{name}"), b"");
                assert_eq!(r.status, 200, "{name}");
                assert!(r.body == *content, "{name}: not the file's bytes");
                let kind = if name.ends_with(".map") {
                    "json"
                } else {
                    "javascript"
                };
                let want = [
                    ("access-control-allow-origin", "*".to_string()),
                    ("cache-control", "public, max-age=0".into()),
                    ("content-type", format!("application/{kind}; charset=utf-8")),
                    ("etag", "\"4.8.4\"".into()),
                    ("content-length", content.len().to_string()),
                ];
                for (h, v) in want {
                    assert_eq!(r.header(h), Some(v.as_str()), "{name}: {h}");
                }
            }
            // Node compares If-None-Match with the ETag and its weak form: 304, no body
            for tag in ["\"4.8.4\"", "W/\"4.8.4\""] {
                let hdr = format!("If-None-Match: {tag}\r\n");
                let r = request_with(c.addr, "GET", &format!("{SIO}socket.io.js?v=2"), &hdr);
                assert_eq!((r.status, r.body.len()), (304, 0), "If-None-Match {tag}");
                assert_eq!(r.header("etag"), None);
            }
            let hdr = "If-None-Match: \"4.8.3\"\r\n";
            let r = request_with(c.addr, "GET", &format!("{SIO}socket.io.js"), hdr);
            assert_eq!(r.status, 200, "another version's ETag");
            // other names under the path go to the engine, as in Node
            let r = request(c.addr, "GET", &format!("{SIO}socket.io.jsx"), b"");
            assert_eio_error(&r, 0, "Transport unknown", "unknown file name");
        },
    );
}

#[test]
fn no_serve_client_no_bundle() {
    each_config(|addr| {
        let r = request(addr, "GET", &format!("{SIO}socket.io.js"), b"");
        assert_eio_error(
            &r,
            0,
            "Transport unknown",
            "socket.io.js without serveClient",
        );
    });
}

#[test]
fn serve_client_refuses_a_folder_without_the_bundle() {
    let err = ringio::Server::builder()
        .serve_client(env!("CARGO_MANIFEST_DIR"))
        .err()
        .expect("a folder without socket.io.js");
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
}

#[test]
fn allow_upgrades_false_advertises_no_upgrade() {
    for build in [
        |b: ServerBuilder| b.allow_upgrades(false),
        |b: ServerBuilder| b.transports(true, false),
    ] {
        each_server(build, |c, _| {
            for _ in 0..4 {
                let (status, _, body) = get(c.addr, &format!("{SIO}?EIO=4&transport=polling"));
                assert_eq!(status, 200);
                check_open(&body, "[]");
            }
        });
    }
    // and the default still offers it
    each_config(|addr| {
        polling_handshake(addr, SIO);
    });
}

#[test]
fn cookie_on_the_polling_handshake_only() {
    let custom = CookieOptions {
        name: "sticky".into(),
        path: Some("/app".into()),
        http_only: false,
        same_site: Some(ringio::SameSite::Strict),
        ..Default::default()
    };
    for (opts, attrs) in [
        (CookieOptions::default(), "; Path=/; HttpOnly; SameSite=Lax"),
        (custom, "; Path=/app; SameSite=Strict"),
    ] {
        let name = opts.name.clone();
        each_server(
            |b| patient(b).cookie(opts.clone()),
            |c, _| {
                for _ in 0..3 {
                    let r = request(
                        c.addr,
                        "GET",
                        &format!("{SIO}?EIO=4&transport=polling"),
                        b"",
                    );
                    let sid = open_sid(&r.body, r#"["websocket"]"#);
                    let want = format!("{name}={sid}{attrs}");
                    assert_eq!(r.header("set-cookie"), Some(want.as_str()));
                    assert_eq!(r.header("cache-control"), Some("no-store"));
                    poll_post(c.addr, SIO, &sid, b"40");
                    let r = request(c.addr, "GET", &poll_url(SIO, &sid), b"");
                    assert_eq!(r.status, 200);
                    assert_eq!(r.header("set-cookie"), None, "only the handshake");
                }
                // Node sets no cookie on a WebSocket handshake
                let (status, headers, _s) =
                    upgrade_head(c.addr, &format!("{SIO}?EIO=4&transport=websocket"), "");
                assert_eq!(status, 101);
                assert!(
                    !headers.iter().any(|(n, _)| n == "set-cookie"),
                    "{headers:?}"
                );
            },
        );
    }
}

fn cors_list() -> CorsOptions {
    CorsOptions::new(CorsOrigin::List(vec!["http://a.example".into()]))
        .credentials(true)
        .exposed_headers(&["X-A", "X-B"])
        .max_age(600)
}

/// What Node writes with `cors: {origin: ["http://a.example"], credentials: true,
/// exposedHeaders: ["X-A","X-B"], maxAge: 600}` (measured against socket.io 4.8.4).
#[test]
fn cors_options_on_every_answer() {
    each_server(
        |b| patient(b).cors(cors_list()),
        |c, _| {
            let origin = "Origin: http://a.example\r\n";
            let pq = format!("{SIO}?EIO=4&transport=polling");
            let pre = request_with(
                c.addr,
                "OPTIONS",
                &pq,
                &format!("{origin}Access-Control-Request-Headers: x-y\r\n"),
            );
            assert_eq!(pre.status, 204);
            let want = [
                ("access-control-allow-origin", "http://a.example"),
                ("vary", "Origin, Access-Control-Request-Headers"),
                ("access-control-allow-credentials", "true"),
                (
                    "access-control-allow-methods",
                    "GET,HEAD,PUT,PATCH,POST,DELETE",
                ),
                ("access-control-allow-headers", "x-y"),
                ("access-control-max-age", "600"),
                ("access-control-expose-headers", "X-A,X-B"),
                ("content-length", "0"),
            ];
            let got: Vec<(&str, &str)> = pre
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            assert_eq!(got, want);
            let actual = [
                ("access-control-allow-origin", Some("http://a.example")),
                ("vary", Some("Origin")),
                ("access-control-allow-credentials", Some("true")),
                ("access-control-expose-headers", Some("X-A,X-B")),
            ];
            let check = |r: &Resp, what: &str| {
                for (h, v) in actual {
                    assert_eq!(r.header(h), v, "{what}: {h}");
                }
            };
            for _ in 0..4 {
                let r = request_with(c.addr, "GET", &pq, origin);
                let sid = open_sid(&r.body, r#"["websocket"]"#);
                check(&r, "handshake");
                let post = format!("{origin}Content-Length: 2\r\n");
                let mut conn = HttpConn::open(c.addr);
                let req = format!(
                    "POST {} HTTP/1.1\r\nHost: x\r\n{post}\r\n40",
                    poll_url(SIO, &sid)
                );
                conn.stream.write_all(req.as_bytes()).unwrap();
                check(&conn.read(), "POST");
                check(
                    &request_with(c.addr, "GET", &poll_url(SIO, &sid), origin),
                    "GET",
                );
            }
            let gone = poll_url(SIO, "AAAAAAAAAAAAAAAAAAAAAAAA");
            check(&request_with(c.addr, "GET", &gone, origin), "error");
            // an origin not in the list: Node keeps Vary and the rest, no Allow-Origin
            let r = request_with(c.addr, "GET", &pq, "Origin: http://evil.example\r\n");
            assert_eq!(r.header("access-control-allow-origin"), None);
            assert_eq!(r.header("vary"), Some("Origin"));
            // the 101 carries them too
            let ws = format!("{SIO}?EIO=4&transport=websocket");
            let (status, headers, _s) = upgrade_head(c.addr, &ws, origin);
            assert_eq!(status, 101);
            let h = |n: &str| {
                headers
                    .iter()
                    .find(|(k, _)| k == n)
                    .map(|(_, v)| v.as_str())
            };
            assert_eq!(h("access-control-allow-origin"), Some("http://a.example"));
        },
    );
}

/// An origin function that refuses: no CORS at all, and a preflight reaches the engine (Node:
/// the middleware calls `next()`).
#[test]
fn cors_origin_function() {
    let f = CorsOrigin::Fn(std::sync::Arc::new(|o: Option<&str>| {
        o.is_some_and(|o| o.ends_with(".good.example"))
    }));
    each_server(
        |b| b.cors(CorsOptions::new(f.clone())),
        |c, _| {
            let pq = format!("{SIO}?EIO=4&transport=polling");
            let r = request_with(c.addr, "OPTIONS", &pq, "Origin: http://x.good.example\r\n");
            assert_eq!(r.status, 204);
            assert_eq!(
                r.header("access-control-allow-origin"),
                Some("http://x.good.example")
            );
            let r = request_with(c.addr, "OPTIONS", &pq, "Origin: http://bad.example\r\n");
            assert_eio_error(&r, 2, "Bad handshake method", "refused preflight");
            assert_eq!(r.header("vary"), None);
        },
    );
}
