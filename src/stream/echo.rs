//! The store's own writes, remembered until the stream shows them, so that a follower does not
//! take them for another writer's changes.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::item::Item;

/// How long a write is expected in the stream. One that does not show by then (a write that
/// changed nothing makes no record) is forgotten; if it shows later, it is taken for another
/// writer's, which costs at most a re-read.
const EXPECTED_FOR: Duration = Duration::from_secs(300);

/// Writes remembered per key at most; older ones are forgotten first.
const PER_KEY: usize = 32;

struct Expected {
    /// The item written, without key and version attributes; `None` for a delete.
    value: Option<Arc<Item>>,
    version: u64,
    at: Instant,
}

/// Writes this store sent whose stream records have not been seen yet.
#[derive(Default)]
pub(crate) struct Echoes {
    keys: Mutex<HashMap<String, VecDeque<Expected>>>,
}

impl Echoes {
    /// Remembers a write of `value` (at `version`) to `key`, about to be sent.
    pub(crate) fn expect(&self, key: &str, value: Option<Arc<Item>>, version: u64) {
        let mut keys = self.keys.lock();
        let queue = keys.entry(key.to_owned()).or_default();
        if queue.len() == PER_KEY {
            queue.pop_front();
        }
        queue.push_back(Expected {
            value,
            version,
            at: Instant::now(),
        });
    }

    /// Whether a record of `key` becoming `value` at `version` is one of this store's writes;
    /// if it is, that write and the ones before it are forgotten (the stream keeps a key's
    /// changes in order).
    pub(crate) fn recognise(&self, key: &str, value: Option<&Item>, version: u64) -> bool {
        let mut keys = self.keys.lock();
        let Some(queue) = keys.get_mut(key) else {
            return false;
        };
        let Some(found) = queue
            .iter()
            .position(|e| e.version == version && e.value.as_deref() == value)
        else {
            return false;
        };
        queue.drain(..=found);
        if queue.is_empty() {
            keys.remove(key);
        }
        true
    }

    /// Forgets writes expected for longer than they should take to show.
    pub(crate) fn forget_old(&self) {
        let now = Instant::now();
        self.keys.lock().retain(|_, queue| {
            queue.retain(|e| now.duration_since(e.at) < EXPECTED_FOR);
            !queue.is_empty()
        });
    }

    /// Forgets everything (the follower lost its place in the stream).
    pub(crate) fn clear(&self) {
        self.keys.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue;

    fn item(n: &str) -> Arc<Item> {
        Arc::new(Item::from([("n".to_string(), AttributeValue::N(n.into()))]))
    }

    #[test]
    fn own_writes_are_recognised_once_and_in_order() {
        let echoes = Echoes::default();
        echoes.expect("k", Some(item("1")), 1);
        echoes.expect("k", Some(item("2")), 2);
        echoes.expect("k", None, 0);
        assert!(
            !echoes.recognise("k", Some(&item("1")), 2),
            "the version must match"
        );
        assert!(!echoes.recognise("other", Some(&item("1")), 1));
        // The second write's record: the first one's is not coming any more.
        assert!(echoes.recognise("k", Some(&item("2")), 2));
        assert!(!echoes.recognise("k", Some(&item("1")), 1));
        assert!(echoes.recognise("k", None, 0));
        assert!(
            !echoes.recognise("k", None, 0),
            "each write is recognised once"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn writes_that_never_show_are_forgotten() {
        let echoes = Echoes::default();
        echoes.expect("k", Some(item("1")), 0);
        tokio::time::advance(EXPECTED_FOR).await;
        echoes.expect("j", Some(item("1")), 0);
        echoes.forget_old();
        assert!(!echoes.recognise("k", Some(&item("1")), 0));
        assert!(echoes.recognise("j", Some(&item("1")), 0));
    }
}
