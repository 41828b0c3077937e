//! Waiting for a store to drain (a flush or close), failing rather than hanging when it makes
//! no progress.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use quickstore::{Stats, Store};
use tokio::time::MissedTickBehavior;

/// What shows a draining store making progress: items the backend accepted, writes settled
/// for good (refused, or lost to another writer), keys no longer pending. Retries are not
/// progress: a store whose backend is gone retries for ever.
fn progress_mark(stats: &Stats) -> (u64, u64, u64, usize) {
    (
        stats.items_written,
        stats.rejected_writes,
        stats.conflicts,
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
    let stats = store.stats();
    let mut last = progress_mark(&stats);
    let (mut since, mut retries_since) = (Instant::now(), stats.retries);
    loop {
        tokio::select! {
            result = &mut done => return result.with_context(|| format!("{step} failed")),
            _ = ticker.tick() => {
                let stats = store.stats();
                let mark = progress_mark(&stats);
                if mark != last {
                    (last, since, retries_since) = (mark, Instant::now(), stats.retries);
                } else if since.elapsed() >= stall {
                    let why = match stats.retries - retries_since {
                        0 => "the store's flusher seems stuck".to_owned(),
                        retried => format!(
                            "{retried} requests to the backend failed and were retried \
                             meanwhile; it may be unreachable"
                        ),
                    };
                    bail!(
                        "{step} made no progress for {} with {} keys still pending \
                         ({} items written so far): {why}",
                        humantime::format_duration(stall),
                        stats.pending,
                        stats.items_written,
                    );
                }
            }
        }
    }
}

/// How long a store whose work failed is given to close.
const CLOSE_AFTER_ERROR: Duration = Duration::from_secs(10);

/// Awaits `work`, done with `store` open; if it fails, closes the store before handing the
/// error on, so that no store is dropped open (its writes would drain unwatched, and the
/// library warns of it). A close that fails too, or takes longer than [`CLOSE_AFTER_ERROR`],
/// is added to the error.
pub async fn close_on_error<T>(
    store: &Store,
    work: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let err = match work.await {
        Ok(value) => return Ok(value),
        Err(err) => err,
    };
    match store.close_within(CLOSE_AFTER_ERROR).await {
        Ok(()) => Err(err),
        Err(closing) => Err(anyhow!(
            "{}; closing the store afterwards failed too: {closing}",
            crate::describe(&err)
        )),
    }
}
