//! Hot paths: what a cached read, a many-key cached read, an upsert acknowledgement and an
//! atomic read-modify-write cost, next to a bare `quick_cache` holding the same items, so that
//! quickstore's overhead shows as a ratio within one run.
//!
//! Everything goes through the public API: a [`Store`] over an in-memory [`Backend`] that
//! accepts every write at once, with no journal unless a benchmark says otherwise. The values are
//! a [`Doc`] of about 200 bytes.
//!
//! - `hot_path/get`: a warm typed `get::<Doc>`, a warm `get_item` and a warm `get_arc::<Doc>`,
//!   uniform over [`WARM_KEYS`] cached keys; beside them, in the same group, a bare
//!   `quick_cache::sync::Cache<String, Arc<Item>>` holding the same items: its `get` alone, and
//!   its `get` followed by `serde_dynamo::from_item` of a copy of the item into a `Doc`, which is
//!   what a typed read costs without a cache library around it; and a bare
//!   `quick_cache::sync::Cache<String, Arc<Doc>>` `get`, the baseline of `get_arc`.
//!   `harness/pick_key` is the loop alone (picking a key), the floor under every figure.
//! - `hot_path/get_many`: `get_many_items` and a typed `get_many::<Doc>` of [`MANY`] distinct
//!   cached keys, beside the same lookups in the bare cache collected into a map, as items and
//!   decoded into `Doc`s (`serde_dynamo::from_item` of a copy of each item).
//! - `hot_path/upsert`: the acknowledgement of an `upsert` of a `Doc`, uniform over
//!   [`HOT_KEYS`] keys: with no journal, with a journal at `Durability::Interval(10ms)` and with
//!   a journal at `Durability::Always`. Each journaled store is a store of its own, journaled
//!   in a fresh temporary directory (under `$TMPDIR`, normally `/tmp`) and holding the same hot
//!   keys, flushed. The flusher runs every [`FLUSH_INTERVAL`] and never earlier (the batch
//!   threshold is above the hot set), so almost every upsert finds its key already dirty.
//!   Beside them, with no journal, the acknowledgement of an `apply` of a delta adding 1 to the
//!   counter [`COUNTER`]: on one hot key every time (`apply_hot_counter`: each delta combines
//!   with the key's pending ones), and uniform over the [`HOT_KEYS`] keys (`apply_spread`, the
//!   upsert's keys and distribution). The store is flushed before them, so that their keys
//!   start clean; afterwards it is flushed again and the counters in the table must have gained
//!   one per increment acknowledged.
//! - `hot_path/update_with`: a warm `update_with` incrementing the `counter` of a cached `Doc`
//!   (decoded, incremented, encoded and checked again), and the same increment on the raw item
//!   with `update_item_with`, uniform over the [`HOT_KEYS`] keys. Checked afterwards: the
//!   counters of the hot keys add up to what they were plus one per increment.
//! - `hot_path/get_2_threads`: the warm reads of `hot_path/get` (`get::<Doc>`, `get_item`,
//!   `get_arc::<Doc>`) and the two bare `quick_cache` `get`s, each from [`TASKS`] tasks at
//!   once on the runtime's two worker threads, so that the ratio to the bare cache at two
//!   threads is visible.
//! - `hot_path/upsert_2_threads`: the `upsert` of `hot_path/upsert` (no journal) from
//!   [`TASKS`] tasks at once.
//! - `hot_path/get_4_tasks` and `hot_path/get_16_tasks`: the warm `get_item` and `get_arc`
//!   and the two bare `get`s from 4 and 16 tasks at once, each on a worker thread of its own
//!   (a runtime of 4 or 16 workers), so that contention shows: on a machine with fewer cores
//!   than tasks, threads are also preempted while holding a shard's lock.
//!
//! The single-task benchmarks run the whole timing loop of a sample inside one `block_on` of a
//! two-worker multi-thread Tokio runtime (criterion's `to_async(..).iter`); the flusher runs on
//! the workers. In the two-thread benchmarks one iteration is one operation: a sample's
//! operations are split evenly across [`TASKS`] tasks spawned on the runtime, which run at
//! once, and the sample's time is the wall time until all are done; the time per iteration is
//! therefore wall time divided by operations (half the latency of each operation if the two
//! threads scale perfectly). Keys are picked by a seeded `SmallRng` (one stream per task and
//! sample in the two-thread benchmarks).
//!
//! Every benchmark takes 30 samples after a 1 s warm-up, over 3 s of measurement; the command
//! line's `--sample-size`, `--warm-up-time` and `--measurement-time` override these. Criterion
//! draws no plots (its HTML report) unless asked with `--plotting-backend plotters`.
//!
//! Run with `cargo bench --features testing --bench hot_path`; benchmark names are
//! `hot_path/<group>/<name>`, for example `hot_path/get_2_threads/quickstore/get_item`.

mod common;

use std::collections::HashMap;
use std::error::Error as StdError;
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use quickstore::{AttributeValue, Change, Delta, Durability, Item, Key, Store};
use rand::distr::Alphanumeric;
use rand::rngs::{SmallRng, StdRng};
use rand::{Rng, SeedableRng as _};
use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;

/// Cached keys the reads pick from.
const WARM_KEYS: usize = 10_000;

/// Keys the upserts pick from.
const HOT_KEYS: usize = 1_000;

/// Keys read by one `get_many_items` or `get_many`.
const MANY: usize = 100;

/// Concurrent tasks in the two-thread benchmarks: as many as the runtime's workers.
const TASKS: usize = 2;

/// Concurrent tasks in the contention benchmarks, one worker thread each.
const MANY_TASKS: [usize; 2] = [4, 16];

/// Distinct key sets the many-key reads pick from.
const KEY_SETS: usize = 256;

/// Seed of every random choice (values and keys).
const SEED: u64 = 42;

/// The flusher writes what is dirty this often: rarely enough not to weigh on the upserts.
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Far above the hot set, so that the flusher only runs on its interval.
const BATCH_THRESHOLD: usize = 100_000;

/// Far above the hot set, so that no upsert is refused.
const MAX_PENDING: usize = 1_000_000;

/// The kind of the benchmark's keys.
const KIND: &str = "Doc";

/// The number attribute the `apply` benchmarks add 1 to.
const COUNTER: &str = "n";

/// The value read and written: about 200 bytes as a DynamoDB item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Doc {
    name: String,
    counter: u64,
    tags: Vec<String>,
    note: Option<String>,
}

fn alphanumeric(rng: &mut StdRng, len: usize) -> String {
    rng.sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

impl Doc {
    fn random(rng: &mut StdRng, counter: u64) -> Self {
        Self {
            name: alphanumeric(rng, 28),
            counter,
            tags: (0..4).map(|_| alphanumeric(rng, 16)).collect(),
            note: Some(alphanumeric(rng, 80)),
        }
    }
}

/// Counts reads that did not find what they should have; checked after each group, so that a
/// cold or broken path cannot pass for a fast one.
#[derive(Debug, Default)]
struct Failures(AtomicU64);

impl Failures {
    fn note<T>(&self, found: Option<T>) -> Option<T> {
        if found.is_none() {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    /// Counts one failure.
    fn fail(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn check(&self, what: &str) -> Result<(), Box<dyn StdError>> {
        match self.0.swap(0, Ordering::Relaxed) {
            0 => Ok(()),
            n => Err(format!("{what}: {n} reads or writes failed or found nothing").into()),
        }
    }
}

/// What every benchmark shares.
struct Fixture {
    store: Store,
    /// The store's in-memory table (a clone shares it), to check what was written.
    table: common::MemoryBackend,
    /// The cached keys, and the same items in a bare cache under their rendered forms.
    keys: Vec<Key>,
    rendered: Vec<String>,
    bare: quick_cache::sync::Cache<String, Arc<Item>>,
    /// The same documents, decoded, in a bare cache: the baseline of `get_arc`.
    bare_typed: quick_cache::sync::Cache<String, Arc<Doc>>,
    /// Sets of `MANY` distinct indices into `keys`.
    key_sets: Vec<Vec<usize>>,
    hot_keys: Vec<Key>,
    hot_docs: Vec<Doc>,
    failures: Failures,
}

impl Fixture {
    async fn new() -> Result<Self, Box<dyn StdError>> {
        let mut rng = StdRng::seed_from_u64(SEED);
        let table = common::MemoryBackend::default();
        let store = Store::builder(table.clone())
            .flush_interval(FLUSH_INTERVAL)
            .batch_threshold(BATCH_THRESHOLD)
            .max_pending(MAX_PENDING)
            .open()
            .await?;
        let keys = (0..WARM_KEYS)
            .map(|i| Key::new(KIND, format!("{i:05}")))
            .collect::<Result<Vec<_>, _>>()?;
        let docs: Vec<Doc> = (0..WARM_KEYS as u64)
            .map(|i| Doc::random(&mut rng, i))
            .collect();
        let hot_keys = (0..HOT_KEYS)
            .map(|i| Key::new(KIND, format!("hot{i:04}")))
            .collect::<Result<Vec<_>, _>>()?;
        let hot_docs: Vec<Doc> = (0..HOT_KEYS as u64)
            .map(|i| Doc::random(&mut rng, i))
            .collect();
        for (key, doc) in keys.iter().zip(&docs).chain(hot_keys.iter().zip(&hot_docs)) {
            store.upsert(key, doc).await?;
        }
        // Once flushed, every entry is clean: cached the way a read-through would leave it.
        store.flush().await?;
        let stats = store.stats();
        if stats.cached_entries != WARM_KEYS + HOT_KEYS || stats.pending != 0 {
            return Err(format!(
                "warm-up left {} cached and {} pending entries",
                stats.cached_entries, stats.pending
            )
            .into());
        }
        let rendered: Vec<String> = keys.iter().map(|key| key.as_str().to_owned()).collect();
        let bare = quick_cache::sync::Cache::new(2 * WARM_KEYS);
        let bare_typed = quick_cache::sync::Cache::new(2 * WARM_KEYS);
        for (name, doc) in rendered.iter().zip(&docs) {
            let item: Item = serde_dynamo::to_item(doc)?;
            bare.insert(name.clone(), Arc::new(item));
            bare_typed.insert(name.clone(), Arc::new(doc.clone()));
        }
        if let Some(item) = bare.get(rendered[0].as_str()) {
            eprintln!(
                "hot_path: a Doc is {} bytes as a DynamoDB item (without its key)",
                quickstore::item_size(&item)
            );
        }
        let key_sets = (0..KEY_SETS)
            .map(|_| rand::seq::index::sample(&mut rng, WARM_KEYS, MANY).into_vec())
            .collect();
        Ok(Self {
            store,
            table,
            keys,
            rendered,
            bare,
            bare_typed,
            key_sets,
            hot_keys,
            hot_docs,
            failures: Failures::default(),
        })
    }

    /// The sum of the counters of the hot keys, read from the store.
    async fn hot_counters(&self) -> Result<u64, Box<dyn StdError>> {
        let mut sum = 0;
        for key in &self.hot_keys {
            match self.store.get::<Doc>(key).await? {
                Some(doc) => sum += doc.counter,
                None => return Err(format!("hot key {key:?} is missing").into()),
            }
        }
        Ok(sum)
    }

    /// The sum of the [`COUNTER`]s of the hot keys in the table (absent counts as 0).
    fn counters_in_table(&self) -> Result<u64, Box<dyn StdError>> {
        let mut sum = 0;
        for key in &self.hot_keys {
            let item = self
                .table
                .item(key.as_str())
                .ok_or_else(|| format!("hot key {key:?} is not in the table"))?;
            sum += match item.get(COUNTER) {
                None => 0,
                Some(AttributeValue::N(n)) => n.parse::<u64>()?,
                Some(other) => return Err(format!("{key:?}: `{COUNTER}` is {other:?}").into()),
            };
        }
        Ok(sum)
    }

    /// Fails if the store read from its backend since `misses` (the reads were not warm) or a
    /// read or write failed.
    fn check(&self, group: &str, misses: u64) -> Result<(), Box<dyn StdError>> {
        self.failures.check(group)?;
        let now = self.store.stats().misses;
        if now != misses {
            return Err(format!("{group}: {} cache misses", now - misses).into());
        }
        Ok(())
    }
}

fn rng() -> SmallRng {
    SmallRng::seed_from_u64(SEED)
}

/// The benchmarks' sampling: set on the `Criterion` rather than on each group, so that
/// `--sample-size`, `--warm-up-time` and `--measurement-time` on the command line override it.
/// No plots unless `--plotting-backend` asks for them: drawing them takes longer than measuring.
fn criterion() -> Criterion {
    Criterion::default()
        .without_plots()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args()
}

/// Looks `names` up in `cache`, collecting what it finds by name as `get_many_items` does by
/// key.
fn bare_many<'n>(
    cache: &quick_cache::sync::Cache<String, Arc<Item>>,
    names: impl IntoIterator<Item = &'n str>,
) -> HashMap<String, Arc<Item>> {
    names
        .into_iter()
        .filter_map(|name| Some((name.to_owned(), cache.get(name)?)))
        .collect()
}

/// Looks `names` up in `cache` and decodes a copy of each item into a `Doc`, collecting them
/// by name as `get_many` does by key.
fn bare_many_decoded<'n>(
    cache: &quick_cache::sync::Cache<String, Arc<Item>>,
    names: impl IntoIterator<Item = &'n str>,
) -> HashMap<String, Doc> {
    names
        .into_iter()
        .filter_map(|name| {
            let doc = serde_dynamo::from_item((*cache.get(name)?).clone()).ok()?;
            Some((name.to_owned(), doc))
        })
        .collect()
}

/// `item` with its `counter` attribute one higher, or `None` if it has no numeric `counter`.
fn incremented(item: &Item) -> Option<Item> {
    let counter: u64 = item.get("counter")?.as_n().ok()?.parse().ok()?;
    let mut item = item.clone();
    item.insert(
        "counter".to_owned(),
        AttributeValue::N((counter + 1).to_string()),
    );
    Some(item)
}

fn bench_get(c: &mut Criterion, runtime: &Runtime, f: &Fixture) -> Result<(), Box<dyn StdError>> {
    let misses = f.store.stats().misses;
    let mut group = c.benchmark_group("hot_path/get");
    group.bench_function("harness/pick_key", |b| {
        let mut rng = rng();
        b.to_async(runtime).iter(|| {
            let key = &f.keys[rng.random_range(0..WARM_KEYS)];
            async move { key }
        })
    });
    group.bench_function("quickstore/get_typed", |b| {
        let mut rng = rng();
        b.to_async(runtime).iter(|| {
            let key = &f.keys[rng.random_range(0..WARM_KEYS)];
            async move {
                f.failures
                    .note(f.store.get::<Doc>(key).await.ok().flatten())
            }
        })
    });
    group.bench_function("quickstore/get_item", |b| {
        let mut rng = rng();
        b.to_async(runtime).iter(|| {
            let key = &f.keys[rng.random_range(0..WARM_KEYS)];
            async move { f.failures.note(f.store.get_item(key).await.ok().flatten()) }
        })
    });
    group.bench_function("quickstore/get_arc", |b| {
        let mut rng = rng();
        b.to_async(runtime).iter(|| {
            let key = &f.keys[rng.random_range(0..WARM_KEYS)];
            async move {
                f.failures
                    .note(f.store.get_arc::<Doc>(key).await.ok().flatten())
            }
        })
    });
    group.bench_function("quick_cache/get_arc_typed", |b| {
        let mut rng = rng();
        b.to_async(runtime).iter(|| {
            let name = f.rendered[rng.random_range(0..WARM_KEYS)].as_str();
            async move { f.failures.note(f.bare_typed.get(name)) }
        })
    });
    group.bench_function("quick_cache/get_arc", |b| {
        let mut rng = rng();
        b.to_async(runtime).iter(|| {
            let name = f.rendered[rng.random_range(0..WARM_KEYS)].as_str();
            async move { f.failures.note(f.bare.get(name)) }
        })
    });
    group.bench_function("quick_cache/get_from_item", |b| {
        let mut rng = rng();
        b.to_async(runtime).iter(|| {
            let name = f.rendered[rng.random_range(0..WARM_KEYS)].as_str();
            async move {
                let doc = f
                    .bare
                    .get(name)
                    .and_then(|item| serde_dynamo::from_item::<_, Doc>((*item).clone()).ok());
                f.failures.note(doc)
            }
        })
    });
    group.finish();
    f.check("hot_path/get", misses)
}

fn bench_get_many(
    c: &mut Criterion,
    runtime: &Runtime,
    f: &Fixture,
) -> Result<(), Box<dyn StdError>> {
    let misses = f.store.stats().misses;
    let mut group = c.benchmark_group("hot_path/get_many");
    group.bench_function("quickstore/get_many_items_100", |b| {
        let mut rng = rng();
        b.to_async(runtime).iter(|| {
            let set = &f.key_sets[rng.random_range(0..KEY_SETS)];
            async move {
                let items = f
                    .store
                    .get_many_items(set.iter().map(|&i| &f.keys[i]))
                    .await
                    .ok();
                f.failures.note(items.filter(|items| items.len() == MANY))
            }
        })
    });
    group.bench_function("quickstore/get_many_typed_100", |b| {
        let mut rng = rng();
        b.to_async(runtime).iter(|| {
            let set = &f.key_sets[rng.random_range(0..KEY_SETS)];
            async move {
                let docs = f
                    .store
                    .get_many::<Doc, _>(set.iter().map(|&i| &f.keys[i]))
                    .await
                    .ok();
                f.failures.note(docs.filter(|docs| docs.len() == MANY))
            }
        })
    });
    group.bench_function("quick_cache/get_100", |b| {
        let mut rng = rng();
        b.to_async(runtime).iter(|| {
            let set = &f.key_sets[rng.random_range(0..KEY_SETS)];
            async move {
                let items = bare_many(&f.bare, set.iter().map(|&i| f.rendered[i].as_str()));
                f.failures
                    .note(Some(items).filter(|items| items.len() == MANY))
            }
        })
    });
    group.bench_function("quick_cache/get_from_item_100", |b| {
        let mut rng = rng();
        b.to_async(runtime).iter(|| {
            let set = &f.key_sets[rng.random_range(0..KEY_SETS)];
            async move {
                let docs = bare_many_decoded(&f.bare, set.iter().map(|&i| f.rendered[i].as_str()));
                f.failures
                    .note(Some(docs).filter(|docs| docs.len() == MANY))
            }
        })
    });
    group.finish();
    f.check("hot_path/get_many", misses)
}

/// A store configured as the fixture's, but journaled in `dir` at `durability`, holding the
/// fixture's hot keys, flushed.
async fn journaled_store(
    dir: &Path,
    durability: Durability,
    f: &Fixture,
) -> Result<Store, Box<dyn StdError>> {
    let store = Store::builder(common::MemoryBackend::default())
        .flush_interval(FLUSH_INTERVAL)
        .batch_threshold(BATCH_THRESHOLD)
        .max_pending(MAX_PENDING)
        .journal(dir)
        .durability(durability)
        .open()
        .await?;
    for (key, doc) in f.hot_keys.iter().zip(&f.hot_docs) {
        store.upsert(key, doc).await?;
    }
    store.flush().await?;
    Ok(store)
}

fn bench_upsert(
    c: &mut Criterion,
    runtime: &Runtime,
    f: &Fixture,
) -> Result<(), Box<dyn StdError>> {
    let mut group = c.benchmark_group("hot_path/upsert");
    group.bench_function("quickstore/upsert", |b| {
        let mut rng = rng();
        b.to_async(runtime).iter(|| {
            let i = rng.random_range(0..HOT_KEYS);
            let (key, doc) = (&f.hot_keys[i], &f.hot_docs[i]);
            async move { f.failures.note(f.store.upsert(key, doc).await.ok()) }
        })
    });
    bench_apply(&mut group, runtime, f)?;
    let journaled = [
        (
            "quickstore/upsert_journal_interval_10ms",
            Durability::Interval(Duration::from_millis(10)),
        ),
        ("quickstore/upsert_journal_always", Durability::Always),
    ];
    for (name, durability) in journaled {
        let dir = tempfile::Builder::new()
            .prefix("quickstore-bench-hot-path-")
            .tempdir()?;
        let store = runtime.block_on(journaled_store(dir.path(), durability, f))?;
        group.bench_function(name, |b| {
            let mut rng = rng();
            b.to_async(runtime).iter(|| {
                let i = rng.random_range(0..HOT_KEYS);
                let (store, key, doc) = (&store, &f.hot_keys[i], &f.hot_docs[i]);
                async move { f.failures.note(store.upsert(key, doc).await.ok()) }
            })
        });
        let segments = store.stats().journal_segments;
        runtime.block_on(store.close())?;
        if segments == 0 {
            return Err(format!("hot_path/upsert/{name}: the store kept no journal").into());
        }
        dir.close()?;
    }
    group.finish();
    f.failures.check("hot_path/upsert")
}

/// Adds 1 to `key`'s [`COUNTER`] with `apply`, counting the increment in `increments` once it
/// is acknowledged.
async fn increment(f: &Fixture, key: &Key, increments: &AtomicU64) -> Option<()> {
    let done = f.store.apply(key, Delta::new().add(COUNTER, 1)).await.ok();
    if done.is_some() {
        increments.fetch_add(1, Ordering::Relaxed);
    }
    f.failures.note(done)
}

/// Benchmarks, in `group`, the acknowledgement of an `apply` adding 1 to [`COUNTER`]: on one
/// hot key every time, and uniform over the hot keys. Flushes the store before (so that the
/// keys start clean) and after, and checks that the counters in the table gained one per
/// increment acknowledged.
fn bench_apply(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    runtime: &Runtime,
    f: &Fixture,
) -> Result<(), Box<dyn StdError>> {
    runtime.block_on(f.store.flush())?;
    let before = f.counters_in_table()?;
    let increments = AtomicU64::new(0);
    let increments = &increments;
    let hot_counter = &f.hot_keys[0];
    group.bench_function("quickstore/apply_hot_counter", |b| {
        b.to_async(runtime)
            .iter(|| increment(f, hot_counter, increments))
    });
    group.bench_function("quickstore/apply_spread", |b| {
        let mut rng = rng();
        b.to_async(runtime).iter(|| {
            let key = &f.hot_keys[rng.random_range(0..HOT_KEYS)];
            increment(f, key, increments)
        })
    });
    runtime.block_on(f.store.flush())?;
    let after = f.counters_in_table()?;
    let increments = increments.load(Ordering::Relaxed);
    if after != before + increments {
        return Err(format!(
            "hot_path/upsert: {increments} increments acknowledged took the counters in the \
             table from {before} to {after}"
        )
        .into());
    }
    Ok(())
}

fn bench_update_with(
    c: &mut Criterion,
    runtime: &Runtime,
    f: &Fixture,
) -> Result<(), Box<dyn StdError>> {
    let misses = f.store.stats().misses;
    let before = runtime.block_on(f.hot_counters())?;
    let increments = AtomicU64::new(0);
    let increments = &increments;
    let mut group = c.benchmark_group("hot_path/update_with");
    group.bench_function("quickstore/update_with_typed", |b| {
        let mut rng = rng();
        b.to_async(runtime).iter(|| {
            let key = &f.hot_keys[rng.random_range(0..HOT_KEYS)];
            async move {
                let counter = f
                    .store
                    .update_with(key, |doc: Option<Doc>| match doc {
                        Some(mut doc) => {
                            doc.counter += 1;
                            let counter = doc.counter;
                            (Change::Put(doc), Some(counter))
                        }
                        None => (Change::Keep, None),
                    })
                    .await
                    .ok()
                    .flatten();
                if counter.is_some() {
                    increments.fetch_add(1, Ordering::Relaxed);
                }
                f.failures.note(counter)
            }
        })
    });
    group.bench_function("quickstore/update_item_with", |b| {
        let mut rng = rng();
        b.to_async(runtime).iter(|| {
            let key = &f.hot_keys[rng.random_range(0..HOT_KEYS)];
            async move {
                let done = f
                    .store
                    .update_item_with(key, |item| match item.and_then(incremented) {
                        Some(item) => (Change::Put(item), Some(())),
                        None => (Change::Keep, None),
                    })
                    .await
                    .ok()
                    .flatten();
                if done.is_some() {
                    increments.fetch_add(1, Ordering::Relaxed);
                }
                f.failures.note(done)
            }
        })
    });
    group.finish();
    f.check("hot_path/update_with", misses)?;
    let after = runtime.block_on(f.hot_counters())?;
    let increments = increments.load(Ordering::Relaxed);
    if after != before + increments {
        return Err(format!(
            "hot_path/update_with: {increments} increments took the counters from {before} to \
             {after}"
        )
        .into());
    }
    Ok(())
}

/// An operation the two-thread benchmarks repeat.
#[derive(Debug, Clone, Copy)]
enum Op {
    GetTyped,
    GetItem,
    GetArc,
    BareGet,
    BareGetTyped,
    Upsert,
}

impl Op {
    /// Does the operation once on a key picked by `rng`, noting a failure in `f.failures`.
    async fn once(self, f: &Fixture, rng: &mut SmallRng) {
        match self {
            Op::GetTyped => {
                let key = &f.keys[rng.random_range(0..WARM_KEYS)];
                black_box(
                    f.failures
                        .note(f.store.get::<Doc>(key).await.ok().flatten()),
                );
            }
            Op::GetItem => {
                let key = &f.keys[rng.random_range(0..WARM_KEYS)];
                black_box(f.failures.note(f.store.get_item(key).await.ok().flatten()));
            }
            Op::GetArc => {
                let key = &f.keys[rng.random_range(0..WARM_KEYS)];
                black_box(
                    f.failures
                        .note(f.store.get_arc::<Doc>(key).await.ok().flatten()),
                );
            }
            Op::BareGet => {
                let name = f.rendered[rng.random_range(0..WARM_KEYS)].as_str();
                black_box(f.failures.note(f.bare.get(name)));
            }
            Op::BareGetTyped => {
                let name = f.rendered[rng.random_range(0..WARM_KEYS)].as_str();
                black_box(f.failures.note(f.bare_typed.get(name)));
            }
            Op::Upsert => {
                let i = rng.random_range(0..HOT_KEYS);
                let (key, doc) = (&f.hot_keys[i], &f.hot_docs[i]);
                black_box(f.failures.note(f.store.upsert(key, doc).await.ok()));
            }
        }
    }
}

/// Runs `iters` operations `op`, split evenly across `tasks` tasks spawned at once; returns
/// the wall time until all are done. `sample` varies the tasks' key streams from sample to
/// sample.
async fn run_tasks(f: Arc<Fixture>, op: Op, tasks: usize, iters: u64, sample: u64) -> Duration {
    let tasks = tasks as u64;
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let ops = iters / tasks + u64::from(task < iters % tasks);
            let seed = SEED ^ sample.rotate_left(32) ^ task.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let f = Arc::clone(&f);
            tokio::spawn(async move {
                let mut rng = SmallRng::seed_from_u64(seed);
                for _ in 0..ops {
                    op.once(&f, &mut rng).await;
                }
            })
        })
        .collect();
    for handle in handles {
        if handle.await.is_err() {
            f.failures.fail();
        }
    }
    started.elapsed()
}

/// Benchmarks each of `ops` in `group` from `tasks` tasks at once on `runtime`.
fn bench_tasks(
    c: &mut Criterion,
    runtime: &Runtime,
    f: &Arc<Fixture>,
    (group, tasks): (&str, usize),
    ops: &[(&str, Op)],
) -> Result<(), Box<dyn StdError>> {
    let misses = f.store.stats().misses;
    let mut bench_group = c.benchmark_group(group);
    for &(name, op) in ops {
        bench_group.bench_function(name, |b| {
            let mut sample = 0;
            b.to_async(runtime).iter_custom(|iters| {
                sample += 1;
                run_tasks(Arc::clone(f), op, tasks, iters, sample)
            })
        });
    }
    bench_group.finish();
    f.check(group, misses)
}

fn main() -> Result<(), Box<dyn StdError>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let fixture = Arc::new(runtime.block_on(Fixture::new())?);
    let mut criterion = criterion();
    bench_get(&mut criterion, &runtime, &fixture)?;
    bench_get_many(&mut criterion, &runtime, &fixture)?;
    bench_upsert(&mut criterion, &runtime, &fixture)?;
    bench_update_with(&mut criterion, &runtime, &fixture)?;
    bench_tasks(
        &mut criterion,
        &runtime,
        &fixture,
        ("hot_path/get_2_threads", TASKS),
        &[
            ("quickstore/get_typed", Op::GetTyped),
            ("quickstore/get_item", Op::GetItem),
            ("quickstore/get_arc", Op::GetArc),
            ("quick_cache/get_arc_typed", Op::BareGetTyped),
            ("quick_cache/get_arc", Op::BareGet),
        ],
    )?;
    bench_tasks(
        &mut criterion,
        &runtime,
        &fixture,
        ("hot_path/upsert_2_threads", TASKS),
        &[("quickstore/upsert", Op::Upsert)],
    )?;
    for tasks in MANY_TASKS {
        let workers = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(tasks)
            .enable_all()
            .build()?;
        bench_tasks(
            &mut criterion,
            &workers,
            &fixture,
            (&format!("hot_path/get_{tasks}_tasks"), tasks),
            &[
                ("quickstore/get_item", Op::GetItem),
                ("quickstore/get_arc", Op::GetArc),
                ("quick_cache/get_arc_typed", Op::BareGetTyped),
                ("quick_cache/get_arc", Op::BareGet),
            ],
        )?;
    }
    runtime.block_on(fixture.store.close())?;
    criterion.final_summary();
    Ok(())
}
