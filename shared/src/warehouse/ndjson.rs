//! Newline-delimited JSON: one row per line, the format Firehose appends and Athena reads.

use std::collections::BTreeMap;

use super::row::{PartitionKey, WarehouseRow};

/// Appends `row` to `out` as one JSON line.
pub fn write_ndjson_line(out: &mut Vec<u8>, row: &WarehouseRow) -> Result<(), serde_json::Error> {
    serde_json::to_writer(&mut *out, &row.columns)?;
    out.push(b'\n');
    Ok(())
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
    use serde_json::{Map, json};

    fn row(collection: &str, dt: &str, id: &str) -> WarehouseRow {
        let mut columns = Map::new();
        columns.insert("id".into(), json!(id));
        WarehouseRow {
            partition: PartitionKey {
                collection: collection.into(),
                dt: dt.into(),
            },
            columns,
        }
    }

    #[test]
    fn writes_one_line_per_row() {
        let mut out = Vec::new();
        write_ndjson_line(&mut out, &row("a", "2024-01-01", "1")).unwrap();
        write_ndjson_line(&mut out, &row("a", "2024-01-01", "2")).unwrap();
        assert_eq!(out, b"{\"id\":\"1\"}\n{\"id\":\"2\"}\n");
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
