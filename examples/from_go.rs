//! Moving a service from the Go library to quickstore, on a table the Go service keeps writing.
//!
//! The Go service is played here by the plain AWS SDK, writing as the Go library did: each item
//! a whole `PutItem`, its rendered key in the string attribute `_key`, each field under its Go
//! name, no condition. quickstore reads those items as they are (no data migration): keys parse
//! back with `Kinds`, and `#[serde(rename = "...")]` maps the Go field names. Then both
//! services write the same keys, the Rust one in versioned mode, and the example prints what
//! that gives and what it does not (docs/MIGRATING-FROM-GO.md, "Moving a live service", says
//! the same at length). Every claim it prints is checked against the table; it fails otherwise.
//!
//! It needs a DynamoDB-compatible server and creates its table, `go_service`:
//! `cargo run --example from_go -- http://127.0.0.1:8000` (the URL defaults to that one). It
//! writes its items afresh each time, so it runs as often as you like.

use anyhow::ensure;
use aws_sdk_dynamodb::Client;
use quickstore::{
    AttributeValue, Conflict, Delta, DynamoDbBackend, Item, Key, Kinds, RenderedKey, Store,
};
use serde::{Deserialize, Serialize};

const TABLE: &str = "go_service";

// type User struct {
//     Name   string
//     Email  string `json:"email"`
//     Visits int
// }
/// The Go library stored a field under its `dynamodbav` tag, else its `json` tag, else its Go
/// name.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct User {
    #[serde(rename = "Name")]
    name: String,
    email: String,
    #[serde(rename = "Visits")]
    visits: i64,
}

// type Post struct {
//     Author quickstore.Key          // stored as its rendered string
//     Title  string `dynamodbav:"title"`
//     Likes  int
// }
/// A key inside a value is a string holding the rendered key, read back as a `RenderedKey`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Post {
    #[serde(rename = "Author")]
    author: RenderedKey,
    title: String,
    #[serde(rename = "Likes")]
    likes: i64,
}

// type Page struct { Views int }
#[derive(Debug, Deserialize)]
struct Page {
    #[serde(rename = "Views")]
    views: i64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let endpoint = std::env::args().nth(1);
    let endpoint = endpoint.as_deref().unwrap_or("http://127.0.0.1:8000");
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region("us-east-1")
        .test_credentials()
        .load()
        .await;
    let client = Client::new(&config);
    let backend = DynamoDbBackend::new(client.clone(), TABLE);
    backend.create_table("_key").await?;
    let go = GoService { client };

    // What the Go service wrote. Go's keys: Key{Kind: "User", Identifier: RandIdentifier()},
    // Key{Parent: user.String(), Kind: "Post", Identifier: "1"}, and so on.
    let (user, post, group, page) = (
        "UserxK3-fQ9_a1Zb",
        "UserxK3-fQ9_a1Zb.Post1",
        "UserGroupadmins",
        "Pagehome",
    );
    go.put(user, &go_user("Ada", "ada@example.com", 3)).await?;
    go.put(post, &go_post(user, "Notes", 5)).await?;
    go.put(group, &[("Members", n(1))]).await?;
    go.put(page, &[("Views", n(10))]).await?;

    println!("== The Go service's items, read by quickstore");
    // Registry.Register("User") and so on, in Go; here a value given to the store.
    let kinds = Kinds::of(["Page", "Post", "User", "UserGroup"])?;
    for rendered in [page, group, user, post] {
        let key = kinds.parse(rendered)?;
        let parent = key.parent().map(|p| format!("parent {p}, "));
        let (kind, id) = (key.kind(), key.identifier());
        println!(
            "{rendered:<23} {}kind {kind}, identifier {id}",
            parent.unwrap_or_default()
        );
    }
    println!("(Kinds::parse takes the longest registered kind; Go's Parse took the shortest,");
    println!(" reading UserGroupadmins as User + Groupadmins: the same item, other parts)");

    let (conflicts, mut conflicted) = tokio::sync::mpsc::unbounded_channel::<Conflict>();
    let rust = Store::builder(backend)
        .kinds(kinds.clone())
        .versioned("_version")
        .on_conflict(move |conflict| {
            let _ = conflicts.send(conflict.clone());
        })
        .open()
        .await?;
    let user_key = kinds.parse(user)?;
    let post_key = Key::with_parent(&user_key, "Post", "1")?;
    let ada: User = rust.get(&user_key).await?.ok_or_else(|| missing(user))?;
    let notes: Post = rust.get(&post_key).await?.ok_or_else(|| missing(post))?;
    ensure!(notes.author.parse(&kinds)? == user_key);
    println!("{ada:?}");
    println!("{notes:?}");
    println!("(the post's author parses back to {user_key})");

    println!("\n== Both services write the same keys; the Rust one is versioned");
    println!("1. Rust counts a visit on Go's unversioned user (Visits 3 -> 4).");
    rust.update(&user_key, &User { visits: 4, ..ada }).await?;
    rust.flush().await?;
    let stored = go.get(user).await?;
    ensure!(stored.get("Visits") == Some(&n(4)) && stored.get("_version") == Some(&n(1)));
    println!("   given: the write is conditional on the item as Rust read it; it lands and");
    println!("   versions the item: {}", attribute_names(&stored));
    println!("   (Go's struct ignores _version and _version_by)");

    println!("2. Go counts a like (Likes 5 -> 6) after Rust read the post; Rust edits its title.");
    go.put(post, &go_post(user, "Notes", 6)).await?;
    let revised = Post {
        title: "Notes, revised".into(),
        ..notes
    };
    rust.update(&post_key, &revised).await?;
    rust.flush().await?;
    let conflict = conflicted
        .recv()
        .await
        .ok_or_else(|| missing("a conflict"))?;
    let ours = conflict.ours::<Post>()?.ok_or_else(|| missing("ours"))?;
    let theirs = conflict
        .theirs::<Post>()?
        .ok_or_else(|| missing("theirs"))?;
    let now: Post = rust.get(&post_key).await?.ok_or_else(|| missing(post))?;
    ensure!(go.get(post).await?.get("Likes") == Some(&n(6)) && now.likes == 6);
    println!("   given: Rust's write is a conflict, not an overwrite, reported with both states");
    println!(
        "   (ours: {:?}, {} likes; theirs: {:?}, {} likes); the table keeps Go's item,",
        ours.title, ours.likes, theirs.title, theirs.likes
    );
    println!("   and Rust serves it from then on ({} likes)", now.likes);

    println!("3. Go changes the user's e-mail in its own cached copy and writes the item back.");
    go.put(user, &go_user("Ada", "ada@lovelace.example", 3))
        .await?;
    let stored = go.get(user).await?;
    ensure!(stored.get("Visits") == Some(&n(3)) && !stored.contains_key("_version"));
    let cached: User = rust.get(&user_key).await?.ok_or_else(|| missing(user))?;
    ensure!(cached.visits == 4 && cached.email == "ada@example.com");
    println!("   NOT given: Rust's visit is gone from the table (Visits 3), and nothing says so;");
    println!(
        "   Rust still serves its cached entry (Visits {}, {})",
        cached.visits, cached.email
    );

    println!("4. Rust counts another visit on that entry (Visits 4 -> 5).");
    rust.update(
        &user_key,
        &User {
            visits: 5,
            ..cached
        },
    )
    .await?;
    rust.flush().await?;
    let conflict = conflicted
        .recv()
        .await
        .ok_or_else(|| missing("a conflict"))?;
    let seen: User = rust.get(&user_key).await?.ok_or_else(|| missing(user))?;
    ensure!(conflict.key == user_key && go.get(user).await?.get("Visits") == Some(&n(3)));
    println!("   given: a conflict, not an overwrite: Go's write removed the version that Rust's");
    println!(
        "   write is conditional on. Rust serves Go's state from then on (Visits {}, {})",
        seen.visits, seen.email
    );

    println!("5. Go renames the user.");
    go.put(user, &go_user("Ada Lovelace", "ada@lovelace.example", 3))
        .await?;
    let before: User = rust.get(&user_key).await?.ok_or_else(|| missing(user))?;
    // A store built with `.follow_stream(DynamoDbStream::of_table(...))` (feature `streams`;
    // dynalite has no streams, moto and DynamoDB do) drops or replaces a clean entry when
    // another writer changes its item, about one stream lag later. `invalidate` does it now.
    rust.invalidate(&user_key)?;
    let after: User = rust.get(&user_key).await?.ok_or_else(|| missing(user))?;
    ensure!(before.name == "Ada" && after.name == "Ada Lovelace");
    println!(
        "   Rust serves {:?} until its entry is dropped, then {:?}.",
        before.name, after.name
    );
    println!("   given by following the table's stream (feature `streams`): the entry is replaced");
    println!("   or dropped about one stream lag after Go's write (`invalidate` stands in here)");
    println!("   NOT given: any protection from lost updates, as in 3; and Go's writes reach the");
    println!("   stream only once Go flushes them from its queues");

    println!("6. Rust counts page views with apply: Views 10 -> 12. Go reads 12 to count a view;");
    println!("   Rust counts 3 more; Go writes back what it read, plus one.");
    let page_key = kinds.parse(page)?;
    for _ in 0..2 {
        rust.apply(&page_key, Delta::new().add("Views", 1)).await?;
    }
    rust.flush().await?;
    let views = number(&go.get(page).await?, "Views")?; // Go's read...
    for _ in 0..3 {
        rust.apply(&page_key, Delta::new().add("Views", 1)).await?;
    }
    rust.flush().await?;
    let counted = number(&go.get(page).await?, "Views")?;
    go.put(page, &[("Views", n(views + 1))]).await?; // ...and Go's write
    let stored = number(&go.get(page).await?, "Views")?;
    let cached: Page = rust.get(&page_key).await?.ok_or_else(|| missing(page))?;
    ensure!(views == 12 && counted == 15 && stored == 13 && cached.views == 15);
    println!("   NOT given: the table holds {stored}, not 16: Rust's 3 views are lost, unreported");
    println!(
        "   (Rust serves {} until its entry is dropped). Deltas add up between quickstore",
        cached.views
    );
    println!("   stores, not against a writer that writes back whole items it read");

    println!(
        "\n{} conflicts reported to Rust. Safer than both writing one key: one writing service",
        rust.stats().conflicts
    );
    println!("per key (by kind, tenant or a hash of the key), moving ranges of keys to Rust");
    rust.close().await?;
    Ok(())
}

/// A Go `User`, as `dynamodbattribute.MarshalMap` stored it.
fn go_user(name: &str, email: &str, visits: i64) -> [(&'static str, AttributeValue); 3] {
    [
        ("Name", s(name)),
        ("email", s(email)),
        ("Visits", n(visits)),
    ]
}

/// A Go `Post`: its `Author` key is stored as the rendered string.
fn go_post(author: &str, title: &str, likes: i64) -> [(&'static str, AttributeValue); 3] {
    [
        ("Author", s(author)),
        ("title", s(title)),
        ("Likes", n(likes)),
    ]
}

/// The Go service's side of the table: the AWS SDK, as the Go library used it.
struct GoService {
    client: Client,
}

impl GoService {
    /// Go's write: the whole item, with its rendered key in `_key`, and no condition.
    async fn put(&self, rendered: &str, fields: &[(&str, AttributeValue)]) -> anyhow::Result<()> {
        let mut item = Item::from([("_key".to_owned(), s(rendered))]);
        item.extend(
            fields
                .iter()
                .map(|(name, value)| (name.to_string(), value.clone())),
        );
        self.client
            .put_item()
            .table_name(TABLE)
            .set_item(Some(item))
            .send()
            .await?;
        Ok(())
    }

    /// The item as it is in the table (Go read it with `GetItem`).
    async fn get(&self, rendered: &str) -> anyhow::Result<Item> {
        let read = self
            .client
            .get_item()
            .table_name(TABLE)
            .key("_key", s(rendered))
            .consistent_read(true)
            .send()
            .await?;
        read.item.ok_or_else(|| missing(rendered))
    }
}

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_owned())
}

fn n(number: i64) -> AttributeValue {
    AttributeValue::N(number.to_string())
}

fn number(item: &Item, name: &str) -> anyhow::Result<i64> {
    match item.get(name) {
        Some(AttributeValue::N(number)) => Ok(number.parse()?),
        _ => anyhow::bail!("no number {name} in {item:?}"),
    }
}

fn attribute_names(item: &Item) -> String {
    let mut names: Vec<&str> = item.keys().map(String::as_str).collect();
    names.sort_unstable();
    names.join(", ")
}

fn missing(what: &str) -> anyhow::Error {
    anyhow::anyhow!("{what} is missing")
}
