//! Following the table's stream (moto's server, which has DynamoDB Streams; dynalite has none):
//! another writer's changes reach the store's cached entries, and the store's own writes
//! coming back through the stream cost nothing.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, StreamSpecification, StreamViewType,
};
use aws_sdk_dynamodb::Client;
use common::{key, Dynalite, TestResult};
use quickstore::stream::DynamoDbStream;
use quickstore::{Delta, DynamoDbBackend, Error, Item, Store, StoreBuilder};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Doc {
    n: i64,
}

/// How long a change may take to come through the stream before the test gives up: generous,
/// since it only bounds a failing run.
const PATIENCE: Duration = Duration::from_secs(60);

/// A moto server with a table whose stream has the view type `view`.
async fn table_with_stream(view: StreamViewType) -> TestResult<(Dynalite, Client)> {
    let server = Dynalite::start_moto()?;
    let client = server.client();
    client
        .create_table()
        .table_name("t")
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("_key")
                .key_type(KeyType::Hash)
                .build()?,
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("_key")
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        )
        .billing_mode(BillingMode::PayPerRequest)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(view)
                .build()?,
        )
        .send()
        .await?;
    Ok((server, client))
}

fn streams_client(server: &Dynalite) -> aws_sdk_dynamodbstreams::Client {
    let config = aws_sdk_dynamodbstreams::Config::builder()
        .behavior_version(aws_sdk_dynamodbstreams::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodbstreams::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodbstreams::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .endpoint_url(server.endpoint())
        .build();
    aws_sdk_dynamodbstreams::Client::from_conf(config)
}

async fn following(server: &Dynalite, client: &Client) -> TestResult<StoreBuilder> {
    let stream = DynamoDbStream::of_table(streams_client(server), client, "t").await?;
    Ok(Store::builder(DynamoDbBackend::new(client.clone(), "t"))
        .flush_interval(Duration::from_millis(10))
        .stream_poll_interval(Duration::from_millis(20))
        .follow_stream(stream))
}

/// Waits until `done` holds of the store's stats.
async fn until(store: &Store, what: &str, done: impl Fn(&quickstore::Stats) -> bool) -> TestResult {
    let start = Instant::now();
    while !done(&store.stats()) {
        if start.elapsed() > PATIENCE {
            return Err(format!("{what}: not after {PATIENCE:?}; {:?}", store.stats()).into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Writes `n` under `key` with the plain SDK, as a program that bypasses the store would.
async fn write_directly(client: &Client, key: &str, n: Option<i64>) -> TestResult {
    match n {
        Some(n) => {
            let item = Item::from([
                ("_key".to_string(), AttributeValue::S(key.to_owned())),
                ("n".to_string(), AttributeValue::N(n.to_string())),
            ]);
            client
                .put_item()
                .table_name("t")
                .set_item(Some(item))
                .send()
                .await?;
        }
        None => {
            client
                .delete_item()
                .table_name("t")
                .key("_key", AttributeValue::S(key.to_owned()))
                .send()
                .await?;
        }
    }
    Ok(())
}

/// The scenario: the store writes and caches keys, its writes come back through the stream
/// without invalidating anything, then another writer changes and deletes some of them and
/// the store's reads show the changes.
async fn another_writers_changes_reach_the_cache(
    builder: StoreBuilder,
    client: &Client,
) -> TestResult<Store> {
    let store = builder.open().await?;
    let keys: Vec<_> = (0..8).map(|i| key("Doc", i)).collect();
    for (i, key) in keys.iter().enumerate() {
        store.upsert(key, &Doc { n: i as i64 }).await?;
    }
    store.flush().await?;
    until(&store, "the store's own writes came back", |s| {
        s.stream_records >= 8
    })
    .await?;
    let before = store.stats();
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(store.get::<Doc>(key).await?, Some(Doc { n: i as i64 }));
    }
    let after = store.stats();
    assert_eq!(
        before.stream_invalidated, 0,
        "own writes are not taken for others'"
    );
    assert_eq!(before.stream_replaced, 0);
    assert_eq!(
        after.backend_reads, before.backend_reads,
        "every read was a hit"
    );

    for key in &keys[..4] {
        write_directly(client, key.as_str(), Some(100)).await?;
    }
    write_directly(client, keys[4].as_str(), None).await?;
    let start = Instant::now();
    loop {
        let mut seen = Vec::new();
        for key in &keys[..5] {
            seen.push(store.get::<Doc>(key).await?);
        }
        let expected = [
            Some(Doc { n: 100 }),
            Some(Doc { n: 100 }),
            Some(Doc { n: 100 }),
            Some(Doc { n: 100 }),
            None,
        ];
        if seen == expected {
            break;
        }
        if start.elapsed() > PATIENCE {
            return Err(format!("reads show {seen:?}, not the other writer's changes").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Keys the other writer did not touch were never dropped.
    for (i, key) in keys.iter().enumerate().skip(5) {
        assert_eq!(store.get::<Doc>(key).await?, Some(Doc { n: i as i64 }));
    }
    let stats = store.stats();
    assert_eq!(
        stats.stream_replaced + stats.stream_invalidated,
        5,
        "{stats:?}"
    );
    assert!(stats.stream_lag.is_some());
    Ok(store)
}

#[tokio::test]
async fn another_writers_changes_reach_the_cache_and_own_writes_are_not_echoed() -> TestResult {
    let (server, client) = table_with_stream(StreamViewType::NewAndOldImages).await?;
    let store =
        another_writers_changes_reach_the_cache(following(&server, &client).await?, &client)
            .await?;
    store.close().await?;
    Ok(())
}

/// With no clock margin, a change made after the store read the key replaces its cached state
/// in place: no read goes to the table.
#[tokio::test]
async fn newer_changes_replace_cached_state_in_place() -> TestResult {
    let (server, client) = table_with_stream(StreamViewType::NewImage).await?;
    let builder = following(&server, &client)
        .await?
        .stream_clock_margin(Duration::ZERO);
    let store = another_writers_changes_reach_the_cache(builder, &client).await?;
    let stats = store.stats();
    assert_eq!(stats.stream_replaced, 5, "{stats:?}");
    store.close().await?;
    Ok(())
}

/// In versioned mode the store's own writes carry versions; they come back without
/// invalidating anything, and the other writer's changes reach the cache.
#[tokio::test]
async fn versioned_stores_follow_the_stream_too() -> TestResult {
    let (server, client) = table_with_stream(StreamViewType::NewAndOldImages).await?;
    let builder = following(&server, &client).await?.versioned("_v");
    let store = another_writers_changes_reach_the_cache(builder, &client).await?;
    // The store builds on the other writer's state, conditionally.
    let key = key("Doc", 0);
    store.update(&key, &Doc { n: 101 }).await?;
    store.flush().await?;
    assert_eq!(store.stats().conflicts, 0);
    store.close().await?;
    Ok(())
}

/// A following store's own deltas come back in the stream as the items their writes answered
/// with: they are recognised and change nothing, while another writer's increment of the same
/// counter reaches the cache.
#[tokio::test]
async fn own_deltas_are_not_echoed_and_other_increments_arrive() -> TestResult {
    let (server, client) = table_with_stream(StreamViewType::NewAndOldImages).await?;
    let store = following(&server, &client).await?.open().await?;
    let counter = key("Doc", 1);
    for _ in 0..10 {
        store.apply(&counter, Delta::new().add("n", 1)).await?;
    }
    store.flush().await?;
    until(&store, "the stream shows the store's own write", |stats| {
        stats.stream_records >= 1
    })
    .await?;
    client
        .update_item()
        .table_name("t")
        .key("_key", AttributeValue::S(counter.as_str().to_owned()))
        .update_expression("ADD n :five")
        .expression_attribute_values(":five", AttributeValue::N("5".into()))
        .send()
        .await?;
    until(&store, "the other writer's increment arrives", |stats| {
        stats.stream_records >= 2
    })
    .await?;
    let start = Instant::now();
    while store.get::<Doc>(&counter).await? != Some(Doc { n: 15 }) {
        if start.elapsed() > PATIENCE {
            return Err("the other writer's increment never reached the cache".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = store.stats();
    assert_eq!(
        stats.stream_replaced + stats.stream_invalidated,
        1,
        "only the other writer's change: {stats:?}"
    );
    store.close().await?;
    Ok(())
}

#[tokio::test]
async fn streams_without_new_images_are_refused() -> TestResult {
    let (server, client) = table_with_stream(StreamViewType::KeysOnly).await?;
    let refused = following(&server, &client).await?.open().await;
    assert!(
        matches!(refused, Err(Error::Validation { .. })),
        "{refused:?}"
    );
    Ok(())
}

#[tokio::test]
async fn tables_without_a_stream_are_refused() -> TestResult {
    let server = Dynalite::start_moto()?;
    let client = server.client();
    common::create_table(&client, "t", "_key").await?;
    let refused = DynamoDbStream::of_table(streams_client(&server), &client, "t").await;
    assert!(
        matches!(refused, Err(Error::Validation { .. })),
        "{refused:?}"
    );
    Ok(())
}

#[tokio::test]
async fn stream_options_without_a_stream_are_refused() -> TestResult {
    let server = Dynalite::start_moto()?;
    let client = server.client();
    common::create_table(&client, "t", "_key").await?;
    let refused = Store::builder(DynamoDbBackend::new(client, "t"))
        .stream_poll_interval(Duration::from_millis(5))
        .open()
        .await;
    assert!(
        matches!(refused, Err(Error::Validation { .. })),
        "{refused:?}"
    );
    Ok(())
}
