//! `klaviyo-source redrive`: sends the rows in the dead-letter store to Firehose again, and
//! deletes each object only once all its rows were accepted. Rows keep their ids, so a
//! redrive that overlaps an earlier partial delivery adds no distinct ids.

use std::sync::Arc;

use source_io::aws_clients::load_sdk_config;
use source_io::config::{Config, SinkConfig};
use source_io::s3_objects::S3Objects;
use source_io::sink::EventSink;
use source_io::sink::dead_letter::decode_dead_letter;
use source_io::startup::firehose_sink;

/// Why a redrive stopped (an AWS call, a dead-letter object that does not decode).
pub type RedriveError = Box<dyn std::error::Error + Send + Sync>;

/// What a redrive did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RedriveSummary {
    /// Dead-letter objects found.
    pub objects: usize,
    /// Objects fully re-delivered and deleted.
    pub redriven: usize,
    /// Rows re-delivered.
    pub rows: usize,
    /// Objects left in place because delivery failed again.
    pub kept: usize,
}

/// Re-drives every object under the configured dead-letter prefix.
pub async fn redrive(config: &Config) -> Result<RedriveSummary, RedriveError> {
    let Some(SinkConfig::Firehose(firehose)) = &config.sink else {
        return Err("redrive needs DELIVERY_STREAM_NAME and DEAD_LETTER_BUCKET".into());
    };
    let sdk = load_sdk_config().await?;
    let s3 = Arc::new(S3Objects::new(&sdk));
    let sink = firehose_sink(firehose, &config.schema, &sdk, s3.clone());
    let bucket = &firehose.dead_letter_bucket;
    let mut summary = RedriveSummary::default();
    for key in s3.list(bucket, &firehose.dead_letter_prefix).await? {
        summary.objects += 1;
        let Some(object) = s3.get(bucket, &key).await? else {
            // Deleted since the listing (another redrive): nothing left to send.
            continue;
        };
        let rows = decode_dead_letter(&object.body)?;
        let count = rows.len();
        // An operator's command, not a request: each object gets API Gateway's whole budget.
        let deadline = tokio::time::Instant::now()
            + source_io::request_deadline::API_GATEWAY_INTEGRATION_TIMEOUT;
        let report = sink.deliver(rows, deadline).await?;
        if report.spilled == 0 {
            s3.delete(bucket, std::slice::from_ref(&key)).await?;
            summary.redriven += 1;
            summary.rows += count;
        } else {
            summary.kept += 1;
        }
    }
    Ok(summary)
}
