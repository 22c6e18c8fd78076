//! A Segment-spec `track` event.

use serde::Serialize;
use serde_json::{Map, Value};

/// Segment's limit on `messageId` length: ids at or above it are not accepted.
pub const MAX_MESSAGE_ID_LEN: usize = 100;

/// A `track` call as Segment's spec defines it (field names as on the wire).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackEvent {
    /// Always `"track"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The dedupe key: stable across redeliveries of the same event.
    pub message_id: String,
    /// The event name, e.g. `Email Opened`.
    pub event: String,
    /// The collection's table name; not part of Segment's wire format, carried alongside.
    #[serde(skip)]
    pub collection_slug: String,
    /// The id the customer's own systems know the recipient by.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The Klaviyo profile the event is about, when Klaviyo sent it (identity looks it up);
    /// not part of Segment's wire format.
    #[serde(skip)]
    pub klaviyo_profile_id: Option<String>,
    /// The fallback identity when there is no `user_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anonymous_id: Option<String>,
    /// Event properties.
    pub properties: Map<String, Value>,
    /// Context: integration, traits, Klaviyo identifiers.
    pub context: Map<String, Value>,
    /// Destination switches sent by a Segment client; kept on the event, not stored as
    /// warehouse columns (Segment's warehouses do not store them either).
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub integrations: Map<String, Value>,
    /// When the event happened (after any clock-skew correction), RFC 3339 UTC.
    pub timestamp: String,
    /// When the event happened according to its source, RFC 3339 UTC.
    pub original_timestamp: String,
    /// When the sender sent the request carrying it, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<String>,
    /// When this receiver got it.
    pub received_at: String,
}

impl TrackEvent {
    /// The `type` value of every track event.
    pub const KIND: &'static str = "track";
}
