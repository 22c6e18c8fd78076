//! Reading the source's secrets from AWS Secrets Manager, once per cold start.
//!
//! The secret's string is either the webhook write key itself, or a JSON object
//! `{"write_key": "...", "write_key_previous": "...", "segment_write_key": "...",
//! "segment_write_key_previous": "...", "klaviyo_api_key": "..."}` (the form the SAM stack
//! creates; all but `write_key` are optional: the previous keys for rotation, the Segment
//! keys turn the Segment API on, the Klaviyo private API key turns profile lookup on).
//! A JSON object with any other field is refused: a mistyped field name must not turn the
//! whole JSON text into a write key.

use serde::Deserialize;
use source_core::secret::{ApiKey, WriteKey};

use crate::config::{ConfigError, parse_write_key};

/// Why the secret could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Secrets Manager did not answer with the secret.
    #[error(
        "could not read the write key secret: {0} (give the secret's full ARN; a secret \
         encrypted with a customer managed KMS key needs that key's ARN in the stack's \
         ExistingSecretKmsKeyArn)"
    )]
    Fetch(String),
    /// The secret has no string value.
    #[error("the write key secret has no SecretString")]
    NotAString,
    /// A key in it is unusable.
    #[error(transparent)]
    Key(#[from] ConfigError),
    /// It is a JSON object, but not of the documented form (the text is not echoed).
    #[error(
        "the write key secret is a JSON object but not of the expected form: it needs \
         write_key and may have only write_key_previous, segment_write_key, \
         segment_write_key_previous and klaviyo_api_key besides ({0})"
    )]
    Shape(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretWire {
    write_key: String,
    #[serde(default)]
    write_key_previous: Option<String>,
    #[serde(default)]
    segment_write_key: Option<String>,
    #[serde(default)]
    segment_write_key_previous: Option<String>,
    #[serde(default)]
    klaviyo_api_key: Option<String>,
}

/// What the secret holds.
#[derive(Debug, Clone)]
pub struct SourceSecret {
    /// One or two write keys.
    pub write_keys: Vec<WriteKey>,
    /// The Segment API's write keys (none: the Segment API is off).
    pub segment_write_keys: Vec<WriteKey>,
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
    if !text.trim_start().starts_with('{') {
        return Ok(SourceSecret {
            write_keys: vec![parse_write_key("the write key secret", text.to_owned())?],
            segment_write_keys: Vec::new(),
            klaviyo_api_key: None,
        });
    }
    let secret = serde_json::from_str::<SecretWire>(text).map_err(|err| {
        // serde names the unknown or missing field; its position says nothing secret.
        let reason = err.to_string();
        let reason = reason.split(" at line").next().unwrap_or_default();
        SecretError::Shape(reason.to_owned())
    })?;
    Ok(SourceSecret {
        write_keys: key_pair(
            "write_key",
            Some(secret.write_key),
            secret.write_key_previous,
        )?,
        segment_write_keys: key_pair(
            "segment_write_key",
            secret.segment_write_key,
            secret.segment_write_key_previous,
        )?,
        klaviyo_api_key: secret.klaviyo_api_key.and_then(ApiKey::new),
    })
}

/// A current and a previous key, each optional when empty (the stack writes empty strings
/// for parameters left blank).
fn key_pair(
    name: &str,
    current: Option<String>,
    previous: Option<String>,
) -> Result<Vec<WriteKey>, ConfigError> {
    let mut keys = Vec::new();
    if let Some(key) = current.filter(|k| !k.is_empty()) {
        keys.push(parse_write_key(&format!("{name} in the secret"), key)?);
    }
    if let Some(key) = previous.filter(|k| !k.is_empty()) {
        keys.push(parse_write_key(
            &format!("{name}_previous in the secret"),
            key,
        )?);
    }
    Ok(keys)
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
    fn reads_the_segment_keys_apart_from_the_webhook_keys() {
        let secret = parse_source_secret(
            r#"{"write_key": "current-key-0123456", "segment_write_key": "segment-key-0123456"}"#,
        )
        .unwrap();
        assert_eq!(secret.write_keys.len(), 1);
        assert_eq!(
            secret.segment_write_keys[0].expose_secret(),
            "segment-key-0123456"
        );
    }

    #[test]
    fn refuses_a_json_secret_with_a_mistyped_field() {
        let err = parse_source_secret(
            r#"{"write_key": "current-key-0123456", "writekey_previous": "previous-key-654321"}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("writekey_previous"), "{err}");
        assert!(!err.contains("previous-key-654321"), "{err}");
        let missing = parse_source_secret(r#"{"writeKey": "current-key-0123456"}"#).unwrap_err();
        assert!(matches!(missing, SecretError::Shape(_)), "{missing}");
    }

    #[test]
    fn refuses_short_keys_without_echoing_them() {
        let err = parse_source_secret(r#"{"write_key": "short-one"}"#)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("short-one"), "{err}");
    }
}
