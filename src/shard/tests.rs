use std::sync::Mutex as StdMutex;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;

use super::*;

/// A write context with its own counters, recording the keys that turned dirty.
struct Harness {
    seq: AtomicU64,
    pending: AtomicUsize,
    closed: AtomicBool,
    max_pending: usize,
    dirtied: StdMutex<Vec<(u64, String)>>,
    versioned: bool,
}

impl Harness {
    fn new(max_pending: usize) -> Self {
        Self {
            seq: AtomicU64::new(0),
            pending: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            max_pending,
            dirtied: StdMutex::new(Vec::new()),
            versioned: false,
        }
    }

    /// A context in versioned mode: every mutation needs its key's state.
    fn versioned(max_pending: usize) -> Self {
        Self {
            versioned: true,
            ..Self::new(max_pending)
        }
    }

    fn mutate(
        &self,
        shard: &Shard,
        key: &str,
        mutation: Mutation,
        known: Option<&Known>,
    ) -> Result<Mutated> {
        let on_dirty = |seq: u64, key: &str| {
            if let Ok(mut dirtied) = self.dirtied.lock() {
                dirtied.push((seq, key.to_owned()));
            }
        };
        let ctx = WriteContext {
            seq: &self.seq,
            pending: &self.pending,
            max_pending: self.max_pending,
            max_pending_bytes: u64::MAX,
            closed: &self.closed,
            on_dirty: &on_dirty,
            journal: None,
            versioned: self.versioned,
            key_parts: None,
        };
        shard.mutate(key, mutation, known, &ctx)
    }

    fn dirtied(&self) -> Vec<(u64, String)> {
        self.dirtied.lock().map(|d| d.clone()).unwrap_or_default()
    }
}

fn item(n: u32) -> Arc<Item> {
    Arc::new(
        [("n".to_string(), AttributeValue::N(n.to_string()))]
            .into_iter()
            .collect(),
    )
}

/// The key's state and sequence, taken for writing.
fn take(shard: &Shard, key: &str) -> Option<(Value, u64)> {
    shard
        .take_for_write(key)
        .map(|taken| (taken.value, taken.seq))
}

fn hit(shard: &Shard, key: &str) -> Option<Value> {
    match shard.lookup(key) {
        Lookup::Hit(known) => Some(known.value),
        _ => None,
    }
}

fn start_load(shard: &Shard, key: &str) -> Option<Ticket> {
    match shard.lookup(key) {
        Lookup::Load(ticket) => Some(ticket),
        _ => None,
    }
}

#[test]
fn an_unknown_key_is_loaded_once_and_then_hit() {
    let shard = Shard::new(1 << 20, None, Arc::default(), KeyHasher::default());
    let ticket = start_load(&shard, "a");
    assert!(ticket.is_some());
    assert!(
        matches!(shard.lookup("a"), Lookup::Wait(_)),
        "a second reader waits"
    );
    let known = ticket.and_then(|t| shard.finish_load("a", t, Some(item(1)), 0));
    assert_eq!(known.map(|k| k.value), Some(Some(item(1))));
    assert_eq!(hit(&shard, "a"), Some(Some(item(1))));
}

#[test]
fn each_lookup_counts_once_as_a_hit_or_a_miss() {
    let hasher = KeyHasher::default();
    let shard = Shard::new(1 << 20, None, Arc::default(), hasher.clone());
    let counted = |shard: &Shard| {
        let counters = shard.usage().counters;
        (counters.hits, counters.misses)
    };
    let ticket = start_load(&shard, "a");
    assert!(matches!(shard.lookup("a"), Lookup::Wait(_)));
    assert_eq!(counted(&shard), (0, 2), "the loader and the waiter missed");
    // The waiter looks again once the load ends: that look is not a lookup of its own.
    assert!(ticket
        .and_then(|t| shard.finish_load("a", t, Some(item(1)), 0))
        .is_some());
    assert!(matches!(shard.look_again("a"), Lookup::Hit(_)));
    assert_eq!(counted(&shard), (0, 2));
    assert_eq!(hit(&shard, "a"), Some(Some(item(1))));
    assert_eq!(shard.value(hasher.hash("a")), Some(Some(item(1))));
    assert_eq!(
        counted(&shard),
        (2, 2),
        "both the lookup and the fast lane hit"
    );
    // The fast lane counts nothing when it cannot answer: the lookup that follows counts.
    assert_eq!(shard.value(hasher.hash("b")), None);
    assert_eq!(shard.decoded::<u32>(hasher.hash("a")), None);
    assert_eq!(counted(&shard), (2, 2));
}

#[test]
fn absent_keys_are_cached() {
    let shard = Shard::new(1 << 20, None, Arc::default(), KeyHasher::default());
    let ticket = start_load(&shard, "gone");
    assert!(ticket
        .and_then(|t| shard.finish_load("gone", t, None, 0))
        .is_some());
    assert_eq!(hit(&shard, "gone"), Some(None));
}

#[tokio::test]
async fn waiters_wake_when_the_load_ends() {
    let shard = Arc::new(Shard::new(
        1 << 20,
        None,
        Arc::default(),
        KeyHasher::default(),
    ));
    let ticket = start_load(&shard, "a");
    let lookup = shard.lookup("a");
    assert!(matches!(lookup, Lookup::Wait(_)));
    let Lookup::Wait(wait) = lookup else {
        return;
    };
    let waiter = tokio::spawn(wait.wait());
    if let Some(ticket) = ticket {
        shard.finish_load("a", ticket, Some(item(1)), 0);
    }
    assert!(matches!(waiter.await, Ok(Ok(()))));
}

#[tokio::test]
async fn a_failed_load_hands_its_error_to_every_waiter() {
    let shard = Arc::new(Shard::new(
        1 << 20,
        None,
        Arc::default(),
        KeyHasher::default(),
    ));
    let ticket = start_load(&shard, "a");
    let waiters: Vec<_> = (0..3)
        .filter_map(|_| match shard.lookup("a") {
            Lookup::Wait(wait) => Some(tokio::spawn(wait.wait())),
            _ => None,
        })
        .collect();
    assert_eq!(waiters.len(), 3);
    if let Some(ticket) = ticket {
        shard.abort_load("a", ticket, Some(Error::transient("GetItem", "down", None)));
    }
    for waiter in waiters {
        let outcome = waiter.await;
        assert!(matches!(outcome, Ok(Err(Error::Backend(_)))), "{outcome:?}");
    }
    // The failure is not cached: the next reader loads again.
    assert!(start_load(&shard, "a").is_some());
}

#[test]
fn an_aborted_load_lets_the_next_reader_load() {
    let shard = Shard::new(1 << 20, None, Arc::default(), KeyHasher::default());
    let first = start_load(&shard, "a");
    if let Some(ticket) = first {
        shard.abort_load("a", ticket, None);
    }
    let second = start_load(&shard, "a");
    assert!(second.is_some());
    // The old ticket can no longer install anything.
    assert!(first
        .and_then(|t| shard.finish_load("a", t, Some(item(9)), 0))
        .is_none());
    assert!(matches!(shard.lookup("a"), Lookup::Wait(_)));
}

#[test]
fn a_load_overtaken_by_a_mutation_is_not_cached() -> Result<()> {
    let harness = Harness::new(10);
    let shard = Shard::new(1 << 20, None, Arc::default(), KeyHasher::default());
    let ticket = start_load(&shard, "a");
    harness.mutate(&shard, "a", Mutation::Upsert(item(2)), None)?;
    // The write settles and its entry becomes clean, then evicted ...
    let (value, seq) = take(&shard, "a").unwrap_or((None, 0));
    assert_eq!(value, Some(item(2)));
    assert_eq!(
        shard.complete_write("a", seq, Landed::Written(Some(0))),
        Some(Completed::Settled)
    );
    // ... and the older state the load read must not replace it.
    let known = ticket.and_then(|t| shard.finish_load("a", t, Some(item(1)), 0));
    assert_eq!(known.map(|k| k.value), Some(Some(item(2))));
    assert_eq!(hit(&shard, "a"), Some(Some(item(2))));
    Ok(())
}

#[test]
fn insert_and_update_check_the_current_state() -> Result<()> {
    let harness = Harness::new(10);
    let shard = Shard::new(1 << 20, None, Arc::default(), KeyHasher::default());
    assert_eq!(
        harness.mutate(&shard, "a", Mutation::Insert(item(1)), None)?,
        Mutated::NeedsLoad
    );
    let known = start_load(&shard, "a").and_then(|t| shard.finish_load("a", t, None, 0));
    assert_eq!(
        harness.mutate(&shard, "a", Mutation::Update(item(1)), known.as_ref())?,
        Mutated::NotExisted
    );
    assert!(matches!(
        harness.mutate(&shard, "a", Mutation::Insert(item(1)), known.as_ref())?,
        Mutated::Applied(1)
    ));
    assert_eq!(
        harness.mutate(&shard, "a", Mutation::Insert(item(2)), None)?,
        Mutated::Existed
    );
    assert!(matches!(
        harness.mutate(&shard, "a", Mutation::Update(item(3)), None)?,
        Mutated::Applied(2)
    ));
    assert_eq!(hit(&shard, "a"), Some(Some(item(3))));
    Ok(())
}

#[test]
fn a_known_state_expires_when_the_shard_changes() -> Result<()> {
    let harness = Harness::new(10);
    let shard = Shard::new(1, None, Arc::default(), KeyHasher::default()); // nothing clean is kept
    let known = start_load(&shard, "a").and_then(|t| shard.finish_load("a", t, None, 0));
    harness.mutate(&shard, "b", Mutation::Upsert(item(1)), None)?;
    assert_eq!(
        harness.mutate(&shard, "a", Mutation::Insert(item(1)), known.as_ref())?,
        Mutated::NeedsLoad
    );
    Ok(())
}

#[test]
fn dirty_entries_survive_any_cache_pressure() -> Result<()> {
    let harness = Harness::new(1000);
    let shard = Shard::new(200, None, Arc::default(), KeyHasher::default()); // room for about one clean entry
    for i in 0..100 {
        harness.mutate(&shard, &format!("k{i}"), Mutation::Upsert(item(i)), None)?;
    }
    for i in 0..100 {
        assert_eq!(hit(&shard, &format!("k{i}")), Some(Some(item(i))));
    }
    let usage = shard.usage();
    assert_eq!(usage.dirty_entries, 100);
    assert!(usage.clean_bytes <= 200);
    Ok(())
}

#[test]
fn a_key_turns_dirty_once_per_episode() -> Result<()> {
    let harness = Harness::new(10);
    let shard = Shard::new(1 << 20, None, Arc::default(), KeyHasher::default());
    harness.mutate(&shard, "a", Mutation::Upsert(item(1)), None)?;
    harness.mutate(&shard, "a", Mutation::Upsert(item(2)), None)?;
    harness.mutate(&shard, "a", Mutation::Delete, None)?;
    assert_eq!(harness.dirtied(), vec![(1, "a".to_string())]);
    assert_eq!(harness.pending.load(Ordering::Acquire), 1);
    let (value, seq) = take(&shard, "a").unwrap_or((Some(item(0)), 0));
    assert_eq!((value, seq), (None, 3), "only the newest state is written");
    assert_eq!(
        shard.complete_write("a", 3, Landed::Written(Some(0))),
        Some(Completed::Settled)
    );
    assert_eq!(hit(&shard, "a"), Some(None));
    harness.mutate(&shard, "a", Mutation::Upsert(item(4)), None)?;
    assert_eq!(harness.dirtied().len(), 2);
    Ok(())
}

#[test]
fn mutations_during_a_write_wait_for_it() -> Result<()> {
    let harness = Harness::new(10);
    let shard = Shard::new(1 << 20, None, Arc::default(), KeyHasher::default());
    harness.mutate(&shard, "a", Mutation::Upsert(item(1)), None)?;
    let taken = take(&shard, "a");
    assert_eq!(taken, Some((Some(item(1)), 1)));
    harness.mutate(&shard, "a", Mutation::Upsert(item(2)), None)?;
    harness.mutate(&shard, "a", Mutation::Upsert(item(3)), None)?;
    assert_eq!(take(&shard, "a"), None, "one write of a key at a time");
    assert_eq!(
        shard.complete_write("a", 1, Landed::Written(Some(0))),
        Some(Completed::StillDirty(2))
    );
    assert_eq!(shard.first_seq("a"), Some(2));
    assert_eq!(
        hit(&shard, "a"),
        Some(Some(item(3))),
        "the newer state stays visible"
    );
    assert_eq!(take(&shard, "a"), Some((Some(item(3)), 3)));
    assert_eq!(
        shard.complete_write("a", 3, Landed::Written(Some(0))),
        Some(Completed::Settled)
    );
    Ok(())
}

#[test]
fn a_refused_write_forgets_the_key() -> Result<()> {
    let harness = Harness::new(10);
    let shard = Shard::new(1 << 20, None, Arc::default(), KeyHasher::default());
    harness.mutate(&shard, "a", Mutation::Upsert(item(1)), None)?;
    let seq = take(&shard, "a").map_or(0, |(_, seq)| seq);
    assert_eq!(
        shard.complete_write("a", seq, Landed::Refused),
        Some(Completed::Settled)
    );
    assert!(
        start_load(&shard, "a").is_some(),
        "the backend's state is read again"
    );
    Ok(())
}

#[test]
fn an_abandoned_write_is_taken_again() -> Result<()> {
    let harness = Harness::new(10);
    let shard = Shard::new(1 << 20, None, Arc::default(), KeyHasher::default());
    harness.mutate(&shard, "a", Mutation::Upsert(item(1)), None)?;
    let seq = take(&shard, "a").map_or(0, |(_, seq)| seq);
    harness.mutate(&shard, "a", Mutation::Upsert(item(2)), None)?;
    assert_eq!(shard.abandon_write("a", seq), Some(1));
    assert_eq!(take(&shard, "a"), Some((Some(item(2)), 2)));
    Ok(())
}

#[test]
fn pending_keys_are_bounded() -> Result<()> {
    let harness = Harness::new(2);
    let shard = Shard::new(1 << 20, None, Arc::default(), KeyHasher::default());
    harness.mutate(&shard, "a", Mutation::Upsert(item(1)), None)?;
    harness.mutate(&shard, "b", Mutation::Upsert(item(1)), None)?;
    let err = harness
        .mutate(&shard, "c", Mutation::Upsert(item(1)), None)
        .err();
    assert!(
        matches!(
            err,
            Some(Error::TooManyRequests {
                pending: 2,
                limit: 2,
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(hit(&shard, "c"), None, "a refused mutation changes nothing");
    // Keys already pending may still change.
    harness.mutate(&shard, "a", Mutation::Upsert(item(2)), None)?;
    Ok(())
}

#[test]
fn a_closed_store_refuses_mutations() {
    let harness = Harness::new(10);
    harness.closed.store(true, Ordering::Release);
    let shard = Shard::new(1 << 20, None, Arc::default(), KeyHasher::default());
    let err = harness.mutate(&shard, "a", Mutation::Delete, None).err();
    assert!(matches!(err, Some(Error::Closed)));
}

fn decide_put(n: u32) -> impl FnOnce(&Value) -> Result<(Option<Mutation>, Option<Value>)> {
    move |current: &Value| Ok((Some(Mutation::Upsert(item(n))), Some(current.clone())))
}

#[test]
fn mutate_with_sees_the_current_state_and_applies_the_decision() -> Result<()> {
    let harness = Harness::new(10);
    let shard = Shard::new(1 << 20, None, Arc::default(), KeyHasher::default());
    let needs = harness_mutate_with(&harness, &shard, "a", None, decide_put(1))?;
    assert!(
        matches!(needs, MutatedWith::NeedsLoad),
        "an unknown key is loaded first"
    );
    let ticket = start_load(&shard, "a");
    let known = ticket.and_then(|t| shard.finish_load("a", t, None, 0));
    let applied = harness_mutate_with(&harness, &shard, "a", known.as_ref(), decide_put(1))?;
    assert_eq!(applied, MutatedWith::Applied(1, Some(None)));
    let applied = harness_mutate_with(&harness, &shard, "a", None, decide_put(2))?;
    assert_eq!(applied, MutatedWith::Applied(2, Some(Some(item(1)))));
    let kept = harness_mutate_with(&harness, &shard, "a", None, |current: &Value| {
        Ok((None, Some(current.clone())))
    })?;
    assert_eq!(kept, MutatedWith::Unchanged(Some(Some(item(2)))));
    assert_eq!(hit(&shard, "a"), Some(Some(item(2))));
    assert_eq!(harness.dirtied(), vec![(1, "a".to_string())]);
    Ok(())
}

#[test]
fn a_failed_decision_changes_nothing() -> Result<()> {
    let harness = Harness::new(10);
    let shard = Shard::new(1 << 20, None, Arc::default(), KeyHasher::default());
    harness.mutate(&shard, "a", Mutation::Upsert(item(1)), None)?;
    let failed = harness_mutate_with(&harness, &shard, "a", None, |_: &Value| {
        Err::<(Option<Mutation>, ()), _>(Error::validation("no"))
    });
    assert!(failed.is_err());
    assert_eq!(hit(&shard, "a"), Some(Some(item(1))));
    assert_eq!(harness.seq.load(Ordering::Acquire), 1);
    Ok(())
}

fn harness_mutate_with<R>(
    harness: &Harness,
    shard: &Shard,
    key: &str,
    known: Option<&Known>,
    decide: impl FnOnce(&Value) -> Result<(Option<Mutation>, R)>,
) -> Result<MutatedWith<R>> {
    let on_dirty = |seq: u64, key: &str| {
        if let Ok(mut dirtied) = harness.dirtied.lock() {
            dirtied.push((seq, key.to_owned()));
        }
    };
    let ctx = WriteContext {
        seq: &harness.seq,
        pending: &harness.pending,
        max_pending: harness.max_pending,
        max_pending_bytes: u64::MAX,
        closed: &harness.closed,
        on_dirty: &on_dirty,
        journal: None,
        versioned: false,
        key_parts: None,
    };
    shard.mutate_with(key, known, &ctx, decide)
}

#[test]
fn invalidating_drops_clean_state_but_keeps_dirty_state() -> Result<()> {
    let harness = Harness::new(10);
    let shard = Shard::new(1 << 20, None, Arc::default(), KeyHasher::default());
    let ticket = start_load(&shard, "clean");
    ticket.and_then(|t| shard.finish_load("clean", t, Some(item(1)), 0));
    harness.mutate(&shard, "dirty", Mutation::Upsert(item(2)), None)?;
    shard.invalidate("clean");
    shard.invalidate("dirty");
    assert!(matches!(shard.lookup("clean"), Lookup::Load(_)));
    assert_eq!(hit(&shard, "dirty"), Some(Some(item(2))));

    // A load under way when the key is invalidated is not cached.
    let ticket = start_load(&shard, "loading");
    shard.invalidate_all();
    let known = ticket.and_then(|t| shard.finish_load("loading", t, Some(item(3)), 0));
    assert!(known.is_none(), "the caller must look again");
    assert!(matches!(shard.lookup("loading"), Lookup::Load(_)));
    assert_eq!(hit(&shard, "dirty"), Some(Some(item(2))));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn clean_state_older_than_max_staleness_is_read_again() -> Result<()> {
    let harness = Harness::new(10);
    let shard = Shard::new(
        1 << 20,
        Some(Duration::from_secs(10)),
        Arc::default(),
        KeyHasher::default(),
    );
    let ticket = start_load(&shard, "a");
    ticket.and_then(|t| shard.finish_load("a", t, Some(item(1)), 0));
    tokio::time::advance(Duration::from_secs(9)).await;
    assert_eq!(hit(&shard, "a"), Some(Some(item(1))));
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(
        matches!(shard.lookup("a"), Lookup::Load(_)),
        "stale: read again"
    );

    // Dirty state never goes stale, and a written state is fresh from when it settled.
    harness.mutate(&shard, "b", Mutation::Upsert(item(2)), None)?;
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(hit(&shard, "b"), Some(Some(item(2))));
    let (_, seq) = take(&shard, "b").unwrap_or((None, 0));
    shard.complete_write("b", seq, Landed::Written(Some(0)));
    tokio::time::advance(Duration::from_secs(9)).await;
    assert_eq!(hit(&shard, "b"), Some(Some(item(2))));
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(hit(&shard, "b").is_none());
    Ok(())
}

#[test]
fn writes_remember_the_version_they_replace() -> Result<()> {
    let harness = Harness::versioned(10);
    let shard = Shard::new(1 << 20, None, Arc::default(), KeyHasher::default());
    // Loaded at version 4: the first mutation's write replaces version 4.
    let known = start_load(&shard, "a").and_then(|t| shard.finish_load("a", t, Some(item(1)), 4));
    assert_eq!(known.map(|k| k.version), Some(4));
    harness.mutate(&shard, "a", Mutation::Upsert(item(2)), None)?;
    let taken = shard
        .take_for_write("a")
        .ok_or_else(|| Error::validation("not dirty"))?;
    assert_eq!(taken.base.version, Some(4));
    // A mutation while the write is in flight: the next write replaces what this one left.
    harness.mutate(&shard, "a", Mutation::Upsert(item(3)), None)?;
    shard.complete_write("a", taken.seq, Landed::Written(Some(5)));
    let next = shard
        .take_for_write("a")
        .ok_or_else(|| Error::validation("not dirty"))?;
    assert_eq!((next.base.version, next.value), (Some(5), Some(item(3))));
    shard.complete_write("a", next.seq, Landed::Written(Some(6)));
    // Settled at version 6: a new episode starts from it.
    harness.mutate(&shard, "a", Mutation::Delete, None)?;
    assert_eq!(
        shard.take_for_write("a").map(|t| t.base.version),
        Some(Some(6))
    );

    // In versioned mode even an upsert of an unknown key reads it first.
    assert_eq!(
        harness.mutate(&shard, "c", Mutation::Upsert(item(1)), None)?,
        Mutated::NeedsLoad
    );
    // An absent key's episode starts from absence.
    start_load(&shard, "b").and_then(|t| shard.finish_load("b", t, None, 0));
    harness.mutate(&shard, "b", Mutation::Insert(item(1)), None)?;
    assert_eq!(
        shard.take_for_write("b").map(|t| t.base.version),
        Some(None)
    );
    Ok(())
}

#[test]
fn a_lost_race_hands_the_key_to_the_winner() -> Result<()> {
    let harness = Harness::versioned(10);
    let shard = Shard::new(1 << 20, None, Arc::default(), KeyHasher::default());
    start_load(&shard, "a").and_then(|t| shard.finish_load("a", t, Some(item(1)), 1));
    harness.mutate(&shard, "a", Mutation::Upsert(item(2)), None)?;
    let taken = shard
        .take_for_write("a")
        .ok_or_else(|| Error::validation("not dirty"))?;
    harness.mutate(&shard, "a", Mutation::Upsert(item(3)), None)?;
    assert_eq!(
        shard.resolve_conflict("a", taken.seq + 1, Some(item(9)), 2),
        None
    );
    let ours = shard.resolve_conflict("a", taken.seq, Some(item(9)), 2);
    assert_eq!(
        ours,
        Some((Some(item(3)), taken.seq + 1)),
        "the newest pending state is dropped"
    );
    assert_eq!(hit(&shard, "a"), Some(Some(item(9))));
    assert!(shard.take_for_write("a").is_none(), "nothing left to write");
    // The next episode starts from the winner's version.
    harness.mutate(&shard, "a", Mutation::Upsert(item(4)), None)?;
    assert_eq!(
        shard.take_for_write("a").map(|t| t.base.version),
        Some(Some(2))
    );
    Ok(())
}
