//! Waiting for a store to drain (a flush or close), failing rather than hanging when it makes
//! no progress.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use quickstore::{Stats, Store};
use tokio::time::MissedTickBehavior;

/// What shows a draining store making progress.
fn progress_mark(stats: &Stats) -> (u64, u64, u64, u64, usize) {
    (
        stats.items_written,
        stats.write_requests,
        stats.retries,
        stats.rejected_writes,
        stats.pending,
    )
}

/// Awaits a flush or close of `store`, failing if the store makes no progress for `stall`.
pub async fn drain(
    store: &Store,
    step: &str,
    stall: Duration,
    done: impl Future<Output = quickstore::Result<()>>,
) -> anyhow::Result<()> {
    tokio::pin!(done);
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last = progress_mark(&store.stats());
    let mut since = Instant::now();
    loop {
        tokio::select! {
            result = &mut done => return result.with_context(|| format!("{step} failed")),
            _ = ticker.tick() => {
                let stats = store.stats();
                let mark = progress_mark(&stats);
                if mark != last {
                    (last, since) = (mark, Instant::now());
                } else if since.elapsed() >= stall {
                    bail!(
                        "{step} made no progress for {} with {} keys still pending \
                         ({} items written so far); the store's flusher seems stuck",
                        humantime::format_duration(stall),
                        stats.pending,
                        stats.items_written,
                    );
                }
            }
        }
    }
}
