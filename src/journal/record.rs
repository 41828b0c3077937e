//! Journal records and their framing.
//!
//! ```text
//! frame   = length: u32 LE | crc32c: u32 LE | payload          (crc over length and payload)
//! payload = version: u8 (1) | seq: u64 LE | op: u8 | key_len: u16 LE | key | item?
//! ```
//!
//! `op` is 0 insert, 1 update, 2 upsert, 3 delete; deletes carry no item, the others carry the
//! item in the [`codec`](crate::codec) encoding. The checksum covers the length too, so a torn
//! or flipped length is caught like any other damage.

use std::sync::Arc;

use crate::codec;
use crate::item::Item;

/// Bytes before a record's payload: its length and checksum.
pub(crate) const HEADER_BYTES: usize = 8;

/// The largest payload a record may have: a maximal item, its key and the fixed fields, with
/// room to spare. Anything longer is damage, not a record.
pub(crate) const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;

const VERSION: u8 = 1;

/// What a mutation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// `insert`: the item was stored where none was.
    Insert,
    /// `update`: the item replaced an existing one.
    Update,
    /// `upsert`: the item was stored.
    Upsert,
    /// `delete`: the item was removed.
    Delete,
}

impl Op {
    fn code(self) -> u8 {
        match self {
            Op::Insert => 0,
            Op::Update => 1,
            Op::Upsert => 2,
            Op::Delete => 3,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Op::Insert,
            1 => Op::Update,
            2 => Op::Upsert,
            3 => Op::Delete,
            _ => return None,
        })
    }

    /// The operation's name, as the store's methods spell it.
    pub fn name(self) -> &'static str {
        match self {
            Op::Insert => "insert",
            Op::Update => "update",
            Op::Upsert => "upsert",
            Op::Delete => "delete",
        }
    }
}

/// One acknowledged mutation.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Record {
    /// The mutation's sequence number; increasing through the journal.
    pub seq: u64,
    /// What the mutation did.
    pub op: Op,
    /// The rendered key.
    pub key: String,
    /// The item stored, without the partition key attribute; `None` for a delete.
    pub item: Option<Arc<Item>>,
}

impl Record {
    /// A record of mutation `seq`.
    pub fn new(seq: u64, op: Op, key: impl Into<String>, item: Option<Arc<Item>>) -> Self {
        Self {
            seq,
            op,
            key: key.into(),
            item,
        }
    }
}

/// Why a frame could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// The input ends inside the frame.
    Incomplete,
    /// The frame is damaged: what is wrong, and where the frame claims to end (if it knows).
    Corrupt {
        reason: String,
        claimed_end: Option<usize>,
    },
}

/// Appends `record`'s frame to `out`.
pub(crate) fn encode(record: &Record, out: &mut Vec<u8>) -> Result<(), codec::EncodeError> {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_BYTES]);
    out.push(VERSION);
    out.extend_from_slice(&record.seq.to_le_bytes());
    out.push(record.op.code());
    let key_len = u16::try_from(record.key.len())
        .map_err(|_| codec::EncodeError::new("the key is longer than 65535 bytes"))?;
    out.extend_from_slice(&key_len.to_le_bytes());
    out.extend_from_slice(record.key.as_bytes());
    if let Some(item) = &record.item {
        codec::encode(item, out)?;
    }
    let payload_len = out.len() - start - HEADER_BYTES;
    if payload_len > MAX_PAYLOAD_BYTES {
        out.truncate(start);
        return Err(codec::EncodeError::new("the record is larger than 1 MiB"));
    }
    let len = (payload_len as u32).to_le_bytes();
    let crc = checksum(&len, &out[start + HEADER_BYTES..]);
    out[start..start + 4].copy_from_slice(&len);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

fn checksum(len: &[u8], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(len), payload)
}

/// Reads the frame at the start of `input`; returns the record and the frame's length.
pub(crate) fn decode(input: &[u8]) -> Result<(Record, usize), FrameError> {
    let Some(header) = input.get(..HEADER_BYTES) else {
        return Err(FrameError::Incomplete);
    };
    let len_bytes = [header[0], header[1], header[2], header[3]];
    let len = u32::from_le_bytes(len_bytes) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len > MAX_PAYLOAD_BYTES {
        return Err(FrameError::Corrupt {
            reason: format!("a record claims {len} bytes, over the limit of {MAX_PAYLOAD_BYTES}"),
            claimed_end: None,
        });
    }
    let end = HEADER_BYTES + len;
    let Some(payload) = input.get(HEADER_BYTES..end) else {
        return Err(FrameError::Incomplete);
    };
    let corrupt = |reason: String| FrameError::Corrupt {
        reason,
        claimed_end: Some(end),
    };
    if checksum(&len_bytes, payload) != crc {
        return Err(corrupt("checksum mismatch".into()));
    }
    let record = decode_payload(payload).map_err(corrupt)?;
    Ok((record, end))
}

fn decode_payload(payload: &[u8]) -> Result<Record, String> {
    let fixed = 1 + 8 + 1 + 2;
    let Some(head) = payload.get(..fixed) else {
        return Err("the record is too short".into());
    };
    if head[0] != VERSION {
        return Err(format!("unknown record version {}", head[0]));
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&head[1..9]);
    let op = Op::from_code(head[9]).ok_or_else(|| format!("unknown operation {}", head[9]))?;
    let key_len = u16::from_le_bytes([head[10], head[11]]) as usize;
    let key = payload
        .get(fixed..fixed + key_len)
        .ok_or("the key runs past the record")?;
    let key = std::str::from_utf8(key).map_err(|_| "the key is not UTF-8")?;
    let rest = &payload[fixed + key_len..];
    let item = match op {
        Op::Delete if rest.is_empty() => None,
        Op::Delete => return Err("a delete carries an item".into()),
        _ => Some(Arc::new(codec::decode(rest).map_err(|e| e.to_string())?)),
    };
    Ok(Record {
        seq: u64::from_le_bytes(seq),
        op,
        key: key.to_owned(),
        item,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue;

    fn record(seq: u64, op: Op) -> Record {
        let item = (op != Op::Delete).then(|| {
            Arc::new(Item::from([(
                "n".to_string(),
                AttributeValue::N(seq.to_string()),
            )]))
        });
        Record {
            seq,
            op,
            key: format!("User{seq}"),
            item,
        }
    }

    fn frames(records: &[Record]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            assert!(encode(r, &mut out).is_ok());
        }
        out
    }

    #[test]
    fn records_round_trip() {
        for op in [Op::Insert, Op::Update, Op::Upsert, Op::Delete] {
            let bytes = frames(&[record(7, op)]);
            assert_eq!(decode(&bytes), Ok((record(7, op), bytes.len())));
        }
    }

    #[test]
    fn every_truncation_is_incomplete_or_corrupt() {
        let bytes = frames(&[record(1, Op::Upsert)]);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn every_bit_flip_is_caught() {
        let bytes = frames(&[record(1, Op::Upsert)]);
        for i in 0..bytes.len() * 8 {
            let mut damaged = bytes.clone();
            damaged[i / 8] ^= 1 << (i % 8);
            assert!(decode(&damaged).is_err(), "flip of bit {i}");
        }
    }

    #[test]
    fn an_absurd_length_is_corrupt_without_reading_on() {
        let mut bytes = vec![0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0];
        bytes.extend([0; 16]);
        assert!(matches!(
            decode(&bytes),
            Err(FrameError::Corrupt {
                claimed_end: None,
                ..
            })
        ));
    }
}
