//! The router fed with API Gateway HTTP API (payload 2.0) events as `lambda_http` hands them
//! over. The events are files (`tests/fixtures/apigw/`, written to AWS's documented format by
//! `make_events.py` there), so what the function receives can be read as it is.

use axum::body::Body;

use crate::support::*;

fn event_file(name: &str) -> String {
    std::fs::read_to_string(fixtures_dir().join("apigw").join(name)).unwrap()
}

async fn send_event(event: &str) -> (u16, serde_json::Value, usize) {
    let request = lambda_http::request::from_str(event).unwrap();
    let (parts, body) = request.into_parts();
    let request = axum::http::Request::from_parts(parts, Body::from(body.to_vec()));
    let (app, sink) = memory_app();
    let (status, answer, _) = send(&app, request).await;
    (status, answer, sink.rows().len())
}

/// The body `lambda_http` decodes from an event file.
fn body_of(event: &str) -> Vec<u8> {
    lambda_http::request::from_str(event)
        .unwrap()
        .into_body()
        .to_vec()
}

#[test]
fn the_event_files_carry_the_current_webhook_fixtures() {
    for (event, webhook) in [
        ("http_api_text_body.json", "all_six_collections.json"),
        ("http_api_base64_body.json", "unicode.json"),
        ("http_api_unsigned.json", "unicode.json"),
    ] {
        assert_eq!(
            body_of(&event_file(event)),
            fixture(webhook),
            "{event} is stale: run tests/fixtures/apigw/make_events.py"
        );
    }
}

#[tokio::test]
async fn accepts_a_text_body_from_an_http_api_event() {
    let (status, answer, rows) = send_event(&event_file("http_api_text_body.json")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(rows, 6);
}

#[tokio::test]
async fn accepts_a_base64_body_from_an_http_api_event() {
    let (status, answer, rows) = send_event(&event_file("http_api_base64_body.json")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn refuses_an_unsigned_http_api_event() {
    let (status, answer, rows) = send_event(&event_file("http_api_unsigned.json")).await;
    assert_eq!(
        (status, answer["error"].as_str().unwrap()),
        (401, "invalid_signature")
    );
    assert_eq!(rows, 0);
}
