//! Any bytes as a Klaviyo webhook body, correctly signed so the fuzzer gets past the
//! signature into the decoder, the mapper, the row flattening and the Firehose packing.
#![no_main]

use std::time::Duration;

use chrono::{TimeZone, Utc};
use source_core::firehose::MAX_RECORD_BYTES;
use source_core::firehose::packing::pack_rows;
use source_core::klaviyo::signature::{SignatureHeaders, SignatureVerifier, sign};
use source_core::klaviyo::webhook_decode::decode_webhook;
use source_core::mapping::{Receipt, map_webhook};
use source_core::secret::WriteKey;
use source_core::warehouse::request_rows::request_rows;
use libfuzzer_sys::fuzz_target;

mod row_oracle;
use row_oracle::assert_written_as_serde_json_writes_it;

const TIMESTAMP: &str = "1704391525";

fuzz_target!(|body: &[u8]| {
    let Ok(key) = WriteKey::new("fuzz-write-key-000001") else { return };
    let signature = sign(&key, body, TIMESTAMP);
    let Ok(verifier) = SignatureVerifier::new(vec![key], Duration::from_secs(300)) else { return };
    let Some(now) = Utc.timestamp_opt(1_704_391_530, 0).single() else { return };
    // The webhook id header must match meta; take it from the body when there is one (read
    // as JSON, so pretty-printed fixtures get past the check into the mapper).
    let webhook_id = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|value| value.pointer("/meta/klaviyo_webhook_id")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| "wh".to_owned());
    let headers = SignatureHeaders { signature: Some(&signature), timestamp: Some(TIMESTAMP), webhook_id: Some(&webhook_id) };
    let Ok(authenticated) = verifier.verify(headers, body, now) else { return };
    // The one-pass envelope reader answers only as the exact reading would.
    source_core::klaviyo::webhook_one_pass::answers_as_the_exact_reading(body);
    let Ok(webhook) = decode_webhook(&authenticated) else { return };
    let receipt = Receipt { signed_at: now, received_at: now };
    let (rows, _) = request_rows(map_webhook(webhook, receipt), &Default::default(), false, now);
    for row in &rows {
        assert_written_as_serde_json_writes_it(row.json());
    }
    let packing = pack_rows(&rows, MAX_RECORD_BYTES);
    let packed = packing.records.iter().map(|record| record.rows.len()).sum::<usize>();
    assert_eq!(packed + packing.oversized.len(), rows.len(), "every row packed or set aside");
});

