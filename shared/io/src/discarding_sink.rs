//! A sink that discards rows: only for measuring the request path without storage
//! (`klaviyo-source serve --discard-events-for-benchmarks`). Never the default anywhere.

use tokio::time::Instant;

use crate::sink::{DeliveryFuture, DeliveryReport, EventSink};
use source_core::warehouse::row::WarehouseRow;

/// Acknowledges and drops every row.
#[derive(Debug, Default, Clone, Copy)]
pub struct DiscardingSink;

impl EventSink for DiscardingSink {
    fn deliver<'a>(&'a self, rows: Vec<WarehouseRow>, _deadline: Instant) -> DeliveryFuture<'a> {
        Box::pin(async move {
            Ok(DeliveryReport {
                rows: rows.len(),
                ..DeliveryReport::default()
            })
        })
    }
}
