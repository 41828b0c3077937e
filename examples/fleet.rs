//! Two stores on one table, as two instances of a service would be, in versioned mode: each
//! counts page views with `update_with`, in its own slot of the item (a sharded counter, so that
//! what a conflict drops can be told apart). A write that loses the race to the other instance
//! is not lost silently: the conflict handler is told what was dropped, and this example applies
//! the dropped views again on top of the winner's state.
//!
//! Runs on the embedded backend (one database shared by both stores), so it needs no
//! infrastructure: `cargo run --example fleet`.

use std::sync::Arc;

use parking_lot::Mutex;
use quickstore::{Change, Conflict, EmbeddedBackend, Key, Store};
use serde::{Deserialize, Serialize};

/// Views counted by each instance.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Views {
    by_instance: [u64; 2],
}

/// The views of `instance` that a conflict dropped: its count in the state this store wanted
/// to write, less its count in the state that won.
fn dropped_views(conflict: &Conflict, instance: usize) -> quickstore::Result<u64> {
    let count = |views: Option<Views>| views.unwrap_or_default().by_instance[instance];
    Ok(count(conflict.ours()?).saturating_sub(count(conflict.theirs()?)))
}

async fn instance(
    backend: EmbeddedBackend,
    lost: Arc<Mutex<Vec<Conflict>>>,
) -> quickstore::Result<Store> {
    Store::builder(backend)
        .versioned("_version")
        .on_conflict(move |conflict| lost.lock().push(conflict.clone()))
        .open()
        .await
}

async fn add_views(
    store: &Store,
    instance: usize,
    page: &Key,
    views: u64,
) -> quickstore::Result<()> {
    store
        .update_with(page, |current: Option<Views>| {
            let mut current = current.unwrap_or_default();
            current.by_instance[instance] += views;
            (Change::Put(current), ())
        })
        .await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let backend = EmbeddedBackend::open(dir.path().join("views.redb"))?;
    let page = Key::new("Page", "home")?;
    let conflicts = [Arc::default(), Arc::default()];
    let stores = [
        instance(backend.clone(), Arc::clone(&conflicts[0])).await?,
        instance(backend.clone(), Arc::clone(&conflicts[1])).await?,
    ];

    // Each instance counts 100 views, flushing every 10.
    let serve = |instance: usize| {
        let (store, page) = (stores[instance].clone(), page.clone());
        async move {
            for view in 1..=100 {
                add_views(&store, instance, &page, 1).await?;
                if view % 10 == 0 {
                    store.flush().await?;
                }
            }
            Ok::<(), quickstore::Error>(())
        }
    };
    tokio::try_join!(serve(0), serve(1))?;

    // Views dropped by lost races are reported: count them again, on top of the winner's state,
    // until no write loses. (A live service would do this as conflicts come in.)
    loop {
        let mut reapplied = 0;
        for (instance, store) in stores.iter().enumerate() {
            let dropped: Vec<Conflict> = std::mem::take(&mut *conflicts[instance].lock());
            let mut views = 0;
            for conflict in &dropped {
                views += dropped_views(conflict, instance)?;
            }
            if views == 0 {
                continue;
            }
            println!(
                "instance {instance}: {} conflicts dropped {views} views; applying them again",
                dropped.len()
            );
            store.refresh(&page).await?;
            add_views(store, instance, &page, views).await?;
            store.flush().await?;
            reapplied += views;
        }
        if reapplied == 0 {
            break;
        }
    }
    for store in &stores {
        store.close().await?;
    }

    let reader = Store::builder(backend).open().await?;
    let views: Option<Views> = reader.get(&page).await?;
    let total = views.map(|v| v.by_instance.iter().sum::<u64>());
    println!("200 views counted by two instances; the table holds {total:?}");
    reader.close().await?;
    Ok(())
}
