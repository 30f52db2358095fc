//! When and how long to wait before sending a request again: `Retry-After` (seconds or HTTP
//! date) when Graph gives it, otherwise exponential backoff with jitter, within a budget.

use std::time::Duration;

use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use tokio::time::Instant;

/// Retry limits (part of [`crate::GraphOptions`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// Total time a request may spend waiting between attempts.
    pub max_total_wait: Duration,
    /// First backoff step when Graph gives no `Retry-After`.
    pub backoff_base: Duration,
    /// Largest backoff step.
    pub backoff_max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            max_total_wait: Duration::from_secs(180),
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Backoff before attempt `attempt + 1` (attempt counts from 1): `base * 2^(attempt-1)`,
    /// capped, with "equal jitter" (between half and all of it).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.backoff_base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let cap = exp.min(self.backoff_max);
        let half = cap / 2;
        let jitter_micros = u64::try_from((cap - half).as_micros()).unwrap_or(u64::MAX);
        half + Duration::from_micros(if jitter_micros == 0 { 0 } else { rand::rng().random_range(0..=jitter_micros) })
    }
}

/// The spend of one logical call (its attempts and waits), shared by its retries.
#[derive(Debug)]
pub(crate) struct RetryBudget {
    pub attempts: u32,
    pub waited: Duration,
}

impl RetryBudget {
    pub fn new() -> Self {
        RetryBudget { attempts: 0, waited: Duration::ZERO }
    }

    /// Whether another attempt after waiting `wait` fits the policy.
    pub fn allows(&self, policy: &RetryPolicy, wait: Duration) -> bool {
        self.attempts < policy.max_attempts && self.waited + wait <= policy.max_total_wait
    }
}

/// `Retry-After` as a duration: delta-seconds or an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)));
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let now = jiff::Timestamp::now();
    let wait = at.duration_since(now);
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO).min(Duration::from_secs(3600)))
}

/// Sleeps and returns how long.
pub(crate) async fn sleep_for(wait: Duration) -> Duration {
    let started = Instant::now();
    tokio::time::sleep(wait).await;
    started.elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn backoff_grows_exponentially_with_jitter_and_a_cap() {
        let policy = RetryPolicy {
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(8),
            ..RetryPolicy::default()
        };
        for _ in 0..50 {
            let first = policy.backoff(1);
            assert!(first >= Duration::from_millis(500) && first <= Duration::from_secs(1));
            let third = policy.backoff(3);
            assert!(third >= Duration::from_secs(2) && third <= Duration::from_secs(4));
            let tenth = policy.backoff(10);
            assert!(tenth >= Duration::from_secs(4) && tenth <= Duration::from_secs(8));
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        let later = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(30);
        let date = jiff::fmt::rfc2822::DateTimePrinter::new().timestamp_to_rfc9110_string(&later).unwrap();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(&date).unwrap());
        let wait = retry_after(&headers).unwrap();
        assert!(wait > Duration::from_secs(25) && wait <= Duration::from_secs(30), "{wait:?}");
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn the_budget_bounds_attempts_and_total_wait() {
        let policy = RetryPolicy { max_attempts: 3, max_total_wait: Duration::from_secs(10), ..RetryPolicy::default() };
        let mut budget = RetryBudget::new();
        budget.attempts = 2;
        assert!(budget.allows(&policy, Duration::from_secs(10)));
        assert!(!budget.allows(&policy, Duration::from_secs(11)));
        budget.attempts = 3;
        assert!(!budget.allows(&policy, Duration::ZERO));
    }
}
