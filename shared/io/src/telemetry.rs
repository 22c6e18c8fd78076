//! Structured logs: JSON lines in Lambda (CloudWatch parses them), compact text locally.
//! Nothing in this crate logs a write key, an email address or a request body.
//!
//! Lambda's own settings are honoured: `AWS_LAMBDA_LOG_FORMAT=JSON` selects JSON lines and
//! `AWS_LAMBDA_LOG_LEVEL` the level, when `LOG_LEVEL` does not say otherwise. The filter is
//! `tracing_subscriber`'s `Targets` (`info`, `debug`, `ingest=debug,info`): the same
//! directives as an env filter for targets and levels, without a regex engine in the binary.

use crate::settings::{self, Mode};
use std::io::IsTerminal;
use std::str::FromStr;

use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Lambda's advanced logging controls: the level ...
pub const LAMBDA_LOG_LEVEL_ENV: &str = "AWS_LAMBDA_LOG_LEVEL";
/// ... and the format (`JSON` or `Text`).
pub const LAMBDA_LOG_FORMAT_ENV: &str = "AWS_LAMBDA_LOG_FORMAT";

/// The filter from `LOG_LEVEL`, else `AWS_LAMBDA_LOG_LEVEL`, else `LOG_LEVEL`'s default
/// (`info`); an unreadable value falls back to `info` rather than silencing the logs.
pub fn log_filter(lookup: impl Fn(&str) -> Option<String>) -> Targets {
    let given = |var: &str| lookup(var).filter(|value| !value.trim().is_empty());
    let directive = given(settings::LOG_LEVEL.var)
        .or_else(|| given(LAMBDA_LOG_LEVEL_ENV).map(|level| level.to_ascii_lowercase()))
        .or_else(|| {
            settings::LOG_LEVEL
                .default_in(Mode::Lambda)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "info".to_owned());
    Targets::from_str(directive.trim())
        .unwrap_or_else(|_| Targets::new().with_default(tracing::Level::INFO))
}

/// Whether to write JSON lines: in Lambda, or whenever `AWS_LAMBDA_LOG_FORMAT` is `JSON`.
pub fn json_logs(in_lambda: bool, lookup: impl Fn(&str) -> Option<String>) -> bool {
    in_lambda
        || lookup(LAMBDA_LOG_FORMAT_ENV).is_some_and(|format| format.eq_ignore_ascii_case("json"))
}

/// Installs the global subscriber. `json` selects the Lambda format; `lookup` (the process
/// environment) gives the log filter's variables.
pub fn init_logging(json: bool, lookup: impl Fn(&str) -> Option<String>) {
    let filter = log_filter(lookup);
    let fmt = tracing_subscriber::fmt::layer()
        // Colour codes only on a terminal: in files, pipes and log services they are noise.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let installed = if json {
        tracing_subscriber::registry()
            .with(
                fmt.json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_filter(filter),
            )
            .try_init()
    } else {
        tracing_subscriber::registry()
            .with(fmt.compact().with_filter(filter))
            .try_init()
    };
    if installed.is_err() {
        // Only possible when a subscriber already exists (tests); keep that one.
        tracing::debug!("a global subscriber was already installed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    fn lookup<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn reads_log_level_then_lambdas_level() {
        let ours = log_filter(lookup(&[
            ("LOG_LEVEL", "ingest=debug,warn"),
            ("AWS_LAMBDA_LOG_LEVEL", "ERROR"),
        ]));
        assert!(ours.would_enable("ingest::cli", &Level::DEBUG));
        assert!(!ours.would_enable("hyper", &Level::INFO));
        let lambdas = log_filter(lookup(&[("AWS_LAMBDA_LOG_LEVEL", "DEBUG")]));
        assert!(lambdas.would_enable("anything", &Level::DEBUG));
        let default = log_filter(lookup(&[]));
        assert!(
            default.would_enable("ingest", &Level::INFO)
                && !default.would_enable("ingest", &Level::DEBUG)
        );
    }

    #[test]
    fn json_in_lambda_or_when_lambda_asks() {
        assert!(json_logs(true, lookup(&[])));
        assert!(json_logs(
            false,
            lookup(&[("AWS_LAMBDA_LOG_FORMAT", "JSON")])
        ));
        assert!(!json_logs(
            false,
            lookup(&[("AWS_LAMBDA_LOG_FORMAT", "Text")])
        ));
    }
}
