//! Deltas: changes to an item that DynamoDB applies on the server, atomically, without the
//! writer knowing the item, so that changes from many writers commute: adding to a counter,
//! adding or removing members of a set, appending to a list, setting an attribute only if it is
//! absent. They are what `UpdateItem` does with `ADD`, `DELETE`, `list_append` and
//! `if_not_exists`.
//!
//! A [`Delta`] holds one [`Action`] per top-level attribute. Here it is applied in memory
//! ([`Delta::apply`], with DynamoDB's rules and errors), combined with the delta that follows
//! it ([`Delta::then`]), and spelled as an update expression ([`Delta::expression`]).

use std::collections::{BTreeMap, HashMap, HashSet};

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::item::{self, number, Item};

mod mark;

pub(crate) use mark::{landed, unix_millis};
pub use mark::{Mark, Updated};

/// One change to one attribute.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Action {
    /// Adds a number (a DynamoDB number string) to a number attribute; an absent attribute
    /// counts as 0. `ADD #a :n`.
    Add(String),
    /// Adds members to a set attribute (an `SS`, `NS` or `BS` value); an absent attribute
    /// counts as the empty set. `ADD #a :set`.
    AddMembers(AttributeValue),
    /// Removes members from a set attribute (an `SS`, `NS` or `BS` value); a set left empty is
    /// removed, and an absent attribute stays absent. `DELETE #a :set`.
    RemoveMembers(AttributeValue),
    /// Appends elements to a list attribute; an absent attribute counts as the empty list.
    /// `SET #a = list_append(if_not_exists(#a, :empty), :list)`.
    Append(Vec<AttributeValue>),
    /// Sets an attribute only if it is absent. `SET #a = if_not_exists(#a, :value)`.
    SetIfAbsent(AttributeValue),
}

/// Changes to one item's attributes that commute with other writers' changes: at most one
/// [`Action`] per attribute.
///
/// ```
/// use quickstore::{AttributeValue, Delta};
///
/// let delta = Delta::new()
///     .add("views", 1)
///     .add_members("tags", AttributeValue::Ss(vec!["rust".into()]))
///     .append("log", vec![AttributeValue::S("viewed".into())])
///     .set_if_absent("created", AttributeValue::S("2026-12-03".into()));
/// assert_eq!(delta.len(), 4);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delta {
    actions: BTreeMap<String, Action>,
}

impl Delta {
    /// A delta that changes nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `attribute`'s action, replacing any action given for it before.
    pub fn action(mut self, attribute: impl Into<String>, action: Action) -> Self {
        self.actions.insert(attribute.into(), action);
        self
    }

    /// Adds `n` to the number attribute `attribute` (a counter); absent counts as 0.
    pub fn add(self, attribute: impl Into<String>, n: impl Into<i128>) -> Self {
        self.action(attribute, Action::Add(n.into().to_string()))
    }

    /// Adds `n`, a number as DynamoDB spells it (`"1.25"`, `"-3e2"`), to the number attribute
    /// `attribute`; absent counts as 0. [`check`](Delta::check) refuses a string DynamoDB does
    /// not store as a number.
    pub fn add_number(self, attribute: impl Into<String>, n: impl Into<String>) -> Self {
        self.action(attribute, Action::Add(n.into()))
    }

    /// Adds the members of `set` (an `SS`, `NS` or `BS` value) to the set attribute
    /// `attribute`.
    pub fn add_members(self, attribute: impl Into<String>, set: AttributeValue) -> Self {
        self.action(attribute, Action::AddMembers(set))
    }

    /// Removes the members of `set` (an `SS`, `NS` or `BS` value) from the set attribute
    /// `attribute`.
    pub fn remove_members(self, attribute: impl Into<String>, set: AttributeValue) -> Self {
        self.action(attribute, Action::RemoveMembers(set))
    }

    /// Appends `elements` to the list attribute `attribute`.
    pub fn append(self, attribute: impl Into<String>, elements: Vec<AttributeValue>) -> Self {
        self.action(attribute, Action::Append(elements))
    }

    /// Sets `attribute` to `value` if it is absent.
    pub fn set_if_absent(self, attribute: impl Into<String>, value: AttributeValue) -> Self {
        self.action(attribute, Action::SetIfAbsent(value))
    }

    /// Adds `members` to the string set attribute `attribute`.
    pub fn add_strings<S: Into<String>>(
        self,
        attribute: impl Into<String>,
        members: impl IntoIterator<Item = S>,
    ) -> Self {
        let set = AttributeValue::Ss(members.into_iter().map(Into::into).collect());
        self.add_members(attribute, set)
    }

    /// Removes `members` from the string set attribute `attribute`.
    pub fn remove_strings<S: Into<String>>(
        self,
        attribute: impl Into<String>,
        members: impl IntoIterator<Item = S>,
    ) -> Self {
        let set = AttributeValue::Ss(members.into_iter().map(Into::into).collect());
        self.remove_members(attribute, set)
    }

    /// Appends `values`, each stored as serde makes it (as a field of a value given to
    /// [`Store::upsert`](crate::Store::upsert) would be), to the list attribute `attribute`.
    ///
    /// # Errors
    ///
    /// [`Error::Serialize`] when a value cannot be stored.
    pub fn append_values<T: Serialize>(
        self,
        attribute: impl Into<String>,
        values: impl IntoIterator<Item = T>,
    ) -> Result<Self> {
        let elements = values
            .into_iter()
            .map(|value| item::to_attribute(&value))
            .collect::<Result<_>>()?;
        Ok(self.append(attribute, elements))
    }

    /// Sets the attribute `attribute` to `value`, stored as serde makes it, if it is absent.
    ///
    /// # Errors
    ///
    /// [`Error::Serialize`] when the value cannot be stored.
    pub fn set_if_absent_value<T: Serialize + ?Sized>(
        self,
        attribute: impl Into<String>,
        value: &T,
    ) -> Result<Self> {
        Ok(self.set_if_absent(attribute, item::to_attribute(value)?))
    }

    /// The attributes changed, and how.
    pub fn actions(&self) -> impl Iterator<Item = (&str, &Action)> {
        self.actions
            .iter()
            .map(|(attribute, action)| (attribute.as_str(), action))
    }

    /// How many attributes the delta changes.
    pub fn len(&self) -> usize {
        self.actions.len()
    }

    /// Whether the delta changes nothing.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// Checks the delta as DynamoDB would check the request: at least one action, no action on
    /// `partition_key` or on an attribute with an empty name, numbers DynamoDB stores, sets
    /// that are sets (of one type, not empty, no two equal members), values DynamoDB stores,
    /// and an update expression within DynamoDB's 4 KB (74 appends, or 331 counters, at
    /// once).
    ///
    /// # Errors
    ///
    /// [`Error::Validation`], saying which action is wrong and why.
    pub fn check(&self, partition_key: &str) -> Result<()> {
        if self.is_empty() {
            return Err(Error::validation("the delta changes no attribute"));
        }
        for (attribute, action) in &self.actions {
            if attribute.is_empty() {
                return Err(Error::validation(
                    "the delta changes an attribute with an empty name",
                ));
            }
            if attribute == partition_key {
                return Err(Error::validation(format!(
                    "the delta changes `{attribute}`, the table's partition key; quickstore \
                     sets it"
                )));
            }
            match action {
                Action::Add(n) => number::validate(n)?,
                Action::AddMembers(set) | Action::RemoveMembers(set) => {
                    if members(set).is_none() {
                        return Err(Error::validation(format!(
                            "the delta's set for `{attribute}` is not a string, number or \
                             binary set"
                        )));
                    }
                    stored(attribute, set.clone(), partition_key)?;
                }
                Action::Append(elements) => {
                    stored(
                        attribute,
                        AttributeValue::L(elements.clone()),
                        partition_key,
                    )?;
                }
                Action::SetIfAbsent(value) => stored(attribute, value.clone(), partition_key)?,
            }
        }
        if self.expression_within(MAX_EXPRESSION_BYTES) {
            return Ok(());
        }
        let length = self.expression(None).text.len();
        if length > MAX_EXPRESSION_BYTES {
            return Err(Error::validation(format!(
                "the delta's update expression is {length} bytes, over DynamoDB's limit of \
                 {MAX_EXPRESSION_BYTES}: change fewer attributes at once"
            )));
        }
        Ok(())
    }

    /// The delta that applying `self` and then `next` makes, as one, when each attribute's two
    /// actions combine into one: sums of numbers (while DynamoDB can store the sum), unions of members
    /// added or of members removed, concatenated appends, and the first of two `SetIfAbsent`s.
    /// `None` when some attribute's actions do not combine (members added then removed, a
    /// number added to a list): then the two must be applied one after the other.
    pub fn then(&self, next: &Delta) -> Option<Delta> {
        let mut combined = self.clone();
        for (attribute, action) in &next.actions {
            match combined.actions.get_mut(attribute) {
                None => {
                    combined.actions.insert(attribute.clone(), action.clone());
                }
                Some(first) => *first = combine(first, action)?,
            }
        }
        Some(combined)
    }

    /// The item that applying the delta to `current` leaves, as DynamoDB's `UpdateItem`
    /// leaves it: `current` is the item under `key` (with its `partition_key` attribute), or
    /// `None`, in which case the delta creates it.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] where DynamoDB refuses the request: an operand of the wrong type
    /// (a number added to a string, string members added to a number set, a list appended to
    /// a map), a sum DynamoDB cannot store, or an item over 400 KB. `current` is not changed.
    pub fn apply(&self, current: Option<&Item>, partition_key: &str, key: &str) -> Result<Item> {
        let mut item = current.cloned().unwrap_or_else(|| {
            Item::from([(partition_key.to_owned(), AttributeValue::S(key.to_owned()))])
        });
        for (attribute, action) in &self.actions {
            let present = item.get(attribute);
            let changed = match (action, present) {
                (Action::Add(n), None) => Some(AttributeValue::N(number::canonical(n)?)),
                (Action::Add(n), Some(AttributeValue::N(held))) => {
                    Some(AttributeValue::N(number::sum(held, n)?))
                }
                (Action::AddMembers(set), None) => Some(set.clone()),
                (Action::AddMembers(set), Some(held)) => Some(union(held, set)?),
                (Action::RemoveMembers(_), None) => None,
                (Action::RemoveMembers(set), Some(held)) => {
                    let left = difference(held, set)?;
                    if members(&left).is_some_and(|m| m.is_empty()) {
                        item.remove(attribute);
                        continue;
                    }
                    Some(left)
                }
                (Action::Append(elements), None) => Some(AttributeValue::L(elements.clone())),
                (Action::Append(elements), Some(AttributeValue::L(held))) => {
                    let mut list = held.clone();
                    list.extend(elements.iter().cloned());
                    Some(AttributeValue::L(list))
                }
                (Action::SetIfAbsent(value), None) => Some(value.clone()),
                (Action::SetIfAbsent(_), Some(_)) => None,
                (Action::Add(_) | Action::Append(_), Some(_)) => return Err(wrong_type()),
            };
            if let Some(value) = changed {
                item.insert(attribute.clone(), value);
            }
        }
        let total = item::size(&item);
        if total > item::MAX_ITEM_BYTES {
            return Err(Error::validation(format!(
                "the delta would make the item {total} bytes, over DynamoDB's limit of {} bytes",
                item::MAX_ITEM_BYTES
            )));
        }
        Ok(item)
    }

    /// The delta in its journal form: an item with, for each attribute changed, the list
    /// `[code, operand]` (`0` add, `1` add members, `2` remove members, `3` append, `4` set if
    /// absent), so that the journal stores it as it stores items.
    pub(crate) fn to_item(&self) -> Item {
        self.actions
            .iter()
            .map(|(attribute, action)| {
                let (code, operand) = match action {
                    Action::Add(n) => (0, AttributeValue::N(n.clone())),
                    Action::AddMembers(set) => (1, set.clone()),
                    Action::RemoveMembers(set) => (2, set.clone()),
                    Action::Append(elements) => (3, AttributeValue::L(elements.clone())),
                    Action::SetIfAbsent(value) => (4, value.clone()),
                };
                let code = AttributeValue::N(code.to_string());
                (attribute.clone(), AttributeValue::L(vec![code, operand]))
            })
            .collect()
    }

    /// A delta back from its journal form ([`to_item`](Self::to_item)); `None` if `item` is
    /// not one.
    pub(crate) fn from_item(item: &Item) -> Option<Delta> {
        let mut delta = Delta::new();
        for (attribute, value) in item {
            let [code, operand] = value.as_l().ok()?.as_slice() else {
                return None;
            };
            let action = match (code.as_n().ok()?.as_str(), operand) {
                ("0", AttributeValue::N(n)) => Action::Add(n.clone()),
                ("1", set) => Action::AddMembers(set.clone()),
                ("2", set) => Action::RemoveMembers(set.clone()),
                ("3", AttributeValue::L(elements)) => Action::Append(elements.clone()),
                ("4", value) => Action::SetIfAbsent(value.clone()),
                _ => return None,
            };
            delta = delta.action(attribute.clone(), action);
        }
        Some(delta)
    }

    /// The value `value` (an item without its partition key attribute; `None` when absent)
    /// becomes when the delta is applied to it, under a key of `key_bytes` bytes: as
    /// [`apply`](Self::apply) makes it, without the partition key attribute.
    pub(crate) fn applied_to(&self, value: Option<&Item>, key_bytes: usize) -> Result<Item> {
        let empty = Item::new();
        // With an item given, `apply` adds no partition key attribute: its name is not needed.
        let item = self.apply(Some(value.unwrap_or(&empty)), "", "")?;
        let total = item::size(&item) + key_bytes;
        if total > item::MAX_ITEM_BYTES {
            return Err(Error::validation(format!(
                "the delta would make the item {total} bytes, over DynamoDB's limit of {} bytes",
                item::MAX_ITEM_BYTES
            )));
        }
        Ok(item)
    }

    /// Whether the delta's update expression leaves room for what a store adds to the deltas
    /// it writes ([`STORE_EXPRESSION_BYTES`]).
    pub(crate) fn fits(&self) -> bool {
        self.expression_within(MAX_EXPRESSION_BYTES - STORE_EXPRESSION_BYTES)
    }

    /// Whether the delta's update expression is at most `limit` bytes long. A delta of a few
    /// actions is, without spelling it out: no action takes more than
    /// [`ACTION_EXPRESSION_BYTES`] while there are fewer than 100.
    fn expression_within(&self, limit: usize) -> bool {
        let bound = self.actions.len() * ACTION_EXPRESSION_BYTES + KEYWORD_BYTES;
        (self.actions.len() < 100 && bound <= limit) || self.expression(None).text.len() <= limit
    }

    /// The delta as an `UpdateItem` update expression, with its attribute names (`#a0`, ...)
    /// and values (`:v0`, ...); with a `mark`, the update also sets the mark, and its condition
    /// is that the item holds no later one (see [`Mark`]).
    pub(crate) fn expression(&self, mark: Option<&Mark>) -> Expression {
        let mut expression = Expression::default();
        let (mut set, mut add, mut delete, mut remove) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        if let Some(mark) = mark {
            expression
                .names
                .insert(MARK_NAME.to_owned(), mark.attribute.clone());
            expression
                .values
                .insert(MARK_VALUE.to_owned(), mark.value());
            expression
                .values
                .insert(MARK_SEQ.to_owned(), AttributeValue::N(mark.seq.to_string()));
            set.push(format!("{MARK_NAME} = {MARK_VALUE}"));
            for (i, (attribute, value)) in mark.stamps.iter().enumerate() {
                let (name, placeholder) = (format!("#s{i}"), format!(":s{i}"));
                expression.names.insert(name.clone(), attribute.clone());
                expression.values.insert(placeholder.clone(), value.clone());
                set.push(format!("{name} = {placeholder}"));
            }
            let mut condition =
                format!("(attribute_not_exists({MARK_NAME}) OR {MARK_NAME}[0] < {MARK_SEQ})");
            for (i, attribute) in mark.prune.iter().enumerate() {
                let name = format!("#r{i}");
                expression.names.insert(name.clone(), attribute.clone());
                condition.push_str(&format!(
                    " AND (attribute_not_exists({name}) OR {name}[1] < {PRUNE_BEFORE})"
                ));
                remove.push(name);
            }
            if !mark.prune.is_empty() {
                expression.values.insert(
                    PRUNE_BEFORE.to_owned(),
                    AttributeValue::N(mark.prune_before.to_string()),
                );
            }
            expression.condition = Some(condition);
        }
        for (i, (attribute, action)) in self.actions.iter().enumerate() {
            let name = format!("#a{i}");
            let value = format!(":v{i}");
            expression.names.insert(name.clone(), attribute.clone());
            match action {
                Action::Add(n) => {
                    expression
                        .values
                        .insert(value.clone(), AttributeValue::N(n.clone()));
                    add.push(format!("{name} {value}"));
                }
                Action::AddMembers(members) => {
                    expression.values.insert(value.clone(), members.clone());
                    add.push(format!("{name} {value}"));
                }
                Action::RemoveMembers(members) => {
                    expression.values.insert(value.clone(), members.clone());
                    delete.push(format!("{name} {value}"));
                }
                Action::Append(elements) => {
                    expression
                        .values
                        .insert(value.clone(), AttributeValue::L(elements.clone()));
                    expression
                        .values
                        .insert(EMPTY_LIST.to_owned(), AttributeValue::L(Vec::new()));
                    set.push(format!(
                        "{name} = list_append(if_not_exists({name}, {EMPTY_LIST}), {value})"
                    ));
                }
                Action::SetIfAbsent(initial) => {
                    expression.values.insert(value.clone(), initial.clone());
                    set.push(format!("{name} = if_not_exists({name}, {value})"));
                }
            }
        }
        expression.text = [
            ("SET", set),
            ("ADD", add),
            ("DELETE", delete),
            ("REMOVE", remove),
        ]
        .into_iter()
        .filter(|(_, parts)| !parts.is_empty())
        .map(|(keyword, parts)| format!("{keyword} {}", parts.join(", ")))
        .collect::<Vec<_>>()
        .join(" ");
        expression
    }
}

/// DynamoDB's limit on the length of an expression, an update expression included.
pub(crate) const MAX_EXPRESSION_BYTES: usize = 4 * 1024;

/// The bytes of an update expression a store keeps for what it adds to the deltas it writes:
/// its [`Mark`] (with up to [`MAX_PRUNED_MARKS`] other writers' marks removed), and in
/// versioned mode the version's `ADD` and the writer attribute.
pub(crate) const STORE_EXPRESSION_BYTES: usize = 256;

/// The most other writers' marks one delta write removes; more wait for the next write.
pub(crate) const MAX_PRUNED_MARKS: usize = 16;

/// The most bytes one action takes in an update expression while its index has at most two
/// digits: an append, `#a99 = list_append(if_not_exists(#a99, :empty), :v99)`, and a
/// separator.
const ACTION_EXPRESSION_BYTES: usize = 64;

/// The bytes of an update expression's keywords and the spaces around them, at most.
const KEYWORD_BYTES: usize = 32;

/// The value name of the empty list that `list_append` starts an absent attribute from.
const EMPTY_LIST: &str = ":empty";

/// The names a [`Mark`] takes in an update expression: the attribute, its value, and its
/// sequence in the condition.
const MARK_NAME: &str = "#mark";
const MARK_VALUE: &str = ":mark";
const MARK_SEQ: &str = ":markseq";
const PRUNE_BEFORE: &str = ":prunebefore";

/// An update expression with its condition, attribute names and values.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Expression {
    pub(crate) text: String,
    pub(crate) condition: Option<String>,
    pub(crate) names: HashMap<String, String>,
    pub(crate) values: HashMap<String, AttributeValue>,
}

/// Checks that DynamoDB stores `value` as the attribute `attribute`.
fn stored(attribute: &str, value: AttributeValue, partition_key: &str) -> Result<()> {
    item::validate(
        &Item::from([(attribute.to_owned(), value)]),
        partition_key,
        0,
    )
}

/// DynamoDB's answer to an operand of the wrong type.
fn wrong_type() -> Error {
    Error::validation("an operand in the update expression has an incorrect data type")
}

/// Two actions on one attribute as one, if they combine.
fn combine(first: &Action, next: &Action) -> Option<Action> {
    match (first, next) {
        (Action::Add(a), Action::Add(b)) => number::sum(a, b).ok().map(Action::Add),
        (Action::AddMembers(a), Action::AddMembers(b)) => union(a, b).ok().map(Action::AddMembers),
        (Action::RemoveMembers(a), Action::RemoveMembers(b)) => {
            union(a, b).ok().map(Action::RemoveMembers)
        }
        (Action::Append(a), Action::Append(b)) => {
            Some(Action::Append(a.iter().chain(b).cloned().collect()))
        }
        (Action::SetIfAbsent(a), Action::SetIfAbsent(_)) => Some(Action::SetIfAbsent(a.clone())),
        _ => None,
    }
}

/// A set's members, each with what DynamoDB compares it by (a number by its value, so `1`
/// and `1.0` are one member); `None` for a value that is not a set.
fn members(set: &AttributeValue) -> Option<Vec<Member>> {
    Some(match set {
        AttributeValue::Ss(set) => set.iter().map(|s| Member::Text(s.clone())).collect(),
        AttributeValue::Ns(set) => set
            .iter()
            .map(|n| Member::Number(number::value(n), n.clone()))
            .collect(),
        AttributeValue::Bs(set) => set
            .iter()
            .map(|b| Member::Bytes(b.as_ref().to_vec()))
            .collect(),
        _ => return None,
    })
}

/// A number's value, as [`number::value`] gives it.
type NumberValue = (bool, String, i64);

/// A set member, compared as DynamoDB compares it.
#[derive(Debug, Clone)]
enum Member {
    Text(String),
    /// A number's value, and its spelling.
    Number(Option<NumberValue>, String),
    Bytes(Vec<u8>),
}

impl Member {
    /// What the member is compared by: its type, and its bytes or its number's value.
    fn identity(&self) -> (u8, &[u8], Option<&NumberValue>) {
        match self {
            Member::Text(s) => (0, s.as_bytes(), None),
            Member::Number(value, _) => (1, &[], value.as_ref()),
            Member::Bytes(b) => (2, b, None),
        }
    }
}

/// The set `held` with the members of `added`, of the same set type.
fn union(held: &AttributeValue, added: &AttributeValue) -> Result<AttributeValue> {
    same_set_type(held, added)?;
    let (held_members, added_members) = (members(held), members(added));
    let (Some(held_members), Some(added_members)) = (held_members, added_members) else {
        return Err(wrong_type());
    };
    let seen: HashSet<_> = held_members.iter().map(Member::identity).collect();
    let mut all = held_members.clone();
    let mut new = HashSet::new();
    for member in &added_members {
        if !seen.contains(&member.identity()) && new.insert(member.identity()) {
            all.push(member.clone());
        }
    }
    Ok(set_of(held, all))
}

/// The set `held` without the members of `removed`, of the same set type.
fn difference(held: &AttributeValue, removed: &AttributeValue) -> Result<AttributeValue> {
    same_set_type(held, removed)?;
    let (Some(held_members), Some(removed_members)) = (members(held), members(removed)) else {
        return Err(wrong_type());
    };
    let gone: HashSet<_> = removed_members.iter().map(Member::identity).collect();
    let left = held_members
        .into_iter()
        .filter(|member| !gone.contains(&member.identity()))
        .collect();
    Ok(set_of(held, left))
}

fn same_set_type(a: &AttributeValue, b: &AttributeValue) -> Result<()> {
    match (a, b) {
        (AttributeValue::Ss(_), AttributeValue::Ss(_))
        | (AttributeValue::Ns(_), AttributeValue::Ns(_))
        | (AttributeValue::Bs(_), AttributeValue::Bs(_)) => Ok(()),
        _ => Err(wrong_type()),
    }
}

/// A set of `like`'s type holding `members`.
fn set_of(like: &AttributeValue, members: Vec<Member>) -> AttributeValue {
    let mut strings = Vec::new();
    let mut bytes = Vec::new();
    for member in members {
        match member {
            Member::Text(s) | Member::Number(_, s) => strings.push(s),
            Member::Bytes(b) => bytes.push(aws_sdk_dynamodb::primitives::Blob::new(b)),
        }
    }
    match like {
        AttributeValue::Ns(_) => AttributeValue::Ns(strings),
        AttributeValue::Bs(_) => AttributeValue::Bs(bytes),
        _ => AttributeValue::Ss(strings),
    }
}

#[cfg(test)]
mod tests;
