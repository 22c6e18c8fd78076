//! The command line: `bootstrap serve`, `pull`, `backfill`, `reconcile`, `redrive`,
//! `collection-for-topic`. The Lambda runs `ingest-lambda` (src/bin/ingest_lambda.rs), which
//! carries none of this.

mod cli;
mod compact;
mod lake_dir;
mod local_server;
mod pull;
mod redrive;
mod setting_flags;

use std::process::ExitCode;

use source_io::telemetry::{init_logging, json_logs};

#[tokio::main]
async fn main() -> ExitCode {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        eprintln!("error: in AWS Lambda deploy the `ingest-lambda` binary (template.yaml does)");
        return ExitCode::FAILURE;
    }
    init_logging(json_logs(false, |key| std::env::var(key).ok()), |key| {
        std::env::var(key).ok()
    });
    match crate::cli::run().await {
        Ok(status) => ExitCode::from(status),
        Err(err) => {
            tracing::error!(error = %err, "start-up failed");
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
