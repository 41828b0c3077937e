//! How many read requests a store keeps in flight: up to the configured bound, lowered while
//! the backend's latency grows with the requests it is given.
//!
//! A backend that serves requests in parallel (DynamoDB, across its partitions) answers in
//! about the same time however many are in flight: the limit stays at its bound, and every
//! miss below it is read at once. A backend that serves them one after another (a single
//! process such as dynalite or DynamoDB Local, or a client short of CPU) answers more slowly
//! the more it is given, so further requests buy little throughput and mostly queueing: the
//! limit falls, more misses wait for the next batch, and each request carries more keys.
//!
//! The rule follows TCP Vegas and its descendants in concurrency limiting: the latency of the
//! backend at rest is the least one seen recently (over the last two windows of [`WINDOW`]
//! requests, so that it follows a backend whose speed changes), for requests of about the same
//! number of keys (a `BatchGetItem` of 100 keys takes longer than a `GetItem` without any
//! queue). A request that took more than [`TOLERANCE`] times that waited in a queue somewhere,
//! and lowers the limit by a tenth; any other request raises it by the inverse of the limit,
//! that is by one request per round of requests, up to the bound. The limit never falls below
//! 1, so a miss that finds nothing in flight is always read at once.

use std::time::Duration;

/// A request this many times slower than the backend at rest was queued.
const TOLERANCE: u32 = 2;

/// The factor the limit is multiplied by after a queued request.
const DECREASE: f64 = 0.9;

/// The requests over which the least latency is remembered.
const WINDOW: u32 = 256;

/// Requests are compared with requests of their size class: 1 key, 2 to 3, 4 to 7, ... 64 to
/// 100 (a batch read's most).
const SIZE_CLASSES: usize = 7;

/// The size class of a request of `keys` keys.
fn size_class(keys: usize) -> usize {
    (keys.max(1).ilog2() as usize).min(SIZE_CLASSES - 1)
}

/// The read requests a store allows in flight.
#[derive(Debug)]
pub(super) struct Limit {
    bound: usize,
    adaptive: bool,
    current: f64,
    /// The least latency of each size class in the current window, and in the one before it.
    least: [Option<Duration>; SIZE_CLASSES],
    least_before: [Option<Duration>; SIZE_CLASSES],
    samples: u32,
}

impl Limit {
    /// A limit of `bound` requests, lowered under load when `adaptive`; at least 1.
    pub(super) fn new(bound: usize, adaptive: bool) -> Self {
        let bound = bound.max(1);
        Self {
            bound,
            adaptive,
            current: bound as f64,
            least: [None; SIZE_CLASSES],
            least_before: [None; SIZE_CLASSES],
            samples: 0,
        }
    }

    /// The read requests allowed in flight now.
    pub(super) fn get(&self) -> usize {
        // `current` stays within 1 ..= bound; the cast truncates toward the lower limit.
        (self.current as usize).clamp(1, self.bound)
    }

    /// The most read requests allowed in flight, whatever the backend's latency.
    pub(super) fn bound(&self) -> usize {
        self.bound
    }

    /// Learns from a read request of `keys` keys that took `latency`, retries included.
    pub(super) fn completed(&mut self, keys: usize, latency: Duration) {
        if !self.adaptive {
            return;
        }
        self.samples += 1;
        if self.samples >= WINDOW {
            self.samples = 0;
            self.least_before = std::mem::take(&mut self.least);
        }
        let class = size_class(keys);
        let least = &mut self.least[class];
        *least = Some(least.map_or(latency, |least| least.min(latency)));
        let at_rest = [*least, self.least_before[class]]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(latency);
        let bound = self.bound as f64;
        self.current = if latency > at_rest.saturating_mul(TOLERANCE) {
            (self.current * DECREASE).max(1.0)
        } else {
            (self.current + 1.0 / self.current).min(bound)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_backend_whose_latency_holds_keeps_the_bound() {
        let mut limit = Limit::new(8, true);
        for jitter in (0..1000).map(|i| MS * (5 + i % 4)) {
            limit.completed(1, jitter);
            assert_eq!(limit.get(), 8);
        }
    }

    #[test]
    fn latency_that_grows_with_load_lowers_the_limit_to_one_at_least() {
        let mut limit = Limit::new(8, true);
        limit.completed(1, MS);
        for _ in 0..100 {
            // A backend serving one request at a time: each waits for the others.
            limit.completed(1, MS * limit.get() as u32 * 3);
        }
        assert_eq!(limit.get(), 1);
        // Once the queue is gone, the limit climbs back to the bound, a request per round.
        let mut completions = 0;
        while limit.get() < 8 {
            limit.completed(1, MS);
            completions += 1;
        }
        assert!((20..40).contains(&completions), "{completions}");
    }

    #[test]
    fn the_latency_at_rest_follows_a_backend_that_slows_down() {
        let mut limit = Limit::new(8, true);
        limit.completed(1, MS);
        // The backend is ten times slower from now on, whatever its load: after two windows
        // that is its latency at rest, and the limit is back at its bound.
        for _ in 0..2 * WINDOW + 100 {
            limit.completed(1, MS * 10);
        }
        assert_eq!(limit.get(), 8);
    }

    #[test]
    fn a_larger_request_is_compared_with_requests_of_its_size() {
        let mut limit = Limit::new(8, true);
        limit.completed(1, MS);
        // Full batches take 20 times a single read, at rest: that is no queue.
        for _ in 0..100 {
            limit.completed(100, MS * 20);
            limit.completed(1, MS);
        }
        assert_eq!(limit.get(), 8);
        assert_eq!(size_class(1), 0);
        assert_eq!(size_class(3), 1);
        assert_eq!(size_class(64), 6);
        assert_eq!(size_class(100), 6);
        assert_eq!(size_class(0), 0);
    }

    #[test]
    fn a_fixed_limit_ignores_latency() {
        let mut limit = Limit::new(4, false);
        limit.completed(1, MS);
        for _ in 0..100 {
            limit.completed(1, MS * 100);
        }
        assert_eq!(limit.get(), 4);
        assert_eq!(Limit::new(0, true).get(), 1);
    }
}
