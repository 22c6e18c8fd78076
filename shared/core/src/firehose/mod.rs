//! Amazon Data Firehose delivery: the documented limits, packing rows into records,
//! chunking records into calls, and resending only what failed.

pub mod batching;
pub mod packing;

/// Most records one `PutRecordBatch` call may carry.
/// <https://docs.aws.amazon.com/firehose/latest/APIReference/API_PutRecordBatch.html>
pub const MAX_RECORDS_PER_BATCH: usize = 500;

/// Most bytes (of record data) one `PutRecordBatch` call may carry: 4 MiB.
/// <https://docs.aws.amazon.com/firehose/latest/APIReference/API_PutRecordBatch.html>
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// Largest record Firehose accepts, before base64: 1,000 KiB.
/// <https://docs.aws.amazon.com/firehose/latest/dev/limits.html>
pub const MAX_RECORD_BYTES: usize = 1000 * 1024;

/// Most JSON objects the stream's `RecordDeAggregation` splits out of one record: "Record
/// deaggregation by JSON or by delimiter is capped at 500 per record." Objects past the cap
/// go to the error output (`DeAggregationRecordCountLimitExceeded`) while the call succeeds,
/// so a packed record must never carry more rows than this.
/// <https://docs.aws.amazon.com/firehose/latest/dev/dynamic-partitioning-multirecord-deaggergation.html>
pub const MAX_ROWS_PER_RECORD: usize = 500;

/// Firehose bills ingestion per record rounded up to the next 5 KB.
/// <https://aws.amazon.com/firehose/pricing/>
pub const BILLING_INCREMENT_BYTES: usize = 5 * 1024;

/// Bytes Firehose bills for records of these sizes.
pub fn billed_bytes(record_sizes: impl IntoIterator<Item = usize>) -> usize {
    record_sizes
        .into_iter()
        .map(|size| size.div_ceil(BILLING_INCREMENT_BYTES).max(1) * BILLING_INCREMENT_BYTES)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bills_each_record_in_whole_5_kb_steps() {
        assert_eq!(billed_bytes([1]), 5120);
        assert_eq!(billed_bytes([5120]), 5120);
        assert_eq!(billed_bytes([5121, 300]), 15360);
        assert_eq!(
            billed_bytes([0]),
            5120,
            "an empty record still costs one step"
        );
    }
}
