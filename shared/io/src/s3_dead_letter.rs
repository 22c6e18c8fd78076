//! The dead-letter store in S3.

use std::sync::Arc;

use crate::sink::dead_letter::{DeadLetterError, DeadLetterStore, StoreFuture};

use crate::s3_objects::{S3Error, S3Objects, WriteCondition};

/// Writes dead-letter objects to one bucket.
#[derive(Debug, Clone)]
pub struct S3DeadLetter {
    s3: Arc<S3Objects>,
    bucket: String,
}

impl S3DeadLetter {
    /// The store in `bucket`.
    pub fn new(s3: Arc<S3Objects>, bucket: impl Into<String>) -> Self {
        Self {
            s3,
            bucket: bucket.into(),
        }
    }
}

impl DeadLetterStore for S3DeadLetter {
    fn store<'a>(&'a self, key: String, object: Vec<u8>) -> StoreFuture<'a> {
        Box::pin(async move {
            self.s3
                .put(
                    &self.bucket,
                    &key,
                    "application/x-ndjson",
                    object,
                    &WriteCondition::Always,
                )
                .await
                .map_err(|err| match err {
                    // The service answered: a refusal with its error code.
                    S3Error::Refused { status, code } => {
                        DeadLetterError::Refused(if code.is_empty() {
                            format!("HTTP {status}")
                        } else {
                            code
                        })
                    }
                    S3Error::Unreachable(detail) => DeadLetterError::Unreachable(detail),
                })?;
            Ok(key)
        })
    }
}
