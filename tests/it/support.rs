//! Shared helpers: signing, requests, routers over memory or lake sinks with a pinned clock.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response};
use chrono::{DateTime, Utc};
use endpoint::app::router;
use http_body_util::BodyExt;
use serde_json::Value;
use source_core::klaviyo::signature::{SignatureVerifier, sign};
use source_core::secret::WriteKey;
use source_core::segment::write_keys::SegmentWriteKeys;
use source_io::app_state::AppState;
use source_io::config::LARGEST_MAX_BODY_BYTES;
use source_io::sink::EventSink;
use source_io::sink::memory::MemorySink;
use tower::ServiceExt;

pub const CURRENT_KEY: &str = "current-write-key-0123";
pub const PREVIOUS_KEY: &str = "previous-write-key-456";
/// The Segment API's own keys: never the webhook keys.
pub const SEGMENT_KEY: &str = "segment-write-key-0123";
pub const SEGMENT_PREVIOUS_KEY: &str = "segment-previous-key-45";
pub const SIGNED_AT: &str = "Thu, 04 Jan 2024 18:05:25 GMT";
pub const WEBHOOK_ID: &str = "9f1c2e7a4b6d8f0a1c3e5b7d9f2a4c6e8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a";

/// The pinned "now" of every test: five seconds after [`SIGNED_AT`].
pub fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-01-04T18:05:30Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join("webhooks").join(name)).unwrap()
}

pub fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

pub fn key(text: &str) -> WriteKey {
    WriteKey::new(text).unwrap()
}

/// A router with both rotation keys, the default limits and a pinned clock.
pub fn app_with(sink: Arc<dyn EventSink>, max_body_bytes: usize) -> Router {
    let verifier = SignatureVerifier::new(
        vec![key(CURRENT_KEY), key(PREVIOUS_KEY)],
        Duration::from_secs(300),
    )
    .unwrap();
    let mut state = AppState::new(verifier, sink, max_body_bytes);
    state.clock = Arc::new(now);
    state.segment_keys = Arc::new(SegmentWriteKeys::new(vec![
        key(SEGMENT_KEY),
        key(SEGMENT_PREVIOUS_KEY),
    ]));
    router(state)
}

pub fn memory_app() -> (Router, Arc<MemorySink>) {
    let sink = Arc::new(MemorySink::default());
    (app_with(sink.clone(), LARGEST_MAX_BODY_BYTES), sink)
}

/// A webhook request signed with `signing_key` at [`SIGNED_AT`].
pub fn signed_request(body: &[u8], signing_key: &str) -> Request<Body> {
    Request::post("/webhooks/klaviyo")
        .header("content-type", "application/json")
        .header("klaviyo-webhook-id", WEBHOOK_ID)
        .header("klaviyo-timestamp", SIGNED_AT)
        .header(
            "klaviyo-signature",
            sign(&key(signing_key), body, SIGNED_AT),
        )
        .body(Body::from(body.to_vec()))
        .unwrap()
}

pub async fn send(app: &Router, request: Request<Body>) -> (u16, Value, Response<()>) {
    let response = app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("body is not JSON: {:?}", String::from_utf8_lossy(&bytes)));
    (parts.status.as_u16(), json, Response::from_parts(parts, ()))
}

/// Standard padded base64, for Basic auth headers and API Gateway bodies.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
