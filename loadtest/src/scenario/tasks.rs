//! The Socket.IO client tasks of the Rust generator for idle, echo and fanout: a receiver that
//! reads until the end (fan-out deliveries recorded), the closed-loop echoer and the fan-out
//! sender.

use super::runner::{connect_counted, open, record_round_trip, wait_flag, Shared, ThreadOut};
use crate::client::{Msg, Registry};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Receiver task (idle and fanout): connect, then read until the connection ends; fanout
/// deliveries are recorded.
pub async fn reader(sh: Arc<Shared>, i: usize, reg: Registry, out: Rc<RefCell<ThreadOut>>) {
    let Some(mut conn) = connect_counted(&sh, i, &reg, &out).await else {
        return;
    };
    loop {
        match conn.next().await {
            Ok(Msg::Event { b_seq: Some(seq) }) => {
                out.borrow_mut().recv.push((seq, Instant::now()));
                sh.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Msg::Disconnect) => {
                if !sh.stop.load(Ordering::Acquire) {
                    sh.dropped.fetch_add(1, Ordering::AcqRel);
                }
                return;
            }
            Ok(_) => {}
            Err(e) => {
                if !sh.stop.load(Ordering::Acquire) {
                    sh.note_error(&e);
                    sh.dropped.fetch_add(1, Ordering::AcqRel);
                }
                return;
            }
        }
    }
}

/// Echo task: connect, wait for GO, then keep one echo+ack in flight until STOP.
pub async fn echoer(sh: Arc<Shared>, i: usize, reg: Registry, out: Rc<RefCell<ThreadOut>>) {
    let Some(mut conn) = connect_counted(&sh, i, &reg, &out).await else {
        return;
    };
    wait_flag(&sh.go, &sh.stop).await;
    let body = format!("[\"echo\",\"{}\"]", "x".repeat(sh.params.payload_len));
    while !sh.stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        let r = async {
            let id = conn.emit_with_ack(&body).await?;
            conn.wait_ack(id).await
        }
        .await;
        if !record_round_trip(&sh, &out, t, r) {
            return;
        }
    }
    conn.close().await;
}

/// Fanout sender (thread 0): every interval, `burst` x `bcast` null back to back (distinct ack
/// ids, acks collected afterwards), then the next slot.
pub async fn sender(sh: Arc<Shared>, reg: Registry, out: Rc<RefCell<ThreadOut>>) {
    let idx = sh.params.conns; // an index past the receivers
    let mut conn = match open(&sh, idx, &reg).await {
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
    let mut ids = Vec::with_capacity(burst);
    for k in 0..sh.params.broadcasts {
        let slot = start + sh.params.interval * k as u32;
        let now = Instant::now();
        if slot > now {
            monoio::time::sleep(slot - now).await;
        }
        if sh.stop.load(Ordering::Acquire) {
            break;
        }
        let t = Instant::now();
        ids.clear();
        let r: std::io::Result<Vec<(u64, Duration)>> = async {
            for _ in 0..burst {
                ids.push(conn.emit_with_ack("[\"bcast\",null]").await?);
            }
            let mut got = Vec::with_capacity(burst);
            while got.len() < burst {
                match conn.next().await? {
                    Msg::Ack { id, num } if ids.contains(&id) => {
                        let Some(seq) = num else {
                            return Err(std::io::Error::other("bcast ack without a numeric seq"));
                        };
                        got.push((seq, t.elapsed()));
                    }
                    Msg::Disconnect => {
                        return Err(std::io::Error::other("disconnected by server"));
                    }
                    _ => {}
                }
            }
            Ok(got)
        }
        .await;
        match r {
            Ok(got) => {
                let mut o = out.borrow_mut();
                for (seq, rtt) in got {
                    o.sends.push((seq, k, t, rtt));
                }
            }
            Err(e) => {
                sh.note_error(&e);
                sh.sender_failed.store(true, Ordering::Release);
                break;
            }
        }
    }
    sh.sender_done.store(true, Ordering::Release);
    // stay connected (and drain our own `b` copies) until the run stops
    while !sh.stop.load(Ordering::Acquire) {
        if conn.next().await.is_err() {
            break;
        }
    }
}
