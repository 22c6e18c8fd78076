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

/// An oversized body with a `Content-Length` is in the hostile-input table; without one the
/// limit still holds while the body streams in.
#[tokio::test]
async fn an_oversized_body_without_a_length_is_cut_off_while_streaming() {
    let (app, sink) = {
        let sink = Arc::new(source_io::sink::memory::MemorySink::default());
        (app_with(sink.clone(), 1024), sink)
    };
    let body = fixture("all_six_collections.json");
    assert!(body.len() > 1024);
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

/// The refusals of a wrong or missing `Content-Type` are in the hostile-input table; a JSON
/// type in another case and with parameters is accepted.
#[tokio::test]
async fn a_json_content_type_with_parameters_is_accepted() {
    let body = fixture("unicode.json");
    let mut with_charset = signed_request(&body, CURRENT_KEY);
    with_charset.headers_mut().insert(
        "content-type",
        "Application/JSON; charset=utf-8".parse().unwrap(),
    );
    let (app, _) = memory_app();
    assert_eq!(send(&app, with_charset).await.0, 200);
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
