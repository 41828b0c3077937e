//! [`Gate`]: where a [`FaultyBackend`](super::FaultyBackend) holds requests until the test lets
//! them through.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::watch;

/// Holds requests until it lets them through: a way to stop a request at a known point, let
/// others overtake it, and let it go when the test says. Clones share one gate.
///
/// A new gate is closed: requests wait at it. [`open`](Gate::open) lets every request through,
/// those waiting and those to come, until [`close`](Gate::close). While the gate is closed,
/// [`release`](Gate::release) lets a number of requests through, one each, in the order they
/// reached the gate; releases given before requests arrive are kept for them.
/// [`waiting`](Gate::waiting) counts the requests held now, and
/// [`until_waiting`](Gate::until_waiting) waits until that many are. A request abandoned while
/// it waits (its future dropped) leaves the gate without using a release.
///
/// ```
/// use std::sync::Arc;
///
/// use quickstore::testing::{Faults, FaultyBackend, Gate, MemoryBackend};
/// use quickstore::backend::{Backend, Write};
/// use quickstore::{AttributeValue, Item};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let table = MemoryBackend::new();
/// let gate = Gate::new();
/// let backend = Arc::new(FaultyBackend::new(table.clone(), Faults::new()).hold_writes(&gate));
/// let write = |key: &str| {
///     let backend = Arc::clone(&backend);
///     let item = Item::from([("_key".to_owned(), AttributeValue::S(key.to_owned()))]);
///     tokio::spawn(async move { backend.batch_write("_key", &[Write::Put(item)]).await })
/// };
/// let first = write("A");
/// gate.until_waiting(1).await;
/// let second = write("B");
/// gate.until_waiting(2).await;
/// assert!(table.is_empty());
///
/// gate.release(1); // the first write to arrive goes through
/// first.await??;
/// assert_eq!(gate.waiting(), 1);
/// assert!(table.item("A").is_some() && table.item("B").is_none());
///
/// gate.open(); // and every other one
/// second.await??;
/// assert_eq!(table.len(), 2);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Gate {
    state: Arc<watch::Sender<State>>,
}

#[derive(Debug, Default)]
struct State {
    open: bool,
    /// Requests that may still pass while the gate is closed.
    released: usize,
    /// The tickets of the requests waiting, in the order they came.
    waiting: VecDeque<u64>,
    /// The ticket of the next request to wait.
    next_ticket: u64,
}

impl Gate {
    /// A closed gate.
    pub fn new() -> Self {
        Self {
            state: Arc::new(watch::Sender::new(State::default())),
        }
    }

    /// Lets every request through, those waiting and those to come, until the gate is closed
    /// again. Releases are not used meanwhile.
    pub fn open(&self) {
        self.state.send_modify(|state| state.open = true);
    }

    /// Holds the requests to come, until the gate is opened again or releases them.
    pub fn close(&self) {
        self.state.send_modify(|state| state.open = false);
    }

    /// Whether the gate lets every request through.
    pub fn is_open(&self) -> bool {
        self.state.borrow().open
    }

    /// Lets `requests` more requests through the closed gate, one each, in the order they
    /// reached it: those waiting first, then those to come.
    pub fn release(&self, requests: usize) {
        if requests > 0 {
            self.state
                .send_modify(|state| state.released = state.released.saturating_add(requests));
        }
    }

    /// How many requests wait at the gate now.
    pub fn waiting(&self) -> usize {
        self.state.borrow().waiting.len()
    }

    /// Waits until at least `requests` requests wait at the gate.
    pub async fn until_waiting(&self, requests: usize) {
        let mut state = self.state.subscribe();
        // The sender lives as long as `self`, so waiting cannot fail.
        let _ = state
            .wait_for(|state| state.waiting.len() >= requests)
            .await;
    }

    /// Waits until the gate lets this request through.
    pub(crate) async fn pass(&self) {
        // Subscribed before looking, so that no change made after the look goes unseen.
        let mut changes = self.state.subscribe();
        let mut ticket = None;
        self.state.send_if_modified(|state| {
            if state.open {
                return false;
            }
            if state.released > 0 && state.waiting.is_empty() {
                state.released -= 1;
                return true;
            }
            let mine = state.next_ticket;
            state.next_ticket += 1;
            state.waiting.push_back(mine);
            ticket = Some(mine);
            true
        });
        let Some(ticket) = ticket else {
            return;
        };
        let mut waiting = Waiting {
            gate: self,
            ticket: Some(ticket),
        };
        loop {
            if self.take_turn(ticket) {
                waiting.ticket = None;
                return;
            }
            if changes.changed().await.is_err() {
                return;
            }
        }
    }

    /// Lets the request with `ticket` through if the gate is open, or if it is first in line
    /// and a release is left.
    fn take_turn(&self, ticket: u64) -> bool {
        self.state.send_if_modified(|state| {
            if !state.open {
                let first = state.waiting.front() == Some(&ticket);
                if !first || state.released == 0 {
                    return false;
                }
                state.released -= 1;
            }
            state.waiting.retain(|&waiting| waiting != ticket);
            true
        })
    }
}

impl Default for Gate {
    fn default() -> Self {
        Self::new()
    }
}

/// A request in line at a gate: it leaves the line when dropped before its turn.
struct Waiting<'a> {
    gate: &'a Gate,
    ticket: Option<u64>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket {
            self.gate.state.send_if_modified(|state| {
                let before = state.waiting.len();
                state.waiting.retain(|&waiting| waiting != ticket);
                state.waiting.len() != before
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::task::JoinHandle;

    use super::*;

    /// A request that passes the gate, then answers `n`.
    fn request(gate: &Gate, n: usize) -> JoinHandle<usize> {
        let gate = gate.clone();
        tokio::spawn(async move {
            gate.pass().await;
            n
        })
    }

    /// Lets the spawned requests run until none can make progress.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn releases_let_requests_through_one_at_a_time_in_order() {
        let gate = Gate::new();
        let mut requests = Vec::new();
        for n in 0..3 {
            requests.push(request(&gate, n));
            gate.until_waiting(n + 1).await;
        }
        settle().await;
        assert_eq!(gate.waiting(), 3);
        assert!(requests.iter().all(|r| !r.is_finished()));

        for n in 0..3 {
            gate.release(1);
            settle().await;
            assert_eq!(gate.waiting(), 2 - n);
            let finished: Vec<bool> = requests.iter().map(JoinHandle::is_finished).collect();
            let expected: Vec<bool> = (0..3).map(|i| i <= n).collect();
            assert_eq!(finished, expected, "after release {n}");
        }
        for (n, request) in requests.into_iter().enumerate() {
            assert_eq!(request.await.ok(), Some(n));
        }
    }

    #[tokio::test]
    async fn releases_given_before_requests_arrive_are_kept() {
        let gate = Gate::new();
        gate.release(2);
        assert_eq!(request(&gate, 1).await.ok(), Some(1));
        assert_eq!(request(&gate, 2).await.ok(), Some(2));
        let third = request(&gate, 3);
        gate.until_waiting(1).await;
        settle().await;
        assert!(!third.is_finished());
        gate.release(1);
        assert_eq!(third.await.ok(), Some(3));
        assert_eq!(gate.waiting(), 0);
    }

    #[tokio::test]
    async fn opening_lets_everyone_through_until_closed() {
        let gate = Gate::new();
        let waiting: Vec<_> = (0..3).map(|n| request(&gate, n)).collect();
        gate.until_waiting(3).await;
        gate.open();
        assert!(gate.is_open());
        for request in waiting {
            assert!(request.await.is_ok());
        }
        assert_eq!(request(&gate, 4).await.ok(), Some(4));

        gate.close();
        assert!(!gate.is_open());
        let held = request(&gate, 5);
        gate.until_waiting(1).await;
        settle().await;
        assert!(!held.is_finished());
        gate.open();
        assert_eq!(held.await.ok(), Some(5));
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_request_leaves_the_line_without_a_release() {
        let gate = Gate::new();
        let abandoned = tokio::time::timeout(Duration::from_secs(1), gate.pass()).await;
        assert!(abandoned.is_err());
        assert_eq!(gate.waiting(), 0);

        let first = request(&gate, 1);
        gate.until_waiting(1).await;
        let second = request(&gate, 2);
        gate.until_waiting(2).await;
        first.abort();
        let _ = first.await;
        assert_eq!(gate.waiting(), 1);
        gate.release(1);
        assert_eq!(
            second.await.ok(),
            Some(2),
            "the release went to the next in line"
        );
    }
}
