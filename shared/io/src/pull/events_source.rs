//! What the pull run needs of Klaviyo: the account's metrics and pages of events. A trait so
//! the run can be tested in process against pages held in memory; `EventsApi` is the real
//! one, over HTTPS within the request budget.

use std::future::Future;
use std::pin::Pin;

use source_core::klaviyo::metrics_page::AccountMetric;
use tokio::time::Instant;

/// A boxed answer of an [`EventsSource`].
pub type SourceFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, EventsApiError>> + Send + 'a>>;

/// Klaviyo's Metrics and Events APIs as the pull run reads them.
pub trait EventsSource: Send + Sync {
    /// Where queries are addressed: `{base_url}/api/events?...`.
    fn base_url(&self) -> &str;
    /// The API revision asked for, recorded on every pulled row.
    fn revision(&self) -> &str;
    /// Every metric of the account (`GET /api/metrics`, all pages).
    fn metrics(&self, deadline: Instant) -> SourceFuture<'_, Vec<AccountMetric>>;
    /// One page of events: `url` is a query built by the pull or a `links.next`.
    fn events_page<'a>(&'a self, url: &'a str, deadline: Instant) -> SourceFuture<'a, Vec<u8>>;
    /// The account's id (`GET /api/accounts`); `None` when the key may not read it
    /// (`accounts:read`), which leaves pulled rows without it.
    fn account_id(&self, deadline: Instant) -> SourceFuture<'_, Option<String>>;
    /// `POST /api/metric-aggregates` with `body` (Klaviyo's daily counts); the answer.
    fn metric_aggregates(&self, body: Vec<u8>, deadline: Instant) -> SourceFuture<'_, Vec<u8>>;
}

/// Why a request to Klaviyo failed for good.
#[derive(Debug, thiserror::Error)]
pub enum EventsApiError {
    /// 401 or 403: the key is wrong, revoked or lacks a scope.
    #[error(
        "Klaviyo refused the API key (HTTP {status}): check KLAVIYO_API_KEY and that it has the events:read and metrics:read scopes"
    )]
    Unauthorized {
        /// 401 or 403.
        status: u16,
    },
    /// Klaviyo does not accept the cursor of `links.next` any more.
    #[error("Klaviyo called the page cursor invalid")]
    InvalidCursor,
    /// A 400 other than an invalid cursor, with Klaviyo's `detail`.
    #[error("Klaviyo refused the request (HTTP 400): {0}")]
    BadRequest(String),
    /// Another status that retrying cannot fix.
    #[error("Klaviyo answered HTTP {status}: {detail}")]
    Status {
        /// The status.
        status: u16,
        /// Klaviyo's `detail`, if any.
        detail: String,
    },
    /// 5xx, timeouts or broken connections, six times in a row.
    #[error("Klaviyo kept failing ({0}); the run stops and the next one continues")]
    Unavailable(String),
    /// The run's deadline came while waiting (for the budget, a `Retry-After`, a backoff).
    #[error("the run's deadline came before Klaviyo could be asked again")]
    Deadline,
    /// `links.next` points at another host.
    #[error("links.next points to another host; not followed")]
    ForeignLink,
    /// The answer is not the JSON:API document expected.
    #[error("Klaviyo's answer is not readable: {0}")]
    Unreadable(String),
}
