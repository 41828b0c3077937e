//! [`FaultyBackend`]: a backend wrapper that injects [`Faults`] from a seed, records and checks
//! the requests it sees ([`Observed`]), and holds requests at [`Gate`]s. The
//! [module](super) docs say what it is for.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::Gate;
use crate::backend::{
    Backend, BatchGet, Condition, Conditional, Write, MAX_BATCH_GET_KEYS, MAX_BATCH_WRITE_ITEMS,
};
use crate::delta::{Delta, Mark, Updated};
use crate::error::{Error, Result};
use crate::item::Item;

/// Which faults a [`FaultyBackend`] injects, and how it checks the requests it sees.
///
/// Built with chained calls from [`Faults::new`] (or `Faults::default()`, the same): every
/// fault is off, the seed is 0 and there is no monotonic attribute. Probabilities are per
/// request, clamped to `0.0..=1.0` (a NaN counts as 0).
///
/// A request meets its faults in this order; the first that fails it ends it: latency, its
/// turn at a serial backend, throttling, a reset before sending, a timeout, a refused key, a
/// permanent error, then the request is applied (partly, for a partial batch), then a reset
/// after applying.
///
/// `check_table` is passed through untouched: a store checks the table once, when it opens,
/// and does not retry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    seed: u64,
    throttle: f64,
    partial: f64,
    latency: Option<(Duration, Duration)>,
    serial: Option<Duration>,
    timeout: f64,
    answer_after: Option<Duration>,
    reset_before: f64,
    reset_after: f64,
    permanent: f64,
    refuse: HashSet<String>,
    refuse_reads: HashSet<String>,
    monotonic: Option<String>,
}

impl Faults {
    /// No faults, seed 0: a wrapper that only records and checks requests.
    pub fn new() -> Self {
        Self::default()
    }

    /// Seeds the random choices (default 0). The same seed and the same sequence of requests
    /// give the same faults.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Fails a request with DynamoDB's throttling error (made with [`Error::throttled`]:
    /// transient, and counted as a throttle by the store), without applying it. Default 0.
    pub fn throttle(mut self, probability: f64) -> Self {
        self.throttle = clamp(probability);
        self
    }

    /// Applies only part of a batch of two or more and reports the rest unprocessed, as
    /// DynamoDB's `UnprocessedItems` and `UnprocessedKeys` do. A batch read processes a
    /// random number of its first keys; a batch write applies a random subset of its writes.
    /// Either way at least one entry is processed and at least one is not. Default 0.
    pub fn partial(mut self, probability: f64) -> Self {
        self.partial = clamp(probability);
        self
    }

    /// Delays every request (but `check_table`) before it is sent by a duration drawn
    /// uniformly between `min` and `max`, inclusive (swapped if `max` is the smaller).
    /// Default: no delay.
    pub fn latency(mut self, min: Duration, max: Duration) -> Self {
        self.latency = Some((min.min(max), min.max(max)));
        self
    }

    /// Serves one request at a time, each taking `per_request` after its latency, as a backend
    /// that is one process (dynalite, DynamoDB Local) does: requests that arrive together
    /// queue, and each waits for the ones before it, so that latency grows with the requests in
    /// flight. `check_table` is not held. Default: requests are served in parallel.
    pub fn serial(mut self, per_request: Duration) -> Self {
        self.serial = Some(per_request);
        self
    }

    /// Makes a request time out: it never answers (`answer_after` is `None`), so only a
    /// request timeout such as [`RetryPolicy::request_timeout`](crate::RetryPolicy) ends it,
    /// or it answers normally after `answer_after`. Nothing is applied while it waits; a
    /// request abandoned while it waits is never applied. Default 0.
    pub fn timeout(mut self, probability: f64, answer_after: Option<Duration>) -> Self {
        self.timeout = clamp(probability);
        self.answer_after = answer_after;
        self
    }

    /// Fails a request with a transient error, a connection reset, before it reaches the
    /// table: nothing is applied. Default 0.
    pub fn reset_before(mut self, probability: f64) -> Self {
        self.reset_before = clamp(probability);
        self
    }

    /// Applies a request to the wrapped backend, then fails it with a transient error, a
    /// connection reset: what a connection lost while the answer was on its way looks like.
    /// The caller sees an error for writes that were made. Default 0.
    pub fn reset_after(mut self, probability: f64) -> Self {
        self.reset_after = clamp(probability);
        self
    }

    /// Fails a request with a permanent error (a `ValidationException`), without applying
    /// it. Default 0.
    pub fn permanent(mut self, probability: f64) -> Self {
        self.permanent = clamp(probability);
        self
    }

    /// Refuses for good every write request that carries a write of one of these rendered
    /// keys: the whole batch fails with a permanent `ValidationException` and nothing of it is
    /// applied, as DynamoDB fails a batch holding an invalid item. Conditional writes and deltas
    /// of these keys are refused too. Adds to the keys given before; default none.
    pub fn refuse<I, K>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = K>,
        K: Into<String>,
    {
        self.refuse.extend(keys.into_iter().map(Into::into));
        self
    }

    /// Refuses for good every read request that asks for one of these rendered keys: a
    /// `GetItem` of it, or a whole `BatchGetItem` holding it, fails with a permanent
    /// `ValidationException`, as DynamoDB fails a batch holding a key it cannot read. Adds to
    /// the keys given before; default none.
    pub fn refuse_reads<I, K>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = K>,
        K: Into<String>,
    {
        self.refuse_reads.extend(keys.into_iter().map(Into::into));
        self
    }

    /// Checks that the number attribute `attribute` of the items written under each key never
    /// decreases from one applied write to the next: a newer state overwritten by an older one
    /// is reported in [`Observed::violations`]. Writes without the attribute are not checked.
    /// Default: no such check.
    pub fn monotonic(mut self, attribute: impl Into<String>) -> Self {
        self.monotonic = Some(attribute.into());
        self
    }
}

/// A probability in `0.0..=1.0`, NaN as 0.
fn clamp(probability: f64) -> f64 {
    if probability.is_nan() {
        0.0
    } else {
        probability.clamp(0.0, 1.0)
    }
}

/// A [`Backend`] request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// [`Backend::check_table`].
    CheckTable,
    /// [`Backend::get`]: DynamoDB's `GetItem`.
    Get,
    /// [`Backend::batch_get`]: `BatchGetItem`.
    BatchGet,
    /// [`Backend::batch_write`]: `BatchWriteItem`.
    BatchWrite,
    /// [`Backend::write_if`]: a conditional `PutItem` or `DeleteItem`.
    WriteIf,
    /// [`Backend::update`]: `UpdateItem`.
    Update,
}

impl Operation {
    /// DynamoDB's name for the request (`"GetItem"`, ...); a conditional write is a
    /// `"PutItem"`, or a `"DeleteItem"` when it deletes.
    fn name(self, write: Option<&Write>) -> &'static str {
        match self {
            Operation::CheckTable => "DescribeTable",
            Operation::Get => "GetItem",
            Operation::BatchGet => "BatchGetItem",
            Operation::BatchWrite => "BatchWriteItem",
            Operation::WriteIf => match write {
                Some(Write::Delete(_)) => "DeleteItem",
                _ => "PutItem",
            },
            Operation::Update => "UpdateItem",
        }
    }
}

/// A fault a [`FaultyBackend`] injected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The request was delayed this long before it was sent ([`Faults::latency`]); recorded
    /// when the delay is not zero.
    Latency(Duration),
    /// The request was throttled ([`Faults::throttle`]).
    Throttle,
    /// The connection was reset before the request was sent ([`Faults::reset_before`]).
    ResetBefore,
    /// The request timed out: it never answers (`answer_after` is `None`), or answers after
    /// that long ([`Faults::timeout`]).
    Timeout {
        /// When it answers, if ever.
        answer_after: Option<Duration>,
    },
    /// The request carried a write of this refused key ([`Faults::refuse`]), or asked to
    /// read it ([`Faults::refuse_reads`]), and failed for good.
    Refused {
        /// The refused rendered key.
        key: String,
    },
    /// The request failed with a permanent error ([`Faults::permanent`]).
    Permanent,
    /// Only part of the batch was processed ([`Faults::partial`]).
    Partial {
        /// Keys or writes processed.
        processed: usize,
        /// Keys or writes reported unprocessed.
        unprocessed: usize,
    },
    /// The request was applied, then the connection was reset ([`Faults::reset_after`]).
    ResetAfter,
}

/// One fault injected into one request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Injected {
    /// The request.
    pub operation: Operation,
    /// What happened to it.
    pub fault: Fault,
}

/// What a [`FaultyBackend`] was asked, what it injected, and what was wrong with the requests.
///
/// Counts include requests that failed by an injected fault: they are what the caller asked.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Observed {
    /// `check_table` calls.
    pub check_tables: usize,
    /// Single-key reads (`get`).
    pub gets: usize,
    /// Single-key reads, by rendered key.
    pub gets_by_key: HashMap<String, usize>,
    /// Single-key reads that have read the wrapped backend (and may still be held by a gate,
    /// see [`FaultyBackend::hold_gets_after_reading`]).
    pub gets_read: usize,
    /// The number of keys of each batch read, in the order they came.
    pub batch_get_sizes: Vec<usize>,
    /// Keys of batch reads, by rendered key: a key asked again after it was left unprocessed
    /// counts again.
    pub batch_gets_by_key: HashMap<String, usize>,
    /// Batch reads under way now.
    pub batch_gets_in_flight: usize,
    /// The most batch reads ever under way at once.
    pub max_batch_gets_in_flight: usize,
    /// The number of writes of each batch write, in the order they came.
    pub batch_write_sizes: Vec<usize>,
    /// Conditional writes (`write_if`).
    pub conditional_writes: usize,
    /// Deltas applied (`update`).
    pub updates: usize,
    /// Writes asked for, batched or conditional, by rendered key: a write sent again after it
    /// was left unprocessed or failed counts again.
    pub writes_by_key: HashMap<String, usize>,
    /// Every fault injected, in the order they took effect.
    pub injected: Vec<Injected>,
    /// What was wrong with the requests: batches too large or empty, a key twice in one batch,
    /// a put without its key, a monotonic attribute going backwards. Empty for a well-behaved
    /// caller.
    pub violations: Vec<String>,
    /// The monotonic attribute's last applied value, by key.
    last_written: HashMap<String, f64>,
}

impl Observed {
    /// How many requests of `operation` were made.
    pub fn requests(&self, operation: Operation) -> usize {
        match operation {
            Operation::CheckTable => self.check_tables,
            Operation::Get => self.gets,
            Operation::BatchGet => self.batch_get_sizes.len(),
            Operation::BatchWrite => self.batch_write_sizes.len(),
            Operation::WriteIf => self.conditional_writes,
            Operation::Update => self.updates,
        }
    }

    /// How many of the injected faults `matches` accepts, e.g.
    /// `observed.count(|i| i.fault == Fault::Throttle)`.
    pub fn count(&self, mut matches: impl FnMut(&Injected) -> bool) -> usize {
        self.injected
            .iter()
            .filter(|injected| matches(injected))
            .count()
    }
}

/// Where single-key reads wait at a gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HoldAt {
    BeforeReading,
    AfterReading,
}

/// Wraps a [`Backend`]: injects [`Faults`], records and checks requests ([`Observed`]), and
/// can hold single-key reads and writes at [`Gate`]s.
///
/// Share it with the store as an `Arc<FaultyBackend>` (a shared backend is a backend) to keep
/// a handle for [`observed`](FaultyBackend::observed). See the [module](super) docs for an
/// example.
pub struct FaultyBackend {
    inner: Arc<dyn Backend>,
    faults: Faults,
    rng: Mutex<StdRng>,
    observed: Mutex<Observed>,
    hold: Option<(Gate, HoldAt)>,
    hold_writes: Option<Gate>,
    /// The turn of a request when [`Faults::serial`] is on.
    turn: tokio::sync::Mutex<()>,
}

impl fmt::Debug for FaultyBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyBackend")
            .field("faults", &self.faults)
            .field("hold", &self.hold)
            .field("hold_writes", &self.hold_writes)
            .finish_non_exhaustive()
    }
}

/// The random choices for one request, drawn when it arrives.
#[derive(Debug, Default)]
struct Plan {
    latency: Duration,
    throttle: bool,
    reset_before: bool,
    timeout: bool,
    permanent: bool,
    /// For a partial batch, whether each entry is processed.
    partial: Option<Vec<bool>>,
    reset_after: bool,
}

/// How a batch is cut.
#[derive(Debug, Clone, Copy)]
enum Cut {
    /// A prefix is processed (batch reads).
    Prefix,
    /// Any subset is processed (batch writes).
    Subset,
}

impl FaultyBackend {
    /// Wraps `inner` (any backend, including an `Arc<dyn Backend>`), injecting `faults`.
    pub fn new(inner: impl Backend, faults: Faults) -> Self {
        Self {
            inner: Arc::new(inner),
            rng: Mutex::new(StdRng::seed_from_u64(faults.seed)),
            faults,
            observed: Mutex::default(),
            hold: None,
            hold_writes: None,
            turn: tokio::sync::Mutex::new(()),
        }
    }

    /// Holds every single-key read (`get`) until `gate` is open, before it reads anything or
    /// meets its faults.
    pub fn hold_gets(mut self, gate: &Gate) -> Self {
        self.hold = Some((gate.clone(), HoldAt::BeforeReading));
        self
    }

    /// Lets every single-key read (`get`) read the wrapped backend, then holds what it read
    /// until `gate` is open: writes made meanwhile overtake the answer.
    pub fn hold_gets_after_reading(mut self, gate: &Gate) -> Self {
        self.hold = Some((gate.clone(), HoldAt::AfterReading));
        self
    }

    /// Holds every write request (`batch_write` and `write_if`) at `gate` until the gate lets
    /// it through, before it meets its faults or reaches the wrapped backend: opened
    /// ([`Gate::open`]), or one request at a time ([`Gate::release`]). [`Gate::waiting`] counts
    /// the writes held. The request is counted in [`Observed`] when it arrives, before it waits.
    pub fn hold_writes(mut self, gate: &Gate) -> Self {
        self.hold_writes = Some(gate.clone());
        self
    }

    /// The faults injected.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// A snapshot of what the wrapper was asked, injected and found wrong so far.
    pub fn observed(&self) -> Observed {
        self.observed.lock().clone()
    }

    /// What was wrong with the requests so far ([`Observed::violations`]).
    pub fn violations(&self) -> Vec<String> {
        self.observed.lock().violations.clone()
    }

    /// Draws the random choices for a request of `len` entries (1 for single-key requests).
    fn plan(&self, len: usize, cut: Option<Cut>) -> Plan {
        let faults = &self.faults;
        let mut rng = self.rng.lock();
        let mut roll = |probability: f64| probability > 0.0 && rng.random_bool(probability);
        let mut plan = Plan {
            throttle: roll(faults.throttle),
            reset_before: roll(faults.reset_before),
            timeout: roll(faults.timeout),
            permanent: roll(faults.permanent),
            reset_after: roll(faults.reset_after),
            ..Plan::default()
        };
        let partial = cut.is_some() && len > 1 && roll(faults.partial);
        if let Some((min, max)) = faults.latency {
            plan.latency = if min < max {
                rng.random_range(min..=max)
            } else {
                min
            };
        }
        if partial {
            plan.partial = match cut {
                Some(Cut::Prefix) => {
                    let processed = rng.random_range(1..len);
                    Some((0..len).map(|i| i < processed).collect())
                }
                Some(Cut::Subset) => {
                    let mut processed: Vec<bool> = (0..len).map(|_| rng.random_bool(0.5)).collect();
                    // At least one of each: DynamoDB answers a request it cannot progress
                    // at all with a throttling error, not with everything unprocessed.
                    let all = processed.iter().all(|&p| p);
                    let none = processed.iter().all(|&p| !p);
                    if all || none {
                        let flip = rng.random_range(0..len);
                        if let Some(entry) = processed.get_mut(flip) {
                            *entry = none;
                        }
                    }
                    Some(processed)
                }
                None => None,
            };
        }
        plan
    }

    fn inject(&self, operation: Operation, fault: Fault) {
        self.observed
            .lock()
            .injected
            .push(Injected { operation, fault });
    }

    /// Everything that happens before a request is applied: latency, then the faults that fail
    /// it without applying it.
    async fn before(&self, operation: Operation, write: Option<&Write>, plan: &Plan) -> Result<()> {
        let name = operation.name(write);
        if !plan.latency.is_zero() {
            self.inject(operation, Fault::Latency(plan.latency));
            tokio::time::sleep(plan.latency).await;
        }
        if let Some(per_request) = self.faults.serial {
            let _turn = self.turn.lock().await;
            tokio::time::sleep(per_request).await;
        }
        if plan.throttle {
            self.inject(operation, Fault::Throttle);
            return Err(Error::throttled(
                name,
                "ProvisionedThroughputExceededException: injected throttle",
            ));
        }
        if plan.reset_before {
            self.inject(operation, Fault::ResetBefore);
            return Err(reset(name, "before the request was sent"));
        }
        if plan.timeout {
            let answer_after = self.faults.answer_after;
            self.inject(operation, Fault::Timeout { answer_after });
            match answer_after {
                Some(delay) => tokio::time::sleep(delay).await,
                None => std::future::pending::<()>().await,
            }
        }
        Ok(())
    }

    /// Fails a write request that carries a refused key, or by an injected permanent error.
    fn refuse<'a>(
        &self,
        operation: Operation,
        name: &'static str,
        partition_key: &str,
        mut writes: impl Iterator<Item = &'a Write>,
        plan: &Plan,
    ) -> Result<()> {
        let refused = writes.find_map(|write| {
            write
                .key(partition_key)
                .filter(|key| self.faults.refuse.contains(*key))
        });
        match refused {
            Some(key) => Err(self.refusal(operation, name, key)),
            None => self.permanent(operation, name, plan),
        }
    }

    /// Fails a read request that asks for a refused key, or by an injected permanent error.
    fn refuse_read<'a>(
        &self,
        operation: Operation,
        name: &'static str,
        mut keys: impl Iterator<Item = &'a str>,
        plan: &Plan,
    ) -> Result<()> {
        match keys.find(|key| self.faults.refuse_reads.contains(*key)) {
            Some(key) => Err(self.refusal(operation, name, key)),
            None => self.permanent(operation, name, plan),
        }
    }

    /// Records the refusal of `key` and makes its error.
    fn refusal(&self, operation: Operation, name: &'static str, key: &str) -> Error {
        self.inject(
            operation,
            Fault::Refused {
                key: key.to_owned(),
            },
        );
        Error::permanent(
            name,
            format!("ValidationException: injected refusal of key `{key}`"),
            None,
        )
    }

    fn permanent(&self, operation: Operation, name: &'static str, plan: &Plan) -> Result<()> {
        if plan.permanent {
            self.inject(operation, Fault::Permanent);
            return Err(Error::permanent(
                name,
                "ValidationException: injected permanent error",
                None,
            ));
        }
        Ok(())
    }

    /// After a request was applied: a reset, or its answer.
    fn after<T>(
        &self,
        operation: Operation,
        name: &'static str,
        plan: &Plan,
        answer: T,
    ) -> Result<T> {
        if plan.reset_after {
            self.inject(operation, Fault::ResetAfter);
            return Err(reset(name, "after the request was applied"));
        }
        Ok(answer)
    }

    /// Records a batch write and checks it against DynamoDB's rules.
    fn check_writes(&self, partition_key: &str, writes: &[Write]) {
        let mut observed = self.observed.lock();
        observed.batch_write_sizes.push(writes.len());
        if writes.is_empty() || writes.len() > MAX_BATCH_WRITE_ITEMS {
            observed
                .violations
                .push(format!("a batch of {} writes", writes.len()));
        }
        let mut seen = HashSet::new();
        for write in writes {
            let Some(key) = write.key(partition_key) else {
                observed.violations.push("a put without its key".into());
                continue;
            };
            *observed.writes_by_key.entry(key.to_owned()).or_default() += 1;
            if !seen.insert(key) {
                observed
                    .violations
                    .push(format!("key {key} twice in one batch"));
            }
        }
    }

    /// Records the monotonic attribute of writes that were applied.
    fn record_applied<'a>(&self, partition_key: &str, applied: impl Iterator<Item = &'a Write>) {
        let Some(attribute) = &self.faults.monotonic else {
            return;
        };
        let mut observed = self.observed.lock();
        for write in applied {
            let Write::Put(item) = write else {
                continue;
            };
            let key = item.get(partition_key).and_then(|v| v.as_s().ok());
            let value = item
                .get(attribute)
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<f64>().ok());
            if let (Some(key), Some(value)) = (key, value) {
                let previous = observed.last_written.insert(key.clone(), value);
                if let Some(previous) = previous.filter(|&p| p > value) {
                    observed.violations.push(format!(
                        "key {key}: wrote {attribute}={value} over the newer {previous}"
                    ));
                }
            }
        }
    }

    async fn hold_at(&self, at: HoldAt) {
        if let Some((gate, hold)) = &self.hold {
            if *hold == at {
                gate.pass().await;
            }
        }
    }

    async fn hold_write(&self) {
        if let Some(gate) = &self.hold_writes {
            gate.pass().await;
        }
    }
}

/// A connection reset: transient, with an I/O error as its cause.
fn reset(operation: &'static str, when: &str) -> Error {
    let cause = std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "connection reset by peer",
    );
    Error::transient(
        operation,
        format!("injected connection reset {when}"),
        Some(Arc::new(cause)),
    )
}

/// Counts a batch read in flight until dropped, even when the request is abandoned.
struct InFlight<'a>(&'a Mutex<Observed>);

impl<'a> InFlight<'a> {
    fn start(observed: &'a Mutex<Observed>) -> Self {
        let mut o = observed.lock();
        o.batch_gets_in_flight += 1;
        o.max_batch_gets_in_flight = o.max_batch_gets_in_flight.max(o.batch_gets_in_flight);
        drop(o);
        Self(observed)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut observed = self.0.lock();
        observed.batch_gets_in_flight = observed.batch_gets_in_flight.saturating_sub(1);
    }
}

#[async_trait]
impl Backend for FaultyBackend {
    async fn check_table(&self, partition_key: &str) -> Result<()> {
        self.observed.lock().check_tables += 1;
        self.inner.check_table(partition_key).await
    }

    async fn get(&self, partition_key: &str, key: &str, consistent: bool) -> Result<Option<Item>> {
        let operation = Operation::Get;
        {
            let mut observed = self.observed.lock();
            observed.gets += 1;
            *observed.gets_by_key.entry(key.to_owned()).or_default() += 1;
        }
        let plan = self.plan(1, None);
        self.hold_at(HoldAt::BeforeReading).await;
        self.before(operation, None, &plan).await?;
        self.refuse_read(operation, operation.name(None), [key].into_iter(), &plan)?;
        let item = self.inner.get(partition_key, key, consistent).await;
        self.observed.lock().gets_read += 1;
        self.hold_at(HoldAt::AfterReading).await;
        self.after(operation, operation.name(None), &plan, item?)
    }

    async fn batch_get(
        &self,
        partition_key: &str,
        keys: &[String],
        consistent: bool,
    ) -> Result<BatchGet> {
        let operation = Operation::BatchGet;
        let name = operation.name(None);
        let _in_flight = {
            let mut observed = self.observed.lock();
            observed.batch_get_sizes.push(keys.len());
            if keys.is_empty() || keys.len() > MAX_BATCH_GET_KEYS {
                observed
                    .violations
                    .push(format!("a batch get of {} keys", keys.len()));
            }
            let mut seen = HashSet::new();
            for key in keys {
                *observed.batch_gets_by_key.entry(key.clone()).or_default() += 1;
                if !seen.insert(key) {
                    observed
                        .violations
                        .push(format!("key {key} twice in one batch get"));
                }
            }
            drop(observed);
            InFlight::start(&self.observed)
        };
        let plan = self.plan(keys.len(), Some(Cut::Prefix));
        // One turn for other requests the caller may have started alongside this one, so that
        // concurrent batch reads overlap here.
        tokio::task::yield_now().await;
        self.before(operation, None, &plan).await?;
        self.refuse_read(operation, name, keys.iter().map(String::as_str), &plan)?;
        let got = match &plan.partial {
            Some(processed) => {
                let (asked, left): (Vec<_>, Vec<_>) = keys
                    .iter()
                    .zip(processed)
                    .partition(|(_, &processed)| processed);
                let asked: Vec<String> = asked.into_iter().map(|(k, _)| k.clone()).collect();
                self.inject(
                    operation,
                    Fault::Partial {
                        processed: asked.len(),
                        unprocessed: left.len(),
                    },
                );
                let mut got = self
                    .inner
                    .batch_get(partition_key, &asked, consistent)
                    .await?;
                got.unprocessed
                    .extend(left.into_iter().map(|(k, _)| k.clone()));
                got
            }
            None => {
                self.inner
                    .batch_get(partition_key, keys, consistent)
                    .await?
            }
        };
        self.after(operation, name, &plan, got)
    }

    async fn batch_write(&self, partition_key: &str, writes: &[Write]) -> Result<Vec<usize>> {
        let operation = Operation::BatchWrite;
        let name = operation.name(None);
        self.check_writes(partition_key, writes);
        let plan = self.plan(writes.len(), Some(Cut::Subset));
        self.hold_write().await;
        self.before(operation, None, &plan).await?;
        self.refuse(operation, name, partition_key, writes.iter(), &plan)?;
        let unprocessed = match &plan.partial {
            Some(processed) => {
                let (sent, mut unprocessed): (Vec<usize>, Vec<usize>) =
                    (0..writes.len()).partition(|&i| processed.get(i).copied().unwrap_or(false));
                self.inject(
                    operation,
                    Fault::Partial {
                        processed: sent.len(),
                        unprocessed: unprocessed.len(),
                    },
                );
                let subset: Vec<Write> = sent
                    .iter()
                    .filter_map(|&i| writes.get(i).cloned())
                    .collect();
                let left = self.inner.batch_write(partition_key, &subset).await?;
                // The wrapped backend's indices are into the subset.
                unprocessed.extend(left.iter().filter_map(|&j| sent.get(j).copied()));
                unprocessed.sort_unstable();
                unprocessed
            }
            None => self.inner.batch_write(partition_key, writes).await?,
        };
        let left: HashSet<usize> = unprocessed.iter().copied().collect();
        self.record_applied(
            partition_key,
            writes
                .iter()
                .enumerate()
                .filter(|(i, _)| !left.contains(i))
                .map(|(_, write)| write),
        );
        self.after(operation, name, &plan, unprocessed)
    }

    async fn write_if(
        &self,
        partition_key: &str,
        write: &Write,
        condition: &Condition,
    ) -> Result<Conditional> {
        let operation = Operation::WriteIf;
        let name = operation.name(Some(write));
        {
            let mut observed = self.observed.lock();
            observed.conditional_writes += 1;
            match write.key(partition_key) {
                Some(key) => *observed.writes_by_key.entry(key.to_owned()).or_default() += 1,
                None => observed.violations.push("a put without its key".into()),
            }
        }
        let plan = self.plan(1, None);
        self.hold_write().await;
        self.before(operation, Some(write), &plan).await?;
        self.refuse(
            operation,
            name,
            partition_key,
            std::iter::once(write),
            &plan,
        )?;
        let outcome = self.inner.write_if(partition_key, write, condition).await?;
        if outcome == Conditional::Written {
            self.record_applied(partition_key, std::iter::once(write));
        }
        self.after(operation, name, &plan, outcome)
    }

    fn supports_conditional_writes(&self) -> bool {
        self.inner.supports_conditional_writes()
    }

    async fn update(
        &self,
        partition_key: &str,
        key: &str,
        delta: &Delta,
        mark: Option<&Mark>,
    ) -> Result<Updated> {
        let operation = Operation::Update;
        let name = operation.name(None);
        {
            let mut observed = self.observed.lock();
            observed.updates += 1;
            *observed.writes_by_key.entry(key.to_owned()).or_default() += 1;
        }
        let plan = self.plan(1, None);
        self.hold_write().await;
        self.before(operation, None, &plan).await?;
        if self.faults.refuse.contains(key) {
            return Err(self.refusal(operation, name, key));
        }
        self.permanent(operation, name, &plan)?;
        let updated = self.inner.update(partition_key, key, delta, mark).await?;
        self.after(operation, name, &plan, updated)
    }

    fn supports_deltas(&self) -> bool {
        self.inner.supports_deltas()
    }

    fn table(&self) -> Option<String> {
        self.inner.table()
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::AttributeValue;

    use super::*;
    use crate::testing::MemoryBackend;

    fn put(key: &str, n: u64) -> Write {
        Write::Put(HashMap::from([
            ("_key".to_owned(), AttributeValue::S(key.to_owned())),
            ("n".to_owned(), AttributeValue::N(n.to_string())),
        ]))
    }

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("K{i}")).collect()
    }

    /// Every fault at once, each likely enough to show up in a few hundred requests.
    fn everything(seed: u64) -> Faults {
        Faults::new()
            .seed(seed)
            .throttle(0.1)
            .partial(0.3)
            .latency(Duration::from_millis(1), Duration::from_millis(20))
            .timeout(0.05, Some(Duration::from_secs(30)))
            .reset_before(0.05)
            .reset_after(0.1)
            .permanent(0.05)
            .refuse(["R"])
    }

    /// A fixed sequence of every kind of request, and what each answered.
    async fn workload(backend: &FaultyBackend) -> Vec<String> {
        let mut answers = Vec::new();
        for round in 0..60u64 {
            // Every fourth batch carries the refused key.
            let mut batch: Vec<Write> = keys(10).iter().map(|k| put(k, round)).collect();
            if round % 4 == 0 {
                batch[9] = put("R", round);
            }
            answers.push(format!("{:?}", backend.batch_write("_key", &batch).await));
            answers.push(format!(
                "{:?}",
                backend
                    .batch_get("_key", &keys(10), true)
                    .await
                    .map(|g| g.unprocessed)
            ));
            answers.push(format!(
                "{:?}",
                backend.get("_key", "K1", true).await.map(|i| i.is_some())
            ));
            let conditional = backend
                .write_if("_key", &put("C", round), &Condition::Absent)
                .await;
            answers.push(format!(
                "{:?}",
                conditional.map(|c| c == Conditional::Written)
            ));
        }
        answers
    }

    #[tokio::test(start_paused = true)]
    async fn the_same_seed_injects_the_same_faults() {
        let run = |seed| async move {
            let backend = FaultyBackend::new(MemoryBackend::new(), everything(seed));
            let answers = workload(&backend).await;
            (answers, backend.observed().injected)
        };
        let (first_answers, first) = run(1).await;
        let (again_answers, again) = run(1).await;
        let (_, other) = run(2).await;
        assert!(!first.is_empty());
        assert_eq!(first, again);
        assert_eq!(first_answers, again_answers);
        assert_ne!(first, other, "another seed, other faults");
    }

    #[tokio::test(start_paused = true)]
    async fn every_fault_shows_up_in_the_observations() {
        let backend = FaultyBackend::new(MemoryBackend::new(), everything(3));
        workload(&backend).await;
        let observed = backend.observed();
        let kinds: HashSet<&str> = observed
            .injected
            .iter()
            .map(|injected| match injected.fault {
                Fault::Latency(_) => "latency",
                Fault::Throttle => "throttle",
                Fault::ResetBefore => "reset before",
                Fault::Timeout { .. } => "timeout",
                Fault::Refused { .. } => "refused",
                Fault::Permanent => "permanent",
                Fault::Partial { .. } => "partial",
                Fault::ResetAfter => "reset after",
            })
            .collect();
        assert_eq!(kinds.len(), 8, "{kinds:?}");
        for operation in [
            Operation::BatchWrite,
            Operation::BatchGet,
            Operation::Get,
            Operation::WriteIf,
        ] {
            assert_eq!(observed.requests(operation), 60, "{operation:?}");
            assert!(observed.count(|i| i.operation == operation && i.fault == Fault::Throttle) > 0);
        }
        let partial_reads = observed.count(|i| {
            i.operation == Operation::BatchGet && matches!(i.fault, Fault::Partial { .. })
        });
        assert!(partial_reads > 0);
        assert_eq!(observed.batch_write_sizes, vec![10; 60]);
        assert_eq!(observed.batch_get_sizes, vec![10; 60]);
        assert_eq!(observed.gets_by_key.get("K1"), Some(&60));
        assert_eq!(observed.writes_by_key.get("K3"), Some(&60));
        assert_eq!(observed.writes_by_key.get("C"), Some(&60));
        assert!(observed.violations.is_empty(), "{:?}", observed.violations);
    }

    #[tokio::test(start_paused = true)]
    async fn partial_batches_leave_some_of_each() {
        for seed in 0..50 {
            let memory = MemoryBackend::new();
            let faults = Faults::new().seed(seed).partial(1.0);
            let backend = FaultyBackend::new(memory.clone(), faults);
            let writes: Vec<Write> = keys(6).iter().map(|k| put(k, 1)).collect();
            let left = backend
                .batch_write("_key", &writes)
                .await
                .unwrap_or_default();
            assert!((1..6).contains(&left.len()), "{left:?}");
            // Exactly the writes not reported unprocessed were applied.
            let written: Vec<String> = memory.items().into_keys().collect();
            let applied: Vec<String> = keys(6)
                .into_iter()
                .enumerate()
                .filter(|(i, _)| !left.contains(i))
                .map(|(_, key)| key)
                .collect();
            assert_eq!(written, applied, "seed {seed}");

            let _ = memory.batch_write("_key", &writes).await;
            let got = backend
                .batch_get("_key", &keys(6), true)
                .await
                .unwrap_or_default();
            assert!((1..6).contains(&got.unprocessed.len()), "{got:?}");
            // A prefix is read, the rest is left unprocessed.
            assert_eq!(got.items.len() + got.unprocessed.len(), 6);
            assert_eq!(got.unprocessed.last().map(String::as_str), Some("K5"));

            // A single entry is never cut.
            assert_eq!(
                backend.batch_write("_key", &[put("K0", 2)]).await.ok(),
                Some(Vec::new())
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_reset_after_applying_applies_the_write() {
        let memory = MemoryBackend::new();
        let backend = FaultyBackend::new(memory.clone(), Faults::new().reset_after(1.0));
        let err = backend.batch_write("_key", &[put("A", 1)]).await.err();
        assert!(err.as_ref().is_some_and(Error::is_retryable), "{err:?}");
        assert!(!err.as_ref().is_some_and(Error::is_throttle));
        assert!(memory.item("A").is_some(), "applied despite the error");
        let err = backend
            .write_if("_key", &put("B", 1), &Condition::Absent)
            .await
            .err();
        assert!(err.is_some_and(|e| e.is_retryable()));
        assert!(memory.item("B").is_some());
        let observed = backend.observed();
        assert_eq!(observed.count(|i| i.fault == Fault::ResetAfter), 2);

        // Before applying, nothing is.
        let backend = FaultyBackend::new(memory.clone(), Faults::new().reset_before(1.0));
        assert!(backend.batch_write("_key", &[put("C", 1)]).await.is_err());
        assert!(memory.item("C").is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn throttles_are_throttles_and_refusals_are_permanent() {
        let backend = FaultyBackend::new(MemoryBackend::new(), Faults::new().throttle(1.0));
        let err = backend.get("_key", "A", true).await.err();
        assert!(err.is_some_and(|e| e.is_throttle() && e.is_retryable()));

        let memory = MemoryBackend::new();
        let backend = FaultyBackend::new(memory.clone(), Faults::new().refuse(["Bad"]));
        let err = backend
            .batch_write("_key", &[put("Good", 1), put("Bad", 1)])
            .await
            .err();
        assert!(err.as_ref().is_some_and(|e| !e.is_retryable()), "{err:?}");
        assert!(memory.is_empty(), "the whole batch fails");
        assert_eq!(
            backend.batch_write("_key", &[put("Good", 1)]).await.ok(),
            Some(Vec::new())
        );
        let observed = backend.observed();
        assert_eq!(
            observed.injected,
            vec![Injected {
                operation: Operation::BatchWrite,
                fault: Fault::Refused { key: "Bad".into() },
            }]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn latency_and_timeouts_take_time_on_the_clock() {
        let latency = Faults::new().latency(Duration::from_millis(10), Duration::from_millis(10));
        let backend = FaultyBackend::new(MemoryBackend::new(), latency);
        let start = tokio::time::Instant::now();
        let _ = backend.get("_key", "A", true).await;
        assert_eq!(start.elapsed(), Duration::from_millis(10));

        let slow = Faults::new().timeout(1.0, Some(Duration::from_secs(5)));
        let backend = FaultyBackend::new(MemoryBackend::new(), slow);
        let start = tokio::time::Instant::now();
        assert!(backend.batch_write("_key", &[put("A", 1)]).await.is_ok());
        assert_eq!(start.elapsed(), Duration::from_secs(5));

        let never = Faults::new().timeout(1.0, None);
        let backend = FaultyBackend::new(MemoryBackend::new(), never);
        let answer =
            tokio::time::timeout(Duration::from_secs(3600), backend.get("_key", "A", true)).await;
        assert!(answer.is_err(), "never answers");
    }

    #[tokio::test]
    async fn requests_breaking_the_rules_are_reported() {
        let backend = FaultyBackend::new(MemoryBackend::new(), Faults::new().monotonic("n"));
        // A key twice: refused by the table, so not applied.
        let _ = backend
            .batch_write("_key", &[put("A", 2), put("A", 3)])
            .await;
        let _ = backend.batch_write("_key", &[put("A", 3)]).await;
        let _ = backend.batch_write("_key", &[put("A", 1)]).await;
        let too_many: Vec<Write> = keys(26).iter().map(|k| put(k, 1)).collect();
        let _ = backend.batch_write("_key", &too_many).await;
        let _ = backend.batch_get("_key", &keys(101), true).await;
        let _ = backend
            .batch_get("_key", &["X".to_owned(), "X".to_owned()], true)
            .await;
        let violations = backend.violations();
        assert_eq!(violations.len(), 5, "{violations:?}");
        assert!(violations.iter().any(|v| v.contains("twice in one batch")));
        assert!(violations
            .iter()
            .any(|v| v.contains("n=1 over the newer 3")));
    }

    #[tokio::test]
    async fn a_gate_holds_gets_until_opened() {
        let gate = Gate::new();
        let backend =
            Arc::new(FaultyBackend::new(MemoryBackend::new(), Faults::new()).hold_gets(&gate));
        let read = tokio::spawn({
            let backend = Arc::clone(&backend);
            async move { backend.get("_key", "A", true).await }
        });
        while backend.observed().gets == 0 {
            tokio::task::yield_now().await;
        }
        tokio::task::yield_now().await;
        assert!(!read.is_finished());
        assert_eq!(backend.observed().gets_read, 0);
        gate.open();
        assert!(matches!(read.await, Ok(Ok(None))));
        assert_eq!(backend.observed().gets_read, 1);
    }

    #[tokio::test]
    async fn a_gate_holds_writes_and_releases_them_one_at_a_time() {
        let gate = Gate::new();
        let table = MemoryBackend::new();
        let backend = Arc::new(FaultyBackend::new(table.clone(), Faults::new()).hold_writes(&gate));
        let batch = tokio::spawn({
            let backend = Arc::clone(&backend);
            async move { backend.batch_write("_key", &[put("A", 1)]).await }
        });
        gate.until_waiting(1).await;
        let conditional = tokio::spawn({
            let backend = Arc::clone(&backend);
            async move {
                backend
                    .write_if("_key", &put("B", 1), &Condition::Absent)
                    .await
            }
        });
        gate.until_waiting(2).await;
        // Reads are not held.
        assert_eq!(backend.get("_key", "A", true).await.ok(), Some(None));
        let observed = backend.observed();
        assert_eq!(observed.batch_write_sizes, [1]);
        assert_eq!(observed.conditional_writes, 1);
        assert!(table.is_empty(), "{:?}", table.items());

        gate.release(1);
        assert_eq!(batch.await.ok().and_then(Result::ok), Some(Vec::new()));
        assert_eq!(gate.waiting(), 1);
        assert!(table.item("A").is_some());
        assert!(table.item("B").is_none());
        assert!(!conditional.is_finished());

        gate.release(1);
        let written = conditional.await.ok().and_then(Result::ok);
        assert_eq!(written, Some(Conditional::Written));
        assert_eq!(gate.waiting(), 0);
        assert_eq!(table.len(), 2);

        // Opened, the gate holds nothing.
        gate.open();
        assert_eq!(
            backend.batch_write("_key", &[put("C", 1)]).await.ok(),
            Some(Vec::new())
        );
    }
}
