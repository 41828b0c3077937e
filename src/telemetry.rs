//! What the store tells the application about its work, beside [`Stats`](crate::Stats): the
//! metrics it records through the [`metrics`] facade, the [`Refused`] report handed to the
//! [`on_refused`](crate::StoreBuilder::on_refused) handler, and the helpers its `tracing`
//! spans share.
//!
//! Metrics cost nothing on the read and write paths: the counters those paths keep already
//! (see [`Counters`]) are published as absolute totals by the flusher, every
//! [`PUBLISH_INTERVAL`] and when the store closes, together with the gauges. Only the flusher's
//! batches record their own figures (histograms), once per batch. The names, kinds and
//! meanings are in the README's "Operations" section and the crate docs; keep the three in
//! step (the `metrics` test checks that every documented name is recorded).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Label, Unit};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::error::Error;
use crate::error::Result;
use crate::item::{self, Item};
use crate::key::Key;
use crate::stats::{Scope, Stats, COUNTERS};
use crate::version::ConflictHandler;

/// How often the flusher publishes the counters and gauges.
pub(crate) const PUBLISH_INTERVAL: Duration = Duration::from_secs(1);

/// Keys with mutations not yet in the backend.
pub(crate) const PENDING_KEYS: &str = "quickstore_pending_keys";
/// Bytes held by pending keys.
pub(crate) const PENDING_BYTES: &str = "quickstore_pending_bytes";
/// The configured bound on pending keys.
pub(crate) const MAX_PENDING_KEYS: &str = "quickstore_max_pending_keys";
/// The configured bound on pending bytes.
pub(crate) const MAX_PENDING_BYTES: &str = "quickstore_max_pending_bytes";
/// How long the oldest pending mutation has waited.
pub(crate) const OLDEST_PENDING_SECONDS: &str = "quickstore_oldest_pending_seconds";
/// Clean entries cached.
pub(crate) const CACHED_ENTRIES: &str = "quickstore_cached_entries";
/// Bytes held by clean entries.
pub(crate) const CACHED_BYTES: &str = "quickstore_cached_bytes";
/// Bytes of journal segments on disk.
pub(crate) const JOURNAL_BYTES: &str = "quickstore_journal_bytes";
/// Journal segments on disk.
pub(crate) const JOURNAL_SEGMENTS: &str = "quickstore_journal_segments";
/// The stream follower's lag.
pub(crate) const STREAM_LAG_SECONDS: &str = "quickstore_stream_lag_seconds";

/// How long each flush batch took, from its first request to its last answer.
pub(crate) const FLUSH_BATCH_SECONDS: &str = "quickstore_flush_batch_seconds";
/// Writes in each flush batch.
pub(crate) const FLUSH_BATCH_WRITES: &str = "quickstore_flush_batch_writes";

/// The gauges and their units and descriptions.
const GAUGES: &[(&str, Unit, &str)] = &[
    (
        PENDING_KEYS,
        Unit::Count,
        "Keys with mutations not yet in the backend",
    ),
    (PENDING_BYTES, Unit::Bytes, "Bytes held by pending keys"),
    (
        MAX_PENDING_KEYS,
        Unit::Count,
        "The configured bound on pending keys (max_pending)",
    ),
    (
        MAX_PENDING_BYTES,
        Unit::Bytes,
        "The configured bound on pending bytes (max_pending_bytes)",
    ),
    (
        OLDEST_PENDING_SECONDS,
        Unit::Seconds,
        "How long the oldest mutation not yet in the backend has waited",
    ),
    (CACHED_ENTRIES, Unit::Count, "Clean entries in the cache"),
    (CACHED_BYTES, Unit::Bytes, "Bytes held by clean entries"),
    (
        JOURNAL_BYTES,
        Unit::Bytes,
        "Bytes of journal segments on disk",
    ),
    (JOURNAL_SEGMENTS, Unit::Count, "Journal segments on disk"),
    (
        STREAM_LAG_SECONDS,
        Unit::Seconds,
        "How far behind the table the stream follower was at its last poll",
    ),
];

/// The histograms and their units and descriptions.
const HISTOGRAMS: &[(&str, Unit, &str)] = &[
    (
        FLUSH_BATCH_SECONDS,
        Unit::Seconds,
        "How long each flush batch took, retries included",
    ),
    (
        FLUSH_BATCH_WRITES,
        Unit::Count,
        "Writes in each flush batch",
    ),
];

/// What a publication reports beside the store's [`Stats`], gathered by the flusher.
#[derive(Debug, Default)]
pub(crate) struct Gauges {
    pub max_pending_keys: usize,
    pub max_pending_bytes: u64,
    pub oldest_pending: Duration,
    /// Whether the store has a journal.
    pub journaled: bool,
}

/// Records the store's metrics through the `metrics` facade, each with the store's labels.
#[derive(Debug, Clone, Default)]
pub(crate) struct Metrics {
    labels: Vec<Label>,
}

impl Metrics {
    /// Metrics labelled `store = label`, or unlabelled.
    pub(crate) fn new(label: Option<&str>) -> Self {
        Self {
            labels: label
                .map(|label| vec![Label::new("store", label.to_owned())])
                .unwrap_or_default(),
        }
    }

    fn counter(&self, name: &'static str) -> Counter {
        metrics::counter!(name, self.labels.iter())
    }

    fn gauge(&self, name: &'static str) -> Gauge {
        metrics::gauge!(name, self.labels.iter())
    }

    pub(crate) fn histogram(&self, name: &'static str) -> Histogram {
        metrics::histogram!(name, self.labels.iter())
    }

    /// Gives the installed recorder every metric's unit and description.
    pub(crate) fn describe(&self) {
        for counter in COUNTERS {
            metrics::describe_counter!(counter.metric, Unit::Count, counter.help);
        }
        for &(name, unit, description) in GAUGES {
            metrics::describe_gauge!(name, unit, description);
        }
        for &(name, unit, description) in HISTOGRAMS {
            metrics::describe_histogram!(name, unit, description);
        }
    }

    /// Publishes the counters of `stats` as absolute totals, and the gauges.
    pub(crate) fn publish(&self, stats: &Stats, gauges: &Gauges) {
        let follows_stream = stats.stream_lag.is_some();
        for counter in COUNTERS {
            if counter.scope == Scope::Always || follows_stream {
                self.counter(counter.metric).absolute((counter.get)(stats));
            }
        }
        if let Some(lag) = stats.stream_lag {
            self.gauge(STREAM_LAG_SECONDS).set(lag.as_secs_f64());
        }
        self.gauge(PENDING_KEYS).set(stats.pending as f64);
        self.gauge(PENDING_BYTES).set(stats.pending_bytes as f64);
        self.gauge(MAX_PENDING_KEYS)
            .set(gauges.max_pending_keys as f64);
        self.gauge(MAX_PENDING_BYTES)
            .set(gauges.max_pending_bytes as f64);
        self.gauge(OLDEST_PENDING_SECONDS)
            .set(gauges.oldest_pending.as_secs_f64());
        self.gauge(CACHED_ENTRIES).set(stats.cached_entries as f64);
        self.gauge(CACHED_BYTES).set(stats.cached_bytes as f64);
        if gauges.journaled {
            self.gauge(JOURNAL_BYTES).set(stats.journal_bytes as f64);
            self.gauge(JOURNAL_SEGMENTS)
                .set(stats.journal_segments as f64);
        }
    }
}

/// Most checkpoints [`Ages`] keeps; beyond it, every other one is dropped.
const MAX_CHECKPOINTS: usize = 4096;

/// Tells how old a mutation is from its sequence number, without a clock reading per
/// mutation: the flusher notes now and then the last sequence given out, and a mutation is at
/// least as old as the first note that covers it. Precise to within the time between notes.
#[derive(Debug, Default)]
pub(crate) struct Ages {
    /// `(last sequence, when)`, both increasing.
    checkpoints: VecDeque<(u64, Instant)>,
}

impl Ages {
    /// Notes that every mutation up to `last_seq` was made by `now`.
    pub(crate) fn note(&mut self, last_seq: u64, now: Instant) {
        // An earlier note of the same sequence says more.
        if self
            .checkpoints
            .back()
            .is_some_and(|&(seq, _)| seq >= last_seq)
        {
            return;
        }
        if self.checkpoints.len() >= MAX_CHECKPOINTS {
            let mut index = 0;
            self.checkpoints.retain(|_| {
                index += 1;
                index % 2 == 0
            });
        }
        self.checkpoints.push_back((last_seq, now));
    }

    /// How long, at least, mutation `oldest` has existed at `now` (zero when it is newer than
    /// every note); forgets the notes of older mutations. `None`: nothing is pending.
    pub(crate) fn age(&mut self, oldest: Option<u64>, now: Instant) -> Duration {
        let Some(oldest) = oldest else {
            return Duration::ZERO;
        };
        while self
            .checkpoints
            .front()
            .is_some_and(|&(seq, _)| seq < oldest)
        {
            self.checkpoints.pop_front();
        }
        self.checkpoints
            .front()
            .map_or(Duration::ZERO, |&(_, when)| {
                now.saturating_duration_since(when)
            })
    }
}

/// A write the backend refused for good, as reported to the handler set with
/// [`StoreBuilder::on_refused`](crate::StoreBuilder::on_refused).
///
/// The store has forgotten the key's pending state by then (the next read goes to the
/// backend), counted the refusal in [`Stats::rejected_writes`](crate::Stats::rejected_writes),
/// logged it, dead-lettered it when there is a journal, and will report it from the next
/// [`Store::flush`](crate::Store::flush) or [`Store::close`](crate::Store::close) that covers it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Refused {
    /// The key, as the store's caller built it (see [`Conflict::key`](crate::Conflict::key)).
    pub key: Key,
    /// The state the store tried to write (`None`: a delete), without the partition key
    /// attribute and versioned mode's attributes.
    pub state: Option<Arc<Item>>,
    /// Why: the backend's error, naming the key.
    pub error: Error,
}

impl Refused {
    /// The state the store tried to write, read as a `T`; `None` for a delete.
    ///
    /// # Errors
    ///
    /// [`Error::Serialize`] when the item does not fit `T`.
    pub fn state<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        self.state.as_deref().map(item::to_value).transpose()
    }
}

/// Called once per refused write, on the flusher's task: keep it short.
pub(crate) type RefusedHandler = Arc<dyn Fn(&Refused) + Send + Sync>;

/// The application's handlers, as given to the builder.
#[derive(Default)]
pub(crate) struct Handlers {
    pub on_conflict: Option<ConflictHandler>,
    pub on_refused: Option<RefusedHandler>,
}

/// Records a call's outcome in its span: `outcome` is `ok` or `error`, and `error` the
/// error's report.
pub(crate) fn record_outcome<T>(span: &tracing::Span, result: &Result<T, Error>) {
    match result {
        Ok(_) => {
            span.record("outcome", "ok");
        }
        Err(err) => {
            span.record("outcome", "error");
            span.record("error", tracing::field::display(err.report()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_come_from_the_first_note_covering_a_mutation() {
        let start = Instant::now();
        let at = |secs| start + Duration::from_secs(secs);
        let mut ages = Ages::default();
        assert_eq!(ages.age(None, at(0)), Duration::ZERO);
        ages.note(0, at(0));
        ages.note(10, at(1));
        ages.note(10, at(2)); // nothing new: the note at 1 s stands
        ages.note(25, at(3));
        // Mutation 5 was made between 0 s and 1 s: at least 9 s old at 10 s.
        assert_eq!(ages.age(Some(5), at(10)), Duration::from_secs(9));
        // Mutation 11 was made after 1 s, by 3 s.
        assert_eq!(ages.age(Some(11), at(10)), Duration::from_secs(7));
        // Older notes are gone: mutation 5 is not pending any more.
        assert_eq!(ages.checkpoints.len(), 1);
        // Newer than every note.
        assert_eq!(ages.age(Some(26), at(10)), Duration::ZERO);
    }

    #[test]
    fn ages_keep_a_bounded_number_of_notes() {
        let start = Instant::now();
        let mut ages = Ages::default();
        for seq in 1..=(3 * MAX_CHECKPOINTS as u64) {
            ages.note(seq, start + Duration::from_millis(seq));
        }
        assert!(ages.checkpoints.len() <= MAX_CHECKPOINTS);
        // Still a lower bound: mutation 1 is at least as old as its covering note says.
        let now = start + Duration::from_secs(100);
        let age = ages.age(Some(1), now);
        assert!(age <= Duration::from_secs(100) - Duration::from_millis(1));
        assert!(age > Duration::ZERO);
    }

    /// The README's and the crate docs' tables of metrics list exactly the metrics published,
    /// each with its kind: adding a counter to `stats::counters!` without its row fails here.
    #[test]
    fn the_documented_metrics_are_the_published_ones() -> std::io::Result<()> {
        let mut published: Vec<(String, &str)> = COUNTERS
            .iter()
            .map(|counter| (counter.metric.to_owned(), "counter"))
            .chain(
                GAUGES
                    .iter()
                    .map(|(name, _, _)| (name.to_string(), "gauge")),
            )
            .chain(
                HISTOGRAMS
                    .iter()
                    .map(|(name, _, _)| (name.to_string(), "histogram")),
            )
            .collect();
        published.sort();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        for file in ["README.md", "src/lib.rs"] {
            let text = std::fs::read_to_string(root.join(file))?;
            let mut documented: Vec<(String, &str)> = text
                .lines()
                .map(|line| line.trim_start_matches("//!").trim())
                .filter_map(|row| {
                    let mut cells = row.strip_prefix("| `quickstore_")?.split('|');
                    let name = cells.next()?.trim().trim_end_matches('`');
                    let kind = match cells.next()?.trim() {
                        "counter" => "counter",
                        "gauge" => "gauge",
                        "histogram" => "histogram",
                        _ => return None,
                    };
                    Some((format!("quickstore_{name}"), kind))
                })
                .collect();
            documented.sort();
            assert_eq!(documented, published, "the metrics table of {file}");
        }
        Ok(())
    }

    #[test]
    fn every_metric_is_described_once() {
        let mut names: Vec<&str> = COUNTERS
            .iter()
            .map(|counter| counter.metric)
            .chain(GAUGES.iter().chain(HISTOGRAMS).map(|(name, _, _)| *name))
            .collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count);
        assert!(names.iter().all(|name| name.starts_with("quickstore_")));
    }
}
