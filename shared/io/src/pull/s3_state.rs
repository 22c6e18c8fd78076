//! The pull's state as one S3 object, written with S3's conditional writes: `If-None-Match:
//! *` creates it only if absent, `If-Match: <ETag>` replaces it only if unchanged since it
//! was read; S3 answers 412 Precondition Failed otherwise.
//! <https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html>

use std::sync::Arc;

use source_core::pull::state::PullState;

use crate::s3_objects::{S3Error, S3Objects, WriteCondition};

use super::state_store::{PullStateStore, StateError, StateVersion, StoreFuture};

/// The state object `s3://bucket/key`.
#[derive(Debug, Clone)]
pub struct S3StateObject {
    s3: Arc<S3Objects>,
    bucket: String,
    key: String,
}

impl S3StateObject {
    /// The object `key` in `bucket`.
    pub fn new(s3: Arc<S3Objects>, bucket: String, key: String) -> Self {
        Self { s3, bucket, key }
    }

    fn failure(&self, detail: impl std::fmt::Display) -> StateError {
        StateError::Store {
            place: self.place(),
            detail: detail.to_string(),
        }
    }

    async fn read(&self) -> Result<(PullState, StateVersion), StateError> {
        let object = match self.s3.get(&self.bucket, &self.key).await {
            Ok(Some(object)) => object,
            Ok(None) => return Ok((PullState::default(), None)),
            Err(err) => return Err(self.failure(err.read_failure_detail())),
        };
        let state = serde_json::from_slice(&object.body).map_err(|err| StateError::Corrupt {
            place: self.place(),
            detail: err.to_string(),
        })?;
        Ok((state, object.etag))
    }

    async fn write_if(
        &self,
        state: &PullState,
        read_at: &StateVersion,
    ) -> Result<StateVersion, StateError> {
        let body = serde_json::to_vec_pretty(state).map_err(|err| self.failure(err))?;
        let condition = match read_at {
            Some(etag) => WriteCondition::IfMatch(etag.clone()),
            None => WriteCondition::IfAbsent,
        };
        match self
            .s3
            .put(
                &self.bucket,
                &self.key,
                "application/json",
                body,
                &condition,
            )
            .await
        {
            Ok(etag) => Ok(etag),
            // 412: changed since read; 409: a concurrent conditional write won. Or this very
            // write committed on an attempt whose answer was lost (a time-out the SDK
            // retried): then the stored state is the one written, and the run goes on.
            Err(S3Error::Refused {
                status: 412 | 409, ..
            }) => match self.read().await {
                Ok((stored, etag)) if stored == *state => Ok(etag),
                _ => Err(StateError::Conflict),
            },
            Err(err) => Err(self.failure(err)),
        }
    }
}

impl PullStateStore for S3StateObject {
    fn load(&self) -> StoreFuture<'_, (PullState, StateVersion)> {
        Box::pin(self.read())
    }

    fn save<'a>(
        &'a self,
        state: &'a PullState,
        read_at: &'a StateVersion,
    ) -> StoreFuture<'a, StateVersion> {
        Box::pin(self.write_if(state, read_at))
    }

    fn place(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}
