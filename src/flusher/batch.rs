//! One batch of writes, carried to the backend: `UnprocessedItems`, throttling, 5xx and
//! timeouts are retried with backoff until they succeed; a permanent failure is narrowed down to
//! the writes that cause it by retrying each write of the failed batch on its own.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use crate::backend::{Condition, Conditional, Write};
use crate::error::Error;
use crate::item::Item;
use crate::retry::Backoff;
use crate::shared::Shared;
use crate::version;

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
    pub base: Option<u64>,
    /// The version the table holds once the write lands; `None` for a delete.
    pub written: Option<u64>,
}

/// Writes and their metadata, index-aligned.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub metas: Vec<Meta>,
    pub writes: Vec<Write>,
}

impl Batch {
    pub(crate) fn push(&mut self, meta: Meta, write: Write) {
        self.metas.push(meta);
        self.writes.push(write);
    }

    pub(crate) fn len(&self) -> usize {
        self.metas.len()
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

    fn singles(self) -> impl Iterator<Item = Batch> {
        self.metas
            .into_iter()
            .zip(self.writes)
            .map(|(meta, write)| {
                let mut single = Batch::default();
                single.push(meta, write);
                single
            })
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
    /// Refused for good.
    Refused(Refusal),
    /// Versioned mode: another writer changed the item first; this is the item now there.
    Conflict(Option<Item>),
}

/// Each write's outcome.
pub(crate) type Outcomes = Vec<(Meta, Outcome)>;

/// Writes `batch`, retrying what may succeed, and returns each write's outcome.
pub(crate) async fn write(shared: Arc<Shared>, batch: Batch) -> Outcomes {
    let (backend, counters) = (&shared.backend, &shared.counters);
    let partition_key = &shared.options.partition_key;
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut groups = VecDeque::from([batch]);
    let policy = &shared.options.retry;
    while let Some(mut group) = groups.pop_front() {
        let mut backoff = Backoff::new(policy);
        loop {
            counters.add(&counters.write_requests, 1);
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
                    tracing::debug!(error = %err.report(), writes = group.len(), "batch refused; retrying its writes one by one");
                    groups.extend(group.singles());
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
/// why separate requests rather than transactions.
pub(crate) async fn write_each_if(
    shared: Arc<Shared>,
    version_attribute: Arc<str>,
    batch: Batch,
) -> Outcomes {
    let writes = batch
        .metas
        .into_iter()
        .zip(batch.writes)
        .map(|(meta, write)| {
            let shared = &shared;
            let condition = version::condition(meta.base, &version_attribute);
            async move {
                let outcome = write_if(shared, &write, &condition).await;
                (meta, outcome)
            }
        });
    futures_util::future::join_all(writes).await
}

/// One conditional write, retried through transient failures.
async fn write_if(shared: &Shared, write: &Write, condition: &Condition) -> Outcome {
    let (backend, counters) = (&shared.backend, &shared.counters);
    let partition_key = &shared.options.partition_key;
    let policy = &shared.options.retry;
    let mut backoff = Backoff::new(policy);
    loop {
        counters.add(&counters.write_requests, 1);
        let request = backend.write_if(partition_key, write, condition);
        let operation = match write {
            Write::Put(_) => "PutItem",
            Write::Delete(_) => "DeleteItem",
        };
        match policy.request(operation, request).await {
            Ok(Conditional::Written) => {
                counters.add(&counters.items_written, 1);
                return Outcome::Written;
            }
            Ok(Conditional::Conflict { current }) => {
                // Not a conflict: a retry that finds exactly what it writes, because its first
                // attempt landed although the answer was lost; or a delete of an item that is
                // gone (a delete carries nothing to lose). Equal content on a first attempt is
                // a conflict: another writer built the same state from the same version.
                let landed = match (write, &current) {
                    (Write::Put(ours), Some(theirs)) => backoff.attempts() > 0 && ours == theirs,
                    (Write::Delete(_), None) => true,
                    _ => false,
                };
                if landed {
                    counters.add(&counters.items_written, 1);
                    return Outcome::Written;
                }
                return Outcome::Conflict(current);
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
