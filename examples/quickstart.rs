//! The README's first example, word for word below this header (tests/readme.rs checks it).
//!
//! It reads the standard AWS configuration and needs the table `users`: `scripts/readme-examples`
//! runs it against dynalite; the README says how to run it yourself against a local server.

use quickstore::{DynamoDbBackend, Key, Store};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct User {
    name: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let backend = DynamoDbBackend::new(aws_sdk_dynamodb::Client::new(&config), "users");
    let store = Store::builder(backend).open().await?; // checks the table's key schema
    let key = Key::new("User", "ada")?; // keys are checked when built
    store.upsert(&key, &User { name: "Ada".into() }).await?; // acknowledged from memory
    let user: Option<User> = store.get(&key).await?; // served from memory
    println!("{}", user.map(|u| u.name).unwrap_or_default());
    store.close().await?; // drains every write to DynamoDB
    Ok(())
}
