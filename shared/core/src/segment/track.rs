//! A Segment-spec `track` event.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::klaviyo_context::KlaviyoContext;
use crate::decoded_object::DecodedObject;

/// Segment's limit on `messageId` length: ids at or above it are not accepted.
pub const MAX_MESSAGE_ID_LEN: usize = 100;

/// An event's properties, in the form its source gave them.
#[derive(Debug, Clone, PartialEq)]
pub enum Properties {
    /// A Segment client's `properties`, written as columns of their own names.
    Segment(Map<String, Value>),
    /// A Klaviyo event's `event_properties` (`properties.klaviyo`), kept decoded as they were
    /// read (not as a `Value` map) and written as the `klaviyo_*` columns. The event's Email
    /// spec properties (`email_id`, `campaign_id`, ...) are read from them when the row is
    /// written (`mapping::email_properties`), borrowed, not copied.
    Klaviyo(DecodedObject),
}

/// A `track` call as Segment's spec defines it (Segment's `messageId`, `userId`, ... in
/// snake_case), with what this source carries alongside.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackEvent {
    /// Always `"track"`.
    pub kind: &'static str,
    /// The dedupe key: stable across redeliveries of the same event.
    pub message_id: String,
    /// The event name, e.g. `Email Opened`.
    pub event: String,
    /// The collection's table name; not part of Segment's wire format, carried alongside.
    pub collection_slug: String,
    /// The id the customer's own systems know the recipient by.
    pub user_id: Option<String>,
    /// `context.integration` and `context.klaviyo` of an event that came from Klaviyo (its
    /// profile id is what identity looks up); `None` for a Segment client's event.
    pub klaviyo: Option<KlaviyoContext>,
    /// The fallback identity when there is no `user_id`.
    pub anonymous_id: Option<String>,
    /// Event properties, as the event's source gave them.
    pub properties: Properties,
    /// The rest of the context: a Segment client's whole context, or the `traits` identity
    /// adds to a Klaviyo event.
    pub context: Map<String, Value>,
    /// Destination switches sent by a Segment client; kept on the event, not stored as
    /// warehouse columns (Segment's warehouses do not store them either).
    pub integrations: Map<String, Value>,
    /// When the event happened (after any clock-skew correction), RFC 3339 UTC.
    pub timestamp: String,
    /// When the event happened according to its source, RFC 3339 UTC.
    pub original_timestamp: String,
    /// When the sender sent the request carrying it, if known. Shared, not copied, by the
    /// events of one request that share it.
    pub sent_at: Option<Arc<str>>,
    /// When this receiver got it; shared by the events of one request.
    pub received_at: Arc<str>,
}

impl TrackEvent {
    /// The `type` value of every track event.
    pub const KIND: &'static str = "track";

    /// The whole `context`, as JSON: the Klaviyo members and the rest.
    pub fn context_json(&self) -> Map<String, Value> {
        let mut context = self.context.clone();
        if let Some(klaviyo) = &self.klaviyo {
            context.extend(klaviyo.to_json());
        }
        context
    }
}

#[cfg(test)]
impl TrackEvent {
    /// An `Email Opened` event from Klaviyo about `profile_id`, identity not yet applied: what
    /// the identity and row tests start from.
    pub(crate) fn klaviyo_opened_for_tests(message_id: &str, profile_id: &str) -> Self {
        Self {
            kind: Self::KIND,
            message_id: message_id.into(),
            event: "Email Opened".into(),
            collection_slug: "email_opened".into(),
            user_id: None,
            klaviyo: Some(KlaviyoContext::for_profile(profile_id)),
            anonymous_id: Some(profile_id.into()),
            properties: Properties::Klaviyo(DecodedObject::default()),
            context: Map::new(),
            timestamp: "2024-01-04T18:05:01.000Z".into(),
            original_timestamp: "2024-01-04T18:05:01.000Z".into(),
            integrations: Map::new(),
            sent_at: None,
            received_at: "2024-01-04T18:05:30.000Z".into(),
        }
    }
}
