//! Per-operation latency: every operation recorded in an HDR histogram (3 significant
//! digits, so percentiles are within 0.1%), with the exact count, mean and maximum beside it.

use std::time::Duration;

use hdrhistogram::Histogram;

/// The longest latency the histogram tells apart; longer ones count as this long in the
/// percentiles (the exact maximum is kept aside).
const HIGHEST: Duration = Duration::from_secs(3600);

/// Latencies of one kind of operation, recorded by one task.
#[derive(Debug, Clone)]
pub struct Recorder {
    histogram: Histogram<u64>,
    /// Their exact total, for the mean.
    total: Duration,
    /// The exact largest.
    max: Duration,
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> anyhow::Result<Self> {
        let highest = u64::try_from(HIGHEST.as_nanos())?;
        Ok(Self {
            histogram: Histogram::new_with_bounds(1, highest, 3)?,
            total: Duration::ZERO,
            max: Duration::ZERO,
        })
    }

    /// Records one operation.
    pub fn record(&mut self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.histogram.saturating_record(nanos.max(1));
        self.total += latency;
        self.max = self.max.max(latency);
    }

    /// The number of operations recorded.
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// Adds another task's recordings to these.
    pub fn merge(&mut self, other: Recorder) {
        // Same bounds on both sides, so adding cannot fail; if it did, the counts would show.
        let _ = self.histogram.add(&other.histogram);
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// The latency at each of a series of quantiles, closer together towards the tail, up to
    /// the largest recorded: `(quantile, latency)` pairs, for plotting a distribution.
    pub fn quantiles(&self) -> Vec<(f64, Duration)> {
        self.histogram
            .iter_quantiles(4)
            .map(|step| {
                let latency = Duration::from_nanos(step.value_iterated_to());
                (step.quantile_iterated_to(), latency)
            })
            .collect()
    }

    /// The mean and percentiles of what was recorded; `None` when nothing was.
    pub fn summary(&self) -> Option<Summary> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let at = |q: f64| Duration::from_nanos(self.histogram.value_at_quantile(q));
        Some(Summary {
            count,
            mean: Duration::from_secs_f64(self.total.as_secs_f64() / count as f64),
            p50: at(0.50),
            p99: at(0.99),
            p999: at(0.999),
            max: self.max,
        })
    }
}

/// Latency figures of one kind of operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Operations.
    pub count: u64,
    /// Mean latency, exact.
    pub mean: Duration,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
    /// 99.9th percentile latency.
    pub p999: Duration,
    /// Largest latency, exact.
    pub max: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Within the histogram's 0.1% precision.
    fn close(a: Duration, b: Duration) -> bool {
        a.as_secs_f64().max(b.as_secs_f64()) <= a.as_secs_f64().min(b.as_secs_f64()) * 1.001
    }

    #[test]
    fn summary_of_recorded_latencies() -> Result<(), &'static str> {
        let mut recorder = Recorder::new().map_err(|_| "no recorder")?;
        for n in (1..=1000).rev() {
            recorder.record(ms(n));
        }
        let summary = recorder.summary().ok_or("no summary")?;
        assert_eq!(summary.count, 1000);
        assert_eq!(summary.mean, Duration::from_micros(500_500));
        assert!(close(summary.p50, ms(500)), "{summary:?}");
        assert!(close(summary.p99, ms(990)), "{summary:?}");
        assert!(close(summary.p999, ms(999)), "{summary:?}");
        assert_eq!(summary.max, ms(1000), "the maximum is exact");
        Ok(())
    }

    #[test]
    fn every_operation_counts_however_many() -> Result<(), &'static str> {
        let mut recorder = Recorder::new().map_err(|_| "no recorder")?;
        for _ in 0..100_000 {
            recorder.record(ms(2));
        }
        recorder.record(ms(70));
        let summary = recorder.summary().ok_or("no summary")?;
        assert_eq!(summary.count, 100_001);
        assert_eq!(
            summary.max,
            ms(70),
            "a single slow operation is not sampled away"
        );
        Ok(())
    }

    #[test]
    fn merged_recorders_add_up() -> Result<(), &'static str> {
        let mut a = Recorder::new().map_err(|_| "no recorder")?;
        let mut b = Recorder::new().map_err(|_| "no recorder")?;
        a.record(ms(1));
        b.record(ms(3));
        a.merge(b);
        assert_eq!(a.count(), 2);
        let summary = a.summary().ok_or("no summary")?;
        assert_eq!(summary.mean, ms(2));
        assert_eq!(summary.max, ms(3));
        Ok(())
    }

    #[test]
    fn quantiles_rise_to_the_largest() -> anyhow::Result<()> {
        let mut recorder = Recorder::new()?;
        for n in 1..=1000 {
            recorder.record(ms(n));
        }
        let curve = recorder.quantiles();
        assert!(curve
            .windows(2)
            .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        let (last_quantile, last_latency) = curve.last().copied().unwrap_or_default();
        assert_eq!(last_quantile, 1.0);
        assert!(close(last_latency, ms(1000)), "{last_latency:?}");
        assert!(Recorder::new()?.quantiles().is_empty());
        Ok(())
    }

    #[test]
    fn nothing_recorded_no_summary() -> anyhow::Result<()> {
        assert_eq!(Recorder::new()?.summary(), None);
        Ok(())
    }
}
