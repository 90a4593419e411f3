//! Node's socket.io semantics that a ported application can tell, on the wire: the sender is
//! left out of `socket.to(room)`, `disconnect(true)` disconnects every namespace before the
//! transport closes (polling included), listeners follow EventEmitter rules (several per event,
//! `once`, `off`, `remove_all_listeners`, catch-alls, one shared ack), packet middlewares and
//! the `error` event, async connect middlewares, parent namespaces of dynamic ones, per-emit
//! flags, the handshake's fields and `socket.conn`.

mod common;

use common::{get, post, Ws};
use ringio::{AckSender, Driver, RunningServer, Server, ServerBuilder, Socket};
use std::net::SocketAddr;
use std::time::Duration;

fn listen(b: ServerBuilder, shards: usize, driver: Driver) -> RunningServer {
    b.shards(shards)
        .driver(driver)
        .build()
        .listen("127.0.0.1:0".parse().unwrap())
        .expect("listen")
}

fn configs() -> [(usize, Driver); 3] {
    [(1, Driver::Auto), (2, Driver::Auto), (2, Driver::Epoll)]
}

/// A polling handshake plus CONNECTs to `namespaces`; returns the sid.
fn polling_client(addr: SocketAddr, namespaces: &[&str]) -> String {
    let (status, _, body) = get(addr, "/socket.io/?EIO=4&transport=polling");
    assert_eq!(status, 200);
    let open = String::from_utf8(body).unwrap();
    let sid = open[9..33].to_string();
    for ns in namespaces {
        let packet = if *ns == "/" {
            "40".to_string()
        } else {
            format!("40{ns},")
        };
        let (status, _, _) = post(addr, &poll(&sid), packet.as_bytes());
        assert_eq!(status, 200);
        let body = poll_body(addr, &sid);
        assert!(body.starts_with("40"), "connect answer {body:?}");
    }
    sid
}

fn poll(sid: &str) -> String {
    format!("/socket.io/?EIO=4&transport=polling&sid={sid}")
}

fn poll_body(addr: SocketAddr, sid: &str) -> String {
    let (status, _, body) = get(addr, &poll(sid));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    String::from_utf8(body).unwrap()
}

#[test]
fn disconnect_client_over_polling_flushes_every_namespace_then_closes() {
    for (shards, driver) in configs() {
        let b = common::interop(Server::builder());
        let srv = listen(b, shards, driver);
        let addr = srv.local_addr();
        let sid = polling_client(addr, &["/", "/custom"]);
        // a GET waits while the POST asks for the disconnect
        let sid1 = sid.clone();
        let waiting = std::thread::spawn(move || poll_body(addr, &sid1));
        std::thread::sleep(Duration::from_millis(100));
        let (status, _, _) = post(addr, &poll(&sid), br#"42["disconnect-all"]"#);
        assert_eq!(status, 200);
        // Node's order: the disconnects first, the close in the next answer (the client handles
        // a payload's packets after its close packet otherwise)
        assert_eq!(waiting.join().unwrap(), "41\x1e41/custom,");
        assert_eq!(poll_body(addr, &sid), "1");
        let sid2 = polling_client(addr, &["/", "/custom"]);
        let (status, _, _) = post(addr, &poll(&sid2), br#"42["disconnect-all"]"#);
        assert_eq!(status, 200);
        // no GET was waiting for sid2: the next GET still gets both disconnects, then `1`
        assert_eq!(poll_body(addr, &sid2), "41\x1e41/custom,");
        assert_eq!(poll_body(addr, &sid2), "1");
        let (status, _, _) = get(addr, &poll(&sid2));
        assert_eq!(status, 400, "the session is gone after its last answer");
        srv.shutdown();
    }
}

/// A WebSocket session connected to `ns` (with an optional CONNECT payload): the client, its
/// socket id.
fn ws_ns(addr: SocketAddr, ns: &str, auth: &str) -> (Ws, String) {
    let mut ws = Ws::connect(addr, "/socket.io/?EIO=4&transport=websocket");
    assert!(ws.recv_text().starts_with(r#"0{"sid":""#));
    let prefix = if ns == "/" {
        String::new()
    } else {
        format!("{ns},")
    };
    ws.send_text(&format!("40{prefix}{auth}"));
    let ok = ws.recv_text();
    let head = format!("40{prefix}{{\"sid\":\"");
    assert!(ok.starts_with(&head), "connect answer {ok:?}");
    let id = ok[head.len()..head.len() + 24].to_string();
    (ws, id)
}

/// Reads text frames until one equals `want` (panics after 2 s); returns the ones before it.
fn until(ws: &mut Ws, want: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let t = ws.recv_text();
        if t == want {
            return seen;
        }
        seen.push(t);
    }
}

/// No text frame (other than pings) within `ms`.
fn quiet(ws: &mut Ws, ms: u64) {
    if let Some(m) = ws.recv_skip_pings_timeout(Duration::from_millis(ms)) {
        panic!("unexpected frame {m:?}");
    }
}

fn listeners_server() -> ServerBuilder {
    Server::builder().ns("/", |ns| {
        // two namespace listeners of one event: both run, the first answer is the ack
        ns.on("multi", |s: Socket, _: (), ack: AckSender| {
            s.emit("log", ("first",));
            ack.send(("first",));
        });
        ns.on("multi", |s: Socket, _: (), ack: AckSender| {
            s.emit("log", ("second",));
            ack.send(("second",));
        });
        ns.on_connect(|s| {
            s.on_any(|s, ev, args| {
                s.emit("any", (ev.to_string(), args.len()));
            });
            s.on_any_outgoing(|s, ev, _args| {
                if ev == "greeting" {
                    s.emit("out-seen", (ev.to_string(),));
                }
            });
            s.use_middleware(|_s, ev, _args| match ev {
                "forbidden" => Err(ringio::PacketError::new("unauthorized event")),
                _ => Ok(()),
            });
            s.use_async(|_s, ev, _args| async move {
                if &*ev == "slow-mw" {
                    monoio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(())
            });
            s.on_error(|s, e| {
                s.emit("error-seen", (e.message.clone(),));
            });
            let id = s.on("own", |s: Socket, (n,): (u32,), _ack: AckSender| {
                s.emit("log", (format!("own {n}"),));
            });
            s.once("once", |s: Socket, _: (), _ack: AckSender| {
                s.emit("log", ("once",));
            });
            s.on("off-own", move |s: Socket, _: (), ack: AckSender| {
                ack.send((s.off("own", id), s.listener_count("own")));
            });
            s.on("mute-multi", |s: Socket, _: (), ack: AckSender| {
                s.remove_all_listeners(Some("multi"));
                ack.send((s.listener_count("multi"),));
            });
            s.on("slow-mw", |s: Socket, (n,): (u32,), _ack: AckSender| {
                s.emit("log", (format!("slow {n}"),));
            });
            s.on("fast", |s: Socket, (n,): (u32,), _ack: AckSender| {
                s.emit("log", (format!("fast {n}"),));
            });
            s.on("hello-out", |s: Socket, _: (), _ack: AckSender| {
                s.emit("greeting", ("hi",));
            });
        });
    })
}

#[test]
fn listeners_follow_event_emitter_rules() {
    for (shards, driver) in configs() {
        let srv = listen(listeners_server(), shards, driver);
        let (mut ws, _) = ws_ns(srv.local_addr(), "/", "");
        // catch-all first, then both namespace listeners in order, one ack (the first)
        ws.send_text(r#"421["multi",1,2]"#);
        assert_eq!(ws.recv_text(), r#"42["any","multi",2]"#);
        assert_eq!(ws.recv_text(), r#"42["log","first"]"#);
        assert_eq!(ws.recv_text(), r#"431["first"]"#);
        assert_eq!(ws.recv_text(), r#"42["log","second"]"#);
        // a socket's own listener; once runs once
        ws.send_text(r#"42["own",7]"#);
        assert_eq!(ws.recv_text(), r#"42["any","own",1]"#);
        assert_eq!(ws.recv_text(), r#"42["log","own 7"]"#);
        ws.send_text(r#"42["once"]"#);
        until(&mut ws, r#"42["log","once"]"#);
        ws.send_text(r#"42["once"]"#);
        assert_eq!(ws.recv_text(), r#"42["any","once",0]"#);
        // off removes it: true the first time, then no listener is left
        ws.send_text(r#"422["off-own"]"#);
        until(&mut ws, r#"432[true,0]"#);
        ws.send_text(r#"42["own",8]"#);
        assert_eq!(ws.recv_text(), r#"42["any","own",1]"#);
        // remove_all_listeners(Some) takes the namespace's listeners away for this socket
        ws.send_text(r#"423["mute-multi"]"#);
        until(&mut ws, "433[0]");
        ws.send_text(r#"424["multi"]"#);
        assert_eq!(ws.recv_text(), r#"42["any","multi",0]"#);
        // a middleware error drops the event and reaches the error listeners
        ws.send_text(r#"42["forbidden"]"#);
        assert_eq!(ws.recv_text(), r#"42["any","forbidden",0]"#);
        assert_eq!(ws.recv_text(), r#"42["error-seen","unauthorized event"]"#);
        // an async middleware keeps arrival order
        ws.send_text(r#"42["slow-mw",1]"#);
        ws.send_text(r#"42["fast",2]"#);
        let logs: Vec<String> = until(&mut ws, r#"42["log","fast 2"]"#)
            .into_iter()
            .filter(|t| t.starts_with(r#"42["log""#))
            .collect();
        assert_eq!(logs, vec![r#"42["log","slow 1"]"#.to_string()]);
        // outgoing catch-all listeners see the socket's own emits before they are queued (as
        // Node's notifyOutgoingListeners runs before the packet is written)
        ws.send_text(r#"42["hello-out"]"#);
        until(&mut ws, r#"42["out-seen","greeting"]"#);
        assert_eq!(ws.recv_text(), r#"42["greeting","hi"]"#);
        quiet(&mut ws, 200);
        srv.shutdown();
    }
}

fn features_server(tx: std::sync::mpsc::Sender<String>) -> ServerBuilder {
    let tx2 = tx.clone();
    Server::builder()
        .ns("/async", |ns| {
            // an async connect middleware, then a sync one
            ns.use_async(|s: Socket| async move {
                monoio::time::sleep(Duration::from_millis(30)).await;
                match s.auth_field::<String>("token").as_deref() {
                    Some("ok") => Ok(()),
                    _ => Err(ringio::ConnectError::new("slow no")),
                }
            });
            ns.use_middleware(|s| {
                s.set_data(1u8);
                Ok(())
            });
            ns.on_connect(|s| {
                s.emit("welcome", (s.with_data(|d: Option<&mut u8>| d.copied()),));
            });
        })
        .dynamic_ns(|n| n.starts_with("/dyn-"), |_ns| {})
        .ns_regex(r"^/re-\d+$", |_ns| {})
        .unwrap()
        .ns("/", move |ns| {
            ns.on(
                "parent-emit",
                |_s: Socket, (i, room): (usize, Option<String>), ack: AckSender| {
                    let op = ringio::Io::parent(i);
                    match room {
                        Some(r) => op.to(&r).emit("p", (i,)),
                        None => op.emit("p", (i,)),
                    }
                    ack.send((true,));
                },
            );
            ns.on("hs", |s: Socket, _: (), ack: AckSender| {
                let hs = s.handshake();
                ack.send((
                    hs.url(),
                    hs.xdomain(),
                    hs.secure(),
                    hs.query_pairs(),
                    [
                        hs.time().ends_with("GMT+0000 (Coordinated Universal Time)"),
                        hs.issued > 1_700_000_000_000,
                    ],
                    s.conn().transport().map(|t| t.as_str()),
                ));
            });
            ns.on("volatile", |s: Socket, _: (), ack: AckSender| {
                ack.send((s.volatile().emit("v", ()),));
            });
            ns.on_async(
                "ask-timeout",
                |s: Socket, (ms,): (u64,), ack: AckSender| async move {
                    let r = s
                        .timeout(Duration::from_millis(ms))
                        .emit_with_ack("q", ())
                        .await;
                    ack.send((r.map_err(|e| e.to_string()).map(|a| a.len()).err(),));
                },
            );
            let tx = tx2.clone();
            ns.on_connect(move |s| {
                s.join("lobby");
                let (t1, t2, t3) = (tx.clone(), tx.clone(), tx.clone());
                s.on_disconnecting(move |s, r| {
                    let _ = t1.send(format!("disconnecting {} {}", s.rooms().len(), r));
                });
                s.on_disconnect(move |s, r| {
                    let _ = t2.send(format!("disconnect {} {}", s.rooms().len(), r));
                });
                s.conn().on_close(move |r| {
                    let _ = t3.send(format!("conn close {r}"));
                });
                let t4 = tx.clone();
                s.conn().on_upgrading(move |t| {
                    let _ = t4.send(format!("upgrading {}", t.as_str()));
                });
                let t5 = tx.clone();
                s.conn().on_upgrade(move |t| {
                    let _ = t5.send(format!("upgrade {}", t.as_str()));
                });
            });
        })
}

#[test]
fn async_connect_middleware_parent_namespaces_handshake_and_flags() {
    for (shards, driver) in configs() {
        let (tx, rx) = std::sync::mpsc::channel();
        let srv = listen(features_server(tx), shards, driver);
        let addr = srv.local_addr();
        // async connect middleware: refused, then accepted (after the sync one ran)
        let mut ws = Ws::connect(addr, "/socket.io/?EIO=4&transport=websocket");
        ws.recv_text();
        ws.send_text(r#"40/async,{"token":"no"}"#);
        assert_eq!(ws.recv_text(), r#"44/async,{"message":"slow no"}"#);
        let (mut a, _) = ws_ns(addr, "/async", r#"{"token":"ok"}"#);
        assert_eq!(a.recv_text(), r#"42/async,["welcome",1]"#);
        // parent namespaces: an emit reaches every child of that parent, on every shard
        let dyns: Vec<Ws> = (0..4)
            .map(|i| ws_ns(addr, &format!("/dyn-{i}"), "").0)
            .collect();
        let (mut re, _) = ws_ns(addr, "/re-1", "");
        let (mut root, root_id) = ws_ns(addr, "/", "");
        root.send_text(r#"421["parent-emit",0,null]"#);
        assert_eq!(root.recv_text(), "431[true]");
        for (i, mut d) in dyns.into_iter().enumerate() {
            assert_eq!(d.recv_text(), format!(r#"42/dyn-{i},["p",0]"#));
        }
        quiet(&mut re, 100);
        root.send_text(r#"422["parent-emit",1,"nobody"]"#);
        assert_eq!(root.recv_text(), "432[true]");
        quiet(&mut re, 100);
        root.send_text(r#"423["parent-emit",1,null]"#);
        assert_eq!(root.recv_text(), "433[true]");
        assert_eq!(re.recv_text(), r#"42/re-1,["p",1]"#);
        // the handshake's fields and the transport
        root.send_text(r#"424["hs"]"#);
        let hs = root.recv_text();
        let want = r#"434["/socket.io/?EIO=4&transport=websocket",false,false,[["EIO","4"],["transport","websocket"]],[true,true],"websocket"]"#;
        assert_eq!(hs, want);
        // volatile: queued when the transport is ready
        root.send_text(r#"425["volatile"]"#);
        let got = until(&mut root, "435[true]");
        assert_eq!(got, vec![r#"42["v"]"#.to_string()]);
        // timeout(..).emit_with_ack: the client does not answer
        root.send_text(r#"426["ask-timeout",50]"#);
        let q = root.recv_text();
        assert!(q.starts_with(r#"42"#) && q.ends_with(r#"["q"]"#), "{q}");
        assert_eq!(root.recv_text(), r#"436["operation has timed out"]"#);
        // disconnecting sees the rooms, disconnect comes after leaving them; then the conn
        root.send_text("41");
        let mut events = Vec::new();
        while events.len() < 2 {
            events.push(rx.recv_timeout(Duration::from_secs(2)).unwrap());
        }
        assert_eq!(
            events,
            vec![
                "disconnecting 2 client namespace disconnect".to_string(),
                "disconnect 1 client namespace disconnect".to_string()
            ],
            "socket {root_id}"
        );
        drop(root);
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(2)).unwrap(),
            "conn close transport close"
        );
        // socket.conn's upgrade events on a polling connection moving to WebSocket
        let sid = polling_client(addr, &["/"]);
        let mut up = Ws::connect(
            addr,
            &format!("/socket.io/?EIO=4&transport=websocket&sid={sid}"),
        );
        up.send_text("2probe");
        assert_eq!(up.recv_text(), "3probe");
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(2)).unwrap(),
            "upgrading websocket"
        );
        up.send_text("5");
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(2)).unwrap(),
            "upgrade websocket"
        );
        up.send_text(r#"427["hs"]"#);
        let hs = up.recv_text();
        assert!(hs.ends_with(r#""websocket"]"#), "{hs}");
        assert!(hs.contains(r#"["transport","polling"]"#), "{hs}");
        srv.shutdown();
    }
}
