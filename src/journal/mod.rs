//! The crash journal: every mutation is appended to it before it is acknowledged, and stays
//! until the backend has it, so a crash loses nothing acknowledged.
//!
//! An application turns it on with [`StoreBuilder::journal`](crate::StoreBuilder::journal) and
//! picks a [`Durability`] (also at the crate root); `open` replays what the backend had not
//! received, as [`Recovery`] allows, and reports it in [`RecoveryReport`]. This module also
//! holds what a tool needs to look at a journal without opening a store:
//! [`inspect_journal`] and the summaries it returns.
//!
//! The directory holds numbered segments of records, a `LOCK` file held while a store uses the
//! directory, and [`DEAD_LETTERS`], where writes the backend refused for good are kept with the
//! reason. A mutation's record is written by the task that made the mutation, in one `write`
//! with the records queued behind it (a group write); under [`Durability::Interval`] it is then
//! acknowledged, under [`Durability::Always`] once the syncer thread's next sync covers it. Disk
//! space is reserved ahead of the writes, so that a full disk refuses a mutation at call time
//! ([`Error::JournalFull`]) and never fails a write the journal took.
//! A writer thread starts segments, reserves space and deletes what was released.
//!
//! ```
//! use quickstore::journal::inspect_journal;
//! use quickstore::{Durability, EmbeddedBackend, Key, Store};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let backend = EmbeddedBackend::open(dir.path().join("items.redb"))?;
//! let store = Store::builder(backend)
//!     .journal(dir.path().join("journal"))
//!     .durability(Durability::Always) // each acknowledgement waits for its sync
//!     .open()
//!     .await?;
//! store.upsert_item(&Key::new("User", "ada")?, Default::default()).await?;
//! store.close().await?;
//!
//! let summary = inspect_journal(dir.path().join("journal"))?;
//! assert!(summary.opens_strictly());
//! # Ok(())
//! # }
//! ```

mod dead_letters;
mod fs;
mod inspect;
mod options;
pub(crate) mod record;
mod recovery;
mod segment;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::backend::Write;
use crate::error::{Error, Result};
use crate::item::Item;
use fs::Lock;
pub(crate) use fs::{FileSystem, StdFs};

pub(crate) use dead_letters::DeadLetter;
use dead_letters::DeadLetters;
pub use dead_letters::DEAD_LETTERS;
pub use inspect::{inspect_journal, DeadLetterSummary, JournalSummary, SegmentSummary};
pub use options::{Durability, Recovery};
pub(crate) use options::{JournalConfig, DEFAULT_RESERVE_BYTES, DEFAULT_SEGMENT_BYTES};
pub(crate) use record::{decode as decode_record, encode as encode_record, FrameError};
pub(crate) use record::{Op, Record, TableState};
pub use recovery::RecoveryReport;
pub(crate) use recovery::{Pending, Recovered};
pub use segment::Damage as JournalDamage;

const LOCK: &str = "LOCK";

/// The file holding the journal's writer id.
const WRITER_ID: &str = "WRITER";

/// An open journal; see the module docs.
pub(crate) struct Journal {
    dir: PathBuf,
    durability: Durability,
    shared: Arc<writer::Shared>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    dead_letters: DeadLetters,
    /// The directory's lock, held until the journal is closed.
    lock: Mutex<Option<Lock>>,
    /// The id this journal's store writes under (versioned mode), the same across restarts.
    writer: u64,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Journal {
    /// Locks the directory, recovers what is in it, and starts the writer thread on a fresh
    /// segment. Blocking: call it off the async runtime.
    #[cfg(test)]
    pub(crate) fn open(config: &JournalConfig) -> Result<(Self, Recovered)> {
        Self::open_with(config, Arc::new(StdFs))
    }

    /// Locks the directory, recovers what is in it, and starts the writer thread on a fresh
    /// segment, reaching files through `fs`. Blocking: call it off the async runtime.
    pub(crate) fn open_with(
        config: &JournalConfig,
        fs: Arc<dyn FileSystem>,
    ) -> Result<(Self, Recovered)> {
        let dir = &config.dir;
        fs.create_dir_all(dir)
            .map_err(|e| Error::journal(format!("cannot create {}", dir.display()), e))?;
        let lock = lock(&*fs, dir)?;
        let writer_id = writer_id(&*fs, dir)?;
        let mut recovered = recovery::recover(&*fs, dir, config.recovery)?;
        let first_seq = recovered.max_seq + 1;
        let (file, path, reserved) = segment::create(&*fs, dir, first_seq, config.reserve_bytes)
            .map_err(|e| {
                Error::journal(
                    format!("cannot create a journal segment in {}", dir.display()),
                    e,
                )
            })?;
        let mut segments = std::mem::take(&mut recovered.segments);
        segments.push(writer::SegmentInfo {
            path,
            last_seq: 0,
            bytes: segment::MAGIC.len() as u64,
        });
        let shared = writer::Shared::new(
            segments,
            recovered.max_seq,
            file,
            first_seq,
            reserved,
            config,
        )
        .map_err(|e| Error::journal("cannot open a second handle to the journal segment", e))?;
        let writer = writer::SegmentWriter {
            shared: Arc::clone(&shared),
            fs: Arc::clone(&fs),
            dir: dir.clone(),
            durability: config.durability,
        };
        let thread = std::thread::Builder::new()
            .name("quickstore-journal".into())
            .spawn(move || writer.run())
            .map_err(|e| Error::journal("cannot start the journal writer", e))?;
        let dead_letters = DeadLetters::open(Arc::clone(&fs), dir);
        let journal = Self {
            dir: dir.clone(),
            durability: config.durability,
            shared,
            thread: Mutex::new(Some(thread)),
            dead_letters,
            lock: Mutex::new(Some(lock)),
            writer: writer_id,
        };
        Ok((journal, recovered))
    }

    /// Appends a mutation, numbering it from `seq`; returns its sequence number. Does not wait
    /// for the disk: see [`wait`](Self::wait). Sequence numbers are taken under the journal's
    /// lock, so they increase through the journal. A versioned store passes the key's `base`,
    /// which makes the record a format 2 one; others pass `None`.
    ///
    /// # Errors
    ///
    /// [`Error::JournalFull`] when the journal's disk has no room for the record, and
    /// [`Error::Journal`] when the record cannot be encoded or the journal failed earlier:
    /// nothing is appended then.
    pub(crate) fn append(
        &self,
        seq: &AtomicU64,
        op: Op,
        key: &str,
        item: Option<&Arc<Item>>,
        base: Option<TableState>,
    ) -> Result<u64> {
        let mut state = self.shared.state.lock();
        if let Some(failure) = &state.failure {
            return Err(poisoned(failure));
        }
        let next = seq.load(Ordering::Acquire) + 1;
        let record = Record {
            seq: next,
            op,
            key: key.to_owned(),
            item: item.cloned(),
            base,
        };
        let before = state.buffer.len();
        record::encode(&record, &mut state.buffer)
            .map_err(|e| Error::journal(format!("cannot journal the mutation of `{key}`"), e))?;
        if !state.admit(before, &self.shared) {
            return Err(Error::JournalFull {
                dir: self.dir.clone(),
            });
        }
        seq.store(next, Ordering::Release);
        state.buffer_last_seq = next;
        Ok(next)
    }

    /// Appends a versioned store's marker: the flusher is done with `key`'s mutations up to
    /// `seq`, and left the table in state `table`. Takes no sequence number, and nobody waits
    /// for it to reach the disk: a marker lost in a crash only leaves recovery with an older
    /// base for the key (see the record module).
    pub(crate) fn settled(&self, key: &str, seq: u64, table: TableState) -> Result<()> {
        let mut state = self.shared.state.lock();
        if let Some(failure) = &state.failure {
            return Err(poisoned(failure));
        }
        let before = state.buffer.len();
        record::encode(&Record::settled(seq, key, table), &mut state.buffer)
            .map_err(|e| Error::journal(format!("cannot journal the settling of `{key}`"), e))?;
        // A marker the disk has no room for is left out: it need not reach the disk.
        state.admit(before, &self.shared);
        Ok(())
    }

    /// Waits until the mutation `seq` is as durable as the policy promises: synced under
    /// `Always`, written to the operating system under `Interval`. Writes it first, with every
    /// record buffered before it, unless another thread is writing them (see the `writer`
    /// module): under `Interval` an acknowledgement usually waits for nothing else.
    pub(crate) async fn wait(&self, seq: u64) -> Result<()> {
        let synced = matches!(self.durability, Durability::Always);
        if self.shared.written() < seq && !(synced && self.shared.syncing()) {
            self.shared.write_buffered();
        }
        if !synced && self.shared.written() >= seq {
            return Ok(());
        }
        if self.shared.reached(seq, synced).await {
            return Ok(());
        }
        Err(poisoned(
            self.shared
                .state
                .lock()
                .failure
                .as_deref()
                .unwrap_or("the journal writer stopped"),
        ))
    }

    /// Allows deleting segments whose mutations all have sequences below `seq`, all of which
    /// are in the backend (or dead-lettered).
    pub(crate) fn release_below(&self, seq: u64) {
        self.shared.release_below(seq);
    }

    /// True when some closed segment holds only mutations below `seq`.
    pub(crate) fn could_release(&self, seq: u64) -> bool {
        let state = self.shared.state.lock();
        let closed = state.segments.len().saturating_sub(1);
        state.segments[..closed]
            .first()
            .is_some_and(|s| s.last_seq < seq)
    }

    /// Records a write the backend refused for good (or lost to another writer), with the
    /// reason; see [`DeadLetters::append`].
    pub(crate) fn dead_letter(
        &self,
        seq: u64,
        key: &str,
        write: &Write,
        reason: &str,
    ) -> Result<()> {
        self.dead_letters.append(seq, key, write, reason)
    }

    /// Bytes and segments on disk.
    pub(crate) fn usage(&self) -> (u64, usize) {
        let state = self.shared.state.lock();
        (
            state.segments.iter().map(|s| s.bytes).sum(),
            state.segments.len(),
        )
    }

    /// Writes refused for good, recorded in the dead-letter file.
    pub(crate) fn dead_letters(&self) -> u64 {
        self.dead_letters.count()
    }

    /// Syncs what is buffered, releases segments below `seq`, and stops the writer thread.
    pub(crate) fn close(&self, release_below: u64) {
        self.shared.release_below(release_below);
        self.stop();
    }

    /// Syncs what is buffered, stops the writer thread and waits for it, and unlocks the
    /// directory. Harmless when already stopped.
    fn stop(&self) {
        self.shared.stop();
        let thread = self.thread.lock().take();
        if let Some(thread) = thread {
            if thread.join().is_err() {
                tracing::error!("the journal writer panicked");
            }
        }
        // Dropping the file releases the lock: another store may open the directory now.
        self.lock.lock().take();
    }
}

/// A journal dropped without `close` (its store was dropped and the runtime went away before
/// the flusher could drain) still ends its writer thread, after syncing what it was given.
impl Drop for Journal {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Journal {
    /// The id the store writes under in versioned mode: random when the journal was created,
    /// kept since, so that after a crash the store recognises the writes it made before.
    pub(crate) fn writer_id(&self) -> u64 {
        self.writer
    }
}

/// Reads the journal's writer id, or makes one (written and synced before it is used).
fn writer_id(fs: &dyn FileSystem, dir: &Path) -> Result<u64> {
    let path = dir.join(WRITER_ID);
    match fs.read(&path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            u64::from_str_radix(text.trim(), 16).map_err(|e| {
                Error::journal(format!("{} does not hold a writer id", path.display()), e)
            })
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let id: u64 = rand::random();
            fs::write_atomically(fs, dir, &path, format!("{id:016x}\n").as_bytes())
                .map_err(|e| Error::journal(format!("cannot write {}", path.display()), e))?;
            Ok(id)
        }
        Err(err) => Err(Error::journal(
            format!("cannot read {}", path.display()),
            err,
        )),
    }
}

fn poisoned(failure: &str) -> Error {
    Error::Journal {
        message: format!("the journal failed earlier ({failure}); no mutation is accepted"),
        source: None,
    }
}

fn lock(fs: &dyn FileSystem, dir: &Path) -> Result<Lock> {
    let path = dir.join(LOCK);
    match fs.try_lock(&path) {
        Ok(Some(lock)) => Ok(lock),
        Ok(None) => Err(Error::Journal {
            message: format!(
                "the journal directory {} is in use by another store",
                dir.display()
            ),
            source: None,
        }),
        Err(e) => Err(Error::journal(format!("cannot lock {}", path.display()), e)),
    }
}

#[cfg(test)]
mod crash_tests;
#[cfg(test)]
mod tests;
