//! The flusher's loop: queue dirty keys oldest first, cut them into batches, keep a bounded
//! number of batches in flight, settle their outcomes with the shards, and answer barriers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

use super::batch::{self, Batch, Meta, Outcome, Outcomes, Refusal};
use super::update::DeltaWrite;
use super::Submission;
use crate::backend::{Write, MAX_BATCH_WRITE_ITEMS};
use crate::delta::unix_millis;
use crate::error::{Error, Refusals, Result};
use crate::item::Item;
use crate::key::Key;
use crate::shard::{Completed, Landed};
use crate::shared::Shared;
use crate::telemetry::{Ages, Gauges, Handlers, Metrics, Refused, PUBLISH_INTERVAL};
use crate::version::{self, Conflict};

/// Refusals kept for the next `flush` to report; beyond this, only the logs, the counters and
/// the dead-letter file have them.
const MAX_UNREPORTED: usize = 1024;

/// A key waiting to be written.
struct Queued {
    shard: usize,
    key: String,
}

/// A pending `flush` (or `close`).
struct Barrier {
    upto: u64,
    /// A close: answered only once everything is drained.
    close: bool,
    done: Option<oneshot::Sender<Result<()>>>,
    /// The refused writes the barrier covers.
    refused: Refusals,
}

/// Owns the flush queue and runs the loop; see the module docs.
pub(crate) struct Runner {
    shared: Arc<Shared>,
    rx: mpsc::UnboundedReceiver<Submission>,
    /// Dirty keys not in flight, by the sequence of their oldest unwritten mutation. Each key
    /// is here at most once, and never while a write of it is in flight.
    queue: BTreeMap<u64, Queued>,
    /// First sequences of the keys being written.
    in_flight: BTreeSet<u64>,
    tasks: JoinSet<Outcomes>,
    /// The metadata of each running task, to requeue its keys if the task dies.
    task_metas: std::collections::HashMap<tokio::task::Id, Vec<Meta>>,
    barriers: Vec<Barrier>,
    /// Refusals no barrier has reported yet, by first sequence: the next `flush` (or `close`)
    /// that covers one reports it.
    unreported: BTreeMap<u64, Error>,
    /// Queued keys with a first sequence up to this are due now.
    due_until: u64,
    /// The newest first sequence queued.
    newest: u64,
    closing: bool,
    /// Drained and the journal closed: close barriers can be answered.
    stopped: bool,
    /// How old pending mutations are, for the metrics.
    ages: Ages,
    /// Where the store's metrics are recorded.
    metrics: Metrics,
    /// Told of conflicts and refused writes.
    handlers: Handlers,
    /// Other writers' stale marks seen in keys' last answers, for their next delta write to
    /// remove (see [`Mark::prune`](crate::backend::Mark)); at most [`MAX_PRUNABLE_KEYS`] keys.
    prunable: std::collections::HashMap<String, Vec<String>>,
}

/// The most keys whose stale marks the flusher remembers; past it, it forgets them all, and
/// sees each key's again in its next answer.
const MAX_PRUNABLE_KEYS: usize = 10_000;

impl Runner {
    pub(crate) fn new(
        shared: Arc<Shared>,
        rx: mpsc::UnboundedReceiver<Submission>,
        handlers: Handlers,
    ) -> Self {
        Self {
            metrics: Metrics::new(shared.options().metrics_label.as_deref()),
            handlers,
            shared,
            rx,
            queue: BTreeMap::new(),
            in_flight: BTreeSet::new(),
            tasks: JoinSet::new(),
            task_metas: std::collections::HashMap::new(),
            barriers: Vec::new(),
            unreported: BTreeMap::new(),
            due_until: 0,
            newest: 0,
            closing: false,
            stopped: false,
            ages: Ages::default(),
            prunable: std::collections::HashMap::new(),
        }
    }

    pub(crate) async fn run(mut self) {
        let period = self.shared.options().flush_interval;
        // The first tick comes one period after start, not at once.
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut publisher = tokio::time::interval(PUBLISH_INTERVAL);
        publisher.set_missed_tick_behavior(MissedTickBehavior::Delay);
        self.metrics.describe();
        loop {
            tokio::select! {
                // The channel closes when the last store handle goes, after its closing
                // submission; from then on this branch is skipped and the drain goes on.
                Some(submission) = self.rx.recv() => self.accept(submission),
                _ = ticker.tick() => self.due_until = self.newest,
                Some(joined) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    self.settle(joined);
                }
                _ = publisher.tick() => self.publish(),
            }
            // Take whatever else has arrived, so that it joins this round's batches.
            while let Ok(submission) = self.rx.try_recv() {
                self.accept(submission);
            }
            self.dispatch();
            self.answer_barriers();
            self.release_journal();
            if self.closing && self.queue.is_empty() && self.tasks.is_empty() {
                break;
            }
        }
        self.close_journal().await;
        self.publish();
        self.stopped = true;
        self.answer_barriers();
        tracing::debug!("flusher stopped");
    }

    fn accept(&mut self, submission: Submission) {
        match submission {
            Submission::Dirty {
                first_seq,
                shard,
                key,
            } => {
                self.enqueue(first_seq, shard, key);
            }
            Submission::Flush { upto, close, done } => {
                self.closing |= close;
                self.due_until = self.due_until.max(upto);
                // Refusals that happened before this call, among the mutations it covers.
                let later = self.unreported.split_off(&upto.saturating_add(1));
                let covered = std::mem::replace(&mut self.unreported, later);
                let mut refused = Refusals::default();
                for err in covered.values() {
                    refused.push(err);
                }
                self.barriers.push(Barrier {
                    upto,
                    close,
                    done,
                    refused,
                });
            }
        }
        if self.closing {
            self.due_until = u64::MAX;
        }
    }

    fn enqueue(&mut self, first_seq: u64, shard: usize, key: String) {
        self.newest = self.newest.max(first_seq);
        self.queue.insert(first_seq, Queued { shard, key });
    }

    /// Starts batches while there is room in flight and due work in the queue.
    fn dispatch(&mut self) {
        let options = self.shared.options();
        while self.tasks.len() < options.max_in_flight_batches {
            let crowded = self.queue.len() >= options.batch_threshold;
            let mut batch = Batch::default();
            while batch.keys() < MAX_BATCH_WRITE_ITEMS {
                let Some(entry) = self.queue.first_entry() else {
                    break;
                };
                if !crowded && *entry.key() > self.due_until {
                    break;
                }
                let (first_seq, queued) = entry.remove_entry();
                let Some(taken) = self.shared.shard(queued.shard).take_for_write(&queued.key)
                else {
                    // Not dirty any more, or already in flight: nothing to write for it now.
                    continue;
                };
                self.in_flight.insert(first_seq);
                let mut meta = Meta {
                    shard: queued.shard,
                    key: queued.key,
                    first_seq,
                    seq: taken.seq,
                    base: taken.base,
                    parts: taken.parts,
                    written: None,
                };
                if let Some(delta) = taken.delta {
                    let prune = self.prunable.remove(&meta.key).unwrap_or_default();
                    batch.deltas.push(DeltaWrite {
                        meta,
                        delta,
                        state: taken.value,
                        prune,
                    });
                    continue;
                }
                let version = if options.version_attribute.is_some() {
                    version::next(meta.base.version)
                } else {
                    0
                };
                let layout = &self.shared.layout();
                let write = match &taken.value {
                    Some(item) => {
                        meta.written = Some(version);
                        Write::Put(layout.stored(&meta.key, item, version, taken.seq))
                    }
                    None => Write::Delete(meta.key.clone()),
                };
                if let Some(echoes) = self.shared.echoes() {
                    echoes.expect(&meta.key, taken.value, meta.written.unwrap_or(0));
                }
                batch.push(meta, write);
            }
            if batch.keys() == 0 {
                break;
            }
            let metas = batch.all_metas();
            let shared = Arc::clone(&self.shared);
            let handle = self
                .tasks
                .spawn(batch::send(shared, self.metrics.clone(), batch));
            self.task_metas.insert(handle.id(), metas);
        }
    }

    fn settle(&mut self, joined: Result<(tokio::task::Id, Outcomes), tokio::task::JoinError>) {
        let outcomes = match joined {
            Ok((id, outcomes)) => {
                self.task_metas.remove(&id);
                outcomes
            }
            Err(join) => {
                // The task panicked or was cancelled: its writes are in an unknown state, so they
                // are written again. Writing a key's state twice is harmless.
                tracing::error!(error = %join, "a flush task died; its writes will be retried");
                let metas = self.task_metas.remove(&join.id()).unwrap_or_default();
                for meta in metas {
                    self.in_flight.remove(&meta.first_seq);
                    let shard = self.shared.shard(meta.shard);
                    if let Some(first) = shard.abandon_write(&meta.key, meta.seq) {
                        self.enqueue(first, meta.shard, meta.key);
                    }
                }
                return;
            }
        };
        for (meta, outcome) in outcomes {
            self.in_flight.remove(&meta.first_seq);
            let completed = match outcome {
                Outcome::Written => {
                    batch::complete(&self.shared, &meta, Landed::Written(meta.written))
                }
                Outcome::Updated(item) => {
                    let landed = match item {
                        Some(item) => {
                            self.note_stale_marks(&meta.key, &item);
                            let (value, version) = self.shared.layout().value(item);
                            let value = Some(Arc::new(value));
                            // The state is known only now: until its write is settled the key
                            // is dirty, and a follower leaves dirty keys alone.
                            if let Some(echoes) = self.shared.echoes() {
                                echoes.expect(&meta.key, value.clone(), version);
                            }
                            Landed::Updated(value, version)
                        }
                        None => Landed::Updated(None, 0),
                    };
                    batch::complete(&self.shared, &meta, landed)
                }
                Outcome::Completed(completed) => completed,
                Outcome::Refused(refusal) => {
                    self.reject(&meta, refusal);
                    batch::complete(&self.shared, &meta, Landed::Refused)
                }
                Outcome::Conflict(current) => {
                    self.conflict(&meta, current);
                    continue;
                }
            };
            match completed {
                Some(Completed::Settled) => {
                    self.shared.settled();
                }
                Some(Completed::StillDirty(first)) => self.enqueue(first, meta.shard, meta.key),
                None => {}
            }
        }
        // Whatever landed (or was refused) made room for mutations waiting for it.
        self.shared.make_room();
    }

    /// Remembers the other writers' stale marks in `key`'s stored `item`, for the key's next
    /// delta write to remove.
    fn note_stale_marks(&mut self, key: &str, item: &Item) {
        let lifetime = self.shared.options().mark_lifetime;
        let stale = self
            .shared
            .layout()
            .stale_marks(item, unix_millis(), lifetime);
        if stale.is_empty() {
            return;
        }
        if self.prunable.len() >= MAX_PRUNABLE_KEYS {
            // Keys not written since: their marks are seen again in a later answer.
            self.prunable.clear();
        }
        self.prunable.insert(key.to_owned(), stale);
    }

    /// Settles a versioned write that lost the race: the winner's state replaces the key's
    /// pending state, and the loss is counted, dead-lettered and handed to the handler.
    fn conflict(&mut self, meta: &Meta, current: Option<Item>) {
        let (theirs, version) = match current {
            Some(item) => {
                let (item, version) = self.shared.layout().value(item);
                (Some(Arc::new(item)), version)
            }
            None => (None, 0),
        };
        let shard = self.shared.shard(meta.shard);
        let Some((ours, newest)) =
            shard.resolve_conflict(&meta.key, meta.seq, theirs.clone(), version)
        else {
            return;
        };
        self.shared.settled();
        let counters = self.shared.counters();
        counters.add(&counters.conflicts, 1);
        tracing::warn!(key = %meta.key, "another writer changed the key first; this store's pending state of it was dropped for the winner's");
        if let Some(journal) = self.shared.journal() {
            // Keyed like a refused write's letter; without version attributes, since the
            // version this state was to have is the one the other writer took.
            let write = match &ours {
                Some(item) => Write::Put(self.shared.layout().keyed(&meta.key, item)),
                None => Write::Delete(meta.key.clone()),
            };
            let reason = "conflict: another writer changed the item first";
            if let Err(dead) = journal.dead_letter(meta.seq, &meta.key, &write, reason) {
                tracing::error!(key = %meta.key, error = %dead.report(), "the conflicting write could not be dead-lettered");
            }
        }
        // After the dead letter: a crash between the two writes the dropped state again (and
        // reports it again), rather than forgetting it unreported.
        batch::mark_settled(
            &self.shared,
            &meta.key,
            newest,
            theirs.is_some().then_some(version),
        );
        if let Some(handler) = &self.handlers.on_conflict {
            handler(&Conflict {
                key: Key::rebuild(&meta.key, meta.parts, self.shared.kinds()),
                ours,
                theirs,
            });
        }
    }

    fn reject(&mut self, meta: &Meta, refusal: Refusal) {
        let Refusal { error: err, write } = refusal;
        let counters = self.shared.counters();
        counters.add(&counters.rejected_writes, 1);
        if let Some(journal) = self.shared.journal() {
            let reason = err.report().to_string();
            if let Err(dead) = journal.dead_letter(meta.seq, &meta.key, &write, &reason) {
                tracing::error!(key = %meta.key, error = %dead.report(), "the refused write could not be dead-lettered");
            }
        }
        let mut reported = false;
        let refusal = refused(&meta.key, &err);
        for barrier in &mut self.barriers {
            if barrier.upto >= meta.first_seq {
                reported = true;
                barrier.refused.push(&refusal);
            }
        }
        if !reported && self.unreported.len() < MAX_UNREPORTED {
            // Beyond the bound, refusals are still logged, counted and dead-lettered.
            self.unreported.insert(meta.first_seq, refusal);
        }
        self.tell_refused(meta, write, &err);
    }

    /// Hands a refused write to the application's handler, if it set one.
    fn tell_refused(&self, meta: &Meta, write: Write, err: &Error) {
        let Some(handler) = &self.handlers.on_refused else {
            return;
        };
        let state = match write {
            Write::Put(item) => Some(Arc::new(self.shared.layout().value(item).0)),
            Write::Delete(_) => None,
        };
        handler(&Refused {
            key: Key::rebuild(&meta.key, meta.parts, self.shared.kinds()),
            state,
            error: refused(&meta.key, err),
        });
    }

    /// Publishes the store's counters and gauges through the `metrics` facade.
    fn publish(&mut self) {
        let shared = &self.shared;
        let now = tokio::time::Instant::now();
        self.ages.note(shared.last_seq(), now);
        let gauges = Gauges {
            max_pending_keys: shared.options().max_pending,
            max_pending_bytes: shared.options().max_pending_bytes,
            oldest_pending: self.ages.age(self.oldest(), now),
            journaled: shared.journal().is_some(),
        };
        self.metrics.publish(&shared.stats(), &gauges);
    }

    /// The first sequence of the oldest key not yet written.
    fn oldest(&self) -> Option<u64> {
        [self.queue.keys().next(), self.in_flight.first()]
            .into_iter()
            .flatten()
            .min()
            .copied()
    }

    /// Lets the journal delete segments whose mutations are all written (or dead-lettered).
    fn release_journal(&mut self) {
        let Some(journal) = self.shared.journal() else {
            return;
        };
        let last = self.shared.last_seq();
        let bound = |runner: &Self| runner.oldest().unwrap_or(last + 1).min(last + 1);
        if !journal.could_release(bound(self)) {
            return;
        }
        // Keys of mutations numbered up to `last` may still be on their way to the runner:
        // after the barrier they have all arrived.
        self.shared.barrier();
        while let Ok(submission) = self.rx.try_recv() {
            self.accept(submission);
        }
        let bound = bound(self);
        if let Some(journal) = self.shared.journal() {
            journal.release_below(bound);
        }
    }

    /// Stops the journal once the flusher has drained, deleting every segment if nothing is
    /// pending any more (refused writes are in the dead-letter file by then).
    async fn close_journal(&self) {
        if self.shared.journal().is_none() {
            return;
        }
        let release = if self.shared.pending_keys() == 0 {
            self.shared.last_seq() + 1
        } else {
            0
        };
        let shared = Arc::clone(&self.shared);
        let closed = tokio::task::spawn_blocking(move || {
            if let Some(journal) = shared.journal() {
                journal.close(release);
            }
        })
        .await;
        if let Err(err) = closed {
            tracing::error!(error = %err, "closing the journal failed");
        }
    }

    /// Answers the barriers whose mutations are all written or refused.
    fn answer_barriers(&mut self) {
        let oldest = self.oldest();
        self.barriers.retain_mut(|barrier| {
            let done = if barrier.close {
                self.stopped
            } else {
                oldest.is_none_or(|oldest| oldest > barrier.upto)
            };
            if done {
                if let Some(tx) = barrier.done.take() {
                    let _ = tx.send(std::mem::take(&mut barrier.refused).into_result());
                }
            }
            !done
        });
    }
}

/// The error a barrier reports for a refused write: the backend's, naming the key.
fn refused(key: &str, err: &Error) -> Error {
    match err {
        Error::Backend(backend) => backend.refusing(key).into(),
        other => other.clone(),
    }
}
