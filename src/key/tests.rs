use super::*;

type TestResult = Result<(), KeyError>;

/// How a key was built: parent, kind and identifier.
fn parts(key: &Key) -> (Option<&str>, &str, &str) {
    (key.parent(), key.kind(), key.identifier())
}

#[test]
fn keys_that_render_alike_are_one_key() -> TestResult {
    for (a, b) in [
        (Key::new("Order", "Item5")?, Key::new("OrderItem", "5")?),
        (Key::new("User", "42")?, Key::new("User4", "2")?),
        (Key::new("A", "1")?, Key::new("A1", "")?),
        (
            Key::with_parent(&Key::new("A", "1")?, "B", "2")?,
            Key::with_parent(&Key::new("A1", "")?, "B2", "")?,
        ),
    ] {
        assert_eq!(a, b, "{a:?} and {b:?} name one item");
        assert_ne!(
            parts(&a),
            parts(&b),
            "each keeps the parts it was built from"
        );
        let map = std::collections::HashMap::from([(a.clone(), 1)]);
        assert_eq!(map.get(&b), Some(&1));
        assert_eq!(
            map.get(b.as_str()),
            Some(&1),
            "looked up by the rendered form"
        );
    }
    assert!(Key::new("User", "1")? < Key::new("User", "2")?);
    Ok(())
}

#[test]
fn keys_are_rebuilt_from_their_rendered_form_and_parts() -> TestResult {
    let kinds = Kinds::of(["User", "Post"])?;
    let post = Key::with_parent(&Key::new("User", "4.2".replace('.', ""))?, "Post", "7")?;
    let rebuilt = Key::rebuild(post.as_str(), Some(post.parts()), &Kinds::new());
    assert_eq!(parts(&rebuilt), parts(&post), "from its parts");
    let parsed = Key::rebuild(post.as_str(), None, &kinds);
    assert_eq!(parts(&parsed), parts(&post), "parsed with the registry");
    let unknown = Key::rebuild(post.as_str(), None, &Kinds::new());
    assert_eq!(unknown, post, "the same key, whatever its parts");
    assert_eq!(parts(&unknown), (Some("User42"), "Post7", ""));
    // Parts that do not fit the rendered form are not trusted.
    let other = Key::new("Order", "Item5")?;
    let wrong = Key::rebuild(
        "OrderItem5",
        Some(Key::new("O", "rderItem5")?.parts()),
        &kinds,
    );
    assert_eq!(wrong, other);
    Ok(())
}

#[test]
fn identifiers_with_dots_are_escaped_and_read_back() -> TestResult {
    let kinds = Kinds::of(["User", "Doc"])?;
    for identifier in [
        "ada.lovelace@example.com",
        "v1.2.3",
        "100%",
        "%2E",
        "..",
        "",
    ] {
        let key = Key::new("User", escape_identifier(identifier))?;
        assert!(!key.as_str().contains('.'), "{key}");
        let read = kinds.parse(key.as_str())?;
        assert_eq!(parts(&read), parts(&key));
        assert_eq!(unescape_identifier(read.identifier())?, identifier);
        let child = Key::with_parent(&key, "Doc", escape_identifier(identifier))?;
        let read = kinds.parse(child.as_str())?;
        assert_eq!(parts(&read), parts(&child));
        assert_eq!(read.parent(), Some(key.as_str()));
    }
    assert_eq!(escape_identifier("a.b%c"), "a%2Eb%25c");
    assert!(matches!(
        escape_identifier("plain"),
        std::borrow::Cow::Borrowed("plain")
    ));
    Ok(())
}

#[test]
fn only_escaped_identifiers_unescape() {
    for bad in ["%", "%2", "%2e", "%41", "a%zz", "%%25", "%é", "a.b"] {
        assert!(
            matches!(unescape_identifier(bad), Err(KeyError::Escape { .. })),
            "{bad}"
        );
    }
}

#[test]
fn key_errors_carry_the_code_of_error_key() -> TestResult {
    let err = Key::new("", "1").err().ok_or(KeyError::EmptyKind)?;
    assert_eq!(
        err.code(),
        "ValidationException",
        "the code of `Error::Key`"
    );
    let dotted = Key::new("User", "a.b").err().ok_or(KeyError::EmptyKind)?;
    assert!(dotted.to_string().contains("escape_identifier"), "{dotted}");
    Ok(())
}

#[test]
fn renders_like_the_go_library() -> TestResult {
    assert_eq!(Key::new("User", "42")?.as_str(), "User42");
    let parent = Key::new("User", "42")?;
    let child = Key::with_parent(&parent, "Post", "7")?;
    assert_eq!(child.to_string(), "User42.Post7");
    let grandchild = Key::with_parent(&child, "Comment", "x")?;
    assert_eq!(grandchild.as_str(), "User42.Post7.Commentx");
    assert_eq!(grandchild.parent(), Some("User42.Post7"));
    assert_eq!(grandchild.kind(), "Comment");
    assert_eq!(grandchild.identifier(), "x");
    assert_eq!(Key::new("Config", "")?.as_str(), "Config");
    assert_eq!(parent.parent(), None);
    Ok(())
}

#[test]
fn parses_what_it_renders() -> TestResult {
    let kinds = Kinds::of(["User", "Post", "Comment"])?;
    let parent = Key::new("User", "42")?;
    let child = Key::with_parent(&parent, "Post", "7")?;
    let grandchild = Key::with_parent(&child, "Comment", "x-_9")?;
    for key in [parent, child, grandchild] {
        assert_eq!(kinds.parse(key.as_str())?, key);
    }
    Ok(())
}

#[test]
fn parses_strings_written_by_the_go_library() -> TestResult {
    let kinds = Kinds::of(["User", "Post"])?;
    let key = kinds.parse("UserAbC-_12345678.PostZ")?;
    assert_eq!(key.parent(), Some("UserAbC-_12345678"));
    assert_eq!(key.kind(), "Post");
    assert_eq!(key.identifier(), "Z");
    Ok(())
}

#[test]
fn overlapping_kinds_resolve_to_the_longest_match() -> TestResult {
    let kinds = Kinds::of(["User", "UserGroup", "U"])?;
    assert_eq!(kinds.parse("UserGroup7")?, Key::new("UserGroup", "7")?);
    assert_eq!(kinds.parse("User7")?, Key::new("User", "7")?);
    assert_eq!(kinds.parse("Ux")?, Key::new("U", "x")?);
    assert_eq!(kinds.parse("UserGroup")?, Key::new("UserGroup", "")?);
    Ok(())
}

#[test]
fn ambiguous_keys_are_refused_by_a_registry() -> TestResult {
    let kinds = Kinds::of(["User", "UserGroup"])?;
    let ambiguous = Key::new("User", "Group7")?;
    assert_eq!(ambiguous.as_str(), "UserGroup7");
    assert_eq!(
        kinds.check(&ambiguous),
        Err(KeyError::Ambiguous {
            rendered: "UserGroup7".into(),
            read_as: "UserGroup".into(),
        })
    );
    kinds.check(&Key::new("User", "7")?)?;
    kinds.check(&Key::new("UserGroup", "User")?)?;
    assert!(matches!(
        kinds.check(&Key::new("Post", "7")?),
        Err(KeyError::Unregistered { .. })
    ));
    Ok(())
}

#[test]
fn registering_in_any_order_finds_the_same_prefixes() -> TestResult {
    let forward = Kinds::of(["U", "User", "UserGroup"])?;
    let backward = Kinds::of(["UserGroup", "User", "U"])?;
    assert_eq!(forward, backward);
    assert_eq!(
        forward.iter().collect::<Vec<_>>(),
        ["U", "User", "UserGroup"]
    );
    Ok(())
}

#[test]
fn an_empty_registry_accepts_any_valid_key() -> TestResult {
    Kinds::new().check(&Key::new("Anything", "1")?)?;
    Ok(())
}

#[test]
fn invalid_keys_cannot_be_built() -> TestResult {
    assert_eq!(Key::new("", "1"), Err(KeyError::EmptyKind));
    assert!(matches!(
        Key::new("Us.er", "1"),
        Err(KeyError::Separator { part: "kind", .. })
    ));
    assert!(matches!(
        Key::new("User", "4.2"),
        Err(KeyError::Separator {
            part: "identifier",
            ..
        })
    ));
    assert_eq!(
        Key::new("K", "x".repeat(MAX_KEY_BYTES)),
        Err(KeyError::TooLong {
            bytes: MAX_KEY_BYTES + 1,
            limit: MAX_KEY_BYTES
        })
    );
    let at_limit = Key::new("K", "x".repeat(MAX_KEY_BYTES - 1))?;
    let child = Key::with_parent(&at_limit, "K", "");
    assert!(matches!(child, Err(KeyError::TooLong { .. })), "{child:?}");
    Ok(())
}

#[test]
fn unparseable_strings_are_refused() -> TestResult {
    let kinds = Kinds::of(["User"])?;
    assert!(matches!(
        kinds.parse("Post1"),
        Err(KeyError::UnknownKind { .. })
    ));
    for rendered in [".User1", "", "a.", "x".repeat(MAX_KEY_BYTES + 1).as_str()] {
        let err = kinds.parse(rendered).err();
        assert!(
            matches!(
                err,
                Some(KeyError::Malformed { .. } | KeyError::TooLong { .. })
            ),
            "{rendered}: {err:?}"
        );
    }
    // Multi-byte characters never split: the probe skips lengths inside a character.
    let kinds = Kinds::of(["Ü", "Üb"])?;
    assert_eq!(kinds.parse("Üx")?, Key::new("Ü", "x")?);
    Ok(())
}

#[test]
fn registering_bad_kinds_fails() {
    assert_eq!(Kinds::of([""]), Err(KeyError::EmptyKind));
    assert!(Kinds::of(["a.b"]).is_err());
}

#[test]
fn keys_serialize_as_their_rendered_string() -> Result<(), Box<dyn std::error::Error>> {
    let key = Key::with_parent(&Key::new("User", "1")?, "Post", "2")?;
    assert_eq!(serde_json::to_string(&key)?, r#""User1.Post2""#);
    let rendered: RenderedKey = serde_json::from_str(r#""User1.Post2""#)?;
    assert_eq!(rendered, RenderedKey::from(&key));
    assert_eq!(rendered.parse(&Kinds::of(["User", "Post"])?)?, key);
    assert!(serde_json::from_str::<RenderedKey>(r#""""#).is_err());
    assert!(serde_json::from_str::<RenderedKey>(r#"".User1""#).is_err());
    Ok(())
}

#[test]
fn random_identifiers_are_twelve_url_safe_characters() {
    let a = rand_identifier();
    let b = rand_identifier();
    assert_eq!(a.len(), 12);
    assert!(a
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    assert_ne!(a, b);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Escaping is reversible, leaves no `.`, and no two identifiers share an escaped form.
        #[test]
        fn escaped_identifiers_read_back(identifier in "[a.%2E5]{0,12}", other in "[a.%2E5]{0,12}") {
            let escaped = escape_identifier(&identifier);
            prop_assert!(!escaped.contains('.'));
            prop_assert_eq!(unescape_identifier(&escaped).map_err(|e| TestCaseError::fail(e.to_string()))?, identifier.as_str());
            if identifier != other {
                prop_assert_ne!(escaped, escape_identifier(&other));
            }
            // Whatever unescapes, escapes back to itself: one escaped form per identifier.
            if let Ok(unescaped) = unescape_identifier(&other) {
                prop_assert_eq!(escape_identifier(&unescaped), other.as_str());
            }
        }

        /// Keys are equal exactly when they render the same, and then hash alike.
        #[test]
        fn identity_follows_the_rendered_form(
            a in ("[AB]{1,3}", "[AB1]{0,3}"),
            b in ("[AB]{1,3}", "[AB1]{0,3}"),
        ) {
            use std::hash::BuildHasher;
            let a = Key::new(&a.0, &a.1).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let b = Key::new(&b.0, &b.1).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(a == b, a.as_str() == b.as_str());
            prop_assert_eq!(a.cmp(&b), a.as_str().cmp(b.as_str()));
            let hasher = std::collections::hash_map::RandomState::new();
            if a == b {
                prop_assert_eq!(hasher.hash_one(&a), hasher.hash_one(&b));
            }
        }

        /// Every key a registry accepts parses back to itself, and parsing agrees with a scan
        /// of every kind for the longest match.
        #[test]
        fn checked_keys_parse_back_to_themselves(
            kinds in proptest::collection::vec("[A-Ca-c]{1,4}", 1..6),
            kind_index in 0usize..6,
            identifier in "[A-Ca-c0-9]{0,6}",
            parent in proptest::option::of("[A-Ca-c0-9]{1,6}"),
        ) {
            let registry = Kinds::of(kinds.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let kind = &kinds[kind_index % kinds.len()];
            let key = match &parent {
                Some(parent) => Key::from_parts(parent, kind, &identifier),
                None => Key::new(kind, &identifier),
            }.map_err(|e| TestCaseError::fail(e.to_string()))?;
            let longest = kinds
                .iter()
                .filter(|k| key.own_part().starts_with(k.as_str()))
                .max_by_key(|k| k.len());
            match registry.check(&key) {
                Ok(()) => {
                    let parsed = registry.parse(key.as_str()).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert_eq!(parts(&parsed), parts(&key));
                    prop_assert_eq!(longest, Some(kind));
                }
                Err(KeyError::Ambiguous { read_as, .. }) => {
                    prop_assert_eq!(Some(&read_as), longest);
                    prop_assert!(read_as.len() > kind.len());
                }
                Err(other) => prop_assert!(false, "{other}"),
            }
        }
    }
}
