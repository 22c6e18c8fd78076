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

use tokio::time::Instant;

use super::lake_objects::lake_objects;
use super::{DeliveryFuture, DeliveryReport, EventSink, SinkError};
use source_core::warehouse::row::WarehouseRow;

/// Makes temporary file names unique within the process.
static TEMP_FILE_SEQUENCE: AtomicU64 = AtomicU64::new(0);

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

    /// Writes every partition's object, all or nothing: first each object goes to a synced
    /// temporary file; only when all are written are they renamed into place. If a write
    /// fails, the temporary files are removed and nothing becomes visible; if a rename fails,
    /// the objects already renamed that did not exist before are removed again.
    fn write_all(&self, rows: &[WarehouseRow]) -> Result<DeliveryReport, SinkError> {
        let mut report = DeliveryReport::default();
        let mut staged: Vec<StagedObject> = Vec::new();
        for object in lake_objects(&self.schema, rows)? {
            match stage_object(&self.root.join(&object.key), &object.gzip) {
                Ok(staged_object) => staged.push(staged_object),
                Err(err) => {
                    staged.iter().for_each(StagedObject::discard);
                    return Err(err);
                }
            }
            report.rows += object.rows;
            report.objects += 1;
        }
        let mut published: Vec<&StagedObject> = Vec::new();
        for object in &staged {
            if let Err(err) = object.publish() {
                for done in &published {
                    done.unpublish();
                }
                staged.iter().for_each(StagedObject::discard);
                return Err(err);
            }
            published.push(object);
        }
        for object in &staged {
            sync_dir(&object.dir)?;
        }
        Ok(report)
    }

    /// Removes temporary files a crash left behind (they are never visible to queries, but
    /// they take space). Returns how many were removed.
    pub fn remove_leftover_temp_files(&self) -> std::io::Result<usize> {
        fn walk(dir: &Path, removed: &mut usize) -> std::io::Result<()> {
            for entry in fs::read_dir(dir)? {
                let entry = entry?;
                let path = entry.path();
                if entry.file_type()?.is_dir() {
                    walk(&path, removed)?;
                } else if is_temp_file_name(&entry.file_name().to_string_lossy()) {
                    fs::remove_file(&path)?;
                    *removed += 1;
                }
            }
            Ok(())
        }
        let mut removed = 0;
        let root = self.schema_dir();
        if root.is_dir() {
            walk(&root, &mut removed)?;
        }
        Ok(removed)
    }
}

impl EventSink for LocalLakeSink {
    /// Local file writes take milliseconds and a started write cannot be cancelled, so the
    /// deadline is not enforced here.
    fn deliver<'a>(&'a self, rows: Vec<WarehouseRow>, _deadline: Instant) -> DeliveryFuture<'a> {
        let lake = self.clone();
        Box::pin(async move {
            // File writes and fsync block; keep them off the async worker threads. The rows
            // come back to be freed where they were built: freeing them on a pool thread
            // returns their memory across allocator arenas.
            let (written, rows) = tokio::task::spawn_blocking(move || {
                let written = lake.write_all(&rows);
                (written, rows)
            })
            .await
            .map_err(|err| SinkError::Task(err.to_string()))?;
            drop(rows);
            written
        })
    }
}

/// An object written to a synced temporary file, not yet visible.
#[derive(Debug)]
struct StagedObject {
    dir: PathBuf,
    temp_path: PathBuf,
    final_path: PathBuf,
    /// Whether an object of the same name was there before (a replay): a rollback must
    /// not remove it.
    existed: bool,
}

impl StagedObject {
    fn publish(&self) -> Result<(), SinkError> {
        fs::rename(&self.temp_path, &self.final_path).map_err(io_error(&self.final_path))
    }

    fn unpublish(&self) {
        if !self.existed && fs::remove_file(&self.final_path).is_err() {
            tracing::warn!(path = %self.final_path.display(), "could not roll back an object");
        }
    }

    fn discard(&self) {
        // Already renamed, or never written: nothing to remove.
        if fs::remove_file(&self.temp_path).is_err() {
            tracing::debug!(path = %self.temp_path.display(), "no temporary file to remove");
        }
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> SinkError + use<> {
    let path = path.display().to_string();
    move |source| SinkError::LocalIo { path, source }
}

/// Temporary files are hidden (`.`) and end in `.tmp`.
fn is_temp_file_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}

/// Creates `dir` and any missing parents, syncing each new directory's parent so the new
/// entry survives a crash.
fn create_dir_synced(dir: &Path) -> Result<(), SinkError> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dir_synced(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        // Another request created it meanwhile.
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {}
        Err(err) => return Err(io_error(dir)(err)),
    }
    match dir.parent() {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

fn sync_dir(dir: &Path) -> Result<(), SinkError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}

/// Writes `gzip` to a synced temporary file beside `final_path`.
fn stage_object(final_path: &Path, gzip: &[u8]) -> Result<StagedObject, SinkError> {
    let (Some(dir), Some(name)) = (final_path.parent(), final_path.file_name()) else {
        return Err(io_error(final_path)(std::io::Error::other(
            "an object's key has no directory or no name",
        )));
    };
    let name = name.to_string_lossy();
    create_dir_synced(dir)?;
    // Unique per write: two requests holding the same ids (a retry racing the original) must
    // not share a temporary file; both then rename onto the same final name, last one wins.
    let sequence = TEMP_FILE_SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let temp_path = dir.join(format!(".{name}.{}.{sequence}.tmp", std::process::id()));
    let object = StagedObject {
        dir: dir.to_path_buf(),
        existed: final_path.exists(),
        temp_path,
        final_path: final_path.to_path_buf(),
    };
    let write = || -> std::io::Result<()> {
        let mut file = File::create(&object.temp_path)?;
        file.write_all(gzip)?;
        file.sync_all()
    };
    write().map_err(|err| {
        object.discard();
        io_error(&object.final_path)(err)
    })?;
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use std::io::Read;

    fn row(collection: &str, dt: &str, id: &str) -> WarehouseRow {
        WarehouseRow::minimal(collection, dt, id)
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
        let line = |row: &WarehouseRow| format!("{}\n", String::from_utf8_lossy(row.json()));
        assert_eq!(
            read_gz(&opened[0]),
            line(&row("email_opened", "2024-01-04", "a"))
                + &line(&row("email_opened", "2024-01-04", "b"))
        );
        let bounced = objects(
            &root
                .path()
                .join("klaviyo/collection=email_bounced/dt=2024-01-05"),
        );
        assert_eq!(
            read_gz(&bounced[0]),
            "{\"id\":\"c\",\"event\":\"email_bounced\",\"timestamp\":\"2024-01-05T00:00:00.000Z\"}\n"
        );
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
    async fn a_failing_partition_leaves_no_other_partition_visible() {
        let root = tempfile::tempdir().unwrap();
        let lake = LocalLakeSink::new(root.path(), "klaviyo");
        // The second partition's directory cannot be created: a file stands in its way.
        let collection = root.path().join("klaviyo/collection=email_opened");
        fs::create_dir_all(&collection).unwrap();
        fs::write(collection.join("dt=2024-01-05"), b"not a directory").unwrap();
        let err = lake
            .deliver(
                vec![
                    row("email_opened", "2024-01-04", "a"),
                    row("email_opened", "2024-01-05", "b"),
                ],
                far_deadline(),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, SinkError::LocalIo { .. }), "{err}");
        let first = collection.join("dt=2024-01-04");
        assert_eq!(
            objects(&first),
            Vec::<PathBuf>::new(),
            "nothing visible, no temp left"
        );
    }

    #[test]
    fn removes_temporary_files_left_by_a_crash() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("klaviyo/collection=c/dt=2024-01-04");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(".klaviyo-abc.gz.77.0.tmp"), b"half").unwrap();
        fs::write(dir.join("klaviyo-abc.gz"), b"kept").unwrap();
        let lake = LocalLakeSink::new(root.path(), "klaviyo");
        assert_eq!(lake.remove_leftover_temp_files().unwrap(), 1);
        assert_eq!(objects(&dir), vec![dir.join("klaviyo-abc.gz")]);
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
