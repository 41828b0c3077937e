//! Faults injected under the store through the public `Backend` trait: transient errors,
//! partial batches, writes refused for good, and reads held at a gate.

#[macro_use]
mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{number, Fixture, TestResult};
use quickstore::testing::{Faults, FaultyBackend, Gate};
use quickstore::{AttributeValue, Item, Key, Store, StoreBuilder};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

/// The attribute each key's writes carry in increasing order.
const COUNTER: &str = "n";

/// A value whose counter increases with every mutation of its key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Versioned {
    n: u64,
    writer: u32,
    pad: String,
}

impl Versioned {
    /// The item the backend must hold for this value under `rendered`.
    fn item(&self, rendered: &str) -> Item {
        HashMap::from([
            ("_key".to_owned(), AttributeValue::S(rendered.to_owned())),
            (COUNTER.to_owned(), number(self.n)),
            ("writer".to_owned(), number(self.writer)),
            ("pad".to_owned(), AttributeValue::S(self.pad.clone())),
        ])
    }
}

fn faulty(fixture: &Fixture, faults: Faults) -> Arc<FaultyBackend> {
    Arc::new(FaultyBackend::new(fixture.backend(), faults))
}

/// A builder over `backend` with the fixture's short flush interval.
fn builder(backend: &Arc<FaultyBackend>) -> StoreBuilder {
    Store::builder(Arc::clone(backend)).flush_interval(Duration::from_millis(10))
}

/// A builder whose flusher writes nothing until asked to, so that a flush sees every write.
fn lazy_builder(backend: &Arc<FaultyBackend>) -> StoreBuilder {
    Store::builder(Arc::clone(backend))
        .flush_interval(Duration::from_secs(3600))
        .batch_threshold(100_000)
}

/// Yields until `condition` holds. The deadline only turns a hang into a failure.
async fn until(what: &str, mut condition: impl FnMut() -> bool) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        if Instant::now() > deadline {
            return Err(format!("gave up waiting until {what}").into());
        }
        tokio::task::yield_now().await;
    }
    Ok(())
}

// --- Transient errors and partial batches on writes -------------------------------------------

const SEEDS: std::ops::RangeInclusive<u64> = 1..=5;
const WRITERS: u32 = 4;
const KEYS_PER_WRITER: u32 = 6;
const MUTATIONS_PER_WRITER: u32 = 60;

fn seeded_key(seed: u64, writer: u32, k: u32) -> Key {
    common::key(&format!("Seed{seed}"), format_args!("w{writer}k{k}"))
}

/// One writer, the only one for its keys: mutates them (mostly its hot key 0) and returns the
/// final state of each, as a sequential model sees it.
async fn writer(store: Store, seed: u64, writer: u32) -> TestResult<Vec<(Key, Option<Versioned>)>> {
    let mut rng = StdRng::seed_from_u64(seed * 1000 + u64::from(writer));
    let mut counters = vec![0u64; KEYS_PER_WRITER as usize];
    let mut model: Vec<Option<Versioned>> = vec![None; KEYS_PER_WRITER as usize];
    for i in 0..MUTATIONS_PER_WRITER {
        // Writers flush now and then, at different times, so that the flusher works in rounds
        // while the other writers keep mutating.
        if i % 12 == writer * 3 {
            store.flush().await?;
        }
        let k = if rng.random_bool(0.5) {
            0
        } else {
            rng.random_range(1..KEYS_PER_WRITER)
        };
        let key = seeded_key(seed, writer, k);
        let slot = k as usize;
        counters[slot] += 1;
        if rng.random_bool(0.1) {
            store.delete(&key).await?;
            model[slot] = None;
        } else {
            let value = Versioned {
                n: counters[slot],
                writer,
                pad: "x".repeat(rng.random_range(1..40)),
            };
            store.upsert(&key, &value).await?;
            model[slot] = Some(value);
        }
        // Let the flusher in between mutations, so that writes of hot keys are in flight while
        // they change again.
        tokio::task::yield_now().await;
    }
    Ok((0..KEYS_PER_WRITER)
        .map(|k| seeded_key(seed, writer, k))
        .zip(model)
        .collect())
}

/// Runs every writer of one seed against a store over a faulty backend, and flushes.
async fn mutate_under_write_faults(
    backend: Arc<FaultyBackend>,
    seed: u64,
) -> TestResult<(BTreeMap<Key, Option<Versioned>>, quickstore::Stats)> {
    let store = builder(&backend)
        .batch_threshold(8)
        .max_in_flight_batches(4)
        .open()
        .await?;
    let mut writers = JoinSet::new();
    for w in 0..WRITERS {
        writers.spawn(writer(store.clone(), seed, w));
    }
    let mut model = BTreeMap::new();
    while let Some(joined) = writers.join_next().await {
        model.extend(joined??);
    }
    store.flush().await?;
    let stats = store.stats();
    store.close().await?;
    Ok((model, stats))
}

async fn writes_survive_transient_errors_and_partial_batches(fixture: Fixture) -> TestResult {
    let mut runs = JoinSet::new();
    let mut backends = BTreeMap::new();
    for seed in SEEDS {
        let backend = faulty(
            &fixture,
            Faults::new()
                .seed(seed)
                .throttle(0.3)
                .partial(0.3)
                .monotonic(COUNTER),
        );
        backends.insert(seed, Arc::clone(&backend));
        runs.spawn(async move { (seed, mutate_under_write_faults(backend, seed).await) });
    }
    let (mut mutations, mut items_written) = (0, 0);
    while let Some(joined) = runs.join_next().await {
        let (seed, outcome) = joined?;
        let (model, stats) = outcome?;
        mutations += stats.mutations;
        items_written += stats.items_written;
        for (key, expected) in &model {
            let rendered = key.to_string();
            let stored = fixture.read_back(&rendered).await?;
            let expected = expected.as_ref().map(|v| v.item(&rendered));
            assert_eq!(stored, expected, "seed {seed}, key {rendered}");
        }
        let backend = backends.get(&seed).ok_or("no backend")?;
        assert_eq!(backend.violations(), Vec::<String>::new(), "seed {seed}");
        assert!(stats.retries > 0, "seed {seed}: {stats:?}");
        assert_eq!(
            stats.mutations,
            u64::from(WRITERS * MUTATIONS_PER_WRITER),
            "seed {seed}"
        );
        assert!(
            stats.items_written <= stats.mutations,
            "seed {seed}: {stats:?}"
        );
        assert_eq!(stats.rejected_writes, 0, "seed {seed}");
        assert_eq!(stats.pending, 0, "seed {seed}");
    }
    assert!(
        items_written < mutations,
        "hot keys were rewritten while waiting, so some of their writes coalesced"
    );
    Ok(())
}

// --- Partial batch gets and transient read errors ---------------------------------------------

const READ_KEYS: u32 = 250;

fn read_key(i: u32) -> Key {
    common::key("Read", i)
}

async fn reads_survive_unprocessed_keys_and_transient_errors(fixture: Fixture) -> TestResult {
    // Every third key is present.
    let writer = fixture.store().await?;
    let mut present = HashMap::new();
    for i in (0..READ_KEYS).step_by(3) {
        let value = Versioned {
            n: u64::from(i),
            writer: 0,
            pad: format!("p{i}"),
        };
        writer.upsert(&read_key(i), &value).await?;
        present.insert(read_key(i), value);
    }
    writer.close().await?;
    let keys: Vec<Key> = (0..READ_KEYS).map(read_key).collect();
    let mut retries = 0;
    for seed in SEEDS {
        let backend = faulty(
            &fixture,
            Faults::new().seed(seed).throttle(0.15).partial(0.3),
        );
        let store = builder(&backend).open().await?;
        let found: HashMap<Key, Versioned> = store.get_many(&keys).await?;
        assert_eq!(found, present, "seed {seed}");
        // Single reads retry transient errors too.
        for i in 0..20 {
            let key = read_key(READ_KEYS + i);
            assert!(!store.exists(&key).await?, "seed {seed}");
        }
        let stats = store.stats();
        assert_eq!(
            stats.backend_reads,
            u64::from(READ_KEYS + 20),
            "seed {seed}"
        );
        retries += stats.retries;
        let observed = backend.observed();
        assert!(
            observed
                .batch_get_sizes
                .iter()
                .all(|&n| (1..=quickstore::backend::MAX_BATCH_GET_KEYS).contains(&n)),
            "seed {seed}: {:?}",
            observed.batch_get_sizes
        );
        assert_eq!(observed.violations, Vec::<String>::new(), "seed {seed}");
        assert_eq!(observed.gets, observed.gets_by_key.values().sum::<usize>());
        assert!(observed.gets >= 20, "seed {seed}");
        store.close().await?;
    }
    assert!(retries > 0, "no fault was injected");
    Ok(())
}

// --- Writes refused for good ------------------------------------------------------------------

async fn refused_writes_are_isolated_reported_and_forgotten(fixture: Fixture) -> TestResult {
    let refused_old = Key::new("Refused", "old")?;
    let refused_new = Key::new("Refused", "new")?;
    let old_item = HashMap::from([
        (
            "_key".to_owned(),
            AttributeValue::S(refused_old.to_string()),
        ),
        ("n".to_owned(), number(1)),
        ("writer".to_owned(), number(9)),
        ("pad".to_owned(), AttributeValue::S("before".into())),
    ]);
    fixture.put_raw(old_item).await?;
    let backend = faulty(
        &fixture,
        Faults::new()
            .seed(7)
            .throttle(0.2)
            .partial(0.2)
            .refuse([refused_old.to_string(), refused_new.to_string()]),
    );
    let store = lazy_builder(&backend).open().await?;
    let value = |n: u64| Versioned {
        n,
        writer: 1,
        pad: "after".into(),
    };
    let good: Vec<Key> = (0..60).map(|i| common::key("Good", i)).collect();
    // The refused keys sit among good ones, so they share batches with them.
    for (i, key) in good.iter().enumerate() {
        store.upsert(key, &value(i as u64)).await?;
        if i == 10 {
            store.upsert(&refused_old, &value(100)).await?;
        }
        if i == 40 {
            store.upsert(&refused_new, &value(200)).await?;
        }
    }
    let err = store
        .flush()
        .await
        .err()
        .ok_or("the flush reported no refusal")?;
    let message = err.report().to_string();
    assert_eq!(err.code(), "DynamoDBException", "{err:?}");
    assert!(!err.is_retryable(), "{err:?}");
    // Both refusals are reported by the one flush that covers them.
    assert!(
        message.contains(&refused_old.to_string()) && message.contains(&refused_new.to_string()),
        "{message}"
    );
    assert!(message.contains("injected refusal"), "{message}");
    match &err {
        quickstore::Error::Refused(refusals) => assert_eq!(refusals.total(), 2),
        other => return Err(format!("expected Refused, got {other:?}").into()),
    }
    let refused_key = err.backend().and_then(|b| b.key());
    assert!(
        refused_key == Some(refused_old.as_str()) || refused_key == Some(refused_new.as_str()),
        "{err:?}"
    );
    let stats = store.stats();
    assert_eq!(stats.rejected_writes, 2, "{stats:?}");
    assert_eq!(stats.pending, 0, "{stats:?}");
    for (i, key) in good.iter().enumerate() {
        let rendered = key.to_string();
        assert_eq!(
            fixture.read_back(&rendered).await?,
            Some(value(i as u64).item(&rendered)),
            "{rendered}"
        );
    }
    // The refused states were forgotten: the store reads the backend's again.
    assert_eq!(
        store.get::<Versioned>(&refused_old).await?,
        Some(Versioned {
            n: 1,
            writer: 9,
            pad: "before".into()
        })
    );
    assert!(!store.exists(&refused_new).await?);
    // The flusher keeps going.
    for (i, key) in good.iter().enumerate().take(30) {
        store.upsert(key, &value(1000 + i as u64)).await?;
    }
    store.delete(&good[59]).await?;
    store.flush().await?;
    for (i, key) in good.iter().enumerate().take(30) {
        let rendered = key.to_string();
        assert_eq!(
            fixture.read_back(&rendered).await?,
            Some(value(1000 + i as u64).item(&rendered)),
        );
    }
    assert_eq!(fixture.read_back(&good[59].to_string()).await?, None);
    assert_eq!(store.stats().rejected_writes, 2);
    assert_eq!(backend.violations(), Vec::<String>::new());
    // A refusal among the writes `close` drains is reported by `close`.
    store.upsert(&refused_new, &value(300)).await?;
    store.upsert(&good[0], &value(2000)).await?;
    let err = store
        .close()
        .await
        .err()
        .ok_or("the close reported no refusal")?;
    assert_eq!(err.code(), "DynamoDBException", "{err:?}");
    assert!(err.to_string().contains(&refused_new.to_string()), "{err}");
    assert_eq!(store.stats().rejected_writes, 3);
    assert_eq!(
        fixture.read_back(&good[0].to_string()).await?,
        Some(value(2000).item(&good[0].to_string()))
    );
    assert!(fixture.read_back(&refused_new.to_string()).await?.is_none());
    Ok(())
}

/// A refusal must reach the caller even when the flusher got to the write before `flush` was
/// called: the crate documents that refused writes are "reported by the next `Store::flush` or
/// `Store::close`", and `flush` that it reports a refused write among the mutations acknowledged
/// before the call.
async fn a_refusal_before_the_flush_call_is_still_reported(fixture: Fixture) -> TestResult {
    let refused = Key::new("Refused", "early")?;
    let backend = faulty(&fixture, Faults::new().refuse([refused.to_string()]));
    let store = builder(&backend).open().await?;
    store.upsert(&refused, &HashMap::from([("a", 1)])).await?;
    // The flusher writes it on its own within the flush interval; wait until it was refused.
    until("the write is refused", || {
        store.stats().rejected_writes == 1
    })
    .await?;
    let flushed = store.flush().await;
    let message = flushed
        .as_ref()
        .err()
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(
        message.contains(&refused.to_string()),
        "the next flush reports the refusal: {flushed:?}"
    );
    // Reported once: the close that follows has nothing new to report.
    store.close().await?;
    Ok(())
}

// --- Single flight ----------------------------------------------------------------------------

async fn concurrent_misses_of_one_key_make_one_backend_read(fixture: Fixture) -> TestResult {
    const TASKS: u64 = 50;
    let present = Key::new("Flight", "present")?;
    let absent = Key::new("Flight", "absent")?;
    let item = Versioned {
        n: 5,
        writer: 2,
        pad: "there".into(),
    };
    fixture.put_raw(item.item(&present.to_string())).await?;
    let gate = Gate::new();
    let backend = Arc::new(FaultyBackend::new(fixture.backend(), Faults::new()).hold_gets(&gate));
    let store = builder(&backend).open().await?;

    let mut readers = JoinSet::new();
    for _ in 0..TASKS {
        let (store, key) = (store.clone(), present.clone());
        readers.spawn(async move { store.get::<Versioned>(&key).await });
    }
    // Every reader has missed, and the one loading has asked the backend (and waits at the gate).
    until("every reader has missed", || {
        store.stats().misses == TASKS && backend.observed().gets == 1
    })
    .await?;
    gate.open();
    while let Some(joined) = readers.join_next().await {
        assert_eq!(joined??.as_ref(), Some(&item));
    }

    let mut checkers = JoinSet::new();
    for _ in 0..TASKS {
        let (store, key) = (store.clone(), absent.clone());
        checkers.spawn(async move { store.exists(&key).await });
    }
    // The gate is open now, so the one read may finish before every checker has asked; those
    // that ask later hit the cached absence.
    let mut answers = 0;
    while let Some(joined) = checkers.join_next().await {
        assert!(!joined??);
        answers += 1;
    }
    assert_eq!(answers, TASKS);
    let observed = backend.observed();
    assert_eq!(observed.gets_by_key.get(&present.to_string()), Some(&1));
    assert_eq!(observed.gets_by_key.get(&absent.to_string()), Some(&1));
    assert_eq!(observed.gets, 2);
    let stats = store.stats();
    assert_eq!(stats.hits + stats.misses, 2 * TASKS, "{stats:?}");
    assert_eq!(stats.backend_reads, 2, "{stats:?}");
    store.close().await?;
    Ok(())
}

async fn concurrent_inserts_of_one_absent_key_let_exactly_one_win(fixture: Fixture) -> TestResult {
    const TASKS: u32 = 20;
    let key = Key::new("Race", "prize")?;
    let gate = Gate::new();
    let backend = Arc::new(FaultyBackend::new(fixture.backend(), Faults::new()).hold_gets(&gate));
    let store = builder(&backend).open().await?;
    let mut inserters = JoinSet::new();
    for writer in 0..TASKS {
        let (store, key) = (store.clone(), key.clone());
        inserters.spawn(async move {
            let value = Versioned {
                n: 1,
                writer,
                pad: format!("by {writer}"),
            };
            (value.clone(), store.insert(&key, &value).await)
        });
    }
    // Every insert needs the key's state, and they all wait for the same read.
    until("every inserter has missed", || {
        store.stats().misses == u64::from(TASKS)
    })
    .await?;
    gate.open();
    let mut winners = Vec::new();
    while let Some(joined) = inserters.join_next().await {
        match joined? {
            (value, Ok(())) => winners.push(value),
            (_, Err(err)) => assert_eq!(err.code(), "ItemExisted", "{err:?}"),
        }
    }
    let [winner] = winners.as_slice() else {
        return Err(format!("{} inserts succeeded: {winners:?}", winners.len()).into());
    };
    assert_eq!(
        backend.observed().gets_by_key.get(&key.to_string()),
        Some(&1)
    );
    assert_eq!(store.stats().backend_reads, 1);
    assert_eq!(store.stats().mutations, 1);
    assert_eq!(store.get::<Versioned>(&key).await?.as_ref(), Some(winner));
    store.close().await?;
    assert_eq!(
        fixture.read_back(&key.to_string()).await?,
        Some(winner.item(&key.to_string()))
    );
    Ok(())
}

/// A reader that goes away while loading hands the load over to one of its waiters.
async fn a_cancelled_load_hands_over_to_a_waiter(fixture: Fixture) -> TestResult {
    let key = Key::new("Flight", "handover")?;
    let item = Versioned {
        n: 3,
        writer: 4,
        pad: "here".into(),
    };
    fixture.put_raw(item.item(&key.to_string())).await?;
    let gate = Gate::new();
    let backend = Arc::new(FaultyBackend::new(fixture.backend(), Faults::new()).hold_gets(&gate));
    let store = builder(&backend).open().await?;
    let first = {
        let (store, key) = (store.clone(), key.clone());
        tokio::spawn(async move { store.get::<Versioned>(&key).await })
    };
    until("the first reader is loading", || {
        backend.observed().gets == 1
    })
    .await?;
    let second = {
        let (store, key) = (store.clone(), key.clone());
        tokio::spawn(async move { store.get::<Versioned>(&key).await })
    };
    until("the second reader waits", || store.stats().misses == 2).await?;
    first.abort();
    assert!(first.await.is_err_and(|e| e.is_cancelled()));
    until("the second reader loads", || backend.observed().gets == 2).await?;
    gate.open();
    assert_eq!(second.await??, Some(item));
    assert_eq!(store.stats().backend_reads, 1);
    store.close().await?;
    Ok(())
}

/// A load that read the backend before a mutation of its key was written must not install
/// the older state it read over the newer one.
async fn a_load_overtaken_by_a_write_does_not_cache_the_older_state(
    fixture: Fixture,
) -> TestResult {
    let key = Key::new("Overtaken", "k")?;
    let rendered = key.to_string();
    let old = Versioned {
        n: 1,
        writer: 0,
        pad: "old".into(),
    };
    let new = Versioned {
        n: 2,
        writer: 0,
        pad: "new".into(),
    };
    fixture.put_raw(old.item(&rendered)).await?;
    let gate = Gate::new();
    let backend = Arc::new(
        FaultyBackend::new(fixture.backend(), Faults::new()).hold_gets_after_reading(&gate),
    );
    let store = builder(&backend).open().await?;
    let reader = {
        let (store, key) = (store.clone(), key.clone());
        tokio::spawn(async move { store.get::<Versioned>(&key).await })
    };
    until("the reader has read the old state", || {
        backend.observed().gets_read == 1
    })
    .await?;
    // Overtake the load: the newer state is acknowledged, written, and settled in the cache.
    store.upsert(&key, &new).await?;
    store.flush().await?;
    assert_eq!(
        fixture.read_back(&rendered).await?,
        Some(new.item(&rendered))
    );
    gate.open();
    // The read began before the upsert, so either state is a fair answer for it...
    let answered = reader.await??;
    assert!(
        answered.as_ref() == Some(&old) || answered.as_ref() == Some(&new),
        "{answered:?}"
    );
    // ...but afterwards the store must not go back to the older state.
    assert_eq!(store.get::<Versioned>(&key).await?, Some(new));
    assert_eq!(store.stats().backend_reads, 1);
    store.close().await?;
    Ok(())
}

on_both_backends!(
    writes_survive_transient_errors_and_partial_batches,
    reads_survive_unprocessed_keys_and_transient_errors,
    refused_writes_are_isolated_reported_and_forgotten,
    a_refusal_before_the_flush_call_is_still_reported,
    concurrent_misses_of_one_key_make_one_backend_read,
    concurrent_inserts_of_one_absent_key_let_exactly_one_win,
    a_cancelled_load_hands_over_to_a_waiter,
    a_load_overtaken_by_a_write_does_not_cache_the_older_state,
);

/// Versioned mode under lost answers: conditional writes that land but whose answers are lost
/// (a connection reset after the write) are retried, find the store's own write by its writer
/// attribute, and are not conflicts. Every increment lands.
#[tokio::test(start_paused = true)]
async fn versioned_writes_whose_answers_are_lost_are_not_conflicts() -> TestResult {
    #[derive(Debug, Serialize, Deserialize)]
    struct Counter {
        n: u64,
    }
    for seed in 0..5 {
        let fixture = Fixture::embedded()?;
        let faults = Faults::new().seed(seed).reset_after(0.3).throttle(0.1);
        let backend = Arc::new(FaultyBackend::new(fixture.backend(), faults));
        let store = Store::builder(Arc::clone(&backend))
            .versioned("_v")
            .flush_interval(Duration::from_millis(5))
            .open()
            .await?;
        let keys: Vec<_> = (0..4).map(|i| common::key("Counter", i)).collect();
        for round in 0..30 {
            for key in &keys {
                store
                    .update_with(key, |c: Option<Counter>| {
                        let n = c.map_or(0, |c| c.n) + 1;
                        (quickstore::Change::Put(Counter { n }), ())
                    })
                    .await?;
            }
            if round % 3 == 0 {
                store.flush().await?;
            }
        }
        store.close().await?;
        let lost = backend
            .observed()
            .count(|injected| injected.fault == quickstore::testing::Fault::ResetAfter);
        assert!(lost > 0, "seed {seed}: no answer was lost");
        assert_eq!(store.stats().conflicts, 0, "seed {seed}");
        for key in &keys {
            let stored = fixture.read_back(key.as_str()).await?.ok_or("missing")?;
            assert_eq!(
                stored.get("n"),
                Some(&AttributeValue::N("30".into())),
                "seed {seed}"
            );
        }
    }
    Ok(())
}

/// A batch refused for good because of one write is bisected: the refused write is found in
/// a handful of requests, not one per write, and every other write lands.
#[tokio::test]
async fn a_refused_write_is_found_by_bisecting_its_batch() -> TestResult {
    let fixture = Fixture::embedded()?;
    let bad = common::key("Doc", 13);
    let backend = Arc::new(FaultyBackend::new(
        fixture.backend(),
        Faults::new().refuse([bad.to_string()]),
    ));
    let store = Store::builder(Arc::clone(&backend))
        .flush_interval(Duration::from_secs(3600))
        .open()
        .await?;
    let keys: Vec<_> = (0..25).map(|i| common::key("Doc", i)).collect();
    for key in &keys {
        store
            .upsert(
                key,
                &Versioned {
                    n: 1,
                    writer: 1,
                    pad: String::new(),
                },
            )
            .await?;
    }
    let err = store
        .flush()
        .await
        .err()
        .ok_or("the refusal was not reported")?;
    assert_eq!(err.backend().and_then(|b| b.key()), Some(bad.as_str()));
    let requests = backend
        .observed()
        .requests(quickstore::testing::Operation::BatchWrite);
    // One batch of 25, then halves down to the culprit: 1 + 2 per level, 5 levels.
    assert!(
        requests <= 11,
        "{requests} requests to find one refused write among 25"
    );
    for key in keys.iter().filter(|k| **k != bad) {
        assert!(
            fixture.read_back(key.as_str()).await?.is_some(),
            "{key} was not written"
        );
    }
    // Reported once: the next flush has nothing to report.
    store.flush().await?;
    store.close().await?;
    Ok(())
}
