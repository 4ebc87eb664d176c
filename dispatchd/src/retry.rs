//! When to try again: exponential backoff with jitter, a cap, and the
//! receiver's `Retry-After`.

use std::time::{Duration, SystemTime};

use crate::model::RetryPolicy;

/// Delay before attempt `attempt + 1`, after `attempt` failures (1-based).
///
/// The base doubles (or grows by `multiplier`) from `initial_delay_ms` up to
/// `max_delay_ms`; "equal jitter" then picks uniformly in `[base/2, base]`,
/// so retries from many deliveries spread out but never come sooner than
/// half the base.
pub fn backoff(policy: &RetryPolicy, attempt: i32) -> Duration {
    let exp = (attempt.max(1) - 1).min(64);
    let base = (policy.initial_delay_ms as f64) * policy.multiplier.powi(exp);
    let base = base.min(policy.max_delay_ms as f64).max(1.0) as u64;
    let half = base / 2;
    Duration::from_millis(half + fastrand::u64(0..=base - half))
}

/// Parses `Retry-After` (delta seconds or an HTTP date), clamped to `max`.
pub fn parse_retry_after(value: &str, max: Duration) -> Option<Duration> {
    let value = value.trim();
    let wait = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(SystemTime::now()).unwrap_or_default()
    };
    Some(wait.min(max))
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: RetryPolicy = RetryPolicy {
        initial_delay_ms: 1000,
        multiplier: 2.0,
        max_delay_ms: 10_000,
    };

    #[test]
    fn grows_exponentially_within_jitter_and_cap() {
        for _ in 0..200 {
            let d1 = backoff(&P, 1).as_millis();
            assert!((500..=1000).contains(&d1), "{d1}");
            let d3 = backoff(&P, 3).as_millis();
            assert!((2000..=4000).contains(&d3), "{d3}");
            let d20 = backoff(&P, 20).as_millis();
            assert!((5000..=10_000).contains(&d20), "{d20}");
        }
    }

    #[test]
    fn retry_after_seconds_and_dates_are_clamped() {
        let max = Duration::from_secs(60);
        assert_eq!(parse_retry_after("7", max), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("99999", max), Some(max));
        let soon = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        let d = parse_retry_after(&soon, max).unwrap();
        assert!(
            d <= Duration::from_secs(30) && d >= Duration::from_secs(28),
            "{d:?}"
        );
        assert_eq!(parse_retry_after("soon", max), None);
    }
}
