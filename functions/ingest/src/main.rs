//! Entry point: the Lambda runtime when `AWS_LAMBDA_RUNTIME_API` is set, the command line
//! otherwise. Only cold-start work happens here.

use std::process::ExitCode;

use ingest::app::router;
use ingest::config::Config;
use ingest::startup::{Mode, StartError, build_state};
use ingest::telemetry::{init_logging, json_logs};

#[tokio::main]
async fn main() -> ExitCode {
    let in_lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    init_logging(json_logs(in_lambda, |key| std::env::var(key).ok()));
    let result = match Config::from_lookup(|key| std::env::var(key).ok()) {
        Ok(config) if in_lambda => run_lambda(config).await.map(|()| 0),
        Ok(config) => ingest::cli::run(config).await,
        Err(err) => Err(err.into()),
    };
    match result {
        Ok(status) => ExitCode::from(status),
        Err(err) => {
            tracing::error!(error = %err, "start-up failed");
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run_lambda(config: Config) -> Result<(), StartError> {
    let state = build_state(config, Mode::Lambda).await?;
    lambda_http::run(router(state)).await
}
