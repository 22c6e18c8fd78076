//! One deadline per request. In Lambda it comes from the invocation's own deadline (the
//! function's timeout counted from the invocation's start); everywhere it is capped by API
//! Gateway's integration timeout. Every call in flight (profile lookup, Firehose, the
//! dead-letter spill) is bounded by it, so a request ends with a stored 200 or a 503, never
//! with the platform cutting it off.

use std::time::Duration;

use tokio::time::Instant;

/// API Gateway HTTP APIs wait at most 30 seconds for the integration.
/// <https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html>
pub const API_GATEWAY_INTEGRATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Kept back from the deadline for writing the answer, the log line and the metrics.
pub const ANSWER_RESERVE: Duration = Duration::from_millis(500);

/// Time kept for delivery (and the spill) when the profile lookup is bounded: identity may
/// only use what is left above this.
pub const DELIVERY_RESERVE: Duration = Duration::from_secs(10);

/// The request's deadline: `received` plus the smaller of what is left of API Gateway's
/// timeout and the time Lambda has left (`lambda_deadline_epoch_ms` against
/// `now_epoch_ms`), less [`ANSWER_RESERVE`]. API Gateway's timeout runs from its own receipt
/// (`gateway_received_epoch_ms`, payload 2.0's `requestContext.timeEpoch`), so time spent
/// before the invocation (a cold start's secret fetch and checks) is not counted twice.
pub fn request_deadline(
    received: Instant,
    now_epoch_ms: i64,
    lambda_deadline_epoch_ms: Option<u64>,
    gateway_received_epoch_ms: Option<i64>,
) -> Instant {
    let mut budget = API_GATEWAY_INTEGRATION_TIMEOUT;
    if let Some(gateway_ms) = gateway_received_epoch_ms {
        let spent_ms = now_epoch_ms.saturating_sub(gateway_ms).max(0);
        budget = budget.saturating_sub(Duration::from_millis(spent_ms.unsigned_abs()));
    }
    if let Some(deadline_ms) = lambda_deadline_epoch_ms {
        let left_ms = i64::try_from(deadline_ms)
            .unwrap_or(i64::MAX)
            .saturating_sub(now_epoch_ms)
            .max(0);
        budget = budget.min(Duration::from_millis(left_ms.unsigned_abs()));
    }
    received + budget.saturating_sub(ANSWER_RESERVE)
}

/// The deadline of the profile lookups: whatever is left above [`DELIVERY_RESERVE`]
/// (the resolver's own budget may cut them earlier).
pub fn identity_deadline(request_deadline: Instant) -> Instant {
    request_deadline
        .checked_sub(DELIVERY_RESERVE)
        .unwrap_or_else(Instant::now)
        .max(Instant::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_lambda_time_left_when_it_is_shorter_than_api_gateways() {
        let received = Instant::now();
        let now_ms = 1_704_391_530_000;
        let deadline = request_deadline(received, now_ms, Some(now_ms as u64 + 12_000), None);
        assert_eq!(deadline - received, Duration::from_millis(11_500));
    }

    #[test]
    fn never_exceeds_api_gateways_timeout() {
        let received = Instant::now();
        let now_ms = 1_704_391_530_000;
        let deadline = request_deadline(received, now_ms, Some(now_ms as u64 + 900_000), None);
        assert_eq!(deadline - received, Duration::from_millis(29_500));
        assert_eq!(
            request_deadline(received, now_ms, None, None) - received,
            Duration::from_millis(29_500)
        );
    }

    #[test]
    fn time_since_api_gateway_received_the_request_counts_against_its_timeout() {
        let received = Instant::now();
        let now_ms = 1_704_391_530_000;
        // A cold start took 4.2 s before the invocation began.
        let deadline = request_deadline(
            received,
            now_ms,
            Some(now_ms as u64 + 900_000),
            Some(now_ms - 4_200),
        );
        assert_eq!(deadline - received, Duration::from_millis(25_300));
        // Past API Gateway's 30 s: nothing left.
        let late = request_deadline(received, now_ms, None, Some(now_ms - 31_000));
        assert_eq!(late, received);
    }

    #[test]
    fn a_passed_lambda_deadline_leaves_no_time() {
        let received = Instant::now();
        let deadline = request_deadline(received, 2_000, Some(1_000), None);
        assert_eq!(deadline, received);
    }
}
