//! The README's local-server example, word for word below this header (tests/readme.rs checks
//! it): dynalite or DynamoDB Local, its table created by the example itself.
//!
//! Run with `cargo run --example local_server -- http://127.0.0.1:PORT` against a server on that
//! port (port 8000 without an argument); `scripts/readme-examples` runs it against dynalite.

use quickstore::{DynamoDbBackend, Error, Key, Store};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct User {
    name: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The server's URL: the first argument, or port 8000 on this machine.
    let endpoint = std::env::args().nth(1);
    let endpoint = endpoint.as_deref().unwrap_or("http://127.0.0.1:8000");
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region("us-east-1") // any region: the SDK needs one to sign requests
        .test_credentials() // static dummy credentials; a local server checks none
        .load()
        .await;
    let backend = DynamoDbBackend::new(aws_sdk_dynamodb::Client::new(&config), "users");
    backend.create_table("_key").await?; // accepts the table if it is there already
    let store = Store::builder(backend).open().await?;

    let key = Key::new("User", "grace")?;
    // `insert` reads a key the store does not hold before it answers: here, from the table.
    let grace = User {
        name: "Grace".into(),
    };
    match store.insert(&key, &grace).await {
        Ok(()) => println!("inserted"),
        Err(Error::ItemExisted { .. }) => println!("there already"),
        Err(err) => return Err(err.into()),
    }
    // `update` replaces an item that is there (`ItemNotExisted` if there is none).
    let hopper = User {
        name: "Grace Hopper".into(),
    };
    store.update(&key, &hopper).await?;
    let user: Option<User> = store.get(&key).await?;
    println!("{}", user.map(|u| u.name).unwrap_or_default());

    // `upsert` and `delete` are acknowledged at once; `close` writes them to the table.
    let alan = Key::new("User", "alan")?;
    let turing = User {
        name: "Alan".into(),
    };
    store.upsert(&alan, &turing).await?;
    store.delete(&alan).await?;
    println!("alan exists: {}", store.exists(&alan).await?);
    store.close().await?;
    Ok(())
}
