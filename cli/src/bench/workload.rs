//! What a benchmark does: the items it writes, its load phase, and its run phase of reads and
//! upserts (or counter increments), through the store or straight to the backend, for a number
//! of operations or a time, as fast as possible or at a target rate.

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures_util::stream::{self, StreamExt as _, TryStreamExt as _};
use indicatif::{ProgressBar, ProgressStyle};
use quickstore::backend::{Backend, Write, MAX_BATCH_GET_KEYS};
use quickstore::{AttributeValue, Delta, Item, Key, Store};
use rand::distr::Alphanumeric;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng as _};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::bench::keys::{KeyChooser, KeyDistribution};
use crate::bench::latency::Recorder;
use crate::bench::timeline::Timeline;

/// How many operations a task runs between progress updates.
const PROGRESS_EVERY: u64 = 256;

/// The number attribute each increment of `--workload k` adds 1 to.
pub const COUNTER: &str = "hits";

/// Read requests kept in flight while the counters are summed.
const SUM_IN_FLIGHT: usize = 8;

/// The value stored under every benchmark key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The index of the item, also its key's identifier.
    id: u64,
    /// 0 when loaded, then counting up with each upsert by a task.
    version: u64,
    /// The task that wrote this state.
    writer: u32,
    /// A short label.
    name: String,
    /// Filler of `--value-size` bytes.
    payload: String,
}

impl Record {
    fn new(id: u64, version: u64, writer: u32, payload: &str) -> Self {
        Self {
            id,
            version,
            writer,
            name: format!("item {id}"),
            payload: payload.to_owned(),
        }
    }

    /// The record as a DynamoDB item under `key`, as a write-through client would write it.
    fn item(&self, partition_key: &str, key: &Key) -> Item {
        let n = |v: u64| AttributeValue::N(v.to_string());
        Item::from([
            (
                partition_key.to_owned(),
                AttributeValue::S(key.as_str().to_owned()),
            ),
            ("id".to_owned(), n(self.id)),
            ("version".to_owned(), n(self.version)),
            ("writer".to_owned(), n(u64::from(self.writer))),
            ("name".to_owned(), AttributeValue::S(self.name.clone())),
            (
                "payload".to_owned(),
                AttributeValue::S(self.payload.clone()),
            ),
        ])
    }
}

/// The DynamoDB size of the smallest item a run writes under `key` (item 0's, with a payload
/// of `value_size` bytes), with a [`COUNTER`] when `counter`: what a write-through client
/// would be billed by for each read and write of it.
pub fn item_bytes(partition_key: &str, key: &Key, value_size: usize, counter: bool) -> u64 {
    let payload = "x".repeat(value_size);
    let mut item = Record::new(0, 0, 0, &payload).item(partition_key, key);
    if counter {
        item.insert(COUNTER.to_owned(), AttributeValue::N("1".to_owned()));
    }
    quickstore::item_size(&item) as u64
}

/// A new state of item `index` under `key`, as a write straight to the backend.
pub fn final_state(index: u64, payload: &str, partition_key: &str, key: &Key) -> Write {
    Write::Put(Record::new(index, u64::MAX, 0, payload).item(partition_key, key))
}

/// Where the run phase sends its operations.
#[derive(Clone)]
pub enum Via {
    /// Through the store.
    Store(Store),
    /// Straight to the backend: each read a `GetItem`, each upsert a one-item write, each
    /// increment an `UpdateItem`.
    Direct {
        /// The backend.
        backend: Arc<dyn Backend>,
        /// The table's partition key attribute.
        partition_key: Arc<str>,
        /// Whether reads are strongly consistent.
        consistent: bool,
    },
}

impl Via {
    /// Reads `key`; whether an item was there, and if so whether it was item `index`.
    async fn read(&self, key: &Key, index: u64) -> anyhow::Result<bool> {
        match self {
            Via::Store(store) => match store.get::<Record>(key).await? {
                Some(record) if record.id == index => Ok(true),
                Some(record) => bail!("`{key}` read back item {}", record.id),
                None => Ok(false),
            },
            Via::Direct {
                backend,
                partition_key,
                consistent,
            } => {
                let item = backend
                    .get(partition_key, key.as_str(), *consistent)
                    .await?;
                Ok(item.is_some())
            }
        }
    }

    /// Upserts `record` under `key`, until it is written (direct) or acknowledged (store).
    async fn upsert(&self, key: &Key, record: &Record) -> anyhow::Result<()> {
        match self {
            Via::Store(store) => Ok(store.upsert(key, record).await?),
            Via::Direct {
                backend,
                partition_key,
                ..
            } => {
                let write = Write::Put(record.item(partition_key, key));
                Ok(write_all(&**backend, partition_key, vec![write]).await?)
            }
        }
    }

    /// Adds 1 to `key`'s [`COUNTER`], until it is acknowledged (store) or written (direct:
    /// one `UpdateItem`).
    async fn increment(&self, key: &Key) -> anyhow::Result<()> {
        let delta = Delta::new().add(COUNTER, 1);
        match self {
            Via::Store(store) => Ok(store.apply(key, delta).await?),
            Via::Direct {
                backend,
                partition_key,
                ..
            } => {
                backend
                    .update(partition_key, key.as_str(), &delta, None)
                    .await?;
                Ok(())
            }
        }
    }
}

/// The sum of the [`COUNTER`]s of the items under `keys`, read straight from `backend` with
/// strongly consistent `BatchGetItem`s (an absent item or attribute counts as 0).
pub async fn sum_counters(
    backend: &dyn Backend,
    partition_key: &str,
    keys: &[Key],
) -> anyhow::Result<i64> {
    let names: Vec<String> = keys.iter().map(|key| key.as_str().to_owned()).collect();
    let sums: Vec<i64> = stream::iter(names.chunks(MAX_BATCH_GET_KEYS))
        .map(|chunk| sum_chunk(backend, partition_key, chunk.to_vec()))
        .buffer_unordered(SUM_IN_FLIGHT)
        .try_collect()
        .await?;
    sums.into_iter()
        .try_fold(0i64, i64::checked_add)
        .context("the counters' sum overflows")
}

/// The sum of the [`COUNTER`]s of the items under `names` (at most a batch), asking again for
/// what the backend leaves unprocessed after a backoff (1 ms, doubling up to 100 ms).
async fn sum_chunk(
    backend: &dyn Backend,
    partition_key: &str,
    mut names: Vec<String>,
) -> anyhow::Result<i64> {
    let mut sum = 0i64;
    let mut delay = Duration::from_millis(1);
    while !names.is_empty() {
        let got = backend
            .batch_get(partition_key, &names, true)
            .await
            .context("cannot read the counters back")?;
        for item in &got.items {
            sum = sum
                .checked_add(counter(item)?)
                .context("the counters' sum overflows")?;
        }
        if !got.unprocessed.is_empty() {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(100));
        }
        names = got.unprocessed;
    }
    Ok(sum)
}

/// The [`COUNTER`] of `item`: 0 when absent, an error when it is not a whole number.
fn counter(item: &Item) -> anyhow::Result<i64> {
    match item.get(COUNTER) {
        None => Ok(0),
        Some(AttributeValue::N(n)) => n
            .parse()
            .with_context(|| format!("the counter `{COUNTER}` holds {n}, not a whole number")),
        Some(other) => bail!("the counter `{COUNTER}` holds {other:?}, not a number"),
    }
}

/// Writes `writes` (at most a batch) straight to `backend`, re-sending what it leaves
/// unprocessed after a backoff (1 ms, doubling up to 100 ms), until all are written.
pub async fn write_all(
    backend: &dyn Backend,
    partition_key: &str,
    mut writes: Vec<Write>,
) -> quickstore::Result<()> {
    let mut delay = Duration::from_millis(1);
    loop {
        let unprocessed = backend.batch_write(partition_key, &writes).await?;
        if unprocessed.is_empty() {
            return Ok(());
        }
        writes = unprocessed
            .into_iter()
            .filter_map(|index| writes.get(index).cloned())
            .collect();
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(100));
    }
}

/// A random alphanumeric string of `len` bytes.
pub fn random_payload(rng: &mut impl Rng, len: usize) -> String {
    rng.sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// The RNG of one task in one phase: distinct, reproducible streams from one seed.
pub fn task_rng(seed: u64, phase: u64, task: u32) -> StdRng {
    StdRng::seed_from_u64(
        seed ^ phase.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(task).rotate_left(32),
    )
}

/// The indices `task` handles when `count` items are split across `tasks` tasks.
pub fn share(count: u64, tasks: u32, task: u32) -> u64 {
    let (tasks, task) = (u64::from(tasks), u64::from(task));
    count / tasks + u64::from(task < count % tasks)
}

/// A progress bar on stderr, hidden when quiet or when stderr is not a terminal.
fn progress_bar(len: u64, label: &'static str, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template("{prefix:>6} {wide_bar} {msg} eta {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::new(len).with_style(style).with_prefix(label)
}

/// A spinner on stderr for a step of unknown length, hidden like [`progress_bar`].
pub fn spinner(message: &'static str, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let spinner = ProgressBar::new_spinner().with_message(message);
    spinner.enable_steady_tick(Duration::from_millis(100));
    spinner
}

/// Waits for every task, failing on the first error (the others are then cancelled).
async fn join_all<T: 'static>(mut tasks: JoinSet<anyhow::Result<T>>) -> anyhow::Result<Vec<T>> {
    let mut results = Vec::with_capacity(tasks.len());
    while let Some(joined) = tasks.join_next().await {
        results.push(joined.context("a benchmark task failed")??);
    }
    Ok(results)
}

/// What the load phase did.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Items inserted.
    pub inserted: u64,
    /// Items already there (a reused `--path` or table).
    pub existed: u64,
}

/// What the load phase needs to know.
#[derive(Debug, Clone, Copy)]
pub struct LoadPlan {
    /// Concurrent tasks.
    pub tasks: u32,
    /// Each task prefetches its next [`PREFETCH`] keys before inserting them.
    pub prefetch: bool,
    /// Bytes of payload per item.
    pub value_size: usize,
    /// Seed of the payloads.
    pub seed: u64,
    /// No progress bar.
    pub quiet: bool,
}

/// Keys a loading task prefetches at once: one `BatchGetItem`.
const PREFETCH: usize = 100;

/// Inserts every key's item through `store`.
pub async fn load(store: &Store, keys: &Arc<[Key]>, plan: LoadPlan) -> anyhow::Result<Loaded> {
    let bar = progress_bar(u64::try_from(keys.len())?, "load", plan.quiet);
    bar.set_message("inserting");
    let step = usize::try_from(plan.tasks)?;
    let mut tasks = JoinSet::new();
    for task in 0..plan.tasks {
        let (store, keys, bar) = (store.clone(), Arc::clone(keys), bar.clone());
        let mut rng = task_rng(plan.seed, 0, task);
        let payload = random_payload(&mut rng, plan.value_size);
        let first = usize::try_from(task)?;
        let prefetch = plan.prefetch;
        tasks.spawn(async move {
            let mut loaded = Loaded::default();
            let mine: Vec<(usize, &Key)> =
                keys.iter().enumerate().skip(first).step_by(step).collect();
            for (done, &(index, key)) in mine.iter().enumerate() {
                if prefetch && done % PREFETCH == 0 {
                    let next = mine[done..].iter().take(PREFETCH).map(|&(_, key)| key);
                    store
                        .prefetch(next)
                        .await
                        .context("cannot prefetch the keys to insert")?;
                }
                let record = Record::new(u64::try_from(index)?, 0, task, &payload);
                match store.insert(key, &record).await {
                    Ok(()) => loaded.inserted += 1,
                    Err(quickstore::Error::ItemExisted { .. }) => loaded.existed += 1,
                    Err(err) => return Err(err).with_context(|| format!("cannot insert `{key}`")),
                }
                bar.inc(1);
            }
            Ok(loaded)
        });
    }
    let results = join_all(tasks).await;
    bar.finish_and_clear();
    Ok(results?
        .into_iter()
        .fold(Loaded::default(), |total, task| Loaded {
            inserted: total.inserted + task.inserted,
            existed: total.existed + task.existed,
        }))
}

/// How long a run phase lasts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Length {
    /// This many operations in all, split evenly across the tasks.
    Ops(u64),
    /// Until this much time has passed.
    For(Duration),
}

/// The run phase's operations.
#[derive(Debug, Clone)]
pub struct RunPlan {
    /// How long it lasts.
    pub length: Length,
    /// The target rate over all tasks in operations per second; `None` for as fast as the
    /// tasks go (a closed loop).
    pub rate: Option<f64>,
    /// Concurrent tasks.
    pub tasks: u32,
    /// Fraction of operations that are reads.
    pub read_ratio: f64,
    /// Every operation adds 1 to its key's [`COUNTER`] (`--workload k`) instead of reading or
    /// upserting it.
    pub increments: bool,
    /// How keys are picked.
    pub distribution: KeyDistribution,
    /// Bytes of payload per upsert.
    pub value_size: usize,
    /// Seed of the random choices.
    pub seed: u64,
    /// Which phase this is, so that a warm-up and the measured run draw different keys.
    pub phase: u64,
    /// The label of the progress bar (empty: no progress bar).
    pub label: &'static str,
}

/// What a run phase did.
#[derive(Debug, Clone)]
pub struct Ran {
    /// Latencies of reads.
    pub reads: Recorder,
    /// Latencies of upserts.
    pub writes: Recorder,
    /// Latencies of counter increments (`--workload k`).
    pub increments: Recorder,
    /// Reads that found no item.
    pub not_found: u64,
    /// Completed operations over time.
    pub timeline: Timeline,
    /// From the first operation's start to the last one's end.
    pub elapsed: Duration,
    /// With a target rate: how late, at worst, an operation started against its schedule.
    pub behind: Duration,
}

impl Ran {
    /// Nothing done yet.
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self {
            reads: Recorder::new()?,
            writes: Recorder::new()?,
            increments: Recorder::new()?,
            not_found: 0,
            timeline: Timeline::default(),
            elapsed: Duration::ZERO,
            behind: Duration::ZERO,
        })
    }

    /// Operations completed.
    pub fn ops(&self) -> u64 {
        self.reads.count() + self.writes.count() + self.increments.count()
    }

    fn merge(&mut self, other: Ran) {
        self.reads.merge(other.reads);
        self.writes.merge(other.writes);
        self.increments.merge(other.increments);
        self.not_found += other.not_found;
        self.timeline.merge(&other.timeline);
        self.behind = self.behind.max(other.behind);
    }
}

/// Runs reads and upserts (or increments) over `keys` as `plan` says, from `plan.tasks` tasks.
///
/// Latencies are each operation's own, from its start to its end. With a target rate, each
/// task starts its operations on a fixed schedule and [`Ran::behind`] says how late the latest
/// one started: a store that cannot keep up shows there and in the achieved rate.
pub async fn run_ops(via: &Via, keys: &Arc<[Key]>, plan: &RunPlan) -> anyhow::Result<Ran> {
    let chooser = KeyChooser::new(plan.distribution, u64::try_from(keys.len())?)
        .context("there are no keys to run operations on")?;
    let done = Arc::new(AtomicU64::new(0));
    let progress = Progress::start(plan, Arc::clone(&done));
    let period = plan
        .rate
        .map(|rate| Duration::from_secs_f64(f64::from(plan.tasks) / rate));
    let started = Instant::now();
    let deadline = match plan.length {
        Length::For(time) => Some(started + time),
        Length::Ops(_) => None,
    };
    let mut tasks = JoinSet::new();
    for task in 0..plan.tasks {
        let (via, keys, done) = (via.clone(), Arc::clone(keys), Arc::clone(&done));
        let chooser = chooser.clone();
        let ops = match plan.length {
            Length::Ops(ops) => share(ops, plan.tasks, task),
            Length::For(_) => u64::MAX,
        };
        let (read_ratio, increments) = (plan.read_ratio, plan.increments);
        let mut rng = task_rng(plan.seed, plan.phase, task);
        let payload = random_payload(&mut rng, plan.value_size);
        tasks.spawn(async move {
            let mut ran = Ran::new()?;
            let mut version = 0;
            for op in 0..ops {
                if let Some(period) = period {
                    let due = started + period.mul_f64(op as f64);
                    let now = Instant::now();
                    if due > now {
                        tokio::time::sleep_until(due.into()).await;
                    } else {
                        ran.behind = ran.behind.max(now - due);
                    }
                }
                if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                    break;
                }
                let index = chooser.choose(&mut rng);
                let key = keys
                    .get(usize::try_from(index)?)
                    .context("the key chooser went out of range")?;
                let began = Instant::now();
                if increments {
                    via.increment(key)
                        .await
                        .with_context(|| format!("cannot increment `{key}`"))?;
                    let ended = Instant::now();
                    ran.increments.record(ended - began);
                    ran.timeline.record(ended - started);
                } else if rng.random_bool(read_ratio) {
                    let found = via
                        .read(key, index)
                        .await
                        .with_context(|| format!("cannot read `{key}`"))?;
                    let ended = Instant::now();
                    ran.reads.record(ended - began);
                    ran.timeline.record(ended - started);
                    ran.not_found += u64::from(!found);
                } else {
                    version += 1;
                    let record = Record::new(index, version, task, &payload);
                    via.upsert(key, &record)
                        .await
                        .with_context(|| format!("cannot upsert `{key}`"))?;
                    let ended = Instant::now();
                    ran.writes.record(ended - began);
                    ran.timeline.record(ended - started);
                }
                if (op + 1) % PROGRESS_EVERY == 0 {
                    done.fetch_add(PROGRESS_EVERY, Ordering::Relaxed);
                }
            }
            Ok(ran)
        });
    }
    let results = join_all(tasks).await;
    let elapsed = started.elapsed();
    progress.finish();
    let mut results = results?.into_iter();
    let mut total = results.next().context("no task ran")?;
    for ran in results {
        total.merge(ran);
    }
    total.elapsed = elapsed;
    Ok(total)
}

/// A progress bar kept up to date from a counter of completed operations, by its own task.
struct Progress {
    bar: ProgressBar,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// Starts showing the progress of `plan`'s run, whose tasks count into `done`.
    fn start(plan: &RunPlan, done: Arc<AtomicU64>) -> Self {
        let len = match plan.length {
            Length::Ops(ops) => ops,
            Length::For(time) => u64::try_from(time.as_millis()).unwrap_or(u64::MAX),
        };
        let bar = progress_bar(len, plan.label, plan.label.is_empty());
        if bar.is_hidden() {
            return Self { bar, ticker: None };
        }
        let (length, shown) = (plan.length, bar.clone());
        let ticker = tokio::spawn(async move {
            let started = Instant::now();
            let mut ticks = tokio::time::interval(Duration::from_millis(250));
            let (mut last_ops, mut last_at) = (0, started);
            loop {
                ticks.tick().await;
                let (ops, now) = (done.load(Ordering::Relaxed), Instant::now());
                let rate = (ops - last_ops) as f64 / (now - last_at).as_secs_f64().max(1e-9);
                (last_ops, last_at) = (ops, now);
                shown.set_position(match length {
                    Length::Ops(_) => ops,
                    Length::For(_) => u64::try_from(started.elapsed().as_millis()).unwrap_or(0),
                });
                shown.set_message(format!("{ops} ops, {rate:.0} ops/s"));
            }
        });
        Self {
            bar,
            ticker: Some(ticker),
        }
    }

    fn finish(self) {
        if let Some(ticker) = self.ticker {
            ticker.abort();
        }
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_and_differ_by_at_most_one() {
        for (count, tasks) in [(0, 3), (10, 3), (20_000, 8), (7, 8), (1, 1)] {
            let shares: Vec<u64> = (0..tasks).map(|task| share(count, tasks, task)).collect();
            assert_eq!(shares.iter().sum::<u64>(), count);
            let (min, max) = (shares.iter().min(), shares.iter().max());
            assert!(max.zip(min).is_some_and(|(max, min)| max - min <= 1));
        }
    }

    #[test]
    fn task_streams_are_reproducible_and_distinct() {
        let draw = |seed, phase, task| task_rng(seed, phase, task).random::<u64>();
        assert_eq!(draw(42, 1, 3), draw(42, 1, 3));
        assert_ne!(draw(42, 1, 3), draw(42, 1, 4));
        assert_ne!(draw(42, 0, 3), draw(42, 1, 3));
        assert_ne!(draw(42, 1, 3), draw(43, 1, 3));
    }

    #[test]
    fn payloads_have_the_requested_size() {
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(random_payload(&mut rng, 100).len(), 100);
        assert_eq!(random_payload(&mut rng, 0), "");
    }

    #[test]
    fn the_direct_item_has_the_key_under_the_partition_key() -> anyhow::Result<()> {
        let key = Key::new("BenchItem", "7")?;
        let item = Record::new(7, 1, 0, "xy").item("pk", &key);
        assert_eq!(
            item.get("pk"),
            Some(&AttributeValue::S(key.as_str().to_owned()))
        );
        assert_eq!(item.get("payload"), Some(&AttributeValue::S("xy".into())));
        Ok(())
    }
}
