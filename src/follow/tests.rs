//! The follower against a scripted stream: shard lineage, lost places, own writes, and the
//! rule for replacing or dropping a cached state.

use std::collections::VecDeque;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use parking_lot::Mutex;

use super::*;
use crate::backend::{Backend, BatchGet, Write};
use crate::item::Item;
use crate::key::Kinds;
use crate::options::Options;
use crate::shard::{Lookup, Value};
use crate::stats::Counters;
use crate::stream::{StreamDescription, StreamImage, StreamRecord, StreamViewType};

/// A backend the follower never calls.
struct Unused;

#[async_trait]
impl Backend for Unused {
    async fn check_table(&self, _: &str) -> Result<()> {
        Ok(())
    }
    async fn get(&self, _: &str, _: &str, _: bool) -> Result<Option<Item>> {
        Err(Error::permanent("GetItem", "unused", None))
    }
    async fn batch_get(&self, _: &str, _: &[String], _: bool) -> Result<BatchGet> {
        Err(Error::permanent("BatchGetItem", "unused", None))
    }
    async fn batch_write(&self, _: &str, _: &[Write]) -> Result<Vec<usize>> {
        Err(Error::permanent("BatchWriteItem", "unused", None))
    }
}

/// What the scripted stream answers instead of records, once.
enum Trouble {
    Expired,
    Trimmed,
    Transient,
}

struct ScriptShard {
    shard: StreamShard,
    records: Vec<StreamRecord>,
}

#[derive(Default)]
struct Script {
    view: Option<StreamViewType>,
    shards: Vec<ScriptShard>,
    trouble: VecDeque<Trouble>,
    /// Every `records` call, by shard.
    reads: Vec<String>,
    /// Every iterator asked for.
    starts: Vec<(String, StreamStart)>,
}

/// An in-memory stream: iterators are `shard|position`.
#[derive(Clone, Default)]
struct Scripted(Arc<Mutex<Script>>);

impl Scripted {
    fn add_shard(&self, id: &str, parent: Option<&str>) {
        self.0.lock().shards.push(ScriptShard {
            shard: StreamShard::new(id, parent.map(str::to_owned), false),
            records: Vec::new(),
        });
    }

    fn close(&self, id: &str) {
        let mut script = self.0.lock();
        if let Some(s) = script.shards.iter_mut().find(|s| s.shard.id == id) {
            s.shard.closed = true;
        }
    }

    /// A record of `key` becoming `n` (or removed, with `None`), made `after` the stream's
    /// creation.
    fn put(&self, id: &str, key: &str, n: Option<&str>, after: Duration) {
        let mut script = self.0.lock();
        let Some(s) = script.shards.iter_mut().find(|s| s.shard.id == id) else {
            return;
        };
        let keys = Item::from([("pk".to_string(), AttributeValue::S(key.into()))]);
        let after_image = match n {
            Some(n) => {
                let mut image = item(n);
                image.insert("pk".to_string(), AttributeValue::S(key.into()));
                StreamImage::Present(image)
            }
            None => StreamImage::Removed,
        };
        let sequence = format!("{id}-{}", s.records.len());
        s.records.push(StreamRecord::new(
            keys,
            after_image,
            sequence,
            SystemTime::now() + after,
        ));
    }

    fn trouble(&self, trouble: Trouble) {
        self.0.lock().trouble.push_back(trouble);
    }

    fn reads(&self) -> Vec<String> {
        std::mem::take(&mut self.0.lock().reads)
    }
}

#[async_trait]
impl ChangeStream for Scripted {
    async fn describe(&self) -> Result<StreamDescription> {
        let script = self.0.lock();
        Ok(StreamDescription::new(
            script.view.unwrap_or(StreamViewType::NewAndOldImages),
            script.shards.iter().map(|s| s.shard.clone()).collect(),
        ))
    }

    async fn iterator(&self, shard: &str, start: &StreamStart) -> Result<String> {
        let mut script = self.0.lock();
        script.starts.push((shard.to_owned(), start.clone()));
        let Some(s) = script.shards.iter().find(|s| s.shard.id == shard) else {
            return Err(Error::permanent("GetShardIterator", "no such shard", None));
        };
        let position = match start {
            StreamStart::Latest => s.records.len(),
            StreamStart::TrimHorizon => 0,
            StreamStart::After(sequence) => s
                .records
                .iter()
                .position(|r| &r.sequence == sequence)
                .map_or(0, |p| p + 1),
        };
        Ok(format!("{shard}|{position}"))
    }

    async fn records(&self, iterator: &str) -> Result<StreamRecords> {
        let mut script = self.0.lock();
        let (shard, position) = iterator.split_once('|').unwrap_or_default();
        script.reads.push(shard.to_owned());
        match script.trouble.pop_front() {
            Some(Trouble::Expired) => return Ok(StreamRecords::Expired),
            Some(Trouble::Trimmed) => return Ok(StreamRecords::Trimmed),
            Some(Trouble::Transient) => {
                return Err(Error::transient("GetRecords", "throttled", None))
            }
            None => {}
        }
        let position: usize = position.parse().unwrap_or_default();
        let Some(s) = script.shards.iter().find(|s| s.shard.id == shard) else {
            return Err(Error::permanent("GetRecords", "no such shard", None));
        };
        let changes = s.records[position.min(s.records.len())..].to_vec();
        let end = s.records.len();
        let next = (!s.shard.closed).then(|| format!("{shard}|{end}"));
        Ok(StreamRecords::Read { changes, next })
    }
}

fn item(n: &str) -> Item {
    Item::from([("n".to_string(), AttributeValue::N(n.into()))])
}

fn shared() -> Shared {
    let options = Options {
        shards: 4,
        partition_key: Arc::from("pk"),
        ..Options::default()
    };
    Shared::new(
        Arc::new(Unused),
        options,
        Kinds::default(),
        None,
        None,
        true,
    )
}

/// A stream of one open shard `s1`, a store's shared state, and a follower started on them.
async fn one_shard() -> Result<(Scripted, Shared, Follower)> {
    let stream = Scripted::default();
    stream.add_shard("s1", None);
    let follower = Follower::start(Arc::new(stream.clone())).await?;
    Ok((stream, shared(), follower))
}

/// Caches `key` as `n`, as a read would.
fn cache(shared: &Shared, key: &str, n: &str) {
    let shard = shared.shard_of(key);
    if let Lookup::Load(ticket) = shard.lookup(key) {
        shard.finish_load(key, ticket, Some(Arc::new(item(n))), 0);
    }
}

/// The cached state of `key`: `None` when not cached, `Some(None)` when cached absent.
fn cached(shared: &Shared, key: &str) -> Option<Value> {
    shared.shard_of(key).peek(key).map(|known| known.value)
}

fn n(value: &str) -> Option<Value> {
    Some(Some(Arc::new(item(value))))
}

const LATER: Duration = Duration::from_secs(10);

#[tokio::test(start_paused = true)]
async fn newer_changes_replace_cached_state_and_uncertain_ones_drop_it() -> Result<()> {
    let (stream, shared, mut follower) = one_shard().await?;
    cache(&shared, "a", "1");
    cache(&shared, "b", "1");
    // Made well after "a" was read: newer for sure.
    stream.put("s1", "a", Some("2"), LATER);
    // Made about when "b" was read: perhaps older than what was read.
    stream.put("s1", "b", Some("2"), Duration::ZERO);
    // Not cached: nothing to do.
    stream.put("s1", "c", Some("2"), LATER);
    assert!(follower.round(&shared).await);
    assert_eq!(cached(&shared, "a"), n("2"));
    assert_eq!(cached(&shared, "b"), None, "dropped, to be read again");
    assert_eq!(cached(&shared, "c"), None);
    // A state from the stream is followed by the next record of its key, whatever its time.
    stream.put("s1", "a", None, Duration::ZERO);
    assert!(follower.round(&shared).await);
    assert_eq!(cached(&shared, "a"), Some(None));
    let counters = shared.counters();
    assert_eq!(Counters::get(&counters.stream_records), 4);
    assert_eq!(Counters::get(&counters.stream_replaced), 2);
    assert_eq!(Counters::get(&counters.stream_invalidated), 1);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn own_writes_coming_back_change_nothing() -> Result<()> {
    let (stream, shared, mut follower) = one_shard().await?;
    // The store wrote 1 then 2; the cache holds 2 when the record of 1 comes back.
    cache(&shared, "a", "2");
    let echoes = shared.echoes().ok_or(Error::Closed)?;
    echoes.expect("a", Some(Arc::new(item("1"))), 0);
    echoes.expect("a", Some(Arc::new(item("2"))), 0);
    stream.put("s1", "a", Some("1"), Duration::ZERO);
    stream.put("s1", "a", Some("2"), Duration::ZERO);
    follower.round(&shared).await;
    assert_eq!(cached(&shared, "a"), n("2"));
    assert_eq!(Counters::get(&shared.counters().stream_invalidated), 0);
    assert_eq!(Counters::get(&shared.counters().stream_records), 2);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn pending_keys_are_left_alone_and_loads_under_way_are_not_cached() -> Result<()> {
    let (stream, shared, mut follower) = one_shard().await?;
    let shard = shared.shard_of("loading");
    let Lookup::Load(ticket) = shard.lookup("loading") else {
        return Err(Error::Closed);
    };
    stream.put("s1", "loading", Some("2"), LATER);
    follower.round(&shared).await;
    assert!(
        shard
            .finish_load("loading", ticket, Some(Arc::new(item("1"))), 0)
            .is_none(),
        "the load may have read the state before the change"
    );
    assert_eq!(cached(&shared, "loading"), None);

    // A pending key keeps its state: it is newer than the table's.
    let dirty = "dirty";
    let on_dirty = |_: u64, _: &str| {};
    let ctx = shared.write_context(&on_dirty);
    shared.shard_of(dirty).restore(
        dirty,
        Some(Arc::new(item("1"))),
        (1, 1),
        None,
        crate::version::Base::default(),
        &ctx,
    );
    stream.put("s1", dirty, Some("2"), LATER);
    follower.round(&shared).await;
    assert_eq!(cached(&shared, dirty), n("1"));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn children_are_read_after_their_parent_from_their_beginning() -> Result<()> {
    let stream = Scripted::default();
    stream.add_shard("old", None);
    stream.close("old");
    stream.add_shard("parent", Some("old"));
    let shared = shared();
    let mut follower = Follower::start(Arc::new(stream.clone())).await?;
    cache(&shared, "a", "0");
    stream.put("parent", "a", Some("1"), LATER);
    // The parent splits: two children, one already with a newer record of "a".
    stream.add_shard("left", Some("parent"));
    stream.add_shard("right", Some("parent"));
    stream.put("left", "a", Some("2"), LATER);
    // The children are found but wait for their parent.
    follower.discover_at = Instant::now();
    follower.round(&shared).await;
    assert_eq!(stream.reads(), ["parent"]);
    assert_eq!(cached(&shared, "a"), n("1"));
    stream.close("parent");
    follower.round(&shared).await;
    follower.round(&shared).await;
    let mut reads = stream.reads();
    reads.sort();
    assert_eq!(reads, ["left", "parent", "right"]);
    assert_eq!(cached(&shared, "a"), n("2"));
    let starts = stream.0.lock().starts.clone();
    assert!(starts.contains(&("parent".into(), StreamStart::Latest)));
    assert!(starts.contains(&("left".into(), StreamStart::TrimHorizon)));
    assert!(
        !starts.iter().any(|(shard, _)| shard == "old"),
        "closed before the store opened"
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_expired_iterator_reads_on_after_the_last_record() -> Result<()> {
    let (stream, shared, mut follower) = one_shard().await?;
    cache(&shared, "a", "0");
    stream.put("s1", "a", Some("1"), LATER);
    follower.round(&shared).await;
    stream.put("s1", "a", Some("2"), LATER);
    stream.trouble(Trouble::Expired);
    follower.round(&shared).await;
    follower.round(&shared).await;
    assert_eq!(cached(&shared, "a"), n("2"));
    assert_eq!(Counters::get(&shared.counters().stream_resets), 0);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_lost_place_drops_every_clean_entry() -> Result<()> {
    for trouble in [Trouble::Expired, Trouble::Trimmed] {
        let (stream, shared, mut follower) = one_shard().await?;
        cache(&shared, "a", "0");
        // Expired before any record was read: the changes since the start may be missed.
        stream.trouble(trouble);
        follower.round(&shared).await;
        assert_eq!(cached(&shared, "a"), None);
        assert_eq!(Counters::get(&shared.counters().stream_resets), 1);
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_without_losing_records() -> Result<()> {
    let (stream, shared, mut follower) = one_shard().await?;
    cache(&shared, "a", "0");
    stream.put("s1", "a", Some("1"), LATER);
    stream.trouble(Trouble::Transient);
    stream.trouble(Trouble::Transient);
    for _ in 0..3 {
        follower.round(&shared).await;
    }
    assert_eq!(cached(&shared, "a"), n("1"));
    assert_eq!(Counters::get(&shared.counters().stream_errors), 2);
    assert_eq!(Counters::get(&shared.counters().stream_resets), 0);
    Ok(())
}

#[tokio::test]
async fn streams_without_new_images_are_refused() {
    let stream = Scripted::default();
    stream.0.lock().view = Some(StreamViewType::KeysOnly);
    let refused = Follower::start(Arc::new(stream)).await;
    assert!(matches!(refused, Err(Error::Validation { .. })));
}
