//! The command line of local mode: `bootstrap serve ...`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use klaviyo_source::klaviyo::signature::SignatureVerifier;
use klaviyo_source::secret::WriteKey;
use klaviyo_source::sink::EventSink;
use klaviyo_source::sink::local_lake::LocalLakeSink;

use crate::app::{AppState, router};
use crate::config::{Config, SinkConfig, parse_schema_name, parse_write_key};

/// Default directory of the local lake.
pub const DEFAULT_LAKE_DIR: &str = "./lake";

/// The Klaviyo Source endpoint. In AWS Lambda it serves API Gateway; here it serves HTTP.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the endpoint locally, writing to a local lake laid out like the S3 bucket.
    Serve(ServeArgs),
}

/// Flags of `serve`. Each falls back to the environment variable the Lambda reads.
#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Lake directory [env: LAKE_DIR] [default: ./lake].
    #[arg(long)]
    lake: Option<PathBuf>,
    /// Write key (the secret entered in Klaviyo); give it twice during rotation
    /// [env: WRITE_KEY, WRITE_KEY_PREVIOUS]. Without one, a key is generated and printed.
    #[arg(long = "write-key")]
    write_keys: Vec<String>,
    /// Warehouse schema name [env: SCHEMA_NAME] [default: klaviyo].
    #[arg(long)]
    schema: Option<String>,
    /// Freshness window of Klaviyo-Timestamp, seconds [env: TIMESTAMP_TOLERANCE_SECS] [default: 300].
    #[arg(long)]
    timestamp_tolerance_secs: Option<u64>,
}

/// Parses the command line and runs it.
pub async fn run(base: Config) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    match Cli::parse().command {
        Command::Serve(args) => serve(base, args).await,
    }
}

async fn serve(
    mut config: Config,
    args: ServeArgs,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    if !args.write_keys.is_empty() {
        config.write_keys = args
            .write_keys
            .into_iter()
            .map(|key| parse_write_key("--write-key", key))
            .collect::<Result<_, _>>()?;
    }
    if config.write_keys.is_empty() {
        let generated = WriteKey::generate()?;
        // Printed once on the operator's own terminal so they can paste it into Klaviyo;
        // it never goes through the logger.
        println!(
            "No write key configured; generated one for this run: {}",
            generated.expose_secret()
        );
        config.write_keys.push(generated);
    }
    if let Some(schema) = args.schema {
        config.schema = parse_schema_name(schema)?;
    }
    if let Some(secs) = args.timestamp_tolerance_secs {
        config.timestamp_tolerance = std::time::Duration::from_secs(secs);
    }
    let lake_dir = match (args.lake, &config.sink) {
        (Some(dir), _) => dir,
        (None, Some(SinkConfig::LocalLake(dir))) => dir.clone(),
        (None, None) => PathBuf::from(DEFAULT_LAKE_DIR),
    };
    let sink: Arc<dyn EventSink> = Arc::new(LocalLakeSink::new(&lake_dir, &config.schema));
    let verifier = SignatureVerifier::new(config.write_keys, config.timestamp_tolerance)?;
    let app = router(AppState::new(verifier, sink, config.max_body_bytes));
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let address = listener.local_addr()?;
    tracing::info!(%address, lake = %lake_dir.display(), schema = %config.schema, "serving");
    println!(
        "Listening on http://{address}/webhooks/klaviyo, lake at {}",
        lake_dir.display()
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            if tokio::signal::ctrl_c().await.is_err() {
                tracing::warn!("no Ctrl-C handler; stop the process to quit");
                std::future::pending::<()>().await;
            }
        })
        .await?;
    Ok(())
}
