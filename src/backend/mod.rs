//! Backends: where items live durably, and the trait to write another.
//!
//! An application picks one of the two backends this crate ships, both also at the crate root:
//! [`DynamoDbBackend`] in production, and [`EmbeddedBackend`] (a local redb database) for
//! tools, examples and tests that should run with no infrastructure. The rest of this module is
//! for those who implement [`Backend`] themselves: a wrapper that meters or shapes requests, or
//! a store of another kind.
//!
//! A backend speaks in DynamoDB's terms: items are whole attribute maps that include the
//! partition key attribute, keys are rendered key strings, and batch calls may leave part of the
//! work unprocessed. Retrying, batching limits and coalescing are the store's business, so a
//! backend makes exactly one request per call.

mod dynamodb;
#[cfg(feature = "embedded")]
mod embedded;
#[cfg(any(feature = "embedded", feature = "testing"))]
pub(crate) mod rules;

use async_trait::async_trait;

use crate::delta::Delta;
use crate::error::{Error, Result};
use crate::item::Item;

pub use crate::delta::{Mark, Updated};
#[cfg(feature = "streams")]
pub(crate) use dynamodb::sdk_error;
pub use dynamodb::DynamoDbBackend;
#[cfg(feature = "embedded")]
pub use embedded::EmbeddedBackend;

/// DynamoDB's limit on the number of writes in one `BatchWriteItem` request.
pub const MAX_BATCH_WRITE_ITEMS: usize = 25;

/// DynamoDB's limit on the number of keys in one `BatchGetItem` request.
pub const MAX_BATCH_GET_KEYS: usize = 100;

/// One write of a batch.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Write {
    /// Store this item; it carries its partition key attribute.
    Put(Item),
    /// Delete the item under this rendered key.
    Delete(String),
}

impl Write {
    /// The rendered key the write is for: a put's string `partition_key` attribute (`None`
    /// if it lacks one), or a delete's key.
    pub fn key(&self, partition_key: &str) -> Option<&str> {
        match self {
            Write::Put(item) => string_attribute(item, partition_key),
            Write::Delete(key) => Some(key),
        }
    }
}

/// A condition on the item a write replaces, checked by the backend atomically with the write.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Condition {
    /// No item exists under the key.
    Absent,
    /// An item exists under the key, and its number attribute `attribute` is `version`; for
    /// version 0, an item exists without that attribute.
    Version {
        /// The version attribute's name.
        attribute: String,
        /// The version the item must have.
        version: u64,
    },
    /// An item exists under the key without the version attribute `attribute` (a program that
    /// does not version wrote it), and it is still `item`, the item as the store read it
    /// (partition key attribute included): a store's first write over such an item is
    /// conditional on it, so a change made since is a conflict, never overwritten.
    ///
    /// [`holds_for`](Condition::holds_for) compares whole items. DynamoDB compares each
    /// attribute of `item`, and checks that the attributes the write adds are absent; an
    /// attribute that neither the item read nor the write has, added by another writer in
    /// between, is not seen there, since a condition expression cannot list an item's
    /// attributes.
    Unchanged {
        /// The version attribute's name.
        attribute: String,
        /// The item as read, with its partition key attribute.
        item: Item,
    },
}

impl Condition {
    /// Whether the condition holds for `current`, the item under the key (`None` when there is
    /// none): for backends that check conditions themselves.
    pub fn holds_for(&self, current: Option<&Item>) -> bool {
        match self {
            Condition::Absent => current.is_none(),
            // As DynamoDB is asked: present, without the attribute.
            Condition::Version {
                attribute,
                version: 0,
            } => current.is_some_and(|item| !item.contains_key(attribute)),
            Condition::Version { attribute, version } => {
                current
                    .and_then(|item| item.get(attribute))
                    .and_then(|value| value.as_n().ok())
                    .and_then(|n| n.parse::<u64>().ok())
                    == Some(*version)
            }
            Condition::Unchanged { attribute, item } => {
                current.is_some_and(|current| !current.contains_key(attribute) && current == item)
            }
        }
    }
}

/// The outcome of a conditional write.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Conditional {
    /// The condition held and the write was applied.
    Written,
    /// The condition did not hold and nothing was written; `current` is the item under the key
    /// now (with its partition key attribute), or `None` when there is none.
    Conflict {
        /// The item that won.
        current: Option<Item>,
    },
}

/// The outcome of one `batch_get`.
#[derive(Debug, Default, Clone, PartialEq)]
#[non_exhaustive]
pub struct BatchGet {
    /// Items found, each carrying its partition key attribute.
    pub items: Vec<Item>,
    /// Keys the backend did not get to (DynamoDB's `UnprocessedKeys`); ask again.
    pub unprocessed: Vec<String>,
}

impl BatchGet {
    /// The items found, and the keys left unprocessed.
    pub fn new(items: Vec<Item>, unprocessed: Vec<String>) -> Self {
        Self { items, unprocessed }
    }
}

/// Durable storage behind a [`Store`](crate::Store).
///
/// Errors are [`Error::Backend`]; make them with [`Error::transient`] when repeating the request
/// may succeed (throttling, 5xx, timeouts, I/O) and [`Error::permanent`] otherwise. The store
/// retries transient errors with backoff and isolates permanent ones to the writes that caused
/// them.
///
/// # Examples
///
/// A wrapper that counts the requests its backend is sent. A wrapper forwards every method,
/// the optional ones included: a method it leaves out takes the default, which refuses
/// (conditional writes, deltas) or says nothing (the table's name).
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// use async_trait::async_trait;
/// use quickstore::backend::{Backend, BatchGet, Condition, Conditional, Mark, Updated, Write};
/// use quickstore::{Delta, EmbeddedBackend, Item, Key, Result, Store};
///
/// struct Metered<B> {
///     inner: B,
///     requests: AtomicU64,
/// }
///
/// impl<B> Metered<B> {
///     fn count(&self) {
///         self.requests.fetch_add(1, Ordering::Relaxed);
///     }
/// }
///
/// #[async_trait]
/// impl<B: Backend> Backend for Metered<B> {
///     async fn check_table(&self, partition_key: &str) -> Result<()> {
///         self.inner.check_table(partition_key).await
///     }
///     async fn get(&self, pk: &str, key: &str, consistent: bool) -> Result<Option<Item>> {
///         self.count();
///         self.inner.get(pk, key, consistent).await
///     }
///     async fn batch_get(&self, pk: &str, keys: &[String], consistent: bool) -> Result<BatchGet> {
///         self.count();
///         self.inner.batch_get(pk, keys, consistent).await
///     }
///     async fn batch_write(&self, pk: &str, writes: &[Write]) -> Result<Vec<usize>> {
///         self.count();
///         self.inner.batch_write(pk, writes).await
///     }
///     async fn write_if(&self, pk: &str, write: &Write, condition: &Condition) -> Result<Conditional> {
///         self.count();
///         self.inner.write_if(pk, write, condition).await
///     }
///     fn supports_conditional_writes(&self) -> bool {
///         self.inner.supports_conditional_writes()
///     }
///     async fn update(&self, pk: &str, key: &str, delta: &Delta, mark: Option<&Mark>) -> Result<Updated> {
///         self.count();
///         self.inner.update(pk, key, delta, mark).await
///     }
///     fn supports_deltas(&self) -> bool {
///         self.inner.supports_deltas()
///     }
///     fn table(&self) -> Option<String> {
///         self.inner.table()
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let backend = std::sync::Arc::new(Metered {
///     inner: EmbeddedBackend::open(dir.path().join("items.redb"))?,
///     requests: AtomicU64::new(0),
/// });
/// let store = Store::builder(backend.clone()).open().await?;
/// let key = Key::new("Page", "home")?;
/// store.apply(&key, Delta::new().add("views", 1)).await?;
/// store.close().await?;
/// assert!(backend.requests.load(Ordering::Relaxed) >= 1);
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Checks, before any other call, that the table exists and has exactly one partition key:
    /// a string attribute named `partition_key`, and no sort key.
    async fn check_table(&self, partition_key: &str) -> Result<()>;

    /// Reads one item by rendered key.
    async fn get(&self, partition_key: &str, key: &str, consistent: bool) -> Result<Option<Item>>;

    /// Reads up to [`MAX_BATCH_GET_KEYS`] distinct keys in one request.
    async fn batch_get(
        &self,
        partition_key: &str,
        keys: &[String],
        consistent: bool,
    ) -> Result<BatchGet>;

    /// Applies up to [`MAX_BATCH_WRITE_ITEMS`] writes to distinct keys in one request, and
    /// returns the indices (into `writes`) of those left unprocessed.
    async fn batch_write(&self, partition_key: &str, writes: &[Write]) -> Result<Vec<usize>>;

    /// Applies one write if `condition` holds for the item it replaces, atomically (DynamoDB's
    /// `PutItem`/`DeleteItem` with a condition expression). A condition that does not hold is
    /// not an error: it is a [`Conditional::Conflict`] carrying the item that is there.
    ///
    /// The default implementation refuses: a backend supports conditional writes only if it
    /// implements this and [`supports_conditional_writes`](Backend::supports_conditional_writes).
    async fn write_if(
        &self,
        partition_key: &str,
        write: &Write,
        condition: &Condition,
    ) -> Result<Conditional> {
        let _ = (partition_key, write, condition);
        Err(Error::permanent(
            "ConditionalWrite",
            "this backend does not support conditional writes",
            None,
        ))
    }

    /// Whether [`write_if`](Backend::write_if) is implemented. A versioned store
    /// ([`StoreBuilder::versioned`](crate::StoreBuilder::versioned)) writes only with it, so
    /// `open` refuses a backend that says no. The default is `false`: a wrapper around another
    /// backend forwards both methods, or neither.
    fn supports_conditional_writes(&self) -> bool {
        false
    }

    /// Applies `delta` to the item under `key`, creating it if there is none, atomically, and
    /// returns the item as the delta left it, with its partition key attribute: DynamoDB's
    /// `UpdateItem` with `ReturnValues=ALL_NEW`. The delta's changes commute with other
    /// writers' (see [`Delta`]), so it needs neither a read before it nor a version condition.
    ///
    /// With a `mark`, the update also sets the mark's attribute to [`Mark::value`] and its
    /// [`stamps`](Mark::stamps), removes the attributes it [prunes](Mark::prune), and applies
    /// only if [`Mark::allows`] it (the item has not taken the delta already, and the marks it
    /// prunes are still old), as one atomic step: DynamoDB's condition
    /// `(attribute_not_exists(#mark) OR #mark[0] < :seq) AND (attribute_not_exists(#r0) OR
    /// #r0[1] < :before) AND ...`. Otherwise nothing changes and the answer is
    /// [`Updated::Unchanged`] with the item there.
    ///
    /// The default implementation refuses: a backend supports deltas only if it implements
    /// this and [`supports_deltas`](Backend::supports_deltas).
    async fn update(
        &self,
        partition_key: &str,
        key: &str,
        delta: &Delta,
        mark: Option<&Mark>,
    ) -> Result<Updated> {
        let _ = (partition_key, key, delta, mark);
        Err(Error::permanent(
            "UpdateItem",
            "this backend does not support deltas",
            None,
        ))
    }

    /// Whether [`update`](Backend::update) is implemented. The default is `false`: a wrapper
    /// around another backend forwards both methods, or neither.
    fn supports_deltas(&self) -> bool {
        false
    }

    /// A name that tells this backend's table apart from others, such as the DynamoDB table's
    /// name: a warm restart ([`StoreBuilder::warm_restart`](crate::StoreBuilder::warm_restart))
    /// ignores a file of keys saved by a store of another table. The default is `None`, which
    /// a file saved over any other backend without a name matches too; a wrapper forwards it.
    fn table(&self) -> Option<String> {
        None
    }
}

/// The value of a string attribute.
pub(crate) fn string_attribute<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

/// The error for a table whose key schema does not match the store's.
pub(crate) fn key_schema_mismatch(table: &str, partition_key: &str, found: &str) -> Error {
    Error::validation(format!(
        "table `{table}` must have exactly one key, a string partition key named \
         `{partition_key}`, but its key schema is {found}"
    ))
}

/// A shared backend is a backend, so one can be kept beside the store that uses it.
#[async_trait]
impl<B: Backend + ?Sized> Backend for std::sync::Arc<B> {
    async fn check_table(&self, partition_key: &str) -> Result<()> {
        (**self).check_table(partition_key).await
    }

    async fn get(&self, partition_key: &str, key: &str, consistent: bool) -> Result<Option<Item>> {
        (**self).get(partition_key, key, consistent).await
    }

    async fn batch_get(
        &self,
        partition_key: &str,
        keys: &[String],
        consistent: bool,
    ) -> Result<BatchGet> {
        (**self).batch_get(partition_key, keys, consistent).await
    }

    async fn batch_write(&self, partition_key: &str, writes: &[Write]) -> Result<Vec<usize>> {
        (**self).batch_write(partition_key, writes).await
    }

    async fn write_if(
        &self,
        partition_key: &str,
        write: &Write,
        condition: &Condition,
    ) -> Result<Conditional> {
        (**self).write_if(partition_key, write, condition).await
    }

    fn supports_conditional_writes(&self) -> bool {
        (**self).supports_conditional_writes()
    }

    async fn update(
        &self,
        partition_key: &str,
        key: &str,
        delta: &Delta,
        mark: Option<&Mark>,
    ) -> Result<Updated> {
        (**self).update(partition_key, key, delta, mark).await
    }

    fn supports_deltas(&self) -> bool {
        (**self).supports_deltas()
    }

    fn table(&self) -> Option<String> {
        (**self).table()
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::AttributeValue;

    use super::*;

    fn item(version: Option<&str>) -> Item {
        let mut item = Item::from([("_key".to_owned(), AttributeValue::S("K".into()))]);
        if let Some(version) = version {
            item.insert("_v".to_owned(), AttributeValue::N(version.into()));
        }
        item
    }

    #[test]
    fn a_version_condition_holds_for_that_version_only() {
        let version = |version| Condition::Version {
            attribute: "_v".into(),
            version,
        };
        assert!(version(3).holds_for(Some(&item(Some("3")))));
        assert!(!version(3).holds_for(Some(&item(Some("2")))));
        assert!(!version(3).holds_for(Some(&item(None))));
        assert!(!version(3).holds_for(None));
        // Version 0: an item written without versions.
        assert!(version(0).holds_for(Some(&item(None))));
        assert!(!version(0).holds_for(Some(&item(Some("0")))));
        assert!(!version(0).holds_for(Some(&item(Some("1")))));
        assert!(!version(0).holds_for(None));
    }

    #[test]
    fn absent_and_unchanged_conditions() {
        assert!(Condition::Absent.holds_for(None));
        assert!(!Condition::Absent.holds_for(Some(&item(None))));
        let unchanged = Condition::Unchanged {
            attribute: "_v".into(),
            item: item(None),
        };
        assert!(unchanged.holds_for(Some(&item(None))));
        assert!(!unchanged.holds_for(None));
        let mut changed = item(None);
        changed.insert("x".into(), AttributeValue::S("y".into()));
        assert!(!unchanged.holds_for(Some(&changed)));
        let versioned = Condition::Unchanged {
            attribute: "_v".into(),
            item: item(Some("1")),
        };
        assert!(!versioned.holds_for(Some(&item(Some("1")))));
    }
}
