//! One batch of writes, carried to the backend: `UnprocessedItems`, throttling, 5xx and
//! timeouts are retried with backoff until they succeed; a permanent failure is narrowed down to
//! the writes that cause it by bisecting the failed batch.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tracing::field::Empty;
use tracing::Instrument as _;

use super::update::{self, DeltaWrite};
use crate::backend::{Conditional, Write};
use crate::error::Error;
use crate::item::Item;
use crate::journal::TableState;
use crate::key::Parts;
use crate::retry::Backoff;
use crate::shard::{Completed, Landed};
use crate::shared::Shared;
use crate::stored::Layout;
use crate::telemetry::{Metrics, FLUSH_BATCH_SECONDS, FLUSH_BATCH_WRITES};
use crate::version::{self, Base};

/// Which dirty state a write carries.
#[derive(Debug, Clone)]
pub(crate) struct Meta {
    pub shard: usize,
    pub key: String,
    /// The oldest mutation the write covers.
    pub first_seq: u64,
    /// The newest mutation the write covers.
    pub seq: u64,
    /// The table's state the write replaces (versioned mode: its condition).
    pub base: Base,
    /// Where the key's parts end, when known.
    pub parts: Option<Parts>,
    /// The version the table holds once the write lands; `None` for a delete.
    pub written: Option<u64>,
}

/// Writes and their metadata, index-aligned, and the deltas sent beside them.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub metas: Vec<Meta>,
    pub writes: Vec<Write>,
    /// Deltas, each written on its own ([`update`](super::update)).
    pub deltas: Vec<DeltaWrite>,
}

impl Batch {
    pub(crate) fn push(&mut self, meta: Meta, write: Write) {
        self.metas.push(meta);
        self.writes.push(write);
    }

    /// How many writes (puts and deletes) the batch holds.
    pub(crate) fn len(&self) -> usize {
        self.metas.len()
    }

    /// How many keys the batch writes: its writes and its deltas.
    pub(crate) fn keys(&self) -> usize {
        self.metas.len() + self.deltas.len()
    }

    /// The metadata of every write and delta.
    pub(crate) fn all_metas(&self) -> Vec<Meta> {
        let deltas = self.deltas.iter().map(|delta| delta.meta.clone());
        self.metas.iter().cloned().chain(deltas).collect()
    }

    /// Splits off the writes at `indices`, keeping the rest.
    fn split_off(&mut self, indices: &HashSet<usize>) -> Batch {
        let mut kept = Batch::default();
        let mut taken = Batch::default();
        for (i, (meta, write)) in self.metas.drain(..).zip(self.writes.drain(..)).enumerate() {
            if indices.contains(&i) {
                taken.push(meta, write);
            } else {
                kept.push(meta, write);
            }
        }
        *self = kept;
        taken
    }

    /// The batch cut in two halves, in order.
    fn halves(mut self) -> (Batch, Batch) {
        let middle = self.len() / 2;
        let second = Batch {
            metas: self.metas.split_off(middle),
            writes: self.writes.split_off(middle),
            deltas: Vec::new(),
        };
        (self, second)
    }
}

/// A write the backend refused for good, and why.
pub(crate) struct Refusal {
    pub error: Error,
    pub write: Write,
}

/// How one write ended.
pub(crate) enum Outcome {
    Written,
    /// A delta landed (now or before); the item the table answered with, if there is one.
    Updated(Option<Item>),
    /// Written, and already settled with its shard (see [`complete`]).
    Completed(Option<Completed>),
    /// Refused for good.
    Refused(Refusal),
    /// Versioned mode: another writer changed the item first; this is the item now there.
    Conflict(Option<Item>),
}

/// Tells the key's shard how its write ended, and, in versioned mode with a journal, notes
/// it in the journal after the shard has it, so that every mutation journaled before the note
/// builds on the old base and every one after it on the new one.
pub(crate) fn complete(shared: &Shared, meta: &Meta, landed: Landed) -> Option<Completed> {
    let table = match &landed {
        Landed::Written(now) => *now,
        Landed::Updated(value, version) => value.is_some().then_some(*version),
        // Refused: the table was left as it was.
        Landed::Refused => meta.base.version,
    };
    let completed = shared
        .shard(meta.shard)
        .complete_write(&meta.key, meta.seq, landed);
    if completed.is_some() {
        mark_settled(shared, &meta.key, meta.seq, table);
    }
    completed
}

/// Versioned mode with a journal: notes that the key's mutations up to `seq` are settled and
/// left the table in state `table` (present at a version, or absent), so that recovery neither
/// writes them again nor builds on an older version. Not waited for: a note lost in a crash
/// only risks a conflict reported for a recovered write.
pub(crate) fn mark_settled(shared: &Shared, key: &str, seq: u64, table: Option<u64>) {
    let (Some(journal), Some(_)) = (shared.journal(), &shared.options().version_attribute) else {
        return;
    };
    if let Err(err) = journal.settled(key, seq, TableState::from_version(table)) {
        tracing::debug!(%key, error = %err.report(), "the settling of a write could not be journaled");
    }
}

/// Each write's outcome.
pub(crate) type Outcomes = Vec<(Meta, Outcome)>;

/// Writes `batch` the store's way ([`write`], or [`write_each_if`] in versioned mode), and its
/// deltas each on its own, in a `flush_batch` span, and records the batch's metrics; returns
/// each write's outcome.
///
/// The span's fields: `writes` in the batch (deltas included), `versioned`, and once the batch is done,
/// `requests` sent (retries included), how many writes were `written`, `refused` and lost to
/// `conflicts`, and the `outcome`: `written` (every write landed), `refused` (some were
/// refused for good), `conflicts` (some lost the race to another writer) or `mixed` (both).
pub(crate) async fn send(shared: Arc<Shared>, metrics: Metrics, mut batch: Batch) -> Outcomes {
    let writes = batch.keys();
    let deltas = std::mem::take(&mut batch.deltas);
    let span = tracing::debug_span!(
        "flush_batch",
        writes,
        versioned = shared.options().version_attribute.is_some(),
        requests = Empty,
        written = Empty,
        refused = Empty,
        conflicts = Empty,
        outcome = Empty,
    );
    let requests = AtomicU64::new(0);
    let started = tokio::time::Instant::now();
    let writes_sent = async {
        if batch.len() == 0 {
            return Vec::new();
        }
        match &shared.options().version_attribute {
            Some(attribute) => {
                let attribute = Arc::clone(attribute);
                write_each_if(Arc::clone(&shared), attribute, batch, &requests).await
            }
            None => write(Arc::clone(&shared), batch, &requests).await,
        }
    };
    let deltas_sent = update::write_each(&shared, deltas, &requests);
    let (mut outcomes, updated) = futures_util::future::join(writes_sent, deltas_sent)
        .instrument(span.clone())
        .await;
    outcomes.extend(updated);
    metrics
        .histogram(FLUSH_BATCH_SECONDS)
        .record(started.elapsed().as_secs_f64());
    metrics.histogram(FLUSH_BATCH_WRITES).record(writes as f64);
    let (mut written, mut refused, mut conflicts) = (0_usize, 0_usize, 0_usize);
    for (_, outcome) in &outcomes {
        match outcome {
            Outcome::Written | Outcome::Updated(_) | Outcome::Completed(_) => written += 1,
            Outcome::Refused(_) => refused += 1,
            Outcome::Conflict(_) => conflicts += 1,
        }
    }
    let outcome = match (refused, conflicts) {
        (0, 0) => "written",
        (_, 0) => "refused",
        (0, _) => "conflicts",
        _ => "mixed",
    };
    span.record("requests", requests.load(Ordering::Relaxed));
    span.record("written", written);
    span.record("refused", refused);
    span.record("conflicts", conflicts);
    span.record("outcome", outcome);
    outcomes
}

/// Writes `batch`, retrying what may succeed, and returns each write's outcome; counts the
/// requests it sends in `requests`.
async fn write(shared: Arc<Shared>, batch: Batch, requests: &AtomicU64) -> Outcomes {
    let (backend, counters) = (shared.backend(), shared.counters());
    let partition_key = &shared.options().partition_key;
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut groups = VecDeque::from([batch]);
    let policy = &shared.options().retry;
    while let Some(mut group) = groups.pop_front() {
        let mut backoff = Backoff::new(policy);
        loop {
            counters.add(&counters.write_requests, 1);
            requests.fetch_add(1, Ordering::Relaxed);
            let request = backend.batch_write(partition_key, &group.writes);
            match policy.request("BatchWriteItem", request).await {
                Ok(unprocessed) => {
                    let unprocessed: HashSet<usize> = unprocessed.into_iter().collect();
                    let retry = group.split_off(&unprocessed);
                    counters.add(&counters.items_written, group.len() as u64);
                    outcomes.extend(group.metas.into_iter().map(|meta| (meta, Outcome::Written)));
                    if retry.len() == 0 {
                        break;
                    }
                    group = retry;
                    counters.add(&counters.retries, 1);
                    tracing::debug!(
                        unprocessed = group.len(),
                        "BatchWriteItem left items unprocessed; retrying"
                    );
                    backoff.wait().await;
                }
                Err(err) if err.is_retryable() => {
                    counters.retry_after(&err);
                    if backoff.attempts() % 10 == 9 {
                        tracing::warn!(error = %err.report(), attempts = backoff.attempts() + 1, "writes keep failing; retrying");
                    } else {
                        tracing::debug!(error = %err.report(), "write failed; retrying");
                    }
                    backoff.wait().await;
                }
                Err(err) if group.len() > 1 => {
                    // Bisect: the half without the culprits lands in one request, and each
                    // culprit is found in about log2(25) more.
                    tracing::debug!(error = %err.report(), writes = group.len(), "batch refused; retrying it in halves to find the refused writes");
                    let (first, second) = group.halves();
                    groups.push_front(second);
                    groups.push_front(first);
                    break;
                }
                Err(err) => {
                    for (meta, write) in group.metas.into_iter().zip(group.writes) {
                        tracing::error!(key = %meta.key, error = %err.report(), "the backend refused a write; it will not be retried");
                        let error = err.clone();
                        outcomes.push((meta, Outcome::Refused(Refusal { error, write })));
                    }
                    break;
                }
            }
        }
    }
    outcomes
}

/// Versioned mode: writes each write of `batch` on its own, conditional on the version it
/// replaces, all at once. `BatchWriteItem` cannot carry conditions; see docs/BENCHMARKS.md for
/// why separate requests rather than transactions. Counts the requests it sends in
/// `requests`.
async fn write_each_if(
    shared: Arc<Shared>,
    version_attribute: Arc<str>,
    batch: Batch,
    requests: &AtomicU64,
) -> Outcomes {
    let writes = batch
        .metas
        .into_iter()
        .zip(batch.writes)
        .map(|(mut meta, mut write)| {
            let shared = &shared;
            let attribute = &version_attribute;
            async move {
                let outcome = match write_if(shared, attribute, &mut meta, &mut write, requests)
                    .await
                {
                    // Settled at once rather than with the whole batch: the sooner the journal
                    // notes it, the smaller the window in which a crash leaves a recovered write
                    // conditional on a version this one already replaced.
                    Outcome::Written => {
                        Outcome::Completed(complete(shared, &meta, Landed::Written(meta.written)))
                    }
                    other => other,
                };
                (meta, outcome)
            }
        });
    futures_util::future::join_all(writes).await
}

/// One conditional write, retried through transient failures.
///
/// A failed condition is a conflict unless the item there is this store's own doing: the
/// write itself, which landed although its answer was lost (a retry, or a write recovered from
/// the journal after a crash), or an older state of the key the store wrote, whose answer a
/// crash lost before the journal could note it. The write is then rebased on that version and
/// sent again. Other writers' items are told apart by the writer attribute, never by content:
/// two writers can build the same item from the same version.
///
/// A write over an item without the version attribute is conditional on that item as read.
/// When the store does not have it (a write recovered from the journal), the item in the
/// table is read instead and judged as a failed condition would be: the write is sent only
/// if the item is this store's own doing, and is otherwise a conflict.
async fn write_if(
    shared: &Shared,
    version_attribute: &str,
    meta: &mut Meta,
    write: &mut Write,
    requests: &AtomicU64,
) -> Outcome {
    let (backend, counters) = (shared.backend(), shared.counters());
    let partition_key = &shared.options().partition_key;
    let policy = &shared.options().retry;
    let mut backoff = Backoff::new(policy);
    let operation = match write {
        Write::Put(_) => "PutItem",
        Write::Delete(_) => "DeleteItem",
    };
    loop {
        let condition = version::condition(&meta.base, version_attribute, partition_key, &meta.key);
        let answer = match &condition {
            Some(condition) => {
                counters.add(&counters.write_requests, 1);
                requests.fetch_add(1, Ordering::Relaxed);
                let request = backend.write_if(partition_key, write, condition);
                policy.request(operation, request).await
            }
            None => {
                counters.add(&counters.read_requests, 1);
                let request = backend.get(partition_key, &meta.key, true);
                policy
                    .request("GetItem", request)
                    .await
                    .map(|current| Conditional::Conflict { current })
            }
        };
        match answer {
            Ok(Conditional::Written) => {
                counters.add(&counters.items_written, 1);
                return Outcome::Written;
            }
            Ok(Conditional::Conflict { current }) => {
                let layout = shared.layout();
                let ours = current.as_ref().and_then(|item| layout.written_here(item));
                match (&*write, ours) {
                    // This very write landed.
                    (Write::Put(_), Some(seq)) if seq == meta.seq => {
                        counters.add(&counters.items_written, 1);
                        return Outcome::Written;
                    }
                    // An older state of ours landed: build on it.
                    (_, Some(seq)) if seq < meta.seq => {
                        let Some(current) = &current else {
                            return Outcome::Conflict(None);
                        };
                        let landed = layout.version_of(current);
                        rebase(meta, write, layout, landed);
                        tracing::debug!(key = %meta.key, version = landed, "an earlier write of the key landed unseen; writing on top of it");
                    }
                    // A delete of an item that is gone: nothing to lose.
                    (Write::Delete(_), None) if current.is_none() => {
                        counters.add(&counters.items_written, 1);
                        return Outcome::Written;
                    }
                    _ => return Outcome::Conflict(current),
                }
            }
            Err(err) if err.is_retryable() => {
                counters.retry_after(&err);
                tracing::debug!(error = %err.report(), "conditional write failed; retrying");
                backoff.wait().await;
            }
            Err(err) => {
                let key = write.key(partition_key).unwrap_or_default().to_owned();
                tracing::error!(%key, error = %err.report(), "the backend refused a write; it will not be retried");
                return Outcome::Refused(Refusal {
                    error: err,
                    write: write.clone(),
                });
            }
        }
    }
}

/// Makes `write` replace version `landed` instead of its base.
fn rebase(meta: &mut Meta, write: &mut Write, layout: &Layout, landed: u64) {
    meta.base = Base {
        version: Some(landed),
        read: None,
    };
    let next = version::next(meta.base.version);
    if let Write::Put(item) = write {
        layout.stamp(item, next, meta.seq);
        meta.written = Some(next);
    }
}
