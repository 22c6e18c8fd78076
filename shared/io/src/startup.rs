//! Cold-start assembly: configuration in, ready router state out. Shared by Lambda and
//! local mode so both run the same request path with the same sinks.

use std::sync::Arc;

use crate::discarding_sink::DiscardingSink;
use crate::identity::resolver::IdentityResolver;
use crate::sink::EventSink;
use crate::sink::firehose::{FirehoseSink, FirehoseSinkSettings};
use crate::sink::local_lake::LocalLakeSink;
use aws_config::SdkConfig;
use source_core::firehose::MAX_RECORD_BYTES;
use source_core::klaviyo::signature::SignatureVerifier;
use source_core::secret::{ApiKey, WriteKey};
use source_core::segment::write_keys::SegmentWriteKeys;

use crate::app_state::AppState;
use crate::config::{Config, FirehoseConfig, IdentityConfig, SinkConfig};
use crate::firehose_api::SdkFirehose;
use crate::klaviyo_http::KlaviyoHttp;
use crate::metrics::MetricsEmitter;
use crate::profiles_api::KlaviyoProfilesApi;
use crate::s3_dead_letter::S3DeadLetter;
use crate::s3_objects::S3Objects;
use crate::start_checks::check_firehose_resources;
pub use crate::start_error::StartError;
use crate::write_key_secret::fetch_source_secret;

pub use crate::settings::Mode;

/// Builds the router state from `config`, reading secrets and creating AWS clients (with
/// the configuration `load_sdk` gives: see aws_clients.rs) only when the configuration
/// needs them.
pub async fn build_state(
    config: Config,
    mode: Mode,
    load_sdk: impl AsyncFnOnce() -> Result<SdkConfig, StartError>,
) -> Result<AppState, StartError> {
    let needs_aws = config.write_key_secret_arn.is_some()
        || matches!(config.sink, Some(SinkConfig::Firehose(_)));
    let sdk = if needs_aws {
        Some(load_sdk().await?)
    } else {
        None
    };

    let (keys, segment_keys, secret_api_key) = match (&config.write_key_secret_arn, &sdk) {
        (Some(arn), Some(sdk)) => {
            let secret =
                fetch_source_secret(&aws_sdk_secretsmanager::Client::new(sdk), arn).await?;
            (
                secret.write_keys,
                secret.segment_write_keys,
                secret.klaviyo_api_key,
            )
        }
        _ if mode == Mode::Lambda => {
            return Err(StartError::Misconfigured(
                "in Lambda the write keys must come from Secrets Manager: set WRITE_KEY_SECRET_ARN",
            ));
        }
        _ => (
            config.write_keys.clone(),
            config.segment_write_keys.clone(),
            None,
        ),
    };
    refuse_shared_keys(&keys, &segment_keys)?;
    let verifier = SignatureVerifier::new(keys, config.timestamp_tolerance)?;
    let api_key = secret_api_key.or_else(|| config.identity.api_key.clone());
    let identity = identity_resolver(&config.identity, api_key)?;

    let sink: Arc<dyn EventSink> = match (&config.sink, &sdk) {
        (Some(SinkConfig::Firehose(firehose)), Some(sdk)) => {
            let s3 = Arc::new(S3Objects::new(sdk));
            check_firehose_resources(&aws_sdk_firehose::Client::new(sdk), &s3, firehose).await?;
            Arc::new(firehose_sink(firehose, &config.schema, sdk, s3))
        }
        (Some(SinkConfig::LocalLake(dir)), _) => {
            let lake = LocalLakeSink::new(dir, &config.schema);
            let removed = lake
                .remove_leftover_temp_files()
                .map_err(|source| StartError::Io {
                    what: "the lake directory could not be cleaned of temporary files",
                    source,
                })?;
            if removed > 0 {
                tracing::info!(removed, "removed temporary files an earlier crash left");
            }
            Arc::new(lake)
        }
        (Some(SinkConfig::DiscardForBenchmarks), _) if mode == Mode::Local => {
            Arc::new(DiscardingSink)
        }
        _ => {
            return Err(StartError::Misconfigured(
                "no sink configured: set DELIVERY_STREAM_NAME (Firehose) or LAKE_DIR (local lake)",
            ));
        }
    };
    let mut state = AppState::new(verifier, sink, config.max_body_bytes);
    state.metrics = MetricsEmitter::new(config.emit_metrics).with_detail(config.detailed_metrics);
    state.identity = identity;
    state.only_own_profiles = config.identity.only_own_profiles;
    state.segment_keys = Arc::new(SegmentWriteKeys::new(segment_keys));
    Ok(state)
}

/// A Segment write key travels in Basic headers and client code; if it also signed
/// webhooks, whoever holds it could forge Klaviyo's webhooks. The start fails instead.
fn refuse_shared_keys(webhook: &[WriteKey], segment: &[WriteKey]) -> Result<(), StartError> {
    let shared = webhook.iter().any(|w| {
        segment
            .iter()
            .any(|s| s.expose_secret() == w.expose_secret())
    });
    if shared {
        return Err(StartError::Misconfigured(
            "a Segment write key equals a webhook write key: give the Segment API its own key (SEGMENT_WRITE_KEY, segment_write_key in the secret)",
        ));
    }
    Ok(())
}

/// The profile resolver when an API key is configured. "Only own profiles" without one is
/// refused: it could never tell own profiles from others.
fn identity_resolver(
    identity: &IdentityConfig,
    api_key: Option<ApiKey>,
) -> Result<Option<Arc<IdentityResolver>>, StartError> {
    let Some(api_key) = api_key else {
        if identity.only_own_profiles {
            return Err(StartError::Misconfigured(
                "ONLY_OWN_PROFILES needs a Klaviyo API key (KLAVIYO_API_KEY, or klaviyo_api_key in the secret)",
            ));
        }
        return Ok(None);
    };
    let api = KlaviyoProfilesApi::new(
        KlaviyoHttp::new(
            &identity.base_url,
            api_key,
            &identity.revision,
            identity.lookup_timeout,
        )
        .map_err(StartError::klaviyo_client)?,
    );
    Ok(Some(Arc::new(IdentityResolver::new(
        Arc::new(api),
        identity.cache_ttl,
        identity.lookup_timeout,
    ))))
}

/// The Firehose sink with its S3 dead-letter store.
pub fn firehose_sink(
    firehose: &FirehoseConfig,
    schema: &str,
    sdk: &SdkConfig,
    s3: Arc<S3Objects>,
) -> FirehoseSink {
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
        Arc::new(S3DeadLetter::new(s3, &firehose.dead_letter_bucket)),
        settings,
    )
}
