//! The one error type of quickstore, with the Go library's error codes.

use std::sync::Arc;

use crate::key::Key;

/// A shareable cause, kept as the [`source`](std::error::Error::source) of an [`Error`].
pub type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// The result type of quickstore.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in quickstore.
///
/// [`Error::code`] returns the Go library's error code strings, so code that matched on them
/// keeps working.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value could not be converted to or from a DynamoDB item.
    #[error("the value could not be converted to or from a DynamoDB item: {message}")]
    Serialize {
        /// What went wrong.
        message: String,
        /// The serializer's error, if any.
        #[source]
        source: Option<Cause>,
    },

    /// `insert` found an item under the key.
    #[error("an item already exists under key `{key}`")]
    ItemExisted {
        /// The key that was taken.
        key: Key,
    },

    /// `update`, or a typed `get`, found no item under the key.
    #[error("no item exists under key `{key}`")]
    ItemNotExisted {
        /// The key that was absent.
        key: Key,
    },

    /// The number of mutations waiting to be written reached the configured limit.
    #[error("{pending} mutations are waiting to be written, which is the configured limit of {limit}; retry once the backend catches up")]
    TooManyRequests {
        /// Mutations waiting now.
        pending: usize,
        /// The limit set with [`StoreBuilder::max_pending`](crate::StoreBuilder::max_pending).
        limit: usize,
    },

    /// The store was closed; no call succeeds after [`Store::close`](crate::Store::close).
    #[error("the store is closed")]
    Closed,

    /// DynamoDB, or the backend standing in for it, failed or refused a request.
    #[error("{operation} failed: {message}")]
    DynamoDb {
        /// The backend operation, e.g. `BatchWriteItem`.
        operation: &'static str,
        /// The service's error code and message, or what else went wrong.
        message: String,
        /// Whether repeating the request may succeed (throttling, 5xx, timeouts, I/O).
        retryable: bool,
        /// The SDK's (or the embedded database's) error.
        #[source]
        source: Option<Cause>,
    },

    /// The crash journal could not be read or written, or is damaged.
    #[error("{message}")]
    Journal {
        /// What went wrong, naming the file.
        message: String,
        /// The I/O or decoding error, if any.
        #[source]
        source: Option<Cause>,
    },

    /// The input was invalid: a bad key, an oversized item, a misconfigured store or table.
    #[error("{message}")]
    Validation {
        /// What was wrong with the input.
        message: String,
    },
}

impl Error {
    /// The error's code, as the Go library spelled it (`ValidationException` is new).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Serialize { .. } => "SerializeException",
            Error::ItemExisted { .. } => "ItemExisted",
            Error::ItemNotExisted { .. } => "ItemNotExisted",
            Error::TooManyRequests { .. } => "TooManyRequests",
            Error::Closed => "Closed",
            Error::DynamoDb { .. } => "DynamoDBException",
            Error::Validation { .. } => "ValidationException",
            Error::Journal { .. } => "JournalException",
        }
    }

    /// True when repeating the operation may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::DynamoDb { retryable, .. } => *retryable,
            Error::TooManyRequests { .. } => true,
            _ => false,
        }
    }

    /// A backend failure that may succeed when repeated (throttling, 5xx, timeouts, I/O).
    ///
    /// For implementors of [`Backend`](crate::Backend).
    pub fn transient(
        operation: &'static str,
        message: impl Into<String>,
        source: Option<Cause>,
    ) -> Self {
        Error::DynamoDb {
            operation,
            message: message.into(),
            retryable: true,
            source,
        }
    }

    /// A backend failure that will fail again if repeated (validation, missing table, access).
    ///
    /// For implementors of [`Backend`](crate::Backend).
    pub fn permanent(
        operation: &'static str,
        message: impl Into<String>,
        source: Option<Cause>,
    ) -> Self {
        Error::DynamoDb {
            operation,
            message: message.into(),
            retryable: false,
            source,
        }
    }

    pub(crate) fn validation(message: impl Into<String>) -> Self {
        Error::Validation {
            message: message.into(),
        }
    }

    pub(crate) fn journal(
        message: impl Into<String>,
        err: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Journal {
            message: format!("{}: {err}", message.into()),
            source: Some(Arc::new(err)),
        }
    }

    pub(crate) fn serialize(err: serde_dynamo::Error) -> Self {
        Error::Serialize {
            message: err.to_string(),
            source: Some(Arc::new(err)),
        }
    }

    /// A copy for another waiter: the same variant, message and cause.
    pub(crate) fn duplicate(&self) -> Self {
        match self {
            Error::Serialize { message, source } => Error::Serialize {
                message: message.clone(),
                source: source.clone(),
            },
            Error::ItemExisted { key } => Error::ItemExisted { key: key.clone() },
            Error::ItemNotExisted { key } => Error::ItemNotExisted { key: key.clone() },
            Error::TooManyRequests { pending, limit } => Error::TooManyRequests {
                pending: *pending,
                limit: *limit,
            },
            Error::Closed => Error::Closed,
            Error::DynamoDb {
                operation,
                message,
                retryable,
                source,
            } => Error::DynamoDb {
                operation,
                message: message.clone(),
                retryable: *retryable,
                source: source.clone(),
            },
            Error::Validation { message } => Error::validation(message.clone()),
            Error::Journal { message, source } => Error::Journal {
                message: message.clone(),
                source: source.clone(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_go_library() {
        let key = Key::new("User", "1");
        let io = std::io::Error::other("boom");
        let cases = [
            (
                Error::Serialize {
                    message: "x".into(),
                    source: None,
                },
                "SerializeException",
            ),
            (Error::ItemExisted { key: key.clone() }, "ItemExisted"),
            (Error::ItemNotExisted { key }, "ItemNotExisted"),
            (
                Error::TooManyRequests {
                    pending: 1,
                    limit: 1,
                },
                "TooManyRequests",
            ),
            (Error::Closed, "Closed"),
            (
                Error::transient("GetItem", "down", Some(Arc::new(io))),
                "DynamoDBException",
            ),
            (Error::validation("bad"), "ValidationException"),
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
            assert_eq!(err.duplicate().code(), code);
        }
    }

    #[test]
    fn display_is_one_sentence_with_the_details() {
        let err = Error::ItemExisted {
            key: Key::new("User", "1"),
        };
        assert_eq!(err.to_string(), "an item already exists under key `User1`");
        let err = Error::TooManyRequests {
            pending: 10,
            limit: 10,
        };
        assert!(err.to_string().contains("limit of 10"));
        assert!(!err.to_string().contains('\n'));
    }

    #[test]
    fn backend_errors_keep_their_source() {
        use std::error::Error as _;
        let err = Error::permanent(
            "PutItem",
            "ValidationException: too big",
            Some(Arc::new(std::io::Error::other("inner"))),
        );
        assert_eq!(
            err.to_string(),
            "PutItem failed: ValidationException: too big"
        );
        assert_eq!(
            err.source().map(ToString::to_string).as_deref(),
            Some("inner")
        );
        assert!(!err.is_retryable());
        assert!(Error::transient("GetItem", "slow down", None).is_retryable());
    }

    #[test]
    fn errors_are_send_sync_static() {
        fn assert_bounds<T: Send + Sync + 'static>() {}
        assert_bounds::<Error>();
    }
}
