//! The shard's timers: one task sleeps until the earliest deadline of a binary heap of
//! `(deadline, target, token)` entries. No task or timer object per connection: a session
//! schedules an entry when its next deadline changes, and an entry that fires early (the
//! deadline moved on) costs one call that finds nothing to do.
//!
//! Must not: know what a target is (sessions implement [`Timed`]).

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::{poll_fn, Future};
use std::rc::{Rc, Weak};
use std::task::{Poll, Waker};
use std::time::Instant;

/// Something with deadlines on a shard.
pub trait Timed {
    /// A deadline scheduled with `token` passed (`now` is when the timer task ran).
    fn fire(self: Rc<Self>, token: u8, now: Instant);
}

struct Entry {
    due: Instant,
    seq: u64,
    target: Weak<dyn Timed>,
    token: u8,
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
pub struct Timers {
    heap: RefCell<BinaryHeap<Reverse<Entry>>>,
    seq: Cell<u64>,
    sleeping_until: Cell<Option<Instant>>,
    waker: RefCell<Option<Waker>>,
}

impl Timers {
    /// Calls `target.fire(token, ..)` once `due` has passed (unless the target is gone).
    pub fn schedule(&self, due: Instant, target: Weak<dyn Timed>, token: u8) {
        let seq = self.seq.get() + 1;
        self.seq.set(seq);
        self.heap.borrow_mut().push(Reverse(Entry {
            due,
            seq,
            target,
            token,
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

    /// Entries waiting (for tests and metrics).
    pub fn len(&self) -> usize {
        self.heap.borrow().len()
    }

    /// True when no entry waits.
    pub fn is_empty(&self) -> bool {
        self.heap.borrow().is_empty()
    }

    /// The shard's timer task.
    pub async fn run(self: Rc<Self>) {
        loop {
            let now = Instant::now();
            while let Some(e) = self.pop_due(now) {
                if let Some(t) = e.target.upgrade() {
                    t.fire(e.token, now);
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
