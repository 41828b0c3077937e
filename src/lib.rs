//! # quickstore
//!
//! A fast, sharded, write-back cache in front of Amazon DynamoDB.
//!
//! Reads of cached items never leave memory; misses read through to the table once, however
//! many tasks ask at the same time, and absent items are cached too. Mutations are applied to
//! the cache and acknowledged without waiting for DynamoDB (an `insert` or `update` of a key the
//! store does not hold reads it first), then written to DynamoDB in the background: coalesced
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
//! let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
//!     .load()
//!     .await;
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
//! Mutations are acknowledged from memory once the store knows what they need: `upsert` and
//! `delete` at once; `insert` and `update`, which depend on whether the item exists, read a key
//! the store does not hold (never read, evicted, or older than
//! [`max_staleness`](StoreBuilder::max_staleness)) from the backend first. In versioned mode
//! every mutation of a key the store does not hold reads it first, to learn its version.
//!
//! ## Keys
//! A [`Key`] has a parent, a kind and an identifier, rendered into one string partition key
//! exactly as the Go library of the same name renders it, so tables it wrote read back. Keys are
//! checked when built. A key's identity is its rendered form: keys that render alike are equal
//! and name one item. [`Kinds`] parses rendered keys back (and, given to a store, refuses keys
//! that would read back with other parts); [`escape_identifier`] lets an identifier hold a `.`;
//! a key stored inside a value is written as its rendered string and read back as a
//! [`RenderedKey`].
//!
//! ## Guarantees
//! - **Read your writes**: a read never returns a state older than the last acknowledged
//!   mutation of its key. Pending (dirty) entries are never evicted.
//! - **Ordered writes per key**: one write of a key is in flight at a time, so an older state
//!   never lands over a newer one.
//! - **Nothing dropped silently**: transient failures are retried until they succeed; writes
//!   the backend refuses for good are logged, counted in [`Stats::rejected_writes`], handed
//!   to [`StoreBuilder::on_refused`] and reported by the next [`Store::flush`] or
//!   [`Store::close`].
//! - **Crash safety with a journal**: with [`StoreBuilder::journal`], every mutation is
//!   journaled before it is acknowledged ([`Durability`] says when it is on disk), and `open`
//!   re-applies whatever the backend had not received. Without a journal, a crash loses the
//!   mutations not yet flushed.
//! - **One writer per key, or versioned mode**: by default the store assumes no other program
//!   writes the keys it mutates; with [`StoreBuilder::versioned`], every write is conditional
//!   on the version the store last saw and a lost race is reported as a [`Conflict`]. See
//!   [`Store`] and docs/GUARANTEES.md.
//!
//! ## Observability
//!
//! - **[`Stats`]**: [`Store::stats`] is a snapshot of the store's counters and gauges;
//!   [`Stats::since`] gives the activity between two snapshots, and `Stats` serializes with
//!   `serde`.
//! - **Logs and spans** through `tracing`: refused writes and conflicts are logged at `error`
//!   and `warn`, retries at `debug`. Loads run in `load` spans (`key`, `keys`, `attempts`,
//!   `outcome`: `found`, `absent` or `error`) and `load_batch` spans (`keys`, `attempts`,
//!   `found`, `outcome`: `ok` or `error`), the flusher's batches in `flush_batch` spans
//!   (`writes`, `versioned`, `requests`, `written`, `refused`, `conflicts`, `outcome`:
//!   `written`, `refused`, `conflicts` or `mixed`), all at `debug`; [`Store::flush`] and
//!   [`Store::close`] run in `flush` and `close` spans at `info` (`pending`, `outcome`: `ok` or
//!   `error`). Fields known only at the end are recorded then.
//! - **Metrics** through the [`metrics`](https://docs.rs/metrics) facade: install any
//!   recorder (a Prometheus exporter, say) and the store's metrics appear; without one they
//!   cost nothing. Cache hits and acknowledgements record nothing themselves: the flusher
//!   publishes the counters the store keeps anyway as totals (`Counter::absolute`), and the
//!   gauges, every second and when the store closes; each flush batch records its duration
//!   and size, and each read request sent to the backend the keys it asked for. The
//!   metrics have no labels, unless [`StoreBuilder::metrics_label`] gives the store one
//!   (`store`).
//! - **Refused writes** are handed to [`StoreBuilder::on_refused`], conflicts to
//!   [`StoreBuilder::on_conflict`].
//!
//! | metric | kind | meaning |
//! |---|---|---|
//! | `quickstore_hits_total` | counter | lookups answered from memory |
//! | `quickstore_misses_total` | counter | lookups that needed the backend (their own read, or one they waited for) |
//! | `quickstore_prefetch_hits_total` | counter | prefetched keys (`prefetch`, warm restart) that were then hit, each once |
//! | `quickstore_backend_reads_total` | counter | keys read from the backend |
//! | `quickstore_read_requests_total` | counter | `GetItem` and `BatchGetItem` requests, retries included |
//! | `quickstore_prefetched_total` | counter | keys read into the cache by `prefetch` or a warm restart (neither hits nor misses) |
//! | `quickstore_mutations_total` | counter | mutations acknowledged |
//! | `quickstore_write_requests_total` | counter | `BatchWriteItem` requests (versioned mode: `PutItem` and `DeleteItem`), and `UpdateItem`s of deltas, retries included |
//! | `quickstore_items_written_total` | counter | item writes the backend accepted; fewer than the mutations when writes coalesce |
//! | `quickstore_retries_total` | counter | requests repeated after throttling, unprocessed items or transient failures |
//! | `quickstore_throttles_total` | counter | requests the backend throttled (each one a retry too) |
//! | `quickstore_conflicts_total` | counter | versioned writes that lost the race to another writer |
//! | `quickstore_refused_writes_total` | counter | writes the backend refused for good |
//! | `quickstore_stream_records_total` | counter | stream following: records read |
//! | `quickstore_stream_replaced_total` | counter | stream following: clean entries replaced by another writer's newer state |
//! | `quickstore_stream_invalidated_total` | counter | stream following: clean entries dropped because another writer changed them |
//! | `quickstore_stream_errors_total` | counter | stream following: failed stream requests (retried) |
//! | `quickstore_stream_resets_total` | counter | stream following: times the follower lost its place and dropped every clean entry |
//! | `quickstore_pending_keys` | gauge | keys with mutations not yet in the backend |
//! | `quickstore_pending_bytes` | gauge | bytes held by pending keys |
//! | `quickstore_max_pending_keys` | gauge | the configured `max_pending` |
//! | `quickstore_max_pending_bytes` | gauge | the configured `max_pending_bytes` |
//! | `quickstore_oldest_pending_seconds` | gauge | how long the oldest pending mutation has waited (to within a second) |
//! | `quickstore_cached_entries` | gauge | clean entries in the cache |
//! | `quickstore_cached_bytes` | gauge | bytes held by clean entries |
//! | `quickstore_read_limit` | gauge | read requests allowed in flight for loads now: `max_reads_in_flight`, lowered while the backend slows down under load |
//! | `quickstore_journal_bytes` | gauge | with a journal: bytes of segments on disk |
//! | `quickstore_journal_segments` | gauge | with a journal: segments on disk |
//! | `quickstore_stream_lag_seconds` | gauge | stream following: the follower's lag at its last poll |
//! | `quickstore_flush_batch_seconds` | histogram | how long each flush batch took, retries included |
//! | `quickstore_flush_batch_writes` | histogram | writes in each flush batch |
//! | `quickstore_read_request_keys` | histogram | keys asked for in each read request (`GetItem`: 1; `BatchGetItem`: up to 100), retries included |
//!
//! The README's "Operations" section says what to alert on.
//!
//! ## Features
//!
//! | feature | default | what it adds | cost |
//! |---|---|---|---|
//! | `embedded` | yes | `EmbeddedBackend`, a local redb database, for tools, tests and the CLI | the `redb` crate |
//! | `streams` | no | `DynamoDbStream`, to follow a table's DynamoDB stream | the `aws-sdk-dynamodbstreams` crate (it shares the AWS SDK's runtime with `aws-sdk-dynamodb`) |
//! | `testing` | no | `quickstore::testing`: `MemoryBackend`, a table in memory that keeps DynamoDB's rules; `FaultyBackend`, a wrapper around any backend that injects throttling, partial batches, latency, timeouts, connection resets, permanent errors and refused writes from a seed, records and checks the store's requests, and holds reads or writes at a `Gate` | none (`parking_lot` and `rand` are dependencies already) |
//!
//! The crate uses `aws-sdk-dynamodb` without its default features: the application's own
//! client (usually built with `aws-config`) brings the HTTP and TLS stack, so there is only one.

#![forbid(unsafe_code)]
// docs.rs marks what each feature adds.
#![cfg_attr(docsrs, feature(doc_cfg))]

/// The README's examples, compiled as doctests so that they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The migration guide's examples, compiled (and those that need no table run) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/MIGRATING-FROM-GO.md")]
struct MigratingDoctests;

// Each module uses only those before it in this order (docs/design.md, "Layout"): key, error,
// item, codec, backend, stream, version, stored, journal, retry, options, stats,
// telemetry, shard, shared, load, warm, flusher, follow, write, store, builder, testing.
pub mod backend;
mod builder;
mod codec;
mod delta;
mod error;
mod flusher;
mod follow;
mod item;
pub mod journal;
mod key;
mod load;
mod lock;
mod options;
mod resume;
mod retry;
mod shard;
mod shared;
mod stats;
mod store;
mod stored;
pub mod stream;
mod telemetry;
mod version;
mod warm;
mod write;

#[cfg(feature = "testing")]
pub mod testing;

#[doc(hidden)]
pub mod internals;

pub use backend::DynamoDbBackend;
#[cfg(feature = "embedded")]
pub use backend::EmbeddedBackend;
pub use builder::StoreBuilder;
pub use delta::{Action, Delta};
pub use error::{BackendError, Cause, Error, Refusals, Report, Result};
pub use item::{size as item_size, Item, MAX_ITEM_BYTES, MAX_NESTING_DEPTH};
pub use journal::Durability;
pub use key::{
    escape_identifier, rand_identifier, unescape_identifier, Key, KeyError, Kinds, RenderedKey,
    MAX_KEY_BYTES,
};
pub use options::Backpressure;
pub use retry::RetryPolicy;
pub use stats::Stats;
pub use store::Store;
pub use telemetry::Refused;
pub use version::Conflict;
pub use write::Change;

/// The AWS SDK's attribute value, re-exported for building and reading [`Item`]s.
pub use aws_sdk_dynamodb::types::AttributeValue;
