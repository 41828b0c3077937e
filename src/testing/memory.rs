//! [`MemoryBackend`]: a table in memory, for tests and benchmarks that should measure or
//! exercise the store and nothing behind it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::backend::rules::{batch_write_keys, check_batch_get, conditional_write_key, updated};
use crate::backend::{key_schema_mismatch, Backend, BatchGet, Condition, Conditional, Write};
use crate::delta::{Delta, Mark, Updated};
use crate::error::Result;
use crate::item::Item;

/// The backend's name in error messages.
const NAME: &str = "in-memory table";

/// A table in memory: items in a map behind a mutex, each request answered at once and whole.
///
/// It answers as DynamoDB does where a store could notice the difference, and as
/// [`EmbeddedBackend`](crate::EmbeddedBackend) does: a batch read of more than
/// [`MAX_BATCH_GET_KEYS`](crate::backend::MAX_BATCH_GET_KEYS) keys or with a key twice, and a batch
/// write of no writes, of more than [`MAX_BATCH_WRITE_ITEMS`](crate::backend::MAX_BATCH_WRITE_ITEMS),
/// with a key twice or with a put lacking its string partition key attribute, fail with a
/// permanent error and apply nothing. A batch is applied whole, so nothing is ever left
/// unprocessed; every read is consistent. Conditional writes are supported, checked with
/// [`Condition::holds_for`] atomically with the write. The first
/// [`check_table`](Backend::check_table) fixes the partition key attribute's name, and a later
/// one with another name fails, as for a table created with that key.
///
/// A clone shares the table (an `Arc` inside): keep one to look at what the store wrote.
/// Nothing sleeps and nothing is copied but the items the requests carry, so a benchmark over
/// it measures the store. To make it misbehave, wrap it in a
/// [`FaultyBackend`](super::FaultyBackend).
///
/// ```
/// use std::collections::HashMap;
///
/// use quickstore::testing::MemoryBackend;
/// use quickstore::{AttributeValue, Key, Store};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let table = MemoryBackend::new();
/// let store = Store::builder(table.clone()).open().await?;
/// let key = Key::new("User", "ada")?;
/// store.upsert(&key, &HashMap::from([("visits", 1)])).await?;
/// assert!(table.is_empty(), "acknowledged, not written yet");
///
/// store.close().await?;
/// let item = table.item("Userada").ok_or("not written")?;
/// assert_eq!(item.get("visits"), Some(&AttributeValue::N("1".into())));
/// assert_eq!(table.len(), 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryBackend {
    table: Arc<Table>,
}

#[derive(Debug, Default)]
struct Table {
    /// The partition key attribute's name, set by the first `check_table`.
    partition_key: OnceLock<String>,
    items: Mutex<HashMap<String, Item>>,
}

impl MemoryBackend {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The item under the rendered key `key`, partition key attribute included.
    pub fn item(&self, key: &str) -> Option<Item> {
        self.table.items.lock().get(key).cloned()
    }

    /// A copy of every item, by rendered key.
    pub fn items(&self) -> BTreeMap<String, Item> {
        self.table
            .items
            .lock()
            .iter()
            .map(|(key, item)| (key.clone(), item.clone()))
            .collect()
    }

    /// The number of items.
    pub fn len(&self) -> usize {
        self.table.items.lock().len()
    }

    /// Whether the table holds no item.
    pub fn is_empty(&self) -> bool {
        self.table.items.lock().is_empty()
    }
}

#[async_trait]
impl Backend for MemoryBackend {
    async fn check_table(&self, partition_key: &str) -> Result<()> {
        let found = self
            .table
            .partition_key
            .get_or_init(|| partition_key.to_owned());
        if found != partition_key {
            return Err(key_schema_mismatch(
                "(in memory)",
                partition_key,
                &format!("[{found} (HASH, S)]"),
            ));
        }
        Ok(())
    }

    async fn get(
        &self,
        _partition_key: &str,
        key: &str,
        _consistent: bool,
    ) -> Result<Option<Item>> {
        Ok(self.item(key))
    }

    async fn batch_get(
        &self,
        _partition_key: &str,
        keys: &[String],
        _consistent: bool,
    ) -> Result<BatchGet> {
        check_batch_get(NAME, keys)?;
        let items = self.table.items.lock();
        let found = keys.iter().filter_map(|key| items.get(key).cloned());
        Ok(BatchGet::new(found.collect(), Vec::new()))
    }

    async fn batch_write(&self, partition_key: &str, writes: &[Write]) -> Result<Vec<usize>> {
        let keys = batch_write_keys(NAME, partition_key, writes)?;
        let mut items = self.table.items.lock();
        for (key, write) in keys.into_iter().zip(writes) {
            apply(&mut items, key, write);
        }
        Ok(Vec::new())
    }

    async fn write_if(
        &self,
        partition_key: &str,
        write: &Write,
        condition: &Condition,
    ) -> Result<Conditional> {
        let key = conditional_write_key(NAME, partition_key, write)?;
        let mut items = self.table.items.lock();
        let current = items.get(key);
        if !condition.holds_for(current) {
            return Ok(Conditional::Conflict {
                current: current.cloned(),
            });
        }
        apply(&mut items, key, write);
        Ok(Conditional::Written)
    }

    fn supports_conditional_writes(&self) -> bool {
        true
    }

    async fn update(
        &self,
        partition_key: &str,
        key: &str,
        delta: &Delta,
        mark: Option<&Mark>,
    ) -> Result<Updated> {
        let mut items = self.table.items.lock();
        let updated = updated(NAME, partition_key, key, delta, mark, items.get(key))?;
        if let Updated::Applied(item) = &updated {
            items.insert(key.to_owned(), item.clone());
        }
        Ok(updated)
    }

    fn supports_deltas(&self) -> bool {
        true
    }
}

/// Applies one write of a request already checked.
fn apply(items: &mut HashMap<String, Item>, key: &str, write: &Write) {
    match write {
        Write::Put(item) => {
            items.insert(key.to_owned(), item.clone());
        }
        Write::Delete(_) => {
            items.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::AttributeValue;

    use super::*;
    use crate::backend::{MAX_BATCH_GET_KEYS, MAX_BATCH_WRITE_ITEMS};
    use crate::error::Error;

    fn item(key: &str, n: Option<u64>) -> Item {
        let mut item = Item::from([("_key".to_owned(), AttributeValue::S(key.to_owned()))]);
        if let Some(n) = n {
            item.insert("v".to_owned(), AttributeValue::N(n.to_string()));
        }
        item
    }

    fn put(key: &str, n: u64) -> Write {
        Write::Put(item(key, Some(n)))
    }

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("K{i}")).collect()
    }

    /// Whether `result` is a permanent error of the in-memory table for `operation`.
    fn refused<T>(result: Result<T>, operation: &str) -> bool {
        matches!(
            result,
            Err(Error::Backend(err))
                if !err.is_retryable() && err.backend() == NAME && err.operation() == operation
        )
    }

    #[tokio::test]
    async fn reads_what_was_written_and_clones_share_the_table() -> Result<()> {
        let table = MemoryBackend::new();
        let handle = table.clone();
        table.check_table("_key").await?;
        let left = table
            .batch_write("_key", &[put("A", 1), put("B", 2), put("C", 3)])
            .await?;
        assert!(left.is_empty());
        table
            .batch_write("_key", &[Write::Delete("B".into()), put("C", 4)])
            .await?;
        assert_eq!(
            table.get("_key", "A", true).await?,
            Some(item("A", Some(1)))
        );
        assert_eq!(table.get("_key", "B", false).await?, None);
        let got = table
            .batch_get("_key", &["C".into(), "B".into(), "A".into()], true)
            .await?;
        assert_eq!(got.items, vec![item("C", Some(4)), item("A", Some(1))]);
        assert!(got.unprocessed.is_empty());
        assert_eq!(handle.len(), 2);
        assert_eq!(
            handle.items().into_keys().collect::<Vec<_>>(),
            ["A".to_owned(), "C".to_owned()]
        );
        assert_eq!(handle.item("C"), Some(item("C", Some(4))));
        // Deleting what is not there is no error.
        table
            .batch_write("_key", &[Write::Delete("Z".into())])
            .await?;
        Ok(())
    }

    #[tokio::test]
    async fn the_partition_key_name_is_fixed_by_the_first_check() -> Result<()> {
        let table = MemoryBackend::new();
        table.check_table("_key").await?;
        table.check_table("_key").await?;
        let err = table.check_table("pk").await.err();
        assert!(matches!(err, Some(Error::Validation { .. })), "{err:?}");
        Ok(())
    }

    #[tokio::test]
    async fn batches_keep_dynamodb_limits_and_a_refused_batch_applies_nothing() -> Result<()> {
        let table = MemoryBackend::new();
        let full: Vec<Write> = keys(MAX_BATCH_WRITE_ITEMS)
            .iter()
            .map(|k| put(k, 1))
            .collect();
        assert_eq!(table.batch_write("_key", &full).await?, Vec::<usize>::new());
        assert_eq!(table.len(), MAX_BATCH_WRITE_ITEMS);

        let fresh = MemoryBackend::new();
        let too_many: Vec<Write> = keys(MAX_BATCH_WRITE_ITEMS + 1)
            .iter()
            .map(|k| put(k, 1))
            .collect();
        assert!(refused(
            fresh.batch_write("_key", &too_many).await,
            "BatchWriteItem"
        ));
        assert!(refused(
            fresh.batch_write("_key", &[]).await,
            "BatchWriteItem"
        ));
        let twice = [put("A", 1), Write::Delete("A".into())];
        assert!(refused(
            fresh.batch_write("_key", &twice).await,
            "BatchWriteItem"
        ));
        let keyless = [put("B", 1), Write::Put(Item::new())];
        assert!(refused(
            fresh.batch_write("_key", &keyless).await,
            "BatchWriteItem"
        ));
        let wrong_key = [put("C", 1)];
        assert!(refused(
            fresh.batch_write("pk", &wrong_key).await,
            "BatchWriteItem"
        ));
        assert!(fresh.is_empty(), "{:?}", fresh.items());

        let most = keys(MAX_BATCH_GET_KEYS);
        assert_eq!(table.batch_get("_key", &most, true).await?.items.len(), 25);
        assert!(refused(
            table
                .batch_get("_key", &keys(MAX_BATCH_GET_KEYS + 1), true)
                .await,
            "BatchGetItem"
        ));
        let twice = ["K1".to_owned(), "K1".to_owned()];
        assert!(refused(
            table.batch_get("_key", &twice, true).await,
            "BatchGetItem"
        ));
        Ok(())
    }

    #[tokio::test]
    async fn conditional_writes_apply_only_when_the_condition_holds() -> Result<()> {
        let table = MemoryBackend::new();
        assert!(table.supports_conditional_writes());
        let version = |version| Condition::Version {
            attribute: "v".into(),
            version,
        };

        // Absent: only where there is nothing.
        assert_eq!(
            table
                .write_if("_key", &put("A", 1), &Condition::Absent)
                .await?,
            Conditional::Written
        );
        assert_eq!(
            table
                .write_if("_key", &put("A", 9), &Condition::Absent)
                .await?,
            Conditional::Conflict {
                current: Some(item("A", Some(1)))
            }
        );

        // Version: the item's number attribute, and version 0 for an item without it.
        assert_eq!(
            table.write_if("_key", &put("A", 2), &version(2)).await?,
            Conditional::Conflict {
                current: Some(item("A", Some(1)))
            }
        );
        assert_eq!(
            table.write_if("_key", &put("A", 2), &version(1)).await?,
            Conditional::Written
        );
        assert_eq!(
            table.write_if("_key", &put("N", 1), &version(0)).await?,
            Conditional::Conflict { current: None },
            "version 0 needs an item"
        );
        table
            .batch_write("_key", &[Write::Put(item("P", None))])
            .await?;
        assert_eq!(
            table.write_if("_key", &put("P", 1), &version(0)).await?,
            Conditional::Written
        );

        // Unchanged: the item as read, without the version attribute.
        table
            .batch_write("_key", &[Write::Put(item("U", None))])
            .await?;
        let unchanged = |read: Item| Condition::Unchanged {
            attribute: "v".into(),
            item: read,
        };
        let mut other = item("U", None);
        other.insert("text".into(), AttributeValue::S("changed".into()));
        assert_eq!(
            table
                .write_if("_key", &put("U", 1), &unchanged(other))
                .await?,
            Conditional::Conflict {
                current: Some(item("U", None))
            }
        );
        assert_eq!(
            table
                .write_if("_key", &put("U", 1), &unchanged(item("U", None)))
                .await?,
            Conditional::Written
        );
        assert_eq!(
            table
                .write_if("_key", &put("U", 2), &unchanged(item("U", Some(1))))
                .await?,
            Conditional::Conflict {
                current: Some(item("U", Some(1)))
            },
            "an item with the version attribute is not unchanged"
        );

        // A conditional delete.
        assert_eq!(
            table
                .write_if("_key", &Write::Delete("A".into()), &version(1))
                .await?,
            Conditional::Conflict {
                current: Some(item("A", Some(2)))
            }
        );
        assert_eq!(
            table
                .write_if("_key", &Write::Delete("A".into()), &version(2))
                .await?,
            Conditional::Written
        );
        assert_eq!(table.item("A"), None);
        assert_eq!(table.item("U"), Some(item("U", Some(1))));

        let keyless = Write::Put(Item::new());
        assert!(refused(
            table.write_if("_key", &keyless, &Condition::Absent).await,
            "ConditionalWrite"
        ));
        Ok(())
    }
}
