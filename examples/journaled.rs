//! A store over the embedded backend with a crash journal: write, read back, and see the
//! journal emptied once everything is in the backend.
//!
//! Run with `cargo run --example journaled`.

use quickstore::{Durability, EmbeddedBackend, Key, Store};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Order {
    item: String,
    quantity: u32,
}

fn order(item: &str, quantity: u32) -> Order {
    Order {
        item: item.into(),
        quantity,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let backend = EmbeddedBackend::open(dir.path().join("orders.redb"))?;
    let store = Store::builder(backend)
        .journal(dir.path().join("journal"))
        .durability(Durability::Always)
        .open()
        .await?;

    let customer = Key::new("Customer", "ada")?;
    for (n, item) in ["tea", "scones", "jam"].into_iter().enumerate() {
        // Acknowledged once journaled and cached; written to the backend in the background.
        let key = Key::with_parent(&customer, "Order", n.to_string())?;
        store.insert(&key, &order(item, 1)).await?;
    }
    let first = Key::with_parent(&customer, "Order", "0")?;
    store.update(&first, &order("tea", 2)).await?;

    let read: Option<Order> = store.get(&first).await?;
    println!("{first} -> {read:?}");
    let stats = store.stats();
    println!(
        "{} mutations acknowledged, {} pending, journal: {} segment(s), {} bytes",
        stats.mutations, stats.pending, stats.journal_segments, stats.journal_bytes
    );

    store.close().await?;
    let stats = store.stats();
    println!(
        "after close: {} items written in {} requests, journal: {} segment(s)",
        stats.items_written, stats.write_requests, stats.journal_segments
    );
    Ok(())
}
