//! What a shard does between bursts of work: the cure for the wakeup tax.
//!
//! A shard that parks in the kernel as soon as it has nothing to do makes every message that
//! arrives while it sleeps wake its thread from another core: an inter-processor interrupt
//! that the sender's kernel path pays (on loopback the client, in production the NIC's
//! softirq), and on a VM an exit on both sides. A fast server sleeps between nearly every two
//! messages, so it pays this on nearly every message (BENCHMARKS.md, "the wakeup tax").
//!
//! Two remedies, both adaptive (they act only while events are dense, and a shard without
//! traffic sleeps in the kernel and costs no CPU):
//!
//! - [`IdlePolicy::Coalesce`]: interrupt coalescing. While events arrive at least one per
//!   `period` on average, the shard, once it has handled what it had, sleeps `period` in a way that
//!   I/O does not interrupt (a timed sleep, with the io_uring ring set up with
//!   `DEFER_TASKRUN`, or epoll with nobody waiting), then handles everything that arrived at
//!   once. Senders then only queue: no wakeup per message. Latency grows by at most `period`
//!   while the shard is busy, and not at all in sparse traffic.
//! - [`IdlePolicy::Spin`]: after work, the shard keeps polling its completion queue (it yields
//!   to the runtime, which then submits and reaps without sleeping) for up to `window`, while
//!   events keep coming. Costs the CPU it spins.
//!
//! [`IdlePolicy::Park`] is monoio's own behaviour.
//!
//! Layers above tell this module that work arrived with [`note_activity`]; it never needs to
//! know what the work was.
//!
//! Must not: block a shard while it has other work (it yields first, so that everything
//! queued runs and its I/O is submitted), or spin or sleep without recent traffic.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// How a shard waits for work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdlePolicy {
    /// Park in the kernel whenever there is nothing to do (monoio's default).
    Park,
    /// While events are dense, keep polling for up to `window` after the last event.
    Spin {
        /// How long to poll after the last event.
        window: Duration,
    },
    /// While events are dense, sleep `period` without being woken by I/O, then handle what
    /// arrived in one batch (interrupt coalescing).
    Coalesce {
        /// The longest a message waits for the shard while it is busy.
        period: Duration,
    },
}

impl IdlePolicy {
    /// The default: coalescing with a 200 us period (measured against the alternatives in
    /// BENCHMARKS.md, "The wakeup tax").
    pub const DEFAULT: IdlePolicy = IdlePolicy::Coalesce {
        period: Duration::from_micros(200),
    };

    /// Parses `park`, `spin:<us>` or `coalesce:<us>` (microseconds).
    pub fn parse(s: &str) -> Result<IdlePolicy, String> {
        let us = |v: &str| {
            v.trim_end_matches("us")
                .parse::<u64>()
                .map(Duration::from_micros)
                .map_err(|e| format!("bad microseconds {v:?}: {e}"))
        };
        match s.split_once(':') {
            None if s == "park" => Ok(IdlePolicy::Park),
            Some(("spin", v)) => Ok(IdlePolicy::Spin { window: us(v)? }),
            Some(("coalesce", v)) => Ok(IdlePolicy::Coalesce { period: us(v)? }),
            _ => Err(format!(
                "unknown idle policy {s:?} (park, spin:<us>, coalesce:<us>)"
            )),
        }
    }
}

impl std::fmt::Display for IdlePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdlePolicy::Park => f.write_str("park"),
            IdlePolicy::Spin { window } => write!(f, "spin:{}us", window.as_micros()),
            IdlePolicy::Coalesce { period } => write!(f, "coalesce:{}us", period.as_micros()),
        }
    }
}

/// Counters of the idle policy on one shard (for tests and the harness).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdleStats {
    /// Events noted ([`note_activity`]).
    pub events: u64,
    /// Coalescing sleeps taken.
    pub sleeps: u64,
    /// Spin rounds (one runtime pass each).
    pub spins: u64,
}

struct Activity {
    events: Cell<u64>,
    waiter: RefCell<Option<Waker>>,
    sleeps: Cell<u64>,
    spins: Cell<u64>,
}

thread_local! {
    static ACTIVITY: Activity = const {
        Activity {
            events: Cell::new(0),
            waiter: RefCell::new(None),
            sleeps: Cell::new(0),
            spins: Cell::new(0),
        }
    };
}

/// Work arrived on this shard (a message read, a request, a job from another shard). Cheap:
/// a counter, and a local wake of the idle task when it waits.
#[inline]
pub fn note_activity() {
    ACTIVITY.with(|a| {
        a.events.set(a.events.get() + 1);
        if let Some(w) = a.waiter.borrow_mut().take() {
            w.wake();
        }
    });
}

/// This shard's counters.
pub fn stats() -> IdleStats {
    ACTIVITY.with(|a| IdleStats {
        events: a.events.get(),
        sleeps: a.sleeps.get(),
        spins: a.spins.get(),
    })
}

/// Publishes one more of a counter of this shard (when the thread is a shard).
fn count(f: impl FnOnce(&super::ShardMetrics) -> &std::sync::atomic::AtomicU64) {
    if let Some(sh) = super::try_shard() {
        f(sh.metrics()).fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

fn events() -> u64 {
    ACTIVITY.with(|a| a.events.get())
}

/// Waits until an event is noted after `seen`; returns the new count.
async fn wait_activity(seen: u64) -> u64 {
    poll_fn(|cx| {
        let now = events();
        if now != seen {
            return Poll::Ready(now);
        }
        ACTIVITY.with(|a| *a.waiter.borrow_mut() = Some(cx.waker().clone()));
        Poll::Pending
    })
    .await
}

/// Lets everything queued run and its I/O be submitted: yields until no event was noted
/// across one full runtime pass (each pass ends with a submit of the queued operations).
async fn quiesce() -> u64 {
    let mut seen = events();
    loop {
        super::yield_now().await;
        let now = events();
        if now == seen {
            return now;
        }
        seen = now;
    }
}

/// The event rate over the last window, as events per `unit`.
struct Rate {
    start: Instant,
    events: u64,
    per_unit: f64,
}

/// How long a rate measurement lasts.
const RATE_WINDOW: Duration = Duration::from_millis(1);

impl Rate {
    fn new(now: Instant, events: u64) -> Rate {
        Rate {
            start: now,
            events,
            per_unit: 0.0,
        }
    }
    /// Updates the estimate at least every [`RATE_WINDOW`]; an idle gap longer than a
    /// window resets it to zero.
    fn update(&mut self, now: Instant, events: u64, unit: Duration) -> f64 {
        let dt = now.saturating_duration_since(self.start);
        if dt >= RATE_WINDOW {
            let n = events.saturating_sub(self.events) as f64;
            self.per_unit = n * unit.as_secs_f64() / dt.as_secs_f64();
            self.start = now;
            self.events = events;
        }
        self.per_unit
    }
}

/// The idle task of a shard: runs the policy until the shard stops (returns at once for
/// [`IdlePolicy::Park`]).
pub async fn run(policy: IdlePolicy) {
    match policy {
        IdlePolicy::Park => {}
        IdlePolicy::Coalesce { period } => coalesce(period).await,
        IdlePolicy::Spin { window } => spin(window).await,
    }
}

/// The batch a coalescing sleep waits for: enough to spare the senders their wakeups, few
/// enough that a busy shard does not hold messages longer than it must.
const BATCH: f64 = 4.0;

/// How long a coalescing shard sleeps when `per_period` events arrive per `period`: long
/// enough to gather about [`BATCH`] events, never longer than `period`.
fn coalesce_sleep(period: Duration, per_period: f64) -> Duration {
    period.mul_f64((BATCH / per_period).min(1.0))
}

async fn coalesce(period: Duration) {
    let mut seen = events();
    let mut rate = Rate::new(Instant::now(), seen);
    loop {
        wait_activity(seen).await;
        seen = quiesce().await;
        // dense: at least one event per period on average over the last window (then most
        // sleeps end with work waiting, and senders never wake this thread meanwhile)
        let per_period = rate.update(Instant::now(), seen, period);
        if per_period >= 1.0 {
            ACTIVITY.with(|a| a.sleeps.set(a.sleeps.get() + 1));
            count(|m| &m.idle_sleeps);
            // a plain timed sleep: I/O that arrives meanwhile queues in the kernel without
            // waking this thread (io_uring with DEFER_TASKRUN, or epoll with no waiter); long
            // enough to gather about BATCH events, never longer than `period`
            std::thread::sleep(coalesce_sleep(period, per_period));
        }
    }
}

async fn spin(window: Duration) {
    let mut seen = events();
    let mut rate = Rate::new(Instant::now(), seen);
    loop {
        seen = wait_activity(seen).await;
        let mut last = Instant::now();
        if rate.update(last, seen, window) < 1.0 {
            continue;
        }
        // poll for more while events keep coming; the runtime reaps completions on each pass
        // (timers advance only when it parks: a spin never lasts more than a millisecond)
        let start = last;
        loop {
            super::yield_now().await;
            ACTIVITY.with(|a| a.spins.set(a.spins.get() + 1));
            count(|m| &m.idle_spins);
            let now = Instant::now();
            let n = events();
            if n != seen {
                seen = n;
                last = now;
            } else if now - last >= window || now - start >= RATE_WINDOW {
                break;
            }
        }
    }
}

/// Lowers the thread's timer slack so that short coalescing sleeps end on time (the default
/// slack is 50 us).
pub fn tighten_timer_slack() {
    // SAFETY: prctl(PR_SET_TIMERSLACK) takes an integer and touches only this thread.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1u64, 0, 0, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        assert_eq!(IdlePolicy::parse("park"), Ok(IdlePolicy::Park));
        let c = IdlePolicy::parse("coalesce:100").unwrap();
        assert_eq!(
            c,
            IdlePolicy::Coalesce {
                period: Duration::from_micros(100)
            }
        );
        assert_eq!(c.to_string(), "coalesce:100us");
        assert_eq!(IdlePolicy::parse(&c.to_string()), Ok(c));
        let s = IdlePolicy::parse("spin:50us").unwrap();
        assert_eq!(s.to_string(), "spin:50us");
        assert!(IdlePolicy::parse("nap:3").is_err());
        assert!(IdlePolicy::parse("spin:x").is_err());
    }

    #[test]
    fn coalesce_sleep_gathers_a_batch() {
        let p = Duration::from_micros(200);
        // sparse (one event per period): the whole period
        assert_eq!(coalesce_sleep(p, 1.0), p);
        assert_eq!(coalesce_sleep(p, BATCH), p);
        // dense: just long enough for about BATCH events
        assert_eq!(coalesce_sleep(p, 2.0 * BATCH), Duration::from_micros(100));
        assert_eq!(coalesce_sleep(p, 40.0 * BATCH), Duration::from_micros(5));
    }

    #[test]
    fn rate_over_windows() {
        let t0 = Instant::now();
        let mut r = Rate::new(t0, 0);
        let unit = Duration::from_micros(100);
        // within the first window: no estimate yet
        assert_eq!(r.update(t0 + Duration::from_micros(500), 50, unit), 0.0);
        // 100 events in 1 ms = 10 per 100 us
        let v = r.update(t0 + RATE_WINDOW, 100, unit);
        assert!((v - 10.0).abs() < 1e-9, "{v}");
        // a quiet window: back to zero
        let v = r.update(t0 + 3 * RATE_WINDOW, 100, unit);
        assert_eq!(v, 0.0);
    }
}
