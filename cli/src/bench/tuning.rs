//! The store settings a benchmark run can change, as command-line options.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use quickstore::{Backpressure, Durability, StoreBuilder};

use crate::values;

/// The library's flush interval, when `--flush-interval` is not given.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// The library's batch threshold, when `--batch-threshold` is not given.
pub const DEFAULT_BATCH_THRESHOLD: u64 = 100;

/// How long a mutation waits for room when the store has too many pending writes.
const PENDING_WAIT_LIMIT: Duration = Duration::from_secs(60);

/// What a user tunes on the store (each unset option keeps the library's default).
#[derive(Debug, Clone, Default, Args)]
pub struct Tuning {
    /// Cache capacity for clean entries, e.g. `4096`, `512KiB` or `64MiB` (default: the
    /// library's, 64MiB); a cache smaller than the data set turns reads into misses.
    #[arg(long, value_name = "SIZE", value_parser = values::cache_bytes)]
    pub cache_bytes: Option<u64>,

    /// Shards the cache is split into (default: 64).
    #[arg(long, value_name = "N", value_parser = values::shards)]
    pub shards: Option<u64>,

    /// How long a mutation may wait before the flusher writes it (default: 100ms), e.g.
    /// `500ms`, `5s`, `1m`. Several, comma-separated, run the benchmark once with each and
    /// end with their costs side by side: `--flush-interval 100ms,1s,10s`. Longer intervals
    /// coalesce more writes of hot keys; pair them with `--journal` so that a crash loses
    /// nothing, and with a larger `--batch-threshold`, which otherwise starts a flush early.
    #[arg(long, value_name = "DURATION[,..]", value_delimiter = ',', value_parser = values::flush_interval)]
    pub flush_interval: Vec<Duration>,

    /// Dirty keys at which the flusher writes at once, without waiting for the flush
    /// interval (default: 100).
    #[arg(long, value_name = "KEYS", value_parser = values::batch_threshold)]
    pub batch_threshold: Option<u64>,

    /// Keys with writes not yet in the backend before a mutation waits for room (default:
    /// 100,000). Mutations wait up to a minute, then fail.
    #[arg(long, value_name = "KEYS", value_parser = values::max_pending)]
    pub max_pending: Option<u64>,

    /// How much writes not yet in the backend may hold before a mutation waits for room, e.g.
    /// `64MiB` (default: 256MiB; at least 1MiB).
    #[arg(long, value_name = "SIZE", value_parser = values::max_pending_bytes)]
    pub max_pending_bytes: Option<u64>,

    /// Journal every mutation in this directory before acknowledging it (created if missing),
    /// as a store that must survive a crash does.
    #[arg(long, value_name = "DIR")]
    pub journal: Option<PathBuf>,

    /// With `--journal`: `always` syncs each mutation (shared by concurrent ones) before it is
    /// acknowledged; a duration such as `10ms` syncs at most that far apart (default: always).
    #[arg(long, value_name = "always|DURATION", requires = "journal", value_parser = parse_durability)]
    pub durability: Option<Durability>,

    /// Read from the backend with eventually consistent reads (half the read units of the
    /// default strongly consistent ones).
    #[arg(long)]
    pub eventual_reads: bool,

    /// Read every miss with a `GetItem` of its own, sent at once, rather than batching the
    /// misses that arrive while reads are in flight (the store's default).
    #[arg(long)]
    pub no_batch_reads: bool,

    /// The most read requests in flight for loads before further misses queue for a batch
    /// (default: 8); lower batches more, at the price of a round trip for queued misses.
    #[arg(long, value_name = "N", value_parser = values::max_reads_in_flight)]
    pub max_reads_in_flight: Option<u64>,

    /// Keep `--max-reads-in-flight` reads in flight whatever the backend's latency, rather than
    /// fewer while it grows with load (the store's default).
    #[arg(long)]
    pub fixed_reads_in_flight: bool,
}

impl Tuning {
    /// `builder` with these settings, and `flush_interval` if given; mutations wait for room.
    pub fn apply(&self, builder: StoreBuilder, flush_interval: Option<Duration>) -> StoreBuilder {
        let mut builder = builder
            .backpressure(Backpressure::Wait(PENDING_WAIT_LIMIT))
            .consistent_reads(!self.eventual_reads)
            .batch_reads(!self.no_batch_reads)
            .adapt_reads_in_flight(!self.fixed_reads_in_flight);
        let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        if let Some(reads) = self.max_reads_in_flight {
            builder = builder.max_reads_in_flight(size(reads));
        }
        if let Some(bytes) = self.cache_bytes {
            builder = builder.cache_capacity(bytes);
        }
        if let Some(shards) = self.shards {
            builder = builder.shards(size(shards));
        }
        if let Some(interval) = flush_interval {
            builder = builder.flush_interval(interval);
        }
        if let Some(keys) = self.batch_threshold {
            builder = builder.batch_threshold(size(keys));
        }
        if let Some(keys) = self.max_pending {
            builder = builder.max_pending(size(keys));
        }
        if let Some(bytes) = self.max_pending_bytes {
            builder = builder.max_pending_bytes(bytes);
        }
        if let Some(dir) = &self.journal {
            builder = builder.journal(dir.clone());
        }
        if let Some(durability) = self.durability {
            builder = builder.durability(durability);
        }
        builder
    }

    /// The flush intervals to run with: the ones asked for, or the library's default alone.
    pub fn flush_intervals(&self) -> Vec<Option<Duration>> {
        if self.flush_interval.is_empty() {
            vec![None]
        } else {
            self.flush_interval.iter().copied().map(Some).collect()
        }
    }
}

/// Parses a journal durability: `always`, or the longest time between syncs.
fn parse_durability(text: &str) -> Result<Durability, String> {
    if text == "always" {
        Ok(Durability::Always)
    } else {
        match values::duration(text)? {
            Duration::ZERO => Err("a sync interval must be longer than zero".to_owned()),
            interval => Ok(Durability::Interval(interval)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durability_is_always_or_an_interval() {
        assert_eq!(parse_durability("always"), Ok(Durability::Always));
        assert_eq!(
            parse_durability("10ms"),
            Ok(Durability::Interval(Duration::from_millis(10)))
        );
        assert!(parse_durability("0ms").is_err());
        assert!(parse_durability("never").is_err());
    }
}
