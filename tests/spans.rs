//! The `tracing` spans a store runs its work in: loads (`load`, `load_batch`), the flusher's
//! batches (`flush_batch`), `flush` and `close`, each with the fields recorded when it ends.
//!
//! One test only, with a global subscriber: `tracing` caches whether a call site is enabled,
//! and with a subscriber set for one thread only, a test on another thread that reaches a call
//! site first can leave it disabled for all.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{key, Fixture, TestResult};
use quickstore::testing::{Faults, FaultyBackend};
use quickstore::{AttributeValue, Item, Store};
use serde::{Deserialize, Serialize};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Doc {
    n: u32,
}

/// A span as it closed: its name and every field recorded, as text.
#[derive(Debug, Clone)]
struct Closed {
    name: &'static str,
    fields: BTreeMap<String, String>,
}

impl Closed {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// Collects the spans that close, with their fields.
#[derive(Debug, Clone, Default)]
struct Spans {
    open: Arc<Mutex<HashMap<Id, Closed>>>,
    closed: Arc<Mutex<Vec<Closed>>>,
}

impl Spans {
    fn clear(&self) {
        if let Ok(mut closed) = self.closed.lock() {
            closed.clear();
        }
    }

    fn named(&self, name: &str) -> Vec<Closed> {
        let closed = self.closed.lock().map(|c| c.clone()).unwrap_or_default();
        closed
            .into_iter()
            .filter(|span| span.name == name)
            .collect()
    }
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut span = Closed {
            name: attrs.metadata().name(),
            fields: BTreeMap::new(),
        };
        attrs.record(&mut Fields(&mut span.fields));
        if let Ok(mut open) = self.open.lock() {
            open.insert(id.clone(), span);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        if let Ok(mut open) = self.open.lock() {
            if let Some(span) = open.get_mut(id) {
                values.record(&mut Fields(&mut span.fields));
            }
        }
    }

    fn on_close(&self, id: Id, _: Context<'_, S>) {
        let span = self.open.lock().ok().and_then(|mut open| open.remove(&id));
        if let (Some(span), Ok(mut closed)) = (span, self.closed.lock()) {
            closed.push(span);
        }
    }
}

#[tokio::test]
async fn loads_flushes_and_batches_run_in_spans() -> TestResult {
    let spans = Spans::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(spans.clone()))?;

    let fixture = Fixture::embedded()?;
    let absent = key("Absent", 1);
    let mut present: Item = HashMap::from([("n".to_owned(), AttributeValue::N("7".into()))]);
    present.insert("_key".to_owned(), AttributeValue::S("Doc1".into()));
    fixture.put_raw(present).await?;

    let store = fixture
        .builder()
        .flush_interval(Duration::from_secs(3600))
        .open()
        .await?;
    assert_eq!(store.get::<Doc>(&key("Doc", 1)).await?, Some(Doc { n: 7 }));
    assert_eq!(store.get::<Doc>(&absent).await?, None);
    let many = [key("Absent", 2), key("Absent", 3), key("Doc", 1)];
    assert_eq!(store.get_many::<Doc, _>(&many).await?.len(), 1);
    for i in 10..13 {
        store.upsert(&key("Doc", i), &Doc { n: i }).await?;
    }
    store.flush().await?;
    store.close().await?;

    let loads = spans.named("load");
    assert_eq!(loads.len(), 2, "{loads:?}");
    let outcomes: BTreeMap<&str, (&str, &str)> = loads
        .iter()
        .filter_map(|span| {
            Some((
                span.field("key")?,
                (span.field("outcome")?, span.field("attempts")?),
            ))
        })
        .collect();
    assert_eq!(
        outcomes,
        BTreeMap::from([("Doc1", ("found", "1")), ("Absent1", ("absent", "1"))])
    );

    let batches = spans.named("load_batch");
    assert_eq!(batches.len(), 1, "{batches:?}");
    // `Doc1` is cached: only the two absent keys are read.
    assert_eq!(batches[0].field("keys"), Some("2"));
    assert_eq!(batches[0].field("found"), Some("0"));
    assert_eq!(batches[0].field("attempts"), Some("1"));
    assert_eq!(batches[0].field("outcome"), Some("ok"));

    let flushes = spans.named("flush_batch");
    assert_eq!(flushes.len(), 1, "{flushes:?}");
    let batch = &flushes[0];
    assert_eq!(batch.field("writes"), Some("3"));
    assert_eq!(batch.field("versioned"), Some("false"));
    assert_eq!(batch.field("requests"), Some("1"));
    assert_eq!(batch.field("written"), Some("3"));
    assert_eq!(batch.field("refused"), Some("0"));
    assert_eq!(batch.field("conflicts"), Some("0"));
    assert_eq!(batch.field("outcome"), Some("written"));

    for name in ["flush", "close"] {
        let calls = spans.named(name);
        assert_eq!(calls.len(), 1, "{name}: {calls:?}");
        assert_eq!(calls[0].field("outcome"), Some("ok"), "{name}");
    }
    assert_eq!(spans.named("flush")[0].field("pending"), Some("3"));
    assert_eq!(spans.named("close")[0].field("pending"), Some("0"));

    // A batch with a refused write says so, and so does the flush that reports it.
    spans.clear();
    let refused = key("Refused", 1);
    let backend = FaultyBackend::new(
        fixture.backend(),
        Faults::new().refuse([refused.to_string()]),
    );
    let store = Store::builder(backend)
        .flush_interval(Duration::from_secs(3600))
        .open()
        .await?;
    store.upsert(&refused, &Doc { n: 1 }).await?;
    store.upsert(&key("Doc", 20), &Doc { n: 20 }).await?;
    assert!(store.flush().await.is_err());
    store.close().await?;
    let flushes = spans.named("flush_batch");
    assert_eq!(flushes.len(), 1, "{flushes:?}");
    let batch = &flushes[0];
    assert_eq!(batch.field("writes"), Some("2"));
    // The batch is refused whole, then each write is sent on its own.
    assert_eq!(batch.field("requests"), Some("3"));
    assert_eq!(batch.field("written"), Some("1"));
    assert_eq!(batch.field("refused"), Some("1"));
    assert_eq!(batch.field("outcome"), Some("refused"));
    let flush = spans.named("flush");
    assert_eq!(flush.len(), 1, "{flush:?}");
    assert_eq!(flush[0].field("outcome"), Some("error"));
    let error = flush[0].field("error").unwrap_or_default();
    assert!(error.contains(refused.as_str()), "{error}");
    Ok(())
}
