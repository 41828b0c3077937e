//! Recovery: read every segment at open, keep the valid records, and decide what damage means.
//!
//! A torn tail at the end of the newest segment is what a crash mid-write leaves: the valid
//! prefix is kept and the segment is truncated to it. Damage anywhere else is corruption: the
//! journal refuses to open unless the store asked to salvage, in which case every readable
//! record is kept and the damage is reported.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::path::Path;

use super::record::Record;
use super::segment;
use super::writer::SegmentInfo;
use super::Recovery;
use crate::error::{Error, Result};

/// What recovery found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Segments read.
    pub segments: usize,
    /// Records read.
    pub records: u64,
    /// Keys whose newest recovered state was re-applied.
    pub keys: usize,
    /// The torn tail dropped from the newest segment, if any: where and why.
    pub torn_tail: Option<String>,
    /// Damage skipped because salvage was asked for.
    pub salvaged: Vec<String>,
}

/// The outcome of recovery.
pub(crate) struct Recovered {
    /// The newest record of each key, in sequence order.
    pub records: Vec<Record>,
    /// The highest sequence seen.
    pub max_seq: u64,
    /// Segments kept, oldest first.
    pub segments: Vec<SegmentInfo>,
    pub report: RecoveryReport,
}

pub(crate) fn recover(dir: &Path, mode: Recovery) -> Result<Recovered> {
    let listed = segment::list(dir).map_err(|e| Error::journal("cannot list the journal", e))?;
    let count = listed.len();
    let mut report = RecoveryReport {
        segments: count,
        ..RecoveryReport::default()
    };
    let mut newest: HashMap<String, Record> = HashMap::new();
    let mut max_seq = 0;
    let mut segments = Vec::with_capacity(count);
    for (index, (first_seq, path)) in listed.into_iter().enumerate() {
        let bytes = std::fs::read(&path)
            .map_err(|e| Error::journal(format!("cannot read {}", path.display()), e))?;
        let scan = segment::scan(&bytes);
        let is_newest = index + 1 == count;
        for damage in &scan.damage {
            let what = format!("{}: {damage}", path.display());
            let torn_tail = is_newest && damage.is_torn_tail();
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
            truncate(&path, scan.valid_len)?;
            scan.valid_len
        } else {
            bytes.len()
        };
        let mut last_seq = 0;
        for record in scan.records {
            report.records += 1;
            last_seq = last_seq.max(record.seq);
            match newest.get(&record.key) {
                Some(existing) if existing.seq > record.seq => {}
                _ => {
                    newest.insert(record.key.clone(), record);
                }
            }
        }
        max_seq = max_seq.max(last_seq).max(first_seq.saturating_sub(1));
        if last_seq == 0 {
            // Nothing in it: a segment created just before a crash. New records go elsewhere.
            std::fs::remove_file(&path)
                .map_err(|e| Error::journal(format!("cannot remove {}", path.display()), e))?;
            continue;
        }
        segments.push(SegmentInfo {
            path,
            last_seq,
            bytes: kept_bytes as u64,
        });
    }
    let mut records: Vec<Record> = newest.into_values().collect();
    records.sort_by_key(|r| r.seq);
    report.keys = records.len();
    Ok(Recovered {
        records,
        max_seq,
        segments,
        report,
    })
}

/// Cuts a torn tail off, so that the segment reads clean next time.
fn truncate(path: &Path, valid_len: usize) -> Result<()> {
    let file = OpenOptions::new().write(true).open(path).and_then(|file| {
        file.set_len(valid_len as u64)?;
        file.sync_all()
    });
    file.map_err(|e| Error::journal(format!("cannot truncate {}", path.display()), e))
}
