//! The lake written straight into the bucket, one `PutObject` per partition of a delivery,
//! under the keys Firehose writes: for a backfill, which would otherwise push a whole
//! history through Firehose's regional quotas. Object names derive from the ids they hold,
//! so a repeated or resumed backfill replaces its own objects instead of adding copies.

use std::sync::Arc;

use crate::sink::lake_objects::lake_objects;
use crate::sink::{DeliveryFuture, DeliveryReport, EventSink, SinkError};
use source_core::warehouse::row::WarehouseRow;
use tokio::time::Instant;

use crate::s3_objects::{S3Objects, WriteCondition};

/// Writes rows as the lake's objects into `bucket`.
#[derive(Debug, Clone)]
pub struct S3LakeSink {
    s3: Arc<S3Objects>,
    bucket: String,
    schema: String,
}

impl S3LakeSink {
    /// A lake in `bucket` whose tables live under `schema/`.
    pub fn new(s3: Arc<S3Objects>, bucket: String, schema: String) -> Self {
        Self { s3, bucket, schema }
    }

    async fn write(&self, rows: Vec<WarehouseRow>) -> Result<DeliveryReport, SinkError> {
        let schema = self.schema.clone();
        let objects = tokio::task::spawn_blocking(move || lake_objects(&schema, &rows))
            .await
            .map_err(|err| SinkError::Task(err.to_string()))??;
        let mut report = DeliveryReport::default();
        for object in objects {
            self.s3
                .put(
                    &self.bucket,
                    &object.key,
                    "application/octet-stream",
                    object.gzip,
                    &WriteCondition::Always,
                )
                .await
                .map_err(|err| SinkError::ObjectStore {
                    key: object.key.clone(),
                    detail: err.to_string(),
                })?;
            report.rows += object.rows;
            report.objects += 1;
        }
        Ok(report)
    }
}

impl EventSink for S3LakeSink {
    /// Each call's attempts are bounded in time (s3_objects.rs); the deadline is the run's,
    /// which stops fetching well before it.
    fn deliver<'a>(&'a self, rows: Vec<WarehouseRow>, _deadline: Instant) -> DeliveryFuture<'a> {
        Box::pin(self.write(rows))
    }
}
