//! Wake-ups between the client's tasks on one thread: a waker list that every state change
//! notifies, conditions re-checked by the waiters, and tasks that end when their engine closes.
//!
//! Owns: [`Notify`] (many waiters, no permits: a waiter re-checks its condition after every
//! notification), [`wait_until`] over several notifiers at once, and [`spawn_until`], which runs a
//! task until it finishes or a condition becomes true (dropping it, with its sockets, then).
//!
//! Must not: hold protocol state; callers keep their state in `RefCell`s and notify after each
//! change.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// A list of wakers woken together.
#[derive(Default)]
pub(crate) struct Notify {
    wakers: RefCell<Vec<Waker>>,
}

impl Notify {
    /// Wakes every waiter (they re-check their conditions).
    pub fn notify(&self) {
        let wakers = std::mem::take(&mut *self.wakers.borrow_mut());
        for w in wakers {
            w.wake();
        }
    }

    fn register(&self, cx: &Context<'_>) {
        let mut ws = self.wakers.borrow_mut();
        if !ws.iter().any(|w| w.will_wake(cx.waker())) {
            ws.push(cx.waker().clone());
        }
    }
}

/// Resolves once `cond` is true; re-checked whenever one of `notifies` fires.
pub(crate) async fn wait_until(notifies: &[&Notify], mut cond: impl FnMut() -> bool) {
    poll_fn(|cx| {
        if cond() {
            return Poll::Ready(());
        }
        for n in notifies {
            n.register(cx);
        }
        Poll::Pending
    })
    .await
}

/// Spawns `fut` on the current monoio runtime; it is dropped as soon as `stop` is true
/// (checked whenever `notify` fires).
pub(crate) fn spawn_until<F, C>(notify: Rc<Notify>, stop: C, fut: F)
where
    F: Future<Output = ()> + 'static,
    C: Fn() -> bool + 'static,
{
    monoio::spawn(async move {
        let notifies = [&*notify];
        monoio::select! {
            biased;
            _ = wait_until(&notifies, &stop) => {}
            _ = fut => {}
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn waiters_see_changes_and_stopped_tasks_are_dropped() {
        let mut rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        rt.block_on(async {
            let n = Rc::new(Notify::default());
            let flag = Rc::new(Cell::new(0u32));
            let (n2, f2) = (n.clone(), flag.clone());
            let waiter = monoio::spawn(async move {
                wait_until(&[&n2], || f2.get() >= 2).await;
                f2.get()
            });
            let stop = Rc::new(Cell::new(false));
            let ran = Rc::new(Cell::new(false));
            let (s2, r2) = (stop.clone(), ran.clone());
            spawn_until(n.clone(), move || s2.get(), async move {
                monoio::time::sleep(std::time::Duration::from_secs(60)).await;
                r2.set(true);
            });
            for _ in 0..2 {
                monoio::time::sleep(std::time::Duration::from_millis(5)).await;
                flag.set(flag.get() + 1);
                n.notify();
            }
            assert_eq!(waiter.await, 2);
            stop.set(true);
            n.notify();
            monoio::time::sleep(std::time::Duration::from_millis(5)).await;
            assert!(!ran.get());
        });
    }
}
