//! Turning a route's result into the HTTP answer, recording its metrics on the way, and
//! delivering rows: shared by every intake route.

use tokio::time::Instant;

use axum::Json;
use axum::response::{IntoResponse, Response};
use klaviyo_source::sink::DeliveryReport;
use klaviyo_source::warehouse::row::WarehouseRow;
use serde::Serialize;

use crate::api_error::ApiError;
use crate::app::AppState;
use crate::metrics::{
    StoredRequest, collection_documents, refused_request_document, stored_request_document,
};
use crate::request_deadline::request_deadline;

/// Answers `result` as JSON and emits its metric line for `route`.
pub fn respond<T: Serialize>(
    state: &AppState,
    route: &str,
    result: Result<(T, StoredRequest), ApiError>,
) -> Response {
    let now_ms = (state.clock)().timestamp_millis();
    match result {
        Ok((outcome, stored)) => {
            state
                .metrics
                .emit(&stored_request_document(route, &stored, now_ms));
            for document in collection_documents(route, &stored, now_ms) {
                state.metrics.emit(&document);
            }
            Json(outcome).into_response()
        }
        Err(error) => {
            let (_, code) = error.status_and_code();
            state
                .metrics
                .emit(&refused_request_document(route, code, now_ms));
            error.into_response()
        }
    }
}

/// The deadline of a request that has just arrived, from the Lambda invocation's deadline
/// when there is one (see [`request_deadline`]).
pub fn deadline_of(state: &AppState, lambda: Option<&lambda_http::Context>) -> Instant {
    request_deadline(
        Instant::now(),
        (state.clock)().timestamp_millis(),
        lambda.map(|context| context.deadline),
    )
}

/// Runs CPU-heavy request work (hashing, parsing, mapping, flattening) on the blocking pool
/// instead of the async workers.
pub async fn off_the_workers<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(|err| {
        tracing::error!(error = %err, "request work failed");
        ApiError::Internal
    })
}

/// What delivering a request's rows did.
#[derive(Debug)]
pub struct Delivered {
    /// The sink's report.
    pub report: DeliveryReport,
    /// Time spent delivering, milliseconds.
    pub delivery_ms: f64,
    /// Rows per collection slug, in slug order.
    pub rows_per_collection: Vec<(String, usize)>,
}

/// Delivers `rows` to the sink; answers what happened and how long it took.
pub async fn deliver_rows(
    state: &AppState,
    rows: Vec<WarehouseRow>,
    deadline: Instant,
) -> Result<Delivered, ApiError> {
    let mut per_collection = std::collections::BTreeMap::<String, usize>::new();
    for row in &rows {
        *per_collection
            .entry(row.partition.collection.clone())
            .or_default() += 1;
    }
    let started = Instant::now();
    let report = if rows.is_empty() {
        DeliveryReport::default()
    } else {
        state
            .sink
            .deliver(rows, deadline)
            .await
            .map_err(ApiError::SinkUnavailable)?
    };
    Ok(Delivered {
        report,
        delivery_ms: started.elapsed().as_secs_f64() * 1000.0,
        rows_per_collection: per_collection.into_iter().collect(),
    })
}
