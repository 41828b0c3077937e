//! Reading keys from the backend for the cache's loads, batched when the store is busy.
//!
//! A miss that finds fewer reads of the backend in flight than the [`Limit`] allows is read at
//! once, with `GetItem`: batching never adds latency below it. Misses that arrive while the
//! limit is reached queue, and go out together in `BatchGetItem`s of up to
//! [`MAX_BATCH_GET_KEYS`] keys when a read completes, or as soon as a full batch has queued.
//! Under load each request thus carries the misses that arrived while the limit was reached,
//! like a group commit, and the requests in flight stay bounded.
//!
//! Queueing behind a completion costs a queued miss up to one more round trip: against a
//! service whose round trip dominates (DynamoDB over a network), a limit of 1 would halve the
//! miss rate of a few concurrent readers, hence a default bound of several reads in flight,
//! which the limit keeps while the backend's latency holds and lowers while it grows with load.
//!
//! Batches run in tasks of their own: a caller that goes away does not cancel the batch its
//! key is in, and the batch skips keys whose every caller went away before it was sent. The
//! shards' single flight means a key is loaded by one caller at a time, so a key queued twice
//! (its first caller gone, the next one taking over) is read once. Unprocessed keys are
//! retried as [`load_batch`] does. A batch the backend refuses for good is read again key by
//! key, so that a key the backend refuses fails only its own callers.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::join_all;
use parking_lot::Mutex;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::field::Empty;
use tracing::Instrument as _;

use crate::backend::{string_attribute, MAX_BATCH_GET_KEYS};
use crate::error::{Error, Result};
use crate::item::Item;
use crate::retry::Backoff;
use crate::shard::Value;
use crate::shared::Shared;
use crate::telemetry::{self, Metrics, READ_REQUEST_KEYS};

use super::limit::Limit;

/// A key's state in the backend, without the store's own attributes, and its version.
pub(crate) type Fetched = (Value, u64);

/// Where a queued key's state arrives.
pub(crate) type Reply = oneshot::Receiver<Result<Fetched>>;

/// Reads keys from the backend for the loads of one store; cheap to clone.
#[derive(Clone)]
pub(crate) struct Fetcher {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    queue: Mutex<Queue>,
    metrics: Metrics,
}

struct Queue {
    /// Read requests in flight. Keys wait here only while this is at `limit`.
    in_flight: usize,
    /// The most read requests in flight.
    limit: Limit,
    waiting: Vec<Waiting>,
}

/// A key waiting for the next batch, and where its state goes.
struct Waiting {
    key: String,
    reply: oneshot::Sender<Result<Fetched>>,
}

/// One read request in flight: ends it when dropped, sending what queued meanwhile, and, if
/// the backend answered it, teaching the limit how long that took. A request that failed, or
/// whose caller went away before the answer, says nothing of the backend's latency: a request
/// cut short would pass for a fast backend, and every answer after it for a queue.
struct Slot {
    fetcher: Fetcher,
    started: Instant,
    /// Set once the backend answered, with the keys the request read.
    answered: Option<usize>,
}

impl Slot {
    /// Starts a request, already counted in flight.
    fn new(fetcher: &Fetcher) -> Self {
        Self {
            fetcher: fetcher.clone(),
            started: Instant::now(),
            answered: None,
        }
    }

    /// Notes that the backend answered the request, which read `keys` keys.
    fn answered(&mut self, keys: usize) {
        self.answered = Some(keys);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let due = {
            let mut queue = self.fetcher.inner.queue.lock();
            queue.in_flight -= 1;
            if let Some(keys) = self.answered {
                queue.limit.completed(keys, self.started.elapsed());
                self.fetcher.publish_limit(&queue.limit);
            }
            queue.take_due(true)
        };
        self.fetcher.send(due);
    }
}

impl Queue {
    /// Queues `key`; its state will arrive on the returned reply.
    fn push(&mut self, key: &str) -> Reply {
        let (reply, receiver) = oneshot::channel();
        self.waiting.push(Waiting {
            key: key.to_owned(),
            reply,
        });
        receiver
    }

    /// The batches to send now, each counted in flight: every waiting key (`all`), or only
    /// full batches. A partial batch goes out only while the requests in flight are below the
    /// limit (it gains keys by waiting); a full one while they are below the bound (it gains
    /// nothing by waiting, and the bound is what keeps requests in flight finite).
    fn take_due(&mut self, all: bool) -> Vec<Vec<Waiting>> {
        let mut due = Vec::new();
        loop {
            let full = self.waiting.len() >= MAX_BATCH_GET_KEYS;
            let allowed = if full {
                self.limit.bound()
            } else {
                self.limit.get()
            };
            if self.in_flight >= allowed || !(full || all && !self.waiting.is_empty()) {
                return due;
            }
            let rest = self
                .waiting
                .split_off(self.waiting.len().min(MAX_BATCH_GET_KEYS));
            due.push(std::mem::replace(&mut self.waiting, rest));
            self.in_flight += 1;
        }
    }
}

impl Fetcher {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        let options = shared.options();
        let metrics = Metrics::new(options.metrics_label.as_deref());
        let queue = Queue {
            in_flight: 0,
            limit: Limit::new(options.max_reads_in_flight, options.adapt_reads_in_flight),
            waiting: Vec::new(),
        };
        let fetcher = Self {
            inner: Arc::new(Inner {
                shared,
                queue: Mutex::new(queue),
                metrics,
            }),
        };
        fetcher.publish_limit(&fetcher.inner.queue.lock().limit);
        fetcher
    }

    /// Shows `limit` in [`Stats::read_limit`](crate::Stats::read_limit).
    fn publish_limit(&self, limit: &Limit) {
        let counters = self.shared().counters();
        counters
            .read_limit
            .store(limit.get() as u64, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// Reads one key: at once if fewer reads than the bound are in flight (or reads are not
    /// batched), else with the next batch.
    pub(crate) async fn one(&self, key: &str) -> Result<Fetched> {
        if !self.shared().options().batch_reads {
            return load(self.shared(), &self.inner.metrics, key).await;
        }
        let queued = {
            let mut queue = self.inner.queue.lock();
            if queue.in_flight < queue.limit.get() {
                queue.in_flight += 1;
                None
            } else {
                let reply = queue.push(key);
                let due = queue.take_due(false);
                Some((reply, due))
            }
        };
        match queued {
            None => {
                let mut slot = Slot::new(self);
                let result = load(self.shared(), &self.inner.metrics, key).await;
                if result.is_ok() {
                    slot.answered(1);
                }
                result
            }
            Some((reply, due)) => {
                self.send(due);
                received(reply).await
            }
        }
    }

    /// Reads many keys, in batches of their own sent at once as far as the bound on reads in
    /// flight allows, the rest with the next batches; returns each key's reply, in order.
    pub(crate) fn many<'k>(&self, keys: impl IntoIterator<Item = &'k str>) -> Vec<Reply> {
        let (replies, due) = {
            let mut queue = self.inner.queue.lock();
            let replies: Vec<Reply> = keys.into_iter().map(|key| queue.push(key)).collect();
            (replies, queue.take_due(true))
        };
        self.send(due);
        replies
    }

    /// Starts a task for each batch.
    fn send(&self, due: Vec<Vec<Waiting>>) {
        for batch in due {
            let slot = Slot::new(self);
            let task = read_batch(slot, batch);
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(task);
                }
                // No runtime to run it (the process is shutting down): dropping the task
                // answers its callers with an error and ends its slot.
                Err(_) => drop(task),
            }
        }
    }
}

/// What a caller makes of its reply: a batch dropped unanswered (its runtime shutting down) is
/// a transient failure.
pub(crate) async fn received(reply: Reply) -> Result<Fetched> {
    reply.await.unwrap_or_else(|_| {
        Err(Error::transient(
            "BatchGetItem",
            "the batch read was dropped before it answered",
            None,
        ))
    })
}

/// Sends one batch and answers its callers; `slot` ends the request when done.
async fn read_batch(mut slot: Slot, batch: Vec<Waiting>) {
    let fetcher = slot.fetcher.clone();
    let (shared, metrics) = (fetcher.shared(), &fetcher.inner.metrics);
    // Keys whose callers are all gone are not read; a key queued twice is read once.
    let mut callers: HashMap<String, Vec<oneshot::Sender<Result<Fetched>>>> = HashMap::new();
    for waiting in batch {
        if !waiting.reply.is_closed() {
            callers.entry(waiting.key).or_default().push(waiting.reply);
        }
    }
    let answer = |replies: Vec<oneshot::Sender<Result<Fetched>>>, result: &Result<Fetched>| {
        for reply in replies {
            // A caller gone meanwhile no longer needs the answer.
            let _ = reply.send(result.clone());
        }
    };
    if callers.is_empty() {
        return;
    }
    if callers.len() == 1 {
        for (key, replies) in callers {
            let result = load(shared, metrics, &key).await;
            if result.is_ok() {
                slot.answered(1);
            }
            answer(replies, &result);
        }
        return;
    }
    let keys: Vec<String> = callers.keys().cloned().collect();
    let asked = keys.len();
    match load_batch(shared, metrics, keys, shared.options().consistent_reads).await {
        Ok(mut items) => {
            slot.answered(asked);
            for (key, replies) in callers {
                answer(replies, &Ok(strip(shared, items.remove(&key))));
            }
        }
        Err(err) if !err.is_retryable() => {
            // Perhaps one key is what the backend refuses: read each alone, so that only its
            // own callers see the error.
            join_all(callers.into_iter().map(|(key, replies)| async move {
                let result = load(shared, metrics, &key).await;
                answer(replies, &result);
            }))
            .await;
        }
        Err(err) => {
            for replies in callers.into_values() {
                answer(replies, &Err(err.clone()));
            }
        }
    }
}

/// Reads one key from the backend, retrying transient failures within the retry policy's read
/// budget; returns its state and version.
///
/// In a `load` span: the `key`, `keys` (1), and once done the `attempts` made and the
/// `outcome` (`found`, `absent` or `error`, with the `error`).
async fn load(shared: &Shared, metrics: &Metrics, rendered: &str) -> Result<Fetched> {
    let span = tracing::debug_span!(
        "load",
        key = rendered,
        keys = 1_u64,
        attempts = Empty,
        outcome = Empty,
        error = Empty,
    );
    let mut attempts = 0_u32;
    let result = load_one(shared, metrics, rendered, &mut attempts)
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
async fn load_one(
    shared: &Shared,
    metrics: &Metrics,
    rendered: &str,
    attempts: &mut u32,
) -> Result<Fetched> {
    let counters = shared.counters();
    let options = &shared.options();
    let policy = &options.retry;
    let started = Instant::now();
    let mut backoff = Backoff::new(policy);
    loop {
        counters.add(&counters.read_requests, 1);
        metrics.histogram(READ_REQUEST_KEYS).record(1.0);
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
pub(crate) fn strip(shared: &Shared, item: Option<Item>) -> Fetched {
    let Some(item) = item else {
        return (None, 0);
    };
    let (item, version) = shared.layout().value(item);
    (Some(Arc::new(item)), version)
}

/// Reads up to [`MAX_BATCH_GET_KEYS`] keys with `BatchGetItem` (strongly `consistent`, or
/// not), retrying unprocessed keys with backoff; returns the found items by rendered key.
///
/// Only attempts that read nothing count against the policy's read attempts, and only in a
/// row: an answer that leaves some keys unprocessed is progress, and starts the count and the
/// backoff again. The read deadline bounds the whole.
///
/// In a `load_batch` span: the number of `keys`, and once done the `attempts` made, the
/// `outcome` (`ok` or `error`, with the `error`) and, when it succeeded, how many keys were
/// `found`.
pub(crate) async fn load_batch(
    shared: &Shared,
    metrics: &Metrics,
    keys: Vec<String>,
    consistent: bool,
) -> Result<HashMap<String, Item>> {
    let span = tracing::debug_span!(
        "load_batch",
        keys = keys.len(),
        attempts = Empty,
        found = Empty,
        outcome = Empty,
        error = Empty,
    );
    let mut attempts = 0_u32;
    let result = load_keys(shared, metrics, keys, consistent, &mut attempts)
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
    metrics: &Metrics,
    mut keys: Vec<String>,
    consistent: bool,
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
        metrics
            .histogram(READ_REQUEST_KEYS)
            .record(keys.len() as f64);
        let request = shared
            .backend()
            .batch_get(&options.partition_key, &keys, consistent);
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const LIMIT: usize = 8;

    fn queued(keys: usize, in_flight: usize) -> Queue {
        let mut queue = Queue {
            in_flight,
            limit: Limit::new(LIMIT, false),
            waiting: Vec::new(),
        };
        for key in 0..keys {
            // The replies are dropped: only the batches are looked at.
            drop(queue.push(&key.to_string()));
        }
        queue
    }

    fn sizes(due: &[Vec<Waiting>]) -> Vec<usize> {
        due.iter().map(Vec::len).collect()
    }

    #[test]
    fn batches_are_full_and_bounded_in_flight() {
        // On a completed read: everything, in batches of at most 100.
        let mut queue = queued(250, 0);
        assert_eq!(sizes(&queue.take_due(true)), [100, 100, 50]);
        assert_eq!((queue.in_flight, queue.waiting.len()), (3, 0));
        // On a queued key: only full batches.
        let mut queue = queued(250, 1);
        assert_eq!(sizes(&queue.take_due(false)), [100, 100]);
        assert_eq!((queue.in_flight, queue.waiting.len()), (3, 50));
        // Never more than the bound in flight: the rest waits for a read to complete.
        let mut queue = queued(1000, LIMIT - 2);
        assert_eq!(sizes(&queue.take_due(true)), [100, 100]);
        assert_eq!(queue.in_flight, LIMIT);
        assert_eq!(queue.waiting.len(), 800);
        assert!(queue.take_due(true).is_empty());
        let mut queue = queued(0, 0);
        assert!(queue.take_due(true).is_empty());
    }

    #[test]
    fn full_batches_go_out_up_to_the_bound_when_the_limit_is_lowered() {
        let mut queue = queued(250, 1);
        queue.limit = Limit::new(LIMIT, true);
        queue.limit.completed(1, Duration::from_millis(1));
        while queue.limit.get() > 1 {
            queue.limit.completed(1, Duration::from_millis(10));
        }
        // Two full batches go out up to the bound; the partial one waits for the limit.
        assert_eq!(sizes(&queue.take_due(true)), [100, 100]);
        assert_eq!((queue.in_flight, queue.waiting.len()), (3, 50));
        queue.in_flight = 0;
        assert_eq!(sizes(&queue.take_due(true)), [50]);
    }
}
