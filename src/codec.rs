//! A compact, self-describing binary encoding of items, used where items are kept on disk.
//!
//! The AWS SDK's `AttributeValue` has no serde support, and a JSON mapping would lose the
//! distinction between strings, numbers, binaries and sets, so items are encoded here:
//!
//! ```text
//! item   = count (name value)*
//! value  = tag payload        tag: 0 S, 1 N, 2 B, 3 BOOL, 4 NULL, 5 SS, 6 NS, 7 BS, 8 L, 9 M
//! S, N   = bytes (UTF-8)       B = bytes        BOOL, NULL = one byte, 0 or 1
//! SS, NS = count bytes*        BS = count bytes*
//! L      = count value*        M = count (name value)*
//! bytes  = count byte*         count = unsigned LEB128, at most 5 bytes (u32)
//! ```
//!
//! Decoding never panics and never allocates more than the input could hold: every count is
//! checked against the bytes that remain, and nesting is limited.

use std::fmt;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::item::{Item, MAX_NESTING_DEPTH};

/// Why bytes could not be decoded into an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    offset: usize,
    reason: &'static str,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid encoded item at byte {}: {}",
            self.offset, self.reason
        )
    }
}

impl std::error::Error for DecodeError {}

/// Why an item could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError(&'static str);

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot encode item: {}", self.0)
    }
}

impl std::error::Error for EncodeError {}

impl EncodeError {
    pub(crate) fn new(reason: &'static str) -> Self {
        Self(reason)
    }
}

const S: u8 = 0;
const N: u8 = 1;
const B: u8 = 2;
const BOOL: u8 = 3;
const NULL: u8 = 4;
const SS: u8 = 5;
const NS: u8 = 6;
const BS: u8 = 7;
const L: u8 = 8;
const M: u8 = 9;

/// Appends the encoding of `item` to `out`.
pub fn encode(item: &Item, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    count(item.len(), out)?;
    // Sorted names make the encoding of an item deterministic.
    let mut names: Vec<&String> = item.keys().collect();
    names.sort();
    for name in names {
        bytes(name.as_bytes(), out)?;
        if let Some(value) = item.get(name) {
            encode_value(value, out)?;
        }
    }
    Ok(())
}

fn encode_value(value: &AttributeValue, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    match value {
        AttributeValue::S(s) => tagged(S, s.as_bytes(), out),
        AttributeValue::N(n) => tagged(N, n.as_bytes(), out),
        AttributeValue::B(b) => tagged(B, b.as_ref(), out),
        AttributeValue::Bool(v) => {
            out.extend([BOOL, u8::from(*v)]);
            Ok(())
        }
        AttributeValue::Null(v) => {
            out.extend([NULL, u8::from(*v)]);
            Ok(())
        }
        AttributeValue::Ss(set) => set_of(SS, set.iter().map(|s| s.as_bytes()), set.len(), out),
        AttributeValue::Ns(set) => set_of(NS, set.iter().map(|s| s.as_bytes()), set.len(), out),
        AttributeValue::Bs(set) => set_of(BS, set.iter().map(|b| b.as_ref()), set.len(), out),
        AttributeValue::L(list) => {
            out.push(L);
            count(list.len(), out)?;
            list.iter().try_for_each(|v| encode_value(v, out))
        }
        AttributeValue::M(map) => {
            out.push(M);
            encode(map, out)
        }
        _ => Err(EncodeError("unknown attribute value type")),
    }
}

fn tagged(tag: u8, payload: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    out.push(tag);
    bytes(payload, out)
}

fn set_of<'a>(
    tag: u8,
    members: impl Iterator<Item = &'a [u8]>,
    len: usize,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    out.push(tag);
    count(len, out)?;
    members.into_iter().try_for_each(|m| bytes(m, out))
}

fn bytes(payload: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    count(payload.len(), out)?;
    out.extend_from_slice(payload);
    Ok(())
}

fn count(n: usize, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let mut n = u32::try_from(n).map_err(|_| EncodeError("a length exceeds u32"))?;
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(low);
            return Ok(());
        }
        out.push(low | 0x80);
    }
}

/// Decodes an item that fills `input` exactly.
pub fn decode(input: &[u8]) -> Result<Item, DecodeError> {
    let mut reader = Reader { input, offset: 0 };
    let item = reader.map(0)?;
    if reader.offset != input.len() {
        return Err(reader.error("trailing bytes after the item"));
    }
    Ok(item)
}

struct Reader<'a> {
    input: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    fn error(&self, reason: &'static str) -> DecodeError {
        DecodeError {
            offset: self.offset,
            reason,
        }
    }

    fn remaining(&self) -> usize {
        self.input.len() - self.offset
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self
            .input
            .get(self.offset)
            .ok_or_else(|| self.error("unexpected end of input"))?;
        self.offset += 1;
        Ok(b)
    }

    /// A count of elements, each at least `min_element_bytes` long.
    fn count(&mut self, min_element_bytes: usize) -> Result<usize, DecodeError> {
        let mut n: u32 = 0;
        for shift in (0..35).step_by(7) {
            let b = self.byte()?;
            let bits = u32::from(b & 0x7f);
            if shift == 28 && bits > 0x0f {
                return Err(self.error("length overflows u32"));
            }
            n |= bits << shift;
            if b & 0x80 == 0 {
                let n = n as usize;
                if n.saturating_mul(min_element_bytes) > self.remaining() {
                    return Err(self.error("length exceeds the remaining input"));
                }
                return Ok(n);
            }
        }
        Err(self.error("length is longer than 5 bytes"))
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.count(1)?;
        let slice = &self.input[self.offset..self.offset + len];
        self.offset += len;
        Ok(slice)
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let start = self.offset;
        let raw = self.bytes()?;
        String::from_utf8(raw.to_vec()).map_err(|_| DecodeError {
            offset: start,
            reason: "string is not UTF-8",
        })
    }

    fn flag(&mut self) -> Result<bool, DecodeError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.error("boolean is neither 0 nor 1")),
        }
    }

    fn map(&mut self, depth: usize) -> Result<Item, DecodeError> {
        // Each entry is at least a name length, a tag and a payload byte.
        let len = self.count(3)?;
        let mut item = Item::with_capacity(len);
        for _ in 0..len {
            let name = self.string()?;
            let value = self.value(depth)?;
            if item.insert(name, value).is_some() {
                return Err(self.error("duplicate attribute name"));
            }
        }
        Ok(item)
    }

    fn value(&mut self, depth: usize) -> Result<AttributeValue, DecodeError> {
        let tag = self.byte()?;
        let nested = || {
            if depth >= MAX_NESTING_DEPTH {
                Err(DecodeError {
                    offset: self.offset,
                    reason: "lists and maps nest too deeply",
                })
            } else {
                Ok(depth + 1)
            }
        };
        Ok(match tag {
            S => AttributeValue::S(self.string()?),
            N => AttributeValue::N(self.string()?),
            B => AttributeValue::B(Blob::new(self.bytes()?.to_vec())),
            BOOL => AttributeValue::Bool(self.flag()?),
            NULL => AttributeValue::Null(self.flag()?),
            SS | NS => {
                let len = self.count(1)?;
                let set = (0..len)
                    .map(|_| self.string())
                    .collect::<Result<Vec<_>, _>>()?;
                if tag == SS {
                    AttributeValue::Ss(set)
                } else {
                    AttributeValue::Ns(set)
                }
            }
            BS => {
                let len = self.count(1)?;
                let set = (0..len)
                    .map(|_| self.bytes().map(|b| Blob::new(b.to_vec())))
                    .collect::<Result<Vec<_>, _>>()?;
                AttributeValue::Bs(set)
            }
            L => {
                let depth = nested()?;
                let len = self.count(2)?;
                let list = (0..len)
                    .map(|_| self.value(depth))
                    .collect::<Result<Vec<_>, _>>()?;
                AttributeValue::L(list)
            }
            M => AttributeValue::M(self.map(nested()?)?),
            _ => return Err(self.error("unknown value tag")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_value() -> impl Strategy<Value = AttributeValue> {
        let leaf = prop_oneof![
            ".*".prop_map(AttributeValue::S),
            "-?[0-9]{1,10}(\\.[0-9]{1,5})?".prop_map(AttributeValue::N),
            proptest::collection::vec(any::<u8>(), 0..40)
                .prop_map(|b| AttributeValue::B(Blob::new(b))),
            any::<bool>().prop_map(AttributeValue::Bool),
            Just(AttributeValue::Null(true)),
            proptest::collection::vec(".*", 1..4).prop_map(AttributeValue::Ss),
            proptest::collection::vec("[0-9]{1,5}", 1..4).prop_map(AttributeValue::Ns),
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..8), 1..3)
                .prop_map(|v| AttributeValue::Bs(v.into_iter().map(Blob::new).collect())),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(AttributeValue::L),
                proptest::collection::hash_map(".{0,6}", inner, 0..4).prop_map(AttributeValue::M),
            ]
        })
    }

    fn arb_item() -> impl Strategy<Value = Item> {
        proptest::collection::hash_map(".{1,8}", arb_value(), 0..6)
    }

    proptest! {
        #[test]
        fn items_round_trip(item in arb_item()) {
            let mut bytes = Vec::new();
            encode(&item, &mut bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(decode(&bytes), Ok(item));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn truncations_are_errors(item in arb_item(), cut in any::<prop::sample::Index>()) {
            let mut bytes = Vec::new();
            encode(&item, &mut bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let cut = cut.index(bytes.len());
            prop_assume!(cut < bytes.len());
            prop_assert!(decode(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn deep_nesting_is_refused_without_recursing_forever() {
        // 100k nested lists, each a tag and a count of one.
        let mut bytes = vec![1, 1, b'x'];
        for _ in 0..100_000 {
            bytes.extend([L, 1]);
        }
        bytes.extend([NULL, 1]);
        assert!(decode(&bytes).is_err());
    }

    #[test]
    fn huge_counts_do_not_allocate() {
        assert!(decode(&[0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
        assert!(decode(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).is_err());
    }
}
