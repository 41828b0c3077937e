//! Cold reads at batch speed: a lone miss is read at once with `GetItem`; misses that arrive
//! while a read is in flight (reads, existence checks, `update_with`, `get_many`) queue and share
//! `BatchGetItem`s; a caller that goes away does not cancel the batch its key is in; `prefetch`
//! loads keys without counting hits or misses. And, from many tasks under injected faults, every
//! caller gets its own key's state.

#[macro_use]
mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::{key, number, Fixture, TestResult};
use quickstore::testing::{Faults, FaultyBackend, Gate, Operation};
use quickstore::{AttributeValue, Change, Error, Item, Key, RetryPolicy, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::task::{JoinHandle, JoinSet};

/// The item stored under `key`: it names its own key, so that a caller handed another key's
/// state notices.
fn item(key: &Key, n: u64) -> Item {
    HashMap::from([
        (
            "_key".to_owned(),
            AttributeValue::S(key.as_str().to_owned()),
        ),
        ("k".to_owned(), AttributeValue::S(key.as_str().to_owned())),
        ("n".to_owned(), number(n)),
    ])
}

/// [`item`] as a store is given it, without the partition key attribute.
fn value(key: &Key, n: u64) -> Item {
    let mut value = item(key, n);
    value.remove("_key");
    value
}

/// The key a read item names, and its counter.
fn named(item: &Item) -> (Option<&str>, Option<u64>) {
    (
        item.get("k")
            .and_then(|k| k.as_s().ok())
            .map(String::as_str),
        item.get("n")
            .and_then(|n| n.as_n().ok())
            .and_then(|n| n.parse().ok()),
    )
}

async fn put_all(fixture: &Fixture, keys: &[Key]) -> TestResult {
    for key in keys {
        fixture.put_raw(item(key, 0)).await?;
    }
    Ok(())
}

fn faulty(fixture: &Fixture, faults: Faults) -> Arc<FaultyBackend> {
    Arc::new(FaultyBackend::new(fixture.backend(), faults))
}

/// A task reading `key` through `store`.
fn spawn_get(store: &Store, key: &Key) -> JoinHandle<quickstore::Result<Option<Arc<Item>>>> {
    let (store, key) = (store.clone(), key.clone());
    tokio::spawn(async move { store.get_item(&key).await })
}

/// Yields until `condition` holds; the bound only turns a hang into a failure.
async fn until(what: &str, mut condition: impl FnMut() -> bool) -> TestResult {
    for _ in 0..1_000_000 {
        if condition() {
            return Ok(());
        }
        tokio::task::yield_now().await;
    }
    Err(format!("gave up waiting until {what}").into())
}

/// One miss with nothing else in flight goes out at once, as a `GetItem`: batching adds no
/// latency at low load. On a paused clock the read takes exactly the backend's latency.
#[tokio::test(start_paused = true)]
async fn a_lone_miss_is_read_at_once() -> TestResult {
    let fixture = Fixture::embedded()?;
    let keys: Vec<Key> = (0..3).map(|i| key("Doc", i)).collect();
    put_all(&fixture, &keys).await?;
    let latency = Duration::from_millis(10);
    let backend = faulty(&fixture, Faults::new().latency(latency, latency));
    let store = Store::builder(Arc::clone(&backend)).open().await?;
    for key in &keys {
        let started = tokio::time::Instant::now();
        let found = store.get_item(key).await?.ok_or("missing")?;
        assert_eq!(started.elapsed(), latency);
        assert_eq!(named(&found), (Some(key.as_str()), Some(0)));
    }
    let observed = backend.observed();
    assert_eq!(observed.requests(Operation::Get), 3);
    assert_eq!(observed.requests(Operation::BatchGet), 0);
    store.close().await?;
    Ok(())
}

/// With read batching off, every miss is a `GetItem` of its own, sent at once, even while
/// another read is in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_batching_every_miss_is_read_alone() -> TestResult {
    let fixture = Fixture::embedded()?;
    let keys: Vec<Key> = (0..5).map(|i| key("Doc", i)).collect();
    put_all(&fixture, &keys).await?;
    let gate = Gate::new();
    let backend = Arc::new(FaultyBackend::new(fixture.backend(), Faults::new()).hold_gets(&gate));
    let store = Store::builder(Arc::clone(&backend))
        .batch_reads(false)
        .open()
        .await?;
    let reads: Vec<_> = keys.iter().map(|key| spawn_get(&store, key)).collect();
    until("every read is sent", || {
        backend.observed().requests(Operation::Get) == keys.len()
    })
    .await?;
    gate.open();
    for (read, key) in reads.into_iter().zip(&keys) {
        let found = read.await??.ok_or("missing")?;
        assert_eq!(named(&found), (Some(key.as_str()), Some(0)));
    }
    assert_eq!(backend.observed().requests(Operation::BatchGet), 0);
    store.close().await?;
    Ok(())
}

/// Below the bound on reads in flight (8 by default) every miss is read at once, alone; the
/// misses beyond it queue, and go out together when a read completes. (One thread: see
/// [`on_one_thread`].)
#[tokio::test]
async fn misses_beyond_the_reads_in_flight_queue() -> TestResult {
    let fixture = Fixture::embedded()?;
    let keys: Vec<Key> = (0..12).map(|i| key("Doc", i)).collect();
    put_all(&fixture, &keys).await?;
    let gate = Gate::new();
    let backend = Arc::new(FaultyBackend::new(fixture.backend(), Faults::new()).hold_gets(&gate));
    let store = Store::builder(Arc::clone(&backend)).open().await?;
    let reads: Vec<_> = keys.iter().map(|key| spawn_get(&store, key)).collect();
    until("every miss is sent or queued", || {
        store.stats().misses == keys.len() as u64
    })
    .await?;
    until("eight reads are held", || {
        backend.observed().requests(Operation::Get) == 8
    })
    .await?;
    assert_eq!(backend.observed().requests(Operation::BatchGet), 0);
    gate.open();
    for (read, key) in reads.into_iter().zip(&keys) {
        let found = read.await??.ok_or("missing")?;
        assert_eq!(named(&found), (Some(key.as_str()), Some(0)));
    }
    let observed = backend.observed();
    assert_eq!(observed.requests(Operation::Get), 8);
    assert_eq!(observed.batch_get_sizes, vec![4]);
    store.close().await?;
    Ok(())
}

/// Reads `keys` through `store` from tasks of `per_task` keys each, one key after another in
/// each task, checking that each read finds its own key's item.
async fn read_in_tasks(store: &Store, keys: &[Key], per_task: usize) -> TestResult {
    let mut readers = JoinSet::new();
    for task in keys.chunks(per_task) {
        let (store, task) = (store.clone(), task.to_vec());
        readers.spawn(async move {
            for key in &task {
                let found = store.get_item(key).await?.ok_or("missing")?;
                assert_eq!(named(&found), (Some(key.as_str()), Some(0)));
            }
            TestResult::Ok(())
        });
    }
    while let Some(reader) = readers.join_next().await {
        reader??;
    }
    Ok(())
}

/// `tasks` tasks each read `per_task` cold keys of their own, one after another, through a
/// store over `faults`; returns what the backend was asked, and the store's limit on reads in
/// flight once they are done.
async fn cold_reads(
    faults: Faults,
    adapt: bool,
    tasks: u64,
    per_task: u64,
) -> TestResult<(quickstore::testing::Observed, u64)> {
    let fixture = Fixture::embedded()?;
    let keys: Vec<Key> = (0..tasks * per_task).map(|i| key("Doc", i)).collect();
    put_all(&fixture, &keys).await?;
    let backend = faulty(&fixture, faults);
    let store = Store::builder(Arc::clone(&backend))
        .adapt_reads_in_flight(adapt)
        .open()
        .await?;
    read_in_tasks(&store, &keys, usize::try_from(per_task)?).await?;
    let stats = store.stats();
    assert_eq!(stats.misses, tasks * per_task);
    store.close().await?;
    Ok((backend.observed(), stats.read_limit))
}

/// A backend that serves one request at a time (one process, as dynalite is) answers more
/// slowly the more requests it is given: the store then keeps fewer in flight, and the misses
/// of 8 readers share requests, where at the fixed bound of 8 each is a `GetItem` of its own.
/// On a paused clock, so that the backend's latency is exactly its queue.
#[tokio::test(start_paused = true)]
async fn a_backend_that_queues_requests_is_sent_fewer_and_fuller_ones() -> TestResult {
    let serial = || Faults::new().serial(Duration::from_millis(1));
    let (fixed, limit) = cold_reads(serial(), false, 8, 80).await?;
    assert_eq!(fixed.requests(Operation::Get), 640);
    assert_eq!(fixed.requests(Operation::BatchGet), 0);
    assert_eq!(limit, 8);
    let (adapted, limit) = cold_reads(serial(), true, 8, 80).await?;
    assert!(limit < 8, "the limit is {limit}");
    let requests = adapted.requests(Operation::Get) + adapted.requests(Operation::BatchGet);
    // At most two thirds of the requests: the batches carry 2 keys or more.
    assert!(
        requests * 3 <= 640 * 2,
        "{requests} read requests for 640 keys: {} batches of {:?} keys",
        adapted.batch_get_sizes.len(),
        adapted.batch_get_sizes
    );
    Ok(())
}

/// A backend that serves requests in parallel, as DynamoDB does, answers in about the same
/// time however many are in flight: the store keeps its bound of 8, so 8 readers never wait
/// for a batch and every miss is a `GetItem` sent at once.
#[tokio::test(start_paused = true)]
async fn a_backend_that_serves_in_parallel_keeps_every_miss_read_at_once() -> TestResult {
    let parallel = Faults::new().latency(Duration::from_millis(4), Duration::from_millis(6));
    let (observed, limit) = cold_reads(parallel, true, 8, 50).await?;
    assert_eq!(limit, 8);
    assert_eq!(observed.requests(Operation::Get), 400);
    assert_eq!(observed.requests(Operation::BatchGet), 0);
    Ok(())
}

/// A read whose caller gives up before the answer, or that fails, teaches the limit nothing: a
/// request cut short would pass for a fast backend, and every answer after it for a queue.
/// Here one read is abandoned after 1 ms of the backend's 10; then 8 readers still read every
/// miss at once, as the limit stays at its bound.
#[tokio::test(start_paused = true)]
async fn a_read_cut_short_does_not_lower_the_limit() -> TestResult {
    let fixture = Fixture::embedded()?;
    let keys: Vec<Key> = (0..161).map(|i| key("Doc", i)).collect();
    put_all(&fixture, &keys).await?;
    let latency = Duration::from_millis(10);
    let backend = faulty(&fixture, Faults::new().latency(latency, latency));
    let store = Store::builder(Arc::clone(&backend)).open().await?;
    let cut = tokio::time::timeout(Duration::from_millis(1), store.get_item(&keys[0])).await;
    assert!(cut.is_err(), "the first read is abandoned");
    read_in_tasks(&store, &keys[1..], 20).await?;
    assert_eq!(store.stats().read_limit, 8);
    let observed = backend.observed();
    assert_eq!(observed.requests(Operation::BatchGet), 0);
    assert_eq!(observed.requests(Operation::Get), 161);
    store.close().await?;
    Ok(())
}

/// While one read is held in flight, misses from every read path queue; when it answers they
/// go out together in one `BatchGetItem`, and each caller gets its own key's state.
async fn misses_during_a_read_share_one_batch(fixture: Fixture) -> TestResult {
    let present: Vec<Key> = (0..40).map(|i| key("Doc", i)).collect();
    put_all(&fixture, &present).await?;
    let absent: Vec<Key> = (0..20).map(|i| key("Gone", i)).collect();
    let gate = Gate::new();
    let backend = Arc::new(FaultyBackend::new(fixture.backend(), Faults::new()).hold_gets(&gate));
    let store = Store::builder(Arc::clone(&backend))
        .flush_interval(Duration::from_secs(3600))
        .max_reads_in_flight(1)
        .open()
        .await?;

    let mut tasks = JoinSet::new();
    let first = store.clone();
    let held = present[0].clone();
    tasks.spawn(async move {
        let found = first.get_item(&held).await?.ok_or("missing")?;
        assert_eq!(named(&found), (Some(held.as_str()), Some(0)));
        TestResult::Ok(())
    });
    until("the first read is held", || {
        backend.observed().requests(Operation::Get) == 1
    })
    .await?;
    // Reads, typed reads, existence checks of inserts and updates, update_with and get_many.
    for (i, key) in present.iter().enumerate().skip(1) {
        let (store, key) = (store.clone(), key.clone());
        tasks.spawn(async move {
            match i % 4 {
                0 => {
                    let found = store.get_item(&key).await?.ok_or("missing")?;
                    assert_eq!(named(&found), (Some(key.as_str()), Some(0)));
                }
                1 => assert!(matches!(
                    store.insert_item(&key, value(&key, 9)).await,
                    Err(Error::ItemExisted { .. })
                )),
                2 => {
                    store.update_item(&key, value(&key, 1)).await?;
                }
                _ => {
                    store
                        .update_item_with(&key, |current| {
                            let mut next = current.cloned().unwrap_or_default();
                            next.insert("n".to_owned(), number(1));
                            (Change::Put(next), ())
                        })
                        .await?;
                }
            }
            TestResult::Ok(())
        });
    }
    for key in &absent[..10] {
        let (store, key) = (store.clone(), key.clone());
        tasks.spawn(async move {
            assert!(!store.exists(&key).await?);
            assert!(matches!(
                store.update_item(&key, HashMap::new()).await,
                Err(Error::ItemNotExisted { .. })
            ));
            TestResult::Ok(())
        });
    }
    let many = store.clone();
    let wanted: Vec<Key> = absent[10..].to_vec();
    tasks.spawn(async move {
        assert!(many.get_many_items(&wanted).await?.is_empty());
        TestResult::Ok(())
    });
    // Every other caller has queued its key: nothing else was sent.
    until("every miss has queued", || {
        store.stats().misses == (present.len() + absent.len()) as u64
    })
    .await?;
    assert_eq!(backend.observed().requests(Operation::BatchGet), 0);
    gate.open();
    while let Some(done) = tasks.join_next().await {
        done??;
    }

    let observed = backend.observed();
    assert_eq!(observed.requests(Operation::Get), 1, "{observed:?}");
    assert_eq!(
        observed.batch_get_sizes,
        vec![present.len() + absent.len() - 1],
        "every queued miss in one batch"
    );
    let stats = store.stats();
    assert_eq!(stats.read_requests, 2);
    assert_eq!(stats.backend_reads, 60);
    assert_eq!(stats.keys_per_read_request(), 30.0);
    store.flush().await?;
    for (i, key) in present.iter().enumerate().skip(1) {
        let stored = fixture.read_back(key.as_str()).await?.ok_or("missing")?;
        let n = u64::from(i % 4 >= 2);
        assert_eq!(named(&stored), (Some(key.as_str()), Some(n)), "{key}");
    }
    for key in &absent {
        assert_eq!(fixture.read_back(key.as_str()).await?, None);
    }
    store.close().await?;
    Ok(())
}

/// A caller that goes away while its key waits for a batch does not cancel the batch: the
/// other callers in it get their states, and the key, queued again by the caller that takes
/// over its load, is read once.
async fn a_caller_going_away_does_not_cancel_the_batch(fixture: Fixture) -> TestResult {
    let keys: Vec<Key> = (0..4).map(|i| key("Doc", i)).collect();
    put_all(&fixture, &keys).await?;
    let gate = Gate::new();
    let backend = Arc::new(FaultyBackend::new(fixture.backend(), Faults::new()).hold_gets(&gate));
    let store = Store::builder(Arc::clone(&backend))
        .max_reads_in_flight(1)
        .open()
        .await?;

    let first = spawn_get(&store, &keys[0]);
    until("the first read is held", || {
        backend.observed().requests(Operation::Get) == 1
    })
    .await?;
    let queued: Vec<_> = keys[1..].iter().map(|key| spawn_get(&store, key)).collect();
    until("the others have queued", || store.stats().misses == 4).await?;
    // The caller of key 1 goes away; its key is not read with the batch.
    let mut queued = queued.into_iter();
    let gone = queued.next().ok_or("no task")?;
    gone.abort();
    assert!(gone.await.is_err_and(|err| err.is_cancelled()));
    // Another caller of key 1 takes over its load and queues the key again: it is read once.
    let again = spawn_get(&store, &keys[1]);
    until("the key is queued again", || store.stats().misses == 5).await?;
    gate.open();
    assert!(first.await??.is_some());
    for (task, key) in queued.zip(&keys[2..]) {
        let found = task.await??.ok_or("missing")?;
        assert_eq!(named(&found), (Some(key.as_str()), Some(0)));
    }
    let found = again.await??.ok_or("missing")?;
    assert_eq!(named(&found), (Some(keys[1].as_str()), Some(0)));
    let observed = backend.observed();
    assert_eq!(observed.batch_get_sizes, vec![3]);
    assert!(observed.violations.is_empty(), "{:?}", observed.violations);
    store.close().await?;
    Ok(())
}

/// A batch the backend refuses for good because of one key is read again key by key: only
/// that key's callers get the error, the others their states.
async fn a_refused_key_fails_only_its_own_callers(fixture: Fixture) -> TestResult {
    let keys: Vec<Key> = (0..6).map(|i| key("Doc", i)).collect();
    put_all(&fixture, &keys).await?;
    let bad = &keys[3];
    let gate = Gate::new();
    let faults = Faults::new().refuse_reads([bad.as_str()]);
    let backend = Arc::new(FaultyBackend::new(fixture.backend(), faults).hold_gets(&gate));
    let store = Store::builder(Arc::clone(&backend))
        .max_reads_in_flight(1)
        .open()
        .await?;
    let first = spawn_get(&store, &keys[0]);
    until("the first read is held", || {
        backend.observed().requests(Operation::Get) == 1
    })
    .await?;
    // Two callers of the refused key (one waits on the other's load), one of each other key.
    let mut reads = Vec::new();
    for key in keys[1..].iter().chain([bad]) {
        reads.push((key.clone(), spawn_get(&store, key)));
    }
    until("the others have queued", || store.stats().misses == 7).await?;
    gate.open();
    assert!(first.await??.is_some());
    for (key, read) in reads {
        match read.await? {
            Ok(found) => {
                assert_ne!(&key, bad);
                let found = found.ok_or("missing")?;
                assert_eq!(named(&found), (Some(key.as_str()), Some(0)));
            }
            Err(err) => {
                assert_eq!(&key, bad, "{err}");
                assert!(!err.is_retryable(), "{err}");
            }
        }
    }
    let observed = backend.observed();
    assert_eq!(observed.batch_get_sizes, vec![5], "one batch, refused");
    // Then each key alone: the four good ones and the refused one.
    assert_eq!(observed.requests(Operation::Get), 1 + 5);
    store.close().await?;
    Ok(())
}

/// `prefetch` reads what the cache lacks, in batches of up to 100 keys, counting neither hits
/// nor misses; the prefetched keys' first reads are hits, counted as the prefetch's.
async fn prefetch_loads_in_batches_and_counts_its_hits(fixture: Fixture) -> TestResult {
    let present: Vec<Key> = (0..180).map(|i| key("Doc", i)).collect();
    put_all(&fixture, &present).await?;
    let absent: Vec<Key> = (0..70).map(|i| key("Gone", i)).collect();
    let backend = faulty(&fixture, Faults::new());
    let store = Store::builder(Arc::clone(&backend)).open().await?;
    store.upsert_item(&present[0], HashMap::new()).await?; // pending: not read
    let wanted: Vec<&Key> = present.iter().chain(&absent).chain(&present[..5]).collect();
    assert_eq!(store.prefetch(wanted).await?, 249);

    let stats = store.stats();
    assert_eq!((stats.hits, stats.misses), (0, 0));
    assert_eq!((stats.prefetched, stats.prefetch_hits), (249, 0));
    let mut sizes = backend.observed().batch_get_sizes;
    sizes.sort_unstable();
    assert_eq!(sizes, vec![49, 100, 100]);
    // Every prefetched key is cached, found or absent.
    for key in present[1..].iter().chain(&absent) {
        let found = store.get_item(key).await?;
        assert_eq!(found.is_some(), key.kind() == "Doc");
    }
    for key in &present[1..10] {
        store.get_item(key).await?; // a second hit is not the prefetch's
    }
    let stats = store.stats();
    assert_eq!((stats.hits, stats.misses), (258, 0));
    assert_eq!(stats.prefetch_hits, 249);
    assert_eq!(stats.read_requests, 3);
    // Prefetching cached keys reads nothing.
    assert_eq!(store.prefetch(&present).await?, 0);
    store.close().await?;
    Ok(())
}

/// Many tasks read, check, update and read-modify-write overlapping keys, half of which exist,
/// through throttling, partial batches and lost connections: every answer is about the key
/// asked (each item names its key), absent keys stay absent, and every increment lands.
async fn every_caller_gets_its_own_keys_state(fixture: Fixture) -> TestResult {
    const TASKS: u64 = 16;
    const OPS: u64 = 150;
    let present: Vec<Key> = (0..60).map(|i| key("Doc", i)).collect();
    put_all(&fixture, &present).await?;
    let absent: Vec<Key> = (0..60).map(|i| key("Gone", i)).collect();
    let faults = Faults::new()
        .seed(11)
        .throttle(0.1)
        .partial(0.3)
        .reset_before(0.05)
        .reset_after(0.05);
    let backend = faulty(&fixture, faults);
    let retry = RetryPolicy::default()
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
        .reads(50, Duration::from_secs(60));
    let store = Store::builder(Arc::clone(&backend))
        .flush_interval(Duration::from_millis(5))
        .cache_capacity(16 * 1024) // small: keys are evicted and read again
        .retry_policy(retry)
        .open()
        .await?;
    let (present, absent) = (Arc::new(present), Arc::new(absent));
    let mut tasks = JoinSet::new();
    for task in 0..TASKS {
        let (store, present, absent) = (store.clone(), Arc::clone(&present), Arc::clone(&absent));
        tasks.spawn(async move {
            let mut rng = StdRng::seed_from_u64(task);
            let mut increments = HashMap::<usize, u64>::new();
            for _ in 0..OPS {
                let p = rng.random_range(0..present.len());
                let a = &absent[rng.random_range(0..absent.len())];
                match rng.random_range(0..6) {
                    0 => {
                        let found = store.get_item(&present[p]).await?.ok_or("missing")?;
                        assert_eq!(named(&found).0, Some(present[p].as_str()));
                    }
                    1 => assert_eq!(store.get_item(a).await?, None, "{a}"),
                    2 => assert!(matches!(
                        store.update_item(a, HashMap::new()).await,
                        Err(Error::ItemNotExisted { .. })
                    )),
                    3 => assert!(matches!(
                        store.insert_item(&present[p], value(&present[p], 0)).await,
                        Err(Error::ItemExisted { .. })
                    )),
                    4 => {
                        store
                            .update_item_with(&present[p], |current| {
                                let mut next = current.cloned().unwrap_or_default();
                                let n = named(&next).1.unwrap_or(0);
                                next.insert("n".to_owned(), number(n + 1));
                                (Change::Put(next), ())
                            })
                            .await?;
                        *increments.entry(p).or_default() += 1;
                    }
                    _ => {
                        let wanted = [&present[p], a, &present[(p + 1) % present.len()]];
                        let found = store.get_many_items(wanted).await?;
                        assert_eq!(found.len(), 2);
                        for (key, item) in &found {
                            assert_eq!(named(item).0, Some(key.as_str()));
                        }
                    }
                }
            }
            TestResult::Ok(increments)
        });
    }
    let mut increments = HashMap::<usize, u64>::new();
    while let Some(done) = tasks.join_next().await {
        for (p, n) in done?? {
            *increments.entry(p).or_default() += n;
        }
    }
    store.close().await?;
    for (p, key) in present.iter().enumerate() {
        let stored = fixture.read_back(key.as_str()).await?.ok_or("missing")?;
        let n = increments.get(&p).copied().unwrap_or(0);
        assert_eq!(named(&stored), (Some(key.as_str()), Some(n)), "{key}");
    }
    for key in absent.iter() {
        assert_eq!(fixture.read_back(key.as_str()).await?, None);
    }
    let observed = backend.observed();
    assert!(observed.violations.is_empty(), "{:?}", observed.violations);
    assert!(
        observed.requests(Operation::BatchGet) > 0,
        "the misses were batched"
    );
    Ok(())
}

on_both_backends!(
    prefetch_loads_in_batches_and_counts_its_hits,
    every_caller_gets_its_own_keys_state,
);

/// The scenarios that hold reads at a gate run on one thread, on both backends: a spawned
/// task then runs from its lookup (where its miss is counted) to its key's place in the queue
/// without interruption, so once the misses are counted every key has queued, and the gate
/// opens on a known queue.
mod on_one_thread {
    macro_rules! on_one_thread {
        ($($scenario:ident),* $(,)?) => {
            $(
                mod $scenario {
                    #[tokio::test]
                    async fn dynamodb() -> crate::common::TestResult {
                        crate::$scenario(crate::common::Fixture::dynamodb().await?).await
                    }

                    #[tokio::test]
                    async fn embedded() -> crate::common::TestResult {
                        crate::$scenario(crate::common::Fixture::embedded()?).await
                    }
                }
            )*
        };
    }

    on_one_thread!(
        misses_during_a_read_share_one_batch,
        a_caller_going_away_does_not_cancel_the_batch,
        a_refused_key_fails_only_its_own_callers,
    );
}
