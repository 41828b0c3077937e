//! The journal's writer thread: group commit, rotation and release of segments.
//!
//! Appenders encode their record into a shared buffer under a mutex and wake the thread. The
//! thread swaps the buffer out, writes it with one `write`, and (under [`Durability::Always`])
//! one `fdatasync`, then publishes how far the journal is written and synced. Records that
//! arrive while it syncs go into the next round, so concurrent writers share each sync.
//!
//! Under [`Durability::Interval`] a mutation is acknowledged once written, so the writer thread
//! never syncs on its way: a second thread, the syncer, syncs the segment being written through
//! a second handle to it ([`AppendFile::sync_handle`]) at most the interval apart, and publishes
//! as synced what was written when its sync began. The writer thread goes on writing (and
//! acknowledging) meanwhile. The writer thread still syncs a segment itself before it starts
//! the next one, so that only the newest segment can be torn by a power loss, and on stopping,
//! after it has stopped the syncer. A closed segment is synced by then, so a sync of it the
//! syncer may still have in flight is redundant, and its handle is dropped when it returns; a
//! release deleting that segment meanwhile only unlinks the name (the handle keeps the file
//! until then).
//!
//! Plain threads, not Tokio tasks: they spend their lives in blocking file calls.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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

    /// Records that the journal cannot be written (the first reason given is kept): mutations
    /// are refused from now on, waiters are woken with an error, and the writer thread stops.
    fn fail(&self, err: &io::Error) {
        tracing::error!(error = %err, "the journal cannot be written; mutations are refused from now on");
        {
            let mut state = self.state.lock();
            if state.failure.is_none() {
                state.failure = Some(err.to_string());
            }
        }
        self.progress.send_modify(|p| p.failed = true);
        self.wake();
    }
}

/// The journal's writer thread: what it owns. It writes the records into segments.
pub(crate) struct SegmentWriter {
    pub shared: Arc<Shared>,
    pub fs: Arc<dyn FileSystem>,
    pub dir: PathBuf,
    pub file: Box<dyn AppendFile>,
    /// The sequence the segment being written is named after: its first mutation's.
    pub first_seq: u64,
    pub durability: Durability,
    pub segment_bytes: u64,
}

impl SegmentWriter {
    /// Runs until stopped or failed.
    pub(crate) fn run(mut self) {
        let syncer = match self.durability {
            Durability::Always => Ok(None),
            Durability::Interval(every) => self.start_syncer(every).map(Some),
        };
        let result = match syncer {
            Ok(mut syncer) => {
                let result = self.work(syncer.as_mut());
                if let Some(syncer) = &mut syncer {
                    syncer.stop();
                }
                result
            }
            Err(err) => Err(err),
        };
        if let Err(err) = result {
            self.shared.fail(&err);
        }
    }

    /// Starts the syncer thread on a second handle to the segment being written.
    fn start_syncer(&self, every: Duration) -> io::Result<SyncerThread> {
        let progress = *self.shared.progress.borrow();
        let slot = Arc::new(SyncSlot {
            state: Mutex::new(SyncState {
                file: Some(self.file.sync_handle()?),
                segment: 0,
                written: progress.written,
                synced: progress.synced,
                stop: false,
            }),
            wake: Condvar::new(),
        });
        let syncer = Syncer {
            shared: Arc::clone(&self.shared),
            slot: Arc::clone(&slot),
            every,
        };
        let thread = std::thread::Builder::new()
            .name("quickstore-journal-sync".into())
            .spawn(move || syncer.run())?;
        Ok(SyncerThread {
            slot,
            thread: Some(thread),
        })
    }

    fn work(&mut self, mut syncer: Option<&mut SyncerThread>) -> io::Result<()> {
        let mut progress = *self.shared.progress.borrow();
        let mut released = 0;
        // Bytes written since the writer last synced: markers too, which advance no sequence.
        let mut unsynced = false;
        loop {
            let Some((buffer, last_seq, release_below, stop)) = self.next_round(released) else {
                // The syncer failed; the failure is recorded.
                return Ok(());
            };
            if !buffer.is_empty() {
                self.file.write_all(&buffer)?;
                unsynced = true;
                progress.written = last_seq;
                {
                    let mut state = self.shared.state.lock();
                    if let Some(current) = state.segments.last_mut() {
                        current.bytes += buffer.len() as u64;
                        current.last_seq = last_seq;
                    }
                }
                if let Some(syncer) = &syncer {
                    syncer.written(last_seq);
                    // Under an interval policy this acknowledges the round's mutations: at
                    // once, not after this round's rotation or release, which sync.
                    self.shared.progress.send_modify(|p| p.written = last_seq);
                }
            }
            if stop {
                // No sync of the segment is in flight past this point: the last sync below is
                // the writer's, and the segment may be released after it.
                if let Some(syncer) = &mut syncer {
                    syncer.stop();
                }
                if self.shared.state.lock().failure.is_some() {
                    return Ok(());
                }
            }
            // Under `Always` every round's records are synced before they are published. Under
            // an interval policy the syncer syncs them; stopping syncs markers as well: a
            // segment left with unsynced bytes could be torn by a power loss after a later run
            // started the next segment, and a torn segment that is not the newest is damage.
            let sync_now = match self.durability {
                Durability::Always => progress.synced < progress.written || (stop && unsynced),
                Durability::Interval(_) => stop && unsynced,
            };
            if sync_now {
                self.file.sync_data()?;
                progress.synced = progress.written;
                unsynced = false;
            }
            // The next segment is named after the next mutation's sequence, so one starts only
            // once the current one holds a mutation written since it started: markers alone
            // (which take no sequence) never make two segments with the same name.
            if self.current_bytes() >= self.segment_bytes && progress.written >= self.first_seq {
                self.rotate(&mut progress, syncer.as_deref())?;
                unsynced = false;
            }
            if release_below > released || stop {
                // Once stopped, the segment being written can go too if it is all released.
                self.release(release_below, stop)?;
                released = release_below;
            }
            // Published last, so that a waiter under `Always` also sees this round's rotation
            // and release. The syncer publishes its own syncs; `synced` only grows.
            self.shared.progress.send_if_modified(|p| {
                let before = *p;
                p.written = progress.written;
                p.synced = p.synced.max(progress.synced);
                *p != before
            });
            if stop {
                return Ok(());
            }
        }
    }

    /// Waits for work and takes it: the buffered records, the release bound, the stop flag.
    /// Work is new records, a new release bound, or a stop. `None` once the journal failed
    /// (the syncer's sync did).
    fn next_round(&self, released: u64) -> Option<(Vec<u8>, u64, u64, bool)> {
        let mut state = self.shared.state.lock();
        while state.buffer.is_empty()
            && !state.stop
            && state.release_below == released
            && state.failure.is_none()
        {
            self.shared.wake.wait(&mut state);
        }
        if state.failure.is_some() {
            return None;
        }
        let buffer = std::mem::take(&mut state.buffer);
        Some((
            buffer,
            state.buffer_last_seq,
            state.release_below,
            state.stop,
        ))
    }

    fn current_bytes(&self) -> u64 {
        self.shared
            .state
            .lock()
            .segments
            .last()
            .map_or(0, |s| s.bytes)
    }

    /// Closes the current segment (synced first) and starts the next, handing the syncer a
    /// handle to the new one.
    fn rotate(&mut self, progress: &mut Progress, syncer: Option<&SyncerThread>) -> io::Result<()> {
        self.file.sync_data()?;
        progress.synced = progress.written;
        let (file, path) = segment::create(&*self.fs, &self.dir, progress.written + 1)?;
        if let Some(syncer) = syncer {
            syncer.switch(file.sync_handle()?, progress.written);
        }
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

/// What the writer thread and the syncer share: the syncer's handle to the segment being
/// written, and how far that segment is written.
struct SyncSlot {
    state: Mutex<SyncState>,
    /// Wakes the syncer: something was written while it idled, or it is asked to stop.
    wake: Condvar,
}

struct SyncState {
    /// A second handle to the segment being written; `None` while the syncer syncs it.
    file: Option<Box<dyn AppendFile>>,
    /// Counts the segments started, so that a handle the syncer took before a rotation is
    /// dropped when its sync returns, not put back.
    segment: u64,
    /// Every mutation up to this sequence is written: to the segment being written, or to an
    /// older one, synced before the rotation.
    written: u64,
    /// Every mutation up to this sequence is synced.
    synced: u64,
    stop: bool,
}

/// The writer thread's handle on the syncer.
struct SyncerThread {
    slot: Arc<SyncSlot>,
    thread: Option<JoinHandle<()>>,
}

impl SyncerThread {
    /// Notes that every mutation up to `seq` is written, and wakes the syncer if it idled.
    fn written(&self, seq: u64) {
        let mut state = self.slot.state.lock();
        let idle = state.written <= state.synced;
        state.written = seq;
        if idle && seq > state.synced {
            drop(state);
            self.slot.wake.notify_one();
        }
    }

    /// Hands the syncer a handle to the new segment. Every mutation up to `synced` is synced:
    /// the writer synced the old segment before it started the new one.
    fn switch(&self, file: Box<dyn AppendFile>, synced: u64) {
        let mut state = self.slot.state.lock();
        state.file = Some(file);
        state.segment += 1;
        state.synced = state.synced.max(synced);
    }

    /// Stops the syncer and waits for it: for a sync in flight to return. Harmless when stopped.
    fn stop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.slot.state.lock().stop = true;
            self.slot.wake.notify_one();
            if thread.join().is_err() {
                tracing::error!("the journal syncer panicked");
            }
        }
    }
}

/// The syncer thread, under an interval policy; see the module docs.
struct Syncer {
    shared: Arc<Shared>,
    slot: Arc<SyncSlot>,
    every: Duration,
}

impl Syncer {
    /// Runs until stopped or failed.
    fn run(self) {
        if let Err(err) = self.work() {
            self.shared.fail(&err);
        }
    }

    fn work(&self) -> io::Result<()> {
        let mut last_sync = Instant::now();
        loop {
            let (mut file, target, segment) = {
                let mut state = self.slot.state.lock();
                loop {
                    if state.stop {
                        return Ok(());
                    }
                    if state.written > state.synced {
                        let left = self.every.saturating_sub(last_sync.elapsed());
                        if left.is_zero() {
                            break;
                        }
                        self.slot.wake.wait_for(&mut state, left);
                    } else {
                        self.slot.wake.wait(&mut state);
                    }
                }
                let Some(file) = state.file.take() else {
                    return Err(io::Error::other(
                        "the journal syncer has no segment to sync",
                    ));
                };
                (file, state.written, state.segment)
            };
            // Everything up to `target` was written before this sync began.
            file.sync_data()?;
            last_sync = Instant::now();
            {
                let mut state = self.slot.state.lock();
                if state.segment == segment {
                    state.file = Some(file);
                }
                state.synced = state.synced.max(target);
            }
            self.shared
                .progress
                .send_modify(|p| p.synced = p.synced.max(target));
        }
    }
}
