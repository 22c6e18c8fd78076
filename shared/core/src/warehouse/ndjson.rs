//! Newline-delimited JSON: one row per line, the format Firehose appends and Athena reads.

use std::collections::BTreeMap;

use super::row::{PartitionKey, WarehouseRow};

/// Appends `row` to `out` as one JSON line.
pub fn write_ndjson_line(out: &mut Vec<u8>, row: &WarehouseRow) {
    out.extend_from_slice(row.json());
    out.push(b'\n');
}

/// Groups rows by partition, keeping their order within each partition.
pub fn group_by_partition(rows: &[WarehouseRow]) -> BTreeMap<&PartitionKey, Vec<&WarehouseRow>> {
    let mut groups: BTreeMap<&PartitionKey, Vec<&WarehouseRow>> = BTreeMap::new();
    for row in rows {
        groups.entry(&row.partition).or_default().push(row);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(collection: &str, dt: &str, id: &str) -> WarehouseRow {
        WarehouseRow::minimal(collection, dt, id)
    }

    #[test]
    fn writes_one_line_per_row() {
        let mut out = Vec::new();
        write_ndjson_line(&mut out, &row("a", "2024-01-01", "1"));
        write_ndjson_line(&mut out, &row("a", "2024-01-01", "2"));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"id\":\"1\",\"event\":\"a\",\"timestamp\":\"2024-01-01T00:00:00.000Z\"}\n\
             {\"id\":\"2\",\"event\":\"a\",\"timestamp\":\"2024-01-01T00:00:00.000Z\"}\n"
        );
    }

    #[test]
    fn groups_by_partition_in_order() {
        let rows = [
            row("b", "2024-01-01", "1"),
            row("a", "2024-01-02", "2"),
            row("b", "2024-01-01", "3"),
        ];
        let groups = group_by_partition(&rows);
        let ids: Vec<Vec<&str>> = groups
            .values()
            .map(|g| g.iter().map(|r| r.id()).collect())
            .collect();
        assert_eq!(ids, vec![vec!["2"], vec!["1", "3"]]);
    }
}
