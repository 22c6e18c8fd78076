//! The deployed endpoint: the router behind API Gateway, served by `lambda_http`, and
//! nothing else. The command line (`klaviyo-source serve`, `pull`, `backfill`, `reconcile`,
//! `redrive`) is its own crate, `functions/cli`.

use std::process::ExitCode;

use endpoint::app::router;
use source_io::aws_clients::sdk_config_from_lambda_environment;
use source_io::config::Config;
use source_io::startup::{Mode, build_state};
use source_io::telemetry::{init_logging, json_logs};

/// The deployed functions' allocator (see the workspace's Cargo.toml): a Lambda instance
/// serves one request at a time, so one heap's worth of memory.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        eprintln!(
            "error: this binary runs only in AWS Lambda; locally, use `klaviyo-source serve` (cargo run -p klaviyo-source -- serve)"
        );
        return ExitCode::FAILURE;
    }
    init_logging(json_logs(true, |key| std::env::var(key).ok()), |key| {
        std::env::var(key).ok()
    });
    let started = match Config::from_lookup(Mode::Lambda, |key| std::env::var(key).ok()) {
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
    let state = match started {
        Ok(state) => state,
        Err(err) => {
            tracing::error!(error = %err, "start-up failed");
            return ExitCode::FAILURE;
        }
    };
    match lambda_http::run(router(state)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "the Lambda runtime failed");
            ExitCode::FAILURE
        }
    }
}
