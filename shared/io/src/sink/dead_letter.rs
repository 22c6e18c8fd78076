//! The dead-letter store: where rows go when Firehose would not take them, so that a 2xx
//! never hides a loss. Objects are gzip NDJSON of the rows themselves, so re-driving them is
//! reading lines back and delivering them again.

use std::future::Future;
use std::io::{Read, Write};
use std::pin::Pin;

use chrono::{DateTime, Utc};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use source_core::time_format::partition_date;
use source_core::warehouse::ndjson::write_ndjson_line;
use source_core::warehouse::row::WarehouseRow;

/// Why rows could not be spilled: then they may not be acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    /// The object could not be built from the rows.
    #[error("the dead-letter object could not be encoded: {0}")]
    Encoding(#[from] std::io::Error),
    /// The store answered with an error (its code, e.g. `AccessDenied`, `NoSuchBucket`).
    #[error("the dead-letter store refused the object: {0}")]
    Refused(String),
    /// The store could not be reached, or did not answer.
    #[error("the dead-letter store could not be reached: {0}")]
    Unreachable(String),
    /// The request's deadline came first.
    #[error("the request's deadline passed before the spill finished")]
    Deadline,
}

/// A boxed store future, so stores can be trait objects.
pub type StoreFuture<'a> =
    Pin<Box<dyn Future<Output = Result<String, DeadLetterError>> + Send + 'a>>;

/// Durable storage for rows that could not be delivered.
pub trait DeadLetterStore: Send + Sync {
    /// Stores `object` (see [`encode_dead_letter`]) under `key`; answers the key stored,
    /// or why it failed.
    fn store<'a>(&'a self, key: String, object: Vec<u8>) -> StoreFuture<'a>;
}

/// `<prefix><schema>/dt=<date spilled>/<sha256 of the ids>.ndjson.gz`. The name depends on
/// the ids only, so spilling the same rows twice writes one object.
pub fn dead_letter_key(
    prefix: &str,
    schema: &str,
    spilled_at: DateTime<Utc>,
    rows: &[&WarehouseRow],
) -> String {
    let mut hasher = Sha256::new();
    for row in rows {
        hasher.update(row.id().as_bytes());
        hasher.update(b"\n");
    }
    let digest = hex::encode(hasher.finalize());
    format!(
        "{prefix}{schema}/dt={}/{}.ndjson.gz",
        partition_date(spilled_at),
        &digest[..32]
    )
}

/// The object for `rows`: gzip NDJSON, one row per line, exactly as Firehose would have
/// written them.
pub fn encode_dead_letter(rows: &[&WarehouseRow]) -> Result<Vec<u8>, std::io::Error> {
    let mut ndjson = Vec::new();
    for row in rows {
        write_ndjson_line(&mut ndjson, row);
    }
    let mut gzip = GzEncoder::new(Vec::new(), Compression::default());
    gzip.write_all(&ndjson)?;
    gzip.finish()
}

/// Reads a dead-letter object back into rows.
pub fn decode_dead_letter(object: &[u8]) -> Result<Vec<WarehouseRow>, std::io::Error> {
    let mut text = String::new();
    GzDecoder::new(object).read_to_string(&mut text)?;
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let columns: Map<String, Value> =
                serde_json::from_str(line).map_err(std::io::Error::other)?;
            WarehouseRow::from_columns(columns)
                .ok_or_else(|| std::io::Error::other("dead-letter line lacks event or timestamp"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str) -> WarehouseRow {
        WarehouseRow::minimal("email_opened", "2024-01-04", id)
    }

    #[test]
    fn round_trips_rows() {
        let rows = [row("a"), row("b")];
        let refs: Vec<&WarehouseRow> = rows.iter().collect();
        let object = encode_dead_letter(&refs).unwrap();
        assert_eq!(decode_dead_letter(&object).unwrap(), rows.to_vec());
    }

    #[test]
    fn keys_depend_on_ids_and_spill_date_only() {
        let at = source_core::time_format::parse_iso_datetime("2024-01-05T10:00:00Z").unwrap();
        let (a, b) = (row("a"), row("b"));
        let key = dead_letter_key("dead-letter/", "klaviyo", at, &[&a, &b]);
        assert!(
            key.starts_with("dead-letter/klaviyo/dt=2024-01-05/"),
            "{key}"
        );
        assert!(key.ends_with(".ndjson.gz"));
        assert_eq!(
            key,
            dead_letter_key("dead-letter/", "klaviyo", at, &[&a, &b])
        );
        assert_ne!(key, dead_letter_key("dead-letter/", "klaviyo", at, &[&a]));
    }
}
