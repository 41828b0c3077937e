//! Memory pressure: clean entries are evicted to stay within the cache capacity, pending
//! (dirty) entries never are, and every read returns the newest acknowledged state.

#[macro_use]
mod common;

use std::time::Duration;

use common::{Fixture, TestResult};
use quickstore::Key;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Doc {
    version: u32,
    body: String,
}

const CAPACITY: u64 = 8 * 1024;
const ITEMS: u32 = 400;

fn key(i: u32) -> Key {
    common::key("Doc", i)
}

fn doc(i: u32, version: u32) -> Doc {
    Doc {
        version,
        body: format!("{i:0>120}"),
    }
}

async fn dirty_entries_are_never_evicted(fixture: Fixture) -> TestResult {
    // Version 1 of every document reaches the backend first.
    let seed = fixture.store().await?;
    for i in 0..ITEMS {
        seed.upsert(&key(i), &doc(i, 1)).await?;
    }
    seed.close().await?;

    let store = fixture
        .builder()
        .cache_capacity(CAPACITY)
        .shards(4)
        .flush_interval(Duration::from_secs(3600))
        .batch_threshold(100_000)
        .open()
        .await?;
    // Version 2 stays pending: far more than the cache could hold.
    for i in 0..ITEMS {
        store.upsert(&key(i), &doc(i, 2)).await?;
    }
    // Reading many other keys creates pressure on the clean cache.
    for i in ITEMS..ITEMS * 2 {
        assert!(!store.exists(&key(i)).await?);
    }
    let stats = store.stats();
    assert_eq!(stats.pending, ITEMS as usize);
    assert!(stats.cached_bytes <= CAPACITY, "{stats:?}");
    for i in 0..ITEMS {
        assert_eq!(store.get::<Doc>(&key(i)).await?, Some(doc(i, 2)), "key {i}");
    }
    let reads_before = store.stats().backend_reads;
    store.flush().await?;
    // Written entries turn clean and are evicted as needed; reads load them again.
    let stats = store.stats();
    assert_eq!(stats.pending, 0);
    assert!(stats.cached_bytes <= CAPACITY, "{stats:?}");
    for i in 0..ITEMS {
        assert_eq!(store.get::<Doc>(&key(i)).await?, Some(doc(i, 2)), "key {i}");
    }
    assert!(
        store.stats().backend_reads > reads_before,
        "evicted keys were read again"
    );
    // Updates of evicted keys load them first, and see them present.
    for i in 0..10 {
        store.update(&key(i), &doc(i, 3)).await?;
    }
    store.close().await?;
    for i in 0..ITEMS {
        let item = fixture
            .read_back(&key(i).to_string())
            .await?
            .ok_or("missing item")?;
        let expected = if i < 10 { "3" } else { "2" };
        assert_eq!(
            item.get("version")
                .and_then(|v| v.as_n().ok())
                .map(String::as_str),
            Some(expected)
        );
    }
    Ok(())
}

async fn an_item_larger_than_a_shard_is_still_served(fixture: Fixture) -> TestResult {
    let store = fixture
        .builder()
        .cache_capacity(256)
        .shards(1)
        .open()
        .await?;
    let big = Doc {
        version: 1,
        body: "x".repeat(10_000),
    };
    store.insert(&key(1), &big).await?;
    store.flush().await?;
    // Too heavy to cache: every read goes to the backend, and still returns the item.
    assert_eq!(store.get::<Doc>(&key(1)).await?.as_ref(), Some(&big));
    assert_eq!(store.get::<Doc>(&key(1)).await?.as_ref(), Some(&big));
    // An insert of a key the cache cannot hold still checks the backend's state.
    assert_eq!(
        store.insert(&key(1), &big).await.err().map(|e| e.code()),
        Some("ItemExisted")
    );
    store.update(&key(1), &doc(1, 2)).await?;
    store.close().await?;
    Ok(())
}

on_both_backends!(
    dirty_entries_are_never_evicted,
    an_item_larger_than_a_shard_is_still_served
);
