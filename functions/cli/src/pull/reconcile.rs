//! `klaviyo-source reconcile`: per metric and day, Klaviyo's own count (metric aggregates), the
//! distinct event ids the local lake holds for that metric and day, and the difference. A
//! positive difference is events Klaviyo has and the lake does not (yet).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use flate2::read::MultiGzDecoder;
use source_core::klaviyo::metric_aggregates::{
    count_spans, daily_count_request, parse_daily_counts,
};
use source_core::klaviyo::metric_alias::{MetricChannel, topic_for_metric_name};
use source_core::klaviyo::topic::collection_for_topic;
use source_core::warehouse::row::PartitionKey;
use source_io::sink::lake_objects::partition_path;
use tokio::time::Instant;

use super::command::parse_time;
use crate::setting_flags::{self, SettingFlags};
use source_io::aws_clients::load_sdk_config;
use source_io::config::Config;
use source_io::pull::events_api::EventsApi;
use source_io::pull::metric_selection::{MetricChoice, select_metrics};
use source_io::pull::s3_state::S3StateObject;
use source_io::pull::state_store::{LocalStateFile, PullStateStore};
use source_io::s3_objects::S3Objects;
use source_io::settings;

/// Flags of `reconcile`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReconcileArgs {
    /// The lake.
    #[command(flatten)]
    pub settings: SettingFlags<setting_flags::Reconcile>,
    /// First day's start (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    pub from: DateTime<Utc>,
    /// End (RFC 3339, exclusive).
    #[arg(long, value_parser = parse_time)]
    pub to: DateTime<Utc>,
    /// A further metric, by name (repeatable); Klaviyo's email metrics are always checked.
    #[arg(long = "metric")]
    pub metrics: Vec<String>,
    /// Count the ids stored in this S3 bucket (the deployed lake) instead of a directory.
    #[arg(long, conflicts_with = settings::LAKE_DIR.var)]
    pub bucket: Option<String>,
}

/// Where the stored rows are read.
enum StoredLake {
    Directory(PathBuf),
    Bucket(Arc<S3Objects>, String),
}

impl StoredLake {
    /// The distinct ids of `metric_id`'s rows in one day's partition of `collection`.
    async fn ids(
        &self,
        schema: &str,
        collection: &str,
        day: NaiveDate,
        metric_id: &str,
    ) -> Result<BTreeSet<String>, Box<dyn std::error::Error + Send + Sync>> {
        let partition = partition_path(&PartitionKey {
            collection: collection.to_owned(),
            dt: day.to_string(),
        });
        let mut ids = BTreeSet::new();
        match self {
            Self::Directory(lake) => {
                let dir = lake.join(schema).join(&partition);
                let entries = match std::fs::read_dir(&dir) {
                    Ok(entries) => entries,
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(ids),
                    Err(err) => return Err(err.into()),
                };
                for entry in entries {
                    let path = entry?.path();
                    if path.extension().is_some_and(|ext| ext == "gz") {
                        collect_ids(&std::fs::read(&path)?, metric_id, &mut ids)?;
                    }
                }
            }
            Self::Bucket(s3, bucket) => {
                for key in s3.list(bucket, &format!("{schema}/{partition}/")).await? {
                    // An object deleted since the listing holds no id any more.
                    if let Some(object) = s3.get(bucket, &key).await? {
                        collect_ids(&object.body, metric_id, &mut ids)?;
                    }
                }
            }
        }
        Ok(ids)
    }
}

/// Adds the ids of `metric_id`'s rows in one gzip NDJSON object to `ids`.
fn collect_ids(gzip: &[u8], metric_id: &str, ids: &mut BTreeSet<String>) -> std::io::Result<()> {
    for line in BufReader::new(MultiGzDecoder::new(gzip)).lines() {
        let Ok(row) = serde_json::from_str::<BTreeMap<String, serde_json::Value>>(&line?) else {
            continue;
        };
        let of_metric = row
            .get("context_klaviyo_metric_id")
            .and_then(|v| v.as_str())
            == Some(metric_id);
        if let (true, Some(id)) = (of_metric, row.get("id").and_then(|v| v.as_str())) {
            ids.insert(id.to_owned());
        }
    }
    Ok(())
}

/// Runs `reconcile` and prints the table.
pub async fn reconcile(
    config: &Config,
    args: ReconcileArgs,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let Some(api_key) = config.identity.api_key.clone() else {
        return Err("KLAVIYO_API_KEY is not set".into());
    };
    let lake = crate::lake_dir::lake_dir(config);
    let (stored, state_store): (StoredLake, Box<dyn PullStateStore>) = match &args.bucket {
        Some(bucket) => {
            let s3 = Arc::new(S3Objects::new(&load_sdk_config().await?));
            let key = config.pull_state_key.clone();
            (
                StoredLake::Bucket(s3.clone(), bucket.clone()),
                Box::new(S3StateObject::new(s3, bucket.clone(), key)),
            )
        }
        None => (
            StoredLake::Directory(lake.clone()),
            Box::new(LocalStateFile::in_lake(&lake)),
        ),
    };
    let api = EventsApi::for_account(config, api_key, config.pull_requests_per_minute)?;
    let deadline = Instant::now() + Duration::from_secs(3600);
    let (state, _) = state_store.load().await?;
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
        let mut counts = Vec::new();
        // Klaviyo answers at most a year a query, five years back (metric_aggregates.rs).
        for (from, to) in count_spans(args.from, args.to, chrono::Utc::now()) {
            counts.extend(parse_daily_counts(
                &api.metric_aggregates(daily_count_request(&metric.id, from, to), deadline)
                    .await?,
            )?);
        }
        for (day, klaviyo) in counts {
            let stored = stored
                .ids(&config.schema, &collection, day, &metric.id)
                .await?
                .len() as u64;
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
