//! # quickstore
//!
//! A fast, sharded, write-back cache in front of Amazon DynamoDB.
//!
//! Reads of cached items never leave memory; misses read through to the table once, however
//! many tasks ask at the same time, and absent items are cached too. Mutations are applied to
//! the cache and acknowledged at once, then written to DynamoDB in the background: coalesced
//! per key (only the newest state is written), batched 25 to a `BatchWriteItem`, with several
//! batches in flight, and retried through throttling and outages.
//!
//! ```no_run
//! use quickstore::{DynamoDbBackend, Key, Store};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct User { name: String }
//!
//! # async fn example() -> quickstore::Result<()> {
//! let config = aws_config::load_from_env().await;
//! let backend = DynamoDbBackend::new(aws_sdk_dynamodb::Client::new(&config), "users");
//! let store = Store::builder(backend).open().await?;
//! let key = Key::new("User", "ada")?;                        // checked when built
//! store.upsert(&key, &User { name: "Ada".into() }).await?;   // acknowledged from memory
//! let user: Option<User> = store.get(&key).await?;           // served from memory
//! store.close().await?;                                      // drains to DynamoDB
//! # Ok(()) }
//! ```
//!
//! ## Reads and writes
//! [`Store::get`] returns `Ok(None)` for an absent key; [`Store::get_item`] hands out the cached
//! item itself (an [`Arc`](std::sync::Arc)), so a hit costs a reference count, and typed reads
//! deserialize from it in place. Writes come typed (`insert`, `update`, `upsert`, any
//! `Serialize` value that is a map) and raw (`insert_item`, `update_item`, `upsert_item`, an
//! [`Item`]), both checked the way DynamoDB would check them. `insert` fails with
//! [`Error::ItemExisted`] and `update` with [`Error::ItemNotExisted`], as in the Go library.
//!
//! ## Keys
//! A [`Key`] has a parent, a kind and an identifier, rendered into one string partition key
//! exactly as the Go library of the same name renders it, so tables it wrote read back. Keys are
//! checked when built. [`Kinds`] parses rendered keys back; a key stored inside a value is
//! written as its rendered string and read back as a [`RenderedKey`].
//!
//! ## Guarantees
//! - **Read your writes**: a read never returns a state older than the last acknowledged
//!   mutation of its key. Pending (dirty) entries are never evicted.
//! - **Ordered writes per key**: one write of a key is in flight at a time, so an older state
//!   never lands over a newer one.
//! - **Nothing dropped silently**: transient failures are retried until they succeed; writes
//!   the backend refuses for good are logged, counted in [`Stats::rejected_writes`] and
//!   reported by the next [`Store::flush`] or [`Store::close`].
//! - **Crash safety with a journal**: with [`StoreBuilder::journal`], every mutation is
//!   journaled before it is acknowledged ([`Durability`] says when it is on disk), and `open`
//!   re-applies whatever the backend had not received. Without a journal, a crash loses the
//!   mutations not yet flushed.
//! - **One writer per key, or versioned mode**: by default the store assumes no other program
//!   writes the keys it mutates; with [`StoreBuilder::versioned`], every write is conditional
//!   on the version the store last saw and a lost race is reported as a [`Conflict`]. See
//!   [`Store`] and docs/GUARANTEES.md.
//!
//! ## Features
//!
//! | feature | default | what it adds | cost |
//! |---|---|---|---|
//! | `embedded` | yes | [`EmbeddedBackend`], a local redb database, for tools, tests and the CLI | the `redb` crate |
//! | `streams` | yes | [`DynamoDbStream`], to follow a table's DynamoDB stream | the `aws-sdk-dynamodbstreams` crate (it shares the AWS SDK's runtime with `aws-sdk-dynamodb`) |
//! | `testing` | no | `quickstore::testing`: `FaultyBackend`, a wrapper around any backend that injects throttling, partial batches, latency, timeouts, connection resets, permanent errors and refused writes from a seed, and records and checks the store's requests | none (`parking_lot` and `rand` are dependencies already) |
//!
//! The crate uses `aws-sdk-dynamodb` without its default features: the application's own
//! client (usually built with `aws-config`) brings the HTTP and TLS stack, so there is only one.

#![forbid(unsafe_code)]

/// The README's examples, compiled as doctests so that they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

// Each module uses only those before it in this order (docs/design.md, "Layout"): key, error,
// item, codec, backend, stream, version, journal, retry, options, stats, shard, shared, load,
// flusher, follow, write, store, builder, testing.
mod backend;
mod builder;
mod codec;
mod error;
mod flusher;
mod follow;
mod item;
mod journal;
mod key;
mod load;
mod options;
mod retry;
mod shard;
mod shared;
mod stats;
mod store;
mod stream;
mod version;
mod write;

#[cfg(feature = "testing")]
pub mod testing;

#[doc(hidden)]
pub mod internals;

#[cfg(feature = "embedded")]
pub use backend::EmbeddedBackend;
pub use backend::{
    Backend, BatchGet, Condition, Conditional, DynamoDbBackend, Write, MAX_BATCH_GET_KEYS,
    MAX_BATCH_WRITE_ITEMS,
};
pub use builder::StoreBuilder;
pub use error::{BackendError, Cause, Error, Refusals, Report, Result};
pub use item::{size as item_size, Item, MAX_ITEM_BYTES, MAX_NESTING_DEPTH};
pub use journal::{
    inspect_journal, DeadLetterSummary, Durability, JournalDamage, JournalSummary, Recovery,
    RecoveryReport, SegmentSummary, DEAD_LETTERS,
};
pub use key::{rand_identifier, Key, KeyError, Kinds, RenderedKey, MAX_KEY_BYTES};
pub use options::Backpressure;
pub use retry::RetryPolicy;
pub use stats::Stats;
pub use store::Store;
#[cfg(feature = "streams")]
pub use stream::DynamoDbStream;
pub use stream::{
    ChangeStream, StreamDescription, StreamImage, StreamRecord, StreamRecords, StreamShard,
    StreamStart, StreamViewType,
};
pub use version::Conflict;
pub use write::Change;

/// The AWS SDK's attribute value, re-exported for building and reading [`Item`]s.
pub use aws_sdk_dynamodb::types::AttributeValue;
