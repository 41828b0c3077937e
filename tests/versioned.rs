//! Several stores on one table. In versioned mode a store never overwrites a change it has not
//! seen: a write that loses the race is reported as a conflict, and the store takes the
//! winner's state. In the default mode, the same workload loses updates silently; the test
//! measures how many, and `docs/GUARANTEES.md` says so.

#[macro_use]
mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{key, Fixture, TestResult};
use parking_lot::Mutex;
use quickstore::{AttributeValue, Change, Conflict, Item, Key, Store};
use serde::{Deserialize, Serialize};

const VERSION: &str = "_version";

/// One counter per store in each item, so that a lost update shows as a missing increment
/// of the store that made it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Counts {
    #[serde(default)]
    counts: Vec<u64>,
}

fn counter_of(item: Option<&Arc<Item>>, store: usize) -> u64 {
    item.and_then(|item| item.get("counts"))
        .and_then(|counts| counts.as_l().ok())
        .and_then(|counts| counts.get(store))
        .and_then(|n| n.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// What each store acknowledged, and what its conflicts took back.
#[derive(Default)]
struct Ledger {
    acknowledged: Vec<AtomicU64>,
    lost: Vec<AtomicU64>,
    conflicts: Mutex<Vec<Conflict>>,
}

async fn open(fixture: &Fixture, store: usize, ledger: &Arc<Ledger>) -> TestResult<Store> {
    let ledger = Arc::clone(ledger);
    Ok(fixture
        .builder()
        .versioned(VERSION)
        .flush_interval(Duration::from_millis(2))
        .on_conflict(move |conflict| {
            // The increments this store made since its last write that landed are gone.
            let ours = counter_of(conflict.ours.as_ref(), store);
            let theirs = counter_of(conflict.theirs.as_ref(), store);
            ledger.lost[store].fetch_add(ours.saturating_sub(theirs), Ordering::Relaxed);
            ledger.conflicts.lock().push(conflict.clone());
        })
        .open()
        .await?)
}

/// `stores` stores increment their own counter in a few shared items, concurrently.
async fn increment_from(
    fixture: &Fixture,
    stores: usize,
    versioned: bool,
) -> TestResult<(Arc<Ledger>, Vec<Key>, Vec<u64>)> {
    const EACH: u64 = 150;
    let kind = format!("Shared{stores}");
    let keys: Vec<Key> = (0..3).map(|i| key(&kind, i)).collect();
    let ledger = Arc::new(Ledger {
        acknowledged: (0..stores).map(|_| AtomicU64::new(0)).collect(),
        lost: (0..stores).map(|_| AtomicU64::new(0)).collect(),
        conflicts: Mutex::default(),
    });
    let mut tasks = tokio::task::JoinSet::<TestResult<Store>>::new();
    for store_index in 0..stores {
        let store = if versioned {
            open(fixture, store_index, &ledger).await?
        } else {
            fixture
                .builder()
                .flush_interval(Duration::from_millis(2))
                .open()
                .await?
        };
        let (keys, ledger) = (keys.clone(), Arc::clone(&ledger));
        tasks.spawn(async move {
            for i in 0..EACH {
                let counter = &keys[(i as usize + store_index) % keys.len()];
                store
                    .update_with(counter, |current: Option<Counts>| {
                        let mut current = current.unwrap_or_default();
                        current.counts.resize(stores.max(current.counts.len()), 0);
                        current.counts[store_index] += 1;
                        (Change::Put(current), ())
                    })
                    .await?;
                ledger.acknowledged[store_index].fetch_add(1, Ordering::Relaxed);
                if i % 10 == 0 {
                    store.flush().await?;
                }
            }
            Ok(store)
        });
    }
    let mut opened = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        opened.push(joined??);
    }
    for store in &opened {
        store.close().await?;
    }
    // What the table holds, per store.
    let mut stored = vec![0; stores];
    for counter in &keys {
        let item = fixture.read_back(counter.as_str()).await?.map(Arc::new);
        for (store, total) in stored.iter_mut().enumerate() {
            *total += counter_of(item.as_ref(), store);
        }
    }
    Ok((ledger, keys, stored))
}

async fn versioned_stores_never_lose_an_update_without_a_report(fixture: Fixture) -> TestResult {
    for stores in [2, 3] {
        let (ledger, _, stored) = increment_from(&fixture, stores, true).await?;
        let conflicts = ledger.conflicts.lock().len();
        for (store, stored) in stored.iter().enumerate() {
            let acknowledged = ledger.acknowledged[store].load(Ordering::Relaxed);
            let lost = ledger.lost[store].load(Ordering::Relaxed);
            println!(
                "{stores} versioned stores, store {store}: {acknowledged} increments \
                 acknowledged, {lost} lost in {conflicts} reported conflicts, {stored} stored"
            );
            assert_eq!(*stored, acknowledged - lost, "store {store}");
        }
        for conflict in ledger.conflicts.lock().iter() {
            assert!(conflict.key.starts_with("Shared"), "{conflict:?}");
            let theirs = conflict.theirs.as_ref();
            assert!(theirs.is_none_or(|item| !item.contains_key(VERSION)));
        }
        // The items carry their versions; the store's values do not.
        let raw = fixture
            .read_back(&format!("Shared{stores}0"))
            .await?
            .ok_or("missing")?;
        assert!(matches!(raw.get(VERSION), Some(AttributeValue::N(_))));
    }
    Ok(())
}

async fn default_stores_lose_updates_silently(fixture: Fixture) -> TestResult {
    let (ledger, _, stored) = increment_from(&fixture, 2, false).await?;
    for (store, stored) in stored.iter().enumerate() {
        let acknowledged = ledger.acknowledged[store].load(Ordering::Relaxed);
        println!(
            "2 default stores, store {store}: {acknowledged} increments acknowledged, \
             {stored} stored, {} lost without a report",
            acknowledged - stored
        );
        assert!(*stored <= acknowledged);
    }
    Ok(())
}

/// A versioned store takes the winner's state at once: its next read shows it, and its next
/// write builds on it.
async fn a_conflict_hands_the_key_to_the_winner(fixture: Fixture) -> TestResult {
    let ledger = Arc::new(Ledger {
        acknowledged: vec![AtomicU64::new(0)],
        lost: vec![AtomicU64::new(0)],
        conflicts: Mutex::default(),
    });
    let ours = open(&fixture, 0, &ledger).await?;
    let theirs = fixture.builder().versioned(VERSION).open().await?;
    let shared = key("Shared", "k");
    ours.insert(&shared, &Counts { counts: vec![1] }).await?;
    ours.flush().await?;
    // Both know version 1; the other store writes version 2 first.
    assert!(theirs.get::<Counts>(&shared).await?.is_some());
    theirs.upsert(&shared, &Counts { counts: vec![10] }).await?;
    theirs.flush().await?;
    ours.upsert(&shared, &Counts { counts: vec![2] }).await?;
    ours.flush().await?;
    assert_eq!(ours.stats().conflicts, 1);
    assert_eq!(
        ours.get::<Counts>(&shared).await?,
        Some(Counts { counts: vec![10] }),
        "the winner's state"
    );
    // The next write builds on the winner's version and lands.
    ours.upsert(&shared, &Counts { counts: vec![11] }).await?;
    ours.flush().await?;
    assert_eq!(ours.stats().conflicts, 1);
    let raw = fixture.read_back("Sharedk").await?.ok_or("missing")?;
    assert_eq!(raw.get(VERSION), Some(&AttributeValue::N("3".into())));
    {
        let conflicts = ledger.conflicts.lock();
        assert_eq!(conflicts.len(), 1);
        assert_eq!(counter_of(conflicts[0].ours.as_ref(), 0), 2);
        assert_eq!(counter_of(conflicts[0].theirs.as_ref(), 0), 10);
    }
    // Another writer deletes the item: a write based on the old version conflicts with absence.
    theirs.invalidate(&shared)?;
    theirs.delete(&shared).await?;
    theirs.flush().await?;
    ours.upsert(&shared, &Counts { counts: vec![12] }).await?;
    ours.flush().await?;
    assert_eq!(ours.stats().conflicts, 2);
    assert_eq!(ours.get::<Counts>(&shared).await?, None);
    // Two stores that build the same state from the same version still conflict: the second
    // write's increments are lost, and that is reported.
    let twin = key("Shared", "twin");
    assert_eq!(ours.get::<Counts>(&twin).await?, None);
    assert_eq!(theirs.get::<Counts>(&twin).await?, None);
    theirs.insert(&twin, &Counts { counts: vec![1] }).await?;
    theirs.flush().await?;
    ours.insert(&twin, &Counts { counts: vec![1] }).await?;
    ours.flush().await?;
    assert_eq!(ours.stats().conflicts, 3);
    // Versioned mode refuses values that carry the version attribute.
    let forged = Item::from([(VERSION.to_string(), AttributeValue::N("9".into()))]);
    let refused = ours.upsert_item(&shared, forged).await.err();
    assert_eq!(refused.map(|e| e.code()), Some("ValidationException"));
    ours.close().await?;
    theirs.close().await?;
    Ok(())
}

on_both_backends!(
    versioned_stores_never_lose_an_update_without_a_report,
    default_stores_lose_updates_silently,
    a_conflict_hands_the_key_to_the_winner,
);

#[tokio::test]
async fn versioned_mode_and_a_journal_are_refused_together() -> TestResult {
    let fixture = Fixture::embedded()?;
    let dir = tempfile::tempdir()?;
    let err = fixture
        .builder()
        .versioned(VERSION)
        .journal(dir.path())
        .open()
        .await
        .err();
    assert_eq!(err.map(|e| e.code()), Some("ValidationException"));
    let err = fixture.builder().versioned("_key").open().await.err();
    assert_eq!(err.map(|e| e.code()), Some("ValidationException"));
    Ok(())
}

/// The same scenarios against moto's server, a second implementation of DynamoDB's conditional
/// writes (`ReturnValuesOnConditionCheckFailure` included).
mod moto {
    use super::common::{Fixture, TestResult};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn versioned_stores_never_lose_an_update_without_a_report() -> TestResult {
        super::versioned_stores_never_lose_an_update_without_a_report(Fixture::moto().await?).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_conflict_hands_the_key_to_the_winner() -> TestResult {
        super::a_conflict_hands_the_key_to_the_winner(Fixture::moto().await?).await
    }
}
