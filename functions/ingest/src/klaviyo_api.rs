//! Klaviyo's `GET /api/profiles`, behind the core's `ProfileDirectory`.
//!
//! One request per 100 ids (`filter=any(id,[...])`, `page[size]=100`, sparse fields
//! `email,external_id`), following `links.next` if Klaviyo pages anyway. A 429 waits for
//! `Retry-After` and tries again, a 5xx tries once more; the resolver's time budget cuts
//! everything off, so a slow Klaviyo only makes identities unresolved, never loses events.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use klaviyo_source::identity::profiles_response::{parse_profiles_page, profiles_query};
use klaviyo_source::identity::{LookupError, LookupFuture, Profile, ProfileDirectory};
use klaviyo_source::secret::ApiKey;

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
#[derive(Clone)]
pub struct KlaviyoProfilesApi {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    timeout: Duration,
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
    ) -> Result<Self, std::io::Error> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        // HTTPS to Klaviyo; plain HTTP is allowed only because tests point the base URL at
        // a local double (the API key then never leaves this machine).
        let connector = HttpsConnectorBuilder::new()
            .with_native_roots()?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
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
        let uri: Uri = url
            .parse()
            .map_err(|_| LookupError::Transport("the page URL does not parse".into()))?;
        let mut last_error = LookupError::Transport("no attempt made".into());
        for attempt in 1..=MAX_ATTEMPTS {
            let request = Request::get(uri.clone())
                .header(
                    header::AUTHORIZATION,
                    format!("Klaviyo-API-Key {}", self.api_key.expose_secret()),
                )
                .header("revision", &self.revision)
                .header(header::ACCEPT, "application/vnd.api+json")
                .body(Empty::<Bytes>::new())
                .map_err(|err| LookupError::Transport(err.to_string()))?;
            // One limit for the whole exchange, answer and body.
            let exchange = async {
                let response = self
                    .client
                    .request(request)
                    .await
                    .map_err(|err| LookupError::Transport(err.to_string()))?;
                let status = response.status();
                let retry_after = response
                    .headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .map_err(|err| LookupError::Transport(err.to_string()))?
                    .to_bytes();
                Ok::<_, LookupError>((status, retry_after, body))
            };
            let (status, retry_after, body) = tokio::time::timeout(self.timeout, exchange)
                .await
                .map_err(|_| LookupError::Timeout)??;
            if status.is_success() {
                return Ok(body.to_vec());
            }
            let wait = if status == StatusCode::TOO_MANY_REQUESTS {
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
    let origin = |text: &str| -> Option<(String, String, u16)> {
        let uri: Uri = text.parse().ok()?;
        let authority = uri.authority()?;
        if authority.as_str().contains('@') {
            return None;
        }
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let port = authority.port_u16().or(match scheme.as_str() {
            "https" => Some(443),
            "http" => Some(80),
            _ => None,
        })?;
        Some((scheme, authority.host().to_ascii_lowercase(), port))
    };
    match (origin(base), origin(next)) {
        (Some(base), Some(next)) => base == next,
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
