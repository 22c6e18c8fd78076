//! What mapping gives for each incoming event, whichever way it came in: a track event, or
//! a rejection kept for the rejected collection. Shared by every intake.

use chrono::{DateTime, Utc};

use super::message_id::message_id_from_content;
use crate::segment::track::TrackEvent;

/// The way an event came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntakeSource {
    /// A Klaviyo system webhook.
    KlaviyoWebhook,
    /// Segment's HTTP Tracking API.
    SegmentApi,
    /// Klaviyo's Events API, read by the pull.
    KlaviyoPull,
}

impl IntakeSource {
    /// The name stored in `rejected_events.source`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::KlaviyoWebhook => "klaviyo_webhook",
            Self::SegmentApi => "segment_api",
            Self::KlaviyoPull => "klaviyo_pull",
        }
    }

    /// The prefix of rejection ids, inside the source's own id namespace.
    fn rejected_id_prefix(self) -> &'static str {
        match self {
            // One Klaviyo namespace for both ways in: the same event is the same id.
            Self::KlaviyoWebhook | Self::KlaviyoPull => "klaviyo-rejected",
            Self::SegmentApi => "segment-rejected",
        }
    }
}

/// An event that could not become a track event, kept for the rejected collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// A deterministic id: replaying the same request rejects under the same id.
    pub message_id: String,
    /// Position in the request.
    pub index: usize,
    /// What is wrong, in words a person can act on.
    pub reason: String,
    /// The event's JSON text (credentials redacted).
    pub raw: String,
    /// Which intake it came to: `klaviyo_webhook`, `segment_api` or `klaviyo_pull`.
    pub source: &'static str,
    /// The webhook subscription it came from (webhooks only).
    pub webhook_id: Option<String>,
    /// When it was received.
    pub received_at: DateTime<Utc>,
}

impl Rejection {
    /// The rejection of the event at `index` whose text is `raw`; its id derives from the
    /// text, so a replay rejects under the same id.
    pub fn new(
        source: IntakeSource,
        index: usize,
        reason: String,
        raw: String,
        webhook_id: Option<String>,
        received_at: DateTime<Utc>,
    ) -> Self {
        Self {
            message_id: message_id_from_content(source.rejected_id_prefix(), raw.as_bytes()),
            index,
            reason,
            raw,
            source: source.as_str(),
            webhook_id,
            received_at,
        }
    }
}

/// The outcome for one incoming event.
pub type Mapped = Result<TrackEvent, Box<Rejection>>;
