//! `bootstrap reconcile`: per metric and day, Klaviyo's own count (metric aggregates), the
//! distinct event ids the local lake holds for that metric and day, and the difference. A
//! positive difference is events Klaviyo has and the lake does not (yet).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use flate2::read::MultiGzDecoder;
use klaviyo_source::klaviyo::metric_aggregates::{daily_count_request, parse_daily_counts};
use klaviyo_source::klaviyo::metric_alias::{MetricChannel, topic_for_metric_name};
use klaviyo_source::klaviyo::topic::collection_for_topic;
use klaviyo_source::time_format::parse_iso_datetime;
use tokio::time::Instant;

use super::events_api::EventsApi;
use super::metric_selection::{MetricChoice, select_metrics};
use super::state_store::{LocalStateFile, PullStateStore};
use crate::config::Config;

/// Flags of `reconcile`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReconcileArgs {
    /// Lake directory [env: LAKE_DIR] [default: ./lake].
    #[arg(long)]
    pub lake: Option<PathBuf>,
    /// First day's start (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    pub from: DateTime<Utc>,
    /// End (RFC 3339, exclusive).
    #[arg(long, value_parser = parse_time)]
    pub to: DateTime<Utc>,
    /// A further metric, by name (repeatable); Klaviyo's email metrics are always checked.
    #[arg(long = "metric")]
    pub metrics: Vec<String>,
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    parse_iso_datetime(text).ok_or_else(|| format!("{text:?} is not an RFC 3339 time"))
}

/// Runs `reconcile` and prints the table.
pub async fn reconcile(
    config: &Config,
    args: ReconcileArgs,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let Some(api_key) = config.identity.api_key.clone() else {
        return Err("KLAVIYO_API_KEY is not set".into());
    };
    let lake = super::command::lake_dir(config, args.lake.as_deref());
    let api = EventsApi::for_account(config, api_key, config.pull_requests_per_minute)?;
    let deadline = Instant::now() + Duration::from_secs(3600);
    let (state, _) = LocalStateFile::in_lake(&lake).load().await?;
    let choice = MetricChoice {
        channels: vec![MetricChannel::Email],
        names: args.metrics.clone(),
    };
    let selection = select_metrics(&api.metrics(deadline).await?, &choice, &state.streams);
    println!(
        "{:<36} {:<10} {:>10} {:>10} {:>10}",
        "metric", "day", "klaviyo", "stored", "missing"
    );
    let mut total_missing = 0i64;
    for metric in &selection.metrics {
        let topic = state
            .streams
            .get(&metric.id)
            .map_or_else(|| topic_for_metric_name(&metric.name), |s| s.topic.clone());
        let collection = collection_for_topic(&topic).slug().to_owned();
        let counts = parse_daily_counts(
            &api.metric_aggregates(
                daily_count_request(&metric.id, args.from, args.to),
                deadline,
            )
            .await?,
        )?;
        let schema_dir = lake.join(&config.schema);
        for (day, klaviyo) in counts {
            let stored = stored_ids(&schema_dir, &collection, day, &metric.id)?.len() as u64;
            let missing = klaviyo as i64 - stored as i64;
            total_missing += missing.max(0);
            println!(
                "{:<36} {:<10} {:>10} {:>10} {:>10}",
                metric.name, day, klaviyo, stored, missing
            );
        }
    }
    println!("missing in total: {total_missing}");
    Ok(())
}

/// The distinct ids of `metric_id`'s rows in one day's partition of `collection`.
pub fn stored_ids(
    schema_dir: &Path,
    collection: &str,
    day: NaiveDate,
    metric_id: &str,
) -> std::io::Result<BTreeSet<String>> {
    let dir = schema_dir
        .join(format!("collection={collection}"))
        .join(format!("dt={day}"));
    let mut ids = BTreeSet::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(ids),
        Err(err) => return Err(err),
    };
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_none_or(|ext| ext != "gz") {
            continue;
        }
        let reader = BufReader::new(MultiGzDecoder::new(std::fs::File::open(&path)?));
        for line in reader.lines() {
            let row: BTreeMap<String, serde_json::Value> = match serde_json::from_str(&line?) {
                Ok(row) => row,
                Err(_) => continue,
            };
            let of_metric = row
                .get("context_klaviyo_metric_id")
                .and_then(|v| v.as_str())
                == Some(metric_id);
            if let (true, Some(id)) = (of_metric, row.get("id").and_then(|v| v.as_str())) {
                ids.insert(id.to_owned());
            }
        }
    }
    Ok(ids)
}
