//! The request budgets of a pull, one per Klaviyo endpoint: Klaviyo limits each endpoint on
//! its own, per account (shared by every private key of the account), in fixed one-second
//! and one-minute windows. Get Events allows 350/s and 3,500/min (the pull spends a
//! configurable share and leaves the rest to the user's other integrations), Get Metrics
//! 10/s and 150/min, Query Metric Aggregates 3/s and 60/min, Get Accounts 1/s and 15/min.
//! <https://developers.klaviyo.com/en/reference/get_events> ("Burst: 350/s, Steady: 3500/m"),
//! <https://developers.klaviyo.com/en/docs/rate_limits_and_error_handling>.
//!
//! A 429 is a window spent: its `Retry-After` pauses every request to that endpoint, not only
//! the one that got it (the others would be refused too). An answer whose `RateLimit-Remaining`
//! is 0 pauses the endpoint for its `RateLimit-Reset` seconds the same way.

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

/// Windows a pull reads at once by default: enough pages in flight to spend a budget of
/// `per_minute` requests when a page takes Klaviyo about 0.6 s to answer (each window's
/// pages come one after another), and never fewer than 8. At the default 700 a minute: 8;
/// at Klaviyo's 3,500: 35 (`bench/pull.py`: 82 % of that ceiling with pages of 0.3 s).
pub fn windows_for_budget(per_minute: u32) -> usize {
    let in_flight = (f64::from(per_minute) / 60.0 * 0.6).ceil() as usize;
    in_flight.max(8)
}

/// The Klaviyo endpoints a pull calls, each with its own limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `GET /api/events`: XL, 350/s and 3,500/min.
    Events,
    /// `GET /api/metrics`: M, 10/s and 150/min.
    Metrics,
    /// `POST /api/metric-aggregates`: S, 3/s and 60/min.
    MetricAggregates,
    /// `GET /api/accounts`: XS, 1/s and 15/min.
    Accounts,
}

impl Endpoint {
    /// Every endpoint, in a fixed order (an index for per-endpoint state).
    pub const ALL: [Endpoint; 4] = [
        Self::Events,
        Self::Metrics,
        Self::MetricAggregates,
        Self::Accounts,
    ];

    /// Klaviyo's steady limit, requests a minute.
    pub fn steady_per_minute(self) -> u32 {
        match self {
            Self::Events => KLAVIYO_STEADY_LIMIT_PER_MINUTE,
            Self::Metrics => 150,
            Self::MetricAggregates => 60,
            Self::Accounts => 15,
        }
    }

    /// Its place in [`Endpoint::ALL`].
    pub fn index(self) -> usize {
        match self {
            Self::Events => 0,
            Self::Metrics => 1,
            Self::MetricAggregates => 2,
            Self::Accounts => 3,
        }
    }
}

/// One endpoint's budget and pause.
#[derive(Debug, Clone)]
pub struct EndpointGate {
    budget: RateBudget,
    paused_until: Option<Duration>,
}

impl EndpointGate {
    /// A gate spending at most `per_minute` (and never more than Klaviyo's steady limit).
    pub fn new(endpoint: Endpoint, per_minute: u32) -> Self {
        Self {
            budget: RateBudget::per_minute(per_minute.min(endpoint.steady_per_minute())),
            paused_until: None,
        }
    }

    /// How long a request at `now` must wait for a pause to end (`None`: no pause). A
    /// request that waited asks again: another pause may have come meanwhile.
    pub fn pause_left(&self, now: Duration) -> Option<Duration> {
        self.paused_until
            .filter(|until| *until > now)
            .map(|until| until - now)
    }

    /// Reserves a request at `now` (no pause left): how long to wait for the budget.
    pub fn reserve(&mut self, now: Duration) -> Duration {
        self.budget.reserve(now)
    }

    /// Pauses every request until `now + wait` (a longer pause already set stays).
    pub fn pause(&mut self, now: Duration, wait: Duration) {
        let until = now + wait;
        self.paused_until = Some(self.paused_until.map_or(until, |old| old.max(until)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_windows_grow_with_the_budget() {
        assert_eq!(windows_for_budget(700), 8);
        assert_eq!(windows_for_budget(3_500), 35);
        assert_eq!(windows_for_budget(1), 8);
    }

    #[test]
    fn a_pause_holds_every_request_of_its_endpoint_and_only_grows() {
        let mut gate = EndpointGate::new(Endpoint::Events, 3_500);
        let at = |s: u64| Duration::from_secs(s);
        assert_eq!(gate.pause_left(at(10)), None);
        gate.pause(at(10), at(5));
        assert_eq!(gate.pause_left(at(12)), Some(at(3)));
        // A shorter Retry-After from another window's 429 does not shorten it.
        gate.pause(at(11), at(1));
        assert_eq!(gate.pause_left(at(14)), Some(at(1)));
        assert_eq!(gate.pause_left(at(15)), None);
    }

    #[test]
    fn each_endpoint_keeps_to_its_own_documented_limit() {
        // Asked for more than Klaviyo allows, the aggregates gate still spends 60 a minute.
        let mut gate = EndpointGate::new(Endpoint::MetricAggregates, 3_500);
        let mut now = Duration::ZERO;
        let mut sent = Vec::new();
        for _ in 0..130 {
            now += gate.reserve(now);
            sent.push(now.as_secs_f64());
        }
        let in_first_minute = sent.iter().filter(|t| **t < 60.0).count();
        assert!(in_first_minute <= 61, "{in_first_minute}");
        assert_eq!(Endpoint::Metrics.steady_per_minute(), 150);
        assert!(
            Endpoint::ALL
                .iter()
                .enumerate()
                .all(|(i, e)| e.index() == i)
        );
    }

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
