//! The state every request needs, built once at start-up. A leaf module: the routes and
//! the router import it, it imports neither.

use std::sync::{Arc, Mutex};

use source_core::segment::partition_cap::PartitionWindow;

use crate::identity::resolver::IdentityResolver;
use crate::sink::EventSink;
use chrono::{DateTime, Utc};
use source_core::klaviyo::signature::SignatureVerifier;
use source_core::segment::write_keys::SegmentWriteKeys;

use crate::metrics::MetricsEmitter;

/// A source of the current time; tests pin it.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// What every request needs, built once at start-up.
#[derive(Clone)]
pub struct AppState {
    /// Checks `Klaviyo-Signature` against the write keys.
    pub verifier: Arc<SignatureVerifier>,
    /// Where accepted rows go.
    pub sink: Arc<dyn EventSink>,
    /// Largest accepted body, bytes.
    pub max_body_bytes: usize,
    /// The current time.
    pub clock: Clock,
    /// CloudWatch EMF metric lines.
    pub metrics: MetricsEmitter,
    /// Klaviyo profile lookup, when an API key is configured.
    pub identity: Option<Arc<IdentityResolver>>,
    /// Store only events of profiles with an `external_id`.
    pub only_own_profiles: bool,
    /// The Segment API's own write keys (empty: every Segment call is refused).
    pub segment_keys: Arc<SegmentWriteKeys>,
    /// The Firehose partitions Segment requests opened in the last minute.
    pub segment_partitions: Arc<Mutex<PartitionWindow>>,
}

impl AppState {
    /// State with the system clock, metrics off and no profile lookup.
    pub fn new(
        verifier: SignatureVerifier,
        sink: Arc<dyn EventSink>,
        max_body_bytes: usize,
    ) -> Self {
        Self {
            verifier: Arc::new(verifier),
            sink,
            max_body_bytes,
            clock: Arc::new(Utc::now),
            metrics: MetricsEmitter::new(false),
            identity: None,
            only_own_profiles: false,
            segment_keys: Arc::new(SegmentWriteKeys::default()),
            segment_partitions: Arc::new(Mutex::new(PartitionWindow::default())),
        }
    }
}
