//! The router and its shared state.

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use klaviyo_source::identity::resolver::IdentityResolver;
use klaviyo_source::klaviyo::signature::SignatureVerifier;
use klaviyo_source::segment::write_keys::SegmentWriteKeys;
use klaviyo_source::sink::EventSink;

use crate::api_error::ApiError;
use crate::metrics::MetricsEmitter;
use crate::segment_route::{receive_segment_batch, receive_segment_track, refuse_other_call_types};
use crate::webhook_route::receive_klaviyo_webhook;

/// The path Klaviyo posts system webhooks to.
pub const KLAVIYO_WEBHOOK_PATH: &str = "/webhooks/klaviyo";
/// A liveness probe that touches nothing.
pub const HEALTH_PATH: &str = "/health";

/// A source of the current time; tests pin it.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// What every request needs, built once at start-up.
#[derive(Clone)]
pub struct AppState {
    /// Checks `Klaviyo-Signature` against the write keys.
    pub verifier: Arc<SignatureVerifier>,
    /// Where accepted rows go.
    pub sink: Arc<dyn EventSink>,
    /// Largest accepted body, bytes.
    pub max_body_bytes: usize,
    /// The current time.
    pub clock: Clock,
    /// CloudWatch EMF metric lines.
    pub metrics: MetricsEmitter,
    /// Klaviyo profile lookup, when an API key is configured.
    pub identity: Option<Arc<IdentityResolver>>,
    /// Store only events of profiles with an `external_id`.
    pub only_own_profiles: bool,
    /// The Segment API's own write keys (empty: every Segment call is refused).
    pub segment_keys: Arc<SegmentWriteKeys>,
}

impl AppState {
    /// State with the system clock, metrics off and no profile lookup.
    pub fn new(
        verifier: SignatureVerifier,
        sink: Arc<dyn EventSink>,
        max_body_bytes: usize,
    ) -> Self {
        Self {
            verifier: Arc::new(verifier),
            sink,
            max_body_bytes,
            clock: Arc::new(Utc::now),
            metrics: MetricsEmitter::new(false),
            identity: None,
            only_own_profiles: false,
            segment_keys: Arc::new(SegmentWriteKeys::default()),
        }
    }
}

/// The endpoint's routes. Unknown paths and methods get JSON errors like every other
/// failure.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(KLAVIYO_WEBHOOK_PATH, post(receive_klaviyo_webhook))
        .route("/v1/track", post(receive_segment_track))
        .route("/v1/batch", post(receive_segment_batch))
        // The older libraries' name for /v1/batch.
        .route("/v1/import", post(receive_segment_batch))
        .route("/v1/{call_type}", post(refuse_other_call_types))
        .route(
            HEALTH_PATH,
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
}
