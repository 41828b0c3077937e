//! A backend wrapper that injects faults from a seed and checks the store's requests.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use quickstore::{AttributeValue, Backend, BatchGet, Error, Item, Result, Write};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::Semaphore;

/// Which faults to inject; probabilities are per request.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    pub seed: u64,
    /// A request fails with a retryable error (throttling, 5xx) and changes nothing.
    pub transient: f64,
    /// A batch applies only part of its work and reports the rest unprocessed.
    pub partial: f64,
    /// Writes of these keys are refused for good, failing the batch that carries them (as
    /// DynamoDB fails a whole batch on a `ValidationException`).
    pub refuse: HashSet<String>,
    /// A numeric attribute that each key's writes must carry in non-decreasing order: the
    /// check that an older state never lands over a newer one.
    pub monotonic: Option<String>,
}

/// What the store asked for.
#[derive(Debug, Default, Clone)]
pub struct Observed {
    pub gets: usize,
    pub gets_by_key: HashMap<String, usize>,
    /// Single-key reads that have read the inner backend (and may still wait at the gate).
    pub gets_read: usize,
    pub batch_get_sizes: Vec<usize>,
    /// `BatchGetItem` requests under way now, and the most there ever were at once.
    pub batch_gets_in_flight: usize,
    pub max_batch_gets_in_flight: usize,
    pub batch_write_sizes: Vec<usize>,
    /// Problems with the store's requests; must stay empty.
    pub violations: Vec<String>,
    last_written: HashMap<String, f64>,
}

/// Holds writes until the test lets them through, one permit each.
#[derive(Debug)]
pub struct WriteGate {
    /// Each write takes (and uses up) one permit before it reaches the wrapped backend.
    pub pass: Semaphore,
    /// Each write adds one permit when it reaches the gate: wait for it to know a write is in
    /// flight.
    pub arrived: Semaphore,
}

impl Default for WriteGate {
    /// A closed gate: no write passes until permits are added to `pass`.
    fn default() -> Self {
        Self {
            pass: Semaphore::new(0),
            arrived: Semaphore::new(0),
        }
    }
}

impl WriteGate {
    /// Waits until `writes` more writes have reached the gate.
    pub async fn arrivals(&self, writes: u32) -> crate::common::TestResult {
        self.arrived.acquire_many(writes).await?.forget();
        Ok(())
    }

    async fn enter(&self) {
        self.arrived.add_permits(1);
        if let Ok(permit) = self.pass.acquire().await {
            permit.forget();
        }
    }
}

/// Wraps a backend: injects [`Faults`], records [`Observed`], and can hold reads at a gate.
pub struct FaultyBackend {
    inner: Arc<dyn Backend>,
    faults: Faults,
    rng: Mutex<StdRng>,
    observed: Arc<Mutex<Observed>>,
    gate: Option<Arc<Semaphore>>,
    /// Whether single-key reads wait at the gate after reading rather than before, so that what
    /// they return may be overtaken by writes while they wait.
    gate_after_read: bool,
    write_gate: Option<Arc<WriteGate>>,
}

impl FaultyBackend {
    pub fn new(inner: Arc<dyn Backend>, faults: Faults) -> Self {
        let rng = StdRng::seed_from_u64(faults.seed);
        Self {
            inner,
            faults,
            rng: Mutex::new(rng),
            observed: Arc::default(),
            gate: None,
            gate_after_read: false,
            write_gate: None,
        }
    }

    /// Makes every single-key read wait for a permit from `gate` (permits are not consumed).
    pub fn with_read_gate(mut self, gate: Arc<Semaphore>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Makes every single-key read read the inner backend first, then wait for a permit from
    /// `gate` before returning what it read (permits are not consumed).
    pub fn with_gate_after_read(mut self, gate: Arc<Semaphore>) -> Self {
        self.gate = Some(gate);
        self.gate_after_read = true;
        self
    }

    /// Makes every write (a batch, or a conditional write) wait at `gate`.
    pub fn with_write_gate(mut self, gate: Arc<WriteGate>) -> Self {
        self.write_gate = Some(gate);
        self
    }

    /// A live view of what the store asked for.
    pub fn observed(&self) -> Arc<Mutex<Observed>> {
        Arc::clone(&self.observed)
    }

    fn roll(&self, probability: f64) -> bool {
        probability > 0.0 && self.rng.lock().random_bool(probability.min(1.0))
    }

    fn throttled(operation: &'static str) -> Error {
        Error::throttled(
            operation,
            "ProvisionedThroughputExceededException: injected",
        )
    }

    fn check_writes(&self, partition_key: &str, writes: &[Write]) {
        let mut observed = self.observed.lock();
        observed.batch_write_sizes.push(writes.len());
        if writes.is_empty() || writes.len() > quickstore::MAX_BATCH_WRITE_ITEMS {
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
            if !seen.insert(key) {
                observed
                    .violations
                    .push(format!("key {key} twice in one batch"));
            }
        }
    }

    /// Records the monotonic attribute of writes that were applied.
    fn record_applied(&self, partition_key: &str, writes: &[Write], applied: &[usize]) {
        let Some(attribute) = &self.faults.monotonic else {
            return;
        };
        let mut observed = self.observed.lock();
        for &i in applied {
            let Some(Write::Put(item)) = writes.get(i) else {
                continue;
            };
            let key = item.get(partition_key).and_then(|v| v.as_s().ok());
            let value = item
                .get(attribute)
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<f64>().ok());
            if let (Some(key), Some(value)) = (key, value) {
                let previous = observed.last_written.insert(key.clone(), value);
                if previous.is_some_and(|p| p > value) {
                    observed.violations.push(format!(
                        "key {key}: wrote {attribute}={value} over the newer {previous:?}"
                    ));
                }
            }
        }
    }
}

#[async_trait]
impl Backend for FaultyBackend {
    async fn check_table(&self, partition_key: &str) -> Result<()> {
        self.inner.check_table(partition_key).await
    }

    async fn get(&self, partition_key: &str, key: &str, consistent: bool) -> Result<Option<Item>> {
        {
            let mut observed = self.observed.lock();
            observed.gets += 1;
            *observed.gets_by_key.entry(key.to_owned()).or_default() += 1;
        }
        if let (Some(gate), false) = (&self.gate, self.gate_after_read) {
            let _permit = gate.acquire().await;
        }
        if self.roll(self.faults.transient) {
            return Err(Self::throttled("GetItem"));
        }
        let item = self.inner.get(partition_key, key, consistent).await;
        self.observed.lock().gets_read += 1;
        if let (Some(gate), true) = (&self.gate, self.gate_after_read) {
            let _permit = gate.acquire().await;
        }
        item
    }

    async fn batch_get(
        &self,
        partition_key: &str,
        keys: &[String],
        consistent: bool,
    ) -> Result<BatchGet> {
        {
            let mut observed = self.observed.lock();
            observed.batch_get_sizes.push(keys.len());
            if keys.len() > quickstore::MAX_BATCH_GET_KEYS {
                observed
                    .violations
                    .push(format!("a batch get of {} keys", keys.len()));
            }
            observed.batch_gets_in_flight += 1;
            observed.max_batch_gets_in_flight = observed
                .max_batch_gets_in_flight
                .max(observed.batch_gets_in_flight);
        }
        // One turn for other requests the caller may have started alongside this one.
        tokio::task::yield_now().await;
        let result = self.batch_get_inner(partition_key, keys, consistent).await;
        self.observed.lock().batch_gets_in_flight -= 1;
        result
    }

    async fn batch_write(&self, partition_key: &str, writes: &[Write]) -> Result<Vec<usize>> {
        if let Some(gate) = &self.write_gate {
            gate.enter().await;
        }
        self.batch_write_inner(partition_key, writes).await
    }

    async fn write_if(
        &self,
        partition_key: &str,
        write: &Write,
        condition: &quickstore::Condition,
    ) -> Result<quickstore::Conditional> {
        if let Some(gate) = &self.write_gate {
            gate.enter().await;
        }
        if self.roll(self.faults.transient) {
            return Err(Self::throttled("PutItem"));
        }
        self.inner.write_if(partition_key, write, condition).await
    }
}

impl FaultyBackend {
    async fn batch_get_inner(
        &self,
        partition_key: &str,
        keys: &[String],
        consistent: bool,
    ) -> Result<BatchGet> {
        if self.roll(self.faults.transient) {
            return Err(Self::throttled("BatchGetItem"));
        }
        if keys.len() > 1 && self.roll(self.faults.partial) {
            let cut = self.rng.lock().random_range(0..keys.len());
            let mut got = self
                .inner
                .batch_get(partition_key, &keys[..cut], consistent)
                .await?;
            got.unprocessed.extend_from_slice(&keys[cut..]);
            return Ok(got);
        }
        self.inner.batch_get(partition_key, keys, consistent).await
    }

    async fn batch_write_inner(&self, partition_key: &str, writes: &[Write]) -> Result<Vec<usize>> {
        self.check_writes(partition_key, writes);
        let refused = writes.iter().any(|write| {
            write
                .key(partition_key)
                .is_some_and(|k| self.faults.refuse.contains(k))
        });
        if refused {
            return Err(Error::permanent(
                "BatchWriteItem",
                "ValidationException: injected refusal",
                None,
            ));
        }
        if self.roll(self.faults.transient) {
            return Err(Self::throttled("BatchWriteItem"));
        }
        let (applied, unprocessed): (Vec<usize>, Vec<usize>) =
            if writes.len() > 1 && self.roll(self.faults.partial) {
                let mut rng = self.rng.lock();
                (0..writes.len()).partition(|_| rng.random_bool(0.5))
            } else {
                ((0..writes.len()).collect(), Vec::new())
            };
        if !applied.is_empty() {
            let subset: Vec<Write> = applied.iter().map(|&i| writes[i].clone()).collect();
            let left = self.inner.batch_write(partition_key, &subset).await?;
            if !left.is_empty() {
                return Err(Error::permanent(
                    "BatchWriteItem",
                    "the wrapped backend left writes unprocessed",
                    None,
                ));
            }
        }
        self.record_applied(partition_key, writes, &applied);
        Ok(unprocessed)
    }
}

/// A number attribute.
pub fn number(n: impl ToString) -> AttributeValue {
    AttributeValue::N(n.to_string())
}
