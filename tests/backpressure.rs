//! Backpressure: pending writes are bounded by keys and by bytes, and a full store either
//! fails a mutation at once or makes it wait for room, by the builder's choice.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{key, Fixture, TestResult};
use quickstore::testing::{Faults, FaultyBackend, Gate};
use quickstore::{Backpressure, Change, Error, Store};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Doc {
    n: u64,
    body: String,
}

fn doc(n: u64) -> Doc {
    Doc {
        n,
        body: "x".repeat(10_000),
    }
}

const BOUND: u64 = 1024 * 1024;

/// Writers far faster than the backend, waiting for room: every write is acknowledged in the
/// end, and the pending bytes never pass the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_far_faster_than_the_backend_never_passes_the_byte_bound() -> TestResult {
    let fixture = Fixture::embedded()?;
    // Every request takes 2 ms: the writers are far faster.
    let latency = Duration::from_millis(2);
    let backend = FaultyBackend::new(fixture.backend(), Faults::new().latency(latency, latency));
    let store = Store::builder(backend)
        .flush_interval(Duration::from_millis(5))
        .max_pending_bytes(BOUND)
        .backpressure(Backpressure::Wait(Duration::from_secs(120)))
        .open()
        .await?;
    let most = Arc::new(AtomicU64::new(0));
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..8u64 {
        let (store, most) = (store.clone(), Arc::clone(&most));
        writers.spawn(async move {
            for i in 0..60u64 {
                store
                    .upsert(&key("Doc", writer * 1000 + i), &doc(i))
                    .await?;
                most.fetch_max(store.stats().pending_bytes, Ordering::Relaxed);
            }
            Ok::<_, Error>(())
        });
    }
    while let Some(joined) = writers.join_next().await {
        joined??;
    }
    let most = most.load(Ordering::Relaxed);
    assert!(most <= BOUND, "pending bytes reached {most}, over {BOUND}");
    assert!(
        most > BOUND / 2,
        "the bound was never approached ({most}): the test proves nothing"
    );
    store.close().await?;
    assert_eq!(
        store.stats().pending_bytes,
        0,
        "every landed write gave its bytes back"
    );
    for writer in 0..8u64 {
        for i in 0..60u64 {
            let found = fixture
                .read_back(key("Doc", writer * 1000 + i).as_str())
                .await?;
            assert!(found.is_some(), "writer {writer}'s write {i} was lost");
        }
    }
    Ok(())
}

/// With `Backpressure::Fail`, a mutation that does not fit fails at once, says why, and
/// changes nothing; shrinking a pending key and deleting still fit.
#[tokio::test]
async fn a_full_store_fails_at_once_by_default() -> TestResult {
    let fixture = Fixture::embedded()?;
    let gate = Gate::new();
    let backend = FaultyBackend::new(fixture.backend(), Faults::new()).hold_writes(&gate);
    let store = Store::builder(backend)
        .max_pending_bytes(BOUND)
        .open()
        .await?;
    let mut written = 0;
    let err = loop {
        match store.upsert(&key("Doc", written), &doc(written)).await {
            Ok(()) => written += 1,
            Err(err) => break err,
        }
    };
    match &err {
        Error::TooManyRequests {
            pending_bytes,
            byte_limit,
            ..
        } => {
            assert_eq!(*byte_limit, BOUND);
            assert!(*pending_bytes <= BOUND);
        }
        other => return Err(format!("expected TooManyRequests, got {other:?}").into()),
    }
    assert!(err.is_retryable());
    assert_eq!(store.get::<Doc>(&key("Doc", written)).await?, None);
    // Smaller states of pending keys always fit.
    store
        .upsert(
            &key("Doc", 0),
            &Doc {
                n: 0,
                body: String::new(),
            },
        )
        .await?;
    store.delete(&key("Doc", 1)).await?;
    gate.open();
    store.close().await?;
    Ok(())
}

/// Waiting has a deadline: while the backend takes nothing, a waiting mutation fails with
/// `TooManyRequests` once it passes; when room is made, waiting mutations go through,
/// `update_with` included.
#[tokio::test(start_paused = true)]
async fn waiting_for_room_ends_at_its_deadline_or_when_writes_land() -> TestResult {
    let fixture = Fixture::embedded()?;
    let gate = Gate::new();
    let backend = FaultyBackend::new(fixture.backend(), Faults::new()).hold_writes(&gate);
    let store = Store::builder(backend)
        .max_pending(2)
        .backpressure(Backpressure::Wait(Duration::from_secs(30)))
        .open()
        .await?;
    store.upsert(&key("Doc", 1), &doc(1)).await?;
    store.upsert(&key("Doc", 2), &doc(2)).await?;
    let started = tokio::time::Instant::now();
    let err = store.upsert(&key("Doc", 3), &doc(3)).await.err();
    assert!(
        matches!(err, Some(Error::TooManyRequests { .. })),
        "{err:?}"
    );
    assert!(started.elapsed() >= Duration::from_secs(30));

    let waiting = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .update_with(&key("Doc", 4), |current: Option<Doc>| {
                    (Change::Put(doc(current.map_or(40, |d| d.n))), ())
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!waiting.is_finished(), "it waits while the store is full");
    gate.open();
    waiting.await??;
    assert_eq!(store.get::<Doc>(&key("Doc", 4)).await?, Some(doc(40)));
    store.close().await?;
    Ok(())
}

#[tokio::test]
async fn a_byte_bound_too_small_for_an_item_is_refused() -> TestResult {
    let fixture = Fixture::embedded()?;
    let refused = fixture.builder().max_pending_bytes(1000).open().await;
    assert!(
        matches!(refused, Err(Error::Validation { .. })),
        "{refused:?}"
    );
    Ok(())
}

/// A writer that never waits for anything (each upsert acknowledged at once, in a loop that
/// awaits nothing else) does not starve the flusher: on a single-threaded runtime, where such a
/// loop would otherwise keep the flusher from running until it ended, the flusher writes while
/// the loop goes on.
#[tokio::test(flavor = "current_thread")]
async fn a_writer_that_never_waits_does_not_starve_the_flusher() -> TestResult {
    const LIMIT: u64 = 1_000_000;
    let fixture = Fixture::embedded()?;
    let store = Store::builder(fixture.backend())
        .batch_threshold(10)
        .open()
        .await?;
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for n in 0..LIMIT {
                store
                    .upsert(
                        &key("Hot", n % 1000),
                        &Doc {
                            n,
                            body: String::new(),
                        },
                    )
                    .await?;
                if store.stats().items_written > 0 {
                    return Ok::<_, Error>(n);
                }
            }
            Ok(LIMIT)
        })
    };
    let upserts = writer.await??;
    assert!(
        upserts < LIMIT,
        "nothing was written while {LIMIT} upserts ran"
    );
    store.close().await?;
    Ok(())
}
