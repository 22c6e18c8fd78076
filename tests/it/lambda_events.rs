//! The router fed with real API Gateway event shapes, as `lambda_http` hands them over.

use axum::body::Body;
use klaviyo_source::klaviyo::signature::sign;
use serde_json::json;

use crate::support::*;

/// An API Gateway HTTP API (payload v2.0) event, shaped as AWS documents it.
fn http_api_event(body: &str, base64: bool, headers: serde_json::Value) -> String {
    json!({
        "version": "2.0",
        "routeKey": "POST /webhooks/klaviyo",
        "rawPath": "/webhooks/klaviyo",
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "r3pmxmplak",
            "domainName": "r3pmxmplak.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "r3pmxmplak",
            "http": {
                "method": "POST",
                "path": "/webhooks/klaviyo",
                "protocol": "HTTP/1.1",
                "sourceIp": "205.255.255.176",
                "userAgent": "Klaviyo-Webhooks/1.0"
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": "POST /webhooks/klaviyo",
            "stage": "$default",
            "time": "04/Jan/2024:18:05:25 +0000",
            "timeEpoch": 1704391525000_u64
        },
        "body": body,
        "isBase64Encoded": base64
    })
    .to_string()
}

async fn send_event(event: &str) -> (u16, serde_json::Value, usize) {
    let request = lambda_http::request::from_str(event).unwrap();
    let (parts, body) = request.into_parts();
    let request = axum::http::Request::from_parts(parts, Body::from(body.to_vec()));
    let (app, sink) = memory_app();
    let (status, answer, _) = send(&app, request).await;
    (status, answer, sink.rows().len())
}

fn signed_headers(body: &[u8]) -> serde_json::Value {
    json!({
        "content-type": "application/json",
        "klaviyo-webhook-id": WEBHOOK_ID,
        "klaviyo-timestamp": SIGNED_AT,
        "klaviyo-signature": sign(&key(CURRENT_KEY), body, SIGNED_AT),
    })
}

#[tokio::test]
async fn accepts_a_text_body_from_an_http_api_event() {
    let body = fixture("all_six_collections.json");
    let event = http_api_event(
        std::str::from_utf8(&body).unwrap(),
        false,
        signed_headers(&body),
    );
    let (status, answer, rows) = send_event(&event).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(rows, 6);
}

#[tokio::test]
async fn accepts_a_base64_body_from_an_http_api_event() {
    let body = fixture("unicode.json");
    let event = http_api_event(&base64(&body), true, signed_headers(&body));
    let (status, answer, rows) = send_event(&event).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn refuses_an_unsigned_http_api_event() {
    let body = fixture("unicode.json");
    let event = http_api_event(
        std::str::from_utf8(&body).unwrap(),
        false,
        json!({"content-type": "application/json"}),
    );
    let (status, answer, rows) = send_event(&event).await;
    assert_eq!(
        (status, answer["error"].as_str().unwrap()),
        (401, "invalid_signature")
    );
    assert_eq!(rows, 0);
}
