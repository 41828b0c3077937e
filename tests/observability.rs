//! What a store tells its application: the metrics it records through the `metrics` facade
//! (checked against the tables in the README and the crate docs) and the `on_refused`
//! handler. The spans are in `spans.rs`.
//!
//! Each test installs its recorder for its own thread only, and runs the store on that thread
//! (`#[tokio::test]`'s current-thread runtime, where the flusher runs too), so the tests do not
//! see each other's metrics.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use common::{key, Fixture, TestResult};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::MetricKind;
use quickstore::testing::{Faults, FaultyBackend};
use quickstore::{AttributeValue, Item, Refused, Stats, Store};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Doc {
    n: u32,
}

/// The metric names in the first column of a documented metrics table.
fn documented(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(|line| line.trim_start_matches("//!").trim())
        .filter_map(|line| line.strip_prefix("| `quickstore_"))
        .filter_map(|rest| rest.split_once('`'))
        .map(|(name, _)| format!("quickstore_{name}"))
        .collect()
}

/// One recorded metric: its kind, its labels and its value.
#[derive(Debug)]
struct Recorded {
    kind: MetricKind,
    labels: Vec<(String, String)>,
    value: DebugValue,
}

fn snapshot(snapshotter: &Snapshotter) -> BTreeMap<String, Recorded> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _unit, _description, value)| {
            let labels = key
                .key()
                .labels()
                .map(|label| (label.key().to_owned(), label.value().to_owned()))
                .collect();
            let name = key.key().name().to_owned();
            let kind = key.kind();
            (
                name,
                Recorded {
                    kind,
                    labels,
                    value,
                },
            )
        })
        .collect()
}

fn counter(metrics: &BTreeMap<String, Recorded>, name: &str) -> Option<u64> {
    match metrics.get(name)?.value {
        DebugValue::Counter(value) => Some(value),
        _ => None,
    }
}

fn gauge(metrics: &BTreeMap<String, Recorded>, name: &str) -> Option<f64> {
    match &metrics.get(name)?.value {
        DebugValue::Gauge(value) => Some(value.into_inner()),
        _ => None,
    }
}

fn histogram(metrics: &BTreeMap<String, Recorded>, name: &str) -> Option<Vec<f64>> {
    match &metrics.get(name)?.value {
        DebugValue::Histogram(values) => Some(values.iter().map(|v| v.into_inner()).collect()),
        _ => None,
    }
}

/// A small workload: 20 upserts, 5 of them of keys written twice (coalesced or not), 20 hits,
/// 3 misses of absent keys (one read each), one miss read in a batch, and a delete.
async fn workload(store: &Store) -> TestResult {
    for i in 0..15 {
        store.upsert(&key("Doc", i), &Doc { n: i }).await?;
    }
    for i in 0..5 {
        store.upsert(&key("Doc", i), &Doc { n: 100 + i }).await?;
    }
    for i in 0..15 {
        assert!(store.get::<Doc>(&key("Doc", i)).await?.is_some());
    }
    for i in 0..5 {
        assert!(store.exists(&key("Doc", i)).await?);
    }
    for i in 0..3 {
        assert!(store.get::<Doc>(&key("Absent", i)).await?.is_none());
    }
    let many = [key("Absent", 100), key("Doc", 1)];
    assert_eq!(store.get_many::<Doc, _>(&many).await?.len(), 1);
    store.delete(&key("Doc", 14)).await?;
    store.flush().await?;
    Ok(())
}

/// The counters each `Stats` field is published as.
fn published_counters(stats: &Stats) -> [(&'static str, u64); 11] {
    [
        ("quickstore_hits_total", stats.hits),
        ("quickstore_misses_total", stats.misses),
        ("quickstore_backend_reads_total", stats.backend_reads),
        ("quickstore_read_requests_total", stats.read_requests),
        ("quickstore_mutations_total", stats.mutations),
        ("quickstore_write_requests_total", stats.write_requests),
        ("quickstore_items_written_total", stats.items_written),
        ("quickstore_retries_total", stats.retries),
        ("quickstore_throttles_total", stats.throttles),
        ("quickstore_conflicts_total", stats.conflicts),
        ("quickstore_refused_writes_total", stats.rejected_writes),
    ]
}

#[tokio::test]
async fn the_documented_metrics_are_recorded_with_the_stats_values() -> TestResult {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _recording = metrics::set_default_local_recorder(&recorder);

    let fixture = Fixture::embedded()?;
    let journal = tempfile::tempdir()?;
    let store = fixture
        .builder()
        .journal(journal.path())
        .max_pending(5_000)
        .open()
        .await?;
    workload(&store).await?;
    store.close().await?;
    let stats = store.stats();
    let metrics = snapshot(&snapshotter);

    // The workload's own figures, so that a counter published from the wrong field shows.
    assert_eq!(stats.mutations, 21);
    assert_eq!(stats.hits, 21);
    assert_eq!((stats.misses, stats.backend_reads), (4, 4));
    assert_eq!((stats.rejected_writes, stats.conflicts), (0, 0));
    for (name, value) in published_counters(&stats) {
        assert_eq!(counter(&metrics, name), Some(value), "{name}");
    }
    assert_eq!(gauge(&metrics, "quickstore_pending_keys"), Some(0.0));
    assert_eq!(gauge(&metrics, "quickstore_pending_bytes"), Some(0.0));
    assert_eq!(
        gauge(&metrics, "quickstore_max_pending_keys"),
        Some(5_000.0)
    );
    assert_eq!(
        gauge(&metrics, "quickstore_max_pending_bytes"),
        Some(256.0 * 1024.0 * 1024.0)
    );
    assert_eq!(
        gauge(&metrics, "quickstore_oldest_pending_seconds"),
        Some(0.0)
    );
    assert_eq!(
        gauge(&metrics, "quickstore_cached_entries"),
        Some(stats.cached_entries as f64)
    );
    assert_eq!(
        gauge(&metrics, "quickstore_cached_bytes"),
        Some(stats.cached_bytes as f64)
    );
    assert_eq!(
        gauge(&metrics, "quickstore_journal_bytes"),
        Some(stats.journal_bytes as f64)
    );
    // Every item written was in exactly one batch, and each batch took some time.
    let sizes = histogram(&metrics, "quickstore_flush_batch_writes").unwrap_or_default();
    assert_eq!(sizes.iter().sum::<f64>(), stats.items_written as f64);
    let durations = histogram(&metrics, "quickstore_flush_batch_seconds").unwrap_or_default();
    assert_eq!(durations.len(), sizes.len());
    assert!(durations.iter().all(|seconds| *seconds >= 0.0));
    // One entry per read request, of the keys it asked for.
    let keys = histogram(&metrics, "quickstore_read_request_keys").unwrap_or_default();
    assert_eq!(keys.len() as u64, stats.read_requests);
    assert_eq!(keys.iter().sum::<f64>(), stats.backend_reads as f64);

    // The documentation and the recorder agree, but for stream following, which this store
    // does not do; and no metric has a label unless the store was given one.
    let readme = documented(include_str!("../README.md"));
    let crate_docs = documented(include_str!("../src/lib.rs"));
    assert_eq!(
        readme, crate_docs,
        "the README's and the crate docs' tables differ"
    );
    let expected: BTreeSet<String> = readme
        .into_iter()
        .filter(|name| !name.starts_with("quickstore_stream_"))
        .collect();
    let recorded: BTreeSet<String> = metrics.keys().cloned().collect();
    assert_eq!(recorded, expected);
    for (name, metric) in &metrics {
        assert!(metric.labels.is_empty(), "{name}: {:?}", metric.labels);
        let kind = if name.ends_with("_total") {
            MetricKind::Counter
        } else if name.starts_with("quickstore_flush_batch_")
            || name == "quickstore_read_request_keys"
        {
            MetricKind::Histogram
        } else {
            MetricKind::Gauge
        };
        assert_eq!(metric.kind, kind, "{name}");
    }
    Ok(())
}

#[tokio::test]
async fn a_metrics_label_names_the_store() -> TestResult {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _recording = metrics::set_default_local_recorder(&recorder);

    let fixture = Fixture::embedded()?;
    let store = fixture.builder().metrics_label("users").open().await?;
    store.upsert(&key("Doc", 1), &Doc { n: 1 }).await?;
    store.close().await?;
    let metrics = snapshot(&snapshotter);
    assert_eq!(counter(&metrics, "quickstore_mutations_total"), Some(1));
    assert!(!metrics.is_empty());
    for (name, metric) in &metrics {
        assert_eq!(
            metric.labels,
            [("store".to_owned(), "users".to_owned())],
            "{name}"
        );
    }
    Ok(())
}

// --- Refused writes --------------------------------------------------------------------------

#[tokio::test]
async fn on_refused_is_told_once_per_refused_write() -> TestResult {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _recording = metrics::set_default_local_recorder(&recorder);

    let fixture = Fixture::embedded()?;
    let (put, deleted) = (key("Refused", "put"), key("Refused", "deleted"));
    let backend = Arc::new(FaultyBackend::new(
        fixture.backend(),
        Faults::new().refuse([put.to_string(), deleted.to_string()]),
    ));
    let log: Arc<Mutex<Vec<Refused>>> = Arc::default();
    let told_now = || log.lock().map(|told| told.clone()).unwrap_or_default();
    let store = Store::builder(Arc::clone(&backend))
        .flush_interval(std::time::Duration::from_secs(3600))
        .on_refused({
            let log = Arc::clone(&log);
            move |refused| {
                if let Ok(mut log) = log.lock() {
                    log.push(refused.clone());
                }
            }
        })
        .open()
        .await?;
    for i in 0..5 {
        store.upsert(&key("Good", i), &Doc { n: i }).await?;
    }
    store.upsert(&put, &Doc { n: 1 }).await?;
    store.upsert(&put, &Doc { n: 2 }).await?; // coalesced: one write, one refusal
    store.delete(&deleted).await?;

    let err = store.flush().await.err().ok_or("the flush should fail")?;
    let mut told = told_now();
    told.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(told.len(), 2, "{told:?}");
    assert_eq!(told[0].key, deleted);
    assert_eq!(told[0].state, None, "a delete was refused");
    assert_eq!(told[1].key, put);
    // The keys as they were built, parts and all.
    assert_eq!(
        (told[1].key.kind(), told[1].key.identifier()),
        (put.kind(), put.identifier())
    );
    let expected: Item = HashMap::from([("n".to_owned(), AttributeValue::N("2".into()))]);
    assert_eq!(told[1].state.as_deref(), Some(&expected));
    assert_eq!(
        told[1].state::<Doc>()?,
        Some(Doc { n: 2 }),
        "read as a type"
    );
    for refused in &told {
        let named = refused.error.backend().and_then(|backend| backend.key());
        assert_eq!(named, Some(refused.key.as_str()), "{}", refused.error);
    }
    assert!([put.as_str(), deleted.as_str()]
        .iter()
        .any(|key| err.to_string().contains(key)));

    // Nothing more is refused: the handler is not called again.
    store.upsert(&key("Good", 9), &Doc { n: 9 }).await?;
    store.flush().await?;
    store.close().await?;
    assert_eq!(told_now().len(), 2);
    assert_eq!(store.stats().rejected_writes, 2);
    let metrics = snapshot(&snapshotter);
    assert_eq!(
        counter(&metrics, "quickstore_refused_writes_total"),
        Some(2)
    );

    Ok(())
}
