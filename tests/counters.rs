//! Deltas through a store (`Store::apply`): read at once, coalesced into one `UpdateItem` per
//! key and flush, ordered with full writes, and counted exactly however many stores and tasks
//! apply them and whatever answers the backend loses. The fleet checks run on dynalite and on
//! moto; the rest on the in-memory table behind a fault-injecting wrapper, and against a model.

#[macro_use]
mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::{key, Fixture, TestResult};
use quickstore::backend::{Backend, BatchGet, Condition, Conditional, Mark, Updated, Write};
use quickstore::testing::{Faults, FaultyBackend, MemoryBackend};
use quickstore::{AttributeValue, Change, Delta, Item, Key, RetryPolicy, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::task::JoinSet;

/// The number attribute `n` of an item, if it has one.
fn n_of(item: Option<&Item>) -> Option<i64> {
    item?.get("n")?.as_n().ok()?.parse().ok()
}

/// A delta adding `by` to `n`.
fn add(by: i64) -> Delta {
    Delta::new().add("n", by)
}

/// A builder whose flusher writes nothing until asked to.
fn lazy(backend: Arc<dyn Backend>) -> quickstore::StoreBuilder {
    Store::builder(backend)
        .flush_interval(Duration::from_secs(3600))
        .batch_threshold(100_000)
}

/// A retry policy with short waits, for backends that fail often.
fn quick_retries() -> RetryPolicy {
    RetryPolicy::default()
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
        .request_timeout(Some(Duration::from_millis(200)))
}

#[tokio::test]
async fn increments_are_read_at_once_and_coalesce_into_one_write() -> TestResult {
    let table = MemoryBackend::new();
    let backend = Arc::new(FaultyBackend::new(table.clone(), Faults::new()));
    let store = lazy(backend.clone()).open().await?;
    let page = key("Page", 1);
    for _ in 0..1000 {
        store.apply(&page, add(1)).await?;
    }
    let read = store.get_item(&page).await?;
    assert_eq!(n_of(read.as_deref()), Some(1000), "read-your-writes");
    assert_eq!(
        backend.observed().updates,
        0,
        "nothing written before the flush"
    );
    store.flush().await?;
    assert_eq!(backend.observed().updates, 1, "1000 increments, one write");
    let stored = table.item(page.as_str());
    assert_eq!(n_of(stored.as_ref()), Some(1000));
    let marks = stored
        .iter()
        .flat_map(|item| item.keys())
        .filter(|name| name.starts_with("_qs_once_"))
        .count();
    assert_eq!(marks, 1, "the store's mark is in the item");
    let read = store.get_item(&page).await?.ok_or("the counter is gone")?;
    assert_eq!(n_of(Some(&read)), Some(1000));
    assert!(
        read.keys().all(|name| !name.starts_with("_qs_once_")),
        "reads do not see marks: {read:?}"
    );
    store.close().await?;
    Ok(())
}

#[tokio::test]
async fn the_table_answer_brings_other_writers_increments() -> TestResult {
    let table = MemoryBackend::new();
    let ours = lazy(Arc::new(table.clone())).open().await?;
    let theirs = lazy(Arc::new(table.clone())).open().await?;
    let page = key("Page", 1);
    ours.apply(&page, add(1)).await?;
    ours.flush().await?;
    theirs.apply(&page, add(5)).await?;
    theirs.flush().await?;
    ours.apply(&page, add(1)).await?;
    assert_eq!(n_of(ours.get_item(&page).await?.as_deref()), Some(2));
    ours.flush().await?;
    assert_eq!(
        n_of(ours.get_item(&page).await?.as_deref()),
        Some(7),
        "the item the update answered with is the cached state"
    );
    assert_eq!(n_of(table.item(page.as_str()).as_ref()), Some(7));
    Ok(())
}

#[tokio::test]
async fn full_writes_replace_pending_deltas_and_later_deltas_fold_into_them() -> TestResult {
    let table = MemoryBackend::new();
    let backend = Arc::new(FaultyBackend::new(table.clone(), Faults::new()));
    let store = lazy(backend.clone()).open().await?;
    let page = key("Page", 1);
    let item = |n: i64| Item::from([("n".to_owned(), AttributeValue::N(n.to_string()))]);
    store.apply(&page, add(1)).await?;
    store.upsert_item(&page, item(10)).await?;
    store.apply(&page, add(2)).await?;
    assert_eq!(n_of(store.get_item(&page).await?.as_deref()), Some(12));
    store.flush().await?;
    let observed = backend.observed();
    assert_eq!(
        (observed.updates, observed.batch_write_sizes.len()),
        (0, 1),
        "one put"
    );
    assert_eq!(n_of(table.item(page.as_str()).as_ref()), Some(12));

    store.delete(&page).await?;
    store.apply(&page, add(3)).await?;
    store.flush().await?;
    assert_eq!(table.item(page.as_str()), Some(common_item(&page, 3)));
    assert_eq!(backend.observed().updates, 0);

    // Deltas after a flushed full write are written as deltas.
    store.apply(&page, add(4)).await?;
    store.flush().await?;
    assert_eq!(backend.observed().updates, 1);
    assert_eq!(n_of(table.item(page.as_str()).as_ref()), Some(7));
    Ok(())
}

/// The item the in-memory table holds for `{n}` under `key`, put whole by a store.
fn common_item(key: &Key, n: i64) -> Item {
    Item::from([
        (
            "_key".to_owned(),
            AttributeValue::S(key.as_str().to_owned()),
        ),
        ("n".to_owned(), AttributeValue::N(n.to_string())),
    ])
}

#[tokio::test]
async fn a_delta_that_cannot_apply_is_refused_at_call_time() -> TestResult {
    let store = lazy(Arc::new(MemoryBackend::new())).open().await?;
    let page = key("Page", 1);
    store
        .upsert_item(
            &page,
            Item::from([("n".to_owned(), AttributeValue::S("x".into()))]),
        )
        .await?;
    let refused = store.apply(&page, add(1)).await;
    assert!(
        matches!(refused, Err(quickstore::Error::Validation { .. })),
        "{refused:?}"
    );
    let marked = Delta::new().add("_qs_once_0000000000000001", 1);
    assert!(store.apply(&page, marked).await.is_err());
    assert!(store.apply(&page, Delta::new()).await.is_err());
    assert!(store
        .apply(&page, Delta::new().add("_key", 1))
        .await
        .is_err());
    Ok(())
}

/// A backend that sends its requests one at a time. moto applies concurrent `UpdateItem`s to
/// one item without a lock: eight threads adding 1 to one item 200 times each leave 1593, not
/// 1600. On moto, the stores therefore share one of these, so that its bug is not taken for
/// theirs.
struct OneAtATime {
    inner: Arc<dyn Backend>,
    turn: tokio::sync::Mutex<()>,
}

#[async_trait::async_trait]
impl Backend for OneAtATime {
    async fn check_table(&self, partition_key: &str) -> quickstore::Result<()> {
        self.inner.check_table(partition_key).await
    }

    async fn get(
        &self,
        partition_key: &str,
        key: &str,
        consistent: bool,
    ) -> quickstore::Result<Option<Item>> {
        let _turn = self.turn.lock().await;
        self.inner.get(partition_key, key, consistent).await
    }

    async fn batch_get(
        &self,
        partition_key: &str,
        keys: &[String],
        consistent: bool,
    ) -> quickstore::Result<BatchGet> {
        let _turn = self.turn.lock().await;
        self.inner.batch_get(partition_key, keys, consistent).await
    }

    async fn batch_write(
        &self,
        partition_key: &str,
        writes: &[Write],
    ) -> quickstore::Result<Vec<usize>> {
        let _turn = self.turn.lock().await;
        self.inner.batch_write(partition_key, writes).await
    }

    async fn write_if(
        &self,
        partition_key: &str,
        write: &Write,
        condition: &Condition,
    ) -> quickstore::Result<Conditional> {
        let _turn = self.turn.lock().await;
        self.inner.write_if(partition_key, write, condition).await
    }

    fn supports_conditional_writes(&self) -> bool {
        self.inner.supports_conditional_writes()
    }

    async fn update(
        &self,
        partition_key: &str,
        key: &str,
        delta: &Delta,
        mark: Option<&Mark>,
    ) -> quickstore::Result<Updated> {
        let _turn = self.turn.lock().await;
        self.inner.update(partition_key, key, delta, mark).await
    }

    fn supports_deltas(&self) -> bool {
        self.inner.supports_deltas()
    }
}

/// Three stores (versioned by `_v`, or not) over `backend`, eight tasks each, incrementing
/// twenty shared counters: the table's totals are the acknowledged increments, exactly, with no
/// conflict. Returns the write requests the stores sent, and the increments.
async fn stores_count_exactly(
    fixture: &Fixture,
    backend: &Arc<dyn Backend>,
    increments: usize,
    versioned: bool,
) -> TestResult<(u64, u64)> {
    let kind = if versioned { "Versioned" } else { "Counter" };
    let mut stores = Vec::new();
    for _ in 0..3 {
        let builder = Store::builder(Arc::clone(backend)).flush_interval(Duration::from_millis(10));
        let builder = if versioned {
            builder.versioned("_v")
        } else {
            builder
        };
        stores.push(Arc::new(builder.open().await?));
    }
    let mut tasks = JoinSet::new();
    for (s, store) in stores.iter().enumerate() {
        for t in 0..8 {
            let store = Arc::clone(store);
            tasks.spawn(async move {
                let mut rng = StdRng::seed_from_u64((s * 8 + t) as u64);
                let mut counted = HashMap::<usize, i64>::new();
                for _ in 0..increments {
                    let counter = rng.random_range(0..20);
                    store.apply(&key(kind, counter), add(1)).await?;
                    *counted.entry(counter).or_default() += 1;
                }
                quickstore::Result::<HashMap<usize, i64>>::Ok(counted)
            });
        }
    }
    let mut expected = HashMap::<usize, i64>::new();
    while let Some(joined) = tasks.join_next().await {
        for (counter, n) in joined?? {
            *expected.entry(counter).or_default() += n;
        }
    }
    let increments = expected.values().sum::<i64>().unsigned_abs();
    let mut requests = 0;
    for store in &stores {
        store.close().await?;
        let stats = store.stats();
        requests += stats.write_requests;
        assert_eq!(stats.conflicts, 0);
    }
    for (counter, n) in expected {
        let stored = fixture.read_back(key(kind, counter).as_str()).await?;
        assert_eq!(n_of(stored.as_ref()), Some(n), "{kind} {counter}");
    }
    Ok((requests, increments))
}

/// The fleet check, default and versioned, on `fixture` through `backend`.
async fn a_fleet_counts_exactly(fixture: Fixture, backend: Arc<dyn Backend>) -> TestResult {
    for versioned in [false, true] {
        let (requests, increments) =
            stores_count_exactly(&fixture, &backend, 300, versioned).await?;
        assert_eq!(increments, 3 * 8 * 300);
        println!("versioned {versioned}: {requests} write requests for {increments} increments");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_stores_count_exactly_on_dynalite() -> TestResult {
    let fixture = Fixture::dynamodb().await?;
    let backend = fixture.backend();
    a_fleet_counts_exactly(fixture, backend).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_stores_count_exactly_on_moto() -> TestResult {
    let fixture = Fixture::moto().await?;
    let backend = Arc::new(OneAtATime {
        inner: fixture.backend(),
        turn: tokio::sync::Mutex::new(()),
    });
    a_fleet_counts_exactly(fixture, backend).await
}

/// In versioned mode a delta advances the version without a condition, and names its writer,
/// so another store's full write built on the version before it is a conflict, not an
/// overwrite.
#[tokio::test]
async fn a_versioned_delta_makes_a_full_write_over_the_old_version_a_conflict() -> TestResult {
    let fixture = Fixture::dynamodb().await?;
    let ours = fixture.builder().versioned("_v").open().await?;
    let theirs = fixture.builder().versioned("_v").open().await?;
    let page = key("Page", 1);
    let item = |n: i64| Item::from([("n".to_owned(), AttributeValue::N(n.to_string()))]);
    ours.upsert_item(&page, item(10)).await?;
    ours.flush().await?;
    theirs.apply(&page, add(1)).await?;
    theirs.flush().await?;
    let stored = fixture.read_back(page.as_str()).await?;
    assert_eq!(n_of(stored.as_ref()), Some(11));
    let version = stored.as_ref().and_then(|item| item.get("_v")).cloned();
    assert_eq!(version, Some(AttributeValue::N("2".into())), "{stored:?}");
    ours.upsert_item(&page, item(20)).await?;
    ours.flush().await?;
    assert_eq!(ours.stats().conflicts, 1);
    assert_eq!(
        n_of(fixture.read_back(page.as_str()).await?.as_ref()),
        Some(11)
    );
    assert_eq!(n_of(ours.get_item(&page).await?.as_deref()), Some(11));
    // A delta of ours after the conflict builds on the winner's item, with no conflict.
    ours.apply(&page, add(5)).await?;
    ours.flush().await?;
    assert_eq!(ours.stats().conflicts, 1);
    assert_eq!(
        n_of(fixture.read_back(page.as_str()).await?.as_ref()),
        Some(16)
    );
    Ok(())
}

/// Answers lost after the update landed (reset connections, timeouts that answer late), and
/// throttling: every increment is still applied exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn increments_count_once_when_answers_are_lost() -> TestResult {
    let table = MemoryBackend::new();
    let faults = Faults::new()
        .seed(21)
        .throttle(0.2)
        .reset_after(0.3)
        .timeout(0.1, Some(Duration::from_millis(300)));
    let backend = Arc::new(FaultyBackend::new(table.clone(), faults));
    let mut stores = Vec::new();
    for _ in 0..3 {
        let store = Store::builder(backend.clone())
            .flush_interval(Duration::from_millis(5))
            .retry_policy(quick_retries())
            .open()
            .await?;
        stores.push(Arc::new(store));
    }
    let mut tasks = JoinSet::new();
    for (s, store) in stores.iter().enumerate() {
        for t in 0..4 {
            let store = Arc::clone(store);
            tasks.spawn(async move {
                let mut rng = StdRng::seed_from_u64((s * 4 + t) as u64);
                let mut counted = HashMap::<usize, i64>::new();
                for _ in 0..150 {
                    let counter = rng.random_range(0..5);
                    let by = rng.random_range(1..4);
                    store.apply(&key("Counter", counter), add(by)).await?;
                    *counted.entry(counter).or_default() += by;
                    if rng.random_bool(0.1) {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                }
                quickstore::Result::<HashMap<usize, i64>>::Ok(counted)
            });
        }
    }
    let mut expected = HashMap::<usize, i64>::new();
    while let Some(joined) = tasks.join_next().await {
        for (counter, n) in joined?? {
            *expected.entry(counter).or_default() += n;
        }
    }
    for store in &stores {
        store.close().await?;
    }
    for (counter, n) in expected {
        let stored = table.item(key("Counter", counter).as_str());
        assert_eq!(n_of(stored.as_ref()), Some(n), "counter {counter}");
    }
    let lost = backend
        .observed()
        .count(|injected| matches!(injected.fault, quickstore::testing::Fault::ResetAfter));
    assert!(lost > 0, "some answers were lost");
    Ok(())
}

/// Many tasks apply deltas, upserts, deletes and `update_with` increments to a few keys,
/// through a backend that throttles, loses answers and times out; each key's operations are
/// applied in turn (a lock per key in the test), so a model knows each key's state. Reads
/// agree with the model throughout, and the table holds the model once the store closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_full_writes_and_deltas_agree_with_a_model() -> TestResult {
    for seed in 0..4_u64 {
        let table = MemoryBackend::new();
        let faults = Faults::new()
            .seed(seed)
            .throttle(0.1)
            .partial(0.2)
            .reset_after(0.2)
            .timeout(0.05, Some(Duration::from_millis(100)));
        let backend = Arc::new(FaultyBackend::new(table.clone(), faults));
        let store = Arc::new(
            Store::builder(backend)
                .flush_interval(Duration::from_millis(3))
                .retry_policy(quick_retries())
                .open()
                .await?,
        );
        let model: Arc<Vec<tokio::sync::Mutex<Option<i64>>>> =
            Arc::new((0..6).map(|_| tokio::sync::Mutex::new(None)).collect());
        let mut tasks = JoinSet::new();
        for t in 0..6 {
            let (store, model) = (Arc::clone(&store), Arc::clone(&model));
            tasks.spawn(async move {
                let mut rng = StdRng::seed_from_u64(seed * 100 + t);
                for _ in 0..120 {
                    let k = rng.random_range(0..model.len());
                    let page = key("Page", k);
                    let mut state = model[k].lock().await;
                    match rng.random_range(0..10) {
                        0..=4 => {
                            let by = rng.random_range(-3..10);
                            store.apply(&page, add(by)).await?;
                            *state = Some(state.unwrap_or(0) + by);
                        }
                        5 => {
                            let n = rng.random_range(0..100);
                            let item =
                                Item::from([("n".to_owned(), AttributeValue::N(n.to_string()))]);
                            store.upsert_item(&page, item).await?;
                            *state = Some(n);
                        }
                        6 => {
                            store.delete(&page).await?;
                            *state = None;
                        }
                        7 => {
                            store
                                .update_item_with(&page, |current| {
                                    let Some(n) = n_of(current) else {
                                        return (Change::Keep, ());
                                    };
                                    let next = Item::from([(
                                        "n".to_owned(),
                                        AttributeValue::N((n + 1).to_string()),
                                    )]);
                                    (Change::Put(next), ())
                                })
                                .await?;
                            *state = state.map(|n| n + 1);
                        }
                        8 => store.flush().await?,
                        _ => {
                            let read = store.get_item(&page).await?;
                            if n_of(read.as_deref()) != *state {
                                return Err(format!(
                                    "seed {seed}: {page} reads {read:?}, the model says {:?}",
                                    *state
                                )
                                .into());
                            }
                        }
                    }
                }
                TestResult::Ok(())
            });
        }
        while let Some(joined) = tasks.join_next().await {
            joined??;
        }
        store.close().await?;
        for (k, state) in model.iter().enumerate() {
            let stored = table.item(key("Page", k).as_str());
            assert_eq!(
                n_of(stored.as_ref()),
                *state.lock().await,
                "seed {seed}, key {k}"
            );
            if state.lock().await.is_none() {
                assert_eq!(stored, None, "seed {seed}, key {k}");
            }
        }
    }
    Ok(())
}

/// A delta the table refuses for good (another writer made the attribute a string, say) is
/// reported by the next `flush`, handed to the refusal handler with the state the store wanted,
/// and forgotten: the next read goes to the table. Other keys' deltas land.
#[tokio::test]
async fn a_refused_delta_is_reported_and_forgotten() -> TestResult {
    let table = MemoryBackend::new();
    let refused = key("Page", "refused");
    let faults = Faults::new().refuse([refused.as_str().to_owned()]);
    let backend = Arc::new(FaultyBackend::new(table.clone(), faults));
    let told = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let store = lazy(backend.clone())
        .on_refused({
            let told = Arc::clone(&told);
            move |refusal| told.lock().push(refusal.clone())
        })
        .open()
        .await?;
    let fine = key("Page", "fine");
    store.apply(&refused, add(2)).await?;
    store.apply(&fine, add(3)).await?;
    let err = store
        .flush()
        .await
        .err()
        .ok_or("the refusal went unreported")?;
    assert!(err.to_string().contains(refused.as_str()), "{err}");
    let told = told.lock().clone();
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].key, refused);
    assert_eq!(n_of(told[0].state.as_deref()), Some(2));
    assert_eq!(n_of(table.item(fine.as_str()).as_ref()), Some(3));
    assert_eq!(table.item(refused.as_str()), None);
    assert_eq!(
        store.get_item(&refused).await?,
        None,
        "read again from the table"
    );
    Ok(())
}

/// Marks of stores whose last delta to an item is older than the mark lifetime are removed by
/// the next delta write that sees them; recent ones, and the writing store's own, stay.
#[tokio::test]
async fn marks_of_long_gone_stores_are_removed() -> TestResult {
    let table = MemoryBackend::new();
    let page = key("Page", 1);
    let mark = |at: u64| {
        AttributeValue::L(vec![
            AttributeValue::N("7".into()),
            AttributeValue::N(at.to_string()),
        ])
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as u64;
    let old = now - 2 * 60 * 60 * 1000;
    let item = Item::from([
        (
            "_key".to_owned(),
            AttributeValue::S(page.as_str().to_owned()),
        ),
        ("n".to_owned(), AttributeValue::N("5".into())),
        ("_qs_once_00000000000000aa".to_owned(), mark(old)),
        ("_qs_once_00000000000000bb".to_owned(), mark(now)),
    ]);
    table.batch_write("_key", &[Write::Put(item)]).await?;
    let store = lazy(Arc::new(table.clone()))
        .mark_lifetime(Duration::from_secs(60 * 60))
        .open()
        .await?;
    let marks = || {
        let mut names: Vec<String> = table
            .item(page.as_str())
            .into_iter()
            .flat_map(|item| item.into_keys())
            .filter(|name| name.starts_with("_qs_once_"))
            .collect();
        names.sort();
        names
    };
    store.apply(&page, add(1)).await?;
    store.flush().await?;
    assert_eq!(marks().len(), 3, "the first answer shows the old mark");
    store.apply(&page, add(1)).await?;
    store.flush().await?;
    let left = marks();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(!left.contains(&"_qs_once_00000000000000aa".to_owned()));
    assert!(left.contains(&"_qs_once_00000000000000bb".to_owned()));
    assert_eq!(n_of(table.item(page.as_str()).as_ref()), Some(7));

    // A store that comes back moves its mark: a write that meant to prune it keeps it.
    let mut item = table.item(page.as_str()).ok_or("the page is gone")?;
    item.insert("_qs_once_00000000000000cc".to_owned(), mark(old));
    table.batch_write("_key", &[Write::Put(item)]).await?;
    store.invalidate(&page)?;
    store.apply(&page, add(1)).await?;
    store.flush().await?;
    let mut item = table.item(page.as_str()).ok_or("the page is gone")?;
    item.insert("_qs_once_00000000000000cc".to_owned(), mark(now));
    table.batch_write("_key", &[Write::Put(item)]).await?;
    store.apply(&page, add(1)).await?;
    store.flush().await?;
    assert!(marks().contains(&"_qs_once_00000000000000cc".to_owned()));
    assert_eq!(n_of(table.item(page.as_str()).as_ref()), Some(9));
    Ok(())
}
