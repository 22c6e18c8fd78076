//! Configuration, parsed once at start-up into a typed struct. Bad configuration fails the
//! start loudly instead of failing requests later.

use std::path::PathBuf;
use std::time::Duration;

use klaviyo_source::klaviyo::signature::DEFAULT_TIMESTAMP_TOLERANCE;
use klaviyo_source::secret::{WriteKey, WriteKeyError};
use klaviyo_source::sink::local_lake::DEFAULT_SCHEMA;

/// Lambda's synchronous invocation payload is capped at 6 MB, and API Gateway embeds the
/// body in a JSON event (escaped, or base64 for binary bodies, +33 %), so a body above
/// 4 MiB could fail before reaching us. The same limit applies locally so both modes
/// answer alike. <https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html>
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Longest schema name: Glue and Redshift both allow more; this keeps names sane.
const MAX_SCHEMA_NAME_LEN: usize = 64;

/// Environment variable names, shared by Lambda and local mode.
pub mod env {
    /// The current write key (the secret entered in Klaviyo).
    pub const WRITE_KEY: &str = "WRITE_KEY";
    /// The previous write key, accepted during rotation.
    pub const WRITE_KEY_PREVIOUS: &str = "WRITE_KEY_PREVIOUS";
    /// Warehouse schema (namespace) name.
    pub const SCHEMA_NAME: &str = "SCHEMA_NAME";
    /// Directory of the local lake.
    pub const LAKE_DIR: &str = "LAKE_DIR";
    /// Freshness window for `Klaviyo-Timestamp`, seconds.
    pub const TIMESTAMP_TOLERANCE_SECS: &str = "TIMESTAMP_TOLERANCE_SECS";
    /// Largest accepted request body, bytes.
    pub const MAX_BODY_BYTES: &str = "MAX_BODY_BYTES";
}

/// Where accepted rows go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkConfig {
    /// The local lake in this directory.
    LocalLake(PathBuf),
}

/// Everything the endpoint needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// One or two write keys (current, previous).
    pub write_keys: Vec<WriteKey>,
    /// Warehouse schema name (`klaviyo` by default).
    pub schema: String,
    /// Freshness window of `Klaviyo-Timestamp`.
    pub timestamp_tolerance: Duration,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Where rows go; `None` until a sink is configured.
    pub sink: Option<SinkConfig>,
}

/// What is wrong with the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A write key is unusable.
    #[error("{name}: {source}")]
    WriteKey {
        /// The variable or flag that held it.
        name: String,
        /// Why.
        #[source]
        source: WriteKeyError,
    },
    /// A value does not parse.
    #[error("{name} must be {expected}, got {value:?}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What it must be.
        expected: &'static str,
        /// What it was.
        value: String,
    },
}

impl Config {
    /// Reads the configuration through `lookup` (the process environment in production, a
    /// map in tests). Missing write keys give an empty list: the caller decides whether
    /// that is an error (Lambda) or a reason to generate one (local mode).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut write_keys = Vec::new();
        for name in [env::WRITE_KEY, env::WRITE_KEY_PREVIOUS] {
            if let Some(value) = lookup(name).filter(|v| !v.is_empty()) {
                write_keys.push(parse_write_key(name, value)?);
            }
        }
        let schema = match lookup(env::SCHEMA_NAME) {
            Some(value) => parse_schema_name(value)?,
            None => DEFAULT_SCHEMA.to_owned(),
        };
        let timestamp_tolerance = match lookup(env::TIMESTAMP_TOLERANCE_SECS) {
            Some(value) => {
                Duration::from_secs(parse_number(env::TIMESTAMP_TOLERANCE_SECS, &value)?)
            }
            None => DEFAULT_TIMESTAMP_TOLERANCE,
        };
        let max_body_bytes = match lookup(env::MAX_BODY_BYTES) {
            Some(value) => parse_number(env::MAX_BODY_BYTES, &value)?
                .try_into()
                .unwrap_or(usize::MAX),
            None => DEFAULT_MAX_BODY_BYTES,
        };
        let sink = lookup(env::LAKE_DIR)
            .filter(|v| !v.is_empty())
            .map(|dir| SinkConfig::LocalLake(PathBuf::from(dir)));
        Ok(Self {
            write_keys,
            schema,
            timestamp_tolerance,
            max_body_bytes,
            sink,
        })
    }
}

/// Validates one write key, naming its source in the error.
pub fn parse_write_key(name: &str, value: String) -> Result<WriteKey, ConfigError> {
    WriteKey::new(value).map_err(|source| ConfigError::WriteKey {
        name: name.to_owned(),
        source,
    })
}

/// A schema name is a warehouse identifier: lower-case letters, digits and `_`, starting
/// with a letter.
pub fn parse_schema_name(value: String) -> Result<String, ConfigError> {
    let valid = value.len() <= MAX_SCHEMA_NAME_LEN
        && value.starts_with(|c: char| c.is_ascii_lowercase())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(value)
    } else {
        Err(ConfigError::Invalid {
            name: env::SCHEMA_NAME,
            expected: "lower-case letters, digits and _ starting with a letter (at most 64)",
            value,
        })
    }
}

fn parse_number(name: &'static str, value: &str) -> Result<u64, ConfigError> {
    value.trim().parse().map_err(|_| ConfigError::Invalid {
        name,
        expected: "a whole number",
        value: value.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let c = config(&[]).unwrap();
        assert!(c.write_keys.is_empty());
        assert_eq!(c.schema, "klaviyo");
        assert_eq!(c.timestamp_tolerance, Duration::from_secs(300));
        assert_eq!(c.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert_eq!(c.sink, None);
    }

    #[test]
    fn reads_every_setting() {
        let c = config(&[
            ("WRITE_KEY", "current-key-0123456"),
            ("WRITE_KEY_PREVIOUS", "previous-key-654321"),
            ("SCHEMA_NAME", "klaviyo_eu"),
            ("TIMESTAMP_TOLERANCE_SECS", "60"),
            ("MAX_BODY_BYTES", "1024"),
            ("LAKE_DIR", "/tmp/lake"),
        ])
        .unwrap();
        assert_eq!(c.write_keys.len(), 2);
        assert_eq!(c.schema, "klaviyo_eu");
        assert_eq!(c.timestamp_tolerance, Duration::from_secs(60));
        assert_eq!(c.max_body_bytes, 1024);
        assert_eq!(c.sink, Some(SinkConfig::LocalLake("/tmp/lake".into())));
    }

    #[test]
    fn rejects_a_short_key_naming_the_variable_but_not_the_key() {
        let err = config(&[("WRITE_KEY_PREVIOUS", "tiny-secret")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("WRITE_KEY_PREVIOUS"), "{err}");
        assert!(!err.contains("tiny-secret"), "{err}");
    }

    #[test]
    fn rejects_bad_schema_names_and_numbers() {
        assert!(config(&[("SCHEMA_NAME", "Klaviyo-Prod")]).is_err());
        assert!(config(&[("SCHEMA_NAME", "1klaviyo")]).is_err());
        assert!(config(&[("TIMESTAMP_TOLERANCE_SECS", "5m")]).is_err());
    }
}
