//! One HTTPS exchange with Klaviyo's API: the private key, the pinned `revision`, a time
//! limit on the whole exchange (answer and body). Retries are the caller's: the profile
//! lookup and the pull retry differently.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use source_core::secret::ApiKey;

use crate::https_connector::https_connector;

/// Klaviyo's answer to one request.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// `Retry-After`, whole seconds, when sent.
    pub retry_after: Option<u64>,
    /// `RateLimit-Remaining` and `RateLimit-Reset` (seconds), when sent: the state of the
    /// endpoint's steady (one-minute) window, on every answer but a 429.
    pub rate_limit: Option<(u64, u64)>,
    /// The body.
    pub body: Bytes,
}

/// Why an exchange gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    /// No complete answer within the time limit.
    #[error("Klaviyo did not answer within {0:?}")]
    Timeout(Duration),
    /// The request could not be sent or the answer not read.
    #[error("request to Klaviyo failed: {0}")]
    Transport(String),
}

/// Klaviyo's API for one account.
#[derive(Clone)]
pub struct KlaviyoHttp {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
    base_url: String,
    api_key: ApiKey,
    revision: String,
}

impl KlaviyoHttp {
    /// A client for `base_url` with `api_key` and `revision`, each exchange limited to
    /// `timeout`.
    pub fn new(
        base_url: &str,
        api_key: ApiKey,
        revision: &str,
        timeout: Duration,
    ) -> Result<Self, std::io::Error> {
        // HTTPS to Klaviyo; plain HTTP only for a local double in the tests (the API key
        // then never leaves this machine).
        let connector = https_connector(timeout)?;
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            revision: revision.to_owned(),
        })
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The pinned revision.
    pub fn revision(&self) -> &str {
        &self.revision
    }

    /// `GET url` (absolute).
    pub async fn get(&self, url: &str) -> Result<Answer, ExchangeError> {
        self.exchange(Method::GET, url, Bytes::new()).await
    }

    /// `POST url` (absolute) with a JSON:API body.
    pub async fn post_json(&self, url: &str, body: Vec<u8>) -> Result<Answer, ExchangeError> {
        self.exchange(Method::POST, url, Bytes::from(body)).await
    }

    async fn exchange(
        &self,
        method: Method,
        url: &str,
        body: Bytes,
    ) -> Result<Answer, ExchangeError> {
        let uri: Uri = url
            .parse()
            .map_err(|_| ExchangeError::Transport("the URL does not parse".into()))?;
        let has_body = !body.is_empty();
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(
                header::AUTHORIZATION,
                format!("Klaviyo-API-Key {}", self.api_key.expose_secret()),
            )
            .header("revision", &self.revision)
            .header(header::ACCEPT, "application/vnd.api+json");
        if has_body {
            request = request.header(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/vnd.api+json"),
            );
        }
        let request = request
            .body(Full::new(body))
            .map_err(|err| ExchangeError::Transport(err.to_string()))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|err| ExchangeError::Transport(err.to_string()))?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let number = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
            };
            let rate_limit = number("ratelimit-remaining").zip(number("ratelimit-reset"));
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|err| ExchangeError::Transport(err.to_string()))?
                .to_bytes();
            Ok::<_, ExchangeError>(Answer {
                status,
                retry_after,
                rate_limit,
                body,
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| ExchangeError::Timeout(self.timeout))?
    }

    /// Whether `next` may be followed: same scheme, host and port as the base URL, so the
    /// API key never goes anywhere but Klaviyo's own host.
    pub fn may_follow(&self, next: &str) -> bool {
        same_origin(&self.base_url, next)
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
