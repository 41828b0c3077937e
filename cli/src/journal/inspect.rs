//! `quickstore journal inspect`: what a journal directory holds, and whether it is damaged.

use super::*;

/// Files a store leaves in a journal directory when it opens it, besides segments and dead
/// letters: the lock it holds while open, and the id of the store that wrote it.
const STORE_FILES: [&str; 2] = ["LOCK", "WRITER"];

pub(super) fn inspect(args: &InspectArgs) -> anyhow::Result<()> {
    ensure_dir(&args.dir)?;
    let summary = inspect_journal(&args.dir)
        .with_context(|| format!("cannot inspect the journal in {}", args.dir.display()))?;
    let store_files = STORE_FILES.iter().any(|name| args.dir.join(name).exists());
    if summary.segments.is_empty() && summary.dead_letters.is_empty() && !store_files {
        bail!(
            "{} holds no journal: no segment files (*.wal), no dead letters, and none of the \
             files a store leaves in a journal directory it opened ({}); is it the directory \
             the store was given as its journal?",
            args.dir.display(),
            STORE_FILES.join(", ")
        );
    }
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
pub(super) fn render_inspection(
    dir: &Path,
    summary: &JournalSummary,
    verdict: &Verdict,
) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    writeln!(out, "journal directory {}", dir.display())?;
    writeln!(out)?;
    let segments = &summary.segments;
    if segments.is_empty() {
        writeln!(
            out,
            "no segments: the journal holds no mutation, so nothing waits to be written to the \
             backend"
        )?;
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
            quickstore::journal::DEAD_LETTERS
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
