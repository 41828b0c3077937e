//! Statistics: atomic counters on the hot paths, and the [`Stats`] snapshot built from them.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Error;
use crate::journal::RecoveryReport;

/// Counters updated as the store works. Relaxed ordering: they are statistics, not
/// synchronisation.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub backend_reads: AtomicU64,
    pub read_requests: AtomicU64,
    pub mutations: AtomicU64,
    pub items_written: AtomicU64,
    pub write_requests: AtomicU64,
    pub retries: AtomicU64,
    pub throttles: AtomicU64,
    pub rejected_writes: AtomicU64,
    pub conflicts: AtomicU64,
    pub stream_records: AtomicU64,
    pub stream_replaced: AtomicU64,
    pub stream_invalidated: AtomicU64,
    pub stream_errors: AtomicU64,
    pub stream_resets: AtomicU64,
    /// The follower's lag at its last poll, in milliseconds.
    pub stream_lag_ms: AtomicU64,
}

impl Counters {
    pub(crate) fn add(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts a request about to be repeated after `err`.
    pub(crate) fn retry_after(&self, err: &Error) {
        self.add(&self.retries, 1);
        if err.is_throttle() {
            self.add(&self.throttles, 1);
        }
    }

    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// A snapshot of a store's activity since it was opened, and of what it holds now.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// Lookups answered from memory.
    pub hits: u64,
    /// Lookups that needed the backend (their own read, or one they waited for).
    pub misses: u64,
    /// Keys read from the backend.
    pub backend_reads: u64,
    /// Read requests sent to the backend (`GetItem` and `BatchGetItem`, retries included).
    pub read_requests: u64,
    /// Mutations acknowledged.
    pub mutations: u64,
    /// Item writes the backend accepted. Fewer than `mutations` when writes coalesced.
    pub items_written: u64,
    /// `BatchWriteItem` requests sent, retries included.
    pub write_requests: u64,
    /// Requests repeated after throttling, unprocessed items or transient failures.
    pub retries: u64,
    /// Requests the backend throttled (DynamoDB's throttling error codes, or HTTP 429); each
    /// was retried and is counted in `retries` too. Unprocessed items and keys are DynamoDB's
    /// quieter way of throttling a batch: they count as retries only.
    pub throttles: u64,
    /// Writes the backend refused for good; each is logged with its key and reason.
    pub rejected_writes: u64,
    /// Versioned mode: writes that lost the race to another writer, whose pending state was
    /// dropped for the winner's (see [`Conflict`](crate::Conflict)).
    pub conflicts: u64,
    /// Stream following: records read from the table's stream, this store's own writes
    /// included.
    pub stream_records: u64,
    /// Stream following: clean entries replaced by another writer's newer state.
    pub stream_replaced: u64,
    /// Stream following: clean entries dropped (to be read again) because another writer
    /// changed them and the record could not be proven newer than the cached state.
    pub stream_invalidated: u64,
    /// Stream following: failed stream requests (retried).
    pub stream_errors: u64,
    /// Stream following: times the follower lost its place in the stream and dropped every
    /// clean entry.
    pub stream_resets: u64,
    /// Stream following: how far behind the table the follower was at its last poll, zero when
    /// it found nothing new, otherwise the age of the newest record it applied (DynamoDB
    /// stamps records to the second). `None` when the store does not follow a stream.
    pub stream_lag: Option<std::time::Duration>,
    /// Keys with acknowledged mutations not yet in the backend.
    pub pending: usize,
    /// Bytes held by pending keys.
    pub pending_bytes: u64,
    /// Clean entries (present or known absent) in the cache.
    pub cached_entries: usize,
    /// Bytes held by clean entries; bounded by the cache capacity.
    pub cached_bytes: u64,
    /// Bytes of journal segments on disk (0 without a journal).
    pub journal_bytes: u64,
    /// Journal segments on disk.
    pub journal_segments: usize,
    /// Writes recorded in the journal's dead-letter file, ever.
    pub dead_letters: u64,
    /// What recovering the journal found when the store opened.
    pub recovery: Option<RecoveryReport>,
}

impl Stats {
    /// Hits over lookups, between 0 and 1 (0 when nothing was looked up).
    pub fn hit_ratio(&self) -> f64 {
        let lookups = self.hits + self.misses;
        if lookups == 0 {
            0.0
        } else {
            self.hits as f64 / lookups as f64
        }
    }
}
