//! Retrying: exponential backoff with full jitter. Which errors are worth repeating is the
//! backend's call ([`Error::is_retryable`](crate::Error::is_retryable)).

use std::time::Duration;

use rand::Rng as _;

/// The first backoff delay's upper bound.
const BASE_DELAY: Duration = Duration::from_millis(25);

/// The largest backoff delay.
const MAX_DELAY: Duration = Duration::from_secs(5);

/// Attempts a read makes before it reports a transient failure to the caller. Writes, which have
/// been acknowledged already, retry without limit.
pub(crate) const READ_ATTEMPTS: u32 = 8;

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
