//! Deserializing values straight from a borrowed item.
//!
//! `serde_dynamo` only deserializes an item it owns, so reading a cached item with it means
//! `serde_dynamo::from_item(item.clone())`: a deep copy of the whole attribute map, converted to
//! `serde_dynamo`'s own attribute type, on every cache hit, and that copy costs more than the
//! deserialization itself. `serde_dynamo` has no deserializer over a borrowed item, so this module
//! provides one: [`from_item`] reads a `&Item` in place. Strings and binaries are handed to the
//! visitor borrowed, so a `String` field is copied once and a `&str` field not at all, and the
//! happy path allocates nothing beyond what the target type itself holds.
//!
//! It mirrors `serde_dynamo` 4.3's data model method by method, so that a value written with
//! `serde_dynamo::to_item` reads back exactly as `serde_dynamo::from_item` would read it: numbers
//! (`N`) are parsed as the requested type, and `deserialize_any` tries `i64`, then `u64`, then
//! `f64`; strings (`S`) serve strings, chars, identifiers and unit enum variants; maps (`M`) serve
//! maps, structs and externally tagged enums (a map with a single key); lists and sets (`L`, `SS`,
//! `NS`, `BS`) serve sequences, and structs too when they are lists; `NULL: true` is unit and
//! `None`; binaries (`B`) serve bytes; newtype structs are transparent; map keys are strings, and
//! integer or boolean keys are parsed from them.
//!
//! The differences are in failures only: errors are [`DeError`]s that name the attribute they
//! happened at, and an attribute of a type the SDK does not know is an error where `serde_dynamo`
//! panics converting it.

use std::collections::hash_map;
use std::fmt::{self, Display};

use aws_sdk_dynamodb::types::AttributeValue;
use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeSeed, Deserializer as _, Visitor};
use serde::forward_to_deserialize_any;

use super::Item;

/// Reads a `T` from `item` in place, as `serde_dynamo::from_item(item.clone())` would, without
/// the clone.
///
/// `T` may borrow from `item`: `&str` and `&[u8]` fields point into its strings and binaries.
pub(crate) fn from_item<'de, T: de::Deserialize<'de>>(item: &'de Item) -> Result<T, DeError> {
    T::deserialize(Value::Item(item))
}

/// Why an item could not be read as the requested type, and where in the item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeError {
    message: String,
    /// The attribute names and list positions leading to the value at fault, innermost first:
    /// each map or list adds its step as the error passes back out through it.
    path: Vec<Step>,
}

/// One step of a [`DeError`]'s path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// Into a map's attribute, or an enum's variant.
    Key(String),
    /// Into a list's or set's element.
    Index(usize),
}

impl DeError {
    fn new(message: impl Into<String>) -> Self {
        DeError {
            message: message.into(),
            path: Vec::new(),
        }
    }

    /// The value is of the wrong type.
    fn expected(what: &str, found: Value<'_>) -> Self {
        DeError::new(format!("expected {what}, found {}", found.kind()))
    }

    /// A number or map key does not parse as the type asked for.
    fn parse(text: &str, ty: &str, reason: impl Display) -> Self {
        DeError::new(format!("cannot read `{text}` as {ty}: {reason}"))
    }

    fn at(mut self, step: Step) -> Self {
        self.path.push(step);
        self
    }
}

impl Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if self.path.is_empty() {
            return Ok(());
        }
        f.write_str(" at `")?;
        for (i, step) in self.path.iter().rev().enumerate() {
            match step {
                Step::Key(key) if i == 0 => f.write_str(key)?,
                Step::Key(key) => write!(f, ".{key}")?,
                Step::Index(index) => write!(f, "[{index}]")?,
            }
        }
        f.write_str("`")
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: Display>(msg: T) -> Self {
        DeError::new(msg.to_string())
    }
}

/// The deserializer for one value: an attribute, or the item itself, a map that is not wrapped
/// in an [`AttributeValue::M`] (wrapping it would take the copy this module avoids).
#[derive(Clone, Copy)]
enum Value<'de> {
    Attribute(&'de AttributeValue),
    Item(&'de Item),
}

impl<'de> Value<'de> {
    /// The map this value is, if it is one.
    fn map(self) -> Option<&'de Item> {
        match self {
            Value::Item(map) | Value::Attribute(AttributeValue::M(map)) => Some(map),
            Value::Attribute(_) => None,
        }
    }

    /// What this value is, for error messages.
    fn kind(self) -> &'static str {
        let Value::Attribute(attribute) = self else {
            return "a map";
        };
        match attribute {
            AttributeValue::N(_) => "a number",
            AttributeValue::S(_) => "a string",
            AttributeValue::Bool(_) => "a boolean",
            AttributeValue::B(_) => "binary data",
            AttributeValue::Null(true) => "null",
            AttributeValue::Null(false) => "a null attribute set to false",
            AttributeValue::M(_) => "a map",
            AttributeValue::L(_) => "a list",
            AttributeValue::Ss(_) => "a string set",
            AttributeValue::Ns(_) => "a number set",
            AttributeValue::Bs(_) => "a binary set",
            _ => "an attribute of a type this SDK version does not know",
        }
    }
}

/// Deserializer methods for numbers: the value must be an `N`, parsed as the method asks.
macro_rules! numbers {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            match self {
                Value::Attribute(AttributeValue::N(n)) => Number(n).$method(visitor),
                _ => Err(DeError::expected("a number", self)),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Value<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let attribute = match self {
            Value::Item(item) => return visitor.visit_map(Map::new(item)),
            Value::Attribute(attribute) => attribute,
        };
        match attribute {
            AttributeValue::N(n) => Number(n).deserialize_any(visitor),
            AttributeValue::S(s) => visitor.visit_borrowed_str(s),
            AttributeValue::Bool(b) => visitor.visit_bool(*b),
            AttributeValue::B(b) => visitor.visit_borrowed_bytes(b.as_ref()),
            AttributeValue::Null(_) => self.deserialize_unit(visitor),
            AttributeValue::M(map) => visitor.visit_map(Map::new(map)),
            AttributeValue::L(_)
            | AttributeValue::Ss(_)
            | AttributeValue::Ns(_)
            | AttributeValue::Bs(_) => self.deserialize_seq(visitor),
            _ => Err(DeError::new(format!("cannot read {}", self.kind()))),
        }
    }

    numbers! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_f32 deserialize_f64
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self {
            Value::Attribute(AttributeValue::Bool(b)) => visitor.visit_bool(*b),
            _ => Err(DeError::expected("a boolean", self)),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if let Value::Attribute(AttributeValue::S(s)) = self {
            let mut chars = s.chars();
            if let (Some(c), None) = (chars.next(), chars.next()) {
                return visitor.visit_char(c);
            }
        }
        Err(DeError::expected("a one-character string", self))
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self {
            Value::Attribute(AttributeValue::S(s)) => visitor.visit_borrowed_str(s),
            _ => Err(DeError::expected("a string", self)),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self {
            Value::Attribute(AttributeValue::B(b)) => visitor.visit_borrowed_bytes(b.as_ref()),
            _ => Err(DeError::expected("binary data", self)),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self {
            Value::Attribute(AttributeValue::Null(true)) => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self {
            Value::Attribute(AttributeValue::Null(true)) => visitor.visit_unit(),
            _ => Err(DeError::expected("null", self)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self {
            Value::Attribute(AttributeValue::L(list)) => {
                visitor.visit_seq(Seq::new(list.iter().map(Value::Attribute)))
            }
            Value::Attribute(AttributeValue::Ss(set)) => {
                visitor.visit_seq(Seq::new(set.iter().map(|s| string(s))))
            }
            Value::Attribute(AttributeValue::Ns(set)) => {
                visitor.visit_seq(Seq::new(set.iter().map(|n| Number(n))))
            }
            Value::Attribute(AttributeValue::Bs(set)) => {
                visitor.visit_seq(Seq::new(set.iter().map(|b| Bytes(b.as_ref()))))
            }
            _ => Err(DeError::expected("a list or a set", self)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.map() {
            Some(map) => visitor.visit_map(Map::new(map)),
            None => Err(DeError::expected("a map", self)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self {
            Value::Attribute(AttributeValue::L(_)) => self.deserialize_seq(visitor),
            _ => self.deserialize_map(visitor),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if let Value::Attribute(AttributeValue::S(s)) = self {
            return visitor.visit_enum(string(s));
        }
        match self.map() {
            Some(map) => visitor.visit_enum(Enum(map)),
            None => Err(DeError::expected("a string or a map for an enum", self)),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }
}

/// A borrowed string as a deserializer: serves any type from `visit_borrowed_str`, and a unit
/// enum variant.
fn string(s: &str) -> BorrowedStrDeserializer<'_, DeError> {
    BorrowedStrDeserializer::new(s)
}

/// The elements of a list or set.
struct Seq<I> {
    elements: I,
    index: usize,
}

impl<I> Seq<I> {
    fn new(elements: I) -> Self {
        Seq { elements, index: 0 }
    }
}

impl<'de, I, D> de::SeqAccess<'de> for Seq<I>
where
    I: ExactSizeIterator<Item = D>,
    D: de::Deserializer<'de, Error = DeError>,
{
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(element) = self.elements.next() else {
            return Ok(None);
        };
        let index = self.index;
        self.index += 1;
        seed.deserialize(element)
            .map(Some)
            .map_err(|e| e.at(Step::Index(index)))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.elements.len())
    }
}

/// The entries of a map.
struct Map<'de> {
    entries: hash_map::Iter<'de, String, AttributeValue>,
    /// The value of the entry whose key was read last.
    value: Option<(&'de str, &'de AttributeValue)>,
}

impl<'de> Map<'de> {
    fn new(map: &'de Item) -> Self {
        Map {
            entries: map.iter(),
            value: None,
        }
    }
}

impl<'de> de::MapAccess<'de> for Map<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some((key, value));
        seed.deserialize(Key(key)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let Some((key, value)) = self.value.take() else {
            return Err(DeError::new("a map value was asked for before its key"));
        };
        seed.deserialize(Value::Attribute(value))
            .map_err(|e| e.at(Step::Key(key.to_owned())))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// An externally tagged enum's non-unit variant: a map with a single key, the variant's name.
struct Enum<'de>(&'de Item);

impl<'de> de::EnumAccess<'de> for Enum<'de> {
    type Error = DeError;
    type Variant = Variant<'de>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Variant<'de>), DeError> {
        let mut entries = self.0.iter();
        let (Some((name, value)), None) = (entries.next(), entries.next()) else {
            return Err(DeError::new(format!(
                "expected a map with a single key for an enum, found {} keys",
                self.0.len()
            )));
        };
        let variant = seed.deserialize(string(name))?;
        Ok((variant, Variant { name, value }))
    }
}

/// The content of an externally tagged enum's variant.
struct Variant<'de> {
    name: &'de str,
    value: &'de AttributeValue,
}

impl Variant<'_> {
    /// Adds the variant's name to the path of an error from its content.
    fn located(&self) -> impl FnOnce(DeError) -> DeError + '_ {
        |e| e.at(Step::Key(self.name.to_owned()))
    }
}

impl<'de> de::VariantAccess<'de> for Variant<'de> {
    type Error = DeError;

    /// Like `serde_dynamo`, accepts `{"Variant": <anything>}` for a unit variant.
    fn unit_variant(self) -> Result<(), DeError> {
        Ok(())
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, DeError> {
        seed.deserialize(Value::Attribute(self.value))
            .map_err(self.located())
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        Value::Attribute(self.value)
            .deserialize_seq(visitor)
            .map_err(self.located())
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        Value::Attribute(self.value)
            .deserialize_map(visitor)
            .map_err(self.located())
    }
}

/// Deserializer methods that parse the text as the type asked for.
macro_rules! parsed {
    ($($method:ident => $visit:ident($ty:ty))*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            match self.0.parse::<$ty>() {
                Ok(n) => visitor.$visit(n),
                Err(e) => Err(DeError::parse(self.0, stringify!($ty), e)),
            }
        }
    )*};
}

/// The text of a number (`N`, or an element of `NS`).
///
/// Serves any type with what `deserialize_any` finds, like `serde_dynamo`'s number
/// deserializer, which also leaves out 128-bit integers.
struct Number<'a>(&'a str);

impl<'de> de::Deserializer<'de> for Number<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if let Ok(n) = self.0.parse::<i64>() {
            visitor.visit_i64(n)
        } else if let Ok(n) = self.0.parse::<u64>() {
            visitor.visit_u64(n)
        } else {
            match self.0.parse::<f64>() {
                Ok(n) => visitor.visit_f64(n),
                Err(e) => Err(DeError::parse(self.0, "a number", e)),
            }
        }
    }

    parsed! {
        deserialize_i8 => visit_i8(i8)
        deserialize_i16 => visit_i16(i16)
        deserialize_i32 => visit_i32(i32)
        deserialize_i64 => visit_i64(i64)
        deserialize_u8 => visit_u8(u8)
        deserialize_u16 => visit_u16(u16)
        deserialize_u32 => visit_u32(u32)
        deserialize_u64 => visit_u64(u64)
        deserialize_f32 => visit_f32(f32)
        deserialize_f64 => visit_f64(f64)
    }

    forward_to_deserialize_any! {
        bool char str string bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// An element of a binary set (`BS`): serves any type as bytes, like `serde_dynamo`'s, which
/// also leaves out 128-bit integers.
struct Bytes<'de>(&'de [u8]);

impl<'de> de::Deserializer<'de> for Bytes<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_borrowed_bytes(self.0)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 u8 u16 u32 u64 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

/// A map's key: a string, from which integers and booleans are parsed when asked for.
struct Key<'de>(&'de str);

impl<'de> de::Deserializer<'de> for Key<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_borrowed_str(self.0)
    }

    parsed! {
        deserialize_i8 => visit_i8(i8)
        deserialize_i16 => visit_i16(i16)
        deserialize_i32 => visit_i32(i32)
        deserialize_i64 => visit_i64(i64)
        deserialize_i128 => visit_i128(i128)
        deserialize_u8 => visit_u8(u8)
        deserialize_u16 => visit_u16(u16)
        deserialize_u32 => visit_u32(u32)
        deserialize_u64 => visit_u64(u64)
        deserialize_u128 => visit_u128(u128)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            "true" => visitor.visit_bool(true),
            "false" => visitor.visit_bool(false),
            _ => Err(DeError::parse(self.0, "bool", "expected `true` or `false`")),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_enum(string(self.0))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    forward_to_deserialize_any! {
        f32 f64 char str string bytes byte_buf option unit unit_struct seq tuple tuple_struct map
        struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests;
