//! The command line: `klaviyo-source serve`, `pull`, `backfill`, `compact`, `reconcile`,
//! `redrive`, `collection-for-topic`. The Lambdas run their own crates
//! (`functions/endpoint`, `functions/pull`, `functions/compaction`), which carry none of this.

/// Built with `--features deployed-allocator` for benchmarks only: the compaction Lambda's
/// allocator under the same `compact` code.
#[cfg(feature = "deployed-allocator")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        eprintln!(
            "error: this is the command line; in AWS Lambda deploy the `endpoint`, `pull` or `compaction` binary (template.yaml does)"
        );
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
