//! Cold-start assembly: configuration in, ready router state out. Shared by Lambda and
//! local mode so both run the same request path with the same sinks.

use std::sync::Arc;

use aws_config::SdkConfig;
use klaviyo_source::firehose::MAX_RECORD_BYTES;
use klaviyo_source::klaviyo::signature::SignatureVerifier;
use klaviyo_source::sink::EventSink;
use klaviyo_source::sink::firehose::{FirehoseSink, FirehoseSinkSettings};
use klaviyo_source::sink::local_lake::LocalLakeSink;

use crate::app::AppState;
use crate::aws_clients::{load_sdk_config, s3_client};
use crate::config::{Config, FirehoseConfig, SinkConfig};
use crate::firehose_api::SdkFirehose;
use crate::metrics::MetricsEmitter;
use crate::s3_dead_letter::S3DeadLetter;
use crate::write_key_secret::fetch_write_keys;

/// A start-up failure: the process exits and Lambda reports an init error.
pub type StartError = Box<dyn std::error::Error + Send + Sync>;

/// Where the process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Inside AWS Lambda.
    Lambda,
    /// `bootstrap serve`.
    Local,
}

/// Builds the router state from `config`, reading secrets and creating AWS clients only
/// when the configuration needs them.
pub async fn build_state(config: Config, mode: Mode) -> Result<AppState, StartError> {
    let needs_aws = config.write_key_secret_arn.is_some()
        || matches!(config.sink, Some(SinkConfig::Firehose(_)));
    let sdk = if needs_aws {
        Some(load_sdk_config().await)
    } else {
        None
    };

    let keys = match (&config.write_key_secret_arn, &sdk) {
        (Some(arn), Some(sdk)) => {
            fetch_write_keys(&aws_sdk_secretsmanager::Client::new(sdk), arn).await?
        }
        _ if mode == Mode::Lambda => {
            return Err(
                "in Lambda the write keys must come from Secrets Manager: set WRITE_KEY_SECRET_ARN"
                    .into(),
            );
        }
        _ => config.write_keys.clone(),
    };
    let verifier = SignatureVerifier::new(keys, config.timestamp_tolerance)?;

    let sink: Arc<dyn EventSink> = match (&config.sink, &sdk) {
        (Some(SinkConfig::Firehose(firehose)), Some(sdk)) => {
            Arc::new(firehose_sink(firehose, &config.schema, sdk))
        }
        (Some(SinkConfig::LocalLake(dir)), _) => Arc::new(LocalLakeSink::new(dir, &config.schema)),
        _ => {
            return Err(
                "no sink configured: set DELIVERY_STREAM_NAME (Firehose) or LAKE_DIR (local lake)"
                    .into(),
            );
        }
    };
    let mut state = AppState::new(verifier, sink, config.max_body_bytes);
    state.metrics = MetricsEmitter::new(config.emit_metrics.unwrap_or(mode == Mode::Lambda));
    Ok(state)
}

/// The Firehose sink with its S3 dead-letter store.
pub fn firehose_sink(firehose: &FirehoseConfig, schema: &str, sdk: &SdkConfig) -> FirehoseSink {
    let settings = FirehoseSinkSettings {
        pack_budget: if firehose.pack_records {
            MAX_RECORD_BYTES
        } else {
            0
        },
        delivery_timeout: firehose.delivery_timeout,
        dead_letter_prefix: firehose.dead_letter_prefix.clone(),
        schema: schema.to_owned(),
        ..FirehoseSinkSettings::default()
    };
    FirehoseSink::new(
        Arc::new(SdkFirehose::new(
            aws_sdk_firehose::Client::new(sdk),
            &firehose.stream,
        )),
        Arc::new(S3DeadLetter::new(
            s3_client(sdk),
            &firehose.dead_letter_bucket,
        )),
        settings,
    )
}
