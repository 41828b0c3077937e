//! Following the table's change stream: other writers' changes reach clean cache entries.
//!
//! The follower reads every shard of the stream, parents before children (a key's changes
//! stay in order across shard splits and rollovers), starting at the newest record when the
//! store opens. Each change is handed to the key's shard ([`Shard::follow`]), unless it is one
//! of this store's own writes, which the flusher announced beforehand ([`Echoes`]).
//!
//! Whenever the follower may have missed changes (an iterator that expired before any record
//! was read, records trimmed from the stream, a stream that failed for good), it takes new
//! iterators first and then drops every clean entry, so that nothing missed can be served.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::future::join_all;
use tokio::time::Instant;

use crate::backend::string_attribute;
use crate::error::{Error, Result};
use crate::retry::{Backoff, RetryPolicy};
use crate::shard::{Followed, Observed};
use crate::shared::Shared;
use crate::stream::{
    ChangeStream, StreamImage, StreamRecord, StreamRecords, StreamShard, StreamStart,
};

/// How often the stream's shards are listed again, besides whenever a shard ends.
const DISCOVER_EVERY: Duration = Duration::from_secs(60);

/// How far a shard has been read.
enum Read {
    /// Its parent is still being read; it starts at its beginning once the parent has ended.
    AfterParent,
    /// Reading on from `iterator`; `last` is the newest record read, `start` where reading
    /// began (to start again if the iterator expires before any record).
    At {
        iterator: String,
        last: Option<String>,
        start: StreamStart,
    },
    /// Closed and read to its end (or ended before the store opened).
    Done,
}

struct Tracked {
    parent: Option<String>,
    read: Read,
}

/// A stream being followed, ready to run.
pub(crate) struct Follower {
    stream: Arc<dyn ChangeStream>,
    shards: HashMap<String, Tracked>,
    /// A point on both clocks, to place the stream's wall-clock times on the monotonic one.
    anchor: (SystemTime, Instant),
    discover_at: Instant,
    backoff: Backoff,
}

impl Follower {
    /// Lists the stream's shards and takes an iterator at the newest record of each open one,
    /// so that every change from now on is seen. Fails if the stream's records do not carry
    /// new images.
    pub(crate) async fn start(stream: Arc<dyn ChangeStream>) -> Result<Self> {
        let mut backoff = Backoff::default();
        let description = loop {
            match stream.describe().await {
                Ok(description) => break description,
                Err(err)
                    if err.is_retryable()
                        && backoff.attempts() + 1 < RetryPolicy::default().read_attempts =>
                {
                    backoff.wait().await;
                }
                Err(err) => return Err(err),
            }
        };
        if !description.view.has_new_image() {
            return Err(Error::validation(format!(
                "the stream's view type is {:?}: following needs NEW_IMAGE or \
                 NEW_AND_OLD_IMAGES, so that the store can tell its own writes from other \
                 writers' changes",
                description.view
            )));
        }
        let mut follower = Self {
            stream,
            shards: HashMap::new(),
            anchor: (SystemTime::now(), Instant::now()),
            discover_at: Instant::now() + DISCOVER_EVERY,
            backoff: Backoff::default(),
        };
        for shard in description.shards {
            let read = if shard.closed {
                Read::Done
            } else {
                follower.open(&shard.id, StreamStart::Latest).await?
            };
            follower.shards.insert(
                shard.id,
                Tracked {
                    parent: shard.parent,
                    read,
                },
            );
        }
        Ok(follower)
    }

    /// Follows the stream until the task is aborted.
    pub(crate) async fn run(mut self, shared: Arc<Shared>) {
        loop {
            let found = self.round(&shared).await;
            if !found {
                tokio::time::sleep(shared.options().stream_poll_interval).await;
            }
        }
    }

    /// Reads every readable shard once and applies what it finds. Returns whether any record
    /// was found.
    async fn round(&mut self, shared: &Shared) -> bool {
        if Instant::now() >= self.discover_at {
            self.discover(shared).await;
        }
        self.start_children(shared).await;
        let reading: Vec<(String, String)> = self
            .shards
            .iter()
            .filter_map(|(id, tracked)| match &tracked.read {
                Read::At { iterator, .. } => Some((id.clone(), iterator.clone())),
                _ => None,
            })
            .collect();
        let stream = Arc::clone(&self.stream);
        let answers = join_all(reading.iter().map(|(_, iterator)| stream.records(iterator))).await;
        let mut found = false;
        let mut failed = false;
        for ((id, _), answer) in reading.into_iter().zip(answers) {
            match answer {
                Ok(StreamRecords::Read { changes, next }) => {
                    found |= !changes.is_empty();
                    self.read(shared, &id, changes, next);
                }
                Ok(StreamRecords::Expired) => self.expired(shared, &id).await,
                Ok(StreamRecords::Trimmed) => {
                    tracing::warn!(shard = %id, "stream records were trimmed before they were read; reading the shard from its oldest record and dropping every clean entry");
                    self.restart_shard(shared, &id, StreamStart::TrimHorizon, true)
                        .await;
                }
                Err(err) => {
                    failed = true;
                    self.failed(shared, &id, err).await;
                }
            }
        }
        if failed {
            self.backoff.wait().await;
        } else {
            self.backoff = Backoff::default();
        }
        if !found && !failed {
            shared.counters().stream_lag_ms.store(0, Ordering::Relaxed);
        }
        found
    }

    /// Applies one shard's records, and moves its iterator on.
    fn read(
        &mut self,
        shared: &Shared,
        id: &str,
        changes: Vec<StreamRecord>,
        next: Option<String>,
    ) {
        let newest = changes.last().map(|c| (c.sequence.clone(), c.created));
        for change in changes {
            self.apply(shared, change);
        }
        let Some(tracked) = self.shards.get_mut(id) else {
            return;
        };
        if let Some((sequence, created)) = newest {
            let lag = SystemTime::now()
                .duration_since(created)
                .unwrap_or_default();
            let lag = u64::try_from(lag.as_millis()).unwrap_or(u64::MAX - 1);
            shared
                .counters()
                .stream_lag_ms
                .store(lag, Ordering::Relaxed);
            if let Read::At { last, .. } = &mut tracked.read {
                *last = Some(sequence);
            }
        }
        match (next, &mut tracked.read) {
            (Some(next), Read::At { iterator, .. }) => *iterator = next,
            _ => {
                tracing::debug!(shard = %id, "stream shard read to its end");
                tracked.read = Read::Done;
                // Its children can start now.
                self.discover_at = Instant::now();
            }
        }
    }

    /// Hands one change to its key's shard.
    fn apply(&self, shared: &Shared, change: StreamRecord) {
        let counters = shared.counters();
        counters.add(&counters.stream_records, 1);
        let options = shared.options();
        let Some(key) = string_attribute(&change.keys, &options.partition_key) else {
            return;
        };
        let state = match change.after {
            StreamImage::Present(item) => {
                let (item, version) = shared.layout().value(item);
                Some((Some(Arc::new(item)), version))
            }
            StreamImage::Removed => Some((None, 0)),
            StreamImage::Unknown => None,
        };
        let own = match (&state, shared.echoes()) {
            (Some((value, version)), Some(echoes)) => {
                echoes.recognise(key, value.as_deref(), *version)
            }
            _ => false,
        };
        let observed = Observed {
            state,
            at: self.instant_of(change.created),
            own,
        };
        let shard = shared.shard_of(key);
        match shard.follow(key, observed, options.stream_clock_margin) {
            Followed::Replaced => counters.add(&counters.stream_replaced, 1),
            Followed::Invalidated => counters.add(&counters.stream_invalidated, 1),
            Followed::Ignored => {}
        }
    }

    /// A wall-clock time on the monotonic clock. Times before the store opened map to the
    /// moment it opened, which is before anything was cached.
    fn instant_of(&self, at: SystemTime) -> Instant {
        let (wall, mono) = self.anchor;
        match at.duration_since(wall) {
            Ok(after) => mono + after,
            Err(_) => mono,
        }
    }

    /// An iterator expired: read on after the last record, or, if none was read, start again
    /// where the shard started (changes may have been missed from a start at the newest
    /// record, so clean entries are dropped then).
    async fn expired(&mut self, shared: &Shared, id: &str) {
        let Some(Tracked {
            read: Read::At { last, start, .. },
            ..
        }) = self.shards.get(id)
        else {
            return;
        };
        let (last, start) = (last.clone(), start.clone());
        match last {
            Some(sequence) => match self
                .stream
                .iterator(id, &StreamStart::After(sequence))
                .await
            {
                Ok(iterator) => {
                    if let Some(Tracked {
                        read: Read::At { iterator: old, .. },
                        ..
                    }) = self.shards.get_mut(id)
                    {
                        *old = iterator;
                    }
                }
                Err(err) => self.failed(shared, id, err).await,
            },
            // From the shard's beginning nothing can have been missed; from its newest record,
            // the changes made since may have been.
            None => {
                let lost = start == StreamStart::Latest;
                self.restart_shard(shared, id, start, lost).await;
            }
        }
    }

    /// Takes a new iterator for a shard whose place was lost; then, if changes may have been
    /// `lost`, drops every clean entry.
    async fn restart_shard(&mut self, shared: &Shared, id: &str, start: StreamStart, lost: bool) {
        match self.open(id, start).await {
            Ok(read) => {
                if let Some(tracked) = self.shards.get_mut(id) {
                    tracked.read = read;
                }
                if lost {
                    forget_everything(shared);
                }
            }
            Err(err) => self.failed(shared, id, err).await,
        }
    }

    /// A request failed: transient failures are retried by the next round; after a permanent
    /// one the whole stream is followed anew from its newest records.
    async fn failed(&mut self, shared: &Shared, id: &str, err: Error) {
        let counters = shared.counters();
        counters.add(&counters.stream_errors, 1);
        if err.is_retryable() {
            tracing::debug!(shard = %id, error = %err.report(), "reading the stream failed; retrying");
            return;
        }
        tracing::error!(shard = %id, error = %err.report(), "reading the stream failed; following it anew from its newest records and dropping every clean entry");
        match Follower::start(Arc::clone(&self.stream)).await {
            Ok(fresh) => {
                self.shards = fresh.shards;
                forget_everything(shared);
            }
            Err(err) => {
                tracing::error!(error = %err.report(), "the stream cannot be followed now; retrying");
            }
        }
    }

    /// Lists the shards again, to find new ones (a closed shard's children, splits).
    async fn discover(&mut self, shared: &Shared) {
        self.discover_at = Instant::now() + DISCOVER_EVERY;
        if let Some(echoes) = shared.echoes() {
            echoes.forget_old();
        }
        let description = match self.stream.describe().await {
            Ok(description) => description,
            Err(err) => {
                shared.counters().add(&shared.counters().stream_errors, 1);
                tracing::warn!(error = %err.report(), "listing the stream's shards failed; retrying later");
                return;
            }
        };
        let listed: std::collections::HashSet<&str> =
            description.shards.iter().map(|s| s.id.as_str()).collect();
        // Shards trimmed from the stream, once read to their end, are forgotten.
        self.shards.retain(|id, tracked| {
            listed.contains(id.as_str()) || !matches!(tracked.read, Read::Done)
        });
        for StreamShard { id, parent, .. } in description.shards {
            self.shards.entry(id).or_insert(Tracked {
                parent,
                read: Read::AfterParent,
            });
        }
    }

    /// Starts reading the shards whose parents have been read to their end (or are gone):
    /// from their beginning, since all of their records are newer than the store.
    async fn start_children(&mut self, shared: &Shared) {
        let ready: Vec<String> = self
            .shards
            .iter()
            .filter(|(_, tracked)| matches!(tracked.read, Read::AfterParent))
            .filter(|(_, tracked)| {
                tracked.parent.as_ref().is_none_or(|parent| {
                    self.shards
                        .get(parent)
                        .is_none_or(|p| matches!(p.read, Read::Done))
                })
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in ready {
            match self.open(&id, StreamStart::TrimHorizon).await {
                Ok(read) => {
                    if let Some(tracked) = self.shards.get_mut(&id) {
                        tracked.read = read;
                    }
                }
                Err(err) => self.failed(shared, &id, err).await,
            }
        }
    }

    async fn open(&self, id: &str, start: StreamStart) -> Result<Read> {
        let iterator = self.stream.iterator(id, &start).await?;
        Ok(Read::At {
            iterator,
            last: None,
            start,
        })
    }
}

/// Drops every clean entry and every expected echo: changes may have been missed.
fn forget_everything(shared: &Shared) {
    for shard in shared.shards() {
        shard.invalidate_all();
    }
    if let Some(echoes) = shared.echoes() {
        echoes.clear();
    }
    let counters = shared.counters();
    counters.add(&counters.stream_resets, 1);
}

#[cfg(test)]
mod tests;
