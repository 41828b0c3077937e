//! Delta writes: one `UpdateItem` per key, carrying the store's [`Mark`] so that a delta sent
//! again after a lost answer is not applied twice, retried through transient failures until it
//! lands or is refused for good.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::batch::{Meta, Outcome, Outcomes, Refusal};
use crate::backend::Write;
use crate::delta::{unix_millis, Delta, Updated};
use crate::retry::Backoff;
use crate::shard::Value;
use crate::shared::Shared;

/// A dirty key's delta, on its way to the backend.
#[derive(Debug, Clone)]
pub(crate) struct DeltaWrite {
    pub meta: Meta,
    pub delta: Arc<Delta>,
    /// The key's state with the delta applied, as the store holds it: what a refusal reports.
    pub state: Value,
    /// Other writers' marks to remove from the item (see [`Mark::prune`](crate::backend::Mark)).
    pub prune: Vec<String>,
}

/// Writes each delta on its own, all at once; counts the requests it sends in `requests`.
pub(crate) async fn write_each(
    shared: &Shared,
    deltas: Vec<DeltaWrite>,
    requests: &AtomicU64,
) -> Outcomes {
    let writes = deltas.into_iter().map(|write| async move {
        let outcome = write_one(shared, &write, requests).await;
        (write.meta, outcome)
    });
    futures_util::future::join_all(writes).await
}

/// One delta, retried through transient failures. Each attempt carries the same mark, so
/// however many land, the delta is applied once.
async fn write_one(shared: &Shared, write: &DeltaWrite, requests: &AtomicU64) -> Outcome {
    let (backend, counters) = (shared.backend(), shared.counters());
    let partition_key = &shared.options().partition_key;
    let policy = &shared.options().retry;
    let layout = shared.layout();
    let delta = layout.delta(&write.delta);
    let now = unix_millis();
    let lifetime = u64::try_from(shared.options().mark_lifetime.as_millis()).unwrap_or(u64::MAX);
    let mut mark = layout
        .mark(write.meta.seq, now)
        .pruning(write.prune.clone(), now.saturating_sub(lifetime));
    let mut backoff = Backoff::new(policy);
    loop {
        counters.add(&counters.write_requests, 1);
        requests.fetch_add(1, Ordering::Relaxed);
        let request = backend.update(partition_key, &write.meta.key, &delta, Some(&mark));
        match policy.request("UpdateItem", request).await {
            Ok(Updated::Unchanged(item))
                if !mark.prune.is_empty() && !mark.applied_in(item.as_ref()) =>
            {
                // A mark this write meant to prune has moved: its writer is back. Keep it.
                tracing::debug!(key = %write.meta.key, "a mark to prune was renewed; writing the delta without pruning");
                mark = mark.pruning(Vec::new(), 0);
            }
            Ok(updated) => {
                if matches!(updated, Updated::Unchanged(_)) {
                    tracing::debug!(key = %write.meta.key, "a delta whose answer was lost had landed; not applied again");
                }
                counters.add(&counters.items_written, 1);
                return Outcome::Updated(updated.into_item());
            }
            Err(err) if err.is_retryable() => {
                counters.retry_after(&err);
                tracing::debug!(error = %err.report(), "delta write failed; retrying");
                backoff.wait().await;
            }
            Err(err) => {
                tracing::error!(key = %write.meta.key, error = %err.report(), "the backend refused a delta; it will not be retried");
                let state = match &write.state {
                    Some(value) => Write::Put(layout.stored(&write.meta.key, value, 0, 0)),
                    None => Write::Delete(write.meta.key.clone()),
                };
                return Outcome::Refused(Refusal {
                    error: err,
                    write: state,
                });
            }
        }
    }
}
