//! Latency histograms (HDR, microseconds), their `[value, count]` JSON form (what generator
//! processes send back) and the CDF for `--plot`; clock helpers for times other processes took.

use hdrhistogram::Histogram;
use std::time::{Duration, Instant};

pub fn hist() -> Histogram<u64> {
    // microseconds, up to 10 minutes, 3 significant digits
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds")
}

/// Microseconds for a histogram (at least 1: HDR histograms take no zeros).
pub fn us(d: Duration) -> u64 {
    d.as_micros().max(1) as u64
}

/// A histogram as a list of `[value, count]` pairs.
pub fn hist_json(h: &Histogram<u64>) -> serde_json::Value {
    h.iter_recorded()
        .map(|v| serde_json::json!([v.value_iterated_to(), v.count_at_value()]))
        .collect::<Vec<_>>()
        .into()
}

/// A histogram from a list of `[value, count]` pairs (values in us; others are skipped).
pub fn hist_from(v: &serde_json::Value) -> Histogram<u64> {
    let mut h = hist();
    for pair in v.as_array().into_iter().flatten() {
        if let (Some(x), Some(n)) = (
            pair.get(0).and_then(|x| x.as_u64()),
            pair.get(1).and_then(|x| x.as_u64()),
        ) {
            let _ = h.record_n(x.max(1), n);
        }
    }
    h
}

/// The latency CDF of a histogram in microseconds: (ms, fraction) points.
pub fn cdf(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut v: Vec<(f64, f64)> = h
        .iter_quantiles(20)
        .map(|x| {
            (
                x.value_iterated_to() as f64 / 1000.0,
                x.quantile_iterated_to(),
            )
        })
        .collect();
    v.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    v
}

/// CLOCK_MONOTONIC in ns: the clock `Instant` reads here and Node's `process.hrtime` reads, so
/// instants another process took compare with ours.
pub fn mono_ns() -> u64 {
    // SAFETY: clock_gettime into a zeroed timespec.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Maps CLOCK_MONOTONIC ns (taken by any process on this machine) to `Instant`s.
pub struct MonoClock {
    at: Instant,
    ns: u64,
}

impl MonoClock {
    pub fn now() -> MonoClock {
        MonoClock {
            at: Instant::now(),
            ns: mono_ns(),
        }
    }

    pub fn instant(&self, ns: u64) -> Instant {
        if ns <= self.ns {
            self.at - Duration::from_nanos(self.ns - ns)
        } else {
            self.at + Duration::from_nanos(ns - self.ns)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_round_trip() {
        let mut h = hist();
        for v in [1u64, 5, 5, 900, 123_456, 9_999_999] {
            h.record(v).unwrap();
        }
        let back = hist_from(&serde_json::from_str(&hist_json(&h).to_string()).unwrap());
        assert_eq!(back.len(), h.len());
        assert_eq!(back.value_at_quantile(0.5), h.value_at_quantile(0.5));
        assert_eq!(back.max(), h.max());
    }

    #[test]
    fn monotonic_ns_map_to_instants() {
        let c = MonoClock::now();
        let t = Instant::now();
        let ns = mono_ns();
        let back = c.instant(ns);
        let diff = if back > t { back - t } else { t - back };
        assert!(diff < Duration::from_millis(5), "{diff:?}");
        assert_eq!(c.instant(c.ns - 1_000_000), c.at - Duration::from_millis(1));
    }
}
