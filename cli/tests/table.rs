//! End to end: `quickstore table create` against a dynalite server, then a store on the table.

#[path = "../../tests/common/dynalite.rs"]
#[allow(dead_code)]
mod dynalite;

use std::process::Command;

use anyhow::{ensure, Context as _};
use dynalite::Dynalite;
use quickstore::backend::Backend as _;
use quickstore::DynamoDbBackend;

fn create(server: &Dynalite, args: &[&str]) -> anyhow::Result<std::process::Output> {
    Command::new(env!("CARGO_BIN_EXE_quickstore"))
        .args(["table", "create", "--endpoint", server.endpoint()])
        .args(args)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_PROFILE")
        .output()
        .context("cannot run quickstore")
}

#[tokio::test]
async fn table_create_makes_a_table_the_store_opens() -> anyhow::Result<()> {
    let server = Dynalite::start().map_err(|e| anyhow::anyhow!("{e}"))?;
    let made = create(&server, &["--table", "users"])?;
    let stdout = String::from_utf8_lossy(&made.stdout);
    ensure!(made.status.success(), "{made:?}");
    ensure!(stdout.contains("`users` is active"), "{stdout}");
    DynamoDbBackend::new(server.client(), "users")
        .check_table("_key")
        .await?;

    // Again: an existing table with the same key schema is accepted.
    let again = create(&server, &["--table", "users"])?;
    ensure!(again.status.success(), "{again:?}");

    // With another partition key name, the existing table does not match.
    let other = create(&server, &["--table", "users", "--partition-key", "pk"])?;
    let stderr = String::from_utf8_lossy(&other.stderr);
    ensure!(!other.status.success(), "{other:?}");
    ensure!(stderr.contains("`pk`"), "{stderr}");

    let custom = create(&server, &["--table", "orders", "--partition-key", "pk"])?;
    ensure!(custom.status.success(), "{custom:?}");
    DynamoDbBackend::new(server.client(), "orders")
        .check_table("pk")
        .await?;
    Ok(())
}
