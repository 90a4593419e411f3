//! A real browser: the chat page of `ringio serve` (`ringio::demo::chat_page`, loading the
//! official client bundle through `serve_client`) in headless Chromium from Debian's packages,
//! driven by playwright-core (`tests/js/browser-chat.mjs`): two pages exchange messages on
//! namespace `/chat` over WebSocket, then over polling only. Screenshots are kept under
//! `target/browser/` (`chat.png`, `chat-websocket.png`, `chat-polling.png`).
//!
//! Needs `/usr/bin/chromium` (`CHROMIUM` to point elsewhere); `scripts/test.sh` installs
//! Debian's `chromium` when it is missing. Without a browser the test fails, unless
//! `RINGIO_SKIP_BROWSER=1` says to skip it.

mod common;

use ringio::Server;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

#[test]
fn chat_page_in_headless_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        if std::env::var("RINGIO_SKIP_BROWSER").as_deref() == Ok("1") {
            eprintln!("browser test skipped (RINGIO_SKIP_BROWSER=1, no {chromium})");
            return;
        }
        panic!("no {chromium}: install Debian's chromium (apt-get install chromium; scripts/test.sh does) or set RINGIO_SKIP_BROWSER=1");
    }
    let js = root.join("tests/js");
    common::node::ensure_node_modules(&js, "node_modules/playwright-core");
    let dist = js.join("node_modules/socket.io-client/dist");
    let server = ringio::demo::chat_page(ringio::demo::bench(Server::builder()))
        .serve_client(&dist)
        .expect("the client bundle")
        .shards(2)
        .build()
        .listen("127.0.0.1:0".parse().unwrap())
        .expect("listen");
    let shots = root.join("target/browser");
    let _ = std::fs::remove_dir_all(&shots);
    let t0 = Instant::now();
    let out = Command::new("node")
        .arg("tests/js/browser-chat.mjs")
        .env("RINGIO_URL", format!("http://{}", server.local_addr()))
        .env("SCREENSHOT_DIR", &shots)
        .env("CHROMIUM", &chromium)
        .current_dir(root)
        .output()
        .expect("node is required for the browser test");
    let sessions_left = server.clients_count();
    server.shutdown();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    eprintln!("{text}(browser run: {:.1} s)", t0.elapsed().as_secs_f64());
    assert!(
        out.status.success(),
        "the chat did not work in Chromium:\n{text}"
    );
    for name in ["chat.png", "chat-websocket.png", "chat-polling.png"] {
        let png = std::fs::read(shots.join(name)).unwrap_or_default();
        assert!(png.starts_with(b"\x89PNG"), "no screenshot {name}");
    }
    // the pages closed: their sessions end (or are ending) on the server
    assert!(sessions_left <= 4, "{sessions_left} sessions left open");
}
