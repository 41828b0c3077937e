//! Power loss, simulated.
//!
//! [`SimFs`] keeps the journal directory in memory and records every write, data sync and
//! directory sync. When the power goes (at a chosen operation, or at once), it keeps only what
//! a real disk must keep: each file's bytes up to its last sync, plus a random prefix of those
//! written since (a torn write), and the directory as of its last sync, plus a random prefix of
//! the creations, renamings and removals made since (file systems that journal their metadata
//! commit it in order; an empty prefix drops them all). Everything after that operation fails,
//! as if the process had died with the machine.
//!
//! Some lives end in a crash of the process instead, the machine running on: then the disk
//! keeps everything written, synced or not, and every name as the running system saw it.
//!
//! [`power_loss_loses_nothing_acknowledged`] runs a journal over such a disk through appends,
//! waits, segment rotations, releases of landed segments, settled markers, dead letters and
//! clean restarts, cuts the power at thousands of points (among them during rotation, during
//! release and during recovery itself), recovers, and checks what came back against a model:
//! after a power loss, everything the journal reported synced (under `Always`, everything
//! acknowledged); after a process crash, everything acknowledged under either policy. Under an
//! interval policy the syncs come from the syncer thread, racing the writer thread's writes.
//!
//! [`an_append_completes_while_a_sync_is_blocked`] holds the syncer's sync on a gate and shows
//! that appends are written and acknowledged meanwhile.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

use super::fs::{AppendFile, FileSystem, Lock};
use super::*;

/// What the journal was doing when the power went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// Opening: locking, reading the writer id, recovering, creating the first segment.
    Recovery,
    /// The writer thread starting a new segment.
    Rotation,
    /// The writer thread deleting segments whose writes landed.
    Release,
    /// The writer thread writing or syncing records.
    Records,
    /// Anything else: dead letters, opening the dead-letter file.
    Other,
    /// At the end of a life's steps, whatever the writer thread was doing then.
    End,
}

/// A creation, renaming or removal not yet made durable by a directory sync.
#[derive(Debug, Clone)]
enum DirChange {
    Link(String, u64),
    Unlink(String),
    Rename(String, String),
}

impl DirChange {
    fn apply(&self, names: &mut BTreeMap<String, u64>) {
        match self {
            DirChange::Link(name, inode) => {
                names.insert(name.clone(), *inode);
            }
            DirChange::Unlink(name) => {
                names.remove(name);
            }
            DirChange::Rename(from, to) => {
                if let Some(inode) = names.remove(from) {
                    names.insert(to.clone(), inode);
                }
            }
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Inode {
    /// What the file holds now.
    data: Vec<u8>,
    /// What it holds on stable storage: `data` as of its last sync.
    durable: Vec<u8>,
    /// Bytes of disk space reserved for it (`AppendFile::reserve`).
    reserved: u64,
}

/// What is left on the disk after the power went: file names and contents.
type Image = BTreeMap<String, Vec<u8>>;

/// The disk behind a [`SimFs`].
struct Disk {
    /// The one directory, the journal's.
    dir: PathBuf,
    inodes: HashMap<u64, Inode>,
    next_inode: u64,
    /// The directory as the running system sees it.
    names: BTreeMap<String, u64>,
    /// The directory as of its last sync.
    durable_names: BTreeMap<String, u64>,
    /// Changes since the last directory sync, oldest first.
    unsynced: Vec<DirChange>,
    /// Operations so far.
    ops: u64,
    /// The operation the power goes at.
    crash_at: u64,
    /// What was left, once the power went, and when it went.
    crashed: Option<(Image, Phase)>,
    rng: StdRng,
    /// Set while the journal is being opened.
    recovering: bool,
    /// What the writer thread is in the middle of: rotating or releasing, until it syncs the
    /// directory.
    activity: Option<Phase>,
    /// Operations by kind: writes, data syncs, directory syncs...
    counts: BTreeMap<&'static str, u64>,
    /// What the crash is: a power loss (false: a crash of the process only).
    power_loss: bool,
    /// The bytes the disk holds, all files together; `None`: no limit.
    capacity: Option<u64>,
}

fn power_lost() -> io::Error {
    io::Error::other("the power went (simulated)")
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} not found", path.display()),
    )
}

impl Disk {
    /// The name of `path` in the directory.
    fn name(&self, path: &Path) -> io::Result<String> {
        match (path.parent(), path.file_name()) {
            (Some(parent), Some(name)) if parent == self.dir => {
                Ok(name.to_string_lossy().into_owned())
            }
            _ => Err(io::Error::other(format!(
                "{} is outside the simulated directory",
                path.display()
            ))),
        }
    }

    /// Starts an operation: fails once the power is gone, or if it goes now. When the power
    /// goes at this operation, it either fails before doing anything (`Err`) or does its work
    /// first (`Ok(true)`: call [`finish`](Self::finish) after).
    fn begin(&mut self, kind: &'static str, path: &Path) -> io::Result<bool> {
        if self.crashed.is_some() {
            return Err(power_lost());
        }
        *self.counts.entry(kind).or_default() += 1;
        self.ops += 1;
        let phase = self.phase(kind, path);
        if self.ops != self.crash_at {
            return Ok(false);
        }
        if self.rng.random_bool(0.5) {
            self.activity = Some(phase);
            return Ok(true);
        }
        self.crash(phase);
        Err(power_lost())
    }

    /// Ends an operation that the power goes after, if `crash`.
    fn finish(&mut self, crash: bool) -> io::Result<()> {
        if crash {
            let phase = self.activity.unwrap_or(Phase::Other);
            self.crash(phase);
            return Err(power_lost());
        }
        Ok(())
    }

    /// What the journal is doing, from the operation, the file and the thread it runs on.
    /// Records are written by the appenders' threads as well as the writer thread.
    fn phase(&mut self, kind: &'static str, path: &Path) -> Phase {
        if self.recovering {
            return Phase::Recovery;
        }
        // The writer thread, or its syncer.
        let writer = std::thread::current()
            .name()
            .is_some_and(|name| name.starts_with("quickstore-journal"));
        let segment = path.extension().is_some_and(|e| e == "wal");
        match kind {
            "open_append" if segment && writer => {
                self.activity = Some(Phase::Rotation);
                Phase::Rotation
            }
            "remove" if segment && writer => {
                self.activity = Some(Phase::Release);
                Phase::Release
            }
            "sync_dir" if writer => self.activity.take().unwrap_or(Phase::Other),
            _ if writer || segment => self.activity.unwrap_or(Phase::Records),
            _ => Phase::Other,
        }
    }

    /// Cuts the power (or kills the process): computes what the disk keeps.
    fn crash(&mut self, phase: Phase) {
        if !self.power_loss {
            self.crashed = Some((self.image(false), phase));
            return;
        }
        let kept = self.rng.random_range(0..=self.unsynced.len());
        let mut names = self.durable_names.clone();
        for change in &self.unsynced[..kept] {
            change.apply(&mut names);
        }
        let mut image = Image::new();
        for (name, inode) in names {
            let Some(inode) = self.inodes.get(&inode) else {
                continue;
            };
            let mut bytes = inode.durable.clone();
            if inode.data.len() > bytes.len() && inode.data.starts_with(&bytes) {
                let unsynced = inode.data.len() - bytes.len();
                let torn = match self.rng.random_range(0..3) {
                    0 => 0,
                    1 => unsynced,
                    _ => self.rng.random_range(0..=unsynced),
                };
                bytes.extend_from_slice(&inode.data[inode.durable.len()..][..torn]);
            }
            image.insert(name, bytes);
        }
        self.crashed = Some((image, phase));
    }

    /// What the disk would keep if the power went now (`power_loss`), tearing nothing written
    /// since the last syncs, or if the process crashed now.
    fn image(&self, power_loss: bool) -> Image {
        let names = if power_loss {
            &self.durable_names
        } else {
            &self.names
        };
        names
            .iter()
            .filter_map(|(name, inode)| {
                let inode = self.inodes.get(inode)?;
                let bytes = if power_loss {
                    &inode.durable
                } else {
                    &inode.data
                };
                Some((name.clone(), bytes.clone()))
            })
            .collect()
    }

    /// Whether `inode` may hold `len` bytes (written or reserved) without the disk running out
    /// of space; fails with `StorageFull` if not. Files no name links take no space.
    fn room(&self, inode: u64, len: u64) -> io::Result<()> {
        let Some(capacity) = self.capacity else {
            return Ok(());
        };
        let linked: std::collections::BTreeSet<u64> = self.names.values().copied().collect();
        let used: u64 = linked
            .iter()
            .filter(|&&i| i != inode)
            .filter_map(|i| self.inodes.get(i))
            .map(|i| (i.data.len() as u64).max(i.reserved))
            .sum();
        let own = self
            .inodes
            .get(&inode)
            .map_or(0, |i| (i.data.len() as u64).max(i.reserved));
        if used + own.max(len) > capacity {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "the simulated disk is full",
            ));
        }
        Ok(())
    }

    fn inode(&mut self, inode: u64) -> &mut Inode {
        self.inodes.entry(inode).or_default()
    }

    /// Links a new, empty file under `name`.
    fn link_new(&mut self, name: String) -> u64 {
        let inode = self.next_inode;
        self.next_inode += 1;
        self.inodes.insert(inode, Inode::default());
        self.names.insert(name.clone(), inode);
        self.unsynced.push(DirChange::Link(name, inode));
        inode
    }
}

/// A simulated disk holding one directory; see the module docs. Clones share the disk.
#[derive(Clone)]
struct SimFs(Arc<Mutex<Disk>>);

impl SimFs {
    /// A disk holding `image` (all of it durable) in `dir`, whose power goes at operation
    /// `crash_at`.
    fn new(dir: &Path, image: &Image, crash_at: u64, seed: u64) -> Self {
        let mut disk = Disk {
            dir: dir.to_path_buf(),
            inodes: HashMap::new(),
            next_inode: 0,
            names: BTreeMap::new(),
            durable_names: BTreeMap::new(),
            unsynced: Vec::new(),
            ops: 0,
            crash_at,
            crashed: None,
            rng: StdRng::seed_from_u64(seed),
            recovering: false,
            activity: None,
            counts: BTreeMap::new(),
            power_loss: true,
            capacity: None,
        };
        for (name, bytes) in image {
            let inode = disk.next_inode;
            disk.next_inode += 1;
            disk.inodes.insert(
                inode,
                Inode {
                    data: bytes.clone(),
                    durable: bytes.clone(),
                    reserved: 0,
                },
            );
            disk.names.insert(name.clone(), inode);
        }
        disk.durable_names = disk.names.clone();
        Self(Arc::new(Mutex::new(disk)))
    }

    /// Makes the crash to come a crash of the process, not a power loss.
    fn crash_process_only(self) -> Self {
        self.0.lock().power_loss = false;
        self
    }

    /// Whether the crash to come (or that came) is a power loss.
    fn power_loss(&self) -> bool {
        self.0.lock().power_loss
    }

    /// What a power loss (`power_loss`) or a crash of the process would leave now, with no
    /// torn write; the disk runs on.
    fn image(&self, power_loss: bool) -> Image {
        self.0.lock().image(power_loss)
    }

    /// Cuts the power now, unless it went already.
    fn crash_now(&self) {
        let mut disk = self.0.lock();
        if disk.crashed.is_none() {
            disk.crash(Phase::End);
        }
    }

    /// What the disk kept when the power went, and what the journal was doing.
    fn crashed(&self) -> Option<(Image, Phase)> {
        self.0.lock().crashed.clone()
    }

    fn set_recovering(&self, recovering: bool) {
        self.0.lock().recovering = recovering;
    }

    fn counts(&self) -> BTreeMap<&'static str, u64> {
        self.0.lock().counts.clone()
    }
}

/// A file of a [`SimFs`]: it writes to its inode, whatever name the inode has now.
struct SimFile {
    disk: Arc<Mutex<Disk>>,
    inode: u64,
    /// Whether it is a journal segment.
    segment: bool,
}

impl AppendFile for SimFile {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut disk = self.disk.lock();
        let crash = disk.begin("write", self.path())?;
        let len = disk.inode(self.inode).data.len() + bytes.len();
        if let Err(err) = disk.room(self.inode, len as u64) {
            disk.finish(crash)?;
            *disk.counts.entry("write (disk full)").or_default() += 1;
            return Err(err);
        }
        disk.inode(self.inode).data.extend_from_slice(bytes);
        disk.finish(crash)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let mut disk = self.disk.lock();
        let syncer = std::thread::current().name() == Some("quickstore-journal-sync");
        let kind = if syncer {
            "sync_data (syncer)"
        } else {
            "sync_data"
        };
        let crash = disk.begin(kind, self.path())?;
        // A sync makes durable what was written before it began; writes made while it runs
        // (through another handle, by another thread) may or may not be. Letting them in makes
        // a syncer that counts them as synced lose acknowledged mutations in a power loss.
        let written = disk.inode(self.inode).data.clone();
        drop(disk);
        std::thread::yield_now();
        let mut disk = self.disk.lock();
        if !crash && disk.crashed.is_some() {
            // The power went meanwhile: the sync never returns.
            return Err(power_lost());
        }
        let inode = disk.inode(self.inode);
        // Unless a sync that began later made more durable already.
        if !inode.durable.starts_with(&written) {
            inode.durable = written;
        }
        disk.finish(crash)
    }

    fn sync_all(&mut self) -> io::Result<()> {
        self.sync_data()
    }

    fn sync_handle(&self) -> io::Result<Box<dyn AppendFile>> {
        Ok(Box::new(SimFile {
            disk: Arc::clone(&self.disk),
            inode: self.inode,
            segment: self.segment,
        }))
    }

    fn reserve(&mut self, len: u64) -> io::Result<bool> {
        let mut disk = self.disk.lock();
        let crash = disk.begin("reserve", self.path())?;
        if let Err(err) = disk.room(self.inode, len) {
            disk.finish(crash)?;
            *disk.counts.entry("reserve (disk full)").or_default() += 1;
            return Err(err);
        }
        let inode = disk.inode(self.inode);
        inode.reserved = inode.reserved.max(len);
        disk.finish(crash)?;
        Ok(true)
    }
}

impl SimFile {
    /// A stand-in path for the file's operations: a segment's or another file's.
    fn path(&self) -> &'static Path {
        Path::new(if self.segment { "segment.wal" } else { "" })
    }
}

impl FileSystem for SimFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut disk = self.0.lock();
        disk.begin("create_dir", dir)?;
        if dir == disk.dir {
            Ok(())
        } else {
            Err(io::Error::other("only the journal directory is simulated"))
        }
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        let mut disk = self.0.lock();
        let crash = disk.begin("open_append", path)?;
        let name = disk.name(path)?;
        let inode = match disk.names.get(&name) {
            Some(&inode) => inode,
            None => disk.link_new(name),
        };
        disk.finish(crash)?;
        Ok(Box::new(SimFile {
            disk: Arc::clone(&self.0),
            inode,
            segment: path.extension().is_some_and(|e| e == "wal"),
        }))
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        let mut disk = self.0.lock();
        let crash = disk.begin("create", path)?;
        let name = disk.name(path)?;
        let inode = match disk.names.get(&name) {
            Some(&inode) => {
                disk.inode(inode).data.clear();
                inode
            }
            None => disk.link_new(name),
        };
        disk.finish(crash)?;
        Ok(Box::new(SimFile {
            disk: Arc::clone(&self.0),
            inode,
            segment: path.extension().is_some_and(|e| e == "wal"),
        }))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut disk = self.0.lock();
        disk.begin("read", path)?;
        let name = disk.name(path)?;
        match disk.names.get(&name).copied() {
            Some(inode) => Ok(disk.inode(inode).data.clone()),
            None => Err(not_found(path)),
        }
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let mut disk = self.0.lock();
        disk.begin("list", dir)?;
        if dir != disk.dir {
            return Err(not_found(dir));
        }
        Ok(disk.names.keys().map(|name| dir.join(name)).collect())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.0.lock();
        let crash = disk.begin("remove", path)?;
        let name = disk.name(path)?;
        if disk.names.remove(&name).is_none() {
            return Err(not_found(path));
        }
        disk.unsynced.push(DirChange::Unlink(name));
        disk.finish(crash)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut disk = self.0.lock();
        let crash = disk.begin("rename", to)?;
        let (from_name, to_name) = (disk.name(from)?, disk.name(to)?);
        let Some(inode) = disk.names.remove(&from_name) else {
            return Err(not_found(from));
        };
        disk.names.insert(to_name.clone(), inode);
        disk.unsynced.push(DirChange::Rename(from_name, to_name));
        disk.finish(crash)
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut disk = self.0.lock();
        let crash = disk.begin("truncate", path)?;
        let name = disk.name(path)?;
        let Some(inode) = disk.names.get(&name).copied() else {
            return Err(not_found(path));
        };
        let inode = disk.inode(inode);
        inode
            .data
            .truncate(usize::try_from(len).unwrap_or(usize::MAX));
        inode.durable = inode.data.clone();
        disk.finish(crash)
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.0.lock();
        let crash = disk.begin("sync_file", path)?;
        let name = disk.name(path)?;
        let Some(inode) = disk.names.get(&name).copied() else {
            return Err(not_found(path));
        };
        let inode = disk.inode(inode);
        inode.durable = inode.data.clone();
        disk.finish(crash)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut disk = self.0.lock();
        let crash = disk.begin("sync_dir", dir)?;
        disk.durable_names = disk.names.clone();
        disk.unsynced.clear();
        disk.finish(crash)
    }

    fn try_lock(&self, path: &Path) -> io::Result<Option<Lock>> {
        self.open_append(path).map(|_| Some(Box::new(()) as Lock))
    }
}

/// A mutation the model expects: its sequence, key, and the value upserted (`None`: deleted).
#[derive(Debug, Clone)]
struct Mutation {
    seq: u64,
    key: String,
    value: Option<u64>,
}

/// What the journal must give back, kept as a store would keep it.
#[derive(Debug)]
struct Model {
    durability: Durability,
    versioned: bool,
    segment_bytes: u64,
    reserve_bytes: u64,
    /// Mutations the journal refused for want of disk space.
    refused: u64,
    /// What the backend holds: the landed mutations.
    landed: BTreeMap<String, u64>,
    /// Mutations journaled and not landed, in sequence order.
    pending: Vec<Mutation>,
    /// Every pending mutation up to this sequence must survive a power loss: under `Always`,
    /// the acknowledged ones; under either policy, the ones the journal reported synced.
    floor: u64,
    /// Every pending mutation up to this sequence was acknowledged, and survives a crash of
    /// the process: once the process crashed, the floor rises to it.
    acknowledged: u64,
    /// The sequence below which every mutation landed, as the store releases the journal.
    released: u64,
    /// Values given out, so that each upsert stores a new one.
    values: u64,
    /// Dead letters acknowledged: their keys.
    dead_letters: Vec<String>,
    /// The writer id, once a journal opened.
    writer: Option<u64>,
}

/// What the whole test did: where the power went, by phase, and the disk operations by kind.
#[derive(Debug, Default)]
struct Coverage {
    crashes: BTreeMap<Phase, u64>,
    /// Crashes of the process, the machine running on.
    process_crashes: u64,
    /// Mutations refused for want of disk space.
    refused: u64,
    operations: BTreeMap<&'static str, u64>,
}

fn fail(message: impl Into<String>) -> TestCaseError {
    TestCaseError::fail(message.into())
}

fn check(condition: bool, message: impl FnOnce() -> String) -> Result<(), TestCaseError> {
    if condition {
        Ok(())
    } else {
        Err(fail(message()))
    }
}

/// Whether `err` comes of a full disk.
fn is_full(err: &Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(err) = source {
        // A cause is shared, behind an `Arc`.
        let io = match err.downcast_ref::<crate::error::Cause>() {
            Some(cause) => cause.downcast_ref::<io::Error>(),
            None => err.downcast_ref::<io::Error>(),
        };
        if io.is_some_and(|e| e.kind() == io::ErrorKind::StorageFull) {
            return true;
        }
        source = err.source();
    }
    false
}

fn value_item(value: u64) -> Arc<Item> {
    Arc::new(Item::from([(
        "n".to_string(),
        aws_sdk_dynamodb::types::AttributeValue::N(value.to_string()),
    )]))
}

fn item_value(item: &Item) -> Option<u64> {
    match item.get("n") {
        Some(aws_sdk_dynamodb::types::AttributeValue::N(n)) => n.parse().ok(),
        _ => None,
    }
}

fn apply(state: &mut BTreeMap<String, u64>, mutation: &Mutation) {
    match mutation.value {
        Some(value) => state.insert(mutation.key.clone(), value),
        None => state.remove(&mutation.key),
    };
}

impl Model {
    fn config(&self, dir: &Path) -> JournalConfig {
        JournalConfig {
            dir: dir.to_path_buf(),
            durability: self.durability,
            segment_bytes: self.segment_bytes,
            reserve_bytes: self.reserve_bytes,
            recovery: Recovery::Strict,
        }
    }

    /// Checks what a journal recovered: with the backend, it must be the state after some
    /// prefix of the pending mutations, one that keeps every mutation up to the floor. Then the
    /// pending mutations are that prefix, all durable now.
    fn recovered(&mut self, recovered: &Recovered) -> Result<(), TestCaseError> {
        let mut seen = self.landed.clone();
        for record in recovered.pending.iter().filter_map(|p| p.full.as_ref()) {
            check(record.seq <= recovered.max_seq, || {
                format!(
                    "record {} is beyond max_seq {}",
                    record.seq, recovered.max_seq
                )
            })?;
            match &record.item {
                Some(item) => {
                    let value = item_value(item).ok_or_else(|| fail("an item lost its value"))?;
                    seen.insert(record.key.clone(), value)
                }
                None => seen.remove(&record.key),
            };
        }
        let floor = self.floor;
        let must = self.pending.iter().take_while(|m| m.seq <= floor).count();
        let mut state = self.landed.clone();
        let mut matched = None;
        for k in 0..=self.pending.len() {
            if k > 0 {
                apply(&mut state, &self.pending[k - 1]);
                if self.pending[k - 1].seq > recovered.max_seq {
                    break;
                }
            }
            if k >= must && state == seen {
                matched = Some(k);
            }
        }
        let Some(kept) = matched else {
            return Err(fail(format!(
                "recovery lost acknowledged mutations or invented some: the backend and the \
                 recovered records give {seen:?}; no prefix of at least {must} of the pending \
                 {:?} over the landed {:?} gives that (floor {floor}, max_seq {}, report {:?})",
                self.pending, self.landed, recovered.max_seq, recovered.report
            )));
        };
        self.pending.truncate(kept);
        self.floor = self.pending.last().map_or(0, |m| m.seq);
        self.acknowledged = self.floor;
        Ok(())
    }

    /// Lands the pending mutations up to `seq` (all durable): the backend takes them, a
    /// versioned journal notes them settled, and the journal may release them.
    fn land(&mut self, journal: &Journal, count: usize) -> Result<(), TestCaseError> {
        let landed: Vec<Mutation> = self.pending.drain(..count).collect();
        let mut newest = BTreeMap::new();
        for mutation in &landed {
            apply(&mut self.landed, mutation);
            newest.insert(mutation.key.clone(), mutation.seq);
        }
        if let Some(last) = landed.last() {
            if self.versioned {
                for (key, seq) in newest {
                    // Errors are the power going: the markers need not reach the disk.
                    let _ = journal.settled(&key, seq, TableState::Present(seq));
                }
            }
            self.released = last.seq + 1;
            journal.release_below(self.released);
        }
        Ok(())
    }

    /// Notes what the writer reports synced.
    fn observe(&mut self, journal: &Journal) {
        let synced = journal.shared.progress.borrow().synced;
        self.floor = self.floor.max(synced);
    }
}

/// One life of the journal on `fs`: opens it (and opens it again after each clean close), runs
/// random steps, until the power goes (at `fs`'s chosen operation, or at the end of the steps).
fn life(
    fs: &SimFs,
    dir: &Path,
    model: &mut Model,
    rng: &mut StdRng,
    runtime: &tokio::runtime::Runtime,
) -> Result<(), TestCaseError> {
    loop {
        fs.set_recovering(true);
        let opened = Journal::open_with(&model.config(dir), Arc::new(fs.clone()));
        fs.set_recovering(false);
        let (journal, recovered) = match opened {
            Ok(opened) => opened,
            Err(err) if fs.crashed().is_some() => {
                let _ = err;
                return Ok(());
            }
            // No room for the first segment: the journal does not open, and changes nothing.
            Err(err) if is_full(&err) && fs.0.lock().capacity.is_some() => {
                fs.crash_now();
                return Ok(());
            }
            Err(err) => return Err(fail(format!("the journal did not open: {err}"))),
        };
        model.recovered(&recovered)?;
        if let Some(writer) = model.writer {
            check(journal.writer_id() == writer, || {
                "the writer id changed".to_string()
            })?;
        }
        model.writer = Some(journal.writer_id());
        let seq = AtomicU64::new(recovered.max_seq);
        // Sequences start again from 1 after a journal was emptied.
        model.released = model.released.min(recovered.max_seq + 1);
        // The store writes what was recovered first, most of the time; what landed before
        // the crash may go at once.
        if rng.random_bool(0.7) {
            model.land(&journal, model.pending.len())?;
        } else {
            journal.release_below(model.released);
        }
        let steps = rng.random_range(5..40);
        let mut closed = false;
        for _ in 0..steps {
            let step = rng.random_range(0..100);
            let outcome = match step {
                0..50 => {
                    let key = format!("K{}", rng.random_range(0..6));
                    let value = rng.random_bool(0.8).then(|| {
                        model.values += 1;
                        model.values
                    });
                    let base = model.versioned.then_some(TableState::Present(1));
                    let (op, item) = match value {
                        Some(value) => (Op::Upsert, Some(value_item(value))),
                        None => (Op::Delete, None),
                    };
                    match journal.append(&seq, op, &key, item.as_ref(), base) {
                        // Refused for want of space: nothing appended, and the journal goes on.
                        Err(Error::JournalFull { .. }) => {
                            model.refused += 1;
                            let failure = journal.shared.state.lock().failure.clone();
                            check(failure.is_none() || fs.crashed().is_some(), || {
                                format!("a full disk failed the journal: {failure:?}")
                            })?;
                            Ok(())
                        }
                        Ok(appended) => {
                            model.pending.push(Mutation {
                                seq: appended,
                                key,
                                value,
                            });
                            if rng.random_bool(0.6) {
                                wait(&journal, model, appended, runtime)
                            } else {
                                Ok(())
                            }
                        }
                        Err(_) => Err(()),
                    }
                }
                50..65 => match model.pending.last() {
                    Some(last) => wait(&journal, model, last.seq, runtime),
                    None => Ok(()),
                },
                65..85 => {
                    model.observe(&journal);
                    let durable = model
                        .pending
                        .iter()
                        .take_while(|m| m.seq <= model.floor)
                        .count();
                    let count = rng.random_range(0..=durable);
                    model.land(&journal, count)?;
                    Ok(())
                }
                85..92 => {
                    let key = format!("DL{}", model.dead_letters.len());
                    let write = Write::Delete(key.clone());
                    match journal.dead_letter(0, &key, &write, "refused") {
                        Ok(()) => {
                            model.dead_letters.push(key);
                            Ok(())
                        }
                        // Not acknowledged; the dead-letter file is not reserved.
                        Err(err) if is_full(&err) => Ok(()),
                        Err(_) => Err(()),
                    }
                }
                92..97 if model.versioned => {
                    // A burst of markers of landed keys, as a flusher settling its writes.
                    for (key, &value) in &model.landed {
                        let _ = journal.settled(key, 0, TableState::Present(value));
                    }
                    Ok(())
                }
                _ => {
                    journal.close(model.released);
                    closed = true;
                    Ok(())
                }
            };
            if outcome.is_err() || closed || fs.crashed().is_some() {
                break;
            }
        }
        if closed && fs.crashed().is_none() {
            // A clean close syncs everything.
            model.floor = model.pending.last().map_or(0, |m| m.seq);
            model.acknowledged = model.floor;
            drop(journal);
            continue;
        }
        fs.crash_now();
        drop(journal);
        return Ok(());
    }
}

/// Waits for `seq` to be acknowledged; under `Always`, what is acknowledged must survive.
fn wait(
    journal: &Journal,
    model: &mut Model,
    seq: u64,
    runtime: &tokio::runtime::Runtime,
) -> Result<(), ()> {
    let waited = runtime.block_on(journal.wait(seq));
    model.observe(journal);
    match waited {
        Ok(()) => {
            model.acknowledged = model.acknowledged.max(seq);
            if model.durability == Durability::Always {
                model.floor = model.floor.max(seq);
            }
            Ok(())
        }
        Err(_) => Err(()),
    }
}

/// Checks a disk image after the power went: inspection agrees that the journal opens strictly,
/// and every acknowledged dead letter is there.
fn check_image(dir: &Path, image: &Image, model: &Model) -> Result<(), TestCaseError> {
    let fs = SimFs::new(dir, image, u64::MAX, 0);
    let summary = inspect::inspect(&fs, dir)
        .map_err(|e| fail(format!("inspection failed after a crash: {e}")))?;
    check(summary.opens_strictly(), || {
        format!("a crash left a journal that does not open strictly: {summary:?}")
    })?;
    let letters: Vec<&str> = summary
        .dead_letters
        .iter()
        .map(|l| l.key.as_str())
        .collect();
    for key in &model.dead_letters {
        check(letters.contains(&key.as_str()), || {
            format!("the acknowledged dead letter {key} was lost: {letters:?}")
        })?;
    }
    Ok(())
}

/// One case: several lives, each ended by a power cut, then a last recovery.
fn run_case(
    seed: u64,
    durability: Durability,
    versioned: bool,
    lives: usize,
    coverage: &Mutex<Coverage>,
) -> Result<(), TestCaseError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let dir = PathBuf::from("/simulated/journal");
    let mut model = Model {
        durability,
        versioned,
        segment_bytes: rng.random_range(64..512),
        reserve_bytes: rng.random_range(128..1024),
        refused: 0,
        landed: BTreeMap::new(),
        pending: Vec::new(),
        floor: 0,
        acknowledged: 0,
        released: 0,
        values: 0,
        dead_letters: Vec::new(),
        writer: None,
    };
    let mut image = Image::new();
    for _ in 0..lives {
        // Early operations are recovery's; later ones are anywhere.
        let crash_at = if rng.random_bool(0.3) {
            rng.random_range(1..=16)
        } else {
            rng.random_range(1..=150)
        };
        let mut fs = SimFs::new(&dir, &image, crash_at, rng.random());
        if rng.random_bool(0.3) {
            fs = fs.crash_process_only();
        }
        if rng.random_bool(0.3) {
            // A small disk, which the journal fills: the segments left, a reservation ahead
            // of the writes, the dead letters, and room to spare or not.
            let used: u64 = image.values().map(|bytes| bytes.len() as u64).sum();
            let room = rng.random_range(0..4 * model.reserve_bytes);
            fs.0.lock().capacity = Some(used + room);
        }
        life(&fs, &dir, &mut model, &mut rng, &runtime)?;
        // A crash of the process keeps everything acknowledged; a power loss may lose what was
        // acknowledged but not synced, and what it lost need not survive the next crash.
        let power_loss = fs.power_loss();
        if !power_loss {
            model.floor = model.floor.max(model.acknowledged);
        }
        model.acknowledged = model.floor;
        let (left, phase) = fs
            .crashed()
            .ok_or_else(|| fail("a life ended without a crash"))?;
        let mut covered = coverage.lock();
        covered.refused += std::mem::take(&mut model.refused);
        *covered.crashes.entry(phase).or_default() += 1;
        if !power_loss {
            covered.process_crashes += 1;
        }
        for (kind, count) in fs.counts() {
            *covered.operations.entry(kind).or_default() += count;
        }
        drop(covered);
        check_image(&dir, &left, &model)?;
        image = left;
    }
    // The last recovery, without a crash.
    let fs = SimFs::new(&dir, &image, u64::MAX, 0);
    let (journal, recovered) = Journal::open_with(&model.config(&dir), Arc::new(fs.clone()))
        .map_err(|e| fail(format!("the journal did not open: {e}")))?;
    model.recovered(&recovered)?;
    journal.close(0);
    Ok(())
}

/// Every mutation acknowledged under `Durability::Always` survives a power cut at any point,
/// and under `Durability::Interval(d)` every mutation the journal reported synced does (the
/// syncer syncs at most `d` apart, so a cut loses at most the mutations of the last `d`); every
/// mutation acknowledged under either policy survives a crash of the process; what survives is
/// always a prefix of what was journaled, with no gap, and the journal opens strictly.
#[test]
fn power_loss_loses_nothing_acknowledged() -> Result<(), String> {
    let coverage = Mutex::new(Coverage::default());
    let config = Config {
        cases: 400,
        failure_persistence: None,
        max_shrink_iters: 16,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let durability = prop_oneof![
        Just(Durability::Always),
        Just(Durability::Interval(Duration::ZERO)),
        Just(Durability::Interval(Duration::from_millis(1))),
        Just(Durability::Interval(Duration::from_secs(3600))),
    ];
    let result = runner.run(
        &(any::<u64>(), durability, any::<bool>(), 3..10usize),
        |(seed, durability, versioned, lives)| {
            run_case(seed, durability, versioned, lives, &coverage)
        },
    );
    result.map_err(|err| err.to_string())?;
    let coverage = coverage.into_inner();
    let total: u64 = coverage.crashes.values().sum();
    assert!(total >= 1000, "only {total} crashes: {coverage:?}");
    for phase in [
        Phase::Recovery,
        Phase::Rotation,
        Phase::Release,
        Phase::Records,
    ] {
        assert!(
            coverage.crashes.get(&phase).copied().unwrap_or(0) > 0,
            "no crash during {phase:?}: {coverage:?}"
        );
    }
    assert!(
        coverage.process_crashes > 0,
        "no crash of the process: {coverage:?}"
    );
    assert!(
        coverage.refused > 0,
        "no mutation refused on a full disk: {coverage:?}"
    );
    for kind in [
        "write",
        "sync_data",
        "sync_data (syncer)",
        "sync_dir",
        "remove",
        "rename",
        "truncate",
        "reserve",
        "reserve (disk full)",
    ] {
        assert!(
            coverage.operations.get(kind).copied().unwrap_or(0) > 0,
            "no {kind}: {coverage:?}"
        );
    }
    Ok(())
}

/// A gate that data syncs wait at while it is closed.
#[derive(Default)]
struct Gate {
    /// Whether it is closed, and how many syncs wait at it.
    state: Mutex<(bool, usize)>,
    changed: parking_lot::Condvar,
}

impl Gate {
    fn close(&self) {
        self.state.lock().0 = true;
    }

    fn open(&self) {
        self.state.lock().0 = false;
        self.changed.notify_all();
    }

    /// Waits while the gate is closed.
    fn pass(&self) {
        let mut state = self.state.lock();
        state.1 += 1;
        self.changed.notify_all();
        while state.0 {
            self.changed.wait(&mut state);
        }
        state.1 -= 1;
    }

    /// Waits until a sync waits at the gate.
    fn until_held(&self) {
        let mut state = self.state.lock();
        while state.1 == 0 {
            self.changed.wait(&mut state);
        }
    }
}

/// Opens its gate when dropped.
struct Opener(Arc<Gate>);

impl Drop for Opener {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// A [`SimFs`] whose files' data syncs wait at a gate.
struct GatedFs {
    disk: SimFs,
    gate: Arc<Gate>,
}

struct GatedFile {
    file: Box<dyn AppendFile>,
    gate: Arc<Gate>,
}

impl AppendFile for GatedFile {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.gate.pass();
        self.file.sync_data()
    }

    fn sync_all(&mut self) -> io::Result<()> {
        self.file.sync_all()
    }

    fn sync_handle(&self) -> io::Result<Box<dyn AppendFile>> {
        Ok(Box::new(GatedFile {
            file: self.file.sync_handle()?,
            gate: Arc::clone(&self.gate),
        }))
    }

    fn reserve(&mut self, len: u64) -> io::Result<bool> {
        self.file.reserve(len)
    }
}

impl GatedFs {
    fn gated(&self, file: Box<dyn AppendFile>) -> Box<dyn AppendFile> {
        Box::new(GatedFile {
            file,
            gate: Arc::clone(&self.gate),
        })
    }
}

impl FileSystem for GatedFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.disk.create_dir_all(dir)
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        self.disk.open_append(path).map(|file| self.gated(file))
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        self.disk.create(path).map(|file| self.gated(file))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.disk.read(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        self.disk.list(dir)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.disk.remove(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.disk.rename(from, to)
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        self.disk.truncate(path, len)
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        self.disk.sync_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.disk.sync_dir(dir)
    }

    fn try_lock(&self, path: &Path) -> io::Result<Option<Lock>> {
        self.disk.try_lock(path)
    }
}

/// The keys of the records a journal recovers from `image`, in order.
fn recovered_keys(dir: &Path, image: &Image) -> Result<Vec<String>, String> {
    let fs = SimFs::new(dir, image, u64::MAX, 0);
    let config = JournalConfig {
        dir: dir.to_path_buf(),
        durability: Durability::Always,
        segment_bytes: DEFAULT_SEGMENT_BYTES,
        reserve_bytes: DEFAULT_RESERVE_BYTES,
        recovery: Recovery::Strict,
    };
    let (journal, recovered) =
        Journal::open_with(&config, Arc::new(fs)).map_err(|e| e.to_string())?;
    journal.close(0);
    Ok(recovered
        .pending
        .iter()
        .map(|p| p.key().to_owned())
        .collect())
}

/// Under an interval policy, an append is written and acknowledged while the syncer's sync is
/// held: appends never wait for a sync. What was acknowledged then survives a crash of the
/// process but not yet a power loss; once the sync returns, it survives a power loss too.
#[test]
fn an_append_completes_while_a_sync_is_blocked() -> Result<(), String> {
    let dir = PathBuf::from("/simulated/journal");
    let disk = SimFs::new(&dir, &Image::new(), u64::MAX, 0);
    let gate = Arc::new(Gate::default());
    let fs = GatedFs {
        disk: disk.clone(),
        gate: Arc::clone(&gate),
    };
    let config = JournalConfig {
        dir: dir.clone(),
        durability: Durability::Interval(Duration::ZERO),
        segment_bytes: DEFAULT_SEGMENT_BYTES,
        reserve_bytes: DEFAULT_RESERVE_BYTES,
        recovery: Recovery::Strict,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    // Only a deadlock (an append waiting for the held sync) takes this long: the test then
    // fails instead of hanging.
    let deadlock = Duration::from_secs(60);
    let (journal, recovered) =
        Journal::open_with(&config, Arc::new(fs)).map_err(|e| e.to_string())?;
    let seq = AtomicU64::new(recovered.max_seq);
    gate.close();
    // Opens the gate however the test ends, before the journal is dropped (which syncs).
    let _opened = Opener(Arc::clone(&gate));

    let first = journal
        .append(&seq, Op::Upsert, "first", Some(&value_item(1)), None)
        .map_err(|e| e.to_string())?;
    runtime
        .block_on(async { tokio::time::timeout(deadlock, journal.wait(first)).await })
        .map_err(|_| "the first append waited for a sync".to_string())?
        .map_err(|e| e.to_string())?;
    // The syncer, with a sync due at once, is syncing the first append now, and stays there.
    gate.until_held();

    let second = journal
        .append(&seq, Op::Upsert, "second", Some(&value_item(2)), None)
        .map_err(|e| e.to_string())?;
    runtime
        .block_on(async { tokio::time::timeout(deadlock, journal.wait(second)).await })
        .map_err(|_| "an append waited for the held sync".to_string())?
        .map_err(|e| e.to_string())?;
    let progress = *journal.shared.progress.borrow();
    assert_eq!(progress.written, second);
    assert!(
        progress.synced < first,
        "synced past a held sync: {progress:?}"
    );
    // Written, not synced: a crash of the process keeps both, a power loss neither.
    assert_eq!(
        recovered_keys(&dir, &disk.image(false))?,
        ["first", "second"]
    );
    assert_eq!(
        recovered_keys(&dir, &disk.image(true))?,
        Vec::<String>::new()
    );

    gate.open();
    let mut watch = journal.shared.progress.subscribe();
    runtime
        .block_on(async {
            tokio::time::timeout(deadlock, watch.wait_for(|p| p.synced >= second))
                .await
                .map(|waited| waited.map(|_| ()))
        })
        .map_err(|_| "the sync never returned".to_string())?
        .map_err(|e| e.to_string())?;
    drop(watch);
    assert_eq!(
        recovered_keys(&dir, &disk.image(true))?,
        ["first", "second"]
    );
    journal.close(0);
    Ok(())
}

/// A store whose journal's disk fills up refuses the next mutation at call time with
/// `Error::JournalFull`: nothing changes (the key keeps its value, nothing is written), the
/// journal does not fail, and once space is free the store takes mutations again. Everything
/// acknowledged is recovered, the refused mutation is not.
#[test]
fn a_full_disk_refuses_the_mutation_at_call_time() -> Result<(), Box<dyn std::error::Error>> {
    use crate::EmbeddedBackend;
    use crate::Key;
    use crate::Store;

    const RESERVE: u64 = 2048;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let tables = tempfile::tempdir()?;
    let dir = PathBuf::from("/simulated/journal");
    let disk = SimFs::new(&dir, &Image::new(), u64::MAX, 0);
    // Room for the writer id and the first segment's reservation, and a little more.
    disk.0.lock().capacity = Some(RESERVE + 600);
    let key = |i: usize| Key::new("Doc", format!("d{i}"));
    // The second store, after the crash, has a table of its own: the first may still hold its
    // own while the runtime winds its tasks down, and wrote nothing to it.
    let open = |fs: SimFs, table: &str| {
        let backend = EmbeddedBackend::open(tables.path().join(table));
        let dir = dir.clone();
        async move {
            Store::builder(backend?)
                .journal(&dir)
                .durability(Durability::Interval(Duration::from_millis(1)))
                // Nothing reaches the backend, nor leaves the journal, unless flushed.
                .flush_interval(Duration::from_secs(3600))
                .journal_file_system(Arc::new(fs), RESERVE)
                .open()
                .await
        }
    };
    runtime.block_on(async {
        let store = open(disk.clone(), "before.redb").await?;
        let mut acknowledged = 0;
        let refused = loop {
            let value = serde_json::json!({ "n": acknowledged });
            match store.upsert(&key(acknowledged)?, &value).await {
                Ok(()) => acknowledged += 1,
                Err(err) => break err,
            }
            assert!(acknowledged < 1000, "the disk never filled");
        };
        assert!(matches!(refused, Error::JournalFull { .. }), "{refused:?}");
        assert!(refused.is_retryable());
        assert_eq!(refused.code(), "JournalException");
        assert!(acknowledged > 3, "only {acknowledged} upserts fitted");
        // Nothing changed: the refused key is absent, the journal did not fail.
        assert!(store.get_item(&key(acknowledged)?).await?.is_none());
        assert_eq!(store.stats().pending, acknowledged);
        let counts = disk.counts();
        assert!(!counts.contains_key("write (disk full)"), "{counts:?}");

        // Space freed: the writer thread reserves more, and the mutation goes through (so the
        // journal did not fail).
        disk.0.lock().capacity = None;
        let taken = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let value = serde_json::json!({ "n": acknowledged });
                match store.upsert(&key(acknowledged)?, &value).await {
                    Ok(()) => return crate::Result::Ok(()),
                    Err(Error::JournalFull { .. }) => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    Err(err) => return Err(err),
                }
            }
        })
        .await;
        assert!(matches!(taken, Ok(Ok(()))), "{taken:?}");
        acknowledged += 1;
        // A crash of the process: everything acknowledged is in the journal.
        let image = disk.image(false);
        drop(store);
        let store = open(SimFs::new(&dir, &image, u64::MAX, 0), "after.redb").await?;
        for i in 0..acknowledged {
            let item = store.get_item(&key(i)?).await?;
            assert!(item.is_some(), "acknowledged d{i} was lost");
        }
        assert!(store.get_item(&key(acknowledged)?).await?.is_none());
        store.close().await?;
        Ok(())
    })
}

/// Appenders on many threads at once, each waiting for its own record: every record is written
/// once, in sequence order, and no acknowledged record is missing; records buffered together
/// go out in one `write` (the group write). Under both policies.
#[test]
fn concurrent_appenders_share_writes_and_lose_nothing() -> Result<(), String> {
    const THREADS: usize = 8;
    const EACH: usize = 300;
    for durability in [
        Durability::Always,
        Durability::Interval(Duration::from_millis(1)),
    ] {
        let dir = PathBuf::from("/simulated/journal");
        let disk = SimFs::new(&dir, &Image::new(), u64::MAX, 0);
        let config = JournalConfig {
            dir: dir.clone(),
            durability,
            segment_bytes: 4096,
            reserve_bytes: 4096,
            recovery: Recovery::Strict,
        };
        let (journal, recovered) =
            Journal::open_with(&config, Arc::new(disk.clone())).map_err(|e| e.to_string())?;
        let seq = AtomicU64::new(recovered.max_seq);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        // Records appended while nobody writes go out together, with one `write`, when one of
        // their appenders waits (the journal has just opened: no other thread writes).
        let writes = || disk.counts().get("write").copied().unwrap_or(0);
        let before = writes();
        let mut last = 0;
        for i in 0..5 {
            last = journal
                .append(
                    &seq,
                    Op::Upsert,
                    &format!("G{i}"),
                    Some(&value_item(1)),
                    None,
                )
                .map_err(|e| e.to_string())?;
        }
        runtime
            .block_on(journal.wait(last))
            .map_err(|e| e.to_string())?;
        assert_eq!(
            writes(),
            before + 1,
            "{durability:?}: one write for five records"
        );
        let acknowledged: Vec<Vec<String>> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (journal, seq, runtime) = (&journal, &seq, &runtime);
                    scope.spawn(move || {
                        let mut keys = Vec::new();
                        for i in 0..EACH {
                            let key = format!("T{t}-{i}");
                            let appended = journal
                                .append(seq, Op::Upsert, &key, Some(&value_item(1)), None)
                                .map_err(|e| e.to_string())?;
                            runtime
                                .block_on(journal.wait(appended))
                                .map_err(|e| e.to_string())?;
                            keys.push(key);
                        }
                        Ok::<_, String>(keys)
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().map_err(|_| "an appender panicked".to_string())?)
                .collect::<Result<_, String>>()
        })?;
        // A crash of the process now: what was written is what recovery finds.
        let image = disk.image(false);
        journal.close(0);
        let found = recovered_keys(&dir, &image)?;
        assert_eq!(found.len(), THREADS * EACH + 5, "{durability:?}");
        for keys in &acknowledged {
            // Each thread's records in its order: sequence order is append order.
            let mine: Vec<&String> = found.iter().filter(|k| keys.contains(k)).collect();
            assert_eq!(mine, keys.iter().collect::<Vec<_>>(), "{durability:?}");
        }
    }
    Ok(())
}
