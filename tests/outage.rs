//! An outage of the table in the middle of a write load: dynalite (keeping its data on disk) is
//! stopped for more than 10 seconds and started again on the same port. Writers keep being
//! acknowledged while there is room and wait for room when there is not (never failing within
//! their deadline); pending memory stays within its bound; once the table is back everything
//! drains, and the table equals the model: nothing lost, nothing reordered.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{create_table, key, Dynalite, TestResult};
use parking_lot::Mutex;
use quickstore::{AttributeValue, Backpressure, DynamoDbBackend, Error, Store};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Doc {
    n: u64,
    pad: String,
}

const KEYS: u64 = 4000;
const BYTE_BOUND: u64 = 2 * 1024 * 1024;
const OUTAGE: Duration = Duration::from_secs(12);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_loses_nothing_and_memory_stays_bounded() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut server = Dynalite::start_on_disk(dir.path())?;
    let client = server.client();
    create_table(&client, "outage", "_key").await?;
    let store = Store::builder(DynamoDbBackend::new(client.clone(), "outage"))
        .flush_interval(Duration::from_millis(20))
        .max_pending_bytes(BYTE_BOUND)
        .backpressure(Backpressure::Wait(Duration::from_secs(120)))
        .open()
        .await?;

    // Each writer owns a slice of the keys and writes increasing values: the model is the last
    // value acknowledged for each key.
    let model = Arc::new(Mutex::new(HashMap::<u64, u64>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let most_pending = Arc::new(AtomicU64::new(0));
    let acknowledged = Arc::new(AtomicU64::new(0));
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..4u64 {
        let (store, model, stop) = (store.clone(), Arc::clone(&model), Arc::clone(&stop));
        let (most_pending, acknowledged) = (Arc::clone(&most_pending), Arc::clone(&acknowledged));
        writers.spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(writer);
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let id = writer + 4 * rng.random_range(0..KEYS / 4);
                n += 1;
                let doc = Doc {
                    n,
                    pad: "x".repeat(rng.random_range(100..4000)),
                };
                store.upsert(&key("Doc", id), &doc).await?;
                model.lock().insert(id, n);
                acknowledged.fetch_add(1, Ordering::Relaxed);
                most_pending.fetch_max(store.stats().pending_bytes, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            Ok::<_, Error>(())
        });
    }

    tokio::time::sleep(Duration::from_secs(2)).await;
    server.stop();
    let before_outage = acknowledged.load(Ordering::Relaxed);
    tokio::time::sleep(OUTAGE).await;
    let during_outage = acknowledged.load(Ordering::Relaxed) - before_outage;
    let pending_at_restart = store.stats();
    server.restart()?;
    // Everything acknowledged before the restart is in the table after this flush, while the
    // writers (held for room until now) go on.
    let restarted = Instant::now();
    store.flush().await?;
    let drained_in = restarted.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    while let Some(joined) = writers.join_next().await {
        joined??;
    }
    store.close().await?;
    let stats = store.stats();
    println!(
        "outage of {OUTAGE:?}: {during_outage} writes acknowledged during it, {} keys ({} bytes) \
         pending at restart, drained {drained_in:?} after restart; {} mutations, {} write \
         requests, {} retries, at most {} pending bytes (bound {BYTE_BOUND})",
        pending_at_restart.pending,
        pending_at_restart.pending_bytes,
        stats.mutations,
        stats.write_requests,
        stats.retries,
        most_pending.load(Ordering::Relaxed)
    );
    assert!(most_pending.load(Ordering::Relaxed) <= BYTE_BOUND);
    assert!(
        during_outage > 0,
        "writes were acknowledged while there was room"
    );
    assert!(
        pending_at_restart.pending_bytes > BYTE_BOUND / 2,
        "the outage never filled the store: the test proves nothing about waiting"
    );
    assert!(stats.retries > 0, "the outage was seen");

    let model = model.lock().clone();
    for (id, n) in model {
        let rendered = key("Doc", id).to_string();
        let item = client
            .get_item()
            .table_name("outage")
            .key("_key", AttributeValue::S(rendered.clone()))
            .consistent_read(true)
            .send()
            .await?
            .item
            .ok_or_else(|| format!("{rendered} was lost"))?;
        assert_eq!(
            item.get("n"),
            Some(&AttributeValue::N(n.to_string())),
            "{rendered}: the table does not hold the last acknowledged value"
        );
    }
    Ok(())
}
