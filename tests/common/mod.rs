//! The integration test harness: a real dynalite server on loopback per test (started by the
//! test itself, killed on drop, and a loud failure if it never comes up), and fixtures that run
//! one scenario against either backend. Tests that inject faults, check the requests the store
//! makes or hold its reads or writes at a gate wrap a fixture's backend in
//! `quickstore::testing::FaultyBackend` (feature `testing`).

#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod dynalite;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use quickstore::backend::Backend;
use quickstore::{DynamoDbBackend, EmbeddedBackend, Item, Key, Store, StoreBuilder};

#[allow(unused_imports)]
pub use dynalite::{client_for, Dynalite, Moto};

/// A key of `kind` with identifier `id`, for keys the tests spell out and know to be valid.
#[allow(clippy::expect_used)] // A bad literal key is a bug in the test itself.
pub fn key(kind: &str, id: impl std::fmt::Display) -> Key {
    Key::new(kind, id.to_string()).expect("test keys are valid")
}

/// A number attribute.
pub fn number(n: impl ToString) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// Errors in tests: anything, with a message.
pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Creates a table keyed the way quickstore (and the Go library) expects, and waits until it is
/// active: dynalite answers `ResourceNotFoundException` for items of a table still creating.
pub async fn create_table(client: &Client, table: &str, partition_key: &str) -> TestResult {
    DynamoDbBackend::new(client.clone(), table)
        .create_table(partition_key)
        .await?;
    Ok(())
}

static TABLES: AtomicUsize = AtomicUsize::new(0);

/// Where a scenario's items live: a dynalite table, or an embedded database.
pub enum Fixture {
    DynamoDb {
        server: Arc<Dynalite>,
        client: Client,
        table: String,
    },
    Embedded {
        _dir: tempfile::TempDir,
        backend: EmbeddedBackend,
    },
}

impl Fixture {
    /// A fresh table on a fresh dynalite server.
    pub async fn dynamodb() -> TestResult<Self> {
        Self::dynamodb_on(&Arc::new(Dynalite::start()?)).await
    }

    /// A fresh table on a running dynalite server, which the fixture shares: for tests that
    /// run many cases against one server.
    pub async fn dynamodb_on(server: &Arc<Dynalite>) -> TestResult<Self> {
        let client = server.client();
        let table = format!("quickstore-{}", TABLES.fetch_add(1, Ordering::Relaxed));
        create_table(&client, &table, "_key").await?;
        Ok(Fixture::DynamoDb {
            server: Arc::clone(server),
            client,
            table,
        })
    }

    /// A fresh table on a fresh moto server.
    pub async fn moto() -> TestResult<Self> {
        Self::dynamodb_on(&Arc::new(Dynalite::start_moto()?)).await
    }

    /// A fresh embedded database in a temporary directory.
    pub fn embedded() -> TestResult<Self> {
        let dir = tempfile::tempdir()?;
        let backend = EmbeddedBackend::open(dir.path().join("store.redb"))?;
        Ok(Fixture::Embedded { _dir: dir, backend })
    }

    /// The backend, as a store would get it.
    pub fn backend(&self) -> Arc<dyn Backend> {
        match self {
            Fixture::DynamoDb { client, table, .. } => {
                Arc::new(DynamoDbBackend::new(client.clone(), table.clone()))
            }
            Fixture::Embedded { backend, .. } => Arc::new(backend.clone()),
        }
    }

    /// A builder for a store over this fixture, with a short flush interval.
    pub fn builder(&self) -> StoreBuilder {
        Store::builder(self.backend()).flush_interval(Duration::from_millis(10))
    }

    /// A store over this fixture with the test defaults.
    pub async fn store(&self) -> TestResult<Store> {
        Ok(self.builder().open().await?)
    }

    /// Reads an item straight from the backend, bypassing any store: with the plain SDK for
    /// DynamoDB, strongly consistent.
    pub async fn read_back(&self, key: &str) -> TestResult<Option<Item>> {
        match self {
            Fixture::DynamoDb { client, table, .. } => Ok(client
                .get_item()
                .table_name(table)
                .key("_key", AttributeValue::S(key.to_owned()))
                .consistent_read(true)
                .send()
                .await?
                .item),
            Fixture::Embedded { backend, .. } => Ok(backend.get("_key", key, true).await?),
        }
    }

    /// Every item in the table, by partition key, read straight from the backend.
    pub async fn read_all(
        &self,
        keys: &[String],
    ) -> TestResult<std::collections::BTreeMap<String, Item>> {
        let mut all = std::collections::BTreeMap::new();
        for key in keys {
            if let Some(item) = self.read_back(key).await? {
                all.insert(key.clone(), item);
            }
        }
        Ok(all)
    }

    /// Writes an item straight to the backend, bypassing any store.
    pub async fn put_raw(&self, item: Item) -> TestResult {
        match self {
            Fixture::DynamoDb { client, table, .. } => {
                client
                    .put_item()
                    .table_name(table)
                    .set_item(Some(item))
                    .send()
                    .await?;
            }
            Fixture::Embedded { backend, .. } => {
                backend
                    .batch_write("_key", &[quickstore::backend::Write::Put(item)])
                    .await?;
            }
        }
        Ok(())
    }
}

/// The journal in `dir` as a crash would leave it now: a copy of its segments and its writer
/// id, taken while the store still holds the directory (so without its lock). Whatever the
/// store journaled before its last acknowledged mutation is in it.
///
/// The store may release segments (delete those the backend has all of) while the copy is
/// taken. Segments are released oldest first, so they are copied newest first and one gone
/// meanwhile is left out: only the oldest can be missing, as when a crash follows a release.
pub fn crash_copy(dir: &std::path::Path) -> TestResult<tempfile::TempDir> {
    let copy = tempfile::tempdir()?;
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|x| x == "wal") || path.ends_with("WRITER") {
            files.push(path);
        }
    }
    // A segment is named after its first sequence number, zero-padded: the newest sorts last.
    files.sort();
    for path in files.iter().rev() {
        let to = copy.path().join(path.file_name().ok_or("no name")?);
        match std::fs::copy(path, to) {
            Ok(_) => {}
            Err(err)
                if err.kind() == std::io::ErrorKind::NotFound
                    && path.extension().is_some_and(|x| x == "wal") => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(copy)
}

/// Runs each named scenario, an `async fn(Fixture) -> TestResult`, as one test per backend.
/// Attributes written before a scenario's name (such as `#[ignore = "why"]`) go on both tests.
#[allow(unused_macros)] // not every test binary runs scenarios on both backends
macro_rules! on_both_backends {
    ($($(#[$attr:meta])* $scenario:ident),* $(,)?) => {
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                $(#[$attr])*
                async fn $scenario() -> crate::common::TestResult {
                    super::$scenario(crate::common::Fixture::dynamodb().await?).await
                }
            )*
        }
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                $(#[$attr])*
                async fn $scenario() -> crate::common::TestResult {
                    super::$scenario(crate::common::Fixture::embedded()?).await
                }
            )*
        }
    };
}
