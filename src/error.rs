//! The one error type of quickstore, with the Go library's error codes.
//!
//! An error prints on one line, three ways:
//!
//! - `Display` is one sentence of its own: what failed and, for a backend request, what went
//!   wrong in a few words (DynamoDB's error code and message when DynamoDB answered, else the
//!   kind of failure). It never repeats its cause, which stays reachable through
//!   [`source`](std::error::Error::source):
//!   `the DynamoDB GetItem request failed: ResourceNotFoundException: Requested resource not
//!   found`, or `the DynamoDB DescribeTable request failed: no response (I/O error)`.
//! - [`Error::report`] is the error and every cause under it, joined with `": "` (what any error
//!   reporter prints, such as `anyhow`'s `{:#}`): `the DynamoDB DescribeTable request failed: no
//!   response (I/O error): client error (Connect): tcp connect error: Connection refused (os
//!   error 111)`.
//! - `Debug` (`{:?}`, what a `main` returning [`Result`] prints after `Error: `) is the code and
//!   the report: `DynamoDBException: the DynamoDB DescribeTable request failed: no credentials
//!   (the client has no credentials provider)`. `{:#?}` is the variant and its fields, with the
//!   causes as a list of their messages, never the AWS SDK's structures.

use std::fmt;
use std::sync::Arc;

use crate::key::{Key, KeyError};

/// A shareable cause, kept as the [`source`](std::error::Error::source) of an [`Error`].
pub type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// The result type of quickstore.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in quickstore.
///
/// [`Error::code`] returns the Go library's error code strings, so code that matched on them
/// keeps working. Errors are cheap to clone (causes are shared), so one failure can be handed
/// to every caller that waited on it.
///
/// # Examples
///
/// Match on the variants an application handles, and let the rest go up; the enum is
/// `non_exhaustive`, so a match needs a catch-all arm. [`is_retryable`](Error::is_retryable)
/// tells whether trying again later may succeed.
///
/// ```
/// use quickstore::{Error, Key, Store};
///
/// /// The HTTP status a service answers a failed `insert` with.
/// fn status(err: &Error) -> u16 {
///     match err {
///         Error::ItemExisted { .. } => 409,
///         Error::Key(_) | Error::Validation { .. } | Error::Serialize { .. } => 400,
///         Error::TooManyRequests { .. } => 429,
///         _ if err.is_retryable() => 503,
///         _ => 500,
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let backend = quickstore::EmbeddedBackend::open(dir.path().join("items.redb"))?;
/// let store = Store::builder(backend).open().await?;
/// let key = Key::new("User", "ada")?;
/// store.insert(&key, &serde_json::json!({"name": "Ada"})).await?;
///
/// let err = store.insert(&key, &serde_json::json!({"name": "Ada"})).await.unwrap_err();
/// assert_eq!(err.code(), "ItemExisted"); // the Go library's code
/// assert_eq!(status(&err), 409);
/// # store.close().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value could not be converted to or from a DynamoDB item; the serializer's or
    /// deserializer's error is the source.
    #[error("the value does not convert to or from a DynamoDB item")]
    Serialize {
        /// What serde reported.
        #[source]
        source: Cause,
    },

    /// `insert` found an item under the key.
    #[error("an item already exists under key `{key}`")]
    ItemExisted {
        /// The key that was taken.
        key: Key,
    },

    /// `update` found no item under the key.
    #[error("no item exists under key `{key}`")]
    ItemNotExisted {
        /// The key that was absent.
        key: Key,
    },

    /// The mutations waiting to be written reached a configured bound (keys or bytes), and
    /// the store's [`Backpressure`](crate::Backpressure) did not wait for room, or waited in
    /// vain. Nothing changed.
    #[error(
        "the writes waiting for the backend fill the store ({pending} of {limit} keys, \
         {pending_bytes} of {byte_limit} bytes); retry once the backend catches up"
    )]
    TooManyRequests {
        /// Keys waiting now.
        pending: usize,
        /// The bound set with [`StoreBuilder::max_pending`](crate::StoreBuilder::max_pending).
        limit: usize,
        /// Bytes of the mutations waiting now.
        pending_bytes: u64,
        /// The bound set with
        /// [`StoreBuilder::max_pending_bytes`](crate::StoreBuilder::max_pending_bytes).
        byte_limit: u64,
    },

    /// The store was closed; no call succeeds after [`Store::close`](crate::Store::close).
    #[error("the store is closed")]
    Closed,

    /// The backend (DynamoDB, the embedded database, or another [`Backend`](crate::backend::Backend))
    /// failed or refused a request.
    ///
    /// Its code is `DynamoDBException` whatever the backend, as in the Go library, so that code
    /// matching on codes keeps working.
    #[error(transparent)]
    Backend(Box<BackendError>),

    /// Writes the backend refused for good, reported by [`Store::flush`](crate::Store::flush)
    /// or [`Store::close`](crate::Store::close): every refused write a call covers, each
    /// reported until a call has reported it once. Code `DynamoDBException`, like
    /// [`Error::Backend`]; [`Error::backend`] gives the first refusal.
    #[error(transparent)]
    Refused(Box<Refusals>),

    /// [`Store::flush_within`](crate::Store::flush_within) or
    /// [`close_within`](crate::Store::close_within) ran out of time. The store is still usable
    /// after a flush that timed out, and a later `close` drains what is left.
    #[error(
        "{remaining} keys still had mutations waiting for the backend after {waited:?}; {}",
        if *journaled {
            "they are safe in the journal and are written when the backend is back"
        } else {
            "without a journal they live in memory only, until the backend takes them"
        }
    )]
    Timeout {
        /// Keys whose mutations were not yet in the backend.
        remaining: usize,
        /// Whether those mutations are in the journal.
        journaled: bool,
        /// How long the call waited.
        waited: std::time::Duration,
    },

    /// The crash journal has no disk space for the mutation's record: its disk is full. The
    /// mutation was refused before anything changed: nothing is applied, nothing acknowledged.
    /// Trying again later may succeed: the journal takes mutations again as soon as it can
    /// reserve space, and frees its own as the backend takes what it holds. Code
    /// `JournalException`, like [`Error::Journal`].
    ///
    /// The journal reserves disk space ahead of its writes (8 MiB at a time), so that a full
    /// disk refuses a mutation at call time and never fails a write the journal took. That
    /// needs a file system that can reserve space (Linux's `fallocate`: ext4, XFS, Btrfs,
    /// tmpfs and others); elsewhere a full disk fails the journal, as [`Error::Journal`].
    #[error("the journal's disk is full ({}): the mutation was refused", dir.display())]
    JournalFull {
        /// The journal's directory.
        dir: std::path::PathBuf,
    },

    /// The crash journal could not be read or written, or is damaged.
    ///
    /// From a mutation, it means the journal failed while the mutation waited for it: the
    /// mutation is applied in memory and will be written to the backend, but it may not be
    /// on disk, so a crash may lose it. Retrying a [`Store::apply`](crate::Store::apply) would
    /// apply its delta twice.
    #[error("{message}")]
    Journal {
        /// What went wrong, naming the file.
        message: String,
        /// The I/O or decoding error, if any.
        #[source]
        source: Option<Cause>,
    },

    /// A key could not be built, parsed, or used with the store's registry of kinds.
    #[error(transparent)]
    Key(#[from] KeyError),

    /// Other invalid input: an oversized item, a misconfigured store or table.
    #[error("{message}")]
    Validation {
        /// What was wrong with the input.
        message: String,
    },
}

impl Error {
    /// The error's code, as the Go library spelled it. `ValidationException` (bad keys, items
    /// and options) and `JournalException` are new; [`Error::Backend`] is `DynamoDBException`
    /// for every backend.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Serialize { .. } => "SerializeException",
            Error::ItemExisted { .. } => "ItemExisted",
            Error::ItemNotExisted { .. } => "ItemNotExisted",
            Error::TooManyRequests { .. } => "TooManyRequests",
            Error::Closed => "Closed",
            Error::Backend(_) | Error::Refused(_) => "DynamoDBException",
            Error::Timeout { .. } => "Timeout",
            Error::Key(_) | Error::Validation { .. } => "ValidationException",
            Error::Journal { .. } | Error::JournalFull { .. } => "JournalException",
        }
    }

    /// True when repeating the operation may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Backend(err) => err.is_retryable(),
            Error::TooManyRequests { .. } | Error::Timeout { .. } | Error::JournalFull { .. } => {
                true
            }
            _ => false,
        }
    }

    /// True when the backend said to slow down (throttling).
    pub fn is_throttle(&self) -> bool {
        self.backend().is_some_and(BackendError::is_throttle)
    }

    /// The backend's error, if this is one.
    pub fn backend(&self) -> Option<&BackendError> {
        match self {
            Error::Backend(err) => Some(err),
            Error::Refused(refusals) => refusals.errors.first(),
            _ => None,
        }
    }

    /// DynamoDB's error code (`ProvisionedThroughputExceededException`,
    /// `ValidationException`, ...), when DynamoDB answered with one.
    pub fn service_code(&self) -> Option<&str> {
        self.backend().and_then(BackendError::service_code)
    }

    /// DynamoDB's request id, when DynamoDB answered; quote it to AWS support.
    pub fn request_id(&self) -> Option<&str> {
        self.backend().and_then(BackendError::request_id)
    }

    /// The error and every cause under it, joined with `": "`, on one line.
    pub fn report(&self) -> Report<'_> {
        Report(self)
    }

    /// A backend failure that may succeed when repeated (throttling, 5xx, timeouts, I/O).
    ///
    /// For implementors of [`Backend`](crate::backend::Backend); `message` is shown after the
    /// operation, so it should not repeat the text of `source`.
    pub fn transient(
        operation: &'static str,
        message: impl Into<String>,
        source: Option<Cause>,
    ) -> Self {
        BackendError::new("backend", operation, true)
            .with_message(message)
            .with_source(source)
            .into()
    }

    /// A backend failure that will fail again if repeated (validation, missing table, access).
    ///
    /// For implementors of [`Backend`](crate::backend::Backend); see [`Error::transient`].
    pub fn permanent(
        operation: &'static str,
        message: impl Into<String>,
        source: Option<Cause>,
    ) -> Self {
        BackendError::new("backend", operation, false)
            .with_message(message)
            .with_source(source)
            .into()
    }

    /// A backend's answer that the request was throttled: transient, and counted in
    /// [`Stats::throttles`](crate::Stats::throttles).
    ///
    /// For implementors of [`Backend`](crate::backend::Backend); see [`Error::transient`].
    pub fn throttled(operation: &'static str, message: impl Into<String>) -> Self {
        let mut err = BackendError::new("backend", operation, true).with_message(message);
        err.throttle = true;
        err.into()
    }

    /// The same error, saying what was attempted before giving up on it (and what remains).
    pub(crate) fn gave_up(self, context: String) -> Self {
        match self {
            Error::Backend(mut err) => {
                err.gave_up = Some(context);
                Error::Backend(err)
            }
            other => other,
        }
    }

    pub(crate) fn validation(message: impl Into<String>) -> Self {
        Error::Validation {
            message: message.into(),
        }
    }

    /// A journal failure: `message` says what was being done, `err` why it failed.
    pub(crate) fn journal(
        message: impl Into<String>,
        err: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Journal {
            message: message.into(),
            source: Some(Arc::new(err)),
        }
    }

    pub(crate) fn serialize(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Serialize {
            source: Arc::new(err),
        }
    }
}

impl From<BackendError> for Error {
    fn from(err: BackendError) -> Self {
        Error::Backend(Box::new(err))
    }
}

/// A failed or refused backend request: which backend and operation, whether repeating it may
/// succeed, and what the service said.
///
/// `Display` names the backend, the operation and (for a refused write) the key, then what went
/// wrong in a few words. For DynamoDB that is DynamoDB's error code and message when DynamoDB
/// answered (`the DynamoDB GetItem request failed: ResourceNotFoundException: Requested resource
/// not found`), and otherwise the kind of failure (`no response (I/O error)`, `no response in
/// time`, `no credentials (...)`), with the details below it as the
/// [`source`](std::error::Error::source) (`client error (Connect): tcp connect error: Connection
/// refused (os error 111)`). The SDK's error itself, whose text the message and sources already
/// tell, is [`BackendError::original`], for downcasting.
#[derive(Clone)]
pub struct BackendError {
    backend: &'static str,
    operation: &'static str,
    retryable: bool,
    key: Option<String>,
    message: Option<String>,
    service_code: Option<String>,
    request_id: Option<String>,
    /// The backend's own error, whole.
    original: Option<Cause>,
    /// How many levels of `original`'s chain (itself the first) `message` already tells:
    /// `source()` starts below them.
    told: usize,
    throttle: bool,
    /// What was attempted before the store gave up on the request.
    gave_up: Option<String>,
}

impl BackendError {
    /// An error of `operation` on `backend` (a short name such as `"DynamoDB"`).
    pub(crate) fn new(backend: &'static str, operation: &'static str, retryable: bool) -> Self {
        Self {
            backend,
            operation,
            retryable,
            key: None,
            message: None,
            service_code: None,
            request_id: None,
            original: None,
            told: 0,
            throttle: false,
            gave_up: None,
        }
    }

    /// Sets what went wrong, in a few words on one line (line breaks become spaces).
    pub(crate) fn with_message(mut self, message: impl Into<String>) -> Self {
        let message = message.into();
        let message = if message.contains(['\n', '\r']) {
            message.split_whitespace().collect::<Vec<_>>().join(" ")
        } else {
            message
        };
        self.message = (!message.is_empty()).then_some(message);
        self
    }

    /// Sets the cause: the [`source`](std::error::Error::source), which the message does not
    /// repeat.
    pub(crate) fn with_source(self, source: Option<Cause>) -> Self {
        self.with_original(source, 0)
    }

    /// Sets the backend's own error, whose first `told` levels (itself, then its sources) the
    /// message already tells: `source()` is what lies below them.
    pub(crate) fn with_original(mut self, original: Option<Cause>, told: usize) -> Self {
        self.original = original;
        self.told = told;
        self
    }

    pub(crate) fn throttling(mut self, throttle: bool) -> Self {
        self.throttle = throttle;
        self
    }

    pub(crate) fn with_service(mut self, code: Option<&str>, request_id: Option<&str>) -> Self {
        self.service_code = code.map(str::to_owned);
        self.request_id = request_id.map(str::to_owned);
        self
    }

    /// The same error, as the refusal of the write of `key`: never retried.
    pub(crate) fn refusing(&self, key: &str) -> Self {
        let mut refused = self.clone();
        refused.key = Some(key.to_owned());
        refused.retryable = false;
        refused
    }

    /// The backend's short name: `"DynamoDB"`, `"embedded database"`, `"in-memory table"`
    /// (`testing::MemoryBackend`), or `"backend"` for other implementations.
    pub fn backend(&self) -> &str {
        self.backend
    }

    /// The request that failed, e.g. `"BatchWriteItem"`.
    pub fn operation(&self) -> &str {
        self.operation
    }

    /// True when repeating the request may succeed (throttling, 5xx, timeouts, I/O).
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// True when the backend said to slow down: DynamoDB's throttling error codes, or HTTP 429.
    pub fn is_throttle(&self) -> bool {
        self.throttle
    }

    /// What the store attempted before it gave up on a read, and what was left, e.g.
    /// `"gave up after 8 attempts over 1.2s; 130 of 260 keys unread"`.
    pub fn gave_up(&self) -> Option<&str> {
        self.gave_up.as_deref()
    }

    /// The rendered key whose write was refused, for a refusal reported by `flush`/`close`.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// The service's error code, when the service answered with one.
    pub fn service_code(&self) -> Option<&str> {
        self.service_code.as_deref()
    }

    /// The service's request id, when the service answered.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// The backend's own error, whole, to downcast: for DynamoDB, the SDK's operation error
    /// (for example `aws_sdk_dynamodb::operation::get_item::GetItemError`) when DynamoDB
    /// answered, and otherwise the SDK's `SdkError<OperationError, HttpResponse>`.
    ///
    /// Its text is already told by `Display` and [`source`](std::error::Error::source), which
    /// leave out what would repeat it (DynamoDB's message, the SDK's names for its failure
    /// kinds); for other backends it is the source itself.
    pub fn original(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.original.as_deref()
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(
                f,
                "the {} refused the write of key `{key}` ({})",
                self.backend, self.operation
            )?,
            None => write!(f, "the {} {} request failed", self.backend, self.operation)?,
        }
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        if let Some(gave_up) = &self.gave_up {
            write!(f, " ({gave_up})")?;
        }
        Ok(())
    }
}

impl std::error::Error for BackendError {
    /// What lies below the message: the backend's own error, less the levels the message tells.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        let mut err: &(dyn std::error::Error + 'static) = self.original.as_deref()?;
        for _ in 0..self.told {
            err = err.source()?;
        }
        Some(err)
    }
}

/// `{:?}` is the error and its sources on one line, as [`Error::report`] prints them;
/// `{:#?}` is a struct of the fields that are set, with the sources as a list of their messages.
impl fmt::Debug for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !f.alternate() {
            return write!(f, "{}", Chain(self));
        }
        let mut out = f.debug_struct("BackendError");
        out.field("backend", &self.backend)
            .field("operation", &self.operation);
        if let Some(key) = &self.key {
            out.field("key", key);
        }
        if let Some(message) = &self.message {
            out.field("message", message);
        }
        if let Some(code) = &self.service_code {
            out.field("service_code", code);
        }
        if let Some(request_id) = &self.request_id {
            out.field("request_id", request_id);
        }
        out.field("retryable", &self.retryable)
            .field("throttle", &self.throttle);
        if let Some(gave_up) = &self.gave_up {
            out.field("gave_up", gave_up);
        }
        out.field("sources", &Sources(std::error::Error::source(self)))
            .finish()
    }
}

/// Refusals kept in full in a [`Refusals`]; beyond them, only counted.
const REFUSALS_KEPT: usize = 16;

/// The writes the backend refused for good that one `flush` or `close` reports: the first
/// few in full, and how many there were.
#[derive(Debug, Clone, Default)]
pub struct Refusals {
    errors: Vec<BackendError>,
    total: usize,
}

impl Refusals {
    /// Adds a refusal: an [`Error::Backend`] naming its key (anything else is kept as its
    /// report).
    pub(crate) fn push(&mut self, err: &Error) {
        self.total += 1;
        if self.errors.len() < REFUSALS_KEPT {
            let err = match err {
                Error::Backend(backend) => (**backend).clone(),
                other => BackendError::new("backend", "write", false)
                    .with_message(other.report().to_string()),
            };
            self.errors.push(err);
        }
    }

    /// Whether there are none.
    pub(crate) fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The refusal as an error, if there is any.
    pub(crate) fn into_result(self) -> Result<()> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(Error::Refused(Box::new(self)))
        }
    }

    /// How many writes were refused.
    pub fn total(&self) -> usize {
        self.total
    }

    /// The first refusals (up to 16), each naming its key.
    pub fn errors(&self) -> &[BackendError] {
        &self.errors
    }

    /// The rendered keys of the first refusals.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.errors.iter().filter_map(BackendError::key)
    }
}

impl fmt::Display for Refusals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let writes = if self.total == 1 { "write" } else { "writes" };
        write!(f, "the backend refused {} {writes} for good", self.total)?;
        let keys: Vec<_> = self.keys().map(|k| format!("`{k}`")).collect();
        if !keys.is_empty() {
            write!(f, ", of key {}", keys.join(", "))?;
        }
        if self.total > self.errors.len() {
            write!(f, " and {} more", self.total - self.errors.len())?;
        }
        Ok(())
    }
}

impl std::error::Error for Refusals {
    /// The first refusal.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.errors
            .first()
            .map(|first| first as &(dyn std::error::Error + 'static))
    }
}

/// Displays an error with its chain of causes; made by [`Error::report`].
#[derive(Debug, Clone, Copy)]
pub struct Report<'a>(&'a Error);

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", Chain(self.0))
    }
}

/// An error and every cause under it, joined with `": "`.
struct Chain<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(err) = cause {
            write!(f, ": {err}")?;
            cause = err.source();
        }
        Ok(())
    }
}

/// An error and every cause under it, debug-printed as a list of their messages.
struct Sources<'a>(Option<&'a (dyn std::error::Error + 'static)>);

impl fmt::Debug for Sources<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        let mut cause = self.0;
        while let Some(err) = cause {
            list.entry(&err.to_string());
            cause = err.source();
        }
        list.finish()
    }
}

/// `{:?}` is the code and the report on one line, the form a `main` returning
/// [`Result`] prints: `DynamoDBException: the DynamoDB GetItem request failed: ...`.
/// `{:#?}` is the variant and its fields, causes as lists of their messages.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !f.alternate() {
            return write!(f, "{}: {}", self.code(), self.report());
        }
        match self {
            Error::Serialize { source } => f
                .debug_struct("Serialize")
                .field("sources", &Sources(Some(&**source)))
                .finish(),
            Error::ItemExisted { key } => f.debug_struct("ItemExisted").field("key", key).finish(),
            Error::ItemNotExisted { key } => {
                f.debug_struct("ItemNotExisted").field("key", key).finish()
            }
            Error::TooManyRequests {
                pending,
                limit,
                pending_bytes,
                byte_limit,
            } => f
                .debug_struct("TooManyRequests")
                .field("pending", pending)
                .field("limit", limit)
                .field("pending_bytes", pending_bytes)
                .field("byte_limit", byte_limit)
                .finish(),
            Error::Closed => f.write_str("Closed"),
            Error::Backend(err) => f.debug_tuple("Backend").field(err).finish(),
            Error::Refused(refusals) => f.debug_tuple("Refused").field(refusals).finish(),
            Error::Timeout {
                remaining,
                journaled,
                waited,
            } => f
                .debug_struct("Timeout")
                .field("remaining", remaining)
                .field("journaled", journaled)
                .field("waited", waited)
                .finish(),
            Error::Journal { message, source } => f
                .debug_struct("Journal")
                .field("message", message)
                .field(
                    "sources",
                    &Sources(
                        source
                            .as_deref()
                            .map(|s| s as &(dyn std::error::Error + 'static)),
                    ),
                )
                .finish(),
            Error::JournalFull { dir } => f.debug_struct("JournalFull").field("dir", dir).finish(),
            Error::Key(err) => f.debug_tuple("Key").field(err).finish(),
            Error::Validation { message } => f
                .debug_struct("Validation")
                .field("message", message)
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_go_library() -> Result<(), KeyError> {
        let key = || Key::new("User", "1");
        let io = std::io::Error::other("boom");
        let cases = [
            (Error::serialize(io), "SerializeException"),
            (Error::ItemExisted { key: key()? }, "ItemExisted"),
            (Error::ItemNotExisted { key: key()? }, "ItemNotExisted"),
            (
                Error::TooManyRequests {
                    pending: 1,
                    limit: 1,
                    pending_bytes: 0,
                    byte_limit: 1,
                },
                "TooManyRequests",
            ),
            (Error::Closed, "Closed"),
            (
                Error::transient("GetItem", "down", None),
                "DynamoDBException",
            ),
            (Error::validation("bad"), "ValidationException"),
            (Error::Key(KeyError::EmptyKind), "ValidationException"),
            (
                Error::Journal {
                    message: "x".into(),
                    source: None,
                },
                "JournalException",
            ),
        ];
        for (err, code) in cases {
            assert_eq!(err.code(), code);
            assert_eq!(err.clone().code(), code);
        }
        Ok(())
    }

    #[test]
    fn display_is_one_sentence_with_the_details() -> Result<(), KeyError> {
        let err = Error::ItemExisted {
            key: Key::new("User", "1")?,
        };
        assert_eq!(err.to_string(), "an item already exists under key `User1`");
        let err = Error::TooManyRequests {
            pending: 10,
            limit: 10,
            pending_bytes: 5,
            byte_limit: 20,
        };
        assert!(
            err.to_string().contains("10 of 10 keys, 5 of 20 bytes"),
            "{err}"
        );
        assert!(!err.to_string().contains('\n'));
        Ok(())
    }

    #[test]
    fn display_never_repeats_the_source() {
        use std::error::Error as _;
        let inner = std::io::Error::other("disk on fire");
        let errors = [
            Error::journal("cannot write /j/00000001.log", inner),
            Error::serialize(std::io::Error::other("disk on fire")),
            Error::permanent(
                "PutItem",
                "",
                Some(Arc::new(std::io::Error::other("disk on fire"))),
            ),
        ];
        for err in errors {
            assert!(!err.to_string().contains("disk on fire"), "{err}");
            let source = err.source().map(ToString::to_string);
            assert_eq!(source.as_deref(), Some("disk on fire"));
            assert!(err.report().to_string().ends_with(": disk on fire"));
        }
    }

    #[test]
    fn backend_errors_name_backend_operation_and_key() {
        let err = BackendError::new("embedded database", "BatchWriteItem", true)
            .with_message("the batch is empty");
        assert_eq!(
            err.to_string(),
            "the embedded database BatchWriteItem request failed: the batch is empty"
        );
        let refused = err.refusing("User1");
        assert!(!refused.is_retryable());
        assert_eq!(refused.key(), Some("User1"));
        assert_eq!(
            refused.to_string(),
            "the embedded database refused the write of key `User1` (BatchWriteItem): the batch is empty"
        );
        let err = Error::from(
            BackendError::new("DynamoDB", "GetItem", true)
                .with_service(Some("ThrottlingException"), Some("REQ1")),
        );
        assert_eq!(err.service_code(), Some("ThrottlingException"));
        assert_eq!(err.request_id(), Some("REQ1"));
        assert!(err.is_retryable());
        assert!(!Error::permanent("GetItem", "no", None).is_retryable());
    }

    /// An I/O error under a wrapper that says what failed: a two-level chain, as SDKs make.
    #[derive(Debug)]
    struct Wrapper(std::io::Error);

    impl fmt::Display for Wrapper {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("dispatch failure")
        }
    }

    impl std::error::Error for Wrapper {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    fn refused_connection() -> Cause {
        Arc::new(Wrapper(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused",
        )))
    }

    #[test]
    fn the_source_starts_below_what_the_message_tells() {
        use std::error::Error as _;
        // The message tells the wrapper's part: the source is the I/O error under it.
        let err = BackendError::new("DynamoDB", "GetItem", true)
            .with_message("no response (I/O error)")
            .with_original(Some(refused_connection()), 1);
        assert_eq!(
            err.to_string(),
            "the DynamoDB GetItem request failed: no response (I/O error)"
        );
        let source = err.source().map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("Connection refused"));
        // The original stays whole, to downcast.
        let original = err.original().and_then(|e| e.downcast_ref::<Wrapper>());
        assert!(original.is_some());
        // A message that tells the whole chain leaves no source.
        let err = err.with_original(Some(refused_connection()), 2);
        assert!(err.source().is_none());
        let err = err.with_original(Some(refused_connection()), 7);
        assert!(err.source().is_none());
        // A plain source is told by nothing.
        let err = Error::transient("GetItem", "down", Some(refused_connection()));
        assert_eq!(
            err.report().to_string(),
            "the backend GetItem request failed: down: dispatch failure: Connection refused"
        );
    }

    #[test]
    fn messages_are_one_line() {
        let err = BackendError::new("DynamoDB", "PutItem", false)
            .with_message("ValidationException: one\n  two\r\nthree");
        assert_eq!(
            err.to_string(),
            "the DynamoDB PutItem request failed: ValidationException: one two three"
        );
    }

    #[test]
    fn debug_is_the_code_and_the_report_on_one_line() -> Result<(), KeyError> {
        let err = Error::from(
            BackendError::new("DynamoDB", "GetItem", true)
                .with_message("no response (I/O error)")
                .with_original(Some(refused_connection()), 1),
        );
        assert_eq!(
            format!("{err:?}"),
            "DynamoDBException: the DynamoDB GetItem request failed: no response (I/O error): \
             Connection refused"
        );
        // Inside another value's `Debug`, such as a result in a failed `assert_eq!`.
        assert_eq!(
            format!("{:?}", Err::<(), _>(Error::Closed)),
            "Err(Closed: the store is closed)"
        );
        let err = Error::ItemExisted {
            key: Key::new("User", "1")?,
        };
        assert_eq!(
            format!("{err:?}"),
            "ItemExisted: an item already exists under key `User1`"
        );
        let err = Error::journal(
            "cannot write /j/00000001.log",
            std::io::Error::other("disk full"),
        );
        assert_eq!(
            format!("{err:?}"),
            "JournalException: cannot write /j/00000001.log: disk full"
        );
        let backend = BackendError::new("embedded database", "Open", false)
            .with_message("cannot open /db")
            .with_source(Some(Arc::new(std::io::Error::other("locked"))));
        assert_eq!(
            format!("{backend:?}"),
            "the embedded database Open request failed: cannot open /db: locked"
        );
        Ok(())
    }

    #[test]
    fn alternate_debug_is_a_struct_with_the_sources_as_text() {
        let err = Error::from(
            BackendError::new("DynamoDB", "GetItem", false)
                .with_message("ResourceNotFoundException: Requested resource not found")
                .with_service(Some("ResourceNotFoundException"), Some("REQ1")),
        );
        assert_eq!(
            format!("{err:#?}"),
            r#"Backend(
    BackendError {
        backend: "DynamoDB",
        operation: "GetItem",
        message: "ResourceNotFoundException: Requested resource not found",
        service_code: "ResourceNotFoundException",
        request_id: "REQ1",
        retryable: false,
        throttle: false,
        sources: [],
    },
)"#
        );
        let err = Error::from(
            BackendError::new("DynamoDB", "GetItem", true)
                .with_message("no response (I/O error)")
                .with_original(Some(refused_connection()), 1),
        );
        let alternate = format!("{err:#?}");
        assert!(
            alternate.contains("sources: [\n            \"Connection refused\",\n        ],"),
            "{alternate}"
        );
        assert!(!alternate.contains("Wrapper"), "{alternate}");
        let err = Error::serialize(std::io::Error::other("not a map"));
        assert_eq!(
            format!("{err:#?}"),
            "Serialize {\n    sources: [\n        \"not a map\",\n    ],\n}"
        );
    }

    #[test]
    fn refusals_debug_names_each_refusal() {
        let mut refusals = Refusals::default();
        let refused = BackendError::new("DynamoDB", "BatchWriteItem", false)
            .with_message("ValidationException: too big")
            .refusing("User1");
        refusals.push(&Error::from(refused));
        let err = Error::Refused(Box::new(refusals));
        assert_eq!(
            format!("{err:?}"),
            "DynamoDBException: the backend refused 1 write for good, of key `User1`: the \
             DynamoDB refused the write of key `User1` (BatchWriteItem): ValidationException: \
             too big"
        );
        assert!(format!("{err:#?}").contains("key: \"User1\""));
    }

    #[test]
    fn errors_are_send_sync_static() {
        fn assert_bounds<T: Send + Sync + 'static>() {}
        assert_bounds::<Error>();
    }
}
