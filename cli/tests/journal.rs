//! End to end: `quickstore journal inspect` and `quickstore journal replay` on journals written
//! by hand, record by record, as a crashed store would have left them.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use anyhow::{ensure, Context as _};
use quickstore::backend::Backend as _;
use quickstore::internals::{encode_record, Op, Record, TableState};
use quickstore::{AttributeValue, EmbeddedBackend, Item};

/// The first bytes of every journal segment.
const MAGIC: &[u8; 8] = b"QSJRNL01";

/// The partition key attribute of the store's items.
const PARTITION_KEY: &str = "_key";

/// A segment's file name: its first sequence number, zero-padded.
fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}.wal")
}

/// The item upserted under `User{seq}`.
fn item(seq: u64) -> Item {
    Item::from([
        ("name".to_owned(), AttributeValue::S(format!("user {seq}"))),
        ("n".to_owned(), AttributeValue::N(seq.to_string())),
    ])
}

/// A segment holding upserts of `User{seq}` for each `seq` in `seqs`.
fn segment(seqs: impl IntoIterator<Item = u64>) -> anyhow::Result<Vec<u8>> {
    let mut bytes = MAGIC.to_vec();
    for seq in seqs {
        let record = Record::new(
            seq,
            Op::Upsert,
            format!("User{seq}"),
            Some(Arc::new(item(seq))),
        );
        encode_record(&record, &mut bytes)?;
    }
    Ok(bytes)
}

/// Runs the CLI with `args` in `dir`.
fn quickstore(dir: &Path, args: &[&str]) -> anyhow::Result<Output> {
    Command::new(env!("CARGO_BIN_EXE_quickstore"))
        .args(args)
        .current_dir(dir)
        .output()
        .context("cannot run quickstore")
}

/// The output's stdout and stderr, each line's runs of spaces squeezed to one so that
/// assertions do not depend on column widths.
fn texts(output: &Output) -> (String, String) {
    let squeeze = |bytes: &[u8]| {
        String::from_utf8_lossy(bytes)
            .lines()
            .map(|line| {
                line.split(' ')
                    .filter(|w| !w.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    (squeeze(&output.stdout), squeeze(&output.stderr))
}

/// The `.wal` files left in `dir`.
fn segments_in(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".wal") {
            names.push(name);
        }
    }
    Ok(names)
}

/// Every file and directory under `dir`, as paths relative to it, sorted.
fn entries(dir: &Path) -> anyhow::Result<Vec<String>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> anyhow::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            out.push(path.strip_prefix(root)?.to_string_lossy().into_owned());
            if path.is_dir() {
                walk(root, &path, out)?;
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

/// Checks that the embedded database at `path` holds `User{seq}` for exactly `present` of
/// `all`, with the journaled item.
async fn check_items(path: &Path, all: &[u64], present: &[u64]) -> anyhow::Result<()> {
    let backend = EmbeddedBackend::open(path)?;
    for &seq in all {
        let key = format!("User{seq}");
        let found = backend.get(PARTITION_KEY, &key, true).await?;
        if present.contains(&seq) {
            let mut expected = item(seq);
            expected.insert(PARTITION_KEY.to_owned(), AttributeValue::S(key.clone()));
            ensure!(found == Some(expected), "{key}: found {found:?}");
        } else {
            ensure!(found.is_none(), "{key} should be absent, found {found:?}");
        }
    }
    Ok(())
}

#[tokio::test]
async fn inspect_then_replay_into_an_embedded_database() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let journal = tmp.path().join("journal");
    std::fs::create_dir(&journal)?;
    std::fs::write(journal.join(segment_name(1)), segment(1..=3)?)?;
    // The newest segment ends in half a record: a crash mid-write.
    let mut newest = segment(4..=5)?;
    newest.truncate(newest.len() - 4);
    std::fs::write(journal.join(segment_name(4)), newest)?;

    let output = quickstore(tmp.path(), &["journal", "inspect", "journal"])?;
    let (stdout, stderr) = texts(&output);
    ensure!(output.status.success(), "inspect failed: {stdout}{stderr}");
    ensure!(stdout.contains(&segment_name(1)), "{stdout}");
    ensure!(
        stdout.contains("2 segments, 4 records"),
        "the totals are missing: {stdout}"
    );
    ensure!(stdout.contains("sequences 1-4"), "{stdout}");
    ensure!(stdout.contains("torn tail yes"), "{stdout}");
    ensure!(stdout.contains("corruption none"), "{stdout}");

    let output = quickstore(
        tmp.path(),
        &["journal", "replay", "journal", "--path", "db.redb"],
    )?;
    let (stdout, stderr) = texts(&output);
    ensure!(output.status.success(), "replay failed: {stdout}{stderr}");
    ensure!(
        stdout.contains("2 segments, 4 records, 4 keys"),
        "the recovery report is missing: {stdout}"
    );
    ensure!(stdout.contains("written 4 items"), "{stdout}");
    ensure!(stdout.contains("journal empty"), "{stdout}");
    ensure!(segments_in(&journal)?.is_empty(), "segments were left");
    check_items(&tmp.path().join("db.redb"), &[1, 2, 3, 4, 5], &[1, 2, 3, 4]).await
}

/// A segment of a versioned store's journal holding `records`.
fn versioned_segment(records: &[Record]) -> anyhow::Result<Vec<u8>> {
    let mut bytes = MAGIC.to_vec();
    for record in records {
        encode_record(record, &mut bytes)?;
    }
    Ok(bytes)
}

/// An upsert of `User{seq}` by a versioned store, over `base`.
fn versioned_upsert(seq: u64, base: TableState) -> Record {
    Record::versioned(
        seq,
        Op::Upsert,
        format!("User{seq}"),
        Some(Arc::new(item(seq))),
        base,
    )
}

#[tokio::test]
async fn a_versioned_journal_is_replayed_conditionally() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let journal = tmp.path().join("journal");
    std::fs::create_dir(&journal)?;
    // User1's write landed (its marker says so); User2's did not.
    let records = [
        versioned_upsert(1, TableState::Absent),
        versioned_upsert(2, TableState::Absent),
        Record::settled(1, "User1", TableState::Present(1)),
    ];
    std::fs::write(journal.join(segment_name(1)), versioned_segment(&records)?)?;

    let output = quickstore(tmp.path(), &["journal", "inspect", "journal"])?;
    let (stdout, stderr) = texts(&output);
    ensure!(output.status.success(), "inspect failed: {stdout}{stderr}");
    ensure!(
        stdout.contains("1 segment, 2 records, 1 settled marker"),
        "{stdout}"
    );
    ensure!(stdout.contains("sequences 1-2"), "{stdout}");
    ensure!(stdout.contains("versioned yes"), "{stdout}");

    let replay = ["journal", "replay", "journal", "--path", "db.redb"];
    let output = quickstore(tmp.path(), &replay)?;
    let (stdout, stderr) = texts(&output);
    ensure!(
        !output.status.success(),
        "an unversioned replay passed: {stdout}"
    );
    ensure!(stderr.contains("--versioned"), "no hint: {stderr}");
    ensure!(segments_in(&journal)?.len() == 1, "the journal changed");

    let output = quickstore(tmp.path(), &[&replay[..], &["--versioned", "_v"]].concat())?;
    let (stdout, stderr) = texts(&output);
    ensure!(output.status.success(), "replay failed: {stdout}{stderr}");
    ensure!(
        stdout.contains("1 segment, 2 records, 1 settled marker, 1 key"),
        "{stdout}"
    );
    ensure!(stdout.contains("written 1 item"), "{stdout}");
    ensure!(segments_in(&journal)?.is_empty(), "segments were left");
    let backend = EmbeddedBackend::open(tmp.path().join("db.redb"))?;
    let user2 = backend.get(PARTITION_KEY, "User2", true).await?;
    ensure!(
        user2.as_ref().and_then(|item| item.get("_v")) == Some(&AttributeValue::N("1".into())),
        "User2: {user2:?}"
    );
    let user1 = backend.get(PARTITION_KEY, "User1", true).await?;
    ensure!(
        user1.is_none(),
        "a settled state was written again: {user1:?}"
    );
    drop(backend);

    // A recovered write whose item is not at the recorded version loses, and is kept.
    std::fs::write(
        journal.join(segment_name(3)),
        versioned_segment(&[versioned_upsert(3, TableState::Present(4))])?,
    )?;
    let output = quickstore(tmp.path(), &[&replay[..], &["--versioned", "_v"]].concat())?;
    let (stdout, stderr) = texts(&output);
    ensure!(!output.status.success(), "a conflict passed: {stdout}");
    ensure!(stdout.contains("conflicts 1 write"), "{stdout}");
    ensure!(stdout.contains("rejected none"), "{stdout}");
    ensure!(stderr.contains("lost the race"), "{stderr}");
    let letters = quickstore::journal::inspect_journal(&journal)?.dead_letters;
    ensure!(
        letters.len() == 1
            && letters[0].key == "User3"
            && letters[0].reason.starts_with("conflict"),
        "{letters:?}"
    );
    let backend = EmbeddedBackend::open(tmp.path().join("db.redb"))?;
    ensure!(backend.get(PARTITION_KEY, "User3", true).await?.is_none());
    Ok(())
}

#[tokio::test]
async fn a_corrupt_journal_fails_inspect_and_needs_salvage() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let journal = tmp.path().join("journal");
    std::fs::create_dir(&journal)?;
    let mut bytes = segment(1..=3)?;
    // A flipped byte inside the second record, with a valid record after it.
    let middle = MAGIC.len() + (bytes.len() - MAGIC.len()) / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(journal.join(segment_name(1)), bytes)?;

    let output = quickstore(tmp.path(), &["journal", "inspect", "journal"])?;
    let (stdout, stderr) = texts(&output);
    ensure!(!output.status.success(), "inspect passed: {stdout}{stderr}");
    ensure!(stdout.contains("corrupt at byte"), "{stdout}");
    ensure!(stderr.contains("is corrupt"), "{stderr}");

    let replay = ["journal", "replay", "journal", "--path", "db.redb"];
    let before = entries(tmp.path())?;
    let output = quickstore(tmp.path(), &replay)?;
    let (stdout, stderr) = texts(&output);
    ensure!(!output.status.success(), "strict replay passed: {stdout}");
    ensure!(stderr.contains("--salvage"), "no hint to salvage: {stderr}");
    ensure!(stderr.contains("the journal is damaged"), "{stderr}");
    ensure!(
        !stderr.contains("embedded database"),
        "the database is blamed: {stderr}"
    );
    ensure!(segments_in(&journal)?.len() == 1, "the journal changed");
    ensure!(
        entries(tmp.path())? == before,
        "a refused replay created files"
    );

    let output = quickstore(tmp.path(), &[&replay[..], &["--salvage"]].concat())?;
    let (stdout, stderr) = texts(&output);
    ensure!(output.status.success(), "salvage failed: {stdout}{stderr}");
    ensure!(stdout.contains("skipped 1 damaged place"), "{stdout}");
    ensure!(segments_in(&journal)?.is_empty(), "segments were left");
    check_items(&tmp.path().join("db.redb"), &[1, 2, 3], &[1, 3]).await
}

/// A journal whose middle segment was deleted: its mutations are lost, and the gap in the
/// sequence numbers shows it. Inspection reports it, a strict replay refuses it without creating
/// anything and without blaming the database, and a salvaging replay writes what is left.
#[tokio::test]
async fn a_journal_missing_a_segment_fails_inspect_and_needs_salvage() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let journal = tmp.path().join("journal");
    std::fs::create_dir(&journal)?;
    std::fs::write(journal.join(segment_name(1)), segment(1..=3)?)?;
    // Segment 4 (mutations 4 to 6) is gone.
    std::fs::write(journal.join(segment_name(7)), segment(7..=9)?)?;

    let output = quickstore(tmp.path(), &["journal", "inspect", "journal"])?;
    let (stdout, stderr) = texts(&output);
    ensure!(!output.status.success(), "inspect passed: {stdout}{stderr}");
    ensure!(
        stdout.contains(&format!(
            "damage: sequences 4-6 are missing between {} (which ends at 3) and this segment",
            segment_name(1)
        )),
        "{stdout}"
    );
    ensure!(!stdout.contains("corruption none"), "{stdout}");
    ensure!(stdout.contains("missing sequences 4-6"), "{stdout}");
    ensure!(stderr.contains("is corrupt"), "{stderr}");
    ensure!(stderr.contains(&segment_name(7)), "{stderr}");

    let replay = ["journal", "replay", "journal", "--path", "db.redb"];
    let before = entries(tmp.path())?;
    let output = quickstore(tmp.path(), &replay)?;
    let (stdout, stderr) = texts(&output);
    ensure!(!output.status.success(), "strict replay passed: {stdout}");
    ensure!(
        stderr.contains("cannot replay the journal in journal: the journal is damaged"),
        "{stderr}"
    );
    ensure!(stderr.contains("sequences 4-6 are missing"), "{stderr}");
    ensure!(
        !stderr.contains("embedded database"),
        "the database is blamed: {stderr}"
    );
    ensure!(stderr.contains("--salvage"), "no hint to salvage: {stderr}");
    ensure!(
        entries(tmp.path())? == before,
        "a refused replay created files: {:?}",
        entries(tmp.path())?
    );

    let output = quickstore(tmp.path(), &[&replay[..], &["--salvage"]].concat())?;
    let (stdout, stderr) = texts(&output);
    ensure!(output.status.success(), "salvage failed: {stdout}{stderr}");
    ensure!(stdout.contains("skipped 1 damaged place"), "{stdout}");
    ensure!(stdout.contains("sequences 4-6 are missing"), "{stdout}");
    ensure!(stdout.contains("written 6 items"), "{stdout}");
    ensure!(segments_in(&journal)?.is_empty(), "segments were left");
    check_items(
        &tmp.path().join("db.redb"),
        &[1, 2, 3, 4, 5, 6, 7, 8, 9],
        &[1, 2, 3, 7, 8, 9],
    )
    .await
}

#[tokio::test]
async fn replay_refuses_a_journal_in_use() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let journal = tmp.path().join("journal");
    let store = quickstore::Store::builder(EmbeddedBackend::open(tmp.path().join("live.redb"))?)
        .journal(&journal)
        .open()
        .await?;
    let before = entries(tmp.path());
    let output = quickstore(
        tmp.path(),
        &["journal", "replay", "journal", "--path", "db.redb"],
    );
    let after = entries(tmp.path());
    store.close().await?;
    let output = output?;
    let (stdout, stderr) = texts(&output);
    ensure!(!output.status.success(), "replay passed: {stdout}");
    ensure!(stderr.contains("in use by another store"), "{stderr}");
    ensure!(
        stderr.starts_with("error: cannot replay the journal in journal: "),
        "{stderr}"
    );
    ensure!(
        !stderr.contains("embedded database"),
        "the database is blamed: {stderr}"
    );
    ensure!(
        after? == before?,
        "a refused replay left files: {:?}",
        entries(tmp.path())?
    );
    Ok(())
}

#[test]
fn replay_needs_an_explicit_backend_and_an_existing_directory() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let output = quickstore(tmp.path(), &["journal", "replay", "journal"])?;
    ensure!(!output.status.success());
    let output = quickstore(
        tmp.path(),
        &["journal", "replay", "missing", "--path", "db.redb"],
    )?;
    let (_, stderr) = texts(&output);
    ensure!(!output.status.success());
    ensure!(stderr.contains("missing"), "{stderr}");
    ensure!(
        !tmp.path().join("missing").exists(),
        "the directory was made"
    );
    Ok(())
}

/// A directory that holds no journal says so in a sentence, and fails; a journal that a store
/// closed cleanly (its lock and writer files, no segments) is reported as empty.
#[test]
fn inspect_says_when_a_directory_holds_no_journal() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().to_str().context("a UTF-8 path")?;
    let none = quickstore(dir.path(), &["journal", "inspect", path])?;
    let (stdout, stderr) = texts(&none);
    ensure!(!none.status.success(), "{none:?}");
    ensure!(stdout.is_empty(), "{stdout}");
    ensure!(
        stderr.contains(&format!("{path} holds no journal")),
        "{stderr}"
    );

    std::fs::write(dir.path().join("LOCK"), b"")?;
    std::fs::write(dir.path().join("WRITER"), b"ddc0ffd9d8fd4051\n")?;
    let empty = quickstore(dir.path(), &["journal", "inspect", path])?;
    let (stdout, stderr) = texts(&empty);
    ensure!(empty.status.success(), "{empty:?}");
    ensure!(
        stdout.contains("no segments: the journal holds no mutation"),
        "{stdout}"
    );
    ensure!(stderr.is_empty(), "{stderr}");
    Ok(())
}
