//! allowEIO3: the official socket.io-client 2.x (Engine.IO v3, Socket.IO protocol v4, from npm)
//! against ringio, over polling (binary and base64 payloads), WebSocket and the upgrade
//! (`tests/js/eio3.test.mjs`, validated against Node's own server with allowEIO3); and the same
//! client refused when allowEIO3 is off.

mod common;

use ringio::{Driver, Server};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn run_suite(url: &str, refused: bool) -> (bool, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    common::node::ensure_node_modules(&root.join("tests/js"), "node_modules/socket.io-client-v2");
    let mut cmd = Command::new("node");
    cmd.args(["--test", "--test-reporter=tap", "tests/js/eio3.test.mjs"])
        .env("RINGIO_URL", url)
        .current_dir(root);
    if refused {
        cmd.env("EIO3_REFUSED", "1");
    }
    let out = cmd.output().expect("node is required for the EIO3 tests");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn socket_io_client_2_against_ringio_with_allow_eio3() {
    let mut failures = Vec::new();
    for (driver, shards) in [(Driver::Auto, 2), (Driver::Epoll, 1)] {
        let server = common::interop(Server::builder())
            .allow_eio3(true)
            .ping_interval(Duration::from_millis(300))
            .ping_timeout(Duration::from_millis(200))
            .shards(shards)
            .driver(driver)
            .build()
            .listen("127.0.0.1:0".parse().unwrap())
            .expect("listen");
        let (ok, text) = run_suite(&format!("http://{}", server.local_addr()), false);
        server.shutdown();
        let summary: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("# pass") || l.starts_with("# fail"))
            .collect();
        eprintln!("{driver:?}, {shards} shard(s): {}", summary.join(", "));
        if !ok {
            eprintln!("{text}");
            failures.push(format!("{driver:?}/{shards}"));
        }
    }
    assert!(failures.is_empty(), "EIO3 suite failed for {failures:?}");
}

#[test]
fn socket_io_client_2_refused_without_allow_eio3() {
    let server = common::interop(Server::builder())
        .shards(1)
        .build()
        .listen("127.0.0.1:0".parse().unwrap())
        .expect("listen");
    let (ok, text) = run_suite(&format!("http://{}", server.local_addr()), true);
    server.shutdown();
    assert!(ok, "{text}");
}
