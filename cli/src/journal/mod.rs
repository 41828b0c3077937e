//! `quickstore journal`: report what a crash journal directory holds (`inspect`), or write what
//! it holds to a backend (`replay`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{ArgGroup, Args, Subcommand};
use quickstore::journal::{
    inspect_journal, JournalDamage, JournalSummary, Recovery, RecoveryReport,
};
use quickstore::Stats;

use crate::backend::{self, BackendArgs, Unspecified};
use crate::drain::drain;
use crate::print;

/// Options of `quickstore journal`.
#[derive(Debug, Args)]
pub struct JournalArgs {
    /// What to do with the journal.
    #[command(subcommand)]
    pub command: JournalCommand,
}

/// The subcommands of `quickstore journal`.
#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// List a journal's segments (bytes, records, sequence numbers, damage) and dead letters,
    /// without locking or changing anything.
    ///
    /// Exits with status 0 when the journal is clean or only the newest segment ends in a torn
    /// record (what a crash mid-write leaves, and what recovery accepts); with status 1 when
    /// there is damage anywhere else, which a store refuses to open unless asked to salvage:
    /// corruption, or sequence numbers missing (a segment deleted from the middle of the
    /// journal); and with status 1 when the directory holds no journal at all (no segments,
    /// no dead letters, no file a store leaves there).
    Inspect(InspectArgs),
    /// Open a store over a backend with this journal and close it again, which writes every
    /// mutation recovered from the journal to the backend, then empties the journal.
    ///
    /// Fails if a running store holds the directory, if the journal is damaged beyond a torn
    /// tail (unless --salvage), if a versioned store wrote it and --versioned is not given, or
    /// if the backend refuses some writes or (versioned) another writer changed their items
    /// first (they are kept in the journal's dead-letter file). A replay refused before the
    /// store opens writes nothing and creates no database file.
    Replay(ReplayArgs),
}

/// Options of `quickstore journal inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The journal directory.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// Options of `quickstore journal replay`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("location").required(true).args(["path", "table"])))]
pub struct ReplayArgs {
    /// The journal directory.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// Keep every readable record of a damaged journal, skipping the damage wherever it is,
    /// instead of refusing to replay it.
    #[arg(long)]
    pub salvage: bool,

    /// Replay in versioned mode, with this version attribute (the one the store that wrote
    /// the journal used): each recovered write is conditional on the version the journal
    /// recorded for its key, and one whose item another writer changed is reported and
    /// dead-lettered as a conflict instead of overwriting it. Required for a journal written
    /// by a versioned store.
    #[arg(long, value_name = "ATTR")]
    pub versioned: Option<String>,

    /// Fail if writing the recovered mutations makes no progress (no item written or write
    /// settled; retries do not count) for this long (`30s`, `2m`; a bare number is seconds),
    /// rather than wait forever.
    #[arg(long, value_name = "DURATION", default_value = "30s",
          value_parser = crate::values::stall_timeout)]
    pub stall_timeout: Duration,

    /// Where to write the recovered mutations.
    #[command(
        flatten,
        next_help_heading = "Backend (one of --path or --table is required)"
    )]
    pub backend: BackendArgs,
}

/// Runs `quickstore journal`.
pub async fn run(args: JournalArgs) -> anyhow::Result<()> {
    match args.command {
        JournalCommand::Inspect(args) => inspect(&args),
        JournalCommand::Replay(args) => replay(args).await,
    }
}

/// Fails unless `dir` is an existing directory, so that a mistyped path is not taken for an
/// empty journal (or, for replay, created as one).
pub(super) fn ensure_dir(dir: &Path) -> anyhow::Result<()> {
    let metadata = std::fs::metadata(dir)
        .with_context(|| format!("cannot read the journal directory {}", dir.display()))?;
    if !metadata.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    Ok(())
}

/// The name of a segment file, for tables.
pub(super) fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}

/// A sequence range as text.
pub(super) fn seq_range(range: Option<(u64, u64)>) -> String {
    match range {
        Some((first, last)) if first == last => first.to_string(),
        Some((first, last)) => format!("{first}-{last}"),
        None => "-".to_owned(),
    }
}

/// `n` and the noun, with an `s` unless `n` is 1.
pub(super) fn count(n: impl Into<u64>, noun: &str) -> String {
    counted(n, noun, &format!("{noun}s"))
}

/// `n` and the noun, in its plural form unless `n` is 1.
pub(super) fn counted(n: impl Into<u64>, one: &str, many: &str) -> String {
    match n.into() {
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    }
}

/// What the damage in a journal means, judged as recovery judges it.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Verdict {
    /// The torn tail of the newest segment, if any: the segment's file name and the damage.
    torn_tail: Option<(String, String)>,
    /// Every other damage: the segment's file name and the damage.
    corruption: Vec<(String, String)>,
}

/// Sorts the damage in `summary`: a torn record at the end of the newest segment is what a
/// crash leaves and recovery accepts; damage anywhere else is corruption.
pub(super) fn judge(summary: &JournalSummary) -> Verdict {
    let mut verdict = Verdict::default();
    let newest = summary.segments.len().saturating_sub(1);
    for (index, segment) in summary.segments.iter().enumerate() {
        let name = file_name(&segment.path);
        for damage in &segment.damage {
            let entry = (name.clone(), damage.to_string());
            if index == newest && damage.is_torn_tail() && verdict.torn_tail.is_none() {
                verdict.torn_tail = Some(entry);
            } else {
                verdict.corruption.push(entry);
            }
        }
    }
    verdict
}

/// Runs `quickstore journal inspect`.
mod inspect;
mod replay;

use inspect::*;
use replay::*;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cli;
    use clap::Parser as _;
    use quickstore::internals::{encode_record, Op, Record};

    fn journal_command(args: &[&str]) -> anyhow::Result<JournalCommand> {
        let argv = ["quickstore", "journal"].iter().chain(args);
        match Cli::try_parse_from(argv)?.command {
            crate::Command::Journal(args) => Ok(args.command),
            other => bail!("`journal` parsed as {other:?}"),
        }
    }

    fn replay_args(args: &[&str]) -> anyhow::Result<ReplayArgs> {
        let args = ["replay"].iter().chain(args).copied().collect::<Vec<_>>();
        match journal_command(&args)? {
            JournalCommand::Replay(args) => Ok(args),
            other => bail!("`replay` parsed as {other:?}"),
        }
    }

    #[test]
    fn inspect_takes_a_directory() -> anyhow::Result<()> {
        match journal_command(&["inspect", "wal"])? {
            JournalCommand::Inspect(args) => assert_eq!(args.dir, Path::new("wal")),
            other => bail!("`inspect` parsed as {other:?}"),
        }
        assert!(journal_command(&["inspect"]).is_err());
        assert!(journal_command(&["inspect", "a", "b"]).is_err());
        assert!(journal_command(&["inspect", "wal", "--path", "db.redb"]).is_err());
        assert!(journal_command(&[]).is_err());
        assert!(journal_command(&["rewind", "wal"]).is_err());
        Ok(())
    }

    #[test]
    fn replay_into_an_embedded_database() -> anyhow::Result<()> {
        let args = replay_args(&["wal", "--path", "db.redb"])?;
        assert_eq!(args.dir, Path::new("wal"));
        assert_eq!(args.backend.path.as_deref(), Some(Path::new("db.redb")));
        assert!(args.backend.table.is_none());
        assert!(!args.salvage);
        assert_eq!(args.stall_timeout, Duration::from_secs(30));
        let args = replay_args(&[
            "--salvage",
            "--path",
            "db.redb",
            "wal",
            "--stall-timeout",
            "5",
        ])?;
        assert!(args.salvage);
        assert_eq!(args.stall_timeout, Duration::from_secs(5));
        assert_eq!(args.versioned, None);
        let args = replay_args(&["wal", "--path", "db.redb", "--versioned", "_version"])?;
        assert_eq!(args.versioned.as_deref(), Some("_version"));
        Ok(())
    }

    #[test]
    fn replay_into_dynamodb() -> anyhow::Result<()> {
        let args = replay_args(&[
            "wal",
            "--table",
            "users",
            "--endpoint",
            "http://localhost:4567",
            "--region",
            "eu-west-1",
        ])?;
        assert_eq!(args.backend.table.as_deref(), Some("users"));
        assert_eq!(
            args.backend.endpoint.as_deref(),
            Some("http://localhost:4567")
        );
        assert_eq!(args.backend.region.as_deref(), Some("eu-west-1"));
        assert!(args.backend.path.is_none());
        assert!(!args.backend.create_table);
        Ok(())
    }

    #[test]
    fn replay_needs_one_explicit_backend() {
        for bad in [
            &["wal"][..],
            &[],
            &["--path", "db.redb"],
            &["wal", "--path", "db.redb", "--table", "t"],
            &["wal", "--endpoint", "http://localhost:4567"],
            &["wal", "--salvage"],
            &["wal", "--path", "db.redb", "--stall-timeout", "0"],
        ] {
            assert!(replay_args(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn counts_and_ranges_read_well() {
        assert_eq!(count(1u64, "record"), "1 record");
        assert_eq!(count(0u64, "record"), "0 records");
        assert_eq!(count(3u64, "segment"), "3 segments");
        assert_eq!(counted(2u64, "retry", "retries"), "2 retries");
        assert_eq!(seq_range(None), "-");
        assert_eq!(seq_range(Some((4, 4))), "4");
        assert_eq!(seq_range(Some((1, 9))), "1-9");
    }

    /// Writes a segment named after `first` holding delete records `first..first + n`, and
    /// returns its bytes.
    fn write_segment(dir: &Path, first: u64, n: u64) -> anyhow::Result<Vec<u8>> {
        let mut bytes = b"QSJRNL01".to_vec();
        for seq in first..first + n {
            let record = Record::new(seq, Op::Delete, format!("User{seq}"), None);
            encode_record(&record, &mut bytes)?;
        }
        std::fs::write(dir.join(format!("{first:020}.wal")), &bytes)?;
        Ok(bytes)
    }

    #[test]
    fn a_torn_tail_of_the_newest_segment_is_not_corruption() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        write_segment(dir.path(), 1, 3)?;
        let bytes = write_segment(dir.path(), 4, 2)?;
        std::fs::write(
            dir.path().join(format!("{:020}.wal", 4)),
            &bytes[..bytes.len() - 3],
        )?;
        let summary = inspect_journal(dir.path())?;
        let verdict = judge(&summary);
        assert!(verdict.corruption.is_empty(), "{verdict:?}");
        let torn = verdict
            .torn_tail
            .as_ref()
            .map(|(segment, _)| segment.as_str());
        assert_eq!(torn, Some("00000000000000000004.wal"));
        let text = render_inspection(dir.path(), &summary, &verdict)?;
        assert!(text.contains("2 segments, 4 records"), "{text}");
        assert!(text.contains("sequences 1-4"), "{text}");
        assert!(
            text.contains("torn tail    yes, in 00000000000000000004.wal"),
            "{text}"
        );
        Ok(())
    }

    #[test]
    fn a_torn_tail_of_an_older_segment_is_corruption() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let bytes = write_segment(dir.path(), 1, 3)?;
        std::fs::write(
            dir.path().join(format!("{:020}.wal", 1)),
            &bytes[..bytes.len() - 3],
        )?;
        write_segment(dir.path(), 4, 2)?;
        let verdict = judge(&inspect_journal(dir.path())?);
        assert_eq!(verdict.torn_tail, None);
        assert_eq!(verdict.corruption.len(), 1, "{verdict:?}");
        Ok(())
    }

    #[test]
    fn a_missing_segment_is_corruption() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        write_segment(dir.path(), 1, 3)?;
        write_segment(dir.path(), 6, 2)?;
        let summary = inspect_journal(dir.path())?;
        let verdict = judge(&summary);
        assert_eq!(verdict.torn_tail, None);
        assert_eq!(
            verdict.corruption,
            vec![(
                "00000000000000000006.wal".to_owned(),
                "sequences 4-5 are missing between 00000000000000000001.wal (which ends at 3) \
                 and this segment"
                    .to_owned()
            )]
        );
        let text = render_inspection(dir.path(), &summary, &verdict)?;
        assert!(text.contains("missing      sequences 4-5"), "{text}");
        assert!(!text.contains("corruption   none"), "{text}");
        Ok(())
    }

    #[test]
    fn segments_released_from_the_front_leave_no_gap() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        write_segment(dir.path(), 40, 3)?;
        write_segment(dir.path(), 43, 2)?;
        let summary = inspect_journal(dir.path())?;
        assert_eq!(judge(&summary), Verdict::default());
        let text = render_inspection(dir.path(), &summary, &Verdict::default())?;
        assert!(!text.contains("missing"), "{text}");
        Ok(())
    }

    #[test]
    fn a_clean_journal_has_nothing_to_report() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let summary = inspect_journal(dir.path())?;
        assert_eq!(judge(&summary), Verdict::default());
        let text = render_inspection(dir.path(), &summary, &Verdict::default())?;
        assert!(text.contains("no segments"), "{text}");
        write_segment(dir.path(), 1, 2)?;
        assert_eq!(judge(&inspect_journal(dir.path())?), Verdict::default());
        Ok(())
    }
}
