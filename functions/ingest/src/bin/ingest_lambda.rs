//! The Lambda's own entry point: the endpoint behind API Gateway and nothing else. The
//! command line (`bootstrap serve`, `pull`, `backfill`, `reconcile`, `redrive`) lives in the
//! `bootstrap` binary; leaving it out of this one keeps clap, the local server and the pull
//! out of every cold start.

use std::process::ExitCode;

use ingest::app::router;
use ingest::aws_clients::sdk_config_from_lambda_environment;
use ingest::config::Config;
use ingest::startup::{Mode, StartError, build_state};
use ingest::telemetry::{init_logging, json_logs};

/// The deployed functions' allocator (see the workspace's Cargo.toml): a Lambda instance
/// serves one request at a time, so one heap's worth of memory.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        eprintln!(
            "error: this binary runs only in AWS Lambda; locally, use `bootstrap serve` (cargo run -p ingest --bin bootstrap -- serve)"
        );
        return ExitCode::FAILURE;
    }
    init_logging(json_logs(true, |key| std::env::var(key).ok()));
    let started = match Config::from_lookup(|key| std::env::var(key).ok()) {
        Ok(config) => {
            build_state(config, Mode::Lambda, async || {
                Ok(sdk_config_from_lambda_environment(|key| {
                    std::env::var(key).ok()
                })?)
            })
            .await
        }
        Err(err) => Err(err.into()),
    };
    let result = match started {
        Ok(state) => lambda_http::run(router(state))
            .await
            .map_err(StartError::Runtime),
        Err(err) => Err(err),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "start-up failed");
            ExitCode::FAILURE
        }
    }
}
