//! What happens when the last handle of a store goes without `close()`: a warning is logged,
//! and the journal's writer thread ends even when the runtime goes away before the flusher
//! could drain. Its own test binary, so that no other test's journal threads are counted.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::{key, Fixture, TestResult};
use parking_lot::Mutex;
use quickstore::Store;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Records the level and message of every event.
#[derive(Default, Clone)]
struct Recorder {
    events: Arc<Mutex<Vec<(Level, String)>>>,
    next_span: Arc<AtomicU64>,
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed) + 1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        self.events
            .lock()
            .push((*event.metadata().level(), message.0));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[tokio::test]
async fn dropping_the_last_handle_without_close_warns() -> TestResult {
    let fixture = Fixture::embedded()?;
    let recorder = Recorder::default();
    let store = fixture.store().await?;
    store
        .upsert(
            &key("Doc", 1),
            &[("n", 1)]
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        )
        .await?;
    let clone = store.clone();
    tracing::subscriber::with_default(recorder.clone(), || {
        drop(store);
        assert!(recorder.events.lock().is_empty(), "a clone is still alive");
        drop(clone);
    });
    let events = recorder.events.lock().clone();
    assert!(
        events
            .iter()
            .any(|(level, message)| *level == Level::WARN && message.contains("close()")),
        "{events:?}"
    );

    // A closed store says nothing when dropped.
    let recorder = Recorder::default();
    let store = fixture.store().await?;
    store.close().await?;
    tracing::subscriber::with_default(recorder.clone(), || drop(store));
    assert!(recorder.events.lock().is_empty());
    Ok(())
}

/// The journal's thread names, "quickstore-journal" and "quickstore-journal-sync", as Linux
/// keeps them: 15 bytes.
#[cfg(target_os = "linux")]
const JOURNAL_THREAD: &str = "quickstore-jour";

/// The threads of this process with the given name.
#[cfg(target_os = "linux")]
fn threads_named(name: &str) -> TestResult<usize> {
    let mut count = 0;
    for task in std::fs::read_dir("/proc/self/task")? {
        let comm = std::fs::read_to_string(task?.path().join("comm")).unwrap_or_default();
        if comm.trim_end() == name {
            count += 1;
        }
    }
    Ok(count)
}

#[cfg(target_os = "linux")]
#[test]
fn the_journal_thread_ends_when_the_runtime_goes_before_the_store_is_closed() -> TestResult {
    let dir = tempfile::tempdir()?;
    let journal = dir.path().join("journal");
    let db = dir.path().join("store.redb");
    let wanted = key("Doc", 1);
    let value: std::collections::HashMap<&str, u32> = [("n", 7)].into_iter().collect();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let backend = quickstore::EmbeddedBackend::open(&db)?;
        // A flush interval long enough that nothing is written before the runtime goes.
        let store = Store::builder(backend)
            .journal(&journal)
            .flush_interval(std::time::Duration::from_secs(3600))
            .open()
            .await?;
        store.upsert(&wanted, &value).await?;
        assert_eq!(
            threads_named(JOURNAL_THREAD)?,
            2,
            "the writer and the syncer"
        );
        drop(store);
        TestResult::Ok(())
    })?;
    drop(runtime);
    assert_eq!(
        threads_named(JOURNAL_THREAD)?,
        0,
        "the journal's threads ended"
    );

    // Nothing acknowledged was lost: the next store recovers and writes it.
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let backend = quickstore::EmbeddedBackend::open(&db)?;
        let store = Store::builder(backend).journal(&journal).open().await?;
        let recovered = store.stats().recovery.map(|r| r.keys);
        assert_eq!(recovered, Some(1));
        store.close().await?;
        drop(store);
        let backend = quickstore::EmbeddedBackend::open(&db)?;
        let store = Store::builder(backend).open().await?;
        let read = store
            .get::<std::collections::HashMap<String, u32>>(&wanted)
            .await?;
        assert_eq!(read.and_then(|v| v.get("n").copied()), Some(7));
        store.close().await?;
        TestResult::Ok(())
    })
}
