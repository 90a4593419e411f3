//! Interop: the official `socket.io-client` (npm, in Node) against ringio.
//!
//! The JavaScript suite is `tests/js/interop.test.mjs` (validated against Node's own socket.io
//! server, `tests/js/reference-server.mjs`). Here ringio runs in-process with the same handler
//! set, under both drivers and with 1 and 2 shards, and the suite must pass completely.

mod common;

use ringio::{Driver, Server};
use std::path::Path;
use std::process::Command;

fn interop_server(shards: usize, driver: Driver) -> ringio::RunningServer {
    common::interop(Server::builder())
        .shards(shards)
        .driver(driver)
        .build()
        .listen("127.0.0.1:0".parse().unwrap())
        .expect("listen")
}

#[test]
fn official_js_client_against_ringio() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let js = root.join("tests/js");
    common::node::ensure_node_modules(&js, "node_modules/socket.io-client");
    let mut failures = Vec::new();
    for (driver, shards) in [
        (Driver::Auto, 1),
        (Driver::Auto, 2),
        (Driver::Epoll, 1),
        (Driver::Epoll, 2),
    ] {
        let server = interop_server(shards, driver);
        let url = format!("http://{}", server.local_addr());
        let out = Command::new("node")
            .args(["--test", "--test-reporter=tap", "tests/js/interop.test.mjs"])
            .env("RINGIO_URL", &url)
            .current_dir(root)
            .output()
            .expect("node is required for the interop tests");
        server.shutdown();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let summary: Vec<&str> = text
            .lines()
            .filter(|l| {
                l.starts_with("# tests") || l.starts_with("# pass") || l.starts_with("# fail")
            })
            .collect();
        eprintln!(
            "driver {driver:?}, {shards} shard(s): {}",
            summary.join(", ")
        );
        if !out.status.success() {
            eprintln!("{text}");
            failures.push(format!("{driver:?}/{shards}"));
        }
    }
    assert!(failures.is_empty(), "interop suite failed for {failures:?}");
}
