//! The engine's hooks, as Node's engine events and options: `headers` / `initial_headers`,
//! `connection_error` (code, message, context), `allowRequest` sync and async with its own
//! message; and `clients_count`.

use super::options::{
    each_server, handshake, open_sid, patient, request_with, upgrade_head, ws_open,
};
use super::*;
use ringio::{AckSender, CookieOptions, Socket};
use std::sync::mpsc::{channel, Receiver};

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn header_hooks_on_every_transport_answer() {
    each_server(
        |b| {
            patient(b)
                .cookie(CookieOptions::default())
                .on_initial_headers(|h, _head| {
                    // it sees the cookie, as Node's listeners do
                    let cookie = h.get("Set-Cookie").is_some();
                    h.set("X-Initial", format!("cookie={cookie}"));
                })
                .on_headers(|h, head| h.set("X-Every", head.param("transport").unwrap_or("-")))
        },
        |c, _| {
            for _ in 0..4 {
                let r = request(
                    c.addr,
                    "GET",
                    &format!("{SIO}?EIO=4&transport=polling"),
                    b"",
                );
                let sid = open_sid(&r.body, r#"["websocket"]"#);
                assert_eq!(r.header("x-initial"), Some("cookie=true"));
                assert_eq!(r.header("x-every"), Some("polling"));
                // every answer of the transport, never the first-only header
                let r = request(c.addr, "POST", &poll_url(SIO, &sid), b"40");
                assert_eq!(
                    (r.status, r.header("x-every")),
                    (200, Some("polling")),
                    "POST"
                );
                assert_eq!(r.header("x-initial"), None);
                let r = request(c.addr, "GET", &poll_url(SIO, &sid), b"");
                assert_eq!(
                    (r.status, r.header("x-every")),
                    (200, Some("polling")),
                    "GET"
                );
                assert_eq!(r.header("x-initial"), None);
                // the upgrade's 101
                let pq = format!("{SIO}?EIO=4&transport=websocket&sid={sid}");
                let (status, h, _s) = upgrade_head(c.addr, &pq, "");
                assert_eq!(status, 101);
                assert_eq!(header(&h, "x-every"), Some("websocket"));
                assert_eq!(header(&h, "x-initial"), None);
            }
            // a WebSocket-only handshake: both, no cookie (as Node)
            let pq = format!("{SIO}?EIO=4&transport=websocket");
            let (status, h, _s) = upgrade_head(c.addr, &pq, "");
            assert_eq!(status, 101);
            assert_eq!(header(&h, "x-initial"), Some("cookie=false"));
            assert_eq!(header(&h, "x-every"), Some("websocket"));
            // refusals are not transport answers
            let r = request(c.addr, "GET", &poll_url(SIO, "nope"), b"");
            assert_eq!((r.status, r.header("x-every")), (400, None));
        },
    );
}

/// The next `n` reports (fewer when they do not come within 2 s).
fn drain(rx: &Receiver<String>, n: usize) -> Vec<String> {
    (0..n)
        .map_while(|_| rx.recv_timeout(Duration::from_secs(2)).ok())
        .collect()
}

/// Every refusal is reported with Node's code, message and context (`JSON.stringify` of it),
/// including the ones decided on another shard (the sid's owner).
#[test]
fn connection_error_for_every_refusal() {
    let (tx, rx) = channel::<String>();
    each_server(
        |b| {
            let tx = tx.clone();
            patient(b).on_connection_error(move |e| {
                let line = format!("{} {} {}", e.code, e.message, e.context.to_json());
                let _ = tx.send(line);
            })
        },
        |c, _| {
            while rx.try_recv().is_ok() {}
            let eio = |q: &str| format!("{SIO}?EIO=4&{q}");
            let mut expected: Vec<String> = Vec::new();
            let mut expect = |line: &str| expected.push(line.to_string());
            request(c.addr, "GET", &eio("transport=bogus"), b"");
            expect(r#"0 Transport unknown {"transport":"bogus"}"#);
            request(c.addr, "GET", &poll_url(SIO, "nope"), b"");
            expect(r#"1 Session ID unknown {"sid":"nope"}"#);
            request(c.addr, "PUT", &eio("transport=polling"), b"");
            expect(r#"2 Bad handshake method {"method":"PUT"}"#);
            request(c.addr, "GET", &eio("transport=websocket"), b"");
            expect(r#"3 Bad request {"name":"TRANSPORT_HANDSHAKE_ERROR"}"#);
            request(
                c.addr,
                "GET",
                &format!("{SIO}?EIO=3&transport=polling"),
                b"",
            );
            expect(r#"5 Unsupported protocol version {"protocol":3}"#);
            for _ in 0..3 {
                // decided by the owner of the session, reported where the request came in
                let (_ws, sid) = ws_open(c.addr);
                request(c.addr, "GET", &poll_url(SIO, &sid), b"");
                expect(
                    r#"3 Bad request {"name":"TRANSPORT_MISMATCH","transport":"polling","previousTransport":"websocket"}"#,
                );
                let sid = handshake(c.addr);
                let pq = format!("{SIO}?EIO=3&transport=polling&sid={sid}");
                request(c.addr, "GET", &pq, b"");
                expect(
                    r#"3 Bad request {"name":"PROTOCOL_MISMATCH","protocol":3,"previousProtocol":4}"#,
                );
                poll_post(c.addr, SIO, &sid, b"1");
                let ws = format!("{SIO}?EIO=4&transport=websocket&sid={sid}");
                let (status, _, _s) = upgrade_head(c.addr, &ws, "");
                assert_eq!(status, 400);
                expect(&format!(r#"1 Session ID unknown {{"sid":"{sid}"}}"#));
            }
            let mut got = drain(&rx, expected.len());
            got.sort();
            expected.sort();
            assert_eq!(got, expected);
            // accepted requests report nothing
            let sid = handshake(c.addr);
            poll_post(c.addr, SIO, &sid, b"40");
            assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
        },
    );
}

/// `allowRequest` decided by a future: its message replaces "Forbidden" (JSON-escaped), it runs
/// before the protocol check (Node's order), an upgrade is refused the engine.io way, and the
/// shard serves other requests while a decision is pending.
#[test]
fn allow_request_async_with_its_message() {
    let (tx, rx) = channel::<String>();
    each_server(
        |b| {
            let tx = tx.clone();
            b.allow_request_async(|head: ringio::Head| async move {
                if head.param("slow").is_some() {
                    monoio::time::sleep(Duration::from_millis(400)).await;
                }
                match head.param("deny") {
                    Some(_) => Err("go \"away\"".to_string()),
                    None => Ok(()),
                }
            })
            .on_connection_error(move |e| {
                let _ = tx.send(format!("{} {}", e.code, e.context.to_json()));
            })
        },
        |c, _| {
            while rx.try_recv().is_ok() {}
            let body = r#"{"code":4,"message":"go \"away\""}"#;
            for q in [
                "EIO=4&transport=polling&deny=1",
                "EIO=3&transport=polling&deny=1",
            ] {
                let r = request(c.addr, "GET", &format!("{SIO}?{q}"), b"");
                assert_eq!((r.status, r.text().as_str()), (403, body), "{q}");
                assert_eq!(drain(&rx, 1), [r#"4 {"message":"go \"away\""}"#]);
            }
            let pq = format!("{SIO}?EIO=4&transport=websocket&deny=1");
            let (status, h, _s) = upgrade_head(c.addr, &pq, "");
            assert_eq!((status, header(&h, "content-length")), (400, Some("9")));
            drain(&rx, 1);
            handshake(c.addr);
            // a pending decision does not hold the shard
            let addr = c.addr;
            let slow = std::thread::spawn(move || {
                let t0 = Instant::now();
                let (status, _, _) = get(addr, &format!("{SIO}?EIO=4&transport=polling&slow=1"));
                assert_eq!(status, 200);
                t0.elapsed()
            });
            std::thread::sleep(Duration::from_millis(50));
            let t0 = Instant::now();
            handshake(c.addr);
            assert!(
                t0.elapsed() < Duration::from_millis(250),
                "{:?}",
                t0.elapsed()
            );
            assert!(slow.join().unwrap() >= Duration::from_millis(400));
        },
    );
}

#[test]
fn allow_request_sync_forms() {
    each_server(
        |b| b.allow_request(|head| head.param("deny").is_none()),
        |c, _| {
            let r = request(
                c.addr,
                "GET",
                &format!("{SIO}?EIO=4&transport=polling&deny"),
                b"",
            );
            assert_eq!((r.status, r.text()), (403, json_error(4, "Forbidden")));
        },
    );
    each_server(
        |b| {
            b.allow_request(|head| match head.origin() {
                Some("http://ok") => Ok(()),
                _ => Err("origin not allowed"),
            })
        },
        |c, _| {
            let pq = format!("{SIO}?EIO=4&transport=polling");
            let r = request_with(c.addr, "GET", &pq, "Origin: http://ko\r\n");
            assert_eq!(
                (r.status, r.text()),
                (403, json_error(4, "origin not allowed"))
            );
            let r = request_with(c.addr, "GET", &pq, "Origin: http://ok\r\n");
            assert_eq!(r.status, 200);
        },
    );
}

/// Node's `engine.clientsCount`: open sessions of every shard, from the running server and from
/// a handler; back to 0 once they close.
#[test]
fn clients_count_sums_the_shards() {
    each_server(
        |b| {
            patient(b).ns("/count", |ns| {
                ns.on("count", |_s: Socket, _: (), ack: AckSender| {
                    ack.send((ringio::clients_count(),))
                });
            })
        },
        |c, server| {
            assert_eq!(server.clients_count(), 0);
            let polls: Vec<String> = (0..3).map(|_| handshake(c.addr)).collect();
            let mut wss: Vec<Ws> = (0..2).map(|_| ws_open(c.addr).0).collect();
            assert_eq!(server.clients_count(), 5);
            let ws = &mut wss[0];
            ws.send_text("40/count,");
            check_connect_ok(&ws.recv_text(), "/count,");
            ws.send_text(r#"42/count,7["count"]"#);
            assert_eq!(ws.recv_text(), "43/count,7[5]");
            for sid in &polls {
                poll_post(c.addr, SIO, sid, b"1");
            }
            drop(wss);
            let deadline = Instant::now() + Duration::from_secs(2);
            while server.clients_count() != 0 {
                assert!(Instant::now() < deadline, "{} left", server.clients_count());
                std::thread::sleep(Duration::from_millis(10));
            }
        },
    );
}
