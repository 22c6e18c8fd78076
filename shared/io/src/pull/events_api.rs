//! Klaviyo's Metrics and Events APIs as the pull uses them: every request waits for its
//! endpoint's budget (rate_budget.rs); a 429's `Retry-After` pauses every request to that
//! endpoint; 5xx, timeouts and broken connections back off
//! and retry; 401/403 stop the run at once (a key without `events:read` or revoked will not
//! heal by retrying); a 400 is told apart as an expired cursor, a page size the revision
//! refuses, or a bad request.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde::Deserialize;
use source_core::klaviyo::accounts_page::parse_account_id;
use source_core::klaviyo::metrics_page::{AccountMetric, parse_metrics_page};
use source_core::pull::rate_budget::{Endpoint, EndpointGate};
use source_core::retry::RetryPolicy;
use tokio::sync::Mutex;
use tokio::time::Instant;

use source_core::secret::ApiKey;

use crate::config::Config;
use crate::klaviyo_http::{Answer, ExchangeError, KlaviyoHttp};

pub use super::events_source::EventsApiError;
use super::events_source::{EventsSource, SourceFuture};

/// The longest one exchange (a page of up to 1,000 events) may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Wait after a 429 that carries no `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// Backoff after a 5xx or a failed exchange: 1 s, doubled each time up to 30 s; six failed
/// attempts (5xx, timeouts, transport) in a row and the run gives up (its state is saved, so
/// the next run continues from the last stored page). The pull waits each backoff's ceiling:
/// it is one client per account, with no herd of callers to spread.
const RETRIES: RetryPolicy = RetryPolicy {
    max_attempts: 6,
    base_delay: Duration::from_secs(1),
    max_delay: Duration::from_secs(30),
};
/// The jitter unit that makes [`RetryPolicy::backoff`] its ceiling.
const NO_JITTER: f64 = 1.0;

/// What happened on the wire, for progress and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// Requests sent.
    pub requests: u64,
    /// 429 answers.
    pub rate_limited: u64,
    /// 5xx answers, timeouts and broken connections.
    pub failed: u64,
}

/// The account's Events and Metrics APIs, within a request budget.
pub struct EventsApi {
    http: KlaviyoHttp,
    requests_per_minute: u32,
    /// Each endpoint's budget and pause, in [`Endpoint::ALL`] order, with their time origin.
    gates: Mutex<(Vec<EndpointGate>, Instant)>,
    counts: std::sync::Mutex<RequestCounts>,
}

impl EventsApi {
    /// The APIs over `http`, sending at most `requests_per_minute` to Get Events (the other
    /// endpoints at their documented limits).
    pub fn new(http: KlaviyoHttp, requests_per_minute: u32) -> Arc<Self> {
        let gates = Endpoint::ALL
            .iter()
            .map(|endpoint| match endpoint {
                Endpoint::Events => EndpointGate::new(*endpoint, requests_per_minute),
                other => EndpointGate::new(*other, other.steady_per_minute()),
            })
            .collect();
        Arc::new(Self {
            http,
            requests_per_minute,
            gates: Mutex::new((gates, Instant::now())),
            counts: std::sync::Mutex::new(RequestCounts::default()),
        })
    }

    /// The APIs of the account `config` names (base URL, revision) with `api_key`, sending
    /// at most `requests_per_minute`; each exchange limited to [`EXCHANGE_TIMEOUT`].
    pub fn for_account(
        config: &Config,
        api_key: ApiKey,
        requests_per_minute: u32,
    ) -> Result<Arc<Self>, std::io::Error> {
        let http = KlaviyoHttp::new(
            &config.identity.base_url,
            api_key,
            &config.identity.revision,
            EXCHANGE_TIMEOUT,
        )?;
        Ok(Self::new(http, requests_per_minute))
    }

    /// The HTTP client (base URL, revision).
    pub fn http(&self) -> &KlaviyoHttp {
        &self.http
    }

    /// The request budget, per minute.
    pub fn requests_per_minute(&self) -> u32 {
        self.requests_per_minute
    }

    /// Requests, 429s and failures so far.
    pub fn counts(&self) -> RequestCounts {
        self.counts.lock().map(|c| *c).unwrap_or_default()
    }

    /// Every metric of the account (`GET /api/metrics`, all pages).
    pub async fn metrics(&self, deadline: Instant) -> Result<Vec<AccountMetric>, EventsApiError> {
        let mut url = format!("{}/api/metrics", self.http.base_url());
        let mut metrics = Vec::new();
        loop {
            let body = self.get(Endpoint::Metrics, &url, deadline).await?;
            let page = parse_metrics_page(&body)
                .map_err(|err| EventsApiError::Unreadable(err.to_string()))?;
            metrics.extend(page.metrics);
            match page.next {
                Some(next) if self.http.may_follow(&next) => url = next,
                Some(_) => return Err(EventsApiError::ForeignLink),
                None => return Ok(metrics),
            }
        }
    }

    /// One page of events: `url` is a query built by the pull or a `links.next`.
    pub async fn events_page(
        &self,
        url: &str,
        deadline: Instant,
    ) -> Result<Vec<u8>, EventsApiError> {
        if !self.http.may_follow(url) {
            return Err(EventsApiError::ForeignLink);
        }
        self.get(Endpoint::Events, url, deadline).await
    }

    /// `POST /api/metric-aggregates` with `body`; the answer's bytes.
    pub async fn metric_aggregates(
        &self,
        body: Vec<u8>,
        deadline: Instant,
    ) -> Result<Vec<u8>, EventsApiError> {
        let url = format!("{}/api/metric-aggregates", self.http.base_url());
        self.send(Endpoint::MetricAggregates, deadline, || {
            self.http.post_json(&url, body.clone())
        })
        .await
    }

    async fn get(
        &self,
        endpoint: Endpoint,
        url: &str,
        deadline: Instant,
    ) -> Result<Vec<u8>, EventsApiError> {
        self.send(endpoint, deadline, || self.http.get(url)).await
    }

    async fn send<F, Fut>(
        &self,
        endpoint: Endpoint,
        deadline: Instant,
        exchange: F,
    ) -> Result<Vec<u8>, EventsApiError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Answer, ExchangeError>>,
    {
        let mut failures = 0u32;
        loop {
            self.wait_for_turn(endpoint, deadline).await?;
            self.count(|c| c.requests += 1);
            let wait = match exchange().await {
                Ok(answer) if answer.status.is_success() => {
                    // The window is spent: wait for its reset rather than earn a 429.
                    if let Some((0, reset)) = answer.rate_limit {
                        self.pause(endpoint, Duration::from_secs(reset)).await;
                    }
                    return Ok(answer.body.to_vec());
                }
                Ok(answer) if answer.status == StatusCode::TOO_MANY_REQUESTS => {
                    self.count(|c| c.rate_limited += 1);
                    let retry_after = answer
                        .retry_after
                        .map_or(DEFAULT_RETRY_AFTER, Duration::from_secs);
                    // Every request to the endpoint waits, not only this one; the next
                    // turn of this one waits in `wait_for_turn`.
                    self.pause(endpoint, retry_after).await;
                    Duration::ZERO
                }
                Ok(answer) if answer.status.is_server_error() => {
                    self.count(|c| c.failed += 1);
                    failures += 1;
                    if failures >= RETRIES.max_attempts {
                        return Err(EventsApiError::Unavailable(format!(
                            "HTTP {}",
                            answer.status.as_u16()
                        )));
                    }
                    RETRIES.backoff(failures, NO_JITTER)
                }
                Ok(answer) => return Err(refusal(&answer)),
                Err(err) => {
                    self.count(|c| c.failed += 1);
                    failures += 1;
                    if failures >= RETRIES.max_attempts {
                        return Err(EventsApiError::Unavailable(err.to_string()));
                    }
                    RETRIES.backoff(failures, NO_JITTER)
                }
            };
            if Instant::now() + wait > deadline {
                return Err(EventsApiError::Deadline);
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Pauses every request to `endpoint` for `wait`.
    async fn pause(&self, endpoint: Endpoint, wait: Duration) {
        let mut guard = self.gates.lock().await;
        let (gates, origin) = &mut *guard;
        let now = Instant::now().saturating_duration_since(*origin);
        gates[endpoint.index()].pause(now, wait);
    }

    /// Waits until `endpoint`'s budget allows one more request and it is not paused: a
    /// pause that begins while a request waits for its turn holds it too.
    async fn wait_for_turn(
        &self,
        endpoint: Endpoint,
        deadline: Instant,
    ) -> Result<(), EventsApiError> {
        let budget_wait = {
            let mut guard = self.gates.lock().await;
            let (gates, origin) = &mut *guard;
            let now = Instant::now().saturating_duration_since(*origin);
            gates[endpoint.index()].reserve(now)
        };
        let mut wait = budget_wait;
        loop {
            if Instant::now() + wait > deadline {
                return Err(EventsApiError::Deadline);
            }
            tokio::time::sleep(wait).await;
            let guard = self.gates.lock().await;
            let (gates, origin) = &*guard;
            let now = Instant::now().saturating_duration_since(*origin);
            match gates[endpoint.index()].pause_left(now) {
                Some(pause) => wait = pause,
                None => return Ok(()),
            }
        }
    }

    fn count(&self, change: impl FnOnce(&mut RequestCounts)) {
        if let Ok(mut counts) = self.counts.lock() {
            change(&mut counts);
        }
    }
}

impl EventsSource for EventsApi {
    fn base_url(&self) -> &str {
        self.http.base_url()
    }

    fn revision(&self) -> &str {
        self.http.revision()
    }

    fn metrics(&self, deadline: Instant) -> SourceFuture<'_, Vec<AccountMetric>> {
        Box::pin(EventsApi::metrics(self, deadline))
    }

    fn events_page<'a>(&'a self, url: &'a str, deadline: Instant) -> SourceFuture<'a, Vec<u8>> {
        Box::pin(EventsApi::events_page(self, url, deadline))
    }

    fn metric_aggregates(&self, body: Vec<u8>, deadline: Instant) -> SourceFuture<'_, Vec<u8>> {
        Box::pin(EventsApi::metric_aggregates(self, body, deadline))
    }

    fn account_id(&self, deadline: Instant) -> SourceFuture<'_, Option<String>> {
        Box::pin(async move {
            let url = format!("{}/api/accounts", self.http.base_url());
            match self.get(Endpoint::Accounts, &url, deadline).await {
                Ok(body) => parse_account_id(&body)
                    .map_err(|err| EventsApiError::Unreadable(err.to_string())),
                // A key without accounts:read still pulls; its rows carry no account id.
                Err(EventsApiError::Unauthorized { .. }) => Ok(None),
                Err(err) => Err(err),
            }
        })
    }
}

#[derive(Deserialize)]
struct ErrorsWire {
    #[serde(default)]
    errors: Vec<ErrorWire>,
}

#[derive(Deserialize)]
struct ErrorWire {
    #[serde(default)]
    detail: Option<String>,
}

/// The error of a 4xx other than 429.
fn refusal(answer: &Answer) -> EventsApiError {
    let status = answer.status.as_u16();
    if matches!(status, 401 | 403) {
        return EventsApiError::Unauthorized { status };
    }
    let detail = serde_json::from_slice::<ErrorsWire>(&answer.body)
        .ok()
        .and_then(|wire| wire.errors.into_iter().find_map(|e| e.detail))
        .unwrap_or_default();
    if status == 400 && detail.to_ascii_lowercase().contains("cursor") {
        return EventsApiError::InvalidCursor;
    }
    if status == 400 {
        return EventsApiError::BadRequest(detail);
    }
    EventsApiError::Status { status, detail }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            rate_limit: None,
            status: StatusCode::from_u16(status).unwrap(),
            retry_after: None,
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn tells_an_expired_cursor_from_other_bad_requests() {
        let cursor = r#"{"errors": [{"status": 400, "code": "invalid", "title": "Invalid input.",
            "detail": "Invalid cursor provided.", "source": {"pointer": "/data/"}}]}"#;
        assert!(matches!(
            refusal(&answer(400, cursor)),
            EventsApiError::InvalidCursor
        ));
        let size = r#"{"errors": [{"detail": "page[size] must be at most 200"}]}"#;
        assert!(
            matches!(refusal(&answer(400, size)), EventsApiError::BadRequest(d) if d.contains("page[size]"))
        );
        assert!(matches!(
            refusal(&answer(403, "")),
            EventsApiError::Unauthorized { status: 403 }
        ));
        assert!(matches!(
            refusal(&answer(404, "not json")),
            EventsApiError::Status { status: 404, .. }
        ));
    }

    #[test]
    fn backoff_doubles_up_to_its_ceiling() {
        let waits: Vec<u64> = (1..=7)
            .map(|failure| RETRIES.backoff(failure, NO_JITTER).as_secs())
            .collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 30, 30]);
    }
}
