//! Measures what Firehose bills per event, packed vs one row per record, on realistic rows:
//! the fixture webhook with one event of each of the six collections, repeated to 1,000
//! events with distinct ids, through the real verify → decode → map → flatten path.
//!
//! `cargo run --release -p klaviyo-source --example firehose_billing`

use chrono::Utc;
use source_core::firehose::packing::pack_rows;
use source_core::firehose::{BILLING_INCREMENT_BYTES, MAX_RECORD_BYTES, billed_bytes};

// The benchmark's body and path; this example uses only part of them.
#[allow(dead_code)]
#[path = "../benches/common/work.rs"]
mod work;
use work::{signed_body, verifier, webhook_rows};

const EVENTS: usize = 1000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let now = Utc::now();
    let body = signed_body(EVENTS, now);
    let verifier = verifier().ok_or("the benchmark key is not a valid write key")?;
    let rows = webhook_rows(&body, &verifier, now).ok_or("the body did not verify or decode")?;
    let bytes = &body.bytes;

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
