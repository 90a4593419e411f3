//! The shard core: one thread per core, its monoio runtime, and what a shard needs to talk to
//! the others. Layers above install their own per-shard state; this layer knows none of them.
//!
//! Owns: the shard's identity and [`ShardSet`] (inboxes of [`Job`]s, presence table, counters),
//! the ordered post with its overflow queue, the timer heap, the inbox task, listeners and
//! small system helpers.
//!
//! Must not: name anything of the engine or of Socket.IO.

pub mod idle;
pub mod inbox;
pub mod listener;
pub mod presence;
pub mod reclaim;
pub mod runtime;
pub mod sys;
pub mod timers;

pub use idle::{note_activity, IdlePolicy};
pub use inbox::{Job, PostError, ShardMetrics, ShardSet};
pub use presence::Presence;
pub use runtime::{Driver, UringSetup};
pub use timers::{Timed, Timers};

use crossbeam_channel::Receiver;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;

/// A shard's own state, reachable from anywhere on its thread through [`shard()`].
pub struct Shard {
    /// This shard's id (its index in [`ShardSet`]).
    pub id: usize,
    /// Every shard's inbox, the presence table, the counters.
    pub peers: Arc<ShardSet>,
    /// The timer heap (its task is spawned by [`Shard::run`]).
    pub timers: Rc<Timers>,
    overflow: RefCell<HashMap<usize, VecDeque<Job>>>,
    flushing: Cell<bool>,
    stopping: Cell<bool>,
}

thread_local! {
    static SHARD: RefCell<Option<Rc<Shard>>> = const { RefCell::new(None) };
}

/// The current thread's shard. Panics off a shard thread (a programming error: public APIs
/// that may run elsewhere check [`try_shard`]).
pub fn shard() -> Rc<Shard> {
    try_shard().expect("ringio API used outside a shard thread")
}

/// The current thread's shard, if it is one.
pub fn try_shard() -> Option<Rc<Shard>> {
    SHARD.with(|s| s.borrow().clone())
}

impl Shard {
    /// Makes this thread shard `id` of `peers`.
    pub fn install(id: usize, peers: Arc<ShardSet>) -> Rc<Shard> {
        let sh = Rc::new(Shard {
            id,
            peers,
            timers: Rc::new(Timers::default()),
            overflow: Default::default(),
            flushing: Cell::new(false),
            stopping: Cell::new(false),
        });
        SHARD.with(|s| *s.borrow_mut() = Some(sh.clone()));
        sh
    }

    /// Number of shards.
    pub fn count(&self) -> usize {
        self.peers.len()
    }

    /// This shard's counters.
    pub fn metrics(&self) -> &ShardMetrics {
        self.peers.metrics(self.id)
    }

    /// Runs `job` on shard `dest`, after every job this shard posted to `dest` before (here
    /// too when `dest` is this shard). Never blocks and never drops while `dest` runs: while
    /// its inbox is full, jobs wait in this shard's overflow queue for `dest` (counted),
    /// retried every millisecond in order. Jobs for a stopped shard are dropped.
    pub fn post(self: &Rc<Self>, dest: usize, job: Job) {
        let mut overflow = self.overflow.borrow_mut();
        let q = overflow.entry(dest).or_default();
        if q.is_empty() {
            match self.peers.try_post(dest, job) {
                Ok(()) | Err(PostError::Stopped(_)) => return,
                Err(PostError::Full(j)) => q.push_back(j),
            }
        } else {
            q.push_back(job);
        }
        self.metrics().overflowed.fetch_add(1, Ordering::Relaxed);
        if !self.flushing.replace(true) {
            monoio::spawn(self.clone().flush_overflow());
        }
    }

    async fn flush_overflow(self: Rc<Self>) {
        loop {
            monoio::time::sleep(std::time::Duration::from_millis(1)).await;
            let mut overflow = self.overflow.borrow_mut();
            for (&dest, q) in overflow.iter_mut() {
                while let Some(j) = q.pop_front() {
                    match self.peers.try_post(dest, j) {
                        Ok(()) => {}
                        Err(PostError::Full(j)) => {
                            q.push_front(j);
                            break;
                        }
                        Err(PostError::Stopped(_)) => q.clear(),
                    }
                }
            }
            overflow.retain(|_, q| !q.is_empty());
            if overflow.is_empty() {
                self.flushing.set(false);
                return;
            }
        }
    }

    /// Ends the inbox task after the current job: the shard's main loop then returns.
    pub fn stop(&self) {
        self.stopping.set(true);
        self.peers.inbox(self.id).waker.wake();
    }

    /// True once [`Self::stop`] was called.
    pub fn stopping(&self) -> bool {
        self.stopping.get()
    }

    /// Spawns the timer task and runs the inbox until [`Self::stop`] (or until every sender
    /// is gone).
    pub async fn run(self: Rc<Self>, rx: Receiver<Job>) {
        monoio::spawn(self.timers.clone().run());
        monoio::spawn(reclaim::run());
        let mut handled = 0usize;
        loop {
            handled += 1;
            if handled % INBOX_BATCH == 0 {
                yield_now().await;
            }
            let job = poll_fn(|cx| {
                if self.stopping.get() {
                    return Poll::Ready(None);
                }
                if let Ok(j) = rx.try_recv() {
                    return Poll::Ready(Some(j));
                }
                self.peers.inbox(self.id).waker.register(cx.waker());
                match rx.try_recv() {
                    Ok(j) => Poll::Ready(Some(j)),
                    Err(crossbeam_channel::TryRecvError::Disconnected) => Poll::Ready(None),
                    Err(crossbeam_channel::TryRecvError::Empty) => Poll::Pending,
                }
            })
            .await;
            match job {
                Some(job) => {
                    idle::note_activity();
                    job()
                }
                None => return,
            }
        }
    }
}

/// Jobs handled before the inbox task yields (so writers drain queues during a flood).
const INBOX_BATCH: usize = 32;

/// Lets the other tasks of the shard run once.
pub async fn yield_now() {
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
