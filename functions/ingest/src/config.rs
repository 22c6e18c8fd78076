//! Configuration, parsed once at start-up into a typed struct. Bad configuration fails the
//! start loudly instead of failing requests later.

use std::path::PathBuf;
use std::time::Duration;

use klaviyo_source::klaviyo::signature::DEFAULT_TIMESTAMP_TOLERANCE;
use klaviyo_source::secret::{ApiKey, WriteKey, WriteKeyError};

use crate::klaviyo_http::{DEFAULT_KLAVIYO_API_BASE_URL, DEFAULT_KLAVIYO_API_REVISION};
use klaviyo_source::klaviyo::metric_alias::MetricChannel;
use klaviyo_source::pull::rate_budget::DEFAULT_REQUESTS_PER_MINUTE;
use klaviyo_source::sink::local_lake::DEFAULT_SCHEMA;

/// Lambda's synchronous invocation payload is capped at 6 MB, and API Gateway embeds the
/// body in a JSON event (escaped, or base64 for binary bodies, +33 %), so a body above
/// 4 MiB could fail before reaching us. The same limit applies locally so both modes
/// answer alike. <https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html>
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// [`DEFAULT_MAX_BODY_BYTES`] as the configuration reads numbers: also the largest allowed.
const DEFAULT_MAX_BODY_BYTES_U64: u64 = DEFAULT_MAX_BODY_BYTES as u64;

/// Longest schema name: Glue and Redshift both allow more; this keeps names sane.
const MAX_SCHEMA_NAME_LEN: usize = 64;

/// Environment variable names, shared by Lambda and local mode.
pub mod env {
    /// The current write key (the secret entered in Klaviyo).
    pub const WRITE_KEY: &str = "WRITE_KEY";
    /// The previous write key, accepted during rotation.
    pub const WRITE_KEY_PREVIOUS: &str = "WRITE_KEY_PREVIOUS";
    /// The Segment HTTP Tracking API's write key (never one of the webhook keys).
    pub const SEGMENT_WRITE_KEY: &str = "SEGMENT_WRITE_KEY";
    /// A previous Segment write key, accepted during rotation.
    pub const SEGMENT_WRITE_KEY_PREVIOUS: &str = "SEGMENT_WRITE_KEY_PREVIOUS";
    /// Warehouse schema (namespace) name.
    pub const SCHEMA_NAME: &str = "SCHEMA_NAME";
    /// Directory of the local lake.
    pub const LAKE_DIR: &str = "LAKE_DIR";
    /// Freshness window for `Klaviyo-Timestamp`, seconds.
    pub const TIMESTAMP_TOLERANCE_SECS: &str = "TIMESTAMP_TOLERANCE_SECS";
    /// Largest accepted request body, bytes.
    pub const MAX_BODY_BYTES: &str = "MAX_BODY_BYTES";
    /// ARN of a Secrets Manager secret holding the write key(s); used instead of
    /// `WRITE_KEY` in Lambda.
    pub const WRITE_KEY_SECRET_ARN: &str = "WRITE_KEY_SECRET_ARN";
    /// Firehose delivery stream; selects the Firehose sink.
    pub const DELIVERY_STREAM_NAME: &str = "DELIVERY_STREAM_NAME";
    /// Bucket of the dead-letter store (required with the Firehose sink).
    pub const DEAD_LETTER_BUCKET: &str = "DEAD_LETTER_BUCKET";
    /// Key prefix of the dead-letter store.
    pub const DEAD_LETTER_PREFIX: &str = "DEAD_LETTER_PREFIX";
    /// `true` (default) packs several rows per Firehose record; `false` sends one each.
    pub const PACK_RECORDS: &str = "PACK_RECORDS";
    /// Seconds allowed for Firehose calls per request before spilling.
    pub const DELIVERY_TIMEOUT_SECS: &str = "DELIVERY_TIMEOUT_SECS";
    /// `true` writes CloudWatch Embedded Metric Format lines to stdout.
    pub const EMIT_METRICS: &str = "EMIT_METRICS";
    /// Klaviyo private API key (local mode; in Lambda it comes from the secret).
    pub const KLAVIYO_API_KEY: &str = "KLAVIYO_API_KEY";
    /// Klaviyo API base URL (tests point it at a local double).
    pub const KLAVIYO_API_BASE_URL: &str = "KLAVIYO_API_BASE_URL";
    /// The `revision` header sent to Klaviyo.
    pub const KLAVIYO_API_REVISION: &str = "KLAVIYO_API_REVISION";
    /// Time budget for profile lookups per request, milliseconds.
    pub const PROFILE_LOOKUP_TIMEOUT_MS: &str = "PROFILE_LOOKUP_TIMEOUT_MS";
    /// How long a looked-up profile is reused, seconds.
    pub const PROFILE_CACHE_TTL_SECS: &str = "PROFILE_CACHE_TTL_SECS";
    /// `true` stores only events of profiles with an `external_id`.
    pub const ONLY_OWN_PROFILES: &str = "ONLY_OWN_PROFILES";
    /// The pull's request budget against Klaviyo's Get Events, per minute.
    pub const PULL_REQUESTS_PER_MINUTE: &str = "PULL_REQUESTS_PER_MINUTE";
    /// The bucket holding the scheduled pull's state object.
    pub const PULL_STATE_BUCKET: &str = "PULL_STATE_BUCKET";
    /// The key of the scheduled pull's state object.
    pub const PULL_STATE_KEY: &str = "PULL_STATE_KEY";
    /// Channels whose Klaviyo metrics the scheduled pull reads (email, sms, push).
    pub const PULL_CHANNELS: &str = "PULL_CHANNELS";

    /// Every variable above, for the check that the README documents each of them.
    pub const ALL: [&str; 26] = [
        WRITE_KEY,
        WRITE_KEY_PREVIOUS,
        SEGMENT_WRITE_KEY,
        SEGMENT_WRITE_KEY_PREVIOUS,
        SCHEMA_NAME,
        LAKE_DIR,
        TIMESTAMP_TOLERANCE_SECS,
        MAX_BODY_BYTES,
        WRITE_KEY_SECRET_ARN,
        DELIVERY_STREAM_NAME,
        DEAD_LETTER_BUCKET,
        DEAD_LETTER_PREFIX,
        PACK_RECORDS,
        DELIVERY_TIMEOUT_SECS,
        EMIT_METRICS,
        KLAVIYO_API_KEY,
        KLAVIYO_API_BASE_URL,
        KLAVIYO_API_REVISION,
        PROFILE_LOOKUP_TIMEOUT_MS,
        PROFILE_CACHE_TTL_SECS,
        ONLY_OWN_PROFILES,
        PULL_REQUESTS_PER_MINUTE,
        PULL_STATE_BUCKET,
        PULL_STATE_KEY,
        PULL_CHANNELS,
        crate::telemetry::LOG_LEVEL_ENV,
    ];
}

/// Default time budget of the profile lookups of one request.
pub const DEFAULT_PROFILE_LOOKUP_TIMEOUT: Duration = Duration::from_millis(1500);
/// Default time a looked-up profile is reused.
pub const DEFAULT_PROFILE_CACHE_TTL: Duration = Duration::from_secs(900);

/// Settings of the Klaviyo profile lookup.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// The private API key; `None` turns lookup off (unless the secret holds one).
    pub api_key: Option<ApiKey>,
    /// Klaviyo API base URL.
    pub base_url: String,
    /// `revision` header.
    pub revision: String,
    /// Time budget per request.
    pub lookup_timeout: Duration,
    /// Cache time to live.
    pub cache_ttl: Duration,
    /// Store only events of profiles with an `external_id` (the seed's "Preventing Duplication").
    pub only_own_profiles: bool,
}

/// Default dead-letter key prefix.
pub const DEFAULT_DEAD_LETTER_PREFIX: &str = "dead-letter/";

/// Default time for Firehose calls of one request: API Gateway answers 504 after 30 s, and
/// the spill and the answer need time too.
pub const DEFAULT_DELIVERY_TIMEOUT: Duration = Duration::from_secs(20);

/// Where accepted rows go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkConfig {
    /// The local lake in this directory.
    LocalLake(PathBuf),
    /// A Firehose delivery stream, spilling to S3.
    Firehose(FirehoseConfig),
    /// Rows are dropped: only for benchmarks of the request path.
    DiscardForBenchmarks,
}

/// Settings of the Firehose sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirehoseConfig {
    /// Delivery stream name.
    pub stream: String,
    /// Dead-letter bucket.
    pub dead_letter_bucket: String,
    /// Dead-letter key prefix (ends with `/`).
    pub dead_letter_prefix: String,
    /// Pack several rows per record.
    pub pack_records: bool,
    /// Time allowed for Firehose calls per request.
    pub delivery_timeout: Duration,
}

/// Everything the endpoint needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// One or two write keys (current, previous).
    pub write_keys: Vec<WriteKey>,
    /// The Segment API's write keys (current, previous); none turns the Segment API off.
    pub segment_write_keys: Vec<WriteKey>,
    /// Warehouse schema name (`klaviyo` by default).
    pub schema: String,
    /// Freshness window of `Klaviyo-Timestamp`.
    pub timestamp_tolerance: Duration,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Where rows go; `None` until a sink is configured.
    pub sink: Option<SinkConfig>,
    /// Secrets Manager secret holding the write key(s), read once at start-up.
    pub write_key_secret_arn: Option<String>,
    /// Emit CloudWatch EMF metric lines; `None` lets the mode decide (on in Lambda).
    pub emit_metrics: Option<bool>,
    /// Profile lookup (and the Klaviyo key, host and revision the pull uses too).
    pub identity: IdentityConfig,
    /// The pull's request budget, per minute.
    pub pull_requests_per_minute: u32,
    /// Where the scheduled pull keeps its state (bucket, key); `None` without a bucket.
    pub pull_state: Option<(String, String)>,
    /// Channels the scheduled pull reads.
    pub pull_channels: Vec<MetricChannel>,
}

/// Default key of the scheduled pull's state object.
pub const DEFAULT_PULL_STATE_KEY: &str = "pull-state/klaviyo-pull.json";

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
        // One rule for every setting: empty is the same as unset (the stack writes empty
        // strings for parameters left blank).
        let present = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut write_keys = Vec::new();
        for name in [env::WRITE_KEY, env::WRITE_KEY_PREVIOUS] {
            if let Some(value) = present(name) {
                write_keys.push(parse_write_key(name, value)?);
            }
        }
        let mut segment_write_keys = Vec::new();
        for name in [env::SEGMENT_WRITE_KEY, env::SEGMENT_WRITE_KEY_PREVIOUS] {
            if let Some(value) = present(name) {
                segment_write_keys.push(parse_write_key(name, value)?);
            }
        }
        let schema = match present(env::SCHEMA_NAME) {
            Some(value) => parse_schema_name(value)?,
            None => DEFAULT_SCHEMA.to_owned(),
        };
        let timestamp_tolerance = match present(env::TIMESTAMP_TOLERANCE_SECS) {
            Some(value) => {
                Duration::from_secs(parse_number(env::TIMESTAMP_TOLERANCE_SECS, &value)?)
            }
            None => DEFAULT_TIMESTAMP_TOLERANCE,
        };
        let max_body_bytes = match present(env::MAX_BODY_BYTES) {
            Some(value) => match parse_number(env::MAX_BODY_BYTES, &value)? {
                n @ 1..=DEFAULT_MAX_BODY_BYTES_U64 => n as usize,
                _ => {
                    return Err(ConfigError::Invalid {
                        name: env::MAX_BODY_BYTES,
                        expected: "from 1 to 4194304 (larger bodies cannot pass Lambda's 6 MB invocation payload once API Gateway has encoded them)",
                        value,
                    });
                }
            },
            None => DEFAULT_MAX_BODY_BYTES,
        };
        let sink = match present(env::DELIVERY_STREAM_NAME) {
            Some(stream) => Some(SinkConfig::Firehose(FirehoseConfig {
                stream,
                dead_letter_bucket: present(env::DEAD_LETTER_BUCKET).ok_or(ConfigError::Invalid {
                    name: env::DEAD_LETTER_BUCKET,
                    expected: "a bucket name (required with DELIVERY_STREAM_NAME: undeliverable rows go there)",
                    value: String::new(),
                })?,
                dead_letter_prefix: present(env::DEAD_LETTER_PREFIX)
                    .unwrap_or_else(|| DEFAULT_DEAD_LETTER_PREFIX.to_owned()),
                pack_records: match present(env::PACK_RECORDS) {
                    Some(value) => parse_bool(env::PACK_RECORDS, &value)?,
                    None => true,
                },
                delivery_timeout: match present(env::DELIVERY_TIMEOUT_SECS) {
                    Some(value) => Duration::from_secs(parse_number(env::DELIVERY_TIMEOUT_SECS, &value)?),
                    None => DEFAULT_DELIVERY_TIMEOUT,
                },
            })),
            None => present(env::LAKE_DIR).map(|dir| SinkConfig::LocalLake(PathBuf::from(dir))),
        };
        let emit_metrics = match present(env::EMIT_METRICS) {
            Some(value) => Some(parse_bool(env::EMIT_METRICS, &value)?),
            None => None,
        };
        let identity = IdentityConfig {
            api_key: present(env::KLAVIYO_API_KEY).and_then(ApiKey::new),
            base_url: present(env::KLAVIYO_API_BASE_URL)
                .unwrap_or_else(|| DEFAULT_KLAVIYO_API_BASE_URL.to_owned()),
            revision: present(env::KLAVIYO_API_REVISION)
                .unwrap_or_else(|| DEFAULT_KLAVIYO_API_REVISION.to_owned()),
            lookup_timeout: match present(env::PROFILE_LOOKUP_TIMEOUT_MS) {
                Some(value) => {
                    Duration::from_millis(parse_number(env::PROFILE_LOOKUP_TIMEOUT_MS, &value)?)
                }
                None => DEFAULT_PROFILE_LOOKUP_TIMEOUT,
            },
            cache_ttl: match present(env::PROFILE_CACHE_TTL_SECS) {
                Some(value) => {
                    Duration::from_secs(parse_number(env::PROFILE_CACHE_TTL_SECS, &value)?)
                }
                None => DEFAULT_PROFILE_CACHE_TTL,
            },
            only_own_profiles: match present(env::ONLY_OWN_PROFILES) {
                Some(value) => parse_bool(env::ONLY_OWN_PROFILES, &value)?,
                None => false,
            },
        };
        let pull_requests_per_minute = match present(env::PULL_REQUESTS_PER_MINUTE) {
            Some(value) => match parse_number(env::PULL_REQUESTS_PER_MINUTE, &value)? {
                n @ 1..=3_500 => n as u32,
                _ => {
                    return Err(ConfigError::Invalid {
                        name: env::PULL_REQUESTS_PER_MINUTE,
                        expected: "from 1 to 3500 (Klaviyo's steady limit for Get Events, shared by the whole account)",
                        value,
                    });
                }
            },
            None => DEFAULT_REQUESTS_PER_MINUTE,
        };
        let pull_state = present(env::PULL_STATE_BUCKET).map(|bucket| {
            (
                bucket,
                present(env::PULL_STATE_KEY).unwrap_or_else(|| DEFAULT_PULL_STATE_KEY.to_owned()),
            )
        });
        let pull_channels = match present(env::PULL_CHANNELS) {
            Some(value) => value
                .split(',')
                .map(|name| {
                    MetricChannel::parse(name).ok_or_else(|| ConfigError::Invalid {
                        name: env::PULL_CHANNELS,
                        expected: "a comma-separated list of email, sms, push",
                        value: value.clone(),
                    })
                })
                .collect::<Result<_, _>>()?,
            None => vec![MetricChannel::Email],
        };
        Ok(Self {
            pull_requests_per_minute,
            pull_state,
            pull_channels,
            write_keys,
            segment_write_keys,
            schema,
            timestamp_tolerance,
            max_body_bytes,
            sink,
            write_key_secret_arn: present(env::WRITE_KEY_SECRET_ARN),
            emit_metrics,
            identity,
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

fn parse_bool(name: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(ConfigError::Invalid {
            name,
            expected: "true or false",
            value: value.to_owned(),
        }),
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
    fn the_readme_table_documents_exactly_these_variables() {
        let readme = include_str!("../../../README.md");
        let start = readme.find("## Configuration").unwrap();
        let end = start + readme[start..].find("\n## ").unwrap();
        let documented: std::collections::BTreeSet<&str> = readme[start..end]
            .lines()
            .filter_map(|line| line.strip_prefix("| `"))
            .filter_map(|rest| rest.split('`').next())
            .collect();
        let ours: std::collections::BTreeSet<&str> = env::ALL.into_iter().collect();
        assert_eq!(documented, ours);
    }

    #[test]
    fn empty_values_count_as_unset_and_the_body_limit_is_capped() {
        let c = config(&[
            ("SCHEMA_NAME", ""),
            ("TIMESTAMP_TOLERANCE_SECS", " "),
            ("MAX_BODY_BYTES", ""),
        ])
        .unwrap();
        assert_eq!(c.schema, "klaviyo");
        assert_eq!(c.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert!(config(&[("MAX_BODY_BYTES", "4194305")]).is_err());
        assert!(config(&[("MAX_BODY_BYTES", "0")]).is_err());
        assert_eq!(
            config(&[("MAX_BODY_BYTES", "1024")])
                .unwrap()
                .max_body_bytes,
            1024
        );
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let c = config(&[]).unwrap();
        assert!(c.write_keys.is_empty());
        assert_eq!(c.schema, "klaviyo");
        assert_eq!(c.timestamp_tolerance, Duration::from_secs(300));
        assert_eq!(c.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert_eq!(c.sink, None);
        assert!(c.identity.api_key.is_none());
        assert_eq!(c.identity.base_url, "https://a.klaviyo.com");
        assert_eq!(c.identity.lookup_timeout, Duration::from_millis(1500));
        assert!(!c.identity.only_own_profiles);
    }

    #[test]
    fn reads_the_identity_settings() {
        let c = config(&[
            ("KLAVIYO_API_KEY", "pk_test"),
            ("KLAVIYO_API_BASE_URL", "http://127.0.0.1:9"),
            ("PROFILE_LOOKUP_TIMEOUT_MS", "250"),
            ("PROFILE_CACHE_TTL_SECS", "60"),
            ("ONLY_OWN_PROFILES", "true"),
        ])
        .unwrap();
        assert_eq!(c.identity.api_key.unwrap().expose_secret(), "pk_test");
        assert_eq!(c.identity.base_url, "http://127.0.0.1:9");
        assert_eq!(c.identity.lookup_timeout, Duration::from_millis(250));
        assert_eq!(c.identity.cache_ttl, Duration::from_secs(60));
        assert!(c.identity.only_own_profiles);
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
    fn a_delivery_stream_selects_firehose_and_needs_a_dead_letter_bucket() {
        let c = config(&[
            ("DELIVERY_STREAM_NAME", "klaviyo-events"),
            ("DEAD_LETTER_BUCKET", "my-bucket"),
            ("PACK_RECORDS", "false"),
            ("LAKE_DIR", "/ignored"),
            (
                "WRITE_KEY_SECRET_ARN",
                "arn:aws:secretsmanager:eu-west-1:1:secret:k",
            ),
            ("EMIT_METRICS", "true"),
        ])
        .unwrap();
        assert_eq!(
            c.sink,
            Some(SinkConfig::Firehose(FirehoseConfig {
                stream: "klaviyo-events".into(),
                dead_letter_bucket: "my-bucket".into(),
                dead_letter_prefix: "dead-letter/".into(),
                pack_records: false,
                delivery_timeout: Duration::from_secs(20),
            }))
        );
        assert_eq!(
            c.write_key_secret_arn.as_deref(),
            Some("arn:aws:secretsmanager:eu-west-1:1:secret:k")
        );
        assert_eq!(c.emit_metrics, Some(true));
        let err = config(&[("DELIVERY_STREAM_NAME", "s")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("DEAD_LETTER_BUCKET"), "{err}");
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
