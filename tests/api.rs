//! The server API end to end (Rust client against an in-process server, 2 shards): dynamic
//! namespaces (predicate and regex), async handlers keep arrival order, per-socket data,
//! handshake details, disconnect reasons on the server side, room events, custom path,
//! allowRequest (403 code 4), CORS.

mod common;

use ringio::client::{ClientAck, ClientBuilder, Transport};
use ringio::{AckSender, Cors, DisconnectReason, Driver, RoomEvent, Server, Socket};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

fn start(driver: Driver) -> (ringio::RunningServer, Receiver<String>) {
    // server-side observations: handlers run on shard threads and report through this channel
    let (tx, rx) = channel::<String>();
    let builder = Server::builder()
        .path("/io/")
        .shards(2)
        .driver(driver)
        .allow_request(|head| head.param("deny").is_none())
        .cors(Cors::List(vec!["http://ok.example".into()]))
        .dynamic_ns(
            |name| name.starts_with("/dyn-"),
            |ns| {
                ns.on_connect(|s| {
                    s.emit("hi", (s.ns().to_string(),));
                });
            },
        )
        .ns_regex(r"^/room-\d+$", |ns| {
            ns.on_connect(|s| {
                s.emit("hi", (s.ns().to_string(),));
            });
        })
        .unwrap()
        .ns("/", move |ns| {
            let on_disc = tx.clone();
            ns.on_connect(move |s| {
                s.set_data(0u32);
                let tx = on_disc.clone();
                s.on_disconnect(move |s, reason| {
                    let _ = tx.send(format!("disconnect:{}:{}", s.id(), reason.as_str()));
                });
            });
            ns.on_async(
                "slow",
                |s: Socket, (i, ms): (u32, u64), _ack: AckSender| async move {
                    monoio::time::sleep(Duration::from_millis(ms)).await;
                    s.emit("done", (i,));
                },
            );
            ns.on("count", |s: Socket, _: (), ack: AckSender| {
                let n = s.with_data(|d: Option<&mut u32>| {
                    let d = d.expect("data set on connect");
                    *d += 1;
                    *d
                });
                ack.send((n,));
            });
            ns.on("hs", |s: Socket, _: (), ack: AckSender| {
                let hs = s.handshake();
                let ua = hs
                    .headers()
                    .into_iter()
                    .find(|(k, _)| k == "x-test")
                    .map(|(_, v)| v);
                ack.send((
                    hs.query_param("x"),
                    ua,
                    hs.address.is_some(),
                    hs.url(),
                    hs.path().to_string(),
                ));
            });
            ns.on("join", |s: Socket, (room,): (String,), ack: AckSender| {
                s.join(&room);
                ack.send((s.rooms(),));
            });
            ns.on("leave", |s: Socket, (room,): (String,), ack: AckSender| {
                s.leave(&room);
                ack.send((s.rooms(),));
            });
            ns.on("kick-me", |s: Socket, _: (), _ack: AckSender| {
                s.disconnect()
            });
            ns.on("close-me", |s: Socket, _: (), _ack: AckSender| {
                s.close_connection()
            });
            let tx = tx.clone();
            ns.on_room_event(move |ev: RoomEvent, room: &str, id: &str| {
                if room.starts_with("probe") {
                    let _ = tx.send(format!("{}:{room}:{id}", ev.as_str()));
                }
            });
        });
    let running = builder
        .build()
        .listen("127.0.0.1:0".parse().unwrap())
        .unwrap();
    (running, rx)
}

fn block_on<F: Future>(f: F) -> F::Output {
    let mut rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .enable_timer()
        .build()
        .unwrap();
    rt.block_on(async {
        monoio::time::timeout(Duration::from_secs(20), f)
            .await
            .expect("test body timed out")
    })
}

fn client(addr: SocketAddr) -> ClientBuilder {
    ClientBuilder::new(&format!("http://{addr}"))
        .path("/io/")
        .transports(&[Transport::WebSocket])
        .reconnection(false)
        .timeout(Duration::from_secs(5))
}

fn wait_event(rx: &Receiver<String>, prefix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(e) if e.starts_with(prefix) => return e,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    panic!("no server event {prefix:?}");
}

async fn wait_until(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        monoio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn api_end_to_end() {
    for driver in [Driver::Auto, Driver::Epoll] {
        let (srv, rx) = start(driver);
        let addr = srv.local_addr();
        let (_id, id2) = block_on(async {
            let c = client(addr)
                .query("x", "42")
                .header("x-test", "yes")
                .connect()
                .await
                .unwrap();
            let root = c.socket("/");
            wait_until("connect", || root.connected()).await;
            let ack = Duration::from_secs(2);

            // async handlers: a 150 ms event and a 0 ms event complete in arrival order
            let done = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
            let d = done.clone();
            root.on("done", move |(i,): (u32,), _a: ClientAck| {
                d.borrow_mut().push(i)
            });
            root.emit("slow", (1, 150));
            root.emit("slow", (2, 0));
            root.emit("slow", (3, 20));
            wait_until("3 done", || done.borrow().len() == 3).await;
            assert_eq!(*done.borrow(), vec![1, 2, 3]);

            // per-socket data
            for want in 1..=3u32 {
                let n = root.emit_with_ack("count", (), ack).await.unwrap();
                assert_eq!(n.get::<u32>(0).unwrap(), want);
            }

            // handshake details
            let hs = root.emit_with_ack("hs", (), ack).await.unwrap();
            assert_eq!(hs.get::<Option<String>>(0).unwrap().as_deref(), Some("42"));
            assert_eq!(hs.get::<Option<String>>(1).unwrap().as_deref(), Some("yes"));
            assert!(hs.get::<bool>(2).unwrap());
            // Node's handshake.url: path and query of the first request
            let url = hs.get::<String>(3).unwrap();
            assert!(url.starts_with("/io/?EIO=4&transport="), "{url}");
            assert!(url.ends_with("&x=42"), "{url}");
            assert_eq!(hs.get::<String>(4).unwrap(), "/io/");

            // rooms (own id first) and room events
            let id = root.id().unwrap();
            let rooms = root.emit_with_ack("join", ("probe-a",), ack).await.unwrap();
            assert_eq!(
                rooms.get::<Vec<String>>(0).unwrap(),
                vec![id.clone(), "probe-a".into()]
            );
            let rooms = root
                .emit_with_ack("leave", ("probe-a",), ack)
                .await
                .unwrap();
            assert_eq!(rooms.get::<Vec<String>>(0).unwrap(), vec![id.clone()]);

            // dynamic namespaces: predicate and regex; others refused
            for name in ["/dyn-x", "/room-12"] {
                let s = c.socket(name);
                let got = std::rc::Rc::new(std::cell::RefCell::new(None));
                let g = got.clone();
                s.on("hi", move |(n,): (String,), _a: ClientAck| {
                    *g.borrow_mut() = Some(n)
                });
                wait_until(name, || got.borrow().is_some()).await;
                assert_eq!(got.borrow().as_deref(), Some(name));
            }
            let refused = c.socket("/room-x");
            let err = std::rc::Rc::new(std::cell::RefCell::new(None));
            let e = err.clone();
            refused.on_connect_error(move |m, _| *e.borrow_mut() = Some(m.to_string()));
            wait_until("refused", || err.borrow().is_some()).await;
            assert_eq!(err.borrow().as_deref(), Some("Invalid namespace"));

            // server namespace disconnect, then a forced close of a second connection
            root.emit("kick-me", ());
            let c2 = client(addr).connect().await.unwrap();
            let s2 = c2.socket("/");
            wait_until("second connect", || s2.connected()).await;
            let id2 = s2.id().unwrap();
            s2.emit("close-me", ());
            wait_until("forced close seen by the client", || !s2.connected()).await;
            (id, id2)
        });
        wait_event(&rx, "create-room:probe-a:");
        wait_event(&rx, "join-room:probe-a:");
        wait_event(&rx, "leave-room:probe-a:");
        wait_event(&rx, "delete-room:probe-a:");
        let kicked = wait_event(&rx, "disconnect:");
        assert!(kicked.ends_with(":server namespace disconnect"), "{kicked}");
        let closed = wait_event(&rx, &format!("disconnect:{id2}:"));
        assert!(
            closed.ends_with(&format!(":{}", DisconnectReason::ForcedClose.as_str())),
            "{closed}"
        );
        srv.shutdown();
    }
}

#[test]
fn path_allow_request_and_cors() {
    let (srv, _rx) = start(Driver::Auto);
    let addr = srv.local_addr();
    // the default path is not served: the endpoint lives at /io/
    let r = common::request(addr, "GET", "/socket.io/?EIO=4&transport=polling", b"");
    assert_eq!(r.status, 404);
    let r = common::request(addr, "GET", "/io/?EIO=4&transport=polling", b"");
    assert_eq!(r.status, 200);
    // allowRequest refusal: 403 with Node's code 4
    let r = common::request(addr, "GET", "/io/?EIO=4&transport=polling&deny=1", b"");
    assert_eq!(
        (r.status, r.text()),
        (403, r#"{"code":4,"message":"Forbidden"}"#.to_string())
    );
    // CORS: preflight and simple requests from a listed origin; nothing for others
    let pre = common::raw(
        addr,
        b"OPTIONS /io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nOrigin: http://ok.example\r\nAccess-Control-Request-Headers: x-a\r\nConnection: close\r\n\r\n",
    );
    let pre = String::from_utf8_lossy(&pre).into_owned();
    assert!(pre.starts_with("HTTP/1.1 204 No Content\r\n"), "{pre}");
    assert!(
        pre.contains("Access-Control-Allow-Origin: http://ok.example\r\n"),
        "{pre}"
    );
    assert!(
        pre.contains("Access-Control-Allow-Headers: x-a\r\n"),
        "{pre}"
    );
    assert!(
        pre.contains("Access-Control-Allow-Credentials: true\r\n"),
        "{pre}"
    );
    let ok = common::raw(
        addr,
        b"GET /io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nOrigin: http://ok.example\r\nConnection: close\r\n\r\n",
    );
    assert!(
        String::from_utf8_lossy(&ok).contains("Access-Control-Allow-Origin: http://ok.example\r\n")
    );
    let other = common::raw(
        addr,
        b"GET /io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nOrigin: http://evil.example\r\nConnection: close\r\n\r\n",
    );
    assert!(!String::from_utf8_lossy(&other).contains("Access-Control-Allow-Origin"));
    srv.shutdown();
}
