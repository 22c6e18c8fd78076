//! Fixture webhooks through the real router into memory and lake sinks.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use flate2::read::GzDecoder;
use serde_json::{Value, json};
use source_core::warehouse::row::WarehouseRow;
use source_io::config::LARGEST_MAX_BODY_BYTES;
use source_io::sink::local_lake::LocalLakeSink;
use std::io::Read;

use crate::support::*;

const ALL_FIXTURES: [&str; 8] = [
    "all_six_collections.json",
    "datetime_variants.json",
    "missing_account_id.json",
    "topic_variants.json",
    "unknown_topics.json",
    "unicode.json",
    "one_broken_event.json",
    "empty_batch.json",
];

async fn deliver_fixture(name: &str) -> (Value, Vec<WarehouseRow>) {
    let (app, sink) = memory_app();
    let (status, body, _) = send(&app, signed_request(&fixture(name), CURRENT_KEY)).await;
    assert_eq!(status, 200, "{name}: {body}");
    (body, sink.rows())
}

fn by_id(rows: &[WarehouseRow]) -> BTreeMap<String, &WarehouseRow> {
    rows.iter().map(|r| (r.id().to_owned(), r)).collect()
}

#[tokio::test]
async fn every_fixture_event_becomes_exactly_one_row() {
    for name in ALL_FIXTURES {
        let sent = fixture_json(name)["data"].as_array().unwrap().len();
        let (body, rows) = deliver_fixture(name).await;
        let accepted = body["accepted"].as_u64().unwrap() as usize;
        let rejected = body["rejected"].as_u64().unwrap() as usize;
        assert_eq!(accepted + rejected, sent, "{name}: {body}");
        assert_eq!(rows.len(), sent, "{name}");
        let ids: BTreeSet<&str> = rows.iter().map(|r| r.id()).collect();
        assert_eq!(ids.len(), sent, "{name}: ids must be distinct");
    }
}

#[tokio::test]
async fn maps_the_six_email_collections_with_segment_columns() {
    let (body, rows) = deliver_fixture("all_six_collections.json").await;
    assert_eq!(
        body,
        json!({"accepted": 6, "rejected": 0, "rejections": []})
    );
    let expected = [
        ("klaviyo-4vHPBsUkFKs", "email_delivered", "Email Delivered"),
        ("klaviyo-4vHPBwQmZ2a", "email_opened", "Email Opened"),
        (
            "klaviyo-4vHPC2kR8tB",
            "email_link_clicked",
            "Email Link Clicked",
        ),
        (
            "klaviyo-4vHPC7nL3xC",
            "email_unsubscribed",
            "Email Unsubscribed",
        ),
        ("klaviyo-4vHPCbV9mqD", "email_bounced", "Email Bounced"),
        (
            "klaviyo-4vHPCf4TzwE",
            "email_marked_as_spam",
            "Email Marked as Spam",
        ),
    ];
    let rows = by_id(&rows);
    for (id, slug, name) in expected {
        let row = rows[id];
        let c = row.columns().unwrap();
        assert_eq!(row.partition.collection, slug);
        assert_eq!(row.partition.dt, "2024-01-04");
        assert_eq!(c["event"], slug);
        assert_eq!(c["event_text"], name);
        assert_eq!(c["user_id"], Value::Null, "userId is never invented");
        assert_eq!(c["anonymous_id"], "01GDDKASAP8TKDDA2GRZDSVP4H");
        assert_eq!(
            c["context_klaviyo_profile_id"],
            "01GDDKASAP8TKDDA2GRZDSVP4H"
        );
        assert_eq!(c["context_klaviyo_identity_resolved"], false);
        assert_eq!(c["context_integration_name"], "klaviyo");
        assert_eq!(c["context_integration_version"], "2024-07-15");
        assert_eq!(c["context_klaviyo_account_id"], "AbC123");
        assert_eq!(c["context_klaviyo_webhook_id"], WEBHOOK_ID);
        assert_eq!(c["email_id"], "01HK8ZQ6N7B1R2S3T4V5W6X7Y8");
        assert_eq!(c["campaign_id"], "01HK8ZQ6N7B1R2S3T4V5W6X7Y8");
        assert_eq!(c["email_subject"], "Your January picks");
        assert_eq!(c["campaign_name"], "January Newsletter");
        assert_eq!(c["sent_at"], "2024-01-04T18:05:25.000Z");
        assert_eq!(c["received_at"], "2024-01-04T18:05:30.000Z");
        assert_eq!(c["timestamp"], c["original_timestamp"]);
        assert_eq!(
            c["klaviyo_group_ids"], "[\"XyZ12a\"]",
            "arrays are JSON text"
        );
    }
    assert_eq!(
        rows["klaviyo-4vHPBsUkFKs"].columns().unwrap()["timestamp"],
        "2024-01-04T18:05:01.000Z"
    );
    let click = rows["klaviyo-4vHPC2kR8tB"].columns().unwrap();
    assert_eq!(
        click["link_url"],
        "https://shop.example.com/january?utm_source=klaviyo"
    );
    assert_eq!(
        click["klaviyo_attribution_message"],
        "01HK8ZQ6N7B1R2S3T4V5W6X7Y8"
    );
    let unsubscribe = rows["klaviyo-4vHPC7nL3xC"].columns().unwrap();
    assert_eq!(unsubscribe["list_name"], "Newsletter");
    assert_eq!(unsubscribe["list_id"], "XyZ12a");
    assert_eq!(
        rows["klaviyo-4vHPCbV9mqD"].columns().unwrap()["klaviyo_bounce_type"],
        "hard"
    );
    assert_eq!(
        rows["klaviyo-4vHPBwQmZ2a"].columns().unwrap()["klaviyo_machine_open"],
        false
    );
}

/// Where each fixture's expected rows are kept: one JSON row per line, in the order the
/// router delivers them.
fn golden_path(name: &str) -> std::path::PathBuf {
    fixtures_dir()
        .join("expected")
        .join(name.replace(".json", ".ndjson"))
}

/// Every fixture's rows are exactly its golden rows, byte for byte: every column's name
/// (the `_2`, `_3` rule included), value and order. `UPDATE_GOLDEN_ROWS=1` rewrites the
/// files instead, for a change that means to alter rows (review the diff).
#[tokio::test]
async fn every_fixture_gives_exactly_its_golden_rows() {
    let update = std::env::var_os("UPDATE_GOLDEN_ROWS").is_some();
    for name in ALL_FIXTURES {
        let (_, rows) = deliver_fixture(name).await;
        let mut written = String::new();
        for row in &rows {
            written.push_str(std::str::from_utf8(row.json()).unwrap());
            written.push('\n');
        }
        let path = golden_path(name);
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &written).unwrap();
            continue;
        }
        let golden = std::fs::read_to_string(&path)
            .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        assert_eq!(golden.lines().count(), rows.len(), "{name}");
        for (line, (expected, got)) in golden.lines().zip(written.lines()).enumerate() {
            assert_eq!(got, expected, "{name}, row {}", line + 1);
        }
    }
}

#[tokio::test]
async fn reads_every_datetime_variant_as_utc() {
    let (_, rows) = deliver_fixture("datetime_variants.json").await;
    let rows = by_id(&rows);
    let space = &rows["klaviyo-5aSpaceDt01"];
    assert_eq!(
        space.columns().unwrap()["timestamp"],
        "2023-08-10T07:21:56.000Z"
    );
    assert_eq!(space.partition.dt, "2023-08-10");
    assert_eq!(
        rows["klaviyo-5aOnlyTs002"].columns().unwrap()["timestamp"],
        "2023-08-10T07:23:20.000Z"
    );
    let offset = &rows["klaviyo-5aOffsetDt3"];
    assert_eq!(
        offset.columns().unwrap()["timestamp"],
        "2023-08-11T01:30:00.000Z"
    );
    assert_eq!(
        offset.partition.dt, "2023-08-11",
        "the partition is the UTC date"
    );
    assert_eq!(
        space.columns().unwrap()["sent_at"],
        "2023-08-10T07:22:01.123Z",
        "microseconds are cut to millis"
    );
}

#[tokio::test]
async fn tolerates_a_missing_account_id() {
    let (_, rows) = deliver_fixture("missing_account_id.json").await;
    assert!(
        !rows[0]
            .columns()
            .unwrap()
            .contains_key("context_klaviyo_account_id")
    );
    assert_eq!(rows[0].columns().unwrap()["event"], "email_bounced");
    assert_eq!(
        rows[0].columns().unwrap()["sent_at"],
        "2024-01-04T18:05:25.654Z"
    );
}

#[tokio::test]
async fn normalises_topic_variants() {
    let (_, rows) = deliver_fixture("topic_variants.json").await;
    let slugs: Vec<&str> = rows
        .iter()
        .map(|r| r.partition.collection.as_str())
        .collect();
    assert_eq!(
        slugs,
        [
            "email_delivered",
            "email_delivered",
            "email_unsubscribed",
            "email_opened",
            "email_link_clicked"
        ]
    );
}

#[tokio::test]
async fn stores_other_topics_in_collections_named_after_them() {
    let (body, rows) = deliver_fixture("unknown_topics.json").await;
    assert_eq!(body["accepted"], 4);
    let columns: Vec<_> = rows.iter().map(|r| r.columns().unwrap()).collect();
    let names: Vec<(&str, &str)> = rows
        .iter()
        .zip(&columns)
        .map(|(r, c)| {
            (
                r.partition.collection.as_str(),
                c["event_text"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("dropped_email", "Dropped Email"),
            (
                "subscribed_to_email_marketing",
                "Subscribed to Email Marketing"
            ),
            ("received_sms", "Received Sms"),
            ("email_opened", "Email Opened"),
        ]
    );
    assert_eq!(
        rows[0].columns().unwrap()["klaviyo_drop_reason"],
        "Previously bounced"
    );
    assert_eq!(rows[2].columns().unwrap()["klaviyo_carrier"], "T-Mobile");
}

#[tokio::test]
async fn keeps_unicode_text_and_keys() {
    let (_, rows) = deliver_fixture("unicode.json").await;
    let c = rows[0].columns().unwrap();
    assert_eq!(
        c["email_subject"],
        "Ihre Bestellung ist unterwegs 🚚 — 注文"
    );
    assert_eq!(c["campaign_name"], "Été ☀️ Sale");
    assert_eq!(c["klaviyo_größe"], "XL");
    assert_eq!(c["klaviyo_emoji_key"], "yes");
}

#[tokio::test]
async fn stores_broken_events_as_rejected_and_the_rest_normally() {
    let (body, rows) = deliver_fixture("one_broken_event.json").await;
    assert_eq!(body["accepted"], 2);
    assert_eq!(body["rejected"], 2);
    let rejections = body["rejections"].as_array().unwrap();
    assert_eq!(rejections[0]["index"], 1);
    assert!(
        rejections[0]["reason"].as_str().unwrap().contains("topic"),
        "{body}"
    );
    assert_eq!(rejections[1]["index"], 2);
    assert!(
        rejections[1]["reason"]
            .as_str()
            .unwrap()
            .contains("datetime"),
        "{body}"
    );
    let rejected: Vec<&WarehouseRow> = rows
        .iter()
        .filter(|r| r.partition.collection == "rejected_events")
        .collect();
    assert_eq!(rejected.len(), 2);
    let raw: Value = serde_json::from_str(
        rejected[0].columns().unwrap()["raw_event"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(raw["payload"]["data"]["id"], "brokenNoTopic");
    assert_eq!(
        rejected[0].partition.dt, "2024-01-04",
        "rejected rows are dated by receipt"
    );
}

#[tokio::test]
async fn a_replayed_request_yields_the_same_ids() {
    let (app, sink) = memory_app();
    for _ in 0..2 {
        let (status, _, _) = send(
            &app,
            signed_request(&fixture("one_broken_event.json"), CURRENT_KEY),
        )
        .await;
        assert_eq!(status, 200);
    }
    let rows = sink.rows();
    assert_eq!(rows.len(), 8);
    let ids: BTreeSet<&str> = rows.iter().map(|r| r.id()).collect();
    assert_eq!(ids.len(), 4);
}

#[tokio::test]
async fn accepts_the_previous_key_during_rotation() {
    let (app, sink) = memory_app();
    let (status, _, _) = send(&app, signed_request(&fixture("unicode.json"), PREVIOUS_KEY)).await;
    assert_eq!(status, 200);
    assert_eq!(sink.rows().len(), 1);
}

#[tokio::test]
async fn accepts_a_large_batch() {
    let mut body = fixture_json("all_six_collections.json");
    let template = body["data"].as_array().unwrap().clone();
    let events: Vec<Value> = (0..1000)
        .map(|i| {
            let mut event = template[i % template.len()].clone();
            event["payload"]["data"]["id"] = json!(format!("large{i:05}"));
            event
        })
        .collect();
    body["data"] = Value::Array(events);
    let bytes = serde_json::to_vec(&body).unwrap();
    let (app, sink) = memory_app();
    let (status, answer, _) = send(&app, signed_request(&bytes, CURRENT_KEY)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 1000);
    let rows = sink.rows();
    let per_collection = rows.iter().fold(BTreeMap::new(), |mut counts, r| {
        *counts.entry(r.partition.collection.clone()).or_insert(0) += 1;
        counts
    });
    assert_eq!(per_collection.values().sum::<i32>(), 1000);
    assert_eq!(per_collection.len(), 6);
}

#[tokio::test]
async fn lands_rows_in_the_lake_partitions_and_a_replay_adds_no_object() {
    let lake_dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(LocalLakeSink::new(lake_dir.path(), "klaviyo"));
    let app = app_with(sink, LARGEST_MAX_BODY_BYTES);
    let body = fixture("all_six_collections.json");
    for _ in 0..2 {
        let (status, answer, _) = send(&app, signed_request(&body, CURRENT_KEY)).await;
        assert_eq!(status, 200, "{answer}");
    }
    let schema = lake_dir.path().join("klaviyo");
    let mut found = Vec::new();
    for collection in std::fs::read_dir(&schema).unwrap() {
        let collection = collection.unwrap().path();
        for day in std::fs::read_dir(&collection).unwrap() {
            for object in std::fs::read_dir(day.unwrap().path()).unwrap() {
                let path = object.unwrap().path();
                let mut text = String::new();
                GzDecoder::new(std::fs::File::open(&path).unwrap())
                    .read_to_string(&mut text)
                    .unwrap();
                let relative = path
                    .strip_prefix(&schema)
                    .unwrap()
                    .parent()
                    .unwrap()
                    .display()
                    .to_string();
                found.push((relative, text.lines().count()));
            }
        }
    }
    found.sort();
    let expected: Vec<(String, usize)> = [
        "email_bounced",
        "email_delivered",
        "email_link_clicked",
        "email_marked_as_spam",
        "email_opened",
        "email_unsubscribed",
    ]
    .iter()
    .map(|slug| (format!("collection={slug}/dt=2024-01-04"), 1))
    .collect();
    assert_eq!(found, expected);
}
