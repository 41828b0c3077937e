//! Statistics: atomic counters on the hot paths, and the [`Stats`] snapshot built from them.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

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
///
/// # Counters and gauges
///
/// Counters only grow while the store is open: `hits`, `misses`, `backend_reads`,
/// `read_requests`, `mutations`, `items_written`, `write_requests`, `retries`, `throttles`,
/// `rejected_writes`, `conflicts`, the `stream_*` counts and `dead_letters`. The other fields
/// are gauges, what the store holds at the time of the snapshot: `stream_lag`, `pending`,
/// `pending_bytes`, `cached_entries`, `cached_bytes`, `journal_bytes`, `journal_segments`, and
/// `recovery` (fixed when the store opened). [`since`](Self::since) subtracts the counters of
/// an earlier snapshot and keeps the gauges.
///
/// Serializes (with `serde`) as a map of the field names; durations as `secs` and `nanos`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
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
    /// The activity between `earlier` and this snapshot: each counter less its value in
    /// `earlier` (zero where `earlier` is the larger, as for a snapshot of another store), and
    /// every gauge as it is in `self`.
    ///
    /// ```
    /// # async fn example(store: quickstore::Store) -> quickstore::Result<()> {
    /// let before = store.stats();
    /// // ... a workload ...
    /// let during = store.stats().since(&before);
    /// println!("{:.1}% hits, {} pending", during.hit_ratio() * 100.0, during.pending);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn since(&self, earlier: &Stats) -> Stats {
        let delta = |now: u64, then: u64| now.saturating_sub(then);
        Stats {
            hits: delta(self.hits, earlier.hits),
            misses: delta(self.misses, earlier.misses),
            backend_reads: delta(self.backend_reads, earlier.backend_reads),
            read_requests: delta(self.read_requests, earlier.read_requests),
            mutations: delta(self.mutations, earlier.mutations),
            items_written: delta(self.items_written, earlier.items_written),
            write_requests: delta(self.write_requests, earlier.write_requests),
            retries: delta(self.retries, earlier.retries),
            throttles: delta(self.throttles, earlier.throttles),
            rejected_writes: delta(self.rejected_writes, earlier.rejected_writes),
            conflicts: delta(self.conflicts, earlier.conflicts),
            stream_records: delta(self.stream_records, earlier.stream_records),
            stream_replaced: delta(self.stream_replaced, earlier.stream_replaced),
            stream_invalidated: delta(self.stream_invalidated, earlier.stream_invalidated),
            stream_errors: delta(self.stream_errors, earlier.stream_errors),
            stream_resets: delta(self.stream_resets, earlier.stream_resets),
            dead_letters: delta(self.dead_letters, earlier.dead_letters),
            stream_lag: self.stream_lag,
            pending: self.pending,
            pending_bytes: self.pending_bytes,
            cached_entries: self.cached_entries,
            cached_bytes: self.cached_bytes,
            journal_bytes: self.journal_bytes,
            journal_segments: self.journal_segments,
            recovery: self.recovery.clone(),
        }
    }

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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn counters(n: u64) -> Stats {
        Stats {
            hits: n,
            misses: 2 * n,
            backend_reads: 3 * n,
            read_requests: 4 * n,
            mutations: 5 * n,
            items_written: 6 * n,
            write_requests: 7 * n,
            retries: 8 * n,
            throttles: 9 * n,
            rejected_writes: 10 * n,
            conflicts: 11 * n,
            stream_records: 12 * n,
            stream_replaced: 13 * n,
            stream_invalidated: 14 * n,
            stream_errors: 15 * n,
            stream_resets: 16 * n,
            dead_letters: 17 * n,
            ..Stats::default()
        }
    }

    fn gauges(mut stats: Stats, n: u64) -> Stats {
        stats.stream_lag = Some(Duration::from_millis(n));
        stats.pending = n as usize;
        stats.pending_bytes = 100 * n;
        stats.cached_entries = 2 * n as usize;
        stats.cached_bytes = 200 * n;
        stats.journal_bytes = 300 * n;
        stats.journal_segments = 3 * n as usize;
        stats.recovery = Some(RecoveryReport {
            records: n,
            ..RecoveryReport::default()
        });
        stats
    }

    #[test]
    fn since_subtracts_counters_and_keeps_gauges() {
        let earlier = gauges(counters(1), 7);
        let now = gauges(counters(3), 5);
        // Every counter moved by twice its factor; every gauge is `now`'s.
        assert_eq!(now.since(&earlier), gauges(counters(2), 5));
        assert_eq!(now.since(&now), gauges(counters(0), 5));
        assert_eq!(now.since(&Stats::default()), now);
    }

    #[test]
    fn since_saturates_at_zero() {
        let small = gauges(counters(1), 1);
        let large = counters(4);
        assert_eq!(small.since(&large), gauges(counters(0), 1));
    }

    #[test]
    fn stats_serialize_as_maps_of_their_fields() -> serde_json::Result<()> {
        let stats = gauges(counters(1), 1500);
        let json = serde_json::to_value(&stats)?;
        assert_eq!(json["hits"], 1);
        assert_eq!(json["rejected_writes"], 10);
        assert_eq!(json["pending"], 1500);
        assert_eq!(json["stream_lag"]["secs"], 1);
        assert_eq!(json["stream_lag"]["nanos"], 500_000_000);
        assert_eq!(json["recovery"]["records"], 1500);
        assert_eq!(
            serde_json::to_value(Stats::default())?["stream_lag"],
            serde_json::Value::Null
        );
        Ok(())
    }
}
