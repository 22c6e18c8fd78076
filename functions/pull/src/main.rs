//! Entry point of the scheduled pull: the Lambda runtime when `AWS_LAMBDA_RUNTIME_API` is
//! set (each invocation is one incremental run, stopping in time before the invocation's
//! deadline); otherwise one run from the command line against the configured bucket (raw
//! objects, state and id ledgers), for trying the deployed configuration locally.

mod scheduled;

use std::process::ExitCode;
use std::time::Duration;

use crate::scheduled::ScheduledPull;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};
use source_io::config::Config;
use source_io::pull::events_api::EventsApiError;
use source_io::pull::run::PullError;
use source_io::settings::Mode;
use source_io::telemetry::{init_logging, json_logs};
use tokio::time::Instant;

/// The longest a Lambda invocation can last; a local run gets the same.
const LAMBDA_MAX_RUN: Duration = Duration::from_secs(15 * 60);

#[tokio::main]
async fn main() -> ExitCode {
    let in_lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    init_logging(json_logs(in_lambda, |key| std::env::var(key).ok()), |key| {
        std::env::var(key).ok()
    });
    let pull = match Config::from_lookup(Mode::Lambda, |key| std::env::var(key).ok()) {
        Ok(config) => ScheduledPull::start(&config, |key| std::env::var(key).ok()).await,
        Err(err) => Err(err.into()),
    };
    let pull = match pull {
        Ok(pull) => pull,
        Err(err) => {
            tracing::error!(error = %err, "start-up failed");
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    if in_lambda {
        let pull = &pull;
        let handler = service_fn(move |event: LambdaEvent<Value>| async move {
            let deadline = deadline_of(event.context.deadline);
            match pull.invoke(deadline).await {
                Ok(report) => Ok(summary(&report)),
                // A refused key is one clear error (its log line and PullKeyRefused, which
                // has an alarm), not also a failed invocation every tick for the errors
                // alarm: retrying cannot fix it.
                Err(err @ PullError::Klaviyo(EventsApiError::Unauthorized { .. })) => {
                    tracing::error!(error = %err, "Klaviyo refused the pull's key");
                    Ok(json!({"error": err.to_string(), "complete": false}))
                }
                Err(err) => Err(Box::new(err) as Box<dyn std::error::Error + Send + Sync>),
            }
        });
        return match lambda_runtime::run(handler).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                tracing::error!(error = %err, "runtime failed");
                ExitCode::FAILURE
            }
        };
    }
    match pull.invoke(Instant::now() + LAMBDA_MAX_RUN).await {
        Ok(report) => {
            println!("{}", summary(&report));
            if report.complete {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            }
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The invocation's deadline (milliseconds since the epoch) as an instant.
fn deadline_of(deadline_ms: u64) -> Instant {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}

fn summary(report: &source_io::pull::run::PullReport) -> Value {
    json!({
        "events": report.events,
        "rejected": report.rejected,
        "skipped": report.skipped,
        "already_stored": report.already_stored,
        "count_checks": report.count_checks,
        "days_reread": report.days_reread,
        "pages": report.pages,
        "complete": report.complete,
        "metrics": report.metrics,
        "warnings": report.warnings,
        "oldest_cursor": report.oldest_cursor.map(|c| c.to_rfc3339()),
    })
}
