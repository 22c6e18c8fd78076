//! The S3 calls every function makes on single objects, through `aws-sdk-s3`: put an object
//! (optionally conditional), get one, and list one key under a prefix. A thin layer that
//! turns the SDK's errors into the two cases callers act on: S3 refused (with its status and
//! error code), or S3 could not be reached.
//!
//! Conditional writes are S3's own: `If-None-Match: *` creates an object only if absent,
//! `If-Match: <ETag>` replaces it only if unchanged.
//! <https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html>

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_types::SdkConfig;
use bytes::Bytes;

use crate::aws_clients::s3_client;

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum S3Error {
    /// S3 answered with an error status (and usually an error code).
    #[error("S3 answered {status} {code}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// S3's error code (`NoSuchBucket`, `AccessDenied`, ...), or "" when the answer had none.
        code: String,
    },
    /// No answer: connection, TLS, time-out, or no credentials.
    #[error("S3 could not be reached: {0}")]
    Unreachable(String),
}

impl S3Error {
    /// What a failed read means, for messages: a 403 also answers a `GetObject` of a key
    /// that does not exist when the caller may not `s3:ListBucket` the bucket ("If you
    /// don't have the s3:ListBucket permission, Amazon S3 returns an HTTP status code 403",
    /// GetObject, Amazon S3 API Reference), so it names both causes.
    pub fn read_failure_detail(&self) -> String {
        match self {
            Self::Refused { status: 403, .. } => format!(
                "{self}: either the role may not s3:GetObject the key, or the object does not exist and the role may not s3:ListBucket the bucket (S3 then answers 403 instead of 404)"
            ),
            other => other.to_string(),
        }
    }
}

/// A condition on a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteCondition {
    /// Write whatever is there.
    Always,
    /// `If-None-Match: *`: only if no object has the key.
    IfAbsent,
    /// `If-Match: <ETag>`: only if the object is still this version.
    IfMatch(String),
}

/// A stored object: its bytes and its ETag.
#[derive(Debug, Clone)]
pub struct StoredObject {
    /// The body.
    pub body: Bytes,
    /// The ETag S3 gave it.
    pub etag: Option<String>,
}

/// S3 for one region and set of credentials.
#[derive(Debug, Clone)]
pub struct S3Objects {
    client: aws_sdk_s3::Client,
}

impl S3Objects {
    /// S3 as `sdk` describes it (region, credentials, endpoint override; see [`s3_client`]).
    pub fn new(sdk: &SdkConfig) -> Self {
        Self::from_client(s3_client(sdk))
    }

    /// Over an S3 client the caller already has.
    pub fn from_client(client: aws_sdk_s3::Client) -> Self {
        Self { client }
    }

    /// `PutObject`: stores `body` under `key`; the new ETag. A failed condition is
    /// `Refused { status: 412 }` (or 409 when a concurrent conditional write won).
    pub async fn put(
        &self,
        bucket: &str,
        key: &str,
        content_type: &'static str,
        body: Vec<u8>,
        condition: &WriteCondition,
    ) -> Result<Option<String>, S3Error> {
        let request = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body));
        let request = match condition {
            WriteCondition::Always => request,
            WriteCondition::IfAbsent => request.if_none_match("*"),
            WriteCondition::IfMatch(etag) => request.if_match(etag),
        };
        let output = request.send().await.map_err(classify)?;
        Ok(output.e_tag().map(str::to_owned))
    }

    /// `GetObject`: the object under `key`, or `None` when there is none (`NoSuchKey`).
    pub async fn get(&self, bucket: &str, key: &str) -> Result<Option<StoredObject>, S3Error> {
        let output = match self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(output) => output,
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|service| service.is_no_such_key()) =>
            {
                return Ok(None);
            }
            Err(err) => return Err(classify(err)),
        };
        let etag = output.e_tag().map(str::to_owned);
        let body = output
            .body
            .collect()
            .await
            .map_err(|err| S3Error::Unreachable(err.to_string()))?
            .into_bytes();
        Ok(Some(StoredObject { body, etag }))
    }

    /// `ListObjectsV2` of at most one key under `prefix`: whether the prefix can be read.
    pub async fn list_one(&self, bucket: &str, prefix: &str) -> Result<(), S3Error> {
        self.client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .max_keys(1)
            .send()
            .await
            .map(|_| ())
            .map_err(classify)
    }
}

impl S3Objects {
    /// `ListObjectsV2` of every key under `prefix`, all pages, sorted.
    pub async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, S3Error> {
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(classify)?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|object| object.key().map(str::to_owned)),
            );
        }
        keys.sort();
        Ok(keys)
    }

    /// `DeleteObjects` of `keys`, up to 1,000 per call (S3's limit); absent keys are no error.
    /// <https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html>
    pub async fn delete(&self, bucket: &str, keys: &[String]) -> Result<(), S3Error> {
        use aws_sdk_s3::types::{Delete, ObjectIdentifier};
        for chunk in keys.chunks(1000) {
            let objects = chunk
                .iter()
                .map(|key| ObjectIdentifier::builder().key(key).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|err| S3Error::Unreachable(err.to_string()))?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|err| S3Error::Unreachable(err.to_string()))?;
            self.client
                .delete_objects()
                .bucket(bucket)
                .delete(delete)
                .send()
                .await
                .map_err(classify)?;
        }
        Ok(())
    }
}

/// An SDK error as the two cases callers act on: an answer with an error status is a
/// refusal (status and S3's error code); anything without an answer is unreachable.
fn classify<E>(err: SdkError<E, HttpResponse>) -> S3Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = err.raw_response().map(|answer| answer.status().as_u16());
    match (&err, status) {
        (SdkError::ServiceError(_) | SdkError::ResponseError(_), Some(status)) => {
            S3Error::Refused {
                status,
                code: err.code().unwrap_or_default().to_owned(),
            }
        }
        _ => S3Error::Unreachable(DisplayErrorContext(&err).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denied_read_names_both_of_its_causes() {
        let denied = S3Error::Refused {
            status: 403,
            code: "AccessDenied".into(),
        };
        assert!(denied.read_failure_detail().contains("s3:ListBucket"));
        let unavailable = S3Error::Refused {
            status: 503,
            code: "SlowDown".into(),
        };
        assert_eq!(
            unavailable.read_failure_detail(),
            "S3 answered 503 SlowDown"
        );
    }
}
