use super::*;

use proptest::prelude::*;

type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

fn n(n: &str) -> AttributeValue {
    AttributeValue::N(n.to_owned())
}

fn s(s: &str) -> AttributeValue {
    AttributeValue::S(s.to_owned())
}

fn ss(members: &[&str]) -> AttributeValue {
    AttributeValue::Ss(members.iter().map(|m| (*m).to_owned()).collect())
}

fn ns(members: &[&str]) -> AttributeValue {
    AttributeValue::Ns(members.iter().map(|m| (*m).to_owned()).collect())
}

fn applied(delta: &Delta, current: Option<&Item>) -> Result<Item> {
    delta.apply(current, "_key", "k")
}

#[test]
fn a_delta_creates_an_absent_item_with_its_key() -> TestResult {
    let delta = Delta::new()
        .add("views", 2)
        .add_members("tags", ss(&["a"]))
        .remove_members("gone", ss(&["x"]))
        .append("log", vec![s("x")])
        .set_if_absent("created", s("today"));
    let item = applied(&delta, None)?;
    let expected = Item::from([
        ("_key".to_owned(), s("k")),
        ("views".to_owned(), n("2")),
        ("tags".to_owned(), ss(&["a"])),
        ("log".to_owned(), AttributeValue::L(vec![s("x")])),
        ("created".to_owned(), s("today")),
    ]);
    assert_eq!(item, expected);
    Ok(())
}

#[test]
fn actions_change_what_is_there_as_dynamodb_does() -> TestResult {
    let current = Item::from([
        ("_key".to_owned(), s("k")),
        ("views".to_owned(), n("1.50")),
        ("tags".to_owned(), ss(&["a", "b"])),
        ("ids".to_owned(), ns(&["1", "2"])),
        ("log".to_owned(), AttributeValue::L(vec![s("x")])),
        ("created".to_owned(), s("yesterday")),
    ]);
    let delta = Delta::new()
        .add_number("views", "1e3")
        .remove_members("tags", ss(&["a", "z"]))
        .add_members("ids", ns(&["1.0", "3"]))
        .append("log", vec![s("y")])
        .set_if_absent("created", s("today"));
    let item = applied(&delta, Some(&current))?;
    assert_eq!(item.get("views"), Some(&n("1001.5")));
    assert_eq!(item.get("tags"), Some(&ss(&["b"])));
    // `1.0` is the member `1` already there.
    assert_eq!(item.get("ids"), Some(&ns(&["1", "2", "3"])));
    assert_eq!(
        item.get("log"),
        Some(&AttributeValue::L(vec![s("x"), s("y")]))
    );
    assert_eq!(item.get("created"), Some(&s("yesterday")));
    // A set left empty is removed.
    let emptied = applied(
        &Delta::new().remove_members("tags", ss(&["b"])),
        Some(&item),
    )?;
    assert!(!emptied.contains_key("tags"));
    Ok(())
}

#[test]
fn operands_of_the_wrong_type_are_refused() {
    let current = Item::from([
        ("_key".to_owned(), s("k")),
        ("name".to_owned(), s("Ada")),
        ("tags".to_owned(), ss(&["a"])),
    ]);
    for delta in [
        Delta::new().add("name", 1),
        Delta::new().append("name", vec![s("x")]),
        Delta::new().add_members("tags", ns(&["1"])),
        Delta::new().remove_members("name", ss(&["Ada"])),
        Delta::new().add_members("name", ss(&["x"])),
    ] {
        let refused = applied(&delta, Some(&current));
        assert!(
            matches!(refused, Err(Error::Validation { .. })),
            "{delta:?}: {refused:?}"
        );
    }
}

#[test]
fn bad_deltas_fail_their_check() {
    for delta in [
        Delta::new(),
        Delta::new().add("_key", 1),
        Delta::new().add("", 1),
        Delta::new().add_number("n", "1e200"),
        Delta::new().add_number("n", "x"),
        Delta::new().add_members("tags", s("a")),
        Delta::new().add_members("tags", ss(&[])),
        Delta::new().remove_members("ids", ns(&["1", "1.0"])),
        Delta::new().set_if_absent("e", AttributeValue::Ss(Vec::new())),
        Delta::new().append("l", vec![ns(&[])]),
    ] {
        assert!(delta.check("_key").is_err(), "{delta:?}");
    }
    assert!(Delta::new().add("n", -3).check("_key").is_ok());
    let wide = |attributes: usize| {
        (0..attributes).fold(Delta::new(), |delta, i| delta.add(format!("n{i}"), 1))
    };
    assert!(wide(300).check("_key").is_ok());
    assert!(wide(400).check("_key").is_err());
}

#[test]
fn the_expression_names_every_attribute_and_value() {
    let delta = Delta::new()
        .add("views", 1)
        .remove_members("tags", ss(&["a"]))
        .append("log", vec![s("y")])
        .set_if_absent("created", s("today"));
    let expression = delta.expression(None);
    // Attributes in name order: created, log, tags, views.
    assert_eq!(
        expression.text,
        "SET #a0 = if_not_exists(#a0, :v0), #a1 = list_append(if_not_exists(#a1, :empty), :v1) \
         ADD #a3 :v3 DELETE #a2 :v2"
    );
    assert_eq!(expression.names.len(), 4);
    assert_eq!(
        expression.names.get("#a3").map(String::as_str),
        Some("views")
    );
    assert_eq!(expression.values.len(), 5);
    assert_eq!(
        expression.values.get(":empty"),
        Some(&AttributeValue::L(Vec::new()))
    );
}

#[test]
fn actions_of_one_kind_combine_and_others_do_not() -> TestResult {
    let first = Delta::new()
        .add("n", 2)
        .add_members("tags", ss(&["a"]))
        .append("log", vec![s("x")])
        .set_if_absent("created", s("first"));
    let next = Delta::new()
        .add("n", -5)
        .add_members("tags", ss(&["a", "b"]))
        .append("log", vec![s("y")])
        .set_if_absent("created", s("second"))
        .add("other", 1);
    let combined = first.then(&next).ok_or("these combine")?;
    let expected = Delta::new()
        .add("n", -3)
        .add_members("tags", ss(&["a", "b"]))
        .append("log", vec![s("x"), s("y")])
        .set_if_absent("created", s("first"))
        .add("other", 1);
    assert_eq!(combined, expected);
    // Members added then removed, or a number then a list, take two requests.
    let removal = Delta::new().remove_members("tags", ss(&["a"]));
    assert_eq!(first.then(&removal), None);
    assert_eq!(first.then(&Delta::new().append("n", vec![s("x")])), None);
    // A sum DynamoDB cannot store does not combine.
    let big = Delta::new().add_number("n", "1e30");
    assert_eq!(big.then(&Delta::new().add_number("n", "1e-10")), None);
    Ok(())
}

/// One attribute's action, drawn from a few attributes and values, so that actions meet.
fn action() -> impl Strategy<Value = (String, Action)> {
    let attribute = prop::sample::select(vec!["a", "b", "c"]).prop_map(str::to_owned);
    let member = prop::sample::select(vec!["x", "y", "z"]);
    let members = prop::collection::vec(member, 1..3).prop_map(|mut m| {
        m.sort_unstable();
        m.dedup();
        ss(&m)
    });
    let action = prop_oneof![
        (-1000_i64..1000).prop_map(|n| Action::Add(n.to_string())),
        members.clone().prop_map(Action::AddMembers),
        members.prop_map(Action::RemoveMembers),
        prop::collection::vec(any::<u8>().prop_map(|n| s(&n.to_string())), 0..3)
            .prop_map(Action::Append),
        any::<u8>().prop_map(|n| Action::SetIfAbsent(s(&n.to_string()))),
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

proptest! {
    /// Combining two deltas changes nothing about what they do: where both apply one after
    /// the other, their combination applies and leaves the same item; where either fails, so
    /// does the combination.
    #[test]
    fn a_combination_does_what_its_parts_do_in_turn(
        start in prop::option::of(delta()),
        first in delta(),
        next in delta(),
    ) {
        let current = match &start {
            Some(start) => applied(start, None).ok(),
            None => None,
        };
        let Some(combined) = first.then(&next) else {
            return Ok(());
        };
        let one = applied(&first, current.as_ref());
        match one {
            Ok(one) => match applied(&next, Some(&one)) {
                Ok(two) => prop_assert_eq!(applied(&combined, current.as_ref()).ok(), Some(two)),
                Err(_) => prop_assert!(applied(&combined, current.as_ref()).is_err()),
            },
            Err(_) => prop_assert!(applied(&combined, current.as_ref()).is_err()),
        }
    }

    /// A delta's journal form reads back as the delta.
    #[test]
    fn a_delta_reads_back_from_its_journal_form(delta in delta()) {
        prop_assert_eq!(Delta::from_item(&delta.to_item()), Some(delta));
    }
}

#[test]
fn an_item_that_is_no_delta_is_refused() {
    let wrong = [
        AttributeValue::S("x".into()),
        AttributeValue::L(vec![n("0")]),
        AttributeValue::L(vec![n("0"), s("not a number")]),
        AttributeValue::L(vec![n("9"), n("1")]),
        AttributeValue::L(vec![n("3"), n("1")]),
    ];
    for value in wrong {
        let item = Item::from([("a".to_owned(), value.clone())]);
        assert_eq!(Delta::from_item(&item), None, "{value:?}");
    }
}

#[test]
fn typed_builders_store_values_as_serde_makes_them() -> TestResult {
    #[derive(serde::Serialize)]
    struct Visit {
        page: String,
        ms: u32,
    }
    let delta = Delta::new()
        .add_strings("tags", ["a", "b"])
        .remove_strings("gone", vec![String::from("x")])
        .append_values(
            "visits",
            [Visit {
                page: "home".into(),
                ms: 12,
            }],
        )?
        .set_if_absent_value("first", &"today")?;
    let visit = AttributeValue::M(Item::from([
        ("page".to_owned(), s("home")),
        ("ms".to_owned(), n("12")),
    ]));
    let expected = Delta::new()
        .add_members("tags", ss(&["a", "b"]))
        .remove_members("gone", ss(&["x"]))
        .append("visits", vec![visit])
        .set_if_absent("first", s("today"));
    assert_eq!(delta, expected);
    Ok(())
}

proptest! {
    /// The quick bound on a delta's expression never passes one that is too long.
    #[test]
    fn the_expression_bound_holds(deltas in prop::collection::vec(delta(), 1..40)) {
        let mut all = Delta::new();
        for delta in deltas {
            for (attribute, action) in delta.actions() {
                let attribute = format!("{attribute}{}", all.len());
                all = all.action(attribute, action.clone());
            }
        }
        let length = all.expression(None).text.len();
        for limit in [length.saturating_sub(1), length, length + 1] {
            prop_assert_eq!(all.expression_within(limit), length <= limit, "{}", limit);
        }
    }
}
