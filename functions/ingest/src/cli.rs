//! The command line of local mode: `bootstrap serve ...`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use klaviyo_source::klaviyo::topic::collection_for_topic;
use klaviyo_source::secret::WriteKey;

use crate::app::router;
use crate::config::{Config, SinkConfig, parse_schema_name, parse_write_key};
use crate::local_server::serve_with_limits;
use crate::pull::command::{PullArgs, run_pull};
use crate::pull::reconcile::{ReconcileArgs, reconcile};
use crate::startup::{Mode, build_state};

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
    /// Serve the endpoint locally, writing to a local lake laid out like the S3 bucket (or
    /// to Firehose when DELIVERY_STREAM_NAME is set).
    Serve(ServeArgs),
    /// Print the collection (table) each Klaviyo webhook topic lands in, one per line.
    CollectionForTopic {
        /// Topic ids, e.g. event:klaviyo.dropped_email.
        topics: Vec<String>,
    },
    /// Send the rows in the dead-letter store to Firehose again (DELIVERY_STREAM_NAME,
    /// DEAD_LETTER_BUCKET, DEAD_LETTER_PREFIX), deleting each object once re-delivered.
    Redrive,
    /// Read email events from Klaviyo's Events API into the lake (KLAVIYO_API_KEY,
    /// KLAVIYO_API_BASE_URL). With --from/--to it reads that window; without, it continues
    /// from its saved cursor. Exits 0 only when everything asked for is stored.
    Pull(PullArgs),
    /// A pull of a long window with a progress line; resumable after Ctrl-C or a crash
    /// (run the same command again). --dry-run prints Klaviyo's event counts per metric.
    Backfill(PullArgs),
    /// Per metric and day: Klaviyo's event count, the distinct ids in the lake, the
    /// difference.
    Reconcile(ReconcileArgs),
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
    /// The Segment HTTP Tracking API's write key, never one of the webhook keys; give it
    /// twice during rotation [env: SEGMENT_WRITE_KEY, SEGMENT_WRITE_KEY_PREVIOUS]. Without
    /// one, a key is generated and printed.
    #[arg(long = "segment-write-key")]
    segment_write_keys: Vec<String>,
    /// Warehouse schema name [env: SCHEMA_NAME] [default: klaviyo].
    #[arg(long)]
    schema: Option<String>,
    /// Freshness window of Klaviyo-Timestamp, seconds [env: TIMESTAMP_TOLERANCE_SECS] [default: 300].
    #[arg(long)]
    timestamp_tolerance_secs: Option<u64>,
    /// Benchmarks only: acknowledge and DROP every event, to measure the request path alone.
    #[arg(long, conflicts_with = "lake")]
    discard_events_for_benchmarks: bool,
}

/// Parses the command line and runs it; the exit status.
pub async fn run(base: Config) -> Result<u8, Box<dyn std::error::Error + Send + Sync>> {
    match Cli::parse().command {
        Command::Pull(args) => run_pull(&base, args, false).await,
        Command::Backfill(args) => {
            if args.from.is_none() {
                return Err("backfill needs --from and --to".into());
            }
            run_pull(&base, args, true).await
        }
        Command::Reconcile(args) => reconcile(&base, args).await.map(|()| 0),
        other => run_other(base, other).await.map(|()| 0),
    }
}

async fn run_other(
    base: Config,
    command: Command,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    match command {
        Command::Serve(args) => serve(base, args).await,
        Command::CollectionForTopic { topics } => {
            for topic in topics {
                println!("{}", collection_for_topic(&topic).slug());
            }
            Ok(())
        }
        Command::Redrive => {
            let summary = crate::redrive::redrive(&base).await?;
            println!(
                "dead-letter objects: {}, re-delivered and deleted: {} ({} rows), kept: {}",
                summary.objects, summary.redriven, summary.rows, summary.kept
            );
            Ok(())
        }
        Command::Pull(_) | Command::Backfill(_) | Command::Reconcile(_) => Ok(()),
    }
}

/// The keys given by `flag` (replacing the environment's), else the environment's, else,
/// when no secret supplies keys, one generated for this run and printed once on the
/// operator's own terminal (never through the logger) to paste where it is needed.
fn local_keys(
    flag: &str,
    given: Vec<String>,
    configured: Vec<WriteKey>,
    from_secret: bool,
    what: &str,
) -> Result<Vec<WriteKey>, Box<dyn std::error::Error + Send + Sync>> {
    if !given.is_empty() {
        return Ok(given
            .into_iter()
            .map(|key| parse_write_key(flag, key))
            .collect::<Result<_, _>>()?);
    }
    if !configured.is_empty() || from_secret {
        return Ok(configured);
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    let generated = WriteKey::from_random_bytes(bytes);
    println!(
        "No {what} configured; generated one for this run: {}",
        generated.expose_secret()
    );
    Ok(vec![generated])
}

async fn serve(
    mut config: Config,
    args: ServeArgs,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    if !args.write_keys.is_empty() {
        config.write_key_secret_arn = None;
    }
    let from_secret = config.write_key_secret_arn.is_some();
    config.write_keys = local_keys(
        "--write-key",
        args.write_keys,
        std::mem::take(&mut config.write_keys),
        from_secret,
        "write key",
    )?;
    config.segment_write_keys = local_keys(
        "--segment-write-key",
        args.segment_write_keys,
        std::mem::take(&mut config.segment_write_keys),
        from_secret,
        "Segment write key",
    )?;
    if let Some(schema) = args.schema {
        config.schema = parse_schema_name(schema)?;
    }
    if let Some(secs) = args.timestamp_tolerance_secs {
        config.timestamp_tolerance = std::time::Duration::from_secs(secs);
    }
    if args.discard_events_for_benchmarks {
        config.sink = Some(SinkConfig::DiscardForBenchmarks);
    }
    match (args.lake, &config.sink) {
        (Some(dir), _) => config.sink = Some(SinkConfig::LocalLake(dir)),
        (None, Some(_)) => {}
        (None, None) => config.sink = Some(SinkConfig::LocalLake(PathBuf::from(DEFAULT_LAKE_DIR))),
    }
    let destination = match &config.sink {
        Some(SinkConfig::LocalLake(dir)) => format!("lake at {}", dir.display()),
        Some(SinkConfig::Firehose(firehose)) => format!("Firehose stream {}", firehose.stream),
        Some(SinkConfig::DiscardForBenchmarks) => {
            "DISCARDING every event (benchmark mode)".to_owned()
        }
        None => String::new(),
    };
    let app = router(build_state(config, Mode::Local).await?);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let address = listener.local_addr()?;
    tracing::info!(%address, %destination, "serving");
    println!("Listening on http://{address}/webhooks/klaviyo, {destination}");
    serve_with_limits(listener, app, async {
        if tokio::signal::ctrl_c().await.is_err() {
            tracing::warn!("no Ctrl-C handler; stop the process to quit");
            std::future::pending::<()>().await;
        }
    })
    .await?;
    Ok(())
}
