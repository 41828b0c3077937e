//! A backend wrapper that adds a fixed round trip to every request, for benchmarks: a local
//! server on loopback answers in a fraction of a millisecond and is bound by its own CPU,
//! whereas a service pays DynamoDB's network round trip (a few milliseconds within a region)
//! on every request. With it, a benchmark against dynalite shows what a number of requests
//! costs in time, as it would against DynamoDB.

use std::time::Duration;

use async_trait::async_trait;
use quickstore::backend::{Backend, BatchGet, Condition, Conditional, Mark, Updated, Write};
use quickstore::{Delta, Item, Result};

/// `inner`, with `round_trip` added before each request (but the table check).
#[derive(Debug)]
pub struct RoundTrip<B> {
    inner: B,
    round_trip: Duration,
}

impl<B> RoundTrip<B> {
    pub fn new(inner: B, round_trip: Duration) -> Self {
        Self { inner, round_trip }
    }
}

#[async_trait]
impl<B: Backend> Backend for RoundTrip<B> {
    async fn check_table(&self, partition_key: &str) -> Result<()> {
        self.inner.check_table(partition_key).await
    }

    async fn get(&self, partition_key: &str, key: &str, consistent: bool) -> Result<Option<Item>> {
        tokio::time::sleep(self.round_trip).await;
        self.inner.get(partition_key, key, consistent).await
    }

    async fn batch_get(
        &self,
        partition_key: &str,
        keys: &[String],
        consistent: bool,
    ) -> Result<BatchGet> {
        tokio::time::sleep(self.round_trip).await;
        self.inner.batch_get(partition_key, keys, consistent).await
    }

    async fn batch_write(&self, partition_key: &str, writes: &[Write]) -> Result<Vec<usize>> {
        tokio::time::sleep(self.round_trip).await;
        self.inner.batch_write(partition_key, writes).await
    }

    async fn write_if(
        &self,
        partition_key: &str,
        write: &Write,
        condition: &Condition,
    ) -> Result<Conditional> {
        tokio::time::sleep(self.round_trip).await;
        self.inner.write_if(partition_key, write, condition).await
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
        tokio::time::sleep(self.round_trip).await;
        self.inner.update(partition_key, key, delta, mark).await
    }

    fn supports_deltas(&self) -> bool {
        self.inner.supports_deltas()
    }

    fn table(&self) -> Option<String> {
        self.inner.table()
    }
}
