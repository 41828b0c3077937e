//! Model-based tests: random operations applied both to a store and to a plain map, through a
//! backend injecting seeded transient faults and across clean restarts and crashes of a
//! journaled store, which must agree on every answer and, once flushed, on the backend's
//! contents; and many tasks mutating overlapping keys at once, checked against invariants that
//! hold whatever the interleaving.

#[macro_use]
mod common;

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Debug;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::{Dynalite, Fixture, TestResult};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use quickstore::backend::{Backend, BatchGet, Condition, Conditional, Write};
use quickstore::testing::{Faults, FaultyBackend};
use quickstore::{AttributeValue, Change, Durability, Error, Item, Key, RetryPolicy, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tempfile::TempDir;
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
//
// Each case draws a store setup (with or without a journal), the backend's initial items, the
// faults the backend injects with their seed, and a sequence of operations, among them clean
// restarts and, with a journal, crashes. The store must answer every operation as the model
// does, hold every acknowledged mutation through faults, restarts and crashes, and leave the
// backend holding exactly the model once flushed or closed.
//
// Replaying a failure: every random choice of a run follows from one model seed (the cases come
// from it, and each case's fault seed, part of the case, from them). The run prints it, and a
// failure names it with the minimal failing case, fault seed included. Run
//
//     QUICKSTORE_MODEL_SEED=<seed> cargo test --features testing --test model <test name>
//
// to draw the same cases in the same order, the same faults for the same requests, and shrink
// the failure again. The seed does not fix timing (when the flusher sends what, relative to the
// operations), so a failure that depends on it may take a few runs to come back, and may not
// shrink; setups that do not flush eagerly replay most closely. To pin one case down, build it
// from the printed `Case` and pass it to `run_case`.

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
    /// Close the store and open another over the same backend and journal, with an empty cache.
    Restart,
    /// Kill the store, as kill -9 kills its process: no request it sends from then on reaches
    /// the backend (those already sent are answered), it is dropped without `close`, and another
    /// store opens over its journal as the crash left it. The new store must read as the model
    /// at once; with `then_flush` it is flushed and the backend checked too, without, its
    /// recovered writes stay pending for the operations that follow (another crash, say). Only
    /// in cases with a journal.
    Crash {
        then_flush: bool,
    },
}

#[derive(Debug, Clone)]
struct Setup {
    shards: usize,
    cache_capacity: u64,
    flushing: Flushing,
    /// Journal every mutation. Only cases with a journal crash.
    journal: Option<JournalSetup>,
}

/// When the flusher writes.
#[derive(Debug, Clone, Copy)]
enum Flushing {
    /// Every few milliseconds.
    Eager,
    /// Whenever 3 keys wait: up to 2 keys stay pending, for any number of operations, while
    /// the others are written (and their journal segments released).
    EveryThirdKey,
    /// Only on `flush` and `close`.
    Lazy,
}

fn flushing_strategy() -> impl Strategy<Value = Flushing> {
    prop_oneof![
        Just(Flushing::Eager),
        Just(Flushing::EveryThirdKey),
        Just(Flushing::Lazy),
    ]
}

#[derive(Debug, Clone)]
struct JournalSetup {
    /// When a mutation is acknowledged. Each durability promises that a crash of the process
    /// loses nothing acknowledged (docs/GUARANTEES.md); `Interval(1 h)` acknowledges what is
    /// written to the operating system and, within a case, never syncs.
    durability: Durability,
    /// Small segments are rotated every few mutations, and released once the backend has them.
    segment_bytes: u64,
}

/// Which transient faults the backend injects: the store retries each until its request
/// succeeds, so none of them may lose a write. Every probability is below one, so that retries
/// get through. Permanent errors and refused keys, which drop writes by design, are covered in
/// `tests/faults.rs`.
#[derive(Debug, Clone, Copy)]
enum FaultKind {
    None,
    /// Requests throttled, nothing applied.
    Throttling,
    /// Batches applied only in part, the rest reported unprocessed.
    PartialBatches,
    /// Connections reset before a request is sent (nothing applied), or after it was applied:
    /// the answer is lost, and the store sees an error for a write that was made.
    LostAnswers,
    /// Every request takes a few milliseconds: writes are still in flight while the next
    /// operations run, and when a crash comes.
    Slow,
    /// Throttling, partial batches and lost answers together, a little latency, and now and
    /// then a request that never answers (ended by the store's request timeout, and never
    /// applied).
    Mix,
}

#[derive(Debug, Clone, Copy)]
struct FaultSetup {
    kind: FaultKind,
    /// Seeds the faults of the case's first store; the n-th store opened adds n.
    seed: u64,
}

impl FaultSetup {
    /// The faults of the case's `instance`-th store. Each store opened gets its own, so that the
    /// requests of a crashed store draw nothing from the next store's faults.
    fn faults(&self, instance: u64) -> Faults {
        let faults = Faults::new().seed(self.seed.wrapping_add(instance));
        match self.kind {
            FaultKind::None => faults,
            FaultKind::Throttling => faults.throttle(0.3),
            FaultKind::PartialBatches => faults.partial(0.5),
            FaultKind::LostAnswers => faults.reset_before(0.1).reset_after(0.3),
            FaultKind::Slow => faults.latency(Duration::from_millis(1), Duration::from_millis(10)),
            FaultKind::Mix => faults
                .throttle(0.1)
                .partial(0.25)
                .reset_before(0.05)
                .reset_after(0.15)
                .timeout(0.01, None)
                .latency(Duration::ZERO, Duration::from_millis(2)),
        }
    }
}

#[derive(Debug, Clone)]
struct Case {
    setup: Setup,
    faults: FaultSetup,
    /// What the backend holds before the first store opens.
    initial: BTreeMap<u8, Val>,
    ops: Vec<Op>,
}

fn val_strategy() -> impl Strategy<Value = Val> {
    (0u32..1000, "[a-z]{1,40}").prop_map(|(n, s)| Val { n, s })
}

/// Operations on the store, and the restarts and flushes between them.
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

/// The operations of a case: crashes too, if the store has a journal.
fn ops_strategy(journaled: bool, max_ops: usize) -> BoxedStrategy<Vec<Op>> {
    if journaled {
        let op = prop_oneof![
            20 => op_strategy(),
            1 => any::<bool>().prop_map(|then_flush| Op::Crash { then_flush }),
        ];
        vec(op, 1..=max_ops).boxed()
    } else {
        vec(op_strategy(), 1..=max_ops).boxed()
    }
}

fn journal_strategy() -> impl Strategy<Value = Option<JournalSetup>> {
    let durability = prop_oneof![
        Just(Durability::Always),
        Just(Durability::Interval(Duration::from_secs(3600))),
    ];
    let segment_bytes = prop_oneof![Just(1), Just(1024), Just(64 * 1024 * 1024)];
    let journal = (durability, segment_bytes).prop_map(|(durability, segment_bytes)| {
        Some(JournalSetup {
            durability,
            segment_bytes,
        })
    });
    prop_oneof![1 => Just(None), 3 => journal]
}

fn setup_strategy() -> impl Strategy<Value = Setup> {
    prop_oneof![
        (flushing_strategy(), journal_strategy()).prop_map(|(flushing, journal)| Setup {
            shards: 64,
            cache_capacity: 64 * 1024 * 1024,
            flushing,
            journal,
        }),
        // A cache that holds one or two items per shard: entries are evicted between ops.
        (
            1usize..=3,
            150u64..=450,
            flushing_strategy(),
            journal_strategy()
        )
            .prop_map(|(shards, per_shard, flushing, journal)| Setup {
                shards,
                cache_capacity: per_shard * shards as u64,
                flushing,
                journal,
            }),
    ]
}

fn fault_strategy() -> impl Strategy<Value = FaultSetup> {
    let kind = prop_oneof![
        1 => Just(FaultKind::None),
        1 => Just(FaultKind::Throttling),
        1 => Just(FaultKind::PartialBatches),
        1 => Just(FaultKind::LostAnswers),
        1 => Just(FaultKind::Slow),
        2 => Just(FaultKind::Mix),
    ];
    (kind, any::<u64>()).prop_map(|(kind, seed)| FaultSetup { kind, seed })
}

fn case_strategy(max_ops: usize) -> impl Strategy<Value = Case> {
    (
        setup_strategy(),
        fault_strategy(),
        btree_map(0..KEYS, val_strategy(), 0..usize::from(KEYS)),
    )
        .prop_flat_map(move |(setup, faults, initial)| {
            let ops = ops_strategy(setup.journal.is_some(), max_ops);
            (Just(setup), Just(faults), Just(initial), ops)
        })
        .prop_map(|(setup, faults, initial, ops)| Case {
            setup,
            faults,
            initial,
            ops,
        })
}

/// Retries fast enough for many cases: short backoff without jitter (so that a replay waits
/// alike), a request timeout that ends the injected requests that never answer, and reads that
/// keep trying through every fault a case injects rather than give up after the default 8
/// attempts.
fn retry_policy() -> RetryPolicy {
    RetryPolicy::default()
        .backoff(Duration::from_millis(1), Duration::from_millis(8))
        .jitter(false)
        .request_timeout(Some(Duration::from_millis(250)))
        .reads(64, Duration::from_secs(120))
}

/// A store's connection to the backend, which a crash cuts: from then on its requests wait for
/// ever, as a dead process sends nothing, while those already sent are still answered. Each
/// request runs as a task of its own, so that one the store stops waiting for (its request
/// timeout) counts as sent until the backend has answered it.
struct Link {
    inner: Arc<dyn Backend>,
    cut: AtomicBool,
    in_flight: Arc<AtomicUsize>,
}

/// One request sent and not yet answered.
struct Sent(Arc<AtomicUsize>);

impl Drop for Sent {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Link {
    fn new(inner: Arc<dyn Backend>) -> Self {
        Self {
            inner,
            cut: AtomicBool::new(false),
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Sends nothing more.
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
    }

    /// Waits until the backend has answered every request sent before the cut.
    async fn drained(&self) {
        while self.in_flight.load(Ordering::SeqCst) > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    async fn send<T: Send + 'static>(
        &self,
        request: impl std::future::Future<Output = quickstore::Result<T>> + Send + 'static,
    ) -> quickstore::Result<T> {
        // Counted before the cut is looked at: `drained` after `cut` sees every request that
        // went through.
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let sent = Sent(Arc::clone(&self.in_flight));
        if self.cut.load(Ordering::SeqCst) {
            drop(sent);
            return std::future::pending().await;
        }
        match tokio::spawn(async move {
            let _sent = sent;
            request.await
        })
        .await
        {
            Ok(answer) => answer,
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            // Cancelled: the case's runtime is shutting down.
            Err(_) => std::future::pending().await,
        }
    }
}

#[async_trait]
impl Backend for Link {
    async fn check_table(&self, partition_key: &str) -> quickstore::Result<()> {
        self.inner.check_table(partition_key).await
    }

    async fn get(
        &self,
        partition_key: &str,
        key: &str,
        consistent: bool,
    ) -> quickstore::Result<Option<Item>> {
        let (inner, partition_key, key) = (
            Arc::clone(&self.inner),
            partition_key.to_owned(),
            key.to_owned(),
        );
        self.send(async move { inner.get(&partition_key, &key, consistent).await })
            .await
    }

    async fn batch_get(
        &self,
        partition_key: &str,
        keys: &[String],
        consistent: bool,
    ) -> quickstore::Result<BatchGet> {
        let (inner, partition_key, keys) = (
            Arc::clone(&self.inner),
            partition_key.to_owned(),
            keys.to_vec(),
        );
        self.send(async move { inner.batch_get(&partition_key, &keys, consistent).await })
            .await
    }

    async fn batch_write(
        &self,
        partition_key: &str,
        writes: &[Write],
    ) -> quickstore::Result<Vec<usize>> {
        let (inner, partition_key, writes) = (
            Arc::clone(&self.inner),
            partition_key.to_owned(),
            writes.to_vec(),
        );
        self.send(async move { inner.batch_write(&partition_key, &writes).await })
            .await
    }

    async fn write_if(
        &self,
        partition_key: &str,
        write: &Write,
        condition: &Condition,
    ) -> quickstore::Result<Conditional> {
        let (inner, partition_key, write, condition) = (
            Arc::clone(&self.inner),
            partition_key.to_owned(),
            write.clone(),
            condition.clone(),
        );
        self.send(async move { inner.write_if(&partition_key, &write, &condition).await })
            .await
    }

    fn supports_conditional_writes(&self) -> bool {
        self.inner.supports_conditional_writes()
    }
}

/// A store of a case, and what stands between it and the fixture's backend.
struct Opened {
    store: Store,
    link: Arc<Link>,
    faulty: Arc<FaultyBackend>,
}

/// Opens the case's `instance`-th store, over a link and faults of its own, journaling in
/// `journal` if the setup has a journal.
async fn open(fixture: &Fixture, case: &Case, journal: &Path, instance: u64) -> TestResult<Opened> {
    let link = Arc::new(Link::new(fixture.backend()));
    let faults = case.faults.faults(instance);
    let faulty = Arc::new(FaultyBackend::new(Arc::clone(&link), faults));
    let setup = &case.setup;
    let builder = Store::builder(Arc::clone(&faulty))
        .shards(setup.shards)
        .cache_capacity(setup.cache_capacity)
        .retry_policy(retry_policy());
    let builder = match setup.flushing {
        Flushing::Eager => builder
            .flush_interval(Duration::from_millis(2))
            .batch_threshold(2),
        Flushing::EveryThirdKey => builder
            .flush_interval(Duration::from_secs(3600))
            .batch_threshold(3),
        Flushing::Lazy => builder
            .flush_interval(Duration::from_secs(3600))
            .batch_threshold(100_000),
    };
    let builder = match &setup.journal {
        Some(setup) => builder
            .journal(journal)
            .durability(setup.durability)
            .journal_segment_bytes(setup.segment_bytes),
        None => builder,
    };
    Ok(Opened {
        store: builder.open().await?,
        link,
        faulty,
    })
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

/// Checks that the store reads every key as the model holds it.
async fn check_store(store: &Store, model: &BTreeMap<u8, Val>, when: &str) -> TestResult {
    for k in 0..KEYS {
        same(
            store.get::<Val>(&key(k)).await?,
            model.get(&k).cloned(),
            || format!("{when}: the store's {}", key(k)),
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
        Op::Flush | Op::Restart | Op::Crash { .. } => Ok(()),
    }
}

/// What a case did, summed over a run: a run that never injected a fault or crashed a store
/// would prove little.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    cases: usize,
    /// Faults injected, latency included.
    faults: usize,
    crashes: usize,
    /// Keys with mutations the stores opened after a crash found in the journal.
    recovered_keys: usize,
}

impl Tally {
    fn add(self, other: Tally) -> Tally {
        Tally {
            cases: self.cases + other.cases,
            faults: self.faults + other.faults,
            crashes: self.crashes + other.crashes,
            recovered_keys: self.recovered_keys + other.recovered_keys,
        }
    }
}

/// Runs `case` on `fixture`. Journals go in `journals`, which must outlive the case's runtime:
/// a crashed store's tasks may still use its directory until the runtime ends them.
async fn run_case(
    fixture: &Fixture,
    case: &Case,
    journals: &mut Vec<TempDir>,
) -> TestResult<Tally> {
    for (k, v) in &case.initial {
        fixture.put_raw(item(&key(*k).to_string(), v)).await?;
    }
    let mut model = case.initial.clone();
    let mut tally = Tally {
        cases: 1,
        ..Tally::default()
    };
    journals.push(tempfile::tempdir()?);
    let mut journal = journals.last().ok_or("no journal")?.path().to_owned();
    let mut instance = 0;
    let mut current = open(fixture, case, &journal, instance).await?;
    // Every faulty backend of the case, for the rules its requests broke.
    let mut backends = vec![Arc::clone(&current.faulty)];
    for (i, op) in case.ops.iter().enumerate() {
        let when = || format!("op {i}, {op:?}");
        apply(&current.store, &mut model, op)
            .await
            .map_err(|e| format!("{}: {e}", when()))?;
        match op {
            Op::Flush => {
                current.store.flush().await?;
                same(current.store.stats().pending, 0, when)?;
                check_backend(fixture, &model, &format!("{}, after a flush", when())).await?;
            }
            Op::Restart => {
                current.store.close().await?;
                check_backend(fixture, &model, &format!("{}, after a close", when())).await?;
                instance += 1;
                current = open(fixture, case, &journal, instance).await?;
                backends.push(Arc::clone(&current.faulty));
            }
            Op::Crash { then_flush } => {
                if case.setup.journal.is_none() {
                    return Err(format!("{}: a crash without a journal", when()).into());
                }
                // The process dies: it sends nothing more, the journal stays as it is on disk
                // (copied while the store still runs, so nothing it does on drop reaches the
                // copy), and the store goes without `close`. Requests it sent before are
                // answered before the next store opens, as a restarted process would find them.
                current.link.cut();
                let copy = common::crash_copy(&journal)?;
                drop(current.store);
                current.link.drained().await;
                journal = copy.path().to_owned();
                journals.push(copy);
                instance += 1;
                current = open(fixture, case, &journal, instance).await?;
                backends.push(Arc::clone(&current.faulty));
                tally.crashes += 1;
                let recovered = current.store.stats().recovery.map_or(0, |r| r.keys);
                tally.recovered_keys += recovered;
                let after = format!("{}, after recovering {recovered} keys", when());
                check_store(&current.store, &model, &after).await?;
                if *then_flush {
                    current.store.flush().await?;
                    same(current.store.stats().pending, 0, || after.clone())?;
                    check_backend(fixture, &model, &format!("{after}, flushed")).await?;
                }
            }
            _ => {}
        }
    }
    check_store(&current.store, &model, "at the end").await?;
    current.store.close().await?;
    check_backend(fixture, &model, "at the end, after a close").await?;
    for backend in &backends {
        let observed = backend.observed();
        same(observed.violations, Vec::new(), || "requests".into())?;
        tally.faults += observed.injected.len();
    }
    Ok(tally)
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

/// The run's model seed: `QUICKSTORE_MODEL_SEED` if set, else a random one.
fn model_seed() -> TestResult<u64> {
    match std::env::var("QUICKSTORE_MODEL_SEED") {
        Ok(text) => Ok(text
            .trim()
            .parse()
            .map_err(|e| format!("QUICKSTORE_MODEL_SEED={text:?}: {e}"))?),
        Err(std::env::VarError::NotPresent) => Ok(rand::random()),
        Err(err) => Err(format!("QUICKSTORE_MODEL_SEED: {err}").into()),
    }
}

/// Runs `cases` random cases of up to `max_ops` operations, each on a fixture from `fixture`,
/// all drawn from one model seed (see "Replaying a failure" above); `test` is the test's name,
/// for the replay command.
fn check_against_model<F, Fut>(test: &str, cases: u32, max_ops: usize, fixture: F) -> TestResult
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = TestResult<Fixture>>,
{
    let seed = model_seed()?;
    let replay = format!(
        "model seed {seed}; replay: QUICKSTORE_MODEL_SEED={seed} cargo test --features testing \
         --test model {test}"
    );
    // Shown if the test fails, whatever way it fails.
    println!("{replay}");
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(seed),
        ..Config::default()
    });
    let total = Cell::new(Tally::default());
    runner
        .run(&case_strategy(max_ops), |case| {
            let mut journals = Vec::new();
            // A runtime per case: the tasks of the stores it crashed end with it, before their
            // journal directories go.
            let tally = runtime().and_then(|rt| {
                rt.block_on(async {
                    let fixture = fixture().await?;
                    run_case(&fixture, &case, &mut journals).await
                })
            });
            drop(journals);
            let tally = tally.map_err(|e| TestCaseError::fail(describe(&*e)))?;
            total.set(total.get().add(tally));
            Ok(())
        })
        .map_err(|e| {
            let failure = format!("{e}\n{replay}");
            // Also printed as is: the test's error shows it escaped, on one line.
            println!("{failure}");
            failure
        })?;
    let total = total.get();
    println!("{total:?}");
    if total.faults == 0 || total.crashes == 0 {
        return Err(format!(
            "{total:?}: the cases should inject faults and crash stores\n{replay}"
        )
        .into());
    }
    Ok(())
}

#[test]
fn the_store_behaves_like_a_map_embedded() -> TestResult {
    check_against_model("the_store_behaves_like_a_map_embedded", 96, 60, || async {
        Fixture::embedded()
    })
}

#[test]
fn the_store_behaves_like_a_map_dynamodb() -> TestResult {
    // One server for every case; each case gets a fresh table.
    let server = Arc::new(Dynalite::start()?);
    check_against_model("the_store_behaves_like_a_map_dynamodb", 48, 50, || {
        Fixture::dynamodb_on(&server)
    })
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
