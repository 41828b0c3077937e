//! Three stores on one table, as three instances of a service would be, in versioned mode:
//! each counts page views with `apply`, a delta DynamoDB adds on the server. Nothing is read
//! before the write, no write conflicts with another instance's, and nothing has to be applied
//! again: the table ends with every view counted once. Each instance's pending increments of
//! the page go out as one `UpdateItem` per flush.
//!
//! Runs on the embedded backend (one database shared by the stores), so it needs no
//! infrastructure: `cargo run --example fleet`.

use quickstore::{Delta, EmbeddedBackend, Key, Store};
use serde::Deserialize;

/// What the page's item holds.
#[derive(Debug, Deserialize)]
struct Page {
    views: u64,
}

const INSTANCES: usize = 3;
const VIEWS: u64 = 1_000;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let backend = EmbeddedBackend::open(dir.path().join("views.redb"))?;
    let page = Key::new("Page", "home")?;
    let mut stores = Vec::new();
    for _ in 0..INSTANCES {
        stores.push(
            Store::builder(backend.clone())
                .versioned("_version")
                .open()
                .await?,
        );
    }

    // Each instance counts its views, flushing every 100 as its flusher would now and then.
    let mut serving = tokio::task::JoinSet::new();
    for store in &stores {
        let (store, page) = (store.clone(), page.clone());
        serving.spawn(async move {
            for view in 1..=VIEWS {
                store.apply(&page, Delta::new().add("views", 1)).await?;
                if view % 100 == 0 {
                    store.flush().await?;
                }
            }
            Ok::<(), quickstore::Error>(())
        });
    }
    while let Some(served) = serving.join_next().await {
        served??;
    }
    let (mut requests, mut conflicts) = (0, 0);
    for store in &stores {
        store.close().await?;
        requests += store.stats().write_requests;
        conflicts += store.stats().conflicts;
    }

    let reader = Store::builder(backend).open().await?;
    let views = reader.get::<Page>(&page).await?.map_or(0, |p| p.views);
    println!(
        "{} views counted by {INSTANCES} instances in {requests} write requests, with \
         {conflicts} conflicts; the table holds {views}",
        INSTANCES as u64 * VIEWS
    );
    reader.close().await?;
    if views != INSTANCES as u64 * VIEWS {
        return Err(format!("the table holds {views} views").into());
    }
    Ok(())
}
