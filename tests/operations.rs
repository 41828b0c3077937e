//! Every operation and every error, against DynamoDB (dynalite) and the embedded backend.

#[macro_use]
mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::{Fixture, TestResult};
use quickstore::{AttributeValue, Change, Error, Item, Key, Kinds, MAX_ITEM_BYTES};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    name: String,
    age: u32,
}

fn ada() -> User {
    User {
        name: "Ada".into(),
        age: 36,
    }
}

fn code<T: std::fmt::Debug>(result: quickstore::Result<T>) -> &'static str {
    match result {
        Ok(_) => "Ok",
        Err(err) => err.code(),
    }
}

async fn get_of_an_absent_key_is_none(fixture: Fixture) -> TestResult {
    let store = fixture.store().await?;
    let key = Key::new("User", "nobody")?;
    assert_eq!(store.get::<User>(&key).await?, None);
    assert!(store.get_item(&key).await?.is_none());
    assert!(!store.exists(&key).await?);
    // Absence is cached: the second look is a hit.
    assert_eq!(store.stats().misses, 1);
    store.close().await?;
    Ok(())
}

async fn raw_items_are_written_and_read_without_copies(fixture: Fixture) -> TestResult {
    let store = fixture.store().await?;
    let key = Key::new("User", "raw")?;
    let item = Item::from([
        ("name".to_string(), AttributeValue::S("Ada".into())),
        ("age".to_string(), AttributeValue::N("36".into())),
    ]);
    store.insert_item(&key, item.clone()).await?;
    assert_eq!(
        code(store.insert_item(&key, item.clone()).await),
        "ItemExisted"
    );
    let first = store.get_item(&key).await?.ok_or("missing item")?;
    let second = store.get_item(&key).await?.ok_or("missing item")?;
    assert_eq!(*first, item);
    assert!(
        Arc::ptr_eq(&first, &second),
        "a hit hands out the cached item itself"
    );
    assert_eq!(
        store.get::<User>(&key).await?,
        Some(User {
            name: "Ada".into(),
            age: 36
        })
    );
    let mut older = item.clone();
    older.insert("age".to_string(), AttributeValue::N("37".into()));
    store.update_item(&key, older.clone()).await?;
    assert_eq!(
        code(
            store
                .update_item(&Key::new("User", "ghost")?, older.clone())
                .await
        ),
        "ItemNotExisted"
    );
    store
        .upsert_item(&Key::new("User", "other")?, item.clone())
        .await?;
    // Raw items are checked like typed values.
    let mut forged = item.clone();
    forged.insert("_key".to_string(), AttributeValue::S("forged".into()));
    assert_eq!(
        code(store.upsert_item(&key, forged).await),
        "ValidationException"
    );
    let empty_set = Item::from([("tags".to_string(), AttributeValue::Ss(Vec::new()))]);
    assert_eq!(
        code(store.upsert_item(&key, empty_set).await),
        "ValidationException"
    );
    store.close().await?;
    let stored = fixture.read_back("Userraw").await?.ok_or("not written")?;
    assert_eq!(stored.get("age"), Some(&AttributeValue::N("37".into())));
    assert!(fixture.read_back("Userother").await?.is_some());
    Ok(())
}

async fn insert_then_get_round_trips(fixture: Fixture) -> TestResult {
    let store = fixture.store().await?;
    let key = Key::new("User", "ada")?;
    store.insert(&key, &ada()).await?;
    assert_eq!(store.get::<User>(&key).await?, Some(ada()));
    assert!(store.exists(&key).await?);
    let item = store.get_item(&key).await?.ok_or("missing item")?;
    assert_eq!(item.get("name"), Some(&AttributeValue::S("Ada".into())));
    assert!(
        !item.contains_key("_key"),
        "the partition key is not part of the value"
    );
    store.close().await?;
    Ok(())
}

async fn insert_of_a_present_key_is_item_existed(fixture: Fixture) -> TestResult {
    let store = fixture.store().await?;
    let key = Key::new("User", "ada")?;
    store.insert(&key, &ada()).await?;
    let err = store
        .insert(
            &key,
            &User {
                name: "Eve".into(),
                age: 1,
            },
        )
        .await
        .err();
    assert!(
        matches!(&err, Some(Error::ItemExisted { key: k }) if *k == key),
        "{err:?}"
    );
    assert_eq!(
        store.get::<User>(&key).await?,
        Some(ada()),
        "a refused insert changes nothing"
    );
    store.close().await?;
    Ok(())
}

async fn insert_checks_the_backend_on_a_miss(fixture: Fixture) -> TestResult {
    let key = Key::new("User", "ada")?;
    let first = fixture.store().await?;
    first.insert(&key, &ada()).await?;
    first.close().await?;
    // A new store has an empty cache: it must read the key before inserting.
    let second = fixture.store().await?;
    assert_eq!(code(second.insert(&key, &ada()).await), "ItemExisted");
    assert_eq!(
        code(second.update(&Key::new("User", "eve")?, &ada()).await),
        "ItemNotExisted"
    );
    second
        .update(
            &key,
            &User {
                name: "Ada L.".into(),
                age: 37,
            },
        )
        .await?;
    second.close().await?;
    let stored = fixture.read_back("Userada").await?.unwrap_or_default();
    assert_eq!(stored.get("age"), Some(&AttributeValue::N("37".into())));
    Ok(())
}

async fn update_of_an_absent_key_is_item_not_existed(fixture: Fixture) -> TestResult {
    let store = fixture.store().await?;
    let key = Key::new("User", "ghost")?;
    let err = store.update(&key, &ada()).await.err();
    assert!(
        matches!(&err, Some(Error::ItemNotExisted { key: k }) if *k == key),
        "{err:?}"
    );
    assert!(
        !store.exists(&key).await?,
        "a refused update changes nothing"
    );
    store.close().await?;
    Ok(())
}

async fn upsert_and_delete_need_no_prior_state(fixture: Fixture) -> TestResult {
    let store = fixture.store().await?;
    let key = Key::new("User", "ada")?;
    store.upsert(&key, &ada()).await?;
    store
        .upsert(
            &key,
            &User {
                name: "Ada".into(),
                age: 37,
            },
        )
        .await?;
    assert_eq!(store.get::<User>(&key).await?.map(|u| u.age), Some(37));
    store.delete(&key).await?;
    assert!(!store.exists(&key).await?);
    store.delete(&Key::new("User", "never")?).await?;
    store.flush().await?;
    assert_eq!(fixture.read_back("Userada").await?, None);
    // An insert after a delete succeeds without asking the backend.
    store.insert(&key, &ada()).await?;
    store.close().await?;
    assert!(fixture.read_back("Userada").await?.is_some());
    Ok(())
}

async fn flush_puts_every_acknowledged_mutation_in_the_backend(fixture: Fixture) -> TestResult {
    let store = fixture
        .builder()
        .flush_interval(std::time::Duration::from_secs(3600))
        .open()
        .await?;
    for i in 0..60 {
        store
            .upsert(
                &Key::new("User", i.to_string())?,
                &User {
                    name: format!("u{i}"),
                    age: i,
                },
            )
            .await?;
    }
    store.delete(&Key::new("User", "3")?).await?;
    store.flush().await?;
    assert_eq!(store.stats().pending, 0);
    for i in 0..60 {
        let item = fixture.read_back(&format!("User{i}")).await?;
        if i == 3 {
            assert_eq!(item, None);
        } else {
            let item = item.ok_or("missing item")?;
            assert_eq!(item.get("name"), Some(&AttributeValue::S(format!("u{i}"))));
            assert_eq!(
                item.get("_key"),
                Some(&AttributeValue::S(format!("User{i}")))
            );
        }
    }
    store.close().await?;
    Ok(())
}

async fn get_many_omits_absent_keys_and_batches_misses(fixture: Fixture) -> TestResult {
    let writer = fixture.store().await?;
    for i in (0..250).step_by(2) {
        writer
            .upsert(
                &Key::new("User", i.to_string())?,
                &User {
                    name: format!("u{i}"),
                    age: i,
                },
            )
            .await?;
    }
    writer.close().await?;
    let store = fixture.store().await?;
    let keys: Vec<Key> = (0..250).map(|i| common::key("User", i)).collect();
    let found: HashMap<Key, User> = store.get_many(&keys).await?;
    assert_eq!(found.len(), 125);
    for (key, user) in &found {
        assert_eq!(user.name, format!("u{}", key.identifier()));
    }
    let stats = store.stats();
    assert_eq!(stats.backend_reads, 250);
    assert!(
        stats.read_requests >= 3,
        "250 keys need at least 3 batch reads"
    );
    // Everything, present or absent, is now cached.
    let again = store.get_many_items(&keys).await?;
    assert_eq!(again.len(), 125);
    assert_eq!(store.stats().backend_reads, 250);
    assert_eq!(store.stats().hits, 250);
    store.close().await?;
    Ok(())
}

async fn bad_input_is_refused_and_changes_nothing(fixture: Fixture) -> TestResult {
    let store = fixture.store().await?;
    let key = Key::new("User", "ok")?;
    assert_eq!(code(store.upsert(&key, &42u32).await), "SerializeException");
    let with_key: HashMap<&str, &str> = [("_key", "forged")].into_iter().collect();
    assert_eq!(
        code(store.upsert(&key, &with_key).await),
        "ValidationException"
    );
    let huge: HashMap<&str, String> = [("blob", "x".repeat(MAX_ITEM_BYTES))].into_iter().collect();
    assert_eq!(code(store.insert(&key, &huge).await), "ValidationException");
    assert!(!store.exists(&key).await?);
    assert_eq!(store.stats().mutations, 0);
    // The typed read of a value of the wrong shape is a serialization error.
    store.upsert(&key, &HashMap::from([("name", 5)])).await?;
    assert_eq!(code(store.get::<User>(&key).await), "SerializeException");
    store.close().await?;
    Ok(())
}

/// Fails unless `result` is a validation error.
fn refused<T: std::fmt::Debug>(result: quickstore::Result<T>) -> TestResult {
    match result {
        Err(Error::Validation { .. }) => Ok(()),
        other => Err(format!("expected a validation error, got {other:?}").into()),
    }
}

/// Raw items carry any number string. Typed values carry Rust's integers and floats, which never
/// have more than 20 significant digits: what they can get wrong is the magnitude, or not being
/// a number at all.
async fn numbers_dynamodb_cannot_store_fail_at_call_time_and_change_nothing(
    fixture: Fixture,
) -> TestResult {
    let store = fixture.store().await?;
    let present = Key::new("User", "present")?;
    let absent = Key::new("User", "absent")?;
    let before = Item::from([
        ("name".to_string(), AttributeValue::S("Ada".into())),
        ("age".to_string(), AttributeValue::N("36".into())),
    ]);
    store.insert_item(&present, before.clone()).await?;
    store.flush().await?;
    let settled = store.stats();
    assert_eq!((settled.pending, settled.pending_bytes), (0, 0));

    let numbers = [
        "9".repeat(39),
        format!("1.{}1", "0".repeat(37)),
        format!("1.{}1", "0".repeat(38)),
        "1E+126".to_string(),
        "-1E-131".to_string(),
        "NaN".to_string(),
        " 1".to_string(),
    ];
    for n in &numbers {
        let number = AttributeValue::N(n.clone());
        for placed in [
            number.clone(),
            AttributeValue::Ns(vec!["1".into(), n.clone()]),
            AttributeValue::L(vec![AttributeValue::S("x".into()), number.clone()]),
            AttributeValue::M(Item::from([("inner".to_string(), number.clone())])),
        ] {
            let mut item = before.clone();
            item.insert("age".to_string(), placed);
            refused(store.insert_item(&absent, item.clone()).await)?;
            refused(store.update_item(&present, item.clone()).await)?;
            refused(store.upsert_item(&present, item.clone()).await)?;
            refused(store.upsert_item(&absent, item.clone()).await)?;
            refused(
                store
                    .update_item_with(&present, |_| (Change::Put(item), ()))
                    .await,
            )?;
        }
    }
    let message = store
        .upsert_item(
            &present,
            Item::from([("age".to_string(), AttributeValue::N("9".repeat(39)))]),
        )
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(message.contains("39 significant digits"), "{message}");

    #[derive(Serialize)]
    struct Reading {
        name: &'static str,
        value: f64,
    }
    for value in [
        1e200,
        -1e126,
        1e-131,
        f64::MAX,
        f64::MIN_POSITIVE,
        f64::NAN,
        f64::INFINITY,
    ] {
        let reading = Reading { name: "x", value };
        refused(store.insert(&absent, &reading).await)?;
        refused(store.update(&present, &reading).await)?;
        refused(store.upsert(&present, &reading).await)?;
        refused(store.upsert(&absent, &reading).await)?;
    }

    // Nothing applied, nothing pending, nothing read or written for any of them.
    let after = store.stats();
    assert_eq!(after.mutations, settled.mutations);
    assert_eq!((after.pending, after.pending_bytes), (0, 0));
    assert_eq!(after.backend_reads, settled.backend_reads);
    assert_eq!(after.write_requests, settled.write_requests);
    assert_eq!(store.get_item(&present).await?.as_deref(), Some(&before));
    assert!(!store.exists(&absent).await?);
    store.close().await?;
    let stored = fixture
        .read_back("Userpresent")
        .await?
        .ok_or("not written")?;
    assert_eq!(stored.get("age"), before.get("age"));
    assert!(fixture.read_back("Userabsent").await?.is_none());
    Ok(())
}

async fn registered_kinds_guard_keys(fixture: Fixture) -> TestResult {
    let kinds = Kinds::of(["User", "UserGroup"])?;
    let store = fixture.builder().kinds(kinds).open().await?;
    store.upsert(&Key::new("User", "1")?, &ada()).await?;
    assert_eq!(
        code(store.upsert(&Key::new("Post", "1")?, &ada()).await),
        "ValidationException"
    );
    // Kind User with identifier "Group1" would read back as kind UserGroup.
    assert_eq!(
        code(store.upsert(&Key::new("User", "Group1")?, &ada()).await),
        "ValidationException"
    );
    assert_eq!(
        store.kinds().parse("UserGroup1")?,
        Key::new("UserGroup", "1")?
    );
    store.close().await?;
    Ok(())
}

async fn every_call_after_close_is_closed(fixture: Fixture) -> TestResult {
    let store = fixture.store().await?;
    let clone = store.clone();
    let key = Key::new("User", "ada")?;
    store.upsert(&key, &ada()).await?;
    store.close().await?;
    assert!(
        fixture.read_back("Userada").await?.is_some(),
        "close drains"
    );
    assert_eq!(code(clone.get::<User>(&key).await), "Closed");
    assert_eq!(code(clone.get_item(&key).await), "Closed");
    assert_eq!(code(clone.exists(&key).await), "Closed");
    assert_eq!(code(clone.get_many_items([&key]).await), "Closed");
    assert_eq!(code(clone.insert(&key, &ada()).await), "Closed");
    assert_eq!(code(clone.update(&key, &ada()).await), "Closed");
    assert_eq!(code(clone.upsert(&key, &ada()).await), "Closed");
    assert_eq!(code(clone.delete(&key).await), "Closed");
    assert_eq!(code(clone.flush().await), "Closed");
    clone.close().await?; // closing twice is harmless
    Ok(())
}

async fn too_many_pending_mutations_are_refused(fixture: Fixture) -> TestResult {
    let store = fixture
        .builder()
        .max_pending(3)
        .flush_interval(std::time::Duration::from_secs(3600))
        .batch_threshold(1000)
        .open()
        .await?;
    for i in 0..3 {
        store
            .upsert(&Key::new("User", i.to_string())?, &ada())
            .await?;
    }
    let err = store.upsert(&Key::new("User", "4")?, &ada()).await.err();
    assert!(
        matches!(
            err,
            Some(Error::TooManyRequests {
                pending: 3,
                limit: 3,
                ..
            })
        ),
        "{err:?}"
    );
    assert!(err.is_some_and(|e| e.is_retryable()));
    store.upsert(&Key::new("User", "0")?, &ada()).await?; // an already pending key may change
    store.flush().await?;
    store.upsert(&Key::new("User", "4")?, &ada()).await?;
    store.close().await?;
    Ok(())
}

/// `get_arc` decodes a cached state once and shares it; a new state is decoded anew.
async fn get_arc_shares_one_decoded_value_per_state(fixture: Fixture) -> TestResult {
    #[derive(Debug, PartialEq, Deserialize)]
    struct Name {
        name: String,
    }
    let store = fixture.store().await?;
    let key = Key::new("User", "1")?;
    assert_eq!(store.get_arc::<User>(&key).await?, None);
    store.upsert(&key, &ada()).await?;
    // Pending: decoded each time, and right.
    assert_eq!(store.get_arc::<User>(&key).await?.as_deref(), Some(&ada()));
    store.flush().await?;
    let first = store.get_arc::<User>(&key).await?.ok_or("missing")?;
    let second = store.get_arc::<User>(&key).await?.ok_or("missing")?;
    assert!(
        Arc::ptr_eq(&first, &second),
        "the second read shares the first's value"
    );
    assert_eq!(*first, ada());
    // Another type decodes anew, and so does a new state.
    let name = store.get_arc::<Name>(&key).await?.ok_or("missing")?;
    assert_eq!(name.name, "Ada");
    let older = User { age: 37, ..ada() };
    store.upsert(&key, &older).await?;
    store.flush().await?;
    let third = store.get_arc::<User>(&key).await?.ok_or("missing")?;
    assert_eq!(*third, older);
    assert!(!Arc::ptr_eq(&first, &third));
    // Invalidated: read from the backend again, decoded again.
    store.invalidate(&key)?;
    let fourth = store.get_arc::<User>(&key).await?.ok_or("missing")?;
    assert_eq!(*fourth, older);
    store.delete(&key).await?;
    assert_eq!(store.get_arc::<User>(&key).await?, None);
    store.close().await?;
    assert!(matches!(
        store.get_arc::<User>(&key).await,
        Err(Error::Closed)
    ));
    Ok(())
}

on_both_backends!(
    get_arc_shares_one_decoded_value_per_state,
    get_of_an_absent_key_is_none,
    raw_items_are_written_and_read_without_copies,
    insert_then_get_round_trips,
    insert_of_a_present_key_is_item_existed,
    insert_checks_the_backend_on_a_miss,
    update_of_an_absent_key_is_item_not_existed,
    upsert_and_delete_need_no_prior_state,
    flush_puts_every_acknowledged_mutation_in_the_backend,
    get_many_omits_absent_keys_and_batches_misses,
    bad_input_is_refused_and_changes_nothing,
    numbers_dynamodb_cannot_store_fail_at_call_time_and_change_nothing,
    registered_kinds_guard_keys,
    every_call_after_close_is_closed,
    too_many_pending_mutations_are_refused,
);

mod open {
    use super::common::{create_table, Dynalite, TestResult};
    use quickstore::journal::Recovery;
    use quickstore::{Durability, DynamoDbBackend, Error, Store};

    #[tokio::test]
    async fn a_missing_table_fails_at_open() -> TestResult {
        let server = Dynalite::start()?;
        let backend = DynamoDbBackend::new(server.client(), "absent");
        let err = Store::builder(backend).open().await.err();
        let message = err.as_ref().map(ToString::to_string).unwrap_or_default();
        assert!(matches!(err, Some(Error::Validation { .. })), "{err:?}");
        assert!(message.contains("absent"), "{message}");
        Ok(())
    }

    #[tokio::test]
    async fn a_table_keyed_otherwise_fails_at_open() -> TestResult {
        let server = Dynalite::start()?;
        let client = server.client();
        create_table(&client, "pk-table", "pk").await?;
        let err = Store::builder(DynamoDbBackend::new(client.clone(), "pk-table"))
            .open()
            .await
            .err();
        let message = err.as_ref().map(ToString::to_string).unwrap_or_default();
        assert!(matches!(err, Some(Error::Validation { .. })), "{err:?}");
        assert!(
            message.contains("`_key`") && message.contains("pk"),
            "{message}"
        );
        // With the matching partition key name, the same table opens.
        let store = Store::builder(DynamoDbBackend::new(client, "pk-table"))
            .partition_key("pk")
            .open()
            .await?;
        store.close().await?;
        Ok(())
    }

    #[tokio::test]
    async fn bad_options_fail_at_open() -> TestResult {
        let dir = tempfile::tempdir()?;
        let backend = quickstore::EmbeddedBackend::open(dir.path().join("db"))?;
        for builder in [
            Store::builder(backend.clone()).shards(0),
            Store::builder(backend.clone()).cache_capacity(0),
            Store::builder(backend.clone()).max_pending(0),
            Store::builder(backend.clone()).batch_threshold(0),
            Store::builder(backend.clone()).max_in_flight_batches(0),
            Store::builder(backend.clone()).flush_interval(std::time::Duration::ZERO),
            Store::builder(backend.clone()).partition_key(""),
        ] {
            let err = builder.open().await.err();
            assert!(matches!(err, Some(Error::Validation { .. })), "{err:?}");
        }
        Ok(())
    }

    #[tokio::test]
    async fn journal_options_without_a_journal_fail_at_open() -> TestResult {
        let dir = tempfile::tempdir()?;
        let backend = quickstore::EmbeddedBackend::open(dir.path().join("db"))?;
        let cases = [
            (
                Store::builder(backend.clone()).durability(Durability::Always),
                "durability()",
            ),
            (
                Store::builder(backend.clone()).recovery(Recovery::Salvage),
                "recovery()",
            ),
            (
                Store::builder(backend.clone()).journal_segment_bytes(1 << 20),
                "journal_segment_bytes()",
            ),
        ];
        for (builder, option) in cases {
            let err = builder.open().await.err();
            let message = err.as_ref().map(ToString::to_string).unwrap_or_default();
            assert!(matches!(err, Some(Error::Validation { .. })), "{err:?}");
            assert!(message.contains(option), "{message}");
        }
        // Nothing was created where a journal would have gone by default.
        assert_eq!(
            std::fs::read_dir(dir.path())?.count(),
            1,
            "only the db file"
        );
        Ok(())
    }

    #[tokio::test]
    async fn dynamodb_errors_carry_the_service_code_and_request_id() -> TestResult {
        use quickstore::backend::Backend as _;
        let server = Dynalite::start()?;
        let backend = DynamoDbBackend::new(server.client(), "absent");
        let err = backend
            .get("_key", "User1", true)
            .await
            .err()
            .ok_or("a read of a missing table succeeded")?;
        assert_eq!(err.code(), "DynamoDBException");
        assert_eq!(err.service_code(), Some("ResourceNotFoundException"));
        assert!(err.request_id().is_some_and(|id| !id.is_empty()), "{err:?}");
        assert!(!err.is_retryable());
        // DynamoDB's code and message are part of the message, and nothing repeats them.
        let message = err.to_string();
        assert_eq!(
            message,
            "the DynamoDB GetItem request failed: ResourceNotFoundException: Requested resource not found"
        );
        assert_eq!(err.report().to_string(), message);
        Ok(())
    }

    #[tokio::test]
    async fn embedded_database_errors_name_the_embedded_database() -> TestResult {
        let dir = tempfile::tempdir()?;
        // A directory is not a database file.
        let err = quickstore::EmbeddedBackend::open(dir.path())
            .err()
            .ok_or("a directory opened as a database")?;
        let message = err.to_string();
        assert!(message.contains("embedded database"), "{message}");
        assert!(!message.contains("DynamoDB"), "{message}");
        assert_eq!(err.code(), "DynamoDBException", "the Go library's code");
        assert_eq!(err.service_code(), None);
        Ok(())
    }

    #[tokio::test]
    async fn create_table_makes_the_layout_and_accepts_a_matching_table() -> TestResult {
        let server = Dynalite::start()?;
        let backend = DynamoDbBackend::new(server.client(), "made");
        backend.create_table("_key").await?;
        backend.create_table("_key").await?;
        let err = backend.create_table("pk").await.err();
        assert!(matches!(err, Some(Error::Validation { .. })), "{err:?}");
        let store = Store::builder(backend).open().await?;
        store.close().await?;
        Ok(())
    }
}

/// The number check against dynalite, which checks numbers by DynamoDB's rules (with DynamoDB's
/// messages) but for a leading `+`: numbers at the edges of each rule, sent straight to dynalite
/// with `PutItem`, are taken by the store exactly when dynalite takes them.
mod numbers {
    use super::common::{create_table, Dynalite, TestResult};
    use aws_sdk_dynamodb::error::ProvideErrorMetadata;
    use quickstore::{AttributeValue, DynamoDbBackend, Error, Item, Key, Store};

    /// Numbers at the edges of the syntax, the precision and the range, and zeros. Left out:
    /// a leading `+` (`+1`, `+.5`), which DynamoDB accepts and dynalite refuses.
    fn edges() -> Vec<String> {
        let mut numbers: Vec<String> = [
            // Range.
            "1E-130",
            "1E-131",
            "0.1e-129",
            "0.9e-130",
            "10e-131",
            "1e125",
            "1E+126",
            "11e125",
            "9.9999999999999999999999999999999999999E+125",
            "99999999999999999999999999999999999999e88",
            "99999999999999999999999999999999999999e89",
            "1.0000000000000000000000000000001e-100",
            // Zero.
            "0",
            "-0",
            "0.000",
            ".0",
            "0.",
            "000",
            "0e1000",
            "0E-131",
            // Syntax.
            "5.",
            ".5",
            "-.5",
            "1e+5",
            "1E5",
            "1e-5",
            "1e0005",
            "0001.23",
            "",
            " 1",
            "1 ",
            "NaN",
            "Infinity",
            "-Infinity",
            "0x10",
            "1_000",
            ".",
            "-",
            "e5",
            "1e",
            "1e+",
            "1.2.3",
            "--1",
            "1e5.5",
            "\u{661}",
        ]
        .map(String::from)
        .to_vec();
        numbers.extend([
            // Precision.
            "9".repeat(38),
            "9".repeat(39),
            format!("1.{}1", "0".repeat(36)),
            format!("1.{}1", "0".repeat(37)),
            format!("1{}", "0".repeat(41)),
            format!("{}000", "9".repeat(38)),
            format!("0.000{}", "9".repeat(39)),
            // The range written out.
            format!("1{}", "0".repeat(125)),
            format!("1{}", "0".repeat(126)),
            format!("0.{}1", "0".repeat(129)),
            format!("0.{}1", "0".repeat(130)),
            // Exponents far out, and digits that make up for one.
            format!("1e{}", "9".repeat(30)),
            format!("1e-{}", "9".repeat(30)),
            format!("0e{}", "9".repeat(30)),
            format!("0.{}1e+205", "0".repeat(200)),
        ]);
        let negated: Vec<String> = numbers
            .iter()
            .filter(|n| n.starts_with(|c: char| c.is_ascii_digit() || c == '.'))
            .map(|n| format!("-{n}"))
            .collect();
        numbers.extend(negated);
        numbers
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_number_check_accepts_what_dynalite_accepts() -> TestResult {
        let server = Dynalite::start()?;
        let client = server.client();
        create_table(&client, "numbers", "_key").await?;
        let store = Store::builder(DynamoDbBackend::new(client.clone(), "numbers"))
            .open()
            .await?;
        let mut disagreements = Vec::new();
        for (i, n) in edges().into_iter().enumerate() {
            let put = client
                .put_item()
                .table_name("numbers")
                .item("_key", AttributeValue::S(format!("raw{i}")))
                .item("n", AttributeValue::N(n.clone()))
                .send()
                .await;
            let dynalite_takes_it = match put {
                Ok(_) => true,
                Err(err) if err.code() == Some("ValidationException") => false,
                Err(err) => return Err(err.into()),
            };
            let item = Item::from([("n".to_string(), AttributeValue::N(n.clone()))]);
            let ours = store
                .upsert_item(&Key::new("Number", i.to_string())?, item)
                .await;
            if !matches!(ours, Ok(()) | Err(Error::Validation { .. })) {
                return Err(format!("{n:?}: {ours:?}").into());
            }
            if ours.is_ok() != dynalite_takes_it {
                disagreements.push(format!(
                    "{n:?}: dynalite {dynalite_takes_it}, store {ours:?}"
                ));
            }
        }
        assert!(disagreements.is_empty(), "{disagreements:#?}");
        // What the store took, dynalite stores: nothing is refused at the flush.
        store.close().await?;
        assert_eq!(store.stats().rejected_writes, 0);
        Ok(())
    }
}
