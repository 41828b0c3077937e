//! Hot paths: what a cached read, a many-key cached read and an upsert acknowledgement cost,
//! next to a bare `quick_cache` holding the same items, so that quickstore's overhead shows as
//! a ratio within one run.
//!
//! Everything goes through the public API: a [`Store`] with no journal over an in-memory
//! [`Backend`] that accepts every write at once. The values are a [`Doc`] of about 200 bytes.
//!
//! - `hot_path/get`: a warm typed `get::<Doc>` and a warm `get_item`, uniform over
//!   [`WARM_KEYS`] cached keys; beside them, in the same group, a bare
//!   `quick_cache::sync::Cache<String, Arc<Item>>` holding the same items: its `get` alone, and
//!   its `get` followed by `serde_dynamo::from_item` of a copy of the item into a `Doc`, which is
//!   what a typed read costs without a cache library around it. `harness/pick_key` is the loop
//!   alone (picking a key), the floor under every figure.
//! - `hot_path/get_many`: `get_many_items` of [`MANY`] distinct cached keys, beside the same
//!   lookups in the bare cache collected into a map.
//! - `hot_path/upsert`: the acknowledgement of an `upsert` of a `Doc`, uniform over
//!   [`HOT_KEYS`] keys. The flusher runs every [`FLUSH_INTERVAL`] and never earlier (the batch
//!   threshold is above the hot set), so almost every upsert finds its key already dirty.
//!
//! Each benchmark runs the whole timing loop of a sample inside one `block_on` of a two-worker
//! multi-thread Tokio runtime (criterion's `to_async(..).iter`); the flusher runs on the
//! workers. Keys are picked by a seeded `SmallRng`.
//!
//! Run with `cargo bench --bench hot_path`.

mod common;

use std::collections::HashMap;
use std::error::Error as StdError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkGroup, Criterion};
use quickstore::{Item, Key, Store};
use rand::distr::Alphanumeric;
use rand::rngs::{SmallRng, StdRng};
use rand::{Rng, SeedableRng as _};
use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;

/// Cached keys the reads pick from.
const WARM_KEYS: usize = 10_000;

/// Keys the upserts pick from.
const HOT_KEYS: usize = 1_000;

/// Keys read by one `get_many_items`.
const MANY: usize = 100;

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
        let store = Store::builder(common::MemoryBackend::default())
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

fn configure(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
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

fn bench_get(c: &mut Criterion, runtime: &Runtime, f: &Fixture) -> Result<(), Box<dyn StdError>> {
    let misses = f.store.stats().misses;
    let mut group = c.benchmark_group("hot_path/get");
    configure(&mut group);
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
    configure(&mut group);
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
    group.finish();
    f.check("hot_path/get_many", misses)
}

fn bench_upsert(
    c: &mut Criterion,
    runtime: &Runtime,
    f: &Fixture,
) -> Result<(), Box<dyn StdError>> {
    let mut group = c.benchmark_group("hot_path/upsert");
    configure(&mut group);
    group.bench_function("quickstore/upsert", |b| {
        let mut rng = rng();
        b.to_async(runtime).iter(|| {
            let i = rng.random_range(0..HOT_KEYS);
            let (key, doc) = (&f.hot_keys[i], &f.hot_docs[i]);
            async move { f.failures.note(f.store.upsert(key, doc).await.ok()) }
        })
    });
    group.finish();
    f.failures.check("hot_path/upsert")
}

fn main() -> Result<(), Box<dyn StdError>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let fixture = runtime.block_on(Fixture::new())?;
    let mut criterion = Criterion::default().configure_from_args();
    bench_get(&mut criterion, &runtime, &fixture)?;
    bench_get_many(&mut criterion, &runtime, &fixture)?;
    bench_upsert(&mut criterion, &runtime, &fixture)?;
    runtime.block_on(fixture.store.close())?;
    criterion.final_summary();
    Ok(())
}
