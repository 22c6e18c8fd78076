//! The hostile-input table: every bad request gets its documented status and JSON error
//! code, and nothing is written. One row per case, across all routes.

use axum::body::Body;
use axum::http::Request;
use source_core::klaviyo::signature::sign;

use crate::support::*;

struct Case {
    name: &'static str,
    request: Request<Body>,
    status: u16,
    code: &'static str,
}

fn webhook(body: Vec<u8>, headers: &[(&str, String)]) -> Request<Body> {
    let mut builder = Request::post("/webhooks/klaviyo");
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    builder.body(Body::from(body)).unwrap()
}

/// A correctly signed webhook request with `body`, whatever the body is.
fn signed(body: Vec<u8>) -> Request<Body> {
    signed_at(body, SIGNED_AT, CURRENT_KEY)
}

fn signed_at(body: Vec<u8>, timestamp: &str, key_text: &str) -> Request<Body> {
    let signature = sign(&key(key_text), &body, timestamp);
    webhook(
        body,
        &[
            ("content-type", "application/json".into()),
            ("klaviyo-webhook-id", WEBHOOK_ID.into()),
            ("klaviyo-timestamp", timestamp.into()),
            ("klaviyo-signature", signature),
        ],
    )
}

fn segment(path: &str, body: Vec<u8>, basic_user: Option<&str>) -> Request<Body> {
    let mut builder = Request::post(path).header("content-type", "application/json");
    if let Some(user) = basic_user {
        let token = base64(format!("{user}:").as_bytes());
        builder = builder.header("authorization", format!("Basic {token}"));
    }
    builder.body(Body::from(body)).unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn encoded(path: &str, encoding: &str, body: Vec<u8>) -> Request<Body> {
    let mut request = segment(path, body, Some(SEGMENT_KEY));
    request
        .headers_mut()
        .insert("content-encoding", encoding.parse().unwrap());
    request
}

fn envelope(data: &str) -> Vec<u8> {
    format!(r#"{{"data": {data}, "meta": {{"klaviyo_webhook_id": "{WEBHOOK_ID}"}}}}"#).into_bytes()
}

fn cases() -> Vec<Case> {
    let good = fixture("all_six_collections.json");
    let good_signature = sign(&key(CURRENT_KEY), &good, SIGNED_AT);
    let with_headers = |pairs: Vec<(&'static str, String)>| webhook(good.clone(), &pairs);
    let ok_headers = |skip: &str, replace: Option<(&'static str, String)>| {
        let mut pairs: Vec<(&'static str, String)> = vec![
            ("content-type", "application/json".into()),
            ("klaviyo-webhook-id", WEBHOOK_ID.into()),
            ("klaviyo-timestamp", SIGNED_AT.into()),
            ("klaviyo-signature", good_signature.clone()),
        ];
        pairs.retain(|(name, _)| *name != skip);
        if let Some((name, value)) = replace {
            pairs.retain(|(n, _)| *n != name);
            pairs.push((name, value));
        }
        pairs
    };
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let track = |body: &str| segment("/v1/track", body.as_bytes().to_vec(), Some(SEGMENT_KEY));
    vec![
        Case { name: "wrong signature", request: with_headers(ok_headers("", Some(("klaviyo-signature", "ab".repeat(32))))), status: 401, code: "invalid_signature" },
        Case { name: "missing signature", request: with_headers(ok_headers("klaviyo-signature", None)), status: 401, code: "invalid_signature" },
        Case { name: "signature not hex", request: with_headers(ok_headers("", Some(("klaviyo-signature", "zz-not-hex".into())))), status: 401, code: "invalid_signature" },
        Case { name: "missing timestamp header", request: with_headers(ok_headers("klaviyo-timestamp", None)), status: 401, code: "invalid_signature" },
        Case { name: "missing webhook id header", request: with_headers(ok_headers("klaviyo-webhook-id", None)), status: 401, code: "invalid_signature" },
        Case { name: "key rotated out", request: signed_at(good.clone(), SIGNED_AT, "rotated-out-key-00000"), status: 401, code: "invalid_signature" },
        Case { name: "stale timestamp", request: signed_at(good.clone(), "Thu, 04 Jan 2024 17:00:00 GMT", CURRENT_KEY), status: 401, code: "stale_timestamp" },
        Case { name: "future timestamp", request: signed_at(good.clone(), "Thu, 04 Jan 2024 19:00:00 GMT", CURRENT_KEY), status: 401, code: "stale_timestamp" },
        Case { name: "malformed timestamp header", request: signed_at(good.clone(), "4 January", CURRENT_KEY), status: 400, code: "malformed_timestamp" },
        Case { name: "webhook id mismatch", request: with_headers(ok_headers("", Some(("klaviyo-webhook-id", "other".into())))), status: 401, code: "webhook_id_mismatch" },
        Case { name: "tampered body", request: webhook(String::from_utf8(good.clone()).unwrap().replace("January", "February").into_bytes(), &ok_headers("", None)), status: 401, code: "invalid_signature" },
        Case { name: "webhook id not text", request: signed(br#"{"data": [], "meta": {"klaviyo_webhook_id": true}}"#.to_vec()), status: 400, code: "invalid_shape" },
        Case { name: "malformed JSON", request: signed(b"{data: []}".to_vec()), status: 400, code: "malformed_json" },
        Case { name: "truncated JSON", request: signed(good[..good.len() / 2].to_vec()), status: 400, code: "malformed_json" },
        Case { name: "empty body", request: signed(Vec::new()), status: 400, code: "malformed_json" },
        Case { name: "invalid UTF-8", request: signed(b"{\"data\": [\"\xff\xfe\"], \"meta\": {}}".to_vec()), status: 400, code: "malformed_json" },
        Case { name: "deep nesting", request: signed(envelope(&deep)), status: 400, code: "malformed_json" },
        Case { name: "segment: truncated number", request: track(r#"{"event": "E", "userId": "u", "properties": {"n": 1e}}"#), status: 400, code: "malformed_json" },
        Case { name: "data is not an array", request: signed(envelope("{}")), status: 400, code: "invalid_shape" },
        Case { name: "meta missing", request: signed(br#"{"data": []}"#.to_vec()), status: 400, code: "invalid_shape" },
        Case { name: "body is an array", request: signed(b"[]".to_vec()), status: 400, code: "invalid_shape" },
        Case { name: "duplicate keys", request: signed(format!(r#"{{"data": [], "data": [], "meta": {{"klaviyo_webhook_id": "{WEBHOOK_ID}"}}}}"#).into_bytes()), status: 400, code: "invalid_shape" },
        Case { name: "wrong content type", request: with_headers(ok_headers("", Some(("content-type", "text/plain".into())))), status: 415, code: "unsupported_media_type" },
        Case { name: "no content type", request: with_headers(ok_headers("content-type", None)), status: 415, code: "unsupported_media_type" },
        Case { name: "oversize body", request: signed(envelope(&format!("[\"{}\"]", "x".repeat(5 * 1024 * 1024)))), status: 413, code: "payload_too_large" },
        Case { name: "wrong method", request: Request::put("/webhooks/klaviyo").body(Body::from(good.clone())).unwrap(), status: 405, code: "method_not_allowed" },
        Case { name: "unknown route", request: Request::post("/webhooks/klaviyo/extra").body(Body::empty()).unwrap(), status: 404, code: "not_found" },
        Case { name: "segment: no write key", request: segment("/v1/track", br#"{"event": "E", "userId": "u"}"#.to_vec(), None), status: 401, code: "invalid_write_key" },
        Case { name: "segment: wrong write key", request: segment("/v1/batch", br#"{"batch": []}"#.to_vec(), Some("wrong-key-0000000000")), status: 401, code: "invalid_write_key" },
        Case { name: "segment: oversize event", request: track(&format!(r#"{{"event": "E", "userId": "u", "properties": {{"p": "{}"}}}}"#, "x".repeat(40_000))), status: 413, code: "payload_too_large" },
        Case { name: "segment: too many events", request: segment("/v1/batch", format!(r#"{{"batch": [{}]}}"#, vec!["{}"; 2501].join(",")).into_bytes(), Some(SEGMENT_KEY)), status: 413, code: "too_many_events" },
        Case { name: "segment: malformed JSON", request: track("{\"event\": "), status: 400, code: "malformed_json" },
        Case { name: "segment: batch is not an array", request: segment("/v1/batch", br#"{"batch": 5}"#.to_vec(), Some(SEGMENT_KEY)), status: 400, code: "invalid_shape" },
        Case { name: "segment: no event name", request: track(r#"{"userId": "u"}"#), status: 400, code: "invalid_events" },
        Case { name: "segment: no identity", request: track(r#"{"event": "E"}"#), status: 400, code: "invalid_events" },
        Case { name: "segment: identify on /v1/track", request: track(r#"{"type": "identify", "userId": "u"}"#), status: 400, code: "invalid_events" },
        Case { name: "segment: identify endpoint", request: segment("/v1/identify", br#"{"userId": "u"}"#.to_vec(), Some(SEGMENT_KEY)), status: 400, code: "unsupported_type" },
        Case { name: "segment: wrong content type", request: Request::post("/v1/track").header("content-type", "text/plain").body(Body::from("{}")).unwrap(), status: 415, code: "unsupported_media_type" },
        Case { name: "segment: gzip bomb", request: encoded("/v1/batch", "gzip", gzip(&[b' '; 8 * 1024 * 1024])), status: 413, code: "payload_too_large" },
        Case { name: "segment: not gzip though declared", request: encoded("/v1/batch", "gzip", b"{}".to_vec()), status: 400, code: "malformed_gzip" },
        Case { name: "segment: brotli", request: encoded("/v1/batch", "br", b"{}".to_vec()), status: 415, code: "unsupported_content_encoding" },
        Case { name: "webhook: gzip bomb", request: { let mut r = encoded("/webhooks/klaviyo", "gzip", gzip(&[b' '; 8 * 1024 * 1024])); r.headers_mut().insert("klaviyo-timestamp", SIGNED_AT.parse().unwrap()); r }, status: 413, code: "payload_too_large" },
        Case { name: "non-ASCII timestamp header", request: { let mut r = with_headers(ok_headers("", None)); r.headers_mut().insert("klaviyo-timestamp", axum::http::HeaderValue::from_bytes("Thu, 04 Jan 2024 18:05:25 GMT\u{e9}".as_bytes()).unwrap()); r }, status: 400, code: "malformed_timestamp" },
        Case { name: "path not UTF-8", request: segment("/v1/%FF%FE", b"{}".to_vec(), Some(SEGMENT_KEY)), status: 400, code: "invalid_path" },
    ]
}

#[tokio::test]
async fn every_bad_input_gets_its_documented_answer_and_writes_nothing() {
    let cases = cases();
    assert_eq!(cases.len(), 44);
    let mut failures = Vec::new();
    for case in cases {
        let (app, sink) = memory_app();
        let (status, body, _) = send(&app, case.request).await;
        let code = body["error"].as_str().unwrap_or_default().to_owned();
        let has_message = body["message"].as_str().is_some_and(|m| !m.is_empty())
            && body["code"] == body["error"];
        if (status, code.as_str()) != (case.status, case.code)
            || !has_message
            || !sink.rows().is_empty()
        {
            failures.push(format!(
                "{}: got {status} {code} (message: {has_message}, rows: {})",
                case.name,
                sink.rows().len()
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test]
async fn huge_numbers_are_stored_exactly_as_sent() {
    let (app, sink) = memory_app();
    let body = envelope(
        r#"[{"topic": "event:klaviyo.opened_email", "payload": {"data": {"id": 123456789012345678901234567890, "attributes": {"datetime": "2024-01-04T18:05:01+00:00", "event_properties": {"n": 1e999999, "big": 123456789012345678901234567890}}, "relationships": {"profile": {"data": {"id": "P"}}}}}}]"#,
    );
    let (status, answer, _) = send(&app, signed(body)).await;
    assert_eq!(
        (status, answer["accepted"].as_u64()),
        (200, Some(1)),
        "{answer}"
    );
    let rows = sink.rows();
    let line = String::from_utf8(rows[0].json().to_vec()).unwrap();
    // The value exactly (serde_json spells the exponent with its sign).
    assert!(line.contains(r#""klaviyo_n":1e+999999"#), "{line}");
    assert!(
        line.contains(r#""klaviyo_big":123456789012345678901234567890"#),
        "{line}"
    );
    assert_eq!(rows[0].id(), "klaviyo-123456789012345678901234567890");
    // A Segment call keeps them too.
    let (status, _, _) = send(
        &app,
        segment(
            "/v1/track",
            br#"{"event": "E", "userId": "u", "properties": {"big": 123456789012345678901234567891}}"#.to_vec(),
            Some(SEGMENT_KEY),
        ),
    )
    .await;
    assert_eq!(status, 200);
    let line = String::from_utf8(sink.rows()[1].json().to_vec()).unwrap();
    assert!(
        line.contains(r#""big":123456789012345678901234567891"#),
        "{line}"
    );
}
