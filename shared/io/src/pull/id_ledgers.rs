//! Where the pull keeps the ids it stored, one ledger per metric and UTC day: a file under
//! the lake's `_state/ids/` locally, an object under the state's prefix in S3
//! (`pull-state/ids/<metric>/<day>.ids`). A write merges with what is there, so two writers
//! of one day (the schedule and a backfill) never lose each other's ids; in S3 the merge is
//! a compare-and-set (`If-Match` on the ETag read), retried on conflict.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use chrono::NaiveDate;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use source_core::pull::id_ledger::IdLedger;

use super::state_store::StateError;
use crate::s3_objects::{S3Error, S3Objects, WriteCondition};

/// A boxed ledger-store future.
pub type LedgerFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StateError>> + Send + 'a>>;

/// The pull's id ledgers.
pub trait IdLedgerStore: Send + Sync {
    /// The ledger of `metric_id` on `day` (empty when none was written).
    fn load<'a>(&'a self, metric_id: &'a str, day: NaiveDate) -> LedgerFuture<'a, IdLedger>;
    /// Writes `ledger` merged with the stored one; the merged ledger's size.
    fn merge_save<'a>(
        &'a self,
        metric_id: &'a str,
        day: NaiveDate,
        ledger: &'a IdLedger,
    ) -> LedgerFuture<'a, usize>;
}

/// `<metric>/<day>.ids`, the metric id percent-encoded (Klaviyo's ids are alphanumeric; the
/// encoding only keeps any other id inside its own directory).
fn relative_path(metric_id: &str, day: NaiveDate) -> String {
    format!(
        "{}/{day}.ids",
        utf8_percent_encode(metric_id, NON_ALPHANUMERIC)
    )
}

fn corrupt(place: String, detail: impl std::fmt::Display) -> StateError {
    StateError::Corrupt {
        place,
        detail: detail.to_string(),
    }
}

/// The ledgers as files under `<lake>/_state/ids/`, each write under an exclusive lock of
/// the directory's lock file and by rename.
#[derive(Debug, Clone)]
pub struct LocalIdLedgers {
    dir: PathBuf,
}

impl LocalIdLedgers {
    /// The ledgers of the lake at `lake_dir`.
    pub fn in_lake(lake_dir: &Path) -> Self {
        Self {
            dir: lake_dir.join("_state").join("ids"),
        }
    }

    fn store_error(&self, path: &Path, err: std::io::Error) -> StateError {
        StateError::Store {
            place: path.display().to_string(),
            detail: err.to_string(),
        }
    }

    fn read(&self, path: &Path) -> Result<IdLedger, StateError> {
        match std::fs::read(path) {
            Ok(bytes) => {
                IdLedger::decode(&bytes).map_err(|err| corrupt(path.display().to_string(), err))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(IdLedger::default()),
            Err(err) => Err(self.store_error(path, err)),
        }
    }

    fn write_merged(
        &self,
        metric_id: &str,
        day: NaiveDate,
        ledger: &IdLedger,
    ) -> Result<usize, StateError> {
        let path = self.dir.join(relative_path(metric_id, day));
        let parent = path.parent().unwrap_or(&self.dir).to_path_buf();
        std::fs::create_dir_all(&parent).map_err(|err| self.store_error(&parent, err))?;
        let lock_path = self.dir.join("ids.lock");
        let lock = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|err| self.store_error(&lock_path, err))?;
        lock.lock()
            .map_err(|err| self.store_error(&lock_path, err))?;
        let mut merged = self.read(&path)?;
        merged.merge(ledger);
        let temp = parent.join(format!(".{day}.ids.tmp"));
        std::fs::File::create(&temp)
            .and_then(|mut file| {
                std::io::Write::write_all(&mut file, &merged.encode())?;
                file.sync_all()
            })
            .and_then(|()| std::fs::rename(&temp, &path))
            .map_err(|err| self.store_error(&path, err))?;
        Ok(merged.len())
    }
}

impl IdLedgerStore for LocalIdLedgers {
    fn load<'a>(&'a self, metric_id: &'a str, day: NaiveDate) -> LedgerFuture<'a, IdLedger> {
        Box::pin(async move { self.read(&self.dir.join(relative_path(metric_id, day))) })
    }

    fn merge_save<'a>(
        &'a self,
        metric_id: &'a str,
        day: NaiveDate,
        ledger: &'a IdLedger,
    ) -> LedgerFuture<'a, usize> {
        Box::pin(async move { self.write_merged(metric_id, day, ledger) })
    }
}

/// Conditional writes lost in a row before a merge gives up (each loss means another
/// writer just wrote the same day; the next attempt merges its ids too).
const MAX_MERGE_ATTEMPTS: u32 = 5;

/// The ledgers as S3 objects under `prefix` (e.g. `pull-state/ids/`).
#[derive(Debug, Clone)]
pub struct S3IdLedgers {
    s3: Arc<S3Objects>,
    bucket: String,
    prefix: String,
}

impl S3IdLedgers {
    /// The ledgers under `prefix` (ending in `/`) of `bucket`.
    pub fn new(s3: Arc<S3Objects>, bucket: String, prefix: String) -> Self {
        Self { s3, bucket, prefix }
    }

    /// The ledgers next to the state object `state_key`: `<its folder>/ids/`.
    pub fn beside_state(s3: Arc<S3Objects>, bucket: String, state_key: &str) -> Self {
        let folder = state_key.rsplit_once('/').map_or("", |(folder, _)| folder);
        let prefix = if folder.is_empty() {
            "ids/".to_owned()
        } else {
            format!("{folder}/ids/")
        };
        Self::new(s3, bucket, prefix)
    }

    fn key(&self, metric_id: &str, day: NaiveDate) -> String {
        format!("{}{}", self.prefix, relative_path(metric_id, day))
    }

    fn failure(&self, key: &str, err: S3Error) -> StateError {
        StateError::Store {
            place: format!("s3://{}/{key}", self.bucket),
            detail: err.to_string(),
        }
    }

    async fn read(&self, key: &str) -> Result<(IdLedger, Option<String>), StateError> {
        match self.s3.get(&self.bucket, key).await {
            Ok(Some(object)) => {
                let ledger = IdLedger::decode(&object.body)
                    .map_err(|err| corrupt(format!("s3://{}/{key}", self.bucket), err))?;
                Ok((ledger, object.etag))
            }
            Ok(None) => Ok((IdLedger::default(), None)),
            Err(err) => Err(StateError::Store {
                place: format!("s3://{}/{key}", self.bucket),
                detail: err.read_failure_detail(),
            }),
        }
    }

    async fn write_merged(
        &self,
        metric_id: &str,
        day: NaiveDate,
        ledger: &IdLedger,
    ) -> Result<usize, StateError> {
        let key = self.key(metric_id, day);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (mut merged, etag) = self.read(&key).await?;
            merged.merge(ledger);
            let condition = match etag {
                Some(etag) => WriteCondition::IfMatch(etag),
                None => WriteCondition::IfAbsent,
            };
            match self
                .s3
                .put(
                    &self.bucket,
                    &key,
                    "application/octet-stream",
                    merged.encode(),
                    &condition,
                )
                .await
            {
                Ok(_) => return Ok(merged.len()),
                Err(S3Error::Refused {
                    status: 412 | 409, ..
                }) if attempts < MAX_MERGE_ATTEMPTS => continue,
                Err(err) => return Err(self.failure(&key, err)),
            }
        }
    }
}

impl IdLedgerStore for S3IdLedgers {
    fn load<'a>(&'a self, metric_id: &'a str, day: NaiveDate) -> LedgerFuture<'a, IdLedger> {
        Box::pin(async move {
            let key = self.key(metric_id, day);
            Ok(self.read(&key).await?.0)
        })
    }

    fn merge_save<'a>(
        &'a self,
        metric_id: &'a str,
        day: NaiveDate,
        ledger: &'a IdLedger,
    ) -> LedgerFuture<'a, usize> {
        Box::pin(self.write_merged(metric_id, day, ledger))
    }
}

/// The ledgers in memory, for tests of the run.
#[cfg(any(test, feature = "test-doubles"))]
#[derive(Debug, Default)]
pub struct MemoryIdLedgers {
    ledgers: std::sync::Mutex<std::collections::BTreeMap<(String, NaiveDate), IdLedger>>,
}

#[cfg(any(test, feature = "test-doubles"))]
impl MemoryIdLedgers {
    /// Distinct ids held for `metric_id`, all days together.
    pub fn ids_held(&self, metric_id: &str) -> usize {
        let ledgers = self.ledgers.lock().unwrap_or_else(|p| p.into_inner());
        ledgers
            .iter()
            .filter(|((metric, _), _)| metric == metric_id)
            .map(|(_, ledger)| ledger.len())
            .sum()
    }
}

#[cfg(any(test, feature = "test-doubles"))]
impl IdLedgerStore for MemoryIdLedgers {
    fn load<'a>(&'a self, metric_id: &'a str, day: NaiveDate) -> LedgerFuture<'a, IdLedger> {
        Box::pin(async move {
            let ledgers = self.ledgers.lock().unwrap_or_else(|p| p.into_inner());
            Ok(ledgers
                .get(&(metric_id.to_owned(), day))
                .cloned()
                .unwrap_or_default())
        })
    }

    fn merge_save<'a>(
        &'a self,
        metric_id: &'a str,
        day: NaiveDate,
        ledger: &'a IdLedger,
    ) -> LedgerFuture<'a, usize> {
        Box::pin(async move {
            let mut ledgers = self.ledgers.lock().unwrap_or_else(|p| p.into_inner());
            let stored = ledgers.entry((metric_id.to_owned(), day)).or_default();
            stored.merge(ledger);
            Ok(stored.len())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_local_write_merges_with_the_ledger_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalIdLedgers::in_lake(dir.path());
        let day: NaiveDate = "2026-11-30".parse().unwrap();
        assert!(store.load("UWP7cZ", day).await.unwrap().is_empty());
        let mut schedule = IdLedger::default();
        schedule.insert("E1");
        schedule.insert("E2");
        let mut backfill = IdLedger::default();
        backfill.insert("E2");
        backfill.insert("E3");
        assert_eq!(store.merge_save("UWP7cZ", day, &schedule).await.unwrap(), 2);
        assert_eq!(store.merge_save("UWP7cZ", day, &backfill).await.unwrap(), 3);
        let loaded = store.load("UWP7cZ", day).await.unwrap();
        assert!(loaded.contains("E1") && loaded.contains("E3"));
        assert!(dir.path().join("_state/ids/UWP7cZ/2026-11-30.ids").exists());
        // Another metric's day is its own.
        assert!(store.load("Other", day).await.unwrap().is_empty());
    }

    #[test]
    fn ledgers_live_beside_the_state_object() {
        let key = |state: &str| {
            S3IdLedgers::beside_state(
                Arc::new(S3Objects::from_client(aws_sdk_s3::Client::from_conf(
                    aws_sdk_s3::Config::builder()
                        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                        .build(),
                ))),
                "b".into(),
                state,
            )
            .key("M/1", "2026-01-02".parse().unwrap())
        };
        assert_eq!(
            key("pull-state/klaviyo-pull.json"),
            "pull-state/ids/M%2F1/2026-01-02.ids"
        );
        assert_eq!(key("state.json"), "ids/M%2F1/2026-01-02.ids");
    }
}
