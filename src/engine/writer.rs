//! The WebSocket flush task: drains a session's queue into vectored writes.
//!
//! Spawned only while a session has queued frames (idle sockets have no writer task). Each
//! payload is a shared `Bytes` (encoded once, possibly shared by many sockets); the frame header
//! is computed here (2-10 bytes) so one payload serves every recipient. Up to `BATCH` frames go
//! out in one `writev`.

use super::session::{Session, TransportIo};
use super::App;
use crate::proto::eio::session::Out;
use crate::proto::eio::{CloseReason, OutPacket};
use crate::proto::ws::{encode_header, OpCode};
use crate::rt::sys;
use bytes::Bytes;
use monoio::buf::IoVecBuf;
use monoio::io::AsyncWriteRent;
use std::rc::Rc;

const BATCH: usize = 64;

thread_local! {
    /// Spare batches of this shard: a flush borrows one, so writes allocate no vectors.
    static POOL: std::cell::RefCell<Vec<Batch>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Batches kept per shard (a burst of concurrent flushes beyond this allocates).
const POOL_MAX: usize = 256;

/// Frames of one vectored write.
pub(crate) struct Batch {
    hdrs: Vec<[u8; 14]>,
    bufs: Vec<Bytes>,
    iov: Vec<libc::iovec>,
    pos: usize,
    pub(crate) close: bool,
}

impl Batch {
    pub(crate) fn new() -> Batch {
        Batch {
            hdrs: Vec::new(),
            bufs: Vec::new(),
            iov: Vec::new(),
            pos: 0,
            close: false,
        }
    }

    fn clear(&mut self) {
        self.hdrs.clear();
        self.bufs.clear();
        self.iov.clear();
        self.pos = 0;
        self.close = false;
    }

    fn push(&mut self, op: OpCode, payload: Bytes) {
        self.push_with(op, payload, None);
    }

    /// A frame whose payload starts with `prefix` (the v3 type byte of a binary message),
    /// written from the header array: the shared payload is not copied.
    fn push_with(&mut self, op: OpCode, payload: Bytes, prefix: Option<u8>) {
        let mut h = [0u8; 14];
        let extra = usize::from(prefix.is_some());
        let mut n = encode_header(op, payload.len() + extra, None, &mut h);
        if let Some(p) = prefix {
            h[n] = p;
            n += 1;
        }
        h[13] = n as u8; // length kept in the spare last byte (a server header is at most 11)
        self.hdrs.push(h);
        self.bufs.push(payload);
    }

    /// Builds the iovecs once every frame is in (pointers into `hdrs` must not move after).
    fn seal(&mut self) {
        self.iov.clear();
        for (h, b) in self.hdrs.iter().zip(&self.bufs) {
            self.iov.push(libc::iovec {
                iov_base: h.as_ptr() as *mut _,
                iov_len: h[13] as usize,
            });
            if !b.is_empty() {
                self.iov.push(libc::iovec {
                    iov_base: b.as_ptr() as *mut _,
                    iov_len: b.len(),
                });
            }
        }
    }

    fn remaining(&self) -> usize {
        self.iov[self.pos..].iter().map(|v| v.iov_len).sum()
    }

    fn advance(&mut self, mut n: usize) {
        while n > 0 && self.pos < self.iov.len() {
            let v = &mut self.iov[self.pos];
            if n >= v.iov_len {
                n -= v.iov_len;
                self.pos += 1;
            } else {
                // SAFETY: n < iov_len, so the pointer stays inside the buffer it points into.
                v.iov_base = unsafe { (v.iov_base as *mut u8).add(n) } as *mut _;
                v.iov_len -= n;
                n = 0;
            }
        }
    }
}

// SAFETY: the iovecs point into `hdrs` and `bufs`, which are not touched while the runtime owns
// the batch; both are heap allocations that do not move when the Batch itself moves.
unsafe impl IoVecBuf for Batch {
    fn read_iovec_ptr(&self) -> *const libc::iovec {
        self.iov[self.pos..].as_ptr()
    }
    fn read_iovec_len(&self) -> usize {
        self.iov.len() - self.pos
    }
}

fn fill<A: App>(sess: &Session<A>, batch: &mut Batch) {
    let mut st = sess.st.borrow_mut();
    // Engine.IO v3 binary messages carry their type byte
    let binary_prefix = st.m.is_v3().then_some(4u8);
    while batch.bufs.len() < BATCH {
        let Some(o) = st.m.poll_transmit() else { break };
        match o {
            Out::Eio(OutPacket::Text(b)) => batch.push(OpCode::Text, b),
            Out::Eio(OutPacket::Binary(b)) => batch.push_with(OpCode::Binary, b, binary_prefix),
            Out::WsPong(b) => batch.push(OpCode::Pong, b),
            Out::WsClose(code) => {
                batch.push(OpCode::Close, Bytes::copy_from_slice(&code.to_be_bytes()));
                batch.close = true;
                break;
            }
        }
    }
}

/// Takes the write half out of the session for one flush (None: not a WebSocket, or taken).
fn take_writer<A: App>(
    sess: &Session<A>,
) -> Option<monoio::io::OwnedWriteHalf<monoio::net::TcpStream>> {
    let mut st = sess.st.borrow_mut();
    match &mut st.io {
        TransportIo::Ws {
            writer, writing, ..
        } => {
            let w = writer.take();
            if w.is_none() {
                *writing = false;
            }
            w
        }
        TransportIo::Polling(_) => None,
    }
}

/// Drains the session's queue; exits when it is empty.
pub(crate) async fn flush<A: App>(sess: Rc<Session<A>>) {
    let Some(mut w) = take_writer(&sess) else {
        return;
    };
    let mut batch = POOL
        .with(|p| p.borrow_mut().pop())
        .unwrap_or_else(Batch::new);
    let mut failed = false;
    loop {
        batch.clear();
        fill(&sess, &mut batch);
        if batch.bufs.is_empty() {
            break;
        }
        batch.seal();
        while batch.remaining() > 0 {
            let (res, b) = w.writev(batch).await;
            batch = b;
            match res {
                Ok(0) | Err(_) => {
                    failed = true;
                    break;
                }
                Ok(n) => batch.advance(n),
            }
        }
        if failed || batch.close {
            break;
        }
    }
    let close = batch.close;
    batch.clear();
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < POOL_MAX {
            p.push(batch);
        }
    });
    let fd = {
        let mut st = sess.st.borrow_mut();
        let st = &mut *st;
        let TransportIo::Ws {
            writer,
            fd,
            writing,
        } = &mut st.io
        else {
            return;
        };
        *writing = false;
        if !close && !failed {
            *writer = Some(w);
            // an idle socket keeps no queue allocation
            st.m.shrink_idle();
            return;
        }
        *fd
    };
    sys::shutdown_fd(fd);
    if failed {
        sess.close(CloseReason::TransportError);
    }
}
