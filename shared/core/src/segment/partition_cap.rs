//! How many Firehose partitions a Segment caller may open. Every event name becomes a
//! `collection=` partition and every caller-chosen `timestamp` a `dt=` one, and Firehose
//! sends everything past 500 active partitions of a stream to its error prefix
//! ("Buffer data for dynamic partitioning"). Segment write keys travel in client code, so
//! one caller must not be able to fill that budget for everyone:
//!
//! - one `/v1/track` or `/v1/batch` request may open at most [`MAX_PARTITIONS_PER_REQUEST`]
//!   distinct (collection, day) partitions;
//! - across Segment requests, an instance admits at most [`MAX_PARTITIONS_PER_MINUTE`]
//!   distinct partitions in any 60 seconds (a partition seen again within the minute costs
//!   nothing);
//! - `/v1/import` (history) is held to neither: what passes Firehose's limit lands in its
//!   error prefix, and the compaction takes those rows into the tables.

use std::collections::{BTreeSet, HashMap};

use crate::mapping::outcome::Mapped;
use crate::warehouse::row::PartitionKey;

/// Distinct (collection, day) partitions one track or batch request may open.
pub const MAX_PARTITIONS_PER_REQUEST: usize = 100;
/// Distinct partitions an instance admits from Segment requests in any 60 seconds: room for
/// Klaviyo's own events within Firehose's 500.
pub const MAX_PARTITIONS_PER_MINUTE: usize = 400;
/// The window of [`MAX_PARTITIONS_PER_MINUTE`], milliseconds.
const WINDOW_MS: i64 = 60_000;

/// The partitions the mapped events of a request open (rejected events go to one partition
/// of their own, counted once).
pub fn request_partitions(mapped: &[Mapped]) -> BTreeSet<PartitionKey> {
    let mut partitions = BTreeSet::new();
    let mut rejected = false;
    for event in mapped {
        match event {
            Ok(track) => {
                if let Some(key) = PartitionKey::of_row(&track.collection_slug, &track.timestamp) {
                    partitions.insert(key);
                }
            }
            Err(_) => rejected = true,
        }
    }
    if rejected {
        partitions.insert(PartitionKey {
            collection: "rejected_events".into(),
            dt: String::new(),
        });
    }
    partitions
}

/// The partitions an instance admitted in the last minute, and when each was last seen.
#[derive(Debug, Default)]
pub struct PartitionWindow {
    last_seen_ms: HashMap<PartitionKey, i64>,
}

impl PartitionWindow {
    /// Admits `partitions` at `now_ms` if the minute's distinct partitions stay within
    /// [`MAX_PARTITIONS_PER_MINUTE`]; `Err` with the count they would have made.
    pub fn admit(&mut self, partitions: &BTreeSet<PartitionKey>, now_ms: i64) -> Result<(), usize> {
        self.last_seen_ms
            .retain(|_, seen| now_ms.saturating_sub(*seen) < WINDOW_MS);
        let new = partitions
            .iter()
            .filter(|key| !self.last_seen_ms.contains_key(*key))
            .count();
        let total = self.last_seen_ms.len() + new;
        if total > MAX_PARTITIONS_PER_MINUTE {
            return Err(total);
        }
        for key in partitions {
            self.last_seen_ms.insert(key.clone(), now_ms);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(range: std::ops::Range<usize>) -> BTreeSet<PartitionKey> {
        range
            .map(|day| PartitionKey {
                collection: "order_completed".into(),
                dt: format!("day-{day}"),
            })
            .collect()
    }

    #[test]
    fn a_minute_admits_at_most_its_partitions_and_a_seen_one_costs_nothing() {
        let mut window = PartitionWindow::default();
        assert_eq!(window.admit(&keys(0..300), 0), Ok(()));
        assert_eq!(window.admit(&keys(0..300), 1_000), Ok(()));
        assert_eq!(window.admit(&keys(300..401), 2_000), Err(401));
        assert_eq!(window.admit(&keys(300..400), 3_000), Ok(()));
        assert_eq!(window.admit(&keys(400..500), 30_000), Err(500));
        // A minute after the first 300 were last seen, they no longer count.
        assert_eq!(window.admit(&keys(400..500), 61_000), Ok(()));
    }
}
