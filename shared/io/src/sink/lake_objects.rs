//! The lake's objects, wherever they are written (a local directory, or straight into the
//! bucket by a backfill): one gzip NDJSON object per partition of a delivery, at
//! `<schema>/collection=<slug>/dt=<YYYY-MM-DD>/<name>.gz`, the keys Firehose's dynamic
//! partitioning writes. The name derives from the ids the object holds, so the same rows
//! always land under the same key: a repeated delivery replaces its object instead of adding
//! a copy.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

use super::SinkError;
use source_core::warehouse::ndjson::{group_by_partition, write_ndjson_line};
use source_core::warehouse::row::{PartitionKey, WarehouseRow};

/// One object to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeObject {
    /// `<schema>/collection=<slug>/dt=<date>/<name>.gz`.
    pub key: String,
    /// The gzip of the rows' NDJSON.
    pub gzip: Vec<u8>,
    /// How many rows it holds.
    pub rows: usize,
}

/// The directory part of a partition's key: `collection=<slug>/dt=<date>`.
pub fn partition_path(partition: &PartitionKey) -> String {
    format!("collection={}/dt={}", partition.collection, partition.dt)
}

/// `<sha256 of the ids, first 32 hex chars>.gz`: the same rows always get the same name, and
/// different row sets never do. Each id enters the hash behind its length (8 bytes, little
/// endian), so no id can imitate a separator: `["a", "b"]` and `["a\nb"]` hash differently.
pub fn object_name(rows: &[&WarehouseRow]) -> String {
    let mut hasher = Sha256::new();
    hasher.update((rows.len() as u64).to_le_bytes());
    for row in rows {
        let id = row.id().as_bytes();
        hasher.update((id.len() as u64).to_le_bytes());
        hasher.update(id);
    }
    let digest = hex::encode(hasher.finalize());
    format!("klaviyo-{}.gz", &digest[..32])
}

/// The objects of `rows` under `schema`, one per partition, in partition order.
pub fn lake_objects(schema: &str, rows: &[WarehouseRow]) -> Result<Vec<LakeObject>, SinkError> {
    group_by_partition(rows)
        .into_iter()
        .map(|(partition, group)| {
            let mut ndjson = Vec::new();
            for row in &group {
                write_ndjson_line(&mut ndjson, row);
            }
            // Compressing into memory cannot fail for want of space; an error here is one of
            // encoding.
            let mut gzip = GzEncoder::new(Vec::new(), Compression::default());
            gzip.write_all(&ndjson).map_err(serde_json::Error::io)?;
            Ok(LakeObject {
                key: format!(
                    "{schema}/{}/{}",
                    partition_path(partition),
                    object_name(&group)
                ),
                gzip: gzip.finish().map_err(serde_json::Error::io)?,
                rows: group.len(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use std::io::Read;

    fn row(id: &str, collection: &str) -> WarehouseRow {
        WarehouseRow::minimal(collection, "2024-01-04", id)
    }

    #[test]
    fn different_id_sets_never_share_an_object_name() {
        let a = row("a", "c");
        let b = row("b", "c");
        let joined = row("a\nb", "c");
        assert_ne!(object_name(&[&a, &b]), object_name(&[&joined]));
        assert_eq!(object_name(&[&a, &b]), object_name(&[&a, &b]));
        let empty = row("", "c");
        assert_ne!(object_name(&[&a]), object_name(&[&a, &empty]));
    }

    #[test]
    fn one_object_per_partition_named_after_its_ids() {
        let rows = vec![
            row("a", "email_opened"),
            row("b", "email_bounced"),
            row("c", "email_opened"),
        ];
        let objects = lake_objects("klaviyo", &rows).unwrap();
        assert_eq!(objects.len(), 2);
        assert!(
            objects[0]
                .key
                .starts_with("klaviyo/collection=email_bounced/dt=2024-01-04/klaviyo-")
        );
        assert_eq!(objects[1].rows, 2);
        let mut text = String::new();
        GzDecoder::new(&objects[1].gzip[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(
            text,
            "{\"id\":\"a\",\"event\":\"email_opened\",\"timestamp\":\"2024-01-04T00:00:00.000Z\"}\n\
             {\"id\":\"c\",\"event\":\"email_opened\",\"timestamp\":\"2024-01-04T00:00:00.000Z\"}\n"
        );
        // The same rows again: the same keys.
        assert_eq!(lake_objects("klaviyo", &rows).unwrap(), objects);
    }
}
