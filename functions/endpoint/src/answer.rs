//! What every route does around the shared pipeline: the request's deadline, and the 200
//! answer that carries what was stored to the observing layer.

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use source_io::app_state::AppState;
use source_io::metrics::StoredRequest;
use source_io::request_deadline::request_deadline;
use tokio::time::Instant;

/// The deadline of a request that has just arrived, from the Lambda invocation's deadline
/// when there is one (see [`request_deadline`]).
pub fn deadline_of(state: &AppState, lambda: Option<&lambda_http::Context>) -> Instant {
    request_deadline(
        Instant::now(),
        (state.clock)().timestamp_millis(),
        lambda.map(|context| context.deadline),
    )
}

/// The 200 answer: `body` as JSON, carrying `stored` for the observing layer's log and
/// metric lines.
pub fn stored_answer(body: impl Serialize, stored: StoredRequest) -> Response {
    let mut response = Json(body).into_response();
    response.extensions_mut().insert(stored);
    response
}
