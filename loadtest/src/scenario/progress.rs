//! Waiting on the coordinator thread: a progress line on stderr (terminals only) for phases
//! longer than 3 s, sleeps with it, and polling a condition until a deadline.

use std::time::{Duration, Instant};

/// A progress line on stderr (a terminal only) for phases longer than 3 s.
pub struct Progress {
    label: String,
    total: Duration,
    start: Instant,
    last: Instant,
    on: bool,
}

impl Progress {
    pub fn new(label: &str, total: Duration) -> Progress {
        // SAFETY: isatty has no preconditions.
        let tty = unsafe { libc::isatty(2) } == 1;
        Progress {
            label: label.into(),
            total,
            start: Instant::now(),
            last: Instant::now(),
            on: tty && total > Duration::from_secs(3),
        }
    }

    pub fn tick(&mut self, extra: &str) {
        if !self.on || self.last.elapsed() < Duration::from_millis(250) {
            return;
        }
        self.last = Instant::now();
        let e = self.start.elapsed().as_secs_f64();
        let t = self.total.as_secs_f64();
        let w = 30usize;
        let done = ((e / t).min(1.0) * w as f64) as usize;
        eprint!(
            "\r  {:<12} [{}{}] {e:5.1}/{t:.0} s {extra}\x1b[K",
            self.label,
            "#".repeat(done),
            ".".repeat(w - done)
        );
    }

    pub fn finish(&self) {
        if self.on {
            eprint!("\r\x1b[K");
        }
    }
}

/// Sleeps `d`, with a progress line when it is longer than 3 s.
pub fn progress_sleep(d: Duration, label: &str) {
    let mut pr = Progress::new(label, d);
    let end = Instant::now() + d;
    while Instant::now() < end {
        pr.tick("");
        std::thread::sleep((end - Instant::now()).min(Duration::from_millis(250)));
    }
    pr.finish();
}

/// Polls `done` every millisecond until it is true (returns true) or `deadline` passed (returns
/// its last answer).
pub fn wait_until(deadline: Instant, mut done: impl FnMut() -> bool) -> bool {
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    done()
}
