//! Model-based tests: random operations applied both to a store and to a plain map, which must
//! agree on every answer and, once flushed, on the backend's contents; and many tasks mutating
//! overlapping keys at once, checked against invariants that hold whatever the interleaving.

#[macro_use]
mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use common::{Dynalite, Fixture, TestResult};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use quickstore::testing::{Faults, FaultyBackend};
use quickstore::{AttributeValue, Change, Error, Item, Key, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

/// A stored value. `s` is never empty: dynalite refuses empty strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Val {
    n: u32,
    s: String,
}

/// The item the backend holds for `val` under `rendered`.
fn item(rendered: &str, val: &Val) -> Item {
    HashMap::from([
        ("_key".to_owned(), AttributeValue::S(rendered.to_owned())),
        ("n".to_owned(), AttributeValue::N(val.n.to_string())),
        ("s".to_owned(), AttributeValue::S(val.s.clone())),
    ])
}

/// Fails with both sides and some context when `got` is not `want`.
fn same<T: PartialEq + Debug>(got: T, want: T, what: impl FnOnce() -> String) -> TestResult {
    if got == want {
        Ok(())
    } else {
        Err(format!("{}: got {got:?}, the model says {want:?}", what()).into())
    }
}

/// The outcome of a call, as the model predicts it: `Ok`, or an error code.
fn outcome<T>(result: quickstore::Result<T>) -> TestResult<Result<T, &'static str>> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(err @ (Error::ItemExisted { .. } | Error::ItemNotExisted { .. })) => {
            Ok(Err(err.code()))
        }
        Err(err) => Err(format!("unexpected error: {err:?}").into()),
    }
}

// --- Sequential operations against a model ----------------------------------------------------

/// Keys are indices into a small key space, so that operations collide.
const KEYS: u8 = 8;

fn key(k: u8) -> Key {
    common::key("M", k)
}

#[derive(Debug, Clone)]
enum Op {
    Get(u8),
    Exists(u8),
    Insert(u8, Val),
    Update(u8, Val),
    Upsert(u8, Val),
    Delete(u8),
    /// `update_with`: put the value if the key holds one, else keep it absent; answer the
    /// previous value.
    UpdateWith(u8, Val),
    /// `update_with` deciding to delete.
    UpdateWithDelete(u8),
    GetMany(Vec<u8>),
    Flush,
    /// Close the store and open another over the same backend, with an empty cache.
    Restart,
}

#[derive(Debug, Clone)]
struct Setup {
    shards: usize,
    cache_capacity: u64,
    /// Write only on `flush` and `close`, instead of every few milliseconds.
    lazy: bool,
}

#[derive(Debug, Clone)]
struct Case {
    setup: Setup,
    /// What the backend holds before the first store opens.
    initial: BTreeMap<u8, Val>,
    ops: Vec<Op>,
}

fn val_strategy() -> impl Strategy<Value = Val> {
    (0u32..1000, "[a-z]{1,40}").prop_map(|(n, s)| Val { n, s })
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let k = || 0..KEYS;
    prop_oneof![
        3 => k().prop_map(Op::Get),
        2 => k().prop_map(Op::Exists),
        3 => (k(), val_strategy()).prop_map(|(k, v)| Op::Insert(k, v)),
        2 => (k(), val_strategy()).prop_map(|(k, v)| Op::Update(k, v)),
        2 => (k(), val_strategy()).prop_map(|(k, v)| Op::Upsert(k, v)),
        2 => k().prop_map(Op::Delete),
        2 => (k(), val_strategy()).prop_map(|(k, v)| Op::UpdateWith(k, v)),
        1 => k().prop_map(Op::UpdateWithDelete),
        1 => vec(k(), 0..usize::from(KEYS) + 3).prop_map(Op::GetMany),
        1 => Just(Op::Flush),
        1 => Just(Op::Restart),
    ]
}

fn setup_strategy() -> impl Strategy<Value = Setup> {
    prop_oneof![
        any::<bool>().prop_map(|lazy| Setup {
            shards: 64,
            cache_capacity: 64 * 1024 * 1024,
            lazy,
        }),
        // A cache that holds one or two items per shard: entries are evicted between ops.
        (1usize..=3, 150u64..=450, any::<bool>()).prop_map(|(shards, per_shard, lazy)| Setup {
            shards,
            cache_capacity: per_shard * shards as u64,
            lazy,
        }),
    ]
}

fn case_strategy(max_ops: usize) -> impl Strategy<Value = Case> {
    (
        setup_strategy(),
        btree_map(0..KEYS, val_strategy(), 0..usize::from(KEYS)),
        vec(op_strategy(), 1..=max_ops),
    )
        .prop_map(|(setup, initial, ops)| Case {
            setup,
            initial,
            ops,
        })
}

async fn open(backend: &Arc<FaultyBackend>, setup: &Setup) -> TestResult<Store> {
    let builder = Store::builder(Arc::clone(backend))
        .shards(setup.shards)
        .cache_capacity(setup.cache_capacity);
    let builder = if setup.lazy {
        builder
            .flush_interval(Duration::from_secs(3600))
            .batch_threshold(100_000)
    } else {
        builder
            .flush_interval(Duration::from_millis(2))
            .batch_threshold(2)
    };
    Ok(builder.open().await?)
}

/// Checks that the backend holds exactly the model.
async fn check_backend(fixture: &Fixture, model: &BTreeMap<u8, Val>, when: &str) -> TestResult {
    for k in 0..KEYS {
        let rendered = key(k).to_string();
        same(
            fixture.read_back(&rendered).await?,
            model.get(&k).map(|v| item(&rendered, v)),
            || format!("{when}: the backend's {rendered}"),
        )?;
    }
    Ok(())
}

/// Applies `op` to the store and the model, and checks that they answer alike.
async fn apply(store: &Store, model: &mut BTreeMap<u8, Val>, op: &Op) -> TestResult {
    match op {
        Op::Get(k) => {
            let got = store.get::<Val>(&key(*k)).await?;
            same(got, model.get(k).cloned(), || "get".into())
        }
        Op::Exists(k) => same(store.exists(&key(*k)).await?, model.contains_key(k), || {
            "exists".into()
        }),
        Op::Insert(k, v) => {
            let got = outcome(store.insert(&key(*k), v).await)?;
            let want = if model.contains_key(k) {
                Err("ItemExisted")
            } else {
                model.insert(*k, v.clone());
                Ok(())
            };
            same(got, want, || "insert".into())
        }
        Op::Update(k, v) => {
            let got = outcome(store.update(&key(*k), v).await)?;
            let want = match model.get_mut(k) {
                Some(current) => {
                    *current = v.clone();
                    Ok(())
                }
                None => Err("ItemNotExisted"),
            };
            same(got, want, || "update".into())
        }
        Op::Upsert(k, v) => {
            store.upsert(&key(*k), v).await?;
            model.insert(*k, v.clone());
            Ok(())
        }
        Op::Delete(k) => {
            store.delete(&key(*k)).await?;
            model.remove(k);
            Ok(())
        }
        Op::UpdateWith(k, v) => {
            let new = v.clone();
            let got = store
                .update_with(&key(*k), |current: Option<Val>| match current {
                    Some(previous) => (Change::Put(new), Some(previous)),
                    None => (Change::Keep, None),
                })
                .await?;
            let want = model.get(k).cloned();
            if want.is_some() {
                model.insert(*k, v.clone());
            }
            same(got, want, || "update_with".into())
        }
        Op::UpdateWithDelete(k) => {
            let got = store
                .update_with(&key(*k), |current: Option<Val>| {
                    (Change::<Val>::Delete, current)
                })
                .await?;
            same(got, model.remove(k), || "update_with delete".into())
        }
        Op::GetMany(ks) => {
            let keys: Vec<Key> = ks.iter().map(|k| key(*k)).collect();
            let got: BTreeMap<Key, Val> = store.get_many(&keys).await?.into_iter().collect();
            let want: BTreeMap<Key, Val> = ks
                .iter()
                .filter_map(|k| Some((key(*k), model.get(k)?.clone())))
                .collect();
            same(got, want, || "get_many".into())
        }
        // Done by the caller, which owns the store.
        Op::Flush | Op::Restart => Ok(()),
    }
}

async fn run_case(fixture: &Fixture, case: &Case) -> TestResult {
    for (k, v) in &case.initial {
        fixture.put_raw(item(&key(*k).to_string(), v)).await?;
    }
    let mut model = case.initial.clone();
    let backend = Arc::new(FaultyBackend::new(fixture.backend(), Faults::new()));
    let mut store = open(&backend, &case.setup).await?;
    for (i, op) in case.ops.iter().enumerate() {
        let when = || format!("op {i}, {op:?}");
        apply(&store, &mut model, op)
            .await
            .map_err(|e| format!("{}: {e}", when()))?;
        match op {
            Op::Flush => {
                store.flush().await?;
                same(store.stats().pending, 0, when)?;
                check_backend(fixture, &model, "after a flush").await?;
            }
            Op::Restart => {
                store.close().await?;
                check_backend(fixture, &model, "after a close").await?;
                store = open(&backend, &case.setup).await?;
            }
            _ => {}
        }
    }
    store.close().await?;
    check_backend(fixture, &model, "at the end").await?;
    let violations = backend.violations();
    same(violations, Vec::new(), || "requests".into())?;
    Ok(())
}

/// An error and its sources, one after the other: the SDK's own message is only "service error".
fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

fn runtime() -> TestResult<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Runs `cases` random cases of up to `max_ops` operations, each on a fixture from `fixture`.
fn check_against_model<F, Fut>(cases: u32, max_ops: usize, fixture: F) -> TestResult
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = TestResult<Fixture>>,
{
    let rt = runtime()?;
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&case_strategy(max_ops), |case| {
            rt.block_on(async {
                let fixture = fixture().await?;
                run_case(&fixture, &case).await
            })
            .map_err(|e| TestCaseError::fail(describe(&*e)))
        })
        .map_err(|e| e.to_string().into())
}

#[test]
fn the_store_behaves_like_a_map_embedded() -> TestResult {
    check_against_model(32, 60, || async { Fixture::embedded() })
}

#[test]
fn the_store_behaves_like_a_map_dynamodb() -> TestResult {
    // One server for every case; each case gets a fresh table.
    let server = Arc::new(Dynalite::start()?);
    check_against_model(16, 50, || Fixture::dynamodb_on(&server))
}

// --- Concurrent tasks -------------------------------------------------------------------------

const TASKS: u32 = 16;
const OPS_PER_TASK: u32 = 200;
/// Keys below this take every operation.
const FREE_KEYS: u8 = 8;
/// Keys from `FREE_KEYS` below this take only inserts, deletes and reads.
const INSERT_DELETE_KEYS: u8 = 14;
/// Keys from `INSERT_DELETE_KEYS` below this take only inserts and reads.
const ALL_KEYS: u8 = 20;

fn shared_key(k: u8) -> Key {
    common::key("C", k)
}

/// What one task saw succeed. Every value written is unique, so a value names its write.
#[derive(Debug, Default)]
struct Log {
    /// Values successfully stored by inserts, updates and upserts, by key.
    written: BTreeMap<u8, BTreeSet<(u32, String)>>,
    inserted: BTreeMap<u8, usize>,
    deleted: BTreeMap<u8, usize>,
    /// Values read, by key.
    read: BTreeMap<u8, BTreeSet<(u32, String)>>,
    attempted_inserts: BTreeMap<u8, usize>,
    /// The values `update_with` replaced, by key, one entry per replacement.
    replaced: BTreeMap<u8, Vec<(u32, String)>>,
}

impl Log {
    fn merge(&mut self, other: Log) {
        fn merge_sets<T: Ord>(a: &mut BTreeMap<u8, BTreeSet<T>>, b: BTreeMap<u8, BTreeSet<T>>) {
            for (k, set) in b {
                a.entry(k).or_default().extend(set);
            }
        }
        fn merge_counts(a: &mut BTreeMap<u8, usize>, b: BTreeMap<u8, usize>) {
            for (k, n) in b {
                *a.entry(k).or_default() += n;
            }
        }
        merge_sets(&mut self.written, other.written);
        merge_sets(&mut self.read, other.read);
        merge_counts(&mut self.inserted, other.inserted);
        merge_counts(&mut self.deleted, other.deleted);
        merge_counts(&mut self.attempted_inserts, other.attempted_inserts);
        for (k, mut replaced) in other.replaced {
            self.replaced.entry(k).or_default().append(&mut replaced);
        }
    }

    fn wrote(&mut self, k: u8, v: &Val) {
        self.written
            .entry(k)
            .or_default()
            .insert((v.n, v.s.clone()));
    }

    fn saw(&mut self, k: u8, v: &Val) {
        self.read.entry(k).or_default().insert((v.n, v.s.clone()));
    }

    fn count(map: &BTreeMap<u8, usize>, k: u8) -> usize {
        map.get(&k).copied().unwrap_or(0)
    }
}

/// One task's random operations; it holds no locks and does not coordinate with the others.
async fn churn(store: Store, task: u32) -> TestResult<Log> {
    let mut rng = StdRng::seed_from_u64(u64::from(task));
    let mut log = Log::default();
    for i in 0..OPS_PER_TASK {
        let k = rng.random_range(0..ALL_KEYS);
        let key = shared_key(k);
        let val = Val {
            n: task * OPS_PER_TASK + i,
            s: format!("t{task}o{i}"),
        };
        // Which operations the key's class allows.
        let choices = if k < FREE_KEYS {
            8
        } else if k < INSERT_DELETE_KEYS {
            4
        } else {
            3
        };
        match rng.random_range(0..choices) {
            0 => {
                if let Some(v) = store.get::<Val>(&key).await? {
                    log.saw(k, &v);
                }
            }
            1 => {
                store.exists(&key).await?;
            }
            2 => {
                *log.attempted_inserts.entry(k).or_default() += 1;
                if outcome(store.insert(&key, &val).await)?.is_ok() {
                    log.wrote(k, &val);
                    *log.inserted.entry(k).or_default() += 1;
                }
            }
            3 => {
                store.delete(&key).await?;
                *log.deleted.entry(k).or_default() += 1;
            }
            4 => {
                if outcome(store.update(&key, &val).await)?.is_ok() {
                    log.wrote(k, &val);
                }
            }
            5 => {
                store.upsert(&key, &val).await?;
                log.wrote(k, &val);
            }
            7 => {
                let new = val.clone();
                let previous = store
                    .update_with(&key, |current: Option<Val>| (Change::Put(new), current))
                    .await?;
                log.wrote(k, &val);
                if let Some(previous) = previous {
                    log.saw(k, &previous);
                    log.replaced
                        .entry(k)
                        .or_default()
                        .push((previous.n, previous.s));
                }
            }
            _ => {
                let ks: Vec<u8> = (0..3).map(|_| rng.random_range(0..ALL_KEYS)).collect();
                let keys: Vec<Key> = ks.iter().map(|k| shared_key(*k)).collect();
                let found: HashMap<Key, Val> = store.get_many(&keys).await?;
                for k in ks {
                    if let Some(v) = found.get(&shared_key(k)) {
                        log.saw(k, v);
                    }
                }
            }
        }
        if rng.random_bool(0.2) {
            tokio::task::yield_now().await;
        }
    }
    Ok(log)
}

async fn concurrent_tasks(fixture: Fixture, cache_capacity: u64, shards: usize) -> TestResult {
    let backend = Arc::new(FaultyBackend::new(fixture.backend(), Faults::new()));
    let store = Store::builder(Arc::clone(&backend))
        .cache_capacity(cache_capacity)
        .shards(shards)
        .flush_interval(Duration::from_millis(5))
        .open()
        .await?;
    let mut tasks = JoinSet::new();
    for task in 0..TASKS {
        tasks.spawn(churn(store.clone(), task));
    }
    let mut log = Log::default();
    while let Some(joined) = tasks.join_next().await {
        log.merge(joined??);
    }
    store.flush().await?;
    let none = BTreeSet::new();
    for k in 0..ALL_KEYS {
        let key = shared_key(k);
        let rendered = key.to_string();
        let written = log.written.get(&k).unwrap_or(&none);
        let inserted = Log::count(&log.inserted, k);
        let deleted = Log::count(&log.deleted, k);
        let ctx =
            || format!("{rendered}: {inserted} inserts, {deleted} deletes, wrote {written:?}");
        // The store and the backend agree once flushed.
        let view = store.get::<Val>(&key).await?;
        same(
            fixture.read_back(&rendered).await?,
            view.as_ref().map(|v| item(&rendered, v)),
            ctx,
        )?;
        // Whatever is there, or was ever read, some task stored successfully.
        if let Some(v) = &view {
            assert!(
                written.contains(&(v.n, v.s.clone())),
                "{}: final {v:?}",
                ctx()
            );
        } else {
            assert!(written.is_empty() || deleted > 0, "{}: lost", ctx());
        }
        for seen in log.read.get(&k).unwrap_or(&none) {
            assert!(written.contains(seen), "{}: read {seen:?}", ctx());
        }
        // Each value is written once, so a value replaced twice by `update_with` would mean
        // two read-modify-writes read the same state: neither would have been one step.
        let replaced = log.replaced.get(&k).map(Vec::as_slice).unwrap_or_default();
        let distinct: BTreeSet<_> = replaced.iter().collect();
        assert_eq!(
            distinct.len(),
            replaced.len(),
            "{}: replaced {replaced:?}",
            ctx()
        );
        if k >= FREE_KEYS {
            // Each key starts absent, and only an insert makes it present, only when absent:
            // between two successful inserts a delete must have removed the item.
            let present = usize::from(view.is_some());
            assert!(inserted <= deleted + present, "{}", ctx());
            assert!(view.is_none() || inserted > 0, "{}", ctx());
            assert_eq!(written.len(), inserted, "{}", ctx());
        }
        if k >= INSERT_DELETE_KEYS {
            // Nothing deletes these: exactly one insert wins, and its value stays.
            let attempted = Log::count(&log.attempted_inserts, k);
            assert_eq!(inserted, usize::from(attempted > 0), "{}", ctx());
            assert_eq!(view.is_some(), attempted > 0, "{}", ctx());
        }
    }
    // The key space was contended: every class of key saw successes.
    assert!(log.inserted.values().sum::<usize>() > 0);
    assert!(log.deleted.values().sum::<usize>() > 0);
    assert!(log.read.values().map(BTreeSet::len).sum::<usize>() > 0);
    store.close().await?;
    let violations = backend.violations();
    assert_eq!(violations, Vec::<String>::new());
    Ok(())
}

async fn concurrent_tasks_keep_the_store_and_backend_consistent(fixture: Fixture) -> TestResult {
    concurrent_tasks(fixture, 64 * 1024 * 1024, 8).await
}

async fn concurrent_tasks_stay_consistent_through_eviction(fixture: Fixture) -> TestResult {
    concurrent_tasks(fixture, 300, 2).await
}

on_both_backends!(
    concurrent_tasks_keep_the_store_and_backend_consistent,
    concurrent_tasks_stay_consistent_through_eviction,
);
