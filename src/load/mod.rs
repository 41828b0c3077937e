//! Read-through: looking keys up in their shards and loading misses from the backend, once per
//! key however many callers ask (single flight). What a load reads comes from [`fetch`]: at
//! once when nothing else is being read, else batched with the other misses of the moment.
//!
//! A load that fails hands its error to every caller waiting on it, so N waiters cost one
//! load's attempts, not N. A load whose caller goes away (its future dropped) wakes the waiters
//! without an error, and one of them loads instead.

mod fetch;
mod limit;

pub(crate) use fetch::load_batch;

use std::sync::Arc;

use futures_util::future::join_all;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::item;
use crate::shard::{Decoded, Known, Lookup, Shard, Ticket, Value};
use crate::shared::Shared;

use fetch::{Fetched, Fetcher};

/// Ends a load: with its result, with its error, or (if dropped unfinished, because its caller
/// went away) by waking the waiters so that one of them takes over.
struct LoadGuard<'s, 'k> {
    shard: &'s Shard,
    key: &'k str,
    ticket: Option<Ticket>,
}

impl<'s, 'k> LoadGuard<'s, 'k> {
    fn new(shard: &'s Shard, key: &'k str, ticket: Ticket) -> Self {
        Self {
            shard,
            key,
            ticket: Some(ticket),
        }
    }

    /// Installs the loaded state (at `version`); `None` when the key must be looked up again.
    fn finish(mut self, (loaded, version): Fetched) -> Option<Known> {
        let ticket = self.ticket.take()?;
        self.shard.finish_load(self.key, ticket, loaded, version)
    }

    /// [`finish`](Self::finish) for a prefetch.
    fn finish_prefetch(mut self, (loaded, version): Fetched) -> Option<Known> {
        let ticket = self.ticket.take()?;
        self.shard
            .finish_prefetch(self.key, ticket, loaded, version)
    }

    /// Fails the load, handing `err` to its waiters.
    fn fail(mut self, err: &Error) {
        if let Some(ticket) = self.ticket.take() {
            self.shard.abort_load(self.key, ticket, Some(err.clone()));
        }
    }
}

impl Drop for LoadGuard<'_, '_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.shard.abort_load(self.key, ticket, None);
        }
    }
}

fn ensure_open(shared: &Shared) -> Result<()> {
    if shared.is_closed() {
        Err(Error::Closed)
    } else {
        Ok(())
    }
}

/// After waiting on a load that failed: the key's state if the shard learned it meanwhile (a
/// mutation, say), else the load's error.
fn after_failed_wait(shard: &Shard, key: &str, err: Error) -> Result<Known> {
    shard.peek(key).ok_or(err)
}

/// Loads keys into the cache for one store: the read paths that may need the backend.
#[derive(Clone)]
pub(crate) struct Loader {
    fetcher: Fetcher,
}

impl Loader {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self {
            fetcher: Fetcher::new(shared),
        }
    }

    fn shared(&self) -> &Shared {
        self.fetcher.shared()
    }

    /// Reads one key through the cache, loading it on a miss.
    pub(crate) async fn read(&self, rendered: &str) -> Result<Known> {
        let shared = self.shared();
        let shard = shared.shard_of(rendered);
        // The first lookup counts as a hit or a miss; looking again after a wait does not.
        let mut look: fn(&Shard, &str) -> Lookup = Shard::lookup;
        loop {
            ensure_open(shared)?;
            let lookup = look(shard, rendered);
            look = Shard::look_again;
            match lookup {
                Lookup::Hit(known) => return Ok(known),
                Lookup::Wait(waiter) => {
                    if let Err(err) = waiter.wait().await {
                        return after_failed_wait(shard, rendered, err);
                    }
                }
                Lookup::Load(ticket) => {
                    let guard = LoadGuard::new(shard, rendered, ticket);
                    match self.fetcher.one(rendered).await {
                        Ok(loaded) => {
                            if let Some(known) = guard.finish(loaded) {
                                return Ok(known);
                            }
                        }
                        Err(err) => {
                            guard.fail(&err);
                            return Err(err);
                        }
                    }
                }
            }
        }
    }

    /// Reads one key through the cache as a shared `T`, decoding a cached item once: later
    /// reads of the same state share the decoded value. The caller has checked that the store
    /// is open and tried [`known_decoded`] first.
    pub(crate) async fn read_decoded<T>(&self, rendered: &str) -> Result<Option<Arc<T>>>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        let Some(item) = self.read(rendered).await?.value else {
            return Ok(None);
        };
        let value: Arc<T> = Arc::new(item::to_value(&item)?);
        let shard = self.shared().shard_of(rendered);
        shard.remember_decoded(rendered, &item, Arc::clone(&value) as Decoded);
        Ok(Some(value))
    }

    /// Reads many distinct keys through the cache, loading misses in batches.
    pub(crate) async fn read_many<'k>(&self, keys: Vec<&'k str>) -> Result<Vec<(&'k str, Value)>> {
        let shared = self.shared();
        let mut found = Vec::with_capacity(keys.len());
        let mut remaining = keys;
        let mut look: fn(&Shard, &str) -> Lookup = Shard::lookup;
        while !remaining.is_empty() {
            ensure_open(shared)?;
            let mut loads = Vec::new();
            let mut waits = Vec::new();
            for key in remaining {
                let shard = shared.shard_of(key);
                match look(shard, key) {
                    Lookup::Hit(known) => found.push((key, known.value)),
                    Lookup::Wait(waiter) => waits.push((shard, key, waiter)),
                    Lookup::Load(ticket) => loads.push(LoadGuard::new(shard, key, ticket)),
                }
            }
            look = Shard::look_again;
            let mut again = Vec::new();
            let (fetched, failed) = self.fetch_loads(loads, false).await;
            if let Some(err) = failed {
                return Err(err);
            }
            for (key, known) in fetched {
                match known {
                    Some(known) => found.push((key, known.value)),
                    None => again.push(key),
                }
            }
            for (shard, key, waiter) in waits {
                match waiter.wait().await {
                    Ok(()) => again.push(key),
                    Err(err) => found.push((key, after_failed_wait(shard, key, err)?.value)),
                }
            }
            remaining = again;
        }
        Ok(found)
    }

    /// Loads the keys the cache does not know (neither cached, pending nor being loaded), in
    /// batches, without counting hits or misses; returns how many were read. Every key is
    /// tried: the first failure is returned once all are done.
    pub(crate) async fn prefetch(&self, keys: Vec<&str>) -> Result<u64> {
        let shared = self.shared();
        ensure_open(shared)?;
        let loads: Vec<_> = keys
            .into_iter()
            .filter_map(|key| {
                let shard = shared.shard_of(key);
                match shard.look_again(key) {
                    Lookup::Load(ticket) => Some(LoadGuard::new(shard, key, ticket)),
                    Lookup::Hit(_) | Lookup::Wait(_) => None,
                }
            })
            .collect();
        let (fetched, failed) = self.fetch_loads(loads, true).await;
        let read = fetched.len() as u64;
        let counters = shared.counters();
        counters.add(&counters.prefetched, read);
        failed.map_or(Ok(read), Err)
    }

    /// Reads the keys of `loads` together and ends each load: with what was read (as a
    /// prefetch's, if `prefetch`), or with its error. Returns each key read with what its shard
    /// then knows (`None`: look again), and the first error, once every load has ended.
    ///
    /// Every load has its guard before its key is queued, so an error or a dropped call ends
    /// all of them and their waiters are never stranded.
    async fn fetch_loads<'k>(
        &self,
        loads: Vec<LoadGuard<'_, 'k>>,
        prefetch: bool,
    ) -> (Vec<(&'k str, Option<Known>)>, Option<Error>) {
        let replies = self.fetcher.many(loads.iter().map(|guard| guard.key));
        let fetched = join_all(replies.into_iter().map(fetch::received)).await;
        let (mut read, mut failed) = (Vec::with_capacity(loads.len()), None);
        for (guard, fetched) in loads.into_iter().zip(fetched) {
            let key = guard.key;
            match fetched {
                Ok(fetched) if prefetch => read.push((key, guard.finish_prefetch(fetched))),
                Ok(fetched) => read.push((key, guard.finish(fetched))),
                Err(err) => {
                    guard.fail(&err);
                    failed.get_or_insert(err);
                }
            }
        }
        (read, failed)
    }
}

/// The read path's fast lane: the key's value if its shard knows it (pending, or clean and
/// fresh), counted as a hit; `None`: [`read`](Loader::read) it. One hash of the key, one shard
/// lock, nothing else built. The caller has checked that the store is open.
#[inline]
pub(crate) fn known_value(shared: &Shared, rendered: &str) -> Option<Value> {
    let (shard, key) = shared.locate(rendered);
    shard.value(key)
}

/// [`known_value`] for [`read_decoded`]: the key's clean value already decoded as a `T`,
/// counted as a hit; `None`: read it with [`read_decoded`](Loader::read_decoded).
#[inline]
pub(crate) fn known_decoded<T>(shared: &Shared, rendered: &str) -> Option<Option<Arc<T>>>
where
    T: Send + Sync + 'static,
{
    let (shard, key) = shared.locate(rendered);
    shard.decoded::<T>(key)
}
