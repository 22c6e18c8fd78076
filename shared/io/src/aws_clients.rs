//! AWS SDK configuration, loaded once per cold start: one HTTPS client (rustls with ring,
//! lighter to build than aws-lc), timeouts that fit API Gateway's 30 s, and path-style S3
//! addressing when an endpoint override points at an emulator.
//!
//! Two ways to find the region and credentials. The command line uses aws-config's whole
//! provider chain (environment, profiles, the instance's role), as every AWS tool does. The
//! Lambda binaries read only the variables the Lambda runtime sets for the function's role:
//! that is where aws-config's chain finds them in Lambda too, and leaving the rest of the
//! chain (profile files, STS, IMDS, ECS) out of their binaries makes them smaller (see
//! README, design note "Small Lambda binaries").

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_firehose::config::SharedHttpClient;
use aws_sdk_firehose::config::{Credentials, Region, SharedCredentialsProvider};
use aws_smithy_async::rt::sleep::TokioSleep;

use crate::sdk_http::sdk_https_client;
use aws_types::sdk_config::RetryConfig;

/// Whole-operation timeout, SDK retries included (standard mode: 3 attempts).
const OPERATION_TIMEOUT: Duration = Duration::from_secs(8);
/// One attempt's timeout.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// TCP/TLS connect timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The variables the Lambda runtime sets: region and the execution role's credentials.
/// <https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime>
pub mod lambda_env {
    /// "The AWS Region where the Lambda function is executed."
    pub const REGION: &str = "AWS_REGION";
    /// "The access keys obtained from the function's execution role."
    pub const ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
    /// The secret half of those keys.
    pub const SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
    /// The session token of those temporary keys.
    pub const SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
    /// Not set by Lambda: the SDKs' endpoint override, honoured so the binaries can be run
    /// against an emulator (the tests do).
    /// <https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html>
    pub const ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";
}

fn https_client() -> Result<SharedHttpClient, std::io::Error> {
    sdk_https_client(CONNECT_TIMEOUT)
}

fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .operation_timeout(OPERATION_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
}

/// Loads region and credentials the standard way (environment, profile, instance role):
/// the command line's configuration.
pub async fn load_sdk_config() -> Result<SdkConfig, AwsConfigError> {
    Ok(aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client()?)
        .timeout_config(timeouts())
        .load()
        .await)
}

/// Why no SDK configuration could be built.
#[derive(Debug, thiserror::Error)]
pub enum AwsConfigError {
    /// A variable the Lambda configuration needs is not set.
    #[error(
        "{0} is not set: the Lambda runtime sets it; to run this binary elsewhere, export the region and credentials (for example `aws configure export-credentials --format env`)"
    )]
    MissingVariable(&'static str),
    /// The HTTPS client could not load the system's root certificates.
    #[error("the HTTPS client for AWS could not load the system's root certificates: {0}")]
    RootCertificates(#[from] std::io::Error),
}

/// The configuration of the Lambda binaries, from the runtime's variables through `lookup`
/// (the process environment). Empty counts as unset, as for every setting.
pub fn sdk_config_from_lambda_environment(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<SdkConfig, AwsConfigError> {
    let read = |name: &str| lookup(name).filter(|value| !value.is_empty());
    let require = |name: &'static str| read(name).ok_or(AwsConfigError::MissingVariable(name));
    let credentials = Credentials::new(
        require(lambda_env::ACCESS_KEY_ID)?,
        require(lambda_env::SECRET_ACCESS_KEY)?,
        read(lambda_env::SESSION_TOKEN),
        None,
        "lambda-environment",
    );
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(require(lambda_env::REGION)?))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .http_client(https_client()?)
        .timeout_config(timeouts())
        .retry_config(RetryConfig::standard())
        .sleep_impl(TokioSleep::new());
    builder.set_endpoint_url(read(lambda_env::ENDPOINT_URL));
    Ok(builder.build())
}

/// An S3 client; path-style when the configuration overrides the endpoint
/// (`AWS_ENDPOINT_URL`: emulators do not serve virtual-hosted buckets).
pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let s3_config = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(config.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(s3_config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_firehose::config::ProvideCredentials;

    #[tokio::test]
    async fn the_lambda_configuration_takes_the_runtimes_variables() {
        let env = |name: &str| {
            Some(match name {
                "AWS_REGION" => "eu-west-1".to_owned(),
                "AWS_ACCESS_KEY_ID" => "AKIDEXAMPLE".to_owned(),
                "AWS_SECRET_ACCESS_KEY" => "secret".to_owned(),
                "AWS_SESSION_TOKEN" => "token".to_owned(),
                "AWS_ENDPOINT_URL" => "http://127.0.0.1:5000".to_owned(),
                _ => return None,
            })
        };
        let config = sdk_config_from_lambda_environment(env).unwrap();
        assert_eq!(config.region().map(|r| r.as_ref()), Some("eu-west-1"));
        assert_eq!(config.endpoint_url(), Some("http://127.0.0.1:5000"));
        let credentials = config
            .credentials_provider()
            .unwrap()
            .provide_credentials()
            .await
            .unwrap();
        assert_eq!(credentials.access_key_id(), "AKIDEXAMPLE");
        assert_eq!(credentials.session_token(), Some("token"));
    }

    #[test]
    fn a_missing_region_is_named() {
        let env = |name: &str| (name != "AWS_REGION").then(|| "x".to_owned());
        let err = sdk_config_from_lambda_environment(env).unwrap_err();
        assert!(
            matches!(err, AwsConfigError::MissingVariable("AWS_REGION")),
            "{err}"
        );
    }
}
