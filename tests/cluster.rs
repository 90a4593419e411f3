//! Several servers sharing a Redis adapter: ringio nodes (`ringio serve --redis ..`, separate
//! processes) and Node socket.io 4.8 servers with `@socket.io/redis-adapter`
//! (tests/js/cluster-node-server.mjs), driven by the official client (tests/js/cluster.test.mjs)
//! on polling and websocket. A real redis-server (Debian's package; scripts/test.sh installs
//! it) runs on a free port in its own temporary directory and is stopped by PID, panics
//! included.
//!
//! - three ringio nodes, classic protocol: every operation; then one node frozen (requests end
//!   at their timeout with the others' answers), then killed (they complete at once); then
//!   Redis restarted (broadcasts resume);
//! - mixed clusters, classic and sharded: a Node server and ringio nodes, each side driving
//!   the operations in turn; the Redis emitter reaches both sides;
//! - sticky sessions: a session id of another node is unknown (400, code 1), never served.

mod common;

use common::node::{ensure_node_modules, free_port, wait_port, NodePeer};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::{Duration, Instant};

/// The cluster tests run one at a time (each starts several processes on a 2-core machine).
static BUSY: AtomicBool = AtomicBool::new(false);

struct Serial;

fn serial() -> Serial {
    while BUSY.swap(true, SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
    }
    Serial
}

impl Drop for Serial {
    fn drop(&mut self) {
        BUSY.store(false, SeqCst);
    }
}

/// A redis-server of its own: free port, temporary directory, no persistence.
struct Redis {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl Redis {
    fn start() -> Redis {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("ringio-redis-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut r = Redis {
            child: None,
            port,
            dir,
        };
        r.run();
        r
    }
    fn run(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is required (scripts/test.sh installs Debian's redis-server)");
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
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A `ringio serve` node (2 shards), killed on drop.
struct Ringio {
    child: Option<Child>,
    port: u16,
}

impl Ringio {
    fn start(redis: &Redis, node_id: u16, sharded: bool) -> Ringio {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringio"));
        cmd.args(["serve", "--host", "127.0.0.1", "--shards", "2"])
            .args([
                "--port",
                &port.to_string(),
                "--node-id",
                &node_id.to_string(),
            ])
            .args(["--redis", &redis.url()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null());
        if sharded {
            cmd.arg("--redis-sharded");
        }
        let child = cmd.spawn().expect("ringio binary");
        wait_port(port, true);
        Ringio {
            child: Some(child),
            port,
        }
    }
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    fn signal(&self, sig: libc::c_int) {
        if let Some(c) = &self.child {
            // SAFETY: a plain kill(2) on our own child's pid.
            unsafe { libc::kill(c.id() as libc::pid_t, sig) };
        }
    }
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Ringio {
    fn drop(&mut self) {
        // a frozen process must run again to die cleanly
        self.signal(libc::SIGCONT);
        self.kill();
    }
}

fn node_server(redis: &Redis, sharded: bool) -> NodePeer {
    let url = redis.url();
    let sharded = if sharded { "1" } else { "0" };
    NodePeer::start(
        "tests/js/cluster-node-server.mjs",
        &[("REDIS_URL", &url), ("SHARDED", sharded)],
    )
}

/// Runs one scenario of tests/js/cluster.test.mjs against `nodes` (client i on node i), in a
/// cluster of `size` nodes.
fn js(scenario: &str, nodes: &[String], size: usize, redis: &Redis, sharded: bool) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let t0 = Instant::now();
    let out = Command::new("node")
        .args(["--test", "--test-reporter=tap", "tests/js/cluster.test.mjs"])
        .env("NODES", nodes.join(","))
        .env("SCENARIO", scenario)
        .env("REDIS_URL", redis.url())
        .env("SHARDED", if sharded { "1" } else { "0" })
        .env("CLUSTER_SIZE", size.to_string())
        .current_dir(root)
        .output()
        .expect("node is required for the cluster tests");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let summary: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("# pass") || l.starts_with("# fail"))
        .collect();
    eprintln!(
        "{scenario} on {} node(s){}: {} ({:.1} s)",
        nodes.len(),
        if sharded { ", sharded" } else { "" },
        summary.join(", "),
        t0.elapsed().as_secs_f64()
    );
    assert!(out.status.success(), "{scenario} failed:\n{text}");
}

fn prepare() -> Serial {
    let serial = serial();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    ensure_node_modules(
        &root.join("tests/js"),
        "node_modules/@socket.io/redis-adapter",
    );
    serial
}

#[test]
fn three_ringio_nodes_then_faults() {
    let _serial = prepare();
    let mut redis = Redis::start();
    let mut nodes: Vec<Ringio> = (1..=3).map(|i| Ringio::start(&redis, i, false)).collect();
    let urls = |n: &[Ringio]| n.iter().map(Ringio::url).collect::<Vec<_>>();
    js("main", &urls(&nodes), 3, &redis, false);

    // one node frozen: it still counts as a subscriber, and never answers
    nodes[2].signal(libc::SIGSTOP);
    js("stopped", &urls(&nodes), 3, &redis, false);
    nodes[2].kill();
    nodes.pop();
    std::thread::sleep(Duration::from_millis(200));
    js("killed", &urls(&nodes), 2, &redis, false);

    // Redis restarted: the adapters reconnect and resubscribe
    redis.stop();
    wait_port(redis.port, false);
    std::thread::sleep(Duration::from_millis(300));
    redis.run();
    js("resume", &urls(&nodes), 2, &redis, false);
}

#[test]
fn mixed_cluster_classic() {
    let _serial = prepare();
    let redis = Redis::start();
    let node = node_server(&redis, false);
    let ringio = Ringio::start(&redis, 7, false);
    // each side drives the requests in turn (client 0's node asks)
    js("main", &[node.url(), ringio.url()], 2, &redis, false);
    js("main", &[ringio.url(), node.url()], 2, &redis, false);
    js("emitter", &[node.url(), ringio.url()], 2, &redis, false);
}

#[test]
fn mixed_cluster_sharded() {
    let _serial = prepare();
    let redis = Redis::start();
    let node = node_server(&redis, true);
    let a = Ringio::start(&redis, 1, true);
    let b = Ringio::start(&redis, 2, true);
    js("main", &[node.url(), a.url(), b.url()], 3, &redis, true);
    js("main", &[a.url(), node.url()], 3, &redis, true);
}

/// A polling request or an upgrade carrying another node's session id: the protocol's error,
/// never that session's data (two in-process nodes with ids 1 and 2, no Redis needed).
#[test]
fn session_of_another_node_is_unknown() {
    let start = |id| {
        ringio::demo::conformance(ringio::Server::builder())
            .shards(2)
            .node_id(id)
            .build()
            .listen("127.0.0.1:0".parse().unwrap())
            .unwrap()
    };
    let (a, b) = (start(1), start(2));
    let sid = common::polling_handshake(a.local_addr(), "/socket.io/");
    assert_eq!(&sid[20..22], ringio::proto::id::node_chars(1));
    let unknown = r#"{"code":1,"message":"Session ID unknown"}"#;
    let url = common::poll_url("/socket.io/", &sid);
    let (status, _, body) = common::get(b.local_addr(), &url);
    assert_eq!(
        (status, String::from_utf8_lossy(&body).as_ref()),
        (400, unknown)
    );
    let (status, _, body) = common::post(b.local_addr(), &url, b"40");
    assert_eq!(
        (status, String::from_utf8_lossy(&body).as_ref()),
        (400, unknown)
    );
    let ws = format!("/socket.io/?EIO=4&transport=websocket&sid={sid}");
    match common::Ws::try_connect(b.local_addr(), &ws) {
        Ok(_) => panic!("an upgrade of another node's session was accepted"),
        // engine.io's abortUpgrade: 400 with the bare message
        Err(resp) => assert_eq!(
            (resp.status, resp.text().as_str()),
            (400, "Session ID unknown")
        ),
    }
    // the owner still serves it
    let (status, _, _) = common::post(a.local_addr(), &url, b"40");
    assert_eq!(status, 200);
    a.shutdown();
    b.shutdown();
}
