//! The raw-TCP floor's client tasks (`loadtest floor`, `compare --with-floor`): the same
//! connections and schedules as echo and fanout against the hidden `floor-server`, no protocol.

use super::hist::us;
use super::runner::{record_round_trip, wait_flag, Shared, ThreadOut, CONNECT_TIMEOUT};
use crate::client::Registry;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// A raw TCP connection to the floor server, registered for shutdown.
struct RawConn {
    s: monoio::net::TcpStream,
    reg: Registry,
    key: u64,
}

impl Drop for RawConn {
    fn drop(&mut self) {
        self.reg.deregister(self.key);
    }
}

/// Connects to the floor server and says what this connection is (`E`, `R`, `S`); returns once
/// the server answered `K`.
async fn floor_open(sh: &Shared, i: usize, reg: &Registry, kind: u8) -> std::io::Result<RawConn> {
    use monoio::io::{AsyncReadRentExt, AsyncWriteRentExt};
    let fut = async {
        let mut s = crate::client::tcp_connect(sh.target(i).addr, sh.src(i)).await?;
        let (r, _) = s.write_all(vec![kind]).await;
        r?;
        let (r, b) = s.read_exact(Vec::with_capacity(1)).await;
        r?;
        if b[0] != b'K' {
            return Err(std::io::Error::other("floor server: bad hello answer"));
        }
        Ok(s)
    };
    let s = crate::client::within(CONNECT_TIMEOUT, "connect + hello timed out", fut).await?;
    reg.register(i as u64, std::os::fd::AsRawFd::as_raw_fd(&s));
    Ok(RawConn {
        s,
        reg: reg.clone(),
        key: i as u64,
    })
}

async fn floor_connect(
    sh: &Shared,
    i: usize,
    reg: &Registry,
    out: &Rc<RefCell<ThreadOut>>,
    kind: u8,
) -> Option<RawConn> {
    let t0 = Instant::now();
    match floor_open(sh, i, reg, kind).await {
        Ok(c) => {
            let _ = out.borrow_mut().connect.record(us(t0.elapsed()));
            sh.connected.fetch_add(1, Ordering::AcqRel);
            Some(c)
        }
        Err(e) => {
            sh.note_error(&e);
            sh.failed.fetch_add(1, Ordering::AcqRel);
            out.borrow_mut().failures += 1;
            None
        }
    }
}

/// Floor echo: one raw message of the echo request's size in flight, read back whole.
pub async fn floor_echoer(sh: Arc<Shared>, i: usize, reg: Registry, out: Rc<RefCell<ThreadOut>>) {
    use monoio::io::{AsyncReadRentExt, AsyncWriteRentExt};
    let Some(mut c) = floor_connect(&sh, i, &reg, &out, b'E').await else {
        return;
    };
    wait_flag(&sh.go, &sh.stop).await;
    let len = crate::floor::echo_msg_len(sh.params.payload_len);
    let mut wbuf = vec![b'x'; len];
    let mut rbuf = Vec::with_capacity(len);
    while !sh.stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        let (r, b) = c.s.write_all(wbuf).await;
        wbuf = b;
        let r = match r {
            Ok(_) => {
                rbuf.clear();
                let (r, b) = c.s.read_exact(rbuf).await;
                rbuf = b;
                r
            }
            Err(e) => Err(e),
        };
        if !record_round_trip(&sh, &out, t, r) {
            return;
        }
    }
}

/// Floor fan-out receiver: reads 42-byte frames, records each seq.
pub async fn floor_reader(sh: Arc<Shared>, i: usize, reg: Registry, out: Rc<RefCell<ThreadOut>>) {
    use crate::floor::{frame_seq, FRAME_LEN};
    use monoio::io::AsyncReadRent;
    let Some(mut c) = floor_connect(&sh, i, &reg, &out, b'R').await else {
        return;
    };
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = Vec::with_capacity(4096);
    loop {
        let (r, b) = c.s.read(buf).await;
        match r {
            Ok(n) if n > 0 => {}
            Ok(_) => {
                if !sh.stop.load(Ordering::Acquire) {
                    sh.dropped.fetch_add(1, Ordering::AcqRel);
                }
                return;
            }
            Err(e) => {
                if !sh.stop.load(Ordering::Acquire) {
                    sh.note_error(&e);
                    sh.dropped.fetch_add(1, Ordering::AcqRel);
                }
                return;
            }
        }
        let now = Instant::now();
        pending.extend_from_slice(&b);
        let mut at = 0;
        while pending.len() - at >= FRAME_LEN {
            if let Some(seq) = frame_seq(&pending[at..at + FRAME_LEN]) {
                out.borrow_mut().recv.push((seq, now));
                sh.delivered.fetch_add(1, Ordering::Relaxed);
            }
            at += FRAME_LEN;
        }
        pending.drain(..at);
        buf = b;
        buf.clear();
    }
}

/// Floor fan-out trigger (thread 0): every interval, `burst` 8-byte seqs back to back (one
/// write), then their `burst` acks.
pub async fn floor_sender(sh: Arc<Shared>, reg: Registry, out: Rc<RefCell<ThreadOut>>) {
    use monoio::io::{AsyncReadRentExt, AsyncWriteRentExt};
    let idx = sh.params.conns;
    let mut c = match floor_open(&sh, idx, &reg, b'S').await {
        Ok(c) => c,
        Err(e) => {
            sh.note_error(&e);
            sh.sender_failed.store(true, Ordering::Release);
            return;
        }
    };
    sh.sender_ready.store(true, Ordering::Release);
    wait_flag(&sh.go, &sh.stop).await;
    let burst = sh.params.burst.max(1);
    let start = Instant::now();
    let mut buf = Vec::with_capacity(8 * burst);
    for k in 0..sh.params.broadcasts {
        let slot = start + sh.params.interval * k as u32;
        let now = Instant::now();
        if slot > now {
            monoio::time::sleep(slot - now).await;
        }
        if sh.stop.load(Ordering::Acquire) {
            break;
        }
        let first = (k * burst) as u64 + 1;
        let t = Instant::now();
        buf.clear();
        for q in first..first + burst as u64 {
            buf.extend_from_slice(&q.to_le_bytes());
        }
        let sent = buf.clone();
        let (r, b) = c.s.write_all(buf).await;
        let r = match r {
            Ok(_) => {
                let mut b = b;
                b.clear();
                let (r, b) = c.s.read_exact(b).await;
                buf = b;
                r
            }
            Err(e) => {
                buf = b;
                Err(e)
            }
        };
        let rtt = t.elapsed();
        match r {
            Ok(_) if buf[..8 * burst] == sent[..] => {
                let mut o = out.borrow_mut();
                for q in first..first + burst as u64 {
                    o.sends.push((q, k, t, rtt));
                }
            }
            Ok(_) => {
                sh.note_error(&std::io::Error::other("floor ack with another seq"));
                sh.sender_failed.store(true, Ordering::Release);
                break;
            }
            Err(e) => {
                sh.note_error(&e);
                sh.sender_failed.store(true, Ordering::Release);
                break;
            }
        }
    }
    sh.sender_done.store(true, Ordering::Release);
    wait_flag(&sh.stop, &sh.stop).await;
}
