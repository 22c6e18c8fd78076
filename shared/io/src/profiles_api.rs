//! Klaviyo's `GET /api/profiles`, behind the core's `ProfileDirectory`.
//!
//! One request per 100 ids (`filter=any(id,[...])`, `page[size]=100`, sparse fields
//! `email,external_id`), following `links.next` if Klaviyo pages anyway. A 429 waits for
//! `Retry-After` and tries again, a 5xx tries once more; the resolver's time budget cuts
//! everything off, so a slow Klaviyo only makes identities unresolved, never loses events.

use std::collections::HashMap;
use std::time::Duration;

use http::StatusCode;
use source_core::identity::profiles_response::{parse_profiles_page, profiles_query};
use source_core::identity::{LookupError, LookupFuture, Profile, ProfileDirectory};

use crate::klaviyo_http::{ExchangeError, KlaviyoHttp};

/// Attempts per page: the first, plus retries after a 429 or a 5xx.
const MAX_ATTEMPTS: u32 = 3;
/// Wait after a 429 without `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// Wait before retrying a 5xx.
const SERVER_ERROR_BACKOFF: Duration = Duration::from_millis(200);

/// The Profiles API of one Klaviyo account.
#[derive(Clone)]
pub struct KlaviyoProfilesApi {
    http: KlaviyoHttp,
}

impl KlaviyoProfilesApi {
    /// Profile lookups over `http`.
    pub fn new(http: KlaviyoHttp) -> Self {
        Self { http }
    }

    async fn fetch_all(&self, ids: &[String]) -> Result<HashMap<String, Profile>, LookupError> {
        let mut found = HashMap::new();
        let mut url = format!(
            "{}/api/profiles?{}",
            self.http.base_url(),
            profiles_query(ids)
        );
        loop {
            let body = self.fetch_page(&url).await?;
            let page = parse_profiles_page(&body)
                .map_err(|err| LookupError::Unreadable(err.to_string()))?;
            found.extend(page.profiles.into_iter().map(|p| (p.id.clone(), p)));
            match page.next {
                Some(next) if self.http.may_follow(&next) => url = next,
                Some(_) => return Err(LookupError::ForeignLink),
                None => return Ok(found),
            }
        }
    }

    async fn fetch_page(&self, url: &str) -> Result<Vec<u8>, LookupError> {
        // Replaced by the first failed attempt; the loop always makes one.
        let mut last_error = LookupError::Timeout;
        for attempt in 1..=MAX_ATTEMPTS {
            let answer = self.http.get(url).await.map_err(|err| match err {
                ExchangeError::Timeout(_) => LookupError::Timeout,
                ExchangeError::Transport(text) => LookupError::Unreachable(text),
            })?;
            if answer.status.is_success() {
                return Ok(answer.body.to_vec());
            }
            let wait = if answer.status == StatusCode::TOO_MANY_REQUESTS {
                last_error = LookupError::RateLimited {
                    retry_after_secs: answer.retry_after,
                };
                answer
                    .retry_after
                    .map_or(DEFAULT_RETRY_AFTER, Duration::from_secs)
            } else if answer.status.is_server_error() {
                last_error = LookupError::Status(answer.status.as_u16());
                SERVER_ERROR_BACKOFF
            } else {
                return Err(LookupError::Status(answer.status.as_u16()));
            };
            if attempt < MAX_ATTEMPTS {
                tokio::time::sleep(wait).await;
            }
        }
        Err(last_error)
    }
}

impl ProfileDirectory for KlaviyoProfilesApi {
    fn lookup<'a>(&'a self, ids: &'a [String]) -> LookupFuture<'a> {
        Box::pin(self.fetch_all(ids))
    }
}
