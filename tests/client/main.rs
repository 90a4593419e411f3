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
#[path = "../common/mod.rs"]
mod common;

mod against_node;
mod against_ringio;
mod scenarios;
use scenarios::*;

use common::node::{free_port, wait_port, NodePeer};

/// The Node peer of these tests: socket.io 4.8 with the same handler set as [`ringio_builder`].
const CLIENT_PEER: &str = "tests/js/client-peer.mjs";

use ringio::{AckSender, Binary, RawArgs, RunningServer, Server, Socket};
use sonic_rs::JsonValueTrait;
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
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
