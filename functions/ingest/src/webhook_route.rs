//! `POST /webhooks/klaviyo`: Klaviyo system webhooks.
//!
//! Order of checks: content type (415), size (413), signature and freshness (401/400),
//! envelope and webhook id (400/401), then mapping, identity and delivery. Events that are
//! broken inside a good envelope are stored in the rejected collection and reported; the
//! answer is 200 once everything is durable, or 503 (nothing acknowledged) if storage fails.

use std::collections::HashMap;

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, Utc};
use klaviyo_source::identity::apply::{IdentityDecision, apply_identity, klaviyo_profile_id};
use klaviyo_source::identity::resolver::{Resolution, ResolutionStats};
use klaviyo_source::klaviyo::signature::{AuthError, SignatureHeaders};
use klaviyo_source::klaviyo::webhook::decode_webhook;
use klaviyo_source::mapping::{Mapped, Receipt, map_webhook};
use klaviyo_source::warehouse::row::{WarehouseRow, rejected_row, track_row};
use serde::Serialize;
use tokio::time::Instant;

use crate::api_error::{ApiError, RejectionSummary};
use crate::app::AppState;
use crate::metrics::StoredRequest;
use crate::request_body::{read_limited, require_json_content_type};
use crate::request_deadline::identity_deadline;
use crate::responder::{deadline_of, deliver_rows, off_the_workers, respond};

/// The route's name in metrics.
const METRICS_ROUTE: &str = "klaviyo_webhook";

/// The 200 answer: what was stored, and why any event was set aside.
#[derive(Debug, Serialize)]
pub struct WebhookOutcome {
    /// Events stored as track events.
    pub accepted: usize,
    /// Events stored in the rejected collection instead.
    pub rejected: usize,
    /// One entry per rejected event.
    pub rejections: Vec<RejectionSummary>,
    /// Events not stored because "only own profiles" is on and their profile has no
    /// `external_id` (shown only when there are some).
    #[serde(skip_serializing_if = "is_zero")]
    pub skipped: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Handles one Klaviyo webhook request and records its metrics.
pub async fn receive_klaviyo_webhook(
    State(state): State<AppState>,
    lambda: Option<Extension<lambda_http::Context>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let deadline = deadline_of(&state, lambda.as_deref());
    let result = store_webhook(&state, &headers, body, deadline).await;
    respond(&state, METRICS_ROUTE, result)
}

async fn store_webhook(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    deadline: Instant,
) -> Result<(WebhookOutcome, StoredRequest), ApiError> {
    require_json_content_type(headers)?;
    let body = read_limited(body, headers, state.max_body_bytes).await?;
    let received_at: DateTime<Utc> = (state.clock)();

    let signature = owned_signature_headers(headers)?;
    let verifier = state.verifier.clone();
    // Hashing, parsing and mapping a body of up to 4 MiB is CPU work: off the async
    // workers, so one large request never holds up the others (or /health).
    let mapped = off_the_workers(move || {
        let authenticated = verifier.verify(signature.borrowed(), &body, received_at)?;
        let webhook = decode_webhook(&authenticated)?;
        let receipt = Receipt {
            signed_at: authenticated.signed_at(),
            received_at,
        };
        Ok::<_, ApiError>(map_webhook(webhook, receipt))
    })
    .await??;
    let (resolutions, identity_stats) =
        resolve_profiles(state, &mapped, identity_deadline(deadline)).await;
    let only_own_profiles = state.only_own_profiles;
    let (rows, outcome) =
        off_the_workers(move || build_rows(mapped, &resolutions, only_own_profiles, received_at))
            .await?;
    let delivered = deliver_rows(state, rows, deadline).await?;
    let report = &delivered.report;
    let stored = StoredRequest {
        accepted: outcome.accepted,
        rejected: outcome.rejected,
        skipped: outcome.skipped,
        unresolved: identity_stats.unresolved,
        resent: report.resent,
        spilled: report.spilled,
        delivery_ms: delivered.delivery_ms,
        rows_per_collection: delivered.rows_per_collection,
    };
    tracing::info!(
        accepted = outcome.accepted,
        rejected = outcome.rejected,
        skipped = outcome.skipped,
        profiles_unresolved = identity_stats.unresolved,
        profile_lookups = identity_stats.lookups,
        resent = report.resent,
        spilled = report.spilled,
        "webhook stored"
    );
    Ok((outcome, stored))
}

/// The rows of the mapped events, with the resolved identities applied, and the answer.
fn build_rows(
    mapped: Vec<Mapped>,
    resolutions: &HashMap<String, Resolution>,
    only_own_profiles: bool,
    received_at: DateTime<Utc>,
) -> (Vec<WarehouseRow>, WebhookOutcome) {
    let mut rows = Vec::with_capacity(mapped.len());
    let mut outcome = WebhookOutcome {
        accepted: 0,
        rejected: 0,
        rejections: Vec::new(),
        skipped: 0,
    };
    for event in mapped {
        match event {
            Ok(mut event) => {
                let resolution = klaviyo_profile_id(&event)
                    .and_then(|id| resolutions.get(id))
                    .unwrap_or(&Resolution::Unresolved);
                match apply_identity(&mut event, resolution, only_own_profiles) {
                    IdentityDecision::Keep => {
                        rows.push(track_row(event, received_at));
                        outcome.accepted += 1;
                    }
                    IdentityDecision::SkipNotOwnProfile => outcome.skipped += 1,
                }
            }
            Err(rejection) => {
                rows.push(rejected_row(&rejection, received_at));
                outcome.rejections.push(RejectionSummary {
                    index: rejection.index,
                    reason: rejection.reason,
                });
                outcome.rejected += 1;
            }
        }
    }
    (rows, outcome)
}

/// The signature headers, owned so they can move to a blocking thread.
struct OwnedSignatureHeaders {
    signature: Option<String>,
    timestamp: Option<String>,
    webhook_id: Option<String>,
}

impl OwnedSignatureHeaders {
    fn borrowed(&self) -> SignatureHeaders<'_> {
        SignatureHeaders {
            signature: self.signature.as_deref(),
            timestamp: self.timestamp.as_deref(),
            webhook_id: self.webhook_id.as_deref(),
        }
    }
}

fn owned_signature_headers(headers: &HeaderMap) -> Result<OwnedSignatureHeaders, ApiError> {
    let borrowed = signature_headers(headers)?;
    Ok(OwnedSignatureHeaders {
        signature: borrowed.signature.map(str::to_owned),
        timestamp: borrowed.timestamp.map(str::to_owned),
        webhook_id: borrowed.webhook_id.map(str::to_owned),
    })
}

/// Looks up the profiles of the mapped events, when lookup is configured.
async fn resolve_profiles(
    state: &AppState,
    mapped: &[Mapped],
    not_after: Instant,
) -> (HashMap<String, Resolution>, ResolutionStats) {
    let Some(resolver) = &state.identity else {
        return (HashMap::new(), ResolutionStats::default());
    };
    let ids: Vec<&str> = mapped
        .iter()
        .filter_map(|m| m.as_ref().ok())
        .filter_map(klaviyo_profile_id)
        .collect();
    resolver.resolve(&ids, not_after).await
}

/// The signature headers. A `Klaviyo-Timestamp` that is not visible ASCII is malformed
/// (400), not missing: it was sent, and no format could read it.
fn signature_headers(headers: &HeaderMap) -> Result<SignatureHeaders<'_>, ApiError> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if headers
        .get("klaviyo-timestamp")
        .is_some_and(|v| v.to_str().is_err())
    {
        return Err(ApiError::Auth(AuthError::MalformedTimestamp));
    }
    Ok(SignatureHeaders {
        signature: text("klaviyo-signature"),
        timestamp: text("klaviyo-timestamp"),
        webhook_id: text("klaviyo-webhook-id"),
    })
}
