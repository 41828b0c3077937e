//! Read-through under failure, concurrency and cancellation: a failed load fails its waiters at
//! once, `get_many` loads its chunks concurrently, and a dropped call never half-applies (a
//! dropped read hands its load on: `faults.rs`, `a_cancelled_load_hands_over_to_a_waiter`).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{key, Fixture, TestResult};
use futures_util::FutureExt as _;
use quickstore::testing::{Faults, FaultyBackend, Gate};
use quickstore::{Durability, Error, RetryPolicy, Store};
use serde::{Deserialize, Serialize};

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
    let gate = Gate::new();
    let faults = Faults::new().throttle(1.0);
    let backend = Arc::new(FaultyBackend::new(fixture.backend(), faults).hold_gets(&gate));
    let store = Store::builder(Arc::clone(&backend)).open().await?;
    let wanted = key("Doc", 1);
    let mut readers = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let (store, wanted) = (store.clone(), wanted.clone());
        readers.spawn(async move { store.get::<Doc>(&wanted).await });
    }
    settle().await;
    assert_eq!(backend.observed().gets, 1, "one load, four waiters");
    gate.open();
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
    let attempts = backend.observed().gets;
    let single = {
        // What one caller alone makes: the read's full retry budget.
        let before = attempts;
        let _ = store.get::<Doc>(&wanted).await;
        backend.observed().gets - before
    };
    assert_eq!(attempts, single, "five callers made one read's attempts");
    store.close().await?;
    Ok(())
}

/// `get_many` sends its `BatchGetItem` requests of 100 keys side by side.
#[tokio::test]
async fn get_many_loads_its_chunks_concurrently() -> TestResult {
    let fixture = Fixture::embedded()?;
    let backend = Arc::new(FaultyBackend::new(fixture.backend(), Faults::new()));
    let store = Store::builder(Arc::clone(&backend)).open().await?;
    let keys: Vec<_> = (0..250).map(|i| key("Doc", i)).collect();
    for wanted in keys.iter().step_by(2) {
        store.upsert(wanted, &Doc { n: 1 }).await?;
    }
    store.close().await?;

    let store = Store::builder(Arc::clone(&backend)).open().await?;
    let found = store.get_many::<Doc, _>(&keys).await?;
    assert_eq!(found.len(), 125);
    let observed = backend.observed();
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
    let gate = Gate::new();
    let backend = Arc::new(FaultyBackend::new(fixture.backend(), Faults::new()).hold_gets(&gate));
    let store = Store::builder(Arc::clone(&backend)).open().await?;
    let wanted = key("Doc", 1);
    let insert = {
        let (store, wanted) = (store.clone(), wanted.clone());
        tokio::spawn(async move { store.insert(&wanted, &Doc { n: 1 }).await })
    };
    settle().await;
    assert_eq!(backend.observed().gets, 1, "the insert is reading its key");
    insert.abort();
    assert!(insert.await.is_err_and(|e| e.is_cancelled()));
    gate.open();
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

/// A `get_many` whose batches come back half done each time keeps going while it makes
/// progress: under every seed, each call completes with every key.
#[tokio::test(start_paused = true)]
async fn get_many_completes_while_batches_make_progress() -> TestResult {
    let mut throttles = 0;
    for seed in 0..20 {
        let fixture = Fixture::embedded()?;
        let store = fixture.store().await?;
        let keys: Vec<_> = (0..260).map(|i| key("Doc", i)).collect();
        for wanted in &keys {
            store.upsert(wanted, &Doc { n: 1 }).await?;
        }
        store.close().await?;
        let faults = Faults::new().seed(seed).partial(1.0).throttle(0.2);
        let backend = Arc::new(FaultyBackend::new(fixture.backend(), faults));
        let store = Store::builder(Arc::clone(&backend)).open().await?;
        let found = store.get_many::<Doc, _>(&keys).await?;
        assert_eq!(found.len(), 260, "seed {seed}");
        let stats = store.stats();
        assert!(stats.retries > 0, "seed {seed}: {stats:?}");
        assert!(stats.throttles <= stats.retries);
        throttles += stats.throttles;
        store.close().await?;
    }
    assert!(throttles > 0, "every injected throttle is counted");
    Ok(())
}

/// A read that cannot make progress gives up within the policy, and its error says what was
/// attempted and how much is left.
#[tokio::test(start_paused = true)]
async fn a_read_that_makes_no_progress_says_what_it_attempted() -> TestResult {
    let fixture = Fixture::embedded()?;
    let faults = Faults::new().throttle(1.0);
    let backend = Arc::new(FaultyBackend::new(fixture.backend(), faults));
    let policy = RetryPolicy::default().reads(3, Duration::from_secs(60));
    let store = Store::builder(Arc::clone(&backend))
        .retry_policy(policy)
        .open()
        .await?;
    let keys: Vec<_> = (0..150).map(|i| key("Doc", i)).collect();
    let err = store
        .get_many::<Doc, _>(&keys)
        .await
        .err()
        .ok_or("an unreachable read succeeded")?;
    let gave_up = err.backend().and_then(|e| e.gave_up()).unwrap_or_default();
    assert!(
        gave_up.contains("3 attempts") && gave_up.contains("keys unread"),
        "{}",
        err.report()
    );
    assert!(err.is_throttle());
    let err = store
        .get::<Doc>(&keys[0])
        .await
        .err()
        .ok_or("an unreachable read succeeded")?;
    assert!(
        err.report()
            .to_string()
            .contains("gave up after 3 attempts"),
        "{}",
        err.report()
    );
    assert_eq!(backend.observed().gets, 3, "the policy's attempts, no more");
    store.close().await?;
    Ok(())
}

/// A request that hangs counts as a transient failure after the policy's request timeout.
#[tokio::test(start_paused = true)]
async fn a_hanging_request_times_out_and_is_retried() -> TestResult {
    let fixture = Fixture::embedded()?;
    let gate = Gate::new();
    let backend = Arc::new(FaultyBackend::new(fixture.backend(), Faults::new()).hold_gets(&gate));
    let policy = RetryPolicy::default()
        .request_timeout(Some(Duration::from_secs(1)))
        .reads(2, Duration::from_secs(60));
    let store = Store::builder(Arc::clone(&backend))
        .retry_policy(policy)
        .open()
        .await?;
    let err = store
        .get::<Doc>(&key("Doc", 1))
        .await
        .err()
        .ok_or("a read that never got an answer succeeded")?;
    assert!(err.is_retryable(), "{}", err.report());
    assert!(
        err.report().to_string().contains("request timeout"),
        "{}",
        err.report()
    );
    assert_eq!(store.stats().retries, 1);
    store.close().await?;
    Ok(())
}
