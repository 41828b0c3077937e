//! Journal cost: how long an upsert takes to be acknowledged, and how many are acknowledged per
//! second, with no journal, with `Durability::Interval(10ms)` and with `Durability::Always`,
//! from 1, 8 and 64 concurrent tasks.
//!
//! Everything goes through the public API: a [`Store`] over an in-memory [`Backend`] that
//! accepts every write at once, so that the backend is not what is measured. The journal lives
//! in a fresh temporary directory (under `$TMPDIR`, normally `/tmp`), so the cost of a sync is
//! that of the disk behind it.
//!
//! One criterion iteration is one acknowledged upsert; the iterations of a sample are split
//! evenly across the tasks, which run at once. The time per iteration is therefore wall time
//! divided by upserts: the latency of one upsert with one task, the inverse of the throughput
//! with several (the latency each task sees is about `tasks` times longer).
//!
//! Run with `cargo bench --features testing --bench journal`; benchmark names are
//! `journal/upsert/<policy>/tasks=<n>`.

mod common;

use std::error::Error as StdError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use parking_lot::Mutex;
use quickstore::{Durability, Key, Store};
use rand::distr::Alphanumeric;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng as _};
use serde::Serialize;
use tokio::runtime::Runtime;

/// Distinct keys the upserts spread over.
const KEYS: usize = 4096;

/// Bytes of payload in each value.
const VALUE_BYTES: usize = 100;

/// Seed of every random choice (payloads and keys).
const SEED: u64 = 42;

/// Concurrent tasks issuing upserts.
const TASK_COUNTS: [usize; 3] = [1, 8, 64];

/// The flusher writes what is dirty this often: often enough that it runs throughout (and the
/// journal's segments are released), rarely enough that it does not dominate the measurement.
const FLUSH_INTERVAL: Duration = Duration::from_millis(50);

/// Small journal segments, so that rotation and release happen during the measurement.
const SEGMENT_BYTES: u64 = 16 * 1024 * 1024;

/// The kind of the benchmark's keys.
const KIND: &str = "BenchItem";

/// The value upserted: about `VALUE_BYTES` of payload and a counter.
#[derive(Debug, Clone, Serialize)]
struct Value<'a> {
    version: u64,
    payload: &'a str,
}

/// A journal policy under test.
#[derive(Debug, Clone, Copy)]
enum Policy {
    /// No journal: acknowledged from memory.
    None,
    /// `Durability::Interval(10ms)`: acknowledged once written to the operating system.
    Interval,
    /// `Durability::Always`: acknowledged once synced.
    Always,
}

impl Policy {
    const ALL: [Policy; 3] = [Policy::None, Policy::Interval, Policy::Always];

    fn name(self) -> &'static str {
        match self {
            Policy::None => "none",
            Policy::Interval => "interval-10ms",
            Policy::Always => "always",
        }
    }
}

/// What every task of every sample shares.
struct Fixture {
    store: Store,
    keys: Arc<[Key]>,
    payloads: Arc<[String]>,
    /// Counts samples, so that each draws a different (but reproducible) key sequence.
    samples: AtomicU64,
    /// The first error an upsert returned, reported once the benchmark is done.
    error: Arc<Mutex<Option<String>>>,
}

impl Fixture {
    /// Runs `iters` upserts split across `tasks` concurrent tasks; returns the wall time.
    async fn run(&self, iters: u64, tasks: usize) -> Duration {
        let sample = self.samples.fetch_add(1, Ordering::Relaxed);
        let per_task = iters / tasks as u64;
        let extra = iters % tasks as u64;
        let started = Instant::now();
        let mut handles = Vec::with_capacity(tasks);
        for task in 0..tasks as u64 {
            let ops = per_task + u64::from(task < extra);
            let store = self.store.clone();
            let keys = Arc::clone(&self.keys);
            let payloads = Arc::clone(&self.payloads);
            let error = Arc::clone(&self.error);
            let seed = SEED ^ sample.rotate_left(32) ^ task.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            handles.push(tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(seed);
                for version in 0..ops {
                    let index = rng.random_range(0..keys.len());
                    let value = Value {
                        version,
                        payload: &payloads[index],
                    };
                    if let Err(err) = store.upsert(&keys[index], &value).await {
                        error.lock().get_or_insert_with(|| err.to_string());
                        return;
                    }
                }
            }));
        }
        for handle in handles {
            if let Err(err) = handle.await {
                self.error
                    .lock()
                    .get_or_insert_with(|| format!("an upsert task failed: {err}"));
            }
        }
        started.elapsed()
    }
}

/// Opens a store over a fresh in-memory backend, journaled in `dir` as `policy` says.
async fn open_store(policy: Policy, dir: &std::path::Path) -> quickstore::Result<Store> {
    let builder = Store::builder(common::MemoryBackend::default())
        .flush_interval(FLUSH_INTERVAL)
        .batch_threshold(KEYS);
    let builder = match policy {
        Policy::None => builder,
        Policy::Interval => builder
            .journal(dir)
            .durability(Durability::Interval(Duration::from_millis(10)))
            .journal_segment_bytes(SEGMENT_BYTES),
        Policy::Always => builder
            .journal(dir)
            .durability(Durability::Always)
            .journal_segment_bytes(SEGMENT_BYTES),
    };
    builder.open().await
}

fn bench_upserts(
    c: &mut Criterion,
    runtime: &Runtime,
    keys: &Arc<[Key]>,
    payloads: &Arc<[String]>,
) -> Result<(), Box<dyn StdError>> {
    let mut group = c.benchmark_group("journal/upsert");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8))
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(1));
    for policy in Policy::ALL {
        for tasks in TASK_COUNTS {
            let dir = tempfile::Builder::new()
                .prefix("quickstore-bench-journal-")
                .tempdir()?;
            let store = runtime.block_on(open_store(policy, dir.path()))?;
            let fixture = Fixture {
                store: store.clone(),
                keys: Arc::clone(keys),
                payloads: Arc::clone(payloads),
                samples: AtomicU64::new(0),
                error: Arc::default(),
            };
            group.bench_function(
                BenchmarkId::new(policy.name(), format!("tasks={tasks}")),
                |b| {
                    b.to_async(runtime)
                        .iter_custom(|iters| fixture.run(iters, tasks))
                },
            );
            let closed = runtime.block_on(store.close());
            if let Some(err) = fixture.error.lock().take() {
                return Err(format!("{}/tasks={tasks}: {err}", policy.name()).into());
            }
            closed?;
            dir.close()?;
        }
    }
    group.finish();
    Ok(())
}

fn main() -> Result<(), Box<dyn StdError>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut rng = StdRng::seed_from_u64(SEED);
    let keys: Arc<[Key]> = (0..KEYS)
        .map(|i| Key::new(KIND, format!("item-{i:05}")))
        .collect::<Result<_, _>>()?;
    let payloads: Arc<[String]> = (0..KEYS)
        .map(|_| {
            (&mut rng)
                .sample_iter(Alphanumeric)
                .take(VALUE_BYTES)
                .map(char::from)
                .collect()
        })
        .collect();
    let mut criterion = Criterion::default().configure_from_args();
    bench_upserts(&mut criterion, &runtime, &keys, &payloads)?;
    criterion.final_summary();
    Ok(())
}
