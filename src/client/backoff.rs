//! Reconnection delays, computed exactly like socket.io-client's `Backoff` (its `backo2` copy).
//!
//! `duration()` returns `min * factor^attempts`, then, when a jitter in `(0, 1]` is set, moves it
//! by `floor(rand * jitter * ms)` (down when `floor(rand * 10)` is even, up when odd), caps it at
//! `max`, and counts one more attempt. `reset()` starts over. The factor is 2.
//!
//! Must not: sleep or read clocks; the manager sleeps for what this returns.

use std::time::Duration;

/// Exponential backoff with jitter (socket.io-client's formula).
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    min_ms: f64,
    max_ms: f64,
    jitter: f64,
    /// Attempts since the last reset.
    pub attempts: u32,
}

const FACTOR: f64 = 2.0;

impl Backoff {
    /// `jitter` outside `(0, 1]` means none, like the JavaScript original.
    pub fn new(min: Duration, max: Duration, jitter: f64) -> Backoff {
        Backoff {
            min_ms: min.as_millis() as f64,
            max_ms: max.as_millis() as f64,
            jitter: if jitter > 0.0 && jitter <= 1.0 {
                jitter
            } else {
                0.0
            },
            attempts: 0,
        }
    }

    /// The next delay, drawing the jitter from the operating system's random source.
    pub fn duration(&mut self) -> Duration {
        self.duration_with(random_unit())
    }

    /// The next delay for a given uniform random number `rand` in `[0, 1)`.
    pub fn duration_with(&mut self, rand: f64) -> Duration {
        let mut ms = if self.min_ms == 0.0 {
            0.0
        } else {
            self.min_ms * FACTOR.powf(f64::from(self.attempts))
        };
        self.attempts = self.attempts.saturating_add(1);
        if self.jitter > 0.0 {
            let deviation = (rand * self.jitter * ms).floor();
            ms = if ((rand * 10.0).floor() as i64) & 1 == 0 {
                ms - deviation
            } else {
                ms + deviation
            };
        }
        Duration::from_millis(ms.min(self.max_ms).max(0.0).trunc() as u64)
    }

    /// Starts counting attempts from zero again.
    pub fn reset(&mut self) {
        self.attempts = 0;
    }
}

/// A uniform random number in `[0, 1)` (53 random bits from the OS).
pub(crate) fn random_unit() -> f64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn doubles_up_to_the_cap_without_jitter() {
        let mut b = Backoff::new(ms(1000), ms(5000), 0.0);
        let got: Vec<u64> = (0..6)
            .map(|_| b.duration_with(0.7).as_millis() as u64)
            .collect();
        assert_eq!(got, [1000, 2000, 4000, 5000, 5000, 5000]);
        assert_eq!(b.attempts, 6);
        b.reset();
        assert_eq!(b.duration_with(0.3), ms(1000));
    }

    #[test]
    fn jitter_matches_the_javascript_formula() {
        // socket.io-client defaults: 1000 ms, max 5000 ms, randomizationFactor 0.5
        let mut b = Backoff::new(ms(1000), ms(5000), 0.5);
        // attempt 0: rand 0.15 -> deviation floor(0.15*0.5*1000)=75, floor(1.5)=1 odd -> +75
        assert_eq!(b.duration_with(0.15), ms(1075));
        // attempt 1: 2000, rand 0.25 -> deviation 250, floor(2.5)=2 even -> -250
        assert_eq!(b.duration_with(0.25), ms(1750));
        // attempt 2: 4000, rand 0.999 -> deviation floor(1998)=1998, floor(9.99)=9 odd -> 5998,
        // capped
        assert_eq!(b.duration_with(0.999), ms(5000));
        // attempt 3: 8000, rand 0.05 -> deviation 200, even -> 7800, capped
        assert_eq!(b.duration_with(0.05), ms(5000));
        // rand 0 never moves the delay
        b.reset();
        assert_eq!(b.duration_with(0.0), ms(1000));
    }

    #[test]
    fn bounds_hold_for_random_draws() {
        for attempt in 0..12u32 {
            let base = (100.0 * 2f64.powi(attempt as i32)).min(f64::MAX);
            for _ in 0..200 {
                let mut b = Backoff::new(ms(100), ms(3000), 0.5);
                b.attempts = attempt;
                let d = b.duration().as_millis() as f64;
                assert!(d <= 3000.0, "{d}");
                assert!(
                    d >= (base * 0.5).min(3000.0).floor() - 1.0,
                    "{d} < half of {base}"
                );
            }
        }
    }

    #[test]
    fn edge_values() {
        // jitter outside (0, 1] is ignored, like the original
        let mut b = Backoff::new(ms(10), ms(1000), 1.5);
        assert_eq!(b.duration_with(0.99), ms(10));
        // huge attempt counts saturate at the cap
        let mut b = Backoff::new(ms(10), ms(1000), 0.5);
        b.attempts = u32::MAX;
        assert_eq!(b.duration_with(0.5), ms(1000));
        assert_eq!(b.attempts, u32::MAX);
        // zero delay stays zero
        let mut b = Backoff::new(Duration::ZERO, ms(1000), 0.5);
        b.attempts = 5000;
        assert_eq!(b.duration_with(0.9), Duration::ZERO);
        let u = random_unit();
        assert!((0.0..1.0).contains(&u));
    }
}
