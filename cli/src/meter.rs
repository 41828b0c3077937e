//! A backend wrapper that meters what a workload asks of the table: requests, items and the
//! request units DynamoDB would bill for them (see [`crate::cost`]). It wraps any backend, so
//! the embedded database and a real table are metered the same way.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use quickstore::backend::{Backend, BatchGet, Condition, Conditional, Mark, Updated, Write};
use quickstore::{item_size, Delta, Item, Result};
use serde::Serialize;

use crate::cost::{read_units, write_units, Units};

/// Read units are kept in thousandths, so that halves add up exactly in an integer.
const MILLI: f64 = 1000.0;

#[derive(Debug, Default)]
struct Counters {
    read_requests: AtomicU64,
    items_read: AtomicU64,
    read_milliunits: AtomicU64,
    write_requests: AtomicU64,
    items_written: AtomicU64,
    write_units: AtomicU64,
}

/// What a metered backend was asked, so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Metered {
    /// `GetItem` and `BatchGetItem` requests.
    pub read_requests: u64,
    /// Keys read (found or not).
    pub items_read: u64,
    /// `BatchWriteItem`, `PutItem` and `DeleteItem` requests.
    pub write_requests: u64,
    /// Items written or deleted.
    pub items_written: u64,
    /// The request units DynamoDB would bill.
    pub units: Units,
}

impl Metered {
    /// What was metered since `earlier`.
    pub fn since(&self, earlier: &Metered) -> Metered {
        Metered {
            read_requests: self.read_requests - earlier.read_requests,
            items_read: self.items_read - earlier.items_read,
            write_requests: self.write_requests - earlier.write_requests,
            items_written: self.items_written - earlier.items_written,
            units: Units {
                read: self.units.read - earlier.units.read,
                write: self.units.write - earlier.units.write,
            },
        }
    }
}

/// Wraps a backend and meters it.
pub struct Meter<B> {
    inner: B,
    counters: Counters,
}

impl<B> std::fmt::Debug for Meter<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter")
            .field("metered", &self.metered())
            .finish_non_exhaustive()
    }
}

impl<B> Meter<B> {
    pub fn new(inner: B) -> Self {
        Self {
            inner,
            counters: Counters::default(),
        }
    }

    /// What was metered so far.
    pub fn metered(&self) -> Metered {
        let c = &self.counters;
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Metered {
            read_requests: get(&c.read_requests),
            items_read: get(&c.items_read),
            write_requests: get(&c.write_requests),
            items_written: get(&c.items_written),
            units: Units {
                read: get(&c.read_milliunits) as f64 / MILLI,
                write: get(&c.write_units) as f64,
            },
        }
    }

    fn read(&self, item: Option<&Item>, consistent: bool) {
        let c = &self.counters;
        let bytes = item.map_or(0, |item| item_size(item) as u64);
        c.items_read.fetch_add(1, Ordering::Relaxed);
        let milli = (read_units(bytes, consistent) * MILLI) as u64;
        c.read_milliunits.fetch_add(milli, Ordering::Relaxed);
    }

    fn write(&self, write: &Write) {
        let c = &self.counters;
        let units = match write {
            Write::Put(item) => write_units(item_size(item) as u64),
            // The deleted item's size is not known here: the minimum.
            _ => 1,
        };
        c.items_written.fetch_add(1, Ordering::Relaxed);
        c.write_units.fetch_add(units, Ordering::Relaxed);
    }
}

#[async_trait]
impl<B: Backend> Backend for Meter<B> {
    async fn check_table(&self, partition_key: &str) -> Result<()> {
        self.inner.check_table(partition_key).await
    }

    async fn get(&self, partition_key: &str, key: &str, consistent: bool) -> Result<Option<Item>> {
        self.counters.read_requests.fetch_add(1, Ordering::Relaxed);
        let item = self.inner.get(partition_key, key, consistent).await?;
        self.read(item.as_ref(), consistent);
        Ok(item)
    }

    async fn batch_get(
        &self,
        partition_key: &str,
        keys: &[String],
        consistent: bool,
    ) -> Result<BatchGet> {
        self.counters.read_requests.fetch_add(1, Ordering::Relaxed);
        let got = self
            .inner
            .batch_get(partition_key, keys, consistent)
            .await?;
        for item in &got.items {
            self.read(Some(item), consistent);
        }
        // Keys processed but not found cost the minimum each.
        let absent = keys.len() - got.unprocessed.len() - got.items.len().min(keys.len());
        for _ in 0..absent {
            self.read(None, consistent);
        }
        Ok(got)
    }

    async fn batch_write(&self, partition_key: &str, writes: &[Write]) -> Result<Vec<usize>> {
        self.counters.write_requests.fetch_add(1, Ordering::Relaxed);
        let unprocessed = self.inner.batch_write(partition_key, writes).await?;
        for (i, write) in writes.iter().enumerate() {
            if !unprocessed.contains(&i) {
                self.write(write);
            }
        }
        Ok(unprocessed)
    }

    async fn write_if(
        &self,
        partition_key: &str,
        write: &Write,
        condition: &Condition,
    ) -> Result<Conditional> {
        self.counters.write_requests.fetch_add(1, Ordering::Relaxed);
        let answer = self.inner.write_if(partition_key, write, condition).await?;
        // A failed condition is billed like a write.
        self.write(write);
        Ok(answer)
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
        self.counters.write_requests.fetch_add(1, Ordering::Relaxed);
        let updated = self.inner.update(partition_key, key, delta, mark).await?;
        // Billed by the item's size after the update (DynamoDB bills the larger of before and
        // after; a delta seldom shrinks an item); a failed condition is billed like a write.
        let item = updated.clone().into_item().unwrap_or_default();
        self.write(&Write::Put(item));
        Ok(updated)
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
    use super::*;
    use quickstore::{AttributeValue, EmbeddedBackend};

    fn item(key: &str, bytes: usize) -> Item {
        Item::from([
            ("_key".to_string(), AttributeValue::S(key.into())),
            ("pad".to_string(), AttributeValue::S("x".repeat(bytes))),
        ])
    }

    #[tokio::test]
    async fn units_follow_item_sizes() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let meter = Meter::new(EmbeddedBackend::open(dir.path().join("m.redb"))?);
        // 2,000 bytes: 2 write units, 1 read unit; 5,000 bytes: 5 write units, 2 read units.
        let writes = [Write::Put(item("a", 2000)), Write::Put(item("b", 5000))];
        assert!(meter.batch_write("_key", &writes).await?.is_empty());
        meter.get("_key", "a", true).await?;
        meter.get("_key", "missing", false).await?;
        let keys = ["a".to_string(), "b".to_string(), "c".to_string()];
        meter.batch_get("_key", &keys, true).await?;
        let metered = meter.metered();
        assert_eq!(metered.write_requests, 1);
        assert_eq!(metered.items_written, 2);
        assert_eq!(metered.units.write, 7.0);
        assert_eq!(metered.read_requests, 3);
        assert_eq!(metered.items_read, 5);
        // a: 1, missing (eventual): 0.5, then a: 1, b: 2, c (absent): 1.
        assert_eq!(metered.units.read, 5.5);
        Ok(())
    }
}
