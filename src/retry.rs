//! Retrying: exponential backoff with full jitter, and the one place that decides which AWS SDK
//! errors are worth repeating.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use rand::Rng as _;

use crate::error::Error;

/// The first backoff delay's upper bound.
const BASE_DELAY: Duration = Duration::from_millis(25);

/// The largest backoff delay.
const MAX_DELAY: Duration = Duration::from_secs(5);

/// Attempts a read makes before it reports a transient failure to the caller. Writes, which have
/// been acknowledged already, retry without limit.
pub(crate) const READ_ATTEMPTS: u32 = 8;

/// DynamoDB error codes that mean "slow down or try again".
const RETRYABLE_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "Throttling",
    "RequestLimitExceeded",
    "LimitExceededException",
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "TransactionConflictException",
];

/// Exponential backoff with full jitter: the n-th delay is uniform in
/// `[0, min(MAX_DELAY, BASE_DELAY * 2^n)]`.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    attempt: u32,
}

impl Backoff {
    /// Attempts made so far.
    pub(crate) fn attempts(&self) -> u32 {
        self.attempt
    }

    /// The next delay; each call doubles the bound until it reaches the cap.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let bound = BASE_DELAY
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(MAX_DELAY);
        self.attempt = self.attempt.saturating_add(1);
        let micros = u64::try_from(bound.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(rand::rng().random_range(0..=micros))
    }

    /// Sleeps for the next delay.
    pub(crate) async fn wait(&mut self) {
        tokio::time::sleep(self.next_delay()).await;
    }
}

/// Converts an AWS SDK error into an [`Error::DynamoDb`], classifying it as retryable or not.
///
/// Retryable: throttling and server-side error codes, HTTP 429 and 5xx, timeouts, I/O failures
/// while dispatching, and unreadable responses. Everything else (validation, missing tables,
/// access denied, bad requests) is permanent.
pub(crate) fn from_sdk<E, R>(operation: &'static str, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    let (retryable, message) = match &err {
        SdkError::ServiceError(service) => {
            let inner = service.err();
            let code = inner.code().unwrap_or("UnknownError");
            let status = service_status(&err);
            let retryable =
                RETRYABLE_CODES.contains(&code) || status.is_some_and(|s| s == 429 || s >= 500);
            let message = match inner.message() {
                Some(message) => format!("{code}: {message}"),
                None => code.to_owned(),
            };
            (retryable, message)
        }
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            (true, DisplayErrorContext(&err).to_string())
        }
        SdkError::DispatchFailure(failure) => {
            let retryable = failure.is_io() || failure.is_timeout() || failure.is_other();
            (retryable, DisplayErrorContext(&err).to_string())
        }
        _ => (false, DisplayErrorContext(&err).to_string()),
    };
    Error::DynamoDb {
        operation,
        message,
        retryable,
        source: Some(Arc::new(err)),
    }
}

fn service_status<E, R: Debug + 'static>(err: &SdkError<E, R>) -> Option<u16> {
    // The raw response type is generic here; its status is read through the typed accessor
    // when the response is the SDK's HTTP response.
    let raw = err.raw_response()?;
    let any: &dyn std::any::Any = raw;
    any.downcast_ref::<aws_sdk_dynamodb::config::http::HttpResponse>()
        .map(|response| response.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_a_cap() {
        let mut backoff = Backoff::default();
        for _ in 0..40 {
            assert!(backoff.next_delay() <= MAX_DELAY);
        }
        assert_eq!(backoff.attempts(), 40);
    }
}
