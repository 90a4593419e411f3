//! Gives freed memory back to the OS after connections go away.
//!
//! mimalloc (the binaries' allocator) keeps freed pages in the heap of the thread that freed
//! them and purges them on that thread's later allocator calls; a shard that goes quiet after
//! thousands of sessions closed would keep their memory indefinitely (measured: +20 MB three
//! seconds after 2000 abandoned polling sessions were reclaimed, BENCHMARKS.md). So each shard
//! runs a small task that, one second after the last burst of releases it was told about,
//! asks its heap to collect and purge. Without releases it sleeps and costs nothing.
//!
//! Must not: run on a busy schedule (one collect per burst, at most one a second).

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Poll, Waker};
use std::time::Duration;

/// How long a burst of releases settles before the heap is collected.
const SETTLE: Duration = Duration::from_secs(1);

thread_local! {
    static RELEASED: Cell<u64> = const { Cell::new(0) };
    static WAITER: RefCell<Option<Waker>> = const { RefCell::new(None) };
}

/// Memory worth giving back was freed on this shard (a session closed).
pub fn note_release() {
    RELEASED.with(|r| r.set(r.get() + 1));
    if let Some(w) = WAITER.with(|w| w.borrow_mut().take()) {
        w.wake();
    }
}

async fn wait_release(seen: u64) -> u64 {
    poll_fn(|cx| {
        let now = RELEASED.with(Cell::get);
        if now != seen {
            return Poll::Ready(now);
        }
        WAITER.with(|w| *w.borrow_mut() = Some(cx.waker().clone()));
        Poll::Pending
    })
    .await
}

/// The shard's reclaim task.
pub async fn run() {
    let mut seen = RELEASED.with(Cell::get);
    loop {
        seen = wait_release(seen).await;
        // let the burst finish: releases during the wait only move the collect later
        loop {
            monoio::time::sleep(SETTLE).await;
            let now = RELEASED.with(Cell::get);
            if now == seen {
                break;
            }
            seen = now;
        }
        collect();
    }
}

/// Collects this thread's mimalloc heap and returns its free pages to the OS (a no-op for
/// memory of another allocator).
pub fn collect() {
    // SAFETY: mi_collect only walks this thread's own heap; it takes no pointer.
    unsafe { libmimalloc_sys::mi_collect(true) }
}
