//! Read-through: looking keys up in their shards and loading misses from the backend, once per
//! key however many callers ask (single flight), with `GetItem` for one key and concurrent
//! `BatchGetItem` requests of up to 100 keys for many.
//!
//! A load that fails hands its error to every caller waiting on it, so N waiters cost one
//! load's attempts, not N. A load whose caller goes away (its future dropped) wakes the waiters
//! without an error, and one of them loads instead.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::stream::{self, StreamExt as _};
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tracing::field::Empty;
use tracing::Instrument as _;

use crate::backend::{string_attribute, MAX_BATCH_GET_KEYS};
use crate::error::{Error, Result};
use crate::item::{self, Item};
use crate::retry::Backoff;
use crate::shard::{Decoded, Known, Lookup, Shard, Ticket, Value};
use crate::shared::Shared;
use crate::telemetry;

/// `BatchGetItem` requests one `get_many` call keeps in flight at once.
pub(crate) const MAX_CONCURRENT_BATCH_GETS: usize = 8;

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
    fn finish(mut self, (loaded, version): (Value, u64)) -> Option<Known> {
        let ticket = self.ticket.take()?;
        self.shard.finish_load(self.key, ticket, loaded, version)
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

/// Reads one key through the cache, loading it on a miss.
pub(crate) async fn read(shared: &Shared, rendered: &str) -> Result<Known> {
    let shard = shared.shard_of(rendered);
    let mut first_look = true;
    loop {
        ensure_open(shared)?;
        let lookup = if first_look {
            shard.lookup(rendered)
        } else {
            shard.look_again(rendered)
        };
        first_look = false;
        match lookup {
            Lookup::Hit(known) => return Ok(known),
            Lookup::Wait(waiter) => {
                if let Err(err) = waiter.wait().await {
                    return after_failed_wait(shard, rendered, err);
                }
            }
            Lookup::Load(ticket) => {
                let guard = LoadGuard::new(shard, rendered, ticket);
                match load(shared, rendered).await {
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

/// The read path's fast lane: the key's value if its shard knows it (pending, or clean and
/// fresh), counted as a hit; `None`: [`read`] it. One hash of the key, one shard lock, nothing
/// else built. The caller has checked that the store is open.
#[inline]
pub(crate) fn known_value(shared: &Shared, rendered: &str) -> Option<Value> {
    let (shard, key) = shared.locate(rendered);
    shard.value(key)
}

/// [`known_value`] for [`read_decoded`]: the key's clean value already decoded as a `T`,
/// counted as a hit; `None`: read it with [`read_decoded`].
#[inline]
pub(crate) fn known_decoded<T>(shared: &Shared, rendered: &str) -> Option<Option<Arc<T>>>
where
    T: Send + Sync + 'static,
{
    let (shard, key) = shared.locate(rendered);
    shard.decoded::<T>(key)
}

/// Reads one key through the cache as a shared `T`, decoding a cached item once: later reads
/// of the same state share the decoded value. The caller has checked that the store is open
/// and tried [`known_decoded`] first.
pub(crate) async fn read_decoded<T>(shared: &Shared, rendered: &str) -> Result<Option<Arc<T>>>
where
    T: DeserializeOwned + Send + Sync + 'static,
{
    let Some(item) = read(shared, rendered).await?.value else {
        return Ok(None);
    };
    let value: Arc<T> = Arc::new(item::to_value(&item)?);
    let shard = shared.shard_of(rendered);
    shard.remember_decoded(rendered, &item, Arc::clone(&value) as Decoded);
    Ok(Some(value))
}

/// Reads one key from the backend, retrying transient failures within the retry policy's read
/// budget; returns its state and version.
///
/// In a `load` span: the `key`, `keys` (1), and once done the `attempts` made and the
/// `outcome` (`found`, `absent` or `error`, with the `error`).
async fn load(shared: &Shared, rendered: &str) -> Result<(Value, u64)> {
    let span = tracing::debug_span!(
        "load",
        key = rendered,
        keys = 1_u64,
        attempts = Empty,
        outcome = Empty,
        error = Empty,
    );
    let mut attempts = 0_u32;
    let result = load_one(shared, rendered, &mut attempts)
        .instrument(span.clone())
        .await;
    span.record("attempts", attempts);
    match &result {
        Ok((Some(_), _)) => {
            span.record("outcome", "found");
        }
        Ok((None, _)) => {
            span.record("outcome", "absent");
        }
        Err(_) => telemetry::record_outcome(&span, &result),
    }
    result
}

/// [`load`]'s work; counts the requests it sends in `attempts`.
async fn load_one(shared: &Shared, rendered: &str, attempts: &mut u32) -> Result<(Value, u64)> {
    let counters = shared.counters();
    let options = &shared.options();
    let policy = &options.retry;
    let started = Instant::now();
    let mut backoff = Backoff::new(policy);
    loop {
        counters.add(&counters.read_requests, 1);
        *attempts += 1;
        let request =
            shared
                .backend()
                .get(&options.partition_key, rendered, options.consistent_reads);
        match policy.request("GetItem", request).await {
            Ok(item) => {
                counters.add(&counters.backend_reads, 1);
                return Ok(strip(shared, item));
            }
            Err(err) if err.is_retryable() => {
                let attempts = backoff.attempts() + 1;
                if attempts >= policy.read_attempts || started.elapsed() >= policy.read_deadline {
                    return Err(err.gave_up(format!(
                        "gave up after {attempts} attempts over {:.1?}",
                        started.elapsed()
                    )));
                }
                counters.retry_after(&err);
                tracing::debug!(error = %err.report(), "read failed; retrying");
                backoff.wait().await;
            }
            Err(err) => return Err(err),
        }
    }
}

/// Removes the partition key attribute (and, in versioned mode, the version attribute) from
/// a backend item; returns the item and its version.
fn strip(shared: &Shared, item: Option<Item>) -> (Value, u64) {
    let Some(item) = item else {
        return (None, 0);
    };
    let (item, version) = shared.layout().value(item);
    (Some(Arc::new(item)), version)
}

/// Reads many distinct keys through the cache, loading misses in concurrent batches.
pub(crate) async fn read_many<'k>(
    shared: &Shared,
    keys: Vec<&'k str>,
) -> Result<Vec<(&'k str, Value)>> {
    let mut found = Vec::with_capacity(keys.len());
    let mut remaining = keys;
    let mut first_look = true;
    while !remaining.is_empty() {
        ensure_open(shared)?;
        let mut loads = Vec::new();
        let mut waits = Vec::new();
        for key in remaining {
            let shard = shared.shard_of(key);
            let lookup = if first_look {
                shard.lookup(key)
            } else {
                shard.look_again(key)
            };
            match lookup {
                Lookup::Hit(known) => found.push((key, known.value)),
                Lookup::Wait(waiter) => waits.push((shard, key, waiter)),
                Lookup::Load(ticket) => loads.push(LoadGuard::new(shard, key, ticket)),
            }
        }
        first_look = false;
        let mut again = Vec::new();
        // Every load has its guard before the first request, so an error or a dropped call
        // ends all of them and their waiters are never stranded.
        let mut chunks = Vec::with_capacity(loads.len().div_ceil(MAX_BATCH_GET_KEYS));
        let mut loads = loads.into_iter().peekable();
        while loads.peek().is_some() {
            chunks.push(loads.by_ref().take(MAX_BATCH_GET_KEYS).collect::<Vec<_>>());
        }
        // The futures are made before the stream (rather than by a `map` on it) so that the
        // stream's type holds no closure: that keeps the caller's future `Send`.
        let requests: Vec<_> = chunks
            .into_iter()
            .map(|chunk| load_chunk(shared, chunk))
            .collect();
        let mut batches = stream::iter(requests).buffer_unordered(MAX_CONCURRENT_BATCH_GETS);
        while let Some(loaded) = batches.next().await {
            for (key, known) in loaded? {
                match known {
                    Some(known) => found.push((key, known.value)),
                    None => again.push(key),
                }
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

/// Loads one chunk of keys with `BatchGetItem` and installs what it read; a key paired with
/// `None` must be looked up again.
async fn load_chunk<'k>(
    shared: &Shared,
    guards: Vec<LoadGuard<'_, 'k>>,
) -> Result<Vec<(&'k str, Option<Known>)>> {
    let keys = guards.iter().map(|guard| guard.key.to_owned()).collect();
    match load_batch(shared, keys).await {
        Ok(mut loaded) => Ok(guards
            .into_iter()
            .map(|guard| {
                let key = guard.key;
                let loaded = strip(shared, loaded.remove(key));
                (key, guard.finish(loaded))
            })
            .collect()),
        Err(err) => {
            for guard in guards {
                guard.fail(&err);
            }
            Err(err)
        }
    }
}

/// Reads up to [`MAX_BATCH_GET_KEYS`] keys with `BatchGetItem`, retrying unprocessed keys
/// with backoff; returns the found items by rendered key.
///
/// Only attempts that read nothing count against the policy's read attempts, and only in a
/// row: an answer that leaves some keys unprocessed is progress, and starts the count and the
/// backoff again. The read deadline bounds the whole.
///
/// In a `load_batch` span: the number of `keys`, and once done the `attempts` made, the
/// `outcome` (`ok` or `error`, with the `error`) and, when it succeeded, how many keys were
/// `found`.
async fn load_batch(shared: &Shared, keys: Vec<String>) -> Result<HashMap<String, Item>> {
    let span = tracing::debug_span!(
        "load_batch",
        keys = keys.len(),
        attempts = Empty,
        found = Empty,
        outcome = Empty,
        error = Empty,
    );
    let mut attempts = 0_u32;
    let result = load_keys(shared, keys, &mut attempts)
        .instrument(span.clone())
        .await;
    span.record("attempts", attempts);
    if let Ok(items) = &result {
        span.record("found", items.len());
    }
    telemetry::record_outcome(&span, &result);
    result
}

/// [`load_batch`]'s work; counts the requests it sends in `attempts`.
async fn load_keys(
    shared: &Shared,
    mut keys: Vec<String>,
    attempts: &mut u32,
) -> Result<HashMap<String, Item>> {
    let counters = shared.counters();
    let options = &shared.options();
    let policy = &options.retry;
    let asked = keys.len();
    let started = Instant::now();
    let mut items = HashMap::with_capacity(keys.len());
    let mut backoff = Backoff::new(policy);
    let mut failures = 0;
    loop {
        *attempts += 1;
        counters.add(&counters.read_requests, 1);
        let request =
            shared
                .backend()
                .batch_get(&options.partition_key, &keys, options.consistent_reads);
        let failure = match policy.request("BatchGetItem", request).await {
            Ok(batch) => {
                let read = keys.len() - batch.unprocessed.len();
                counters.add(&counters.backend_reads, read as u64);
                for item in batch.items {
                    if let Some(key) = string_attribute(&item, &options.partition_key) {
                        items.insert(key.to_owned(), item);
                    }
                }
                keys = batch.unprocessed;
                if keys.is_empty() {
                    return Ok(items);
                }
                if read > 0 {
                    backoff.reset();
                    failures = 0;
                    None
                } else {
                    Some(Error::transient(
                        "BatchGetItem",
                        "the backend left every key unprocessed",
                        None,
                    ))
                }
            }
            Err(err) if err.is_retryable() => Some(err),
            Err(err) => return Err(err),
        };
        let out_of_time = started.elapsed() >= policy.read_deadline;
        if let Some(err) = &failure {
            failures += 1;
            if failures >= policy.read_attempts || out_of_time {
                return Err(err.clone().gave_up(format!(
                    "gave up after {attempts} attempts ({failures} in a row without progress) over \
                     {:.1?}; {} of {asked} keys unread",
                    started.elapsed(),
                    keys.len()
                )));
            }
            counters.retry_after(err);
            tracing::debug!(error = %err.report(), "batch read failed; retrying");
        } else if out_of_time {
            return Err(Error::transient(
                "BatchGetItem",
                "the backend kept leaving keys unprocessed",
                None,
            )
            .gave_up(format!(
                "gave up at the read deadline after {attempts} attempts over {:.1?}; {} of \
                 {asked} keys unread",
                started.elapsed(),
                keys.len()
            )));
        } else {
            counters.add(&counters.retries, 1);
        }
        backoff.wait().await;
    }
}
