//! The local lake: gzip NDJSON objects under
//! `<root>/<schema>/collection=<slug>/dt=<YYYY-MM-DD>/<name>.gz`, the same keys Firehose's
//! dynamic partitioning writes into the bucket, so the same SQL reads both.
//!
//! Writes are atomic: each object is written to a hidden temporary file, synced, then
//! renamed into place, and the directory is synced. An object's name is derived from the
//! ids it holds, so a retried or replayed request replaces its own objects instead of
//! adding duplicates.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

use tokio::time::Instant;

use super::{DeliveryFuture, DeliveryReport, EventSink, SinkError};
use crate::warehouse::ndjson::{group_by_partition, write_ndjson_line};
use crate::warehouse::row::{PartitionKey, WarehouseRow};

/// Makes temporary file names unique within the process.
static TEMP_FILE_SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// The default warehouse schema (namespace) name, as in Segment's docs.
pub const DEFAULT_SCHEMA: &str = "klaviyo";

/// Writes rows into a local directory laid out like the S3 bucket.
#[derive(Debug, Clone)]
pub struct LocalLakeSink {
    root: PathBuf,
    schema: String,
}

impl LocalLakeSink {
    /// A lake rooted at `root` whose tables live under `root/schema/`.
    pub fn new(root: impl Into<PathBuf>, schema: impl Into<String>) -> Self {
        Self {
            root: root.into(),
            schema: schema.into(),
        }
    }

    /// The directory that holds the collections.
    pub fn schema_dir(&self) -> PathBuf {
        self.root.join(&self.schema)
    }

    fn write_all(&self, rows: &[WarehouseRow]) -> Result<DeliveryReport, SinkError> {
        let mut report = DeliveryReport::default();
        for (partition, group) in group_by_partition(rows) {
            let mut ndjson = Vec::new();
            for row in &group {
                write_ndjson_line(&mut ndjson, row)?;
            }
            let dir = self.partition_dir(partition);
            write_object_atomically(&dir, &object_name(&group), &ndjson)?;
            report.rows += group.len();
            report.objects += 1;
        }
        Ok(report)
    }

    fn partition_dir(&self, partition: &PartitionKey) -> PathBuf {
        self.schema_dir()
            .join(format!("collection={}", partition.collection))
            .join(format!("dt={}", partition.dt))
    }
}

impl EventSink for LocalLakeSink {
    /// Local file writes take milliseconds and a started write cannot be cancelled, so the
    /// deadline is not enforced here.
    fn deliver<'a>(&'a self, rows: Vec<WarehouseRow>, _deadline: Instant) -> DeliveryFuture<'a> {
        let lake = self.clone();
        Box::pin(async move {
            // File writes and fsync block; keep them off the async worker threads.
            tokio::task::spawn_blocking(move || lake.write_all(&rows))
                .await
                .map_err(|err| SinkError::Task(err.to_string()))?
        })
    }
}

/// `<sha256 of the ids, first 32 hex chars>.gz`: the same rows always get the same name.
fn object_name(rows: &[&WarehouseRow]) -> String {
    let mut hasher = Sha256::new();
    for row in rows {
        hasher.update(row.id().as_bytes());
        hasher.update(b"\n");
    }
    let digest = hex::encode(hasher.finalize());
    format!("klaviyo-{}.gz", &digest[..32])
}

fn write_object_atomically(dir: &Path, name: &str, ndjson: &[u8]) -> Result<(), SinkError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| SinkError::LocalIo { path, source }
    };
    fs::create_dir_all(dir).map_err(io(dir))?;
    let final_path = dir.join(name);
    // Unique per write: two requests holding the same ids (a retry racing the original) must
    // not share a temporary file; both then rename onto the same final name, last one wins.
    let sequence = TEMP_FILE_SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let temp_path = dir.join(format!(".{name}.{}.{sequence}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut gzip = GzEncoder::new(File::create(&temp_path)?, Compression::default());
        gzip.write_all(ndjson)?;
        let file = gzip.finish()?;
        file.sync_all()?;
        fs::rename(&temp_path, &final_path)?;
        File::open(dir)?.sync_all()
    };
    write().map_err(|err| {
        // Best effort: a leftover hidden temp file is harmless, but tidy when we can.
        if fs::remove_file(&temp_path).is_err() {
            tracing::debug!(path = %temp_path.display(), "no temporary file to remove");
        }
        io(&final_path)(err)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use serde_json::{Map, json};
    use std::io::Read;

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

    fn far_deadline() -> Instant {
        Instant::now() + std::time::Duration::from_secs(60)
    }

    fn read_gz(path: &Path) -> String {
        let mut text = String::new();
        GzDecoder::new(File::open(path).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        text
    }

    fn objects(dir: &Path) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        found.sort();
        found
    }

    #[tokio::test]
    async fn writes_gzip_ndjson_into_hive_partitions() {
        let root = tempfile::tempdir().unwrap();
        let lake = LocalLakeSink::new(root.path(), "klaviyo");
        let report = lake
            .deliver(
                vec![
                    row("email_opened", "2024-01-04", "a"),
                    row("email_opened", "2024-01-04", "b"),
                    row("email_bounced", "2024-01-05", "c"),
                ],
                far_deadline(),
            )
            .await
            .unwrap();
        assert_eq!((report.rows, report.objects), (3, 2));
        let opened = objects(
            &root
                .path()
                .join("klaviyo/collection=email_opened/dt=2024-01-04"),
        );
        assert_eq!(opened.len(), 1);
        assert_eq!(read_gz(&opened[0]), "{\"id\":\"a\"}\n{\"id\":\"b\"}\n");
        let bounced = objects(
            &root
                .path()
                .join("klaviyo/collection=email_bounced/dt=2024-01-05"),
        );
        assert_eq!(read_gz(&bounced[0]), "{\"id\":\"c\"}\n");
    }

    #[tokio::test]
    async fn a_replay_replaces_its_object_and_leaves_no_temp_files() {
        let root = tempfile::tempdir().unwrap();
        let lake = LocalLakeSink::new(root.path(), "klaviyo");
        for _ in 0..2 {
            lake.deliver(vec![row("email_opened", "2024-01-04", "a")], far_deadline())
                .await
                .unwrap();
        }
        let dir = root
            .path()
            .join("klaviyo/collection=email_opened/dt=2024-01-04");
        let found = objects(&dir);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].extension().is_some_and(|e| e == "gz"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_identical_writes_all_succeed_into_one_object() {
        let root = tempfile::tempdir().unwrap();
        let lake = std::sync::Arc::new(LocalLakeSink::new(root.path(), "klaviyo"));
        let writes: Vec<_> = (0..32)
            .map(|_| {
                let lake = lake.clone();
                tokio::spawn(async move {
                    lake.deliver(vec![row("email_opened", "2024-01-04", "a")], far_deadline())
                        .await
                })
            })
            .collect();
        for write in writes {
            write.await.unwrap().unwrap();
        }
        let dir = root
            .path()
            .join("klaviyo/collection=email_opened/dt=2024-01-04");
        assert_eq!(objects(&dir).len(), 1);
    }

    #[tokio::test]
    async fn fails_loudly_when_the_lake_cannot_be_written() {
        let root = tempfile::tempdir().unwrap();
        let blocker = root.path().join("not-a-dir");
        fs::write(&blocker, b"file").unwrap();
        let lake = LocalLakeSink::new(&blocker, "klaviyo");
        let err = lake
            .deliver(vec![row("email_opened", "2024-01-04", "a")], far_deadline())
            .await
            .unwrap_err();
        assert!(matches!(err, SinkError::LocalIo { .. }), "{err}");
    }
}
