//! The floor server (`loadtest floor-server`, hidden): the physical limit of the same machine
//! with no protocol, to put ringio's figures in proportion. Thread-per-core like ringio: one
//! monoio runtime per thread (io_uring, falling back to epoll), each with its own SO_REUSEPORT
//! listener, thread i pinned to CPU i.
//!
//! A connection says what it is with one byte, answered `K`:
//! - `E` (raw echo): every read is written back as is.
//! - `R` (fan-out receiver): registered on its shard; gets every broadcast frame.
//! - `S` (fan-out trigger): each 8-byte seq (u64 LE) it sends is one broadcast: the shard
//!   encodes the 42-byte frame once (`\x81\x28` + 40 bytes, a WebSocket text frame carrying the
//!   seq), wakes its receivers (each writes that frame to its socket: one write per frame and
//!   receiver, also when a burst of seqs came at once), forwards the seq to every other shard
//!   through a Unix socket pair per shard (each does the same for its receivers), then writes the
//!   8-byte seq back as the ack. Seqs read together (`--burst`) are published, forwarded and
//!   acked together.

use monoio::io::{AsyncReadRent, AsyncReadRentExt, AsyncWriteRentExt};
use monoio::net::{TcpListener, TcpStream};
use std::cell::{Cell, RefCell};
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};

/// Length of a fan-out frame on the wire.
pub const FRAME_LEN: usize = 42;

/// The fan-out frame of broadcast `seq`: `\x81\x28` + seq as 20 ASCII digits + 20 `x`.
pub fn frame(seq: u64) -> [u8; FRAME_LEN] {
    let mut f = [b'x'; FRAME_LEN];
    f[0] = 0x81;
    f[1] = 0x28;
    f[2..22].copy_from_slice(format!("{seq:020}").as_bytes());
    f
}

/// The seq of a fan-out frame (None when it is not one).
pub fn frame_seq(f: &[u8]) -> Option<u64> {
    if f.len() < FRAME_LEN || f[0] != 0x81 || f[1] != 0x28 {
        return None;
    }
    std::str::from_utf8(&f[2..22]).ok()?.parse().ok()
}

/// Raw echo message length standing for a ringio echo request of a `payload_len`-byte string:
/// the masked WebSocket frame (6-byte header) of `42<id>["echo","<payload>"]` with a 4-digit id.
pub fn echo_msg_len(payload_len: usize) -> usize {
    6 + 2 + 4 + "[\"echo\",\"\"]".len() + payload_len
}

/// Pre-encoded frames kept per shard (by seq % RING), for receivers a few broadcasts behind.
const RING: usize = 1024;

/// Shard-local broadcast: the last seq, the pre-encoded frames of the last `RING` seqs, the
/// receivers waiting for the next one.
struct Bcast {
    seq: Cell<u64>,
    frames: RefCell<Vec<[u8; FRAME_LEN]>>,
    waiters: RefCell<Vec<Waker>>,
}

impl Default for Bcast {
    fn default() -> Self {
        Bcast {
            seq: Cell::new(0),
            frames: RefCell::new(vec![frame(0); RING]),
            waiters: RefCell::new(Vec::new()),
        }
    }
}

impl Bcast {
    fn publish(&self, seq: u64) {
        if seq <= self.seq.get() {
            return;
        }
        self.frames.borrow_mut()[seq as usize % RING] = frame(seq);
        self.seq.set(seq);
        for w in self.waiters.borrow_mut().drain(..) {
            w.wake();
        }
    }

    /// The frame of `seq` (pre-encoded while it is among the last `RING`).
    fn frame_of(&self, seq: u64) -> [u8; FRAME_LEN] {
        if self.seq.get().saturating_sub(seq) < RING as u64 {
            self.frames.borrow()[seq as usize % RING]
        } else {
            frame(seq)
        }
    }

    async fn wait_past(&self, last: u64) -> u64 {
        std::future::poll_fn(|cx| {
            let s = self.seq.get();
            if s > last {
                Poll::Ready(s)
            } else {
                self.waiters.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

/// Publishes every whole 8-byte seq at the front of `pending`; returns how many bytes that was.
fn publish_all(bc: &Bcast, pending: &[u8]) -> usize {
    let n = pending.len() / 8 * 8;
    for c in pending[..n].chunks_exact(8) {
        bc.publish(u64::from_le_bytes(c.try_into().expect("8 bytes")));
    }
    n
}

fn bind(port: u16) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())?;
    s.listen(4096)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// Runs the floor server until killed.
pub fn serve(port: u16, shards: usize) -> ! {
    let shards = shards.max(1);
    let listeners: Vec<_> = (0..shards)
        .map(|_| bind(port).unwrap_or_else(|e| panic!("floor-server: bind port {port}: {e}")))
        .collect();
    // one Unix socket pair per shard: other shards write seqs into `tx[i]`, shard i reads `rx`
    let mut txs = Vec::new();
    let mut rxs = Vec::new();
    for _ in 0..shards {
        let (a, b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        a.set_nonblocking(true).expect("nonblocking");
        b.set_nonblocking(true).expect("nonblocking");
        txs.push(a);
        rxs.push(b);
    }
    let txs = Arc::new(txs);
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    for (id, (l, rx)) in listeners.into_iter().zip(rxs).enumerate() {
        let txs = txs.clone();
        std::thread::Builder::new()
            .name(format!("floor-{id}"))
            .spawn(move || {
                let _ = monoio::utils::bind_to_cpu_set([id % ncpu]);
                let fds: Vec<RawFd> = txs
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != id)
                    .map(|(_, t)| t.as_raw_fd())
                    .collect();
                let main = move || shard(l, rx, fds);
                #[cfg(target_os = "linux")]
                if monoio::utils::detect_uring() {
                    if let Ok(mut rt) = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                        .with_entries(1024)
                        .enable_timer()
                        .build()
                    {
                        rt.block_on(main());
                        return;
                    }
                }
                let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                    .enable_timer()
                    .build()
                    .expect("monoio runtime");
                rt.block_on(main());
            })
            .expect("spawn shard");
    }
    eprintln!(
        "floor-server: 127.0.0.1:{port}, {shards} shards, driver {}",
        if monoio::utils::detect_uring() {
            "io_uring"
        } else {
            "epoll"
        }
    );
    loop {
        std::thread::park();
    }
}

async fn shard(l: std::net::TcpListener, rx: std::os::unix::net::UnixStream, others: Vec<RawFd>) {
    let l = TcpListener::from_std(l).expect("listener");
    let bc = Rc::new(Bcast::default());
    let others = Rc::new(others);
    // seqs from other shards
    let rx = monoio::net::UnixStream::from_std(rx).expect("unix stream");
    let bc2 = bc.clone();
    monoio::spawn(async move {
        let mut rx = rx;
        let mut buf = Vec::with_capacity(8 * 256);
        let mut pending: Vec<u8> = Vec::new();
        loop {
            let (r, b) = rx.read(buf).await;
            match r {
                Ok(n) if n > 0 => {}
                _ => return,
            }
            pending.extend_from_slice(&b);
            let n = publish_all(&bc2, &pending);
            pending.drain(..n);
            buf = b;
            buf.clear();
        }
    });
    loop {
        let Ok((s, _)) = l.accept().await else {
            continue;
        };
        let _ = s.set_nodelay(true);
        monoio::spawn(conn(s, bc.clone(), others.clone()));
    }
}

async fn conn(mut s: TcpStream, bc: Rc<Bcast>, others: Rc<Vec<RawFd>>) {
    let (r, hello) = s.read_exact(Vec::with_capacity(1)).await;
    if r.is_err() {
        return;
    }
    let (r, _) = s.write_all(b"K".to_vec()).await;
    if r.is_err() {
        return;
    }
    match hello[0] {
        b'E' => {
            let mut buf = Vec::with_capacity(4096);
            loop {
                let (r, b) = s.read(buf).await;
                match r {
                    Ok(n) if n > 0 => {}
                    _ => return,
                }
                let (r, mut b) = s.write_all(b).await;
                if r.is_err() {
                    return;
                }
                b.clear();
                buf = b;
            }
        }
        b'R' => {
            let mut last = bc.seq.get();
            let mut buf = Vec::with_capacity(FRAME_LEN);
            loop {
                let now = bc.wait_past(last).await;
                // one write per frame, also when several broadcasts are due at once
                for q in last + 1..=now {
                    buf.clear();
                    buf.extend_from_slice(&bc.frame_of(q));
                    let (r, b) = s.write_all(buf).await;
                    if r.is_err() {
                        return;
                    }
                    buf = b;
                }
                last = now;
            }
        }
        b'S' => {
            let mut buf = Vec::with_capacity(8 * 256);
            let mut pending: Vec<u8> = Vec::new();
            loop {
                let (r, b) = s.read(buf).await;
                match r {
                    Ok(n) if n > 0 => {}
                    _ => return,
                }
                pending.extend_from_slice(&b);
                buf = b;
                buf.clear();
                let n = publish_all(&bc, &pending);
                if n == 0 {
                    continue;
                }
                for fd in others.iter() {
                    // SAFETY: writing n bytes from a live buffer to a socketpair end kept open by
                    // the server for its whole life.
                    unsafe {
                        libc::write(*fd, pending.as_ptr() as *const libc::c_void, n);
                    }
                }
                let ack: Vec<u8> = pending.drain(..n).collect();
                let (r, _) = s.write_all(ack).await;
                if r.is_err() {
                    return;
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let f = frame(1234);
        assert_eq!(f.len(), 42);
        assert_eq!(frame_seq(&f), Some(1234));
        assert_eq!(echo_msg_len(48), 71);
    }
}
