//! The write path: applying a mutation to its shard (reading the key first when the mutation
//! depends on its state), telling the flusher about keys that turn dirty, and waiting for the
//! journal. Also atomic read-modify-write: [`Change`] and the decision functions behind
//! `Store::update_with`.

use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::futures::Notified;
use tokio::time::Instant;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::flusher;
use crate::item::{self, Item};
use crate::key::Key;
use crate::load::Loader;
use crate::options::Backpressure;
use crate::shard::{Mutated, MutatedWith, Mutation, Value, WriteContext};
use crate::shared::Shared;

/// What an [`update_with`](crate::Store::update_with) closure decides to do with a key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change<T> {
    /// Store this value (or item) under the key.
    Put(T),
    /// Remove the item under the key.
    Delete,
    /// Leave the key as it is; nothing is written.
    Keep,
}

/// Applies mutations: the shared state they change, and the flusher that learns of dirty keys.
pub(crate) struct Mutator<'a> {
    pub shared: &'a Shared,
    /// Reads a key whose state a mutation depends on.
    pub loader: &'a Loader,
    pub flusher: &'a flusher::Handle,
}

impl Mutator<'_> {
    /// Applies a checked mutation, reading the key first if the mutation depends on its state.
    pub(crate) async fn mutate(&self, key: &Key, mutation: Mutation) -> Result<()> {
        take_turn().await;
        let shared = self.shared;
        let rendered = key.as_str();
        let index = shared.shard_index(rendered);
        let shard = shared.shard(index);
        let on_dirty = |first_seq: u64, key: &str| self.flusher.dirty(first_seq, index, key);
        let ctx = WriteContext {
            key_parts: Some(key.parts()),
            ..shared.write_context(&on_dirty)
        };
        let mut known = None;
        let mut room = Room::new(shared);
        loop {
            let mutated = match shard.mutate(rendered, mutation.clone(), known.as_ref(), &ctx) {
                Err(full @ Error::TooManyRequests { .. }) => {
                    room.wait(full).await?;
                    continue;
                }
                other => other?,
            };
            match mutated {
                Mutated::Applied(seq) => return self.acknowledge(seq).await,
                Mutated::Existed => return Err(Error::ItemExisted { key: key.clone() }),
                Mutated::NotExisted => return Err(Error::ItemNotExisted { key: key.clone() }),
                Mutated::NeedsLoad => known = Some(self.loader.read(rendered).await?),
            }
        }
    }

    /// Applies what `decide` makes of the key's current state, atomically with respect to every
    /// other operation on the key in this store; loads the key first if its state is unknown.
    pub(crate) async fn mutate_with<R>(
        &self,
        key: &Key,
        decide: impl FnOnce(Option<&Item>) -> Result<(Change<Item>, R)>,
    ) -> Result<R> {
        take_turn().await;
        let shared = self.shared;
        let rendered = key.as_str();
        let index = shared.shard_index(rendered);
        let shard = shared.shard(index);
        let on_dirty = |first_seq: u64, key: &str| self.flusher.dirty(first_seq, index, key);
        let ctx = WriteContext {
            key_parts: Some(key.parts()),
            ..shared.write_context(&on_dirty)
        };
        // Called at most once: the shard calls it only when it knows the state.
        let mut decide = Some(decide);
        let mut known = None;
        let mut room = Room::new(shared);
        loop {
            let decided = shard.mutate_with(rendered, known.as_ref(), &ctx, |current: &Value| {
                let decide = decide.take().ok_or_else(|| {
                    Error::validation("update_with decided twice; this is a bug in quickstore")
                })?;
                let (change, answer) = decide(current.as_deref())?;
                let mutation = match change {
                    Change::Put(item) => {
                        shared.validate(&item, rendered.len())?;
                        Some(Mutation::Upsert(Arc::new(item)))
                    }
                    Change::Delete => current.is_some().then_some(Mutation::Delete),
                    Change::Keep => None,
                };
                Ok((mutation, answer))
            });
            let decided = match decided {
                // Full before deciding: the decision can still be made once there is room.
                Err(full @ Error::TooManyRequests { .. }) if decide.is_some() => {
                    room.wait(full).await?;
                    continue;
                }
                other => other?,
            };
            match decided {
                MutatedWith::Applied(seq, answer) => {
                    self.acknowledge(seq).await?;
                    return Ok(answer);
                }
                MutatedWith::Unchanged(answer) => return Ok(answer),
                MutatedWith::NeedsLoad => known = Some(self.loader.read(rendered).await?),
            }
        }
    }

    /// Counts an applied mutation, once the journal holds it as durably as promised.
    async fn acknowledge(&self, seq: u64) -> Result<()> {
        let shared = self.shared;
        if let Some(journal) = shared.journal() {
            journal.wait(seq).await?;
        }
        shared.counters().add(&shared.counters().mutations, 1);
        Ok(())
    }
}

/// Spends a unit of the task's Tokio budget, yielding to the runtime once the budget is spent.
///
/// A mutation is usually acknowledged without waiting for anything, so a task writing in a loop
/// would otherwise never give its worker thread back, and the flusher (a task on the same
/// runtime) would not write until the loop ended. Taken before the mutation is applied, so
/// that a caller dropping the future at this point changes nothing.
async fn take_turn() {
    tokio::task::coop::consume_budget().await;
}

/// Waiting for room in a full store, by its [`Backpressure`].
struct Room<'a> {
    shared: &'a Shared,
    deadline: Option<Instant>,
    /// Registered before the next attempt, so that room made between that attempt and the
    /// wait is not missed.
    armed: Option<Pin<Box<Notified<'a>>>>,
}

impl<'a> Room<'a> {
    fn new(shared: &'a Shared) -> Self {
        Self {
            shared,
            deadline: None,
            armed: None,
        }
    }

    /// Called when an attempt found the store full: returns when the caller should try
    /// again, or `full` when the store does not wait or waited long enough. After the first
    /// full attempt it returns at once (armed), so the caller tries once more before waiting.
    async fn wait(&mut self, full: Error) -> Result<()> {
        let Backpressure::Wait(limit) = self.shared.options().backpressure else {
            return Err(full);
        };
        let deadline = *self.deadline.get_or_insert_with(|| Instant::now() + limit);
        if let Some(armed) = self.armed.take() {
            if tokio::time::timeout_at(deadline, armed).await.is_err() {
                return Err(full);
            }
        }
        let mut armed = Box::pin(self.shared.room());
        armed.as_mut().enable();
        self.armed = Some(armed);
        Ok(())
    }
}

/// A typed decision as a decision on items: the current item is deserialized for `decide`,
/// and the value it puts is serialized back.
pub(crate) fn typed<T, R>(
    decide: impl FnOnce(Option<T>) -> (Change<T>, R),
) -> impl FnOnce(Option<&Item>) -> Result<(Change<Item>, R)>
where
    T: Serialize + DeserializeOwned,
{
    move |current| {
        let current = current.map(item::to_value).transpose()?;
        let (change, answer) = decide(current);
        let change = match change {
            Change::Put(value) => Change::Put(item::to_item(&value)?),
            Change::Delete => Change::Delete,
            Change::Keep => Change::Keep,
        };
        Ok((change, answer))
    }
}
