//! The state every store handle and the flusher share: the shards, the backend, the options,
//! the mutation sequence and the journal.
//!
//! It sits below both the store and the flusher, so that each can use it without either
//! importing the other.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::futures::Notified;
use tokio::sync::Notify;

use crate::backend::Backend;
use crate::delta::Delta;
use crate::error::{Error, Result};
use crate::item::Item;
use crate::journal::{Journal, RecoveryReport};
use crate::key::Kinds;
use crate::options::Options;
use crate::shard::{Hashed, KeyHasher, Shard, Usage, WriteContext};
use crate::stats::{Counters, Stats};
use crate::stored::Layout;
use crate::stream::Echoes;

/// State shared by every handle and the flusher. The configuration (backend, options, kinds,
/// layout) is fixed at open; what changes is reached through methods that say who changes it:
/// mutations dirty keys in the shards and take sequence numbers, the flusher settles them and
/// makes room, and closing happens once.
pub(crate) struct Shared {
    shards: Box<[Shard]>,
    /// Hashes keys: the hash picks a key's shard, then finds the key in it.
    hasher: KeyHasher,
    backend: Arc<dyn Backend>,
    options: Options,
    kinds: Kinds,
    /// What the store's items look like in the table; versioned writes are tagged with the
    /// journal's writer id, else a random one.
    layout: Layout,
    /// The last sequence number given to a mutation.
    seq: AtomicU64,
    /// Keys with mutations not yet in the backend.
    pending: AtomicUsize,
    /// Bytes of the dirty entries of every shard.
    pending_bytes: Arc<AtomicU64>,
    /// Told whenever pending writes land, for mutations waiting for room.
    room: Notify,
    /// Set once the store starts closing; checked under shard locks.
    closed: AtomicBool,
    counters: Counters,
    journal: Option<Journal>,
    recovery: Option<RecoveryReport>,
    /// This store's writes not yet seen in the stream, when it follows one.
    echoes: Option<Echoes>,
}

impl Shared {
    pub(crate) fn new(
        backend: Arc<dyn Backend>,
        options: Options,
        kinds: Kinds,
        journal: Option<Journal>,
        recovery: Option<RecoveryReport>,
        follows_stream: bool,
    ) -> Self {
        let per_shard = (options.cache_capacity / options.shards as u64).max(1);
        let pending_bytes = Arc::new(AtomicU64::new(0));
        let writer = journal
            .as_ref()
            .map_or_else(rand::random, Journal::writer_id);
        let layout = Layout::new(
            Arc::clone(&options.partition_key),
            options.version_attribute.clone(),
            writer,
        );
        let hasher = KeyHasher::default();
        Self {
            shards: (0..options.shards)
                .map(|_| {
                    Shard::new(
                        per_shard,
                        options.max_staleness,
                        Arc::clone(&pending_bytes),
                        hasher.clone(),
                    )
                })
                .collect(),
            hasher,
            backend,
            options,
            kinds,
            layout,
            seq: AtomicU64::new(0),
            pending: AtomicUsize::new(0),
            pending_bytes,
            room: Notify::new(),
            closed: AtomicBool::new(false),
            counters: Counters::default(),
            journal,
            recovery,
            echoes: follows_stream.then(Echoes::default),
        }
    }

    pub(crate) fn backend(&self) -> &dyn Backend {
        &*self.backend
    }

    pub(crate) fn options(&self) -> &Options {
        &self.options
    }

    pub(crate) fn kinds(&self) -> &Kinds {
        &self.kinds
    }

    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The store's counters, for every part of it to count what it does.
    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    pub(crate) fn journal(&self) -> Option<&Journal> {
        self.journal.as_ref()
    }

    /// This store's writes not yet seen in the stream, when it follows one.
    pub(crate) fn echoes(&self) -> Option<&Echoes> {
        self.echoes.as_ref()
    }

    pub(crate) fn shards(&self) -> &[Shard] {
        &self.shards
    }

    pub(crate) fn shard(&self, index: usize) -> &Shard {
        &self.shards[index]
    }

    /// The shard that holds a key.
    pub(crate) fn shard_of(&self, rendered: &str) -> &Shard {
        &self.shards[self.shard_index(rendered)]
    }

    /// Keys with mutations not yet in the backend.
    pub(crate) fn pending_keys(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    /// The flusher: a pending key's mutations are all in the backend (or settled otherwise).
    /// Mutations waiting for room are told with [`make_room`](Self::make_room).
    pub(crate) fn settled(&self) {
        self.pending.fetch_sub(1, Ordering::AcqRel);
    }

    /// The flusher: pending writes landed; wakes the mutations waiting for room.
    pub(crate) fn make_room(&self) {
        self.room.notify_waiters();
    }

    /// Completes when the flusher next makes room.
    pub(crate) fn room(&self) -> Notified<'_> {
        self.room.notified()
    }

    /// Marks the store closing; `true` for the call that closed it.
    pub(crate) fn close(&self) -> bool {
        !self.closed.swap(true, Ordering::AcqRel)
    }

    /// What a mutation needs; `on_dirty` learns the keys it dirties.
    pub(crate) fn write_context<'a>(
        &'a self,
        on_dirty: &'a (dyn Fn(u64, &str) + Sync),
    ) -> WriteContext<'a> {
        WriteContext {
            seq: &self.seq,
            pending: &self.pending,
            max_pending: self.options.max_pending,
            max_pending_bytes: self.options.max_pending_bytes,
            closed: &self.closed,
            on_dirty,
            journal: self.journal.as_ref(),
            versioned: self.options.version_attribute.is_some(),
            key_parts: None,
        }
    }

    /// Takes every shard lock once: afterwards, every mutation numbered before the call has
    /// submitted its key to the flusher.
    pub(crate) fn barrier(&self) {
        for shard in self.shards.iter() {
            shard.barrier();
        }
    }

    /// The last sequence number given out.
    pub(crate) fn last_seq(&self) -> u64 {
        self.seq.load(Ordering::Acquire)
    }

    /// Sets the sequence to continue from, after recovery.
    pub(crate) fn resume_seq(&self, seq: u64) {
        self.seq.store(seq, Ordering::Release);
    }

    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Checks an item to be stored under a key of `key_bytes` bytes as DynamoDB would, and
    /// that it does not carry the attributes the store sets itself.
    pub(crate) fn validate(&self, item: &Item, key_bytes: usize) -> Result<()> {
        self.layout.check_value(item, key_bytes)
    }

    /// Checks a delta as DynamoDB would check its request, that it changes none of the
    /// attributes the store sets itself, and that this store can write it.
    pub(crate) fn check_delta(&self, delta: &Delta) -> Result<()> {
        if !self.backend.supports_deltas() {
            return Err(Error::validation(
                "this store's backend does not support deltas (Backend::supports_deltas)",
            ));
        }
        self.layout.check_delta(delta)
    }

    /// A snapshot of the store's counters (see [`Counters::snapshot`]) and of what it holds.
    pub(crate) fn stats(&self) -> Stats {
        let mut usage = Usage::default();
        for shard in self.shards.iter() {
            usage.add(&shard.usage());
        }
        let mut stats = self
            .counters
            .snapshot(usage.counters, self.echoes.is_some());
        stats.pending = usage.dirty_entries;
        stats.cached_entries = usage.clean_entries;
        stats.cached_bytes = usage.clean_bytes;
        stats.pending_bytes = self.pending_bytes.load(Ordering::Acquire);
        stats.recovery = self.recovery.clone();
        if let Some(journal) = &self.journal {
            (stats.journal_bytes, stats.journal_segments) = journal.usage();
            stats.dead_letters = journal.dead_letters();
        }
        stats
    }

    pub(crate) fn shard_index(&self, rendered: &str) -> usize {
        self.hasher.hash(rendered).shard(self.shards.len())
    }

    /// The key's shard, and the key hashed to be found in it.
    #[inline]
    pub(crate) fn locate<'k>(&self, rendered: &'k str) -> (&Shard, Hashed<'k>) {
        let key = self.hasher.hash(rendered);
        (&self.shards[key.shard(self.shards.len())], key)
    }
}
