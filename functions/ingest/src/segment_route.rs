//! Segment's HTTP Tracking API: `POST /v1/track` and `POST /v1/batch`, so anything that
//! speaks it (relays, other tools, scripts) can post to this source unchanged.
//!
//! Unlike Segment, the answers are honest: every event gets an outcome. All valid: 200.
//! Some invalid: 200 with `accepted`, `rejected` and a reason per rejected event (the valid
//! ones are stored, the invalid ones kept in `rejected_events`). None valid: 400
//! `invalid_events` with the reasons, and nothing stored. Other call types (`identify`,
//! `page`, ...) get 400 `unsupported_type`.

use axum::Extension;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use klaviyo_source::mapping::segment_call::map_segment_call;
use klaviyo_source::segment::tracking_api::{
    CallKind, MAX_BATCH_BYTES, MAX_EVENT_BYTES, SegmentCall, basic_auth_user,
};
use klaviyo_source::warehouse::row::{rejected_row, track_row};
use serde::Serialize;

use crate::api_error::{ApiError, RejectionSummary};
use crate::app::AppState;
use crate::metrics::StoredRequest;
use crate::request_body::{read_limited, require_json_content_type};
use crate::responder::{deadline_of, deliver_rows, off_the_workers, respond};

/// Segment call types that exist but are not stored here.
const OTHER_CALL_TYPES: [&str; 5] = ["identify", "page", "screen", "group", "alias"];

/// The answer to a call with at least one valid event.
#[derive(Debug, Serialize)]
pub struct SegmentOutcome {
    /// True when every event was accepted (Segment clients look for it).
    pub success: bool,
    /// Events stored.
    pub accepted: usize,
    /// Events rejected (kept in `rejected_events`).
    pub rejected: usize,
    /// Why each rejected event was rejected.
    pub rejections: Vec<RejectionSummary>,
}

/// `POST /v1/track`.
pub async fn receive_segment_track(
    State(state): State<AppState>,
    lambda: Option<Extension<lambda_http::Context>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let deadline = deadline_of(&state, lambda.as_deref());
    let result = store_call(&state, &headers, body, CallKind::Track, deadline).await;
    respond(&state, "segment_track", result)
}

/// `POST /v1/batch`.
pub async fn receive_segment_batch(
    State(state): State<AppState>,
    lambda: Option<Extension<lambda_http::Context>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let deadline = deadline_of(&state, lambda.as_deref());
    let result = store_call(&state, &headers, body, CallKind::Batch, deadline).await;
    respond(&state, "segment_batch", result)
}

/// `POST /v1/{type}` for Segment's other call types: a clear refusal; unknown paths 404.
pub async fn refuse_other_call_types(call_type: Result<Path<String>, PathRejection>) -> Response {
    // A segment that is not UTF-8 after percent-decoding gets a JSON error like the rest.
    let Ok(Path(call_type)) = call_type else {
        return ApiError::InvalidPath.into_response();
    };
    if OTHER_CALL_TYPES.contains(&call_type.as_str()) {
        ApiError::UnsupportedType(call_type).into_response()
    } else {
        ApiError::NotFound.into_response()
    }
}

async fn store_call(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    kind: CallKind,
    deadline: tokio::time::Instant,
) -> Result<(SegmentOutcome, StoredRequest), ApiError> {
    require_json_content_type(headers)?;
    let limit = match kind {
        CallKind::Track => MAX_EVENT_BYTES,
        CallKind::Batch => MAX_BATCH_BYTES,
    }
    .min(state.max_body_bytes);
    let body = read_limited(body, headers, limit).await?;
    let received_at = (state.clock)();
    let basic_user = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(basic_auth_user);
    let keys = state.segment_keys.clone();
    // Parsing, mapping and flattening up to 2,500 events is CPU work: off the async workers.
    let (events, rows, rejections) = off_the_workers(move || {
        let call = SegmentCall::parse(&body, kind)?.authenticate(basic_user.as_deref(), &keys)?;
        let mapped = map_segment_call(&call, received_at);
        let events = mapped.len();
        let mut rows = Vec::with_capacity(events);
        let mut rejections = Vec::new();
        for event in mapped {
            match event {
                Ok(event) => rows.push(track_row(event, received_at)),
                Err(rejection) => {
                    rows.push(rejected_row(&rejection, received_at));
                    rejections.push(RejectionSummary {
                        index: rejection.index,
                        reason: rejection.reason,
                    });
                }
            }
        }
        Ok::<_, ApiError>((events, rows, rejections))
    })
    .await??;
    if events > 0 && rejections.len() == events {
        return Err(ApiError::InvalidEvents(rejections));
    }
    let delivered = deliver_rows(state, rows, deadline).await?;
    let report = &delivered.report;
    let outcome = SegmentOutcome {
        success: rejections.is_empty(),
        accepted: events - rejections.len(),
        rejected: rejections.len(),
        rejections,
    };
    tracing::info!(
        accepted = outcome.accepted,
        rejected = outcome.rejected,
        "segment call stored"
    );
    let stored = StoredRequest {
        accepted: outcome.accepted,
        rejected: outcome.rejected,
        resent: report.resent,
        spilled: report.spilled,
        delivery_ms: delivered.delivery_ms,
        rows_per_collection: delivered.rows_per_collection,
        ..StoredRequest::default()
    };
    Ok((outcome, stored))
}
