//! Bounded backoff between attempts: the one retry policy of every retry loop (Firehose
//! resends, the pull's Klaviyo requests). The caller draws the jitter and sleeps.

use std::time::Duration;

/// How resends are paced and bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Calls at most per batch, the first included.
    pub max_attempts: u32,
    /// Ceiling of the first backoff.
    pub base_delay: Duration,
    /// Ceiling of any backoff.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Six calls, backoffs drawn from 0-100 ms, 0-200 ms, ... at most 0-2 s: at most about
    /// 3.1 s of sleeping, well inside API Gateway's 30 s.
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// "Full jitter" backoff before retry number `retry` (1 for the first retry):
    /// `unit` (uniform in `[0, 1)`) times `min(max_delay, base_delay * 2^(retry-1))`.
    pub fn backoff(&self, retry: u32, unit: f64) -> Duration {
        let exponent = retry.saturating_sub(1).min(20);
        let ceiling = self
            .base_delay
            .saturating_mul(1 << exponent)
            .min(self.max_delay);
        ceiling.mul_f64(unit.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_the_ceiling_up_to_the_cap() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff(1, 1.0), Duration::from_millis(100));
        assert_eq!(policy.backoff(2, 1.0), Duration::from_millis(200));
        assert_eq!(policy.backoff(5, 1.0), Duration::from_millis(1600));
        assert_eq!(policy.backoff(6, 1.0), Duration::from_secs(2));
        assert_eq!(policy.backoff(60, 1.0), Duration::from_secs(2));
    }

    #[test]
    fn jitter_scales_within_the_ceiling() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff(3, 0.0), Duration::ZERO);
        assert_eq!(policy.backoff(3, 0.5), Duration::from_millis(200));
        assert_eq!(
            policy.backoff(3, 7.0),
            Duration::from_millis(400),
            "unit is clamped"
        );
    }
}
