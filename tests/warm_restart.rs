//! Warm restarts: keys saved at `close` are prefetched at the next `open`, in batches, so that
//! the restarted store's first reads are hits; a file that is missing, damaged or another
//! table's is ignored with a warning.

#[macro_use]
mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{key, number, Fixture, TestResult};
use quickstore::internals::{decode_warm_keys, encode_warm_keys, SavedKeys};
use quickstore::testing::{Faults, FaultyBackend, Operation};
use quickstore::{AttributeValue, Item, Key, Stats, Store};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};

fn item(key: &Key) -> Item {
    HashMap::from([
        (
            "_key".to_owned(),
            AttributeValue::S(key.as_str().to_owned()),
        ),
        ("n".to_owned(), number(1)),
    ])
}

/// Polls the store's stats until `done` holds; the bound only turns a hang into a failure.
async fn stats_until(store: &Store, done: impl Fn(&Stats) -> bool) -> TestResult<Stats> {
    for _ in 0..10_000 {
        let stats = store.stats();
        if done(&stats) {
            return Ok(stats);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Err(format!("the warm-up did not finish: {:?}", store.stats()).into())
}

/// A store that served reads saves their keys at `close`; the next store over the same table
/// prefetches them in batches, and its first reads of them are hits.
async fn the_keys_cached_at_close_are_prefetched_at_open(fixture: Fixture) -> TestResult {
    let present: Vec<Key> = (0..150).map(|i| key("Doc", i)).collect();
    for key in &present {
        fixture.put_raw(item(key)).await?;
    }
    let absent: Vec<Key> = (0..30).map(|i| key("Gone", i)).collect();
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("warm.keys");

    let store = fixture.builder().warm_restart(&file).open().await?;
    for key in present.iter().chain(&absent) {
        store.get_item(key).await?;
    }
    store.upsert_item(&key("New", 1), HashMap::new()).await?; // clean once written
    store.close().await?;
    assert!(file.exists());

    let backend = Arc::new(FaultyBackend::new(fixture.backend(), Faults::new()));
    let store = Store::builder(Arc::clone(&backend))
        .warm_restart(&file)
        .open()
        .await?;
    let warmed = stats_until(&store, |stats| stats.prefetched == 181).await?;
    assert_eq!((warmed.hits, warmed.misses), (0, 0));
    assert_eq!(backend.observed().requests(Operation::Get), 0);
    assert_eq!(backend.observed().requests(Operation::BatchGet), 2);
    for key in present.iter().chain(&absent) {
        let found = store.get_item(key).await?;
        assert_eq!(found.is_some(), key.kind() == "Doc", "{key}");
    }
    let stats = store.stats();
    assert_eq!((stats.hits, stats.misses), (180, 0));
    assert_eq!(stats.prefetch_hits, 180);
    assert_eq!(stats.read_requests, 2);
    store.close().await?;
    Ok(())
}

on_both_backends!(the_keys_cached_at_close_are_prefetched_at_open);

/// The messages of the warnings logged, for the test below.
#[derive(Clone, Default)]
struct Warnings(Arc<Mutex<Vec<String>>>);

impl Warnings {
    fn containing(&self, text: &str) -> usize {
        self.0
            .lock()
            .map(|all| all.iter().filter(|m| m.contains(text)).count())
            .unwrap_or(0)
    }
}

struct Message<'a>(&'a mut String);

impl Visit for Message<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={value:?}", field.name()));
    }
}

impl<S: Subscriber> Layer<S> for Warnings {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        if *event.metadata().level() == Level::WARN {
            let mut message = String::new();
            event.record(&mut Message(&mut message));
            if let Ok(mut all) = self.0.lock() {
                all.push(message);
            }
        }
    }
}

async fn opens_cold(fixture: &Fixture, file: &Path, warnings: &Warnings, why: &str) -> TestResult {
    let before = warnings.containing(why);
    let store = fixture.builder().warm_restart(file).open().await?;
    for _ in 0..10_000 {
        if warnings.containing(why) > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(warnings.containing(why), before + 1, "{why}");
    assert_eq!(store.stats().prefetched, 0);
    assert!(store.get_item(&key("Doc", 1)).await?.is_some());
    store.close().await?;
    Ok(())
}

/// A store starts cold, with a warning, when the file is missing (the first start), damaged,
/// or was saved by a store of another table or partition key; it serves all the same.
#[tokio::test]
async fn a_missing_damaged_or_foreign_file_is_ignored_with_a_warning() -> TestResult {
    let warnings = Warnings::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(warnings.clone()))?;
    let fixture = Fixture::embedded()?;
    fixture.put_raw(item(&key("Doc", 1))).await?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("warm.keys");

    opens_cold(&fixture, &file, &warnings, "no saved keys").await?;
    // That store saved its keys at close: the file is now this table's.
    assert!(file.exists());

    let mut damaged = std::fs::read(&file)?;
    let middle = damaged.len() / 2;
    damaged[middle] ^= 1;
    std::fs::write(&file, &damaged)?;
    opens_cold(&fixture, &file, &warnings, "unreadable").await?;

    // Saved over another table.
    let other = Fixture::embedded()?;
    let store = other.builder().warm_restart(&file).open().await?;
    store.get_item(&key("Doc", 1)).await?;
    store.close().await?;
    opens_cold(&fixture, &file, &warnings, "another table").await?;

    // Saved by a store of another partition key over the same table: made by hand, as the
    // table's key schema allows no such store.
    let mine = decode_warm_keys(&std::fs::read(&file)?)?;
    let theirs = SavedKeys {
        partition_key: "pk".into(),
        ..mine
    };
    std::fs::write(&file, encode_warm_keys(&theirs))?;
    opens_cold(&fixture, &file, &warnings, "another table").await?;
    Ok(())
}
