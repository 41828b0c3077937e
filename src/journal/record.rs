//! Journal records and their framing.
//!
//! ```text
//! frame   = length: u32 LE | crc32c: u32 LE | payload          (crc over length and payload)
//! payload = version: u8 (1) | seq: u64 LE | op: u8 | key_len: u16 LE | key | item?
//!         | version: u8 (2) | seq: u64 LE | op: u8 | key_len: u16 LE | key | table | item?
//! table   = 0: u8                                                (absent)
//!         | 1: u8 | version: u64 LE                              (present at this version)
//!         | 2: u8 | item_len: u32 LE | item                      (present unversioned, as read)
//! ```
//!
//! `op` is 0 insert, 1 update, 2 upsert, 3 delete, 4 settled, 5 apply; deletes and markers
//! carry no item, the others carry the item in the [`codec`](crate::codec) encoding. An apply
//! (a delta, [`Store::apply`](crate::Store::apply)) carries the delta in its journal form: an
//! item with, for each attribute changed, the list `[code, operand]` (`0` add, `1` add members,
//! `2` remove members, `3` append, `4` set if absent). The checksum covers
//! the length too, so a torn or flipped length is caught like any other damage.
//!
//! Version 1 is what a store writes without versioned mode, and version 2 what it writes in
//! [versioned mode](crate::StoreBuilder::versioned); both are read. In version 2, a mutation
//! record's `table` is the key's base when the mutation was applied: the table state its
//! pending mutations build on, which a recovered write is conditional on. Op 4 exists only in
//! version 2: a *settled* marker, appended (without waiting for the disk) once the flusher is
//! done with the key's states up to `seq`, because their write landed, lost a race to another
//! writer, or was refused for good. Its `table` is the state the table was left in: the landed
//! write's, the winner's, or (refused) the base the write did not change. Table state 2 is an
//! item without the version attribute (a program that does not version wrote it) as the store
//! read it, which a recovered write over it is conditional on; journals written before it
//! existed hold such a base as version 0, and are still read. A marker carries the
//! sequence of a mutation written before it, so within a segment it may follow records with
//! higher sequences; it takes no sequence of its own.

use std::sync::Arc;

use crate::codec;
use crate::delta::Delta;
use crate::item::Item;

/// Bytes before a record's payload: its length and checksum.
pub(crate) const HEADER_BYTES: usize = 8;

/// The largest payload a record may have: a maximal item, its key and the fixed fields, with
/// room to spare. Anything longer is damage, not a record.
pub(crate) const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;

/// The format of records without a table state.
const VERSION_1: u8 = 1;
/// The format of records with a table state: those of versioned stores.
const VERSION_2: u8 = 2;

/// What a record says happened to its key.
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
    /// `apply`: a delta was applied to the item; the record carries the delta (see
    /// [`Record::delta`]).
    Apply,
    /// Not a mutation but a marker of a versioned store: the flusher is done with the key's
    /// mutations up to the record's sequence, and the table was left in the record's
    /// [`base`](Record::base) state. A marker is never written to the table: recovery (and so
    /// `quickstore journal replay`) only uses it to tell which recovered states are settled
    /// already and what the others build on.
    Settled,
}

impl Op {
    fn code(self) -> u8 {
        match self {
            Op::Insert => 0,
            Op::Update => 1,
            Op::Upsert => 2,
            Op::Delete => 3,
            Op::Settled => 4,
            Op::Apply => 5,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Op::Insert,
            1 => Op::Update,
            2 => Op::Upsert,
            3 => Op::Delete,
            4 => Op::Settled,
            5 => Op::Apply,
            _ => return None,
        })
    }

    /// The operation's name, as the store's methods spell it; `settled` for a marker.
    pub fn name(self) -> &'static str {
        match self {
            Op::Insert => "insert",
            Op::Update => "update",
            Op::Upsert => "upsert",
            Op::Delete => "delete",
            Op::Settled => "settled",
            Op::Apply => "apply",
        }
    }

    /// True for a marker ([`Op::Settled`]), false for a mutation.
    pub fn is_marker(self) -> bool {
        matches!(self, Op::Settled)
    }
}

/// A key's state in the table, as a versioned store's records keep it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TableState {
    /// No item.
    Absent,
    /// An item at this version (0: an item without the version attribute, whose content the
    /// record does not keep).
    Present(u64),
    /// An item without the version attribute, as the store read it (without its partition
    /// key attribute): a write over it is conditional on it.
    Unversioned(Arc<Item>),
}

impl TableState {
    /// The state from the store's own spelling: `None` absent, `Some(v)` present at `v`.
    pub(crate) fn from_version(version: Option<u64>) -> Self {
        version.map_or(TableState::Absent, TableState::Present)
    }

    /// A base as a versioned store keeps it: its version, and, for an item without the
    /// version attribute, the item as read when the store has it.
    pub(crate) fn of(version: Option<u64>, read: Option<&Arc<Item>>) -> Self {
        match (version, read) {
            (Some(0), Some(read)) => TableState::Unversioned(Arc::clone(read)),
            (version, _) => Self::from_version(version),
        }
    }

    /// The store's own spelling of the state: `None` absent, `Some(v)` present at `v` (0 for
    /// an item without the version attribute).
    pub fn version(&self) -> Option<u64> {
        match self {
            TableState::Absent => None,
            TableState::Present(version) => Some(*version),
            TableState::Unversioned(_) => Some(0),
        }
    }

    /// The item as read, for [`TableState::Unversioned`].
    pub fn read(&self) -> Option<&Arc<Item>> {
        match self {
            TableState::Unversioned(item) => Some(item),
            _ => None,
        }
    }
}

/// One journal record: an acknowledged mutation, or (in a versioned store's journal) a
/// [settled marker](Op::Settled).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Record {
    /// The mutation's sequence number; increasing through the journal. A marker has the
    /// sequence of the newest mutation it settles, which may be older than the records before
    /// it.
    pub seq: u64,
    /// What the mutation did, or [`Op::Settled`].
    pub op: Op,
    /// The rendered key.
    pub key: String,
    /// The item stored, without the partition key attribute; `None` for a delete or a marker;
    /// for an [apply](Op::Apply), the delta in its journal form (read it with
    /// [`delta`](Record::delta)).
    pub item: Option<Arc<Item>>,
    /// Versioned stores only (format 2): for a mutation, the table state the key's pending
    /// mutations built on when it was applied, which its write is conditional on; for a marker,
    /// the state the table was left in. `None` in the records of unversioned stores.
    pub base: Option<TableState>,
}

impl Record {
    /// A record of mutation `seq`, as an unversioned store writes it.
    pub fn new(seq: u64, op: Op, key: impl Into<String>, item: Option<Arc<Item>>) -> Self {
        Self {
            seq,
            op,
            key: key.into(),
            item,
            base: None,
        }
    }

    /// A record of mutation `seq` of a versioned store, building on `base`.
    pub fn versioned(
        seq: u64,
        op: Op,
        key: impl Into<String>,
        item: Option<Arc<Item>>,
        base: TableState,
    ) -> Self {
        Self {
            base: Some(base),
            ..Self::new(seq, op, key, item)
        }
    }

    /// The delta an [apply](Op::Apply) record carries; `None` for other records.
    pub fn delta(&self) -> Option<Delta> {
        match (self.op, &self.item) {
            (Op::Apply, Some(item)) => Delta::from_item(item),
            _ => None,
        }
    }

    /// A marker: the flusher is done with `key`'s mutations up to `seq`, and left the table in
    /// state `table`.
    pub fn settled(seq: u64, key: impl Into<String>, table: TableState) -> Self {
        Self::versioned(seq, Op::Settled, key, None, table)
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
    /// The frame is intact (its checksum holds) but its record version or operation is one
    /// this version of quickstore does not know: a newer version wrote it.
    Newer { reason: String },
}

/// Appends `record`'s frame to `out`: format 1 without a table state, format 2 with one.
pub(crate) fn encode(record: &Record, out: &mut Vec<u8>) -> Result<(), codec::EncodeError> {
    let carries_item = !matches!(record.op, Op::Delete | Op::Settled);
    if carries_item != record.item.is_some() {
        return Err(codec::EncodeError::new(
            "an insert, update or upsert carries an item, a delete or marker none",
        ));
    }
    if record.op.is_marker() && record.base.is_none() {
        return Err(codec::EncodeError::new("a marker carries a table state"));
    }
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_BYTES]);
    out.push(match record.base {
        Some(_) => VERSION_2,
        None => VERSION_1,
    });
    out.extend_from_slice(&record.seq.to_le_bytes());
    out.push(record.op.code());
    let Ok(key_len) = u16::try_from(record.key.len()) else {
        out.truncate(start);
        return Err(codec::EncodeError::new(
            "the key is longer than 65535 bytes",
        ));
    };
    out.extend_from_slice(&key_len.to_le_bytes());
    out.extend_from_slice(record.key.as_bytes());
    match &record.base {
        None => {}
        Some(TableState::Absent) => out.push(0),
        Some(TableState::Present(version)) => {
            out.push(1);
            out.extend_from_slice(&version.to_le_bytes());
        }
        Some(TableState::Unversioned(read)) => {
            out.push(2);
            let len_at = out.len();
            out.extend_from_slice(&[0; 4]);
            if let Err(err) = codec::encode(read, out) {
                out.truncate(start);
                return Err(err);
            }
            let Ok(len) = u32::try_from(out.len() - len_at - 4) else {
                out.truncate(start);
                return Err(codec::EncodeError::new("the item read is too large"));
            };
            out[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
        }
    }
    if let Some(item) = &record.item {
        if let Err(err) = codec::encode(item, out) {
            out.truncate(start);
            return Err(err);
        }
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

pub(crate) fn checksum(len: &[u8], payload: &[u8]) -> u32 {
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
    if let Some(reason) = unknown_format(payload) {
        return Err(FrameError::Newer { reason });
    }
    let record = decode_payload(payload).map_err(corrupt)?;
    Ok((record, end))
}

/// What makes an intact payload one of a later format: a record version or operation code this
/// version does not know. `None` for a payload too short to say (then it is damage).
fn unknown_format(payload: &[u8]) -> Option<String> {
    let (&format, &op) = (payload.first()?, payload.get(9)?);
    if format != VERSION_1 && format != VERSION_2 {
        Some(format!("record version {format}"))
    } else if Op::from_code(op).is_none() {
        Some(format!("operation {op}"))
    } else {
        None
    }
}

fn decode_payload(payload: &[u8]) -> Result<Record, String> {
    let fixed = 1 + 8 + 1 + 2;
    let Some(head) = payload.get(..fixed) else {
        return Err("the record is too short".into());
    };
    let format = head[0];
    if format != VERSION_1 && format != VERSION_2 {
        return Err(format!("unknown record version {format}"));
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&head[1..9]);
    let op = Op::from_code(head[9]).ok_or_else(|| format!("unknown operation {}", head[9]))?;
    let key_len = u16::from_le_bytes([head[10], head[11]]) as usize;
    let key = payload
        .get(fixed..fixed + key_len)
        .ok_or("the key runs past the record")?;
    let key = std::str::from_utf8(key).map_err(|_| "the key is not UTF-8")?;
    let mut rest = &payload[fixed + key_len..];
    let base = match format {
        VERSION_1 if op.is_marker() => return Err("a marker in a version 1 record".into()),
        VERSION_1 => None,
        _ => match rest.split_first() {
            Some((0, after)) => {
                rest = after;
                Some(TableState::Absent)
            }
            Some((1, after)) => {
                let version = after
                    .get(..8)
                    .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
                    .ok_or("the table state runs past the record")?;
                rest = &after[8..];
                Some(TableState::Present(u64::from_le_bytes(version)))
            }
            Some((2, after)) => {
                let len = after
                    .get(..4)
                    .and_then(|bytes| <[u8; 4]>::try_from(bytes).ok())
                    .ok_or("the table state runs past the record")?;
                let len = u32::from_le_bytes(len) as usize;
                let read = after
                    .get(4..4 + len)
                    .ok_or("the item read runs past the record")?;
                rest = &after[4 + len..];
                let read = codec::decode(read).map_err(|e| e.to_string())?;
                Some(TableState::Unversioned(Arc::new(read)))
            }
            Some((tag, _)) => return Err(format!("unknown table state {tag}")),
            None => return Err("the table state is missing".into()),
        },
    };
    let item = match op {
        Op::Delete | Op::Settled if rest.is_empty() => None,
        Op::Delete => return Err("a delete carries an item".into()),
        Op::Settled => return Err("a marker carries an item".into()),
        _ => Some(Arc::new(codec::decode(rest).map_err(|e| e.to_string())?)),
    };
    if op == Op::Apply && item.as_deref().and_then(Delta::from_item).is_none() {
        return Err("an apply record carries no delta".into());
    }
    Ok(Record {
        seq: u64::from_le_bytes(seq),
        op,
        key: key.to_owned(),
        item,
        base,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue;

    fn record(seq: u64, op: Op) -> Record {
        let item = match op {
            Op::Delete => None,
            Op::Apply => Some(Arc::new(Delta::new().add("n", seq).to_item())),
            _ => Some(Arc::new(Item::from([(
                "n".to_string(),
                AttributeValue::N(seq.to_string()),
            )]))),
        };
        Record::new(seq, op, format!("User{seq}"), item)
    }

    /// Every kind of record a versioned store writes.
    fn versioned_records() -> Vec<Record> {
        let mut records = Vec::new();
        for base in [
            TableState::Absent,
            TableState::Present(0),
            TableState::Present(u64::MAX),
            TableState::Unversioned(Arc::new(Item::from([(
                "n".to_string(),
                AttributeValue::N("1.5".into()),
            )]))),
        ] {
            for op in [Op::Insert, Op::Update, Op::Upsert, Op::Delete, Op::Apply] {
                let Record { seq, key, item, .. } = record(9, op);
                records.push(Record::versioned(seq, op, key, item, base.clone()));
            }
            records.push(Record::settled(9, "User9", base));
        }
        records
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
        for op in [Op::Insert, Op::Update, Op::Upsert, Op::Delete, Op::Apply] {
            let bytes = frames(&[record(7, op)]);
            assert_eq!(decode(&bytes), Ok((record(7, op), bytes.len())));
        }
        let apply = record(7, Op::Apply);
        assert_eq!(apply.delta(), Some(Delta::new().add("n", 7)));
        assert_eq!(record(7, Op::Upsert).delta(), None);
    }

    #[test]
    fn versioned_records_and_markers_round_trip() {
        for record in versioned_records() {
            let bytes = frames(std::slice::from_ref(&record));
            assert_eq!(bytes[HEADER_BYTES], VERSION_2, "{record:?}");
            assert_eq!(decode(&bytes), Ok((record, bytes.len())));
        }
        let all = versioned_records();
        let bytes = frames(&all);
        let mut offset = 0;
        for expected in all {
            let decoded = decode(&bytes[offset..]);
            assert_eq!(decoded.as_ref().map(|(r, _)| r), Ok(&expected));
            offset += decoded.map_or(bytes.len(), |(_, len)| len);
        }
        assert_eq!(offset, bytes.len());
    }

    /// Format 1, byte for byte as unversioned stores have always written it: what they still
    /// write, and what every store still reads.
    #[test]
    fn version_1_records_are_unchanged() {
        let mut payload = vec![1];
        payload.extend_from_slice(&5u64.to_le_bytes());
        payload.push(3);
        payload.extend_from_slice(&2u16.to_le_bytes());
        payload.extend_from_slice(b"K5");
        let len = (payload.len() as u32).to_le_bytes();
        let mut frame = len.to_vec();
        frame.extend_from_slice(&checksum(&len, &payload).to_le_bytes());
        frame.extend_from_slice(&payload);

        let delete = Record::new(5, Op::Delete, "K5", None);
        assert_eq!(frames(std::slice::from_ref(&delete)), frame);
        assert_eq!(decode(&frame), Ok((delete, frame.len())));
        let upsert = decode(&frames(&[record(3, Op::Upsert)]));
        assert_eq!(upsert.map(|(r, _)| r.base), Ok(None));
    }

    #[test]
    fn malformed_records_are_refused() {
        let mut out = Vec::new();
        let marker_without_state = Record::new(1, Op::Settled, "K", None);
        assert!(encode(&marker_without_state, &mut out).is_err());
        let insert_without_item = Record::new(1, Op::Insert, "K", None);
        assert!(encode(&insert_without_item, &mut out).is_err());
        let delete_with_item = Record {
            op: Op::Delete,
            ..record(1, Op::Upsert)
        };
        assert!(encode(&delete_with_item, &mut out).is_err());
        let long_key = Record::new(1, Op::Delete, "k".repeat(70_000), None);
        assert!(encode(&long_key, &mut out).is_err());
        assert!(out.is_empty(), "a refused record leaves nothing behind");
        let apply_without_delta = Record {
            op: Op::Apply,
            ..record(1, Op::Upsert)
        };
        let bytes = frames(&[apply_without_delta]);
        assert!(matches!(decode(&bytes), Err(FrameError::Corrupt { .. })));

        // Payloads that frame correctly but say something impossible.
        let frame = |payload: &[u8]| {
            let len = (payload.len() as u32).to_le_bytes();
            let mut frame = len.to_vec();
            frame.extend_from_slice(&checksum(&len, payload).to_le_bytes());
            frame.extend_from_slice(payload);
            frame
        };
        let head = |version: u8, op: u8| {
            let mut payload = vec![version];
            payload.extend_from_slice(&1u64.to_le_bytes());
            payload.push(op);
            payload.extend_from_slice(&1u16.to_le_bytes());
            payload.push(b'K');
            payload
        };
        let v1_marker = head(1, 4);
        let v2_without_state = head(2, 3);
        let mut v2_bad_state = head(2, 3);
        v2_bad_state.push(2);
        let mut v2_short_version = head(2, 3);
        v2_short_version.extend_from_slice(&[1, 0, 0, 0]);
        let mut marker_with_item = head(2, 4);
        marker_with_item.extend_from_slice(&[0, 0, 0, 0, 0]);
        for payload in [
            v1_marker,
            v2_without_state,
            v2_bad_state,
            v2_short_version,
            marker_with_item,
        ] {
            assert!(
                matches!(decode(&frame(&payload)), Err(FrameError::Corrupt { .. })),
                "{payload:?}"
            );
        }
    }

    #[test]
    fn an_intact_record_of_a_later_format_is_newer_not_damage() {
        let payload = frames(&[record(1, Op::Upsert)])[HEADER_BYTES..].to_vec();
        let mut later_version = payload.clone();
        later_version[0] = 3;
        let mut later_op = payload;
        later_op[9] = 200;
        for payload in [later_version, later_op] {
            let len = (payload.len() as u32).to_le_bytes();
            let mut frame = len.to_vec();
            frame.extend_from_slice(&checksum(&len, &payload).to_le_bytes());
            frame.extend_from_slice(&payload);
            assert!(
                matches!(decode(&frame), Err(FrameError::Newer { .. })),
                "{payload:?}"
            );
        }
    }

    #[test]
    fn every_truncation_is_incomplete_or_corrupt() {
        let mut samples = vec![record(1, Op::Upsert)];
        samples.extend(versioned_records());
        for sample in samples {
            let bytes = frames(&[sample]);
            for cut in 0..bytes.len() {
                assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
            }
        }
    }

    #[test]
    fn every_bit_flip_is_caught() {
        let markers = [
            Record::settled(1, "K", TableState::Present(3)),
            Record::versioned(1, Op::Delete, "K", None, TableState::Absent),
        ];
        for sample in [record(1, Op::Upsert)].into_iter().chain(markers) {
            let bytes = frames(&[sample]);
            for i in 0..bytes.len() * 8 {
                let mut damaged = bytes.clone();
                damaged[i / 8] ^= 1 << (i % 8);
                assert!(decode(&damaged).is_err(), "flip of bit {i}");
            }
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
