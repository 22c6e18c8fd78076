//! The router: which path goes to which intake, and the one layer that observes every
//! answer.

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};

use crate::api_error::ApiError;
use crate::observe::observe_request;
use crate::segment_route::{
    receive_segment_batch, receive_segment_import, receive_segment_track, refuse_other_call_types,
};
use crate::webhook_route::receive_klaviyo_webhook;
use source_io::app_state::AppState;

/// The path Klaviyo posts system webhooks to.
pub const KLAVIYO_WEBHOOK_PATH: &str = "/webhooks/klaviyo";
/// A liveness probe that touches nothing.
pub const HEALTH_PATH: &str = "/health";

/// The endpoint's routes. Unknown paths and methods get JSON errors like every other
/// failure, and every answer, refusals included, gets its log line and metric line from
/// [`observe_request`].
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(KLAVIYO_WEBHOOK_PATH, post(receive_klaviyo_webhook))
        .route("/v1/track", post(receive_segment_track))
        .route("/v1/batch", post(receive_segment_batch))
        // The older libraries' name for /v1/batch, and where history goes: no partition cap.
        .route("/v1/import", post(receive_segment_import))
        .route("/v1/{call_type}", post(refuse_other_call_types))
        .route(
            HEALTH_PATH,
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(from_fn_with_state(state.clone(), observe_request))
        .with_state(state)
}
