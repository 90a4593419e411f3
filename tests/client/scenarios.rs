//! Scenarios run against both servers: ringio, and Node's socket.io 4.8 (the reference).

use super::*;

// ---------------------------------------------------------------------------------------------
// scenarios (shared by both servers)
// ---------------------------------------------------------------------------------------------

/// Echo with ack (typed, raw, binary both ways), a server->client event, a server->client ack,
/// and the transport in use.
pub(crate) async fn echo_ack_binary(url: &str, mode: &str, transports: &[Transport]) {
    let client = builder(url, transports).connect().await.expect("connect");
    assert!(client.id().is_some());
    let s = client.socket("/");
    let log = Log::default();
    record(&s, &log, "root");
    let l = log.clone();
    s.on(
        "echo",
        move |(text, bin): (String, Binary), _ack: ClientAck| {
            l.push(format!("echo:{text}:{:?}", &bin.0[..]))
        },
    );
    s.on("question", |args: RawArgs, ack: ClientAck| {
        assert!(ack.expected());
        let x: String = args.get(0).unwrap();
        ack.clone().send((format!("answer to {x}"),));
        ack.send(("ignored second answer",));
    });
    wait_for("connect", WAIT, || s.connected()).await;
    assert!(s.id().is_some() && log.has("root:connect"), "{mode}");

    // typed
    let r = s.emit_with_ack("echo", (1, "two"), ACK).await.unwrap();
    assert_eq!(
        (r.get::<u32>(0).unwrap(), r.get::<String>(1).unwrap()),
        (1, "two".into())
    );
    // raw
    let obj = sonic_rs::json!({"a": [1, true, null], "b": "é"});
    let r = s.emit_with_ack("echo", (&obj, 2.5), ACK).await.unwrap();
    assert_eq!(r.len(), 2);
    let back: sonic_rs::Value = sonic_rs::from_str(r.raw(0).unwrap()).unwrap();
    assert_eq!(back, obj);
    assert_eq!(r.raw(1), Some("2.5"));
    // binary both ways, nested
    let bin = Binary(Bytes::from_static(&[0, 1, 2, 255]));
    let big = Binary(Bytes::from(vec![7u8; 70_000]));
    let r = s
        .emit_with_ack(
            "echo",
            ("x", bin.clone(), vec![big.clone(), bin.clone()]),
            ACK,
        )
        .await
        .unwrap();
    assert_eq!(r.attachments().len(), 3, "{mode}");
    let (x, b, v): (String, Binary, Vec<Binary>) =
        ringio::FromArgs::from_args(r).expect("binary ack");
    assert_eq!(
        (x.as_str(), &b, &v[..]),
        ("x", &bin, &[big, bin.clone()][..])
    );
    // server -> client event (echo without ack), binary included
    assert!(s.emit("echo", ("hello", bin.clone())));
    wait_for("echo event", WAIT, || log.has("echo:hello:[0, 1, 2, 255]")).await;
    // server -> client ack
    let r = s.emit_with_ack("ask", ("q1",), ACK).await.unwrap();
    assert_eq!(r.get::<String>(0).unwrap(), "answer to q1");
    // transport
    if transports.len() == 2 {
        wait_for("upgrade", WAIT, || {
            client.transport() == Some(Transport::WebSocket)
        })
        .await;
        let r = s
            .emit_with_ack("echo", ("after upgrade",), ACK)
            .await
            .unwrap();
        assert_eq!(r.get::<String>(0).unwrap(), "after upgrade");
    } else {
        assert_eq!(client.transport(), Some(transports[0]));
    }
    client.close();
    wait_for("close", WAIT, || !s.connected()).await;
    assert!(
        log.has("root:disconnect:forced close"),
        "{:?}",
        log.0.borrow()
    );
    assert!(!client.is_open());
}

/// Two namespaces on one connection, a middleware reading the auth payload.
pub(crate) async fn namespaces_and_auth(url: &str, mode: &str, transports: &[Transport]) {
    let log = Log::default();
    let a = builder(url, transports).connect().await.expect("connect a");
    let root = a.socket("/");
    let chat = a.socket("/chat");
    let b = builder(url, transports).connect().await.expect("connect b");
    let chat_b = b.socket("/chat");
    let l = log.clone();
    chat_b.on(
        "message",
        move |(m,): (sonic_rs::Value,), _ack: ClientAck| {
            l.push(format!("message:{}", sonic_rs::to_string(&m).unwrap()))
        },
    );
    wait_for("namespaces", WAIT, || {
        root.connected() && chat.connected() && chat_b.connected()
    })
    .await;
    assert_ne!(root.id(), chat.id());
    let sid = a.id();
    assert!(chat.emit("message", ("hi from a",)));
    wait_for("chat message", WAIT, || log.count("message:") == 1).await;
    let m: sonic_rs::Value = sonic_rs::from_str(&log.matching("message:")[0][8..]).unwrap();
    assert_eq!(m["text"].as_str(), Some("hi from a"));
    assert_eq!(m["from"].as_str().map(String::from), chat.id());
    let r = root.emit_with_ack("echo", (1,), ACK).await.unwrap();
    assert_eq!(r.get::<u32>(0).unwrap(), 1);
    if transports.len() == 1 {
        assert_eq!(
            a.id(),
            sid,
            "{mode}: one Engine.IO connection for both namespaces"
        );
    }

    // refused without auth: the other namespaces stay connected
    let sec = a.socket("/secure");
    record(&sec, &log, "sec");
    wait_for("connect_error", WAIT, || {
        log.count("sec:connect_error") == 1
    })
    .await;
    assert!(
        log.has(r#"sec:connect_error:not authorized:{"code":401}"#),
        "{:?}",
        log.0.borrow()
    );
    assert!(!sec.connected() && root.connected() && a.is_open());

    // auth for every namespace, and per namespace
    let c = builder(url, transports)
        .auth(sonic_rs::json!({"token": "secret", "n": 1}))
        .connect()
        .await
        .expect("connect c");
    let d = builder(url, transports)
        .auth(sonic_rs::json!({"token": "wrong"}))
        .auth_for("/secure", sonic_rs::json!({"token": "secret", "n": 2}))
        .connect()
        .await
        .expect("connect d");
    for (client, n) in [(&c, 1), (&d, 2)] {
        let s = client.socket("/secure");
        record(&s, &log, &format!("sec{n}"));
        let l = log.clone();
        s.on(
            "welcome",
            move |(auth,): (sonic_rs::Value,), _ack: ClientAck| {
                let token = auth["token"].as_str().unwrap_or("?");
                l.push(format!(
                    "welcome:{token}:{}",
                    auth["n"].as_u64().unwrap_or(0)
                ))
            },
        );
        wait_log(&log, &format!("welcome:secret:{n}")).await;
        assert!(s.connected());
    }
    for c in [a, b, c, d] {
        c.close();
    }
}

/// The server drops the transport: "transport close", automatic reconnection, the namespace is
/// CONNECTed again, emits made while disconnected are flushed in order, volatile ones dropped.
pub(crate) async fn buffered_after_reconnect(url: &str, mode: &str, transports: &[Transport]) {
    let client = builder(url, transports)
        .reconnection_delay(Duration::from_millis(300))
        .connect()
        .await
        .expect("connect");
    let s = client.socket("/");
    let log = Log::default();
    record(&s, &log, "root");
    let l = log.clone();
    s.on("echo", move |(n,): (u32,), _ack: ClientAck| {
        l.push(format!("echo:{n}"))
    });
    let attempts = Log::default();
    let a = attempts.clone();
    client.on_reconnect(move |n| a.push(format!("reconnect:{n}")));
    type Pending = std::pin::Pin<Box<dyn Future<Output = Result<RawArgs, AckError>>>>;
    let pending: Rc<RefCell<Vec<Pending>>> = Default::default();
    let (s2, p2, l2) = (s.clone(), pending.clone(), log.clone());
    s.on_disconnect(move |_| {
        if l2.count("root:disconnect") > 1 {
            return;
        }
        // disconnected now: these wait in the send buffer
        assert!(!s2.connected());
        for n in 1..=3u32 {
            assert!(s2.emit("echo", (n,)));
        }
        assert!(!s2.volatile().emit("echo", (99,)));
        let fut = s2.emit_with_ack("echo", ("buffered",), Duration::from_secs(10));
        p2.borrow_mut().push(Box::pin(fut));
    });
    wait_for("connect", WAIT, || s.connected()).await;
    let first_id = s.id();
    s.emit("drop-transport", ());
    wait_for("reconnect", WAIT, || log.exact("root:connect") == 2).await;
    let reason = log.matching("root:disconnect:").join(",");
    assert!(
        reason == "root:disconnect:transport close" || reason == "root:disconnect:transport error",
        "{mode}: {reason}"
    );
    let fut = pending.borrow_mut().pop().expect("buffered ack");
    let r = fut
        .await
        .expect("buffered emit acked after the reconnection");
    assert_eq!(r.get::<String>(0).unwrap(), "buffered");
    wait_for("flushed echoes", WAIT, || log.count("echo:") == 3).await;
    sleep_ms(50).await;
    assert_eq!(
        log.matching("echo:"),
        ["echo:1", "echo:2", "echo:3"],
        "{mode}"
    );
    assert!(attempts.has("reconnect:1"), "{:?}", attempts.0.borrow());
    assert_ne!(s.id(), first_id);
    client.close();
}

/// "io server disconnect": no automatic reconnection; connect() brings the socket back.
pub(crate) async fn disconnect_me(url: &str, mode: &str, transports: &[Transport]) {
    let client = builder(url, transports)
        .reconnection_delay(Duration::from_millis(50))
        .connect()
        .await
        .expect("connect");
    let s = client.socket("/");
    let log = Log::default();
    record(&s, &log, "root");
    let l = log.clone();
    client.on_reconnect_attempt(move |n| l.push(format!("attempt:{n}")));
    wait_for("connect", WAIT, || s.connected()).await;
    s.emit("disconnect-me", ());
    wait_for("disconnect", WAIT, || log.count("root:disconnect") == 1).await;
    assert!(
        log.has("root:disconnect:io server disconnect"),
        "{:?}",
        log.0.borrow()
    );
    sleep_ms(800).await;
    assert_eq!(
        log.exact("root:connect"),
        1,
        "{mode}: reconnected on its own"
    );
    assert_eq!(log.count("attempt:"), 0);
    assert!(
        !s.connected() && !client.is_open(),
        "the only namespace left: closed"
    );
    // emits wait for the next connect
    assert!(s.emit("echo", (5,)));
    let l = log.clone();
    s.on("echo", move |(n,): (u32,), _ack: ClientAck| {
        l.push(format!("echo:{n}"))
    });
    s.connect();
    wait_for("manual reconnect", WAIT, || s.connected()).await;
    wait_for("buffered echo", WAIT, || log.has("echo:5")).await;
    client.close();
}

/// Ack timeouts, and retries resending until acked (at least once).
pub(crate) async fn ack_timeout_and_retries(url: &str, mode: &str, transports: &[Transport]) {
    let client = builder(url, transports).connect().await.expect("connect");
    let s = client.socket("/");
    let t0 = Instant::now();
    let r = s
        .emit_with_ack("no-such-event", (), Duration::from_millis(300))
        .await;
    assert!(matches!(r, Err(AckError::Timeout)), "{r:?}");
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_secs(3),
        "{took:?}"
    );
    client.close();

    let nonce = format!(
        "{mode}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let client = builder(url, transports)
        .retries(3)
        .ack_timeout(Duration::from_millis(300))
        .connect()
        .await
        .expect("connect");
    let s = client.socket("/");
    // emitted before the namespace is connected: queued, sent on connect
    let key = format!("{nonce}-a");
    let r = s
        .emit_with_ack("flaky", (&key,), Duration::from_millis(300))
        .await
        .expect("acked on the second attempt");
    assert_eq!(r.get::<u32>(0).unwrap(), 2);
    // plain emits are acked and retried too (ack_timeout per attempt), in order
    let key_b = format!("{nonce}-b");
    assert!(s.emit("flaky", (&key_b,)));
    let r = s.emit_with_ack("count", (&key_b,), ACK).await.unwrap();
    assert_eq!(
        r.get::<u32>(0).unwrap(),
        2,
        "{mode}: sent twice before count"
    );
    client.close();

    let client = builder(url, transports)
        .retries(1)
        .connect()
        .await
        .expect("connect");
    let s = client.socket("/");
    wait_for("connect", WAIT, || s.connected()).await;
    let t0 = Instant::now();
    let r = s
        .emit_with_ack("no-such-event", (), Duration::from_millis(200))
        .await;
    assert!(matches!(r, Err(AckError::Timeout)), "{r:?}");
    assert!(
        t0.elapsed() >= Duration::from_millis(390),
        "two attempts: {:?}",
        t0.elapsed()
    );
    client.close();
}

/// Short heartbeats (the server pings every ~150 ms): pongs keep the connection up, in every
/// transport and across the upgrade; a burst of emits around the connect and the upgrade
/// arrives in order.
pub(crate) async fn heartbeat_and_order(url: &str, mode: &str, transports: &[Transport]) {
    let client = builder(url, transports).connect().await.expect("connect");
    let s = client.socket("/");
    let log = Log::default();
    record(&s, &log, "root");
    let l = log.clone();
    client.on_close(move |r| l.push(format!("close:{r}")));
    let l = log.clone();
    s.on("echo", move |(n,): (u32,), _ack: ClientAck| {
        l.push(format!("echo:{n}"))
    });
    for i in 0..50u32 {
        s.emit("echo", (i,)); // buffered until the CONNECT reply
    }
    wait_for("connect", WAIT, || s.connected()).await;
    for i in 50..200u32 {
        s.emit("echo", (i,));
        if i % 10 == 0 {
            sleep_ms(1).await;
        }
    }
    wait_logged(&log, "200 echoes", || log.count("echo:") == 200).await;
    let want: Vec<String> = (0..200).map(|i| format!("echo:{i}")).collect();
    assert_eq!(log.matching("echo:"), want, "{mode}: order");
    sleep_ms(1200).await;
    assert_eq!(log.count("close:"), 0, "{mode}: {:?}", log.0.borrow());
    assert_eq!(log.count("root:disconnect"), 0, "{mode}");
    let r = s.emit_with_ack("echo", (7,), ACK).await.unwrap();
    assert_eq!(r.get::<u32>(0).unwrap(), 7);
    if transports.len() == 2 {
        assert_eq!(client.transport(), Some(Transport::WebSocket));
    }
    client.close();
}

/// The whole server goes away and comes back on the same port: every namespace reconnects.
pub(crate) async fn server_restart(
    url: &str,
    mode: &str,
    transports: &[Transport],
    stop: &mut dyn FnMut(),
    start: &mut dyn FnMut(),
) {
    let client = builder(url, transports)
        .reconnection_delay(Duration::from_millis(50))
        .reconnection_delay_max(Duration::from_millis(200))
        .connect()
        .await
        .expect("connect");
    let log = Log::default();
    let root = client.socket("/");
    let chat = client.socket("/chat");
    record(&root, &log, "root");
    record(&chat, &log, "chat");
    let l = log.clone();
    client.on_reconnect(move |n| l.push(format!("reconnect:{n}")));
    let l = log.clone();
    client.on_reconnect_attempt(move |n| l.push(format!("attempt:{n}")));
    let l = log.clone();
    client.on_error(move |e| l.push(format!("error:{e}")));
    wait_for("connect", WAIT, || root.connected() && chat.connected()).await;
    stop();
    wait_for("disconnect", WAIT, || {
        !root.connected() && !chat.connected()
    })
    .await;
    sleep_ms(300).await;
    start();
    wait_logged(&log, "reconnect", || {
        log.exact("root:connect") == 2 && log.exact("chat:connect") == 2
    })
    .await;
    assert_eq!(log.count("reconnect:"), 1, "{mode}: {:?}", log.0.borrow());
    let r = root.emit_with_ack("echo", ("again",), ACK).await.unwrap();
    assert_eq!(r.get::<String>(0).unwrap(), "again");
    client.close();
}
