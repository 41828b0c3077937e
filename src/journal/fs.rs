//! The journal's file layer: every file operation of the journal goes through [`FileSystem`].
//!
//! [`StdFs`] is the real one, over `std::fs`. Tests stand in a simulated disk that loses what
//! was not synced when it "loses power" (see `crash_tests.rs`), to check that the journal syncs
//! what it must, in the right order.
//!
//! What the journal relies on, and what the simulated disk takes away on a crash:
//! - bytes written to a file are durable once the file is synced (`sync_data` or `sync_all`),
//!   through any handle to it (see [`AppendFile::sync_handle`]);
//! - bytes written to a file survive a crash of the process once `write_all` returned, synced
//!   or not (the operating system has them);
//! - a file's creation, renaming or removal is durable once its directory is synced
//!   (`sync_dir`).

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// A held lock; dropping it releases the lock.
pub(crate) type Lock = Box<dyn std::any::Any + Send>;

/// The file operations the journal makes.
pub(crate) trait FileSystem: Send + Sync {
    /// Creates `dir` and its missing parents, the new ones readable by their owner only.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Opens `path` for appending, creating it (readable and writable by its owner only) if it
    /// does not exist.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>>;
    /// Creates `path` empty (readable and writable by its owner only), or empties it, and opens
    /// it for writing.
    fn create(&self, path: &Path) -> io::Result<Box<dyn AppendFile>>;
    /// The whole content of `path`.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// The paths of the entries of `dir`, in no particular order.
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
    /// Removes the file `path`.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Renames `from` to `to`, replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Cuts `path` to `len` bytes and syncs it.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    /// Makes what was written to `path`, by whichever process, durable.
    fn sync_file(&self, path: &Path) -> io::Result<()>;
    /// Makes the creations, renamings and removals in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Takes the lock on `path` (created if missing) that a store holds while it uses the
    /// journal directory; `None` when another holds it.
    fn try_lock(&self, path: &Path) -> io::Result<Option<Lock>>;
}

/// A file open for appending.
pub(crate) trait AppendFile: Send {
    /// Appends all of `bytes`.
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Makes what was written durable (`fdatasync`).
    fn sync_data(&mut self) -> io::Result<()>;
    /// Makes what was written, and the file's metadata, durable (`fsync`).
    fn sync_all(&mut self) -> io::Result<()>;
    /// A second handle to the same file, so that another thread can sync it while this one
    /// goes on writing. Syncing either handle makes durable what was written through both.
    fn sync_handle(&self) -> io::Result<Box<dyn AppendFile>>;
    /// Reserves disk space for the file's first `len` bytes without changing its length, so
    /// that writing them cannot fail for want of space. `Ok(false)` where the file system
    /// cannot reserve space; [`io::ErrorKind::StorageFull`] when the disk has no room.
    fn reserve(&mut self, len: u64) -> io::Result<bool>;
}

/// The real file system.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StdFs;

/// Options creating files readable and writable by their owner only.
fn private() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

impl FileSystem for StdFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir)
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        Ok(Box::new(open_append(path)?))
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        let file = private()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)?;
        Ok(Box::new(file))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        std::fs::read_dir(dir)?
            .map(|entry| entry.map(|e| e.path()))
            .collect()
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let file = OpenOptions::new().write(true).open(path)?;
        file.set_len(len)?;
        file.sync_all()
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        OpenOptions::new().append(true).open(path)?.sync_data()
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        #[cfg(unix)]
        File::open(dir)?.sync_all()?;
        #[cfg(not(unix))]
        let _ = dir;
        Ok(())
    }

    fn try_lock(&self, path: &Path) -> io::Result<Option<Lock>> {
        let file = open_append(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Box::new(file))),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

/// Opens a file for appending, creating it readable and writable by its owner only.
fn open_append(path: &Path) -> io::Result<File> {
    private().create(true).append(true).open(path)
}

impl AppendFile for File {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        io::Write::write_all(self, bytes)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        File::sync_data(self)
    }

    fn sync_all(&mut self) -> io::Result<()> {
        File::sync_all(self)
    }

    fn sync_handle(&self) -> io::Result<Box<dyn AppendFile>> {
        Ok(Box::new(File::try_clone(self)?))
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn reserve(&mut self, len: u64) -> io::Result<bool> {
        use rustix::fs::{fallocate, FallocateFlags};
        use rustix::io::Errno;
        // Space beyond the end of the file, which stays as long as it is: a reader (recovery)
        // sees only what was written.
        match fallocate(&*self, FallocateFlags::KEEP_SIZE, 0, len) {
            Ok(()) => Ok(true),
            Err(Errno::OPNOTSUPP | Errno::NOSYS) => Ok(false),
            Err(Errno::NOSPC | Errno::DQUOT) => Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "no space left on the device to reserve for the journal",
            )),
            Err(err) => Err(err.into()),
        }
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn reserve(&mut self, _len: u64) -> io::Result<bool> {
        Ok(false)
    }
}

/// Writes `bytes` to a new file at `path` durably: to a temporary file first, synced, then
/// renamed over `path`, and the directory synced, so that `path` holds either nothing or all of
/// `bytes` after a crash.
pub(crate) fn write_atomically(
    fs: &dyn FileSystem,
    dir: &Path,
    path: &Path,
    bytes: &[u8],
) -> io::Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let temporary = dir.join(name);
    let mut file = fs.create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs.rename(&temporary, path)?;
    fs.sync_dir(dir)
}
