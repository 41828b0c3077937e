//! Atomic read-modify-write with `update_with`, and seeing other writers' changes with
//! `invalidate`, `refresh` and `max_staleness`, on both backends.

#[macro_use]
mod common;

use std::time::Duration;

use common::{key, Fixture, TestResult};
use quickstore::{AttributeValue, Change, Item, Store};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Counter {
    n: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Log {
    lines: Vec<String>,
}

async fn increment(store: &Store, counter: &quickstore::Key) -> quickstore::Result<u64> {
    store
        .update_with(counter, |current: Option<Counter>| {
            let n = current.unwrap_or_default().n + 1;
            (Change::Put(Counter { n }), n)
        })
        .await
}

async fn counters_and_lists_change_in_one_step(fixture: Fixture) -> TestResult {
    let store = fixture.store().await?;
    let counter = key("Counter", "hits");
    assert_eq!(increment(&store, &counter).await?, 1);
    assert_eq!(increment(&store, &counter).await?, 2);
    let log = key("Log", "audit");
    for line in ["a", "b", "c"] {
        store
            .update_with(&log, |current: Option<Log>| {
                let mut log = current.unwrap_or_default();
                log.lines.push(line.to_owned());
                (Change::Put(log), ())
            })
            .await?;
    }
    // Keep writes nothing; Delete removes; deleting what is absent writes nothing either.
    let seen = store
        .update_with(&counter, |current: Option<Counter>| (Change::Keep, current))
        .await?;
    assert_eq!(seen, Some(Counter { n: 2 }));
    let mutations = store.stats().mutations;
    store
        .update_with(&key("Counter", "never"), |_: Option<Counter>| {
            (Change::<Counter>::Delete, ())
        })
        .await?;
    assert_eq!(store.stats().mutations, mutations);
    store.close().await?;

    let raw = fixture.read_back("Logaudit").await?.ok_or("log missing")?;
    let lines = ["a", "b", "c"]
        .map(|s| AttributeValue::S(s.into()))
        .to_vec();
    assert_eq!(raw.get("lines"), Some(&AttributeValue::L(lines)));

    // A new store reads the key before deciding.
    let store = fixture.store().await?;
    assert_eq!(increment(&store, &counter).await?, 3);
    store
        .update_with(&counter, |_: Option<Counter>| {
            (Change::<Counter>::Delete, ())
        })
        .await?;
    assert_eq!(store.get::<Counter>(&counter).await?, None);
    store.close().await?;
    assert!(fixture.read_back("Counterhits").await?.is_none());
    Ok(())
}

async fn raw_items_change_in_one_step(fixture: Fixture) -> TestResult {
    let store = fixture.store().await?;
    let counter = key("Counter", "raw");
    for _ in 0..3 {
        store
            .update_item_with(&counter, |current: Option<&Item>| {
                let n = current
                    .and_then(|item| item.get("n"))
                    .and_then(|n| n.as_n().ok())
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0);
                let next = Item::from([("n".to_string(), AttributeValue::N((n + 1).to_string()))]);
                (Change::Put(next), ())
            })
            .await?;
    }
    assert_eq!(
        store.get::<Counter>(&counter).await?,
        Some(Counter { n: 3 })
    );
    store.close().await?;
    Ok(())
}

async fn a_failed_update_with_leaves_the_key_as_it_was(fixture: Fixture) -> TestResult {
    let store = fixture.store().await?;
    let counter = key("Counter", "typed");
    increment(&store, &counter).await?;
    // The stored value is not a Log: deserializing fails before the closure runs.
    let mut called = false;
    let err = store
        .update_with(&counter, |_: Option<Log>| {
            called = true;
            (Change::Put(Log::default()), ())
        })
        .await
        .err();
    assert_eq!(err.map(|e| e.code()), Some("SerializeException"));
    assert!(!called);
    // A new item DynamoDB would refuse is refused, and nothing changes.
    let err = store
        .update_item_with(&counter, |_| {
            let forged = Item::from([("_key".to_string(), AttributeValue::S("x".into()))]);
            (Change::Put(forged), ())
        })
        .await
        .err();
    assert_eq!(err.map(|e| e.code()), Some("ValidationException"));
    assert_eq!(
        store.get::<Counter>(&counter).await?,
        Some(Counter { n: 1 })
    );
    assert_eq!(store.stats().mutations, 1);
    store.close().await?;
    Ok(())
}

/// Many tasks increment a few counters at once: no increment is lost, because each
/// read-modify-write is one step with respect to every other operation on its key.
async fn concurrent_increments_are_never_lost(fixture: Fixture) -> TestResult {
    const TASKS: u64 = 8;
    const EACH: u64 = 200;
    let store = fixture.store().await?;
    let counters: Vec<_> = (0..3).map(|i| key("Counter", i)).collect();
    let mut tasks = tokio::task::JoinSet::<quickstore::Result<Vec<u64>>>::new();
    for task in 0..TASKS {
        let store = store.clone();
        let counters = counters.clone();
        tasks.spawn(async move {
            let mut seen = Vec::new();
            for i in 0..EACH {
                let counter = &counters[((task + i) % 3) as usize];
                seen.push(increment(&store, counter).await?);
                if i % 50 == 0 {
                    // Other operations on the same keys, interleaved.
                    store.get::<Counter>(counter).await?;
                    store.flush().await?;
                }
            }
            Ok(seen)
        });
    }
    let mut answers = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        answers.extend(joined??);
    }
    let total: u64 = {
        let mut sum = 0;
        for counter in &counters {
            sum += store.get::<Counter>(counter).await?.unwrap_or_default().n;
        }
        sum
    };
    assert_eq!(total, TASKS * EACH);
    assert_eq!(answers.len() as u64, TASKS * EACH);
    store.close().await?;
    let mut stored = 0;
    for counter in &counters {
        let raw = fixture
            .read_back(counter.as_str())
            .await?
            .ok_or("missing")?;
        stored += raw
            .get("n")
            .and_then(|n| n.as_n().ok())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
    }
    assert_eq!(stored, TASKS * EACH);
    Ok(())
}

/// Another writer changes a key this store has cached: the store keeps serving its copy until
/// told to forget it (`invalidate`), to read again (`refresh`), or until the copy is older than
/// `max_staleness`. A key with a pending write is never dropped.
async fn invalidate_and_refresh_show_another_writers_changes(fixture: Fixture) -> TestResult {
    // Flushes happen only when asked, so the write below is still pending when the other
    // writer changes the item and the cache is cleared.
    let store = fixture
        .builder()
        .flush_interval(Duration::from_secs(3600))
        .open()
        .await?;
    let (a, b) = (key("Counter", "a"), key("Counter", "b"));
    store.upsert(&a, &Counter { n: 1 }).await?;
    store.upsert(&b, &Counter { n: 1 }).await?;
    store.flush().await?;
    let other = |rendered: &str, n: u64| {
        Item::from([
            ("_key".to_string(), AttributeValue::S(rendered.into())),
            ("n".to_string(), AttributeValue::N(n.to_string())),
        ])
    };
    fixture.put_raw(other("Countera", 7)).await?;
    fixture.put_raw(other("Counterb", 7)).await?;
    assert_eq!(
        store.get::<Counter>(&a).await?,
        Some(Counter { n: 1 }),
        "cached"
    );

    store.invalidate(&a)?;
    assert_eq!(store.get::<Counter>(&a).await?, Some(Counter { n: 7 }));
    let refreshed = store.refresh(&b).await?.ok_or("b missing")?;
    assert_eq!(refreshed.get("n"), Some(&AttributeValue::N("7".into())));

    // A pending write survives invalidation: it is newer than what the table holds.
    store.upsert(&a, &Counter { n: 8 }).await?;
    fixture.put_raw(other("Countera", 9)).await?;
    store.invalidate_all()?;
    assert_eq!(store.get::<Counter>(&a).await?, Some(Counter { n: 8 }));
    store.close().await?;
    Ok(())
}

on_both_backends!(
    counters_and_lists_change_in_one_step,
    raw_items_change_in_one_step,
    a_failed_update_with_leaves_the_key_as_it_was,
    concurrent_increments_are_never_lost,
    invalidate_and_refresh_show_another_writers_changes,
);

/// With `max_staleness`, a clean entry older than the bound is read again; time is paused and
/// advanced by hand, so the test neither sleeps nor depends on timing.
#[tokio::test(start_paused = true)]
async fn entries_older_than_max_staleness_are_read_again() -> TestResult {
    let fixture = Fixture::embedded()?;
    let store = fixture
        .builder()
        .max_staleness(Duration::from_secs(30))
        .open()
        .await?;
    let counter = key("Counter", "stale");
    let raw = |n: u64| {
        Item::from([
            ("_key".to_string(), AttributeValue::S("Counterstale".into())),
            ("n".to_string(), AttributeValue::N(n.to_string())),
        ])
    };
    fixture.put_raw(raw(1)).await?;
    assert_eq!(
        store.get::<Counter>(&counter).await?,
        Some(Counter { n: 1 })
    );
    fixture.put_raw(raw(2)).await?;
    tokio::time::advance(Duration::from_secs(29)).await;
    assert_eq!(
        store.get::<Counter>(&counter).await?,
        Some(Counter { n: 1 })
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(
        store.get::<Counter>(&counter).await?,
        Some(Counter { n: 2 })
    );
    assert_eq!(store.stats().backend_reads, 2);
    // Absence is cached for as long, and no longer.
    let absent = key("Counter", "absent");
    assert_eq!(store.get::<Counter>(&absent).await?, None);
    fixture
        .put_raw(Item::from([
            (
                "_key".to_string(),
                AttributeValue::S("Counterabsent".into()),
            ),
            ("n".to_string(), AttributeValue::N("5".into())),
        ]))
        .await?;
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(store.get::<Counter>(&absent).await?, Some(Counter { n: 5 }));
    store.close().await?;
    Ok(())
}
