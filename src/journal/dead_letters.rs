//! The dead-letter file, `dead-letters.jsonl`: the writes the backend refused for good (and, in
//! versioned mode, those that lost to another writer), one JSON object a line with the reason,
//! so that nothing acknowledged is dropped without a trace, even across restarts.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use base64::Engine as _;
use parking_lot::Mutex;

use super::fs::{AppendFile, FileSystem};
use crate::backend::Write;
use crate::error::{Error, Result};
use crate::item::Item;

/// The file that records refused writes, one JSON object a line.
pub const DEAD_LETTERS: &str = "dead-letters.jsonl";

/// A write the backend refused for good, or a versioned write that lost to another writer, as
/// kept in the dead-letter file. `item` is the item with its partition key attribute, in the
/// codec encoding, base64: for a refused write, the item as it was to be stored; for a
/// conflict, this store's state that was dropped, without version attributes.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct DeadLetter {
    pub seq: u64,
    pub key: String,
    pub write: String,
    pub reason: String,
    pub item: Option<String>,
}

impl DeadLetter {
    /// The letter's item, decoded from what [`DeadLetters::append`] wrote; `None` for a delete.
    pub(super) fn decoded_item(&self) -> std::result::Result<Option<Item>, String> {
        let Some(text) = &self.item else {
            return Ok(None);
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| e.to_string())?;
        crate::codec::decode(&bytes)
            .map(Some)
            .map_err(|e| e.to_string())
    }
}

/// A journal directory's dead-letter file, opened for appending on the first letter.
pub(super) struct DeadLetters {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    file: Mutex<Option<Box<dyn AppendFile>>>,
    /// Letters in the file, those of earlier runs included.
    count: AtomicU64,
}

impl DeadLetters {
    /// The dead-letter file of the journal in `dir`, counting the letters it holds.
    pub(super) fn open(fs: Arc<dyn FileSystem>, dir: &Path) -> Self {
        let count = count_lines(&*fs, &dir.join(DEAD_LETTERS));
        Self {
            fs,
            dir: dir.to_path_buf(),
            file: Mutex::new(None),
            count: AtomicU64::new(count),
        }
    }

    /// Appends the letter of `write` (mutation `seq` of `key`) with its reason, and syncs it
    /// (and, the first time, the directory, which may have just got the file).
    pub(super) fn append(&self, seq: u64, key: &str, write: &Write, reason: &str) -> Result<()> {
        let (kind, item) = match write {
            Write::Put(item) => ("put", Some(item)),
            Write::Delete(_) => ("delete", None),
        };
        let item = match item {
            Some(item) => {
                let mut bytes = Vec::new();
                crate::codec::encode(item, &mut bytes).map_err(|e| {
                    Error::journal(format!("cannot encode the dead letter of `{key}`"), e)
                })?;
                Some(base64::engine::general_purpose::STANDARD.encode(bytes))
            }
            None => None,
        };
        let letter = DeadLetter {
            seq,
            key: key.to_owned(),
            write: kind.to_owned(),
            reason: reason.to_owned(),
            item,
        };
        let line = serde_json::to_string(&letter)
            .map_err(|e| Error::journal(format!("cannot encode the dead letter of `{key}`"), e))?;
        let path = self.dir.join(DEAD_LETTERS);
        let mut file = self.file.lock();
        let written = match &mut *file {
            Some(file) => append_line(&mut **file, &line),
            None => open_for_append(&*self.fs, &self.dir, &path).and_then(|mut opened| {
                append_line(&mut *opened, &line)?;
                *file = Some(opened);
                Ok(())
            }),
        };
        written.map_err(|e| Error::journal(format!("cannot write {}", path.display()), e))?;
        self.count.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Letters in the file.
    pub(super) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// Lines in a file: its newline characters (a torn last line without one does not count).
fn count_lines(fs: &dyn FileSystem, path: &Path) -> u64 {
    fs.read(path)
        .map(|bytes| bytes.iter().filter(|&&b| b == b'\n').count() as u64)
        .unwrap_or(0)
}

/// Opens the dead-letter file for appending. A line torn by a crash (never acknowledged) is cut
/// off first, so that the next line starts a line of its own; and the directory is synced, so
/// that the file, if it was just created, survives a power loss.
fn open_for_append(
    fs: &dyn FileSystem,
    dir: &Path,
    path: &Path,
) -> std::io::Result<Box<dyn AppendFile>> {
    match fs.read(path) {
        Ok(bytes) if bytes.last().is_some_and(|&b| b != b'\n') => {
            let whole = bytes
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |at| at + 1);
            fs.truncate(path, whole as u64)?;
        }
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    let file = fs.open_append(path)?;
    fs.sync_dir(dir)?;
    Ok(file)
}

/// Appends one line to a file and syncs it.
fn append_line(file: &mut dyn AppendFile, line: &str) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    file.write_all(&bytes)?;
    file.sync_data()
}
