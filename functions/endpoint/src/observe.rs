//! The one place that writes a request's log line and metric lines, for every answer:
//! stored requests (their counts travel in the response as a [`StoredRequest`] extension),
//! and refusals of every kind, 404 and 405 included (an [`ApiError`](crate::api_error::ApiError)
//! leaves its code as a [`RefusedRequest`] extension).

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use source_io::app_state::AppState;
use source_io::metrics::{
    StoredRequest, collection_documents, refused_request_document, stored_request_document,
};

/// The error code of a refused request, left in the response by `ApiError`.
#[derive(Debug, Clone, Copy)]
pub struct RefusedRequest(pub &'static str);

/// The route's name in logs and metrics: one per intake, `unmatched` for unknown paths.
pub fn route_name(matched_path: Option<&str>) -> &'static str {
    match matched_path {
        Some("/webhooks/klaviyo") => "klaviyo_webhook",
        Some("/v1/track") => "segment_track",
        Some("/v1/batch" | "/v1/import") => "segment_batch",
        Some("/v1/{call_type}") => "segment_other",
        Some("/health") => "health",
        _ => "unmatched",
    }
}

/// Runs the request, then logs it and emits its metrics.
pub async fn observe_request(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let route = route_name(
        request
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str),
    );
    let response = next.run(request).await;
    let now_ms = (state.clock)().timestamp_millis();
    let status = response.status().as_u16();
    if let Some(stored) = response.extensions().get::<StoredRequest>() {
        tracing::info!(
            route,
            status,
            accepted = stored.accepted,
            rejected = stored.rejected,
            skipped = stored.skipped,
            profiles_unresolved = stored.unresolved,
            resent = stored.resent,
            spilled = stored.spilled,
            delivery_ms = stored.delivery_ms,
            "request stored"
        );
        let detailed = state.metrics.detailed();
        state
            .metrics
            .emit(&stored_request_document(route, stored, now_ms, detailed));
        if detailed {
            for document in collection_documents(route, stored, now_ms) {
                state.metrics.emit(&document);
            }
        }
    } else if let Some(RefusedRequest(code)) = response.extensions().get::<RefusedRequest>() {
        tracing::warn!(route, status, error = code, "request refused");
        state.metrics.emit(&refused_request_document(
            route,
            code,
            now_ms,
            state.metrics.detailed(),
        ));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_every_route() {
        assert_eq!(route_name(Some("/v1/import")), "segment_batch");
        assert_eq!(route_name(Some("/v1/{call_type}")), "segment_other");
        assert_eq!(route_name(None), "unmatched");
    }
}
