//! Klaviyo events → Segment track events, whether a webhook pushed them or the pull read
//! them from the Events API: one mapping, so both give the same row and the same id.
//!
//! Identity rule until profile lookup exists: Klaviyo's payload names the recipient only
//! by its Klaviyo profile id, so `userId` stays empty (it is never invented), the profile
//! id becomes the `anonymousId`, and `context.klaviyo.profile_id` keeps it queryable with
//! `context.klaviyo.identity_resolved = false` marking the row for a later fix-up.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Map;

use super::message_id::{message_id_from_content, message_id_from_klaviyo_id};
use super::outcome::{IntakeSource, Mapped, Rejection};
use crate::event_time::check_event_time;
use crate::klaviyo::topic::collection_for_topic;
use crate::klaviyo::webhook::{
    BrokenEvent, DecodedEvent, KlaviyoEvent, VerifiedWebhook, WebhookMeta,
};
use crate::segment::klaviyo_context::KlaviyoContext;
use crate::segment::track::{Properties, TrackEvent};
use crate::time_format::{format_timestamp, parse_iso_datetime};

/// The times a request was signed and received, passed in so mapping stays pure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// `Klaviyo-Timestamp`: when Klaviyo signed the request.
    pub signed_at: DateTime<Utc>,
    /// When this receiver got the request.
    pub received_at: DateTime<Utc>,
}

/// How a Klaviyo event reached us; everything else about its row is the same.
#[derive(Debug, Clone, Copy)]
pub enum KlaviyoDelivery<'a> {
    /// Pushed by a system webhook: its envelope and the batch's send time.
    Webhook {
        /// The envelope's meta.
        meta: &'a WebhookMeta,
        /// When Klaviyo sent the batch (RFC 3339).
        sent_at: &'a str,
    },
    /// Read from the Events API under the pinned `revision`.
    Pull {
        /// The `revision` header the page was read with.
        revision: &'a str,
        /// The account's id (`GET /api/accounts`), when the key may read it.
        account_id: Option<&'a str>,
    },
}

impl KlaviyoDelivery<'_> {
    /// `context.klaviyo.source`: `webhook` or `pull`.
    fn source_name(&self) -> &'static str {
        match self {
            Self::Webhook { .. } => "webhook",
            Self::Pull { .. } => "pull",
        }
    }

    fn intake(&self) -> IntakeSource {
        match self {
            Self::Webhook { .. } => IntakeSource::KlaviyoWebhook,
            Self::Pull { .. } => IntakeSource::KlaviyoPull,
        }
    }

    fn webhook_id(&self) -> Option<String> {
        match self {
            Self::Webhook { meta, .. } => Some(meta.webhook_id.clone()),
            Self::Pull { .. } => None,
        }
    }

    /// The API revision of the payload: `meta.version` of a webhook, the pull's pinned one.
    fn revision(&self) -> Option<&str> {
        match self {
            Self::Webhook { meta, .. } => meta.version.as_deref(),
            Self::Pull { revision, .. } => Some(revision),
        }
    }
}

/// Maps every element of `webhook`, in order. Never drops one: each is a track event or a
/// rejection.
pub fn map_webhook(webhook: VerifiedWebhook<'_>, receipt: Receipt) -> Vec<Mapped> {
    let (meta, events) = webhook.into_parts();
    // The batch's send time is the same for every event: work it out once.
    let sent_at = batch_sent_at(&meta, receipt);
    let delivery = KlaviyoDelivery::Webhook {
        meta: &meta,
        sent_at: &sent_at,
    };
    map_klaviyo_events(events, delivery, receipt.received_at)
}

/// Maps decoded Klaviyo events, in order: each is a track event or a rejection.
pub fn map_klaviyo_events(
    events: Vec<DecodedEvent<'_>>,
    delivery: KlaviyoDelivery<'_>,
    received_at: DateTime<Utc>,
) -> Vec<Mapped> {
    let shared = BatchShared::of(delivery, received_at);
    events
        .into_iter()
        .map(|decoded| match decoded {
            Ok(event) => map_event(event, delivery, received_at, &shared),
            Err(broken) => Err(Box::new(reject_broken(&broken, delivery, received_at))),
        })
        .collect()
}

/// What every event of a batch carries alike, made once and shared by the events (a
/// reference count each, not a copy each).
struct BatchShared {
    /// `received_at` as written.
    received_text: Arc<str>,
    sent_at: Option<Arc<str>>,
    revision: Option<Arc<str>>,
    webhook_id: Option<Arc<str>>,
    account_id: Option<Arc<str>>,
}

impl BatchShared {
    fn of(delivery: KlaviyoDelivery<'_>, received_at: DateTime<Utc>) -> Self {
        let (sent_at, account_id) = match delivery {
            KlaviyoDelivery::Webhook { meta, sent_at } => (
                Some(sent_at.into()),
                meta.account_id.as_deref().map(Arc::from),
            ),
            KlaviyoDelivery::Pull { account_id, .. } => (None, account_id.map(Arc::from)),
        };
        Self {
            received_text: format_timestamp(received_at).into(),
            sent_at,
            revision: delivery.revision().map(Arc::from),
            webhook_id: delivery.webhook_id().map(Arc::from),
            account_id,
        }
    }
}

fn map_event(
    mut event: KlaviyoEvent<'_>,
    delivery: KlaviyoDelivery<'_>,
    received_at: DateTime<Utc>,
    shared: &BatchShared,
) -> Mapped {
    let reject = |reason: &str| {
        Box::new(Rejection::new(
            delivery.intake(),
            event.index,
            format!("data[{}]: {reason}", event.index),
            event.raw.to_owned(),
            delivery.webhook_id(),
            received_at,
        ))
    };
    let Some(occurred_at) = event.occurred_at() else {
        return Err(reject(
            "attributes.datetime and attributes.timestamp are not valid times",
        ));
    };
    if let Err(reason) = check_event_time(occurred_at, received_at) {
        return Err(reject(&reason));
    }
    let Some(profile_id) = event.profile_id.take().filter(|id| !id.is_empty()) else {
        return Err(reject(
            "relationships.profile names no profile, so the event has no recipient",
        ));
    };
    let (event_name, collection_slug) = collection_for_topic(&event.topic).into_parts();
    let message_id = match [&event.event_id, &event.external_id, &event.uuid]
        .into_iter()
        .flatten()
        .find(|id| !id.is_empty())
    {
        Some(klaviyo_id) => message_id_from_klaviyo_id(klaviyo_id),
        None => message_id_from_content("klaviyo-c", event.raw.as_bytes()),
    };

    let occurred = format_timestamp(occurred_at);
    Ok(TrackEvent {
        kind: TrackEvent::KIND,
        message_id,
        event: event_name,
        collection_slug,
        user_id: None,
        // The event's own ids move into the context: nothing else reads them.
        klaviyo: Some(KlaviyoContext {
            integration_version: shared.revision.clone(),
            profile_id: profile_id.clone(),
            identity_resolved: false,
            topic: event.topic,
            source: delivery.source_name(),
            webhook_id: shared.webhook_id.clone(),
            event_id: event.event_id,
            event_uuid: event.uuid,
            external_id: event.external_id,
            metric_id: event.metric_id,
            account_id: shared.account_id.clone(),
        }),
        anonymous_id: Some(profile_id),
        // The Email spec properties are read from Klaviyo's when the row is written.
        properties: Properties::Klaviyo(event.properties),
        context: Map::new(),
        integrations: Map::new(),
        // Klaviyo's event time comes from Klaviyo's servers, not from a device with a
        // drifting clock, so Segment's skew correction would only subtract network delay.
        timestamp: occurred.clone(),
        original_timestamp: occurred,
        sent_at: shared.sent_at.clone(),
        received_at: shared.received_text.clone(),
    })
}

/// `meta.timestamp`, or, when absent or unreadable, when Klaviyo signed the request.
fn batch_sent_at(meta: &WebhookMeta, receipt: Receipt) -> String {
    format_timestamp(
        meta.timestamp
            .as_deref()
            .and_then(parse_iso_datetime)
            .unwrap_or(receipt.signed_at),
    )
}

fn reject_broken(
    broken: &BrokenEvent<'_>,
    delivery: KlaviyoDelivery<'_>,
    received_at: DateTime<Utc>,
) -> Rejection {
    Rejection::new(
        delivery.intake(),
        broken.index,
        broken.reason.clone(),
        broken.raw.to_owned(),
        delivery.webhook_id(),
        received_at,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoded_object::DecodedObject;
    use crate::time_format::parse_iso_datetime;

    fn meta() -> WebhookMeta {
        WebhookMeta {
            webhook_id: "wh".into(),
            account_id: None,
            timestamp: None,
            version: None,
        }
    }

    fn receipt() -> Receipt {
        Receipt {
            signed_at: parse_iso_datetime("2024-01-04T18:05:25Z").unwrap(),
            received_at: parse_iso_datetime("2024-01-04T18:05:30Z").unwrap(),
        }
    }

    const SENT: &str = "2024-01-04T18:05:25.000Z";

    fn delivered(meta: &WebhookMeta) -> KlaviyoDelivery<'_> {
        KlaviyoDelivery::Webhook {
            meta,
            sent_at: SENT,
        }
    }

    fn received() -> DateTime<Utc> {
        receipt().received_at
    }

    /// `map_event` for a webhook event received at `received()`.
    fn map_received(event: KlaviyoEvent<'_>) -> Mapped {
        let meta = meta();
        let delivery = delivered(&meta);
        map_event(
            event,
            delivery,
            received(),
            &BatchShared::of(delivery, received()),
        )
    }

    fn event() -> KlaviyoEvent<'static> {
        KlaviyoEvent {
            index: 0,
            external_id: Some("EXT".into()),
            topic: "event:klaviyo.opened_email".into(),
            event_id: Some("EVT".into()),
            uuid: Some("UUID".into()),
            datetime: Some("2024-01-04T18:05:01+00:00".into()),
            timestamp: None,
            properties: DecodedObject::default(),
            metric_id: None,
            profile_id: Some("PROFILE".into()),
            raw: "{}",
        }
    }

    #[test]
    fn rejects_events_dated_outside_the_tables_range() {
        for (datetime, phrase) in [
            ("2100-01-01T00:00:00+00:00", "after it was received"),
            ("1990-01-01T00:00:00+00:00", "before 2000-01-01"),
        ] {
            let dated = KlaviyoEvent {
                datetime: Some(datetime.into()),
                ..event()
            };
            let rejection = map_received(dated).unwrap_err();
            assert!(rejection.reason.contains(phrase), "{}", rejection.reason);
        }
        let next_month = KlaviyoEvent {
            datetime: Some("2024-02-04T00:00:00+00:00".into()),
            ..event()
        };
        assert!(map_received(next_month).is_ok());
    }

    #[test]
    fn falls_back_through_the_klaviyo_ids_for_the_message_id() {
        assert_eq!(map_received(event()).unwrap().message_id, "klaviyo-EVT");
        let external = KlaviyoEvent {
            event_id: None,
            ..event()
        };
        assert_eq!(map_received(external).unwrap().message_id, "klaviyo-EXT");
        let uuid = KlaviyoEvent {
            event_id: None,
            external_id: None,
            ..event()
        };
        assert_eq!(map_received(uuid).unwrap().message_id, "klaviyo-UUID");
        let none = KlaviyoEvent {
            event_id: None,
            external_id: None,
            uuid: None,
            ..event()
        };
        let id = map_received(none).unwrap().message_id;
        assert!(id.starts_with("klaviyo-c-"), "{id}");
    }

    #[test]
    fn never_invents_a_user_id() {
        let track = map_received(event()).unwrap();
        assert_eq!(track.user_id, None);
        assert_eq!(track.anonymous_id.as_deref(), Some("PROFILE"));
        assert_eq!(track.context_json()["klaviyo"]["identity_resolved"], false);
    }

    #[test]
    fn sent_at_falls_back_to_the_signing_time() {
        assert_eq!(
            batch_sent_at(&meta(), receipt()),
            "2024-01-04T18:05:25.000Z"
        );
        let with_meta = WebhookMeta {
            timestamp: Some("2024-01-04 18:05:20.123456+00:00".into()),
            ..meta()
        };
        assert_eq!(
            batch_sent_at(&with_meta, receipt()),
            "2024-01-04T18:05:20.123Z"
        );
        let unreadable = WebhookMeta {
            timestamp: Some("soon".into()),
            ..meta()
        };
        assert_eq!(
            batch_sent_at(&unreadable, receipt()),
            "2024-01-04T18:05:25.000Z"
        );
    }

    #[test]
    fn rejects_events_without_recipient_or_valid_time() {
        let no_profile = KlaviyoEvent {
            profile_id: None,
            ..event()
        };
        let err = map_received(no_profile).unwrap_err();
        assert!(err.reason.contains("profile"), "{}", err.reason);
        let bad_time = KlaviyoEvent {
            datetime: Some("soon".into()),
            ..event()
        };
        let err = map_received(bad_time).unwrap_err();
        assert!(err.reason.contains("datetime"), "{}", err.reason);
        assert_eq!(err.webhook_id.as_deref(), Some("wh"));
    }

    #[test]
    fn an_unparseable_datetime_falls_back_to_the_unix_timestamp() {
        let both = KlaviyoEvent {
            datetime: Some("soon".into()),
            timestamp: Some(1_704_391_501),
            ..event()
        };
        assert_eq!(
            map_received(both).unwrap().timestamp,
            "2024-01-04T18:05:01.000Z"
        );
    }
}
