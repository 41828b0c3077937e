//! Several stores on one table. In versioned mode a store never overwrites a change it has not
//! seen: a write that loses the race is reported as a conflict, and the store takes the
//! winner's state. In the default mode, the same workload loses updates silently; the test
//! measures how many, and `docs/GUARANTEES.md` says so. With a journal, recovered writes are
//! conditional on the versions the store's last writes left.

#[macro_use]
mod common;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{crash_copy, key, Fixture, TestResult};
use parking_lot::Mutex;
use quickstore::journal::inspect_journal;
use quickstore::testing::{Faults, FaultyBackend, Gate};
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
            assert!(conflict.key.kind().starts_with("Shared"), "{conflict:?}");
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

/// A note: the value of the keys the journal scenarios write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Note {
    text: String,
}

fn note(text: &str) -> Note {
    Note {
        text: text.to_owned(),
    }
}

/// A versioned store with a journal whose writes wait at `gate`, and flush only when asked.
async fn gated_store(fixture: &Fixture, gate: &Gate, dir: &Path) -> TestResult<Store> {
    let backend = FaultyBackend::new(fixture.backend(), Faults::new()).hold_writes(gate);
    Ok(Store::builder(backend)
        .versioned(VERSION)
        .journal(dir)
        .flush_interval(Duration::from_secs(3600))
        .open()
        .await?)
}

/// The version an item carries in the table, or `None` when it is absent.
async fn stored_version(fixture: &Fixture, key: &Key) -> TestResult<Option<String>> {
    let item = fixture.read_back(key.as_str()).await?;
    Ok(item.map(|item| match item.get(VERSION) {
        Some(AttributeValue::N(n)) => n.clone(),
        other => format!("{other:?}"),
    }))
}

/// The conflicts a store reports to its handler.
fn conflict_log() -> (
    Arc<Mutex<Vec<Conflict>>>,
    impl Fn(&Conflict) + Send + Sync + 'static,
) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let handler = {
        let log = Arc::clone(&log);
        move |conflict: &Conflict| log.lock().push(conflict.clone())
    };
    (log, handler)
}

/// Writes that landed before a crash are not written again, and the recovered writes are
/// conditional on the versions those left: no false conflict. One key's write is in flight
/// while it changes again, so its marker follows the newer mutation in the journal.
async fn recovered_writes_build_on_the_versions_that_landed(fixture: Fixture) -> TestResult {
    let gate = Gate::new();
    let dir = tempfile::tempdir()?;
    let store = gated_store(&fixture, &gate, dir.path()).await?;
    let [changed, deleted, settled, overtaken, fresh] =
        ["changed", "deleted", "settled", "overtaken", "fresh"].map(|id| key("Note", id));
    for key in [&changed, &deleted, &settled, &overtaken] {
        store.insert(key, &note("first")).await?;
    }
    let flushing = tokio::spawn({
        let store = store.clone();
        async move { store.flush().await }
    });
    gate.until_waiting(4).await;
    // Applied while its first write is in flight: recorded on the base from before that write.
    store.upsert(&overtaken, &note("second")).await?;
    gate.release(4);
    flushing.await??;
    store.upsert(&changed, &note("second")).await?;
    store.delete(&deleted).await?;
    store.insert(&fresh, &note("first")).await?;
    let journal = crash_copy(dir.path())?;
    drop(store); // its writes wait at the gate for ever: nothing more reaches the table

    let (conflicts, handler) = conflict_log();
    let store = fixture
        .builder()
        .versioned(VERSION)
        .journal(journal.path())
        .on_conflict(handler)
        .open()
        .await?;
    let recovery = store.stats().recovery.ok_or("no recovery report")?;
    assert_eq!((recovery.keys, recovery.markers), (4, 4), "{recovery:?}");
    for (key, expected) in [
        (&changed, Some("second")),
        (&deleted, None),
        (&settled, Some("first")),
        (&overtaken, Some("second")),
        (&fresh, Some("first")),
    ] {
        assert_eq!(store.get::<Note>(key).await?, expected.map(note), "{key}");
    }
    store.close().await?;
    assert_eq!(store.stats().conflicts, 0, "{:?}", conflicts.lock());
    assert_eq!(store.stats().dead_letters, 0);
    for (key, version) in [
        (&changed, Some("2")),
        (&deleted, None),
        (&settled, Some("1")),
        (&overtaken, Some("2")),
        (&fresh, Some("1")),
    ] {
        assert_eq!(
            stored_version(&fixture, key).await?.as_deref(),
            version,
            "{key}"
        );
    }
    Ok(())
}

/// A recovered write whose key another writer changed while the store was down loses: it is
/// reported and dead-lettered as a conflict, and the other writer's state stays.
async fn a_recovered_write_that_lost_the_race_is_a_reported_conflict(
    fixture: Fixture,
) -> TestResult {
    let gate = Gate::new();
    let dir = tempfile::tempdir()?;
    let store = gated_store(&fixture, &gate, dir.path()).await?;
    let shared = key("Note", "shared");
    store.insert(&shared, &note("ours 1")).await?;
    gate.release(1);
    store.flush().await?;
    store.upsert(&shared, &note("ours 2")).await?;
    let journal = crash_copy(dir.path())?;
    drop(store);

    let other = fixture.builder().versioned(VERSION).open().await?;
    other.upsert(&shared, &note("theirs")).await?;
    other.close().await?;

    let (conflicts, handler) = conflict_log();
    let store = fixture
        .builder()
        .versioned(VERSION)
        .journal(journal.path())
        .on_conflict(handler)
        .open()
        .await?;
    assert_eq!(store.stats().recovery.map(|r| r.keys), Some(1));
    store.flush().await?;
    assert_eq!(store.stats().conflicts, 1);
    assert_eq!(store.get::<Note>(&shared).await?, Some(note("theirs")));
    store.close().await?;
    {
        let conflicts = conflicts.lock();
        assert_eq!(conflicts.len(), 1);
        let text = |item: &Option<Arc<Item>>| {
            item.as_ref()
                .and_then(|item| item.get("text"))
                .and_then(|text| text.as_s().ok())
                .cloned()
        };
        assert_eq!(text(&conflicts[0].ours).as_deref(), Some("ours 2"));
        assert_eq!(text(&conflicts[0].theirs).as_deref(), Some("theirs"));
    }
    let letters = inspect_journal(journal.path())?.dead_letters;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].key, "Noteshared");
    assert!(letters[0].reason.starts_with("conflict"), "{letters:?}");
    // The dropped state, keyed like a refused write's item, without version attributes.
    let dropped = letters[0]
        .item
        .as_ref()
        .ok_or("a put's letter holds its item")?;
    assert_eq!(
        dropped.get("_key"),
        Some(&AttributeValue::S("Noteshared".into()))
    );
    assert_eq!(
        dropped.get("text"),
        Some(&AttributeValue::S("ours 2".into()))
    );
    assert_eq!(dropped.get(VERSION), None);
    let stored = fixture.read_back("Noteshared").await?.ok_or("missing")?;
    assert_eq!(
        stored.get("text"),
        Some(&AttributeValue::S("theirs".into()))
    );
    assert_eq!(stored.get(VERSION), Some(&AttributeValue::N("2".into())));
    Ok(())
}

/// A conflict of a running store with a journal is dead-lettered, and the key's next
/// mutation, recovered after a crash, builds on the winner's version.
async fn conflicts_are_dead_lettered_and_recovery_builds_on_the_winner(
    fixture: Fixture,
) -> TestResult {
    let gate = Gate::new();
    let dir = tempfile::tempdir()?;
    let store = gated_store(&fixture, &gate, dir.path()).await?;
    let shared = key("Note", "contested");
    store.insert(&shared, &note("ours 1")).await?;
    gate.release(1);
    store.flush().await?;

    let other = fixture.builder().versioned(VERSION).open().await?;
    other.upsert(&shared, &note("theirs")).await?;
    other.close().await?;

    store.upsert(&shared, &note("ours 2")).await?;
    gate.release(1);
    store.flush().await?;
    assert_eq!(store.stats().conflicts, 1);
    assert_eq!(store.stats().dead_letters, 1);
    let letters = inspect_journal(dir.path())?.dead_letters;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(
        (letters[0].key.as_str(), letters[0].write.as_str()),
        ("Notecontested", "put")
    );
    assert!(letters[0].reason.starts_with("conflict"), "{letters:?}");
    assert_eq!(store.get::<Note>(&shared).await?, Some(note("theirs")));

    store.upsert(&shared, &note("ours 3")).await?;
    let journal = crash_copy(dir.path())?;
    drop(store);

    let store = fixture
        .builder()
        .versioned(VERSION)
        .journal(journal.path())
        .open()
        .await?;
    assert_eq!(store.stats().recovery.map(|r| r.keys), Some(1));
    store.close().await?;
    assert_eq!(store.stats().conflicts, 0);
    let stored = fixture.read_back("Notecontested").await?.ok_or("missing")?;
    assert_eq!(
        stored.get("text"),
        Some(&AttributeValue::S("ours 3".into()))
    );
    assert_eq!(stored.get(VERSION), Some(&AttributeValue::N("3".into())));
    Ok(())
}

/// A crash between a write landing in the table and the journal noting it: the recovered
/// writes find this store's own states in the table, named by the writer attribute, and are
/// settled by them, as written or written on top of, never reported as conflicts.
async fn a_crash_before_the_journal_notes_a_landed_write_is_not_a_conflict(
    fixture: Fixture,
) -> TestResult {
    let gate = Gate::new();
    let dir = tempfile::tempdir()?;
    let store = gated_store(&fixture, &gate, dir.path()).await?;
    let [landed, followed] = ["landed", "followed"].map(|id| key("Note", id));
    store.insert(&landed, &note("first")).await?;
    store.insert(&followed, &note("first")).await?;
    // The journal as a crash leaves it if the writes land before it notes them.
    let before_notes = crash_copy(dir.path())?;
    gate.release(2);
    store.flush().await?;
    // A newer mutation of one key, journaled too, on top of the landed write.
    store.upsert(&followed, &note("second")).await?;
    let journal = crash_copy(dir.path())?;
    drop(store);

    for (copy, expected) in [(&before_notes, "first"), (&journal, "second")] {
        let (conflicts, handler) = conflict_log();
        let store = fixture
            .builder()
            .versioned(VERSION)
            .journal(copy.path())
            .on_conflict(handler)
            .open()
            .await?;
        assert!(store.stats().recovery.is_some_and(|r| r.keys > 0));
        store.close().await?;
        assert_eq!(store.stats().conflicts, 0, "{:?}", conflicts.lock());
        assert_eq!(store.stats().dead_letters, 0);
        assert_eq!(
            fixture
                .read_back(followed.as_str())
                .await?
                .and_then(|item| item.get("text").cloned()),
            Some(AttributeValue::S(expected.into()))
        );
    }
    assert_eq!(
        stored_version(&fixture, &landed).await?.as_deref(),
        Some("1")
    );
    assert_eq!(
        stored_version(&fixture, &followed).await?.as_deref(),
        Some("2")
    );
    Ok(())
}

on_both_backends!(
    a_crash_before_the_journal_notes_a_landed_write_is_not_a_conflict,
    versioned_stores_never_lose_an_update_without_a_report,
    default_stores_lose_updates_silently,
    a_conflict_hands_the_key_to_the_winner,
    recovered_writes_build_on_the_versions_that_landed,
    a_recovered_write_that_lost_the_race_is_a_reported_conflict,
    conflicts_are_dead_lettered_and_recovery_builds_on_the_winner,
);

#[tokio::test]
async fn the_version_attribute_cannot_be_the_partition_key() -> TestResult {
    let fixture = Fixture::embedded()?;
    let err = fixture.builder().versioned("_key").open().await.err();
    assert_eq!(err.map(|e| e.code()), Some("ValidationException"));
    Ok(())
}

/// A backend that does not forward conditional writes: versioned mode refuses it at `open`,
/// naming what is missing, rather than failing every write at flush.
#[tokio::test]
async fn a_backend_without_conditional_writes_is_refused_at_open() -> TestResult {
    struct Plain(Arc<dyn quickstore::backend::Backend>);

    #[async_trait::async_trait]
    impl quickstore::backend::Backend for Plain {
        async fn check_table(&self, partition_key: &str) -> quickstore::Result<()> {
            self.0.check_table(partition_key).await
        }
        async fn get(
            &self,
            partition_key: &str,
            key: &str,
            consistent: bool,
        ) -> quickstore::Result<Option<Item>> {
            self.0.get(partition_key, key, consistent).await
        }
        async fn batch_get(
            &self,
            partition_key: &str,
            keys: &[String],
            consistent: bool,
        ) -> quickstore::Result<quickstore::backend::BatchGet> {
            self.0.batch_get(partition_key, keys, consistent).await
        }
        async fn batch_write(
            &self,
            partition_key: &str,
            writes: &[quickstore::backend::Write],
        ) -> quickstore::Result<Vec<usize>> {
            self.0.batch_write(partition_key, writes).await
        }
    }

    let fixture = Fixture::embedded()?;
    let err = Store::builder(Plain(fixture.backend()))
        .versioned(VERSION)
        .open()
        .await
        .err()
        .ok_or("opened")?;
    assert_eq!(err.code(), "ValidationException");
    assert!(err.to_string().contains("conditional writes"), "{err}");
    // The default mode does not need them.
    Store::builder(Plain(fixture.backend()))
        .open()
        .await?
        .close()
        .await?;
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
