//! Tables written by the Go library: one string partition key attribute `_key` holding the
//! rendered key, beside the value's attributes.

#[macro_use]
mod common;

use std::collections::HashMap;

use common::{Fixture, TestResult};
use quickstore::{AttributeValue, Item, Key, Kinds, RenderedKey};
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Comment {
    post: RenderedKey,
    text: String,
}

/// A key inside a stored value is a string attribute holding the rendered key, as the Go
/// library's `MarshalDynamoDBAttributeValue` wrote it, and reads back through a registry.
async fn keys_inside_values_are_rendered_strings(fixture: Fixture) -> TestResult {
    let kinds = Kinds::of(["User", "Post", "Comment"])?;
    let store = fixture.builder().kinds(kinds.clone()).open().await?;
    let post = Key::with_parent(&Key::new("User", "42")?, "Post", "7")?;
    let comment_key = Key::with_parent(&post, "Comment", "1")?;
    let comment = Comment {
        post: RenderedKey::from(&post),
        text: "first".into(),
    };
    store.insert(&comment_key, &comment).await?;
    // A `Key` serializes the same way, so a write-only struct may hold one directly.
    #[derive(Serialize)]
    struct Written<'a> {
        post: &'a Key,
        text: &'a str,
    }
    let second = Key::with_parent(&post, "Comment", "2")?;
    store
        .insert(
            &second,
            &Written {
                post: &post,
                text: "second",
            },
        )
        .await?;
    store.close().await?;

    for rendered in [comment_key.as_str(), second.as_str()] {
        let raw = fixture.read_back(rendered).await?.ok_or("missing item")?;
        assert_eq!(
            raw.get("post"),
            Some(&AttributeValue::S("User42.Post7".into())),
            "{rendered}"
        );
    }
    // An item the Go library wrote, with a key attribute, reads back the same way.
    let mut go = go_item("User42.Post7.Comment3", "", 0);
    go.insert("post".into(), AttributeValue::S("User42.Post7".into()));
    go.insert("text".into(), AttributeValue::S("third".into()));
    fixture.put_raw(go).await?;

    let store = fixture.builder().kinds(kinds.clone()).open().await?;
    for id in ["1", "2", "3"] {
        let read: Comment = store
            .get(&Key::with_parent(&post, "Comment", id)?)
            .await?
            .ok_or("missing comment")?;
        assert_eq!(read.post.parse(&kinds)?, post);
    }
    store.close().await?;
    Ok(())
}

/// Keys that render alike name one item, and are one key to the store: what one writes, the
/// other reads, and a batch read of both returns one entry. A store with a registry refuses
/// the one that would read back with other parts. Identifiers with a `.` go in escaped, and
/// read back from the table with the registry.
async fn keys_that_render_alike_are_one_item(fixture: Fixture) -> TestResult {
    let store = fixture.store().await?;
    let (a, b) = (Key::new("Order", "Item5")?, Key::new("OrderItem", "5")?);
    assert_eq!(a, b);
    store
        .upsert(
            &a,
            &Post {
                title: "a".into(),
                likes: 1,
            },
        )
        .await?;
    assert_eq!(
        store.get::<Post>(&b).await?.map(|p| p.title),
        Some("a".into())
    );
    let both: HashMap<Key, Post> = store.get_many([&a, &b]).await?;
    assert_eq!(both.len(), 1);
    assert!(both.contains_key(&b) && both.contains_key("OrderItem5"));
    store.close().await?;

    let kinds = Kinds::of(["Order", "OrderItem", "User"])?;
    let registered = fixture.builder().kinds(kinds.clone()).open().await?;
    let refused = registered.get::<Post>(&a).await.err().ok_or("accepted")?;
    assert_eq!(refused.code(), "ValidationException");
    let email = Key::new(
        "User",
        quickstore::escape_identifier("ada.lovelace@example.com"),
    )?;
    registered
        .upsert(
            &email,
            &Post {
                title: "ada".into(),
                likes: 2,
            },
        )
        .await?;
    registered.close().await?;
    let stored = fixture
        .read_back("Userada%2Elovelace@example%2Ecom")
        .await?;
    assert!(stored.is_some(), "stored under the escaped key");
    let read = kinds.parse("Userada%2Elovelace@example%2Ecom")?;
    assert_eq!(
        quickstore::unescape_identifier(read.identifier())?,
        "ada.lovelace@example.com"
    );
    Ok(())
}

on_both_backends!(
    keys_that_render_alike_are_one_item,
    items_written_by_the_go_library_read_back,
    items_written_here_read_back_in_the_go_layout,
    keys_inside_values_are_rendered_strings,
);
