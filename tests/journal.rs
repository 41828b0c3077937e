//! The crash journal through the store: nothing acknowledged is lost when the process is killed,
//! counters count every acknowledged increment once however the process is killed, refused
//! writes are dead-lettered, and a journal directory serves one store at a time.

mod common;

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use common::{client_for, create_table, Dynalite, Fixture, TestResult};
use quickstore::{AttributeValue, Delta, Durability, DynamoDbBackend, Key, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Counter {
    n: u64,
}

const CHILD: &str = "QUICKSTORE_CRASH_CHILD";
const KEYS: u64 = 16;
/// The version attribute of the versioned runs.
const VERSION: &str = "_version";

/// The child side of the crash test: upsert increasing counters over a few keys and print
/// each acknowledgement, until killed. Does nothing when run as an ordinary test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child() -> TestResult {
    let (Ok(endpoint), Ok(table), Ok(dir)) = (
        std::env::var(format!("{CHILD}_ENDPOINT")),
        std::env::var(format!("{CHILD}_TABLE")),
        std::env::var(format!("{CHILD}_DIR")),
    ) else {
        return Ok(());
    };
    let durability = match std::env::var(format!("{CHILD}_INTERVAL_MS")) {
        Ok(ms) => Durability::Interval(std::time::Duration::from_millis(ms.parse()?)),
        Err(_) => Durability::Always,
    };
    let mut builder = Store::builder(DynamoDbBackend::new(client_for(&endpoint), table))
        .journal(dir)
        .durability(durability)
        .flush_interval(std::time::Duration::from_millis(5));
    if std::env::var_os(format!("{CHILD}_VERSIONED")).is_some() {
        builder = builder.versioned(VERSION);
    }
    let store = builder.open().await?;
    for i in 0.. {
        let key = Key::new("Counter", (i % KEYS).to_string())?;
        store.upsert(&key, &Counter { n: i }).await?;
        println!("ack {} {i}", key.identifier());
    }
    Ok(())
}

/// This test binary, to run only the child test `test` on `table` at `endpoint`, journaling
/// in `dir`, in versioned mode with `versioned`.
fn child(
    test: &str,
    endpoint: &str,
    table: &str,
    dir: &std::path::Path,
    versioned: bool,
) -> TestResult<Command> {
    let mut command = Command::new(std::env::current_exe()?);
    command
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(format!("{CHILD}_ENDPOINT"), endpoint)
        .env(format!("{CHILD}_TABLE"), table)
        .env(format!("{CHILD}_DIR"), dir);
    if versioned {
        command.env(format!("{CHILD}_VERSIONED"), "1");
    }
    Ok(command)
}

/// Runs the child (in versioned mode, with `versioned`) until it has acknowledged `acks`
/// mutations, kills it with SIGKILL, and returns the newest acknowledged counter of each key.
/// Odd seeds journal at `Durability::Interval(10ms)`, even ones at `Always`.
fn run_and_kill(
    endpoint: &str,
    table: &str,
    dir: &std::path::Path,
    acks: usize,
    versioned: bool,
    seed: u64,
) -> TestResult<HashMap<String, u64>> {
    let mut command = child("crash_child", endpoint, table, dir, versioned)?;
    if seed % 2 == 1 {
        command.env(format!("{CHILD}_INTERVAL_MS"), "10");
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        // Once the parent stops reading, the child's prints fail: that noise is not news.
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut acked = HashMap::new();
    let mut seen = 0;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        let Some(rest) = line.strip_prefix("ack ") else {
            continue;
        };
        let (key, n) = rest.split_once(' ').ok_or("bad ack line")?;
        acked.insert(key.to_owned(), n.parse()?);
        seen += 1;
        if seen == acks {
            break;
        }
    }
    child.kill()?; // SIGKILL: no destructor, no flush, no close
    child.wait()?;
    assert_eq!(seen, acks, "the child stopped before it was killed");
    Ok(acked)
}

/// A child killed with SIGKILL after a random number of acknowledged upserts, ten times (half
/// at `Durability::Always`, half at `Interval(10ms)`): every acknowledged upsert is read back
/// and reaches the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_when_the_process_is_killed() -> TestResult {
    let server = Dynalite::start()?;
    let client = server.client();
    let mut recovered_keys = 0;
    for seed in 1..=10u64 {
        let table = format!("crash-{seed}");
        create_table(&client, &table, "_key").await?;
        let dir = tempfile::tempdir()?;
        let acks = StdRng::seed_from_u64(seed).random_range(1..400);
        let acked = run_and_kill(server.endpoint(), &table, dir.path(), acks, false, seed)?;

        // Recovery re-applies what the backend may lack: reads see it at once...
        let store = Store::builder(DynamoDbBackend::new(client.clone(), table.clone()))
            .journal(dir.path())
            .open()
            .await?;
        let recovery = store.stats().recovery.ok_or("no recovery report")?;
        recovered_keys += recovery.keys;
        for (key, n) in &acked {
            let counter: Counter = store
                .get(&Key::new("Counter", key.as_str())?)
                .await?
                .ok_or("acknowledged counter missing")?;
            assert!(
                counter.n >= *n,
                "seed {seed}, key {key}: read {} after acknowledging {n}; {recovery:?}",
                counter.n
            );
        }
        // ... and the backend has it once the store is closed.
        store.close().await?;
        for (key, n) in &acked {
            let item = client
                .get_item()
                .table_name(&table)
                .key("_key", AttributeValue::S(format!("Counter{key}")))
                .consistent_read(true)
                .send()
                .await?
                .item
                .ok_or_else(|| format!("seed {seed}: key {key} is missing"))?;
            let stored: u64 = item
                .get("n")
                .and_then(|v| v.as_n().ok())
                .ok_or("no n")?
                .parse()?;
            assert!(
                stored >= *n,
                "seed {seed}, key {key}: stored {stored} after acknowledging {n}"
            );
        }
        let left = std::fs::read_dir(dir.path())?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "wal"))
            .count();
        assert_eq!(left, 0, "seed {seed}: a clean close leaves no segment");
    }
    assert!(
        recovered_keys > 0,
        "no trial left anything to recover: the test proved nothing"
    );
    Ok(())
}

/// The stored counter of `key` and its version, read straight from the table.
async fn stored_counter(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    key: &str,
) -> TestResult<Option<(u64, Option<String>)>> {
    let item = client
        .get_item()
        .table_name(table)
        .key("_key", AttributeValue::S(format!("Counter{key}")))
        .consistent_read(true)
        .send()
        .await?
        .item;
    let Some(item) = item else {
        return Ok(None);
    };
    let n = item
        .get("n")
        .and_then(|v| v.as_n().ok())
        .ok_or("no n")?
        .parse()?;
    let version = item.get(VERSION).and_then(|v| v.as_n().ok()).cloned();
    Ok(Some((n, version)))
}

/// The same as `nothing_acknowledged_is_lost_when_the_process_is_killed`, in versioned mode:
/// recovered writes are conditional on the versions the killed process's writes left. The one
/// exception is the documented limit: a kill between a write landing and the journal noting it
/// makes the key's recovered write a conflict, which must then be reported and dead-lettered
/// with the acknowledged state, and must not overwrite what is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_unreported_when_a_versioned_process_is_killed() -> TestResult
{
    let server = Dynalite::start()?;
    let client = server.client();
    let (mut recovered_keys, mut conflicted) = (0, 0);
    for seed in 1..=10u64 {
        let table = format!("versioned-crash-{seed}");
        create_table(&client, &table, "_key").await?;
        let dir = tempfile::tempdir()?;
        let acks = StdRng::seed_from_u64(seed).random_range(1..400);
        let acked = run_and_kill(server.endpoint(), &table, dir.path(), acks, true, seed)?;

        let conflicts = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let store = Store::builder(DynamoDbBackend::new(client.clone(), table.clone()))
            .versioned(VERSION)
            .journal(dir.path())
            .on_conflict({
                let conflicts = Arc::clone(&conflicts);
                move |conflict| conflicts.lock().push(conflict.clone())
            })
            .open()
            .await?;
        let recovery = store.stats().recovery.ok_or("no recovery report")?;
        recovered_keys += recovery.keys;
        for (key, n) in &acked {
            let counter: Counter = store
                .get(&Key::new("Counter", key.as_str())?)
                .await?
                .ok_or("acknowledged counter missing")?;
            assert!(
                counter.n >= *n,
                "seed {seed}, key {key}: read {} after acknowledging {n}",
                counter.n
            );
        }
        store.close().await?;
        let conflicts = conflicts.lock().clone();
        let letters = quickstore::journal::inspect_journal(dir.path())?.dead_letters;
        assert_eq!(letters.len(), conflicts.len(), "seed {seed}: {letters:?}");
        conflicted += conflicts.len();
        for (key, n) in &acked {
            let (stored, version) = stored_counter(&client, &table, key)
                .await?
                .ok_or_else(|| format!("seed {seed}: key {key} is missing"))?;
            assert!(version.is_some(), "seed {seed}, key {key}: no version");
            if stored >= *n {
                continue;
            }
            // Not stored: then it was reported, with the acknowledged state, and dead-lettered.
            let rendered = format!("Counter{key}");
            let conflict = conflicts
                .iter()
                .find(|c| c.key.as_str() == rendered)
                .ok_or_else(|| format!("seed {seed}, key {key}: stored {stored} after acknowledging {n}, and no conflict reported"))?;
            let ours = conflict
                .ours
                .as_ref()
                .and_then(|item| item.get("n"))
                .and_then(|v| v.as_n().ok())
                .ok_or("the dropped state has no n")?
                .parse::<u64>()?;
            assert!(
                ours >= *n,
                "seed {seed}, key {key}: the conflict dropped {ours} of {n}"
            );
            assert!(letters
                .iter()
                .any(|l| l.key == rendered && l.reason.starts_with("conflict")));
        }
    }
    println!("{recovered_keys} keys recovered, {conflicted} reported conflicts");
    assert!(
        recovered_keys > 0,
        "no trial left anything to recover: the test proved nothing"
    );
    Ok(())
}

/// The child side of the counter crash test: four tasks add 1 to random counters, each
/// printing `try KEY` before and `ack KEY` after, until killed. Does nothing when run as an
/// ordinary test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_child() -> TestResult {
    let (Ok(endpoint), Ok(table), Ok(dir), Ok(interval)) = (
        std::env::var(format!("{CHILD}_ENDPOINT")),
        std::env::var(format!("{CHILD}_TABLE")),
        std::env::var(format!("{CHILD}_DIR")),
        std::env::var(format!("{CHILD}_INTERVAL_MS")),
    ) else {
        return Ok(());
    };
    let durability = match interval.parse::<u64>()? {
        0 => Durability::Always,
        ms => Durability::Interval(std::time::Duration::from_millis(ms)),
    };
    let mut builder = Store::builder(DynamoDbBackend::new(client_for(&endpoint), table))
        .journal(dir)
        .durability(durability)
        .flush_interval(std::time::Duration::from_millis(5));
    if std::env::var_os(format!("{CHILD}_VERSIONED")).is_some() {
        builder = builder.versioned(VERSION);
    }
    let store = builder.open().await?;
    let mut tasks = tokio::task::JoinSet::<quickstore::Result<()>>::new();
    for task in 0..4 {
        let store = store.clone();
        tasks.spawn(async move {
            let mut rng = StdRng::seed_from_u64(task);
            loop {
                let counter = rng.random_range(0..KEYS);
                println!("try {counter}");
                let key = Key::new("Counter", counter.to_string())?;
                store.apply(&key, Delta::new().add("n", 1)).await?;
                println!("ack {counter}");
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    Ok(())
}

/// Increments a counter child tried and acknowledged, by counter.
#[derive(Debug, Default)]
struct Counted {
    tried: HashMap<String, u64>,
    acked: HashMap<String, u64>,
}

/// Runs the counter child until it has acknowledged `acks` increments, kills it with SIGKILL,
/// and returns every increment it printed, before the kill and after.
fn count_and_kill(
    endpoint: &str,
    table: &str,
    dir: &std::path::Path,
    acks: usize,
    interval_ms: u64,
    versioned: bool,
) -> TestResult<Counted> {
    let mut child = child("counter_child", endpoint, table, dir, versioned)?
        .env(format!("{CHILD}_INTERVAL_MS"), interval_ms.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut counted = Counted::default();
    let mut lines = BufReader::new(stdout).lines();
    let mut killed = false;
    // Every line printed before the kill is in the pipe: read on until it is empty.
    for line in lines.by_ref() {
        let line = line?;
        // The test harness starts the first line with the test's name.
        if let Some((_, key)) = line.split_once("try ") {
            *counted.tried.entry(key.to_owned()).or_default() += 1;
        } else if let Some((_, key)) = line.split_once("ack ") {
            *counted.acked.entry(key.to_owned()).or_default() += 1;
            if !killed && counted.acked.values().sum::<u64>() == acks as u64 {
                child.kill()?; // SIGKILL: no destructor, no flush, no close
                killed = true;
            }
        }
    }
    child.wait()?;
    assert!(killed, "the child stopped before it was killed");
    Ok(counted)
}

/// A journaled store incrementing counters with deltas is killed with SIGKILL at a random
/// point, ten times with each durability (half of them in versioned mode); after recovery
/// every counter in the table holds every acknowledged increment exactly once: at least the
/// acknowledged ones, and at most those plus the ones in progress at the kill (tried, not yet
/// acknowledged: each may or may not have been journaled). A delta that landed before the kill
/// and is recovered is not applied again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_count_exactly_when_the_process_is_killed() -> TestResult {
    let server = Dynalite::start()?;
    let client = server.client();
    let mut recovered_keys = 0;
    for seed in 1..=20u64 {
        let interval_ms = if seed % 2 == 0 { 5 } else { 0 };
        let versioned = seed % 4 >= 2;
        let table = format!("counter-crash-{seed}");
        create_table(&client, &table, "_key").await?;
        let dir = tempfile::tempdir()?;
        let acks = StdRng::seed_from_u64(seed).random_range(1..2000);
        let counted = count_and_kill(
            server.endpoint(),
            &table,
            dir.path(),
            acks,
            interval_ms,
            versioned,
        )?;

        let builder =
            Store::builder(DynamoDbBackend::new(client.clone(), table.clone())).journal(dir.path());
        let store = if versioned {
            builder.versioned(VERSION)
        } else {
            builder
        }
        .open()
        .await?;
        let recovery = store.stats().recovery.ok_or("no recovery report")?;
        recovered_keys += recovery.keys;
        store.close().await?;
        for key in 0..KEYS {
            let key = key.to_string();
            let stored = stored_counter(&client, &table, &key)
                .await?
                .map_or(0, |(n, _)| n);
            let acked = counted.acked.get(&key).copied().unwrap_or(0);
            let tried = counted.tried.get(&key).copied().unwrap_or(0);
            assert!(
                acked <= stored && stored <= tried,
                "seed {seed} (interval {interval_ms} ms, versioned {versioned}), counter {key}: {stored} stored, \
                 {acked} acknowledged, {tried} tried; {recovery:?}"
            );
        }
    }
    println!("{recovered_keys} keys recovered");
    assert!(
        recovered_keys > 0,
        "no trial left anything to recover: the test proved nothing"
    );
    Ok(())
}

#[tokio::test]
async fn a_journal_directory_serves_one_store_at_a_time() -> TestResult {
    let fixture = Fixture::embedded()?;
    let dir = tempfile::tempdir()?;
    let first = fixture.builder().journal(dir.path()).open().await?;
    let err = fixture.builder().journal(dir.path()).open().await.err();
    assert_eq!(
        err.as_ref().map(|e| e.code()),
        Some("JournalException"),
        "{err:?}"
    );
    first
        .upsert(&Key::new("K", "1")?, &Counter { n: 1 })
        .await?;
    first.close().await?;
    let second = fixture.builder().journal(dir.path()).open().await?;
    assert_eq!(
        second.get::<Counter>(&Key::new("K", "1")?).await?,
        Some(Counter { n: 1 })
    );
    second.close().await?;
    Ok(())
}

#[cfg(feature = "testing")]
#[tokio::test]
async fn refused_writes_are_dead_lettered_with_the_reason() -> TestResult {
    use quickstore::journal::DEAD_LETTERS;
    use quickstore::testing::{Faults, FaultyBackend};

    let fixture = Fixture::embedded()?;
    let dir = tempfile::tempdir()?;
    let faults = Faults::new().refuse(["Kbad"]);
    let store = Store::builder(FaultyBackend::new(fixture.backend(), faults))
        .journal(dir.path())
        .durability(Durability::Interval(std::time::Duration::from_millis(10)))
        .open()
        .await?;
    store
        .upsert(&Key::new("K", "good")?, &Counter { n: 1 })
        .await?;
    store
        .upsert(&Key::new("K", "bad")?, &Counter { n: 2 })
        .await?;
    let err = store.flush().await.err();
    assert_eq!(err.as_ref().map(|e| e.code()), Some("DynamoDBException"));
    assert_eq!(store.stats().dead_letters, 1);
    store.close().await?;
    let letters = std::fs::read_to_string(dir.path().join(DEAD_LETTERS))?;
    assert_eq!(letters.lines().count(), 1);
    assert!(
        letters.contains("\"key\":\"Kbad\"") && letters.contains("injected refusal"),
        "{letters}"
    );
    assert!(fixture.read_back("Kgood").await?.is_some());
    Ok(())
}

/// A journal segment named after `first` holding upserts of `User{seq}` for `first..first + n`,
/// as a crashed store leaves them.
fn segment_bytes(first: u64, n: u64) -> TestResult<Vec<u8>> {
    use quickstore::internals::{encode_record, Op, Record};
    let mut bytes = b"QSJRNL01".to_vec();
    for seq in first..first + n {
        let item = quickstore::Item::from([("n".to_owned(), AttributeValue::N(seq.to_string()))]);
        let record = Record::new(seq, Op::Upsert, format!("User{seq}"), Some(Arc::new(item)));
        encode_record(&record, &mut bytes)?;
    }
    Ok(bytes)
}

/// A journal whose middle segment was deleted lost that segment's mutations: the gap in the
/// sequence numbers refuses a strict open (naming the files and the missing range), and a
/// salvaging open reports it and writes what is left.
#[tokio::test]
async fn a_journal_missing_a_middle_segment_is_refused_unless_salvaged() -> TestResult {
    let fixture = Fixture::embedded()?;
    let dir = tempfile::tempdir()?;
    let name = |first: u64| format!("{first:020}.wal");
    std::fs::write(dir.path().join(name(1)), segment_bytes(1, 3)?)?;
    std::fs::write(dir.path().join(name(7)), segment_bytes(7, 3)?)?;

    let summary = quickstore::journal::inspect_journal(dir.path())?;
    assert!(!summary.opens_strictly(), "{summary:?}");

    let err = fixture.builder().journal(dir.path()).open().await.err();
    assert_eq!(err.as_ref().map(|e| e.code()), Some("JournalException"));
    let message = err.map(|e| e.to_string()).unwrap_or_default();
    for part in [
        name(1),
        name(7),
        "sequences 4-6 are missing".to_owned(),
        "salvage".to_owned(),
    ] {
        assert!(message.contains(&part), "{part}: {message}");
    }

    let store = fixture
        .builder()
        .journal(dir.path())
        .recovery(quickstore::journal::Recovery::Salvage)
        .open()
        .await?;
    let report = store.stats().recovery.unwrap_or_default();
    assert_eq!(report.records, 6);
    assert_eq!(report.salvaged.len(), 1, "{report:?}");
    assert!(report.salvaged[0].contains("sequences 4-6 are missing"));
    store.close().await?;
    for seq in 1..=9 {
        let found = fixture.read_back(&format!("User{seq}")).await?;
        assert_eq!(found.is_some(), !(4..=6).contains(&seq), "User{seq}");
    }
    Ok(())
}

/// Copies the journal fixture `name` (written by quickstore 0.1.0 before its journal wrote its
/// own records from the mutating tasks) into `to`.
fn copy_fixture(name: &str, to: &std::path::Path) -> TestResult {
    let from = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/journal-0.1.0")
        .join(name);
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        std::fs::copy(entry.path(), to.join(entry.file_name()))?;
    }
    Ok(())
}

/// Journals written by the earlier journal writer (one thread writing every record) recover
/// unchanged: plain and versioned stores, full mutations, deletes and deltas. The fixtures are
/// what a store left when it exited without closing, after `upsert`s of `Doc` d0 to d4, an
/// `insert` of `Doc` new, an `update` of d1, a `delete` of d2, and two `apply`s adding 3 and 4
/// to `Counter` views.
#[tokio::test]
async fn journals_written_by_the_earlier_writer_recover() -> TestResult {
    for (name, versioned) in [("plain", false), ("versioned", true)] {
        let dir = tempfile::tempdir()?;
        let journal = dir.path().join("journal");
        copy_fixture(name, &journal)?;
        let backend = quickstore::EmbeddedBackend::open(dir.path().join("items.redb"))?;
        let mut builder = Store::builder(backend.clone()).journal(&journal);
        if versioned {
            builder = builder.versioned("version");
        }
        let store = builder.open().await?;
        let recovered = store.stats().recovery.map(|report| report.records);
        assert_eq!(recovered, Some(10), "{name}: every record read");
        store.close().await?;

        // What reached the table, read without the journal.
        let store = Store::builder(backend).open().await?;
        let n = |item: Option<Arc<quickstore::Item>>| {
            item.and_then(|item| match item.get("n") {
                Some(AttributeValue::N(n)) => n.parse::<u64>().ok(),
                _ => None,
            })
        };
        for (id, expected) in [
            ("d0", Some(0)),
            ("d1", Some(11)),
            ("d2", None),
            ("d3", Some(3)),
            ("d4", Some(4)),
            ("new", Some(100)),
        ] {
            let item = store.get_item(&Key::new("Doc", id)?).await?;
            assert_eq!(n(item), expected, "{name}: Doc {id}");
        }
        let views = store.get_item(&Key::new("Counter", "views")?).await?;
        assert_eq!(n(views), Some(7), "{name}: the counter");
        store.close().await?;
    }
    Ok(())
}
