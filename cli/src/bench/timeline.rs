//! Throughput over time: operations counted in fixed slices of a run, so that a report can
//! show (and plot) how the rate moved, not only its average.

use std::time::Duration;

/// The width of one slice.
pub const SLICE: Duration = Duration::from_millis(10);

/// Windows a report or plot shows of a run's throughput, at most.
pub const MAX_POINTS: usize = 200;

/// Slices kept at most (a day); later operations count in the last one.
const MAX_SLICES: usize = 24 * 3600 * 100;

/// Operations completed in each [`SLICE`] since a run started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline {
    counts: Vec<u64>,
}

impl Timeline {
    /// Counts one operation completed `since_start` after the run started.
    pub fn record(&mut self, since_start: Duration) {
        let slice = usize::try_from(since_start.as_nanos() / SLICE.as_nanos())
            .unwrap_or(usize::MAX)
            .min(MAX_SLICES - 1);
        if self.counts.len() <= slice {
            self.counts.resize(slice + 1, 0);
        }
        if let Some(count) = self.counts.get_mut(slice) {
            *count += 1;
        }
    }

    /// Adds another task's counts to these.
    pub fn merge(&mut self, other: &Timeline) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
    }

    /// The rate in operations per second over consecutive windows, each a whole number of
    /// slices, as few slices as give at most `max_points` windows; with the window's length.
    /// The last window may be partial, and its rate is over the time it covers.
    pub fn rates(&self, max_points: usize) -> (Duration, Vec<f64>) {
        let per_window = self.counts.len().div_ceil(max_points.max(1)).max(1);
        let window = SLICE * u32::try_from(per_window).unwrap_or(u32::MAX);
        let rates = self
            .counts
            .chunks(per_window)
            .map(|chunk| {
                chunk.iter().sum::<u64>() as f64 / (SLICE * chunk.len() as u32).as_secs_f64()
            })
            .collect();
        (window, rates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_land_in_their_slice() {
        let mut timeline = Timeline::default();
        timeline.record(Duration::ZERO);
        timeline.record(Duration::from_millis(9));
        timeline.record(Duration::from_millis(25));
        assert_eq!(timeline.counts, [2, 0, 1]);
    }

    #[test]
    fn merged_timelines_add_up() {
        let mut a = Timeline::default();
        let mut b = Timeline::default();
        a.record(Duration::from_millis(5));
        b.record(Duration::from_millis(5));
        b.record(Duration::from_millis(45));
        a.merge(&b);
        assert_eq!(a.counts, [2, 0, 0, 0, 1]);
    }

    #[test]
    fn rates_are_per_second_over_windows() {
        let mut timeline = Timeline::default();
        for ms in 0..1000 {
            timeline.record(Duration::from_millis(ms));
        }
        let (window, rates) = timeline.rates(10);
        assert_eq!(window, Duration::from_millis(100));
        assert_eq!(rates.len(), 10);
        assert!(
            rates.iter().all(|&rate| (rate - 1000.0).abs() < 1e-6),
            "{rates:?}"
        );

        // 25 slices into at most 10 windows of 3 slices: the last covers one slice.
        let mut partial = Timeline::default();
        for slice in 0..25 {
            partial.record(SLICE * slice);
        }
        let (window, rates) = partial.rates(10);
        assert_eq!(window, SLICE * 3);
        assert_eq!(rates.len(), 9);
        assert!(
            rates.iter().all(|&rate| (rate - 100.0).abs() < 1e-6),
            "{rates:?}"
        );
    }

    #[test]
    fn an_empty_timeline_has_no_rates() {
        assert_eq!(Timeline::default().rates(10).1, Vec::<f64>::new());
    }
}
