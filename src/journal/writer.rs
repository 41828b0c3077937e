//! Writing the journal: group writes by the appenders themselves, syncs, rotation, disk space
//! and the release of segments.
//!
//! An appender encodes its record into a shared buffer under the journal's state lock
//! ([`Journal::append`](super::Journal::append)), and then, waiting for its acknowledgement,
//! writes the buffer itself ([`Shared::write_buffered`]): whoever takes the segment's lock
//! writes everything buffered so far with one `write`, its own record and those of the
//! appenders queued behind it (a leader/follower group write, as a database's write-ahead log
//! does). An appender that finds the lock taken waits for it a few microseconds at most (a
//! round's write takes less), and otherwise leaves its record to the holder, which, after
//! releasing the lock, writes what was buffered meanwhile (a few rounds at most) or hands it to
//! the writer thread. So a record reaches the operating system in one
//! `write` on the appender's own thread, with no hand-off, unless another thread is writing.
//!
//! The syncer thread syncs the segment through a second handle ([`AppendFile::sync_handle`]):
//! under [`Durability::Always`] as soon as something is written (each waiter waits for the sync
//! that covers its record, and the records written while one sync runs share the next), under
//! [`Durability::Interval`] at most the interval apart. It publishes as synced what was written
//! when its sync began. Writing never waits for it.
//!
//! The writer thread does what is rare or slow: it starts the next segment once one is full
//! (syncing the full one first, so that only the newest segment can be torn by a power loss),
//! reserves disk space ahead of the writes, deletes released segments, writes what an appender
//! handed it, and on stopping writes and syncs what is left. A closed segment is synced before
//! the next one starts, so a sync of it that the syncer may still have in flight is redundant,
//! and its handle is dropped when it returns; a release deleting that segment meanwhile only
//! unlinks the name (the handle keeps the file until then).
//!
//! Disk space: the segment being written has space reserved on disk ahead of its writes
//! ([`AppendFile::reserve`], `fallocate` on Linux), so that a write cannot fail for want of
//! space: an append that would go beyond the reservation is refused
//! ([`Error::JournalFull`](crate::Error::JournalFull)) before anything changes, and the journal
//! goes on. The writer thread reserves more once half of what it reserved ahead is used; on a
//! full disk it tries again every [`FULL_RETRY`] and after each release. On a file system that cannot reserve space, writes go unreserved, and a write
//! that fails for want of space fails the journal as any other I/O error does.
//!
//! Plain threads, not Tokio tasks: they spend their lives in blocking file calls.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

use super::fs::{AppendFile, FileSystem};
use super::segment;
use super::{Durability, JournalConfig};

/// How long the writer thread waits before trying again to reserve space on a full disk.
pub(crate) const FULL_RETRY: Duration = Duration::from_millis(100);

/// How long an appender waits for the segment's lock before it leaves its record to the holder.
const HOLD: Duration = Duration::from_micros(50);

/// Rounds of group writes an appender makes, for the records buffered behind its own, before it
/// hands what is left to the writer thread.
const ROUNDS: usize = 4;

/// How far the journal has got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Every record up to this sequence is written to the operating system.
    pub written: u64,
    /// Every record up to this sequence is on stable storage.
    pub synced: u64,
    /// The journal failed on an I/O error; nothing more will be written.
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
    /// Bytes written to it, or being written.
    pub bytes: u64,
}

/// State shared by appenders, the writer thread and the syncer.
pub(crate) struct Shared {
    pub state: Mutex<State>,
    /// The segment being written: whoever holds it writes.
    current: Mutex<Current>,
    /// Wakes the writer thread; waited on with `state`.
    wake: Condvar,
    /// How far the journal has got. Its receivers are woken by syncs and by a failure, not by
    /// writes: waiters for a sync are not woken by every write before it.
    pub progress: watch::Sender<Progress>,
    /// `progress.written`, whose receivers are woken by every write and by a failure.
    writes: watch::Sender<u64>,
    /// `progress.written`, read without a lock.
    written: AtomicU64,
    /// What the syncer syncs.
    sync: SyncSlot,
    /// The size at which a segment is closed and the next one started.
    segment_bytes: u64,
    /// Disk space reserved ahead of the writes to the segment being written: more is reserved
    /// once less than half of it is left.
    reserve_bytes: u64,
}

/// The segment being written, as its writers hold it.
struct Current {
    /// `None` once the journal stopped or failed: nothing more is written.
    file: Option<Box<dyn AppendFile>>,
    /// The sequence the segment is named after: its first mutation's.
    first_seq: u64,
    /// An empty buffer, swapped for the records of the next round.
    spare: Vec<u8>,
}

pub(crate) struct State {
    /// Encoded records not yet written.
    pub buffer: Vec<u8>,
    /// The newest mutation sequence given out when `buffer` was last appended to: at least
    /// the sequence of every record in it, markers included (a marker's sequence was given
    /// out before it).
    pub buffer_last_seq: u64,
    /// Segments whose records all have a sequence below this may be deleted.
    release_below: u64,
    stop: bool,
    /// Records were left in the buffer for the writer thread to write.
    handed: bool,
    /// The segment being written is full: the writer thread starts the next one.
    rotate: bool,
    /// Bytes of the segment being written that are reserved on disk; `None` where the file
    /// system reserves nothing.
    reserved: Option<u64>,
    /// The writer thread is asked to reserve more.
    reserve: bool,
    /// A handle to the segment being written, to reserve space through when the writer thread
    /// has fallen behind.
    reserve_file: Option<Box<dyn AppendFile>>,
    /// When a reservation last failed for want of space, until one succeeds.
    full_since: Option<Instant>,
    /// Why the journal failed, once it has.
    pub failure: Option<String>,
    /// Every segment, oldest first; the last is the one being written.
    pub segments: Vec<SegmentInfo>,
}

impl State {
    /// Bytes of the segment being written, once what is buffered is written.
    fn assigned(&self) -> u64 {
        self.segments.last().map_or(0, |s| s.bytes) + self.buffer.len() as u64
    }

    /// Whether the records just buffered (the buffer grew from `before` bytes) may stay:
    /// false when they go beyond the space reserved and no more can be reserved (they are then
    /// taken out again), so that no write fails for want of space. Asks the writer thread for
    /// more space once less than half of what was reserved ahead is left; reserves it here if
    /// the writer thread has fallen that far behind, unless the disk was found full.
    pub(crate) fn admit(&mut self, before: usize, shared: &Shared) -> bool {
        let Some(reserved) = self.reserved else {
            return true;
        };
        let assigned = self.assigned();
        if assigned + shared.reserve_bytes / 2 <= reserved {
            return true;
        }
        if !self.reserve {
            self.reserve = true;
            shared.wake.notify_one();
        }
        if assigned <= reserved {
            return true;
        }
        if self.full_since.is_none() {
            let target = assigned + shared.reserve_bytes;
            match self.reserve_file.as_mut().map(|file| file.reserve(target)) {
                Some(Ok(true)) => {
                    self.reserved = Some(target);
                    return true;
                }
                Some(Ok(false)) | None => {
                    self.reserved = None;
                    return true;
                }
                Some(Err(err)) => {
                    tracing::warn!(error = %err, "the journal cannot reserve disk space: mutations are refused until it can");
                    self.full_since = Some(Instant::now());
                }
            }
        }
        self.buffer.truncate(before);
        false
    }
}

impl Shared {
    /// State for a journal whose segments are `segments`, the last being written through `file`
    /// (named after `first_seq`, `reserved` bytes reserved), its newest sequence `last_seq`.
    pub(crate) fn new(
        segments: Vec<SegmentInfo>,
        last_seq: u64,
        file: Box<dyn AppendFile>,
        first_seq: u64,
        reserved: Option<u64>,
        config: &JournalConfig,
    ) -> io::Result<Arc<Self>> {
        let sync_file = file.sync_handle()?;
        let reserve_file = file.sync_handle()?;
        Ok(Arc::new(Self {
            state: Mutex::new(State {
                buffer: Vec::new(),
                buffer_last_seq: last_seq,
                release_below: 0,
                stop: false,
                handed: false,
                rotate: false,
                reserved,
                reserve: false,
                reserve_file: Some(reserve_file),
                full_since: None,
                failure: None,
                segments,
            }),
            current: Mutex::new(Current {
                file: Some(file),
                first_seq,
                spare: Vec::new(),
            }),
            wake: Condvar::new(),
            progress: watch::Sender::new(Progress {
                written: last_seq,
                synced: last_seq,
                failed: false,
            }),
            writes: watch::Sender::new(last_seq),
            written: AtomicU64::new(last_seq),
            sync: SyncSlot {
                state: Mutex::new(SyncState {
                    file: Some(sync_file),
                    segment: 0,
                    written: last_seq,
                    synced: last_seq,
                    syncing: false,
                    stop: false,
                }),
                wake: Condvar::new(),
            },
            segment_bytes: config.segment_bytes,
            reserve_bytes: config.reserve_bytes,
        }))
    }

    /// Every record up to this sequence is written to the operating system.
    pub(crate) fn written(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }

    /// Writes what is buffered, unless another thread holds the segment's lock for longer than a
    /// write takes ([`HOLD`]): that one writes it after its own round, or hands it to the writer
    /// thread. An I/O
    /// error fails the journal (waiters learn it from [`progress`](Self::progress)).
    pub(crate) fn write_buffered(&self) {
        self.write_rounds(false);
    }

    /// [`write_buffered`](Self::write_buffered); `blocking` (the writer thread) waits for the
    /// segment's lock however long another holds it.
    fn write_rounds(&self, blocking: bool) {
        for round in 0..ROUNDS {
            // A holder writing a round lets go within microseconds: waiting that long costs
            // less than a wake-up through the runtime. A rotation holds on longer; then the
            // holder writes the record when it is done.
            let current = match (blocking, round) {
                (true, _) => Some(self.current.lock()),
                (false, 0) => self.current.try_lock_for(HOLD),
                (false, _) => self.current.try_lock(),
            };
            let Some(mut current) = current else {
                return;
            };
            self.write_round(&mut current);
            drop(current);
            // Records buffered while the lock was held, by appenders that found it taken.
            if self.state.lock().buffer.is_empty() {
                return;
            }
        }
        let mut state = self.state.lock();
        if !state.buffer.is_empty() {
            state.handed = true;
            self.wake.notify_one();
        }
    }

    /// Whether the segment being written (named after `first_seq`) is full. The next segment is
    /// named after the next mutation's sequence, so one starts only once this one holds a
    /// mutation: markers alone (which take no sequence) never make two segments with the same
    /// name.
    fn is_full(&self, state: &State, first_seq: u64) -> bool {
        state
            .segments
            .last()
            .is_some_and(|s| s.bytes >= self.segment_bytes && s.last_seq >= first_seq)
    }

    /// Writes what is buffered to the segment being written, with one `write`; returns whether
    /// there was something to write. Publishes the progress.
    fn write_round(&self, current: &mut Current) -> bool {
        let Some(file) = current.file.as_mut() else {
            return false;
        };
        let last_seq = {
            let mut state = self.state.lock();
            if state.buffer.is_empty() || state.failure.is_some() {
                return false;
            }
            std::mem::swap(&mut state.buffer, &mut current.spare);
            let last_seq = state.buffer_last_seq;
            let bytes = current.spare.len() as u64;
            if let Some(segment) = state.segments.last_mut() {
                segment.bytes += bytes;
                segment.last_seq = last_seq;
            }
            if !state.rotate && self.is_full(&state, current.first_seq) {
                state.rotate = true;
                self.wake.notify_one();
            }
            last_seq
        };
        let written = file.write_all(&current.spare);
        current.spare.clear();
        if let Err(err) = written {
            current.file = None;
            self.fail(&err);
            return true;
        }
        self.written.fetch_max(last_seq, Ordering::AcqRel);
        self.sync.written(last_seq);
        self.progress.send_if_modified(|p| {
            p.written = p.written.max(last_seq);
            false
        });
        self.writes.send_if_modified(|w| {
            let before = *w;
            *w = before.max(last_seq);
            *w != before
        });
        true
    }

    /// Whether a sync is in flight. Under `Always`, an appender that finds one leaves its
    /// record buffered: the syncer writes every record buffered during its sync with one
    /// `write` when the sync returns (it checks the buffer after it stops counting as in
    /// flight), and syncs them together.
    pub(crate) fn syncing(&self) -> bool {
        self.sync.state.lock().syncing
    }

    /// Waits until the record `seq` is written (`synced`: synced); false if the journal failed
    /// first.
    pub(crate) async fn reached(&self, seq: u64, synced: bool) -> bool {
        let failed = || self.progress.borrow().failed;
        if synced {
            let mut progress = self.progress.subscribe();
            let waited = progress.wait_for(|p| p.failed || p.synced >= seq).await;
            waited.is_ok_and(|p| !p.failed)
        } else {
            let mut writes = self.writes.subscribe();
            let waited = writes.wait_for(|w| *w >= seq || failed()).await;
            waited.is_ok() && !failed()
        }
    }

    /// Allows deleting segments whose records are all below `seq`.
    pub(crate) fn release_below(&self, seq: u64) {
        let mut state = self.state.lock();
        if seq > state.release_below {
            state.release_below = seq;
            drop(state);
            self.wake.notify_one();
        }
    }

    /// Asks the writer thread to write what is buffered, sync, and stop.
    pub(crate) fn stop(&self) {
        self.state.lock().stop = true;
        self.wake.notify_one();
    }

    /// Records that the journal cannot be written (the first reason given is kept): mutations
    /// are refused from now on, waiters are woken with an error, and the threads stop.
    fn fail(&self, err: &io::Error) {
        tracing::error!(error = %err, "the journal cannot be written; mutations are refused from now on");
        {
            let mut state = self.state.lock();
            if state.failure.is_none() {
                state.failure = Some(err.to_string());
            }
        }
        self.progress.send_modify(|p| p.failed = true);
        self.writes.send_modify(|_| {});
        self.wake.notify_one();
    }
}

/// What the writer thread is asked to do.
#[derive(Debug, Default)]
struct Work {
    handed: bool,
    rotate: bool,
    reserve: bool,
    release_below: Option<u64>,
    stop: bool,
}

/// The journal's writer thread: what it owns; see the module docs.
pub(crate) struct SegmentWriter {
    pub shared: Arc<Shared>,
    pub fs: Arc<dyn FileSystem>,
    pub dir: PathBuf,
    pub durability: Durability,
}

impl SegmentWriter {
    /// Runs until stopped or failed.
    pub(crate) fn run(self) {
        let every = match self.durability {
            Durability::Always => Duration::ZERO,
            Durability::Interval(every) => every,
        };
        let syncer = Syncer {
            shared: Arc::clone(&self.shared),
            every,
        };
        let thread = std::thread::Builder::new()
            .name("quickstore-journal-sync".into())
            .spawn(move || syncer.run());
        let result = match thread {
            Ok(thread) => {
                let mut syncer = SyncerThread {
                    shared: Arc::clone(&self.shared),
                    thread: Some(thread),
                };
                let result = self.work(&mut syncer);
                syncer.stop();
                result
            }
            Err(err) => Err(err),
        };
        if let Err(err) = result {
            self.shared.current.lock().file = None;
            self.shared.fail(&err);
        }
    }

    fn work(&self, syncer: &mut SyncerThread) -> io::Result<()> {
        let mut released = 0;
        loop {
            let Some(work) = self.next(released) else {
                return Ok(());
            };
            if work.stop {
                return self.finish(syncer);
            }
            if work.handed {
                self.shared.write_rounds(true);
            }
            if work.rotate && !self.rotate()? {
                self.shared.state.lock().rotate = true;
            }
            if work.reserve && !self.reserve()? {
                self.shared.state.lock().reserve = true;
            }
            if let Some(below) = work.release_below {
                self.release(below, false)?;
                released = below;
            }
        }
    }

    /// Waits for work and takes it; `None` once the journal failed. While the disk is full,
    /// wakes every [`FULL_RETRY`] to try again what needs space.
    fn next(&self, released: u64) -> Option<Work> {
        let mut state = self.shared.state.lock();
        loop {
            if state.failure.is_some() {
                return None;
            }
            let retry = state
                .full_since
                .is_none_or(|since| since.elapsed() >= FULL_RETRY);
            let work = Work {
                handed: std::mem::take(&mut state.handed),
                rotate: retry && std::mem::take(&mut state.rotate),
                reserve: retry && std::mem::take(&mut state.reserve),
                release_below: (state.release_below > released).then_some(state.release_below),
                stop: state.stop,
            };
            if work.handed
                || work.rotate
                || work.reserve
                || work.release_below.is_some()
                || work.stop
            {
                return Some(work);
            }
            match state.full_since {
                Some(since) => {
                    let left = FULL_RETRY.saturating_sub(since.elapsed());
                    self.shared.wake.wait_for(&mut state, left);
                }
                None => self.shared.wake.wait(&mut state),
            }
        }
    }

    /// Closes the segment being written (synced first) and starts the next, handing the syncer
    /// a handle to it. Returns false, changing nothing, when the disk has no room for the next
    /// segment: the current one takes writes up to its reservation meanwhile.
    fn rotate(&self) -> io::Result<bool> {
        // Syncs most of the full segment before its writers are held up: the sync under the
        // lock below then has little left to do.
        if let Some(file) = self.sync_handle()? {
            let mut file = file;
            file.sync_data()?;
        }
        let mut current = self.shared.current.lock();
        self.shared.write_round(&mut current);
        let written = self.shared.written();
        // Asked again by a write since: the segment may have been started since.
        let full = self
            .shared
            .is_full(&self.shared.state.lock(), current.first_seq);
        let Some(file) = current.file.as_mut().filter(|_| full) else {
            drop(current);
            self.shared.write_buffered();
            return Ok(true);
        };
        file.sync_data()?;
        let reserve = self.shared.reserve_bytes;
        let created = segment::create(&*self.fs, &self.dir, written + 1, reserve);
        let (file, path, reserved) = match created {
            Ok(created) => created,
            Err(err) if err.kind() == io::ErrorKind::StorageFull => {
                self.full(&err);
                return Ok(false);
            }
            Err(err) => return Err(err),
        };
        self.shared.sync.switch(file.sync_handle()?, written);
        let reserve_file = file.sync_handle()?;
        current.file = Some(file);
        current.first_seq = written + 1;
        {
            // Before the segment's lock goes: the next write counts its bytes in this segment.
            let mut state = self.shared.state.lock();
            state.segments.push(SegmentInfo {
                path,
                last_seq: 0,
                bytes: segment::MAGIC.len() as u64,
            });
            state.reserved = reserved;
            state.reserve = false;
            state.reserve_file = Some(reserve_file);
            state.full_since = None;
        }
        drop(current);
        self.shared
            .progress
            .send_modify(|p| p.synced = p.synced.max(written));
        // Records buffered while the lock was held.
        self.shared.write_buffered();
        Ok(true)
    }

    /// Reserves space ahead of the writes to the segment being written. Returns false when the
    /// disk has no room.
    fn reserve(&self) -> io::Result<bool> {
        let (target, segment) = {
            let state = self.shared.state.lock();
            if state.reserved.is_none() {
                return Ok(true);
            }
            (
                state.assigned() + self.shared.reserve_bytes,
                state.segments.len(),
            )
        };
        let Some(mut file) = self.sync_handle()? else {
            return Ok(true);
        };
        match file.reserve(target) {
            Ok(reserved) => {
                let mut state = self.shared.state.lock();
                // Unless the segment changed meanwhile: the new one has its own reservation.
                if state.segments.len() == segment {
                    state.reserved = reserved.then_some(target);
                }
                state.full_since = None;
                Ok(true)
            }
            Err(err) if err.kind() == io::ErrorKind::StorageFull => {
                self.full(&err);
                Ok(false)
            }
            Err(err) => Err(err),
        }
    }

    /// Notes that the disk is full: appends beyond the reservation are refused until space is
    /// reserved again.
    fn full(&self, err: &io::Error) {
        let mut state = self.shared.state.lock();
        if state.full_since.is_none() {
            tracing::warn!(error = %err, dir = %self.dir.display(), "the journal's disk is full: mutations are refused until space is free");
        }
        state.full_since = Some(Instant::now());
    }

    /// A handle to the segment being written, for syncing and reserving; `None` once stopped.
    fn sync_handle(&self) -> io::Result<Option<Box<dyn AppendFile>>> {
        let current = self.shared.current.lock();
        let handle = current.file.as_ref().map(|f| f.sync_handle()).transpose();
        drop(current);
        // Whoever held the segment's lock writes what appenders buffered meanwhile.
        self.shared.write_buffered();
        handle
    }

    /// Writes what is buffered, stops the syncer, syncs, releases what may go (the segment
    /// being written too, if all of it may), and stops writing.
    fn finish(&self, syncer: &mut SyncerThread) -> io::Result<()> {
        let mut current = self.shared.current.lock();
        self.shared.write_round(&mut current);
        // No sync of the segment is in flight past this point: the last sync is this one, and
        // the segment may be released after it.
        syncer.stop();
        let Some(file) = current.file.as_mut() else {
            return Ok(());
        };
        // Markers too: a segment left with unsynced bytes could be torn by a power loss after a
        // later run started the next segment, and a torn segment that is not the newest is
        // damage.
        file.sync_data()?;
        current.file = None;
        drop(current);
        let written = self.shared.written();
        self.shared
            .progress
            .send_modify(|p| p.synced = p.synced.max(written));
        let below = self.shared.state.lock().release_below;
        self.release(below, true)
    }

    /// Deletes closed segments (and, with `current`, the one being written) whose records are
    /// all below `below`. Space freed, a reservation that failed is tried again.
    fn release(&self, below: u64, current: bool) -> io::Result<()> {
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
        self.fs.sync_dir(&self.dir)?;
        let mut state = self.shared.state.lock();
        if state.full_since.is_some() {
            state.full_since = Some(Instant::now() - FULL_RETRY);
        }
        Ok(())
    }
}

/// What the syncer syncs: a second handle to the segment being written, and how far that
/// segment is written.
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
    /// A sync is in flight.
    syncing: bool,
    stop: bool,
}

impl SyncSlot {
    /// Notes that every mutation up to `seq` is written, and wakes the syncer if it idled.
    fn written(&self, seq: u64) {
        let mut state = self.state.lock();
        let idle = state.written <= state.synced;
        state.written = state.written.max(seq);
        if idle && seq > state.synced {
            drop(state);
            self.wake.notify_one();
        }
    }

    /// Hands the syncer a handle to the new segment. Every mutation up to `synced` is synced:
    /// the old segment was synced before the new one started.
    fn switch(&self, file: Box<dyn AppendFile>, synced: u64) {
        let mut state = self.state.lock();
        state.file = Some(file);
        state.segment += 1;
        state.synced = state.synced.max(synced);
    }
}

/// The writer thread's handle on the syncer.
struct SyncerThread {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl SyncerThread {
    /// Stops the syncer and waits for it: for a sync in flight to return. Harmless when stopped.
    fn stop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.shared.sync.state.lock().stop = true;
            self.shared.sync.wake.notify_one();
            if thread.join().is_err() {
                tracing::error!("the journal syncer panicked");
            }
        }
    }
}

/// The syncer thread; see the module docs.
struct Syncer {
    shared: Arc<Shared>,
    /// The least time between two syncs: zero under `Always`.
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
        let slot = &self.shared.sync;
        let mut last_sync = Instant::now();
        loop {
            let (mut file, target, segment) = {
                let mut state = slot.state.lock();
                loop {
                    if state.stop {
                        return Ok(());
                    }
                    if state.written > state.synced {
                        let left = self.every.saturating_sub(last_sync.elapsed());
                        if left.is_zero() {
                            break;
                        }
                        slot.wake.wait_for(&mut state, left);
                    } else {
                        slot.wake.wait(&mut state);
                    }
                }
                let Some(file) = state.file.take() else {
                    return Err(io::Error::other(
                        "the journal syncer has no segment to sync",
                    ));
                };
                state.syncing = true;
                (file, state.written, state.segment)
            };
            // Everything up to `target` was written before this sync began.
            file.sync_data()?;
            last_sync = Instant::now();
            {
                let mut state = slot.state.lock();
                if state.segment == segment {
                    state.file = Some(file);
                }
                state.synced = state.synced.max(target);
                state.syncing = false;
            }
            self.shared
                .progress
                .send_modify(|p| p.synced = p.synced.max(target));
            if self.every.is_zero() {
                // Under `Always`, records buffered during the sync were left to it (see
                // `Shared::syncing`): one write for all of them, then the next sync.
                self.shared.write_buffered();
            }
        }
    }
}
