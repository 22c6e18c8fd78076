//! Every setting, declared once: its environment variable, the command-line flag that
//! overrides it locally, its default and a line of help. [`crate::config::Config`] reads and
//! validates them (a flag's value goes through the same parser as the variable's), the
//! command line builds its flags from here, and a test holds the README's configuration
//! table to exactly these rows.

/// One setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The environment variable (Lambda and local mode alike).
    pub var: &'static str,
    /// The flag that overrides it on the command line, if any.
    pub flag: Flag,
    /// What applies when it is unset (or empty: empty counts as unset).
    pub default: Fallback,
    /// One line of help for the flag.
    pub help: &'static str,
}

/// How a setting is given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// No flag: environment only.
    None,
    /// `--<name> VALUE`.
    Long(&'static str),
    /// `--<name> VALUE` for the previous key of a rotation, whose current key has the flag
    /// `--<current>`: giving the current key on the command line without this one leaves no
    /// previous key from the environment behind.
    Previous {
        /// This flag.
        name: &'static str,
        /// The current key's flag.
        current: &'static str,
    },
}

/// Where a function runs, which some defaults depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Inside AWS Lambda (the deployed endpoint and pull).
    Lambda,
    /// The command line (`klaviyo-source serve`, `pull`, ...).
    Local,
}

/// The value used when a setting is unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// This text, read by the same parser as a value the user gives.
    Value(&'static str),
    /// A value that depends on where the function runs; `None`: no value there.
    ByMode {
        /// On the command line.
        local: Option<&'static str>,
        /// In Lambda.
        lambda: Option<&'static str>,
    },
    /// No value; what happens instead (the code that decides is named where it matters).
    Described(&'static str),
}

impl Setting {
    /// The value the configuration reads in `mode`: the given one unless empty, else the
    /// default's.
    pub fn read(&self, mode: Mode, lookup: &impl Fn(&str) -> Option<String>) -> Option<String> {
        lookup(self.var)
            .filter(|value| !value.trim().is_empty())
            .or_else(|| self.default_in(mode).map(str::to_owned))
    }

    /// The default value in `mode`, if there is one.
    pub fn default_in(&self, mode: Mode) -> Option<&'static str> {
        match (self.default, mode) {
            (Fallback::Value(value), _) => Some(value),
            (Fallback::ByMode { local, .. }, Mode::Local) => local,
            (Fallback::ByMode { lambda, .. }, Mode::Lambda) => lambda,
            (Fallback::Described(_), _) => None,
        }
    }

    /// How error messages name it: the variable, and its flag when it has one.
    pub fn label(&self) -> String {
        match self.flag {
            Flag::None => self.var.to_owned(),
            Flag::Long(name) | Flag::Previous { name, .. } => format!("{} (--{name})", self.var),
        }
    }
}

const fn setting(var: &'static str, flag: Flag, default: Fallback, help: &'static str) -> Setting {
    Setting {
        var,
        flag,
        default,
        help,
    }
}

use Fallback::{Described, Value};

/// The secret key entered in Klaviyo's webhook settings.
pub const WRITE_KEY: Setting = setting(
    "WRITE_KEY",
    Flag::Long("write-key"),
    Described("local: generated and printed; Lambda: required"),
    "Write key (the secret entered in Klaviyo). Without one, a key is generated and printed",
);
/// A second accepted key, for rotation.
pub const WRITE_KEY_PREVIOUS: Setting = setting(
    "WRITE_KEY_PREVIOUS",
    Flag::Previous {
        name: "previous-write-key",
        current: "write-key",
    },
    Described("none"),
    "The previous write key, accepted during rotation",
);
/// The Segment HTTP Tracking API's own write key.
pub const SEGMENT_WRITE_KEY: Setting = setting(
    "SEGMENT_WRITE_KEY",
    Flag::Long("segment-write-key"),
    Described("local: generated and printed; Lambda: from the secret"),
    "The Segment HTTP Tracking API's write key, never one of the webhook keys. Without one, a key is generated and printed",
);
/// A second accepted Segment key, for rotation.
pub const SEGMENT_WRITE_KEY_PREVIOUS: Setting = setting(
    "SEGMENT_WRITE_KEY_PREVIOUS",
    Flag::Previous {
        name: "previous-segment-write-key",
        current: "segment-write-key",
    },
    Described("none"),
    "The previous Segment write key, accepted during rotation",
);
/// Warehouse schema (namespace) name.
pub const SCHEMA_NAME: Setting = setting(
    "SCHEMA_NAME",
    Flag::Long("schema"),
    // As in Segment's docs.
    Value("klaviyo"),
    "Warehouse schema name",
);
/// Directory of the local lake.
pub const LAKE_DIR: Setting = setting(
    "LAKE_DIR",
    Flag::Long("lake"),
    // In Lambda an unset LAKE_DIR selects no lake.
    Fallback::ByMode {
        local: Some("./lake"),
        lambda: None,
    },
    "Lake directory",
);
/// Freshness window for `Klaviyo-Timestamp`, seconds.
pub const TIMESTAMP_TOLERANCE_SECS: Setting = setting(
    "TIMESTAMP_TOLERANCE_SECS",
    Flag::Long("timestamp-tolerance-secs"),
    // Klaviyo documents none; five minutes is what Stripe and Svix use, it absorbs ordinary
    // clock skew and queueing, and since replayed events keep their ids a replay inside it
    // adds no rows.
    Value("300"),
    "Freshness window of Klaviyo-Timestamp, seconds",
);
/// Largest accepted request body, bytes.
pub const MAX_BODY_BYTES: Setting = setting(
    "MAX_BODY_BYTES",
    Flag::None,
    // The largest allowed: config::LARGEST_MAX_BODY_BYTES says why.
    Value("4194304"),
    "Largest accepted request body, bytes",
);
/// The log filter.
pub const LOG_LEVEL: Setting = setting(
    "LOG_LEVEL",
    Flag::None,
    // Unset, Lambda's own `AWS_LAMBDA_LOG_LEVEL` comes before this (telemetry.rs).
    Value("info"),
    "Log filter of targets and levels",
);
/// Secrets Manager secret holding the write key(s).
pub const WRITE_KEY_SECRET_ARN: Setting = setting(
    "WRITE_KEY_SECRET_ARN",
    Flag::None,
    Described("Lambda: set by the stack"),
    "Secrets Manager secret holding the keys",
);
/// Firehose delivery stream; selects the Firehose sink.
pub const DELIVERY_STREAM_NAME: Setting = setting(
    "DELIVERY_STREAM_NAME",
    Flag::None,
    Described("Lambda: set by the stack"),
    "Firehose delivery stream",
);
/// Bucket of the dead-letter store (required with the Firehose sink).
pub const DEAD_LETTER_BUCKET: Setting = setting(
    "DEAD_LETTER_BUCKET",
    Flag::None,
    Described("required with Firehose"),
    "Bucket of spilled rows",
);
/// Key prefix of the dead-letter store.
pub const DEAD_LETTER_PREFIX: Setting = setting(
    "DEAD_LETTER_PREFIX",
    Flag::None,
    Value("dead-letter/"),
    "Key prefix of spilled rows",
);
/// Pack several rows per Firehose record.
pub const PACK_RECORDS: Setting = setting(
    "PACK_RECORDS",
    Flag::None,
    Value("true"),
    "Pack several rows per Firehose record",
);
/// Seconds allowed for Firehose calls per request before spilling.
pub const DELIVERY_TIMEOUT_SECS: Setting = setting(
    "DELIVERY_TIMEOUT_SECS",
    Flag::None,
    // API Gateway answers 504 after 30 s, and the spill and the answer need time too.
    Value("20"),
    "Most time for Firehose calls per request, seconds",
);
/// CloudWatch Embedded Metric Format lines on stdout.
pub const EMIT_METRICS: Setting = setting(
    "EMIT_METRICS",
    Flag::None,
    Fallback::ByMode {
        local: Some("false"),
        lambda: Some("true"),
    },
    "Write CloudWatch EMF metric lines",
);
/// Klaviyo private API key.
pub const KLAVIYO_API_KEY: Setting = setting(
    "KLAVIYO_API_KEY",
    Flag::None,
    Described("none"),
    "Klaviyo private API key",
);
/// Klaviyo API base URL.
pub const KLAVIYO_API_BASE_URL: Setting = setting(
    "KLAVIYO_API_BASE_URL",
    Flag::None,
    Value("https://a.klaviyo.com"),
    "Klaviyo API host",
);
/// The `revision` header sent to Klaviyo, pinned.
pub const KLAVIYO_API_REVISION: Setting = setting(
    "KLAVIYO_API_REVISION",
    Flag::None,
    // The first revision whose Get Events accepts `page[size]` up to 1000.
    Value("2026-01-15"),
    "The revision header sent to Klaviyo",
);
/// Time budget for the profile lookups of one request, milliseconds.
pub const PROFILE_LOOKUP_TIMEOUT_MS: Setting = setting(
    "PROFILE_LOOKUP_TIMEOUT_MS",
    Flag::None,
    Value("1500"),
    "Time budget of one request's profile lookups, milliseconds",
);
/// How long a looked-up profile is reused, seconds.
pub const PROFILE_CACHE_TTL_SECS: Setting = setting(
    "PROFILE_CACHE_TTL_SECS",
    Flag::None,
    Value("900"),
    "How long a looked-up profile is reused, seconds",
);
/// Store only events of profiles with an `external_id`.
pub const ONLY_OWN_PROFILES: Setting = setting(
    "ONLY_OWN_PROFILES",
    Flag::None,
    Value("false"),
    "Store only events of profiles with an external_id",
);
/// The lake bucket the compaction function reads the raw landing from and writes the tables to.
pub const LAKE_BUCKET: Setting = setting(
    "LAKE_BUCKET",
    Flag::None,
    Described("stack: the data bucket"),
    "Bucket of the lake the compaction function compacts",
);
/// Days after which the compaction deletes raw landing objects its tables hold.
pub const RAW_RETENTION_DAYS: Setting = setting(
    "RAW_RETENTION_DAYS",
    Flag::Long("raw-retention-days"),
    Value("0"),
    "Delete raw objects of days older than this once the tables hold them (0: keep them)",
);
/// Whether the endpoint's metrics carry per-route and per-collection dimensions.
pub const DETAILED_METRICS: Setting = setting(
    "DETAILED_METRICS",
    Flag::None,
    Value("false"),
    "Also emit per-route and per-collection metrics (more CloudWatch custom metrics)",
);
/// The Glue database the compaction registers the tables in.
pub const GLUE_DATABASE: Setting = setting(
    "GLUE_DATABASE",
    Flag::Long("glue-database"),
    Described("stack: the schema's database; local: none"),
    "Glue database whose tables the compaction points at each new version (with --bucket)",
);
/// The bucket holding the scheduled pull's state object.
pub const PULL_STATE_BUCKET: Setting = setting(
    "PULL_STATE_BUCKET",
    Flag::None,
    Described("stack: the data bucket"),
    "Bucket of the scheduled pull's state object",
);
/// The key of the scheduled pull's state object.
pub const PULL_STATE_KEY: Setting = setting(
    "PULL_STATE_KEY",
    Flag::None,
    Value("pull-state/klaviyo-pull.json"),
    "Key of the scheduled pull's state object",
);
/// Channels whose Klaviyo metrics the pull reads.
pub const PULL_CHANNELS: Setting = setting(
    "PULL_CHANNELS",
    Flag::Long("channels"),
    Value("email"),
    "Channels whose Klaviyo metrics are read: email, sms, push, consent, comma-separated",
);
/// The pull's request budget against Klaviyo's Get Events, per minute.
pub const PULL_REQUESTS_PER_MINUTE: Setting = setting(
    "PULL_REQUESTS_PER_MINUTE",
    Flag::Long("requests-per-minute"),
    // A fifth of Klaviyo's steady limit, leaving the rest to the account's other integrations.
    Value("700"),
    "Requests a minute to Klaviyo's Get Events (1 to 3500, shared by the whole account)",
);

/// Every setting, in the README table's order.
pub const ALL: [Setting; 30] = [
    WRITE_KEY,
    WRITE_KEY_PREVIOUS,
    SEGMENT_WRITE_KEY,
    SEGMENT_WRITE_KEY_PREVIOUS,
    SCHEMA_NAME,
    LAKE_DIR,
    TIMESTAMP_TOLERANCE_SECS,
    MAX_BODY_BYTES,
    LOG_LEVEL,
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
    PULL_STATE_BUCKET,
    PULL_STATE_KEY,
    PULL_CHANNELS,
    PULL_REQUESTS_PER_MINUTE,
    LAKE_BUCKET,
    GLUE_DATABASE,
    DETAILED_METRICS,
    RAW_RETENTION_DAYS,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's row of a setting: variable, flag, default (the meaning column is prose).
    fn readme_row(setting: &Setting) -> [String; 3] {
        let flag = match setting.flag {
            Flag::None => String::new(),
            Flag::Long(name) | Flag::Previous { name, .. } => format!("`--{name}`"),
        };
        let shown = |value: Option<&str>| value.map_or("none".to_owned(), |v| format!("`{v}`"));
        let default = match setting.default {
            Value(value) => format!("`{value}`"),
            Fallback::ByMode { local, lambda } => {
                format!("local: {}; Lambda: {}", shown(local), shown(lambda))
            }
            Described(text) => text.to_owned(),
        };
        [format!("`{}`", setting.var), flag, default]
    }

    #[test]
    fn the_readme_table_lists_exactly_these_settings_flags_and_defaults() {
        let readme = include_str!("../../../README.md");
        let start = readme.find("## Configuration").unwrap();
        let end = start + readme[start..].find("\n## ").unwrap();
        let documented: Vec<[String; 3]> = readme[start..end]
            .lines()
            .filter(|line| line.starts_with("| `"))
            .map(|line| {
                // No `|` inside the first three cells; the meaning may hold anything.
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                [
                    cells[1].to_owned(),
                    cells[2].to_owned(),
                    cells[3].to_owned(),
                ]
            })
            .collect();
        let declared: Vec<[String; 3]> = ALL.iter().map(readme_row).collect();
        assert_eq!(documented, declared);
    }

    #[test]
    fn an_empty_value_reads_as_the_default() {
        let empty = |_: &str| Some("  ".to_owned());
        assert_eq!(
            SCHEMA_NAME.read(Mode::Lambda, &empty).as_deref(),
            Some("klaviyo")
        );
        assert_eq!(KLAVIYO_API_KEY.read(Mode::Local, &empty), None);
        let given = |_: &str| Some("klaviyo_eu".to_owned());
        assert_eq!(
            SCHEMA_NAME.read(Mode::Local, &given).as_deref(),
            Some("klaviyo_eu")
        );
    }

    #[test]
    fn a_default_by_mode_applies_where_the_function_runs() {
        let unset = |_: &str| None;
        assert_eq!(
            LAKE_DIR.read(Mode::Local, &unset).as_deref(),
            Some("./lake")
        );
        assert_eq!(LAKE_DIR.read(Mode::Lambda, &unset), None);
        assert_eq!(EMIT_METRICS.default_in(Mode::Lambda), Some("true"));
        assert_eq!(EMIT_METRICS.default_in(Mode::Local), Some("false"));
        let given = |_: &str| Some("/data/lake".to_owned());
        assert_eq!(
            LAKE_DIR.read(Mode::Lambda, &given).as_deref(),
            Some("/data/lake")
        );
    }

    #[test]
    fn names_are_unique() {
        let mut vars: Vec<&str> = ALL.iter().map(|s| s.var).collect();
        vars.sort_unstable();
        vars.dedup();
        assert_eq!(vars.len(), ALL.len());
    }
}
