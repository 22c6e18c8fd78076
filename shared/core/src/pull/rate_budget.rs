//! The request budget of a pull: Klaviyo's Get Events allows a burst of 350/s and 3,500/min
//! steady per account, shared by every private key of the account, so the pull spends a
//! configurable share and leaves the rest to the user's other integrations.
//! <https://developers.klaviyo.com/en/reference/get_events> ("Burst: 350/s, Steady: 3500/m")

use std::time::Duration;

/// Klaviyo's steady limit of Get Events, requests per minute.
pub const KLAVIYO_STEADY_LIMIT_PER_MINUTE: u32 = 3_500;

/// A token bucket refilled at `per_minute / 60` tokens a second, holding at most one
/// second's worth, so no minute ever sees more than the budget plus one second's tokens
/// and no second sees more than one second's share. Time is passed in (seconds since any
/// fixed origin), so the budget is testable without a clock.
#[derive(Debug, Clone)]
pub struct RateBudget {
    per_second: f64,
    capacity: f64,
    tokens: f64,
    last: Option<Duration>,
}

impl RateBudget {
    /// A budget of `per_minute` requests a minute (at least one).
    pub fn per_minute(per_minute: u32) -> Self {
        let per_second = f64::from(per_minute.max(1)) / 60.0;
        let capacity = per_second.max(1.0);
        Self {
            per_second,
            capacity,
            tokens: capacity,
            last: None,
        }
    }

    /// How long to wait at `now` before the next request may go; the request is counted
    /// as sent at `now + wait`.
    pub fn reserve(&mut self, now: Duration) -> Duration {
        if let Some(last) = self.last {
            let elapsed = now.saturating_sub(last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        }
        self.last = Some(now);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.per_second)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `count` requests as fast as the budget allows; the send times.
    fn send_times(budget: &mut RateBudget, count: usize) -> Vec<f64> {
        let mut now = Duration::ZERO;
        (0..count)
            .map(|_| {
                now += budget.reserve(now);
                now.as_secs_f64()
            })
            .collect()
    }

    #[test]
    fn no_sixty_second_span_exceeds_the_budget_plus_one_seconds_share() {
        let mut budget = RateBudget::per_minute(600);
        let times = send_times(&mut budget, 3_000);
        for (i, start) in times.iter().enumerate() {
            let in_minute = times[i..].iter().take_while(|t| **t < start + 60.0).count();
            assert!(in_minute <= 610, "{in_minute} requests from {start} s");
        }
        // And it is not idle: 3,000 requests at 10/s take just under 300 s.
        let last = *times.last().unwrap();
        assert!((298.0..=300.0).contains(&last), "{last}");
    }

    #[test]
    fn a_budget_below_one_a_second_spaces_requests_out() {
        let mut budget = RateBudget::per_minute(30);
        let times = send_times(&mut budget, 3);
        assert_eq!(times, vec![0.0, 2.0, 4.0]);
    }
}
