//! Group commit: the embedded database's writes that arrive while a commit runs share the next
//! transaction, and its one `fsync`.
//!
//! redb runs one write transaction at a time, and each commit syncs the file. Given a blocking
//! thread each, concurrent writes (the flusher keeps several batches in flight) would wait on
//! one another's commits, a thread apiece, and each pay a sync. Here one blocking task at a
//! time writes: it takes every write queued so far (up to [`MAX_GROUP`]), applies them in order
//! in one transaction, commits, answers each, and goes on while writes are queued. A write
//! that finds no task running starts one, so a lone write waits for nothing but its own commit.
//!
//! Each write is answered only once the transaction holding it committed. A write that fails
//! inside the shared transaction fails alone: the transaction is aborted and the others are
//! applied again without it.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;
use redb::{Database, WriteTransaction};
use tokio::sync::oneshot;

use super::{database_error, shared_database_error};
use crate::error::Result;

/// The most writes one transaction carries: a flusher's batch is at most 25 items.
const MAX_GROUP: usize = 64;

/// Runs writes on a database, grouped into shared transactions.
#[derive(Debug, Clone)]
pub(super) struct Committer {
    db: Arc<Database>,
    queue: Arc<Mutex<Queue>>,
}

#[derive(Default)]
struct Queue {
    writes: VecDeque<Box<dyn Job>>,
    /// A blocking task is writing: it takes what is queued before it stops.
    running: bool,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("writes", &self.writes.len())
            .field("running", &self.running)
            .finish()
    }
}

/// A queued write, type-erased.
trait Job: Send {
    /// Applies the write in `txn`, keeping its outcome for [`answer`](Job::answer).
    fn apply(&mut self, txn: &WriteTransaction) -> Result<(), redb::Error>;
    /// Answers the caller: its outcome, now that the transaction committed, or `err`.
    fn answer(self: Box<Self>, committed: Result<(), Arc<redb::Error>>);
    /// Answers the caller with `err`, which the write itself met.
    fn fail(self: Box<Self>, err: redb::Error);
}

struct Pending<T, F> {
    operation: &'static str,
    work: F,
    outcome: Option<T>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send,
    F: Fn(&WriteTransaction) -> Result<T, redb::Error> + Send,
{
    fn apply(&mut self, txn: &WriteTransaction) -> Result<(), redb::Error> {
        self.outcome = Some((self.work)(txn)?);
        Ok(())
    }

    fn answer(self: Box<Self>, committed: Result<(), Arc<redb::Error>>) {
        let answer = match (committed, self.outcome) {
            (Ok(()), Some(outcome)) => Ok(outcome),
            (Err(err), _) => Err(shared_database_error(self.operation, err)),
            // A committed transaction applied every write it answers.
            (Ok(()), None) => Err(super::task_died(self.operation, None)),
        };
        // A caller that stopped waiting has nothing to be told.
        let _ = self.reply.send(answer);
    }

    fn fail(self: Box<Self>, err: redb::Error) {
        let _ = self.reply.send(Err(database_error(self.operation, err)));
    }
}

impl Committer {
    pub(super) fn new(db: Arc<Database>) -> Self {
        Self {
            db,
            queue: Arc::default(),
        }
    }

    /// Applies `work` in a write transaction, shared with the writes queued beside it, and
    /// returns its outcome once that transaction committed. `work` may run more than once (in
    /// transactions that were aborted because another write in them failed), and is answered
    /// from the run that committed.
    pub(super) async fn write<T, F>(&self, operation: &'static str, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(&WriteTransaction) -> Result<T, redb::Error> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut queue = self.queue.lock();
            queue.writes.push_back(Box::new(Pending {
                operation,
                work,
                outcome: None,
                reply,
            }));
            !std::mem::replace(&mut queue.running, true)
        };
        if start {
            let writer = Writer {
                db: Arc::clone(&self.db),
                queue: Arc::clone(&self.queue),
                idle: false,
            };
            drop(tokio::task::spawn_blocking(move || writer.run()));
        }
        match answer.await {
            Ok(answer) => answer,
            Err(_) => Err(super::task_died(operation, None)),
        }
    }
}

/// The blocking task writing the queued writes. However it ends (its work done, a panic, or
/// dropped unrun by a runtime shutting down), it leaves the queue idle and the writes still in
/// it answered (with an error, by their dropped replies), so that none waits forever.
struct Writer {
    db: Arc<Database>,
    queue: Arc<Mutex<Queue>>,
    /// Found the queue empty and marked it idle: another writer may run now.
    idle: bool,
}

impl Writer {
    fn run(mut self) {
        let mut group = self.take();
        while !group.is_empty() {
            let answers = commit(&self.db, group);
            group = self.take();
            if group.is_empty() {
                // Let go of the database before the last answers, so that a caller that then
                // drops the backend can open the file again at once.
                drop(self);
                answers();
                return;
            }
            answers();
        }
    }

    /// The next writes, or none (marking the queue idle).
    fn take(&mut self) -> Vec<Box<dyn Job>> {
        let mut queue = self.queue.lock();
        let take = queue.writes.len().min(MAX_GROUP);
        if take == 0 {
            queue.running = false;
            self.idle = true;
        }
        queue.writes.drain(..take).collect()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.idle {
            return;
        }
        let left = {
            let mut queue = self.queue.lock();
            queue.running = false;
            std::mem::take(&mut queue.writes)
        };
        drop(left);
    }
}

/// Applies `group` in one transaction and commits it; returns what answers the writes. A write
/// that fails is answered with its error and the transaction is begun again without it.
fn commit(db: &Database, mut group: Vec<Box<dyn Job>>) -> impl FnOnce() {
    let committed = loop {
        let txn = match db.begin_write() {
            Ok(txn) => txn,
            Err(err) => break Err(Arc::new(redb::Error::from(err))),
        };
        let failed = group
            .iter_mut()
            .enumerate()
            .find_map(|(at, job)| job.apply(&txn).err().map(|err| (at, err)));
        match failed {
            None => break txn.commit().map_err(|err| Arc::new(redb::Error::from(err))),
            Some((at, err)) => {
                // Aborted with the failure; an abort that fails leaves nothing committed
                // either, and the next transaction begins afresh.
                let _ = txn.abort();
                group.remove(at).fail(err);
            }
        }
    };
    move || {
        for job in group {
            job.answer(committed.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{ReadableDatabase as _, TableDefinition};

    const TABLE: TableDefinition<&str, u64> = TableDefinition::new("t");

    fn database() -> Result<(tempfile::TempDir, Arc<Database>), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let db = Database::create(dir.path().join("db.redb"))?;
        Ok((dir, Arc::new(db)))
    }

    fn stored(db: &Database, key: &str) -> Result<Option<u64>, Box<dyn std::error::Error>> {
        let txn = db.begin_read()?;
        let table = txn.open_table(TABLE)?;
        Ok(table.get(key)?.map(|v| v.value()))
    }

    /// A queued write of `value` under `key`, failing instead when `value` is 0; and where its
    /// answer arrives.
    fn job(key: &'static str, value: u64) -> (Box<dyn Job>, oneshot::Receiver<Result<u64>>) {
        let (reply, answer) = oneshot::channel();
        let work = move |txn: &WriteTransaction| {
            if value == 0 {
                return Err(redb::Error::Corrupted(format!("{key} refused")));
            }
            txn.open_table(TABLE)?.insert(key, value)?;
            Ok(value * 10)
        };
        let pending = Pending {
            operation: "Test",
            work,
            outcome: None,
            reply,
        };
        (Box::new(pending), answer)
    }

    #[test]
    fn a_failing_write_fails_alone_and_the_rest_of_its_group_commits(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let (_dir, db) = database()?;
        let (a, a_answer) = job("a", 1);
        let (b, mut b_answer) = job("b", 0);
        let (c, c_answer) = job("c", 3);
        let answer = commit(&db, vec![a, b, c]);
        // The failure is told at once; the others only once the group is answered.
        let refused = b_answer.try_recv()?;
        assert!(
            matches!(&refused, Err(crate::Error::Backend(e)) if !e.is_retryable()),
            "{refused:?}"
        );
        assert_eq!(stored(&db, "a")?, Some(1));
        answer();
        assert_eq!(a_answer.blocking_recv()?.ok(), Some(10));
        assert_eq!(c_answer.blocking_recv()?.ok(), Some(30));
        assert_eq!((stored(&db, "b")?, stored(&db, "c")?), (None, Some(3)));
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_each_get_their_own_outcome() -> Result<(), Box<dyn std::error::Error>>
    {
        let (_dir, db) = database()?;
        let committer = Committer::new(Arc::clone(&db));
        let mut tasks = tokio::task::JoinSet::new();
        for n in 1..=200u64 {
            let committer = committer.clone();
            tasks.spawn(async move {
                let key = format!("k{n}");
                committer
                    .write("Test", move |txn| {
                        txn.open_table(TABLE)?.insert(key.as_str(), n)?;
                        Ok(n)
                    })
                    .await
                    .map(|answer| (n, answer))
            });
        }
        while let Some(done) = tasks.join_next().await {
            let (n, answer) = done??;
            assert_eq!(answer, n);
            assert_eq!(stored(&db, &format!("k{n}"))?, Some(n));
        }
        Ok(())
    }
}
