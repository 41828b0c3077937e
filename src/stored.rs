//! What an item looks like in the table: the value's own attributes, and those the store sets
//! itself: the partition key, holding the rendered key; in versioned mode the version and
//! the writer of the state (see [`version`](crate::version) for what they mean); and, on items
//! changed by deltas, each writer's [`Mark`]. Every item the store writes is made here, and
//! every item it reads is taken back to its value here.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::delta::{self, Action, Delta, Mark, MAX_PRUNED_MARKS};
use crate::error::{Error, Result};
use crate::item::{self, Item};
use crate::version;

/// The shape of a store's items in its table.
pub(crate) struct Layout {
    partition_key: Arc<str>,
    versioning: Option<Versioning>,
    /// The id this store's writes are tagged with: the version's writer attribute, and the
    /// name of its mark.
    writer: u64,
}

/// The start of the name of every writer's mark attribute; the writer's id follows, in hex.
pub(crate) const MARK_PREFIX: &str = "_qs_once_";

/// Versioned mode's attributes.
struct Versioning {
    attribute: Arc<str>,
    writer_attribute: String,
}

impl Layout {
    /// Items keyed by `partition_key`; versioned by `version_attribute`, if set, with writes
    /// tagged as `writer`'s.
    pub(crate) fn new(
        partition_key: Arc<str>,
        version_attribute: Option<Arc<str>>,
        writer: u64,
    ) -> Self {
        Self {
            partition_key,
            versioning: version_attribute.map(|attribute| Versioning {
                writer_attribute: version::writer_attribute(&attribute),
                attribute,
            }),
            writer,
        }
    }

    /// The item that stores `value` under `key`, as state `seq` of the key at `version`
    /// (versioned mode; ignored otherwise).
    pub(crate) fn stored(&self, key: &str, value: &Item, version: u64, seq: u64) -> Item {
        let mut item = self.keyed(key, value);
        self.stamp(&mut item, version, seq);
        item
    }

    /// `value` with its partition key attribute, and nothing else added.
    pub(crate) fn keyed(&self, key: &str, value: &Item) -> Item {
        let mut item = value.clone();
        item.insert(
            self.partition_key.to_string(),
            AttributeValue::S(key.to_owned()),
        );
        item
    }

    /// Makes a stored item state `seq` at `version` (versioned mode; nothing otherwise).
    pub(crate) fn stamp(&self, item: &mut Item, version: u64, seq: u64) {
        if let Some(v) = &self.versioning {
            item.insert(
                v.attribute.to_string(),
                AttributeValue::N(version.to_string()),
            );
            item.insert(
                v.writer_attribute.clone(),
                AttributeValue::S(version::tag(self.writer, seq)),
            );
        }
    }

    /// This store's mark on its delta `seq`, sent at `at` (milliseconds since the Unix epoch);
    /// in versioned mode, it also stamps the writer attribute: the item is this store's state
    /// `seq`, so that another writer's write over an older version is a conflict.
    pub(crate) fn mark(&self, seq: u64, at: u64) -> Mark {
        let mark = Mark::new(self.mark_attribute(), seq, at);
        match &self.versioning {
            Some(v) => mark.stamp(
                v.writer_attribute.clone(),
                AttributeValue::S(version::tag(self.writer, seq)),
            ),
            None => mark,
        }
    }

    /// The sequence of the newest of this store's deltas a stored item has taken (0: none).
    pub(crate) fn landed(&self, item: &Item) -> u64 {
        delta::landed(item, &self.mark_attribute()).unwrap_or(0)
    }

    /// Other writers' marks in a stored item last sent more than `lifetime` before `now`
    /// (milliseconds since the Unix epoch), at most [`MAX_PRUNED_MARKS`] of them: no delta of
    /// theirs can still come, so a delta write of the item removes them.
    pub(crate) fn stale_marks(&self, item: &Item, now: u64, lifetime: Duration) -> Vec<String> {
        let own = self.mark_attribute();
        let lifetime = u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX);
        let stale = |value: &AttributeValue| {
            Mark::sent_at(value).is_some_and(|at| at.saturating_add(lifetime) < now)
        };
        item.iter()
            .filter(|(name, value)| name.starts_with(MARK_PREFIX) && **name != own && stale(value))
            .map(|(name, _)| name.clone())
            .take(MAX_PRUNED_MARKS)
            .collect()
    }

    /// The attribute this store's mark is kept in.
    fn mark_attribute(&self) -> String {
        format!("{MARK_PREFIX}{:016x}", self.writer)
    }

    /// `delta` as this store writes it: in versioned mode, it also adds 1 to the version, with
    /// no condition on it (deltas commute), so that a write built on the version before it is
    /// a conflict.
    pub(crate) fn delta(&self, delta: &Arc<Delta>) -> Arc<Delta> {
        match &self.versioning {
            Some(v) => Arc::new(
                (**delta)
                    .clone()
                    .action(v.attribute.to_string(), Action::Add("1".to_owned())),
            ),
            None => Arc::clone(delta),
        }
    }

    /// A stored item taken back to its value, and the version it carried (0 without one).
    pub(crate) fn value(&self, mut item: Item) -> (Item, u64) {
        item.remove(&*self.partition_key);
        item.retain(|name, _| !name.starts_with(MARK_PREFIX));
        let version = match &self.versioning {
            Some(v) => version::take(&mut item, &v.attribute),
            None => 0,
        };
        (item, version)
    }

    /// The version a stored item carries (0 without one), leaving the item as it is.
    pub(crate) fn version_of(&self, item: &Item) -> u64 {
        self.versioning.as_ref().map_or(0, |v| {
            item.get(&*v.attribute)
                .and_then(|value| value.as_n().ok())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        })
    }

    /// Which of this store's states a stored item is, if this store wrote it.
    pub(crate) fn written_here(&self, item: &Item) -> Option<u64> {
        let v = self.versioning.as_ref()?;
        version::written_by(item, &v.attribute, self.writer)
    }

    /// Checks a value as DynamoDB would check its item under a key of `key_bytes` bytes, and
    /// that it carries none of the attributes the store sets itself.
    pub(crate) fn check_value(&self, value: &Item, key_bytes: usize) -> Result<()> {
        if let Some(name) = value.keys().find(|name| name.starts_with(MARK_PREFIX)) {
            return Err(marked(name));
        }
        if let Some(v) = &self.versioning {
            item::reserved(
                value,
                &v.attribute,
                "the version attribute of versioned mode",
            )?;
            item::reserved(
                value,
                &v.writer_attribute,
                "the writer attribute of versioned mode",
            )?;
        }
        item::validate(value, &self.partition_key, key_bytes)
    }

    /// Checks a delta as DynamoDB would check its request ([`Delta::check`]), that it leaves
    /// room in the request for what the store adds, and that it changes none of the attributes
    /// the store sets itself.
    pub(crate) fn check_delta(&self, delta: &Delta) -> Result<()> {
        delta.check(&self.partition_key)?;
        for (name, _) in delta.actions() {
            if name.starts_with(MARK_PREFIX) {
                return Err(marked(name));
            }
            if let Some(v) = &self.versioning {
                if name == &*v.attribute || name == v.writer_attribute {
                    return Err(Error::validation(format!(
                        "the delta changes `{name}`, an attribute of versioned mode; quickstore \
                         sets it"
                    )));
                }
            }
        }
        if !delta.fits() {
            return Err(Error::validation(format!(
                "the delta's update expression leaves no room for the {} bytes quickstore adds \
                 to it: change fewer attributes at once",
                crate::delta::STORE_EXPRESSION_BYTES
            )));
        }
        Ok(())
    }
}

/// The error for an attribute named like a writer's mark.
fn marked(name: &str) -> Error {
    Error::validation(format!(
        "the attribute `{name}` is named like a writer's mark on deltas (`{MARK_PREFIX}...`); \
         quickstore sets those"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> AttributeValue {
        AttributeValue::S(text.to_owned())
    }

    #[test]
    fn a_stored_item_goes_back_to_its_value() {
        let value = Item::from([("name".to_string(), s("Ada"))]);
        for versioned in [None, Some(Arc::from("_v"))] {
            let layout = Layout::new(Arc::from("_key"), versioned.clone(), 0xabc);
            let stored = layout.stored("User1", &value, 7, 42);
            assert_eq!(stored.get("_key"), Some(&s("User1")));
            assert_eq!(
                layout.version_of(&stored),
                if versioned.is_some() { 7 } else { 0 }
            );
            let here = layout.written_here(&stored);
            assert_eq!(here, versioned.is_some().then_some(42));
            let (back, version) = layout.value(stored);
            assert_eq!(back, value, "nothing of the store's own is left");
            assert_eq!(version, if versioned.is_some() { 7 } else { 0 });
        }
    }

    #[test]
    fn values_carrying_the_stores_attributes_are_refused() {
        let layout = Layout::new(Arc::from("_key"), Some(Arc::from("_v")), 1);
        for name in ["_key", "_v", "_v_by"] {
            let value = Item::from([(name.to_string(), s("x"))]);
            assert!(layout.check_value(&value, 5).is_err(), "{name}");
        }
        assert!(layout.check_value(&Item::new(), 5).is_ok());
    }
}
