//! `quickstore journal replay`: opens a store on a journal, so that it recovers, and drains
//! what it recovered into the backend.

use super::*;

/// Runs `quickstore journal replay`.
pub(super) async fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    ensure_dir(&args.dir)?;
    let recovery = if args.salvage {
        Recovery::Salvage
    } else {
        Recovery::Strict
    };
    // Read once, for both checks below.
    let summary = inspect_journal(&args.dir);
    if args.versioned.is_none() && summary.as_ref().is_ok_and(|summary| summary.versioned()) {
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
        let summary = summary
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
    // Shown before the drain, which may take long; the store is drained and closed even if
    // it cannot be shown.
    let shown = render_recovery(&args, &opened.target, &report)
        .map_err(anyhow::Error::from)
        .and_then(|text| print(&text));

    let stall = args.stall_timeout;
    let closed = drain(
        &store,
        "writing the recovered mutations",
        stall,
        store.close(),
    )
    .await;
    let end = store.stats();
    shown?;
    let left = inspect_journal(&args.dir).ok();
    print(&render_replay(&args.dir, &before, &end, left.as_ref())?)?;
    closed.with_context(|| {
        let refused = end.rejected_writes;
        if refused > 0 {
            format!(
                "the backend refused {}; see {}",
                count(refused, "write"),
                args.dir.join(quickstore::journal::DEAD_LETTERS).display()
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
            args.dir.join(quickstore::journal::DEAD_LETTERS).display()
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
pub(super) fn with_salvage_hint(args: &ReplayArgs, err: anyhow::Error) -> anyhow::Error {
    match salvage_hint(args) {
        Some(hint) => anyhow::anyhow!("{}\nhint: {hint}", crate::describe(&err)),
        None => err,
    }
}

/// When a strict replay failed on a corrupt journal, the advice to salvage it.
pub(super) fn salvage_hint(args: &ReplayArgs) -> Option<String> {
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
pub(super) fn render_recovery(
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
pub(super) fn render_replay(
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
            dir.join(quickstore::journal::DEAD_LETTERS).display()
        )?;
    }
    if end.conflicts > 0 {
        writeln!(
            out,
            "conflicts    {} (another writer changed the item first), dead-lettered in {}",
            count(end.conflicts, "write"),
            dir.join(quickstore::journal::DEAD_LETTERS).display()
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
