//! Recovery: read every segment at open, keep the valid records, and decide what damage means.
//!
//! A torn tail at the end of the newest segment is what a crash mid-write leaves: the valid
//! prefix is kept and the segment is truncated to it. Damage anywhere else is corruption, and so
//! is a gap in the sequence numbers (a segment deleted or lost from the middle of the journal,
//! records cut out of one: see [`Continuity`]): the journal refuses to open unless the store
//! asked to salvage, in which case every readable record is kept and the damage is reported.
//!
//! Each key's records are folded in file order into what is left to write: the newest full
//! mutation and the deltas after it, and (for a versioned store) the base their writes are
//! conditional on. See [`Fold`].

use std::collections::HashMap;
use std::path::Path;

use super::fs::FileSystem;
use super::record::{Op, Record, TableState};
use super::segment::{self, Continuity, Damage};
use super::writer::SegmentInfo;
use super::Recovery;
use crate::error::{Error, Result};

/// What recovery found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Segments read.
    pub segments: usize,
    /// Mutation records read.
    pub records: u64,
    /// Settled markers read (versioned stores only): each tells that a key's mutations up to
    /// some sequence need no writing any more.
    pub markers: u64,
    /// Keys whose newest recovered state was re-applied (keys a marker settled are not).
    pub keys: usize,
    /// The torn tail dropped from the newest segment, if any: where and why.
    pub torn_tail: Option<String>,
    /// Damage skipped because salvage was asked for: corruption, and gaps in the sequence
    /// numbers (mutations lost with a segment deleted from the middle of the journal).
    pub salvaged: Vec<String>,
}

/// What is left to write of one key after recovery (see [`Fold`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pending {
    /// The newest full mutation not settled, if any.
    pub full: Option<Record>,
    /// The deltas journaled after it (after the key's last settled state, without one), in
    /// order. Whether they landed before the crash is for the table to say: each delta's
    /// write carries its mark.
    pub deltas: Vec<Record>,
    /// What the pending mutations build on; `None` when no record said (format 1).
    pub base: Option<TableState>,
}

impl Pending {
    /// The key.
    pub(crate) fn key(&self) -> &str {
        self.records()
            .next()
            .map_or("", |record| record.key.as_str())
    }

    /// The oldest pending mutation's sequence.
    pub(crate) fn first_seq(&self) -> u64 {
        self.records().next().map_or(0, |record| record.seq)
    }

    /// The newest pending mutation's sequence.
    pub(crate) fn last_seq(&self) -> u64 {
        self.records().last().map_or(0, |record| record.seq)
    }

    fn records(&self) -> impl Iterator<Item = &Record> {
        self.full.iter().chain(&self.deltas)
    }

    fn is_empty(&self) -> bool {
        self.full.is_none() && self.deltas.is_empty()
    }
}

/// The outcome of recovery.
pub(crate) struct Recovered {
    /// What is left to write of each key, in the order of its oldest pending mutation.
    pub pending: Vec<Pending>,
    /// The highest sequence seen.
    pub max_seq: u64,
    /// Segments kept, oldest first.
    pub segments: Vec<SegmentInfo>,
    pub report: RecoveryReport,
}

pub(crate) fn recover(fs: &dyn FileSystem, dir: &Path, mode: Recovery) -> Result<Recovered> {
    let listed =
        segment::list(fs, dir).map_err(|e| Error::journal("cannot list the journal", e))?;
    let count = listed.len();
    let mut report = RecoveryReport {
        segments: count,
        ..RecoveryReport::default()
    };
    let mut fold = Fold::default();
    let mut max_seq = 0;
    let mut segments = Vec::with_capacity(count);
    let mut continuity = Continuity::default();
    for (index, (first_seq, path)) in listed.into_iter().enumerate() {
        let bytes = fs
            .read(&path)
            .map_err(|e| Error::journal(format!("cannot read {}", path.display()), e))?;
        let scan = segment::scan(&bytes);
        let is_newest = index + 1 == count;
        let gaps = continuity.check(first_seq, &path, &scan);
        for damage in scan.damage.iter().chain(&gaps) {
            let what = format!("{}: {damage}", path.display());
            let torn_tail = is_newest && damage.is_torn_tail();
            if matches!(damage, Damage::Newer { .. }) {
                // Records of a later format are not damage: salvaging around them, or
                // truncating them as a torn tail, would lose the mutations they hold.
                return Err(Error::Journal {
                    message: format!(
                        "{what}; refusing to open: open this journal with the version of \
                         quickstore that wrote it, or a later one"
                    ),
                    source: None,
                });
            }
            if torn_tail {
                tracing::warn!("{what}; recovering the records before it");
                report.torn_tail = Some(what);
            } else if mode == Recovery::Salvage {
                tracing::error!("{what}; salvaging the readable records");
                report.salvaged.push(what);
            } else {
                return Err(Error::Journal {
                    message: format!(
                        "{what}; refusing to open (the store can be asked to salvage)"
                    ),
                    source: None,
                });
            }
        }
        let kept_bytes = if is_newest && matches!(scan.damage.as_slice(), [d] if d.is_torn_tail()) {
            fs.truncate(&path, scan.valid_len as u64)
                .map_err(|e| Error::journal(format!("cannot truncate {}", path.display()), e))?;
            scan.valid_len
        } else {
            bytes.len()
        };
        // The highest sequence of any record, markers included: see `SegmentInfo::last_seq`.
        let mut last_seq = 0;
        for record in scan.records {
            if record.op.is_marker() {
                report.markers += 1;
            } else {
                report.records += 1;
            }
            last_seq = last_seq.max(record.seq);
            fold.add(record);
        }
        max_seq = max_seq.max(last_seq).max(first_seq.saturating_sub(1));
        if last_seq == 0 {
            // Nothing in it: a segment created just before a crash. New records go elsewhere.
            fs.remove(&path)
                .map_err(|e| Error::journal(format!("cannot remove {}", path.display()), e))?;
            continue;
        }
        if is_newest && kept_bytes == bytes.len() {
            // What a crashed process wrote last may be in the operating system's cache only.
            // Once the next segment exists, a power loss tearing this one would be damage
            // in the middle of the journal, so it is made durable first.
            fs.sync_file(&path)
                .map_err(|e| Error::journal(format!("cannot sync {}", path.display()), e))?;
        }
        // The next segment must sort after this one. A segment named after its first mutation
        // holds sequences from its name on; one holding markers only may not, and then the
        // sequence skips a number.
        max_seq = max_seq.max(first_seq);
        segments.push(SegmentInfo {
            path,
            last_seq,
            bytes: kept_bytes as u64,
        });
    }
    let pending = fold.pending();
    report.keys = pending.len();
    Ok(Recovered {
        pending,
        max_seq,
        segments,
        report,
    })
}

/// Each key's records, folded in file order (not sequence order: a marker is appended once its
/// write is settled, after mutations of the key that came meanwhile, with the older sequence of
/// the state it settles).
///
/// - A full mutation becomes the key's pending state, and deltas before it are dropped: it
///   replaces them. A delta is added after what is pending. If the key had nothing pending
///   (first seen, or settled by a marker), the mutation's base becomes the key's base: it
///   started a new episode. Otherwise the key keeps its base: the mutation joined the pending
///   episode, and its own base may predate a write that landed meanwhile.
/// - A marker sets the key's base to the state it left in the table, and settles the key's
///   mutations up to its sequence: what is older is not pending any more.
///
/// A key whose last marker was lost in a crash keeps the base from before that write: its
/// recovered write then fails its condition and is reported as a conflict.
#[derive(Debug, Default)]
pub(crate) struct Fold {
    keys: HashMap<String, Pending>,
}

impl Fold {
    pub(crate) fn add(&mut self, record: Record) {
        let folded = self.keys.entry(record.key.clone()).or_insert(Pending {
            full: None,
            deltas: Vec::new(),
            base: None,
        });
        if record.op.is_marker() {
            let settled = record.seq;
            if folded.full.as_ref().is_some_and(|full| full.seq <= settled) {
                folded.full = None;
            }
            folded.deltas.retain(|delta| delta.seq > settled);
            folded.base = record.base;
            return;
        }
        if folded.is_empty() {
            folded.base = record.base.clone();
        } else if folded.last_seq() > record.seq {
            // Not expected (mutation sequences increase through the journal), but an older
            // state never replaces a newer one.
            return;
        }
        if record.op == Op::Apply {
            folded.deltas.push(record);
        } else {
            folded.deltas.clear();
            folded.full = Some(record);
        }
    }

    /// What is left of each key, with the key's base, in the order of its oldest pending
    /// mutation.
    pub(crate) fn pending(self) -> Vec<Pending> {
        let mut pending: Vec<Pending> = self
            .keys
            .into_values()
            .filter(|folded| !folded.is_empty())
            .collect();
        pending.sort_by_key(Pending::first_seq);
        pending
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::item::Item;
    use crate::journal::Op;
    use TableState::{Absent, Present};

    fn put(seq: u64, base: TableState) -> Record {
        Record::versioned(seq, Op::Upsert, "K", Some(Arc::new(Item::new())), base)
    }

    fn delete(seq: u64, base: TableState) -> Record {
        Record::versioned(seq, Op::Delete, "K", None, base)
    }

    fn settled(seq: u64, table: TableState) -> Record {
        Record::settled(seq, "K", table)
    }

    /// What is left to write of a key: its newest mutation's sequence, and its base.
    type Left = Option<(u64, Option<TableState>)>;

    /// Folds `records` of key `K`; returns what is left to write.
    fn folded(records: &[Record]) -> Left {
        let mut fold = Fold::default();
        for record in records {
            fold.add(record.clone());
        }
        let pending = fold.pending();
        assert!(pending.len() <= 1);
        pending.first().map(|p| (p.last_seq(), p.base.clone()))
    }

    #[test]
    fn records_fold_in_file_order() {
        let cases: &[(&str, Vec<Record>, Left)] = &[
            (
                "no marker: the newest mutation, on the base its episode started from",
                vec![put(1, Present(3)), put(2, Present(3))],
                Some((2, Some(Present(3)))),
            ),
            (
                "a marker of the newest mutation settles the key",
                vec![
                    put(1, Present(3)),
                    put(2, Present(3)),
                    settled(2, Present(4)),
                ],
                None,
            ),
            (
                "a marker after a later mutation leaves it pending, on the landed version",
                vec![
                    put(1, Present(3)),
                    put(2, Present(3)),
                    settled(1, Present(4)),
                ],
                Some((2, Some(Present(4)))),
            ),
            (
                "a mutation after the marker keeps the landed version",
                vec![
                    put(1, Present(3)),
                    put(2, Present(3)),
                    settled(1, Present(4)),
                    put(3, Present(4)),
                ],
                Some((3, Some(Present(4)))),
            ),
            (
                "two writes landed in turn: the second marker settles the key",
                vec![
                    put(1, Absent),
                    put(2, Absent),
                    settled(1, Present(1)),
                    settled(2, Present(2)),
                ],
                None,
            ),
            (
                "settled, then dirty again: the new episode's base counts",
                vec![
                    put(1, Present(3)),
                    settled(1, Present(4)),
                    put(5, Present(9)),
                ],
                Some((5, Some(Present(9)))),
            ),
            (
                "a lost race settles every pending mutation; the next builds on the winner",
                vec![
                    put(1, Present(3)),
                    put(2, Present(3)),
                    settled(2, Present(7)),
                    put(3, Present(7)),
                ],
                Some((3, Some(Present(7)))),
            ),
            (
                "a landed delete leaves the key absent",
                vec![delete(1, Present(3)), settled(1, Absent), put(2, Absent)],
                Some((2, Some(Absent))),
            ),
            (
                "a lost marker leaves the base from before the write",
                vec![put(1, Present(3)), put(2, Present(3))],
                Some((2, Some(Present(3)))),
            ),
            (
                "a marker whose mutations were released settles nothing",
                vec![settled(4, Present(2))],
                None,
            ),
            (
                "a marker whose mutations were released gives no base to a new episode",
                vec![settled(4, Present(2)), put(6, Present(5))],
                Some((6, Some(Present(5)))),
            ),
            (
                "format 1 records carry no base",
                vec![
                    Record::new(1, Op::Upsert, "K", Some(Arc::new(Item::new()))),
                    Record::new(2, Op::Delete, "K", None),
                ],
                Some((2, None)),
            ),
        ];
        for (case, records, expected) in cases {
            assert_eq!(folded(records), *expected, "{case}");
        }
    }

    #[test]
    fn keys_fold_apart_and_come_out_in_sequence_order() {
        let mut fold = Fold::default();
        let record = |seq, key: &str| Record::versioned(seq, Op::Delete, key, None, Present(1));
        for r in [
            record(1, "B"),
            record(2, "A"),
            record(3, "C"),
            Record::settled(1, "B", Absent),
            Record::settled(2, "C", Absent),
        ] {
            fold.add(r);
        }
        let pending: Vec<(u64, String, Option<TableState>)> = fold
            .pending()
            .into_iter()
            .map(|p| (p.last_seq(), p.key().to_owned(), p.base))
            .collect();
        assert_eq!(
            pending,
            vec![
                (2, "A".to_string(), Some(Present(1))),
                (3, "C".to_string(), Some(Absent)),
            ]
        );
    }

    #[test]
    fn deltas_fold_after_the_newest_full_mutation() {
        let apply = |seq| {
            let delta = crate::delta::Delta::new().add("n", 1);
            Record::versioned(seq, Op::Apply, "K", Some(Arc::new(delta.to_item())), Absent)
        };
        let seqs = |records: &[Record]| {
            let mut fold = Fold::default();
            for record in records {
                fold.add(record.clone());
            }
            fold.pending().first().map(|p| {
                let full = p.full.as_ref().map(|r| r.seq);
                (full, p.deltas.iter().map(|r| r.seq).collect::<Vec<_>>())
            })
        };
        // What is left: the full mutation's sequence, and the deltas'.
        type Left = Option<(Option<u64>, Vec<u64>)>;
        let cases: &[(&str, Vec<Record>, Left)] = &[
            (
                "deltas alone are all pending, in order",
                vec![apply(1), apply(2), apply(3)],
                Some((None, vec![1, 2, 3])),
            ),
            (
                "a full mutation replaces the deltas before it",
                vec![apply(1), put(2, Absent), apply(3)],
                Some((Some(2), vec![3])),
            ),
            (
                "a marker settles the deltas up to it",
                vec![apply(1), apply(2), settled(1, Present(1)), apply(3)],
                Some((None, vec![2, 3])),
            ),
            (
                "a marker past a full mutation leaves the deltas after it",
                vec![put(1, Absent), apply(2), settled(1, Present(1))],
                Some((None, vec![2])),
            ),
            (
                "a marker of the newest settles everything",
                vec![put(1, Absent), apply(2), settled(2, Present(2))],
                None,
            ),
        ];
        for (case, records, expected) in cases {
            assert_eq!(seqs(records), *expected, "{case}");
        }
    }
}
