//! Where compaction reads the raw landing and keeps the tables: a local lake directory or the
//! lake bucket. Keys are relative, `/`-separated (`klaviyo/collection=email_opened/dt=…/x.gz`,
//! `_tables/klaviyo/email_opened/dt=…/manifest.json`), the same in both.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

/// A boxed answer of a [`TableStore`].
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// An object's bytes and the tag a conditional write names it by.
#[derive(Debug, Clone)]
pub struct StoredBytes {
    /// The bytes.
    pub bytes: Bytes,
    /// Its version: S3's ETag, or a digest of a local file's bytes.
    pub tag: String,
}

/// A condition on a write, as S3's conditional writes state them.
/// <https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html>
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// Write whatever is there.
    None,
    /// Only if no object has the key (`If-None-Match: *`).
    Absent,
    /// Only if the object is still this version (`If-Match: <tag>`).
    Matches(String),
}

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The write's precondition failed: another writer changed the object first.
    #[error("{0} was changed by another writer")]
    Conflict(String),
    /// Another compaction holds the lake.
    #[error("another compaction is running on this lake ({0})")]
    Locked(String),
    /// The store could not be read or written.
    #[error("{place}: {detail}")]
    Failed {
        /// The key or file.
        place: String,
        /// What went wrong.
        detail: String,
    },
}

impl StoreError {
    /// A failure at `place`.
    pub fn failed(place: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        Self::Failed {
            place: place.into(),
            detail: detail.to_string(),
        }
    }
}

/// Objects by key, with conditional writes and a lock that keeps two runs apart.
pub trait TableStore: Send + Sync {
    /// Every key under `prefix`, sorted.
    fn list<'a>(&'a self, prefix: &'a str) -> StoreFuture<'a, Vec<String>>;
    /// The object under `key`, or `None`.
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<StoredBytes>>;
    /// Stores `bytes` under `key` if `precondition` holds ([`StoreError::Conflict`] if not).
    fn put<'a>(
        &'a self,
        key: &'a str,
        bytes: Vec<u8>,
        precondition: Precondition,
    ) -> StoreFuture<'a, ()>;
    /// Deletes `keys` (absent keys are no error).
    fn delete<'a>(&'a self, keys: &'a [String]) -> StoreFuture<'a, ()>;
    /// Takes the lake's compaction lock for this run, or [`StoreError::Locked`]; the lock
    /// lasts until [`TableStore::unlock`] or the process ends (locally) or lapses (S3).
    fn lock(&self) -> StoreFuture<'_, ()>;
    /// Gives the lock back.
    fn unlock(&self) -> StoreFuture<'_, ()>;
    /// Where the store is, for messages.
    fn place(&self) -> String;
}
