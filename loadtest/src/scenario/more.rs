//! The client tasks of the scenarios beyond idle/echo/fanout: `echo-open` (fixed-rate echo),
//! `churn` (connect, one echo+ack, disconnect, again), `rooms` (join / bcast / leave loops) and the
//! long-polling clients of `polling-mix`.

use super::hist::us;
use super::runner::{connect_counted, open, wait_flag, Shared, ThreadOut, CONNECT_TIMEOUT};
use crate::client::{Msg, Registry};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn fail(sh: &Shared, out: &Rc<RefCell<ThreadOut>>, e: &io::Error) {
    if !sh.stop.load(Ordering::Acquire) {
        sh.note_error(e);
        sh.dropped.fetch_add(1, Ordering::AcqRel);
        out.borrow_mut().failures += 1;
    }
}

/// Open loop: this connection's share of the fixed total rate, each echo+ack scheduled at a
/// fixed instant; latency counts from the scheduled instant (no coordinated omission). Sends that
/// fall due while the task waits for an ack go out as soon as that ack is read, still timed from
/// their schedule.
pub(super) async fn open_echoer(
    sh: Arc<Shared>,
    i: usize,
    reg: Registry,
    out: Rc<RefCell<ThreadOut>>,
) {
    let Some(mut conn) = connect_counted(&sh, i, &reg, &out).await else {
        return;
    };
    wait_flag(&sh.go, &sh.stop).await;
    let p = &sh.params;
    let go = sh.base + Duration::from_nanos(sh.go_ns.load(Ordering::Acquire));
    let per_conn = (p.open_rate / p.conns.max(1) as f64).max(1e-3);
    let interval = Duration::from_secs_f64(1.0 / per_conn);
    // spread the connections' phases over one interval
    let first = go + interval.mul_f64(i as f64 / p.conns.max(1) as f64);
    let end = go + p.duration;
    let body = format!("[\"echo\",\"{}\"]", "x".repeat(p.payload_len));
    let mut pending: VecDeque<(u64, Instant)> = VecDeque::new();
    let mut k: u32 = 0;
    loop {
        let sched = first + interval * k;
        let now = Instant::now();
        if sched < end && sched <= now {
            match conn.emit_with_ack(&body).await {
                Ok(id) => {
                    if now.duration_since(sched) > Duration::from_millis(5) {
                        out.borrow_mut().late += 1;
                    }
                    pending.push_back((id, sched));
                    k += 1;
                    continue;
                }
                Err(e) => {
                    fail(&sh, &out, &e);
                    break;
                }
            }
        }
        if sched >= end && pending.is_empty() {
            break;
        }
        if pending.is_empty() {
            monoio::time::sleep(sched - now).await;
            continue;
        }
        match conn.next().await {
            Ok(Msg::Ack { id, .. }) => {
                if let Some(pos) = pending.iter().position(|x| x.0 == id) {
                    let (_, s) = pending.remove(pos).expect("position is in range");
                    let mut o = out.borrow_mut();
                    let _ = o
                        .rtt
                        .record(us(Instant::now().saturating_duration_since(s)));
                    o.ops += 1;
                }
            }
            Ok(Msg::Disconnect) => {
                fail(&sh, &out, &io::Error::other("disconnected by server"));
                break;
            }
            Ok(_) => {}
            Err(e) => {
                fail(&sh, &out, &e);
                break;
            }
        }
    }
    out.borrow_mut().unanswered += pending.len() as u64;
    sh.finished.fetch_add(1, Ordering::AcqRel);
    conn.close().await;
}

/// Churn slot: connect, one echo+ack, close; again until STOP. `rtt` holds whole cycles,
/// `connect` the connect+handshake part.
pub(super) async fn churner(sh: Arc<Shared>, i: usize, reg: Registry, out: Rc<RefCell<ThreadOut>>) {
    sh.connected.fetch_add(1, Ordering::AcqRel); // the slot is ready
    wait_flag(&sh.go, &sh.stop).await;
    let body = format!("[\"echo\",\"{}\"]", "x".repeat(sh.params.payload_len));
    let slots = sh.params.conns.max(1);
    let mut cycle = 0usize;
    while !sh.stop.load(Ordering::Acquire) {
        let t = Instant::now();
        // a new source address (and registry key) per cycle spreads the client's TIME_WAITs
        let key = i + cycle * slots;
        cycle += 1;
        let r = async {
            let mut c = open(&sh, key, &reg).await?;
            let tc = t.elapsed();
            let id = c.emit_with_ack(&body).await?;
            c.wait_ack(id).await?;
            c.close().await;
            Ok::<Duration, io::Error>(tc)
        }
        .await;
        match r {
            Ok(tc) => {
                if !sh.stop.load(Ordering::Acquire) {
                    let mut o = out.borrow_mut();
                    let _ = o.connect.record(us(tc));
                    let _ = o.rtt.record(us(t.elapsed()));
                    o.ops += 1;
                }
            }
            Err(e) => {
                if !sh.stop.load(Ordering::Acquire) {
                    sh.note_error(&e);
                    out.borrow_mut().failures += 1;
                    monoio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
}

/// Room churn: join room k, `bcast` to room k, leave room k (each with ack); k moves on.
pub(super) async fn roomer(sh: Arc<Shared>, i: usize, reg: Registry, out: Rc<RefCell<ThreadOut>>) {
    let Some(mut conn) = connect_counted(&sh, i, &reg, &out).await else {
        return;
    };
    wait_flag(&sh.go, &sh.stop).await;
    let rooms = sh.params.rooms.max(1);
    let mut k = i;
    while !sh.stop.load(Ordering::Relaxed) {
        let room = k % rooms;
        k += 1;
        let t = Instant::now();
        let r = async {
            for ev in ["join", "bcast", "leave"] {
                let id = conn
                    .emit_with_ack(&format!("[\"{ev}\",\"r{room}\"]"))
                    .await?;
                conn.wait_ack(id).await?;
            }
            Ok::<(), io::Error>(())
        }
        .await;
        match r {
            Ok(()) => {
                if !sh.stop.load(Ordering::Relaxed) {
                    let mut o = out.borrow_mut();
                    let _ = o.rtt.record(us(t.elapsed()));
                    o.ops += 1;
                }
            }
            Err(e) => {
                fail(&sh, &out, &e);
                return;
            }
        }
    }
    conn.close().await;
}

/// A Socket.IO client over HTTP long-polling on one keep-alive connection, requests in sequence:
/// handshake GET, `40` by POST, then per echo a POST and GETs until the ack arrived.
struct Poll {
    s: monoio::net::TcpStream,
    buf: Vec<u8>,
    host: String,
    sid: String,
    next_ack: u64,
    reg: Option<(Registry, u64)>,
}

impl Drop for Poll {
    fn drop(&mut self) {
        if let Some((reg, key)) = self.reg.take() {
            reg.deregister(key);
        }
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// A complete chunked body at the start of `b`: (body, bytes used).
fn dechunk(b: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut at = 0;
    let mut body = Vec::new();
    loop {
        let eol = find(&b[at..], b"\r\n")?;
        let line = std::str::from_utf8(&b[at..at + eol]).ok()?;
        let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
        at += eol + 2;
        if size == 0 {
            let end = find(&b[at..], b"\r\n")?; // no trailers expected
            return Some((body, at + end + 2));
        }
        if b.len() < at + size + 2 {
            return None;
        }
        body.extend_from_slice(&b[at..at + size]);
        at += size + 2;
    }
}

impl Poll {
    async fn fill(&mut self) -> io::Result<()> {
        use monoio::io::AsyncReadRent;
        let rb = Vec::with_capacity(4096);
        let (r, rb) = self.s.read(rb).await;
        let n = r?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "polling connection closed by server",
            ));
        }
        self.buf.extend_from_slice(&rb[..n]);
        Ok(())
    }

    /// One HTTP request, returns the response body (status 200 required).
    async fn req(&mut self, method: &str, body: &[u8]) -> io::Result<Vec<u8>> {
        use monoio::io::AsyncWriteRentExt;
        let q = if self.sid.is_empty() {
            String::new()
        } else {
            format!("&sid={}", self.sid)
        };
        let mut r = format!(
            "{method} /socket.io/?EIO=4&transport=polling{q} HTTP/1.1\r\nHost: {}\r\n\
             Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        let (res, _) = self.s.write_all(r).await;
        res?;
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_ascii_lowercase();
                let status = head.lines().next().unwrap_or("").to_string();
                if !status.contains(" 200") {
                    return Err(io::Error::other(format!("polling {method}: {status}")));
                }
                let start = end + 4;
                let cl = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok());
                if let Some(cl) = cl {
                    if self.buf.len() >= start + cl {
                        let b = self.buf[start..start + cl].to_vec();
                        self.buf.drain(..start + cl);
                        return Ok(b);
                    }
                } else if head.contains("transfer-encoding: chunked") {
                    if let Some((b, used)) = dechunk(&self.buf[start..]) {
                        self.buf.drain(..start + used);
                        return Ok(b);
                    }
                } else {
                    return Err(io::Error::other("polling response without a length"));
                }
            }
            self.fill().await?;
        }
    }

    async fn connect(sh: &Shared, i: usize, reg: &Registry) -> io::Result<Poll> {
        let s = crate::client::tcp_connect(sh.target(i).addr, sh.src(i)).await?;
        reg.register(i as u64, std::os::fd::AsRawFd::as_raw_fd(&s));
        let mut p = Poll {
            s,
            buf: Vec::new(),
            host: sh.target(i).host_header.clone(),
            sid: String::new(),
            next_ack: 0,
            reg: Some((reg.clone(), i as u64)),
        };
        let open = p.req("GET", b"").await?;
        let open = String::from_utf8_lossy(&open).to_string();
        let sid = open
            .split("\"sid\":\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .ok_or_else(|| io::Error::other(format!("no sid in polling open: {open:.80}")))?;
        p.sid = sid.to_string();
        p.req("POST", b"40").await?;
        // the CONNECT answer (`40{...}`), maybe with other packets
        loop {
            let b = p.req("GET", b"").await?;
            if b.split(|c| *c == 0x1e).any(|pk| pk.starts_with(b"40")) {
                return Ok(p);
            }
            p.answer_pings(&b).await?;
        }
    }

    async fn answer_pings(&mut self, body: &[u8]) -> io::Result<()> {
        for pk in body.split(|c| *c == 0x1e) {
            if pk == b"2" {
                self.req("POST", b"3").await?;
            } else if pk == b"1" || pk.starts_with(b"41") {
                return Err(io::Error::other("closed by server (polling)"));
            }
        }
        Ok(())
    }

    async fn echo(&mut self, array: &str) -> io::Result<()> {
        let id = self.next_ack;
        self.next_ack += 1;
        let msg = format!("42{id}{array}");
        self.req("POST", msg.as_bytes()).await?;
        let want = format!("43{id}[");
        loop {
            let b = self.req("GET", b"").await?;
            let got = b
                .split(|c| *c == 0x1e)
                .any(|pk| pk.starts_with(want.as_bytes()));
            self.answer_pings(&b).await?;
            if got {
                return Ok(());
            }
        }
    }
}

/// polling-mix: a long-polling connection in the closed echo loop (one echo+ack in flight);
/// its round trips go to `rtt2`/`ops2`.
pub(super) async fn poller(sh: Arc<Shared>, i: usize, reg: Registry, out: Rc<RefCell<ThreadOut>>) {
    let t0 = Instant::now();
    let fut = Poll::connect(&sh, i, &reg);
    let r = crate::client::within(CONNECT_TIMEOUT, "polling handshake timed out", fut).await;
    let mut p = match r {
        Ok(p) => p,
        Err(e) => {
            sh.note_error(&e);
            sh.failed.fetch_add(1, Ordering::AcqRel);
            out.borrow_mut().failures += 1;
            return;
        }
    };
    let _ = out.borrow_mut().connect.record(us(t0.elapsed()));
    sh.connected.fetch_add(1, Ordering::AcqRel);
    wait_flag(&sh.go, &sh.stop).await;
    let body = format!("[\"echo\",\"{}\"]", "x".repeat(sh.params.payload_len));
    while !sh.stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        match p.echo(&body).await {
            Ok(()) => {
                if !sh.stop.load(Ordering::Relaxed) {
                    let mut o = out.borrow_mut();
                    let _ = o.rtt2.record(us(t.elapsed()));
                    o.ops2 += 1;
                }
            }
            Err(e) => {
                fail(&sh, &out, &e);
                return;
            }
        }
    }
}
