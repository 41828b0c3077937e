//! `quickstore journal`: report what a crash journal directory holds (`inspect`), or write what
//! it holds to a backend (`replay`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{ArgGroup, Args, Subcommand};
use quickstore::{inspect_journal, JournalDamage, JournalSummary, Recovery, RecoveryReport, Stats};

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
    /// journal).
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

    /// Fail if writing the recovered mutations makes no progress (nothing written, retried or
    /// settled) for this many seconds, rather than wait forever.
    #[arg(long, value_name = "SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub stall_timeout: u64,

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
fn ensure_dir(dir: &Path) -> anyhow::Result<()> {
    let metadata = std::fs::metadata(dir)
        .with_context(|| format!("cannot read the journal directory {}", dir.display()))?;
    if !metadata.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    Ok(())
}

/// The name of a segment file, for tables.
fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}

/// A sequence range as text.
fn seq_range(range: Option<(u64, u64)>) -> String {
    match range {
        Some((first, last)) if first == last => first.to_string(),
        Some((first, last)) => format!("{first}-{last}"),
        None => "-".to_owned(),
    }
}

/// `n` and the noun, with an `s` unless `n` is 1.
fn count(n: impl Into<u64>, noun: &str) -> String {
    counted(n, noun, &format!("{noun}s"))
}

/// `n` and the noun, in its plural form unless `n` is 1.
fn counted(n: impl Into<u64>, one: &str, many: &str) -> String {
    match n.into() {
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    }
}

/// What the damage in a journal means, judged as recovery judges it.
#[derive(Debug, Default, PartialEq, Eq)]
struct Verdict {
    /// The torn tail of the newest segment, if any: the segment's file name and the damage.
    torn_tail: Option<(String, String)>,
    /// Every other damage: the segment's file name and the damage.
    corruption: Vec<(String, String)>,
}

/// Sorts the damage in `summary`: a torn record at the end of the newest segment is what a
/// crash leaves and recovery accepts; damage anywhere else is corruption.
fn judge(summary: &JournalSummary) -> Verdict {
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
fn inspect(args: &InspectArgs) -> anyhow::Result<()> {
    ensure_dir(&args.dir)?;
    let summary = inspect_journal(&args.dir)
        .with_context(|| format!("cannot inspect the journal in {}", args.dir.display()))?;
    let verdict = judge(&summary);
    print(&render_inspection(&args.dir, &summary, &verdict)?)?;
    if let Some((segment, damage)) = verdict.corruption.first() {
        let more = match verdict.corruption.len() - 1 {
            0 => String::new(),
            n => format!(", and {} more", count(n as u64, "damaged place")),
        };
        bail!(
            "the journal in {} is corrupt ({segment}: {damage}{more}); a store refuses to \
             open it unless asked to salvage (`quickstore journal replay --salvage`)",
            args.dir.display()
        );
    }
    Ok(())
}

/// The report of `quickstore journal inspect`.
fn render_inspection(
    dir: &Path,
    summary: &JournalSummary,
    verdict: &Verdict,
) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    writeln!(out, "journal directory {}", dir.display())?;
    writeln!(out)?;
    let segments = &summary.segments;
    if segments.is_empty() {
        writeln!(out, "no segments")?;
    } else {
        let width = segments
            .iter()
            .map(|s| file_name(&s.path).len())
            .max()
            .unwrap_or(0)
            .max("segment".len());
        // Markers get a column only in journals that have them: a versioned store's.
        let with_markers = segments.iter().any(|s| s.markers > 0);
        let markers_header = if with_markers { "   markers" } else { "" };
        writeln!(
            out,
            "{:<width$}  {:>10}  {:>8}{markers_header}  sequences",
            "segment", "bytes", "records"
        )?;
        for segment in segments {
            let markers = if with_markers {
                format!("  {:>8}", segment.markers)
            } else {
                String::new()
            };
            writeln!(
                out,
                "{:<width$}  {:>10}  {:>8}{markers}  {}",
                file_name(&segment.path),
                segment.bytes,
                segment.records,
                seq_range(segment.seq_range)
            )?;
            for damage in &segment.damage {
                writeln!(out, "  damage: {damage}")?;
            }
        }
    }
    writeln!(out)?;
    let records: u64 = segments.iter().map(|s| s.records).sum();
    let markers: u64 = segments.iter().map(|s| s.markers).sum();
    let first = segments
        .iter()
        .filter_map(|s| s.seq_range)
        .map(|r| r.0)
        .min();
    let last = segments
        .iter()
        .filter_map(|s| s.seq_range)
        .map(|r| r.1)
        .max();
    let bytes: u64 = segments.iter().map(|s| s.bytes).sum();
    let marker_count = match markers {
        0 => String::new(),
        n => format!(", {}", count(n, "settled marker")),
    };
    writeln!(
        out,
        "total        {}, {}{marker_count}, {} bytes, sequences {}",
        count(segments.len() as u64, "segment"),
        count(records, "record"),
        bytes,
        seq_range(first.zip(last))
    )?;
    if summary.versioned() {
        writeln!(
            out,
            "versioned    yes (written by a versioned store: replay it with --versioned ATTR)"
        )?;
    }
    match &verdict.torn_tail {
        Some((segment, damage)) => writeln!(
            out,
            "torn tail    yes, in {segment}: {damage} (a write cut short; recovery drops it)"
        )?,
        None => writeln!(out, "torn tail    no")?,
    }
    match verdict.corruption.len() {
        0 => writeln!(out, "corruption   none")?,
        n => writeln!(
            out,
            "corruption   {} outside the newest segment's tail",
            count(n as u64, "damaged place")
        )?,
    }
    let missing: Vec<String> = segments
        .iter()
        .flat_map(|s| &s.damage)
        .filter_map(|damage| match damage {
            JournalDamage::Gap { first, last, .. } => Some(seq_range(Some((*first, *last)))),
            _ => None,
        })
        .collect();
    if !missing.is_empty() {
        writeln!(
            out,
            "missing      sequences {} (mutations lost with a deleted segment, or cut out of one)",
            missing.join(", ")
        )?;
    }
    let letters = &summary.dead_letters;
    if letters.is_empty() {
        writeln!(out, "dead letters none")?;
    } else {
        writeln!(
            out,
            "dead letters {} (writes the backend refused, in {})",
            letters.len(),
            quickstore::DEAD_LETTERS
        )?;
        let seq_width = letters
            .iter()
            .map(|l| l.seq.to_string().len())
            .max()
            .unwrap_or(0)
            .max("seq".len());
        let key_width = letters
            .iter()
            .map(|l| l.key.len())
            .max()
            .unwrap_or(0)
            .max("key".len());
        writeln!(
            out,
            "  {:>seq_width$}  {:<6}  {:<key_width$}  reason",
            "seq", "write", "key"
        )?;
        for letter in letters {
            writeln!(
                out,
                "  {:>seq_width$}  {:<6}  {:<key_width$}  {}",
                letter.seq, letter.write, letter.key, letter.reason
            )?;
        }
    }
    Ok(out)
}

/// Runs `quickstore journal replay`.
async fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    ensure_dir(&args.dir)?;
    let recovery = if args.salvage {
        Recovery::Salvage
    } else {
        Recovery::Strict
    };
    if args.versioned.is_none()
        && inspect_journal(&args.dir).is_ok_and(|summary| summary.versioned())
    {
        bail!(
            "the journal in {} was written by a versioned store: replaying it without \
             --versioned ATTR would write its states unconditionally, over changes other \
             writers made since; pass the store's version attribute",
            args.dir.display()
        );
    }
    // A journal a strict store would refuse is refused here, before the backend is touched:
    // nothing is created (an embedded database file) for a replay that cannot happen.
    if !args.salvage {
        let summary = inspect_journal(&args.dir)
            .with_context(|| format!("cannot replay the journal in {}", args.dir.display()))?;
        let verdict = judge(&summary);
        if let Some((segment, damage)) = verdict.corruption.first() {
            let more = match verdict.corruption.len() - 1 {
                0 => String::new(),
                n => format!(", and {} more", count(n as u64, "damaged place")),
            };
            let err = anyhow::anyhow!(
                "cannot replay the journal in {}: the journal is damaged ({segment}: \
                 {damage}{more}); nothing was written",
                args.dir.display()
            );
            return Err(with_salvage_hint(&args, err));
        }
    }
    // An embedded database that replay creates is removed again if the store does not open.
    let created = args
        .backend
        .path
        .as_ref()
        .filter(|path| !path.exists())
        .cloned();
    let dir = args.dir.clone();
    let versioned = args.versioned.clone();
    let opened = backend::open_store(&args.backend, Unspecified::Refuse, |builder| {
        let builder = builder.journal(dir).recovery(recovery);
        match versioned {
            Some(attribute) => builder.versioned(attribute),
            None => builder,
        }
    })
    .await;
    let opened = match opened {
        Ok(opened) => opened,
        Err(err) => {
            if let Some(path) = &created {
                if let Err(e) = std::fs::remove_file(path) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        eprintln!("warning: cannot remove {}: {e}", path.display());
                    }
                }
            }
            // When the journal is what the store refused, say so, rather than that the store
            // could not be opened on the backend.
            let journal_error = err.chain().find_map(|cause| {
                cause
                    .downcast_ref::<quickstore::Error>()
                    .filter(|e| matches!(e, quickstore::Error::Journal { .. }))
                    .cloned()
            });
            let err = match journal_error {
                Some(journal_error) => anyhow::Error::new(journal_error),
                None => err,
            };
            let err = err.context(format!(
                "cannot replay the journal in {}",
                args.dir.display()
            ));
            return Err(with_salvage_hint(&args, err));
        }
    };
    let store = opened.store;
    let before = store.stats();
    let report = before.recovery.clone().unwrap_or_default();
    print(&render_recovery(&args, &opened.target, &report)?)?;

    let stall = Duration::from_secs(args.stall_timeout);
    let closed = drain(
        &store,
        "writing the recovered mutations",
        stall,
        store.close(),
    )
    .await;
    let end = store.stats();
    let left = inspect_journal(&args.dir).ok();
    print(&render_replay(&args.dir, &before, &end, left.as_ref())?)?;
    closed.with_context(|| {
        let refused = end.rejected_writes;
        if refused > 0 {
            format!(
                "the backend refused {}; see {}",
                count(refused, "write"),
                args.dir.join(quickstore::DEAD_LETTERS).display()
            )
        } else {
            format!("cannot replay the journal in {}", args.dir.display())
        }
    })?;
    if end.conflicts > 0 {
        bail!(
            "{} lost the race to another writer and {} not written; see {}",
            count(end.conflicts, "recovered write"),
            if end.conflicts == 1 { "was" } else { "were" },
            args.dir.join(quickstore::DEAD_LETTERS).display()
        );
    }
    if end.pending != 0 {
        bail!(
            "{} were still pending after close",
            count(end.pending as u64, "key")
        );
    }
    Ok(())
}

/// `err`, with the advice to salvage when a strict replay failed on a damaged journal.
fn with_salvage_hint(args: &ReplayArgs, err: anyhow::Error) -> anyhow::Error {
    match salvage_hint(args) {
        Some(hint) => anyhow::anyhow!("{}\nhint: {hint}", crate::describe(&err)),
        None => err,
    }
}

/// When a strict replay failed on a corrupt journal, the advice to salvage it.
fn salvage_hint(args: &ReplayArgs) -> Option<String> {
    if args.salvage {
        return None;
    }
    let summary = inspect_journal(&args.dir).ok()?;
    let corruption = judge(&summary).corruption.len();
    (corruption > 0).then(|| {
        format!(
            "the journal is damaged in {}; `quickstore journal inspect {}` shows where, and \
             --salvage replays every readable record, skipping the damage",
            count(corruption as u64, "place"),
            args.dir.display()
        )
    })
}

/// What recovery found, printed before the recovered mutations are written.
fn render_recovery(
    args: &ReplayArgs,
    target: &backend::Target,
    report: &RecoveryReport,
) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    writeln!(
        out,
        "replaying the journal in {} into the {target}",
        args.dir.display()
    )?;
    writeln!(out)?;
    let markers = match report.markers {
        0 => String::new(),
        n => format!(", {}", count(n, "settled marker")),
    };
    writeln!(
        out,
        "recovered    {}, {}{markers}, {} (newest state of each){}",
        count(report.segments as u64, "segment"),
        count(report.records, "record"),
        count(report.keys as u64, "key"),
        if args.salvage { "; salvaging" } else { "" }
    )?;
    if let Some(attribute) = &args.versioned {
        writeln!(
            out,
            "versioned    yes, attribute `{attribute}`: writes are conditional on the recorded versions"
        )?;
    }
    match &report.torn_tail {
        Some(torn) => writeln!(out, "torn tail    dropped: {torn}")?,
        None => writeln!(out, "torn tail    none")?,
    }
    if report.salvaged.is_empty() {
        if args.salvage {
            writeln!(out, "salvaged     nothing needed salvaging")?;
        }
    } else {
        writeln!(
            out,
            "salvaged     skipped {}:",
            count(report.salvaged.len() as u64, "damaged place")
        )?;
        for damage in &report.salvaged {
            writeln!(out, "  {damage}")?;
        }
    }
    Ok(out)
}

/// The outcome of a replay, from the store's counters before and after close and the journal
/// left on disk.
fn render_replay(
    dir: &Path,
    before: &Stats,
    end: &Stats,
    left: Option<&JournalSummary>,
) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    writeln!(
        out,
        "written      {} in {}, {}",
        count(end.items_written, "item"),
        count(end.write_requests, "write request"),
        counted(end.retries, "retry", "retries")
    )?;
    // Conflicts are dead-lettered too; they get their own line.
    let refused = end
        .dead_letters
        .saturating_sub(before.dead_letters)
        .saturating_sub(end.conflicts);
    if end.rejected_writes == 0 && refused == 0 {
        writeln!(out, "rejected     none")?;
    } else {
        writeln!(
            out,
            "rejected     {}, {} in {}",
            count(end.rejected_writes, "write"),
            count(refused, "new dead letter"),
            dir.join(quickstore::DEAD_LETTERS).display()
        )?;
    }
    if end.conflicts > 0 {
        writeln!(
            out,
            "conflicts    {} (another writer changed the item first), dead-lettered in {}",
            count(end.conflicts, "write"),
            dir.join(quickstore::DEAD_LETTERS).display()
        )?;
    }
    match left {
        Some(summary) if summary.segments.is_empty() => writeln!(out, "journal      empty")?,
        Some(summary) => writeln!(
            out,
            "journal      {} left, {}",
            count(summary.segments.len() as u64, "segment"),
            count(
                summary.segments.iter().map(|s| s.records).sum::<u64>(),
                "record"
            )
        )?,
        None => writeln!(out, "journal      cannot be read back")?,
    }
    Ok(out)
}

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
        assert_eq!(args.stall_timeout, 30);
        let args = replay_args(&[
            "--salvage",
            "--path",
            "db.redb",
            "wal",
            "--stall-timeout",
            "5",
        ])?;
        assert!(args.salvage);
        assert_eq!(args.stall_timeout, 5);
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
