//! Per-operation latency: an exact count and mean, and percentiles from a bounded sample.

use std::time::Duration;

/// Latencies of one kind of operation, recorded by one task.
///
/// Every operation counts towards the mean; only every `stride`-th is kept for percentiles,
/// so memory stays bounded however many operations run.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// Operations recorded.
    count: u64,
    /// Their total latency.
    total: Duration,
    /// Keep one operation in this many.
    stride: u64,
    /// The kept latencies.
    samples: Vec<Duration>,
}

impl Recorder {
    /// A recorder expecting about `expected` operations, keeping at most about `max_samples`.
    pub fn new(expected: u64, max_samples: u64) -> Self {
        let max_samples = max_samples.max(1);
        let stride = expected.div_ceil(max_samples).max(1);
        let capacity = expected.div_ceil(stride).min(max_samples);
        Self {
            count: 0,
            total: Duration::ZERO,
            stride,
            samples: Vec::with_capacity(usize::try_from(capacity).unwrap_or(0)),
        }
    }

    /// Records one operation.
    pub fn record(&mut self, latency: Duration) {
        if self.count.is_multiple_of(self.stride) {
            self.samples.push(latency);
        }
        self.count += 1;
        self.total += latency;
    }

    /// The number of operations recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Adds another task's recordings to these.
    pub fn merge(&mut self, other: Recorder) {
        self.count += other.count;
        self.total += other.total;
        self.samples.extend(other.samples);
    }

    /// The mean and percentiles of what was recorded; `None` when nothing was.
    pub fn summary(mut self) -> Option<Summary> {
        if self.count == 0 || self.samples.is_empty() {
            return None;
        }
        self.samples.sort_unstable();
        let count = u32::try_from(self.count).ok();
        let mean = match count {
            Some(count) => self.total / count,
            None => Duration::from_secs_f64(self.total.as_secs_f64() / self.count as f64),
        };
        Some(Summary {
            count: self.count,
            mean,
            p50: percentile(&self.samples, 0.50)?,
            p99: percentile(&self.samples, 0.99)?,
            max: *self.samples.last()?,
        })
    }
}

/// Latency figures of one kind of operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Operations.
    pub count: u64,
    /// Mean latency over all operations.
    pub mean: Duration,
    /// Median latency, from the sample.
    pub p50: Duration,
    /// 99th percentile latency, from the sample.
    pub p99: Duration,
    /// Largest sampled latency.
    pub max: Duration,
}

/// The nearest-rank percentile `p` (between 0 and 1) of sorted `samples`.
fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.saturating_sub(1)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let sorted: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile(&sorted, 0.5), Some(ms(50)));
        assert_eq!(percentile(&sorted, 0.99), Some(ms(99)));
        assert_eq!(percentile(&sorted, 1.0), Some(ms(100)));
        assert_eq!(percentile(&sorted, 0.0), Some(ms(1)));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn summary_of_recorded_latencies() -> Result<(), &'static str> {
        let mut recorder = Recorder::new(100, 1000);
        for n in (1..=100).rev() {
            recorder.record(ms(n));
        }
        let summary = recorder.summary().ok_or("no summary")?;
        assert_eq!(summary.count, 100);
        assert_eq!(summary.mean, Duration::from_micros(50_500));
        assert_eq!(
            (summary.p50, summary.p99, summary.max),
            (ms(50), ms(99), ms(100))
        );
        Ok(())
    }

    #[test]
    fn sampling_keeps_the_count_and_mean_exact() -> Result<(), &'static str> {
        let mut recorder = Recorder::new(10_000, 100);
        for _ in 0..10_000 {
            recorder.record(ms(2));
        }
        assert!(recorder.samples.len() <= 100);
        let summary = recorder.summary().ok_or("no summary")?;
        assert_eq!((summary.count, summary.mean), (10_000, ms(2)));
        Ok(())
    }

    #[test]
    fn merged_recorders_add_up() -> Result<(), &'static str> {
        let mut a = Recorder::new(10, 10);
        let mut b = Recorder::new(10, 10);
        a.record(ms(1));
        b.record(ms(3));
        a.merge(b);
        assert_eq!(a.count(), 2);
        let summary = a.summary().ok_or("no summary")?;
        assert_eq!(summary.mean, ms(2));
        Ok(())
    }

    #[test]
    fn nothing_recorded_no_summary() {
        assert_eq!(Recorder::new(10, 10).summary(), None);
    }
}
