//! Entry point: the Lambda runtime when `AWS_LAMBDA_RUNTIME_API` is set, the command line
//! otherwise. Only cold-start work happens here.

use std::process::ExitCode;
use std::sync::Arc;

use ingest::app::{AppState, router};
use ingest::config::{Config, SinkConfig};
use ingest::telemetry::init_logging;
use klaviyo_source::klaviyo::signature::SignatureVerifier;
use klaviyo_source::sink::EventSink;
use klaviyo_source::sink::local_lake::LocalLakeSink;

type StartError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> ExitCode {
    let in_lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    init_logging(in_lambda);
    let result = match Config::from_lookup(|key| std::env::var(key).ok()) {
        Ok(config) if in_lambda => run_lambda(config).await,
        Ok(config) => ingest::cli::run(config).await,
        Err(err) => Err(err.into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "start-up failed");
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run_lambda(config: Config) -> Result<(), StartError> {
    let sink: Arc<dyn EventSink> = match &config.sink {
        Some(SinkConfig::LocalLake(dir)) => Arc::new(LocalLakeSink::new(dir, &config.schema)),
        None => return Err("no sink configured: set LAKE_DIR".into()),
    };
    let verifier = SignatureVerifier::new(config.write_keys, config.timestamp_tolerance)?;
    lambda_http::run(router(AppState::new(verifier, sink, config.max_body_bytes))).await
}
