//! Memory comes back: 2000 polling sessions each CONNECT and leave a 16 KB echo queued, then
//! never poll again; once the heartbeat has reclaimed them, the server's RSS must be back within
//! max(8 MB, 25% of the growth) of where it started (issue 10; mimalloc keeps freed pages in
//! an idle shard's heap unless the shard collects it: `rt::reclaim`).
//!
//! The server is the `ringio` binary in its own process, so its RSS is its own.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_kb(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// One request on a kept-alive connection; returns the body.
fn request(s: &mut TcpStream, method: &str, pq: &str, body: &[u8]) -> Vec<u8> {
    let head = format!(
        "{method} {pq} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // one write: a second small one would wait for the delayed ACK of the first (Nagle)
    s.write_all(&[head.as_bytes(), body].concat()).unwrap();
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        let n = s.read(&mut tmp).unwrap();
        assert!(n > 0, "server closed");
        buf.extend_from_slice(&tmp[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |v| v.trim().parse().unwrap());
            if buf.len() >= end + 4 + len {
                return buf[end + 4..end + 4 + len].to_vec();
            }
        }
    }
}

#[test]
fn rss_comes_back_after_abandoned_polling_sessions() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_ringio"))
        .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--ping-interval", "500", "--ping-timeout", "500"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ringio binary");
    let server = Server(child);
    let pid = server.0.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let start = rss_kb(pid);
    let echo = [&br#"42["echo",""#[..], &[b'x'; 16384], br#""]"#].concat();
    let base = "/socket.io/?EIO=4&transport=polling";
    for _ in 0..2000 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_nodelay(true).unwrap();
        let open = request(&mut s, "GET", base, b"");
        let sid = String::from_utf8_lossy(&open[9..33]).into_owned();
        let q = format!("{base}&sid={sid}");
        request(&mut s, "POST", &q, b"40");
        request(&mut s, "GET", &q, b"");
        // no ack: the server emits the 16 KB back, queued for a GET that never comes
        request(&mut s, "POST", &q, &echo);
    }
    let peak = rss_kb(pid);
    let growth = peak.saturating_sub(start);
    assert!(
        growth > 16 * 1024,
        "the flood should cost memory: {start} -> {peak} kB"
    );
    // the heartbeat reclaims the sessions within 1 s; then the shards collect their heaps
    std::thread::sleep(Duration::from_secs(4));
    let after = rss_kb(pid);
    let limit = (8 * 1024).max(growth / 4);
    assert!(
        after.saturating_sub(start) <= limit,
        "RSS start {start} kB, peak {peak} kB, after {after} kB: more than {limit} kB above the start"
    );
}
