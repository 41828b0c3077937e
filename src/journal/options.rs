//! How a journal is kept: where, how durably, and what opening it does with damage.

use std::path::PathBuf;
use std::time::Duration;

/// The size at which a segment is closed and the next one started, unless configured.
pub(crate) const DEFAULT_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// Disk space reserved ahead of the journal's writes: more is reserved once less than half of
/// it is left. A record is at most about 1 MiB.
pub(crate) const DEFAULT_RESERVE_BYTES: u64 = 8 * 1024 * 1024;

/// When an acknowledged mutation is on stable storage, with a journal
/// ([`StoreBuilder::journal`](crate::StoreBuilder::journal)).
///
/// `Always` costs each acknowledgement a disk sync shared with the mutations beside it;
/// `Interval` costs none, and leaves a machine crash the last interval's mutations to lose.
/// docs/OPERATIONS.md gives measured figures for both.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// use quickstore::{Durability, EmbeddedBackend, Store};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let store = Store::builder(EmbeddedBackend::open(dir.path().join("items.redb"))?)
///     .journal(dir.path().join("journal"))
///     .durability(Durability::Interval(Duration::from_millis(10)))
///     .open()
///     .await?;
/// # store.close().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// Each mutation is synced to disk (`fdatasync`) before it is acknowledged. Concurrent
    /// mutations share one sync (group commit). Nothing acknowledged is lost, even when the
    /// machine loses power.
    #[default]
    Always,
    /// Mutations are acknowledged once written to the operating system, and synced at most
    /// this long apart, by a thread of their own: an acknowledgement never waits for a sync. A
    /// crash of the process loses nothing acknowledged; a crash of the machine (power loss,
    /// kernel panic) may lose the mutations of the last interval.
    Interval(Duration),
}

/// What opening a store does with a damaged journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Recovery {
    /// Accept a torn final record (what a crash mid-write leaves) and refuse to open on damage
    /// anywhere else, with [`Error::Journal`](crate::Error::Journal). Damage includes a gap in
    /// the sequence numbers: mutations lost with a segment deleted from the middle of the
    /// journal.
    #[default]
    Strict,
    /// Keep every readable record, skip damage wherever it is (gaps included), and report it
    /// in [`Stats::recovery`](crate::Stats::recovery).
    Salvage,
}

/// Where and how the journal is kept.
#[derive(Debug, Clone)]
pub(crate) struct JournalConfig {
    pub dir: PathBuf,
    pub durability: Durability,
    pub segment_bytes: u64,
    /// Disk space reserved ahead of the writes: [`DEFAULT_RESERVE_BYTES`] but in tests.
    pub reserve_bytes: u64,
    pub recovery: Recovery,
}
