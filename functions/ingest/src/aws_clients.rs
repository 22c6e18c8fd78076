//! AWS SDK configuration, loaded once per cold start: one HTTPS client (rustls with ring,
//! lighter to build than aws-lc), timeouts that fit API Gateway's 30 s, and path-style S3
//! addressing when an endpoint override points at an emulator.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

/// Whole-operation timeout, SDK retries included (standard mode: 3 attempts).
const OPERATION_TIMEOUT: Duration = Duration::from_secs(8);
/// One attempt's timeout.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// TCP/TLS connect timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Loads region and credentials the standard way (environment, profile, Lambda role).
pub async fn load_sdk_config() -> SdkConfig {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let timeouts = TimeoutConfig::builder()
        .operation_timeout(OPERATION_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .build();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .timeout_config(timeouts)
        .load()
        .await
}

/// An S3 client; path-style when `AWS_ENDPOINT_URL(_S3)` overrides the endpoint (emulators
/// do not serve virtual-hosted buckets).
pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let overridden = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()));
    let s3_config = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(overridden)
        .build();
    aws_sdk_s3::Client::from_conf(s3_config)
}
