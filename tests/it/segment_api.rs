//! Segment's HTTP Tracking API routes through the real router: every auth form, the
//! limits, per-event outcomes, and what is stored.

use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};

use crate::support::*;

fn post(path: &str, body: &Value, authorization: Option<String>) -> Request<Body> {
    let mut builder = Request::post(path).header("content-type", "application/json");
    if let Some(value) = authorization {
        builder = builder.header("authorization", value);
    }
    builder.body(Body::from(body.to_string())).unwrap()
}

fn basic(user_and_password: &str) -> Option<String> {
    Some(format!("Basic {}", base64(user_and_password.as_bytes())))
}

fn track(event: &str, user: &str) -> Value {
    json!({"event": event, "userId": user, "properties": {"email_subject": "Hi"},
           "originalTimestamp": "2024-01-04T18:05:00Z"})
}

#[tokio::test]
async fn accepts_every_authentication_form() {
    let cases = [
        (
            track("Email Opened", "u1"),
            basic(&format!("{SEGMENT_KEY}:")),
        ),
        (track("Email Opened", "u2"), basic(SEGMENT_KEY)),
        (
            track("Email Opened", "u3"),
            basic(&format!("{SEGMENT_PREVIOUS_KEY}:")),
        ),
        (
            {
                let mut body = track("Email Opened", "u4");
                body["writeKey"] = json!(SEGMENT_KEY);
                body
            },
            None,
        ),
    ];
    for (body, authorization) in cases {
        let (app, sink) = memory_app();
        let (status, answer, _) = send(&app, post("/v1/track", &body, authorization)).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            answer,
            json!({"success": true, "accepted": 1, "rejected": 0, "rejections": []})
        );
        let rows = sink.rows();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].partition.collection, "email_opened");
        assert!(
            !rows[0].columns().unwrap().contains_key("write_key"),
            "the write key is never stored"
        );
    }
}

#[tokio::test]
async fn refuses_wrong_or_missing_write_keys_and_stores_nothing() {
    let mut body_key = track("Email Opened", "u1");
    body_key["writeKey"] = json!("not-a-configured-key");
    // A wrong Basic key and no key at all are in the hostile-input table.
    for (body, authorization) in [
        (body_key, None),
        (
            track("Email Opened", "u1"),
            Some(format!("Bearer {SEGMENT_KEY}")),
        ),
        // The keys that sign Klaviyo webhooks are never Segment write keys.
        (
            track("Email Opened", "u1"),
            basic(&format!("{CURRENT_KEY}:")),
        ),
        (
            track("Email Opened", "u1"),
            basic(&format!("{PREVIOUS_KEY}:")),
        ),
    ] {
        let (app, sink) = memory_app();
        let (status, answer, _) = send(&app, post("/v1/track", &body, authorization)).await;
        assert_eq!(
            (status, answer["error"].as_str().unwrap()),
            (401, "invalid_write_key")
        );
        assert!(sink.rows().is_empty());
    }
}

#[tokio::test]
async fn a_batch_merges_context_and_reports_each_rejected_event() {
    let body = json!({
        "batch": [
            {"type": "track", "event": "Email Delivered", "userId": "u1", "messageId": "m-1"},
            {"type": "identify", "userId": "u1", "traits": {"email": "a@example.com"}},
            {"type": "track", "event": "Email Link Clicked", "anonymousId": "a@example.com",
             "properties": {"link_url": "https://x.example/"}, "context": {"ip": "5.6.7.8"}},
            {"type": "track", "event": "Email Bounced"}
        ],
        "context": {"library": {"name": "analytics-python", "version": "2.3.0"}, "ip": "1.2.3.4"},
        "sentAt": "2024-01-04T18:05:29Z"
    });
    let (app, sink) = memory_app();
    let (status, answer, _) = send(
        &app,
        post("/v1/batch", &body, basic(&format!("{SEGMENT_KEY}:"))),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (
            answer["success"].as_bool(),
            answer["accepted"].as_u64(),
            answer["rejected"].as_u64()
        ),
        (Some(false), Some(2), Some(2))
    );
    let indexes: Vec<u64> = answer["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, [1, 3]);
    let rows = sink.rows();
    let stored: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.partition.collection.as_str(), r.id()))
        .collect();
    assert_eq!(stored[0], ("email_delivered", "m-1"));
    assert_eq!(stored[2].0, "email_link_clicked");
    assert_eq!(
        rows[0].columns().unwrap()["context_library_name"],
        "analytics-python"
    );
    assert_eq!(rows[0].columns().unwrap()["context_ip"], "1.2.3.4");
    assert_eq!(
        rows[2].columns().unwrap()["context_ip"],
        "5.6.7.8",
        "the event's own context wins"
    );
    assert_eq!(rows[2].columns().unwrap()["link_url"], "https://x.example/");
    assert_eq!(rows[2].columns().unwrap()["anonymous_id"], "a@example.com");
    let rejected: Vec<String> = rows
        .iter()
        .filter(|r| r.partition.collection == "rejected_events")
        .map(|r| r.columns().unwrap()["source"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(rejected, ["segment_api", "segment_api"]);
}

#[tokio::test]
async fn a_call_with_no_valid_event_is_refused_whole() {
    let body = json!({"batch": [{"type": "page", "userId": "u"}, {"type": "track", "event": "E"}]});
    let (app, sink) = memory_app();
    let (status, answer, _) = send(&app, post("/v1/batch", &body, basic(SEGMENT_KEY))).await;
    assert_eq!(
        (status, answer["error"].as_str().unwrap()),
        (400, "invalid_events")
    );
    assert_eq!(answer["rejections"].as_array().unwrap().len(), 2);
    assert!(sink.rows().is_empty());
}

#[tokio::test]
async fn enforces_segment_limits() {
    // One oversized event and more than 2,500 events are in the hostile-input table.
    let (app, sink) = memory_app();
    let heavy: Vec<Value> = (0..20)
        .map(|i| {
            let mut e = track("Email Opened", &i.to_string());
            e["type"] = json!("track");
            e["properties"]["pad"] = json!("x".repeat(30 * 1024));
            e
        })
        .collect();
    let (status, answer, _) = send(
        &app,
        post("/v1/batch", &json!({"batch": heavy}), basic(SEGMENT_KEY)),
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str().unwrap()),
        (413, "payload_too_large")
    );
    assert!(sink.rows().is_empty());

    let mut one_too_big = vec![json!({"type": "track", "event": "E", "userId": "ok"})];
    let mut e = track("Email Opened", "big");
    e["type"] = json!("track");
    e["properties"]["pad"] = json!("x".repeat(33 * 1024));
    one_too_big.push(e);
    let (status, answer, _) = send(
        &app,
        post(
            "/v1/batch",
            &json!({"batch": one_too_big}),
            basic(SEGMENT_KEY),
        ),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer["rejections"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("at most 32768")
    );
}

#[tokio::test]
async fn other_call_types_get_a_clear_refusal() {
    for call in ["identify", "page", "screen", "group", "alias"] {
        let (app, _) = memory_app();
        let (status, answer, _) = send(
            &app,
            post(
                &format!("/v1/{call}"),
                &json!({"userId": "u"}),
                basic(SEGMENT_KEY),
            ),
        )
        .await;
        assert_eq!(
            (status, answer["error"].as_str().unwrap()),
            (400, "unsupported_type"),
            "{call}"
        );
        assert!(answer["message"].as_str().unwrap().contains(call));
    }
    let (app, _) = memory_app();
    let (status, _, _) = send(&app, post("/v1/nonsense", &json!({}), basic(SEGMENT_KEY))).await;
    assert_eq!(status, 404);
    let (status, answer, _) = send(
        &app,
        post("/v1/track", &json!({"batch": []}), basic(SEGMENT_KEY)),
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str().unwrap()),
        (400, "invalid_events")
    );
}

#[tokio::test]
async fn a_retried_call_without_message_id_keeps_its_id() {
    let (app, sink) = memory_app();
    for sent_at in ["2024-01-04T18:05:10Z", "2024-01-04T18:05:20Z"] {
        let mut body = track("Email Opened", "u1");
        body["sentAt"] = json!(sent_at);
        assert_eq!(
            send(&app, post("/v1/track", &body, basic(SEGMENT_KEY)))
                .await
                .0,
            200
        );
    }
    let rows = sink.rows();
    assert_eq!(rows[0].id(), rows[1].id());
    // received 18:05:30 - (sent 18:05:10 - original 18:05:00) = 18:05:20
    assert_eq!(
        rows[0].columns().unwrap()["timestamp"],
        "2024-01-04T18:05:20.000Z"
    );
}

#[tokio::test]
async fn gzip_bodies_and_the_import_path_are_accepted() {
    use std::io::Write;
    let mut events = [track("Email Opened", "u1"), track("Email Opened", "u2")];
    for event in &mut events {
        event["type"] = json!("track");
    }
    let body = json!({ "batch": events });
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(body.to_string().as_bytes()).unwrap();
    let compressed = encoder.finish().unwrap();
    let (app, sink) = memory_app();
    let mut request = post("/v1/batch", &json!({}), basic(&format!("{SEGMENT_KEY}:")));
    *request.body_mut() = Body::from(compressed);
    request
        .headers_mut()
        .insert("content-encoding", "gzip".parse().unwrap());
    let (status, answer, _) = send(&app, request).await;
    assert_eq!(
        (status, answer["accepted"].as_u64()),
        (200, Some(2)),
        "{answer}"
    );
    let (status, answer, _) = send(
        &app,
        post("/v1/import", &body, basic(&format!("{SEGMENT_KEY}:"))),
    )
    .await;
    assert_eq!(
        (status, answer["accepted"].as_u64()),
        (200, Some(2)),
        "{answer}"
    );
    assert_eq!(sink.rows().len(), 4);
}
