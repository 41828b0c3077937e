//! The store: the public facade, a cheap, cloneable handle over shared state in the manner of
//! mini-redis's `Db`. It checks input, then calls the modules that do the work: [`load`]
//! (read-through), [`shard`](crate::shard) (entry states), the flusher and the journal.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::task::JoinHandle;
use tracing::field::Empty;
use tracing::Instrument as _;

use crate::backend::Backend;
use crate::delta::Delta;
use crate::error::{Error, Result};
use crate::flusher::{self, Runner};
use crate::follow::Follower;
use crate::item::{self, Item};
use crate::journal::{Journal, Recovered};
use crate::key::{Key, Kinds};
use crate::load::{self, Loader};
use crate::options::Options;
use crate::resume::resume;
use crate::shard::Mutation;
use crate::shared::Shared;
use crate::stats::Stats;
use crate::telemetry::{self, Handlers};
use crate::warm;
use crate::write::{self, Change, Mutator};

/// A write-back cache in front of a DynamoDB table (or any [`Backend`]).
///
/// Reads of cached keys never leave memory. Mutations are applied to the cache and acknowledged
/// at once; a background flusher writes them to the backend, coalesced per key and batched.
/// Cloning is cheap: clones share one cache and one flusher.
///
/// Every operation checks its key (against the store's [`Kinds`], if any) and value before
/// touching anything, so bad input fails with [`Error::Key`], [`Error::Validation`] or
/// [`Error::Serialize`] and changes nothing.
///
/// # One writer per key, or versioned mode
///
/// By default the store assumes it is the only writer of the keys it mutates: `insert` and
/// `update` decide "absent" and "present" from this store's view of the key, and the flusher
/// writes without conditions. Another program (or another `Store` on the same table) writing
/// the same keys may have its writes overwritten, and clean cached entries do not see its
/// changes until they are evicted, invalidated or older than
/// [`max_staleness`](crate::StoreBuilder::max_staleness). With
/// [`versioned`](crate::StoreBuilder::versioned), writes are conditional on the version this
/// store last saw, and a lost race is reported as a [`Conflict`](crate::Conflict) instead.
///
/// # Cancellation
///
/// Dropping the future of a call before it completes never leaves a mutation half done:
///
/// - a read that is dropped changes nothing (a load it was making is handed to the next caller
///   that asks for the key);
/// - `insert` and `update` of a key the store does not know yet read it first: dropped during
///   that read, they change nothing;
/// - without a journal, a mutation is applied and acknowledged in the same poll, so once applied
///   its future is complete;
/// - with a journal, a mutation is applied and journaled first, then waits for the disk: dropped
///   during that wait, it stays applied, is visible to reads and will be written to the backend
///   like any other; only the confirmation that its record reached the disk is lost.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

/// The last handle's drop asks the flusher to drain and stop (mini-redis's `DbDropGuard`).
struct Inner {
    shared: Arc<Shared>,
    loader: Loader,
    flusher: flusher::Handle,
    runner: Mutex<Option<JoinHandle<()>>>,
    /// The stream follower's task, when the store follows a stream.
    follower: Option<JoinHandle<()>>,
    /// The warm restart's prefetch, while it runs.
    warm_up: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.shared.close() {
            tracing::warn!(
                pending = self.shared.pending_keys(),
                "the last handle of a quickstore Store was dropped without close(): its pending \
                 writes drain in the background only while the Tokio runtime runs, and writes \
                 the backend refuses are not reported to anyone"
            );
            self.flusher.close_detached();
        }
        for task in [&self.follower, &self.warm_up].into_iter().flatten() {
            task.abort();
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("options", self.shared().options())
            .field("kinds", self.shared().kinds())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Starts the flusher over a checked configuration and a recovered journal.
    ///
    /// # Errors
    ///
    /// When the keys the journal left with deltas only cannot be read (see [`resume`]).
    pub(crate) async fn start(
        backend: Arc<dyn Backend>,
        options: Options,
        kinds: Kinds,
        journal: Option<(Journal, Recovered)>,
        handlers: Handlers,
        follower: Option<Follower>,
    ) -> Result<Self> {
        let (journal, recovered) = journal.unzip();
        let report = recovered.as_ref().map(|r| r.report.clone());
        let shared = Arc::new(Shared::new(
            backend,
            options,
            kinds,
            journal,
            report,
            follower.is_some(),
        ));
        let (flusher, rx) = flusher::Handle::new();
        if let Some(recovered) = recovered {
            resume(&shared, &flusher, recovered).await?;
        }
        let runner = tokio::spawn(Runner::new(Arc::clone(&shared), rx, handlers).run());
        let follower = follower.map(|follower| tokio::spawn(follower.run(Arc::clone(&shared))));
        let loader = Loader::new(Arc::clone(&shared));
        let warm_up = shared
            .options()
            .warm_restart
            .clone()
            .map(|path| tokio::spawn(warm::warm_up(loader.clone(), Arc::clone(&shared), path)));
        Ok(Self {
            inner: Arc::new(Inner {
                loader,
                shared,
                flusher,
                runner: Mutex::new(Some(runner)),
                follower,
                warm_up,
            }),
        })
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// The registry of kinds this store checks keys against.
    pub fn kinds(&self) -> &Kinds {
        self.shared().kinds()
    }

    /// Reads the value under `key`, or `None` when there is none. A cached value is
    /// deserialized straight from the shared item, without copying it first.
    ///
    /// # Errors
    ///
    /// As [`get_item`](Self::get_item), and [`Error::Serialize`] when the item does not
    /// deserialize as `T`.
    pub async fn get<T: DeserializeOwned>(&self, key: &Key) -> Result<Option<T>> {
        match self.get_item(key).await? {
            Some(item) => item::to_value(&item).map(Some),
            None => Ok(None),
        }
    }

    /// Reads the value under `key` as a shared `Arc<T>`, or `None` when there is none.
    ///
    /// The first read of a cached state decodes it and keeps the decoded value beside the
    /// item (the entry then weighs twice its item against `cache_capacity`); later reads of
    /// that state, until it changes, cost a lookup and a reference count, with no decoding.
    /// For hot keys read far more often than written. A key read as two different types
    /// keeps the last one decoded.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub async fn get_arc<T>(&self, key: &Key) -> Result<Option<Arc<T>>>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        self.check_key(key)?;
        match load::known_decoded(self.shared(), key.as_str()) {
            Some(found) => Ok(found),
            None => self.inner.loader.read_decoded(key.as_str()).await,
        }
    }

    /// Reads the item under `key` as attributes, without the partition key attribute, or
    /// `None` when there is none. A cache hit hands out the cached item itself: a reference
    /// count, not a copy.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after [`close`](Self::close); [`Error::Key`] for a key the store's
    /// [`Kinds`] refuses; on a miss, [`Error::Backend`] when the read still fails after the
    /// store's retries ([`RetryPolicy`](crate::RetryPolicy)). A hit cannot fail.
    pub async fn get_item(&self, key: &Key) -> Result<Option<Arc<Item>>> {
        self.check_key(key)?;
        match load::known_value(self.shared(), key.as_str()) {
            Some(value) => Ok(value),
            None => Ok(self.inner.loader.read(key.as_str()).await?.value),
        }
    }

    /// True when an item exists under `key`.
    ///
    /// # Errors
    ///
    /// As [`get_item`](Self::get_item).
    pub async fn exists(&self, key: &Key) -> Result<bool> {
        Ok(self.get_item(key).await?.is_some())
    }

    /// Reads the values under `keys`; absent keys are left out of the result.
    ///
    /// # Errors
    ///
    /// As [`get_many_items`](Self::get_many_items), and [`Error::Serialize`] when an item
    /// does not deserialize as `T`.
    pub async fn get_many<'k, T, I>(&self, keys: I) -> Result<HashMap<Key, T>>
    where
        T: DeserializeOwned,
        I: IntoIterator<Item = &'k Key>,
    {
        self.get_many_items(keys)
            .await?
            .into_iter()
            .map(|(key, item)| Ok((key, item::to_value(&item)?)))
            .collect()
    }

    /// Reads the items under `keys` as attributes; absent keys are left out of the result.
    /// Keys missing from the cache are read with `BatchGetItem`, up to 100 keys a request and
    /// several requests at once.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after [`close`](Self::close); [`Error::Key`] for a key the store's
    /// [`Kinds`] refuses, before anything is read; [`Error::Backend`] when a batched read still
    /// fails after the store's retries. The keys read meanwhile stay cached.
    pub async fn get_many_items<'k, I>(&self, keys: I) -> Result<HashMap<Key, Arc<Item>>>
    where
        I: IntoIterator<Item = &'k Key>,
    {
        let mut wanted: HashMap<&str, &Key> = HashMap::new();
        for key in keys {
            self.check_key(key)?;
            wanted.insert(key.as_str(), key);
        }
        let values = self
            .inner
            .loader
            .read_many(wanted.keys().copied().collect())
            .await?;
        Ok(values
            .into_iter()
            .filter_map(|(rendered, value)| Some(((*wanted.get(rendered)?).clone(), value?)))
            .collect())
    }

    /// Reads into the cache the keys it does not hold, with batched reads (`BatchGetItem`, up
    /// to 100 keys a request), without returning them: a warm-up before traffic arrives, or
    /// ahead of a burst of reads. Keys already cached, pending or being read are left alone.
    /// Returns how many keys were read from the backend, found or absent.
    ///
    /// Prefetching is neither a hit nor a miss: [`Stats::prefetched`] counts the keys it read
    /// and [`Stats::prefetch_hits`] those that were then read, each once.
    ///
    /// # Errors
    ///
    /// A key the store's [`Kinds`] registry refuses fails the call before anything is read. A
    /// read the backend fails (after retries) fails the call once every key was tried; the keys
    /// read meanwhile stay cached.
    pub async fn prefetch<'k, I>(&self, keys: I) -> Result<u64>
    where
        I: IntoIterator<Item = &'k Key>,
    {
        let mut wanted = Vec::new();
        for key in keys {
            self.check_key(key)?;
            wanted.push(key.as_str());
        }
        wanted.sort_unstable();
        wanted.dedup();
        self.inner.loader.prefetch(wanted).await
    }

    /// Stores `value` under `key` if no item is there; [`Error::ItemExisted`] otherwise.
    /// If the key is not cached, its state is read from the backend first.
    ///
    /// # Errors
    ///
    /// - [`Error::ItemExisted`] when an item is there.
    /// - [`Error::Serialize`] when `value` does not serialize to a map, [`Error::Validation`]
    ///   when DynamoDB would refuse the item (over 400 KB, nested too deep, an empty set...) or
    ///   it carries the partition key attribute.
    /// - [`Error::TooManyRequests`] when the pending writes fill the store's bounds
    ///   ([`Backpressure`](crate::Backpressure)).
    /// - [`Error::Backend`] when the read of a key the store does not hold fails; [`Error::Journal`]
    ///   when the journal cannot take the mutation.
    /// - [`Error::Closed`] after [`close`](Self::close); [`Error::Key`] for a key the store's
    ///   [`Kinds`] refuses.
    ///
    /// On any error, nothing changed.
    pub async fn insert<T: Serialize + ?Sized>(&self, key: &Key, value: &T) -> Result<()> {
        let item = self.serialize(key, value)?;
        self.mutate(key, Mutation::Insert(item)).await
    }

    /// Replaces the item under `key`; [`Error::ItemNotExisted`] if there is none.
    /// If the key is not cached, its state is read from the backend first.
    ///
    /// # Errors
    ///
    /// [`Error::ItemNotExisted`] when no item is there; otherwise as
    /// [`insert`](Self::insert).
    pub async fn update<T: Serialize + ?Sized>(&self, key: &Key, value: &T) -> Result<()> {
        let item = self.serialize(key, value)?;
        self.mutate(key, Mutation::Update(item)).await
    }

    /// Stores `value` under `key`, whether or not an item is there.
    ///
    /// # Errors
    ///
    /// As [`insert`](Self::insert), less `ItemExisted`. The key is read first only in versioned
    /// mode, to learn its version.
    pub async fn upsert<T: Serialize + ?Sized>(&self, key: &Key, value: &T) -> Result<()> {
        let item = self.serialize(key, value)?;
        self.mutate(key, Mutation::Upsert(item)).await
    }

    /// [`insert`](Self::insert) of an item given as attributes, checked as DynamoDB would
    /// check it (see [`Store`]); it must not carry the partition key attribute.
    ///
    /// # Errors
    ///
    /// As [`insert`](Self::insert), with no `Serialize` error.
    pub async fn insert_item(&self, key: &Key, item: Item) -> Result<()> {
        let item = self.check_item(key, item)?;
        self.mutate(key, Mutation::Insert(item)).await
    }

    /// [`update`](Self::update) with an item given as attributes; see
    /// [`insert_item`](Self::insert_item).
    ///
    /// # Errors
    ///
    /// As [`update`](Self::update), with no `Serialize` error.
    pub async fn update_item(&self, key: &Key, item: Item) -> Result<()> {
        let item = self.check_item(key, item)?;
        self.mutate(key, Mutation::Update(item)).await
    }

    /// [`upsert`](Self::upsert) with an item given as attributes; see
    /// [`insert_item`](Self::insert_item).
    ///
    /// # Errors
    ///
    /// As [`upsert`](Self::upsert), with no `Serialize` error.
    pub async fn upsert_item(&self, key: &Key, item: Item) -> Result<()> {
        let item = self.check_item(key, item)?;
        self.mutate(key, Mutation::Upsert(item)).await
    }

    /// Applies `delta` to the item under `key`, creating it if there is none: adds to
    /// counters, adds or removes set members, appends to lists, sets attributes that are absent.
    ///
    /// The change is acknowledged at once and visible to this store's reads, like any
    /// mutation. Its write is an `UpdateItem` that DynamoDB applies to whatever the item holds
    /// then, so deltas from many stores on one item all count, with no read before the write
    /// and no conflict, in versioned mode too (the write advances the version, so another
    /// store's full write built on the version before it is a conflict). Deltas of a key
    /// pending together combine into one write: ten thousand increments of a hot counter
    /// between flushes are one `ADD`. Each write carries this store's [`Mark`](crate::backend::Mark),
    /// so a write sent again after a lost answer, or recovered from the journal after a crash,
    /// is applied once. Once the write lands, the item the table answers with, other writers'
    /// changes included, becomes the cached state.
    ///
    /// A full mutation of the key ([`upsert`](Self::upsert), [`delete`](Self::delete), ...)
    /// after pending deltas replaces them; deltas after a pending full mutation fold into it.
    /// If the key is not cached, its state is read from the backend first.
    ///
    /// ```
    /// # use quickstore::{Delta, Key, Store};
    /// # async fn count(store: &Store) -> quickstore::Result<()> {
    /// let page = Key::new("Page", "home")?;
    /// store.apply(&page, Delta::new().add("views", 1)).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] when DynamoDB would refuse the delta ([`Delta::check`]), when it
    /// changes an attribute the store sets itself, when it cannot apply to the item (a number
    /// added to a string), or when the backend does not support deltas
    /// ([`Backend::supports_deltas`]); otherwise as [`upsert`](Self::upsert).
    pub async fn apply(&self, key: &Key, delta: Delta) -> Result<()> {
        self.check_key(key)?;
        self.shared().check_delta(&delta)?;
        self.mutate(key, Mutation::Apply(Arc::new(delta))).await
    }

    /// Removes the item under `key`, if any.
    ///
    /// # Errors
    ///
    /// As [`upsert`](Self::upsert), less the errors of a value.
    pub async fn delete(&self, key: &Key) -> Result<()> {
        self.check_key(key)?;
        self.mutate(key, Mutation::Delete).await
    }

    /// Reads the value under `key`, lets `f` decide what to do with it, and applies that, as
    /// one step: no other operation on `key` in this store comes between the read and the
    /// write. Returns the second half of what `f` returns, for the caller.
    ///
    /// `f` gets the current value (`None` when absent; the key is read from the backend first
    /// if the store does not know it) and returns a [`Change`]: `Put` a new value, `Delete`, or
    /// `Keep` it as it is. It runs once, under the key's shard lock: keep it short, and do not
    /// block or call the store from it.
    ///
    /// A counter, and an append to a list:
    ///
    /// ```no_run
    /// use quickstore::{Change, Key, Store};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Default, Serialize, Deserialize)]
    /// struct Counter { n: u64 }
    ///
    /// #[derive(Default, Serialize, Deserialize)]
    /// struct Log { lines: Vec<String> }
    ///
    /// # async fn example(store: Store) -> quickstore::Result<()> {
    /// let hits = Key::new("Counter", "hits")?;
    /// let n = store
    ///     .update_with(&hits, |counter: Option<Counter>| {
    ///         let n = counter.unwrap_or_default().n + 1;
    ///         (Change::Put(Counter { n }), n)
    ///     })
    ///     .await?;
    ///
    /// let log = Key::new("Log", "audit")?;
    /// store
    ///     .update_with(&log, |log: Option<Log>| {
    ///         let mut log = log.unwrap_or_default();
    ///         log.lines.push(format!("hit {n}"));
    ///         (Change::Put(log), ())
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Serialize`] if the current item does not deserialize as `T` or the new value
    /// does not serialize to an item, and [`Error::Validation`] if DynamoDB would refuse the
    /// new item; the key is then left as it was. Otherwise as [`upsert`](Self::upsert).
    pub async fn update_with<T, R>(
        &self,
        key: &Key,
        f: impl FnOnce(Option<T>) -> (Change<T>, R),
    ) -> Result<R>
    where
        T: Serialize + DeserializeOwned,
    {
        self.check_key(key)?;
        self.mutator().mutate_with(key, write::typed(f)).await
    }

    /// [`update_with`](Self::update_with) on items given as attributes: `f` gets the cached
    /// item itself, without a copy.
    ///
    /// # Errors
    ///
    /// As [`update_with`](Self::update_with), with no `Serialize` error.
    pub async fn update_item_with<R>(
        &self,
        key: &Key,
        f: impl FnOnce(Option<&Item>) -> (Change<Item>, R),
    ) -> Result<R> {
        self.check_key(key)?;
        self.mutator()
            .mutate_with(key, |current| Ok(f(current)))
            .await
    }

    /// Forgets the cached state of `key`, so that the next read goes to the backend. A state
    /// with mutations not yet written is kept: it is newer than the backend's.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after [`close`](Self::close); [`Error::Key`] for a key the store's
    /// [`Kinds`] refuses.
    pub fn invalidate(&self, key: &Key) -> Result<()> {
        self.check_key(key)?;
        let shared = self.shared();
        shared.shard_of(key.as_str()).invalidate(key.as_str());
        Ok(())
    }

    /// Forgets every cached state but those with mutations not yet written; see
    /// [`invalidate`](Self::invalidate).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after [`close`](Self::close).
    pub fn invalidate_all(&self) -> Result<()> {
        self.ensure_open()?;
        for shard in self.shared().shards() {
            shard.invalidate_all();
        }
        Ok(())
    }

    /// Reads `key` from the backend now, replacing its cached state, and returns it. A key
    /// with mutations not yet written is not read: its pending state is returned.
    ///
    /// # Errors
    ///
    /// As [`get_item`](Self::get_item) on a miss.
    pub async fn refresh(&self, key: &Key) -> Result<Option<Arc<Item>>> {
        self.invalidate(key)?;
        Ok(self.inner.loader.read(key.as_str()).await?.value)
    }

    /// Returns once every mutation acknowledged before the call is in the backend.
    ///
    /// Runs in a `flush` span: the keys `pending` when it was called, and its `outcome` (`ok`
    /// or `error`, with the `error`).
    ///
    /// # Errors
    ///
    /// [`Error::Refused`] when the backend refused some of those writes for good (see
    /// [`Stats::rejected_writes`]), naming them: every refused write the call covers, and any
    /// refused earlier that no call has reported yet. [`Error::Closed`] after
    /// [`close`](Self::close). Transient failures are retried, not returned: during an outage
    /// `flush` waits for the backend (see [`flush_within`](Self::flush_within)).
    pub async fn flush(&self) -> Result<()> {
        let pending = self.shared().pending_keys();
        let span = tracing::info_span!("flush", pending, outcome = Empty, error = Empty);
        let result = self.flush_now().instrument(span.clone()).await;
        telemetry::record_outcome(&span, &result);
        result
    }

    async fn flush_now(&self) -> Result<()> {
        self.ensure_open()?;
        let upto = self.shared().last_seq();
        match self.inner.flusher.flush(upto, false) {
            Some(done) => done.await.unwrap_or(Err(Error::Closed)),
            None => Err(Error::Closed),
        }
    }

    /// [`flush`](Self::flush), giving up after `limit`: then [`Error::Timeout`] says how many
    /// keys still wait for the backend and whether they are safe in the journal. The store
    /// stays usable, and its writes go on in the background.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when `limit` passes first; otherwise as [`flush`](Self::flush).
    pub async fn flush_within(&self, limit: Duration) -> Result<()> {
        let flushed = tokio::time::timeout(limit, self.flush()).await;
        flushed.unwrap_or_else(|_| Err(self.timed_out(limit)))
    }

    /// [`close`](Self::close), giving up after `limit`: then [`Error::Timeout`] says how many
    /// keys still wait for the backend and whether they are safe in the journal. The store is
    /// closed to new calls either way; its writes go on in the background while the runtime
    /// runs, and a later `close` waits for them again.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when `limit` passes first; otherwise as [`close`](Self::close).
    pub async fn close_within(&self, limit: Duration) -> Result<()> {
        let closed = tokio::time::timeout(limit, self.close()).await;
        closed.unwrap_or_else(|_| Err(self.timed_out(limit)))
    }

    fn timed_out(&self, waited: Duration) -> Error {
        let shared = self.shared();
        Error::Timeout {
            remaining: shared.pending_keys(),
            journaled: shared.journal().is_some(),
            waited,
        }
    }

    /// Writes every acknowledged mutation to the backend, stops the flusher and the journal,
    /// and waits for them. Afterwards every call on any clone of this store returns
    /// [`Error::Closed`]. Closing twice is harmless.
    ///
    /// Runs in a `close` span, with the same fields as [`flush`](Self::flush)'s.
    ///
    /// # Errors
    ///
    /// [`Error::Refused`] when the backend refused some of the drained writes for good, as
    /// [`flush`](Self::flush). A second `close` returns `Ok`.
    pub async fn close(&self) -> Result<()> {
        let pending = self.shared().pending_keys();
        let span = tracing::info_span!("close", pending, outcome = Empty, error = Empty);
        let result = self.close_now().instrument(span.clone()).await;
        telemetry::record_outcome(&span, &result);
        result
    }

    async fn close_now(&self) -> Result<()> {
        let shared = self.shared();
        shared.close();
        for task in [&self.inner.follower, &self.inner.warm_up]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
        // A mutation checks `closed` under its shard lock and submits its key before unlocking,
        // so once every lock has been taken, every acknowledged mutation has been submitted.
        shared.barrier();
        let drained = match self.inner.flusher.flush(u64::MAX, true) {
            Some(done) => done.await.unwrap_or(Ok(())),
            None => Ok(()),
        };
        let runner = self.inner.runner.lock().take();
        if let Some(runner) = runner {
            if let Err(err) = runner.await {
                tracing::error!(error = %err, "the flusher stopped abnormally");
            }
            self.save_warm_keys().await;
        }
        drained
    }

    /// Saves the keys of the clean entries for a warm restart, if the store was asked to. A
    /// failure is logged, not returned: every write is in the backend by then.
    async fn save_warm_keys(&self) {
        let Some(path) = self.shared().options().warm_restart.clone() else {
            return;
        };
        let inner = Arc::clone(&self.inner);
        let saved = tokio::task::spawn_blocking(move || warm::save(&inner.shared, &path)).await;
        match saved {
            Ok(Ok(keys)) => tracing::debug!(keys, "warm restart: keys saved"),
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "warm restart: the keys could not be saved; the next open starts cold");
            }
            Err(err) => tracing::warn!(error = %err, "warm restart: saving the keys failed"),
        }
    }

    /// A snapshot of the store's counters and memory use.
    pub fn stats(&self) -> Stats {
        self.shared().stats()
    }

    #[inline]
    fn ensure_open(&self) -> Result<()> {
        if self.shared().is_closed() {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    #[inline]
    fn check_key(&self, key: &Key) -> Result<()> {
        self.ensure_open()?;
        Ok(self.shared().kinds().check(key)?)
    }

    /// Checks the key, then converts the value to an item DynamoDB would accept.
    fn serialize<T: Serialize + ?Sized>(&self, key: &Key, value: &T) -> Result<Arc<Item>> {
        self.check_key(key)?;
        let item = item::to_item(value)?;
        self.shared().validate(&item, key.as_str().len())?;
        Ok(Arc::new(item))
    }

    /// Checks the key, then the item as DynamoDB would.
    fn check_item(&self, key: &Key, item: Item) -> Result<Arc<Item>> {
        self.check_key(key)?;
        self.shared().validate(&item, key.as_str().len())?;
        Ok(Arc::new(item))
    }

    fn mutator(&self) -> Mutator<'_> {
        Mutator {
            shared: self.shared(),
            loader: &self.inner.loader,
            flusher: &self.inner.flusher,
        }
    }

    async fn mutate(&self, key: &Key, mutation: Mutation) -> Result<()> {
        self.mutator().mutate(key, mutation).await
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
            send(&store.upsert_item(&key, Item::new()));
            send(&store.update_with(&key, |n: Option<HashMap<String, u64>>| {
                (Change::Put(n.unwrap_or_default()), ())
            }));
            send(&store.refresh(&key));
            send(&store.delete(&key));
            send(&store.flush());
            send(&store.close());
        };
        let _ = check;
    }
}
