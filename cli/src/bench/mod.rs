//! `quickstore bench`: load items, run a workload of reads and upserts (or counter increments)
//! over them from concurrent tasks, at a fixed rate by default, drain the store, and report what
//! DynamoDB would see (requests and the bill per million operations, against write-through for
//! the same operations), coalescing, latency and the store's counters; optionally beside the
//! same workload run write-through, straight against the backend.

pub(crate) mod keys;
mod latency;
mod notes;
mod plot;
mod report;
mod restart;
mod timeline;
mod tuning;
mod versus;
mod workload;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::{Args, ValueEnum};
use futures_util::stream::{self, StreamExt as _, TryStreamExt as _};
use quickstore::backend::{Backend, Write, MAX_BATCH_WRITE_ITEMS};
use quickstore::{Key, Stats};
use serde::Serialize;

use crate::backend::{self, BackendArgs, OpenStore, Unspecified};
use crate::bench::keys::KeyDistribution;
use crate::drain::{close_on_error, drain};
use crate::meter::Metered;
use crate::{print, values};
use report::Report;
use restart::Restarted;
use tuning::Tuning;
use workload::{Length, LoadPlan, Loaded, Ran, RunPlan, Via};

/// The kind of the keys the benchmark writes.
const KIND: &str = "BenchItem";

/// The seed phase of the measured run; the warm-up draws from another.
const RUN_PHASE: u64 = 1;

/// The seed phase of the warm-up.
const WARMUP_PHASE: u64 = 2;

/// What to compare the store with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Compare {
    /// Plain backend calls: write-through, no cache.
    Direct,
    /// The store's final drain against a concurrent `BatchWriteItem` loop writing as many items.
    Batch,
}

/// The read ratio without `--read-ratio` or a named workload.
const DEFAULT_READ_RATIO: f64 = 0.9;

/// How long the run phase lasts without `--ops` or `--duration`: long enough for a hundred of
/// the store's default flush intervals, short enough for a first run.
const DEFAULT_DURATION: Duration = Duration::from_secs(10);

/// The target rate without `--rate`: a busy service's, and one the store keeps on any backend,
/// so that the figures do not depend on the machine.
pub const DEFAULT_RATE: f64 = 10_000.0;

/// A workload's name, as `--workload` takes it.
fn workload_name(workload: Workload) -> String {
    workload.to_possible_value().map_or_else(
        || format!("{workload:?}"),
        |value| value.get_name().to_owned(),
    )
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
    /// Counter increments: each operation adds 1 to a counter attribute of a zipfian-chosen key
    /// with `Store::apply`.
    K,
}

/// Bytes an item weighs in the cache besides its payload: attribute names, the other fields,
/// the key and the entry's overhead (a rough figure, to size workload `u`'s cache).
const ITEM_OVERHEAD_ESTIMATE: u64 = 150;

/// Options of `quickstore bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Items inserted in the load phase; the run phase touches these (`10000`, `10k`).
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = values::items)]
    pub items: u64,

    /// Payload in each item's value, e.g. `100`, `1KiB`.
    #[arg(long, value_name = "SIZE", default_value_t = 100, value_parser = values::value_size)]
    pub value_size: usize,

    /// In the load phase, insert key by key without prefetching: each insert's existence
    /// check is a read of its own, batched only with the other tasks' checks of the moment.
    /// By default each task prefetches the next 100 keys it inserts, as a bulk loader would.
    #[arg(long)]
    pub no_prefetch: bool,

    /// Start the run phase with an empty cache (after the load phase and any warm-up), so that
    /// its first reads of each key are misses: the cold path.
    #[arg(long)]
    pub cold: bool,

    /// After the run, measure a warm restart: the store saves its keys at close, a new store
    /// over the same backend prefetches them while the same workload runs, and the report
    /// compares the hit ratio in the last second before the close with the first second after
    /// the open (and with a store opened cold).
    #[arg(long)]
    pub restart: bool,

    /// Operations in the run phase, split evenly across the tasks, instead of a time.
    #[arg(long, value_name = "M", value_parser = values::ops)]
    pub ops: Option<u64>,

    /// How long the run phase lasts, e.g. `30s`, `5m` or `1h` (default: 10s, a hundred of the
    /// store's default flush intervals).
    #[arg(long, value_name = "DURATION", value_parser = values::run_duration, conflicts_with = "ops")]
    pub duration: Option<Duration>,

    /// Before the measured run, run the same mix for this long and flush, unmeasured, e.g.
    /// `5s` (with `--compare`, the direct run warms up too).
    #[arg(long, value_name = "DURATION", value_parser = values::warmup)]
    pub warmup: Option<Duration>,

    /// Target rate in operations per second over all tasks (an open loop: each task starts
    /// its operations on a fixed schedule), e.g. `2500` or `10k` (default: 10k); `max` runs
    /// as fast as the tasks go (a closed loop, whose figures depend on this machine's speed).
    #[arg(long, value_name = "OPS_PER_SEC|max", value_parser = values::rate)]
    pub rate: Option<f64>,

    /// Concurrent Tokio tasks issuing operations, in both phases.
    #[arg(long, visible_alias = "concurrency", value_name = "T", default_value_t = 8,
          value_parser = values::tasks)]
    pub tasks: u32,

    /// A named workload, setting the read ratio (and, for `u`, the cache size): `load` inserts
    /// only; `a` 50% gets, 50% upserts; `b` 95/5; `c` gets only; `w` upserts only; `u` gets
    /// with a cache a tenth of the data, so that misses happen; `k` adds 1 to a counter
    /// attribute (`hits`) of the chosen key with `Store::apply` (an `UpdateItem` each with
    /// `--compare direct`), then checks that the table's counters gained what was acknowledged.
    #[arg(long, value_enum)]
    pub workload: Option<Workload>,

    /// Fraction of run-phase operations that are reads (`get`), e.g. `0.9` or `90%`; the rest
    /// are upserts (default: 0.9). A named `--workload` sets it instead.
    #[arg(long, value_name = "RATIO", value_parser = values::ratio)]
    pub read_ratio: Option<f64>,

    /// How run-phase operations pick their keys (default: zipf).
    #[arg(long, value_enum)]
    pub distribution: Option<KeyDistribution>,

    /// Seed of the random choices (keys, reads or writes, payloads).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// Fail a flush or close that makes no progress (no item written or write settled; retries
    /// do not count) for this long (`30s`, `2m`; a bare number is seconds), rather than wait
    /// forever: a store retries a backend that is gone for as long as it runs.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = values::stall_timeout)]
    pub stall_timeout: Duration,

    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,

    /// After the report, print the store's final statistics as one line of JSON (the library's
    /// `Stats`: counters since the store opened, such as hits, misses, mutations,
    /// items_written, write_requests, retries, throttles, rejected_writes and conflicts; and
    /// gauges as the store closed, such as pending, cached_entries and cached_bytes); one
    /// line per flush interval. For scripts: `quickstore bench --metrics | tail -n 1`.
    #[arg(long)]
    pub metrics: bool,

    /// `direct`: after the store's run, run the same operations (same keys, same mix, same
    /// seeds) straight against the backend, as a write-through client with no cache would:
    /// each read a `GetItem`, each upsert a one-item write; the report puts both side by side,
    /// timings too (without it, write-through's requests and bill are computed, a request per
    /// operation).
    /// `batch`: write as many items as the store's final flush and close wrote, straight to the
    /// backend in `BatchWriteItem` requests of 25 from a concurrent loop, and compare the time
    /// with the store's drain. Both: `--compare direct,batch`.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub compare: Vec<Compare>,

    /// Print the whole report as one JSON document instead of text (field names are stable;
    /// docs/BENCHMARKS.md lists them); an array of them with several flush intervals.
    /// Durations are in seconds, latencies in microseconds.
    #[arg(long)]
    pub json: bool,

    /// Draw the latency distribution and the throughput over time of each run (the store's
    /// and, with `--compare`, the direct one) into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,

    /// The store's settings.
    #[command(flatten, next_help_heading = "Store settings")]
    pub tuning: Tuning,

    /// Where the items live.
    #[command(
        flatten,
        next_help_heading = "Backend (default: an embedded database in a temporary directory)"
    )]
    pub backend: BackendArgs,
}

impl BenchArgs {
    /// The arguments checked (see [`check`](Self::check)), with the named workload's settings
    /// and the defaults applied.
    fn resolve(mut self) -> anyhow::Result<Self> {
        self.check()?;
        self.read_ratio = Some(self.mix());
        self.distribution = Some(self.distribution());
        match self.workload {
            Some(Workload::Load) => self.ops = Some(0),
            Some(Workload::U) if self.tuning.cache_bytes.is_none() => {
                let item = self.value_size as u64 + ITEM_OVERHEAD_ESTIMATE;
                let data = self.items.saturating_mul(item);
                self.tuning.cache_bytes = Some((data / 10).max(64 * 1024));
            }
            _ => {}
        }
        if self.duration.is_none() && self.ops.is_none() {
            self.duration = Some(DEFAULT_DURATION);
        }
        Ok(self)
    }

    /// Refuses options that would have no effect with the others, each with a sentence that
    /// says why, and a `--plot` file that could not be written, before anything runs.
    fn check(&self) -> anyhow::Result<()> {
        let workload = self.workload.map(workload_name);
        if let (Some(name), Some(_)) = (&workload, self.read_ratio) {
            bail!(
                "--read-ratio cannot be used with --workload {name}, which sets the mix itself; \
                 leave out one of them (--workload a is 50% reads, b 95%, c and u 100%, w and k 0%)"
            );
        }
        if self.workload == Some(Workload::Load) {
            let given = [
                ("--ops", self.ops.is_some()),
                ("--duration", self.duration.is_some()),
                ("--warmup", self.warmup.is_some()),
                ("--rate", self.rate.is_some()),
                ("--distribution", self.distribution.is_some()),
                ("--cold", self.cold),
                ("--restart", self.restart),
                ("--compare direct", self.compare.contains(&Compare::Direct)),
                ("--compare batch", self.compare.contains(&Compare::Batch)),
                ("--plot", self.plot.is_some()),
            ];
            if let Some((option, _)) = given.iter().find(|(_, given)| *given) {
                bail!(
                    "{option} would do nothing with --workload load, which only inserts the \
                     items and runs no operations; leave it out, or pick a workload with a run \
                     phase (a, b, c, w, u or k)"
                );
            }
        }
        if self.compare.contains(&Compare::Batch) && !self.increments() && self.mix() >= 1.0 {
            let mix = match &workload {
                Some(name) => format!("workload {name} only reads"),
                None => "--read-ratio 1 only reads".to_owned(),
            };
            bail!(
                "--compare batch compares the store's final drain with a BatchWriteItem loop \
                 writing as many items, but {mix}: its drain writes nothing to compare"
            );
        }
        if let Some(path) = &self.plot {
            plot::check_path(path)?;
        }
        Ok(())
    }

    /// The fraction of reads the named workload sets, or else `--read-ratio`'s.
    fn mix(&self) -> f64 {
        match self.workload {
            Some(Workload::A) => 0.5,
            Some(Workload::B) => 0.95,
            Some(Workload::C | Workload::U) => 1.0,
            Some(Workload::W | Workload::K) => 0.0,
            Some(Workload::Load) | None => self.read_ratio(),
        }
    }

    /// The target rate of the run phase in operations per second; `None` for as fast as the
    /// tasks go (`--rate max`).
    pub fn rate(&self) -> Option<f64> {
        match self.rate {
            None => Some(DEFAULT_RATE),
            Some(rate) if rate.is_finite() => Some(rate),
            Some(_) => None,
        }
    }

    /// The fraction of reads in the run phase (once resolved, the workload's).
    pub fn read_ratio(&self) -> f64 {
        self.read_ratio.unwrap_or(DEFAULT_READ_RATIO)
    }

    /// How the run phase picks its keys.
    pub fn distribution(&self) -> KeyDistribution {
        self.distribution.unwrap_or(KeyDistribution::Zipf)
    }

    /// The run phase, or the warm-up when `warmup` is given.
    fn plan(&self, warmup: Option<Duration>) -> RunPlan {
        let (length, phase, label) = match warmup {
            Some(time) => (Length::For(time), WARMUP_PHASE, "warmup"),
            None => match self.duration {
                Some(time) => (Length::For(time), RUN_PHASE, "run"),
                None => (Length::Ops(self.ops.unwrap_or(0)), RUN_PHASE, "run"),
            },
        };
        RunPlan {
            length,
            rate: self.rate(),
            tasks: self.tasks,
            read_ratio: self.read_ratio(),
            increments: self.increments(),
            distribution: self.distribution(),
            value_size: self.value_size,
            seed: self.seed,
            phase,
            label: if self.quiet { "" } else { label },
        }
    }

    /// Whether the run phase has operations to run.
    fn runs_ops(&self) -> bool {
        self.duration.is_some() || self.ops.is_some_and(|ops| ops > 0)
    }

    /// Whether the run phase increments counters (`--workload k`).
    fn increments(&self) -> bool {
        self.workload == Some(Workload::K)
    }
}

/// One run of the workload through the store, at one flush interval.
#[derive(Debug)]
pub struct StoreRun {
    /// The flush interval asked for (`None`: the library's default).
    pub flush_interval: Option<Duration>,
    /// What the load phase did.
    pub loaded: Loaded,
    /// Until every insert was acknowledged.
    pub load_acked: Duration,
    /// Until every insert was written (the load phase's flush returned).
    pub load_written: Duration,
    /// The measured run phase (empty for the `load` workload).
    pub ran: Ran,
    /// The final flush.
    pub flush_time: Duration,
    /// What the final flush and close wrote.
    pub drained: Drained,
    /// The close after it.
    pub close_time: Duration,
    /// The store's counters before the measured run.
    pub before_run: Stats,
    /// The store's counters after close.
    pub end: Stats,
    /// What the run and drain asked of the backend.
    pub metered: Metered,
    /// With `--restart`: the hit ratios around a restart.
    pub restarted: Option<Restarted>,
    /// With `--workload k`: the increments acknowledged, and what the table's counters gained.
    pub counted: Option<Counted>,
}

/// The increments a store acknowledged (`--workload k`), and what the counters in the table
/// gained meanwhile, read back after the store's close.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Counted {
    /// Increments the store acknowledged, from the end of the load phase to its close (the
    /// warm-up's included).
    pub acknowledged: u64,
    /// Of those, the ones whose writes the run+drain figures count: the measured run's (and,
    /// with `--restart`, the last window's before the close).
    pub measured: u64,
    /// What the counters of all the items gained over the same time, read back from the table
    /// with strongly consistent reads after the close.
    pub in_table: i64,
}

impl Counted {
    /// Whether the table holds every acknowledged increment, and no other.
    pub fn matches(&self) -> bool {
        i64::try_from(self.acknowledged).is_ok_and(|acknowledged| acknowledged == self.in_table)
    }
}

/// What a drain (or a loop standing in for one) wrote, and how long it took.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Drained {
    /// Items written.
    pub items: u64,
    /// Write requests sent.
    pub requests: u64,
    /// From the start of the final flush to the end of the close, or of the loop.
    pub secs: f64,
}

/// Requests a [`batch_loop`] keeps in flight: as many as the store does by default.
const BATCH_LOOP_IN_FLIGHT: usize = 8;

/// Writes `count` items (the first `count` keys, each with a new state of the run's size)
/// straight to the backend in full `BatchWriteItem` requests from a loop keeping
/// [`BATCH_LOOP_IN_FLIGHT`] in flight, re-sending what DynamoDB leaves unprocessed.
async fn batch_loop(
    args: &BenchArgs,
    keys: &Arc<[Key]>,
    opened: &OpenStore,
    count: u64,
) -> anyhow::Result<Drained> {
    let partition_key: Arc<str> = Arc::from(args.backend.partition_key());
    let mut rng = workload::task_rng(args.seed, 3, 0);
    let payload = workload::random_payload(&mut rng, args.value_size);
    let count = usize::try_from(count)?.min(keys.len());
    let writes: Vec<Write> = keys
        .iter()
        .take(count)
        .enumerate()
        .map(|(index, key)| workload::final_state(index as u64, &payload, &partition_key, key))
        .collect();
    let backend: &dyn Backend = opened.meter.as_ref();
    let before = opened.meter.metered();
    let started = Instant::now();
    stream::iter(writes.chunks(MAX_BATCH_WRITE_ITEMS))
        .map(|batch| workload::write_all(backend, &partition_key, batch.to_vec()))
        .buffer_unordered(BATCH_LOOP_IN_FLIGHT)
        .try_collect::<()>()
        .await?;
    let secs = started.elapsed().as_secs_f64();
    let metered = opened.meter.metered().since(&before);
    Ok(Drained {
        items: metered.items_written,
        requests: metered.write_requests,
        secs,
    })
}

/// The run phase as a write-through client without a cache ran it.
#[derive(Debug)]
pub struct Direct {
    /// What it did.
    pub ran: Ran,
    /// What it asked of the backend.
    pub metered: Metered,
}

/// Flushes `store`, failing if it stalls.
async fn flush(
    store: &quickstore::Store,
    step: &'static str,
    args: &BenchArgs,
) -> anyhow::Result<()> {
    let stall = args.stall_timeout;
    let shown = workload::spinner(step, args.quiet);
    let flushed = drain(store, step, stall, store.flush()).await;
    shown.finish_and_clear();
    flushed
}

/// Loads the items into a fresh store, warms up, runs the workload and drains the store.
async fn run_store(
    args: &BenchArgs,
    keys: &Arc<[Key]>,
    flush_interval: Option<Duration>,
) -> anyhow::Result<(StoreRun, OpenStore)> {
    let warm_dir = match args.restart {
        true => Some(tempfile::tempdir().context("cannot create a temporary directory")?),
        false => None,
    };
    let warm_file = warm_dir.as_ref().map(|dir| dir.path().join("warm.keys"));
    let opened = backend::open_store(&args.backend, Unspecified::Temporary, |builder| {
        let builder = args.tuning.apply(builder, flush_interval);
        match &warm_file {
            Some(file) => builder.warm_restart(file),
            None => builder,
        }
    })
    .await?;
    let measured = close_on_error(
        &opened.store,
        measure_store(args, keys, &opened, flush_interval, warm_file.as_deref()),
    )
    .await;
    Ok((measured?, opened))
}

/// Loads the items into `opened`'s fresh store, warms up, runs the workload and drains and
/// closes the store; with `--restart`, opens the stores that measure it after.
async fn measure_store(
    args: &BenchArgs,
    keys: &Arc<[Key]>,
    opened: &OpenStore,
    flush_interval: Option<Duration>,
    warm_file: Option<&std::path::Path>,
) -> anyhow::Result<StoreRun> {
    let store = opened.store.clone();
    let started = Instant::now();
    let plan = LoadPlan {
        tasks: args.tasks,
        prefetch: !args.no_prefetch,
        value_size: args.value_size,
        seed: args.seed,
        quiet: args.quiet,
    };
    let loaded = workload::load(&store, keys, plan).await?;
    let load_acked = started.elapsed();
    flush(&store, "writing the loaded items", args).await?;
    let load_written = started.elapsed();

    let partition_key = args.backend.partition_key();
    let counters_before = match args.increments() {
        true => Some(workload::sum_counters(opened.meter.as_ref(), partition_key, keys).await?),
        false => None,
    };
    let mut increments = 0;
    let via = Via::Store(store.clone());
    if let (Some(warmup), true) = (args.warmup, args.runs_ops()) {
        let warmed = workload::run_ops(&via, keys, &args.plan(Some(warmup))).await?;
        increments += warmed.increments.count();
        flush(&store, "writing the warm-up's upserts", args).await?;
    }
    if args.cold {
        store.invalidate_all()?;
    }
    let before_run = store.stats();
    let metered_before = opened.meter.metered();
    let ran = match args.runs_ops() {
        true => workload::run_ops(&via, keys, &args.plan(None)).await?,
        false => Ran::new()?,
    };
    let last_window = match args.restart {
        true => Some(restart::one_window(&store, keys, args).await?),
        false => None,
    };
    let measured = ran.increments.count() + last_window.as_ref().map_or(0, |(_, n)| *n);
    increments += measured;
    let last_window = last_window.map(|(stats, _)| stats);

    let before_drain = store.stats();
    let started = Instant::now();
    flush(&store, "the final flush", args).await?;
    let flush_time = started.elapsed();
    let started = Instant::now();
    let stall = args.stall_timeout;
    let closing = workload::spinner("closing", args.quiet);
    let closed = drain(&store, "closing the store", stall, store.close()).await;
    closing.finish_and_clear();
    closed?;
    let close_time = started.elapsed();
    let end = store.stats();
    let drained = Drained {
        items: end.items_written - before_drain.items_written,
        requests: end.write_requests - before_drain.write_requests,
        secs: (flush_time + close_time).as_secs_f64(),
    };
    let metered = opened.meter.metered().since(&metered_before);
    let counted = match counters_before {
        Some(before) => {
            let after = workload::sum_counters(opened.meter.as_ref(), partition_key, keys).await?;
            Some(Counted {
                acknowledged: increments,
                measured,
                in_table: after.saturating_sub(before),
            })
        }
        None => None,
    };
    let restarted = match (&last_window, warm_file) {
        (Some(before), Some(file)) => {
            let backend = Arc::clone(&opened.meter) as Arc<dyn Backend>;
            Some(restart::measure(args, keys, backend, flush_interval, before, file).await?)
        }
        _ => None,
    };
    let run = StoreRun {
        flush_interval,
        loaded,
        load_acked,
        load_written,
        ran,
        flush_time,
        drained,
        close_time,
        before_run,
        end,
        metered,
        restarted,
        counted,
    };
    Ok(run)
}

/// Runs the workload straight against `opened`'s backend.
async fn run_direct(
    args: &BenchArgs,
    keys: &Arc<[Key]>,
    opened: &OpenStore,
) -> anyhow::Result<Direct> {
    let via = Via::Direct {
        backend: Arc::clone(&opened.meter) as Arc<dyn Backend>,
        partition_key: Arc::from(args.backend.partition_key()),
        consistent: !args.tuning.eventual_reads,
    };
    if let Some(warmup) = args.warmup {
        workload::run_ops(&via, keys, &args.plan(Some(warmup))).await?;
    }
    let before = opened.meter.metered();
    let ran = workload::run_ops(&via, keys, &args.plan(None)).await?;
    Ok(Direct {
        ran,
        metered: opened.meter.metered().since(&before),
    })
}

/// Runs `quickstore bench`.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let args = args.resolve()?;
    let keys: Arc<[Key]> = (0..args.items)
        .map(|index| Key::new(KIND, index.to_string()))
        .collect::<Result<_, _>>()?;

    let mut runs = Vec::new();
    let mut last = None;
    for flush_interval in args.tuning.flush_intervals() {
        let (run, opened) = run_store(&args, &keys, flush_interval).await?;
        runs.push(run);
        last = Some(opened);
    }
    let opened = last.context("no flush interval to run with")?;
    let direct = match args.compare.contains(&Compare::Direct) && args.runs_ops() {
        true => Some(run_direct(&args, &keys, &opened).await?),
        false => None,
    };
    let batch = match args.compare.contains(&Compare::Batch) {
        true => {
            let items = runs.iter().map(|run| run.drained.items).max().unwrap_or(0);
            Some(batch_loop(&args, &keys, &opened, items).await?)
        }
        false => None,
    };

    let item_bytes = match keys.first() {
        Some(key) => workload::item_bytes(
            args.backend.partition_key(),
            key,
            args.value_size,
            args.increments(),
        ),
        None => 0,
    };
    let report = Report {
        args: &args,
        target: &opened.target,
        runs: &runs,
        direct: direct.as_ref(),
        batch: batch.as_ref(),
        item_bytes,
    };
    if let Some(path) = &args.plot {
        plot::draw(path, &report.series())
            .with_context(|| format!("cannot draw the plot {}", path.display()))?;
    }
    if args.json {
        let json = report.json().context("cannot encode the report")?;
        print(&format!("{json}\n"))?;
    } else {
        print(&report.render()?)?;
    }
    if args.metrics {
        for run in &runs {
            let json = serde_json::to_string(&run.end).context("cannot encode the statistics")?;
            print(&format!("{json}\n"))?;
        }
    }
    for run in &runs {
        if run.end.pending != 0 {
            bail!("{} keys were still pending after close", run.end.pending);
        }
        if run.end.rejected_writes != 0 {
            bail!("the backend refused {} writes", run.end.rejected_writes);
        }
        if let Some(counted) = run.counted.filter(|counted| !counted.matches()) {
            bail!(
                "the store acknowledged {} increments, but the counters in the table gained {}",
                counted.acknowledged,
                counted.in_table
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> anyhow::Result<BenchArgs> {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            bench: BenchArgs,
        }
        let argv = ["bench"].iter().chain(extra).copied();
        Cli::try_parse_from(argv)?.bench.resolve()
    }

    #[test]
    fn workloads_set_the_mix() -> anyhow::Result<()> {
        assert_eq!(args(&["--workload", "a"])?.read_ratio(), 0.5);
        assert_eq!(args(&["--workload", "b"])?.read_ratio(), 0.95);
        assert_eq!(args(&["--workload", "w"])?.read_ratio(), 0.0);
        let k = args(&["--workload", "k"])?;
        assert_eq!(k.read_ratio(), 0.0);
        assert!(k.plan(None).increments, "k increments counters");
        assert!(!args(&["--workload", "w"])?.plan(None).increments);
        assert!(!args(&[])?.plan(None).increments);
        let load = args(&["--workload", "load"])?;
        assert!(!load.runs_ops(), "the load workload runs no operations");
        let u = args(&["--workload", "u", "--items", "100000"])?;
        assert_eq!(u.read_ratio(), 1.0);
        assert_eq!(u.tuning.cache_bytes, Some(100_000 * 250 / 10));
        let sized = args(&["--workload", "u", "--cache-bytes", "5000"])?;
        assert_eq!(
            sized.tuning.cache_bytes,
            Some(5000),
            "an explicit size wins"
        );
        assert_eq!(args(&["--read-ratio", "0.3"])?.read_ratio(), 0.3);
        assert_eq!(args(&[])?.read_ratio(), 0.9);
        assert_eq!(args(&["--concurrency", "3"])?.tasks, 3);
        Ok(())
    }

    /// Options that would change nothing beside the others are refused, with the reason.
    #[test]
    fn options_without_effect_are_refused() {
        for (bad, words) in [
            (
                &["--workload", "a", "--read-ratio", "0.5"][..],
                "sets the mix itself",
            ),
            (
                &["--workload", "k", "--read-ratio", "0"],
                "sets the mix itself",
            ),
            (
                &["--workload", "load", "--duration", "5s"],
                "--duration would do nothing",
            ),
            (
                &["--workload", "load", "--ops", "5"],
                "--ops would do nothing",
            ),
            (
                &["--workload", "load", "--warmup", "1s"],
                "--warmup would do nothing",
            ),
            (
                &["--workload", "load", "--rate", "10"],
                "--rate would do nothing",
            ),
            (
                &["--workload", "load", "--distribution", "uniform"],
                "--distribution",
            ),
            (
                &["--workload", "load", "--compare", "direct"],
                "--compare direct",
            ),
            (&["--workload", "load", "--cold"], "--cold"),
            (&["--workload", "load", "--restart"], "--restart"),
            (
                &["--workload", "c", "--compare", "batch"],
                "workload c only reads",
            ),
            (
                &["--read-ratio", "1", "--compare", "batch"],
                "--read-ratio 1 only reads",
            ),
        ] {
            let refusal = args(bad).err().map(|err| err.to_string());
            assert!(
                refusal.as_ref().is_some_and(|text| text.contains(words)),
                "{bad:?}: {refusal:?}"
            );
        }
        assert!(args(&["--workload", "w", "--compare", "batch"]).is_ok());
        assert!(args(&["--workload", "k", "--compare", "batch"]).is_ok());
    }

    #[test]
    fn a_run_lasts_a_number_of_operations_or_a_time() -> anyhow::Result<()> {
        assert_eq!(args(&["--ops", "7"])?.plan(None).length, Length::Ops(7));
        let timed = args(&["--duration", "2s", "--warmup", "500ms"])?;
        assert_eq!(timed.plan(None).length, Length::For(Duration::from_secs(2)));
        let warmup = timed.plan(Some(Duration::from_millis(500)));
        assert_eq!(warmup.length, Length::For(Duration::from_millis(500)));
        assert_ne!(
            warmup.phase,
            timed.plan(None).phase,
            "the warm-up draws other keys"
        );
        assert!(args(&["--ops", "7", "--duration", "2s"]).is_err());
        let default = args(&[])?.plan(None);
        assert_eq!(default.length, Length::For(DEFAULT_DURATION));
        assert_eq!(default.rate, Some(DEFAULT_RATE), "paced by default");
        assert_eq!(args(&["--rate", "max"])?.plan(None).rate, None);
        assert_eq!(args(&["--rate", "2k"])?.plan(None).rate, Some(2000.0));
        Ok(())
    }

    #[test]
    fn several_flush_intervals_mean_several_runs() -> anyhow::Result<()> {
        let ms = Duration::from_millis;
        let several = args(&["--flush-interval", "100ms,1s,10s"])?;
        assert_eq!(
            several.tuning.flush_intervals(),
            [Some(ms(100)), Some(ms(1000)), Some(ms(10_000))]
        );
        assert_eq!(args(&[])?.tuning.flush_intervals(), [None]);
        assert!(
            args(&["--durability", "always"]).is_err(),
            "needs --journal"
        );
        Ok(())
    }

    /// `--workload k` increments counters through the store, in fewer write requests than
    /// increments, and the table's counters hold every acknowledged increment after the close
    /// (the warm-up's too); the direct run sends one `UpdateItem` per increment.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn workload_k_counts_every_increment() -> anyhow::Result<()> {
        let base = [
            "--workload",
            "k",
            "--items",
            "50",
            "--ops",
            "2000",
            "--tasks",
            "2",
            "-q",
        ];
        let warmed = args(&[&base[..], &["--warmup", "50ms"]].concat())?;
        let keys: Arc<[Key]> = (0..warmed.items)
            .map(|index| Key::new(KIND, index.to_string()))
            .collect::<Result<_, _>>()?;
        let (run, opened) = run_store(&warmed, &keys, None).await?;
        let counted = run.counted.context("workload k checks its counters")?;
        assert_eq!(run.ran.increments.count(), 2000);
        assert_eq!(run.ran.ops(), 2000);
        assert_eq!(counted.measured, 2000);
        assert!(
            counted.acknowledged > 2000,
            "the warm-up counts: {counted:?}"
        );
        assert!(counted.matches(), "{counted:?}");
        let requests = run.end.since(&run.before_run).write_requests;
        assert!((1..2000).contains(&requests), "{requests} write requests");

        let plain = args(&base)?;
        let partition_key = plain.backend.partition_key();
        let before = workload::sum_counters(opened.meter.as_ref(), partition_key, &keys).await?;
        let direct = run_direct(&plain, &keys, &opened).await?;
        let after = workload::sum_counters(opened.meter.as_ref(), partition_key, &keys).await?;
        assert_eq!(direct.ran.increments.count(), 2000);
        assert_eq!(direct.metered.write_requests, 2000, "one UpdateItem each");
        assert_eq!(after - before, 2000);
        Ok(())
    }

    #[test]
    fn counters_match_only_when_every_increment_landed() {
        let counted = |acknowledged, in_table| Counted {
            acknowledged,
            measured: acknowledged,
            in_table,
        };
        assert!(counted(200_000, 200_000).matches());
        assert!(counted(0, 0).matches());
        assert!(!counted(200_000, 199_999).matches());
        assert!(!counted(200_000, 200_001).matches());
        assert!(!counted(u64::MAX, -1).matches());
    }
}
