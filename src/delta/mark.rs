//! Marks: how a writer's delta is applied once, however often it is sent.
//!
//! A delta is not idempotent: sent twice, a counter counts twice. A write whose answer was lost
//! (a timeout, a reset connection, a crash before the answer came) must still be sent again,
//! since it may not have landed. So each delta a store writes carries its writer's [`Mark`]: an
//! attribute of the item, one per writer, holding the sequence of the newest of that writer's
//! deltas the item has taken, and when it was sent. The update is conditional on the mark being
//! older than the delta, in the same request, so DynamoDB applies the delta and moves the mark
//! atomically, or refuses both; a refused condition with the mark in the item means the delta
//! is in the item already.
//!
//! A writer's mark is only needed while a delta of its could still be sent again, so a write
//! may also remove other writers' marks that have not moved for a long time
//! ([`Mark::prune`]), on condition that they still have not: a writer that comes back keeps
//! its mark.

use aws_sdk_dynamodb::types::AttributeValue;

use crate::item::Item;

/// A writer's mark on a delta it writes, so that the delta is applied at most once however
/// often it is sent; see [`Backend::update`](crate::backend::Backend::update).
///
/// The item keeps the mark in [`attribute`](Mark::attribute), one attribute per writer, as the
/// list `[seq, at]`. A delta applies only if the item holds no mark of its writer, or one with a
/// smaller sequence, and applying it sets the mark to its own, and the mark's
/// [`stamps`](Mark::stamps) too.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Mark {
    /// The writer's mark attribute.
    pub attribute: String,
    /// The delta's sequence among its writer's deltas; later deltas have larger ones.
    pub seq: u64,
    /// When the delta was sent, in milliseconds since the Unix epoch.
    pub at: u64,
    /// Attributes the update sets beside the mark, whatever they held before: a versioned
    /// store's writer attribute, naming the delta as its state.
    pub stamps: Item,
    /// Attributes the update removes: other writers' marks, old enough that no delta of theirs
    /// can still come. Each is removed only if it still was sent before
    /// [`prune_before`](Mark::prune_before); otherwise nothing changes.
    pub prune: Vec<String>,
    /// Milliseconds since the Unix epoch: the marks in [`prune`](Mark::prune) must be older.
    pub prune_before: u64,
}

impl Mark {
    /// The mark of delta `seq`, sent at `at` (milliseconds since the Unix epoch), kept in
    /// `attribute`.
    pub fn new(attribute: impl Into<String>, seq: u64, at: u64) -> Self {
        Self {
            attribute: attribute.into(),
            seq,
            at,
            stamps: Item::new(),
            prune: Vec::new(),
            prune_before: 0,
        }
    }

    /// The mark, removing other writers' marks in `attributes` too when the delta applies, on
    /// condition that each was sent before `before` (milliseconds since the Unix epoch).
    pub fn pruning(mut self, attributes: Vec<String>, before: u64) -> Self {
        self.prune = attributes;
        self.prune_before = before;
        self
    }

    /// Whether the update may apply to `current`, the item under the key (`None` if there is
    /// none): it has not taken the delta, and every mark the update prunes is still old.
    pub fn allows(&self, current: Option<&Item>) -> bool {
        let old = |attribute: &String| {
            current
                .and_then(|item| item.get(attribute))
                .is_none_or(|mark| Mark::sent_at(mark).is_some_and(|at| at < self.prune_before))
        };
        !self.applied_in(current) && self.prune.iter().all(old)
    }

    /// When the writer whose mark `mark` is (a stored mark's value) last sent a delta the
    /// item took, in milliseconds since the Unix epoch.
    pub(crate) fn sent_at(mark: &AttributeValue) -> Option<u64> {
        mark.as_l().ok()?.get(1)?.as_n().ok()?.parse().ok()
    }

    /// The mark, setting `attribute` to `value` too when the delta applies.
    pub fn stamp(mut self, attribute: impl Into<String>, value: AttributeValue) -> Self {
        self.stamps.insert(attribute.into(), value);
        self
    }

    /// The mark as the item stores it: the list `[seq, at]`.
    pub fn value(&self) -> AttributeValue {
        AttributeValue::L(vec![
            AttributeValue::N(self.seq.to_string()),
            AttributeValue::N(self.at.to_string()),
        ])
    }

    /// Whether `current`, the item under the key (`None` if there is none), has taken this
    /// delta already: it holds a mark of the writer with this sequence or a later one.
    pub fn applied_in(&self, current: Option<&Item>) -> bool {
        current
            .and_then(|item| landed(item, &self.attribute))
            .is_some_and(|seq| seq >= self.seq)
    }
}

/// Milliseconds since the Unix epoch, as marks keep time; 0 on a clock set before it.
pub(crate) fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

/// The sequence of the newest delta `item` has taken from the writer whose mark is kept in
/// `attribute`, if it has taken any.
pub(crate) fn landed(item: &Item, attribute: &str) -> Option<u64> {
    let mark = item.get(attribute)?;
    mark.as_l().ok()?.first()?.as_n().ok()?.parse().ok()
}

/// How an [`update`](crate::backend::Backend::update) ended.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Updated {
    /// The delta was applied; this is the item it left, with its partition key attribute.
    Applied(Item),
    /// The [`Mark`]'s condition did not hold ([`Mark::allows`]), so nothing changed: the item
    /// held the delta's mark (or a later one of its writer), the delta having been applied
    /// before, or a mark the update prunes had moved. This is the item there, with its
    /// partition key attribute (`None` if another writer deleted it since the condition was
    /// checked).
    Unchanged(Option<Item>),
}

impl Updated {
    /// The item under the key after the update, if there is one.
    pub fn into_item(self) -> Option<Item> {
        match self {
            Updated::Applied(item) => Some(item),
            Updated::Unchanged(item) => item,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_tells_whether_its_delta_was_applied() {
        let mark = Mark::new("_m", 7, 1_700_000_000_000);
        let with = |value: AttributeValue| Item::from([("_m".to_owned(), value)]);
        assert!(!mark.applied_in(None));
        assert!(!mark.applied_in(Some(&Item::new())));
        assert!(mark.applied_in(Some(&with(mark.value()))));
        assert!(mark.applied_in(Some(&with(Mark::new("_m", 8, 1).value()))));
        assert!(!mark.applied_in(Some(&with(Mark::new("_m", 6, 1).value()))));
        // Not a mark: the delta was not applied by this writer.
        assert!(!mark.applied_in(Some(&with(AttributeValue::S("7".into())))));
    }
}
