//! Per-app request metrics over a sliding window: what health rules and
//! `ps` (req/s) read.
//!
//! One bucket per second for the last [`WINDOW_SECS`] seconds, each with a
//! request count, an error count (5xx) and a latency histogram whose buckets
//! grow by 2^(1/4) (about 19 %), so p50 and p99 cost nothing to keep and are
//! within a bucket's width of the truth.
//!
//! Beside the window, totals since the app's route (or consumer) was made,
//! for `--metrics`: Prometheus wants counters that only grow and a
//! cumulative histogram, and computes rates itself. They are atomics:
//! recording one costs a few relaxed additions, no lock.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Seconds of history kept.
pub const WINDOW_SECS: u64 = 120;
/// What `ps`'s rate averages over: short, so it falls to 0 within seconds
/// of the last request instead of trailing for a long window.
pub const RATE_WINDOW: Duration = Duration::from_secs(3);
/// Latency buckets: bucket i holds latencies below 2^((i+1)/4) microseconds.
const LAT_BUCKETS: usize = 128;

#[derive(Clone)]
struct Bucket {
    second: u64,
    requests: u64,
    errors: u64,
    hist: [u32; LAT_BUCKETS],
}

impl Bucket {
    fn empty(second: u64) -> Bucket {
        Bucket {
            second,
            requests: 0,
            errors: 0,
            hist: [0; LAT_BUCKETS],
        }
    }
}

/// What a window says about an app.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Snapshot {
    pub requests: u64,
    pub errors: u64,
    /// errors / requests, 0 with no requests.
    pub error_rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// requests per second over the window.
    pub rps: f64,
}

pub struct Window {
    start: Instant,
    buckets: Mutex<Vec<Bucket>>,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            start: Instant::now(),
            buckets: Mutex::new(Vec::new()),
        }
    }
}

fn bucket_of(latency: Duration) -> usize {
    let us = latency.as_micros().max(1) as f64;
    ((us.log2() * 4.0) as usize).min(LAT_BUCKETS - 1)
}

fn upper_ms(i: usize) -> f64 {
    2f64.powf((i + 1) as f64 / 4.0) / 1000.0
}

impl Snapshot {
    /// As a health rule (or a canary's gate) reads it: latency and error
    /// rate missing without requests; restarts are counted elsewhere.
    pub fn rule_metrics(&self) -> schema::expr::Metrics {
        let some = |x: f64| (self.requests > 0).then_some(x);
        schema::expr::Metrics {
            requests: self.requests,
            errors: self.errors,
            error_rate: some(self.error_rate),
            p50_ms: some(self.p50_ms),
            p99_ms: some(self.p99_ms),
            restarts: 0,
        }
    }

    /// As `ps` shows it.
    pub fn stats(&self) -> schema::RequestStats {
        schema::RequestStats {
            requests: self.requests,
            errors: self.errors,
            error_rate: self.error_rate,
            p50_ms: self.p50_ms,
            p99_ms: self.p99_ms,
            errors_per_s: 0.0,
        }
    }
}

impl Window {
    /// `ps`'s figures: the rate over [`RATE_WINDOW`], the rest over the
    /// last minute.
    pub fn ps(&self) -> (f64, schema::RequestStats) {
        let recent = self.snapshot(RATE_WINDOW);
        let minute = self.snapshot(Duration::from_secs(schema::RequestStats::WINDOW_S));
        let mut stats = minute.stats();
        stats.errors_per_s = if recent.requests == 0 {
            0.0
        } else {
            recent.rps * recent.error_rate
        };
        (recent.rps, stats)
    }

    fn now_second(&self) -> u64 {
        self.start.elapsed().as_secs()
    }

    /// Records one finished request.
    pub fn record(&self, status: u16, latency: Duration) {
        let now = self.now_second();
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if b.last().is_none_or(|last| last.second != now) {
            b.push(Bucket::empty(now));
            let oldest = now.saturating_sub(WINDOW_SECS);
            b.retain(|x| x.second >= oldest);
        }
        if let Some(cur) = b.last_mut() {
            cur.requests += 1;
            if status >= 500 {
                cur.errors += 1;
            }
            cur.hist[bucket_of(latency)] += 1;
        }
    }

    /// The window's figures over the last `over` (at most [`WINDOW_SECS`]).
    pub fn snapshot(&self, over: Duration) -> Snapshot {
        let now = self.now_second();
        let secs = over.as_secs().clamp(1, WINDOW_SECS);
        let from = now.saturating_sub(secs - 1);
        let b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let mut s = Snapshot::default();
        let mut hist = [0u64; LAT_BUCKETS];
        for x in b.iter().filter(|x| x.second >= from) {
            s.requests += x.requests;
            s.errors += x.errors;
            for (h, v) in hist.iter_mut().zip(x.hist.iter()) {
                *h += u64::from(*v);
            }
        }
        if s.requests > 0 {
            s.error_rate = s.errors as f64 / s.requests as f64;
            let pct = |p: f64| {
                let want = ((s.requests as f64) * p).ceil().max(1.0) as u64;
                let mut seen = 0;
                for (i, n) in hist.iter().enumerate() {
                    seen += n;
                    if seen >= want {
                        return upper_ms(i);
                    }
                }
                upper_ms(LAT_BUCKETS - 1)
            };
            s.p50_ms = pct(0.50);
            s.p99_ms = pct(0.99);
        }
        // Seconds actually covered, so a young window does not under-report.
        let covered = (now - from + 1)
            .min(self.start.elapsed().as_secs() + 1)
            .max(1);
        s.rps = s.requests as f64 / covered as f64;
        s
    }
}

/// Upper bounds (seconds) of the request latency histogram `--metrics`
/// serves: a millisecond to an http app's default 30 s deadline.
pub const LATENCY_BOUNDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// An http app's answers since its route was made: by status class, and
/// their latency.
#[derive(Debug)]
pub struct Totals {
    /// 2xx (and below), 3xx, 4xx, 5xx (and above).
    classes: [AtomicU64; 4],
    pub latency: prom::Histogram,
}

/// The status classes [`Totals`] counts, in order.
pub const CLASSES: [&str; 4] = ["2xx", "3xx", "4xx", "5xx"];

impl Default for Totals {
    fn default() -> Totals {
        Totals {
            classes: Default::default(),
            latency: prom::Histogram::new(LATENCY_BOUNDS),
        }
    }
}

impl Totals {
    /// Counts one answered request.
    pub fn record(&self, status: u16, latency: Duration) {
        let class = match status {
            0..=299 => 0,
            300..=399 => 1,
            400..=499 => 2,
            _ => 3,
        };
        self.classes[class].fetch_add(1, Ordering::Relaxed);
        self.latency.observe(latency);
    }

    /// Requests answered per class of [`CLASSES`].
    pub fn classes(&self) -> [u64; 4] {
        std::array::from_fn(|i| self.classes[i].load(Ordering::Relaxed))
    }
}

/// A message app's handling on this host: the window health rules and `ps`
/// read, and totals since hostd started.
#[derive(Default)]
pub struct MessageMetrics {
    pub window: Window,
    pub handled: AtomicU64,
    pub failed: AtomicU64,
    pub dead_lettered: AtomicU64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_error_rates_come_from_the_window() {
        let w = Window::default();
        for i in 0..99 {
            w.record(if i < 9 { 503 } else { 200 }, Duration::from_millis(2));
        }
        w.record(200, Duration::from_millis(400));
        let s = w.snapshot(Duration::from_secs(30));
        assert_eq!(s.requests, 100);
        assert_eq!(s.errors, 9);
        assert!((s.error_rate - 0.09).abs() < 1e-9);
        assert!((2.0..2.5).contains(&s.p50_ms), "{s:?}");
        assert!(
            (2.0..2.5).contains(&s.p99_ms),
            "p99 of 100 requests is the 99th: {s:?}"
        );
        w.record(200, Duration::from_millis(400));
        let s = w.snapshot(Duration::from_secs(30));
        assert!((400.0..480.0).contains(&s.p99_ms), "{s:?}");
        assert_eq!(
            Window::default().snapshot(Duration::from_secs(5)),
            Snapshot::default()
        );
    }

    #[test]
    fn totals_count_status_classes_and_latency() {
        let t = Totals::default();
        for s in [200, 204, 301, 404, 499, 500, 503, 101] {
            t.record(s, Duration::from_millis(3));
        }
        assert_eq!(t.classes(), [3, 1, 2, 2]);
        let h = t.latency.snapshot();
        assert_eq!(h.count, 8);
        assert_eq!(h.buckets().nth(2), Some((0.005, 8)));
    }
}
