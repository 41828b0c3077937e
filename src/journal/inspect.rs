//! Reading a journal directory without opening a store: for `quickstore journal inspect` and
//! for operators.

use std::path::{Path, PathBuf};

use super::fs::{FileSystem, StdFs};
use super::segment::{self, Continuity, Damage as JournalDamage};
use super::{DeadLetter, DEAD_LETTERS};
use crate::error::{Error, Result};
use crate::item::Item;

/// One segment as found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentSummary {
    /// The segment file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Mutation records read from it.
    pub records: u64,
    /// Settled markers read from it: a versioned store's notes that the writes of some key's
    /// mutations are done with.
    pub markers: u64,
    /// Whether it holds records of a versioned store (format 2): mutations that carry the
    /// version their write is conditional on, and markers.
    pub versioned: bool,
    /// The lowest and highest sequence numbers of its mutations, if it holds any. Markers are
    /// left out: they repeat the sequence of an older mutation.
    pub seq_range: Option<(u64, u64)>,
    /// Damage found: torn tails, corruption, and gaps in the sequence numbers (between this
    /// segment and the one before it, or inside it).
    pub damage: Vec<JournalDamage>,
}

/// A write the backend refused for good, or a versioned write that lost to another writer
/// (its `reason` starts with `conflict:`), as recorded in the dead-letter file.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DeadLetterSummary {
    /// The sequence number of the refused state.
    pub seq: u64,
    /// The rendered key.
    pub key: String,
    /// `put` or `delete`.
    pub write: String,
    /// The backend's reason, or `conflict: another writer changed the item first`.
    pub reason: String,
    /// For a `put`, the item with its partition key attribute: for a refused write, as it was
    /// to be stored; for a conflict, this store's state that was dropped, without version
    /// attributes. `None` for a `delete`.
    pub item: Option<Item>,
}

/// What a journal directory holds.
///
/// [`JournalSummary::opens_strictly`] tells whether a store would open it without salvage.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct JournalSummary {
    /// Segments, oldest first.
    pub segments: Vec<SegmentSummary>,
    /// Refused writes, oldest first.
    pub dead_letters: Vec<DeadLetterSummary>,
}

impl JournalSummary {
    /// True when some segment holds records of a versioned store: replaying them without
    /// versioned mode would write them unconditionally.
    pub fn versioned(&self) -> bool {
        self.segments.iter().any(|s| s.versioned)
    }

    /// True when recovery accepts the journal as it is: no damage (no corruption, no gap in
    /// the sequence numbers), or only a torn tail at the end of the newest segment.
    pub fn opens_strictly(&self) -> bool {
        let newest = self.segments.len().saturating_sub(1);
        self.segments
            .iter()
            .enumerate()
            .all(|(index, segment)| match segment.damage.as_slice() {
                [] => true,
                [only] => index == newest && only.is_torn_tail(),
                _ => false,
            })
    }
}

/// Reads every segment and the dead-letter file of a journal directory, without locking it or
/// changing anything.
///
/// Besides damage inside segments, this finds gaps in the sequence numbers, as recovery does: a
/// segment deleted from the middle of the journal shows as [`JournalDamage::Gap`] on the
/// segment after it.
///
/// # Errors
///
/// [`Error::Journal`](crate::Error::Journal) when the directory or a file in it cannot be read.
/// Damage is not an error: it is reported in the summary.
pub fn inspect_journal(dir: impl AsRef<Path>) -> Result<JournalSummary> {
    inspect(&StdFs, dir.as_ref())
}

/// [`inspect_journal`], reaching files through `fs`.
pub(crate) fn inspect(fs: &dyn FileSystem, dir: &Path) -> Result<JournalSummary> {
    let listed = segment::list(fs, dir)
        .map_err(|e| Error::journal(format!("cannot list {}", dir.display()), e))?;
    let mut summary = JournalSummary::default();
    let mut continuity = Continuity::default();
    for (first_seq, path) in listed {
        let bytes = fs
            .read(&path)
            .map_err(|e| Error::journal(format!("cannot read {}", path.display()), e))?;
        let mut scan = segment::scan(&bytes);
        let gaps = continuity.check(first_seq, &path, &scan);
        scan.damage.extend(gaps);
        let mutations = scan.records.iter().filter(|r| !r.op.is_marker());
        let seqs = mutations.clone().map(|r| r.seq);
        let seq_range = seqs.clone().min().zip(seqs.max());
        let records = mutations.count() as u64;
        summary.segments.push(SegmentSummary {
            path,
            bytes: bytes.len() as u64,
            records,
            markers: scan.records.len() as u64 - records,
            versioned: scan.records.iter().any(|r| r.base.is_some()),
            seq_range,
            damage: scan.damage,
        });
    }
    let letters = dir.join(DEAD_LETTERS);
    match fs.read(&letters) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let torn = !text.is_empty() && !text.ends_with('\n');
            let lines: Vec<&str> = text.lines().collect();
            for (index, line) in lines.iter().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let letter: DeadLetter = match serde_json::from_str(line) {
                    Ok(letter) => letter,
                    // A last line without its newline that does not parse was torn by a crash
                    // before it was synced, and so never acknowledged; the journal cuts it off
                    // when it next writes a letter.
                    Err(_) if torn && index + 1 == lines.len() => break,
                    Err(e) => {
                        return Err(Error::journal(
                            format!("cannot read {}", letters.display()),
                            e,
                        ))
                    }
                };
                let item = letter.decoded_item().map_err(|reason| Error::Journal {
                    message: format!(
                        "cannot read the item of the letter of {} in {}: {reason}",
                        letter.key,
                        letters.display()
                    ),
                    source: None,
                })?;
                summary.dead_letters.push(DeadLetterSummary {
                    seq: letter.seq,
                    key: letter.key,
                    write: letter.write,
                    reason: letter.reason,
                    item,
                });
            }
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => {
            return Err(Error::journal(
                format!("cannot read {}", letters.display()),
                err,
            ))
        }
    }
    Ok(summary)
}
