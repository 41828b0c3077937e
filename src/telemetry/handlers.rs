//! What the application's handlers are told: a write refused for good ([`Refused`]), and a
//! versioned write that lost a race ([`Conflict`](crate::Conflict), in `version`).

use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::item::{self, Item};
use crate::key::Key;
use crate::version::ConflictHandler;

/// A write the backend refused for good, as reported to the handler set with
/// [`StoreBuilder::on_refused`](crate::StoreBuilder::on_refused).
///
/// The store has forgotten the key's pending state by then (the next read goes to the
/// backend), counted the refusal in [`Stats::rejected_writes`](crate::Stats::rejected_writes),
/// logged it, dead-lettered it when there is a journal, and will report it from the next
/// [`Store::flush`](crate::Store::flush) or [`Store::close`](crate::Store::close) that covers it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Refused {
    /// The key, as the store's caller built it (see [`Conflict::key`](crate::Conflict::key)).
    pub key: Key,
    /// The state the store tried to write (`None`: a delete), without the partition key
    /// attribute and versioned mode's attributes.
    pub state: Option<Arc<Item>>,
    /// Why: the backend's error, naming the key.
    pub error: Error,
}

impl Refused {
    /// The state the store tried to write, read as a `T`; `None` for a delete.
    ///
    /// # Errors
    ///
    /// [`Error::Serialize`] when the item does not fit `T`.
    pub fn state<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        self.state.as_deref().map(item::to_value).transpose()
    }
}

/// Called once per refused write, on the flusher's task: keep it short.
pub(crate) type RefusedHandler = Arc<dyn Fn(&Refused) + Send + Sync>;

/// The application's handlers, as given to the builder.
#[derive(Default)]
pub(crate) struct Handlers {
    pub on_conflict: Option<ConflictHandler>,
    pub on_refused: Option<RefusedHandler>,
}
