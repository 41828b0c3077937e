//! What versioned mode costs a flush, and why its writes are separate conditional `PutItem`s
//! rather than `TransactWriteItems`: 10,000 dirty keys written
//!
//! - by a default store (unconditional `BatchWriteItem`s of 25),
//! - by a versioned store (a conditional `PutItem` per key, a batch's 25 at once, 8 batches in
//!   flight),
//! - by plain SDK calls: conditional `PutItem`s, 64 in flight, and, on moto only (dynalite has
//!   no transactions), 2,000 keys as conditional `TransactWriteItems` of 25 and of 100 items
//!   against conditional `PutItem`s, one request at a time (moto's transactions fail under
//!   concurrent requests),
//!
//! against dynalite and moto's server, started here on loopback. It reports wall time,
//! requests, and the write capacity units DynamoDB would bill (1 per `PutItem` or batch item of
//! up to 1 KB, 2 per transactional item). Local servers say little about DynamoDB's own
//! latency; the request and capacity counts are what carry over.
//!
//! Run with `cargo bench --bench versioned_flush` after `scripts/test` has installed the
//! servers (or with `QUICKSTORE_DYNALITE` and `QUICKSTORE_MOTO` set).

#[path = "../tests/common/dynalite.rs"]
#[allow(dead_code)]
mod server;

use std::error::Error as StdError;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use futures_util::stream::{self, StreamExt as _};
use quickstore::{DynamoDbBackend, Key, Store};
use serde::Serialize;

type Result<T = ()> = std::result::Result<T, Box<dyn StdError + Send + Sync>>;

const KEYS: usize = 10_000;

/// Keys in the comparison with transactions, on moto.
const TRANSACTION_KEYS: usize = 2_000;

#[derive(Serialize)]
struct Doc {
    name: String,
    n: u64,
}

fn doc(i: usize) -> Doc {
    Doc {
        name: format!("document number {i:05} with a little payload"),
        n: i as u64,
    }
}

#[derive(Debug)]
struct Row {
    server: &'static str,
    how: &'static str,
    elapsed: Duration,
    requests: u64,
    units: u64,
}

async fn table(client: &Client, name: &str) -> Result<DynamoDbBackend> {
    let backend = DynamoDbBackend::new(client.clone(), name);
    backend.create_table("_key").await?;
    Ok(backend)
}

/// A store over a fresh table flushes `KEYS` dirty keys.
async fn store_flush(
    client: &Client,
    table_name: &str,
    versioned: bool,
) -> Result<(Duration, u64)> {
    let backend = table(client, table_name).await?;
    let builder = Store::builder(backend)
        .flush_interval(Duration::from_secs(3600))
        .batch_threshold(usize::MAX)
        .max_pending(KEYS * 2);
    let store = if versioned {
        builder.versioned("_version").open().await?
    } else {
        builder.open().await?
    };
    let keys: Vec<Key> = (0..KEYS)
        .map(|i| Key::new("Doc", i.to_string()))
        .collect::<std::result::Result<_, _>>()?;
    // A versioned store needs each key's state; reading it is not part of the flush.
    store.get_many_items(&keys).await?;
    for (i, key) in keys.iter().enumerate() {
        store.upsert(key, &doc(i)).await?;
    }
    let before = store.stats().write_requests;
    let started = Instant::now();
    store.flush().await?;
    let elapsed = started.elapsed();
    let requests = store.stats().write_requests - before;
    store.close().await?;
    Ok((elapsed, requests))
}

fn item(i: usize) -> Result<std::collections::HashMap<String, AttributeValue>> {
    let mut item =
        serde_dynamo::to_item::<_, std::collections::HashMap<String, AttributeValue>>(doc(i))?;
    item.insert("_key".into(), AttributeValue::S(format!("Doc{i}")));
    item.insert("_version".into(), AttributeValue::N("1".into()));
    Ok(item)
}

/// Conditional `PutItem`s, `in_flight` at a time.
async fn puts(
    client: &Client,
    table_name: &str,
    keys: usize,
    in_flight: usize,
) -> Result<(Duration, u64)> {
    table(client, table_name).await?;
    let started = Instant::now();
    let sent: Vec<Result> = stream::iter(0..keys)
        .map(|i| async move {
            client
                .put_item()
                .table_name(table_name)
                .set_item(Some(item(i)?))
                .condition_expression("attribute_not_exists(#k)")
                .expression_attribute_names("#k", "_key")
                .send()
                .await?;
            Ok(())
        })
        .buffer_unordered(in_flight)
        .collect()
        .await;
    sent.into_iter().collect::<Result>()?;
    Ok((started.elapsed(), keys as u64))
}

/// Conditional `TransactWriteItems` of `group` items, `in_flight` at a time.
async fn transactions(
    client: &Client,
    table_name: &str,
    keys: usize,
    group: usize,
    in_flight: usize,
) -> Result<(Duration, u64)> {
    table(client, table_name).await?;
    let groups: Vec<Vec<usize>> = (0..keys)
        .collect::<Vec<_>>()
        .chunks(group)
        .map(<[usize]>::to_vec)
        .collect();
    let requests = groups.len() as u64;
    let started = Instant::now();
    let sent: Vec<Result> = stream::iter(groups)
        .map(|indices| async move {
            let mut request = client.transact_write_items();
            for i in indices {
                let put = Put::builder()
                    .table_name(table_name)
                    .set_item(Some(item(i)?))
                    .condition_expression("attribute_not_exists(#k)")
                    .expression_attribute_names("#k", "_key")
                    .build()?;
                request = request.transact_items(TransactWriteItem::builder().put(put).build());
            }
            request.send().await?;
            Ok(())
        })
        .buffer_unordered(in_flight)
        .collect()
        .await;
    sent.into_iter().collect::<Result>()?;
    Ok((started.elapsed(), requests))
}

/// Prints and keeps one measurement; a failed one is reported and skipped.
fn record(
    rows: &mut Vec<Row>,
    server: &'static str,
    how: &'static str,
    units: u64,
    measured: Result<(Duration, u64)>,
) {
    match measured {
        Ok((elapsed, requests)) => {
            let row = Row {
                server,
                how,
                elapsed,
                requests,
                units,
            };
            eprintln!("{row:?}");
            rows.push(row);
        }
        Err(err) => eprintln!("{server}, {how}: failed: {err:?}"),
    }
}

async fn measure(server: &'static str, client: &Client, rows: &mut Vec<Row>) {
    let keys = KEYS as u64;
    let how = "default store: BatchWriteItem x25";
    record(
        rows,
        server,
        how,
        keys,
        store_flush(client, "default", false).await,
    );
    let how = "versioned store: conditional PutItem";
    record(
        rows,
        server,
        how,
        keys,
        store_flush(client, "versioned", true).await,
    );
    let how = "SDK: conditional PutItem, 64 in flight";
    record(
        rows,
        server,
        how,
        keys,
        puts(client, "puts", KEYS, 64).await,
    );
    if server == "moto" {
        // Fewer keys, one request at a time: each of moto's transactions copies the table to
        // roll back, which is slow on a large table and fails (HTTP 500, "dictionary changed
        // size during iteration") when another request changes the table meanwhile.
        let small = TRANSACTION_KEYS as u64;
        let how = "SDK: conditional PutItem, one at a time (2,000 keys)";
        record(
            rows,
            server,
            how,
            small,
            puts(client, "puts1", TRANSACTION_KEYS, 1).await,
        );
        let how = "SDK: TransactWriteItems x25, one at a time (2,000 keys)";
        let measured = transactions(client, "tx25", TRANSACTION_KEYS, 25, 1).await;
        record(rows, server, how, 2 * small, measured);
        let how = "SDK: TransactWriteItems x100, one at a time (2,000 keys)";
        let measured = transactions(client, "tx100", TRANSACTION_KEYS, 100, 1).await;
        record(rows, server, how, 2 * small, measured);
    }
}

fn main() -> Result {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut rows = Vec::new();
        let dynalite = server::Dynalite::start()?;
        measure("dynalite", &dynalite.client(), &mut rows).await;
        drop(dynalite);
        let moto = server::Dynalite::start_moto()?;
        measure("moto", &moto.client(), &mut rows).await;
        println!("{KEYS} dirty keys, one write each (items of about 100 bytes):\n");
        println!("| server | how | wall time | requests | write units billed |");
        println!("|---|---|---|---|---|");
        for row in rows {
            println!(
                "| {} | {} | {:.2} s | {} | {} |",
                row.server,
                row.how,
                row.elapsed.as_secs_f64(),
                row.requests,
                row.units
            );
        }
        Ok(())
    })
}
