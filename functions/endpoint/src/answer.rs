//! What every route does around the shared pipeline: the request's deadline, and the 200
//! answer that carries what was stored to the observing layer.

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use lambda_http::request::RequestContext;
use serde::Serialize;
use source_io::app_state::AppState;
use source_io::metrics::StoredRequest;
use source_io::request_deadline::request_deadline;
use tokio::time::Instant;

/// What Lambda and API Gateway say about a request's time: the invocation's deadline, and
/// when API Gateway received the request (payload 2.0's `requestContext.timeEpoch`, from which
/// its 30 s integration timeout runs). Both absent outside Lambda.
#[derive(Debug, Clone, Copy, Default)]
pub struct Invocation {
    /// The invocation's deadline, epoch milliseconds.
    pub lambda_deadline_epoch_ms: Option<u64>,
    /// When API Gateway received the request, epoch milliseconds.
    pub gateway_received_epoch_ms: Option<i64>,
}

impl<S: Send + Sync> FromRequestParts<S> for Invocation {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let gateway_received_epoch_ms = match parts.extensions.get::<RequestContext>() {
            Some(RequestContext::ApiGatewayV2(context)) => Some(context.time_epoch),
            _ => None,
        };
        Ok(Self {
            lambda_deadline_epoch_ms: parts
                .extensions
                .get::<lambda_http::Context>()
                .map(|context| context.deadline),
            gateway_received_epoch_ms,
        })
    }
}

/// The deadline of a request that has just arrived (see [`request_deadline`]).
pub fn deadline_of(state: &AppState, invocation: Invocation) -> Instant {
    request_deadline(
        Instant::now(),
        (state.clock)().timestamp_millis(),
        invocation.lambda_deadline_epoch_ms,
        invocation.gateway_received_epoch_ms,
    )
}

/// The 200 answer: `body` as JSON, carrying `stored` for the observing layer's log and
/// metric lines.
pub fn stored_answer(body: impl Serialize, stored: StoredRequest) -> Response {
    let mut response = Json(body).into_response();
    response.extensions_mut().insert(stored);
    response
}
