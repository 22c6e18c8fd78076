//! Segment's HTTP Tracking API: `POST /v1/track` and `POST /v1/batch` (and `/v1/import`),
//! so anything that speaks it (relays, other tools, Segment's own libraries) can post to
//! this source unchanged. This intake only authenticates and decodes; the rest is
//! [`store_mapped`].
//!
//! Unlike Segment, the answers are honest: every event gets an outcome. All valid: 200.
//! Some invalid: 200 with `accepted`, `rejected` and a reason per rejected event (the valid
//! ones are stored, the invalid ones kept in `rejected_events`). None valid: 400
//! `invalid_events` with the reasons, and nothing stored. Other call types (`identify`,
//! `page`, ...) get 400 `unsupported_type`.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use serde::Serialize;
use source_core::mapping::segment_call::map_segment_call;
use source_core::segment::partition_cap::{
    MAX_PARTITIONS_PER_MINUTE, MAX_PARTITIONS_PER_REQUEST, request_partitions,
};
use source_core::segment::tracking_api::{
    CallKind, MAX_BATCH_BYTES, MAX_EVENT_BYTES, SegmentCall, basic_auth_user,
};

use crate::answer::{Invocation, deadline_of, stored_answer};
use crate::api_error::{ApiError, RejectionSummary};
use crate::request_body::{read_limited, require_json_content_type};
use source_io::app_state::AppState;
use source_io::pipeline::{IntakeOutcome, WorkSize, cpu_work, store_mapped};

/// Segment call types that exist but are not stored here.
const OTHER_CALL_TYPES: [&str; 5] = ["identify", "page", "screen", "group", "alias"];

/// The answer to a call with at least one valid event.
#[derive(Debug, Serialize)]
pub struct SegmentOutcome {
    /// True when every event was accepted (Segment clients look for it).
    pub success: bool,
    /// The common outcome.
    #[serde(flatten)]
    pub outcome: IntakeOutcome,
}

/// `POST /v1/track`.
pub async fn receive_segment_track(
    State(state): State<AppState>,
    invocation: Invocation,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let deadline = deadline_of(&state, invocation);
    store_call(
        &state,
        &headers,
        body,
        CallKind::Track,
        deadline,
        Caps::Live,
    )
    .await
}

/// `POST /v1/batch` and `/v1/import`.
pub async fn receive_segment_batch(
    State(state): State<AppState>,
    invocation: Invocation,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let deadline = deadline_of(&state, invocation);
    store_call(
        &state,
        &headers,
        body,
        CallKind::Batch,
        deadline,
        Caps::Live,
    )
    .await
}

/// `POST /v1/import`: a batch of history, held to no partition cap (what passes Firehose's
/// 500 partitions reaches the tables through its error records and the compaction).
pub async fn receive_segment_import(
    State(state): State<AppState>,
    invocation: Invocation,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let deadline = deadline_of(&state, invocation);
    store_call(
        &state,
        &headers,
        body,
        CallKind::Batch,
        deadline,
        Caps::History,
    )
    .await
}

/// Which partition caps a call is held to ([`source_core::segment::partition_cap`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caps {
    /// Live events (`/v1/track`, `/v1/batch`): per request and per minute.
    Live,
    /// History (`/v1/import`): none.
    History,
}

/// `POST /v1/{type}` for Segment's other call types: a clear refusal; unknown paths 404.
pub async fn refuse_other_call_types(call_type: Result<Path<String>, PathRejection>) -> ApiError {
    // A segment that is not UTF-8 after percent-decoding gets a JSON error like the rest.
    let Ok(Path(call_type)) = call_type else {
        return ApiError::InvalidPath;
    };
    if OTHER_CALL_TYPES.contains(&call_type.as_str()) {
        ApiError::UnsupportedType(call_type)
    } else {
        ApiError::NotFound
    }
}

async fn store_call(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    kind: CallKind,
    deadline: tokio::time::Instant,
    caps: Caps,
) -> Result<Response, ApiError> {
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
    // Parsing and mapping up to 2,500 events is CPU work: a large batch runs off the async
    // workers.
    let size = WorkSize::of_body(body.len());
    let mapped = cpu_work(size, move || {
        let call = SegmentCall::parse(&body, kind)?.authenticate(basic_user.as_deref(), &keys)?;
        Ok::<_, ApiError>(map_segment_call(&call, received_at))
    })
    .await??;
    if !mapped.is_empty() && mapped.iter().all(Result::is_err) {
        let rejections = mapped
            .into_iter()
            .filter_map(Result::err)
            .map(|rejection| RejectionSummary {
                index: rejection.index,
                reason: rejection.reason,
            })
            .collect();
        return Err(ApiError::InvalidEvents(rejections));
    }
    if caps == Caps::Live {
        let partitions = request_partitions(&mapped);
        if partitions.len() > MAX_PARTITIONS_PER_REQUEST {
            return Err(ApiError::TooManyPartitions {
                found: partitions.len(),
                limit: MAX_PARTITIONS_PER_REQUEST,
            });
        }
        state
            .segment_partitions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .admit(&partitions, received_at.timestamp_millis())
            .map_err(|found| ApiError::PartitionRateLimited {
                found,
                limit: MAX_PARTITIONS_PER_MINUTE,
            })?;
    }
    let (outcome, stored) = store_mapped(state, size, mapped, received_at, deadline).await?;
    let answer = SegmentOutcome {
        success: outcome.rejected == 0,
        outcome,
    };
    Ok(stored_answer(answer, stored))
}
