//! Resuming after a crash: each key the journal recovered is made dirty again, as it was
//! before the crash, to be written like any other.
//!
//! A key's full mutation is written again whole, with the deltas journaled after it folded in:
//! writing a state twice is harmless. A key left with deltas only can neither be written whole
//! (that would overwrite other writers' changes) nor have its deltas simply sent again, since
//! some may have landed before the crash. So such keys are read first, strongly consistent and
//! batched, and this store's [mark](crate::backend::Mark) in each item tells which of its deltas landed:
//! those are dropped, and the others are written one request each, each with its own mark, so
//! that a delta the crashed process sent and that lands late is still applied once. The item
//! read, with the deltas still to write applied, is what reads see meanwhile.

use std::sync::Arc;

use crate::backend::MAX_BATCH_GET_KEYS;
use crate::delta::Delta;
use crate::error::Result;
use crate::flusher;
use crate::item::Item;
use crate::journal::{Pending, Recovered, TableState};
use crate::load::load_batch;
use crate::shard::Value;
use crate::shared::Shared;
use crate::telemetry::Metrics;
use crate::version::Base;

/// Makes every recovered key dirty again; reads the keys left with deltas only first.
///
/// # Errors
///
/// When those keys cannot be read: the store does not open, and the journal keeps them.
pub(crate) async fn resume(
    shared: &Shared,
    flusher: &flusher::Handle,
    recovered: Recovered,
) -> Result<()> {
    shared.resume_seq(recovered.max_seq);
    let (whole, deltas_only): (Vec<Pending>, Vec<Pending>) = recovered
        .pending
        .into_iter()
        .partition(|pending| pending.full.is_some());
    for pending in whole {
        restore_whole(shared, flusher, pending);
    }
    let metrics = Metrics::new(shared.options().metrics_label.as_deref());
    for chunk in deltas_only.chunks(MAX_BATCH_GET_KEYS) {
        let keys = chunk.iter().map(|p| p.key().to_owned()).collect();
        let mut items = load_batch(shared, &metrics, keys, true).await?;
        for pending in chunk {
            let item = items.remove(pending.key());
            restore_deltas(shared, flusher, pending, item);
        }
    }
    Ok(())
}

/// The delta a recovered apply record carries, with its sequence.
fn deltas(pending: &Pending) -> impl Iterator<Item = (u64, Arc<Delta>)> + '_ {
    pending.deltas.iter().filter_map(|record| {
        let delta = record.delta();
        if delta.is_none() {
            tracing::error!(key = %record.key, seq = record.seq, "a recovered delta could not be read; it is skipped");
        }
        Some((record.seq, Arc::new(delta?)))
    })
}

/// `value` with `deltas` applied in turn; a delta that cannot apply (never expected: it
/// applied when it was acknowledged) is skipped, with an error logged.
fn applied<'d>(key: &str, value: Value, deltas: impl Iterator<Item = &'d Delta>) -> Value {
    deltas.fold(value, |value, delta| {
        match delta.applied_to(value.as_deref(), key.len()) {
            Ok(item) => Some(Arc::new(item)),
            Err(err) => {
                tracing::error!(%key, error = %err.report(), "a recovered delta does not apply to the recovered state; it is skipped");
                value
            }
        }
    })
}

/// A key with a full mutation: written whole, the deltas after it folded in.
fn restore_whole(shared: &Shared, flusher: &flusher::Handle, pending: Pending) {
    let Some(full) = &pending.full else {
        return;
    };
    let key = pending.key();
    let deltas: Vec<_> = deltas(&pending).collect();
    let value = applied(key, full.item.clone(), deltas.iter().map(|(_, d)| &**d));
    // The base matters in versioned mode only; without a recorded one (an unversioned
    // store's journal), a recovered write is conditional on the item's absence, so it
    // never overwrites an item it knows nothing of.
    let base = Base {
        version: pending.base.as_ref().and_then(TableState::version),
        read: pending.base.as_ref().and_then(TableState::read).cloned(),
    };
    let seqs = (pending.first_seq(), pending.last_seq());
    restore(shared, flusher, key, value, seqs, None, base);
}

/// A key with deltas only, and its item as read now: the deltas it has not taken are written,
/// each on its own.
fn restore_deltas(
    shared: &Shared,
    flusher: &flusher::Handle,
    pending: &Pending,
    item: Option<Item>,
) {
    let key = pending.key();
    let layout = shared.layout();
    let landed = item.as_ref().map_or(0, |item| layout.landed(item));
    let left: Vec<_> = deltas(pending).filter(|(seq, _)| *seq > landed).collect();
    let Some(first) = left.first().map(|(seq, _)| *seq) else {
        tracing::debug!(%key, "every recovered delta of the key had landed");
        return;
    };
    let (read, version) = match item {
        Some(item) => {
            let (value, version) = layout.value(item);
            (Some(Arc::new(value)), Some(version))
        }
        None => (None, None),
    };
    let versioned = shared.options().version_attribute.is_some();
    let base = Base {
        version,
        read: read.clone().filter(|_| versioned && version == Some(0)),
    };
    let value = applied(key, read, left.iter().map(|(_, d)| &**d));
    let seqs = (first, pending.last_seq());
    restore(shared, flusher, key, value, seqs, Some(left), base);
}

fn restore(
    shared: &Shared,
    flusher: &flusher::Handle,
    key: &str,
    value: Value,
    seqs: (u64, u64),
    deltas: Option<Vec<(u64, Arc<Delta>)>>,
    base: Base,
) {
    let index = shared.shard_index(key);
    let on_dirty = |first_seq: u64, key: &str| flusher.dirty(first_seq, index, key);
    let ctx = shared.write_context(&on_dirty);
    shared
        .shard(index)
        .restore(key, value, seqs, deltas, base, &ctx);
}
