//! The store: a cheap, cloneable handle over shared state, in the manner of mini-redis's `Db`.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::task::JoinHandle;

use crate::backend::{string_attribute, Backend, MAX_BATCH_GET_KEYS};
use crate::config::{Config, StoreBuilder};
use crate::error::{Error, Result};
use crate::flusher::{self, Runner};
use crate::item::{self, Item};
use crate::journal::{Journal, Recovered, RecoveryReport};
use crate::key::{Key, Kinds};
use crate::retry::{Backoff, READ_ATTEMPTS};
use crate::shard::{Known, Lookup, Mutated, Mutation, Shard, Ticket, Value, WriteContext};
use crate::stats::{Counters, Stats};

/// State shared by every handle and the flusher.
pub(crate) struct Shared {
    pub shards: Box<[Shard]>,
    hasher: RandomState,
    pub backend: Arc<dyn Backend>,
    pub config: Config,
    kinds: Kinds,
    /// The last sequence number given to a mutation.
    seq: AtomicU64,
    /// Keys with mutations not yet in the backend.
    pub pending: AtomicUsize,
    closed: AtomicBool,
    pub counters: Arc<Counters>,
    flusher: flusher::Handle,
    pub journal: Option<Journal>,
    recovery: Option<RecoveryReport>,
}

impl Shared {
    pub(crate) fn write_context<'a>(
        &'a self,
        on_dirty: &'a (dyn Fn(u64, &str) + Sync),
    ) -> WriteContext<'a> {
        WriteContext {
            seq: &self.seq,
            pending: &self.pending,
            max_pending: self.config.max_pending,
            closed: &self.closed,
            on_dirty,
            journal: self.journal.as_ref(),
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

    pub(crate) fn shard_index(&self, rendered: &str) -> usize {
        (self.hasher.hash_one(rendered) % self.shards.len() as u64) as usize
    }

    /// Re-applies recovered mutations as dirty entries, to be flushed like any other.
    fn restore(&self, recovered: Recovered) {
        self.seq.store(recovered.max_seq, Ordering::Release);
        for record in recovered.records {
            let index = self.shard_index(&record.key);
            let on_dirty = |first_seq: u64, key: &str| self.flusher.dirty(first_seq, index, key);
            let ctx = self.write_context(&on_dirty);
            self.shards[index].restore(&record.key, record.item, record.seq, &ctx);
        }
    }
}

/// A write-back cache in front of a DynamoDB table (or any [`Backend`]).
///
/// Reads of cached keys never leave memory. Mutations are applied to the cache and acknowledged
/// at once; a background flusher writes them to the backend, coalesced per key and batched.
/// Cloning is cheap: clones share one cache and one flusher.
///
/// Every operation checks its key (see [`Key::validate`]) and value before touching anything,
/// so bad input fails with [`Error::Validation`] or [`Error::Serialize`] and changes nothing.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

/// The last handle's drop asks the flusher to drain and stop (mini-redis's `DbDropGuard`).
struct Inner {
    shared: Arc<Shared>,
    runner: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !self.shared.closed.swap(true, Ordering::AcqRel) {
            self.shared.flusher.close_detached();
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("config", &self.inner.shared.config)
            .finish_non_exhaustive()
    }
}

/// Aborts a load if its caller goes away before finishing it, so that waiters take over.
struct LoadGuard<'a> {
    shard: &'a Shard,
    key: &'a str,
    ticket: Option<Ticket>,
}

impl LoadGuard<'_> {
    fn finish(&mut self, loaded: Value) -> Option<Known> {
        let ticket = self.ticket.take()?;
        self.shard.finish_load(self.key, ticket, loaded)
    }
}

impl Drop for LoadGuard<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.shard.abort_load(self.key, ticket);
        }
    }
}

impl Store {
    /// Starts configuring a store over `backend`.
    pub fn builder(backend: impl Backend) -> StoreBuilder {
        StoreBuilder::new(Arc::new(backend))
    }

    pub(crate) fn start(
        backend: Arc<dyn Backend>,
        config: Config,
        kinds: Kinds,
        journal: Option<(Journal, Recovered)>,
    ) -> Self {
        let per_shard = (config.cache_capacity / config.shards as u64).max(1);
        let (handle, rx) = flusher::Handle::new();
        let (journal, recovered) = journal.unzip();
        let shared = Arc::new(Shared {
            shards: (0..config.shards).map(|_| Shard::new(per_shard)).collect(),
            hasher: RandomState::new(),
            backend,
            config,
            kinds,
            seq: AtomicU64::new(0),
            pending: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            counters: Arc::default(),
            flusher: handle,
            journal,
            recovery: recovered.as_ref().map(|r| r.report.clone()),
        });
        if let Some(recovered) = recovered {
            shared.restore(recovered);
        }
        let runner = tokio::spawn(Runner::new(Arc::clone(&shared), rx).run());
        Self {
            inner: Arc::new(Inner {
                shared,
                runner: Mutex::new(Some(runner)),
            }),
        }
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// The registry of kinds this store checks keys against.
    pub fn kinds(&self) -> &Kinds {
        &self.shared().kinds
    }

    /// Reads the value under `key`; [`Error::ItemNotExisted`] when there is none.
    pub async fn get<T: DeserializeOwned>(&self, key: &Key) -> Result<T> {
        item::to_value(&*self.read_present(key).await?)
    }

    /// Reads the item under `key` as attributes, without the partition key attribute;
    /// [`Error::ItemNotExisted`] when there is none.
    pub async fn get_item(&self, key: &Key) -> Result<Item> {
        Ok((*self.read_present(key).await?).clone())
    }

    async fn read_present(&self, key: &Key) -> Result<Arc<Item>> {
        let rendered = self.check_key(key)?;
        self.read(&rendered)
            .await?
            .value
            .ok_or_else(|| Error::ItemNotExisted { key: key.clone() })
    }

    /// True when an item exists under `key`.
    pub async fn exists(&self, key: &Key) -> Result<bool> {
        let rendered = self.check_key(key)?;
        Ok(self.read(&rendered).await?.value.is_some())
    }

    /// Reads the values under `keys`; absent keys are left out of the result.
    pub async fn get_many<'k, T, I>(&self, keys: I) -> Result<HashMap<Key, T>>
    where
        T: DeserializeOwned,
        I: IntoIterator<Item = &'k Key>,
    {
        self.read_many_present(keys)
            .await?
            .into_iter()
            .map(|(key, item)| Ok((key, item::to_value(&item)?)))
            .collect()
    }

    /// Reads the items under `keys` as attributes; absent keys are left out of the result.
    /// Keys missing from the cache are read with `BatchGetItem`, up to 100 per request.
    pub async fn get_many_items<'k, I>(&self, keys: I) -> Result<HashMap<Key, Item>>
    where
        I: IntoIterator<Item = &'k Key>,
    {
        Ok(self
            .read_many_present(keys)
            .await?
            .into_iter()
            .map(|(key, item)| (key, (*item).clone()))
            .collect())
    }

    async fn read_many_present<'k, I>(&self, keys: I) -> Result<Vec<(Key, Arc<Item>)>>
    where
        I: IntoIterator<Item = &'k Key>,
    {
        let mut wanted: HashMap<String, &Key> = HashMap::new();
        for key in keys {
            wanted.insert(self.check_key(key)?, key);
        }
        let values = self.read_many(wanted.keys().cloned().collect()).await?;
        Ok(values
            .into_iter()
            .filter_map(|(rendered, value)| Some(((*wanted.get(&rendered)?).clone(), value?)))
            .collect())
    }

    /// Stores `value` under `key` if no item is there; [`Error::ItemExisted`] otherwise.
    /// If the key is not cached, its state is read from the backend first.
    pub async fn insert<T: Serialize + ?Sized>(&self, key: &Key, value: &T) -> Result<()> {
        self.mutate(key, Some(value), Mutation::Insert).await
    }

    /// Replaces the item under `key`; [`Error::ItemNotExisted`] if there is none.
    /// If the key is not cached, its state is read from the backend first.
    pub async fn update<T: Serialize + ?Sized>(&self, key: &Key, value: &T) -> Result<()> {
        self.mutate(key, Some(value), Mutation::Update).await
    }

    /// Stores `value` under `key`, whether or not an item is there.
    pub async fn upsert<T: Serialize + ?Sized>(&self, key: &Key, value: &T) -> Result<()> {
        self.mutate(key, Some(value), Mutation::Upsert).await
    }

    /// Removes the item under `key`, if any.
    pub async fn delete(&self, key: &Key) -> Result<()> {
        self.mutate::<()>(key, None, |_| Mutation::Delete).await
    }

    /// Returns once every mutation acknowledged before the call is in the backend.
    ///
    /// If the backend refused one of those writes for good (see [`Stats::rejected_writes`]),
    /// returns that error, naming the key.
    pub async fn flush(&self) -> Result<()> {
        self.ensure_open()?;
        let upto = self.shared().seq.load(Ordering::Acquire);
        match self.shared().flusher.flush(upto, false) {
            Some(done) => done.await.unwrap_or(Err(Error::Closed)),
            None => Err(Error::Closed),
        }
    }

    /// Writes every acknowledged mutation to the backend, stops the flusher, and waits for it.
    /// Afterwards every call on any clone of this store returns [`Error::Closed`]. Closing
    /// twice is harmless.
    ///
    /// Returns an error if the backend refused some of the drained writes for good.
    pub async fn close(&self) -> Result<()> {
        let shared = self.shared();
        shared.closed.store(true, Ordering::Release);
        // A mutation checks `closed` under its shard lock and submits its key before unlocking,
        // so once every lock has been taken, every acknowledged mutation has been submitted.
        shared.barrier();
        let drained = match shared.flusher.flush(u64::MAX, true) {
            Some(done) => done.await.unwrap_or(Ok(())),
            None => Ok(()),
        };
        let runner = self.inner.runner.lock().take();
        if let Some(runner) = runner {
            if let Err(err) = runner.await {
                tracing::error!(error = %err, "the flusher stopped abnormally");
            }
        }
        drained
    }

    /// A snapshot of the store's counters and memory use.
    pub fn stats(&self) -> Stats {
        let shared = self.shared();
        let counters = &shared.counters;
        let mut stats = Stats {
            hits: Counters::get(&counters.hits),
            misses: Counters::get(&counters.misses),
            backend_reads: Counters::get(&counters.backend_reads),
            read_requests: Counters::get(&counters.read_requests),
            mutations: Counters::get(&counters.mutations),
            items_written: Counters::get(&counters.items_written),
            write_requests: Counters::get(&counters.write_requests),
            retries: Counters::get(&counters.retries),
            rejected_writes: Counters::get(&counters.rejected_writes),
            recovery: shared.recovery.clone(),
            ..Stats::default()
        };
        if let Some(journal) = &shared.journal {
            (stats.journal_bytes, stats.journal_segments) = journal.usage();
            stats.dead_letters = journal.dead_letters();
        }
        for shard in shared.shards.iter() {
            let usage = shard.usage();
            stats.pending += usage.dirty_entries;
            stats.pending_bytes += usage.dirty_bytes;
            stats.cached_entries += usage.clean_entries;
            stats.cached_bytes += usage.clean_bytes;
        }
        stats
    }

    fn ensure_open(&self) -> Result<()> {
        if self.shared().closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    fn check_key(&self, key: &Key) -> Result<String> {
        self.ensure_open()?;
        self.shared().kinds.check(key)
    }

    fn shard_index(&self, rendered: &str) -> usize {
        self.shared().shard_index(rendered)
    }

    async fn mutate<T: Serialize + ?Sized>(
        &self,
        key: &Key,
        value: Option<&T>,
        make: impl FnOnce(Arc<Item>) -> Mutation,
    ) -> Result<()> {
        let rendered = self.check_key(key)?;
        let shared = self.shared();
        let mutation = match value {
            Some(value) => make(Arc::new(item::from_value(
                value,
                &shared.config.partition_key,
                rendered.len(),
            )?)),
            None => Mutation::Delete,
        };
        let index = self.shard_index(&rendered);
        let shard = &shared.shards[index];
        let on_dirty = |first_seq: u64, key: &str| shared.flusher.dirty(first_seq, index, key);
        let ctx = shared.write_context(&on_dirty);
        let mut known = None;
        loop {
            match shard.mutate(&rendered, mutation.clone(), known.as_ref(), &ctx)? {
                Mutated::Applied(seq) => {
                    if let Some(journal) = &shared.journal {
                        journal.wait(seq).await?;
                    }
                    shared.counters.add(&shared.counters.mutations, 1);
                    return Ok(());
                }
                Mutated::Existed => return Err(Error::ItemExisted { key: key.clone() }),
                Mutated::NotExisted => return Err(Error::ItemNotExisted { key: key.clone() }),
                Mutated::NeedsLoad => known = Some(self.read(&rendered).await?),
            }
        }
    }

    /// Reads one key through the cache, loading it (once, however many callers ask) on a miss.
    async fn read(&self, rendered: &str) -> Result<Known> {
        let shared = self.shared();
        let shard = &shared.shards[self.shard_index(rendered)];
        let mut counted = false;
        loop {
            self.ensure_open()?;
            match shard.lookup(rendered) {
                Lookup::Hit(known) => {
                    if !counted {
                        shared.counters.add(&shared.counters.hits, 1);
                    }
                    return Ok(known);
                }
                Lookup::Wait(loaded) => {
                    if !counted {
                        shared.counters.add(&shared.counters.misses, 1);
                        counted = true;
                    }
                    loaded.await;
                }
                Lookup::Load(ticket) => {
                    if !counted {
                        shared.counters.add(&shared.counters.misses, 1);
                        counted = true;
                    }
                    let mut guard = LoadGuard {
                        shard,
                        key: rendered,
                        ticket: Some(ticket),
                    };
                    let loaded = self.load(rendered).await?;
                    if let Some(known) = guard.finish(loaded) {
                        return Ok(known);
                    }
                }
            }
        }
    }

    /// Reads one key from the backend, retrying transient failures a few times.
    async fn load(&self, rendered: &str) -> Result<Value> {
        let shared = self.shared();
        let pk = &shared.config.partition_key;
        let mut backoff = Backoff::default();
        loop {
            shared.counters.add(&shared.counters.read_requests, 1);
            match shared
                .backend
                .get(pk, rendered, shared.config.consistent_reads)
                .await
            {
                Ok(item) => {
                    shared.counters.add(&shared.counters.backend_reads, 1);
                    return Ok(item.map(|item| self.strip(item)));
                }
                Err(err) if err.is_retryable() && backoff.attempts() + 1 < READ_ATTEMPTS => {
                    shared.counters.add(&shared.counters.retries, 1);
                    tracing::debug!(error = %err, "read failed; retrying");
                    backoff.wait().await;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Removes the partition key attribute from a backend item.
    fn strip(&self, mut item: Item) -> Arc<Item> {
        item.remove(&*self.shared().config.partition_key);
        Arc::new(item)
    }

    /// Reads many distinct keys through the cache, loading misses in batches.
    async fn read_many(&self, keys: Vec<String>) -> Result<HashMap<String, Value>> {
        let shared = self.shared();
        let counters = &shared.counters;
        let mut found = HashMap::with_capacity(keys.len());
        let mut remaining = keys;
        let mut first_look = true;
        while !remaining.is_empty() {
            self.ensure_open()?;
            let mut loads = Vec::new();
            let mut waits = Vec::new();
            let mut again = Vec::new();
            for key in remaining {
                let index = self.shard_index(&key);
                match shared.shards[index].lookup(&key) {
                    Lookup::Hit(known) => {
                        if first_look {
                            counters.add(&counters.hits, 1);
                        }
                        found.insert(key, known.value);
                        continue;
                    }
                    Lookup::Wait(loaded) => {
                        waits.push(loaded);
                        again.push(key);
                    }
                    Lookup::Load(ticket) => loads.push((index, key, ticket)),
                }
                if first_look {
                    counters.add(&counters.misses, 1);
                }
            }
            first_look = false;
            // Every load gets its guard before the first request, so an error or a cancelled
            // call aborts all of them and lets their waiters take over.
            let mut guards: Vec<LoadGuard<'_>> = loads
                .iter()
                .map(|(index, key, ticket)| LoadGuard {
                    shard: &shared.shards[*index],
                    key,
                    ticket: Some(*ticket),
                })
                .collect();
            for chunk in guards.chunks_mut(MAX_BATCH_GET_KEYS) {
                let chunk_keys = chunk.iter().map(|g| g.key.to_owned()).collect();
                let mut loaded = self.load_batch(chunk_keys).await?;
                for guard in chunk {
                    let value = loaded.remove(guard.key).map(|item| self.strip(item));
                    match guard.finish(value) {
                        Some(known) => found.insert(guard.key.to_owned(), known.value),
                        None => {
                            again.push(guard.key.to_owned());
                            None
                        }
                    };
                }
            }
            for wait in waits {
                wait.await;
            }
            remaining = again;
        }
        Ok(found)
    }

    /// Reads up to [`MAX_BATCH_GET_KEYS`] keys with `BatchGetItem`, retrying unprocessed keys
    /// with backoff; returns the found items by rendered key.
    async fn load_batch(&self, mut keys: Vec<String>) -> Result<HashMap<String, Item>> {
        let shared = self.shared();
        let pk = &shared.config.partition_key;
        let mut items = HashMap::with_capacity(keys.len());
        let mut backoff = Backoff::default();
        while !keys.is_empty() {
            shared.counters.add(&shared.counters.read_requests, 1);
            match shared
                .backend
                .batch_get(pk, &keys, shared.config.consistent_reads)
                .await
            {
                Ok(batch) => {
                    let read = keys.len() - batch.unprocessed.len();
                    shared
                        .counters
                        .add(&shared.counters.backend_reads, read as u64);
                    for item in batch.items {
                        if let Some(key) = string_attribute(&item, pk) {
                            items.insert(key.to_owned(), item);
                        }
                    }
                    keys = batch.unprocessed;
                    if keys.is_empty() {
                        break;
                    }
                }
                Err(err) if err.is_retryable() => {
                    if backoff.attempts() + 1 >= READ_ATTEMPTS {
                        return Err(err);
                    }
                    tracing::debug!(error = %err, "batch read failed; retrying");
                }
                Err(err) => return Err(err),
            }
            if backoff.attempts() + 1 >= READ_ATTEMPTS {
                return Err(Error::transient(
                    "BatchGetItem",
                    format!(
                        "{} keys were still unprocessed after {READ_ATTEMPTS} attempts",
                        keys.len()
                    ),
                    None,
                ));
            }
            shared.counters.add(&shared.counters.retries, 1);
            backoff.wait().await;
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_their_futures_can_cross_threads() {
        fn send_sync_clone<T: Send + Sync + Clone + 'static>() {}
        fn send<T: Send>(_: &T) {}
        send_sync_clone::<Store>();
        // Never polled: this only checks, at compile time, that the futures are `Send`, so
        // that they can run in `tokio::spawn` and web handlers.
        let check = |store: Store, key: Key| {
            send(&store.get::<HashMap<String, String>>(&key));
            send(&store.get_many_items([&key]));
            send(&store.insert(&key, &()));
            send(&store.delete(&key));
            send(&store.flush());
            send(&store.close());
        };
        let _ = check;
    }
}
