//! Segment files: naming, creation, and scanning one segment's records.
//!
//! A segment is `MAGIC` followed by record frames. It is named after the sequence number of its
//! first record, zero-padded so that names sort in sequence order.
//!
//! Sequence numbers run without gaps through the journal: a segment named `n` holds mutations
//! `n`, `n + 1`, ... in order, and the next segment is named after the sequence that follows its
//! last mutation. Markers (a versioned store's) repeat older sequences and take none of their
//! own. Two kinds of segment hold no mutation: one created just before a crash and left empty
//! (recovery deletes it; the next segment takes its name), and one holding markers only, after
//! which recovery skips one number (see `recovery.rs`): the next segment is named `n + 1`.
//! Segments are deleted oldest first once their writes landed, so the oldest one left may start
//! anywhere. [`Continuity`] checks the rest: a sequence number missing between two segments or
//! inside one is [`Damage::Gap`].

use std::io;
use std::path::{Path, PathBuf};

use super::fs::{AppendFile, FileSystem};
use super::record::{self, FrameError, Record, HEADER_BYTES};

/// The first bytes of every segment.
pub(crate) const MAGIC: &[u8; 8] = b"QSJRNL01";

const EXTENSION: &str = "wal";

/// A segment's file name.
pub(crate) fn file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.{EXTENSION}")
}

/// The segments in `dir`, sorted by their first sequence number.
pub(crate) fn list(fs: &dyn FileSystem, dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut segments = Vec::new();
    for path in fs.list(dir)? {
        if path.extension().and_then(|e| e.to_str()) != Some(EXTENSION) {
            continue;
        }
        let first = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse::<u64>().ok());
        if let Some(first) = first {
            segments.push((first, path));
        }
    }
    segments.sort();
    Ok(segments)
}

/// Creates a new, empty segment with `reserve` bytes of disk space reserved for it, and makes
/// its existence durable. Returns how much is reserved: `None` where the file system reserves
/// nothing. On a disk without room for the reservation, removes the file again (durably) and
/// fails with [`io::ErrorKind::StorageFull`].
pub(crate) fn create(
    fs: &dyn FileSystem,
    dir: &Path,
    first_seq: u64,
    reserve: u64,
) -> io::Result<(Box<dyn AppendFile>, PathBuf, Option<u64>)> {
    let path = dir.join(file_name(first_seq));
    let mut file = fs.open_append(&path)?;
    let reserved = match file.reserve(reserve) {
        Ok(reserved) => reserved.then_some(reserve),
        Err(err) => {
            drop(file);
            // Gone for good before the caller writes on to the segment before this one, which
            // a segment left with this name would follow out of order.
            fs.remove(&path)?;
            fs.sync_dir(dir)?;
            return Err(err);
        }
    };
    file.write_all(MAGIC)?;
    file.sync_all()?;
    fs.sync_dir(dir)?;
    Ok((file, path, reserved))
}

/// Damage found in a journal segment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Damage {
    /// The segment ends in an incomplete or damaged record with nothing valid after it: the
    /// mark of a write cut short by a crash. Recovery accepts it in the newest segment.
    TornTail {
        /// Where the damaged record starts.
        offset: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A damaged record with valid records after it. Recovery refuses it unless asked to
    /// salvage.
    Corrupt {
        /// Where the damage starts.
        offset: usize,
        /// What is wrong.
        reason: String,
        /// Where valid records start again.
        resumed_at: usize,
    },
    /// Sequence numbers missing from the journal: the mutations of a segment deleted or lost
    /// between this segment and the one before it, or cut out of this one. Recovery refuses it
    /// unless asked to salvage.
    Gap {
        /// The first missing sequence number.
        first: u64,
        /// The last missing sequence number.
        last: u64,
        /// The segment before this one, when the numbers are missing between the two; `None`
        /// when they are missing inside this segment.
        previous: Option<PathBuf>,
    },
    /// An intact record (its checksum holds) of a format this version of quickstore does not
    /// read: a newer version wrote it. Recovery refuses it even when asked to salvage, and
    /// the segment is read no further: the records are kept for the version that wrote them.
    Newer {
        /// Where the record starts.
        offset: usize,
        /// What this version does not know: the record version or the operation.
        reason: String,
    },
    /// A mutation whose sequence number is not above the one before it: a segment named,
    /// copied or written out of place. Recovery refuses it unless asked to salvage.
    OutOfOrder {
        /// The sequence number found: of the segment's first mutation (or of the segment's
        /// name, when it holds none) after another segment, or of a mutation inside it.
        seq: u64,
        /// The sequence number expected there.
        expected: u64,
        /// The segment before this one, when the numbers go back between the two; `None`
        /// inside this segment.
        previous: Option<PathBuf>,
    },
}

impl Damage {
    /// True for a torn tail, false for corruption.
    pub fn is_torn_tail(&self) -> bool {
        matches!(self, Damage::TornTail { .. })
    }
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Damage::TornTail { offset, reason } => {
                write!(f, "torn record at byte {offset}: {reason}")
            }
            Damage::Corrupt {
                offset,
                reason,
                resumed_at,
            } => write!(
                f,
                "corrupt at byte {offset}: {reason} (readable again from byte {resumed_at})"
            ),
            Damage::Gap {
                first,
                last,
                previous,
            } => {
                if first == last {
                    write!(f, "sequence {first} is missing")?;
                } else {
                    write!(f, "sequences {first}-{last} are missing")?;
                }
                match previous {
                    Some(previous) => write!(
                        f,
                        " between {} (which ends at {}) and this segment",
                        display_name(previous),
                        first.saturating_sub(1)
                    ),
                    None => write!(f, " inside the segment"),
                }
            }
            Damage::Newer { offset, reason } => write!(
                f,
                "record at byte {offset} is of a later format than this version of quickstore \
                 reads ({reason})"
            ),
            Damage::OutOfOrder {
                seq,
                expected,
                previous,
            } => match previous {
                Some(previous) => write!(
                    f,
                    "starts at sequence {seq}, but {} ends at {}",
                    display_name(previous),
                    expected.saturating_sub(1)
                ),
                None => write!(
                    f,
                    "sequence {seq} follows {} inside the segment",
                    expected.saturating_sub(1)
                ),
            },
        }
    }
}

/// A segment's file name, for messages.
fn display_name(path: &Path) -> std::borrow::Cow<'_, str> {
    path.file_name()
        .map_or_else(|| path.to_string_lossy(), |name| name.to_string_lossy())
}

/// Checks that segments continue each other's sequence numbers; fed every segment in name
/// order, empty ones included. See the module docs for what is not a gap. Numbers missing where
/// a segment is damaged (corrupt, or cut short) are not reported again as a gap: that damage
/// is reported already, and may have taken them.
#[derive(Debug, Default)]
pub(crate) struct Continuity {
    /// The previous segment: the sequence the journal had reached at its end, its path, and
    /// whether it is damaged after its last mutation.
    previous: Option<(u64, PathBuf, bool)>,
}

impl Continuity {
    /// Checks the segment at `path`, named after `first_seq`, whose records `scan` read: the
    /// damage found between it and the segment before, and inside it.
    pub(crate) fn check(&mut self, first_seq: u64, path: &Path, scan: &Scan) -> Vec<Damage> {
        let mut damage = Vec::new();
        let mut mutations = scan
            .records
            .iter()
            .zip(&scan.offsets)
            .filter(|(r, _)| !r.op.is_marker())
            .peekable();
        if let Some((reached, previous, tail_damaged)) = self.previous.take() {
            let expected = reached.saturating_add(1);
            // A segment's first mutation is the one its name gives, unless damage says
            // otherwise below; one holding none is judged by its name.
            let (starts, at) = mutations
                .peek()
                .map_or((first_seq, usize::MAX), |(r, &at)| {
                    (r.seq.min(first_seq), at)
                });
            if starts > expected && !tail_damaged && !scan.damaged_within(0, at) {
                damage.push(Damage::Gap {
                    first: expected,
                    last: starts - 1,
                    previous: Some(previous),
                });
            } else if starts < expected {
                damage.push(Damage::OutOfOrder {
                    seq: starts,
                    expected,
                    previous: Some(previous),
                });
            }
        }
        let mut expected = first_seq;
        let mut last: Option<usize> = None;
        for (record, &at) in mutations {
            let from = last.unwrap_or(0);
            if record.seq > expected && !scan.damaged_within(from, at) {
                damage.push(Damage::Gap {
                    first: expected,
                    last: record.seq - 1,
                    previous: None,
                });
            } else if record.seq < expected && last.is_some() {
                damage.push(Damage::OutOfOrder {
                    seq: record.seq,
                    expected,
                    previous: None,
                });
            }
            expected = expected.max(record.seq.saturating_add(1));
            last = Some(at);
        }
        // Where the next segment must start: after the last mutation; after the name of a
        // segment of markers only (recovery skips that number); at the name of an empty one
        // (recovery deletes it, and the next takes its name).
        let reached = match last {
            Some(_) => expected - 1,
            None if scan.records.is_empty() => first_seq.saturating_sub(1),
            None => first_seq,
        };
        let tail_damaged = scan.damaged_within(last.unwrap_or(0), usize::MAX);
        self.previous = Some((reached, path.to_path_buf(), tail_damaged));
        damage
    }
}

/// The records of one segment and the damage found in it.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    pub records: Vec<Record>,
    /// Where each record starts.
    pub offsets: Vec<usize>,
    /// The length of the undamaged prefix.
    pub valid_len: usize,
    pub damage: Vec<Damage>,
}

impl Scan {
    /// True when damage starts in `from..to`: records there may have been lost to it.
    fn damaged_within(&self, from: usize, to: usize) -> bool {
        self.damage.iter().any(|damage| match damage {
            Damage::TornTail { offset, .. }
            | Damage::Corrupt { offset, .. }
            | Damage::Newer { offset, .. } => (from..to).contains(offset),
            Damage::Gap { .. } | Damage::OutOfOrder { .. } => false,
        })
    }
}

/// Reads every record of a segment's bytes. After damage, scanning resumes at the next offset
/// where a valid record starts; if there is none, the damage is a torn tail.
pub(crate) fn scan(bytes: &[u8]) -> Scan {
    let mut scan = Scan::default();
    if bytes.len() < MAGIC.len() {
        scan.damage.push(Damage::TornTail {
            offset: 0,
            reason: "the segment header is incomplete".into(),
        });
        return scan;
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        match next_valid(bytes, 0) {
            Some(resumed_at) => scan.damage.push(Damage::Corrupt {
                offset: 0,
                reason: "the segment header is damaged".into(),
                resumed_at,
            }),
            None => {
                scan.damage.push(Damage::TornTail {
                    offset: 0,
                    reason: "the segment header is damaged".into(),
                });
                return scan;
            }
        }
    }
    let mut offset = match scan.damage.first() {
        Some(Damage::Corrupt { resumed_at, .. }) => *resumed_at,
        _ => MAGIC.len(),
    };
    if scan.damage.is_empty() {
        scan.valid_len = offset;
    }
    while offset < bytes.len() {
        match record::decode(&bytes[offset..]) {
            Ok((record, len)) => {
                scan.records.push(record);
                scan.offsets.push(offset);
                offset += len;
                if scan.damage.is_empty() {
                    scan.valid_len = offset;
                }
            }
            Err(err) => {
                let reason = match err {
                    FrameError::Incomplete => "the record is incomplete".to_string(),
                    FrameError::Corrupt { reason, .. } => reason,
                    FrameError::Newer { reason } => {
                        scan.damage.push(Damage::Newer { offset, reason });
                        break;
                    }
                };
                match next_valid(bytes, offset + 1) {
                    Some(resumed_at) => {
                        scan.damage.push(Damage::Corrupt {
                            offset,
                            reason,
                            resumed_at,
                        });
                        offset = resumed_at;
                    }
                    None => {
                        scan.damage.push(Damage::TornTail { offset, reason });
                        break;
                    }
                }
            }
        }
    }
    scan
}

/// The first offset at or after `from` where a valid record starts.
fn next_valid(bytes: &[u8], from: usize) -> Option<usize> {
    (from..bytes.len().saturating_sub(HEADER_BYTES)).find(|&at| {
        // An intact record of a later format is where reading resumes too, to refuse it there.
        matches!(
            record::decode(&bytes[at..]),
            Ok(_) | Err(FrameError::Newer { .. })
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::record::Op;

    fn segment(n: u64) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        for seq in 1..=n {
            let record = Record::new(seq, Op::Delete, format!("K{seq}"), None);
            assert!(record::encode(&record, &mut bytes).is_ok());
        }
        bytes
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let mut bytes = segment(2);
            bytes.extend(tail);
            let scan = scan(&bytes);
            proptest::prop_assert!(scan.records.len() >= 2);
            proptest::prop_assert!(scan.valid_len <= bytes.len());
        }
    }

    /// Records of a later format after damaged bytes are found, not skipped with the damage:
    /// salvaging must not pass over them.
    #[test]
    fn a_later_format_after_damage_is_found() {
        let mut bytes = segment(2);
        bytes.extend_from_slice(&[0xAB; 40]);
        let mut later = Vec::new();
        assert!(record::encode(&Record::new(3, Op::Delete, "K3", None), &mut later).is_ok());
        later[HEADER_BYTES + 9] = 200; // an operation this version does not know
        let len = [later[0], later[1], later[2], later[3]];
        let crc = record::checksum(&len, &later[HEADER_BYTES..]);
        later[4..8].copy_from_slice(&crc.to_le_bytes());
        bytes.extend_from_slice(&later);
        bytes.extend_from_slice(&segment(4)[MAGIC.len()..]);
        let scan = scan(&bytes);
        assert!(
            matches!(
                scan.damage.as_slice(),
                [Damage::Corrupt { .. }, Damage::Newer { .. }]
            ),
            "{:?}",
            scan.damage
        );
    }

    /// The damage `Continuity` finds in segments given as (name, records), where a record is a
    /// mutation's sequence or, negated, a marker's.
    fn gaps(segments: &[(u64, &[i64])]) -> Vec<(u64, String)> {
        let mut continuity = Continuity::default();
        let mut found = Vec::new();
        for &(first_seq, records) in segments {
            let mut bytes = MAGIC.to_vec();
            for &r in records {
                let record = match u64::try_from(r) {
                    Ok(seq) => Record::new(seq, Op::Delete, "K", None),
                    Err(_) => Record::settled(r.unsigned_abs(), "K", record::TableState::Absent),
                };
                assert!(record::encode(&record, &mut bytes).is_ok());
            }
            let path = PathBuf::from(file_name(first_seq));
            for damage in continuity.check(first_seq, &path, &scan(&bytes)) {
                found.push((first_seq, damage.to_string()));
            }
        }
        found
    }

    #[test]
    fn sequences_continue_across_segments() {
        /// Segments by name with their records, and the damage expected: (segment, text).
        type Case<'a> = (&'a str, &'a [(u64, &'a [i64])], &'a [(u64, &'a str)]);
        let cases: &[Case<'_>] = &[
            ("one segment", &[(1, &[1, 2, 3])], &[]),
            (
                "the oldest segment may start anywhere (older ones were released)",
                &[(40, &[40, 41]), (42, &[42])],
                &[],
            ),
            (
                "an empty segment, created just before a crash",
                &[(1, &[1, 2]), (3, &[])],
                &[],
            ),
            (
                "a segment of markers only: the next one skips its name",
                &[(1, &[1, 2]), (3, &[-1, -2]), (4, &[-2, 4, 5])],
                &[],
            ),
            (
                "segments of markers only, one after another",
                &[(1, &[1]), (2, &[-1]), (3, &[-1]), (4, &[])],
                &[],
            ),
            (
                "markers repeat older sequences among the mutations",
                &[(1, &[1, 2, -1, 3, -2]), (4, &[-3, 4])],
                &[],
            ),
            (
                "a deleted middle segment",
                &[(1, &[1, 2, 3]), (6, &[6])],
                &[(
                    6,
                    "sequences 4-5 are missing between 00000000000000000001.wal (which ends \
                     at 3) and this segment",
                )],
            ),
            (
                "one number missing after a segment of markers only",
                &[(1, &[1]), (2, &[-1]), (4, &[4])],
                &[(
                    4,
                    "sequence 3 is missing between 00000000000000000002.wal (which ends at 2) \
                     and this segment",
                )],
            ),
            (
                "a deleted segment before an empty one",
                &[(1, &[1, 2]), (6, &[])],
                &[(
                    6,
                    "sequences 3-5 are missing between 00000000000000000001.wal (which ends \
                     at 2) and this segment",
                )],
            ),
            (
                "records cut out of a segment",
                &[(1, &[1, 2, 5, 6])],
                &[(1, "sequences 3-4 are missing inside the segment")],
            ),
            (
                "records cut from the start of a segment",
                &[(1, &[1, 2]), (3, &[5, 6])],
                &[(3, "sequences 3-4 are missing inside the segment")],
            ),
            (
                "a segment that goes back",
                &[(1, &[1, 2, 3]), (3, &[3, 4])],
                &[(
                    3,
                    "starts at sequence 3, but 00000000000000000001.wal ends at 3",
                )],
            ),
            (
                "a record that goes back",
                &[(1, &[1, 2, 2, 3])],
                &[(1, "sequence 2 follows 2 inside the segment")],
            ),
        ];
        for (case, segments, expected) in cases {
            let expected: Vec<(u64, String)> = expected
                .iter()
                .map(|(first, text)| (*first, (*text).to_owned()))
                .collect();
            assert_eq!(gaps(segments), expected, "{case}");
        }
        assert!(gaps(&[]).is_empty());
    }

    #[test]
    fn numbers_lost_to_damage_are_not_reported_again_as_gaps() {
        let whole = segment(3);
        let second = MAGIC.len() + (whole.len() - MAGIC.len()) / 3 + 10;
        let mut corrupt = whole.clone();
        corrupt[second] ^= 0x40;
        let mut continuity = Continuity::default();
        let found = continuity.check(1, Path::new("a"), &scan(&corrupt));
        assert!(found.is_empty(), "{found:?}");

        // An older segment cut short: the next one starting later is no gap of its own.
        let mut next = MAGIC.to_vec();
        for seq in 4..6 {
            let record = Record::new(seq, Op::Delete, format!("K{seq}"), None);
            assert!(record::encode(&record, &mut next).is_ok());
        }
        let mut continuity = Continuity::default();
        let cut = scan(&whole[..whole.len() - 3]);
        assert_eq!(cut.records.len(), 2);
        assert!(continuity.check(1, Path::new("a"), &cut).is_empty());
        let found = continuity.check(4, Path::new("b"), &scan(&next));
        assert!(found.is_empty(), "{found:?}");

        // Without the damage, the same numbers missing are a gap.
        let mut continuity = Continuity::default();
        let mut short = MAGIC.to_vec();
        for seq in 1..3 {
            let record = Record::new(seq, Op::Delete, format!("K{seq}"), None);
            assert!(record::encode(&record, &mut short).is_ok());
        }
        assert!(continuity
            .check(1, Path::new("a"), &scan(&short))
            .is_empty());
        let found = continuity.check(4, Path::new("b"), &scan(&next));
        assert_eq!(
            found,
            vec![Damage::Gap {
                first: 3,
                last: 3,
                previous: Some(PathBuf::from("a")),
            }]
        );
    }

    #[test]
    fn a_clean_segment_reads_whole() {
        let bytes = segment(5);
        let scan = scan(&bytes);
        assert_eq!(scan.records.len(), 5);
        assert_eq!(scan.valid_len, bytes.len());
        assert!(scan.damage.is_empty());
    }

    #[test]
    fn any_truncation_is_a_torn_tail_keeping_the_valid_prefix() {
        let bytes = segment(3);
        for cut in MAGIC.len()..bytes.len() {
            let scan = scan(&bytes[..cut]);
            assert!(scan.valid_len <= cut);
            let whole = scan.records.len();
            assert!(
                matches!(scan.damage.as_slice(), [] | [Damage::TornTail { .. }]),
                "cut {cut}"
            );
            assert_eq!(
                scan.damage.is_empty(),
                cut == scan.valid_len,
                "cut {cut}: {whole}"
            );
        }
    }

    #[test]
    fn damage_in_the_middle_is_corruption_with_the_rest_recoverable() {
        let mut bytes = segment(3);
        let second = MAGIC.len() + (bytes.len() - MAGIC.len()) / 3 + 10;
        bytes[second] ^= 0x40;
        let scan = scan(&bytes);
        assert!(
            matches!(scan.damage.as_slice(), [Damage::Corrupt { .. }]),
            "{:?}",
            scan.damage
        );
        assert_eq!(
            scan.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
            vec![1, 3]
        );
    }
}
