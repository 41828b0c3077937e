//! The journal's writer thread: group commit, rotation and release of segments.
//!
//! Appenders encode their record into a shared buffer under a mutex and wake the thread. The
//! thread swaps the buffer out, writes it with one `write`, and (under [`Durability::Always`])
//! one `fdatasync`, then publishes how far the journal is written and synced. Records that
//! arrive while it syncs go into the next round, so concurrent writers share each sync.
//!
//! A plain thread, not a Tokio task: it spends its life in blocking file calls.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

use super::fs::{AppendFile, FileSystem};
use super::segment;
use super::Durability;

/// How far the journal has got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Every record up to this sequence is written to the operating system.
    pub written: u64,
    /// Every record up to this sequence is on stable storage.
    pub synced: u64,
    /// The writer stopped on an I/O error; nothing more will be written.
    pub failed: bool,
}

/// A segment on disk.
#[derive(Debug, Clone)]
pub(crate) struct SegmentInfo {
    pub path: PathBuf,
    /// The highest sequence among its records, 0 while empty. Markers count too: a marker
    /// carries the sequence of an older mutation, so the segment goes only once that mutation
    /// is released as well.
    pub last_seq: u64,
    pub bytes: u64,
}

/// State shared by appenders and the writer thread.
pub(crate) struct Shared {
    pub state: Mutex<State>,
    wake: Condvar,
    pub progress: watch::Sender<Progress>,
}

pub(crate) struct State {
    /// Encoded records not yet handed to the thread.
    pub buffer: Vec<u8>,
    /// The newest mutation sequence given out when `buffer` was last appended to: at least
    /// the sequence of every record in it, markers included (a marker's sequence was given
    /// out before it).
    pub buffer_last_seq: u64,
    /// Segments whose records all have a sequence below this may be deleted.
    release_below: u64,
    stop: bool,
    /// Why the writer failed, once it has.
    pub failure: Option<String>,
    /// Every segment, oldest first; the last is the one being written.
    pub segments: Vec<SegmentInfo>,
}

impl Shared {
    pub(crate) fn new(segments: Vec<SegmentInfo>, last_seq: u64) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                buffer: Vec::new(),
                buffer_last_seq: last_seq,
                release_below: 0,
                stop: false,
                failure: None,
                segments,
            }),
            wake: Condvar::new(),
            progress: watch::Sender::new(Progress {
                written: last_seq,
                synced: last_seq,
                failed: false,
            }),
        })
    }

    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Allows deleting segments whose records are all below `seq`.
    pub(crate) fn release_below(&self, seq: u64) {
        let mut state = self.state.lock();
        if seq > state.release_below {
            state.release_below = seq;
            drop(state);
            self.wake();
        }
    }

    /// Asks the thread to write what is buffered, sync, and stop.
    pub(crate) fn stop(&self) {
        self.state.lock().stop = true;
        self.wake();
    }
}

/// What the thread owns.
pub(crate) struct Writer {
    pub shared: Arc<Shared>,
    pub fs: Arc<dyn FileSystem>,
    pub dir: PathBuf,
    pub file: Box<dyn AppendFile>,
    /// The sequence the segment being written is named after: its first mutation's.
    pub first_seq: u64,
    pub durability: Durability,
    pub segment_bytes: u64,
}

impl Writer {
    /// Runs until stopped or failed.
    pub(crate) fn run(mut self) {
        if let Err(err) = self.work() {
            tracing::error!(error = %err, "the journal cannot be written; mutations are refused from now on");
            self.shared.state.lock().failure = Some(err.to_string());
            self.shared.progress.send_modify(|p| p.failed = true);
        }
    }

    fn work(&mut self) -> io::Result<()> {
        let mut progress = *self.shared.progress.borrow();
        let mut last_sync = Instant::now();
        let mut released = 0;
        // Bytes written since the last sync: markers too, which advance no sequence.
        let mut unsynced = false;
        loop {
            let (buffer, last_seq, release_below, stop) =
                self.next_round(&progress, last_sync, released);
            if !buffer.is_empty() {
                self.file.write_all(&buffer)?;
                unsynced = true;
                progress.written = last_seq;
                let mut state = self.shared.state.lock();
                if let Some(current) = state.segments.last_mut() {
                    current.bytes += buffer.len() as u64;
                    current.last_seq = last_seq;
                }
            }
            let sync_due = match self.durability {
                Durability::Always => true,
                Durability::Interval(every) => stop || last_sync.elapsed() >= every,
            };
            // Stopping syncs markers as well: a segment left with unsynced bytes could be torn
            // by a power loss after a later run started the next segment, and a torn segment
            // that is not the newest is damage.
            if (sync_due && progress.synced < progress.written) || (stop && unsynced) {
                self.file.sync_data()?;
                progress.synced = progress.written;
                last_sync = Instant::now();
                unsynced = false;
            }
            // The next segment is named after the next mutation's sequence, so one starts only
            // once the current one holds a mutation written since it started: markers alone
            // (which take no sequence) never make two segments with the same name.
            if self.current_bytes() >= self.segment_bytes && progress.written >= self.first_seq {
                self.rotate(&mut progress)?;
                unsynced = false;
            }
            if release_below > released || stop {
                // Once stopped, the segment being written can go too if it is all released.
                self.release(release_below, stop)?;
                released = release_below;
            }
            // Published last, so that a waiter also sees this round's rotation and release.
            self.shared.progress.send_replace(progress);
            if stop {
                return Ok(());
            }
        }
    }

    /// Waits for work and takes it: the buffered records, the release bound, the stop flag.
    /// Work is new records, a new release bound, a stop, or (under an interval policy) a sync
    /// falling due.
    fn next_round(
        &self,
        progress: &Progress,
        last_sync: Instant,
        released: u64,
    ) -> (Vec<u8>, u64, u64, bool) {
        let mut state = self.shared.state.lock();
        while state.buffer.is_empty() && !state.stop && state.release_below == released {
            let sync_in = match self.durability {
                Durability::Interval(every) if progress.synced < progress.written => {
                    Some(every.saturating_sub(last_sync.elapsed()))
                }
                _ => None,
            };
            match sync_in {
                Some(left) if left.is_zero() => break,
                Some(left) => {
                    if self.shared.wake.wait_for(&mut state, left).timed_out() {
                        break;
                    }
                }
                None => self.shared.wake.wait(&mut state),
            }
        }
        let buffer = std::mem::take(&mut state.buffer);
        (
            buffer,
            state.buffer_last_seq,
            state.release_below,
            state.stop,
        )
    }

    fn current_bytes(&self) -> u64 {
        self.shared
            .state
            .lock()
            .segments
            .last()
            .map_or(0, |s| s.bytes)
    }

    /// Closes the current segment and starts the next.
    fn rotate(&mut self, progress: &mut Progress) -> io::Result<()> {
        self.file.sync_data()?;
        progress.synced = progress.written;
        let (file, path) = segment::create(&*self.fs, &self.dir, progress.written + 1)?;
        self.file = file;
        self.first_seq = progress.written + 1;
        self.shared.state.lock().segments.push(SegmentInfo {
            path,
            last_seq: 0,
            bytes: segment::MAGIC.len() as u64,
        });
        Ok(())
    }

    /// Deletes closed segments (and, with `current`, the one being written) whose records are
    /// all below `below`.
    fn release(&mut self, below: u64, current: bool) -> io::Result<()> {
        let doomed: Vec<PathBuf> = {
            let mut state = self.shared.state.lock();
            let closed = if current {
                state.segments.len()
            } else {
                state.segments.len().saturating_sub(1)
            };
            let count = state.segments[..closed]
                .iter()
                .take_while(|s| s.last_seq < below)
                .count();
            state.segments.drain(..count).map(|s| s.path).collect()
        };
        if doomed.is_empty() {
            return Ok(());
        }
        for path in &doomed {
            match self.fs.remove(path) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        self.fs.sync_dir(&self.dir)
    }
}
