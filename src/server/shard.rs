//! A shard: one pinned thread, one monoio runtime, its own listener, sessions and timers.
//!
//! Everything here is `Rc`/`RefCell`: a shard never shares mutable state with another thread.
//! The only cross-thread paths are the inboxes (`Peers`): bounded crossbeam channels with an
//! `AtomicWaker`, always `try_send` (never a blocking send between shards).
//!
//! Timers: one task per shard sleeps until the earliest deadline of a binary heap of
//! `(deadline, session, generation)` entries (no task or timer object per connection); stale
//! entries are skipped by their generation.

use super::session::{Session, Sid};
use super::{Config, EndpointRt};
use atomic_waker::AtomicWaker;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::future::poll_fn;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Instant;

/// A message between shards.
pub(crate) enum ShardMsg {
    /// A polling request for a session this shard owns.
    Poll(super::conn::ForwardedPoll),
    /// A WebSocket connection carrying a sid this shard owns, moved here as a raw fd.
    AdoptWs(super::conn::MovedWs),
    /// Close a session this shard owns (e.g. after a 413 served by another shard).
    CloseSession(Sid, crate::DisconnectReason),
    /// A broadcast from another shard.
    Broadcast(Arc<crate::adapter::BroadcastMsg>),
    /// Stop accepting and close every session.
    Shutdown,
}

/// The inbox of one shard, shared with every other shard.
pub(crate) struct Inbox {
    pub tx: Sender<ShardMsg>,
    pub waker: AtomicWaker,
    /// Messages refused because the inbox was full (the sender keeps them in its overflow).
    pub full: AtomicU64,
}

/// Counters of one shard (written only by that shard; read by anyone).
#[derive(Default)]
pub(crate) struct ShardMetrics {
    /// Volatile packets dropped because the transport was not ready.
    pub volatile_dropped: AtomicU64,
    /// Connections closed because their output queue passed its cap.
    pub slow_consumers: AtomicU64,
    /// Broadcasts that waited in an overflow queue because a destination inbox was full.
    pub overflowed: AtomicU64,
}

/// Senders to every shard, indexed by shard id.
pub(crate) struct Peers {
    pub inboxes: Vec<Inbox>,
    /// The room presence table.
    pub presence: crate::adapter::Presence,
    /// Per-shard counters.
    pub metrics: Vec<ShardMetrics>,
}

impl Peers {
    /// Posts to shard `to`; never blocks. Returns the message when the inbox is full.
    pub fn try_post(&self, to: usize, msg: ShardMsg) -> Result<(), ShardMsg> {
        let inbox = &self.inboxes[to];
        match inbox.tx.try_send(msg) {
            Ok(()) => {
                inbox.waker.wake();
                Ok(())
            }
            Err(TrySendError::Full(m)) => {
                inbox.full.fetch_add(1, Ordering::Relaxed);
                inbox.waker.wake();
                Err(m)
            }
            Err(TrySendError::Disconnected(m)) => Err(m),
        }
    }
}

/// Which timer fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimerKind {
    Ping,
    PongTimeout,
    ConnectTimeout,
    UpgradeTimeout,
}

struct Entry {
    due: Instant,
    seq: u64,
    sess: Weak<Session>,
    gen: u32,
    kind: TimerKind,
}
impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.seq) == (o.due, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(o.due, o.seq))
    }
}

/// The shard's timer heap.
#[derive(Default)]
pub(crate) struct Timers {
    heap: RefCell<BinaryHeap<Reverse<Entry>>>,
    seq: Cell<u64>,
    sleeping_until: Cell<Option<Instant>>,
    waker: RefCell<Option<Waker>>,
}

impl Timers {
    pub fn schedule(&self, due: Instant, sess: &Rc<Session>, gen: u32, kind: TimerKind) {
        let seq = self.seq.get() + 1;
        self.seq.set(seq);
        self.heap.borrow_mut().push(Reverse(Entry {
            due,
            seq,
            sess: Rc::downgrade(sess),
            gen,
            kind,
        }));
        if self.sleeping_until.get().is_none_or(|t| due < t) {
            if let Some(w) = self.waker.borrow_mut().take() {
                w.wake();
            }
        }
    }

    fn pop_due(&self, now: Instant) -> Option<Entry> {
        let mut h = self.heap.borrow_mut();
        if h.peek().is_some_and(|e| e.0.due <= now) {
            h.pop().map(|e| e.0)
        } else {
            None
        }
    }

    fn next_due(&self) -> Option<Instant> {
        self.heap.borrow().peek().map(|e| e.0.due)
    }

    /// The shard's timer task.
    pub async fn run(self: Rc<Self>) {
        loop {
            let now = Instant::now();
            while let Some(e) = self.pop_due(now) {
                if let Some(s) = e.sess.upgrade() {
                    s.on_timer(e.kind, e.gen, e.due);
                }
            }
            let next = self.next_due();
            self.sleeping_until.set(next);
            let mut sleep = Box::pin(monoio::time::sleep_until(
                next.unwrap_or_else(|| Instant::now() + std::time::Duration::from_secs(3600))
                    .into(),
            ));
            poll_fn(|cx| {
                if sleep.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(());
                }
                let nd = self.next_due();
                if nd != next && nd.is_some_and(|d| next.is_none_or(|n| d < n)) {
                    return Poll::Ready(());
                }
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            })
            .await;
            self.sleeping_until.set(None);
        }
    }
}

use std::future::Future;

/// Shard-local state, reachable from anywhere on the shard's thread via [`shard()`].
pub(crate) struct ShardCtx {
    pub id: usize,
    pub cfg: Arc<Config>,
    pub endpoints: Vec<EndpointRt>,
    pub sessions: RefCell<HashMap<Sid, Rc<Session>>>,
    /// Polling sessions the client closed with `1` while no GET was pending: a GET racing the
    /// close (sent together with it) is answered `6` once, as if it had been pending.
    pub tombstones: RefCell<HashMap<Sid, Instant>>,
    /// File descriptors of this shard's open connections (shut down at server shutdown so
    /// their tasks end and the sockets close).
    pub conns: RefCell<std::collections::HashSet<i32>>,
    pub timers: Rc<Timers>,
    pub peers: Arc<Peers>,
    pub adapter: crate::adapter::LocalAdapter,
    pub shutting_down: Cell<bool>,
}

impl ShardCtx {
    pub fn metrics(&self) -> &ShardMetrics {
        &self.peers.metrics[self.id]
    }
}

thread_local! {
    static SHARD: RefCell<Option<Rc<ShardCtx>>> = const { RefCell::new(None) };
}

/// The current thread's shard. Panics off a shard thread (a programming error).
pub(crate) fn shard() -> Rc<ShardCtx> {
    SHARD
        .with(|s| s.borrow().clone())
        .expect("ringio API used outside a shard thread")
}

pub(crate) fn install(ctx: Rc<ShardCtx>) {
    SHARD.with(|s| *s.borrow_mut() = Some(ctx));
}

/// Lets the other tasks of the shard run once.
pub(crate) async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}

/// Messages handled before the inbox task yields (so writers drain queues during a flood).
const INBOX_BATCH: usize = 32;

/// The inbox task: drains messages posted by other shards.
pub(crate) async fn run_inbox(ctx: Rc<ShardCtx>, rx: Receiver<ShardMsg>) {
    let mut handled = 0usize;
    loop {
        handled += 1;
        if handled % INBOX_BATCH == 0 {
            yield_now().await;
        }
        let msg = poll_fn(|cx| {
            if let Ok(m) = rx.try_recv() {
                return Poll::Ready(Some(m));
            }
            ctx.peers.inboxes[ctx.id].waker.register(cx.waker());
            match rx.try_recv() {
                Ok(m) => Poll::Ready(Some(m)),
                Err(crossbeam_channel::TryRecvError::Disconnected) => Poll::Ready(None),
                Err(crossbeam_channel::TryRecvError::Empty) => Poll::Pending,
            }
        })
        .await;
        let Some(msg) = msg else { return };
        match msg {
            ShardMsg::Poll(p) => {
                monoio::spawn(super::conn::serve_forwarded_poll(p));
            }
            ShardMsg::AdoptWs(m) => {
                monoio::spawn(super::conn::adopt_ws(m));
            }
            ShardMsg::Broadcast(b) => crate::adapter::deliver_local(&ctx, &b),
            ShardMsg::CloseSession(sid, reason) => {
                let sess = ctx.sessions.borrow().get(&sid).cloned();
                if let Some(s) = sess {
                    s.close(reason);
                }
            }
            ShardMsg::Shutdown => {
                ctx.shutting_down.set(true);
                let all: Vec<_> = ctx.sessions.borrow().values().cloned().collect();
                for s in all {
                    s.close(crate::DisconnectReason::ServerShuttingDown);
                }
                // let close frames and final answers go out, then end every connection task
                monoio::time::sleep(std::time::Duration::from_millis(50)).await;
                for &fd in ctx.conns.borrow().iter() {
                    super::writer::shutdown_fd(fd);
                }
                return;
            }
        }
    }
}
