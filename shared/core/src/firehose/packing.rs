//! Packing warehouse rows into Firehose records.
//!
//! Firehose bills every record rounded up to 5 KB, and a warehouse row is typically about
//! 1-2 KB, so one row per record pays for 5 KB. Instead, consecutive rows are packed into
//! one record as NDJSON, up to a size budget; the delivery stream's `RecordDeAggregation`
//! (type JSON) splits them again before partitioning, and `AppendDelimiterToRecord` writes
//! them back out one per line.

use super::{MAX_RECORD_BYTES, MAX_ROWS_PER_RECORD};
use crate::warehouse::ndjson::write_ndjson_line;
use crate::warehouse::row::WarehouseRow;

/// One Firehose record and the rows it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedRecord {
    /// NDJSON of the rows, in order.
    pub data: Vec<u8>,
    /// Indexes (into the packed slice) of the rows it carries.
    pub rows: Vec<usize>,
}

/// The result of packing: records to send, and rows too large for any record.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Packing {
    /// Records, each at most the budget.
    pub records: Vec<PackedRecord>,
    /// Indexes of rows whose single line exceeds [`MAX_RECORD_BYTES`]: Firehose would
    /// refuse them, so they go to the dead-letter store.
    pub oversized: Vec<usize>,
}

/// Packs `rows` in order into records of at most `budget` bytes (clamped to
/// [`MAX_RECORD_BYTES`]) and at most [`MAX_ROWS_PER_RECORD`] rows. `budget = 0` means one row
/// per record.
pub fn pack_rows(rows: &[WarehouseRow], budget: usize) -> Packing {
    let budget = budget.min(MAX_RECORD_BYTES);
    let mut packing = Packing::default();
    let mut current = PackedRecord {
        data: Vec::new(),
        rows: Vec::new(),
    };
    // The bytes of the lines not yet packed: a new record reserves what it can hold of them
    // at once, instead of doubling its way up to a megabyte.
    let mut unpacked: usize = rows.iter().map(|row| row.json().len() + 1).sum();
    for (index, row) in rows.iter().enumerate() {
        // The row's JSON and its line break.
        let line_len = row.json().len() + 1;
        unpacked -= line_len;
        if line_len > MAX_RECORD_BYTES {
            packing.oversized.push(index);
            continue;
        }
        let full =
            current.rows.len() == MAX_ROWS_PER_RECORD || current.data.len() + line_len > budget;
        if !current.rows.is_empty() && full {
            packing.records.push(std::mem::replace(
                &mut current,
                PackedRecord {
                    data: Vec::new(),
                    rows: Vec::new(),
                },
            ));
        }
        if current.data.is_empty() {
            current
                .data
                .reserve((line_len + unpacked).min(budget.max(line_len)));
        }
        write_ndjson_line(&mut current.data, row);
        current.rows.push(index);
    }
    if !current.rows.is_empty() {
        packing.records.push(current);
    }
    packing
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `{"event":"c","id":"<id>","pad":"x…","timestamp":"2024-01-01T00:00:00Z"}`: 66 bytes
    /// and the padding for a one-digit id.
    fn row(id: usize, padding: usize) -> WarehouseRow {
        let columns = json!({"id": id.to_string(), "pad": "x".repeat(padding),
                             "event": "c", "timestamp": "2024-01-01T00:00:00Z"});
        WarehouseRow::from_columns(columns.as_object().cloned().unwrap()).unwrap()
    }

    #[test]
    fn packs_rows_up_to_the_budget_in_order() {
        let rows: Vec<WarehouseRow> = (0..10).map(|i| row(i, 29)).collect();
        let packing = pack_rows(&rows, 400);
        let line = 66 + 29 + 1; // the row with 29 bytes of padding, and its line break
        assert!(rows.iter().all(|r| r.json().len() + 1 == line));
        assert!(packing.records.iter().all(|r| r.data.len() <= 400));
        // Four 96-byte lines fit in 400 bytes, five do not.
        let sizes: Vec<usize> = packing.records.iter().map(|r| r.rows.len()).collect();
        assert_eq!(sizes, vec![4, 4, 2]);
        let order: Vec<usize> = packing
            .records
            .iter()
            .flat_map(|r| r.rows.clone())
            .collect();
        assert_eq!(order, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn a_zero_budget_means_one_row_per_record() {
        let rows: Vec<WarehouseRow> = (0..3).map(|i| row(i, 10)).collect();
        let packing = pack_rows(&rows, 0);
        assert_eq!(packing.records.len(), 3);
        assert!(packing.records.iter().all(|r| r.rows.len() == 1));
    }

    #[test]
    fn sets_aside_rows_larger_than_any_record() {
        let rows = vec![row(0, 10), row(1, MAX_RECORD_BYTES), row(2, 10)];
        let packing = pack_rows(&rows, MAX_RECORD_BYTES);
        assert_eq!(packing.oversized, vec![1]);
        assert_eq!(packing.records.len(), 1);
        assert_eq!(packing.records[0].rows, vec![0, 2]);
    }

    #[test]
    fn never_packs_more_rows_than_deaggregation_splits() {
        // Small rows: 2,500 of them fit in far less than 1,000 KiB, so only the row cap
        // splits them.
        let rows: Vec<WarehouseRow> = (0..2500).map(|i| row(i, 1)).collect();
        let packing = pack_rows(&rows, MAX_RECORD_BYTES);
        let sizes: Vec<usize> = packing.records.iter().map(|r| r.rows.len()).collect();
        assert_eq!(sizes, vec![500, 500, 500, 500, 500]);
        let order: Vec<usize> = packing
            .records
            .iter()
            .flat_map(|r| r.rows.clone())
            .collect();
        assert_eq!(order, (0..2500).collect::<Vec<_>>());
    }

    #[test]
    fn record_data_is_the_rows_ndjson() {
        let rows = vec![row(0, 1), row(1, 1)];
        let packing = pack_rows(&rows, 1000);
        assert_eq!(
            String::from_utf8(packing.records[0].data.clone()).unwrap(),
            "{\"id\":\"0\",\"event\":\"c\",\"pad\":\"x\",\"timestamp\":\"2024-01-01T00:00:00Z\"}\n\
             {\"id\":\"1\",\"event\":\"c\",\"pad\":\"x\",\"timestamp\":\"2024-01-01T00:00:00Z\"}\n"
        );
    }
}
