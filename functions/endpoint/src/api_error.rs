//! The one place where failures become HTTP answers: a status and an opaque JSON body
//! `{"error": "<code>", "message": "<what to fix>"}`. Internal details are logged here and
//! never echoed. An expected failure is always a response, never a handler `Err` (API
//! Gateway would turn that into a bare 502).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use source_core::klaviyo::signature::AuthError;
use source_core::klaviyo::webhook::DecodeError;
use source_core::segment::tracking_api::SegmentCallError;
use source_io::pipeline::{StoreError, WorkerFailed};
use source_io::sink::SinkError;

use crate::observe::RefusedRequest;

/// Seconds a sender should wait before retrying after a 503.
pub const RETRY_AFTER_SECONDS: u32 = 30;

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request did not authenticate.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The authenticated body is not an acceptable webhook.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Not `application/json`.
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    /// The body is larger than the configured limit.
    #[error("request body exceeds {limit} bytes")]
    PayloadTooLarge {
        /// The limit, bytes.
        limit: usize,
    },
    /// The body could not be read from the connection.
    /// A `Content-Encoding` other than gzip (or none).
    #[error("Content-Encoding {0:?} is not accepted: send the body plain or gzip-compressed")]
    UnsupportedContentEncoding(String),
    /// The body says gzip but does not decompress.
    #[error("the body is declared gzip-compressed but does not decompress")]
    MalformedGzip,
    /// A path segment that is not UTF-8 after percent-decoding.
    #[error("the path is not valid UTF-8")]
    InvalidPath,
    /// The request's own work failed unexpectedly (a bug); nothing was stored.
    #[error("the request could not be processed; nothing was stored")]
    Internal,
    /// The body did not arrive in time.
    #[error("the request body did not arrive within the time limit")]
    BodyTimeout,
    /// The request could not be read.
    #[error("request body could not be read")]
    BodyRead,
    /// The rows could not be stored; nothing was acknowledged.
    #[error("storage unavailable")]
    SinkUnavailable(#[source] SinkError),
    /// No such route.
    #[error("no route for this path")]
    NotFound,
    /// The route exists, the method does not.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// A Segment API body refused as a whole.
    #[error(transparent)]
    Segment(#[from] SegmentCallError),
    /// Every event of a Segment API call was invalid: nothing was stored.
    #[error("no event of the call is valid; nothing was stored (see rejections)")]
    InvalidEvents(Vec<RejectionSummary>),
    /// A track or batch request whose events fall into too many Firehose partitions.
    #[error(
        "the events fall into {found} (collection, day) partitions; at most {limit} per request: split the batch, or send history to /v1/import"
    )]
    TooManyPartitions {
        /// Partitions the request would open.
        found: usize,
        /// The cap.
        limit: usize,
    },
    /// Segment requests opened too many partitions in the last minute.
    #[error(
        "Segment requests of the last minute would open {found} (collection, day) partitions, more than {limit}: retry after a minute"
    )]
    PartitionRateLimited {
        /// Partitions the minute would hold with this request.
        found: usize,
        /// The cap.
        limit: usize,
    },
    /// A Segment call type this source does not store.
    #[error("'{0}' calls are not accepted: this source stores track events only")]
    UnsupportedType(String),
}

pub use source_core::warehouse::request_rows::RejectionSummary;

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Sink(err) => Self::SinkUnavailable(err),
            StoreError::Worker => Self::Internal,
        }
    }
}

impl From<WorkerFailed> for ApiError {
    fn from(_: WorkerFailed) -> Self {
        Self::Internal
    }
}

impl ApiError {
    /// The HTTP status and the stable machine-readable code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Auth(AuthError::InvalidSignature) => {
                (StatusCode::UNAUTHORIZED, "invalid_signature")
            }
            Self::Auth(AuthError::StaleTimestamp { .. }) => {
                (StatusCode::UNAUTHORIZED, "stale_timestamp")
            }
            Self::Auth(AuthError::MalformedTimestamp) => {
                (StatusCode::BAD_REQUEST, "malformed_timestamp")
            }
            Self::Decode(DecodeError::WebhookIdMismatch) => {
                (StatusCode::UNAUTHORIZED, "webhook_id_mismatch")
            }
            Self::Decode(DecodeError::MalformedJson(_)) => {
                (StatusCode::BAD_REQUEST, "malformed_json")
            }
            Self::Decode(DecodeError::InvalidShape(_)) => {
                (StatusCode::BAD_REQUEST, "invalid_shape")
            }
            Self::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::BodyRead => (StatusCode::BAD_REQUEST, "body_read_failed"),
            Self::UnsupportedContentEncoding(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_content_encoding",
            ),
            Self::MalformedGzip => (StatusCode::BAD_REQUEST, "malformed_gzip"),
            Self::BodyTimeout => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            Self::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
            Self::InvalidPath => (StatusCode::BAD_REQUEST, "invalid_path"),
            Self::SinkUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable"),
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Segment(SegmentCallError::MalformedJson(_)) => {
                (StatusCode::BAD_REQUEST, "malformed_json")
            }
            Self::Segment(SegmentCallError::InvalidShape(_)) => {
                (StatusCode::BAD_REQUEST, "invalid_shape")
            }
            Self::Segment(SegmentCallError::TooManyEvents(_)) => {
                (StatusCode::PAYLOAD_TOO_LARGE, "too_many_events")
            }
            Self::Segment(SegmentCallError::InvalidWriteKey) => {
                (StatusCode::UNAUTHORIZED, "invalid_write_key")
            }
            Self::InvalidEvents(_) => (StatusCode::BAD_REQUEST, "invalid_events"),
            Self::UnsupportedType(_) => (StatusCode::BAD_REQUEST, "unsupported_type"),
            Self::TooManyPartitions { .. } => (StatusCode::BAD_REQUEST, "too_many_partitions"),
            Self::PartitionRateLimited { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "partition_rate_limited")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            // The sink's error names paths and AWS details: log them, answer generically.
            Self::SinkUnavailable(source) => {
                tracing::error!(error = %source, "delivery failed; nothing acknowledged");
                "the events could not be stored; nothing was accepted, retry later".to_owned()
            }
            // The observing layer logs the refusal with its route.
            other => other.to_string(),
        };
        // `code` repeats `error`: Segment's client libraries read `code` and `message`.
        let mut body = json!({ "error": code, "code": code, "message": message });
        if let Self::InvalidEvents(rejections) = &self {
            body["rejections"] = json!(rejections);
        }
        let mut response = (status, Json(body)).into_response();
        response.extensions_mut().insert(RefusedRequest(code));
        if let Self::PartitionRateLimited { .. } = &self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(60u32));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        response
    }
}
