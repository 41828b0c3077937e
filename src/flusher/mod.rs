//! The flusher: writes dirty keys to the backend in the background.
//!
//! Split like foyer's flusher into a cloneable [`Handle`] that submits work and a
//! [`Runner`](runner::Runner) that owns the queue and runs the loop. Each dirty key is submitted
//! once per dirty episode (when it turns dirty), so the queue holds at most one entry per key and
//! the newest state of a key is read from its shard at write time: that is the coalescing.

mod batch;
mod runner;
mod update;

use tokio::sync::{mpsc, oneshot};

use crate::error::Result;

pub(crate) use runner::Runner;

/// Work for the runner.
pub(crate) enum Submission {
    /// A key turned dirty; `first_seq` is its oldest unwritten mutation.
    Dirty {
        first_seq: u64,
        shard: usize,
        key: String,
    },
    /// Answer `done` once every mutation up to `upto` is written (or rejected). With `close`,
    /// also drain everything and stop.
    Flush {
        upto: u64,
        close: bool,
        done: Option<oneshot::Sender<Result<()>>>,
    },
}

/// Submits work to the runner.
#[derive(Clone)]
pub(crate) struct Handle {
    tx: mpsc::UnboundedSender<Submission>,
}

impl Handle {
    pub(crate) fn new() -> (Self, mpsc::UnboundedReceiver<Submission>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx }, rx)
    }

    /// Tells the runner that `key` turned dirty. Called under the key's shard lock, so that a
    /// close that takes every shard lock afterwards is ordered after this submission.
    pub(crate) fn dirty(&self, first_seq: u64, shard: usize, key: &str) {
        // The runner outlives every mutation: it stops only after a close, and a closed store
        // accepts no mutation. A failed send therefore cannot lose an acknowledged write.
        let _ = self.tx.send(Submission::Dirty {
            first_seq,
            shard,
            key: key.to_owned(),
        });
    }

    /// Asks for a barrier (and, with `close`, a drain and stop). Returns `None` if the runner
    /// has already stopped.
    pub(crate) fn flush(&self, upto: u64, close: bool) -> Option<oneshot::Receiver<Result<()>>> {
        let (done, rx) = oneshot::channel();
        self.tx
            .send(Submission::Flush {
                upto,
                close,
                done: Some(done),
            })
            .ok()?;
        Some(rx)
    }

    /// Asks the runner to drain and stop, without waiting (the last handle was dropped).
    pub(crate) fn close_detached(&self) {
        let _ = self.tx.send(Submission::Flush {
            upto: u64::MAX,
            close: true,
            done: None,
        });
    }
}
