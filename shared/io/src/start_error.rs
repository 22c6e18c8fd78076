//! Why a function could not start: the process exits and Lambda reports an init error. A
//! leaf module, so start-up and its checks both name it without importing each other.

use source_core::klaviyo::signature::VerifierConfigError;

use crate::aws_clients::AwsConfigError;
use crate::config::ConfigError;
use crate::write_key_secret::SecretError;

/// A start-up failure: the process exits and Lambda reports an init error. Each says what
/// to fix, never a secret's value.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is missing or does not parse.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The secret could not be read or is not the source's secret.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The write keys cannot verify anything (none, too many).
    #[error(transparent)]
    Keys(#[from] VerifierConfigError),
    /// No AWS SDK configuration (region or credentials missing, no root certificates).
    #[error(transparent)]
    Aws(#[from] AwsConfigError),
    /// The configured delivery stream does not exist.
    #[error(
        "delivery stream {0:?} does not exist in this account and region (DELIVERY_STREAM_NAME)"
    )]
    NoSuchStream(String),
    /// A combination of settings that cannot work, and what to set instead.
    #[error("{0}")]
    Misconfigured(&'static str),
    /// A local resource (the lake directory, the HTTPS client's root certificates) failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being set up.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl StartError {
    /// The HTTPS client for Klaviyo could not be built.
    pub fn klaviyo_client(source: std::io::Error) -> Self {
        Self::Io {
            what: "the HTTPS client for Klaviyo could not load the system's root certificates",
            source,
        }
    }
}
