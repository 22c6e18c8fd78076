//! An in-memory sink for tests.

use std::sync::{Mutex, PoisonError};

use tokio::time::Instant;

use super::{DeliveryFuture, DeliveryReport, EventSink};
use source_core::warehouse::row::WarehouseRow;

/// Keeps every delivered row in memory.
#[derive(Debug, Default)]
pub struct MemorySink {
    rows: Mutex<Vec<WarehouseRow>>,
}

impl MemorySink {
    /// A copy of every row delivered so far, in order.
    pub fn rows(&self) -> Vec<WarehouseRow> {
        self.rows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl EventSink for MemorySink {
    fn deliver<'a>(&'a self, rows: Vec<WarehouseRow>, _deadline: Instant) -> DeliveryFuture<'a> {
        Box::pin(async move {
            let count = rows.len();
            self.rows
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend(rows);
            Ok(DeliveryReport {
                rows: count,
                objects: count,
                ..DeliveryReport::default()
            })
        })
    }
}
