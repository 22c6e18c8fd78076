//! `POST /webhooks/klaviyo`: Klaviyo system webhooks.
//!
//! Order of checks: content type (415), size (413), signature and freshness (401/400),
//! envelope and webhook id (400/401), then mapping and delivery. Events that are broken
//! inside a good envelope are stored in the rejected collection and reported; the answer
//! is 200 once everything is durable, or 503 (nothing acknowledged) if storage fails.

use std::time::Instant;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use klaviyo_source::klaviyo::signature::SignatureHeaders;
use klaviyo_source::klaviyo::webhook::decode_webhook;
use klaviyo_source::mapping::{Receipt, map_webhook};
use klaviyo_source::sink::DeliveryReport;
use klaviyo_source::warehouse::row::{rejected_row, track_row};
use serde::Serialize;

use crate::api_error::ApiError;
use crate::app::AppState;
use crate::metrics::{StoredRequest, refused_request_document, stored_request_document};

/// The 200 answer: what was stored, and why any event was set aside.
#[derive(Debug, Serialize)]
pub struct WebhookOutcome {
    /// Events stored as track events.
    pub accepted: usize,
    /// Events stored in the rejected collection instead.
    pub rejected: usize,
    /// One entry per rejected event.
    pub rejections: Vec<RejectionSummary>,
}

/// Why one event was set aside.
#[derive(Debug, Serialize)]
pub struct RejectionSummary {
    /// Its position in `data`.
    pub index: usize,
    /// What is wrong.
    pub reason: String,
}

/// The route's name in metrics.
const METRICS_ROUTE: &str = "klaviyo_webhook";

/// Handles one Klaviyo webhook request and records its metrics.
pub async fn receive_klaviyo_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = store_webhook(&state, &headers, body).await;
    let now_ms = (state.clock)().timestamp_millis();
    match result {
        Ok((outcome, stored)) => {
            state
                .metrics
                .emit(&stored_request_document(METRICS_ROUTE, &stored, now_ms));
            Json(outcome).into_response()
        }
        Err(error) => {
            let (_, code) = error.status_and_code();
            state
                .metrics
                .emit(&refused_request_document(METRICS_ROUTE, code, now_ms));
            error.into_response()
        }
    }
}

async fn store_webhook(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(WebhookOutcome, StoredRequest), ApiError> {
    let started = Instant::now();
    require_json_content_type(headers)?;
    let body = read_limited(body, headers, state.max_body_bytes).await?;
    let received_at: DateTime<Utc> = (state.clock)();

    let authenticated = state
        .verifier
        .verify(signature_headers(headers), &body, received_at)?;
    let webhook = decode_webhook(&authenticated)?;
    let receipt = Receipt {
        signed_at: authenticated.signed_at(),
        received_at,
    };

    let mut rows = Vec::with_capacity(webhook.events().len());
    let mut rejections = Vec::new();
    for mapped in map_webhook(&webhook, receipt) {
        match mapped {
            Ok(event) => rows.push(track_row(&event, received_at)),
            Err(rejection) => {
                rows.push(rejected_row(&rejection, received_at));
                rejections.push(RejectionSummary {
                    index: rejection.index,
                    reason: rejection.reason,
                });
            }
        }
    }
    let outcome = WebhookOutcome {
        accepted: rows.len() - rejections.len(),
        rejected: rejections.len(),
        rejections,
    };
    let delivery_started = Instant::now();
    let report = if rows.is_empty() {
        DeliveryReport::default()
    } else {
        state
            .sink
            .deliver(rows)
            .await
            .map_err(ApiError::SinkUnavailable)?
    };
    let stored = StoredRequest {
        accepted: outcome.accepted,
        rejected: outcome.rejected,
        resent: report.resent,
        spilled: report.spilled,
        delivery_ms: delivery_started.elapsed().as_secs_f64() * 1000.0,
    };
    tracing::info!(
        accepted = outcome.accepted,
        rejected = outcome.rejected,
        resent = report.resent,
        spilled = report.spilled,
        elapsed_us = started.elapsed().as_micros() as u64,
        "webhook stored"
    );
    Ok((outcome, stored))
}

fn signature_headers(headers: &HeaderMap) -> SignatureHeaders<'_> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    SignatureHeaders {
        signature: text("klaviyo-signature"),
        timestamp: text("klaviyo-timestamp"),
        webhook_id: text("klaviyo-webhook-id"),
    }
}

/// Accepts `application/json` with any parameters (`; charset=utf-8`), in any case.
fn require_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
    if is_json {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType)
    }
}

async fn read_limited(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => {
            Err(ApiError::PayloadTooLarge { limit })
        }
        Err(_) => Err(ApiError::BodyRead),
    }
}
