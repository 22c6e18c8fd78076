//! Mapping throughput against the practical limit.
//!
//! For realistic signed webhook bodies of 1, 100 and 1,000 events (all six collections),
//! the full request path (verify the signature, decode, map, flatten into warehouse rows,
//! pack into Firehose records) next to a baseline that only parses the same bytes into
//! `serde_json::Value` and serializes them back. `bench/report.py` turns criterion's
//! estimates into events/s per core and the ratio.
//!
//! `cargo bench -p klaviyo-source --bench pipeline`

use std::hint::black_box;
use std::time::Duration;

use chrono::{DateTime, Utc};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use klaviyo_source::firehose::MAX_RECORD_BYTES;
use klaviyo_source::firehose::packing::pack_rows;
use klaviyo_source::klaviyo::signature::{SignatureHeaders, SignatureVerifier, sign};
use klaviyo_source::klaviyo::webhook::decode_webhook;
use klaviyo_source::mapping::{Receipt, map_webhook};
use klaviyo_source::secret::WriteKey;
use klaviyo_source::warehouse::request_rows::request_rows;
use serde_json::Value;

const FIXTURE: &str = include_str!("../../tests/fixtures/webhooks/all_six_collections.json");
const KEY: &str = "benchmark-write-key-01";

struct SignedBody {
    bytes: Vec<u8>,
    timestamp: String,
    signature: String,
    webhook_id: String,
}

fn signed_body(events: usize, now: DateTime<Utc>) -> SignedBody {
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

fn no_lookups() -> std::collections::HashMap<String, klaviyo_source::identity::resolver::Resolution>
{
    std::collections::HashMap::new()
}

/// The whole request path up to the sink, through the same functions production calls
/// (verify, decode, map, `request_rows`, the Firehose sink's packing); answers the number
/// of Firehose records.
fn full_path(body: &SignedBody, verifier: &SignatureVerifier, now: DateTime<Utc>) -> usize {
    let headers = SignatureHeaders {
        signature: Some(&body.signature),
        timestamp: Some(&body.timestamp),
        webhook_id: Some(&body.webhook_id),
    };
    let Ok(authenticated) = verifier.verify(headers, &body.bytes, now) else {
        return 0;
    };
    let Ok(webhook) = decode_webhook(&authenticated) else {
        return 0;
    };
    let receipt = Receipt {
        signed_at: authenticated.signed_at(),
        received_at: now,
    };
    // The function the routes and the pull call (no profile lookup configured).
    let (rows, _) = request_rows(map_webhook(webhook, receipt), &no_lookups(), false, now);
    pack_rows(&rows, MAX_RECORD_BYTES).records.len()
}

/// The practical limit: parse the bytes into a JSON tree and write them back.
fn baseline(body: &SignedBody) -> usize {
    serde_json::from_slice::<Value>(&body.bytes)
        .ok()
        .and_then(|value| serde_json::to_vec(&value).ok())
        .map_or(0, |bytes| bytes.len())
}

fn pipeline(c: &mut Criterion) {
    let now = Utc::now();
    let verifier = match WriteKey::new(KEY)
        .map(|k| SignatureVerifier::new(vec![k], Duration::from_secs(300)))
    {
        Ok(Ok(verifier)) => verifier,
        _ => return,
    };
    let mut group = c.benchmark_group("pipeline");
    for events in [1usize, 100, 1000] {
        let body = signed_body(events, now);
        assert!(
            full_path(&body, &verifier, now) > 0,
            "the full path must succeed"
        );
        group.throughput(Throughput::Elements(events as u64));
        group.bench_with_input(BenchmarkId::new("full", events), &body, |b, body| {
            b.iter(|| black_box(full_path(black_box(body), &verifier, now)))
        });
        group.bench_with_input(BenchmarkId::new("baseline", events), &body, |b, body| {
            b.iter(|| black_box(baseline(black_box(body))))
        });
    }
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
