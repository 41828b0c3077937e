//! Conditional writes through the `Backend` trait, on DynamoDB (dynalite) and the embedded
//! backend: a write lands only if the item it replaces is as expected, and a conflict reports
//! the item that won.

#[macro_use]
mod common;

use common::{Fixture, TestResult};
use quickstore::backend::{Condition, Conditional, Write};
use quickstore::{AttributeValue, Item};

fn item(key: &str, version: u64, text: &str) -> Item {
    Item::from([
        ("_key".to_string(), AttributeValue::S(key.into())),
        (
            "_version".to_string(),
            AttributeValue::N(version.to_string()),
        ),
        ("text".to_string(), AttributeValue::S(text.into())),
    ])
}

fn version(n: u64) -> Condition {
    Condition::Version {
        attribute: "_version".into(),
        version: n,
    }
}

async fn writes_land_only_when_their_condition_holds(fixture: Fixture) -> TestResult {
    let backend = fixture.backend();
    let put = |v, text| Write::Put(item("Doc1", v, text));

    // Absent: the first insert lands, the second conflicts with the first.
    let first = backend
        .write_if("_key", &put(1, "a"), &Condition::Absent)
        .await?;
    assert_eq!(first, Conditional::Written);
    let second = backend
        .write_if("_key", &put(1, "b"), &Condition::Absent)
        .await?;
    assert_eq!(
        second,
        Conditional::Conflict {
            current: Some(item("Doc1", 1, "a"))
        }
    );

    // Version: a write based on version 1 lands once; one based on a version that is gone
    // conflicts and sees the winner.
    let next = backend.write_if("_key", &put(2, "c"), &version(1)).await?;
    assert_eq!(next, Conditional::Written);
    let stale = backend.write_if("_key", &put(2, "d"), &version(1)).await?;
    assert_eq!(
        stale,
        Conditional::Conflict {
            current: Some(item("Doc1", 2, "c"))
        }
    );
    assert_eq!(fixture.read_back("Doc1").await?, Some(item("Doc1", 2, "c")));

    // Deletes are conditional too; a conflict on an absent item reports that it is absent.
    let delete = Write::Delete("Doc1".into());
    let stale = backend.write_if("_key", &delete, &version(1)).await?;
    assert!(
        matches!(stale, Conditional::Conflict { current: Some(_) }),
        "{stale:?}"
    );
    let deleted = backend.write_if("_key", &delete, &version(2)).await?;
    assert_eq!(deleted, Conditional::Written);
    let gone = backend.write_if("_key", &put(3, "e"), &version(2)).await?;
    assert_eq!(gone, Conditional::Conflict { current: None });
    assert_eq!(fixture.read_back("Doc1").await?, None);
    Ok(())
}

on_both_backends!(writes_land_only_when_their_condition_holds);

#[tokio::test]
async fn writes_land_only_when_their_condition_holds_on_moto() -> TestResult {
    writes_land_only_when_their_condition_holds(Fixture::moto().await?).await
}
