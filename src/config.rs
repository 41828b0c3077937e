//! The store's builder and its options, each with a documented default.

use std::sync::Arc;
use std::time::Duration;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::journal::{Journal, JournalConfig};
use crate::key::Kinds;
use crate::store::Store;

const DEFAULT_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// When an acknowledged mutation is on stable storage, with a journal
/// ([`StoreBuilder::journal`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Each mutation is synced to disk (`fdatasync`) before it is acknowledged. Concurrent
    /// mutations share one sync (group commit). Nothing acknowledged is lost, even when the
    /// machine loses power.
    #[default]
    Always,
    /// Mutations are acknowledged once written to the operating system, and synced at most
    /// this long apart. A crash of the process loses nothing acknowledged; a crash of the
    /// machine (power loss, kernel panic) may lose the mutations of the last interval.
    Interval(Duration),
}

/// What opening a store does with a damaged journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Recovery {
    /// Accept a torn final record (what a crash mid-write leaves) and refuse to open on damage
    /// anywhere else, with [`Error::Journal`].
    #[default]
    Strict,
    /// Keep every readable record, skip damage wherever it is, and report it in
    /// [`Stats::recovery`](crate::Stats::recovery).
    Salvage,
}

/// The options a store runs with.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub shards: usize,
    pub cache_capacity: u64,
    pub flush_interval: Duration,
    pub batch_threshold: usize,
    pub max_in_flight_batches: usize,
    pub max_pending: usize,
    pub consistent_reads: bool,
    pub partition_key: Arc<str>,
    pub journal: Option<JournalConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            shards: 64,
            cache_capacity: 64 * 1024 * 1024,
            flush_interval: Duration::from_millis(100),
            batch_threshold: 100,
            max_in_flight_batches: 8,
            max_pending: 100_000,
            consistent_reads: true,
            partition_key: Arc::from("_key"),
            journal: None,
        }
    }
}

/// Configures and opens a [`Store`]; made by [`Store::builder`].
///
/// ```no_run
/// # async fn example() -> quickstore::Result<()> {
/// use std::time::Duration;
/// let backend = quickstore::EmbeddedBackend::open("data.redb")?;
/// let store = quickstore::Store::builder(backend)
///     .cache_capacity(256 * 1024 * 1024)
///     .flush_interval(Duration::from_millis(50))
///     .open()
///     .await?;
/// # Ok(()) }
/// ```
#[must_use = "a builder does nothing until `open` is called"]
pub struct StoreBuilder {
    backend: Arc<dyn Backend>,
    config: Config,
    kinds: Kinds,
}

impl std::fmt::Debug for StoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreBuilder")
            .field("config", &self.config)
            .field("kinds", &self.kinds)
            .finish_non_exhaustive()
    }
}

impl StoreBuilder {
    pub(crate) fn new(backend: Arc<dyn Backend>) -> Self {
        Self {
            backend,
            config: Config::default(),
            kinds: Kinds::new(),
        }
    }

    /// The number of shards the cache is split into; more shards, less lock contention.
    ///
    /// Default: 64.
    pub fn shards(mut self, shards: usize) -> Self {
        self.config.shards = shards;
        self
    }

    /// The bytes that clean (evictable) cache entries may take, split evenly across shards.
    /// An entry weighs its item's DynamoDB size plus its key and a fixed overhead. Pending
    /// (dirty) entries are bounded by [`max_pending`](Self::max_pending) instead, since they
    /// cannot be evicted.
    ///
    /// Default: 64 MiB.
    pub fn cache_capacity(mut self, bytes: u64) -> Self {
        self.config.cache_capacity = bytes;
        self
    }

    /// How long a mutation may wait before the flusher writes it, when fewer than
    /// [`batch_threshold`](Self::batch_threshold) keys are waiting. Longer intervals coalesce
    /// more writes of hot keys.
    ///
    /// Default: 100 ms.
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.config.flush_interval = interval;
        self
    }

    /// The number of waiting keys at which the flusher writes full batches at once, without
    /// waiting for the flush interval.
    ///
    /// Default: 100.
    pub fn batch_threshold(mut self, keys: usize) -> Self {
        self.config.batch_threshold = keys;
        self
    }

    /// The number of `BatchWriteItem` requests in flight at once.
    ///
    /// Default: 8.
    pub fn max_in_flight_batches(mut self, batches: usize) -> Self {
        self.config.max_in_flight_batches = batches;
        self
    }

    /// The number of keys with mutations not yet in the backend; a mutation of another key
    /// beyond it fails with [`Error::TooManyRequests`] and changes nothing.
    ///
    /// Default: 100,000.
    pub fn max_pending(mut self, keys: usize) -> Self {
        self.config.max_pending = keys;
        self
    }

    /// Whether reads from the backend are strongly consistent. Eventually consistent reads
    /// cost half the read capacity but may miss a write made just before.
    ///
    /// Default: true.
    pub fn consistent_reads(mut self, consistent: bool) -> Self {
        self.config.consistent_reads = consistent;
        self
    }

    /// The name of the table's partition key attribute, a string.
    ///
    /// Default: `_key`, as in the Go library.
    pub fn partition_key(mut self, name: impl Into<String>) -> Self {
        self.config.partition_key = Arc::from(name.into());
        self
    }

    /// Journals every mutation in `dir` before acknowledging it, so that a crash loses nothing
    /// acknowledged: on `open`, mutations the backend had not received are read back, re-applied
    /// to the cache and flushed. The directory is created if needed and locked while the store
    /// is open. See [`durability`](Self::durability).
    ///
    /// Default: no journal; acknowledged mutations not yet flushed are lost in a crash.
    pub fn journal(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.journal_config().dir = dir.into();
        self
    }

    /// When a journaled mutation counts as durable; used with [`journal`](Self::journal).
    ///
    /// Default: [`Durability::Always`].
    pub fn durability(mut self, durability: Durability) -> Self {
        self.journal_config().durability = durability;
        self
    }

    /// The size at which a journal segment is closed and a new one started. Closed segments
    /// are deleted once the backend has every mutation in them.
    ///
    /// Default: 64 MiB.
    pub fn journal_segment_bytes(mut self, bytes: u64) -> Self {
        self.journal_config().segment_bytes = bytes;
        self
    }

    /// What `open` does with a damaged journal.
    ///
    /// Default: [`Recovery::Strict`].
    pub fn recovery(mut self, recovery: Recovery) -> Self {
        self.journal_config().recovery = recovery;
        self
    }

    fn journal_config(&mut self) -> &mut JournalConfig {
        self.config.journal.get_or_insert_with(|| JournalConfig {
            dir: Default::default(),
            durability: Durability::default(),
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            recovery: Recovery::default(),
        })
    }

    /// The kinds in use. With a non-empty registry, keys of unregistered kinds, and keys that
    /// would not parse back to themselves (see [`Kinds`]), are refused.
    ///
    /// Default: empty (any valid key is accepted).
    pub fn kinds(mut self, kinds: Kinds) -> Self {
        self.kinds = kinds;
        self
    }

    /// Checks the options and the table, then starts the store's flusher on the current Tokio
    /// runtime.
    ///
    /// Fails with [`Error::Validation`] on a bad option, a missing table, or a table whose key
    /// schema is not one string partition key with the configured name.
    pub async fn open(self) -> Result<Store> {
        let config = &self.config;
        let checks = [
            (config.shards == 0, "shards must be at least 1"),
            (
                config.cache_capacity == 0,
                "cache_capacity must be at least 1 byte",
            ),
            (
                config.flush_interval.is_zero(),
                "flush_interval must be longer than zero",
            ),
            (
                config.batch_threshold == 0,
                "batch_threshold must be at least 1",
            ),
            (
                config.max_in_flight_batches == 0,
                "max_in_flight_batches must be at least 1",
            ),
            (config.max_pending == 0, "max_pending must be at least 1"),
            (
                config.partition_key.is_empty(),
                "partition_key cannot be empty",
            ),
        ];
        if let Some((_, message)) = checks.iter().find(|(bad, _)| *bad) {
            return Err(Error::validation(*message));
        }
        self.backend.check_table(&config.partition_key).await?;
        let journal = match config.journal.clone() {
            Some(journal) => Some(
                tokio::task::spawn_blocking(move || Journal::open(&journal))
                    .await
                    .map_err(|e| Error::journal("the journal recovery task failed", e))??,
            ),
            None => None,
        };
        Ok(Store::start(self.backend, self.config, self.kinds, journal))
    }
}
