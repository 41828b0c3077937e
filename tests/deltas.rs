//! Deltas (counters, set members, appends, set-if-absent) as each backend applies them:
//! `Backend::update` on dynalite and moto (DynamoDB's `UpdateItem`), on the embedded database,
//! and on the in-memory table, which apply them with quickstore's own rules. Random sequences
//! of deltas, some with operands of the wrong type, leave the same items (or the same refusals)
//! on dynalite, the embedded database and the in-memory table; so do marked deltas, some sent
//! again, which each backend applies once.

#[macro_use]
mod common;

use std::sync::Arc;

use common::{Fixture, TestResult};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use quickstore::backend::{Backend, Mark, Updated};
use quickstore::testing::MemoryBackend;
use quickstore::{Action, AttributeValue, Delta, Item};

const KEYS: [&str; 2] = ["Counter.1", "Counter.2"];

fn s(s: &str) -> AttributeValue {
    AttributeValue::S(s.to_owned())
}

/// One attribute's action, over a few attributes and values so that actions meet, with sets
/// of both string and number members so that some operands have the wrong type.
fn action() -> impl Strategy<Value = (String, Action)> {
    let attribute = prop::sample::select(vec!["a", "b", "c"]).prop_map(str::to_owned);
    let strings = prop::collection::btree_set(prop::sample::select(vec!["x", "y", "z"]), 1..3)
        .prop_map(|m| AttributeValue::Ss(m.into_iter().map(str::to_owned).collect()));
    let numbers = prop::collection::btree_set(1_u8..4, 1..3)
        .prop_map(|m| AttributeValue::Ns(m.into_iter().map(|n| n.to_string()).collect()));
    let set = prop_oneof![strings, numbers];
    let action = prop_oneof![
        (-1000_i64..1000).prop_map(|n| Action::Add(n.to_string())),
        set.clone().prop_map(Action::AddMembers),
        set.prop_map(Action::RemoveMembers),
        prop::collection::vec((0_u8..10).prop_map(|n| s(&n.to_string())), 1..3)
            .prop_map(Action::Append),
        (0_u8..10).prop_map(|n| Action::SetIfAbsent(s(&n.to_string()))),
    ];
    (attribute, action)
}

fn delta() -> impl Strategy<Value = Delta> {
    prop::collection::vec(action(), 1..4).prop_map(|actions| {
        actions
            .into_iter()
            .fold(Delta::new(), |delta, (attribute, action)| {
                delta.action(attribute, action)
            })
    })
}

/// `item` with its sets' members in order: DynamoDB returns a set's members in any order.
fn sorted(mut item: Item) -> Item {
    for value in item.values_mut() {
        match value {
            AttributeValue::Ss(members) | AttributeValue::Ns(members) => members.sort(),
            _ => {}
        }
    }
    item
}

/// A mark of one of two writers, with a small sequence so that some deltas are sent again.
fn mark() -> impl Strategy<Value = Option<Mark>> {
    prop::option::of((0_u8..2, 1_u64..4).prop_map(|(writer, seq)| {
        Mark::new(format!("_once_{writer}"), seq, 1_700_000_000_000 + seq)
    }))
}

/// What applying `delta` (with `mark`) to `key` gives on `backend`: the outcome and the item,
/// or that it was refused.
async fn answer(
    backend: &dyn Backend,
    key: &str,
    delta: &Delta,
    mark: Option<&Mark>,
) -> Option<(bool, Option<Item>)> {
    let updated = backend.update("_key", key, delta, mark).await.ok()?;
    let applied = matches!(updated, Updated::Applied(_));
    Some((applied, updated.into_item().map(sorted)))
}

/// Runs random sequences of deltas on `fixture`'s backend and on an in-memory table, and
/// checks that every answer, and the items left, agree.
async fn deltas_agree_with_the_in_memory_rules(fixture: Fixture) -> TestResult {
    let runtime = tokio::runtime::Handle::current();
    let fixture = Arc::new(fixture);
    let mut runner = TestRunner::new(Config {
        cases: 12,
        ..Config::default()
    });
    let steps = prop::collection::vec(
        (prop::sample::select(KEYS.to_vec()), delta(), mark()),
        1..12,
    );
    let case = std::sync::atomic::AtomicUsize::new(0);
    let outcome = tokio::task::block_in_place(|| {
        runner.run(&steps, |steps| {
            // Each case on keys of its own, so cases do not meet in the shared table.
            let prefix = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let backend = fixture.backend();
            let memory = MemoryBackend::new();
            runtime.block_on(async {
                for (key, delta, mark) in &steps {
                    let key = format!("{prefix}.{key}");
                    let theirs = answer(&*backend, &key, delta, mark.as_ref()).await;
                    let ours = answer(&memory, &key, delta, mark.as_ref()).await;
                    prop_assert_eq!(ours, theirs, "{:?} on {}", delta, key);
                }
                for key in KEYS {
                    let key = format!("{prefix}.{key}");
                    let theirs = backend
                        .get("_key", &key, true)
                        .await
                        .map_err(|err| TestCaseError::fail(err.to_string()))?;
                    let ours = memory.item(&key);
                    prop_assert_eq!(ours.map(sorted), theirs.map(sorted));
                }
                Ok(())
            })
        })
    });
    outcome.map_err(|err| err.to_string().into())
}

/// A delta that creates an item, then counters, sets and lists over it, on each backend.
async fn a_delta_is_applied_and_answers_the_item(fixture: Fixture) -> TestResult {
    let backend = fixture.backend();
    assert!(backend.supports_deltas());
    let first = Delta::new()
        .add("views", 2)
        .add_members("tags", AttributeValue::Ss(vec!["a".into(), "b".into()]))
        .set_if_absent("created", s("today"));
    let Updated::Applied(item) = backend.update("_key", "Page.1", &first, None).await? else {
        return Err("an unmarked delta is always applied".into());
    };
    assert_eq!(item.get("_key"), Some(&s("Page.1")));
    assert_eq!(item.get("views"), Some(&AttributeValue::N("2".into())));
    let next = Delta::new()
        .add("views", -5)
        .remove_members("tags", AttributeValue::Ss(vec!["a".into(), "b".into()]))
        .append("log", vec![s("seen")])
        .set_if_absent("created", s("later"));
    let item = backend.update("_key", "Page.1", &next, None).await?;
    let expected = Item::from([
        ("_key".to_owned(), s("Page.1")),
        ("views".to_owned(), AttributeValue::N("-3".into())),
        ("created".to_owned(), s("today")),
        ("log".to_owned(), AttributeValue::L(vec![s("seen")])),
    ]);
    assert_eq!(item, Updated::Applied(expected.clone()));
    assert_eq!(fixture.read_back("Page.1").await?, Some(expected));
    Ok(())
}

/// A marked delta sent twice (its answer lost, say) is applied once; the writer's next delta,
/// and another writer's, are applied.
async fn a_marked_delta_is_applied_once(fixture: Fixture) -> TestResult {
    let backend = fixture.backend();
    let (key, once) = ("Page.2", Delta::new().add("views", 1));
    let ours = |seq| Mark::new("_once_a", seq, 1_700_000_000_000);
    let views = |updated: Updated| {
        updated
            .into_item()
            .and_then(|item| item.get("views").cloned())
    };
    let n = |n: &str| Some(AttributeValue::N(n.into()));
    let first = backend.update("_key", key, &once, Some(&ours(5))).await?;
    assert!(matches!(first, Updated::Applied(_)));
    assert_eq!(views(first), n("1"));
    let again = backend.update("_key", key, &once, Some(&ours(5))).await?;
    assert!(matches!(again, Updated::Unchanged(Some(_))), "{again:?}");
    assert_eq!(views(again), n("1"));
    let older = backend.update("_key", key, &once, Some(&ours(4))).await?;
    assert_eq!(views(older), n("1"));
    let next = backend.update("_key", key, &once, Some(&ours(6))).await?;
    assert_eq!(views(next), n("2"));
    let theirs = Mark::new("_once_b", 5, 1_700_000_000_000);
    let other = backend.update("_key", key, &once, Some(&theirs)).await?;
    assert_eq!(views(other), n("3"));
    let stored = fixture.read_back(key).await?.ok_or("the item is gone")?;
    assert_eq!(stored.get("_once_a"), Some(&ours(6).value()));
    assert_eq!(stored.get("_once_b"), Some(&theirs.value()));
    // A write that prunes a mark that has moved since changes nothing.
    let renewed = ours(7).pruning(vec!["_once_b".to_owned()], 1_600_000_000_000);
    let unchanged = backend.update("_key", key, &once, Some(&renewed)).await?;
    assert!(
        matches!(unchanged, Updated::Unchanged(Some(_))),
        "{unchanged:?}"
    );
    assert_eq!(views(unchanged), n("3"));
    // One that prunes the other writer's mark, still old, removes it and sets its own.
    let pruning = ours(7).pruning(vec!["_once_b".to_owned()], 1_800_000_000_000);
    let pruned = backend.update("_key", key, &once, Some(&pruning)).await?;
    assert_eq!(views(pruned), n("4"));
    let stored = fixture.read_back(key).await?.ok_or("the item is gone")?;
    assert_eq!(stored.get("_once_a"), Some(&ours(7).value()));
    assert_eq!(stored.get("_once_b"), None);
    Ok(())
}

mod dynamodb {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deltas_agree_with_the_in_memory_rules() -> TestResult {
        super::deltas_agree_with_the_in_memory_rules(Fixture::dynamodb().await?).await
    }

    #[tokio::test]
    async fn a_delta_is_applied_and_answers_the_item() -> TestResult {
        super::a_delta_is_applied_and_answers_the_item(Fixture::dynamodb().await?).await
    }

    #[tokio::test]
    async fn a_marked_delta_is_applied_once() -> TestResult {
        super::a_marked_delta_is_applied_once(Fixture::dynamodb().await?).await
    }
}

/// moto applies the actions of an update it refuses up to the one it refuses (an append
/// lands though an `ADD` beside it fails), where DynamoDB applies all or nothing: random
/// sequences, which refuse some updates, run on dynalite only.
mod moto {
    use super::*;

    #[tokio::test]
    async fn a_delta_is_applied_and_answers_the_item() -> TestResult {
        super::a_delta_is_applied_and_answers_the_item(Fixture::moto().await?).await
    }

    #[tokio::test]
    async fn a_marked_delta_is_applied_once() -> TestResult {
        super::a_marked_delta_is_applied_once(Fixture::moto().await?).await
    }
}

mod embedded {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deltas_agree_with_the_in_memory_rules() -> TestResult {
        super::deltas_agree_with_the_in_memory_rules(Fixture::embedded()?).await
    }

    #[tokio::test]
    async fn a_delta_is_applied_and_answers_the_item() -> TestResult {
        super::a_delta_is_applied_and_answers_the_item(Fixture::embedded()?).await
    }

    #[tokio::test]
    async fn a_marked_delta_is_applied_once() -> TestResult {
        super::a_marked_delta_is_applied_once(Fixture::embedded()?).await
    }
}
