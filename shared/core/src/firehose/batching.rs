//! Chunking records into `PutRecordBatch` calls within the API's limits.

use std::ops::Range;

use super::{MAX_BATCH_BYTES, MAX_RECORDS_PER_BATCH};

/// Splits records (given by their sizes) into consecutive ranges, each at most
/// [`MAX_RECORDS_PER_BATCH`] records and [`MAX_BATCH_BYTES`] bytes. Every record must be at
/// most `MAX_RECORD_BYTES`, which packing guarantees.
pub fn batch_ranges(record_sizes: &[usize]) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (index, &size) in record_sizes.iter().enumerate() {
        let full = index - start == MAX_RECORDS_PER_BATCH || bytes + size > MAX_BATCH_BYTES;
        if full && index > start {
            ranges.push(start..index);
            start = index;
            bytes = 0;
        }
        bytes += size;
    }
    if start < record_sizes.len() {
        ranges.push(start..record_sizes.len());
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firehose::MAX_RECORD_BYTES;

    fn check(sizes: &[usize]) -> Vec<Range<usize>> {
        let ranges = batch_ranges(sizes);
        let mut next = 0;
        for range in &ranges {
            assert_eq!(range.start, next, "ranges are consecutive");
            assert!(!range.is_empty());
            assert!(range.len() <= MAX_RECORDS_PER_BATCH);
            assert!(sizes[range.clone()].iter().sum::<usize>() <= MAX_BATCH_BYTES);
            next = range.end;
        }
        assert_eq!(next, sizes.len(), "nothing dropped");
        ranges
    }

    #[test]
    fn splits_by_record_count() {
        assert_eq!(check(&vec![10; 1201]), vec![0..500, 500..1000, 1000..1201]);
    }

    #[test]
    fn splits_by_bytes() {
        let ranges = check(&[MAX_RECORD_BYTES; 9]);
        assert_eq!(ranges, vec![0..4, 4..8, 8..9]);
    }

    #[test]
    fn holds_for_many_mixed_sizes() {
        let mut state = 12345u64;
        for _ in 0..200 {
            let sizes: Vec<usize> = (0..(state % 1500) as usize)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (state >> 33) as usize % MAX_RECORD_BYTES + 1
                })
                .collect();
            check(&sizes);
        }
    }

    #[test]
    fn no_records_no_batches() {
        assert!(batch_ranges(&[]).is_empty());
    }
}
