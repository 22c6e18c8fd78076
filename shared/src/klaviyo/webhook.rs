//! Decoding an authenticated webhook body: the envelope strictly, each event on its own.
//!
//! A structurally broken envelope rejects the whole request (the sender must fix it). A
//! structurally broken *event* inside a good envelope does not: it becomes a
//! [`BrokenEvent`] that is stored in the rejected collection, so one bad event cannot make
//! Klaviyo retry the good ones forever, and nothing is lost.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::signature::AuthenticatedBody;
#[cfg(fuzzing)]
pub use super::webhook_one_pass::answers_as_the_exact_reading;
use super::webhook_one_pass::read_envelope;
use crate::decoded_object::DecodedObject;
use crate::json_depth::{MAX_JSON_DEPTH, nests_deeper_than};
use crate::time_format::{parse_iso_datetime, unix_time_to_datetime};

/// The envelope's `meta` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookMeta {
    /// `meta.klaviyo_webhook_id`; equals the `Klaviyo-Webhook-Id` header.
    pub webhook_id: String,
    /// `meta.klaviyo_account_id`; sometimes absent.
    pub account_id: Option<String>,
    /// `meta.timestamp`: when Klaviyo sent the batch (may carry microseconds).
    pub timestamp: Option<String>,
    /// `meta.version`: the API revision of the payloads.
    pub version: Option<String>,
}

/// An authenticated, decoded webhook: its meta and each event, decoded or broken. Only
/// [`decode_webhook`] makes one, from an [`AuthenticatedBody`], so holding one proves the
/// signature was checked.
#[derive(Debug)]
pub struct VerifiedWebhook<'a> {
    meta: WebhookMeta,
    events: Vec<Result<WebhookEvent<'a>, BrokenEvent<'a>>>,
}

/// One element of `data`, decoded or broken.
pub type DecodedEvent<'a> = Result<WebhookEvent<'a>, BrokenEvent<'a>>;

impl<'a> VerifiedWebhook<'a> {
    /// The envelope's meta.
    pub fn meta(&self) -> &WebhookMeta {
        &self.meta
    }

    /// Every element of `data`, in order, decoded or broken.
    pub fn events(&self) -> &[DecodedEvent<'a>] {
        &self.events
    }

    /// The meta and the events, by value (mapping moves the properties instead of copying).
    pub fn into_parts(self) -> (WebhookMeta, Vec<DecodedEvent<'a>>) {
        (self.meta, self.events)
    }
}

/// One well-formed element of `data`, borrowing its text from the request body.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEvent<'a> {
    /// Position in `data`.
    pub index: usize,
    /// `external_id` of the element.
    pub external_id: Option<String>,
    /// `topic`, as sent.
    pub topic: String,
    /// `payload.data.id`: Klaviyo's event id.
    pub event_id: Option<String>,
    /// `attributes.uuid`.
    pub uuid: Option<String>,
    /// `attributes.datetime`, as sent.
    pub datetime: Option<String>,
    /// `attributes.timestamp`, unix seconds.
    pub timestamp: Option<i64>,
    /// `attributes.event_properties`, complete (decoded once, as a map would hold them).
    pub properties: DecodedObject,
    /// `relationships.metric.data.id`.
    pub metric_id: Option<String>,
    /// `relationships.profile.data.id`.
    pub profile_id: Option<String>,
    /// The element's exact text, for a deterministic id when Klaviyo gives none.
    pub raw: &'a str,
}

impl WebhookEvent<'_> {
    /// When the event happened: `attributes.datetime` (either of Klaviyo's forms), else the
    /// unix `attributes.timestamp`; `None` when neither is readable.
    pub fn occurred_at(&self) -> Option<DateTime<Utc>> {
        self.datetime
            .as_deref()
            .and_then(parse_iso_datetime)
            .or_else(|| self.timestamp.and_then(unix_time_to_datetime))
    }
}

/// An element of `data` that is not a decodable event, kept with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenEvent<'a> {
    /// Position in `data`.
    pub index: usize,
    /// What is wrong with it.
    pub reason: String,
    /// The element's exact JSON text.
    pub raw: &'a str,
}

/// Why an authenticated body was refused as a whole.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON at all (syntax error, truncated, not UTF-8).
    #[error("body is not valid JSON: {0}")]
    MalformedJson(String),
    /// JSON, but not a Klaviyo webhook envelope.
    #[error("body is not a Klaviyo webhook envelope: {0}")]
    InvalidShape(String),
    /// Klaviyo documents that such a request must not be processed.
    #[error("Klaviyo-Webhook-Id header does not match meta.klaviyo_webhook_id")]
    WebhookIdMismatch,
}

#[derive(Deserialize)]
struct EnvelopeWire<'a> {
    #[serde(borrow)]
    data: Vec<&'a RawValue>,
    meta: MetaWire,
}

/// The envelope's `meta`: only `klaviyo_webhook_id` is required. The others are kept as
/// text whether Klaviyo sends them as strings or numbers; any other type is ignored rather
/// than refusing the whole batch over a field nothing depends on.
#[derive(Deserialize)]
pub(super) struct MetaWire {
    klaviyo_webhook_id: StringOrNumber,
    #[serde(default)]
    klaviyo_account_id: LenientText,
    #[serde(default)]
    timestamp: LenientText,
    #[serde(default)]
    version: LenientText,
}

impl MetaWire {
    /// The meta as the decoded webhook holds it.
    pub(super) fn into_meta(self) -> WebhookMeta {
        WebhookMeta {
            webhook_id: self.klaviyo_webhook_id.into(),
            account_id: self.klaviyo_account_id.0,
            timestamp: self.timestamp.0,
            version: self.version.0,
        }
    }
}

/// Text from a string or a number; nothing from any other JSON type.
#[derive(Default)]
struct LenientText(Option<String>);

impl<'de> Deserialize<'de> for LenientText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self(match Value::deserialize(deserializer)? {
            Value::String(text) => Some(text),
            Value::Number(number) => Some(number.to_string()),
            _ => None,
        }))
    }
}

#[derive(Deserialize)]
pub(super) struct EventWire {
    #[serde(default)]
    external_id: Option<StringOrNumber>,
    topic: String,
    payload: PayloadWire,
}

#[derive(Deserialize)]
struct PayloadWire {
    data: ResourceWire,
}

#[derive(Deserialize)]
struct ResourceWire {
    #[serde(default)]
    id: Option<StringOrNumber>,
    attributes: AttributesWire,
    #[serde(default)]
    relationships: RelationshipsWire,
}

#[derive(Deserialize)]
struct AttributesWire {
    #[serde(default)]
    uuid: Option<String>,
    #[serde(default)]
    datetime: Option<String>,
    #[serde(default)]
    timestamp: Option<i64>,
    #[serde(default)]
    event_properties: Option<DecodedObject>,
}

#[derive(Deserialize, Default)]
struct RelationshipsWire {
    #[serde(default)]
    metric: Option<RelationshipWire>,
    #[serde(default)]
    profile: Option<RelationshipWire>,
}

#[derive(Deserialize)]
struct RelationshipWire {
    data: Option<ResourceIdWire>,
}

#[derive(Deserialize)]
struct ResourceIdWire {
    id: StringOrNumber,
}

/// Ids are strings in Klaviyo's documentation; numbers are accepted and kept as text,
/// digit for digit (an id above 2^64 stays itself). Read through `Value`, not an untagged
/// enum: serde's buffering for untagged enums cannot carry arbitrary-precision numbers.
pub(crate) struct StringOrNumber(String);

impl<'de> Deserialize<'de> for StringOrNumber {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(text) => Ok(Self(text)),
            Value::Number(number) => Ok(Self(number.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "expected an id (string or number), found {}",
                json_type(&other)
            ))),
        }
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl From<StringOrNumber> for String {
    fn from(value: StringOrNumber) -> Self {
        value.0
    }
}

/// Decodes an authenticated body and checks that its `meta.klaviyo_webhook_id` matches the
/// `Klaviyo-Webhook-Id` header it was signed with.
pub fn decode_webhook<'a>(
    authenticated: &AuthenticatedBody<'a>,
) -> Result<VerifiedWebhook<'a>, DecodeError> {
    let body = authenticated.body();
    // The one-pass reader keeps to the nesting guard value by value; when it gives up, the
    // guard goes over the whole body before the exact reading.
    let (meta, events) = match read_envelope(body) {
        Some(read) => read,
        None if nests_deeper_than(body, MAX_JSON_DEPTH) => {
            return Err(DecodeError::MalformedJson(format!(
                "JSON nests deeper than {MAX_JSON_DEPTH} levels"
            )));
        }
        None => read_envelope_exactly(body)?,
    };
    let meta = meta.into_meta();
    if meta.webhook_id != authenticated.webhook_id() {
        return Err(DecodeError::WebhookIdMismatch);
    }
    Ok(VerifiedWebhook { meta, events })
}

/// The envelope read by serde_json as a whole, then each event from its text: what every
/// body gets when the one-pass reader (`webhook_one_pass`) gives up, and the reference that
/// reader is held to. Its errors are the ones a request is refused with.
pub(super) fn read_envelope_exactly(
    body: &[u8],
) -> Result<(MetaWire, Vec<DecodedEvent<'_>>), DecodeError> {
    let envelope: EnvelopeWire<'_> =
        serde_json::from_slice(body).map_err(|err| match err.classify() {
            serde_json::error::Category::Data => DecodeError::InvalidShape(err.to_string()),
            _ => DecodeError::MalformedJson(err.to_string()),
        })?;
    let events = envelope
        .data
        .iter()
        .enumerate()
        .map(|(index, raw)| decode_event(index, raw))
        .collect();
    Ok((envelope.meta, events))
}

/// Element `index` of `data`, decoded from its text.
pub(super) fn decode_event<'a>(index: usize, raw: &'a RawValue) -> DecodedEvent<'a> {
    let wire: EventWire = parse_element(index, raw)?;
    event_from_wire(index, raw.get(), wire)
}

/// The event element `index` of `data` (whose exact text is `raw`) was decoded into.
pub(super) fn event_from_wire(index: usize, raw: &str, wire: EventWire) -> DecodedEvent<'_> {
    event_from_resource(
        index,
        raw,
        wire.topic,
        wire.external_id.map(String::from),
        wire.payload.data,
        "payload.data.attributes",
    )
}

/// Decodes one event resource as `GET /api/events` lists it (the same shape as a
/// webhook's `payload.data`). The topic is left empty: the caller knows it from the metric.
pub(crate) fn decode_event_resource<'a>(index: usize, raw: &'a RawValue) -> DecodedEvent<'a> {
    let resource: ResourceWire = parse_element(index, raw)?;
    event_from_resource(
        index,
        raw.get(),
        String::new(),
        None,
        resource,
        "attributes",
    )
}

/// Parses element `index` of `data`; a parse failure is that element's [`BrokenEvent`].
fn parse_element<'a, T: serde::de::DeserializeOwned>(
    index: usize,
    raw: &'a RawValue,
) -> Result<T, BrokenEvent<'a>> {
    serde_json::from_str(raw.get()).map_err(|err| BrokenEvent {
        index,
        reason: format!("data[{index}]: {err}"),
        raw: raw.get(),
    })
}

fn event_from_resource<'a>(
    index: usize,
    raw: &'a str,
    topic: String,
    external_id: Option<String>,
    resource: ResourceWire,
    attributes_path: &str,
) -> DecodedEvent<'a> {
    let attributes = resource.attributes;
    if attributes.datetime.is_none() && attributes.timestamp.is_none() {
        return Err(BrokenEvent {
            index,
            reason: format!("data[{index}]: {attributes_path} has neither datetime nor timestamp"),
            raw,
        });
    }
    let related_id =
        |rel: Option<RelationshipWire>| rel.and_then(|r| r.data).map(|d| String::from(d.id));
    Ok(WebhookEvent {
        index,
        external_id,
        topic,
        event_id: resource.id.map(String::from),
        uuid: attributes.uuid,
        datetime: attributes.datetime,
        timestamp: attributes.timestamp,
        properties: attributes.event_properties.unwrap_or_default(),
        metric_id: related_id(resource.relationships.metric),
        profile_id: related_id(resource.relationships.profile),
        raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoded_object::Member;
    use crate::klaviyo::signature::{SignatureHeaders, SignatureVerifier, sign};
    use crate::secret::WriteKey;

    const TIMESTAMP: &str = "1704391525";

    fn decode<'a>(
        body: &'a str,
        header_webhook_id: &'a str,
    ) -> Result<VerifiedWebhook<'a>, DecodeError> {
        let key = WriteKey::new("decode-test-key-0123").unwrap();
        let signature = sign(&key, body.as_bytes(), TIMESTAMP);
        let verifier =
            SignatureVerifier::new(vec![key], std::time::Duration::from_secs(300)).unwrap();
        let headers = SignatureHeaders {
            signature: Some(&signature),
            timestamp: Some(TIMESTAMP),
            webhook_id: Some(header_webhook_id),
        };
        let now = crate::time_format::parse_header_timestamp(TIMESTAMP).unwrap();
        let authenticated = verifier.verify(headers, body.as_bytes(), now).unwrap();
        decode_webhook(&authenticated)
    }

    const EVENT: &str = r#"{"external_id": "X1", "topic": "event:klaviyo.opened_email",
        "payload": {"data": {"type": "event", "id": 12345,
          "attributes": {"datetime": "2024-01-04 18:05:01+00:00", "event_properties": {"Subject": "Hi"}},
          "relationships": {"profile": {"data": {"type": "profile", "id": "P1"}},
                            "metric": {"data": {"type": "metric", "id": "M1"}}}}}}"#;

    #[test]
    fn nesting_is_refused_above_the_limit_wherever_it_is() {
        let nested = |levels: usize| format!("{}1{}", "[".repeat(levels), "]".repeat(levels));
        // Where a value sits and how deep it is already there: a property value (event
        // element, payload, data, attributes, event_properties, plus the envelope and
        // `data`), a value in `data`, a member of `meta`, a member of the envelope.
        type BodyAround = fn(&str) -> String;
        let bodies: [(usize, BodyAround); 4] = [
            (7, |value| {
                let event = EVENT.replace(r#"{"Subject": "Hi"}"#, &format!(r#"{{"x": {value}}}"#));
                format!(r#"{{"data": [{event}], "meta": {{"klaviyo_webhook_id": "wh"}}}}"#)
            }),
            (2, |value| {
                format!(r#"{{"data": [{EVENT}, {value}], "meta": {{"klaviyo_webhook_id": "wh"}}}}"#)
            }),
            (2, |value| {
                format!(r#"{{"data": [], "meta": {{"klaviyo_webhook_id": "wh", "x": {value}}}}}"#)
            }),
            (1, |value| {
                format!(r#"{{"data": [], "x": {value}, "meta": {{"klaviyo_webhook_id": "wh"}}}}"#)
            }),
        ];
        for (depth_there, body) in bodies {
            let deepest_accepted = body(&nested(MAX_JSON_DEPTH - depth_there));
            assert!(
                decode(&deepest_accepted, "wh").is_ok(),
                "{deepest_accepted}"
            );
            let too_deep = body(&nested(MAX_JSON_DEPTH - depth_there + 1));
            match decode(&too_deep, "wh") {
                Err(DecodeError::MalformedJson(reason)) => {
                    assert_eq!(reason, "JSON nests deeper than 64 levels");
                }
                other => panic!("{too_deep}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_lone_surrogate_in_a_property_is_reported_at_the_end_of_the_properties() {
        let properties = r#"{"ok": "x", "bad": "\ud800 here", "n": 1}"#;
        let event = format!(
            r#"{{"topic": "event:klaviyo.opened_email", "payload": {{"data": {{"id": "E1",
            "attributes": {{"datetime": "2024-01-04T18:05:01+00:00", "event_properties": {properties}}}}}}}}}"#
        );
        let body = format!(r#"{{"data": [{event}], "meta": {{"klaviyo_webhook_id": "wh"}}}}"#);
        let webhook = decode(&body, "wh").unwrap();
        let broken = webhook.events()[0].as_ref().unwrap_err();
        // Lines and columns count from the element's first character. The position is the
        // character just after the properties' closing brace, on line 2.
        let second_line = event.lines().nth(1).unwrap();
        let after_end = second_line.find(properties).unwrap() + properties.len() + 1;
        assert_eq!(
            broken.reason,
            format!("data[0]: unexpected end of hex escape at line 2 column {after_end}")
        );
        assert_eq!(broken.raw, event);
    }

    #[test]
    fn decodes_meta_and_events() {
        let body = format!(
            r#"{{"data": [{EVENT}], "meta": {{"klaviyo_webhook_id": "wh", "version": "2024-07-15", "extra": 1}}}}"#
        );
        let webhook = decode(&body, "wh").unwrap();
        assert_eq!(webhook.meta().webhook_id, "wh");
        assert_eq!(webhook.meta().account_id, None);
        assert_eq!(webhook.meta().version.as_deref(), Some("2024-07-15"));
        let event = webhook.events()[0].as_ref().unwrap();
        assert_eq!(
            event.event_id.as_deref(),
            Some("12345"),
            "numeric ids become text"
        );
        assert_eq!(event.profile_id.as_deref(), Some("P1"));
        assert_eq!(event.metric_id.as_deref(), Some("M1"));
        assert_eq!(event.properties.get("Subject"), Some(Member::Text("Hi")));
    }

    #[test]
    fn accepts_numeric_meta_fields_and_keeps_big_ids_digit_for_digit() {
        let body = format!(
            r#"{{"data": [{}], "meta": {{"klaviyo_webhook_id": "wh", "timestamp": 1704391525,
                "version": 2024, "klaviyo_account_id": 42}}}}"#,
            EVENT.replace("12345", "123456789012345678901234567890")
        );
        let webhook = decode(&body, "wh").unwrap();
        let meta = webhook.meta();
        assert_eq!(meta.timestamp.as_deref(), Some("1704391525"));
        assert_eq!(meta.version.as_deref(), Some("2024"));
        assert_eq!(meta.account_id.as_deref(), Some("42"));
        let event = webhook.events()[0].as_ref().unwrap();
        assert_eq!(
            event.event_id.as_deref(),
            Some("123456789012345678901234567890")
        );
        let objects = r#"{"data": [], "meta": {"klaviyo_webhook_id": "wh", "version": {"v": 1}, "timestamp": null}}"#;
        assert!(decode(objects, "wh").unwrap().meta().version.is_none());
    }

    #[test]
    fn keeps_a_broken_event_with_its_reason_and_bytes() {
        let broken = r#"{"topic": 5}"#;
        let body =
            format!(r#"{{"data": [{EVENT}, {broken}], "meta": {{"klaviyo_webhook_id": "wh"}}}}"#);
        let webhook = decode(&body, "wh").unwrap();
        assert!(webhook.events()[0].is_ok());
        let err = webhook.events()[1].as_ref().unwrap_err();
        assert_eq!(err.index, 1);
        assert_eq!(err.raw, broken);
        assert!(err.reason.starts_with("data[1]:"), "{}", err.reason);
    }

    #[test]
    fn tells_malformed_json_from_a_wrong_shape() {
        assert!(matches!(
            decode("{", "wh"),
            Err(DecodeError::MalformedJson(_))
        ));
        assert!(matches!(
            decode(r#"{"data": []}"#, "wh"),
            Err(DecodeError::InvalidShape(_))
        ));
        assert!(matches!(
            decode(
                r#"{"data": [], "data": [], "meta": {"klaviyo_webhook_id": "wh"}}"#,
                "wh"
            ),
            Err(DecodeError::InvalidShape(_))
        ));
    }

    #[test]
    fn refuses_a_webhook_id_that_differs_from_the_header() {
        let body = r#"{"data": [], "meta": {"klaviyo_webhook_id": "wh"}}"#;
        assert!(matches!(
            decode(body, "other"),
            Err(DecodeError::WebhookIdMismatch)
        ));
    }
}
