//! The dead-letter store in S3.

use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use klaviyo_source::sink::dead_letter::{DeadLetterError, DeadLetterStore, StoreFuture};

/// Writes dead-letter objects to one bucket.
#[derive(Debug, Clone)]
pub struct S3DeadLetter {
    client: Client,
    bucket: String,
}

impl S3DeadLetter {
    /// The store in `bucket`.
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }
}

impl DeadLetterStore for S3DeadLetter {
    fn store<'a>(&'a self, key: String, object: Vec<u8>) -> StoreFuture<'a> {
        Box::pin(async move {
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&key)
                .content_type("application/x-ndjson")
                .body(ByteStream::from(object))
                .send()
                .await
                .map_err(|err| match err.code() {
                    // The service answered: a refusal with its error code.
                    Some(code) => DeadLetterError::Refused(code.to_owned()),
                    None => DeadLetterError::Unreachable(
                        aws_sdk_s3::error::DisplayErrorContext(err).to_string(),
                    ),
                })?;
            Ok(key)
        })
    }
}
