//! One cache shard: the state of every key it holds, and the transitions between states.
//!
//! A key is in at most one of four states:
//!
//! - **unknown**: not in the shard; the backend must be asked.
//! - **loading**: one caller is reading it from the backend; others wait for that read
//!   (single flight) instead of making their own.
//! - **clean**: the value (or its absence: negative caching) matches the backend. Clean
//!   entries live in a byte-bounded, scan-resistant `quick_cache` and may be evicted.
//! - **dirty**: acknowledged to a caller but not yet in the backend. Dirty entries live in a
//!   plain map outside the cache, so eviction cannot reach them: a read never falls back to an
//!   older backend state while a newer one is pending.
//!
//! The flusher moves dirty keys back to clean once the backend has their newest state. While
//! one write of a key is in flight, newer mutations of it stay dirty and are written after it
//! completes, so an older state never lands over a newer one.
//!
//! Each shard is guarded by a [`Mutex`](crate::lock::Mutex). Critical sections are short,
//! never await, and never touch the network, so a blocking lock is cheaper than an async one
//! here.

use std::any::Any;
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::futures::OwnedNotified;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::delta::Delta;
use crate::error::{Error, Result};
use crate::item::{self, Item};
use crate::journal::{Journal, Op, TableState};
use crate::key::Parts;
use crate::lock::Mutex;
use crate::stats::ShardCounters;
use crate::version::Base;

mod clean;
mod unwritten;

use clean::Clean;
pub(crate) use clean::{Hashed, KeyHasher};
use unwritten::{Taken, Unwritten};

/// An item's state: `Some` when present, `None` when known to be absent.
pub(crate) type Value = Option<Arc<Item>>;

/// What a mutation took out of a shard: the value it replaced, or the clean entry it
/// superseded. The caller drops it after releasing the shard's lock, so that freeing an item
/// never holds up the shard's other callers.
#[must_use]
struct Replaced {
    _value: Value,
    _clean: Option<clean::Removed>,
}

/// Bytes counted for an entry besides its key and item: map slots, `Arc`s, bookkeeping.
const ENTRY_OVERHEAD: u64 = 64;

/// A change requested by a caller.
#[derive(Debug, Clone)]
pub(crate) enum Mutation {
    /// Store the item only if none exists.
    Insert(Arc<Item>),
    /// Replace the item only if one exists.
    Update(Arc<Item>),
    /// Store the item.
    Upsert(Arc<Item>),
    /// Remove the item.
    Delete,
    /// Apply a checked delta to the item, creating it if there is none.
    Apply(Arc<Delta>),
}

impl Mutation {
    /// Whether applying the mutation needs the key's current state: an insert's or update's
    /// precondition, the item a delta changes, or, in versioned mode, the version its write is
    /// conditional on.
    fn needs_current(&self, versioned: bool) -> bool {
        versioned || !matches!(self, Mutation::Upsert(_) | Mutation::Delete)
    }

    /// The mutation as the shard records it, given the key's current state when it
    /// [needs it](Self::needs_current). Fails when a delta cannot apply to that state.
    fn into_next(self, current: Option<&Value>, key_bytes: usize) -> Result<Next> {
        Ok(match self {
            Mutation::Insert(item) => Next::Full(Op::Insert, Some(item)),
            Mutation::Update(item) => Next::Full(Op::Update, Some(item)),
            Mutation::Upsert(item) => Next::Full(Op::Upsert, Some(item)),
            Mutation::Delete => Next::Full(Op::Delete, None),
            Mutation::Apply(delta) => {
                let current = current.and_then(Option::as_deref);
                let value = delta.applied_to(current, key_bytes)?;
                Next::Delta(Some(Arc::new(value)), delta)
            }
        })
    }
}

/// An admitted mutation: the key's new state, and what its write sends.
enum Next {
    /// The whole state, written as a put or a delete.
    Full(Op, Value),
    /// The state a delta leaves, and the delta, written as an update.
    Delta(Value, Arc<Delta>),
}

impl Next {
    fn value(&self) -> &Value {
        match self {
            Next::Full(_, value) | Next::Delta(value, _) => value,
        }
    }
}

/// What a mutation needs from the rest of the store, borrowed for one call.
pub(crate) struct WriteContext<'a> {
    /// The store-wide mutation sequence.
    pub seq: &'a AtomicU64,
    /// Dirty keys in the whole store.
    pub pending: &'a AtomicUsize,
    /// The bound on `pending`.
    pub max_pending: usize,
    /// The bound on the bytes of dirty entries in the whole store.
    pub max_pending_bytes: u64,
    /// Set once the store starts closing.
    pub closed: &'a AtomicBool,
    /// Called, under the shard lock, when a key becomes dirty, with the key's first sequence.
    pub on_dirty: &'a (dyn Fn(u64, &str) + Sync),
    /// Where mutations are journaled, if anywhere; it then numbers them.
    pub journal: Option<&'a Journal>,
    /// Versioned mode: every mutation knows the version of the state it replaces.
    pub versioned: bool,
    /// Where the call's key splits into parent, kind and identifier (its rendered form does
    /// not say), kept with a key that becomes dirty for the conflicts and refusals that name
    /// it; `None` for recovered mutations.
    pub key_parts: Option<Parts>,
}

/// The outcome of [`Shard::mutate`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Mutated {
    /// Applied and acknowledged, with this sequence number.
    Applied(u64),
    /// The key's current state is unknown and the mutation depends on it: load it first.
    NeedsLoad,
    /// An insert found an item: nothing changed.
    Existed,
    /// An update found no item: nothing changed.
    NotExisted,
}

/// The outcome of [`Shard::mutate_with`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum MutatedWith<R> {
    /// The decision was applied and acknowledged with this sequence number.
    Applied(u64, R),
    /// The decision was to leave the key as it is.
    Unchanged(R),
    /// The key's current state is unknown: load it first.
    NeedsLoad,
}

/// The outcome of [`Shard::lookup`].
pub(crate) enum Lookup {
    /// The key's current state.
    Hit(Known),
    /// Another caller is loading the key: wait, then look again.
    Wait(Waiter),
    /// The caller must load the key and report with [`Shard::finish_load`] or
    /// [`Shard::abort_load`].
    Load(Ticket),
}

/// A caller waiting for another caller's load of a key.
pub(crate) struct Waiter {
    notified: OwnedNotified,
    failure: Arc<OnceLock<Error>>,
}

impl Waiter {
    /// Waits for the load to end. Returns the load's error if it failed, so that one failed
    /// load fails its waiters at once instead of each retrying it; `Ok` when the caller should
    /// look again (the load finished, or its caller gave up and the next look takes over).
    pub(crate) async fn wait(self) -> Result<()> {
        self.notified.await;
        match self.failure.get() {
            Some(err) => Err(err.clone()),
            None => Ok(()),
        }
    }
}

/// The right to install one load's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket(u64);

/// A key's state as of a shard generation, so a mutation can rely on it only while nothing in
/// the shard has changed since.
#[derive(Debug, Clone)]
pub(crate) struct Known {
    pub value: Value,
    /// The value's version in the table (0 when unversioned; meaningless when absent).
    pub version: u64,
    generation: u64,
}

/// How a write taken with [`Shard::take_for_write`] ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Landed {
    /// The table holds the written state: present at this version, or absent (`None`).
    Written(Option<u64>),
    /// The delta landed (now or before), and the table answered with the key's state: its
    /// value, and the value's version.
    Updated(Value, u64),
    /// The backend refused the write for good.
    Refused,
}

/// A dirty key's state, for the flusher to write.
#[derive(Debug, Clone)]
pub(crate) struct ToWrite {
    pub value: Value,
    /// The delta to write, when the write is one; otherwise the write puts `value` (or deletes
    /// the item).
    pub delta: Option<Arc<Delta>>,
    /// The newest mutation the write includes.
    pub seq: u64,
    /// The table's state the key's pending mutations started from. Versioned writes are
    /// conditional on it.
    pub base: Base,
    /// See [`WriteContext::key_parts`].
    pub parts: Option<Parts>,
}

/// The base a mutation of a key in state `current` builds on.
fn base_of(current: &Current, versioned: bool) -> Base {
    let read = if versioned && current.base == Some(0) {
        current.value.clone()
    } else {
        None
    };
    Base {
        version: current.base,
        read,
    }
}

/// The outcome of [`Shard::complete_write`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Completed {
    /// The written state was the newest: the key left the dirty set.
    Settled,
    /// Newer mutations arrived meanwhile; the key stays dirty, with this first sequence.
    StillDirty(u64),
}

/// A clean value decoded into a Rust type, shared by every `Store::get_arc` of that type.
pub(crate) type Decoded = Arc<dyn Any + Send + Sync>;

/// A change of a key seen in the table's stream.
#[derive(Debug, Clone)]
pub(crate) struct Observed {
    /// The state after the change, and its version; `None` when the record does not say.
    pub state: Option<(Value, u64)>,
    /// When the change was made, on this process's clock.
    pub at: Instant,
    /// The change is one of this store's own writes.
    pub own: bool,
}

/// What [`Shard::follow`] did with a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Followed {
    /// Nothing: the key is not cached, is pending, already holds the state, or the change was
    /// this store's own.
    Ignored,
    /// The cached state was replaced by the changed one.
    Replaced,
    /// The cached state was dropped, to be read again.
    Invalidated,
}

/// What a shard holds, for statistics.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Usage {
    pub clean_entries: usize,
    pub clean_bytes: u64,
    pub dirty_entries: usize,
    /// The shard's read counters.
    pub counters: ShardCounters,
}

impl Usage {
    /// Adds `other`'s usage to this one.
    pub(crate) fn add(&mut self, other: &Usage) {
        self.clean_entries += other.clean_entries;
        self.clean_bytes += other.clean_bytes;
        self.dirty_entries += other.dirty_entries;
        self.counters.add(&other.counters);
    }
}

#[derive(Clone)]
struct Cached {
    value: Value,
    weight: u64,
    /// When the value was read from, or written to, the backend.
    since: Instant,
    /// The value's version in the table (0 when unversioned).
    version: u64,
    /// The value came from the table's stream, so a later record of the key is newer.
    from_stream: bool,
    /// The value decoded into a Rust type by `Store::get_arc`, kept for the next such read.
    decoded: Option<Decoded>,
    /// Loaded by a prefetch (or a warm-up) and not read since: its first hit is counted as
    /// the prefetch's. A `Cell`: the fast lane clears it through the shared reference the
    /// cache hands out, under the shard lock.
    prefetched: Cell<bool>,
}

impl Cached {
    /// Whether the entry is older than `max_staleness` and must be read again.
    #[inline]
    fn is_stale(&self, max_staleness: Option<Duration>) -> bool {
        max_staleness.is_some_and(|max| self.since.elapsed() >= max)
    }

    /// Whether the entry was prefetched and not read since, clearing the mark. Reads the mark
    /// first: a hit writes to the entry only the first time.
    #[inline]
    fn take_prefetched(&self) -> bool {
        let prefetched = self.prefetched.get();
        if prefetched {
            self.prefetched.set(false);
        }
        prefetched
    }

    /// A value read from, or written to, the backend just now.
    fn new(value: Value, weight: u64, version: u64) -> Self {
        Self {
            value,
            weight,
            since: Instant::now(),
            version,
            from_stream: false,
            decoded: None,
            prefetched: Cell::new(false),
        }
    }
}

struct Dirty {
    value: Value,
    weight: u64,
    /// What the next write sends.
    unwritten: Unwritten,
    /// The write in flight, to put back if its outcome is unknown.
    flying: Option<Taken>,
    /// The newest mutation.
    seq: u64,
    /// The oldest mutation not yet in the backend.
    first_seq: u64,
    /// The sequence of the state being written, while a write is in flight.
    in_flight: Option<u64>,
    /// The first mutation after the in-flight state.
    next_first: Option<u64>,
    /// The table's state the pending mutations started from; see [`ToWrite::base`].
    base: Base,
    /// See [`WriteContext::key_parts`].
    parts: Option<Parts>,
}

struct Flight {
    ticket: Ticket,
    notify: Arc<Notify>,
    /// Set when the load failed, before its waiters are woken.
    failure: Arc<OnceLock<Error>>,
    /// A mutation arrived while loading: the loaded state must not be cached.
    stale: bool,
}

/// What the read path's fast lane finds of a key the shard knows.
#[derive(Clone, Copy)]
enum Fresh<'a> {
    /// The key has mutations not yet written: this is its newest state.
    Pending(&'a Value),
    /// The key's clean entry, younger than `max_staleness`.
    Clean(&'a Cached),
}

/// A key's state as the shard knows it.
struct Current {
    value: Value,
    /// The clean value's version (0 for a dirty key).
    version: u64,
    /// The table's state a mutation would replace; see [`ToWrite::base`].
    base: Option<u64>,
    /// The clean entry was prefetched and not read since.
    prefetched: bool,
}

/// The maps of pending and loading keys: foldhash, as quick_cache uses for clean ones.
type Map<V> = HashMap<String, V, foldhash::fast::RandomState>;

struct State {
    clean: Clean,
    dirty: Map<Dirty>,
    loading: Map<Flight>,
    /// The bytes of dirty entries in every shard of the store, this one's included.
    store_dirty_bytes: Arc<AtomicU64>,
    next_ticket: u64,
    /// Bumped whenever a key's backend state may have changed without the shard knowing it
    /// (a mutation, or a rejected write), invalidating [`Known`] states.
    generation: u64,
    counters: ShardCounters,
}

/// One shard of the cache.
pub(crate) struct Shard {
    state: Mutex<State>,
    /// How old a clean entry may be before it is read again.
    max_staleness: Option<Duration>,
}

fn weight(key: &str, value: &Value) -> u64 {
    let item = value.as_deref().map_or(0, item::size);
    (key.len() + item) as u64 + ENTRY_OVERHEAD
}

impl Shard {
    /// A shard whose clean entries weigh at most `capacity` bytes and are trusted for at most
    /// `max_staleness` (for ever with `None`).
    /// `store_dirty_bytes` sums the dirty bytes of every shard of the store, for its bound.
    /// `hasher` hashes the keys of every shard of the store: a key's hash picks its shard, then
    /// finds it in the shard.
    pub(crate) fn new(
        capacity: u64,
        max_staleness: Option<Duration>,
        store_dirty_bytes: Arc<AtomicU64>,
        hasher: KeyHasher,
    ) -> Self {
        let estimated_items = usize::try_from(capacity / 512)
            .unwrap_or(usize::MAX)
            .max(16);
        Self {
            state: Mutex::new(State {
                clean: Clean::new(estimated_items, capacity, hasher),
                dirty: Map::default(),
                loading: Map::default(),
                store_dirty_bytes,
                next_ticket: 0,
                generation: 0,
                counters: ShardCounters::default(),
            }),
            max_staleness,
        }
    }

    /// The key's state, or what to do to learn it; counted as a hit or a miss.
    pub(crate) fn lookup(&self, key: &str) -> Lookup {
        self.look(key, true)
    }

    /// [`lookup`](Self::lookup) again, after waiting for a load or losing one to a mutation:
    /// the lookup was counted the first time.
    pub(crate) fn look_again(&self, key: &str) -> Lookup {
        self.look(key, false)
    }

    fn look(&self, key: &str, count: bool) -> Lookup {
        let mut state = self.state.lock();
        let current = state.current(key, self.max_staleness);
        if count {
            if let Some(current) = &current {
                // Only the first hit of a prefetched entry looks it up again, to clear its mark.
                let prefetched = current.prefetched
                    && state.clean.peek(key).is_some_and(Cached::take_prefetched);
                state.counters.hits += 1;
                state.counters.prefetch_hits += u64::from(prefetched);
            } else {
                state.counters.misses += 1;
            }
        }
        if let Some(current) = current {
            return Lookup::Hit(Known {
                value: current.value,
                version: current.version,
                generation: state.generation,
            });
        }
        if let Some(flight) = state.loading.get(key) {
            // Created under the lock, so the loader's `notify_waiters` cannot be missed.
            return Lookup::Wait(Waiter {
                notified: Arc::clone(&flight.notify).notified_owned(),
                failure: Arc::clone(&flight.failure),
            });
        }
        state.next_ticket += 1;
        let ticket = Ticket(state.next_ticket);
        state.loading.insert(
            key.to_owned(),
            Flight {
                ticket,
                notify: Arc::new(Notify::new()),
                failure: Arc::default(),
                stale: false,
            },
        );
        Lookup::Load(ticket)
    }

    /// Reports a load's result. Returns the key's current state, which is the loaded one unless
    /// a mutation overtook the load; `None` when the state is unknown again and the caller must
    /// look again.
    pub(crate) fn finish_load(
        &self,
        key: &str,
        ticket: Ticket,
        loaded: Value,
        version: u64,
    ) -> Option<Known> {
        self.finish(key, ticket, loaded, version, false)
    }

    /// [`finish_load`](Self::finish_load) for a prefetch: the entry's first hit is counted as
    /// the prefetch's (`prefetch_hits`).
    pub(crate) fn finish_prefetch(
        &self,
        key: &str,
        ticket: Ticket,
        loaded: Value,
        version: u64,
    ) -> Option<Known> {
        self.finish(key, ticket, loaded, version, true)
    }

    fn finish(
        &self,
        key: &str,
        ticket: Ticket,
        loaded: Value,
        version: u64,
        prefetched: bool,
    ) -> Option<Known> {
        let mut state = self.state.lock();
        let stale = state.end_flight(key, ticket)?;
        if !stale {
            let weight = weight(key, &loaded);
            let cached = Cached {
                prefetched: Cell::new(prefetched),
                ..Cached::new(loaded.clone(), weight, version)
            };
            state.clean.insert(key, cached);
            return Some(Known {
                value: loaded,
                version,
                generation: state.generation,
            });
        }
        drop(state);
        self.peek(key)
    }

    /// The key's state if the shard knows it, without starting a load.
    pub(crate) fn peek(&self, key: &str) -> Option<Known> {
        let mut state = self.state.lock();
        let generation = state.generation;
        let current = state.current(key, self.max_staleness);
        current.map(|current| Known {
            value: current.value,
            version: current.version,
            generation,
        })
    }

    /// The read path's fast lane, for [`value`](Self::value) and [`decoded`](Self::decoded):
    /// under one lock, with the key hashed once (by the store, which picked the shard with
    /// that hash), `answer` sees what the shard knows of the key (pending, or clean and
    /// fresh), with nothing else to build. `None` when the shard does not know the key or
    /// `answer` cannot answer from what it knows: look the key up the usual way then.
    #[inline]
    fn read_known<R>(
        &self,
        key: Hashed<'_>,
        answer: impl FnOnce(Fresh<'_>) -> Option<R>,
    ) -> Option<R> {
        let mut state = self.state.lock();
        let fresh = state.fresh(key, self.max_staleness)?;
        let found = answer(fresh)?;
        let prefetched = matches!(fresh, Fresh::Clean(cached) if cached.take_prefetched());
        state.counters.hits += 1;
        state.counters.prefetch_hits += u64::from(prefetched);
        Some(found)
    }

    /// The key's value if the shard knows it (pending, or clean and fresh), counted as a hit;
    /// `None`: look the key up the usual way.
    #[inline]
    pub(crate) fn value(&self, key: Hashed<'_>) -> Option<Value> {
        self.read_known(key, |fresh| match fresh {
            Fresh::Pending(value) => Some(value.clone()),
            Fresh::Clean(cached) => Some(cached.value.clone()),
        })
    }

    /// The key's clean state with its value already decoded as a `T`: `Some(None)` when known
    /// absent, counted as a hit; `None` when the shard cannot answer that way (not clean, not
    /// decoded as a `T` yet, or stale): read the key the usual way then.
    #[inline]
    pub(crate) fn decoded<T: Any + Send + Sync>(&self, key: Hashed<'_>) -> Option<Option<Arc<T>>> {
        self.read_known(key, |fresh| match fresh {
            Fresh::Pending(_) => None,
            Fresh::Clean(Cached { value: None, .. }) => Some(None),
            Fresh::Clean(cached) => {
                let decoded = Arc::clone(cached.decoded.as_ref()?);
                decoded.downcast::<T>().ok().map(Some)
            }
        })
    }

    /// Keeps `decoded` beside the key's clean `item`, if that is still the key's state. The
    /// entry then weighs the item twice, the decoded value counted like the item.
    pub(crate) fn remember_decoded(&self, key: &str, item: &Arc<Item>, decoded: Decoded) {
        let mut state = self.state.lock();
        let Some(cached) = state.clean.peek(key) else {
            return;
        };
        if !cached.value.as_ref().is_some_and(|v| Arc::ptr_eq(v, item)) {
            return;
        }
        let mut cached = cached.clone();
        if cached.decoded.is_none() {
            cached.weight += item::size(item) as u64;
        }
        cached.decoded = Some(decoded);
        state.clean.insert(key, cached);
    }

    /// Forgets the key's clean state, so that the next read goes to the backend; a load under
    /// way is not cached either. A dirty state is kept: it is newer than the backend's.
    pub(crate) fn invalidate(&self, key: &str) {
        let mut state = self.state.lock();
        state.clean.remove(key);
        if let Some(flight) = state.loading.get_mut(key) {
            flight.stale = true;
        }
        state.generation += 1;
    }

    /// Forgets every clean state; see [`invalidate`](Self::invalidate).
    pub(crate) fn invalidate_all(&self) {
        let mut state = self.state.lock();
        state.clean.clear();
        for flight in state.loading.values_mut() {
            flight.stale = true;
        }
        state.generation += 1;
    }

    /// Applies another writer's change, seen in the table's stream, to a clean entry.
    ///
    /// The stream may lag behind what the shard read or wrote itself, so the changed state
    /// replaces the cached one only if it is known to be newer: the cached state came from the
    /// stream too (whose records of a key come in order), or the change was made at least
    /// `margin` after the cached state was read or written. Otherwise the entry is dropped and
    /// the next read goes to the table. Pending keys are left alone (their state is newer than
    /// the table's, and in versioned mode their write will meet the change as a conflict); a
    /// load under way is not cached.
    pub(crate) fn follow(&self, key: &str, observed: Observed, margin: Duration) -> Followed {
        let mut state = self.state.lock();
        let state = &mut *state;
        if state.dirty.contains_key(key) || observed.own {
            return Followed::Ignored;
        }
        if let Some(flight) = state.loading.get_mut(key) {
            flight.stale = true;
            state.generation += 1;
            return Followed::Invalidated;
        }
        let Some(cached) = state.clean.peek(key) else {
            return Followed::Ignored;
        };
        let same = observed.state.as_ref().is_some_and(|(value, version)| {
            cached.version == *version && cached.value.as_deref() == value.as_deref()
        });
        let newer = cached.from_stream || observed.at >= cached.since + margin;
        if same {
            return Followed::Ignored;
        }
        state.generation += 1;
        let (Some((value, version)), true) = (observed.state, newer) else {
            state.clean.remove(key);
            return Followed::Invalidated;
        };
        let weight = weight(key, &value);
        state.clean.insert(
            key,
            Cached {
                from_stream: true,
                ..Cached::new(value, weight, version)
            },
        );
        Followed::Replaced
    }

    /// Gives up a load and wakes its waiters: with the load's error, which they return, or
    /// with `None` when the loading caller went away, and one of them loads instead.
    pub(crate) fn abort_load(&self, key: &str, ticket: Ticket, failure: Option<Error>) {
        let mut state = self.state.lock();
        if let (Some(flight), Some(failure)) = (state.loading.get(key), failure) {
            if flight.ticket == ticket {
                let _ = flight.failure.set(failure);
            }
        }
        state.end_flight(key, ticket);
    }

    /// Applies a mutation, if its precondition holds, and acknowledges it with a sequence
    /// number. `known` is a state the caller loaded, used when the shard no longer has the key.
    pub(crate) fn mutate(
        &self,
        key: &str,
        mutation: Mutation,
        known: Option<&Known>,
        ctx: &WriteContext<'_>,
    ) -> Result<Mutated> {
        let mut state = self.state.lock();
        // Checked under the lock: `close` takes every shard lock after setting the flag, so a
        // mutation either lands before the flusher is told to drain, or sees the flag.
        if ctx.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let mut base = Base::default();
        let mut current_value = None;
        if mutation.needs_current(ctx.versioned) {
            let Some(current) = state.known_current(key, known, self.max_staleness) else {
                return Ok(Mutated::NeedsLoad);
            };
            match (&mutation, current.value.is_some()) {
                (Mutation::Insert(_), true) => return Ok(Mutated::Existed),
                (Mutation::Update(_), false) => return Ok(Mutated::NotExisted),
                _ => {}
            }
            base = base_of(&current, ctx.versioned);
            current_value = Some(current.value);
        }
        let next = mutation.into_next(current_value.as_ref(), key.len())?;
        let (seq, replaced) = state.apply(key, next, base, ctx)?;
        drop(state);
        drop(replaced);
        Ok(Mutated::Applied(seq))
    }

    /// Reads the key's current state and applies what `decide` makes of it, atomically with
    /// respect to every other call on this shard: `decide` runs under the shard lock, so it
    /// must be short and must not block. Returns [`MutatedWith::NeedsLoad`], without calling
    /// `decide`, when the state is unknown.
    pub(crate) fn mutate_with<R>(
        &self,
        key: &str,
        known: Option<&Known>,
        ctx: &WriteContext<'_>,
        decide: impl FnOnce(&Value) -> Result<(Option<Mutation>, R)>,
    ) -> Result<MutatedWith<R>> {
        let mut state = self.state.lock();
        if ctx.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let Some(current) = state.known_current(key, known, self.max_staleness) else {
            return Ok(MutatedWith::NeedsLoad);
        };
        // Checked before deciding, so that a caller who waits for room can still decide.
        if !state.has_room(key, ctx) {
            return Err(state.no_room(ctx));
        }
        match decide(&current.value)? {
            (Some(mutation), answer) => {
                let base = base_of(&current, ctx.versioned);
                let next = mutation.into_next(Some(&current.value), key.len())?;
                let (seq, replaced) = state.apply(key, next, base, ctx)?;
                drop(state);
                drop(replaced);
                Ok(MutatedWith::Applied(seq, answer))
            }
            (None, answer) => Ok(MutatedWith::Unchanged(answer)),
        }
    }

    /// Makes a key's recovered mutations dirty again, as they were before a crash: its state
    /// `value`, as of mutation `seq`, written whole or as the recovered `deltas` (each on its
    /// own), building on `base` (versioned mode: the table state a full write is conditional
    /// on); the oldest journal record the key needs is `first_seq`'s. Not bounded by
    /// `max_pending`: recovered mutations were acknowledged already.
    pub(crate) fn restore(
        &self,
        key: &str,
        value: Value,
        (first_seq, seq): (u64, u64),
        deltas: Option<Vec<(u64, Arc<Delta>)>>,
        base: Base,
        ctx: &WriteContext<'_>,
    ) {
        let mut state = self.state.lock();
        let state = &mut *state;
        let weight = weight(key, &value);
        state.clean.remove(key);
        state.add_dirty_bytes(weight);
        state.generation += 1;
        let previous = state.dirty.insert(
            key.to_owned(),
            Dirty {
                value,
                weight,
                unwritten: deltas.map_or(Unwritten::Full, Unwritten::recovered),
                flying: None,
                seq,
                first_seq,
                in_flight: None,
                next_first: None,
                base,
                parts: ctx.key_parts,
            },
        );
        match previous {
            Some(previous) => state.sub_dirty_bytes(previous.weight),
            None => {
                ctx.pending.fetch_add(1, Ordering::AcqRel);
                (ctx.on_dirty)(first_seq, key);
            }
        }
    }

    /// Marks the key's newest state as being written and returns it with its sequence number;
    /// `None` if the key is not dirty or a write of it is already in flight.
    pub(crate) fn take_for_write(&self, key: &str) -> Option<ToWrite> {
        let mut state = self.state.lock();
        let entry = state.dirty.get_mut(key)?;
        if entry.in_flight.is_some() {
            return None;
        }
        let taken = entry.unwritten.take();
        let (seq, delta) = match &taken {
            Taken::Full => (entry.seq, None),
            Taken::Delta(step) => (step.seq, Some(Arc::clone(&step.delta))),
        };
        entry.in_flight = Some(seq);
        entry.next_first = entry.unwritten.first();
        entry.flying = Some(taken);
        Some(ToWrite {
            value: entry.value.clone(),
            delta,
            seq,
            base: entry.base.clone(),
            parts: entry.parts,
        })
    }

    /// Reports the end of a write taken with [`take_for_write`](Self::take_for_write). A
    /// write refused for good leaves the key forgotten rather than cached, so reads go back to
    /// the backend's state.
    ///
    /// A delta's write answers with the table's state, which has other writers' deltas in it
    /// too: it becomes the key's clean state, or, while more deltas of the key are pending, the
    /// state they are applied to for reads.
    pub(crate) fn complete_write(&self, key: &str, seq: u64, landed: Landed) -> Option<Completed> {
        let mut state = self.state.lock();
        let state = &mut *state;
        if landed == Landed::Refused {
            state.generation += 1;
        }
        let entry = state.dirty.get_mut(key)?;
        if entry.in_flight != Some(seq) {
            return None;
        }
        entry.flying = None;
        if entry.seq != seq {
            entry.in_flight = None;
            let first = entry.next_first.take().unwrap_or(entry.seq);
            entry.first_seq = first;
            let now = match landed {
                Landed::Written(now) => now,
                Landed::Updated(table, version) => {
                    let rebuilt = entry.unwritten.deltas().and_then(|mut deltas| {
                        deltas.try_fold(table.as_deref().cloned(), |value, delta| {
                            delta.applied_to(value.as_ref(), key.len()).ok().map(Some)
                        })
                    });
                    if let Some(value) = rebuilt {
                        let value = value.map(Arc::new);
                        let weight = weight(key, &value);
                        let old = std::mem::replace(&mut entry.weight, weight);
                        entry.value = value;
                        state.store_dirty_bytes.fetch_add(weight, Ordering::AcqRel);
                        state.store_dirty_bytes.fetch_sub(old, Ordering::AcqRel);
                    }
                    table.is_some().then_some(version)
                }
                Landed::Refused => return Some(Completed::StillDirty(first)),
            };
            // The next write replaces what this one left.
            entry.base = Base {
                version: now,
                read: None,
            };
            return Some(Completed::StillDirty(first));
        }
        let entry = state.dirty.remove(key)?;
        state.sub_dirty_bytes(entry.weight);
        let (value, weight, version) = match landed {
            Landed::Written(now) => (entry.value, entry.weight, now.unwrap_or(0)),
            Landed::Updated(table, version) => {
                let weight = weight(key, &table);
                (table, weight, version)
            }
            Landed::Refused => return Some(Completed::Settled),
        };
        state.clean.insert(key, Cached::new(value, weight, version));
        Some(Completed::Settled)
    }

    /// Settles a write that lost a race in versioned mode: the key's pending mutations are
    /// dropped and the winner's state (`value` at `version`) becomes the key's clean state, so
    /// the next read sees it. Returns the dropped (newest) state and its sequence, or `None` if
    /// the write is not the key's in-flight write.
    pub(crate) fn resolve_conflict(
        &self,
        key: &str,
        seq: u64,
        value: Value,
        version: u64,
    ) -> Option<(Value, u64)> {
        let mut state = self.state.lock();
        let state = &mut *state;
        if state.dirty.get(key)?.in_flight != Some(seq) {
            return None;
        }
        let ours = state.dirty.remove(key)?;
        state.sub_dirty_bytes(ours.weight);
        state.generation += 1;
        if let Some(flight) = state.loading.get_mut(key) {
            flight.stale = true;
        }
        let weight = weight(key, &value);
        state.clean.insert(key, Cached::new(value, weight, version));
        Some((ours.value, ours.seq))
    }

    /// Forgets a write whose outcome is unknown (its task died); the key stays dirty. Returns
    /// the key's first unwritten sequence, to queue it again.
    pub(crate) fn abandon_write(&self, key: &str, seq: u64) -> Option<u64> {
        let mut state = self.state.lock();
        let entry = state.dirty.get_mut(key)?;
        if entry.in_flight != Some(seq) {
            return None;
        }
        entry.in_flight = None;
        entry.next_first = None;
        if let Some(taken) = entry.flying.take() {
            entry.unwritten.put_back(taken);
        }
        Some(entry.first_seq)
    }

    /// The oldest unwritten sequence of a dirty key.
    #[cfg(test)]
    fn first_seq(&self, key: &str) -> Option<u64> {
        self.state.lock().dirty.get(key).map(|d| d.first_seq)
    }

    /// The keys of the clean entries, present or known absent.
    pub(crate) fn clean_keys(&self) -> Vec<String> {
        self.state.lock().clean.keys().map(str::to_owned).collect()
    }

    pub(crate) fn usage(&self) -> Usage {
        let state = self.state.lock();
        Usage {
            clean_entries: state.clean.len(),
            clean_bytes: state.clean.weight(),
            dirty_entries: state.dirty.len(),
            counters: state.counters,
        }
    }

    /// Waits for nothing: taking the lock proves that no mutation is inside it.
    pub(crate) fn barrier(&self) {
        drop(self.state.lock());
    }
}

impl State {
    /// What the read path's fast lane finds of a key (see [`Fresh`]), if anything.
    #[inline]
    fn fresh(&self, key: Hashed<'_>, max_staleness: Option<Duration>) -> Option<Fresh<'_>> {
        // Most reads find nothing pending in their shard: no hashing for the map then.
        if !self.dirty.is_empty() {
            if let Some(entry) = self.dirty.get(key.as_str()) {
                return Some(Fresh::Pending(&entry.value));
            }
        }
        let cached = self.clean.get(key)?;
        (!cached.is_stale(max_staleness)).then_some(Fresh::Clean(cached))
    }

    /// The key's state if known: dirty, or clean and younger than `max_staleness` (a stale
    /// clean entry is dropped).
    fn current(&mut self, key: &str, max_staleness: Option<Duration>) -> Option<Current> {
        // Most reads find nothing pending in their shard: no hashing for the map then.
        let dirty = if self.dirty.is_empty() {
            None
        } else {
            self.dirty.get(key)
        };
        if let Some(entry) = dirty {
            return Some(Current {
                value: entry.value.clone(),
                version: 0,
                base: entry.base.version,
                prefetched: false,
            });
        }
        let cached = self.clean.get_str(key)?;
        if cached.is_stale(max_staleness) {
            self.clean.remove(key);
            return None;
        }
        Some(Current {
            base: cached.value.is_some().then_some(cached.version),
            value: cached.value.clone(),
            version: cached.version,
            prefetched: cached.prefetched.get(),
        })
    }

    /// The key's state: the shard's, or else `known` if nothing in the shard changed since it
    /// was taken.
    fn known_current(
        &mut self,
        key: &str,
        known: Option<&Known>,
        max_staleness: Option<Duration>,
    ) -> Option<Current> {
        let generation = self.generation;
        self.current(key, max_staleness).or_else(|| {
            known
                .filter(|k| k.generation == generation)
                .map(|k| Current {
                    value: k.value.clone(),
                    version: k.version,
                    base: k.value.is_some().then_some(k.version),
                    prefetched: false,
                })
        })
    }

    fn add_dirty_bytes(&self, bytes: u64) {
        self.store_dirty_bytes.fetch_add(bytes, Ordering::AcqRel);
    }

    fn sub_dirty_bytes(&self, bytes: u64) {
        self.store_dirty_bytes.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Whether a mutation of `key` could be admitted now: there is room for one more dirty
    /// key (unless the key is dirty already) and for some more dirty bytes.
    fn has_room(&self, key: &str, ctx: &WriteContext<'_>) -> bool {
        (self.dirty.contains_key(key) || ctx.pending.load(Ordering::Acquire) < ctx.max_pending)
            && self.store_dirty_bytes.load(Ordering::Acquire) < ctx.max_pending_bytes
    }

    /// The error for a mutation the pending bounds leave no room for.
    fn no_room(&self, ctx: &WriteContext<'_>) -> Error {
        Error::TooManyRequests {
            pending: ctx.pending.load(Ordering::Acquire),
            limit: ctx.max_pending,
            pending_bytes: self.store_dirty_bytes.load(Ordering::Acquire),
            byte_limit: ctx.max_pending_bytes,
        }
    }

    /// Applies a mutation whose precondition held: admits it within the pending bounds (one
    /// more dirty key, and the bytes it adds), journals it, and makes the key dirty with the
    /// new state. Returns its sequence.
    fn apply(
        &mut self,
        key: &str,
        next: Next,
        base: Base,
        ctx: &WriteContext<'_>,
    ) -> Result<(u64, Replaced)> {
        let new_weight = weight(key, next.value());
        let old_weight = self.dirty.get(key).map(|entry| entry.weight);
        let is_dirty = old_weight.is_some();
        if !is_dirty
            && ctx
                .pending
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| {
                    (p < ctx.max_pending).then_some(p + 1)
                })
                .is_err()
        {
            return Err(self.no_room(ctx));
        }
        let unreserve_key = || {
            if !is_dirty {
                ctx.pending.fetch_sub(1, Ordering::AcqRel);
            }
        };
        let grows = new_weight.saturating_sub(old_weight.unwrap_or(0));
        if grows > 0
            && self
                .store_dirty_bytes
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                    (b + grows <= ctx.max_pending_bytes).then_some(b + grows)
                })
                .is_err()
        {
            unreserve_key();
            return Err(self.no_room(ctx));
        }
        // Journaled before anything changes: if the journal refuses, the mutation is refused.
        let seq = match ctx.journal {
            Some(journal) => {
                // Versioned mode: what a recovered write of this state would be conditional on,
                // as the dirty entry has it now.
                let recorded = ctx.versioned.then(|| match self.dirty.get(key) {
                    Some(entry) => TableState::of(entry.base.version, entry.base.read.as_ref()),
                    None => TableState::of(base.version, base.read.as_ref()),
                });
                let appended = match &next {
                    Next::Full(op, value) => {
                        journal.append(ctx.seq, *op, key, value.as_ref(), recorded)
                    }
                    Next::Delta(_, delta) => {
                        let form = Arc::new(delta.to_item());
                        journal.append(ctx.seq, Op::Apply, key, Some(&form), recorded)
                    }
                };
                match appended {
                    Ok(seq) => seq,
                    Err(err) => {
                        unreserve_key();
                        self.sub_dirty_bytes(grows);
                        return Err(err);
                    }
                }
            }
            None => ctx.seq.fetch_add(1, Ordering::AcqRel) + 1,
        };
        self.generation += 1;
        if let Some(flight) = self.loading.get_mut(key) {
            flight.stale = true;
        }
        // The reservation covered any growth; a shrink gives bytes back.
        if let Some(old) = old_weight.filter(|old| *old > new_weight) {
            self.sub_dirty_bytes(old - new_weight);
        }
        let (value, delta) = match next {
            Next::Full(_, value) => (value, None),
            Next::Delta(value, delta) => (value, Some(delta)),
        };
        let replaced = match self.dirty.get_mut(key) {
            Some(entry) => {
                let old = std::mem::replace(&mut entry.value, value);
                entry.weight = new_weight;
                entry.seq = seq;
                match delta {
                    Some(delta) => entry.unwritten.delta(delta, seq),
                    None => entry.unwritten.full(),
                }
                if entry.in_flight.is_some() && entry.next_first.is_none() {
                    entry.next_first = Some(seq);
                }
                Replaced {
                    _value: old,
                    _clean: None,
                }
            }
            None => {
                let removed = self.clean.remove(key);
                let mut unwritten = Unwritten::nothing();
                match delta {
                    Some(delta) => unwritten.delta(delta, seq),
                    None => unwritten.full(),
                }
                self.dirty.insert(
                    key.to_owned(),
                    Dirty {
                        value,
                        weight: new_weight,
                        unwritten,
                        flying: None,
                        seq,
                        first_seq: seq,
                        in_flight: None,
                        next_first: None,
                        base,
                        parts: ctx.key_parts,
                    },
                );
                (ctx.on_dirty)(seq, key);
                Replaced {
                    _value: None,
                    _clean: Some(removed),
                }
            }
        };
        Ok((seq, replaced))
    }

    /// Ends the flight of `ticket` and wakes its waiters; returns whether it went stale, or
    /// `None` if the flight is not (or no longer) this ticket's.
    fn end_flight(&mut self, key: &str, ticket: Ticket) -> Option<bool> {
        if self.loading.get(key)?.ticket != ticket {
            return None;
        }
        let flight = self.loading.remove(key)?;
        flight.notify.notify_waiters();
        Some(flight.stale)
    }
}

#[cfg(test)]
mod tests;
