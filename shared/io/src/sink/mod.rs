//! Where warehouse rows go: Firehose in AWS, a local partitioned directory as the embedded
//! default, memory in tests. Every sink answers only once the rows are durable.

pub mod dead_letter;
pub mod firehose;
pub mod lake_objects;
pub mod local_lake;
#[cfg(any(test, feature = "test-doubles"))]
pub mod memory;

use std::future::Future;
use std::pin::Pin;

use tokio::time::Instant;

use source_core::warehouse::row::WarehouseRow;

/// What a delivery did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Rows now durably stored.
    pub rows: usize,
    /// Objects (files, Firehose records, ...) written for them.
    pub objects: usize,
    /// Records sent to Firehose more than once (each resend counted).
    pub resent: usize,
    /// Rows stored in the dead-letter store instead of the lake.
    pub spilled: usize,
}

/// Why rows could not be stored. The caller must not acknowledge them.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A local file operation failed.
    #[error("local lake write failed at {path}: {source}")]
    LocalIo {
        /// The file or directory involved.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Rows could not be encoded.
    #[error("row encoding failed: {0}")]
    Encoding(#[from] serde_json::Error),
    /// Delivery failed and the dead-letter store failed too: nothing may be acknowledged.
    #[error("delivery failed ({delivery}) and the dead-letter store failed ({dead_letter})")]
    DeadLetter {
        /// Why delivery failed.
        delivery: String,
        /// Why the spill failed.
        #[source]
        dead_letter: dead_letter::DeadLetterError,
    },
    /// The blocking writer task did not finish.
    #[error("writer task failed: {0}")]
    Task(String),
    /// An object of the lake could not be written to its bucket.
    #[error("writing {key} to the bucket failed: {detail}")]
    ObjectStore {
        /// The object's key.
        key: String,
        /// What the store answered.
        detail: String,
    },
}

/// A boxed delivery future, so sinks can be used as trait objects.
pub type DeliveryFuture<'a> =
    Pin<Box<dyn Future<Output = Result<DeliveryReport, SinkError>> + Send + 'a>>;

/// A destination for warehouse rows.
pub trait EventSink: Send + Sync {
    /// Stores `rows` durably, or fails without acknowledging any of them, finishing before
    /// `deadline` (the request's: past it, the caller can no longer answer).
    fn deliver<'a>(&'a self, rows: Vec<WarehouseRow>, deadline: Instant) -> DeliveryFuture<'a>;
}
