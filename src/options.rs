//! The options a store runs with, as plain data; [`StoreBuilder`](crate::StoreBuilder) sets
//! them and documents each default.

use std::sync::Arc;
use std::time::Duration;

use crate::retry::RetryPolicy;

/// The smallest bound on pending bytes: room for the largest item, its key and overhead.
pub(crate) const MIN_PENDING_BYTES: u64 = 1024 * 1024;

/// What a mutation does when the writes waiting for the backend fill the store (see
/// [`StoreBuilder::max_pending`](crate::StoreBuilder::max_pending) and
/// [`max_pending_bytes`](crate::StoreBuilder::max_pending_bytes)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backpressure {
    /// Fail at once with [`Error::TooManyRequests`](crate::Error::TooManyRequests).
    Fail,
    /// Wait for room, as a bounded channel's `send().await` does, for at most this long; then
    /// fail with `TooManyRequests`. Room is made as the flusher's writes land.
    Wait(Duration),
}

/// The options a store runs with.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub shards: usize,
    pub cache_capacity: u64,
    pub flush_interval: Duration,
    pub batch_threshold: usize,
    pub max_in_flight_batches: usize,
    pub max_pending: usize,
    pub max_pending_bytes: u64,
    pub backpressure: Backpressure,
    pub consistent_reads: bool,
    pub partition_key: Arc<str>,
    pub max_staleness: Option<Duration>,
    /// Versioned mode's version attribute, when on.
    pub version_attribute: Option<Arc<str>>,
    pub retry: RetryPolicy,
    /// Stream following: the pause after a poll that found nothing.
    pub stream_poll_interval: Duration,
    /// Stream following: how far apart the store's clock and the stream's may be.
    pub stream_clock_margin: Duration,
    /// The value of the `store` label on the store's metrics, if any.
    pub metrics_label: Option<Arc<str>>,
    /// Misses that arrive while `max_reads_in_flight` reads are in flight share
    /// `BatchGetItem`s.
    pub batch_reads: bool,
    /// Read requests in flight for loads before misses queue for a batch.
    pub max_reads_in_flight: usize,
    /// Whether the reads in flight are lowered below `max_reads_in_flight` while the
    /// backend's latency grows with them.
    pub adapt_reads_in_flight: bool,
    /// Where a warm restart's keys are saved at close and read at open, when on.
    pub warm_restart: Option<std::path::PathBuf>,
    /// How long another writer's mark stays in an item after its last delta there.
    pub mark_lifetime: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            shards: 64,
            cache_capacity: 64 * 1024 * 1024,
            flush_interval: Duration::from_millis(100),
            batch_threshold: 100,
            max_in_flight_batches: 8,
            max_pending: 100_000,
            max_pending_bytes: 256 * 1024 * 1024,
            backpressure: Backpressure::Fail,
            consistent_reads: true,
            partition_key: Arc::from("_key"),
            max_staleness: None,
            version_attribute: None,
            retry: RetryPolicy::default(),
            stream_poll_interval: Duration::from_millis(250),
            stream_clock_margin: Duration::from_secs(1),
            metrics_label: None,
            batch_reads: true,
            max_reads_in_flight: 8,
            mark_lifetime: Duration::from_secs(24 * 60 * 60),
            adapt_reads_in_flight: true,
            warm_restart: None,
        }
    }
}

impl Options {
    /// The first option that cannot work, as a sentence.
    pub(crate) fn problem(&self) -> Option<&'static str> {
        let checks = [
            (self.shards == 0, "shards must be at least 1"),
            (
                self.cache_capacity == 0,
                "cache_capacity must be at least 1 byte",
            ),
            (
                self.flush_interval.is_zero(),
                "flush_interval must be longer than zero",
            ),
            (
                self.batch_threshold == 0,
                "batch_threshold must be at least 1",
            ),
            (
                self.max_in_flight_batches == 0,
                "max_in_flight_batches must be at least 1",
            ),
            (
                self.max_reads_in_flight == 0,
                "max_reads_in_flight must be at least 1",
            ),
            (self.max_pending == 0, "max_pending must be at least 1"),
            (
                self.max_pending_bytes < MIN_PENDING_BYTES,
                "max_pending_bytes must be at least 1 MiB, so that any item fits",
            ),
            (
                self.partition_key.is_empty(),
                "partition_key cannot be empty",
            ),
            (
                self.max_staleness.is_some_and(|d| d.is_zero()),
                "max_staleness must be longer than zero",
            ),
            (
                self.stream_poll_interval.is_zero(),
                "stream_poll_interval must be longer than zero",
            ),
            (
                self.mark_lifetime.is_zero(),
                "mark_lifetime must be longer than zero",
            ),
            (
                self.version_attribute.as_deref() == Some(""),
                "the version attribute cannot be empty",
            ),
            (
                self.version_attribute.as_deref() == Some(&*self.partition_key),
                "the version attribute cannot be the partition key",
            ),
        ];
        checks
            .into_iter()
            .find_map(|(bad, message)| bad.then_some(message))
            .or_else(|| self.retry.problem())
    }
}
