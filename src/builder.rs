//! The builder: every option with its documented default, and `open`, which checks them and
//! the table, recovers the journal, and starts the store.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::follow::Follower;
use crate::journal::{
    Durability, FileSystem, Journal, JournalConfig, Recovery, StdFs, DEFAULT_RESERVE_BYTES,
    DEFAULT_SEGMENT_BYTES,
};
use crate::key::Kinds;
use crate::options::{Backpressure, Options};
use crate::retry::RetryPolicy;
use crate::store::Store;
use crate::stream::ChangeStream;
use crate::telemetry::{Handlers, Refused, RefusedHandler};
use crate::version::{Conflict, ConflictHandler};

impl Store {
    /// Starts configuring a store over `backend`.
    pub fn builder(backend: impl Backend) -> StoreBuilder {
        StoreBuilder {
            backend: Arc::new(backend),
            options: Options::default(),
            kinds: Kinds::new(),
            journal: JournalOptions::default(),
            on_conflict: None,
            on_refused: None,
            stream: None,
            stream_option: None,
        }
    }
}

/// The journal's options as set, so that `open` can tell a journal option set without
/// [`StoreBuilder::journal`] from a default.
#[derive(Default)]
struct JournalOptions {
    dir: Option<PathBuf>,
    durability: Option<Durability>,
    segment_bytes: Option<u64>,
    recovery: Option<Recovery>,
    /// In the crate's tests: the journal's files on a simulated disk, and the space reserved
    /// ahead of its writes.
    #[cfg(test)]
    fs: Option<(Arc<dyn FileSystem>, u64)>,
}

impl std::fmt::Debug for JournalOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalOptions")
            .field("dir", &self.dir)
            .field("durability", &self.durability)
            .field("segment_bytes", &self.segment_bytes)
            .field("recovery", &self.recovery)
            .finish_non_exhaustive()
    }
}

impl JournalOptions {
    /// Where the journal's files are: the real file system, but in some of the crate's tests.
    fn file_system(&self) -> Arc<dyn FileSystem> {
        #[cfg(test)]
        if let Some((fs, _)) = &self.fs {
            return Arc::clone(fs);
        }
        Arc::new(StdFs)
    }

    /// The disk space the journal reserves ahead of its writes.
    fn reserve_bytes(&self) -> u64 {
        #[cfg(test)]
        if let Some((_, reserve_bytes)) = &self.fs {
            return *reserve_bytes;
        }
        DEFAULT_RESERVE_BYTES
    }

    /// The journal's configuration, or `None` without a directory. Fails when another journal
    /// option was set without one: a journal nobody asked for would be worse.
    fn config(&self) -> Result<Option<JournalConfig>> {
        let Some(dir) = &self.dir else {
            let set = [
                (self.durability.is_some(), "durability"),
                (self.segment_bytes.is_some(), "journal_segment_bytes"),
                (self.recovery.is_some(), "recovery"),
            ];
            return match set.iter().find(|(set, _)| *set) {
                Some((_, option)) => Err(Error::validation(format!(
                    "{option}() configures the journal, but no journal directory was given: \
                     call journal(dir) too"
                ))),
                None => Ok(None),
            };
        };
        Ok(Some(JournalConfig {
            dir: dir.clone(),
            durability: self.durability.unwrap_or_default(),
            segment_bytes: self.segment_bytes.unwrap_or(DEFAULT_SEGMENT_BYTES),
            reserve_bytes: self.reserve_bytes(),
            recovery: self.recovery.unwrap_or_default(),
        }))
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
    options: Options,
    kinds: Kinds,
    journal: JournalOptions,
    on_conflict: Option<ConflictHandler>,
    on_refused: Option<RefusedHandler>,
    stream: Option<Arc<dyn ChangeStream>>,
    /// A stream-following option was set (checked against `stream` at `open`).
    stream_option: Option<&'static str>,
}

impl std::fmt::Debug for StoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreBuilder")
            .field("options", &self.options)
            .field("kinds", &self.kinds)
            .field("journal", &self.journal)
            .field("on_conflict", &self.on_conflict.is_some())
            .field("on_refused", &self.on_refused.is_some())
            .field("follows_stream", &self.stream.is_some())
            .finish_non_exhaustive()
    }
}

impl StoreBuilder {
    /// Keeps the journal's files on `fs`, reserving `reserve_bytes` ahead of its writes: for
    /// the crate's tests of disks that fail or fill up.
    #[cfg(test)]
    pub(crate) fn journal_file_system(
        mut self,
        fs: Arc<dyn FileSystem>,
        reserve_bytes: u64,
    ) -> Self {
        self.journal.fs = Some((fs, reserve_bytes));
        self
    }

    /// The number of shards the cache is split into; more shards, less lock contention.
    ///
    /// Default: 64.
    pub fn shards(mut self, shards: usize) -> Self {
        self.options.shards = shards;
        self
    }

    /// The bytes that clean (evictable) cache entries may take, split evenly across shards.
    /// An entry weighs its item's DynamoDB size plus its key and a fixed overhead. Pending
    /// (dirty) entries are bounded by [`max_pending`](Self::max_pending) instead, since they
    /// cannot be evicted.
    ///
    /// Default: 64 MiB.
    pub fn cache_capacity(mut self, bytes: u64) -> Self {
        self.options.cache_capacity = bytes;
        self
    }

    /// How long a mutation may wait before the flusher writes it, when fewer than
    /// [`batch_threshold`](Self::batch_threshold) keys are waiting. Longer intervals coalesce
    /// more writes of hot keys.
    ///
    /// Default: 100 ms.
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.options.flush_interval = interval;
        self
    }

    /// The number of waiting keys at which the flusher writes full batches at once, without
    /// waiting for the flush interval.
    ///
    /// Default: 100.
    pub fn batch_threshold(mut self, keys: usize) -> Self {
        self.options.batch_threshold = keys;
        self
    }

    /// The number of `BatchWriteItem` requests in flight at once.
    ///
    /// Default: 8.
    pub fn max_in_flight_batches(mut self, batches: usize) -> Self {
        self.options.max_in_flight_batches = batches;
        self
    }

    /// The number of keys with mutations not yet in the backend. A mutation of another key
    /// beyond it meets the store's [`backpressure`](Self::backpressure).
    ///
    /// Default: 100,000.
    pub fn max_pending(mut self, keys: usize) -> Self {
        self.options.max_pending = keys;
        self
    }

    /// The bytes that mutations not yet in the backend may hold (weighed like cache entries:
    /// item size, key and a fixed overhead). A mutation that would pass it meets the store's
    /// [`backpressure`](Self::backpressure). Together with
    /// [`cache_capacity`](Self::cache_capacity) this bounds the store's memory, whatever the
    /// write rate and however long the backend is away. At least 1 MiB, so that any item fits.
    ///
    /// Default: 256 MiB.
    pub fn max_pending_bytes(mut self, bytes: u64) -> Self {
        self.options.max_pending_bytes = bytes;
        self
    }

    /// What a mutation does when the pending writes fill the store: fail at once with
    /// [`Error::TooManyRequests`], or wait for room up to a deadline.
    ///
    /// With [`Backpressure::Wait`], `insert`, `update`, `upsert` and `delete` wait until their
    /// mutation fits. `update_with` waits until the store has some room before it decides; if
    /// what it decides then does not fit, it fails with `TooManyRequests` rather than decide
    /// twice. A waiting call dropped changes nothing.
    ///
    /// Default: [`Backpressure::Fail`].
    pub fn backpressure(mut self, backpressure: Backpressure) -> Self {
        self.options.backpressure = backpressure;
        self
    }

    /// Whether reads from the backend are strongly consistent. Eventually consistent reads
    /// cost half the read capacity but may miss a write made just before.
    ///
    /// Default: true.
    pub fn consistent_reads(mut self, consistent: bool) -> Self {
        self.options.consistent_reads = consistent;
        self
    }

    /// How long a clean cached entry (a value, or a known absence) is trusted: a read of an
    /// entry older than this goes to the backend again. Entries with mutations not yet written
    /// are never dropped. Bounds how long changes made by other writers of the table stay
    /// unseen; see also [`Store::invalidate`] and [`Store::refresh`].
    ///
    /// Default: none; a clean entry is trusted until it is evicted or invalidated.
    pub fn max_staleness(mut self, max: Duration) -> Self {
        self.options.max_staleness = Some(max);
        self
    }

    /// How long another writer's [mark](crate::backend::Mark) stays in an item after that writer's last
    /// delta there. Each store that applies deltas to an item leaves a mark in it, so that a
    /// delta sent again after a lost answer, or recovered after a crash, applies once; a store
    /// writing a delta removes the marks older than this it saw in the item's last answer, so
    /// that marks of stores long gone do not pile up in items changed only by deltas.
    ///
    /// A store that cannot reach the table for longer than this (an outage it retries through,
    /// or a crash it recovers from with a journal) may find its mark removed, and a delta of
    /// its that had landed then applies a second time: set it above the longest outage you
    /// plan to ride out.
    ///
    /// Default: 24 hours.
    pub fn mark_lifetime(mut self, lifetime: Duration) -> Self {
        self.options.mark_lifetime = lifetime;
        self
    }

    /// Versioned mode: every item written carries a version number in the number attribute
    /// `attribute`, and every write is conditional on the version this store last saw of the
    /// item (or on its absence), so the store never overwrites a change it has not seen. Every
    /// mutation then knows its key's state first: `upsert` and `delete` of a key the store does
    /// not know read it, like `insert` and `update` do.
    ///
    /// A write that loses the race to another writer is a conflict: the store's pending state
    /// of the key is dropped, the winner's state becomes the cached one (the next read sees
    /// it), and the conflict is counted in [`Stats::conflicts`](crate::Stats::conflicts),
    /// logged, dead-lettered when there is a journal, and handed to the
    /// [`on_conflict`](Self::on_conflict) handler. `BatchWriteItem` takes no conditions, so each
    /// write is its own `PutItem` or `DeleteItem`, several at once; the version attribute is
    /// not part of the values the store hands out.
    ///
    /// Items without the attribute, written by programs that do not version (the Go library,
    /// a plain SDK writer), count as version 0, and the store's first write over one is
    /// conditional on the whole item as the store read it: a change made in between is a
    /// conflict, not overwritten. docs/GUARANTEES.md says what holds with such writers before
    /// and after the store has versioned an item.
    ///
    /// With a [`journal`](Self::journal), each journaled mutation also records the version its
    /// write will be conditional on, and the flusher notes each write it is done with, so a
    /// recovered write is conditional on the version its key had when the process stopped.
    /// Each write also stores, beside the version, the attribute `{attribute}_by`, naming this
    /// store (its journal keeps its id across restarts) and the state written: after a crash
    /// between a write landing in the table and the journal noting it, the recovered write
    /// finds its own state there and counts as written (or is written on top of it, when newer
    /// mutations followed), not as a conflict. A recovered write over an item without the
    /// version attribute stays conditional on that item as read, which the journal keeps.
    ///
    /// `open` fails with [`Error::Validation`] if the backend does not support conditional
    /// writes ([`Backend::supports_conditional_writes`]).
    ///
    /// Default: off; writes are unconditional and the store assumes it is the only writer of
    /// its keys.
    pub fn versioned(mut self, attribute: impl Into<String>) -> Self {
        self.options.version_attribute = Some(Arc::from(attribute.into()));
        self
    }

    /// Called once for each conflict in [versioned mode](Self::versioned), on the flusher's
    /// task, with the key, the state this store had to drop and the state that won. Keep it
    /// short; it must not block.
    ///
    /// Default: none; conflicts are still counted and logged.
    pub fn on_conflict(mut self, handler: impl Fn(&Conflict) + Send + Sync + 'static) -> Self {
        self.on_conflict = Some(Arc::new(handler));
        self
    }

    /// Called once for each write the backend refuses for good (an item DynamoDB will not
    /// take, say), on the flusher's task, with the key, the state the store tried to write and
    /// the backend's error; see [`Refused`]. It is called before the
    /// [`flush`](Store::flush) or [`close`](Store::close) that reports the refusal returns.
    /// Keep it short; it must not block.
    ///
    /// ```no_run
    /// # async fn example(backend: quickstore::EmbeddedBackend) -> quickstore::Result<()> {
    /// let store = quickstore::Store::builder(backend)
    ///     .on_refused(|refused| {
    ///         tracing::error!(key = %refused.key, error = %refused.error.report(), "write lost");
    ///     })
    ///     .open()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// Default: none; refused writes are still counted, logged, dead-lettered (with a
    /// journal) and reported by `flush` and `close`.
    pub fn on_refused(mut self, handler: impl Fn(&Refused) + Send + Sync + 'static) -> Self {
        self.on_refused = Some(Arc::new(handler));
        self
    }

    /// Whether misses of single keys (reads, the existence checks of `insert` and `update`,
    /// `update_with`) that arrive while [`max_reads_in_flight`](Self::max_reads_in_flight)
    /// reads of the backend are in flight queue and go out together in `BatchGetItem`s of up
    /// to 100 keys when a read completes. Below that bound a miss is read at once either way,
    /// so batching adds no latency at low load; beyond it, batching bounds the requests in
    /// flight and divides them by the keys each carries. Off, every such miss is a `GetItem`
    /// of its own, sent at once, however many are in flight. `get_many` and `prefetch` batch
    /// their own keys either way.
    ///
    /// Default: on.
    pub fn batch_reads(mut self, on: bool) -> Self {
        self.options.batch_reads = on;
        self
    }

    /// The most read requests (`GetItem`, `BatchGetItem`) in flight for loads before further
    /// misses queue for a batch (see [`batch_reads`](Self::batch_reads)). Lower batches more
    /// keys into fewer requests, at the price of latency: a queued miss waits for a read to
    /// complete first, up to one more round trip; against DynamoDB, whose round trip dominates
    /// a miss, a bound below the number of concurrent readers lowers their miss rate (at 1, 8
    /// readers read at half the rate, measured with a 5 ms round trip). The store keeps fewer
    /// in flight while the backend's latency grows with them (see
    /// [`adapt_reads_in_flight`](Self::adapt_reads_in_flight)). At least 1.
    ///
    /// Default: 8.
    pub fn max_reads_in_flight(mut self, reads: usize) -> Self {
        self.options.max_reads_in_flight = reads;
        self
    }

    /// Whether the store lowers its read requests in flight below
    /// [`max_reads_in_flight`](Self::max_reads_in_flight) while the backend answers more slowly
    /// the more requests it is given, and raises them again as it recovers. A backend that
    /// serves requests in parallel, as DynamoDB does, answers in about the same time at any
    /// number in flight, and the store keeps the bound: misses below it are read at once. A
    /// backend that queues them (one process such as dynalite or DynamoDB Local, a throttled
    /// table, a client short of CPU) gains nothing from more requests but their wait: the store
    /// keeps fewer in flight, and more misses share each `BatchGetItem`. A request more than
    /// twice as slow as the least latency seen recently lowers the limit by a tenth; any other
    /// raises it by one request per round of requests. At least one read is always allowed, so
    /// a miss that finds nothing in flight is read at once. Off, the bound is fixed.
    ///
    /// Default: on.
    pub fn adapt_reads_in_flight(mut self, on: bool) -> Self {
        self.options.adapt_reads_in_flight = on;
        self
    }

    /// Warm restarts: at [`close`](Store::close), the store saves to `path` the keys of the
    /// entries its cache holds (found or known absent; keys only, never values, so nothing
    /// stale survives); at `open`, it reads them back and prefetches them in the background, in
    /// batches of up to 100 keys, while it serves. After a deploy the cache is warm again
    /// within moments instead of paying a miss per key.
    /// [`Stats::prefetched`](crate::Stats::prefetched) counts the keys the warm-up read,
    /// [`Stats::prefetch_hits`](crate::Stats::prefetch_hits) those then read.
    ///
    /// A file that is missing (the first start), damaged, or saved by a store of another table
    /// ([`Backend::table`](crate::backend::Backend::table)) or partition key is ignored with a warning:
    /// the store starts cold. Saving happens only at `close`, once every write is in the
    /// backend; a store dropped without `close` saves nothing, and a save that fails is logged
    /// and leaves `close`'s result alone. The file is replaced atomically (written beside it,
    /// then renamed).
    ///
    /// Default: off.
    pub fn warm_restart(mut self, path: impl Into<PathBuf>) -> Self {
        self.options.warm_restart = Some(path.into());
        self
    }

    /// Labels every metric the store records (see the crate docs, "Observability") with
    /// `store = label`, so that several stores in one process can be told apart. Keep the
    /// label's values few (a table name, a role), never per key or per request.
    ///
    /// Default: no label. Stores in one process without distinct labels publish to the same
    /// metrics, and their totals overwrite each other.
    pub fn metrics_label(mut self, label: impl Into<String>) -> Self {
        self.options.metrics_label = Some(Arc::from(label.into()));
        self
    }

    /// How requests that fail transiently are retried: backoff, jitter, per-request timeout,
    /// and how long reads may keep trying. See [`RetryPolicy`] for each default.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.options.retry = policy;
        self
    }

    /// Follows the table's change stream, so that changes made by writers that bypass this
    /// store (other services, batch jobs, other stores) reach its clean cache entries.
    ///
    /// `open` lists the stream's shards and starts reading each at its newest record, so every
    /// change from then on is seen; it fails if the stream's view type carries no new images
    /// (use `NEW_IMAGE` or `NEW_AND_OLD_IMAGES`). A background task then reads every shard,
    /// parents before children, and for each change of a key this store caches clean:
    ///
    /// - if the change is one of this store's own writes, nothing happens;
    /// - if it is known to be newer than the cached state, the cached state becomes the
    ///   record's new image. It is known to be newer when the cached state came from the
    ///   stream itself, or when the change was made at least
    ///   [`stream_clock_margin`](Self::stream_clock_margin) after the store read or wrote the
    ///   key;
    /// - otherwise the entry is dropped, and the next read goes to the table.
    ///
    /// Pending keys are left alone: their state is newer than the table's (in versioned mode
    /// their write then meets the change as a conflict). If the follower may have missed
    /// changes (records trimmed, a stream that failed), it drops every clean entry. What it
    /// did is in [`Stats`](crate::Stats)' `stream_*` fields, its lag in `stream_lag`.
    ///
    /// A reader therefore sees another writer's change about one stream lag after it is made.
    /// The store's own writes are recognised by their content and version, so they cost
    /// nothing when they come back through the stream.
    ///
    /// Default: off.
    pub fn follow_stream(mut self, stream: impl ChangeStream) -> Self {
        self.stream = Some(Arc::new(stream));
        self
    }

    /// How long the stream follower pauses after a poll of every shard found nothing new.
    /// Needs [`follow_stream`](Self::follow_stream).
    ///
    /// Default: 250 ms (DynamoDB allows about 5 reads per second per shard).
    pub fn stream_poll_interval(mut self, interval: Duration) -> Self {
        self.options.stream_poll_interval = interval;
        self.stream_option = Some("stream_poll_interval");
        self
    }

    /// How far apart this machine's clock and DynamoDB's may be. A change in the stream
    /// replaces a cached state read or written by the store only if the stream dates it at
    /// least this long after the store read or wrote it; otherwise the entry is read again.
    /// A margin smaller than the real clock difference can let a cached state go back to an
    /// older one until the stream catches up. Needs [`follow_stream`](Self::follow_stream).
    ///
    /// Default: 1 s.
    pub fn stream_clock_margin(mut self, margin: Duration) -> Self {
        self.options.stream_clock_margin = margin;
        self.stream_option = Some("stream_clock_margin");
        self
    }

    /// The name of the table's partition key attribute, a string.
    ///
    /// Default: `_key`, as in the Go library.
    pub fn partition_key(mut self, name: impl Into<String>) -> Self {
        self.options.partition_key = Arc::from(name.into());
        self
    }

    /// Journals every mutation in `dir` before acknowledging it, so that a crash loses nothing
    /// acknowledged: on `open`, mutations the backend had not received are read back, re-applied
    /// to the cache and flushed. The directory is created if needed and locked while the store
    /// is open. See [`durability`](Self::durability).
    ///
    /// Default: no journal; acknowledged mutations not yet flushed are lost in a crash.
    pub fn journal(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.journal.dir = Some(dir.into());
        self
    }

    /// When a journaled mutation counts as durable. Needs [`journal`](Self::journal): `open`
    /// fails with [`Error::Validation`] without it.
    ///
    /// Default: [`Durability::Always`].
    pub fn durability(mut self, durability: Durability) -> Self {
        self.journal.durability = Some(durability);
        self
    }

    /// The size at which a journal segment is closed and a new one started. Closed segments
    /// are deleted once the backend has every mutation in them. Needs
    /// [`journal`](Self::journal).
    ///
    /// Default: 64 MiB.
    pub fn journal_segment_bytes(mut self, bytes: u64) -> Self {
        self.journal.segment_bytes = Some(bytes);
        self
    }

    /// What `open` does with a damaged journal. Needs [`journal`](Self::journal).
    ///
    /// Default: [`Recovery::Strict`].
    pub fn recovery(mut self, recovery: Recovery) -> Self {
        self.journal.recovery = Some(recovery);
        self
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
    /// # Errors
    ///
    /// - [`Error::Validation`] on a bad option, a missing table, a table whose key schema is
    ///   not one string partition key with the configured name, or a backend that lacks what
    ///   an option needs (conditional writes for versioned mode).
    /// - [`Error::Backend`] when the table cannot be checked (no credentials, no answer).
    /// - [`Error::Journal`] when the journal directory is held by another store, cannot be
    ///   read or written, or is damaged where [`Recovery`](crate::journal::Recovery) does not
    ///   accept it.
    /// - When following a stream, the error of the first
    ///   [`ChangeStream::describe`](crate::stream::ChangeStream::describe) or `iterator` call
    ///   that fails.
    pub async fn open(self) -> Result<Store> {
        if let Some(problem) = self.options.problem() {
            return Err(Error::validation(problem));
        }
        if let Some(attribute) = &self.options.version_attribute {
            if !self.backend.supports_conditional_writes() {
                return Err(Error::validation(format!(
                    "versioned mode (`versioned(\"{attribute}\")`) needs conditional writes, which \
                     this backend does not support (`Backend::supports_conditional_writes` is \
                     false; a wrapper must forward it and `write_if` to the backend it wraps)"
                )));
            }
        }
        let journal = self.journal.config()?;
        if let (Some(option), None) = (self.stream_option, &self.stream) {
            return Err(Error::validation(format!(
                "{option}() configures stream following, but no stream was given: call \
                 follow_stream(stream) too"
            )));
        }
        self.backend
            .check_table(&self.options.partition_key)
            .await?;
        let follower = match self.stream {
            Some(stream) => Some(Follower::start(stream).await?),
            None => None,
        };
        let journal = match journal {
            Some(journal) => Some({
                let fs = self.journal.file_system();
                tokio::task::spawn_blocking(move || Journal::open_with(&journal, fs))
                    .await
                    .map_err(|e| Error::journal("the journal recovery task failed", e))??
            }),
            None => None,
        };
        Store::start(
            self.backend,
            self.options,
            self.kinds,
            journal,
            Handlers {
                on_conflict: self.on_conflict,
                on_refused: self.on_refused,
            },
            follower,
        )
        .await
    }
}
