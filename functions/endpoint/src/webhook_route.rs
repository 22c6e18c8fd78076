//! `POST /webhooks/klaviyo`: Klaviyo system webhooks. This intake only authenticates and
//! decodes; the rest is [`store_mapped`].
//!
//! Order of checks: content type (415), size (413), signature and freshness (401/400),
//! envelope and webhook id (400/401), then mapping, identity and delivery. Events that are
//! broken inside a good envelope are stored in the rejected collection and reported; the
//! answer is 200 once everything is durable, or 503 (nothing acknowledged) if storage fails.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use source_core::klaviyo::signature::{AuthError, SignatureHeaders};
use source_core::klaviyo::webhook_decode::decode_webhook;
use source_core::mapping::{Receipt, map_webhook};

use crate::answer::{Invocation, deadline_of, stored_answer};
use crate::api_error::ApiError;
use crate::request_body::{read_limited, require_json_content_type};
use source_io::app_state::AppState;
use source_io::pipeline::{WorkSize, cpu_work, store_mapped};

/// Handles one Klaviyo webhook request.
pub async fn receive_klaviyo_webhook(
    State(state): State<AppState>,
    invocation: Invocation,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let deadline = deadline_of(&state, invocation);
    require_json_content_type(&headers)?;
    let body = read_limited(body, &headers, state.max_body_bytes).await?;
    let received_at = (state.clock)();
    let signature = owned_signature_headers(&headers)?;
    let verifier = state.verifier.clone();
    // Hashing, parsing and mapping a body of up to 4 MiB is CPU work: a large one runs off
    // the async workers, so it never holds up the others (or /health).
    let size = WorkSize::of_body(body.len());
    let mapped = cpu_work(size, move || {
        let authenticated = verifier.verify(signature.borrowed(), &body, received_at)?;
        let webhook = decode_webhook(&authenticated)?;
        let receipt = Receipt {
            signed_at: authenticated.signed_at(),
            received_at,
        };
        Ok::<_, ApiError>(map_webhook(webhook, receipt))
    })
    .await??;
    let (outcome, stored) = store_mapped(&state, size, mapped, received_at, deadline).await?;
    Ok(stored_answer(outcome, stored))
}

/// The signature headers, owned so they can move to a blocking thread. A
/// `Klaviyo-Timestamp` that is not visible ASCII is malformed (400), not missing: it was
/// sent, and no format could read it.
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
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    if headers
        .get("klaviyo-timestamp")
        .is_some_and(|v| v.to_str().is_err())
    {
        return Err(ApiError::Auth(AuthError::MalformedTimestamp));
    }
    Ok(OwnedSignatureHeaders {
        signature: text("klaviyo-signature"),
        timestamp: text("klaviyo-timestamp"),
        webhook_id: text("klaviyo-webhook-id"),
    })
}
