//! The Rust client (`ringio::client`) against ringio in-process and against the real Node
//! socket.io 4.8 server (`tests/js/client-peer.mjs`, the reference server's handler set plus a
//! few extras), over polling only, WebSocket only, and polling upgraded to WebSocket.
//!
//! Every scenario runs on a monoio runtime in the test thread under a hard time limit; Node runs
//! as a child process killed on drop.
// test bookkeeping shared by handlers on several shards (a test, not a shard)
#![allow(clippy::disallowed_types)]

use bytes::Bytes;
use ringio::client::{AckError, ClientAck, ClientBuilder, ClientError, ClientSocket, Transport};
mod common;

use ringio::{AckSender, Binary, RawArgs, RunningServer, Server, Socket};
use sonic_rs::JsonValueTrait;
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

const MODES: [(&str, &[Transport]); 3] = [
    ("polling", &[Transport::Polling]),
    ("websocket", &[Transport::WebSocket]),
    ("upgrade", &[Transport::Polling, Transport::WebSocket]),
];

// ---------------------------------------------------------------------------------------------
// harness
// ---------------------------------------------------------------------------------------------

/// Runs `f` on a fresh monoio runtime (io_uring when available, else epoll); panics after
/// `limit_s` seconds.
fn block_on<F: Future>(limit_s: u64, f: F) -> F::Output {
    let mut rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .enable_timer()
        .build()
        .expect("monoio runtime");
    rt.block_on(limited(limit_s, f))
}

/// Like [`block_on`] on the epoll driver.
fn block_on_epoll<F: Future>(limit_s: u64, f: F) -> F::Output {
    let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .expect("monoio runtime");
    rt.block_on(limited(limit_s, f))
}

async fn limited<F: Future>(limit_s: u64, f: F) -> F::Output {
    match monoio::time::timeout(Duration::from_secs(limit_s), f).await {
        Ok(v) => v,
        Err(_) => panic!("test body timed out after {limit_s} s"),
    }
}

/// Polls `cond` every 5 ms; panics after `limit`.
async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        monoio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until `log` holds `entry`; the panic shows the log.
async fn wait_log(log: &Log, entry: &str) {
    wait_logged(log, entry, || log.has(entry)).await
}

/// Waits for `cond`; the panic shows `log`.
async fn wait_logged(log: &Log, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < WAIT,
            "timed out waiting for {what}; log: {:?}",
            log.0.borrow()
        );
        monoio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn sleep_ms(ms: u64) {
    monoio::time::sleep(Duration::from_millis(ms)).await;
}

const WAIT: Duration = Duration::from_secs(10);
const ACK: Duration = Duration::from_secs(5);

#[derive(Clone, Default)]
struct Log(Rc<RefCell<Vec<String>>>);

impl Log {
    fn push(&self, s: impl Into<String>) {
        self.0.borrow_mut().push(s.into());
    }
    fn has(&self, s: &str) -> bool {
        self.0.borrow().iter().any(|x| x == s)
    }
    fn exact(&self, entry: &str) -> usize {
        self.0.borrow().iter().filter(|x| *x == entry).count()
    }
    fn count(&self, prefix: &str) -> usize {
        self.0
            .borrow()
            .iter()
            .filter(|x| x.starts_with(prefix))
            .count()
    }
    fn matching(&self, prefix: &str) -> Vec<String> {
        let v = self.0.borrow();
        v.iter()
            .filter(|x| x.starts_with(prefix))
            .cloned()
            .collect()
    }
}

/// Records connect / disconnect / connect_error of a socket into `log` as `tag:...`.
fn record(socket: &ClientSocket, log: &Log, tag: &str) {
    let (l, t) = (log.clone(), tag.to_string());
    socket.on_connect(move || l.push(format!("{t}:connect")));
    let (l, t) = (log.clone(), tag.to_string());
    socket.on_disconnect(move |r| l.push(format!("{t}:disconnect:{r}")));
    let (l, t) = (log.clone(), tag.to_string());
    socket.on_connect_error(move |m, d| {
        let d = d
            .map(|d| sonic_rs::to_string(d).unwrap())
            .unwrap_or_default();
        l.push(format!("{t}:connect_error:{m}:{d}"))
    });
}

fn builder(url: &str, transports: &[Transport]) -> ClientBuilder {
    ClientBuilder::new(url)
        .transports(transports)
        .reconnection_delay(Duration::from_millis(100))
        .reconnection_delay_max(Duration::from_millis(400))
        .timeout(Duration::from_secs(5))
}

// ---------------------------------------------------------------------------------------------
// servers
// ---------------------------------------------------------------------------------------------

fn flaky_counts() -> &'static Mutex<HashMap<String, u32>> {
    static C: OnceLock<Mutex<HashMap<String, u32>>> = OnceLock::new();
    C.get_or_init(Default::default)
}

/// ringio with the handler set of `tests/js/client-peer.mjs`.
fn ringio_server(addr: SocketAddr) -> std::io::Result<RunningServer> {
    ringio_builder(Server::builder()).build().listen(addr)
}

fn ringio_builder(b: ringio::ServerBuilder) -> ringio::ServerBuilder {
    common::interop(b).ns("/", |ns| {
        ns.on("flaky", |_s: Socket, (key,): (String,), ack: AckSender| {
            let n = {
                let mut c = flaky_counts().lock().unwrap();
                let n = c.entry(key).or_default();
                *n += 1;
                *n
            };
            if n >= 2 {
                ack.send((n,));
            }
        });
        ns.on("count", |_s: Socket, (key,): (String,), ack: AckSender| {
            let n = flaky_counts().lock().unwrap().get(&key).copied();
            ack.send((n.unwrap_or(0),));
        });
    })
}

struct Ringio {
    server: Option<RunningServer>,
    addr: SocketAddr,
}

impl Ringio {
    fn start() -> Ringio {
        Ringio::start_with(Server::builder())
    }
    fn start_with(b: ringio::ServerBuilder) -> Ringio {
        let server = ringio_builder(b)
            .build()
            .listen("127.0.0.1:0".parse().unwrap())
            .expect("listen");
        let addr = server.local_addr();
        Ringio {
            server: Some(server),
            addr,
        }
    }
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Ringio {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown();
        }
    }
}

/// A TCP forwarder with a fixed port in front of a ringio server that can be shut down and
/// started again. `RunningServer::shutdown` leaves the listening socket open while connections
/// were open (its shard runtimes never drop their tasks), so the port cannot be bound again in
/// this process; the client sees the same thing as a restart on the same port: every
/// connection closed by the server, connections refused while it is down, then accepted again.
struct Restartable {
    port: u16,
    backend: Arc<Mutex<Option<SocketAddr>>>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
    server: Option<RunningServer>,
}

impl Restartable {
    fn start() -> Restartable {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let mut r = Restartable {
            port: listener.local_addr().unwrap().port(),
            backend: Default::default(),
            conns: Default::default(),
            stop: Default::default(),
            server: None,
        };
        let (backend, conns, stop) = (r.backend.clone(), r.conns.clone(), r.stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                };
                let target = *backend.lock().unwrap();
                let Some(up) = target.and_then(|a| TcpStream::connect(a).ok()) else {
                    continue; // down: the connection is closed at once
                };
                client.set_nonblocking(false).unwrap();
                let mut list = conns.lock().unwrap();
                list.push(client.try_clone().unwrap());
                list.push(up.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), up.try_clone().unwrap()),
                    (up, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                        let _ = from.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        r.start_server();
        r
    }
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    fn start_server(&mut self) {
        let server = ringio_server("127.0.0.1:0".parse().unwrap()).expect("listen");
        *self.backend.lock().unwrap() = Some(server.local_addr());
        self.server = Some(server);
    }
    fn stop_server(&mut self) {
        *self.backend.lock().unwrap() = None;
        if let Some(s) = self.server.take() {
            s.shutdown();
        }
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for Restartable {
    fn drop(&mut self) {
        self.stop_server();
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn ensure_node_modules(js: &Path) {
    if js.join("node_modules/socket.io").exists() {
        return;
    }
    let st = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(js)
        .status()
        .expect("npm is required for the Node tests (Node.js 18+)");
    assert!(st.success(), "npm ci in tests/js failed");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(port: u16, up: bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ok = TcpStream::connect(("127.0.0.1", port)).is_ok();
        if ok == up {
            return;
        }
        assert!(Instant::now() < deadline, "port {port} never became {up}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The Node peer; killed on drop (panics included).
struct Node {
    child: Option<Child>,
    port: u16,
    env: Vec<(String, String)>,
}

impl Node {
    fn start() -> Node {
        Node::start_with(&[])
    }
    fn start_with(env: &[(&str, &str)]) -> Node {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        ensure_node_modules(&root.join("tests/js"));
        let mut n = Node {
            child: None,
            port: free_port(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        n.start_again();
        n
    }
    fn start_again(&mut self) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let child = Command::new("node")
            .arg("tests/js/client-peer.mjs")
            .env("PORT", self.port.to_string())
            .env("HOST", "127.0.0.1")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(root)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node is required for the Node tests");
        self.child = Some(child);
        wait_port(self.port, true);
    }
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// scenarios (shared by both servers)
// ---------------------------------------------------------------------------------------------

/// Echo with ack (typed, raw, binary both ways), a server->client event, a server->client ack,
/// and the transport in use.
async fn echo_ack_binary(url: &str, mode: &str, transports: &[Transport]) {
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
async fn namespaces_and_auth(url: &str, mode: &str, transports: &[Transport]) {
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
async fn buffered_after_reconnect(url: &str, mode: &str, transports: &[Transport]) {
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
async fn disconnect_me(url: &str, mode: &str, transports: &[Transport]) {
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
async fn ack_timeout_and_retries(url: &str, mode: &str, transports: &[Transport]) {
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
async fn heartbeat_and_order(url: &str, mode: &str, transports: &[Transport]) {
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
async fn server_restart(
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

// ---------------------------------------------------------------------------------------------
// against ringio
// ---------------------------------------------------------------------------------------------

#[test]
fn ringio_echo_ack_binary_events() {
    let server = Ringio::start();
    for (mode, t) in MODES {
        block_on(30, echo_ack_binary(&server.url(), mode, t));
    }
}

#[test]
fn ringio_namespaces_and_auth() {
    let server = Ringio::start();
    for (mode, t) in MODES {
        block_on(30, namespaces_and_auth(&server.url(), mode, t));
    }
}

#[test]
fn ringio_buffered_emits_after_reconnect() {
    let server = Ringio::start();
    for (mode, t) in MODES {
        block_on(30, buffered_after_reconnect(&server.url(), mode, t));
    }
}

#[test]
fn ringio_disconnect_me_no_reconnect() {
    let server = Ringio::start();
    for (mode, t) in MODES {
        block_on(30, disconnect_me(&server.url(), mode, t));
    }
}

#[test]
fn ringio_ack_timeout_and_retries() {
    let server = Ringio::start();
    for (mode, t) in MODES {
        block_on(30, ack_timeout_and_retries(&server.url(), mode, t));
    }
}

#[test]
fn ringio_reconnect_after_server_restart() {
    let server = RefCell::new(Restartable::start());
    let url = server.borrow().url();
    for (mode, t) in MODES {
        block_on(
            30,
            server_restart(
                &url,
                mode,
                t,
                &mut || server.borrow_mut().stop_server(),
                &mut || server.borrow_mut().start_server(),
            ),
        );
    }
}

#[test]
fn ringio_heartbeat_and_order() {
    let server = Ringio::start_with(
        Server::builder()
            .ping_interval(Duration::from_millis(150))
            .ping_timeout(Duration::from_millis(300)),
    );
    for (mode, t) in MODES {
        block_on(30, heartbeat_and_order(&server.url(), mode, t));
    }
}

/// The client on monoio's epoll driver (the other tests use io_uring where the kernel has it).
#[test]
fn ringio_client_on_epoll_runtime() {
    let server = Ringio::start();
    for (mode, t) in MODES {
        block_on_epoll(30, echo_ack_binary(&server.url(), mode, t));
        block_on_epoll(30, buffered_after_reconnect(&server.url(), mode, t));
    }
}

/// A server that answers the handshake (pingInterval 100 ms, pingTimeout 100 ms) and then never
/// pings: the client must notice within 200 ms and reconnect.
#[test]
fn ringio_client_detects_dead_server_by_ping_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let fake = std::thread::spawn(move || fake_silent_server(listener, Duration::from_secs(8)));
    block_on(20, async move {
        let client = builder(&format!("http://{addr}"), &[Transport::Polling])
            .connect()
            .await
            .expect("connect");
        let log = Log::default();
        let l = log.clone();
        client.on_close(move |r| l.push(format!("close:{r}")));
        let l = log.clone();
        client.on_reconnect_attempt(move |n| l.push(format!("attempt:{n}")));
        let t0 = Instant::now();
        wait_for("ping timeout", WAIT, || log.has("close:ping timeout")).await;
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(150) && took < Duration::from_secs(3),
            "{took:?}"
        );
        wait_for("reconnect attempt", WAIT, || log.has("attempt:1")).await;
        client.close();
    });
    fake.join().unwrap();
}

fn fake_silent_server(listener: TcpListener, life: Duration) {
    let deadline = Instant::now() + life;
    let mut conns = Vec::new();
    while Instant::now() < deadline {
        match listener.accept() {
            Ok((c, _)) => {
                c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
                conns.push((c, Vec::new()));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
        for (c, buf) in conns.iter_mut() {
            let mut tmp = [0u8; 4096];
            if let Ok(n) = c.read(&mut tmp) {
                buf.extend_from_slice(&tmp[..n]);
            }
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if buf.len() < end + 4 + len {
                continue;
            }
            buf.drain(..end + 4 + len);
            let body = if head.starts_with("GET") && !head.contains("sid=") {
                r#"0{"sid":"fake","upgrades":[],"pingInterval":100,"pingTimeout":100,"maxPayload":1000000}"#
            } else if head.starts_with("POST") {
                "ok"
            } else {
                continue; // a poll: never answered
            };
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = c.write_all(resp.as_bytes());
        }
    }
}

#[test]
fn ringio_connect_errors() {
    let port = free_port();
    block_on(20, async move {
        let e = ClientBuilder::new(&format!("http://127.0.0.1:{port}"))
            .connect()
            .await
            .unwrap_err();
        assert!(matches!(e, ClientError::Io(_)), "{e:?}");
        let e = ClientBuilder::new("https://127.0.0.1:1")
            .connect()
            .await
            .unwrap_err();
        assert!(matches!(e, ClientError::InvalidConfig(_)), "{e:?}");
        let e = ClientBuilder::new("http://127.0.0.1:1")
            .transports(&[])
            .connect()
            .await
            .unwrap_err();
        assert!(matches!(e, ClientError::InvalidConfig(_)), "{e:?}");
        // a server on another path: 400 from ringio
        let server = Ringio::start();
        let e = ClientBuilder::new(&server.url())
            .path("/nope/")
            .connect()
            .await
            .unwrap_err();
        assert!(matches!(e, ClientError::Http(..)), "{e:?}");
        // connect timeout: a listener that never answers
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let t0 = Instant::now();
        let e = ClientBuilder::new(&format!("http://{}", silent.local_addr().unwrap()))
            .timeout(Duration::from_millis(300))
            .connect()
            .await
            .unwrap_err();
        assert_eq!(e, ClientError::Timeout);
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(290) && took < Duration::from_secs(3),
            "{took:?}"
        );
        // open(): retries in the background, up to reconnection_attempts
        let client = builder(&format!("http://127.0.0.1:{port}"), &[Transport::WebSocket])
            .reconnection_attempts(2)
            .reconnection_delay(Duration::from_millis(20))
            .open()
            .unwrap();
        let s = client.socket("/");
        let log = Log::default();
        record(&s, &log, "root");
        let l = log.clone();
        client.on_reconnect_attempt(move |n| l.push(format!("attempt:{n}")));
        let l = log.clone();
        client.on_reconnect_failed(move || l.push("failed"));
        wait_log(&log, "failed").await;
        assert_eq!(log.matching("attempt:"), ["attempt:1", "attempt:2"]);
        assert_eq!(log.count("root:connect_error"), 3, "{:?}", log.0.borrow());
        assert!(!s.connected() && !client.is_open());
        client.close();
    });
}

// ---------------------------------------------------------------------------------------------
// against Node's socket.io
// ---------------------------------------------------------------------------------------------

#[test]
fn node_echo_ack_binary_events() {
    let node = Node::start();
    for (mode, t) in MODES {
        block_on(30, echo_ack_binary(&node.url(), mode, t));
    }
}

#[test]
fn node_namespaces_and_auth() {
    let node = Node::start();
    for (mode, t) in MODES {
        block_on(30, namespaces_and_auth(&node.url(), mode, t));
    }
}

#[test]
fn node_buffered_emits_after_reconnect() {
    let node = Node::start();
    for (mode, t) in MODES {
        block_on(30, buffered_after_reconnect(&node.url(), mode, t));
    }
}

#[test]
fn node_disconnect_me_no_reconnect() {
    let node = Node::start();
    for (mode, t) in MODES {
        block_on(30, disconnect_me(&node.url(), mode, t));
    }
}

#[test]
fn node_ack_timeout_and_retries() {
    let node = Node::start();
    for (mode, t) in MODES {
        block_on(30, ack_timeout_and_retries(&node.url(), mode, t));
    }
}

#[test]
fn node_reconnect_after_server_restart() {
    let node = RefCell::new(Node::start());
    let url = node.borrow().url();
    for (mode, t) in MODES {
        block_on(
            40,
            server_restart(
                &url,
                mode,
                t,
                &mut || {
                    let mut n = node.borrow_mut();
                    n.stop();
                    wait_port(n.port, false);
                },
                &mut || node.borrow_mut().start_again(),
            ),
        );
    }
}

/// Short heartbeats against Node (pings every 150 ms, pongs over polling POSTs, WebSocket and
/// across the upgrade). Node is also asked for a 100 ms keep-alive timeout; it does not close
/// the engine.io connections in practice, so the stale-connection retry of the HTTP client is
/// covered by the `client::polling` unit test instead.
#[test]
fn node_heartbeat_and_order() {
    let node = Node::start_with(&[
        ("PING_INTERVAL", "150"),
        ("PING_TIMEOUT", "300"),
        ("KEEP_ALIVE_TIMEOUT", "100"),
    ]);
    for (mode, t) in MODES {
        block_on(30, heartbeat_and_order(&node.url(), mode, t));
    }
}
