//! Statistics: the counters the store keeps as it works (the read path's in each shard, under
//! the lock it already holds; the others in atomics), and the [`Stats`] snapshot built from them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

use crate::error::Error;
use crate::journal::RecoveryReport;

/// Declares every counter once: its [`Stats`] field and that field's doc, its metric's name and
/// description, and whether it is published only by a store that follows a stream. The
/// `shard` counters are kept by each shard ([`ShardCounters`]), the `store` ones in the store's
/// [`Counters`]. From the list follow both, the [`Stats`] fields, [`Stats::since`], the
/// snapshot, and the metrics the flusher publishes (`telemetry`).
macro_rules! counters {
    (
        shard {$(
            $(#[doc = $shard_doc:literal])*
            $shard_field:ident: $shard_metric:literal, $shard_help:literal, $shard_scope:ident;
        )*}
        store {$(
            $(#[doc = $doc:literal])*
            $field:ident: $metric:literal, $help:literal, $scope:ident;
        )*}
    ) => {
        /// The counters a shard keeps under its lock, summed over the shards when read: the
        /// read path counts without touching memory other shards' readers share.
        #[derive(Debug, Clone, Copy, Default)]
        pub(crate) struct ShardCounters {
            $(pub $shard_field: u64,)*
        }

        impl ShardCounters {
            /// Adds `other`'s counts to these.
            pub(crate) fn add(&mut self, other: &ShardCounters) {
                $(self.$shard_field += other.$shard_field;)*
            }
        }

        /// The store's counters updated as it works. Relaxed ordering: they are statistics,
        /// not synchronisation.
        #[derive(Debug, Default)]
        pub(crate) struct Counters {
            $(pub $field: AtomicU64,)*
            /// The follower's lag at its last poll, in milliseconds (a gauge, kept here).
            pub stream_lag_ms: AtomicU64,
            /// The read requests allowed in flight for loads now (a gauge, kept here).
            pub read_limit: AtomicU64,
        }

        /// Every counter, in declaration order.
        pub(crate) const COUNTERS: &[Counter] = &[
            $(Counter {
                metric: $shard_metric,
                help: $shard_help,
                scope: Scope::$shard_scope,
                get: |stats| stats.$shard_field,
            },)*
            $(Counter {
                metric: $metric,
                help: $help,
                scope: Scope::$scope,
                get: |stats| stats.$field,
            },)*
        ];

        /// A snapshot of a store's activity since it was opened, and of what it holds now.
        ///
        /// # Counters and gauges
        ///
        /// Counters only grow while the store is open: `hits`, `misses`, `prefetch_hits`,
        /// `backend_reads`, `read_requests`, `prefetched`, `mutations`, `items_written`, `write_requests`, `retries`,
        /// `throttles`, `rejected_writes`, `conflicts`, the `stream_*` counts and
        /// `dead_letters`. The other fields are gauges, what the store holds at the time of the
        /// snapshot: `stream_lag`, `read_limit`, `pending`, `pending_bytes`,
        /// `cached_entries`, `cached_bytes`, `journal_bytes`, `journal_segments`, and
        /// `recovery` (fixed when the store opened). [`since`](Self::since) subtracts the counters of an earlier snapshot
        /// and keeps the gauges.
        ///
        /// Serializes (with `serde`) as a map of the field names; durations as `secs` and
        /// `nanos`.
        #[derive(Debug, Clone, Default, PartialEq, Serialize)]
        #[non_exhaustive]
        pub struct Stats {
            $($(#[doc = $shard_doc])* pub $shard_field: u64,)*
            $($(#[doc = $doc])* pub $field: u64,)*
            /// Writes recorded in the journal's dead-letter file, ever.
            pub dead_letters: u64,
            /// Stream following: how far behind the table the follower was at its last poll,
            /// zero when it found nothing new, otherwise the age of the newest record it
            /// applied (DynamoDB stamps records to the second). `None` when the store does not
            /// follow a stream.
            pub stream_lag: Option<Duration>,
            /// The read requests the store allows in flight for loads now: its
            /// [`max_reads_in_flight`](crate::StoreBuilder::max_reads_in_flight), lowered while
            /// the backend's latency grows with load (see
            /// [`adapt_reads_in_flight`](crate::StoreBuilder::adapt_reads_in_flight)).
            pub read_limit: u64,
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
            /// What recovering the journal found when the store opened.
            pub recovery: Option<RecoveryReport>,
        }

        impl Counters {
            /// The counters now, with the shards' summed in `shards`, in a snapshot whose
            /// gauges are left for the caller to fill (but `stream_lag`, for a store that
            /// follows a stream).
            pub(crate) fn snapshot(&self, shards: ShardCounters, follows_stream: bool) -> Stats {
                Stats {
                    $($shard_field: shards.$shard_field,)*
                    $($field: Counters::get(&self.$field),)*
                    stream_lag: follows_stream
                        .then(|| Duration::from_millis(Counters::get(&self.stream_lag_ms))),
                    read_limit: Counters::get(&self.read_limit),
                    ..Stats::default()
                }
            }
        }

        impl Stats {
            /// The activity between `earlier` and this snapshot: each counter less its value
            /// in `earlier` (zero where `earlier` is the larger, as for a snapshot of another
            /// store), and every gauge as it is in `self`.
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
                Stats {
                    $($shard_field: self.$shard_field.saturating_sub(earlier.$shard_field),)*
                    $($field: self.$field.saturating_sub(earlier.$field),)*
                    dead_letters: self.dead_letters.saturating_sub(earlier.dead_letters),
                    ..self.clone()
                }
            }
        }
    };
}

counters! {
shard {
    /// Lookups answered from memory.
    hits: "quickstore_hits_total", "Lookups answered from memory", Always;
    /// Lookups that needed the backend (their own read, or one they waited for).
    misses: "quickstore_misses_total", "Lookups that needed the backend", Always;
    /// Keys loaded by [`Store::prefetch`](crate::Store::prefetch) (or a warm restart) that
    /// were then hit, each counted once, at its first hit.
    prefetch_hits: "quickstore_prefetch_hits_total",
        "Prefetched keys that were then hit, each counted once", Always;
}
store {
    /// Keys read from the backend.
    backend_reads: "quickstore_backend_reads_total", "Keys read from the backend", Always;
    /// Read requests sent to the backend (`GetItem` and `BatchGetItem`, retries included).
    read_requests: "quickstore_read_requests_total",
        "GetItem and BatchGetItem requests sent, retries included", Always;
    /// Keys read into the cache by [`Store::prefetch`](crate::Store::prefetch) (or a warm
    /// restart); not counted as hits or misses.
    prefetched: "quickstore_prefetched_total", "Keys read into the cache by prefetching", Always;
    /// Mutations acknowledged.
    mutations: "quickstore_mutations_total", "Mutations acknowledged", Always;
    /// Item writes the backend accepted. Fewer than `mutations` when writes coalesced.
    items_written: "quickstore_items_written_total", "Item writes the backend accepted", Always;
    /// Write requests sent, retries included: `BatchWriteItem` (versioned mode: `PutItem` and
    /// `DeleteItem`), and `UpdateItem` for deltas.
    write_requests: "quickstore_write_requests_total",
        "BatchWriteItem requests (versioned mode: PutItem and DeleteItem) and UpdateItems of deltas sent, retries included",
        Always;
    /// Requests repeated after throttling, unprocessed items or transient failures.
    retries: "quickstore_retries_total",
        "Requests repeated after throttling, unprocessed items or transient failures", Always;
    /// Requests the backend throttled (DynamoDB's throttling error codes, or HTTP 429); each
    /// was retried and is counted in `retries` too. Unprocessed items and keys are DynamoDB's
    /// quieter way of throttling a batch: they count as retries only.
    throttles: "quickstore_throttles_total", "Requests the backend throttled", Always;
    /// Writes the backend refused for good; each is logged with its key and reason.
    rejected_writes: "quickstore_refused_writes_total", "Writes the backend refused for good",
        Always;
    /// Versioned mode: writes that lost the race to another writer, whose pending state was
    /// dropped for the winner's (see [`Conflict`](crate::Conflict)).
    conflicts: "quickstore_conflicts_total", "Versioned writes that lost the race to another writer",
        Always;
    /// Stream following: records read from the table's stream, this store's own writes
    /// included.
    stream_records: "quickstore_stream_records_total", "Stream records read", Stream;
    /// Stream following: clean entries replaced by another writer's newer state.
    stream_replaced: "quickstore_stream_replaced_total",
        "Clean entries replaced by another writer's newer state from the stream", Stream;
    /// Stream following: clean entries dropped (to be read again) because another writer
    /// changed them and the record could not be proven newer than the cached state.
    stream_invalidated: "quickstore_stream_invalidated_total",
        "Clean entries dropped because another writer changed them", Stream;
    /// Stream following: failed stream requests (retried).
    stream_errors: "quickstore_stream_errors_total", "Failed stream requests", Stream;
    /// Stream following: times the follower lost its place in the stream and dropped every
    /// clean entry.
    stream_resets: "quickstore_stream_resets_total",
        "Times the stream follower lost its place and dropped every clean entry", Stream;
}
}

/// Which stores publish a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Every store.
    Always,
    /// Stores that follow a stream.
    Stream,
}

/// One counter as a metric.
pub(crate) struct Counter {
    /// The metric's name.
    pub metric: &'static str,
    /// The metric's description.
    pub help: &'static str,
    pub scope: Scope,
    /// The counter's value in a snapshot.
    pub get: fn(&Stats) -> u64,
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

impl Stats {
    /// Keys read per read request (`backend_reads / read_requests`; 0 when nothing was read):
    /// above 1 when cold reads share `BatchGetItem`s.
    pub fn keys_per_read_request(&self) -> f64 {
        if self.read_requests == 0 {
            0.0
        } else {
            self.backend_reads as f64 / self.read_requests as f64
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
            prefetch_hits: 18 * n,
            prefetched: 19 * n,
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
