//! A cumulative histogram of durations, in atomics: recording is a search
//! over a dozen bounds and two relaxed additions, no lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Observations counted per bucket (bucket `i` holds those `<= bounds[i]`
/// and above the bound before; the last one, `+Inf`, the rest), and their
/// sum in microseconds (a u64 of microseconds lasts 584 000 years).
#[derive(Debug)]
pub struct Histogram {
    /// Upper bounds in seconds, ascending, as `le` shows them.
    bounds: &'static [f64],
    /// The same bounds in nanoseconds, for comparing durations.
    bounds_ns: Box<[u64]>,
    counts: Box<[AtomicU64]>,
    sum_us: AtomicU64,
}

/// A histogram as read at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    bounds: &'static [f64],
    /// Per bucket (not cumulative), `+Inf` last.
    counts: Vec<u64>,
    /// Seconds.
    pub sum: f64,
    pub count: u64,
}

impl HistogramSnapshot {
    /// `(le, observations <= le)` per bucket, cumulative, ending with `+Inf`
    /// (whose count is [`HistogramSnapshot::count`]).
    pub fn buckets(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        let mut seen = 0;
        self.bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.counts.iter())
            .map(move |(b, n)| {
                seen += n;
                (b, seen)
            })
    }
}

impl Histogram {
    /// A histogram with these upper bounds, in seconds (ascending; `+Inf`
    /// is implied).
    pub fn new(bounds: &'static [f64]) -> Histogram {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]), "bounds ascend");
        Histogram {
            bounds,
            bounds_ns: bounds.iter().map(|b| (b * 1e9) as u64).collect(),
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_us: AtomicU64::new(0),
        }
    }

    /// Counts one observation.
    pub fn observe(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = self.bounds_ns.partition_point(|b| *b < ns);
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// The counts now. The total is the sum of the buckets read, so the
    /// `+Inf` bucket and `_count` always agree.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        HistogramSnapshot {
            bounds: self.bounds,
            count: counts.iter().sum(),
            counts,
            sum: self.sum_us.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_whose_bound_they_do_not_exceed() {
        let h = Histogram::new(&[0.001, 0.5]);
        h.observe(Duration::ZERO);
        h.observe(Duration::from_micros(1000));
        h.observe(Duration::from_micros(1001));
        h.observe(Duration::from_secs(3600));
        let s = h.snapshot();
        let b: Vec<(f64, u64)> = s.buckets().collect();
        assert_eq!(b, [(0.001, 2), (0.5, 3), (f64::INFINITY, 4)]);
        assert_eq!(s.count, 4);
        assert!((s.sum - 3600.002001).abs() < 1e-9, "{}", s.sum);
    }
}
