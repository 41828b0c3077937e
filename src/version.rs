//! Versioned mode: every item the store writes carries a version number, and every write is
//! conditional on the version this store last saw, so a store never overwrites a change it has
//! not seen. A write that loses the race is a [`Conflict`]: reported, never retried over the
//! winner.
//!
//! Versions count the writes of an item: the first write of an absent item stores version 1,
//! each later write the version it replaces plus one. An item without the version attribute
//! (written by a program that does not version) counts as version 0.

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;

use serde::de::DeserializeOwned;

use crate::backend::Condition;
use crate::error::Result;
use crate::item::{self, Item};
use crate::key::Key;

/// A versioned write that lost the race to another writer, as reported to the handler set with
/// [`StoreBuilder::on_conflict`](crate::StoreBuilder::on_conflict).
///
/// The store's pending state of the key was dropped, and the winner's state became the key's
/// cached state: the next read sees it. [`ours`](Conflict::ours) and
/// [`theirs`](Conflict::theirs) read both states as your type:
///
/// ```
/// # #[derive(serde::Deserialize)] struct Counter { n: u64 }
/// fn lost(conflict: &quickstore::Conflict) -> quickstore::Result<u64> {
///     let ours = conflict.ours::<Counter>()?.map_or(0, |c| c.n);
///     let theirs = conflict.theirs::<Counter>()?.map_or(0, |c| c.n);
///     Ok(ours.saturating_sub(theirs))
/// }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Conflict {
    /// The key, as the store's caller built it (for a write recovered from a journal, as the
    /// store's [`Kinds`](crate::Kinds) parse it; see [`Key`] on keys without a registry).
    pub key: Key,
    /// The state this store wanted to write (`None`: a delete), now dropped.
    pub ours: Option<Arc<Item>>,
    /// The state in the table that won (`None`: absent), without its partition key and
    /// version attributes.
    pub theirs: Option<Arc<Item>>,
}

impl Conflict {
    /// The state this store wanted to write, read as a `T`; `None` for a delete.
    ///
    /// # Errors
    ///
    /// [`Error::Serialize`](crate::Error::Serialize) when the item does not fit `T`.
    pub fn ours<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        self.ours.as_deref().map(item::to_value).transpose()
    }

    /// The state that won, read as a `T`; `None` when the item is absent.
    ///
    /// # Errors
    ///
    /// [`Error::Serialize`](crate::Error::Serialize) when the item does not fit `T`.
    pub fn theirs<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        self.theirs.as_deref().map(item::to_value).transpose()
    }
}

/// Called once per conflict, on the flusher's task: keep it short.
pub(crate) type ConflictHandler = Arc<dyn Fn(&Conflict) + Send + Sync>;

/// The attribute naming the write that stored an item, beside the version attribute: its
/// name with `_by` appended. Its value is `writer:seq`, the writing store's id (a journal keeps
/// its id across restarts) and the sequence of the state written, so that a store can tell its
/// own landed write from another writer's, even when a crash lost the answer.
pub(crate) fn writer_attribute(attribute: &str) -> String {
    format!("{attribute}_by")
}

/// The writer attribute's value for state `seq` written by `writer`.
pub(crate) fn tag(writer: u64, seq: u64) -> String {
    format!("{writer:016x}:{seq}")
}

/// Which of `writer`'s states an item's writer attribute names, if it names one of its.
pub(crate) fn written_by(item: &Item, attribute: &str, writer: u64) -> Option<u64> {
    let tag = item.get(&writer_attribute(attribute))?.as_s().ok()?;
    let (by, seq) = tag.split_once(':')?;
    (u64::from_str_radix(by, 16).ok()? == writer)
        .then(|| seq.parse().ok())
        .flatten()
}

/// Removes the version and writer attributes from an item read from the table, and returns
/// the version.
pub(crate) fn take(item: &mut Item, attribute: &str) -> u64 {
    item.remove(&writer_attribute(attribute));
    item.remove(attribute)
        .and_then(|value| value.as_n().ok().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// The version a write stores over `base` (the version it replaces, `None` when absent).
pub(crate) fn next(base: Option<u64>) -> u64 {
    base.map_or(1, |version| version.saturating_add(1))
}

/// The table's state a key's pending mutations build on (versioned mode: what their write is
/// conditional on).
#[derive(Debug, Clone, Default)]
pub(crate) struct Base {
    /// Present at a version (0: without the version attribute), or absent (`None`).
    pub version: Option<u64>,
    /// When the base is an item without the version attribute: that item as the store read
    /// it (without its partition key attribute), which the first write is conditional on.
    /// `None` otherwise, and for a mutation recovered from a journal that kept only the
    /// version.
    pub read: Option<Arc<Item>>,
}

/// The condition a write of `key` over `base` is sent with: the base's absence, or its
/// version, or, for an item without the version attribute, that item as the store read it.
/// `None` when the base is such an item but the store does not have it (a recovered write):
/// no condition says "unchanged" then, and the write must not be sent blind.
pub(crate) fn condition(
    base: &Base,
    attribute: &str,
    partition_key: &str,
    key: &str,
) -> Option<Condition> {
    Some(match (base.version, &base.read) {
        (None, _) => Condition::Absent,
        (Some(0), Some(read)) => {
            let mut item = (**read).clone();
            item.insert(partition_key.to_owned(), AttributeValue::S(key.to_owned()));
            Condition::Unchanged {
                attribute: attribute.to_owned(),
                item,
            }
        }
        (Some(0), None) => return None,
        (Some(version), _) => Condition::Version {
            attribute: attribute.to_owned(),
            version,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(version: Option<u64>, read: Option<&Item>) -> Base {
        Base {
            version,
            read: read.cloned().map(Arc::new),
        }
    }

    #[test]
    fn a_write_over_an_unversioned_item_is_conditional_on_the_item_as_read() {
        let read = Item::from([("x".to_string(), AttributeValue::S("y".into()))]);
        let mut expected = read.clone();
        expected.insert("_key".into(), AttributeValue::S("K".into()));
        assert_eq!(
            condition(&base(Some(0), Some(&read)), "_v", "_key", "K"),
            Some(Condition::Unchanged {
                attribute: "_v".into(),
                item: expected
            })
        );
        assert_eq!(
            condition(&base(Some(0), None), "_v", "_key", "K"),
            None,
            "without the item read, no condition: never blind"
        );
        assert_eq!(
            condition(&base(Some(3), None), "_v", "_key", "K"),
            Some(Condition::Version {
                attribute: "_v".into(),
                version: 3
            })
        );
    }

    #[test]
    fn versions_count_writes_from_one() {
        assert_eq!(next(None), 1);
        assert_eq!(next(Some(0)), 1);
        assert_eq!(next(Some(41)), 42);
        assert_eq!(
            condition(&base(None, None), "_v", "_key", "K"),
            Some(Condition::Absent)
        );
        let mut item = Item::from([
            ("_v".to_string(), AttributeValue::N("7".into())),
            ("x".to_string(), AttributeValue::S("y".into())),
        ]);
        assert_eq!(take(&mut item, "_v"), 7);
        assert!(!item.contains_key("_v"));
        assert_eq!(take(&mut item, "_v"), 0, "unversioned items are version 0");
    }

    #[test]
    fn writer_tags_name_the_store_and_the_state() {
        let mut item = Item::from([
            ("_v".to_string(), AttributeValue::N("3".into())),
            ("_v_by".to_string(), AttributeValue::S(tag(0xabc, 42))),
        ]);
        assert_eq!(written_by(&item, "_v", 0xabc), Some(42));
        assert_eq!(written_by(&item, "_v", 0xabd), None, "another writer's");
        assert_eq!(take(&mut item, "_v"), 3);
        assert!(item.is_empty(), "both attributes are the store's own");
        assert_eq!(written_by(&item, "_v", 0xabc), None);
    }
}
