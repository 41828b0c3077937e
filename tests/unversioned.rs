//! A versioned store beside writers that do not version: the Go library being migrated from,
//! or any plain SDK writer. The store never overwrites a change it has not seen: its first
//! write over an item without the version attribute is conditional on the item as it read it,
//! and every later write on the version it wrote. What a condition expression cannot see is
//! pinned here too, so that docs/GUARANTEES.md states it exactly.

#[macro_use]
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Fixture, TestResult};
use quickstore::testing::{Faults, FaultyBackend, Gate};
use quickstore::{AttributeValue, Error, Item, Key, Store};

const VERSION: &str = "_version";

/// An item's attributes, but its key.
type Attributes = Vec<(&'static str, AttributeValue)>;

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_owned())
}

/// An item as the Go library (or a plain SDK writer) stores it: no version attribute.
fn plain(key: &Key, attributes: &[(&str, AttributeValue)]) -> Item {
    let mut item: Item = attributes
        .iter()
        .map(|(name, value)| (name.to_string(), value.clone()))
        .collect();
    item.insert("_key".into(), s(key.as_str()));
    item
}

/// A versioned store that has read `key` while the table holds `item`.
async fn reader_of(fixture: &Fixture, key: &Key, item: Item) -> TestResult<Store> {
    fixture.put_raw(item).await?;
    let store = fixture.builder().versioned(VERSION).open().await?;
    assert!(store.get_item(key).await?.is_some());
    Ok(store)
}

fn text_of(item: Option<&Item>) -> Option<String> {
    item.and_then(|item| item.get("text"))
        .and_then(|text| text.as_s().ok())
        .cloned()
}

/// Each kind of change an unversioned writer makes between the store's read and its write is
/// a conflict: the change stays in the table, and the store takes it as the key's state.
async fn a_change_by_an_unversioned_writer_is_a_conflict(fixture: Fixture) -> TestResult {
    let changes: [(&str, Option<Attributes>); 5] = [
        ("changed", Some(vec![("text", s("go 2")), ("n", s("1"))])),
        ("removed", Some(vec![("text", s("go 1"))])),
        (
            "added",
            Some(vec![("text", s("go 1")), ("n", s("1")), ("note", s("go"))]),
        ),
        (
            "retyped",
            Some(vec![("text", s("go 1")), ("n", common::number(1))]),
        ),
        ("deleted", None),
    ];
    for (id, change) in changes {
        let key = common::key("Note", id);
        let store = reader_of(
            &fixture,
            &key,
            plain(&key, &[("text", s("go 1")), ("n", s("1"))]),
        )
        .await?;
        match &change {
            Some(attributes) => fixture.put_raw(plain(&key, attributes)).await?,
            None => {
                fixture
                    .backend()
                    .batch_write(
                        "_key",
                        &[quickstore::backend::Write::Delete(key.to_string())],
                    )
                    .await?;
            }
        }
        // The store's write carries `note` too, so an added `note` is an attribute it writes.
        let ours = Item::from([("text".into(), s("ours")), ("note".into(), s("rust"))]);
        store.upsert_item(&key, ours).await?;
        store.flush().await?;
        assert_eq!(store.stats().conflicts, 1, "{id}: a conflict");
        let stored = fixture.read_back(key.as_str()).await?;
        assert_eq!(
            stored.as_ref(),
            change.map(|attributes| plain(&key, &attributes)).as_ref(),
            "{id}: the unversioned writer's change stays"
        );
        let seen = store.get_item(&key).await?;
        assert_eq!(
            text_of(seen.as_deref()),
            text_of(stored.as_ref()),
            "{id}: the store sees the winner"
        );
        store.close().await?;
    }
    Ok(())
}

/// Attributes of every scalar and set type.
fn scalars_and_sets() -> Vec<(&'static str, AttributeValue)> {
    vec![
        ("text", s("go")),
        ("price", AttributeValue::N("1.50".into())),
        ("flag", AttributeValue::Bool(true)),
        ("none", AttributeValue::Null(true)),
        ("tags", AttributeValue::Ss(vec!["b".into(), "a".into()])),
        ("scores", AttributeValue::Ns(vec!["2".into(), "1".into()])),
        (
            "blob",
            AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(vec![0, 1, 2])),
        ),
    ]
}

/// [`scalars_and_sets`], and lists and maps. DynamoDB compares lists and maps by value in a
/// condition (`=` "is supported for all data types, including lists and maps"), as moto and
/// the embedded database do; dynalite 4.0.0 compares them by reference, so that a condition on
/// one never holds there (a spurious conflict, never an overwrite), and it is left out there.
fn every_type() -> Vec<(&'static str, AttributeValue)> {
    let mut attributes = scalars_and_sets();
    attributes.push((
        "nested",
        AttributeValue::M(std::collections::HashMap::from([
            (
                "list".into(),
                AttributeValue::L(vec![s("x"), common::number(2)]),
            ),
            ("deep".into(), AttributeValue::M(Default::default())),
        ])),
    ));
    attributes
}

/// An item no one changed since the store read it is written over, whatever its attribute
/// types, and from then on carries a version. An unversioned writer that then writes the
/// whole item, as the Go library does, drops the version, and the store's next write is a
/// conflict.
async fn an_unchanged_unversioned_item_is_written_over_and_versioned(
    fixture: Fixture,
) -> TestResult {
    written_over(fixture, scalars_and_sets()).await
}

async fn written_over(fixture: Fixture, rich: Vec<(&str, AttributeValue)>) -> TestResult {
    let key = common::key("Note", "rich");
    let store = reader_of(&fixture, &key, plain(&key, &rich)).await?;
    let ours = Item::from([("text".into(), s("ours"))]);
    store.upsert_item(&key, ours).await?;
    store.flush().await?;
    assert_eq!(store.stats().conflicts, 0);
    let stored = fixture.read_back(key.as_str()).await?.ok_or("missing")?;
    assert_eq!(text_of(Some(&stored)).as_deref(), Some("ours"));
    assert_eq!(stored.get(VERSION), Some(&common::number(1)));

    // The unversioned writer replaces the whole item: the version is gone with it.
    fixture.put_raw(plain(&key, &[("text", s("go 2"))])).await?;
    store
        .upsert_item(&key, Item::from([("text".into(), s("ours 2"))]))
        .await?;
    store.flush().await?;
    assert_eq!(store.stats().conflicts, 1);
    let stored = fixture.read_back(key.as_str()).await?.ok_or("missing")?;
    assert_eq!(text_of(Some(&stored)).as_deref(), Some("go 2"));
    // Built on what it now read: the next write lands.
    store
        .upsert_item(&key, Item::from([("text".into(), s("ours 3"))]))
        .await?;
    store.flush().await?;
    assert_eq!(store.stats().conflicts, 1);
    let stored = fixture.read_back(key.as_str()).await?.ok_or("missing")?;
    assert_eq!(text_of(Some(&stored)).as_deref(), Some("ours 3"));
    store.close().await?;
    Ok(())
}

/// A delete is conditional on the item as read, too.
async fn a_delete_over_an_unversioned_item_is_conditional(fixture: Fixture) -> TestResult {
    let [kept, gone] = ["kept", "gone"].map(|id| common::key("Note", id));
    let store = reader_of(&fixture, &kept, plain(&kept, &[("text", s("go 1"))])).await?;
    assert!(store.get_item(&gone).await?.is_none());
    fixture.put_raw(plain(&gone, &[("text", s("go"))])).await?;
    store.invalidate(&gone)?;
    assert!(store.get_item(&gone).await?.is_some());
    fixture
        .put_raw(plain(&kept, &[("text", s("go 2"))]))
        .await?;
    store.delete(&kept).await?;
    store.delete(&gone).await?;
    store.flush().await?;
    assert_eq!(store.stats().conflicts, 1, "the changed item is a conflict");
    assert!(fixture.read_back(kept.as_str()).await?.is_some());
    assert!(fixture.read_back(gone.as_str()).await?.is_none());
    store.close().await?;
    Ok(())
}

/// After a crash, a recovered write over an item without the version attribute is
/// conditional on the item as read, which the journal keeps: written if no one changed the
/// item, a reported, dead-lettered conflict if someone did.
async fn a_recovered_write_over_an_unversioned_item_is_conditional_on_it(
    fixture: Fixture,
) -> TestResult {
    let [kept, changed] = ["kept", "changed"].map(|id| common::key("Note", id));
    for key in [&kept, &changed] {
        fixture.put_raw(plain(key, &[("text", s("go"))])).await?;
    }
    let dir = tempfile::tempdir()?;
    let gate = Gate::new();
    let backend = FaultyBackend::new(fixture.backend(), Faults::new()).hold_writes(&gate);
    let store = Store::builder(backend)
        .versioned(VERSION)
        .journal(dir.path())
        .flush_interval(Duration::from_secs(3600))
        .open()
        .await?;
    for key in [&kept, &changed] {
        assert!(store.get_item(key).await?.is_some());
        store
            .upsert_item(key, Item::from([("text".into(), s("ours"))]))
            .await?;
    }
    // The journal as a crash before the writes are sent leaves it.
    let journal = common::crash_copy(dir.path())?;
    drop(store); // its writes wait at the gate for ever
    fixture
        .put_raw(plain(&changed, &[("text", s("go 2"))]))
        .await?;

    let store = fixture
        .builder()
        .versioned(VERSION)
        .journal(journal.path())
        .open()
        .await?;
    assert_eq!(store.stats().recovery.map(|r| r.keys), Some(2));
    store.flush().await?;
    assert_eq!(store.stats().conflicts, 1);
    assert_eq!(store.stats().dead_letters, 1);
    let text = |item: Option<Item>| text_of(item.as_ref());
    assert_eq!(
        text(fixture.read_back(kept.as_str()).await?).as_deref(),
        Some("ours")
    );
    assert_eq!(
        text(fixture.read_back(changed.as_str()).await?).as_deref(),
        Some("go 2")
    );
    store.close().await?;
    Ok(())
}

/// A journal written before the item read was kept in it holds only version 0 for such a
/// base: its recovered write cannot be conditional on the item, so it is a reported conflict
/// (unless the item is this store's own doing), never a write sent blind.
async fn a_recovered_write_without_the_item_read_is_a_conflict(fixture: Fixture) -> TestResult {
    use quickstore::internals::{encode_record, Op, Record, TableState};
    let key = common::key("Note", "old");
    fixture.put_raw(plain(&key, &[("text", s("go"))])).await?;
    let journal = tempfile::tempdir()?;
    let mut segment = b"QSJRNL01".to_vec();
    let ours = Arc::new(Item::from([("text".into(), s("ours"))]));
    let record = Record::versioned(
        1,
        Op::Upsert,
        key.as_str(),
        Some(ours),
        TableState::Present(0),
    );
    encode_record(&record, &mut segment)?;
    std::fs::write(journal.path().join(format!("{:020}.wal", 1)), segment)?;

    let store = fixture
        .builder()
        .versioned(VERSION)
        .journal(journal.path())
        .open()
        .await?;
    assert_eq!(store.stats().recovery.map(|r| r.keys), Some(1));
    store.flush().await?;
    assert_eq!(store.stats().conflicts, 1);
    let stored = fixture.read_back(key.as_str()).await?;
    assert_eq!(text_of(stored.as_ref()).as_deref(), Some("go"));
    store.close().await?;
    Ok(())
}

on_both_backends!(
    a_change_by_an_unversioned_writer_is_a_conflict,
    an_unchanged_unversioned_item_is_written_over_and_versioned,
    a_delete_over_an_unversioned_item_is_conditional,
    a_recovered_write_over_an_unversioned_item_is_conditional_on_it,
    a_recovered_write_without_the_item_read_is_a_conflict,
);

/// What DynamoDB's condition expression cannot see: an attribute that neither the item read
/// nor the store's write has, added by an unversioned writer in between. The backend that
/// checks conditions itself (the embedded database) compares whole items and sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attribute_neither_side_has_is_unseen_by_dynamodb_only() -> TestResult {
    for (fixture, seen) in [
        (Fixture::dynamodb().await?, false),
        (Fixture::embedded()?, true),
    ] {
        let key = common::key("Note", "extra");
        let store = reader_of(&fixture, &key, plain(&key, &[("text", s("go"))])).await?;
        fixture
            .put_raw(plain(&key, &[("text", s("go")), ("extra", s("go"))]))
            .await?;
        store
            .upsert_item(&key, Item::from([("text".into(), s("ours"))]))
            .await?;
        store.flush().await?;
        assert_eq!(store.stats().conflicts, u64::from(seen));
        store.close().await?;
    }
    Ok(())
}

/// An item with more attributes than one condition expression can compare is not written
/// blind: the write is refused, reported by `flush`, and the table keeps the item.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_over_an_item_too_wide_to_compare_is_refused() -> TestResult {
    let fixture = Fixture::dynamodb().await?;
    let key = common::key("Note", "wide");
    let attributes: Vec<(String, AttributeValue)> =
        (0..200).map(|i| (format!("a{i}"), s("go"))).collect();
    let borrowed: Vec<(&str, AttributeValue)> = attributes
        .iter()
        .map(|(name, value)| (name.as_str(), value.clone()))
        .collect();
    let store = reader_of(&fixture, &key, plain(&key, &borrowed)).await?;
    store
        .upsert_item(&key, Item::from([("text".into(), s("ours"))]))
        .await?;
    let flushed = store.flush().await;
    assert!(matches!(flushed, Err(Error::Refused(_))), "{flushed:?}");
    assert_eq!(store.stats().rejected_writes, 1);
    let stored = fixture.read_back(key.as_str()).await?.ok_or("missing")?;
    assert_eq!(stored.len(), 201, "the table keeps the item");
    store.close().await?;
    Ok(())
}

/// The same scenarios against moto's server, a second implementation of condition
/// expressions over every attribute type.
mod moto {
    use super::common::{Fixture, TestResult};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_change_by_an_unversioned_writer_is_a_conflict() -> TestResult {
        super::a_change_by_an_unversioned_writer_is_a_conflict(Fixture::moto().await?).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unchanged_unversioned_item_is_written_over_and_versioned() -> TestResult {
        super::written_over(Fixture::moto().await?, super::every_type()).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_and_maps_compare_by_value_in_the_embedded_database() -> TestResult {
    written_over(Fixture::embedded()?, every_type()).await
}
