//! A durable local backend on redb, for the CLI, examples and tests that need no infrastructure.
//!
//! It keeps DynamoDB's contract where a store could notice the difference: batch limits,
//! distinct keys per batch, and one fixed partition key attribute per database. Items are kept
//! in the [`codec`](crate::codec) encoding. Writes are committed with redb's default (fsync)
//! durability, those that arrive together in one transaction ([`commit`]): a batch is answered
//! once the transaction holding it committed.

mod commit;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase as _, ReadableTable, TableDefinition};

use self::commit::Committer;
use super::rules::{batch_write_keys, check_batch_get, conditional_write_key, updated};
use super::{key_schema_mismatch, Backend, BatchGet, Condition, Conditional, Write};
use crate::codec;
use crate::delta::{Delta, Mark, Updated};
use crate::error::{BackendError, Error, Result};
use crate::item::Item;

/// The backend's name in error messages.
const NAME: &str = "embedded database";

const ITEMS: TableDefinition<&str, &[u8]> = TableDefinition::new("items");
const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
const PARTITION_KEY: &str = "partition_key";

/// Items in a local redb database file.
#[derive(Debug, Clone)]
pub struct EmbeddedBackend {
    db: Arc<Database>,
    committer: Committer,
    path: PathBuf,
}

impl EmbeddedBackend {
    /// Opens the database at `path`, creating it if it does not exist.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// use quickstore::{EmbeddedBackend, Key, Store};
    ///
    /// let backend = EmbeddedBackend::open(dir.path().join("items.redb"))?;
    /// let store = Store::builder(backend).open().await?;
    /// store.upsert(&Key::new("User", "ada")?, &serde_json::json!({"name": "Ada"})).await?;
    /// store.close().await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] (permanent) when the file cannot be created or opened: a missing
    /// directory, no permission, a file that is not a redb database, or a database another
    /// process holds open.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let db = Database::create(&path).map_err(|err| {
            BackendError::new(NAME, "Open", false)
                .with_message(format!("cannot open {}", path.display()))
                .with_source(Some(Arc::new(redb::Error::from(err))))
        })?;
        let db = Arc::new(db);
        Ok(Self {
            committer: Committer::new(Arc::clone(&db)),
            db,
            path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs blocking reads off the async runtime.
    async fn read<T, F>(&self, operation: &'static str, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, redb::Error> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        match tokio::task::spawn_blocking(move || work(&db)).await {
            Ok(result) => result.map_err(|err| database_error(operation, err)),
            Err(join) => Err(task_died(operation, Some(Arc::new(join)))),
        }
    }
}

/// Classifies a redb error: I/O may succeed on retry, everything else will not.
fn database_error(operation: &'static str, err: redb::Error) -> Error {
    shared_database_error(operation, Arc::new(err))
}

/// [`database_error`] for an error shared by the writes of one transaction.
fn shared_database_error(operation: &'static str, err: Arc<redb::Error>) -> Error {
    let retryable = matches!(*err, redb::Error::Io(_));
    BackendError::new(NAME, operation, retryable)
        .with_source(Some(err))
        .into()
}

/// The blocking task doing `operation` ended without an answer (`source`: how, where known).
fn task_died(operation: &'static str, source: Option<crate::error::Cause>) -> Error {
    BackendError::new(NAME, operation, false)
        .with_message("the database task died")
        .with_source(source)
        .into()
}

fn corrupt(key: &str, err: codec::DecodeError) -> redb::Error {
    redb::Error::Corrupted(format!("item `{key}`: {err}"))
}

fn read_items(db: &Database, keys: &[String]) -> Result<Vec<Item>, redb::Error> {
    let txn = db.begin_read()?;
    let table = match txn.open_table(ITEMS) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(err) => return Err(err.into()),
    };
    let mut items = Vec::with_capacity(keys.len());
    for key in keys {
        items.extend(stored_item(&table, key)?);
    }
    Ok(items)
}

/// `item` as the database stores it; an item the codec cannot encode fails `operation`.
fn encode(operation: &'static str, item: &Item) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    codec::encode(item, &mut bytes).map_err(|err| {
        Error::from(BackendError::new(NAME, operation, false).with_source(Some(Arc::new(err))))
    })?;
    Ok(bytes)
}

/// The item stored under `key` in `table`, if any.
fn stored_item(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<Item>, redb::Error> {
    match table.get(key)? {
        Some(stored) => Ok(Some(
            codec::decode(stored.value()).map_err(|err| corrupt(key, err))?,
        )),
        None => Ok(None),
    }
}

#[async_trait]
impl Backend for EmbeddedBackend {
    async fn check_table(&self, partition_key: &str) -> Result<()> {
        let wanted = partition_key.to_owned();
        let found = self
            .committer
            .write("DescribeTable", move |txn| {
                let mut meta = txn.open_table(META)?;
                let found = meta.get(PARTITION_KEY)?.map(|v| v.value().to_owned());
                if found.is_none() {
                    meta.insert(PARTITION_KEY, wanted.as_str())?;
                }
                txn.open_table(ITEMS)?;
                Ok(found)
            })
            .await?;
        match found {
            Some(found) if found != partition_key => Err(key_schema_mismatch(
                &self.path.display().to_string(),
                partition_key,
                &format!("[{found} (HASH, S)]"),
            )),
            _ => Ok(()),
        }
    }

    async fn get(
        &self,
        _partition_key: &str,
        key: &str,
        _consistent: bool,
    ) -> Result<Option<Item>> {
        let keys = vec![key.to_owned()];
        let mut items = self
            .read("GetItem", move |db| read_items(db, &keys))
            .await?;
        Ok(items.pop())
    }

    async fn batch_get(
        &self,
        _partition_key: &str,
        keys: &[String],
        _consistent: bool,
    ) -> Result<BatchGet> {
        check_batch_get(NAME, keys)?;
        let keys = keys.to_vec();
        let items = self
            .read("BatchGetItem", move |db| read_items(db, &keys))
            .await?;
        Ok(BatchGet {
            items,
            unprocessed: Vec::new(),
        })
    }

    async fn batch_write(&self, partition_key: &str, writes: &[Write]) -> Result<Vec<usize>> {
        let keys = batch_write_keys(NAME, partition_key, writes)?;
        let mut encoded = Vec::with_capacity(writes.len());
        for (key, write) in keys.into_iter().zip(writes) {
            let bytes = match write {
                Write::Put(item) => Some(encode("BatchWriteItem", item)?),
                Write::Delete(_) => None,
            };
            encoded.push((key.to_owned(), bytes));
        }
        self.committer
            .write("BatchWriteItem", move |txn| {
                let mut table = txn.open_table(ITEMS)?;
                for (key, bytes) in &encoded {
                    match bytes {
                        Some(bytes) => table.insert(key.as_str(), bytes.as_slice())?,
                        None => table.remove(key.as_str())?,
                    };
                }
                Ok(Vec::new())
            })
            .await
    }

    async fn write_if(
        &self,
        partition_key: &str,
        write: &Write,
        condition: &Condition,
    ) -> Result<Conditional> {
        let key = conditional_write_key(NAME, partition_key, write)?.to_owned();
        let bytes = match write {
            Write::Put(item) => Some(encode("ConditionalWrite", item)?),
            Write::Delete(_) => None,
        };
        let condition = condition.clone();
        self.committer
            .write("ConditionalWrite", move |txn| {
                let mut table = txn.open_table(ITEMS)?;
                let current = stored_item(&table, &key)?;
                if condition.holds_for(current.as_ref()) {
                    match &bytes {
                        Some(bytes) => table.insert(key.as_str(), bytes.as_slice())?,
                        None => table.remove(key.as_str())?,
                    };
                    Ok(Conditional::Written)
                } else {
                    Ok(Conditional::Conflict { current })
                }
            })
            .await
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
        let (partition_key, key) = (partition_key.to_owned(), key.to_owned());
        let (delta, mark) = (delta.clone(), mark.cloned());
        // The item the delta made, or why it was refused; written in one transaction with the
        // read it was made from.
        self.committer
            .write("UpdateItem", move |txn| {
                let mut table = txn.open_table(ITEMS)?;
                let current = stored_item(&table, &key)?;
                let outcome = updated(
                    NAME,
                    &partition_key,
                    &key,
                    &delta,
                    mark.as_ref(),
                    current.as_ref(),
                );
                if let Ok(Updated::Applied(item)) = &outcome {
                    match encode("UpdateItem", item) {
                        Ok(bytes) => {
                            table.insert(key.as_str(), bytes.as_slice())?;
                        }
                        Err(err) => return Ok(Err(err)),
                    }
                }
                Ok(outcome)
            })
            .await?
    }

    fn supports_deltas(&self) -> bool {
        true
    }

    /// The database file, made absolute when it can be.
    fn table(&self) -> Option<String> {
        let path = std::path::absolute(&self.path).unwrap_or_else(|_| self.path.clone());
        Some(format!("embedded:{}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue;

    fn item(key: &str, n: &str) -> Item {
        [
            ("_key".to_string(), AttributeValue::S(key.into())),
            ("n".to_string(), AttributeValue::N(n.into())),
        ]
        .into_iter()
        .collect()
    }

    #[tokio::test]
    async fn writes_survive_reopening() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::validation(e.to_string()))?;
        let path = dir.path().join("db.redb");
        {
            let backend = EmbeddedBackend::open(&path)?;
            backend.check_table("_key").await?;
            let unprocessed = backend
                .batch_write(
                    "_key",
                    &[Write::Put(item("A1", "1")), Write::Put(item("A2", "2"))],
                )
                .await?;
            assert!(unprocessed.is_empty());
            backend
                .batch_write("_key", &[Write::Delete("A2".into())])
                .await?;
        }
        let backend = EmbeddedBackend::open(&path)?;
        backend.check_table("_key").await?;
        assert_eq!(
            backend.get("_key", "A1", true).await?,
            Some(item("A1", "1"))
        );
        assert_eq!(backend.get("_key", "A2", true).await?, None);
        let got = backend
            .batch_get("_key", &["A1".into(), "A2".into()], true)
            .await?;
        assert_eq!(got.items, vec![item("A1", "1")]);
        Ok(())
    }

    #[tokio::test]
    async fn the_partition_key_name_is_fixed_at_creation() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::validation(e.to_string()))?;
        let backend = EmbeddedBackend::open(dir.path().join("db.redb"))?;
        backend.check_table("_key").await?;
        let err = backend.check_table("pk").await.err();
        assert!(matches!(err, Some(Error::Validation { .. })), "{err:?}");
        Ok(())
    }

    #[tokio::test]
    async fn batches_keep_dynamodb_limits() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::validation(e.to_string()))?;
        let backend = EmbeddedBackend::open(dir.path().join("db.redb"))?;
        let twice = [Write::Put(item("A", "1")), Write::Delete("A".into())];
        assert!(backend.batch_write("_key", &twice).await.is_err());
        let too_many: Vec<Write> = (0..26).map(|i| Write::Delete(format!("K{i}"))).collect();
        assert!(backend.batch_write("_key", &too_many).await.is_err());
        Ok(())
    }
}
