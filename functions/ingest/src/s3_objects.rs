//! The four S3 calls the deployed functions make, as signed REST requests on our HTTP/1.1
//! client: put an object (optionally conditional), get one, and list one key under a prefix.
//! The S3 SDK crate would bring every S3 checksum algorithm with its tables (about 0.7 MB of
//! the function's binary) for these four calls; the command line's bulk work (redrive,
//! reconcile, a backfill into the bucket) keeps the SDK.
//!
//! Requests are signed with AWS's own SigV4 signer (`aws-sigv4`, the one the SDK uses), with
//! the payload's SHA-256 in `x-amz-content-sha256` as S3 requires, and the path encoded once.
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html>

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sdk_firehose::config::ProvideCredentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_types::SdkConfig;
use aws_types::sdk_config::SharedCredentialsProvider;
use axum::body::Bytes;
use axum::http::{HeaderValue, Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::aws_clients::AwsConfigError;
use crate::https_connector::https_connector;

/// Attempts per call: a 5xx or a lost connection is tried again, as the SDK's standard
/// retry mode does (three attempts).
const ATTEMPTS: u32 = 3;
/// Time allowed for one attempt (request, answer and body).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// Credentials are fetched again this long before they expire.
const CREDENTIALS_REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum S3Error {
    /// S3 answered with an error status (and usually an error code).
    #[error("S3 answered {status} {code}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// S3's error code (`NoSuchBucket`, `AccessDenied`, ...), or "" when the answer had none.
        code: String,
    },
    /// No answer: connection, TLS, time-out, or no credentials.
    #[error("S3 could not be reached: {0}")]
    Unreachable(String),
}

/// A condition on a write.
/// <https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html>
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteCondition {
    /// Write whatever is there.
    Always,
    /// `If-None-Match: *`: only if no object has the key.
    IfAbsent,
    /// `If-Match: <ETag>`: only if the object is still this version.
    IfMatch(String),
}

/// A stored object: its bytes and its ETag.
#[derive(Debug, Clone)]
pub struct StoredObject {
    /// The body.
    pub body: Bytes,
    /// The ETag S3 gave it.
    pub etag: Option<String>,
}

/// Where buckets are addressed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Addressing {
    /// `https://<bucket>.s3.<region>.amazonaws.com/<key>` (path style for names with dots,
    /// which the wildcard certificate does not cover).
    Aws,
    /// `<endpoint>/<bucket>/<key>`, for an endpoint override (an emulator).
    PathStyle(String),
}

/// S3 for one region and set of credentials.
#[derive(Debug)]
pub struct S3Objects {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    credentials: SharedCredentialsProvider,
    cached: Mutex<Option<Credentials>>,
    region: String,
    addressing: Addressing,
}

impl S3Objects {
    /// S3 as `sdk` describes it (region, credentials, endpoint override); an
    /// `AWS_ENDPOINT_URL_S3` in the environment wins over the general override, as in the SDK.
    pub fn new(sdk: &SdkConfig) -> Result<Self, AwsConfigError> {
        let connector = https_connector(ATTEMPT_TIMEOUT)?;
        let endpoint = std::env::var("AWS_ENDPOINT_URL_S3")
            .ok()
            .filter(|url| !url.is_empty())
            .or_else(|| sdk.endpoint_url().map(str::to_owned));
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            credentials: sdk
                .credentials_provider()
                .ok_or(AwsConfigError::MissingVariable("AWS_ACCESS_KEY_ID"))?,
            cached: Mutex::new(None),
            region: sdk
                .region()
                .ok_or(AwsConfigError::MissingVariable("AWS_REGION"))?
                .to_string(),
            addressing: match endpoint {
                Some(url) => Addressing::PathStyle(url.trim_end_matches('/').to_owned()),
                None => Addressing::Aws,
            },
        })
    }

    /// `PutObject`: stores `body` under `key`; the new ETag. A failed condition is
    /// `Refused { status: 412 }` (or 409 when a concurrent conditional write won).
    pub async fn put(
        &self,
        bucket: &str,
        key: &str,
        content_type: &'static str,
        body: Vec<u8>,
        condition: &WriteCondition,
    ) -> Result<Option<String>, S3Error> {
        let mut headers = vec![(header::CONTENT_TYPE, HeaderValue::from_static(content_type))];
        match condition {
            WriteCondition::Always => {}
            WriteCondition::IfAbsent => {
                headers.push((header::IF_NONE_MATCH, HeaderValue::from_static("*")));
            }
            WriteCondition::IfMatch(etag) => headers.push((
                header::IF_MATCH,
                HeaderValue::from_str(etag)
                    .map_err(|_| S3Error::Unreachable("the ETag is not a header value".into()))?,
            )),
        }
        let answer = self
            .call(Method::PUT, bucket, key, "", &headers, Bytes::from(body))
            .await?;
        Ok(answer.etag)
    }

    /// `GetObject`: the object under `key`, or `None` when there is none (`NoSuchKey`).
    pub async fn get(&self, bucket: &str, key: &str) -> Result<Option<StoredObject>, S3Error> {
        match self
            .call(Method::GET, bucket, key, "", &[], Bytes::new())
            .await
        {
            Ok(object) => Ok(Some(object)),
            Err(S3Error::Refused { code, .. }) if code == "NoSuchKey" => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// `ListObjectsV2` of at most one key under `prefix`: whether the prefix can be read.
    pub async fn list_one(&self, bucket: &str, prefix: &str) -> Result<(), S3Error> {
        let query = format!("list-type=2&max-keys=1&prefix={}", encode(prefix, false));
        self.call(Method::GET, bucket, "", &query, &[], Bytes::new())
            .await
            .map(|_| ())
    }

    async fn call(
        &self,
        method: Method,
        bucket: &str,
        key: &str,
        query: &str,
        headers: &[(header::HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<StoredObject, S3Error> {
        let url = self.url(bucket, key, query);
        let mut last = S3Error::Unreachable("no attempt made".into());
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
            let credentials = self.credentials().await?;
            let mut request = Request::builder()
                .method(method.clone())
                .uri(&url)
                .body(Full::new(body.clone()))
                .map_err(|err| S3Error::Unreachable(err.to_string()))?;
            request.headers_mut().extend(headers.iter().cloned());
            sign_for_s3(
                &mut request,
                &body,
                &credentials,
                &self.region,
                SystemTime::now(),
            )
            .map_err(S3Error::Unreachable)?;
            match tokio::time::timeout(ATTEMPT_TIMEOUT, self.exchange(request)).await {
                Ok(Ok(object)) => return Ok(object),
                Ok(Err(err @ S3Error::Refused { status, .. })) if status < 500 => return Err(err),
                Ok(Err(err)) => last = err,
                Err(_) => {
                    last = S3Error::Unreachable(format!("no answer within {ATTEMPT_TIMEOUT:?}"))
                }
            }
        }
        Err(last)
    }

    async fn exchange(&self, request: Request<Full<Bytes>>) -> Result<StoredObject, S3Error> {
        let answer = self
            .client
            .request(request)
            .await
            .map_err(|err| S3Error::Unreachable(err.to_string()))?;
        let status = answer.status();
        let etag = answer
            .headers()
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = answer
            .into_body()
            .collect()
            .await
            .map_err(|err| S3Error::Unreachable(err.to_string()))?
            .to_bytes();
        if status.is_success() {
            Ok(StoredObject { body, etag })
        } else {
            Err(S3Error::Refused {
                status: status.as_u16(),
                code: error_code(&body).unwrap_or_default().to_owned(),
            })
        }
    }

    /// The credentials, fetched again when they are within the margin of expiring.
    async fn credentials(&self) -> Result<Credentials, S3Error> {
        let mut cached = self.cached.lock().await;
        let fresh = cached.as_ref().filter(|credentials| {
            credentials.expiry().is_none_or(|expiry| {
                expiry
                    .duration_since(SystemTime::now())
                    .is_ok_and(|left| left > CREDENTIALS_REFRESH_MARGIN)
            })
        });
        if let Some(credentials) = fresh {
            return Ok(credentials.clone());
        }
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|err| S3Error::Unreachable(format!("no AWS credentials: {err}")))?;
        *cached = Some(credentials.clone());
        Ok(credentials)
    }

    fn url(&self, bucket: &str, key: &str, query: &str) -> String {
        let path = encode(key, true);
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        // The China regions are a partition of their own, under another domain.
        let domain = if self.region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        let region = &self.region;
        match &self.addressing {
            Addressing::PathStyle(endpoint) => format!("{endpoint}/{bucket}/{path}{query}"),
            Addressing::Aws if bucket.contains('.') => {
                format!("https://s3.{region}.{domain}/{bucket}/{path}{query}")
            }
            Addressing::Aws => format!("https://{bucket}.s3.{region}.{domain}/{path}{query}"),
        }
    }
}

/// Signs `request` for S3 in `region` at `time`: SigV4 in the `Authorization` header, the
/// body's SHA-256 in `x-amz-content-sha256`, the path taken as already encoded (once).
fn sign_for_s3<B>(
    request: &mut Request<B>,
    body: &[u8],
    credentials: &Credentials,
    region: &str,
    time: SystemTime,
) -> Result<(), String> {
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("s3")
        .time(time)
        .settings(settings)
        .build()
        .map_err(|err| err.to_string())?
        .into();
    let payload_hash = hex::encode(Sha256::digest(body));
    let uri = request.uri().to_string();
    let headers = request
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)));
    let signable = SignableRequest::new(
        request.method().as_str(),
        uri.as_str(),
        headers,
        SignableBody::Precomputed(payload_hash),
    )
    .map_err(|err| err.to_string())?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|err| err.to_string())?
        .into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}

/// S3's error code from an error body (`<Error><Code>NoSuchKey</Code>...`).
fn error_code(body: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Code>")? + "<Code>".len();
    let end = start + text[start..].find("</Code>")?;
    Some(&text[start..end])
}

/// URI-encodes `text` as SigV4 asks: unreserved characters stay, every other byte becomes
/// `%XX`; `/` stays in a path and is encoded in a query value.
/// <https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html>
fn encode(text: &str, path: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte));
            }
            b'/' if path => out.push('/'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's worked example "GET Object" (examplebucket, test.txt, Range bytes=0-9, 24 May
    /// 2013, us-east-1, the documentation's example keys): the signature it gives.
    /// <https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html>
    #[test]
    fn signs_the_documented_get_object_example() {
        let credentials = Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "example",
        );
        let mut request = Request::builder()
            .method(Method::GET)
            .uri("https://examplebucket.s3.amazonaws.com/test.txt")
            .header("range", "bytes=0-9")
            .body(())
            .unwrap();
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600);
        sign_for_s3(&mut request, b"", &credentials, "us-east-1", time).unwrap();
        // The signer separates the three parts with ", ", the document with ","; S3
        // accepts both.
        let authorization = request.headers()["authorization"].to_str().unwrap();
        assert_eq!(
            authorization.replace(", ", ","),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        assert_eq!(
            request.headers()["x-amz-content-sha256"],
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    /// A Lambda role's credentials carry a session token: it goes in
    /// `x-amz-security-token` and is signed.
    #[test]
    fn signs_the_session_token_of_temporary_credentials() {
        let credentials =
            Credentials::new("ASIAEXAMPLE", "secret", Some("token".into()), None, "t");
        let mut request = Request::builder()
            .method(Method::PUT)
            .uri("https://b.s3.eu-west-1.amazonaws.com/k")
            .header("if-none-match", "*")
            .body(())
            .unwrap();
        sign_for_s3(
            &mut request,
            b"{}",
            &credentials,
            "eu-west-1",
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(request.headers()["x-amz-security-token"], "token");
        let authorization = request.headers()["authorization"].to_str().unwrap();
        assert!(
            authorization.contains(
                "SignedHeaders=host;if-none-match;x-amz-content-sha256;x-amz-date;x-amz-security-token"
            ),
            "{authorization}"
        );
    }

    fn s3_in(region: &str, endpoint: Option<&str>) -> S3Objects {
        let credentials = Credentials::new("AKID", "secret", None, None, "test");
        let mut sdk = SdkConfig::builder()
            .region(aws_sdk_firehose::config::Region::new(region.to_owned()))
            .credentials_provider(SharedCredentialsProvider::new(credentials));
        sdk.set_endpoint_url(endpoint.map(str::to_owned));
        S3Objects::new(&sdk.build()).unwrap()
    }

    #[test]
    fn addresses_buckets_virtually_in_aws_and_by_path_at_an_endpoint() {
        let key = "pull-state/klaviyo-pull.json";
        assert_eq!(
            s3_in("eu-west-1", None).url("data-bucket", key, ""),
            "https://data-bucket.s3.eu-west-1.amazonaws.com/pull-state/klaviyo-pull.json"
        );
        assert_eq!(
            s3_in("eu-west-1", None).url("dotted.bucket", "", "list-type=2"),
            "https://s3.eu-west-1.amazonaws.com/dotted.bucket/?list-type=2"
        );
        assert_eq!(
            s3_in("cn-north-1", None).url("b", "k", ""),
            "https://b.s3.cn-north-1.amazonaws.com.cn/k"
        );
        assert_eq!(
            s3_in("eu-west-1", Some("http://127.0.0.1:5000/")).url("b", key, ""),
            "http://127.0.0.1:5000/b/pull-state/klaviyo-pull.json"
        );
    }

    #[test]
    fn keys_are_encoded_once_with_slashes_kept_in_paths_only() {
        assert_eq!(
            encode("dead-letter/dt=2026-11-29/a b+c.ndjson", true),
            "dead-letter/dt%3D2026-11-29/a%20b%2Bc.ndjson"
        );
        assert_eq!(encode("dead-letter/", false), "dead-letter%2F");
    }

    #[test]
    fn reads_the_error_code_of_an_s3_error_body() {
        let body =
            b"<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>m</Message></Error>";
        assert_eq!(error_code(body), Some("NoSuchKey"));
        assert_eq!(error_code(b""), None);
    }
}
