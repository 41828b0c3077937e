//! Items: DynamoDB attribute maps, their size as DynamoDB counts it, and the checks DynamoDB
//! would make, done at call time so that a bad value fails the call instead of a later flush.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

mod de;
pub(crate) mod number;

/// One item: attribute names to values, as the AWS SDK represents it.
pub type Item = HashMap<String, AttributeValue>;

/// DynamoDB's limit on an item's size, partition key included: 400 KB.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// DynamoDB's limit on the nesting of lists and maps.
pub const MAX_NESTING_DEPTH: usize = 32;

/// The size of `item` as DynamoDB counts it against the 400 KB limit and capacity units.
///
/// Follows DynamoDB's documented rules: names and strings by UTF-8 length, binaries by length,
/// numbers by one byte per two significant digits plus one, booleans and nulls one byte, and
/// lists and maps three bytes plus one byte per element.
pub fn size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        AttributeValue::Ns(set) => set.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(set) => set.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(name, v)| 1 + name.len() + value_size(v))
                .sum::<usize>()
        }
        // Variants added by later SDK versions: count their debug form, an overestimate.
        other => format!("{other:?}").len(),
    }
}

fn number_size(n: &str) -> usize {
    number::significant_digits(n).div_ceil(2) + 1
}

/// Converts a value to an item; the value must serialize to a map. See [`validate`] for what
/// DynamoDB would refuse.
pub(crate) fn to_item<T: Serialize + ?Sized>(value: &T) -> Result<Item> {
    serde_dynamo::to_item(value).map_err(Error::serialize)
}

/// Converts a value to one attribute value, as it would be stored in an item.
pub(crate) fn to_attribute<T: Serialize + ?Sized>(value: &T) -> Result<AttributeValue> {
    serde_dynamo::to_attribute_value(value).map_err(Error::serialize)
}

/// Converts an item to a value, reading it in place (see [`de`]).
pub(crate) fn to_value<T: DeserializeOwned>(item: &Item) -> Result<T> {
    de::from_item(item).map_err(Error::serialize)
}

/// Checks an item the way DynamoDB would before accepting it.
pub(crate) fn validate(item: &Item, partition_key: &str, key_bytes: usize) -> Result<()> {
    reserved(item, partition_key, "the table's partition key")?;
    if item.keys().any(String::is_empty) {
        return Err(Error::validation(
            "the value has an attribute with an empty name",
        ));
    }
    for value in item.values() {
        validate_value(value, 1)?;
    }
    let total = size(item) + partition_key.len() + key_bytes;
    if total > MAX_ITEM_BYTES {
        return Err(Error::validation(format!(
            "the item is {total} bytes with its key, over DynamoDB's limit of {MAX_ITEM_BYTES} bytes"
        )));
    }
    Ok(())
}

/// Refuses an item that carries `attribute`, which quickstore sets itself.
pub(crate) fn reserved(item: &Item, attribute: &str, what: &str) -> Result<()> {
    if item.contains_key(attribute) {
        return Err(Error::validation(format!(
            "the value has an attribute named `{attribute}`, {what}; quickstore sets it"
        )));
    }
    Ok(())
}

fn validate_value(value: &AttributeValue, depth: usize) -> Result<()> {
    match value {
        AttributeValue::N(n) => number::validate(n),
        AttributeValue::Ns(set) => {
            non_empty_set(set.len(), "number")?;
            set.iter().try_for_each(|n| number::validate(n))?;
            distinct(set.iter().map(|n| number::value(n)), "number")
        }
        AttributeValue::Ss(set) => {
            non_empty_set(set.len(), "string")?;
            distinct(set.iter(), "string")
        }
        AttributeValue::Bs(set) => {
            non_empty_set(set.len(), "binary")?;
            distinct(set.iter().map(|b| b.as_ref()), "binary")
        }
        AttributeValue::L(list) => {
            nesting(depth)?;
            list.iter().try_for_each(|v| validate_value(v, depth + 1))
        }
        AttributeValue::M(map) => {
            nesting(depth)?;
            map.values().try_for_each(|v| validate_value(v, depth + 1))
        }
        _ => Ok(()),
    }
}

fn nesting(depth: usize) -> Result<()> {
    if depth > MAX_NESTING_DEPTH {
        return Err(Error::validation(format!(
            "the value nests lists and maps deeper than DynamoDB's limit of {MAX_NESTING_DEPTH} levels"
        )));
    }
    Ok(())
}

/// Refuses a set with two equal members, as DynamoDB does ("Input collection contains
/// duplicates"); numbers are equal when they stand for the same number (`1` and `1.0`).
fn distinct<T: Eq + std::hash::Hash>(members: impl Iterator<Item = T>, what: &str) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for member in members {
        if !seen.insert(member) {
            return Err(Error::validation(format!(
                "the value has a {what} set with two equal members, which DynamoDB does not store"
            )));
        }
    }
    Ok(())
}

fn non_empty_set(len: usize, what: &str) -> Result<()> {
    if len == 0 {
        return Err(Error::validation(format!(
            "the value has an empty {what} set, which DynamoDB does not store"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::primitives::Blob;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct User {
        name: String,
        age: u32,
        tags: Vec<String>,
    }

    /// A value as the store takes it: converted, then checked.
    fn from_value<T: Serialize + ?Sized>(value: &T, key_bytes: usize) -> Result<Item> {
        let item = to_item(value)?;
        validate(&item, "_key", key_bytes)?;
        Ok(item)
    }

    #[test]
    fn values_round_trip_through_items() -> Result<()> {
        let user = User {
            name: "Ada".into(),
            age: 36,
            tags: vec!["math".into()],
        };
        let item = from_value(&user, 5)?;
        assert_eq!(item.get("name"), Some(&AttributeValue::S("Ada".into())));
        assert_eq!(to_value::<User>(&item)?, user);
        Ok(())
    }

    #[test]
    fn sizes_follow_dynamodb_rules() {
        let item: Item = [
            ("s".to_string(), AttributeValue::S("abc".into())),
            ("n".to_string(), AttributeValue::N("12345".into())),
            ("b".to_string(), AttributeValue::B(Blob::new(vec![0; 10]))),
            ("t".to_string(), AttributeValue::Bool(true)),
            (
                "l".to_string(),
                AttributeValue::L(vec![AttributeValue::S("xy".into())]),
            ),
        ]
        .into_iter()
        .collect();
        // s: 1+3, n: 1+(3+1), b: 1+10, t: 1+1, l: 1+(3+1+2)
        assert_eq!(size(&item), 4 + 5 + 11 + 2 + 7);
        assert_eq!(number_size("-0.00120e5"), 2);
    }

    #[test]
    fn non_maps_are_serialize_errors() {
        let err = from_value(&42u32, 1).err();
        assert!(matches!(err, Some(Error::Serialize { .. })), "{err:?}");
    }

    #[test]
    fn the_partition_key_attribute_is_refused() {
        let value: HashMap<&str, &str> = [("_key", "x")].into_iter().collect();
        let err = from_value(&value, 1).err();
        assert!(matches!(err, Some(Error::Validation { .. })), "{err:?}");
    }

    #[test]
    fn oversized_items_are_refused_with_the_numbers() {
        let value: HashMap<&str, String> =
            [("blob", "x".repeat(MAX_ITEM_BYTES))].into_iter().collect();
        let err = from_value(&value, 1).err();
        let message = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("409600"), "{message}");
    }

    #[test]
    fn numbers_dynamodb_cannot_store_are_refused() {
        let value: HashMap<&str, f64> = [("x", f64::NAN)].into_iter().collect();
        assert!(from_value(&value, 1).is_err());
        let value: HashMap<&str, f64> = [("x", 1e200)].into_iter().collect();
        assert!(from_value(&value, 1).is_err());
        let value: HashMap<&str, f64> = [("x", -2.5e-3)].into_iter().collect();
        assert!(from_value(&value, 1).is_ok());
        // 39 significant digits, wherever the number is.
        let nines = AttributeValue::N("9".repeat(39));
        for placed in [
            nines.clone(),
            AttributeValue::N(u128::MAX.to_string()),
            AttributeValue::Ns(vec!["1".into(), "9".repeat(39)]),
            AttributeValue::L(vec![AttributeValue::S("a".into()), nines.clone()]),
            AttributeValue::M([("y".to_string(), nines.clone())].into_iter().collect()),
        ] {
            let item: Item = [("x".to_string(), placed)].into_iter().collect();
            let err = validate(&item, "_key", 1).err();
            assert!(matches!(err, Some(Error::Validation { .. })), "{err:?}");
        }
    }

    #[test]
    fn sets_with_equal_members_are_refused() {
        let blob = |b: &[u8]| aws_sdk_dynamodb::primitives::Blob::new(b.to_vec());
        let check = |value: AttributeValue| {
            validate(&Item::from([("s".to_string(), value)]), "_key", 4).map_err(|e| e.code())
        };
        let refused = Err("ValidationException");
        assert_eq!(
            check(AttributeValue::Ss(vec!["a".into(), "a".into()])),
            refused
        );
        assert_eq!(
            check(AttributeValue::Bs(vec![blob(b"x"), blob(b"x")])),
            refused
        );
        for (a, b) in [("1", "1.0"), ("10e-1", "1"), ("-0", "0"), ("0.5", "5E-1")] {
            let set = AttributeValue::Ns(vec![a.into(), b.into()]);
            assert_eq!(check(set), refused, "{a} and {b} are one number");
        }
        for (a, b) in [("1", "-1"), ("1", "10"), ("1.5", "15")] {
            let set = AttributeValue::Ns(vec![a.into(), b.into()]);
            assert_eq!(check(set), Ok(()), "{a} and {b} differ");
        }
        assert_eq!(
            check(AttributeValue::Ss(vec!["a".into(), "A".into()])),
            Ok(())
        );
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut value = AttributeValue::S("leaf".into());
        for _ in 0..=MAX_NESTING_DEPTH {
            value = AttributeValue::L(vec![value]);
        }
        let item: Item = [("deep".to_string(), value)].into_iter().collect();
        assert!(validate(&item, "_key", 1).is_err());
    }
}
