//! Tables written by the Go library: one string partition key attribute `_key` holding the
//! rendered key, beside the value's attributes.

#[macro_use]
mod common;

use std::collections::HashMap;

use common::{Fixture, TestResult};
use quickstore::{AttributeValue, Item, Key, Kinds};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Post {
    title: String,
    likes: i64,
}

fn go_item(rendered: &str, title: &str, likes: i64) -> Item {
    HashMap::from([
        ("_key".to_string(), AttributeValue::S(rendered.to_string())),
        ("title".to_string(), AttributeValue::S(title.to_string())),
        ("likes".to_string(), AttributeValue::N(likes.to_string())),
    ])
}

async fn items_written_by_the_go_library_read_back(fixture: Fixture) -> TestResult {
    // As the Go library stored them: rendered keys, a parent chain, random identifiers.
    fixture
        .put_raw(go_item("UserAbC-_12345678.PostZ", "hello", 3))
        .await?;
    fixture
        .put_raw(go_item("UserAbC-_12345678", "profile", 0))
        .await?;
    let kinds = Kinds::of(["User", "Post"])?;
    let store = fixture.builder().kinds(kinds.clone()).open().await?;

    let post_key = kinds.parse("UserAbC-_12345678.PostZ")?;
    assert_eq!(post_key.parent(), Some("UserAbC-_12345678"));
    assert_eq!(post_key.kind(), "Post");
    assert_eq!(post_key.identifier(), "Z");
    let post: Post = store.get(&post_key).await?.ok_or("missing post")?;
    assert_eq!(
        post,
        Post {
            title: "hello".into(),
            likes: 3
        }
    );

    let user_key = Key::new("User", "AbC-_12345678")?;
    assert_eq!(Key::with_parent(&user_key, "Post", "Z")?, post_key);
    let item = store.get_item(&user_key).await?.ok_or("missing user")?;
    assert_eq!(
        item.get("title"),
        Some(&AttributeValue::S("profile".into()))
    );
    assert!(!item.contains_key("_key"));

    // The partition key of an item read straight from the table parses back to its key.
    let raw = fixture
        .read_back("UserAbC-_12345678.PostZ")
        .await?
        .ok_or("missing item")?;
    let rendered = raw
        .get("_key")
        .and_then(|v| v.as_s().ok())
        .ok_or("no _key")?;
    assert_eq!(kinds.parse(rendered)?, post_key);
    store.close().await?;
    Ok(())
}

async fn items_written_here_read_back_in_the_go_layout(fixture: Fixture) -> TestResult {
    let store = fixture.store().await?;
    let parent = Key::new("User", "42")?;
    let key = Key::with_parent(&parent, "Post", "7")?;
    store
        .insert(
            &key,
            &Post {
                title: "t".into(),
                likes: -1,
            },
        )
        .await?;
    store.close().await?;
    let raw = fixture
        .read_back("User42.Post7")
        .await?
        .ok_or("missing item")?;
    assert_eq!(raw, go_item("User42.Post7", "t", -1));
    Ok(())
}

on_both_backends!(
    items_written_by_the_go_library_read_back,
    items_written_here_read_back_in_the_go_layout,
);
