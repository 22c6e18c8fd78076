//! The pull's state as one S3 object, written with S3's conditional writes: `If-None-Match:
//! *` creates it only if absent, `If-Match: <ETag>` replaces it only if unchanged since it
//! was read; S3 answers 412 Precondition Failed otherwise.
//! <https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html>

use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use klaviyo_source::pull::state::PullState;

use super::state_store::{PullStateStore, StateError, StateVersion, StoreFuture};

/// The state object `s3://bucket/key`.
#[derive(Debug, Clone)]
pub struct S3StateObject {
    client: Client,
    bucket: String,
    key: String,
}

impl S3StateObject {
    /// The object `key` in `bucket`.
    pub fn new(client: Client, bucket: String, key: String) -> Self {
        Self {
            client,
            bucket,
            key,
        }
    }

    fn failure(&self, detail: impl std::fmt::Display) -> StateError {
        StateError::Store {
            place: self.place(),
            detail: detail.to_string(),
        }
    }

    async fn read(&self) -> Result<(PullState, StateVersion), StateError> {
        let answer = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .send()
            .await;
        let object = match answer {
            Ok(object) => object,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Ok((PullState::default(), None));
            }
            Err(err) => return Err(self.failure(err.code().unwrap_or("GetObject failed"))),
        };
        let etag = object.e_tag().map(str::to_owned);
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|err| self.failure(err))?
            .into_bytes();
        let state = serde_json::from_slice(&bytes).map_err(|err| StateError::Corrupt {
            place: self.place(),
            detail: err.to_string(),
        })?;
        Ok((state, etag))
    }

    async fn write_if(
        &self,
        state: &PullState,
        read_at: &StateVersion,
    ) -> Result<StateVersion, StateError> {
        let body = serde_json::to_vec_pretty(state).map_err(|err| self.failure(err))?;
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .content_type("application/json")
            .body(ByteStream::from(body));
        request = match read_at {
            Some(etag) => request.if_match(etag),
            None => request.if_none_match("*"),
        };
        match request.send().await {
            Ok(written) => Ok(written.e_tag().map(str::to_owned)),
            Err(err) => match err.raw_response().map(|r| r.status().as_u16()) {
                // 412: changed since read; 409: a concurrent conditional write won.
                Some(412 | 409) => Err(StateError::Conflict),
                _ => Err(self.failure(err.code().unwrap_or("PutObject failed"))),
            },
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
