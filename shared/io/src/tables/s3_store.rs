//! The lake bucket as a [`TableStore`]: keys are object keys, conditional writes are S3's own
//! (`If-None-Match: *`, `If-Match: <ETag>`; 412, or 409 when a concurrent conditional write
//! won, is a conflict), and the lock is a lease object written the same way: a run takes it
//! only if it is absent or lapsed, so two runs never compact at once, and a crashed run's
//! lease lapses by itself.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::table_store::{Precondition, StoreError, StoreFuture, StoredBytes, TableStore};
use crate::s3_objects::{S3Error, S3Objects, WriteCondition};

/// The lease's key.
const LEASE_KEY: &str = "_tables/.compaction.lease";
/// How long a lease holds: longer than a run may last (a Lambda invocation, at most 15
/// minutes), so a live run's lease never lapses under it.
const LEASE: TimeDelta = TimeDelta::minutes(16);

/// A run's claim on the bucket's tables.
#[derive(Debug, Serialize, Deserialize)]
struct Lease {
    holder: String,
    expires_at: DateTime<Utc>,
}

/// The lake in one bucket.
#[derive(Debug)]
pub struct S3Store {
    s3: S3Objects,
    bucket: String,
    holder: String,
}

impl S3Store {
    /// The lake in `bucket`; `holder` names this run in its lease.
    pub fn new(s3: S3Objects, bucket: impl Into<String>, holder: impl Into<String>) -> Self {
        Self {
            s3,
            bucket: bucket.into(),
            holder: holder.into(),
        }
    }

    fn failed(&self, key: &str, err: S3Error) -> StoreError {
        StoreError::failed(format!("s3://{}/{key}", self.bucket), err)
    }

    async fn put_now(
        &self,
        key: &str,
        bytes: Vec<u8>,
        precondition: Precondition,
    ) -> Result<(), StoreError> {
        let condition = match precondition {
            Precondition::None => WriteCondition::Always,
            Precondition::Absent => WriteCondition::IfAbsent,
            Precondition::Matches(tag) => WriteCondition::IfMatch(tag),
        };
        match self
            .s3
            .put(&self.bucket, key, content_type(key), bytes, &condition)
            .await
        {
            Ok(_) => Ok(()),
            Err(S3Error::Refused {
                status: 412 | 409, ..
            }) => Err(StoreError::Conflict(key.to_owned())),
            Err(err) => Err(self.failed(key, err)),
        }
    }

    async fn lock_now(&self) -> Result<(), StoreError> {
        let now = Utc::now();
        let current = self
            .s3
            .get(&self.bucket, LEASE_KEY)
            .await
            .map_err(|err| self.failed(LEASE_KEY, err))?;
        let precondition = match current {
            None => Precondition::Absent,
            Some(object) => {
                let lease: Option<Lease> = serde_json::from_slice(&object.body).ok();
                if lease.is_some_and(|lease| lease.expires_at > now) {
                    return Err(StoreError::Locked(format!(
                        "s3://{}/{LEASE_KEY}",
                        self.bucket
                    )));
                }
                Precondition::Matches(object.etag.unwrap_or_default())
            }
        };
        let lease = Lease {
            holder: self.holder.clone(),
            expires_at: now + LEASE,
        };
        let body = serde_json::to_vec(&lease).map_err(|err| StoreError::failed(LEASE_KEY, err))?;
        match self.put_now(LEASE_KEY, body, precondition).await {
            Err(StoreError::Conflict(_)) => Err(StoreError::Locked(format!(
                "s3://{}/{LEASE_KEY}",
                self.bucket
            ))),
            other => other,
        }
    }
}

fn content_type(key: &str) -> &'static str {
    if key.ends_with(".json") {
        "application/json"
    } else {
        "application/octet-stream"
    }
}

impl TableStore for S3Store {
    fn list<'a>(&'a self, prefix: &'a str) -> StoreFuture<'a, Vec<String>> {
        Box::pin(async move {
            self.s3
                .list(&self.bucket, prefix)
                .await
                .map_err(|err| self.failed(prefix, err))
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<StoredBytes>> {
        Box::pin(async move {
            let object = self
                .s3
                .get(&self.bucket, key)
                .await
                .map_err(|err| self.failed(key, err))?;
            Ok(object.map(|object| StoredBytes {
                bytes: object.body,
                tag: object.etag.unwrap_or_default(),
            }))
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        bytes: Vec<u8>,
        precondition: Precondition,
    ) -> StoreFuture<'a, ()> {
        Box::pin(self.put_now(key, bytes, precondition))
    }

    fn delete<'a>(&'a self, keys: &'a [String]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.s3
                .delete(&self.bucket, keys)
                .await
                .map_err(|err| self.failed("(delete)", err))
        })
    }

    fn lock(&self) -> StoreFuture<'_, ()> {
        Box::pin(self.lock_now())
    }

    fn unlock(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            self.s3
                .delete(&self.bucket, &[LEASE_KEY.to_owned()])
                .await
                .map_err(|err| self.failed(LEASE_KEY, err))
        })
    }

    fn place(&self) -> String {
        format!("s3://{}", self.bucket)
    }
}
