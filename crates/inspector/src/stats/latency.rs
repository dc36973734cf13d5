//! Latency percentiles over a trailing window of samples.

use std::collections::VecDeque;

/// The value at quantile `q` (0..=1) of `sorted` (ascending), nearest-rank method: the
/// smallest value with at least `q` of the samples at or below it. `None` when empty.
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Latency samples over a trailing span of time (or all of them), bounded in number.
#[derive(Debug, Clone)]
pub struct LatencyWindow {
    max_age_ms: Option<i64>,
    capacity: usize,
    /// (when the anomaly was written, latency in ms), in arrival order.
    samples: VecDeque<(i64, f64)>,
}

/// p50, p95, p99 of a set of latencies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    /// Median, ms.
    pub p50: f64,
    /// 95th percentile, ms.
    pub p95: f64,
    /// 99th percentile, ms.
    pub p99: f64,
    /// Samples they were computed from.
    pub count: usize,
}

impl LatencyWindow {
    /// Samples from the last `max_age_ms` (all with `None`), at most `capacity`.
    pub fn new(max_age_ms: Option<i64>, capacity: usize) -> Self {
        Self {
            max_age_ms,
            capacity: capacity.max(1),
            samples: VecDeque::new(),
        }
    }

    /// Adds a latency observed at `at_ms`.
    pub fn add(&mut self, at_ms: i64, latency_ms: f64) {
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back((at_ms, latency_ms));
    }

    /// Drops what is older than the window at `now_ms`.
    pub fn prune(&mut self, now_ms: i64) {
        if let Some(age) = self.max_age_ms {
            while self
                .samples
                .front()
                .is_some_and(|&(at, _)| at < now_ms - age)
            {
                self.samples.pop_front();
            }
        }
    }

    /// The percentiles of the samples in the window, `None` when there are none.
    pub fn percentiles(&self) -> Option<Percentiles> {
        let mut values: Vec<f64> = self.samples.iter().map(|&(_, l)| l).collect();
        values.sort_by(f64::total_cmp);
        Some(Percentiles {
            p50: percentile(&values, 0.50)?,
            p95: percentile(&values, 0.95)?,
            p99: percentile(&values, 0.99)?,
            count: values.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.5), Some(50.0));
        assert_eq!(percentile(&values, 0.95), Some(95.0));
        assert_eq!(percentile(&values, 0.99), Some(99.0));
        assert_eq!(percentile(&values, 1.0), Some(100.0));
        assert_eq!(percentile(&values, 0.0), Some(1.0));
        assert_eq!(percentile(&[7.0], 0.99), Some(7.0));
        assert_eq!(percentile(&[], 0.5), None);
        // 3 values: the median is the second, p95 and p99 the third.
        assert_eq!(percentile(&[1.0, 2.0, 30.0], 0.5), Some(2.0));
        assert_eq!(percentile(&[1.0, 2.0, 30.0], 0.95), Some(30.0));
    }

    #[test]
    fn the_latency_window_forgets_old_samples_and_keeps_at_most_its_capacity() {
        let mut window = LatencyWindow::new(Some(60_000), 1000);
        window.add(0, 500.0);
        for i in 0..10 {
            window.add(100_000 + i, f64::from(i as i32));
        }
        window.prune(120_000);
        let p = window.percentiles().unwrap();
        assert_eq!((p.count, p.p50, p.p99), (10, 4.0, 9.0));
        window.prune(1_000_000);
        assert_eq!(window.percentiles(), None);

        let mut bounded = LatencyWindow::new(None, 3);
        for latency in [100.0, 1.0, 2.0, 3.0] {
            bounded.add(0, latency);
        }
        bounded.prune(i64::MAX);
        let p = bounded.percentiles().unwrap();
        assert_eq!((p.count, p.p99), (3, 3.0), "the oldest (100) went first");
    }
}
