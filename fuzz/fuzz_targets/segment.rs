//! Any bytes as a Segment HTTP Tracking API body (`/v1/track` or `/v1/batch`, chosen by the
//! first byte), authenticated, mapped and flattened.
#![no_main]

use chrono::{TimeZone, Utc};
use source_core::mapping::segment_call::map_segment_call;
use source_core::secret::WriteKey;
use source_core::segment::write_keys::SegmentWriteKeys;
use source_core::segment::tracking_api::{CallKind, SegmentCall};
use source_core::warehouse::request_rows::request_rows;
use libfuzzer_sys::fuzz_target;

mod row_oracle;
use row_oracle::assert_written_as_serde_json_writes_it;

const KEY: &str = "fuzz-write-key-000001";

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let kind = if selector % 2 == 0 { CallKind::Track } else { CallKind::Batch };
    let Ok(key) = WriteKey::new(KEY) else { return };
    let keys = SegmentWriteKeys::new(vec![key]);
    let Some(now) = Utc.timestamp_opt(1_704_391_530, 0).single() else { return };
    let Ok(call) = SegmentCall::parse(body, kind) else { return };
    let Ok(call) = call.authenticate(Some(KEY), &keys) else { return };
    let (rows, _) = request_rows(map_segment_call(&call, now), &Default::default(), false, now);
    for row in &rows {
        assert_written_as_serde_json_writes_it(row.json());
    }
});
