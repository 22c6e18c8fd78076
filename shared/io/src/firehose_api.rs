//! `PutRecordBatch` through the AWS SDK, behind the core's `RecordBatchApi`.

use crate::firehose::delivery::{CallError, CallFuture, RecordBatchApi, RecordResult};
use aws_sdk_firehose::Client;
use aws_sdk_firehose::error::SdkError;
use aws_sdk_firehose::operation::put_record_batch::PutRecordBatchError;
use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record;

/// One delivery stream reached through the SDK.
#[derive(Debug, Clone)]
pub struct SdkFirehose {
    client: Client,
    stream: String,
}

impl SdkFirehose {
    /// The stream `stream` through `client`.
    pub fn new(client: Client, stream: impl Into<String>) -> Self {
        Self {
            client,
            stream: stream.into(),
        }
    }
}

/// Sorts an SDK failure by what can be done about it: a stream that does not exist, an
/// invalid request or a refused KMS key is permanent (the rows are spilled at once); throttling,
/// timeouts and network failures, which outlasted the SDK's own retries, are transient.
fn classify(err: SdkError<PutRecordBatchError>) -> CallError {
    let permanent = err.as_service_error().is_some_and(|service| {
        service.is_resource_not_found_exception()
            || service.is_invalid_argument_exception()
            || service.is_invalid_kms_resource_exception()
            || service.is_invalid_source_exception()
            || service.meta().code() == Some("AccessDeniedException")
    });
    let text = aws_sdk_firehose::error::DisplayErrorContext(err).to_string();
    if permanent {
        CallError::Permanent(text)
    } else {
        CallError::Transient(text)
    }
}

impl RecordBatchApi for SdkFirehose {
    fn put_record_batch<'a>(&'a self, records: Vec<Vec<u8>>) -> CallFuture<'a> {
        Box::pin(async move {
            let count = records.len();
            let records = records
                .into_iter()
                .map(|data| Record::builder().data(Blob::new(data)).build())
                .collect::<Result<Vec<Record>, _>>()
                .map_err(|err| CallError::Permanent(err.to_string()))?;
            let output = self
                .client
                .put_record_batch()
                .delivery_stream_name(&self.stream)
                .set_records(Some(records))
                .send()
                .await
                .map_err(classify)?;
            let results: Vec<RecordResult> = output
                .request_responses()
                .iter()
                .map(|entry| entry.error_code().map(str::to_owned))
                .collect();
            let failed = results.iter().filter(|r| r.is_some()).count();
            if i64::from(output.failed_put_count()) != failed as i64 {
                tracing::warn!(
                    failed_put_count = output.failed_put_count(),
                    failed_entries = failed,
                    records = count,
                    "FailedPutCount disagrees with the per-record answers; trusting the entries"
                );
            }
            Ok(results)
        })
    }
}
