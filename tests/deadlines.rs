//! Deadlines on `flush` and `close`: during an outage they return in time, saying how much is
//! left and whether it is safe in the journal; the store stays usable after a flush that timed
//! out, and a later `close` drains everything once the backend is back.

mod common;

use std::time::Duration;

use common::{key, Fixture, TestResult};
use quickstore::testing::{Faults, FaultyBackend, Gate};
use quickstore::{Error, Store};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Doc {
    n: u64,
}

async fn deadlines_during_an_outage(journal: bool) -> TestResult {
    let fixture = Fixture::embedded()?;
    let dir = tempfile::tempdir()?;
    // The outage: no write gets through until the gate opens.
    let gate = Gate::new();
    let backend = FaultyBackend::new(fixture.backend(), Faults::new()).hold_writes(&gate);
    let mut builder = Store::builder(backend).flush_interval(Duration::from_millis(10));
    if journal {
        builder = builder.journal(dir.path());
    }
    let store = builder.open().await?;
    for n in 0..10 {
        store.upsert(&key("Doc", n), &Doc { n }).await?;
    }
    let err = store.flush_within(Duration::from_secs(1)).await.err();
    match err {
        Some(Error::Timeout {
            remaining,
            journaled,
            waited,
        }) => {
            assert_eq!(remaining, 10);
            assert_eq!(journaled, journal);
            assert_eq!(waited, Duration::from_secs(1));
        }
        other => return Err(format!("expected a timeout, got {other:?}").into()),
    }
    // Still usable: reads are served, writes acknowledged.
    assert_eq!(store.get::<Doc>(&key("Doc", 3)).await?, Some(Doc { n: 3 }));
    store.upsert(&key("Doc", 10), &Doc { n: 10 }).await?;
    let err = store.close_within(Duration::from_secs(2)).await.err();
    assert!(
        matches!(err, Some(Error::Timeout { remaining: 11, .. })),
        "{err:?}"
    );
    assert!(matches!(
        store.upsert(&key("Doc", 11), &Doc { n: 11 }).await,
        Err(Error::Closed)
    ));
    // The backend is back: a later close drains everything.
    gate.open();
    store.close().await?;
    assert_eq!(store.stats().pending, 0);
    for n in 0..=10 {
        assert!(
            fixture.read_back(key("Doc", n).as_str()).await?.is_some(),
            "key {n} was lost"
        );
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn deadlines_during_an_outage_without_a_journal() -> TestResult {
    deadlines_during_an_outage(false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_during_an_outage_with_a_journal() -> TestResult {
    deadlines_during_an_outage(true).await
}
