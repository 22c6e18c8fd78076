//! Structured logs: JSON lines in Lambda (CloudWatch parses them), compact text locally.
//! Nothing in this crate logs a write key, an email address or a request body.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The variable that sets the log filter (`info`, `debug`, `ingest=debug`, ...).
pub const LOG_LEVEL_ENV: &str = "LOG_LEVEL";

/// Installs the global subscriber. `json` selects the Lambda format.
pub fn init_logging(json: bool) {
    let filter = EnvFilter::try_from_env(LOG_LEVEL_ENV).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour codes only on a terminal: in files, pipes and log services they are noise.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let installed = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init()
    } else {
        builder.compact().try_init()
    };
    if installed.is_err() {
        // Only possible when a subscriber already exists (tests); keep that one.
        tracing::debug!("a global subscriber was already installed");
    }
}
