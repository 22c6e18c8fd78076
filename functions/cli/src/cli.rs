//! The command line of local mode: `klaviyo-source serve ...` and the other commands.

use std::net::SocketAddr;

use clap::{Parser, Subcommand};
use source_core::klaviyo::topic::collection_for_topic;
use source_core::secret::WriteKey;

use crate::compact::{CompactArgs, compact};
use crate::lake_dir::lake_dir;
use crate::local_server::serve_with_limits;
use crate::pull::command::{PullArgs, run_pull};
use crate::pull::reconcile::{ReconcileArgs, reconcile};
use crate::setting_flags::{Serve, SettingFlags};
use endpoint::app::router;
use source_io::config::{Config, SinkConfig};
use source_io::settings;
use source_io::startup::{Mode, build_state};

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
    /// Turn the lake's raw landing into tables that hold each event once (Parquet, one per
    /// collection, a partition per day, under <lake>/_tables/<schema>/). Reads only raw
    /// objects not yet consumed; exits 0 when everything raw is compacted.
    Compact(CompactArgs),
}

/// Flags of `serve`. Settings given as flags go over the environment (see settings.rs).
#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    #[command(flatten)]
    settings: SettingFlags<Serve>,
    /// Benchmarks only: acknowledge and DROP every event, to measure the request path alone.
    #[arg(long, conflicts_with = settings::LAKE_DIR.var)]
    discard_events_for_benchmarks: bool,
}

/// The process environment, which the command line's flags override.
fn environment(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

/// Parses the command line and runs it; the exit status.
pub async fn run() -> Result<u8, Box<dyn std::error::Error + Send + Sync>> {
    match Cli::parse().command {
        Command::Pull(args) => run_pull(&args.settings.config(environment)?, args, false).await,
        Command::Backfill(args) => {
            if args.from.is_none() {
                return Err("backfill needs --from and --to".into());
            }
            run_pull(&args.settings.config(environment)?, args, true).await
        }
        Command::Reconcile(args) => reconcile(&args.settings.config(environment)?, args)
            .await
            .map(|()| 0),
        Command::Compact(args) => compact(&args.settings.config(environment)?, &args).await,
        other => run_other(other).await.map(|()| 0),
    }
}

async fn run_other(command: Command) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    match command {
        Command::Serve(args) => serve(args).await,
        Command::CollectionForTopic { topics } => {
            for topic in topics {
                println!("{}", collection_for_topic(&topic).slug());
            }
            Ok(())
        }
        Command::Redrive => {
            let summary =
                crate::redrive::redrive(&Config::from_lookup(Mode::Local, environment)?).await?;
            println!(
                "dead-letter objects: {}, re-delivered and deleted: {} ({} rows), kept: {}",
                summary.objects, summary.redriven, summary.rows, summary.kept
            );
            Ok(())
        }
        Command::Pull(_) | Command::Backfill(_) | Command::Reconcile(_) | Command::Compact(_) => {
            Ok(())
        }
    }
}

/// The configured keys (from flags or the environment), else, when no secret supplies keys,
/// one generated for this run and printed once on the operator's own terminal (never
/// through the logger) to paste where it is needed.
fn local_keys(
    configured: Vec<WriteKey>,
    from_secret: bool,
    what: &str,
) -> Result<Vec<WriteKey>, Box<dyn std::error::Error + Send + Sync>> {
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

async fn serve(args: ServeArgs) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut config = args.settings.config(environment)?;
    // Keys on the command line are this run's keys, whatever the secret holds.
    if args.settings.gave(&settings::WRITE_KEY) {
        config.write_key_secret_arn = None;
    }
    let from_secret = config.write_key_secret_arn.is_some();
    config.write_keys = local_keys(
        std::mem::take(&mut config.write_keys),
        from_secret,
        "write key",
    )?;
    config.segment_write_keys = local_keys(
        std::mem::take(&mut config.segment_write_keys),
        from_secret,
        "Segment write key",
    )?;
    if args.discard_events_for_benchmarks {
        config.sink = Some(SinkConfig::DiscardForBenchmarks);
    }
    // `--lake` chooses the lake even where the environment names a delivery stream; with
    // neither, `serve` writes to the default lake.
    if args.settings.gave(&settings::LAKE_DIR) || config.sink.is_none() {
        config.sink = Some(SinkConfig::LocalLake(lake_dir(&config)));
    }
    let destination = match &config.sink {
        Some(SinkConfig::LocalLake(dir)) => format!("lake at {}", dir.display()),
        Some(SinkConfig::Firehose(firehose)) => format!("Firehose stream {}", firehose.stream),
        Some(SinkConfig::DiscardForBenchmarks) => {
            "DISCARDING every event (benchmark mode)".to_owned()
        }
        None => String::new(),
    };
    let app = router(
        build_state(config, Mode::Local, async || {
            Ok(source_io::aws_clients::load_sdk_config().await?)
        })
        .await?,
    );
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pull(flags: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(["klaviyo-source", "pull"].iter().chain(flags))
    }

    #[test]
    fn the_pull_refuses_what_its_run_cannot_use_instead_of_clamping_it() {
        for refused in [
            ["--parallel-windows", "0"],
            ["--settle-secs", "0"],
            ["--lease-secs", "-5"],
            ["--recent-hours", "-1"],
            ["--check-every-hours", "x"],
        ] {
            assert!(pull(&refused).is_err(), "{refused:?} was accepted");
        }
        assert!(pull(&["--parallel-windows", "1", "--recent-hours", "0"]).is_ok());
    }

    #[test]
    fn the_pull_flags_default_to_the_runs_own_settings() {
        let Command::Pull(args) = pull(&[]).unwrap().command else {
            panic!("not the pull");
        };
        let defaults = source_io::pull::run::PullSettings::default();
        assert_eq!(args.lease_secs, defaults.lease.num_seconds());
        assert_eq!(args.settle_secs, defaults.settle.num_seconds());
        // Unset: the run derives it from the request budget.
        assert_eq!(args.parallel_windows, None);
        assert_eq!(
            source_core::pull::rate_budget::windows_for_budget(700),
            defaults.parallel_windows
        );
        assert_eq!(args.lookback_hours, defaults.first_run_lookback.num_hours());
        assert_eq!(args.recent_hours, defaults.late.recent.num_hours());
        assert_eq!(
            args.recent_every_minutes,
            defaults.late.recent_every.num_minutes()
        );
        assert_eq!(args.check_days, defaults.late.week_days);
        assert_eq!(args.check_every_hours, defaults.late.week_every.num_hours());
        assert_eq!(args.old_check_days, defaults.late.month_days);
    }
}
