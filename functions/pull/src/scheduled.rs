//! The scheduled pull in AWS: one incremental run per invocation (EventBridge Scheduler),
//! rows written straight into the data bucket under the lake's layout (not through
//! Firehose: a re-read or a catch-up would meet the stream's regional quota, and the pull
//! needs no buffering), the state and the id ledgers in S3 with conditional writes, and a
//! metrics line for the alarms (refused key, cursor lag, lease held).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use chrono::Utc;
use source_core::pull::rate_budget::windows_for_budget;
use source_core::secret::ApiKey;
use tokio::time::Instant;

use source_io::aws_clients::sdk_config_from_lambda_environment;
use source_io::config::Config;
use source_io::metrics::{MetricsEmitter, PullRunFigures, pull_run_document};
use source_io::pull::events_api::{EventsApi, EventsApiError};
use source_io::pull::id_ledgers::S3IdLedgers;
use source_io::pull::metric_selection::MetricChoice;
use source_io::pull::run::{PullError, PullPlan, PullReport, PullRun, PullSettings};
use source_io::pull::s3_state::S3StateObject;
use source_io::s3_lake::S3LakeSink;
use source_io::s3_objects::S3Objects;
use source_io::startup::StartError;
use source_io::write_key_secret::fetch_source_secret;

/// Everything a scheduled run needs, built once per cold start.
pub struct ScheduledPull {
    run: PullRun,
    /// The run's Klaviyo client, kept for its request counts.
    api: Arc<EventsApi>,
}

impl ScheduledPull {
    /// Builds the run from `config`: the API key from the secret (or KLAVIYO_API_KEY), the
    /// lake in the state's bucket (PULL_STATE_BUCKET, the stack's data bucket), the S3
    /// state object and id ledgers beside it, with AWS clients configured from the Lambda
    /// runtime's variables. Missing pieces fail the cold start, naming them.
    /// `lookup` is the process environment, for what the Lambda runtime sets (region,
    /// credentials, the log stream that names the lease holder).
    pub async fn start(
        config: &Config,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, StartError> {
        let sdk = sdk_config_from_lambda_environment(&lookup)?;
        let from_secret = match &config.write_key_secret_arn {
            Some(arn) => {
                fetch_source_secret(&aws_sdk_secretsmanager::Client::new(&sdk), arn)
                    .await?
                    .klaviyo_api_key
            }
            None => None,
        };
        let api_key: ApiKey = from_secret
            .or_else(|| config.identity.api_key.clone())
            .ok_or(StartError::Misconfigured("the pull needs a Klaviyo private API key: klaviyo_api_key in the secret (stack parameter KlaviyoApiKey) or KLAVIYO_API_KEY"))?;
        let (Some(bucket), key) = (
            config.pull_state_bucket.clone(),
            config.pull_state_key.clone(),
        ) else {
            return Err(StartError::Misconfigured(
                "the scheduled pull keeps its state in S3: set PULL_STATE_BUCKET",
            ));
        };
        let s3 = Arc::new(S3Objects::new(&sdk));
        let holder = format!(
            "lambda-{}",
            lookup("AWS_LAMBDA_LOG_STREAM_NAME").unwrap_or_else(|| "local".into())
        );
        let api = EventsApi::for_account(config, api_key, config.pull_requests_per_minute)
            .map_err(StartError::klaviyo_client)?;
        Ok(Self {
            api: api.clone(),
            run: PullRun {
                api,
                store: Arc::new(S3StateObject::new(s3.clone(), bucket.clone(), key.clone())),
                ledgers: Arc::new(S3IdLedgers::beside_state(s3.clone(), bucket.clone(), &key)),
                sink: Arc::new(S3LakeSink::new(s3, bucket, config.schema.clone())),
                settings: PullSettings {
                    choice: MetricChoice {
                        channels: config.pull_channels.clone(),
                        names: Vec::new(),
                    },
                    only_own_profiles: config.identity.only_own_profiles,
                    parallel_windows: windows_for_budget(config.pull_requests_per_minute),
                    // Longer than any invocation (at most 15 minutes): a crashed run's
                    // lease lapses before the schedule's next-but-one run.
                    lease: chrono::TimeDelta::minutes(16),
                    ..PullSettings::default()
                },
                clock: Arc::new(Utc::now),
                holder,
                on_progress: Arc::new(|_| {}),
                stop: Arc::new(AtomicBool::new(false)),
            },
        })
    }

    /// One incremental run that stops in time to checkpoint before `deadline`; writes its
    /// metrics line and answers the report (an error fails the invocation, which the
    /// function-errors alarm sees). A run that finds the lease held by another (a run still
    /// going, or a backfill of the same state) is not a failure: it counts `PullLeaseHeld`
    /// and ends with an incomplete report.
    pub async fn invoke(&self, deadline: Instant) -> Result<PullReport, PullError> {
        let mut lease_held = false;
        let result = match self.run.run(&PullPlan::Incremental, deadline).await {
            Err(PullError::LeaseHeld { holder, until }) => {
                lease_held = true;
                Ok(PullReport {
                    warnings: vec![format!(
                        "another pull run ({holder}) holds the lease until {until}; this one did nothing"
                    )],
                    ..PullReport::default()
                })
            }
            other => other,
        };
        let counts = self.api.counts();
        let now = Utc::now();
        let (report, refused) = match &result {
            Ok(report) => (Some(report), false),
            Err(PullError::Klaviyo(EventsApiError::Unauthorized { .. })) => (None, true),
            Err(_) => (None, false),
        };
        let figures = PullRunFigures {
            events_stored: report.map_or(0, |r| r.events),
            requests: counts.requests,
            rate_limited: counts.rate_limited,
            key_refused: refused,
            lease_held,
            cursor_lag_secs: report
                .and_then(|r| r.oldest_cursor)
                .map(|cursor| (now - cursor).num_seconds().max(0)),
        };
        // Every run writes its metric line, in Lambda and out of it (the stack's alarms read it).
        MetricsEmitter::new(true).emit(&pull_run_document(&figures, now.timestamp_millis()));
        if let Ok(report) = &result {
            for warning in &report.warnings {
                tracing::warn!(warning = %warning, "metric check");
            }
        }
        result
    }
}
