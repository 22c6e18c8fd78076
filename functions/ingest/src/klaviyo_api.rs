//! Klaviyo's `GET /api/profiles`, behind the core's `ProfileDirectory`.
//!
//! One request per 100 ids (`filter=any(id,[...])`, `page[size]=100`, sparse fields
//! `email,external_id`), following `links.next` if Klaviyo pages anyway. A 429 waits for
//! `Retry-After` and tries again, a 5xx tries once more; the resolver's time budget cuts
//! everything off, so a slow Klaviyo only makes identities unresolved, never loses events.

use std::collections::HashMap;
use std::time::Duration;

use klaviyo_source::identity::profiles_response::{parse_profiles_page, profiles_query};
use klaviyo_source::identity::{LookupError, LookupFuture, Profile, ProfileDirectory};
use klaviyo_source::secret::ApiKey;
use reqwest::StatusCode;

/// Klaviyo's API host.
pub const DEFAULT_KLAVIYO_API_BASE_URL: &str = "https://a.klaviyo.com";
/// The API revision this code was written against (sent as the `revision` header).
pub const DEFAULT_KLAVIYO_API_REVISION: &str = "2024-10-15";
/// Attempts per page: the first, plus retries after a 429 or a 5xx.
const MAX_ATTEMPTS: u32 = 3;
/// Wait after a 429 without `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// Wait before retrying a 5xx.
const SERVER_ERROR_BACKOFF: Duration = Duration::from_millis(200);

/// The Profiles API of one Klaviyo account.
#[derive(Debug, Clone)]
pub struct KlaviyoProfilesApi {
    client: reqwest::Client,
    base_url: String,
    api_key: ApiKey,
    revision: String,
}

impl KlaviyoProfilesApi {
    /// A client for `base_url` with `api_key`, each HTTP request limited to `timeout`.
    pub fn new(
        base_url: &str,
        api_key: ApiKey,
        revision: &str,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            client: reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout)
                .build()?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            revision: revision.to_owned(),
        })
    }

    async fn fetch_all(&self, ids: &[String]) -> Result<HashMap<String, Profile>, LookupError> {
        let mut found = HashMap::new();
        let mut url = format!("{}/api/profiles?{}", self.base_url, profiles_query(ids));
        loop {
            let body = self.fetch_page(&url).await?;
            let page = parse_profiles_page(&body)
                .map_err(|err| LookupError::Transport(err.to_string()))?;
            found.extend(page.profiles.into_iter().map(|p| (p.id.clone(), p)));
            match page.next {
                // Never send the API key anywhere but Klaviyo's own host.
                Some(next) if same_origin(&self.base_url, &next) => url = next,
                Some(_) => {
                    return Err(LookupError::Transport(
                        "links.next points to another host".into(),
                    ));
                }
                None => return Ok(found),
            }
        }
    }

    async fn fetch_page(&self, url: &str) -> Result<Vec<u8>, LookupError> {
        let mut last_error = LookupError::Transport("no attempt made".into());
        for attempt in 1..=MAX_ATTEMPTS {
            let response = self
                .client
                .get(url)
                .header(
                    "Authorization",
                    format!("Klaviyo-API-Key {}", self.api_key.expose_secret()),
                )
                .header("revision", &self.revision)
                .header("Accept", "application/vnd.api+json")
                .send()
                .await
                .map_err(|err| {
                    if err.is_timeout() {
                        LookupError::Timeout
                    } else {
                        LookupError::Transport(err.to_string())
                    }
                })?;
            let status = response.status();
            if status.is_success() {
                return response
                    .bytes()
                    .await
                    .map(|b| b.to_vec())
                    .map_err(|err| LookupError::Transport(err.to_string()));
            }
            let wait = if status == StatusCode::TOO_MANY_REQUESTS {
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                last_error = LookupError::RateLimited {
                    retry_after_secs: retry_after,
                };
                retry_after.map_or(DEFAULT_RETRY_AFTER, Duration::from_secs)
            } else if status.is_server_error() {
                last_error = LookupError::Status(status.as_u16());
                SERVER_ERROR_BACKOFF
            } else {
                return Err(LookupError::Status(status.as_u16()));
            };
            if attempt < MAX_ATTEMPTS {
                tokio::time::sleep(wait).await;
            }
        }
        Err(last_error)
    }
}

/// Whether `next` has the same scheme, host and port as `base` (a prefix test would let
/// `https://a.klaviyo.com.evil.example/` or `https://a.klaviyo.com@evil.example/` through).
pub fn same_origin(base: &str, next: &str) -> bool {
    match (reqwest::Url::parse(base), reqwest::Url::parse(next)) {
        (Ok(base), Ok(next)) => {
            next.username().is_empty()
                && next.password().is_none()
                && base.scheme() == next.scheme()
                && base.host_str() == next.host_str()
                && base.port_or_known_default() == next.port_or_known_default()
        }
        _ => false,
    }
}

impl ProfileDirectory for KlaviyoProfilesApi {
    fn lookup<'a>(&'a self, ids: &'a [String]) -> LookupFuture<'a> {
        Box::pin(self.fetch_all(ids))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_only_links_to_the_same_scheme_host_and_port() {
        let base = "https://a.klaviyo.com";
        assert!(same_origin(
            base,
            "https://a.klaviyo.com/api/profiles?page%5Bcursor%5D=x"
        ));
        assert!(same_origin(base, "https://a.klaviyo.com:443/api/profiles"));
        for hostile in [
            "https://a.klaviyo.com.evil.example/api/profiles",
            "https://a.klaviyo.com@evil.example/api/profiles",
            "https://user@a.klaviyo.com/api/profiles",
            "http://a.klaviyo.com/api/profiles",
            "https://a.klaviyo.com:8443/api/profiles",
            "https://evil.example/https://a.klaviyo.com/",
            "/api/profiles",
        ] {
            assert!(!same_origin(base, hostile), "{hostile}");
        }
    }
}
