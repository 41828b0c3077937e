//! Segment files: naming, creation, and scanning one segment's records.
//!
//! A segment is `MAGIC` followed by record frames. It is named after the sequence number of its
//! first record, zero-padded so that names sort in sequence order.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use super::record::{self, FrameError, Record, HEADER_BYTES};

/// The first bytes of every segment.
pub(crate) const MAGIC: &[u8; 8] = b"QSJRNL01";

const EXTENSION: &str = "wal";

/// A segment's file name.
pub(crate) fn file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.{EXTENSION}")
}

/// The segments in `dir`, sorted by their first sequence number.
pub(crate) fn list(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
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

/// Opens a file for appending, creating it readable and writable by its owner only.
pub(crate) fn open_append(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Creates a new, empty segment and makes its existence durable.
pub(crate) fn create(dir: &Path, first_seq: u64) -> io::Result<(File, PathBuf)> {
    let path = dir.join(file_name(first_seq));
    let mut file = open_append(&path)?;
    file.write_all(MAGIC)?;
    file.sync_all()?;
    sync_dir(dir)?;
    Ok((file, path))
}

/// Makes creations and deletions in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    Ok(())
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
        }
    }
}

/// The records of one segment and the damage found in it.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    pub records: Vec<Record>,
    /// The length of the undamaged prefix.
    pub valid_len: usize,
    pub damage: Vec<Damage>,
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
                offset += len;
                if scan.damage.is_empty() {
                    scan.valid_len = offset;
                }
            }
            Err(err) => {
                let reason = match err {
                    FrameError::Incomplete => "the record is incomplete".to_string(),
                    FrameError::Corrupt { reason, .. } => reason,
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
    (from..bytes.len().saturating_sub(HEADER_BYTES))
        .find(|&at| record::decode(&bytes[at..]).is_ok())
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
