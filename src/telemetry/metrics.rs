//! The metrics the store records through the [`metrics`](::metrics) facade: their names, units
//! and descriptions, and their publication.
//!
//! Metrics cost nothing on a cache hit or an acknowledgement: the counters those paths keep
//! already are published from the store's [`Stats`] as absolute totals by the flusher, every
//! [`PUBLISH_INTERVAL`] and when the store closes, together with the gauges. Only requests to
//! the backend record their own figures (histograms): the flusher's batches once per batch,
//! and reads once per read request. The names, kinds and
//! meanings are in the README's "Operations" section and the crate docs; keep the three in
//! step (the `metrics` test checks that every documented name is recorded).

use std::time::Duration;

use ::metrics::{Counter, Gauge, Histogram, Label, Unit};

use crate::stats::{Scope, Stats, COUNTERS};

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
/// The read requests allowed in flight for loads now.
pub(crate) const READ_LIMIT: &str = "quickstore_read_limit";

/// How long each flush batch took, from its first request to its last answer.
pub(crate) const FLUSH_BATCH_SECONDS: &str = "quickstore_flush_batch_seconds";
/// Writes in each flush batch.
pub(crate) const FLUSH_BATCH_WRITES: &str = "quickstore_flush_batch_writes";
/// Keys asked for in each read request.
pub(crate) const READ_REQUEST_KEYS: &str = "quickstore_read_request_keys";

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
        READ_LIMIT,
        Unit::Count,
        "Read requests allowed in flight for loads now (lowered while the backend slows down)",
    ),
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
    (
        READ_REQUEST_KEYS,
        Unit::Count,
        "Keys asked for in each GetItem (1) or BatchGetItem request, retries included",
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
        ::metrics::counter!(name, self.labels.iter())
    }

    fn gauge(&self, name: &'static str) -> Gauge {
        ::metrics::gauge!(name, self.labels.iter())
    }

    pub(crate) fn histogram(&self, name: &'static str) -> Histogram {
        ::metrics::histogram!(name, self.labels.iter())
    }

    /// Gives the installed recorder every metric's unit and description.
    pub(crate) fn describe(&self) {
        for counter in COUNTERS {
            ::metrics::describe_counter!(counter.metric, Unit::Count, counter.help);
        }
        for &(name, unit, description) in GAUGES {
            ::metrics::describe_gauge!(name, unit, description);
        }
        for &(name, unit, description) in HISTOGRAMS {
            ::metrics::describe_histogram!(name, unit, description);
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
        self.gauge(READ_LIMIT).set(stats.read_limit as f64);
        if gauges.journaled {
            self.gauge(JOURNAL_BYTES).set(stats.journal_bytes as f64);
            self.gauge(JOURNAL_SEGMENTS)
                .set(stats.journal_segments as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
