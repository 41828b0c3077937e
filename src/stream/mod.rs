//! Following a table's stream: its changes, in order per key, as DynamoDB Streams delivers
//! them.
//!
//! A store told to follow a stream
//! ([`StoreBuilder::follow_stream`](crate::StoreBuilder::follow_stream)) applies other writers'
//! changes to its cache. [`DynamoDbStream`] (feature `streams`) reads a DynamoDB table's stream;
//! the rest of this module is the reading side of a stream, [`ChangeStream`], for those who
//! implement it over another source: its shards, an iterator into a shard, and the records
//! after an iterator.

#[cfg(feature = "streams")]
mod dynamodb;
mod echo;

use std::time::SystemTime;

use async_trait::async_trait;

use crate::error::Result;
use crate::item::Item;

#[cfg(feature = "streams")]
pub use dynamodb::DynamoDbStream;
pub(crate) use echo::Echoes;

/// What a stream's records carry (DynamoDB's `StreamViewType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamViewType {
    /// Only the key of the changed item.
    KeysOnly,
    /// The item after the change.
    NewImage,
    /// The item before the change.
    OldImage,
    /// The item before and after the change.
    NewAndOldImages,
}

impl StreamViewType {
    /// Whether records carry the item after the change, which following needs.
    pub fn has_new_image(self) -> bool {
        matches!(
            self,
            StreamViewType::NewImage | StreamViewType::NewAndOldImages
        )
    }
}

/// One shard of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamShard {
    /// The shard's id.
    pub id: String,
    /// The shard it continues, whose records come first.
    pub parent: Option<String>,
    /// Whether the shard is closed: it takes no new records (it has an ending sequence number).
    pub closed: bool,
}

impl StreamShard {
    /// A shard, its parent and whether it is closed.
    pub fn new(id: impl Into<String>, parent: Option<String>, closed: bool) -> Self {
        Self {
            id: id.into(),
            parent,
            closed,
        }
    }
}

/// A stream's view type and all of its shards.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamDescription {
    /// What the records carry.
    pub view: StreamViewType,
    /// Every shard the stream still has, closed ones included.
    pub shards: Vec<StreamShard>,
}

impl StreamDescription {
    /// A description.
    pub fn new(view: StreamViewType, shards: Vec<StreamShard>) -> Self {
        Self { view, shards }
    }
}

/// Where a new iterator into a shard starts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamStart {
    /// After the newest record: only changes from now on.
    Latest,
    /// At the oldest record the shard still has.
    TrimHorizon,
    /// Just after the record with this sequence number.
    After(String),
}

/// The state of an item after a change, as a record tells it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StreamImage {
    /// The item after the change, with its key attributes.
    Present(Item),
    /// The change removed the item.
    Removed,
    /// The record does not say (its view type has no new image, or the image could not be
    /// read): whoever caches the item must read it again.
    Unknown,
}

/// One change of one item.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StreamRecord {
    /// The changed item's key attributes.
    pub keys: Item,
    /// The item after the change.
    pub after: StreamImage,
    /// The record's sequence number in its shard.
    pub sequence: String,
    /// When the change was made, as the stream reports it (DynamoDB rounds it down to the
    /// second).
    pub created: SystemTime,
}

impl StreamRecord {
    /// A change.
    pub fn new(
        keys: Item,
        after: StreamImage,
        sequence: impl Into<String>,
        created: SystemTime,
    ) -> Self {
        Self {
            keys,
            after,
            sequence: sequence.into(),
            created,
        }
    }
}

/// The answer to [`ChangeStream::records`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StreamRecords {
    /// The records after the iterator (perhaps none yet), and the iterator to read on from;
    /// `next` is `None` once a closed shard has been read to its end.
    Read {
        /// The records, oldest first.
        changes: Vec<StreamRecord>,
        /// Where to read next.
        next: Option<String>,
    },
    /// The iterator expired (DynamoDB's `ExpiredIteratorException`): ask for a new one.
    Expired,
    /// The iterator points at records the stream no longer keeps (DynamoDB's
    /// `TrimmedDataAccessException`): changes were missed.
    Trimmed,
}

/// The reading side of a table's change stream.
///
/// Errors are [`Error::Backend`](crate::Error::Backend), retried with backoff when transient,
/// like a [`Backend`](crate::backend::Backend)'s.
#[async_trait]
pub trait ChangeStream: Send + Sync + 'static {
    /// The stream's view type and all of its shards.
    async fn describe(&self) -> Result<StreamDescription>;

    /// An iterator into `shard`, starting at `start`.
    async fn iterator(&self, shard: &str, start: &StreamStart) -> Result<String>;

    /// The records after `iterator`.
    async fn records(&self, iterator: &str) -> Result<StreamRecords>;
}
