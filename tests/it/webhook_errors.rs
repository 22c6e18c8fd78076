//! Every refusal of the webhook route: documented status, JSON error code, nothing stored.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use source_core::klaviyo::signature::sign;
use source_io::sink::local_lake::LocalLakeSink;

use crate::support::*;

fn request(body: &[u8], signature: &str, timestamp: &str, webhook_id: &str) -> Request<Body> {
    Request::post("/webhooks/klaviyo")
        .header("content-type", "application/json")
        .header("klaviyo-webhook-id", webhook_id)
        .header("klaviyo-timestamp", timestamp)
        .header("klaviyo-signature", signature)
        .body(Body::from(body.to_vec()))
        .unwrap()
}

fn signed_with(body: &[u8], timestamp: &str) -> Request<Body> {
    request(
        body,
        &sign(&key(CURRENT_KEY), body, timestamp),
        timestamp,
        WEBHOOK_ID,
    )
}

async fn assert_refused(request: Request<Body>, status: u16, code: &str) {
    let (app, sink) = memory_app();
    let (got, body, _) = send(&app, request).await;
    assert_eq!(
        (got, body["error"].as_str().unwrap()),
        (status, code),
        "{body}"
    );
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(sink.rows().is_empty(), "a refused request stored rows");
}

#[tokio::test]
async fn wrong_and_missing_signatures_get_the_same_401() {
    let body = fixture("all_six_collections.json");
    let wrong_key = sign(&key("some-other-key-000000"), &body, SIGNED_AT);
    assert_refused(
        request(&body, &wrong_key, SIGNED_AT, WEBHOOK_ID),
        401,
        "invalid_signature",
    )
    .await;
    let missing = Request::post("/webhooks/klaviyo")
        .header("content-type", "application/json")
        .body(Body::from(body.clone()))
        .unwrap();
    let (app, _) = memory_app();
    let (status_missing, body_missing, _) = send(&app, missing).await;
    let (status_wrong, body_wrong, _) =
        send(&app, request(&body, &wrong_key, SIGNED_AT, WEBHOOK_ID)).await;
    assert_eq!((status_missing, &body_missing), (status_wrong, &body_wrong));
}

#[tokio::test]
async fn a_tampered_body_is_refused() {
    let body = fixture("all_six_collections.json");
    let signature = sign(&key(CURRENT_KEY), &body, SIGNED_AT);
    let tampered = String::from_utf8(body).unwrap().replace("hard", "soft");
    assert_refused(
        request(tampered.as_bytes(), &signature, SIGNED_AT, WEBHOOK_ID),
        401,
        "invalid_signature",
    )
    .await;
}

#[tokio::test]
async fn stale_and_future_timestamps_are_refused() {
    let body = fixture("unicode.json");
    assert_refused(
        signed_with(&body, "Thu, 04 Jan 2024 17:55:00 GMT"),
        401,
        "stale_timestamp",
    )
    .await;
    assert_refused(
        signed_with(&body, "Thu, 04 Jan 2024 18:15:00 GMT"),
        401,
        "stale_timestamp",
    )
    .await;
}

#[tokio::test]
async fn a_malformed_timestamp_is_refused() {
    assert_refused(
        signed_with(&fixture("unicode.json"), "last tuesday"),
        400,
        "malformed_timestamp",
    )
    .await;
}

#[tokio::test]
async fn a_mismatched_webhook_id_is_refused() {
    let body = fixture("unicode.json");
    let signature = sign(&key(CURRENT_KEY), &body, SIGNED_AT);
    assert_refused(
        request(&body, &signature, SIGNED_AT, "another-webhook"),
        401,
        "webhook_id_mismatch",
    )
    .await;
}

#[tokio::test]
async fn malformed_json_is_refused() {
    assert_refused(
        signed_with(b"{\"data\": [", SIGNED_AT),
        400,
        "malformed_json",
    )
    .await;
    assert_refused(signed_with(b"", SIGNED_AT), 400, "malformed_json").await;
}

#[tokio::test]
async fn a_body_of_the_wrong_shape_is_refused() {
    for body in [
        &br#"{"data": {}, "meta": {"klaviyo_webhook_id": "x"}}"#[..],
        br#"{"data": []}"#,
        br#"[1, 2, 3]"#,
        br#"{"data": [], "meta": {"klaviyo_webhook_id": true}}"#,
    ] {
        assert_refused(signed_with(body, SIGNED_AT), 400, "invalid_shape").await;
    }
}

#[tokio::test]
async fn an_oversized_body_is_refused_before_anything_else() {
    let (app, sink) = {
        let sink = Arc::new(source_io::sink::memory::MemorySink::default());
        (app_with(sink.clone(), 1024), sink)
    };
    let body = fixture("all_six_collections.json");
    assert!(body.len() > 1024);
    let (status, answer, _) = send(&app, signed_request(&body, CURRENT_KEY)).await;
    assert_eq!(
        (status, answer["error"].as_str().unwrap()),
        (413, "payload_too_large")
    );
    // Without a Content-Length header the limit still holds while streaming.
    let streamed = Request::post("/webhooks/klaviyo")
        .header("content-type", "application/json")
        .body(chunked(body.clone()))
        .unwrap();
    let (status, answer, _) = send(&app, streamed).await;
    assert_eq!(
        (status, answer["error"].as_str().unwrap()),
        (413, "payload_too_large")
    );
    assert!(sink.rows().is_empty());
}

/// A body delivered in 256-byte frames with no declared length, like a chunked upload.
struct ChunkedBody(Vec<Vec<u8>>);

impl http_body::Body for ChunkedBody {
    type Data = axum::body::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Ready(
            self.0
                .pop()
                .map(|chunk| Ok(http_body::Frame::data(chunk.into()))),
        )
    }
}

fn chunked(body: Vec<u8>) -> Body {
    Body::new(ChunkedBody(
        body.chunks(256).rev().map(<[u8]>::to_vec).collect(),
    ))
}

#[tokio::test]
async fn wrong_or_missing_content_type_is_refused() {
    let body = fixture("unicode.json");
    let mut wrong = signed_request(&body, CURRENT_KEY);
    wrong
        .headers_mut()
        .insert("content-type", "text/plain".parse().unwrap());
    assert_refused(wrong, 415, "unsupported_media_type").await;
    let mut missing = signed_request(&body, CURRENT_KEY);
    missing.headers_mut().remove("content-type");
    assert_refused(missing, 415, "unsupported_media_type").await;
    let mut with_charset = signed_request(&body, CURRENT_KEY);
    with_charset.headers_mut().insert(
        "content-type",
        "Application/JSON; charset=utf-8".parse().unwrap(),
    );
    let (app, _) = memory_app();
    assert_eq!(send(&app, with_charset).await.0, 200);
}

#[tokio::test]
async fn wrong_method_and_route_get_json_errors() {
    let get = Request::get("/webhooks/klaviyo")
        .body(Body::empty())
        .unwrap();
    assert_refused(get, 405, "method_not_allowed").await;
    let nowhere = Request::post("/webhooks/mailchimp")
        .body(Body::empty())
        .unwrap();
    assert_refused(nowhere, 404, "not_found").await;
}

#[tokio::test]
async fn storage_failure_answers_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let app = app_with(Arc::new(LocalLakeSink::new(&blocker, "klaviyo")), 1 << 20);
    let (status, body, response) =
        send(&app, signed_request(&fixture("unicode.json"), CURRENT_KEY)).await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (503, "storage_unavailable")
    );
    assert_eq!(response.headers()["retry-after"], "30");
    assert!(
        !body["message"].as_str().unwrap().contains("a-file"),
        "paths are not echoed"
    );
}
