//! The lake written straight into the bucket, one `PutObject` per partition of a delivery,
//! under the keys Firehose writes: for a backfill, which would otherwise push a whole
//! history through Firehose's regional quotas. Object names derive from the ids they hold,
//! so a repeated or resumed backfill replaces its own objects instead of adding copies.

use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use klaviyo_source::sink::lake_objects::lake_objects;
use klaviyo_source::sink::{DeliveryFuture, DeliveryReport, EventSink, SinkError};
use klaviyo_source::warehouse::row::WarehouseRow;
use tokio::time::Instant;

/// Writes rows as the lake's objects into `bucket`.
#[derive(Debug, Clone)]
pub struct S3LakeSink {
    client: Client,
    bucket: String,
    schema: String,
}

impl S3LakeSink {
    /// A lake in `bucket` whose tables live under `schema/`.
    pub fn new(client: Client, bucket: String, schema: String) -> Self {
        Self {
            client,
            bucket,
            schema,
        }
    }

    async fn write(&self, rows: Vec<WarehouseRow>) -> Result<DeliveryReport, SinkError> {
        let schema = self.schema.clone();
        let objects = tokio::task::spawn_blocking(move || lake_objects(&schema, &rows))
            .await
            .map_err(|err| SinkError::Task(err.to_string()))?
            .map_err(|err| SinkError::Task(err.to_string()))?;
        let mut report = DeliveryReport::default();
        for object in objects {
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&object.key)
                .body(ByteStream::from(object.gzip))
                .send()
                .await
                .map_err(|err| SinkError::ObjectStore {
                    key: object.key.clone(),
                    detail: err.code().unwrap_or("PutObject failed").to_owned(),
                })?;
            report.rows += object.rows;
            report.objects += 1;
        }
        Ok(report)
    }
}

impl EventSink for S3LakeSink {
    /// The SDK's own operation timeout bounds every call; the deadline is the run's, which
    /// stops fetching well before it.
    fn deliver<'a>(&'a self, rows: Vec<WarehouseRow>, _deadline: Instant) -> DeliveryFuture<'a> {
        Box::pin(self.write(rows))
    }
}
