use aws_sdk_dynamodb::types::AttributeValue;
use std::os::unix::fs::PermissionsExt as _;

use super::*;

type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

fn config(dir: &Path, recovery: Recovery) -> JournalConfig {
    JournalConfig {
        dir: dir.to_path_buf(),
        durability: Durability::Always,
        segment_bytes: 4096,
        reserve_bytes: DEFAULT_RESERVE_BYTES,
        recovery,
    }
}

fn item(n: u64) -> Arc<Item> {
    Arc::new(Item::from([(
        "n".to_string(),
        AttributeValue::N(n.to_string()),
    )]))
}

/// Journals `n` upserts over keys K0..K9 and closes without releasing anything, as a crash
/// would leave the journal.
async fn journal_upserts(dir: &Path, n: u64) -> Result<()> {
    let (journal, recovered) = Journal::open(&config(dir, Recovery::Strict))?;
    let seq = AtomicU64::new(recovered.max_seq);
    let mut last = 0;
    for i in 0..n {
        last = journal.append(
            &seq,
            Op::Upsert,
            &format!("K{}", i % 10),
            Some(&item(i)),
            None,
        )?;
    }
    journal.wait(last).await?;
    journal.close(0);
    Ok(())
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    segment::list(&fs::StdFs, dir)
        .map(|s| s.into_iter().map(|(_, p)| p).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn recovery_returns_the_newest_record_of_each_key() -> TestResult {
    let dir = tempfile::tempdir()?;
    journal_upserts(dir.path(), 500).await?;
    assert!(segments(dir.path()).len() > 1, "4 KiB segments rotate");
    let (journal, recovered) = Journal::open(&config(dir.path(), Recovery::Strict))?;
    assert_eq!(recovered.max_seq, 500);
    assert_eq!(recovered.report.records, 500);
    assert_eq!(recovered.pending.len(), 10);
    for pending in &recovered.pending {
        assert!(pending.deltas.is_empty());
        let record = pending.full.as_ref().ok_or("no full mutation")?;
        let i: u64 = record.key[1..].parse()?;
        assert_eq!(record.item, Some(item(490 + i)), "{}", record.key);
        assert_eq!(record.seq, 491 + i);
    }
    assert_eq!(recovered.report.torn_tail, None);
    journal.close(0);
    Ok(())
}

#[tokio::test]
async fn released_segments_are_deleted() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (journal, _) = Journal::open(&config(dir.path(), Recovery::Strict))?;
    let seq = AtomicU64::new(0);
    let mut last = 0;
    for i in 0..300 {
        last = journal.append(&seq, Op::Upsert, "K", Some(&item(i)), None)?;
        journal.wait(last).await?;
    }
    let before = journal.usage().1;
    assert!(before > 2);
    assert!(journal.could_release(last + 1));
    journal.release_below(last + 1);
    // The writer releases before it reports the next record written.
    let next = journal.append(&seq, Op::Delete, "K", None, None)?;
    journal.wait(next).await?;
    assert_eq!(
        journal.usage().1,
        1,
        "only the segment being written is left"
    );
    journal.close(next + 1);
    assert!(
        segments(dir.path()).is_empty(),
        "a fully released journal leaves no segment"
    );
    Ok(())
}

#[tokio::test]
async fn a_torn_tail_is_cut_off_and_reported() -> TestResult {
    let dir = tempfile::tempdir()?;
    journal_upserts(dir.path(), 20).await?;
    let newest = segments(dir.path()).pop().ok_or("no segment")?;
    let len = std::fs::metadata(&newest)?.len();
    let file = std::fs::OpenOptions::new().write(true).open(&newest)?;
    file.set_len(len - 5)?;
    assert!(
        inspect_journal(dir.path())?.opens_strictly(),
        "a torn tail alone is accepted"
    );
    let (journal, recovered) = Journal::open(&config(dir.path(), Recovery::Strict))?;
    assert!(recovered.report.torn_tail.is_some());
    assert_eq!(recovered.report.records, 19);
    assert_eq!(recovered.max_seq, 19);
    journal.close(0);
    drop(journal);
    // The cut is durable: the next recovery is clean.
    let (journal, recovered) = Journal::open(&config(dir.path(), Recovery::Strict))?;
    assert_eq!(recovered.report.torn_tail, None);
    assert_eq!(recovered.report.records, 19);
    journal.close(0);
    Ok(())
}

/// What an older version meets when a newer one wrote the journal: an intact record of a
/// format it does not read, last in the newest segment, where a torn write would be.
#[tokio::test]
async fn a_record_of_a_later_format_is_refused_and_left_in_place() -> TestResult {
    let dir = tempfile::tempdir()?;
    journal_upserts(dir.path(), 20).await?;
    let newest = segments(dir.path()).pop().ok_or("no segment")?;
    let mut payload = Vec::new();
    record::encode(
        &Record::new(21, Op::Upsert, "K1".to_string(), Some(item(21))),
        &mut payload,
    )?;
    payload[record::HEADER_BYTES + 9] = 200; // an operation this version does not know
    let len = u32::try_from(payload.len() - record::HEADER_BYTES)?.to_le_bytes();
    let crc = record::checksum(&len, &payload[record::HEADER_BYTES..]);
    payload[4..8].copy_from_slice(&crc.to_le_bytes());
    let mut bytes = std::fs::read(&newest)?;
    bytes.extend_from_slice(&payload);
    std::fs::write(&newest, &bytes)?;

    assert!(!inspect_journal(dir.path())?.opens_strictly());
    for recovery in [Recovery::Strict, Recovery::Salvage] {
        let err = Journal::open(&config(dir.path(), recovery)).err();
        let message = err.as_ref().map(ToString::to_string).unwrap_or_default();
        assert!(message.contains("later format"), "{recovery:?}: {err:?}");
        assert_eq!(
            std::fs::read(&newest)?,
            bytes,
            "the record is kept for the version that wrote it"
        );
    }
    Ok(())
}

#[tokio::test]
async fn corruption_is_refused_unless_salvage_is_asked() -> TestResult {
    let dir = tempfile::tempdir()?;
    journal_upserts(dir.path(), 400).await?;
    let oldest = segments(dir.path())
        .into_iter()
        .next()
        .ok_or("no segment")?;
    let mut bytes = std::fs::read(&oldest)?;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(&oldest, &bytes)?;
    let err = Journal::open(&config(dir.path(), Recovery::Strict)).err();
    assert!(matches!(&err, Some(Error::Journal { .. })), "{err:?}");
    assert_eq!(err.map(|e| e.code()), Some("JournalException"));
    let (journal, recovered) = Journal::open(&config(dir.path(), Recovery::Salvage))?;
    assert_eq!(recovered.report.salvaged.len(), 1);
    assert_eq!(recovered.report.records, 399);
    assert_eq!(recovered.pending.len(), 10);
    journal.close(0);
    Ok(())
}

#[tokio::test]
async fn a_directory_is_used_by_one_journal_at_a_time() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (journal, _) = Journal::open(&config(dir.path(), Recovery::Strict))?;
    let err = Journal::open(&config(dir.path(), Recovery::Strict)).err();
    let message = err.as_ref().map(ToString::to_string).unwrap_or_default();
    assert!(message.contains("in use"), "{message}");
    journal.close(0);
    drop(journal);
    let (again, _) = Journal::open(&config(dir.path(), Recovery::Strict))?;
    again.close(0);
    Ok(())
}

#[tokio::test]
async fn journal_files_are_private() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (journal, _) = Journal::open(&config(dir.path(), Recovery::Strict))?;
    let seq = AtomicU64::new(0);
    let s = journal.append(&seq, Op::Delete, "K", None, None)?;
    journal.wait(s).await?;
    journal.dead_letter(s, "K", &Write::Delete("K".into()), "refused")?;
    for path in segments(dir.path())
        .into_iter()
        .chain([dir.path().join(DEAD_LETTERS)])
    {
        let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }
    assert_eq!(journal.dead_letters(), 1);
    journal.close(0);
    Ok(())
}

#[tokio::test]
async fn inspection_lists_segments_damage_and_dead_letters() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let (journal, _) = Journal::open(&config(dir.path(), Recovery::Strict))?;
        journal.dead_letter(
            7,
            "K7",
            &Write::Delete("K7".into()),
            "ValidationException: \"no\"",
        )?;
        journal.close(0);
    }
    journal_upserts(dir.path(), 300).await?;
    // Cut the end off the oldest segment: not where a crash tears records.
    let oldest = segments(dir.path())
        .into_iter()
        .next()
        .ok_or("no segment")?;
    let len = std::fs::metadata(&oldest)?.len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&oldest)?
        .set_len(len - 3)?;
    let summary = inspect_journal(dir.path())?;
    assert!(summary.segments.len() > 1);
    assert_eq!(summary.segments.iter().map(|s| s.records).sum::<u64>(), 299);
    assert_eq!(
        summary
            .segments
            .first()
            .and_then(|s| s.seq_range)
            .map(|r| r.0),
        Some(1)
    );
    assert_eq!(
        summary
            .segments
            .iter()
            .map(|s| s.damage.len())
            .sum::<usize>(),
        1
    );
    assert_eq!(summary.dead_letters.len(), 1);
    assert_eq!(
        summary.dead_letters[0].reason,
        "ValidationException: \"no\""
    );
    Ok(())
}

/// A versioned store's journal: mutations carry their base, and markers (which repeat older
/// sequences, and may fill whole segments) are recovered, counted, and released with the
/// mutations they settle.
#[tokio::test]
async fn markers_are_recovered_counted_and_released_with_their_mutations() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (journal, _) = Journal::open(&config(dir.path(), Recovery::Strict))?;
    let seq = AtomicU64::new(0);
    let present = Some(TableState::Present(1));
    for i in 0..100 {
        let key = format!("K{}", i % 10);
        journal.append(&seq, Op::Upsert, &key, Some(&item(i)), present.clone())?;
    }
    let last = journal.append(&seq, Op::Delete, "K10", None, Some(TableState::Absent))?;
    journal.wait(last).await?;
    journal.close(0);
    drop(journal);

    // The next run recovers them, and its writes land: it journals markers only, more than a
    // segment's worth. K0..K8 are settled, many times over; K9's marker settles an older state.
    let (journal, recovered) = Journal::open(&config(dir.path(), Recovery::Strict))?;
    assert_eq!(recovered.report.keys, 11);
    for _ in 0..30 {
        for k in 0..9 {
            journal.settled(&format!("K{k}"), 91 + k, TableState::Present(2))?;
        }
    }
    journal.settled("K9", 90, TableState::Present(5))?;
    journal.close(0);
    drop(journal);

    let summary = inspect_journal(dir.path())?;
    assert!(summary.opens_strictly(), "{summary:?}");
    assert_eq!(summary.segments.iter().map(|s| s.records).sum::<u64>(), 101);
    assert_eq!(summary.segments.iter().map(|s| s.markers).sum::<u64>(), 271);
    assert!(summary.versioned());
    assert!(
        summary
            .segments
            .iter()
            .any(|s| s.records == 0 && s.markers > 0 && s.seq_range.is_none()),
        "some segment holds markers only: {summary:?}"
    );

    let before = segments(dir.path());
    let (journal, recovered) = Journal::open(&config(dir.path(), Recovery::Strict))?;
    let after = segments(dir.path());
    assert_eq!(after.len(), before.len() + 1, "{before:?} {after:?}");
    assert!(
        after.starts_with(&before),
        "no segment of markers was taken for empty, and the new one sorts last"
    );
    assert!(recovered.max_seq >= 101);
    assert_eq!(
        (recovered.report.records, recovered.report.markers),
        (101, 271)
    );
    let pending: Vec<_> = recovered
        .pending
        .iter()
        .map(|p| (p.key(), p.last_seq(), p.base.clone()))
        .collect();
    assert_eq!(
        pending,
        vec![
            ("K9", 100, Some(TableState::Present(5))),
            ("K10", 101, Some(TableState::Absent)),
        ]
    );
    assert_eq!(recovered.report.keys, 2);

    // Once everything up to K10 is written, only the segment being written is left.
    let seq = AtomicU64::new(recovered.max_seq);
    journal.release_below(102);
    let next = journal.append(&seq, Op::Delete, "K", None, None)?;
    journal.wait(next).await?;
    assert_eq!(journal.usage().1, 1);
    journal.close(0);
    Ok(())
}

/// Segments by name, each with its records as [`write_segment`] takes them.
type Layout<'a> = &'a [(u64, &'a [i64])];

/// Writes a segment named after `first` holding `records` (sequences of deletes of `K{seq}`;
/// negated, markers of older sequences).
fn write_segment(dir: &Path, first: u64, records: &[i64]) -> TestResult {
    let mut bytes = segment::MAGIC.to_vec();
    for &r in records {
        let record = match u64::try_from(r) {
            Ok(seq) => Record::new(seq, Op::Delete, format!("K{seq}"), None),
            Err(_) => Record::settled(r.unsigned_abs(), "K", TableState::Absent),
        };
        record::encode(&record, &mut bytes)?;
    }
    std::fs::write(dir.join(segment::file_name(first)), bytes)?;
    Ok(())
}

#[tokio::test]
async fn a_missing_middle_segment_is_refused_salvaged_and_inspected() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        // One round at a time, so that the 4 KiB segments rotate.
        let (journal, _) = Journal::open(&config(dir.path(), Recovery::Strict))?;
        let seq = AtomicU64::new(0);
        for i in 0..500 {
            let last = journal.append(
                &seq,
                Op::Upsert,
                &format!("K{}", i % 10),
                Some(&item(i)),
                None,
            )?;
            journal.wait(last).await?;
        }
        journal.close(0);
    }
    let before = segments(dir.path());
    assert!(before.len() > 3, "{before:?}");
    let summary = inspect_journal(dir.path())?;
    assert!(summary.opens_strictly(), "{summary:?}");
    let (first, last) = summary.segments[1].seq_range.ok_or("no records")?;
    std::fs::remove_file(&before[1])?;
    let name = |path: &Path| {
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let range = format!("sequences {first}-{last} are missing");

    let summary = inspect_journal(dir.path())?;
    assert!(!summary.opens_strictly(), "{summary:?}");
    assert_eq!(
        summary.segments[1].damage,
        vec![JournalDamage::Gap {
            first,
            last,
            previous: Some(before[0].clone()),
        }]
    );

    let err = Journal::open(&config(dir.path(), Recovery::Strict)).err();
    assert_eq!(err.as_ref().map(Error::code), Some("JournalException"));
    let message = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains(&range), "{message}");
    assert!(message.contains(&name(&before[0])), "{message}");
    assert!(message.contains(&name(&before[2])), "{message}");
    assert_eq!(
        segments(dir.path()).len(),
        before.len() - 1,
        "nothing changed"
    );

    let (journal, recovered) = Journal::open(&config(dir.path(), Recovery::Salvage))?;
    assert_eq!(recovered.report.salvaged.len(), 1, "{:?}", recovered.report);
    assert!(recovered.report.salvaged[0].contains(&range));
    assert_eq!(recovered.report.records, 500 - (last - first + 1));
    assert_eq!(recovered.max_seq, 500);
    journal.close(0);
    Ok(())
}

#[tokio::test]
async fn legitimate_breaks_in_the_sequence_are_not_gaps() -> TestResult {
    let cases: &[(&str, Layout<'_>)] = &[
        (
            "segments released from the front: the oldest starts anywhere",
            &[(40, &[40, 41]), (42, &[42, 43])],
        ),
        (
            "an empty segment, created just before a crash",
            &[(1, &[1, 2]), (3, &[])],
        ),
        (
            "a segment of markers only, and the number recovery skipped after it",
            &[(1, &[1, 2]), (3, &[-1, -2]), (4, &[-2, 4])],
        ),
        (
            "markers only, twice, then an empty segment",
            &[(1, &[1]), (2, &[-1]), (3, &[-1]), (4, &[])],
        ),
    ];
    for (case, layout) in cases {
        let dir = tempfile::tempdir()?;
        for (first, records) in layout.iter() {
            write_segment(dir.path(), *first, records)?;
        }
        let summary = inspect_journal(dir.path())?;
        assert!(summary.opens_strictly(), "{case}: {summary:?}");
        let (journal, recovered) = Journal::open(&config(dir.path(), Recovery::Strict))
            .map_err(|e| format!("{case}: {e}"))?;
        assert!(recovered.report.salvaged.is_empty(), "{case}");
        journal.close(0);
        drop(journal);
        // What this run left is read back as clean as well.
        let (journal, _) = Journal::open(&config(dir.path(), Recovery::Strict))
            .map_err(|e| format!("{case}, reopened: {e}"))?;
        journal.close(0);
    }
    Ok(())
}

#[tokio::test]
async fn gaps_inside_and_after_a_segment_of_markers_are_refused() -> TestResult {
    let cases: &[(&str, Layout<'_>, &str)] = &[
        (
            "records cut out of a segment",
            &[(1, &[1, 2, 5])],
            "00000000000000000001.wal: sequences 3-4 are missing inside the segment",
        ),
        (
            "a segment lost after one of markers only",
            &[(1, &[1]), (2, &[-1]), (4, &[4])],
            "00000000000000000004.wal: sequence 3 is missing between \
             00000000000000000002.wal (which ends at 2) and this segment",
        ),
        (
            "a deleted segment before an empty one",
            &[(1, &[1, 2]), (5, &[])],
            "00000000000000000005.wal: sequences 3-4 are missing between \
             00000000000000000001.wal (which ends at 2) and this segment",
        ),
    ];
    for (case, layout, expected) in cases {
        let dir = tempfile::tempdir()?;
        for (first, records) in layout.iter() {
            write_segment(dir.path(), *first, records)?;
        }
        assert!(!inspect_journal(dir.path())?.opens_strictly(), "{case}");
        let message = Journal::open(&config(dir.path(), Recovery::Strict))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(message.contains(expected), "{case}: {message}");
        let (journal, recovered) = Journal::open(&config(dir.path(), Recovery::Salvage))?;
        assert_eq!(recovered.report.salvaged.len(), 1, "{case}");
        journal.close(0);
    }
    Ok(())
}

#[tokio::test]
async fn a_dead_letter_line_torn_by_a_crash_is_cut_off() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let (journal, _) = Journal::open(&config(dir.path(), Recovery::Strict))?;
        journal.dead_letter(1, "K1", &Write::Delete("K1".into()), "refused")?;
        journal.close(0);
    }
    let letters = dir.path().join(DEAD_LETTERS);
    let mut file = std::fs::OpenOptions::new().append(true).open(&letters)?;
    std::io::Write::write_all(&mut file, b"{\"seq\":2,\"ke")?;
    drop(file);
    let summary = inspect_journal(dir.path())?;
    assert_eq!(
        summary.dead_letters.len(),
        1,
        "the torn line is not a letter"
    );
    let (journal, _) = Journal::open(&config(dir.path(), Recovery::Strict))?;
    assert_eq!(journal.dead_letters(), 1);
    journal.dead_letter(3, "K3", &Write::Delete("K3".into()), "refused")?;
    journal.close(0);
    let keys: Vec<String> = inspect_journal(dir.path())?
        .dead_letters
        .into_iter()
        .map(|l| l.key)
        .collect();
    assert_eq!(keys, ["K1", "K3"]);
    Ok(())
}
