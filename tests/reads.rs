//! Read-through under failure, concurrency and cancellation: a failed load fails its waiters at
//! once, `get_many` loads its chunks concurrently, and a dropped call never half-applies (a
//! dropped read hands its load on: `faults.rs`, `a_cancelled_load_hands_over_to_a_waiter`).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{key, Faults, FaultyBackend, Fixture, TestResult};
use futures_util::FutureExt as _;
use quickstore::{Durability, Error, Store};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Doc {
    n: u32,
}

/// Lets every spawned task run until it waits on something (the runtime is single-threaded).
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

/// One read of a missing key is made, however many callers ask; when it fails after its
/// retries, every caller gets its error, and none of them repeats the retries.
#[tokio::test(start_paused = true)]
async fn a_failed_load_fails_every_waiter_with_the_attempts_of_one() -> TestResult {
    let fixture = Fixture::embedded()?;
    let gate = Arc::new(Semaphore::new(0));
    let faults = Faults {
        transient: 1.0,
        ..Faults::default()
    };
    let backend =
        Arc::new(FaultyBackend::new(fixture.backend(), faults).with_read_gate(Arc::clone(&gate)));
    let observed = backend.observed();
    let store = Store::builder(Arc::clone(&backend)).open().await?;
    let wanted = key("Doc", 1);
    let mut readers = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let (store, wanted) = (store.clone(), wanted.clone());
        readers.spawn(async move { store.get::<Doc>(&wanted).await });
    }
    settle().await;
    assert_eq!(observed.lock().gets, 1, "one load, four waiters");
    gate.add_permits(Semaphore::MAX_PERMITS);
    let mut failures = 0;
    while let Some(joined) = readers.join_next().await {
        let err = joined?
            .err()
            .ok_or("a read of an unreachable key succeeded")?;
        assert!(
            matches!(err, Error::Backend(_)) && err.is_retryable(),
            "{err:?}"
        );
        failures += 1;
    }
    assert_eq!(failures, 5);
    let attempts = observed.lock().gets;
    let single = {
        // What one caller alone makes: the read's full retry budget.
        let before = attempts;
        let _ = store.get::<Doc>(&wanted).await;
        observed.lock().gets - before
    };
    assert_eq!(attempts, single, "five callers made one read's attempts");
    store.close().await?;
    Ok(())
}

/// `get_many` sends its `BatchGetItem` requests of 100 keys side by side.
#[tokio::test]
async fn get_many_loads_its_chunks_concurrently() -> TestResult {
    let fixture = Fixture::embedded()?;
    let backend = Arc::new(FaultyBackend::new(fixture.backend(), Faults::default()));
    let observed = backend.observed();
    let store = Store::builder(Arc::clone(&backend)).open().await?;
    let keys: Vec<_> = (0..250).map(|i| key("Doc", i)).collect();
    for wanted in keys.iter().step_by(2) {
        store.upsert(wanted, &Doc { n: 1 }).await?;
    }
    store.close().await?;

    let store = Store::builder(Arc::clone(&backend)).open().await?;
    let found = store.get_many::<Doc, _>(&keys).await?;
    assert_eq!(found.len(), 125);
    let observed = observed.lock().clone();
    assert_eq!(observed.batch_get_sizes.iter().sum::<usize>(), 250);
    assert!(
        observed.max_batch_gets_in_flight > 1,
        "batches went one at a time: {:?}",
        observed.batch_get_sizes
    );
    store.close().await?;
    Ok(())
}

/// An `insert` of a key the store does not know reads it first; dropped during that read, it
/// changes nothing, and the read is left to the next caller.
#[tokio::test]
async fn an_insert_dropped_while_reading_its_key_changes_nothing() -> TestResult {
    let fixture = Fixture::embedded()?;
    let gate = Arc::new(Semaphore::new(0));
    let backend = Arc::new(
        FaultyBackend::new(fixture.backend(), Faults::default()).with_read_gate(Arc::clone(&gate)),
    );
    let observed = backend.observed();
    let store = Store::builder(Arc::clone(&backend)).open().await?;
    let wanted = key("Doc", 1);
    let insert = {
        let (store, wanted) = (store.clone(), wanted.clone());
        tokio::spawn(async move { store.insert(&wanted, &Doc { n: 1 }).await })
    };
    settle().await;
    assert_eq!(observed.lock().gets, 1, "the insert is reading its key");
    insert.abort();
    assert!(insert.await.is_err_and(|e| e.is_cancelled()));
    gate.add_permits(Semaphore::MAX_PERMITS);
    assert_eq!(store.get::<Doc>(&wanted).await?, None);
    let stats = store.stats();
    assert_eq!((stats.mutations, stats.pending), (0, 0));
    store.close().await?;
    assert!(fixture.read_back(wanted.as_str()).await?.is_none());
    Ok(())
}

/// With a journal, a mutation is applied and journaled before it waits for the disk: dropped
/// during that wait, it stays applied and reaches the backend like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journaled_mutation_dropped_while_waiting_for_the_disk_stays_applied() -> TestResult {
    let fixture = Fixture::embedded()?;
    let dir = tempfile::tempdir()?;
    let store = fixture
        .builder()
        .journal(dir.path())
        .durability(Durability::Interval(Duration::from_secs(3600)))
        .open()
        .await?;
    let wanted = key("Doc", 1);
    for n in 1..=50 {
        // Polled once, then dropped: applied in that poll, whether or not the disk was reached.
        let _ = store.upsert(&wanted, &Doc { n }).now_or_never();
    }
    assert_eq!(store.get::<Doc>(&wanted).await?, Some(Doc { n: 50 }));
    store.close().await?;
    let stored = fixture
        .read_back(wanted.as_str())
        .await?
        .ok_or("not written")?;
    assert_eq!(
        stored.get("n"),
        Some(&quickstore::AttributeValue::N("50".into()))
    );
    Ok(())
}
