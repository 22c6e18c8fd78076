//! Reading the write keys from AWS Secrets Manager, once per cold start.
//!
//! The secret's string is either the key itself, or a JSON object
//! `{"write_key": "...", "write_key_previous": "..."}` (the form the SAM stack creates;
//! the previous key is optional, for rotation).

use klaviyo_source::secret::WriteKey;
use serde::Deserialize;

use crate::config::{ConfigError, parse_write_key};

/// Why the secret could not give write keys.
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
struct WriteKeySecret {
    write_key: String,
    #[serde(default)]
    write_key_previous: Option<String>,
}

/// Fetches and parses the secret `arn`.
pub async fn fetch_write_keys(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> Result<Vec<WriteKey>, SecretError> {
    let output = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|err| {
            SecretError::Fetch(aws_sdk_secretsmanager::error::DisplayErrorContext(err).to_string())
        })?;
    let text = output.secret_string().ok_or(SecretError::NotAString)?;
    parse_write_key_secret(text)
}

/// Parses a secret string (plain key or JSON object).
pub fn parse_write_key_secret(text: &str) -> Result<Vec<WriteKey>, SecretError> {
    let Ok(secret) = serde_json::from_str::<WriteKeySecret>(text) else {
        return Ok(vec![parse_write_key(
            "the write key secret",
            text.to_owned(),
        )?]);
    };
    let mut keys = vec![parse_write_key(
        "write_key in the secret",
        secret.write_key,
    )?];
    if let Some(previous) = secret.write_key_previous.filter(|k| !k.is_empty()) {
        keys.push(parse_write_key(
            "write_key_previous in the secret",
            previous,
        )?);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_plain_key() {
        let keys = parse_write_key_secret("plain-write-key-0123").unwrap();
        assert_eq!(keys[0].expose_secret(), "plain-write-key-0123");
    }

    #[test]
    fn reads_current_and_previous_keys_from_json() {
        let keys = parse_write_key_secret(
            r#"{"write_key": "current-key-0123456", "write_key_previous": "previous-key-654321"}"#,
        )
        .unwrap();
        let texts: Vec<&str> = keys.iter().map(WriteKey::expose_secret).collect();
        assert_eq!(texts, ["current-key-0123456", "previous-key-654321"]);
        let one = parse_write_key_secret(
            r#"{"write_key": "current-key-0123456", "write_key_previous": ""}"#,
        )
        .unwrap();
        assert_eq!(one.len(), 1);
    }

    #[test]
    fn refuses_short_keys_without_echoing_them() {
        let err = parse_write_key_secret(r#"{"write_key": "short-one"}"#)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("short-one"), "{err}");
    }
}
