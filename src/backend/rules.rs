//! DynamoDB's rules for a request, for the backends that keep a table themselves (the embedded
//! database, and `testing`'s in-memory table): a request DynamoDB would refuse is refused the
//! same way, as a permanent error, before anything of it is applied.
//!
//! Conditions are evaluated by [`Condition::holds_for`](super::Condition::holds_for), beside the
//! condition itself.

use std::collections::HashSet;

use super::{Write, MAX_BATCH_GET_KEYS, MAX_BATCH_WRITE_ITEMS};
use crate::delta::{Delta, Mark, Updated};
use crate::error::{BackendError, Error, Result};
use crate::item::Item;

/// A request DynamoDB would refuse, refused by `backend` (its short name in error messages).
pub(crate) fn invalid(
    backend: &'static str,
    operation: &'static str,
    message: impl Into<String>,
) -> Error {
    BackendError::new(backend, operation, false)
        .with_message(message)
        .into()
}

/// Checks a batch read: at most [`MAX_BATCH_GET_KEYS`] keys, none twice.
pub(crate) fn check_batch_get(backend: &'static str, keys: &[String]) -> Result<()> {
    if keys.len() > MAX_BATCH_GET_KEYS {
        return Err(invalid(
            backend,
            "BatchGetItem",
            format!(
                "{} keys requested, over the limit of {MAX_BATCH_GET_KEYS}",
                keys.len()
            ),
        ));
    }
    if keys.iter().collect::<HashSet<_>>().len() != keys.len() {
        return Err(invalid(
            backend,
            "BatchGetItem",
            "the requested keys contain duplicates",
        ));
    }
    Ok(())
}

/// Checks a batch write: 1 to [`MAX_BATCH_WRITE_ITEMS`] writes, each put carrying its string
/// partition key attribute, no key twice. Returns the rendered key of each write, in order.
pub(crate) fn batch_write_keys<'a>(
    backend: &'static str,
    partition_key: &str,
    writes: &'a [Write],
) -> Result<Vec<&'a str>> {
    if writes.is_empty() || writes.len() > MAX_BATCH_WRITE_ITEMS {
        return Err(invalid(
            backend,
            "BatchWriteItem",
            format!(
                "{} writes in one batch; a batch holds 1 to {MAX_BATCH_WRITE_ITEMS}",
                writes.len()
            ),
        ));
    }
    let mut keys = Vec::with_capacity(writes.len());
    let mut seen = HashSet::with_capacity(writes.len());
    for write in writes {
        let Some(key) = write.key(partition_key) else {
            return Err(invalid(
                backend,
                "BatchWriteItem",
                format!("an item lacks its string partition key attribute `{partition_key}`"),
            ));
        };
        if !seen.insert(key) {
            return Err(invalid(
                backend,
                "BatchWriteItem",
                format!("the batch writes key `{key}` twice"),
            ));
        }
        keys.push(key);
    }
    Ok(keys)
}

/// The rendered key of a conditional write; a put without its string partition key attribute is
/// refused.
pub(crate) fn conditional_write_key<'a>(
    backend: &'static str,
    partition_key: &str,
    write: &'a Write,
) -> Result<&'a str> {
    write.key(partition_key).ok_or_else(|| {
        invalid(
            backend,
            "ConditionalWrite",
            format!("the item lacks its string partition key attribute `{partition_key}`"),
        )
    })
}

/// What `delta` (with `mark`, if any) makes of `current`, the item under `key` (`None` if there
/// is none), as DynamoDB's `UpdateItem` makes it; a delta DynamoDB would refuse, or that it
/// would refuse to apply to `current`, is refused with DynamoDB's reason. The item to store is
/// the one in [`Updated::Applied`].
pub(crate) fn updated(
    backend: &'static str,
    partition_key: &str,
    key: &str,
    delta: &Delta,
    mark: Option<&Mark>,
    current: Option<&Item>,
) -> Result<Updated> {
    let refused = |err| match err {
        Error::Validation { message } => invalid(backend, "UpdateItem", message),
        other => other,
    };
    delta.check(partition_key).map_err(refused)?;
    if let Some(mark) = mark {
        if !mark.allows(current) {
            return Ok(Updated::Unchanged(current.cloned()));
        }
    }
    let mut item = delta.apply(current, partition_key, key).map_err(refused)?;
    if let Some(mark) = mark {
        item.insert(mark.attribute.clone(), mark.value());
        item.extend(mark.stamps.clone());
        for attribute in &mark.prune {
            item.remove(attribute);
        }
    }
    Ok(Updated::Applied(item))
}
