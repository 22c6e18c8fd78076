//! The work both the criterion benchmark (`benches/pipeline.rs`) and the instruction counter
//! (`examples/pipeline_count.rs`) measure: a realistic signed webhook body, the full request
//! path through the functions production calls, and the parse+serialize baseline.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use source_core::firehose::MAX_RECORD_BYTES;
use source_core::firehose::packing::pack_rows;
use source_core::klaviyo::signature::{SignatureHeaders, SignatureVerifier, sign};
use source_core::klaviyo::webhook_decode::decode_webhook;
use source_core::mapping::{Receipt, map_webhook};
use source_core::secret::WriteKey;
use source_core::warehouse::request_rows::request_rows;
use source_core::warehouse::row::WarehouseRow;

const FIXTURE: &str = include_str!("../../../../tests/fixtures/webhooks/all_six_collections.json");
const KEY: &str = "benchmark-write-key-01";

/// A webhook body and the headers Klaviyo would sign it with.
pub struct SignedBody {
    /// The body.
    pub bytes: Vec<u8>,
    timestamp: String,
    signature: String,
    webhook_id: String,
}

/// A body of `events` events cycling through the six collections, signed at `now`.
pub fn signed_body(events: usize, now: DateTime<Utc>) -> SignedBody {
    let mut body: Value = serde_json::from_str(FIXTURE).unwrap_or_default();
    let template = body["data"].as_array().cloned().unwrap_or_default();
    body["data"] = Value::Array(
        (0..events)
            .map(|i| {
                let mut event = template[i % template.len()].clone();
                event["payload"]["data"]["id"] = Value::String(format!("bench{i:06}"));
                event
            })
            .collect(),
    );
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let timestamp = now.timestamp().to_string();
    let key = WriteKey::new(KEY).unwrap_or_else(|_| unreachable_key());
    SignedBody {
        signature: sign(&key, &bytes, &timestamp),
        webhook_id: body["meta"]["klaviyo_webhook_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        bytes,
        timestamp,
    }
}

fn unreachable_key() -> WriteKey {
    // KEY is a valid constant; this only keeps the benchmark free of panics.
    WriteKey::from_random_bytes([7; 32])
}

fn no_lookups() -> std::collections::HashMap<String, source_core::identity::resolution::Resolution>
{
    std::collections::HashMap::new()
}

/// The rows of `body` through the same functions production calls (verify, decode, map,
/// `request_rows` with no profile lookup configured); `None` if it does not verify or decode.
pub fn webhook_rows(
    body: &SignedBody,
    verifier: &SignatureVerifier,
    now: DateTime<Utc>,
) -> Option<Vec<WarehouseRow>> {
    let headers = SignatureHeaders {
        signature: Some(&body.signature),
        timestamp: Some(&body.timestamp),
        webhook_id: Some(&body.webhook_id),
    };
    let authenticated = verifier.verify(headers, &body.bytes, now).ok()?;
    let webhook = decode_webhook(&authenticated).ok()?;
    let receipt = Receipt {
        signed_at: authenticated.signed_at(),
        received_at: now,
    };
    let (rows, _) = request_rows(map_webhook(webhook, receipt), &no_lookups(), false, now);
    Some(rows)
}

/// The whole request path up to the sink: [`webhook_rows`] and the Firehose sink's packing;
/// answers the number of Firehose records.
pub fn full_path(body: &SignedBody, verifier: &SignatureVerifier, now: DateTime<Utc>) -> usize {
    webhook_rows(body, verifier, now)
        .map_or(0, |rows| pack_rows(&rows, MAX_RECORD_BYTES).records.len())
}

/// The practical limit: parse the bytes into a JSON tree and write them back.
pub fn baseline(body: &SignedBody) -> usize {
    serde_json::from_slice::<Value>(&body.bytes)
        .ok()
        .and_then(|value| serde_json::to_vec(&value).ok())
        .map_or(0, |bytes| bytes.len())
}

/// The verifier of the benchmark's key, with Klaviyo's usual freshness window.
pub fn verifier() -> Option<SignatureVerifier> {
    let key = WriteKey::new(KEY).ok()?;
    SignatureVerifier::new(vec![key], Duration::from_secs(300)).ok()
}
