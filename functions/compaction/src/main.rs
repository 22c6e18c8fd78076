//! The deployed compaction: in Lambda each scheduled invocation is one run over the lake
//! bucket (`LAKE_BUCKET`, schema `SCHEMA_NAME`); outside Lambda one run with the same
//! configuration, for trying it against the deployed bucket or an emulator. A run that finds
//! another holding the lake's lease ends as a success (the other run does the work).

use std::process::ExitCode;

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};
use source_io::aws_clients::sdk_config_from_lambda_environment;
use source_io::config::Config;
use source_io::metrics::{MetricsEmitter, compaction_run_document};
use source_io::s3_objects::S3Objects;
use source_io::settings::Mode;
use source_io::tables::compaction_run::{Compaction, CompactionError, FIREHOSE_ERRORS_PREFIX};
use source_io::tables::glue_catalog::GlueCatalog;
use source_io::tables::s3_store::S3Store;
use source_io::tables::table_store::StoreError;
use source_io::telemetry::{init_logging, json_logs};

/// mimalloc rather than glibc's malloc: a new row allocates a string per member, and with
/// glibc about a third of a compaction's time went to malloc and free (docs/design.md,
/// "Allocator"). One run at a time, so one heap's worth of memory.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let env = |key: &str| std::env::var(key).ok();
    let in_lambda = env("AWS_LAMBDA_RUNTIME_API").is_some();
    init_logging(json_logs(in_lambda, env), env);
    let (store, target) = match start(env, in_lambda) {
        Ok(started) => started,
        Err(err) => {
            tracing::error!(error = %err, "start-up failed");
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    if in_lambda {
        let (store, target) = (&store, &target);
        let handler = service_fn(move |_: LambdaEvent<Value>| async move {
            run(store, target)
                .await
                .map_err(|err| Box::new(err) as Box<dyn std::error::Error + Send + Sync>)
        });
        return match lambda_runtime::run(handler).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                tracing::error!(error = %err, "runtime failed");
                ExitCode::FAILURE
            }
        };
    }
    match run(&store, &target).await {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The store and schema from the configuration and the Lambda runtime's variables.
fn start(
    env: impl Fn(&str) -> Option<String>,
    in_lambda: bool,
) -> Result<(S3Store, Target), Box<dyn std::error::Error + Send + Sync>> {
    let config = Config::from_lookup(Mode::Lambda, &env)?;
    let bucket = config
        .lake_bucket
        .clone()
        .ok_or("the compaction needs LAKE_BUCKET: the lake bucket to compact")?;
    let sdk = sdk_config_from_lambda_environment(&env)?;
    let holder = env("AWS_LAMBDA_LOG_STREAM_NAME").unwrap_or_else(|| "local".into());
    let catalog = config
        .glue_database
        .map(|database| GlueCatalog::new(&sdk, database, bucket.clone()));
    Ok((
        S3Store::new(S3Objects::new(&sdk), bucket, holder),
        Target {
            schema: config.schema,
            dead_letter_prefix: config.dead_letter_prefix,
            catalog,
            // Outside Lambda stdout carries the report alone.
            metrics: MetricsEmitter::new(in_lambda && config.emit_metrics),
            raw_retention_days: config.raw_retention_days,
        },
    ))
}

/// What a run compacts in the bucket.
struct Target {
    /// The schema of the raw landing and the tables.
    schema: String,
    /// Where the endpoint spills rows Firehose would not take.
    dead_letter_prefix: String,
    /// The Glue database readers find the tables in (`GLUE_DATABASE`), if set.
    catalog: Option<GlueCatalog>,
    /// Where each finished run's figures go (EMF lines, in Lambda).
    metrics: MetricsEmitter,
    /// Days of raw landing kept once compacted (0: all).
    raw_retention_days: u32,
}

/// One run; its report as JSON (logged too). A held lease is a success: the run holding it
/// compacts what this one would have.
async fn run(store: &S3Store, target: &Target) -> Result<Value, CompactionError> {
    let mut compaction = Compaction::new(store, target.schema.clone())
        .with_dead_letter(target.dead_letter_prefix.clone())
        .with_error_records(FIREHOSE_ERRORS_PREFIX)
        .with_raw_retention(target.raw_retention_days, chrono::Utc::now().date_naive());
    if let Some(catalog) = &target.catalog {
        compaction = compaction.with_catalog(catalog);
    }
    match compaction.run().await {
        Ok(report) => {
            let now = chrono::Utc::now().timestamp_millis();
            target.metrics.emit(&compaction_run_document(&report, now));
            let report = json!(report);
            tracing::info!(report = %report, "compaction run");
            Ok(report)
        }
        Err(CompactionError::Store(StoreError::Locked(place))) => {
            tracing::info!(lease = %place, "another compaction holds the lake; nothing to do");
            Ok(json!({"skipped": "another compaction holds the lake"}))
        }
        Err(err) => {
            tracing::error!(error = %err, "compaction failed; the next run continues");
            Err(err)
        }
    }
}
