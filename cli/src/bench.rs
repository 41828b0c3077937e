//! `quickstore bench`: load items, run a mix of reads and upserts over them from concurrent
//! tasks, drain the store, and report throughput, latency and the store's counters.

use std::fmt::{self, Write as _};
use std::io::IsTerminal as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use quickstore::{
    AttributeValue, Backend, Backpressure, Item, Key, Stats, Store, StoreBuilder, Write,
};
use rand::distr::Alphanumeric;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng as _};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::backend::{self, BackendArgs, Unspecified, PARTITION_KEY};
use crate::cost::{Bill, Prices, Units};
use crate::drain::drain;
use crate::keys::{KeyChooser, KeyDistribution};
use crate::latency::{Recorder, Summary};
use crate::meter::Metered;
use crate::print;

/// The kind of the keys the benchmark writes.
const KIND: &str = "BenchItem";

/// How many operations a task runs between progress bar updates.
const PROGRESS_EVERY: u64 = 256;

/// How long a mutation waits for room when the store has too many pending keys.
const PENDING_WAIT_LIMIT: Duration = Duration::from_secs(60);

/// What to compare the store with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Compare {
    /// Plain backend calls: write-through, no cache.
    Direct,
}

/// Where the run phase sends its operations.
#[derive(Clone)]
enum Via {
    /// Through the store.
    Store(Store),
    /// Straight to the backend.
    Direct(Arc<dyn Backend>),
}

impl Record {
    /// The record as a DynamoDB item under `key`, as a write-through client would write it.
    fn item(&self, key: &Key) -> Item {
        let n = |v: u64| AttributeValue::N(v.to_string());
        Item::from([
            (
                PARTITION_KEY.to_owned(),
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

impl Via {
    /// Reads `key`; whether an item was there, and if so whether it was item `index`.
    async fn read(&self, key: &Key, index: u64) -> anyhow::Result<bool> {
        match self {
            Via::Store(store) => match store.get::<Record>(key).await? {
                Some(record) if record.id == index => Ok(true),
                Some(record) => bail!("`{key}` read back item {}", record.id),
                None => Ok(false),
            },
            Via::Direct(backend) => {
                let item = backend.get(PARTITION_KEY, key.as_str(), true).await?;
                Ok(item.is_some())
            }
        }
    }

    /// Upserts `record` under `key`, until it is written.
    async fn upsert(&self, key: &Key, record: &Record) -> anyhow::Result<()> {
        match self {
            Via::Store(store) => Ok(mutate(store, key, record, Mutation::Upsert).await?),
            Via::Direct(backend) => {
                let writes = [Write::Put(record.item(key))];
                let mut delay = Duration::from_millis(1);
                while !backend
                    .batch_write(PARTITION_KEY, &writes)
                    .await?
                    .is_empty()
                {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_millis(100));
                }
                Ok(())
            }
        }
    }
}

/// The named workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// Insert every item; no run phase.
    Load,
    /// 50% gets, 50% upserts.
    A,
    /// 95% gets, 5% upserts.
    B,
    /// Gets only.
    C,
    /// Upserts only.
    W,
    /// Gets only, through a cache a tenth of the data set.
    U,
}

impl BenchArgs {
    /// The arguments with the named workload's settings applied.
    fn with_workload(mut self) -> Self {
        let Some(workload) = self.workload else {
            return self;
        };
        self.read_ratio = match workload {
            Workload::Load => self.read_ratio,
            Workload::A => 0.5,
            Workload::B => 0.95,
            Workload::C | Workload::U => 1.0,
            Workload::W => 0.0,
        };
        match workload {
            Workload::Load => self.ops = 0,
            Workload::U if self.cache_bytes.is_none() => {
                let data = self.items * (self.value_size as u64 + ITEM_OVERHEAD_ESTIMATE);
                self.cache_bytes = Some((data / 10).max(64 * 1024));
            }
            _ => {}
        }
        self
    }
}

/// Bytes an item weighs in the cache besides its payload: attribute names, the other fields,
/// the key and the entry's overhead (a rough figure, to size workload `u`'s cache).
const ITEM_OVERHEAD_ESTIMATE: u64 = 150;

/// Options of `quickstore bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Items inserted in the load phase; the run phase touches these.
    #[arg(long, value_name = "N", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub items: u64,

    /// Bytes of payload in each item's value.
    #[arg(long, value_name = "BYTES", default_value_t = 100)]
    pub value_size: usize,

    /// Operations in the run phase, split evenly across the tasks.
    #[arg(long, value_name = "M", default_value_t = 100_000)]
    pub ops: u64,

    /// Concurrent Tokio tasks issuing operations, in both phases.
    #[arg(long, value_name = "T", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub tasks: u32,

    /// A named workload, setting the read ratio (and, for `u`, the cache size): `load` inserts
    /// only; `a` 50% gets, 50% upserts; `b` 95/5; `c` gets only; `w` upserts only; `u` gets
    /// with a cache a tenth of the data, so that misses happen.
    #[arg(long, value_enum)]
    pub workload: Option<Workload>,

    /// Fraction of run-phase operations that are reads (`get`); the rest are upserts.
    #[arg(long, value_name = "RATIO", default_value_t = 0.9, value_parser = parse_ratio)]
    pub read_ratio: f64,

    /// How run-phase operations pick their keys.
    #[arg(long, value_enum, default_value_t = KeyDistribution::Zipf)]
    pub distribution: KeyDistribution,

    /// Seed of the random choices (keys, reads or writes, payloads).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// Cache capacity in bytes for clean entries (default: the library's); a cache smaller
    /// than the data set turns reads into misses.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub cache_bytes: Option<u64>,

    /// Fail a flush or close that makes no progress (nothing written, retried or settled)
    /// for this many seconds, rather than wait forever.
    #[arg(long, value_name = "SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub stall_timeout: u64,

    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,

    /// After the report, print the store's final statistics as one line of JSON (the library's
    /// `Stats`: counters since the store opened, such as hits, misses, mutations,
    /// items_written, write_requests, retries, throttles, rejected_writes and conflicts; and
    /// gauges as the store closed, such as pending, cached_entries and cached_bytes). For
    /// scripts: `quickstore bench --metrics | tail -n 1`.
    #[arg(long)]
    pub metrics: bool,

    /// After the store's run, run the same operations (same keys, same mix, same seeds)
    /// straight against the backend, as a write-through client with no cache would: each read
    /// a `GetItem`, each upsert a one-item write. The report puts both side by side.
    #[arg(long, value_enum)]
    pub compare: Option<Compare>,

    /// Print the whole report as one JSON document instead of text (field names are stable;
    /// docs/BENCHMARKS.md lists them). Durations are in seconds, latencies in microseconds.
    #[arg(long)]
    pub json: bool,

    /// Where the items live.
    #[command(
        flatten,
        next_help_heading = "Backend (default: an embedded database in a temporary directory)"
    )]
    pub backend: BackendArgs,
}

/// Parses a fraction between 0 and 1.
fn parse_ratio(text: &str) -> Result<f64, String> {
    let ratio: f64 = text.parse().map_err(|err| format!("{err}"))?;
    if (0.0..=1.0).contains(&ratio) {
        Ok(ratio)
    } else {
        Err(format!("{ratio} is not between 0 and 1"))
    }
}

/// The value stored under every benchmark key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
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
}

/// A random alphanumeric string of `len` bytes.
fn random_payload(rng: &mut impl Rng, len: usize) -> String {
    rng.sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// The RNG of one task in one phase: distinct, reproducible streams from one seed.
fn task_rng(seed: u64, phase: u64, task: u32) -> StdRng {
    StdRng::seed_from_u64(
        seed ^ phase.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(task).rotate_left(32),
    )
}

/// The kinds of mutation the benchmark makes.
#[derive(Debug, Clone, Copy)]
enum Mutation {
    /// `Store::insert`.
    Insert,
    /// `Store::upsert`.
    Upsert,
}

/// Applies a mutation; the store waits for room when too many writes are pending.
async fn mutate(
    store: &Store,
    key: &Key,
    record: &Record,
    mutation: Mutation,
) -> quickstore::Result<()> {
    match mutation {
        Mutation::Insert => store.insert(key, record).await,
        Mutation::Upsert => store.upsert(key, record).await,
    }
}

/// A progress bar on stderr, hidden when quiet or when stderr is not a terminal.
fn progress_bar(len: u64, label: &'static str, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template(
        "{prefix:>6} {wide_bar} {human_pos}/{human_len} {per_sec:0} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::new(len).with_style(style).with_prefix(label)
}

/// A spinner on stderr for a step of unknown length, hidden like [`progress_bar`].
fn spinner(message: &'static str, quiet: bool) -> ProgressBar {
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

/// The indices `task` handles when `count` items are split across `tasks` tasks.
fn share(count: u64, tasks: u32, task: u32) -> u64 {
    let (tasks, task) = (u64::from(tasks), u64::from(task));
    count / tasks + u64::from(task < count % tasks)
}

/// What the load phase did.
#[derive(Debug, Default)]
struct Loaded {
    /// Items inserted.
    inserted: u64,
    /// Items already there (a reused `--path` or table).
    existed: u64,
}

/// Inserts every item, from `args.tasks` tasks.
async fn load(store: &Store, keys: &Arc<[Key]>, args: &BenchArgs) -> anyhow::Result<Loaded> {
    let bar = progress_bar(args.items, "load", args.quiet);
    let step = usize::try_from(args.tasks)?;
    let mut tasks = JoinSet::new();
    for task in 0..args.tasks {
        let (store, keys, bar) = (store.clone(), Arc::clone(keys), bar.clone());
        let mut rng = task_rng(args.seed, 0, task);
        let payload = random_payload(&mut rng, args.value_size);
        let first = usize::try_from(task)?;
        tasks.spawn(async move {
            let mut loaded = Loaded::default();
            for (index, key) in keys.iter().enumerate().skip(first).step_by(step) {
                let record = Record::new(u64::try_from(index)?, 0, task, &payload);
                match mutate(&store, key, &record, Mutation::Insert).await {
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

/// What the run phase did, per operation kind.
#[derive(Debug)]
struct Ran {
    /// Latencies of reads.
    reads: Recorder,
    /// Latencies of upserts.
    writes: Recorder,
    /// Reads that found no item.
    not_found: u64,
}

/// Runs `args.ops` reads and upserts over the loaded keys, from `args.tasks` tasks.
async fn run_ops(via: &Via, keys: &Arc<[Key]>, args: &BenchArgs) -> anyhow::Result<Ran> {
    let chooser = KeyChooser::new(args.distribution, u64::try_from(keys.len())?)
        .context("there are no keys to run operations on")?;
    let bar = progress_bar(args.ops, "run", args.quiet);
    let mut tasks = JoinSet::new();
    for task in 0..args.tasks {
        let (via, keys, bar) = (via.clone(), Arc::clone(keys), bar.clone());
        let chooser = chooser.clone();
        let ops = share(args.ops, args.tasks, task);
        let read_ratio = args.read_ratio;
        let mut rng = task_rng(args.seed, 1, task);
        let payload = random_payload(&mut rng, args.value_size);
        tasks.spawn(async move {
            let mut ran = Ran {
                reads: Recorder::new()?,
                writes: Recorder::new()?,
                not_found: 0,
            };
            let mut version = 0;
            for done in 1..=ops {
                let index = chooser.choose(&mut rng);
                let key = keys
                    .get(usize::try_from(index)?)
                    .context("the key chooser went out of range")?;
                if rng.random_bool(read_ratio) {
                    let started = Instant::now();
                    let found = via
                        .read(key, index)
                        .await
                        .with_context(|| format!("cannot read `{key}`"))?;
                    ran.reads.record(started.elapsed());
                    if !found {
                        ran.not_found += 1;
                    }
                } else {
                    version += 1;
                    let record = Record::new(index, version, task, &payload);
                    let started = Instant::now();
                    via.upsert(key, &record)
                        .await
                        .with_context(|| format!("cannot upsert `{key}`"))?;
                    ran.writes.record(started.elapsed());
                }
                if done % PROGRESS_EVERY == 0 {
                    bar.inc(PROGRESS_EVERY);
                }
            }
            bar.inc(ops % PROGRESS_EVERY);
            Ok(ran)
        });
    }
    let results = join_all(tasks).await;
    bar.finish_and_clear();
    let mut results = results?.into_iter();
    let mut total = results.next().context("no task ran")?;
    for ran in results {
        total.reads.merge(ran.reads);
        total.writes.merge(ran.writes);
        total.not_found += ran.not_found;
    }
    Ok(total)
}

/// Runs `quickstore bench`.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let args = args.with_workload();
    let cache_bytes = args.cache_bytes;
    let configure = |builder: StoreBuilder| {
        let builder = builder.backpressure(Backpressure::Wait(PENDING_WAIT_LIMIT));
        match cache_bytes {
            Some(bytes) => builder.cache_capacity(bytes),
            None => builder,
        }
    };
    let opened = backend::open_store(&args.backend, Unspecified::Temporary, configure).await?;
    let store = opened.store;
    let keys: Arc<[Key]> = (0..args.items)
        .map(|index| Key::new(KIND, index.to_string()))
        .collect::<Result<_, _>>()?;

    let started = Instant::now();
    let loaded = load(&store, &keys, &args).await?;
    let load_acked = started.elapsed();
    let stall = Duration::from_secs(args.stall_timeout);
    let flushing = spinner("writing the loaded items", args.quiet);
    let flushed = drain(&store, "flushing the loaded items", stall, store.flush()).await;
    flushing.finish_and_clear();
    flushed?;
    let load_written = started.elapsed();
    let after_load = store.stats();
    let metered_after_load = opened.meter.metered();

    let started = Instant::now();
    let ran = run_ops(&Via::Store(store.clone()), &keys, &args).await?;
    let run_time = started.elapsed();

    let draining = spinner("flushing and closing", args.quiet);
    let started = Instant::now();
    let flushed = drain(&store, "the final flush", stall, store.flush()).await;
    let flush_time = started.elapsed();
    if flushed.is_err() {
        draining.finish_and_clear();
        return flushed;
    }
    let started = Instant::now();
    let closed = drain(&store, "closing the store", stall, store.close()).await;
    let close_time = started.elapsed();
    draining.finish_and_clear();
    closed?;
    let end = store.stats();
    let metered = opened.meter.metered().since(&metered_after_load);
    let direct = match args.compare {
        Some(Compare::Direct) => {
            let before = opened.meter.metered();
            let backend: Arc<dyn Backend> = opened.meter.clone();
            let started = Instant::now();
            let ran = run_ops(&Via::Direct(backend), &keys, &args).await?;
            Some(Direct {
                time: started.elapsed(),
                ran,
                metered: opened.meter.metered().since(&before),
            })
        }
        None => None,
    };

    let report = Report {
        args: &args,
        target: &opened.target,
        loaded,
        load_acked,
        load_written,
        run_time,
        flush_time,
        close_time,
        after_load,
        end,
        metered,
        consistent_reads: true,
        direct,
    };
    if args.json {
        let json =
            serde_json::to_string_pretty(&report.json(&ran)).context("cannot encode the report")?;
        print(&format!("{json}\n"))?;
    } else {
        print(&report.render(&ran)?)?;
    }
    if args.metrics {
        let json = serde_json::to_string(&report.end).context("cannot encode the statistics")?;
        print(&format!("{json}\n"))?;
    }
    if report.end.pending != 0 {
        bail!("{} keys were still pending after close", report.end.pending);
    }
    if report.end.rejected_writes != 0 {
        bail!("the backend refused {} writes", report.end.rejected_writes);
    }
    Ok(())
}

/// Per second, for throughput figures.
fn rate(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
}

/// Everything measured, for printing.
struct Report<'a> {
    /// The options the benchmark ran with.
    args: &'a BenchArgs,
    /// What the store ran against.
    target: &'a backend::Target,
    /// What the load phase did.
    loaded: Loaded,
    /// Until every insert was acknowledged.
    load_acked: Duration,
    /// Until every insert was written (the load phase's flush returned).
    load_written: Duration,
    /// The run phase.
    run_time: Duration,
    /// The final flush.
    flush_time: Duration,
    /// The close after it.
    close_time: Duration,
    /// The store's counters after the load phase.
    after_load: Stats,
    /// The store's counters after close.
    end: Stats,
    /// What the run and drain asked of the backend.
    metered: Metered,
    /// Whether the store's reads were strongly consistent (the library's default).
    consistent_reads: bool,
    /// The same run phase straight against the backend, with `--compare direct`.
    direct: Option<Direct>,
}

/// The run phase as a write-through client without a cache ran it.
struct Direct {
    ran: Ran,
    time: Duration,
    metered: Metered,
}

impl Report<'_> {
    /// The report as text.
    fn render(&self, ran: &Ran) -> Result<String, fmt::Error> {
        let mut out = String::new();
        let ran_ops = ran.reads.count() + ran.writes.count();
        let args = self.args;
        let cache = match args.cache_bytes {
            Some(bytes) => format!("{bytes} bytes"),
            None => "library default".to_owned(),
        };
        let workload = args
            .workload
            .and_then(|w| w.to_possible_value())
            .map(|v| format!(", workload {}", v.get_name()))
            .unwrap_or_default();
        writeln!(out, "quickstore bench on the {}{workload}", self.target)?;
        writeln!(
            out,
            "  {} items with {}-byte payloads; {} ops from {} tasks, {:.0}% reads, {} keys, \
             seed {}; cache {cache}",
            args.items,
            args.value_size,
            args.ops,
            args.tasks,
            args.read_ratio * 100.0,
            args.distribution,
            args.seed,
        )?;
        writeln!(out)?;

        let Loaded { inserted, existed } = self.loaded;
        let existed = if existed > 0 {
            format!(" ({existed} already present)")
        } else {
            String::new()
        };
        writeln!(
            out,
            "load   {inserted} items inserted{existed} in {:.1?}: {:.0} items/s acknowledged, \
             {:.0} items/s written ({:.1?})",
            self.load_acked,
            rate(args.items, self.load_acked),
            rate(args.items, self.load_written),
            self.load_written,
        )?;
        let (reads, writes) = (ran.reads.count(), ran.writes.count());
        let not_found = if ran.not_found > 0 {
            format!(" ({} not found)", ran.not_found)
        } else {
            String::new()
        };
        writeln!(
            out,
            "run    {} ops in {:.1?}: {:.0} ops/s; {reads} reads{not_found}, {writes} upserts",
            reads + writes,
            self.run_time,
            rate(reads + writes, self.run_time),
        )?;
        writeln!(
            out,
            "drain  flush {:.1?}, close {:.1?}",
            self.flush_time, self.close_time
        )?;
        writeln!(out)?;

        writeln!(
            out,
            "{:<8} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "latency", "count", "mean", "p50", "p99", "p99.9", "max"
        )?;
        for (name, summary) in [
            ("read", ran.reads.summary()),
            ("upsert", ran.writes.summary()),
        ] {
            match summary {
                Some(Summary {
                    count,
                    mean,
                    p50,
                    p99,
                    p999,
                    max,
                }) => writeln!(
                    out,
                    "{name:<8} {count:>9} {:>10} {:>10} {:>10} {:>10} {:>10}",
                    format!("{mean:.1?}"),
                    format!("{p50:.1?}"),
                    format!("{p99:.1?}"),
                    format!("{p999:.1?}"),
                    format!("{max:.1?}"),
                )?,
                None => writeln!(out, "{name:<8} {:>9}", 0)?,
            }
        }
        writeln!(out)?;

        let run = self.end.since(&self.after_load);
        let total = &self.end;
        writeln!(out, "{:<16} {:>10} {:>10}", "store", "run+drain", "total")?;
        let rows: [(&str, u64, u64); 8] = [
            ("hits", run.hits, total.hits),
            ("misses", run.misses, total.misses),
            ("backend reads", run.backend_reads, total.backend_reads),
            ("read requests", run.read_requests, total.read_requests),
            ("mutations", run.mutations, total.mutations),
            ("items written", run.items_written, total.items_written),
            ("write requests", run.write_requests, total.write_requests),
            ("retries", run.retries, total.retries),
        ];
        for (name, run, total) in rows {
            writeln!(out, "{name:<16} {run:>10} {total:>10}")?;
        }
        writeln!(
            out,
            "{:<16} {:>9.1}% {:>9.1}%",
            "hit ratio",
            run.hit_ratio() * 100.0,
            total.hit_ratio() * 100.0
        )?;
        writeln!(
            out,
            "{:<16} {:>10} {:>10}",
            "writes/mutation",
            per_mutation(&run),
            per_mutation(total)
        )?;
        writeln!(
            out,
            "at end: {} pending, {} rejected writes, {} entries cached ({} bytes)",
            total.pending, total.rejected_writes, total.cached_entries, total.cached_bytes
        )?;
        writeln!(out)?;
        self.render_cost(&mut out, ran_ops)?;
        if let Some(direct) = &self.direct {
            writeln!(out)?;
            self.render_compare(&mut out, ran, direct)?;
        }
        Ok(out)
    }

    /// The store's run beside the same run straight against the backend.
    fn render_compare(&self, out: &mut String, ran: &Ran, direct: &Direct) -> fmt::Result {
        let prices = Prices::default();
        let ops = ran.reads.count() + ran.writes.count();
        let direct_ops = direct.ran.reads.count() + direct.ran.writes.count();
        let ours = Bill::new(self.metered.units, ops, &prices);
        let theirs_bill = Bill::new(direct.metered.units, direct_ops, &prices);
        let ours_rate = rate(ops, self.run_time);
        let theirs_rate = rate(direct_ops, direct.time);
        writeln!(
            out,
            "compare: the same run straight against the backend (write-through, no cache)"
        )?;
        writeln!(
            out,
            "{:<24} {:>14} {:>14} {:>9}",
            "", "quickstore", "direct", "ratio"
        )?;
        let row = |out: &mut String, name: &str, a: f64, b: f64, digits: usize| {
            let ratio = if b > 0.0 {
                format!("{:.2}", a / b)
            } else {
                "-".to_owned()
            };
            writeln!(
                out,
                "{name:<24} {:>14} {:>14} {ratio:>9}",
                format!("{a:.digits$}"),
                format!("{b:.digits$}")
            )
        };
        row(out, "ops/s", ours_rate, theirs_rate, 0)?;
        let micros = |r: &Recorder, pick: fn(&Summary) -> Duration| {
            r.summary().map_or(0.0, |s| pick(&s).as_secs_f64() * 1e6)
        };
        for (name, pick) in [
            ("p50", (|s: &Summary| s.p50) as fn(&Summary) -> Duration),
            ("p99", |s: &Summary| s.p99),
        ] {
            let (mine, theirs) = (&ran.reads, &direct.ran.reads);
            row(
                out,
                &format!("read {name} (us)"),
                micros(mine, pick),
                micros(theirs, pick),
                1,
            )?;
            let (mine, theirs) = (&ran.writes, &direct.ran.writes);
            row(
                out,
                &format!("upsert {name} (us)"),
                micros(mine, pick),
                micros(theirs, pick),
                1,
            )?;
        }
        let requests = |m: &Metered| (m.read_requests + m.write_requests) as f64;
        let (mine, theirs) = (&self.metered, &direct.metered);
        for (name, a, b, digits) in [
            ("requests", requests(mine), requests(theirs), 0),
            ("read units", mine.units.read, theirs.units.read, 1),
            ("write units", mine.units.write, theirs.units.write, 1),
            (
                "$ per million ops",
                ours.dollars_per_million_ops,
                theirs_bill.dollars_per_million_ops,
                4,
            ),
        ] {
            row(out, name, a, b, digits)?;
        }
        Ok(())
    }

    /// The DynamoDB bill of the run and drain, as on-demand capacity would charge it.
    fn render_cost(&self, out: &mut String, ops: u64) -> fmt::Result {
        let prices = Prices::default();
        let metered = &self.metered;
        let (bill, other_bill) = self.bills(ops, &prices);
        let (this, that) = if self.consistent_reads {
            ("strongly consistent reads", "eventually consistent reads")
        } else {
            ("eventually consistent reads", "strongly consistent reads")
        };
        writeln!(
            out,
            "dynamodb (run+drain, on-demand at ${}/M read units, ${}/M write units)",
            prices.read_per_million, prices.write_per_million
        )?;
        writeln!(
            out,
            "  requests: {} reads for {} items, {} writes for {} items",
            metered.read_requests,
            metered.items_read,
            metered.write_requests,
            metered.items_written
        )?;
        for (name, bill) in [(this, &bill), (that, &other_bill)] {
            writeln!(
                out,
                "  {name:<28} {:>10.1} read + {:>10.1} write units; per million ops {:>12.0} + \
                 {:>12.0} units, ${:.4}",
                bill.units.read,
                bill.units.write,
                bill.units_per_million_ops.read,
                bill.units_per_million_ops.write,
                bill.dollars_per_million_ops
            )?;
        }
        Ok(())
    }
}

/// The report as JSON: what `--json` prints.
#[derive(Debug, Serialize)]
struct JsonReport {
    workload: Option<String>,
    items: u64,
    value_size: usize,
    ops: u64,
    tasks: u32,
    read_ratio: f64,
    distribution: String,
    seed: u64,
    cache_bytes: Option<u64>,
    load: JsonLoad,
    run: JsonRun,
    latency_us: JsonLatencies,
    drain: JsonDrain,
    /// The store's counters over the run and drain (`Stats::since`), gauges at the end.
    store: Stats,
    dynamodb: JsonDynamoDb,
    /// With `--compare direct`: the same run phase straight against the backend.
    compare_direct: Option<JsonDirect>,
}

#[derive(Debug, Serialize)]
struct JsonDirect {
    run: JsonRun,
    latency_us: JsonLatencies,
    metered: Metered,
    bill: Bill,
}

#[derive(Debug, Serialize)]
struct JsonLoad {
    inserted: u64,
    existed: u64,
    acknowledged_secs: f64,
    written_secs: f64,
}

#[derive(Debug, Serialize)]
struct JsonRun {
    ops: u64,
    secs: f64,
    ops_per_sec: f64,
    reads: u64,
    upserts: u64,
    not_found: u64,
}

#[derive(Debug, Serialize)]
struct JsonLatencies {
    read: Option<JsonLatency>,
    upsert: Option<JsonLatency>,
}

#[derive(Debug, Serialize)]
struct JsonLatency {
    count: u64,
    mean: f64,
    p50: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

impl From<Summary> for JsonLatency {
    fn from(s: Summary) -> Self {
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        Self {
            count: s.count,
            mean: us(s.mean),
            p50: us(s.p50),
            p99: us(s.p99),
            p999: us(s.p999),
            max: us(s.max),
        }
    }
}

#[derive(Debug, Serialize)]
struct JsonDrain {
    flush_secs: f64,
    close_secs: f64,
}

#[derive(Debug, Serialize)]
struct JsonDynamoDb {
    metered: Metered,
    prices: Prices,
    /// The bill as the store read (strongly consistent by default).
    bill: Bill,
    /// The bill had reads been of the other consistency.
    bill_other_consistency: Bill,
    consistent_reads: bool,
}

impl Report<'_> {
    /// The report as a JSON document.
    fn json(&self, ran: &Ran) -> JsonReport {
        let args = self.args;
        let (reads, upserts) = (ran.reads.count(), ran.writes.count());
        let ops = reads + upserts;
        let prices = Prices::default();
        let (bill, bill_other_consistency) = self.bills(ops, &prices);
        JsonReport {
            workload: args
                .workload
                .and_then(|w| w.to_possible_value())
                .map(|v| v.get_name().to_owned()),
            items: args.items,
            value_size: args.value_size,
            ops: args.ops,
            tasks: args.tasks,
            read_ratio: args.read_ratio,
            distribution: args.distribution.to_string(),
            seed: args.seed,
            cache_bytes: args.cache_bytes,
            load: JsonLoad {
                inserted: self.loaded.inserted,
                existed: self.loaded.existed,
                acknowledged_secs: self.load_acked.as_secs_f64(),
                written_secs: self.load_written.as_secs_f64(),
            },
            run: JsonRun {
                ops,
                secs: self.run_time.as_secs_f64(),
                ops_per_sec: rate(ops, self.run_time),
                reads,
                upserts,
                not_found: ran.not_found,
            },
            latency_us: JsonLatencies {
                read: ran.reads.summary().map(JsonLatency::from),
                upsert: ran.writes.summary().map(JsonLatency::from),
            },
            drain: JsonDrain {
                flush_secs: self.flush_time.as_secs_f64(),
                close_secs: self.close_time.as_secs_f64(),
            },
            store: self.end.since(&self.after_load),
            dynamodb: JsonDynamoDb {
                metered: self.metered,
                prices,
                bill,
                bill_other_consistency,
                consistent_reads: self.consistent_reads,
            },
            compare_direct: self.direct.as_ref().map(|direct| {
                let (reads, upserts) = (direct.ran.reads.count(), direct.ran.writes.count());
                JsonDirect {
                    run: JsonRun {
                        ops: reads + upserts,
                        secs: direct.time.as_secs_f64(),
                        ops_per_sec: rate(reads + upserts, direct.time),
                        reads,
                        upserts,
                        not_found: direct.ran.not_found,
                    },
                    latency_us: JsonLatencies {
                        read: direct.ran.reads.summary().map(JsonLatency::from),
                        upsert: direct.ran.writes.summary().map(JsonLatency::from),
                    },
                    metered: direct.metered,
                    bill: Bill::new(direct.metered.units, reads + upserts, &prices),
                }
            }),
        }
    }

    /// The bill as read, and had reads been of the other consistency (half, or twice, the
    /// read units).
    fn bills(&self, ops: u64, prices: &Prices) -> (Bill, Bill) {
        let units = self.metered.units;
        let other = Units {
            read: if self.consistent_reads {
                units.read / 2.0
            } else {
                units.read * 2.0
            },
            write: units.write,
        };
        (Bill::new(units, ops, prices), Bill::new(other, ops, prices))
    }
}

/// Items written per mutation, as text: below 1 when writes coalesced.
fn per_mutation(stats: &Stats) -> String {
    if stats.mutations == 0 {
        "-".to_owned()
    } else {
        format!("{:.3}", stats.items_written as f64 / stats.mutations as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_set_the_mix() -> anyhow::Result<()> {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            bench: BenchArgs,
        }
        let args = |extra: &[&str]| {
            let argv = ["bench"].iter().chain(extra).copied();
            Cli::try_parse_from(argv).map(|cli| cli.bench.with_workload())
        };
        assert_eq!(args(&["--workload", "a"])?.read_ratio, 0.5);
        assert_eq!(args(&["--workload", "b"])?.read_ratio, 0.95);
        assert_eq!(args(&["--workload", "w"])?.read_ratio, 0.0);
        assert_eq!(args(&["--workload", "load"])?.ops, 0);
        let u = args(&["--workload", "u", "--items", "100000"])?;
        assert_eq!(u.read_ratio, 1.0);
        assert_eq!(u.cache_bytes, Some(100_000 * 250 / 10));
        let sized = args(&["--workload", "u", "--cache-bytes", "5000"])?;
        assert_eq!(sized.cache_bytes, Some(5000), "an explicit size wins");
        assert_eq!(args(&["--read-ratio", "0.3"])?.read_ratio, 0.3);
        Ok(())
    }

    #[test]
    fn ratios_must_be_fractions() {
        assert_eq!(parse_ratio("0"), Ok(0.0));
        assert_eq!(parse_ratio("1"), Ok(1.0));
        assert_eq!(parse_ratio("0.25"), Ok(0.25));
        for bad in ["1.01", "-0.5", "NaN", "inf", "half", ""] {
            assert!(parse_ratio(bad).is_err(), "{bad}");
        }
    }

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
}
