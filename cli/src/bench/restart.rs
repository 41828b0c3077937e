//! `--restart`: how warm a store is right after a restart. The run's store saves its keys at
//! close (`StoreBuilder::warm_restart`); then a new store over the same backend reads them
//! back and prefetches them while the same workload runs against it. The report compares the
//! hit ratio in the last second before the close with the first second after the open, and
//! with the first second of a store opened cold.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use quickstore::backend::Backend;
use quickstore::{Key, Stats, Store};
use serde::Serialize;

use super::workload::{self, Length, RunPlan, Via};
use super::BenchArgs;
use crate::drain::close_on_error;

/// The window the hit ratios are measured over.
pub const WINDOW: Duration = Duration::from_secs(1);

/// What a restart did to the hit ratio.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Restarted {
    /// Hits over lookups in the last second before the close.
    pub before: f64,
    /// In the first second after the open, with the keys saved at the close.
    pub warm: f64,
    /// In the first second after an open without them.
    pub cold: f64,
    /// Keys the warm store prefetched in its first second.
    pub prefetched: u64,
    /// Of those, keys read in that second.
    pub prefetch_hits: u64,
}

/// The workload, run for [`WINDOW`], without a progress bar.
fn window(args: &BenchArgs) -> RunPlan {
    RunPlan {
        length: Length::For(WINDOW),
        label: "",
        ..args.plan(None)
    }
}

/// Runs the workload against `store` for [`WINDOW`]; returns the store's counters over it,
/// and the counter increments it made (`--workload k`).
pub async fn one_window(
    store: &Store,
    keys: &Arc<[Key]>,
    args: &BenchArgs,
) -> anyhow::Result<(Stats, u64)> {
    let before = store.stats();
    let ran = workload::run_ops(&Via::Store(store.clone()), keys, &window(args)).await?;
    Ok((store.stats().since(&before), ran.increments.count()))
}

/// Opens a store over `backend`, with the keys saved in `file` if given, and runs one window
/// against it at once.
async fn first_window(
    args: &BenchArgs,
    keys: &Arc<[Key]>,
    backend: Arc<dyn Backend>,
    flush_interval: Option<Duration>,
    file: Option<&Path>,
) -> anyhow::Result<Stats> {
    let mut builder = args.tuning.apply(Store::builder(backend), flush_interval);
    builder = builder.partition_key(args.backend.partition_key());
    if let Some(file) = file {
        builder = builder.warm_restart(file);
    }
    let store = builder.open().await?;
    let (stats, _) = close_on_error(&store, one_window(&store, keys, args)).await?;
    store.close().await?;
    Ok(stats)
}

/// Measures the restart of a store whose last window before its close was `before`, and which
/// saved its keys to `file` as it closed.
pub async fn measure(
    args: &BenchArgs,
    keys: &Arc<[Key]>,
    backend: Arc<dyn Backend>,
    flush_interval: Option<Duration>,
    before: &Stats,
    file: &Path,
) -> anyhow::Result<Restarted> {
    let warm = first_window(args, keys, Arc::clone(&backend), flush_interval, Some(file)).await?;
    let cold = first_window(args, keys, backend, flush_interval, None).await?;
    Ok(Restarted {
        before: before.hit_ratio(),
        warm: warm.hit_ratio(),
        cold: cold.hit_ratio(),
        prefetched: warm.prefetched,
        prefetch_hits: warm.prefetch_hits,
    })
}
