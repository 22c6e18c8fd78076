//! Configuration, parsed once at start-up into a typed struct. Bad configuration fails the
//! start loudly instead of failing requests later. Which settings exist, their variables,
//! flags and defaults are declared once, in [`crate::settings`].

use std::path::PathBuf;
use std::time::Duration;

use source_core::klaviyo::metric_alias::MetricChannel;
use source_core::pull::rate_budget::KLAVIYO_STEADY_LIMIT_PER_MINUTE;
use source_core::secret::{ApiKey, WriteKey, WriteKeyError};

use crate::settings::{self, Mode, Setting};

/// Lambda's synchronous invocation payload is capped at 6 MB, and API Gateway embeds the
/// body in a JSON event (escaped, or base64 for binary bodies, +33 %), so a body above
/// 4 MiB could fail before reaching us. The same limit applies locally so both modes
/// answer alike; it is also `MAX_BODY_BYTES`'s default.
/// <https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html>
pub const LARGEST_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Longest schema name: Glue and Redshift both allow more; this keeps names sane.
const MAX_SCHEMA_NAME_LEN: usize = 64;

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
    /// The local lake's directory when `LAKE_DIR` is given (the sink only without a
    /// delivery stream; the pull's and reconcile's lake either way).
    pub lake_dir: Option<PathBuf>,
    /// Secrets Manager secret holding the write key(s), read once at start-up.
    pub write_key_secret_arn: Option<String>,
    /// Emit CloudWatch EMF metric lines (by default: in Lambda, not locally).
    pub emit_metrics: bool,
    /// Whether metrics carry per-route and per-collection dimensions too.
    pub detailed_metrics: bool,
    /// Days after which the compaction deletes raw objects the tables hold (0: never).
    pub raw_retention_days: u32,
    /// Profile lookup (and the Klaviyo key, host and revision the pull uses too).
    pub identity: IdentityConfig,
    /// The pull's request budget, per minute.
    pub pull_requests_per_minute: u32,
    /// The bucket of the scheduled pull's state object; `None` when not set.
    pub pull_state_bucket: Option<String>,
    /// The lake bucket the compaction function compacts.
    pub lake_bucket: Option<String>,
    /// The Glue database the compaction registers the tables in, if any.
    pub glue_database: Option<String>,
    /// Where rows Firehose would not take are spilled (the Firehose sink writes there, the
    /// compaction reads them into the tables).
    pub dead_letter_prefix: String,
    /// The key of the pull's state object (in that bucket, or a backfill's `--bucket`).
    pub pull_state_key: String,
    /// Channels the scheduled pull reads.
    pub pull_channels: Vec<MetricChannel>,
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
        /// The variable (and its flag).
        name: String,
        /// What it must be.
        expected: &'static str,
        /// What it was.
        value: String,
    },
}

impl Config {
    /// Reads the configuration through `lookup` (the process environment, with the command
    /// line's flags over it, or a map in tests). Every setting is declared in
    /// [`crate::settings`] and read by the same parser whether it came from a variable, a
    /// flag or its default. Missing write keys give an empty list: the caller decides
    /// whether that is an error (Lambda) or a reason to generate one (local mode).
    pub fn from_lookup(
        mode: Mode,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let read = |setting: &Setting| setting.read(mode, &lookup);
        // A setting with a default always has a value; one without is an error, never an
        // empty text, a 0 or false.
        let text = |setting: &Setting| required(setting, read(setting));
        let number = |setting: &Setting| parse_number(setting, &text(setting)?);
        let required_flag = |setting: &Setting| parse_bool(setting, &text(setting)?);
        let keys = |pair: [Setting; 2]| -> Result<Vec<WriteKey>, ConfigError> {
            pair.iter()
                .filter_map(|setting| Some((setting.label(), read(setting)?)))
                .map(|(label, value)| parse_write_key(&label, value))
                .collect()
        };
        let lake_dir = read(&settings::LAKE_DIR).map(PathBuf::from);
        let sink = match read(&settings::DELIVERY_STREAM_NAME) {
            Some(stream) => Some(SinkConfig::Firehose(FirehoseConfig {
                stream,
                dead_letter_bucket: read(&settings::DEAD_LETTER_BUCKET).ok_or_else(|| {
                    invalid(
                        &settings::DEAD_LETTER_BUCKET,
                        "a bucket name (required with DELIVERY_STREAM_NAME: undeliverable rows go there)",
                        String::new(),
                    )
                })?,
                dead_letter_prefix: text(&settings::DEAD_LETTER_PREFIX)?,
                pack_records: required_flag(&settings::PACK_RECORDS)?,
                delivery_timeout: Duration::from_secs(number(&settings::DELIVERY_TIMEOUT_SECS)?),
            })),
            None => lake_dir.clone().map(SinkConfig::LocalLake),
        };
        let identity = IdentityConfig {
            api_key: read(&settings::KLAVIYO_API_KEY).and_then(ApiKey::new),
            base_url: text(&settings::KLAVIYO_API_BASE_URL)?,
            revision: text(&settings::KLAVIYO_API_REVISION)?,
            lookup_timeout: Duration::from_millis(number(&settings::PROFILE_LOOKUP_TIMEOUT_MS)?),
            cache_ttl: Duration::from_secs(number(&settings::PROFILE_CACHE_TTL_SECS)?),
            only_own_profiles: required_flag(&settings::ONLY_OWN_PROFILES)?,
        };
        let max_body_bytes = in_range(
            &settings::MAX_BODY_BYTES,
            number(&settings::MAX_BODY_BYTES)?,
            1..=LARGEST_MAX_BODY_BYTES as u64,
            "from 1 to 4194304 (larger bodies cannot pass Lambda's 6 MB invocation payload once API Gateway has encoded them)",
        )?;
        let pull_requests_per_minute = in_range(
            &settings::PULL_REQUESTS_PER_MINUTE,
            number(&settings::PULL_REQUESTS_PER_MINUTE)?,
            1..=u64::from(KLAVIYO_STEADY_LIMIT_PER_MINUTE),
            "from 1 to 3500 (Klaviyo's steady limit for Get Events, shared by the whole account)",
        )?;
        Ok(Self {
            write_keys: keys([settings::WRITE_KEY, settings::WRITE_KEY_PREVIOUS])?,
            segment_write_keys: keys([
                settings::SEGMENT_WRITE_KEY,
                settings::SEGMENT_WRITE_KEY_PREVIOUS,
            ])?,
            schema: parse_schema_name(text(&settings::SCHEMA_NAME)?)?,
            timestamp_tolerance: Duration::from_secs(number(&settings::TIMESTAMP_TOLERANCE_SECS)?),
            max_body_bytes: usize::try_from(max_body_bytes).unwrap_or(LARGEST_MAX_BODY_BYTES),
            sink,
            lake_dir,
            write_key_secret_arn: read(&settings::WRITE_KEY_SECRET_ARN),
            emit_metrics: required_flag(&settings::EMIT_METRICS)?,
            detailed_metrics: required_flag(&settings::DETAILED_METRICS)?,
            raw_retention_days: u32::try_from(in_range(
                &settings::RAW_RETENTION_DAYS,
                number(&settings::RAW_RETENTION_DAYS)?,
                0..=36_500,
                "from 0 (keep the raw landing) to 36500 days",
            )?)
            .unwrap_or(u32::MAX),
            identity,
            pull_requests_per_minute: u32::try_from(pull_requests_per_minute).unwrap_or(u32::MAX),
            pull_state_bucket: read(&settings::PULL_STATE_BUCKET),
            lake_bucket: read(&settings::LAKE_BUCKET),
            glue_database: read(&settings::GLUE_DATABASE),
            dead_letter_prefix: text(&settings::DEAD_LETTER_PREFIX)?,
            pull_state_key: text(&settings::PULL_STATE_KEY)?,
            pull_channels: parse_channels(text(&settings::PULL_CHANNELS)?)?,
        })
    }
}

/// The value of a setting the configuration cannot do without: given or its default.
fn required(setting: &Setting, value: Option<String>) -> Result<String, ConfigError> {
    value.ok_or_else(|| invalid(setting, "a value (it has no default)", String::new()))
}

fn invalid(setting: &Setting, expected: &'static str, value: String) -> ConfigError {
    ConfigError::Invalid {
        name: setting.label(),
        expected,
        value,
    }
}

fn in_range(
    setting: &Setting,
    value: u64,
    range: std::ops::RangeInclusive<u64>,
    expected: &'static str,
) -> Result<u64, ConfigError> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(invalid(setting, expected, value.to_string()))
    }
}

fn parse_channels(value: String) -> Result<Vec<MetricChannel>, ConfigError> {
    value
        .split(',')
        .map(|name| {
            MetricChannel::parse(name).ok_or_else(|| {
                invalid(
                    &settings::PULL_CHANNELS,
                    "a comma-separated list of email, sms, push, consent",
                    value.clone(),
                )
            })
        })
        .collect()
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
        Err(invalid(
            &settings::SCHEMA_NAME,
            "lower-case letters, digits and _ starting with a letter (at most 64)",
            value,
        ))
    }
}

fn parse_bool(setting: &Setting, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(invalid(setting, "true or false", value.to_owned())),
    }
}

fn parse_number(setting: &Setting, value: &str) -> Result<u64, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| invalid(setting, "a whole number", value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setting_without_a_value_or_default_is_an_error_not_a_zero() {
        let undeclared = crate::settings::Setting {
            var: "SOME_COUNT",
            flag: crate::settings::Flag::None,
            default: crate::settings::Fallback::Described("none"),
            help: "",
        };
        let read = undeclared.read(Mode::Local, &|_: &str| None);
        let err = required(&undeclared, read).unwrap_err().to_string();
        assert!(
            err.starts_with("SOME_COUNT must be a value (it has no default)"),
            "{err}"
        );
        assert_eq!(required(&undeclared, Some("7".into())).unwrap(), "7");
    }
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(Mode::Lambda, |k| map.get(k).cloned())
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
        assert_eq!(c.max_body_bytes, LARGEST_MAX_BODY_BYTES);
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
        assert_eq!(c.max_body_bytes, LARGEST_MAX_BODY_BYTES);
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
        assert!(c.emit_metrics);
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
