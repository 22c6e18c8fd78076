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

use crate::decoded_object::DecodedObject;
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
/// [`decode_webhook`](super::webhook_decode::decode_webhook) makes one, from an
/// [`AuthenticatedBody`](super::signature::AuthenticatedBody), so holding one proves the
/// signature was checked.
#[derive(Debug)]
pub struct VerifiedWebhook<'a> {
    meta: WebhookMeta,
    events: Vec<Result<KlaviyoEvent<'a>, BrokenEvent<'a>>>,
}

/// One element of `data`, decoded or broken.
pub type DecodedEvent<'a> = Result<KlaviyoEvent<'a>, BrokenEvent<'a>>;

impl<'a> VerifiedWebhook<'a> {
    /// The decoded webhook; only `webhook_decode` calls it, once the webhook id matched.
    pub(super) fn new(meta: WebhookMeta, events: Vec<DecodedEvent<'a>>) -> Self {
        Self { meta, events }
    }

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
pub struct KlaviyoEvent<'a> {
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

impl KlaviyoEvent<'_> {
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
    Ok(KlaviyoEvent {
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
