//! Rooms and broadcasting across shards, on real sockets, under both drivers and with 1, 2 and
//! 4 shards: exactly-once delivery, union of rooms, except, per-sender order, joins visible to
//! the next broadcast, hash collisions in the presence table, slow consumers, inbox floods,
//! broadcast with acks, fetch_sockets / sockets_join / disconnect_sockets.

mod common;

use common::{sid_shard, Ws, WsEvent};
use ringio::proto::ws::Message;
use ringio::{AckSender, Driver, Io, RemoteSocket, RunningServer, Server, ServerBuilder, Socket};
use std::collections::HashSet;
use std::sync::mpsc;
use std::sync::OnceLock;

/// Where the `handoff` handler sends fetched sockets (to the test's own thread).
static HANDOFF: OnceLock<mpsc::Sender<Vec<RemoteSocket>>> = OnceLock::new();
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn server(
    shards: usize,
    driver: Driver,
    tweak: impl FnOnce(ServerBuilder) -> ServerBuilder,
) -> RunningServer {
    let b = ringio::demo::bench(Server::builder()).ns("/", |ns| {
        ns.on_connect(|s| s.set_shared_data(&s.id().to_string()));
        // {"to":[..],"except":[..],"tag":..}: Io::of("/").to(..).except(..).emit("x", tag)
        ns.on(
            "emit-to",
            |_s: Socket, (spec,): (sonic_rs::Value,), ack: AckSender| {
                use sonic_rs::{JsonContainerTrait, JsonValueTrait};
                let mut op = Io::of("/");
                let list = |k: &str| -> Vec<String> {
                    spec.get(k)
                        .and_then(|v| v.as_array())
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default()
                };
                for r in list("to") {
                    op = op.to(&r);
                }
                for e in list("except") {
                    op = op.except(&e);
                }
                let tag = spec
                    .get("tag")
                    .and_then(|t| t.as_str())
                    .unwrap_or("")
                    .to_string();
                op.emit("x", (tag,));
                ack.send((true,));
            },
        );
        ns.on_async(
            "bcast-ack",
            |_s: Socket, (ms,): (u64,), ack: AckSender| async move {
                let r = Io::of("/")
                    .timeout(Duration::from_millis(ms))
                    .emit_with_ack("q", ())
                    .await;
                match r {
                    Ok(v) => ack.send(("ok", v.len())),
                    Err(e) => ack.send(("timeout", e.responses.len(), e.expected)),
                }
            },
        );
        ns.on_async(
            "fetch",
            |_s: Socket, (room,): (String,), ack: AckSender| async move {
                let mut ids: Vec<String> = Io::of("/")
                    .to(&room)
                    .fetch_sockets()
                    .await
                    .into_iter()
                    .map(|s| {
                        // every socket's shared data is its own id (set on connect): it must
                        // cross shards with the snapshot
                        let want = format!("\"{}\"", s.id);
                        assert_eq!(s.data.as_deref(), Some(want.as_str()), "shared data");
                        s.id
                    })
                    .collect();
                ids.sort();
                ack.send((ids,));
            },
        );
        ns.on(
            "join-all",
            |_s: Socket, (target, room): (String, String), ack: AckSender| {
                Io::of("/").to(&target).sockets_join(&room);
                ack.send((true,));
            },
        );
        ns.on("kick", |_s: Socket, (room,): (String,), ack: AckSender| {
            Io::of("/").to(&room).disconnect_sockets(false);
            ack.send((true,));
        });
        ns.on(
            "emit-local",
            |_s: Socket, (tag,): (String,), ack: AckSender| {
                Io::of("/").local().emit("x", (tag,));
                ack.send((true,));
            },
        );
        ns.on(
            "emit-volatile",
            |_s: Socket, (tag,): (String,), ack: AckSender| {
                Io::of("/").volatile().emit("x", (tag,));
                ack.send((true,));
            },
        );
        remote_socket_handlers(ns);
    });
    tweak(b.shards(shards).driver(driver))
        .build()
        .listen("127.0.0.1:0".parse().unwrap())
        .unwrap()
}

/// Handlers that hand fetched sockets to the test thread or act on them from a shard.
fn remote_socket_handlers(ns: &mut ringio::Namespace) {
    // fetched sockets handed to the test thread (off every shard)
    ns.on_async(
        "handoff",
        |_s: Socket, (room,): (String,), ack: AckSender| async move {
            let found = Io::of("/").to(&room).fetch_sockets().await;
            let n = found.len();
            let _ = HANDOFF.get().expect("set by the test").send(found);
            ack.send((n,));
        },
    );
    // RemoteSocket operations on fetched sockets: they reach each socket on its own shard
    ns.on_async(
        "poke",
        |_s: Socket, (room,): (String,), ack: AckSender| async move {
            let found = Io::of("/").to(&room).fetch_sockets().await;
            for r in &found {
                // on a shard these never fail (ordered jobs, no inbox limit)
                r.emit("x", ("poked",)).unwrap();
                r.join("poked").unwrap();
                r.leave(&room).unwrap();
            }
            ack.send((found.len(),));
        },
    );
}

/// A Socket.IO client on "/" over WebSocket that answers pings and "q" acks.
struct C {
    ws: Ws,
    id: String,
    next_ack: u64,
    events: Vec<String>,
    answer_q: bool,
    closed: bool,
}

impl C {
    fn connect(addr: SocketAddr) -> C {
        let mut ws = Ws::connect(addr, "/socket.io/?EIO=4&transport=websocket");
        match ws.recv() {
            Some(Message::Text(t)) => assert!(t.starts_with(b"0{\"sid\":"), "open packet"),
            other => panic!("expected the open packet, got {other:?}"),
        }
        ws.send_text("40");
        let ok = ws.recv_text();
        let id = ok
            .strip_prefix(r#"40{"sid":""#)
            .and_then(|s| s.strip_suffix(r#""}"#))
            .expect("connect reply")
            .to_string();
        C {
            ws,
            id,
            next_ack: 1,
            events: Vec::new(),
            answer_q: true,
            closed: false,
        }
    }
    fn shard(&self) -> usize {
        sid_shard(&self.id)
    }
    /// Reads one frame (<= timeout); events are stored; returns false on timeout or EOF.
    fn pump(&mut self, timeout: Duration) -> bool {
        match self.ws.recv_event(timeout) {
            WsEvent::Msg(Message::Text(t)) => {
                let s = String::from_utf8(t.to_vec()).unwrap();
                if s == "2" {
                    self.ws.send_text("3");
                } else if let Some(rest) = s.strip_prefix("42") {
                    // server->client ack request 42<id>["q"]
                    if let Some(i) = rest.find("[\"q\"") {
                        if self.answer_q {
                            self.ws.send_text(&format!("43{}[\"ok\"]", &rest[..i]));
                        }
                    } else {
                        self.events.push(s);
                    }
                } else {
                    self.events.push(s);
                }
                true
            }
            WsEvent::Msg(_) => true,
            WsEvent::Eof => {
                self.closed = true;
                false
            }
            _ => false,
        }
    }
    fn emit(&mut self, json_args: &str) {
        self.ws.send_text(&format!("42[{json_args}]"));
    }
    /// Emits with an ack and waits for it (other events are kept).
    fn call(&mut self, json_args: &str, timeout: Duration) -> String {
        let id = self.next_ack;
        self.next_ack += 1;
        self.ws.send_text(&format!("42{id}[{json_args}]"));
        let prefix = format!("43{id}");
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            self.pump(Duration::from_millis(50));
            if let Some(i) = self.events.iter().position(|e| e.starts_with(&prefix)) {
                return self.events.remove(i)[prefix.len()..].to_string();
            }
        }
        panic!("no ack for {json_args} within {timeout:?}");
    }
    fn take_x(&mut self) -> Vec<String> {
        let (x, rest): (Vec<String>, Vec<String>) = self
            .events
            .drain(..)
            .partition(|e| e.starts_with("42[\"x\""));
        self.events = rest;
        x
    }
}

/// Pumps every client until `done` or the timeout.
fn pump_all(cs: &mut [C], timeout: Duration, done: impl Fn(&[C]) -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline && !done(cs) {
        for c in cs.iter_mut() {
            while c.pump(Duration::from_millis(1)) {}
        }
    }
}

fn clients(addr: SocketAddr, n: usize, shards: usize) -> Vec<C> {
    // keep connecting until every shard has at least one client (SO_REUSEPORT hashes sources)
    let mut cs: Vec<C> = (0..n).map(|_| C::connect(addr)).collect();
    for _ in 0..64 {
        let seen: HashSet<usize> = cs.iter().map(C::shard).collect();
        if seen.len() == shards {
            break;
        }
        cs.push(C::connect(addr));
    }
    assert_eq!(
        cs.iter().map(C::shard).collect::<HashSet<_>>().len(),
        shards,
        "clients on every shard"
    );
    cs
}

fn configs() -> Vec<(usize, Driver)> {
    let mut v = Vec::new();
    for d in [Driver::Auto, Driver::Epoll] {
        for s in [1, 2, 4] {
            v.push((s, d));
        }
    }
    v
}

#[test]
fn broadcast_exactly_once_union_and_except() {
    for (shards, driver) in configs() {
        let srv = server(shards, driver, |b| b);
        let mut cs = clients(srv.local_addr(), 8, shards);
        let n = cs.len();
        for (i, c) in cs.iter_mut().enumerate() {
            let parity = if i % 2 == 0 { "even" } else { "odd" };
            assert_eq!(
                c.call(&format!("\"join\",\"{parity}\""), Duration::from_secs(2)),
                "[true]"
            );
            if i < 4 {
                assert_eq!(c.call("\"join\",\"low\"", Duration::from_secs(2)), "[true]");
            }
        }
        // (even U low) \ odd \ {client 2}: every even client but 2, once each
        let except_id = cs[2].id.clone();
        let spec = format!(r#"{{"to":["even","low"],"except":["odd","{except_id}"],"tag":"t1"}}"#);
        assert_eq!(
            cs[1].call(&format!("\"emit-to\",{spec}"), Duration::from_secs(2)),
            "[true]"
        );
        let expected: HashSet<usize> = (0..n).filter(|i| i % 2 == 0 && *i != 2).collect();
        pump_all(&mut cs, Duration::from_millis(1500), |cs| {
            expected
                .iter()
                .all(|&i| cs[i].events.iter().any(|e| e.contains("t1")))
        });
        std::thread::sleep(Duration::from_millis(200));
        pump_all(&mut cs, Duration::from_millis(100), |_| false);
        for (i, c) in cs.iter_mut().enumerate() {
            let got = c.take_x();
            let want = usize::from(expected.contains(&i));
            assert_eq!(
                got.len(),
                want,
                "client {i} (shard {}) got {got:?}; {shards} shards {driver:?}",
                c.shard()
            );
            if want == 1 {
                assert_eq!(got[0], r#"42["x","t1"]"#);
            }
        }
        // to one socket id, wherever it lives
        let target = cs[n - 1].id.clone();
        cs[0].call(
            &format!(r#""emit-to",{{"to":["{target}"],"tag":"one"}}"#),
            Duration::from_secs(2),
        );
        pump_all(&mut cs, Duration::from_secs(1), |cs| {
            cs[cs.len() - 1].events.iter().any(|e| e.contains("one"))
        });
        std::thread::sleep(Duration::from_millis(100));
        pump_all(&mut cs, Duration::from_millis(100), |_| false);
        for (i, c) in cs.iter_mut().enumerate() {
            assert_eq!(
                c.take_x().len(),
                usize::from(i == n - 1),
                "emit to one id; client {i}"
            );
        }
        srv.shutdown();
    }
}

#[test]
fn per_sender_order_and_join_visibility_across_shards() {
    for (shards, driver) in configs().into_iter().filter(|(s, _)| *s > 1) {
        let srv = server(shards, driver, |b| b);
        let mut cs = clients(srv.local_addr(), 6, shards);
        let sender_shard = cs[0].shard();
        for c in cs.iter_mut().skip(1) {
            c.call("\"join\",\"r\"", Duration::from_secs(2));
        }
        const N: usize = 300;
        for i in 0..N {
            cs[0].emit(&format!("\"bcast-payload\",\"r\",{i}"));
        }
        pump_all(&mut cs, Duration::from_secs(10), |cs| {
            cs[1..].iter().all(|c| c.events.len() >= N)
        });
        for c in &cs[1..] {
            let seq: Vec<usize> = c
                .events
                .iter()
                .filter_map(|e| {
                    e.strip_prefix("42[\"b\",")
                        .and_then(|r| r.strip_suffix(']'))
                        .and_then(|n| n.parse().ok())
                })
                .collect();
            assert_eq!(
                seq,
                (0..N).collect::<Vec<_>>(),
                "order from shard {sender_shard} to shard {}",
                c.shard()
            );
        }
        // a join that returned is seen by the next broadcast, from any shard
        let (a, b) = {
            let ia = 1;
            let ib = (2..cs.len())
                .find(|&i| cs[i].shard() != cs[ia].shard())
                .unwrap_or(2);
            (ia, ib)
        };
        for k in 0..30 {
            let room = format!("v{k}");
            cs[a].call(&format!("\"join\",\"{room}\""), Duration::from_secs(2));
            cs[b].call(
                &format!(r#""emit-to",{{"to":["{room}"],"tag":"{room}"}}"#),
                Duration::from_secs(2),
            );
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline
                && !cs[a]
                    .events
                    .iter()
                    .any(|e| e.contains(&format!("\"{room}\"")))
            {
                cs[a].pump(Duration::from_millis(20));
            }
            assert!(
                cs[a]
                    .events
                    .iter()
                    .any(|e| e.contains(&format!("\"{room}\""))),
                "join of {room} not seen"
            );
        }
        srv.shutdown();
    }
}

#[test]
fn presence_hash_collisions_never_leak() {
    for driver in [Driver::Auto, Driver::Epoll] {
        // one slot: every room collides
        let srv = server(2, driver, |b| b.presence_slots(1));
        let mut cs = clients(srv.local_addr(), 4, 2);
        for (i, c) in cs.iter_mut().enumerate() {
            c.call(
                &format!("\"join\",\"room{}\"", i % 2),
                Duration::from_secs(2),
            );
        }
        cs[0].call(
            r#""emit-to",{"to":["room1"],"tag":"c"}"#,
            Duration::from_secs(2),
        );
        pump_all(&mut cs, Duration::from_millis(500), |_| false);
        for (i, c) in cs.iter_mut().enumerate() {
            assert_eq!(c.take_x().len(), i % 2, "client {i} in room{}", i % 2);
        }
        srv.shutdown();
    }
}

#[test]
fn stalled_client_is_cut_off_and_others_keep_up() {
    for driver in [Driver::Auto, Driver::Epoll] {
        let srv = server(2, driver, |b| b.max_queue(2048, 4 << 20));
        let mut cs = clients(srv.local_addr(), 3, 2);
        let mut stalled = C::connect(srv.local_addr()); // never reads after joining
        stalled.call("\"join\",\"rd\"", Duration::from_secs(2));
        {
            use std::os::fd::AsRawFd;
            let small: libc::c_int = 4096;
            // SAFETY: setsockopt on a socket this test owns.
            unsafe {
                libc::setsockopt(
                    stalled.ws.stream.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUF,
                    &small as *const _ as *const libc::c_void,
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
        // more than the kernel buffers on both sides (about 4 MB send + the receive window)
        const N: usize = 10_000;
        let payload = "y".repeat(1000);
        let started = Instant::now();
        let mut sender = cs.remove(0);
        for c in cs.iter_mut() {
            c.call("\"join\",\"rd\"", Duration::from_secs(2));
        }
        // readers read continuously on their own threads
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let progress: Vec<Arc<AtomicUsize>> =
            cs.iter().map(|_| Arc::new(AtomicUsize::new(0))).collect();
        let readers: Vec<_> = cs
            .into_iter()
            .zip(progress.iter().cloned())
            .map(|(mut c, done)| {
                std::thread::spawn(move || {
                    let deadline = Instant::now() + Duration::from_secs(30);
                    while c.events.len() < N && Instant::now() < deadline {
                        c.pump(Duration::from_millis(100));
                        done.store(c.events.len(), Ordering::Relaxed);
                    }
                    c.events.len()
                })
            })
            .collect();
        // the readers keep up (the sender waits for them every 500 messages, well inside the
        // queue cap); the stalled client never reads
        for i in 0..N {
            sender.emit(&format!("\"bcast-payload\",\"rd\",\"{i}:{payload}\""));
            if i % 500 == 499 {
                let deadline = Instant::now() + Duration::from_secs(10);
                while progress
                    .iter()
                    .any(|p| p.load(Ordering::Relaxed) + 1000 < i)
                    && Instant::now() < deadline
                {
                    while sender.pump(Duration::from_millis(1)) {}
                }
            }
        }
        for r in readers {
            assert_eq!(
                r.join().unwrap(),
                N,
                "a reading client lost broadcasts ({driver:?}, {:?})",
                srv.metrics()
            );
        }
        assert!(started.elapsed() < Duration::from_secs(30));
        assert!(
            srv.metrics().slow_consumers >= 1,
            "stalled client not cut off: {:?}",
            srv.metrics()
        );
        drop(stalled);
        srv.shutdown();
    }
}

#[test]
fn inbox_flood_neither_deadlocks_nor_loses() {
    for driver in [Driver::Auto, Driver::Epoll] {
        let srv = server(2, driver, |b| b.inbox_capacity(2));
        let mut cs = clients(srv.local_addr(), 4, 2);
        let s0 = 0;
        let s1 = (1..cs.len())
            .find(|&i| cs[i].shard() != cs[0].shard())
            .unwrap();
        const N: usize = 400;
        for i in 0..N {
            cs[s0].emit(&format!("\"bcast-payload\",null,\"a{i}\""));
            cs[s1].emit(&format!("\"bcast-payload\",null,\"b{i}\""));
        }
        pump_all(&mut cs, Duration::from_secs(20), |cs| {
            cs.iter().all(|c| c.events.len() >= 2 * N)
        });
        for c in &cs {
            assert_eq!(
                c.events.len(),
                2 * N,
                "lost broadcasts on shard {}",
                c.shard()
            );
            for p in ["a", "b"] {
                let seq: Vec<usize> = c
                    .events
                    .iter()
                    .filter_map(|e| {
                        e.strip_prefix(&format!("42[\"b\",\"{p}"))
                            .and_then(|r| r.strip_suffix("\"]"))
                            .and_then(|n| n.parse().ok())
                    })
                    .collect();
                assert_eq!(seq, (0..N).collect::<Vec<_>>(), "per-sender order of {p}");
            }
        }
        let m = srv.metrics();
        assert!(m.inbox_full > 0, "the flood never filled an inbox: {m:?}");
        srv.shutdown();
    }
}

#[test]
fn broadcast_with_acks_across_shards() {
    for (shards, driver) in configs().into_iter().filter(|(s, _)| *s != 2) {
        let srv = server(shards, driver, |b| b);
        let mut cs = clients(srv.local_addr(), 6, shards);
        let n = cs.len();
        let id = 99;
        cs[0].ws.send_text(&format!("42{id}[\"bcast-ack\",1000]"));
        pump_all(&mut cs, Duration::from_secs(3), |cs| {
            cs[0].events.iter().any(|e| e.starts_with("4399"))
        });
        let ack = cs[0]
            .events
            .iter()
            .find(|e| e.starts_with("4399"))
            .cloned()
            .expect("bcast-ack answer");
        assert_eq!(ack, format!("4399[\"ok\",{n}]"));
        // one client never answers: the timeout error comes on time, with the others' acks
        cs[n - 1].answer_q = false;
        let t0 = Instant::now();
        cs[0].ws.send_text("42100[\"bcast-ack\",400]");
        pump_all(&mut cs, Duration::from_secs(3), |cs| {
            cs[0].events.iter().any(|e| e.starts_with("43100"))
        });
        let elapsed = t0.elapsed();
        let ack = cs[0]
            .events
            .iter()
            .find(|e| e.starts_with("43100"))
            .cloned()
            .expect("timeout answer");
        assert_eq!(ack, format!("43100[\"timeout\",{},{n}]", n - 1));
        assert!(
            elapsed >= Duration::from_millis(390) && elapsed < Duration::from_millis(1500),
            "{elapsed:?}"
        );
        srv.shutdown();
    }
}

#[test]
fn fetch_sockets_join_and_disconnect_across_shards() {
    for driver in [Driver::Auto, Driver::Epoll] {
        let srv = server(4, driver, |b| b);
        let mut cs = clients(srv.local_addr(), 8, 4);
        for c in cs.iter_mut().take(5) {
            c.call("\"join\",\"f\"", Duration::from_secs(2));
        }
        let mut want: Vec<String> = cs[..5].iter().map(|c| c.id.clone()).collect();
        want.sort();
        let got = cs[7].call("\"fetch\",\"f\"", Duration::from_secs(3));
        assert_eq!(got, sonic_rs::to_string(&(want.clone(),)).unwrap());
        // sockets_join: everyone in "f" joins "g"; then kick "g"
        cs[7].call("\"join-all\",\"f\",\"g\"", Duration::from_secs(2));
        // same origin socket as the join: per-origin FIFO orders the fetch after it on every
        // shard (a fetch from another shard may overtake it, as with Node's cluster adapters)
        let got = cs[7].call("\"fetch\",\"g\"", Duration::from_secs(3));
        assert_eq!(got, sonic_rs::to_string(&(want,)).unwrap());
        cs[6].call("\"kick\",\"g\"", Duration::from_secs(2));
        pump_all(&mut cs, Duration::from_secs(2), |cs| {
            cs[..5].iter().all(|c| c.events.iter().any(|e| e == "41"))
        });
        for (i, c) in cs.iter().enumerate() {
            assert_eq!(
                c.events.iter().any(|e| e == "41"),
                i < 5,
                "client {i} namespace disconnect"
            );
        }
        let got = cs[7].call("\"fetch\",\"f\"", Duration::from_secs(3));
        assert_eq!(got, "[[]]");
        srv.shutdown();
    }
}

#[test]
fn local_volatile_and_remote_socket_operations() {
    for driver in [Driver::Auto, Driver::Epoll] {
        let srv = server(2, driver, |b| b);
        let addr = srv.local_addr();
        let mut cs = clients(addr, 4, 2);
        // local(): only the sender's shard
        let sender_shard = cs[0].shard();
        cs[0].call(r#""emit-local","loc""#, Duration::from_secs(2));
        pump_all(&mut cs, Duration::from_millis(500), |_| false);
        for c in cs.iter_mut() {
            let want = usize::from(c.shard() == sender_shard);
            assert_eq!(
                c.take_x().len(),
                want,
                "local() on shard {} ({driver:?})",
                c.shard()
            );
        }
        // volatile(): dropped (and counted) for a polling socket with no GET pending; a
        // ready WebSocket socket still gets it
        let (st, _, body) = common::get(addr, "/socket.io/?EIO=4&transport=polling");
        assert_eq!(st, 200);
        let sid = String::from_utf8(body)
            .unwrap()
            .split('"')
            .nth(3)
            .unwrap()
            .to_string();
        let url = common::poll_url("/socket.io/", &sid);
        let (st, _, _) = common::post(addr, &url, b"40");
        assert_eq!(st, 200);
        let (_, _, body) = common::get(addr, &url);
        assert!(
            body.starts_with(b"40{"),
            "{}",
            String::from_utf8_lossy(&body)
        );
        let before = srv.metrics().volatile_dropped;
        cs[0].call(r#""emit-volatile","vol""#, Duration::from_secs(2));
        cs[0].call(r#""emit-to",{"tag":"durable"}"#, Duration::from_secs(2));
        pump_all(&mut cs, Duration::from_millis(300), |_| false);
        assert!(
            srv.metrics().volatile_dropped > before,
            "volatile drop not counted"
        );
        let (_, _, body) = common::get(addr, &url);
        let body = String::from_utf8(body).unwrap();
        assert!(
            body.contains("durable") && !body.contains("vol\""),
            "polling socket got {body:?}"
        );
        for c in cs.iter_mut() {
            let got = c.take_x();
            assert!(
                got.iter().any(|e| e.contains("\"vol\"")),
                "ready ws socket lost a volatile emit: {got:?}"
            );
        }
        // RemoteSocket: emit, join, leave on fetched sockets, wherever they are
        for c in cs.iter_mut() {
            c.call("\"join\",\"p\"", Duration::from_secs(2));
        }
        let n = cs.len();
        assert_eq!(
            cs[0].call("\"poke\",\"p\"", Duration::from_secs(3)),
            format!("[{n}]")
        );
        pump_all(&mut cs, Duration::from_secs(2), |cs| {
            cs.iter()
                .all(|c| c.events.iter().any(|e| e.contains("poked")))
        });
        let after = cs[0].call("\"fetch\",\"p\"", Duration::from_secs(3));
        assert_eq!(after, "[[]]", "leave on RemoteSocket");
        let mut ids: Vec<String> = cs.iter().map(|c| c.id.clone()).collect();
        ids.sort();
        let poked = cs[0].call("\"fetch\",\"poked\"", Duration::from_secs(3));
        assert_eq!(
            poked,
            sonic_rs::to_string(&(ids,)).unwrap(),
            "join on RemoteSocket"
        );
        srv.shutdown();
    }
}

#[test]
fn remote_socket_works_off_shard() {
    let (tx, rx) = mpsc::channel();
    HANDOFF.set(tx).expect("one test sets it");
    for driver in [Driver::Auto, Driver::Epoll] {
        let srv = server(2, driver, |b| b);
        let mut cs = clients(srv.local_addr(), 6, 2);
        for c in cs.iter_mut() {
            c.call("\"join\",\"h\"", Duration::from_secs(2));
        }
        let n = cs.len();
        let got = cs[0].call("\"handoff\",\"h\"", Duration::from_secs(3));
        assert_eq!(got, format!("[{n}]"));
        let found = rx.recv_timeout(Duration::from_secs(3)).unwrap();
        assert_eq!(found.len(), n);
        // this thread is no shard: each operation is a job posted to the socket's owner
        for r in &found {
            r.emit("x", ("from-thread",)).unwrap();
            r.join("thread-room").unwrap();
            r.leave("h").unwrap();
        }
        pump_all(&mut cs, Duration::from_secs(2), |cs| {
            cs.iter()
                .all(|c| c.events.iter().any(|e| e.contains("from-thread")))
        });
        for c in cs.iter() {
            let hits = c
                .events
                .iter()
                .filter(|e| e.contains("from-thread"))
                .count();
            assert_eq!(hits, 1, "one emit from the test thread ({driver:?})");
        }
        assert_eq!(
            cs[1].call("\"fetch\",\"h\"", Duration::from_secs(3)),
            "[[]]"
        );
        let mut ids: Vec<String> = cs.iter().map(|c| c.id.clone()).collect();
        ids.sort();
        let joined = cs[1].call("\"fetch\",\"thread-room\"", Duration::from_secs(3));
        assert_eq!(joined, sonic_rs::to_string(&(ids,)).unwrap());
        // a RemoteSocket outlives its server: its operations fail instead of panicking
        srv.shutdown();
        let r = found[0].emit("x", ("late",));
        assert_eq!(r, Err(ringio::RemoteError::Gone));
    }
}
