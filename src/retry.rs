//! Retrying: the [`RetryPolicy`], exponential backoff with full jitter, and per-request
//! timeouts. Which errors are worth repeating is the backend's call
//! ([`Error::is_retryable`](crate::Error::is_retryable)).
//!
//! The loops that use these live with what they retry (reads in `load`, writes in the
//! flusher), because what counts against a budget is theirs to say: a batch read that makes
//! progress is not failing, and a write that was acknowledged is never given up. A generic
//! retry combinator (such as `backon`'s) does not fit those loops; its delay schedules add
//! jitter on top of the delay rather than drawing it from the whole range, which is what
//! spreads out clients throttled together.

use std::future::Future;
use std::time::Duration;

use rand::Rng as _;

use crate::error::{Error, Result};

/// How the store retries requests that fail transiently (throttling, 5xx, timeouts, I/O,
/// unprocessed items), set with [`StoreBuilder::retry_policy`](crate::StoreBuilder::retry_policy).
///
/// Writes were acknowledged already, so they are retried until they land (bound the wait with
/// `flush`'s and `close`'s callers, not here). Reads give up after `read_attempts` failed
/// attempts or once `read_deadline` has passed, whichever comes first; a batch read that gets
/// some of its keys each time is making progress and only its deadline bounds it.
///
/// # Examples
///
/// A service that would rather answer an error fast than wait for a slow table: reads give
/// up after 3 attempts or 2 seconds, and a request taking over a second is tried again.
///
/// ```
/// use std::time::Duration;
///
/// use quickstore::{RetryPolicy, Store};
///
/// # async fn example(backend: quickstore::DynamoDbBackend) -> quickstore::Result<()> {
/// let policy = RetryPolicy::default()
///     .reads(3, Duration::from_secs(2))
///     .request_timeout(Some(Duration::from_secs(1)));
/// let store = Store::builder(backend).retry_policy(policy).open().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// The first delay's bound. Default: 25 ms.
    pub initial_backoff: Duration,
    /// The largest delay. Default: 5 s.
    pub max_backoff: Duration,
    /// Whether each delay is drawn uniformly from zero to its bound ("full jitter"), which
    /// keeps clients throttled together from retrying together; without, each delay is its
    /// bound. Default: on.
    pub jitter: bool,
    /// How long one request may take before it counts as a transient failure and is retried;
    /// `None` waits as long as the client does. Default: 10 s.
    pub request_timeout: Option<Duration>,
    /// Failed attempts a read makes before it returns the failure. Default: 8.
    pub read_attempts: u32,
    /// How long a read may keep retrying, progress or not. Default: 20 s.
    pub read_deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(25),
            max_backoff: Duration::from_secs(5),
            jitter: true,
            request_timeout: Some(Duration::from_secs(10)),
            read_attempts: 8,
            read_deadline: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// Sets the first delay's bound and the largest delay.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max;
        self
    }

    /// Turns full jitter on or off.
    pub fn jitter(mut self, jitter: bool) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets the per-request timeout (`None`: none).
    pub fn request_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets how many failed attempts, and how much time, a read may spend.
    pub fn reads(mut self, attempts: u32, deadline: Duration) -> Self {
        self.read_attempts = attempts;
        self.read_deadline = deadline;
        self
    }

    /// The first setting that cannot work, as a sentence.
    pub(crate) fn problem(&self) -> Option<&'static str> {
        if self.initial_backoff.is_zero() || self.max_backoff < self.initial_backoff {
            Some("the retry policy's backoff must be longer than zero, its maximum at least its start")
        } else if self.read_attempts == 0 {
            Some("the retry policy must allow reads at least 1 attempt")
        } else if self.request_timeout.is_some_and(|t| t.is_zero()) {
            Some("the retry policy's request timeout must be longer than zero")
        } else {
            None
        }
    }

    /// Runs one request, failing it transiently if it outlasts the request timeout.
    pub(crate) async fn request<T>(
        &self,
        operation: &'static str,
        request: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let Some(timeout) = self.request_timeout else {
            return request.await;
        };
        match tokio::time::timeout(timeout, request).await {
            Ok(answer) => answer,
            Err(_) => Err(Error::transient(
                operation,
                format!("no answer within the request timeout of {timeout:?}"),
                None,
            )),
        }
    }
}

/// Exponential backoff: the n-th delay's bound is `min(max, initial * 2^n)`, and the delay is
/// drawn uniformly below it with jitter, or is the bound without.
#[derive(Debug)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    jitter: bool,
    attempt: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(&RetryPolicy::default())
    }
}

impl Backoff {
    pub(crate) fn new(policy: &RetryPolicy) -> Self {
        Self {
            initial: policy.initial_backoff,
            max: policy.max_backoff,
            jitter: policy.jitter,
            attempt: 0,
        }
    }

    /// Delays taken so far.
    pub(crate) fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Starts again from the first delay (after progress).
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The next delay; each call doubles the bound until it reaches the cap.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let bound = self
            .initial
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        if !self.jitter {
            return bound;
        }
        let micros = u64::try_from(bound.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(rand::rng().random_range(0..=micros))
    }

    /// Sleeps for the next delay.
    pub(crate) async fn wait(&mut self) {
        tokio::time::sleep(self.next_delay()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_a_cap() {
        let policy = RetryPolicy::default();
        let mut backoff = Backoff::new(&policy);
        for _ in 0..40 {
            assert!(backoff.next_delay() <= policy.max_backoff);
        }
        assert_eq!(backoff.attempts(), 40);
    }

    #[test]
    fn without_jitter_delays_double_from_the_start() {
        let policy = RetryPolicy::default()
            .backoff(Duration::from_millis(10), Duration::from_millis(50))
            .jitter(false);
        let mut backoff = Backoff::new(&policy);
        let delays: Vec<_> = (0..5).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(delays, [10, 20, 40, 50, 50]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(10));
    }

    #[test]
    fn bad_policies_are_named() {
        assert!(RetryPolicy::default().problem().is_none());
        let zero = RetryPolicy::default().backoff(Duration::ZERO, Duration::from_secs(1));
        assert!(zero.problem().is_some());
        let inverted =
            RetryPolicy::default().backoff(Duration::from_secs(2), Duration::from_secs(1));
        assert!(inverted.problem().is_some());
        assert!(RetryPolicy::default()
            .reads(0, Duration::from_secs(1))
            .problem()
            .is_some());
        let timeout = RetryPolicy::default().request_timeout(Some(Duration::ZERO));
        assert!(timeout.problem().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn requests_that_outlast_the_timeout_fail_transiently() {
        let policy = RetryPolicy::default().request_timeout(Some(Duration::from_secs(1)));
        let slow = policy
            .request("GetItem", async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(())
            })
            .await;
        assert!(slow.is_err_and(|err| err.is_retryable()));
        let quick = policy.request("GetItem", async { Ok(7) }).await;
        assert_eq!(quick.ok(), Some(7));
    }
}
