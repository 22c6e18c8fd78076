//! Reading the source's secrets from AWS Secrets Manager, once per cold start.
//!
//! The secret's string is either the write key itself, or a JSON object
//! `{"write_key": "...", "write_key_previous": "...", "klaviyo_api_key": "..."}` (the form
//! the SAM stack creates; the previous key is optional, for rotation; the Klaviyo private
//! API key is optional and turns profile lookup on).

use klaviyo_source::secret::{ApiKey, WriteKey};
use serde::Deserialize;

use crate::config::{ConfigError, parse_write_key};

/// Why the secret could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Secrets Manager did not answer with the secret.
    #[error("could not read the write key secret: {0}")]
    Fetch(String),
    /// The secret has no string value.
    #[error("the write key secret has no SecretString")]
    NotAString,
    /// A key in it is unusable.
    #[error(transparent)]
    Key(#[from] ConfigError),
}

#[derive(Deserialize)]
struct SecretWire {
    write_key: String,
    #[serde(default)]
    write_key_previous: Option<String>,
    #[serde(default)]
    klaviyo_api_key: Option<String>,
}

/// What the secret holds.
#[derive(Debug, Clone)]
pub struct SourceSecret {
    /// One or two write keys.
    pub write_keys: Vec<WriteKey>,
    /// The Klaviyo private API key, if profile lookup is wanted.
    pub klaviyo_api_key: Option<ApiKey>,
}

/// Fetches and parses the secret `arn`.
pub async fn fetch_source_secret(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> Result<SourceSecret, SecretError> {
    let output = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|err| {
            SecretError::Fetch(aws_sdk_secretsmanager::error::DisplayErrorContext(err).to_string())
        })?;
    let text = output.secret_string().ok_or(SecretError::NotAString)?;
    parse_source_secret(text)
}

/// Parses a secret string (plain write key or JSON object).
pub fn parse_source_secret(text: &str) -> Result<SourceSecret, SecretError> {
    let Ok(secret) = serde_json::from_str::<SecretWire>(text) else {
        return Ok(SourceSecret {
            write_keys: vec![parse_write_key("the write key secret", text.to_owned())?],
            klaviyo_api_key: None,
        });
    };
    let mut write_keys = vec![parse_write_key(
        "write_key in the secret",
        secret.write_key,
    )?];
    if let Some(previous) = secret.write_key_previous.filter(|k| !k.is_empty()) {
        write_keys.push(parse_write_key(
            "write_key_previous in the secret",
            previous,
        )?);
    }
    Ok(SourceSecret {
        write_keys,
        klaviyo_api_key: secret.klaviyo_api_key.and_then(ApiKey::new),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_plain_key() {
        let secret = parse_source_secret("plain-write-key-0123").unwrap();
        assert_eq!(secret.write_keys[0].expose_secret(), "plain-write-key-0123");
        assert!(secret.klaviyo_api_key.is_none());
    }

    #[test]
    fn reads_current_and_previous_keys_and_the_api_key_from_json() {
        let secret = parse_source_secret(
            r#"{"write_key": "current-key-0123456", "write_key_previous": "previous-key-654321", "klaviyo_api_key": "pk_abc"}"#,
        )
        .unwrap();
        let texts: Vec<&str> = secret
            .write_keys
            .iter()
            .map(WriteKey::expose_secret)
            .collect();
        assert_eq!(texts, ["current-key-0123456", "previous-key-654321"]);
        assert_eq!(secret.klaviyo_api_key.unwrap().expose_secret(), "pk_abc");
        let one = parse_source_secret(
            r#"{"write_key": "current-key-0123456", "write_key_previous": "", "klaviyo_api_key": ""}"#,
        )
        .unwrap();
        assert_eq!(one.write_keys.len(), 1);
        assert!(one.klaviyo_api_key.is_none());
    }

    #[test]
    fn refuses_short_keys_without_echoing_them() {
        let err = parse_source_secret(r#"{"write_key": "short-one"}"#)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("short-one"), "{err}");
    }
}
