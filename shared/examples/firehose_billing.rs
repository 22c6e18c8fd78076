//! Measures what Firehose bills per event, packed vs one row per record, on realistic rows:
//! the fixture webhook with one event of each of the six collections, repeated to 1,000
//! events with distinct ids, through the real verify → decode → map → flatten path.
//!
//! `cargo run --release -p klaviyo-source --example firehose_billing`

use chrono::Utc;
use klaviyo_source::firehose::packing::pack_rows;
use klaviyo_source::firehose::{BILLING_INCREMENT_BYTES, MAX_RECORD_BYTES, billed_bytes};
use klaviyo_source::klaviyo::signature::{SignatureHeaders, SignatureVerifier, sign};
use klaviyo_source::klaviyo::webhook::decode_webhook;
use klaviyo_source::mapping::{Receipt, map_webhook};
use klaviyo_source::secret::WriteKey;
use klaviyo_source::warehouse::request_rows::request_rows;
use serde_json::Value;

const EVENTS: usize = 1000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/webhooks/all_six_collections.json"
    );
    let mut body: Value = serde_json::from_str(&std::fs::read_to_string(fixture)?)?;
    let events: Vec<Value> = body["data"]
        .as_array()
        .ok_or("fixture has no data")?
        .clone();
    body["data"] = Value::Array(
        (0..EVENTS)
            .map(|i| {
                let mut event = events[i % events.len()].clone();
                event["payload"]["data"]["id"] = Value::String(format!("bill{i:06}"));
                event
            })
            .collect(),
    );
    let bytes = serde_json::to_vec(&body)?;
    let key = WriteKey::new("billing-measure-key-01")?;
    let now = Utc::now();
    let timestamp = now.timestamp().to_string();
    let signature = sign(&key, &bytes, &timestamp);
    let webhook_id = body["meta"]["klaviyo_webhook_id"]
        .as_str()
        .ok_or("no webhook id")?;
    let verifier = SignatureVerifier::new(vec![key], std::time::Duration::from_secs(300))?;
    let headers = SignatureHeaders {
        signature: Some(&signature),
        timestamp: Some(&timestamp),
        webhook_id: Some(webhook_id),
    };
    let authenticated = verifier.verify(headers, &bytes, now)?;
    let webhook = decode_webhook(&authenticated)?;
    let receipt = Receipt {
        signed_at: now,
        received_at: now,
    };
    let (rows, _) = request_rows(
        map_webhook(webhook, receipt),
        &std::collections::HashMap::new(),
        false,
        now,
    );

    println!(
        "events: {}, webhook body: {} bytes",
        rows.len(),
        bytes.len()
    );
    for (label, budget) in [
        ("one row per record", 0),
        ("packed (1,000 KiB records)", MAX_RECORD_BYTES),
    ] {
        let packing = pack_rows(&rows, budget);
        let sizes: Vec<usize> = packing.records.iter().map(|r| r.data.len()).collect();
        let raw: usize = sizes.iter().sum();
        let billed = billed_bytes(sizes.iter().copied());
        println!(
            "{label:<28} records: {:>5}  row bytes/event: {:>6.0}  billed bytes/event: {:>7.0}  (billing step {} B)",
            sizes.len(),
            raw as f64 / rows.len() as f64,
            billed as f64 / rows.len() as f64,
            BILLING_INCREMENT_BYTES
        );
    }
    Ok(())
}
