//! Segment HTTP Tracking API calls → track events (pure).
//!
//! Rules (Segment's, except where honesty asks for more):
//! - each event needs `event` and one of `userId` / `anonymousId`; `type`, when present,
//!   must be `track` (in a batch it is required): other types are rejected by name;
//! - batch-level `context` and `integrations` are merged into each event, the event's own
//!   keys winning (objects merged key by key);
//! - `messageId` is kept (it must be under 100 characters); without one, it is derived from
//!   the event's content (minus `sentAt`), so a retried call keeps its id;
//! - times: `originalTimestamp` (else an explicit `timestamp`, else receipt); `timestamp` is
//!   the explicit one if given, else corrected for the sender's clock skew when `sentAt` is
//!   known: `receivedAt - (sentAt - originalTimestamp)`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::message_id::{KLAVIYO_ID_PREFIX, message_id_from_content};
use super::outcome::{IntakeSource, Mapped, Rejection};
use crate::collection::Collection;
use crate::event_time::check_event_time;
use crate::segment::track::{MAX_MESSAGE_ID_LEN, Properties, TrackEvent};
use crate::segment::tracking_api::{AuthenticatedCall, CallKind, MAX_EVENT_BYTES, RawItem};
use crate::time_format::{format_timestamp, parse_iso_datetime};

/// Maps every event of `call`, in order: a track event or a rejection each.
pub fn map_segment_call(call: &AuthenticatedCall, received_at: DateTime<Utc>) -> Vec<Mapped> {
    // The same for every event of the call: written once, shared by them.
    let received_text: Arc<str> = format_timestamp(received_at).into();
    call.items()
        .iter()
        .map(|item| {
            map_item(item, call, received_at, &received_text).map_err(|reason| {
                Box::new(Rejection::new(
                    IntakeSource::SegmentApi,
                    item.index,
                    format!("event {}: {reason}", item.index),
                    redact_write_key(&item.raw),
                    None,
                    received_at,
                ))
            })
        })
        .collect()
}

/// What replaces a credential in stored JSON.
pub const REDACTED: &str = "[redacted]";

/// The event's JSON as stored in `rejected_events`: exact, except that a `writeKey` (a
/// credential) is replaced by [`REDACTED`]. Items of a parsed call are valid JSON.
fn redact_write_key(raw: &str) -> String {
    match serde_json::from_str::<Map<String, Value>>(raw) {
        Ok(mut object) if object.contains_key("writeKey") => {
            object.insert("writeKey".into(), Value::String(REDACTED.into()));
            Value::Object(object).to_string()
        }
        _ => raw.to_owned(),
    }
}

/// `received_text` is `received_at` as written.
fn map_item(
    item: &RawItem,
    call: &AuthenticatedCall,
    received_at: DateTime<Utc>,
    received_text: &Arc<str>,
) -> Result<TrackEvent, String> {
    if item.raw.len() > MAX_EVENT_BYTES {
        return Err(format!(
            "is {} bytes; Segment allows at most {MAX_EVENT_BYTES}",
            item.raw.len()
        ));
    }
    let mut object: Map<String, Value> =
        serde_json::from_str(&item.raw).map_err(|_| "must be a JSON object".to_owned())?;
    object.remove("writeKey");
    match (object.get("type"), call.kind()) {
        (None, CallKind::Track) => {}
        (None, CallKind::Batch) => {
            return Err("has no type; a batch event needs \"type\": \"track\"".into());
        }
        (Some(Value::String(kind)), _) if kind == "track" => {}
        (Some(Value::String(kind)), _) => {
            return Err(format!(
                "has type '{kind}'; this source stores track events only"
            ));
        }
        (Some(_), _) => return Err("type must be a string".into()),
    }
    let event = match object.get("event") {
        Some(Value::String(name)) if !name.trim().is_empty() => name.trim().to_owned(),
        _ => return Err("needs a non-empty event name".into()),
    };
    let user_id = identity_text(&object, "userId")?;
    let anonymous_id = identity_text(&object, "anonymousId")?;
    if user_id.is_none() && anonymous_id.is_none() {
        return Err("needs a userId or an anonymousId".into());
    }
    let properties = object_field(&object, "properties")?;
    let mut context = call.batch_context().clone();
    merge_objects(&mut context, object_field(&object, "context")?);
    let mut integrations = call.batch_integrations().clone();
    merge_objects(&mut integrations, object_field(&object, "integrations")?);

    let explicit_timestamp = time_field(&object, "timestamp")?;
    let original = time_field(&object, "originalTimestamp")?;
    let sent_at = match time_field(&object, "sentAt")? {
        Some(sent) => Some(sent),
        None => call
            .batch_sent_at()
            .map(|text| parse_time("sentAt", text))
            .transpose()?,
    };
    let original_timestamp = original.or(explicit_timestamp).unwrap_or(received_at);
    let timestamp = match (explicit_timestamp, original, sent_at) {
        (Some(explicit), _, _) => explicit,
        (None, Some(original), Some(sent)) => received_at - (sent - original),
        _ => original_timestamp,
    };
    check_event_time(timestamp, received_at)?;

    let message_id = match object.get("messageId") {
        Some(Value::String(id)) if id.starts_with(KLAVIYO_ID_PREFIX) => {
            return Err(format!(
                "messageId may not start with '{KLAVIYO_ID_PREFIX}': those ids belong to events \
                 that came from Klaviyo, and a Segment call must not replace one"
            ));
        }
        Some(Value::String(id)) if id.chars().any(char::is_control) => {
            return Err("messageId may not contain control characters".into());
        }
        Some(Value::String(id)) if id.len() < MAX_MESSAGE_ID_LEN && !id.is_empty() => id.clone(),
        Some(Value::String(id)) if !id.is_empty() => {
            return Err(format!(
                "messageId must be under {MAX_MESSAGE_ID_LEN} characters"
            ));
        }
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            let mut identity = object.clone();
            identity.remove("sentAt");
            identity.insert("context".into(), Value::Object(context.clone()));
            message_id_from_content("api", Value::Object(identity).to_string().as_bytes())
        }
    };
    let (event_name, collection_slug) = Collection::for_event_name(&event).into_parts();
    Ok(TrackEvent {
        kind: TrackEvent::KIND,
        message_id,
        event: event_name,
        collection_slug,
        user_id,
        klaviyo: None,
        anonymous_id,
        properties: Properties::Segment(properties),
        context,
        integrations,
        timestamp: format_timestamp(timestamp),
        original_timestamp: format_timestamp(original_timestamp),
        sent_at: sent_at.map(|sent_at| format_timestamp(sent_at).into()),
        received_at: Arc::clone(received_text),
    })
}

/// `userId` / `anonymousId`: a non-empty string, or a number (kept as text).
fn identity_text(object: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(format!("{key} must be a string")),
    }
}

fn object_field(object: &Map<String, Value>, key: &str) -> Result<Map<String, Value>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map.clone()),
        Some(_) => Err(format!("{key} must be an object")),
    }
}

fn time_field(object: &Map<String, Value>, key: &str) -> Result<Option<DateTime<Utc>>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => parse_time(key, text).map(Some),
        Some(_) => Err(format!("{key} must be an ISO 8601 string")),
    }
}

fn parse_time(key: &str, text: &str) -> Result<DateTime<Utc>, String> {
    parse_iso_datetime(text).ok_or_else(|| format!("{key} is not an ISO 8601 date-time"))
}

/// Merges `overlay` into `base`: objects key by key, anything else replaced.
fn merge_objects(base: &mut Map<String, Value>, overlay: Map<String, Value>) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(Value::Object(existing)), Value::Object(incoming)) => {
                merge_objects(existing, incoming)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::WriteKey;
    use crate::segment::tracking_api::SegmentCall;
    use crate::segment::write_keys::SegmentWriteKeys;
    use serde_json::json;

    const KEY: &str = "segment-write-key-0001";

    fn received() -> DateTime<Utc> {
        parse_iso_datetime("2024-01-04T18:05:30Z").unwrap()
    }

    fn map(body: Value, kind: CallKind) -> Vec<Mapped> {
        let verifier = SegmentWriteKeys::new(vec![WriteKey::new(KEY).unwrap()]);
        let call = SegmentCall::parse(body.to_string().as_bytes(), kind)
            .unwrap()
            .authenticate(Some(KEY), &verifier)
            .unwrap();
        map_segment_call(&call, received())
    }

    fn one(body: Value) -> Mapped {
        map(body, CallKind::Track).remove(0)
    }

    #[test]
    fn maps_a_track_call_onto_the_email_collections() {
        let event = one(
            json!({"event": "Email Opened", "userId": "u1", "messageId": "m-1",
                               "properties": {"email_subject": "Hi"}}),
        )
        .unwrap();
        assert_eq!(
            (event.collection_slug.as_str(), event.event.as_str()),
            ("email_opened", "Email Opened")
        );
        assert_eq!(event.message_id, "m-1");
        assert_eq!(event.user_id.as_deref(), Some("u1"));
        let Properties::Segment(properties) = &event.properties else {
            panic!("a Segment call's properties are Segment's");
        };
        assert_eq!(properties["email_subject"], "Hi");
        let other = one(json!({"event": "Unsubscribed", "anonymousId": "a@example.com"})).unwrap();
        assert_eq!(other.collection_slug, "email_unsubscribed");
    }

    #[test]
    fn merges_batch_context_and_integrations_with_the_event_winning() {
        let events = map(
            json!({"batch": [{"type": "track", "event": "Email Bounced", "userId": "u1",
                              "context": {"library": {"name": "mine"}, "ip": "5.6.7.8"},
                              "integrations": {"Mixpanel": false}}],
                   "context": {"library": {"name": "batch", "version": "1.0"}, "locale": "de-DE"},
                   "integrations": {"All": true, "Mixpanel": true}}),
            CallKind::Batch,
        );
        let event = events[0].as_ref().unwrap();
        assert_eq!(
            Value::Object(event.context.clone()),
            json!({"library": {"name": "mine", "version": "1.0"}, "ip": "5.6.7.8", "locale": "de-DE"})
        );
        assert_eq!(
            Value::Object(event.integrations.clone()),
            json!({"All": true, "Mixpanel": false})
        );
    }

    #[test]
    fn corrects_clock_skew_with_sent_at() {
        // The sender's clock is 10 minutes fast: it says sent 18:15:00 for an event at 18:14:00.
        let event = one(json!({"event": "Email Opened", "userId": "u1",
                               "originalTimestamp": "2024-01-04T18:14:00Z", "sentAt": "2024-01-04T18:15:00Z"}))
        .unwrap();
        assert_eq!(event.timestamp, "2024-01-04T18:04:30.000Z");
        assert_eq!(event.original_timestamp, "2024-01-04T18:14:00.000Z");
        assert_eq!(event.sent_at.as_deref(), Some("2024-01-04T18:15:00.000Z"));
        assert_eq!(&*event.received_at, "2024-01-04T18:05:30.000Z");
    }

    #[test]
    fn rejects_a_skew_correction_that_leaves_the_tables_range() {
        // A sender whose clock is 10,000 years fast.
        let reason = one(json!({"event": "E", "userId": "u",
                                "originalTimestamp": "2024-01-04T18:14:00Z", "sentAt": "9999-01-04T18:15:00Z"}))
        .unwrap_err()
        .reason;
        assert!(reason.contains("before 2000-01-01"), "{reason}");
        let reason = one(json!({"event": "E", "userId": "u", "timestamp": "2200-01-01T00:00:00Z"}))
            .unwrap_err()
            .reason;
        assert!(reason.contains("after it was received"), "{reason}");
    }

    #[test]
    fn a_segment_call_cannot_take_a_klaviyo_id() {
        let reason = one(
            json!({"event": "Email Opened", "userId": "u", "messageId": "klaviyo-4vHPBsUkFKs"}),
        )
        .unwrap_err()
        .reason;
        assert!(reason.contains("may not start with 'klaviyo-'"), "{reason}");
        let reason = one(json!({"event": "E", "userId": "u", "messageId": "a\nb"}))
            .unwrap_err()
            .reason;
        assert!(reason.contains("control characters"), "{reason}");
    }

    #[test]
    fn a_rejected_event_is_stored_without_its_write_key() {
        let rejection =
            one(json!({"event": "", "userId": "u", "writeKey": "segment-write-key-0001"}))
                .unwrap_err();
        assert!(
            !rejection.raw.contains("segment-write-key-0001"),
            "{}",
            rejection.raw
        );
        assert!(rejection.raw.contains(REDACTED));
    }

    #[test]
    fn an_explicit_timestamp_is_kept_and_batch_sent_at_applies() {
        let explicit = one(
            json!({"event": "E", "userId": "u", "timestamp": "2023-01-01T00:00:00Z",
                                  "sentAt": "2024-01-04T18:15:00Z"}),
        )
        .unwrap();
        assert_eq!(explicit.timestamp, "2023-01-01T00:00:00.000Z");
        let batch = map(
            json!({"batch": [{"type": "track", "event": "E", "userId": "u", "originalTimestamp": "2024-01-04T18:14:00Z"}],
                   "sentAt": "2024-01-04T18:15:00Z"}),
            CallKind::Batch,
        );
        assert_eq!(
            batch[0].as_ref().unwrap().timestamp,
            "2024-01-04T18:04:30.000Z"
        );
    }

    #[test]
    fn derives_a_stable_message_id_that_ignores_sent_at() {
        let a =
            one(json!({"event": "E", "userId": "u", "sentAt": "2024-01-04T18:15:00Z"})).unwrap();
        let b =
            one(json!({"event": "E", "userId": "u", "sentAt": "2024-01-04T18:16:00Z"})).unwrap();
        let c = one(json!({"event": "E", "userId": "v"})).unwrap();
        assert!(a.message_id.starts_with("api-"));
        assert_eq!(a.message_id, b.message_id);
        assert_ne!(a.message_id, c.message_id);
    }

    #[test]
    fn rejects_each_bad_event_with_a_reason() {
        let events = map(
            json!({"batch": [
                {"type": "track", "event": "Fine", "userId": "u"},
                {"type": "identify", "userId": "u"},
                {"event": "No type", "userId": "u"},
                {"type": "track", "userId": "u"},
                {"type": "track", "event": "Nobody"},
                {"type": "track", "event": "E", "userId": "u", "messageId": "x".repeat(100)},
                {"type": "track", "event": "E", "userId": "u", "timestamp": "yesterday"},
                {"type": "track", "event": "E", "userId": "u", "properties": [1]},
                {"type": "track", "event": "E", "userId": "u", "properties": {"pad": "x".repeat(MAX_EVENT_BYTES)}},
                "not an object"
            ]}),
            CallKind::Batch,
        );
        assert!(events[0].is_ok());
        let reasons: Vec<String> = events[1..]
            .iter()
            .map(|e| e.as_ref().unwrap_err().reason.clone())
            .collect();
        let expected = [
            "type 'identify'",
            "has no type",
            "event name",
            "userId or an anonymousId",
            "under 100",
            "timestamp is not",
            "properties must be",
            "bytes",
            "JSON object",
        ];
        for (reason, fragment) in reasons.iter().zip(expected) {
            assert!(reason.contains(fragment), "{reason:?} lacks {fragment:?}");
        }
        let rejection = events[1].as_ref().unwrap_err();
        assert_eq!(
            (rejection.index, rejection.source),
            (1, IntakeSource::SegmentApi.as_str())
        );
    }
}
