//! Holding a store's writes: a backend wrapper whose writes wait at a gate the test opens one
//! write at a time, to stop a store at a chosen point (a crash with writes in flight, say).

use std::sync::Arc;

use async_trait::async_trait;
use quickstore::{Backend, BatchGet, Condition, Conditional, Item, Result, Write};
use tokio::sync::Semaphore;

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

/// A backend whose writes (batches and conditional writes) wait at a [`WriteGate`].
pub struct HeldWrites {
    inner: Arc<dyn Backend>,
    gate: Arc<WriteGate>,
}

impl HeldWrites {
    pub fn new(inner: Arc<dyn Backend>, gate: Arc<WriteGate>) -> Self {
        Self { inner, gate }
    }
}

#[async_trait]
impl Backend for HeldWrites {
    async fn check_table(&self, partition_key: &str) -> Result<()> {
        self.inner.check_table(partition_key).await
    }

    async fn get(&self, partition_key: &str, key: &str, consistent: bool) -> Result<Option<Item>> {
        self.inner.get(partition_key, key, consistent).await
    }

    async fn batch_get(&self, pk: &str, keys: &[String], consistent: bool) -> Result<BatchGet> {
        self.inner.batch_get(pk, keys, consistent).await
    }

    async fn batch_write(&self, partition_key: &str, writes: &[Write]) -> Result<Vec<usize>> {
        self.gate.enter().await;
        self.inner.batch_write(partition_key, writes).await
    }

    async fn write_if(
        &self,
        pk: &str,
        write: &Write,
        condition: &Condition,
    ) -> Result<Conditional> {
        self.gate.enter().await;
        self.inner.write_if(pk, write, condition).await
    }

    fn supports_conditional_writes(&self) -> bool {
        self.inner.supports_conditional_writes()
    }
}
