//! Segment's HTTP Tracking API shapes: `POST /v1/track` (one call) and `POST /v1/batch`
//! (`{"batch": [...], "context": {...}, "integrations": {...}, "sentAt": ...}`).
//!
//! A body is parsed into a [`SegmentCall`] first, because the write key may be inside it
//! (`"writeKey"`); only [`SegmentCall::authenticate`] turns it into an
//! [`AuthenticatedCall`], which is what the mapper takes.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::json_depth::{MAX_JSON_DEPTH, nests_deeper_than};
use crate::segment::write_keys::SegmentWriteKeys;

/// Segment's limit on one call, and on one event inside a batch: 32 KB.
/// <https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/#max-request-size>
pub const MAX_EVENT_BYTES: usize = 32 * 1024;
/// Segment's limit on one batch request: 500 KB.
pub const MAX_BATCH_BYTES: usize = 500 * 1024;
/// Segment's limit on events in one batch.
pub const MAX_BATCH_EVENTS: usize = 2500;

/// Which endpoint a body came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// `/v1/track`: the body is one track call.
    Track,
    /// `/v1/batch`: the body holds `batch`.
    Batch,
}

/// Why a body was refused as a whole.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SegmentCallError {
    /// Not JSON.
    #[error("body is not valid JSON: {0}")]
    MalformedJson(String),
    /// JSON, but not the endpoint's shape.
    #[error("{0}")]
    InvalidShape(String),
    /// More events than Segment allows in a batch.
    #[error("a batch holds at most {MAX_BATCH_EVENTS} events, this one {0}")]
    TooManyEvents(usize),
    /// No write key, or not one of ours.
    #[error("missing or invalid write key")]
    InvalidWriteKey,
}

/// One element of the call, as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct RawItem {
    /// Position in the batch (0 for `/v1/track`).
    pub index: usize,
    /// The element's exact JSON text.
    pub raw: String,
}

/// A parsed, not yet authenticated call.
#[derive(Debug)]
pub struct SegmentCall {
    kind: CallKind,
    items: Vec<RawItem>,
    batch_context: Map<String, Value>,
    batch_integrations: Map<String, Value>,
    batch_sent_at: Option<String>,
    body_write_key: Option<String>,
}

/// A call whose write key matched: only [`SegmentCall::authenticate`] makes one.
#[derive(Debug)]
pub struct AuthenticatedCall {
    call: SegmentCall,
}

#[derive(Deserialize)]
struct BatchWire<'a> {
    #[serde(borrow)]
    batch: Vec<&'a RawValue>,
    #[serde(default)]
    context: Option<Map<String, Value>>,
    #[serde(default)]
    integrations: Option<Map<String, Value>>,
    #[serde(default, rename = "sentAt")]
    sent_at: Option<String>,
    #[serde(default, rename = "writeKey")]
    write_key: Option<String>,
}

impl SegmentCall {
    /// Parses a body of `kind`.
    pub fn parse(body: &[u8], kind: CallKind) -> Result<Self, SegmentCallError> {
        let classify = |err: serde_json::Error| match err.classify() {
            serde_json::error::Category::Data => SegmentCallError::InvalidShape(err.to_string()),
            _ => SegmentCallError::MalformedJson(err.to_string()),
        };
        if nests_deeper_than(body, MAX_JSON_DEPTH) {
            return Err(SegmentCallError::MalformedJson(format!(
                "JSON nests deeper than {MAX_JSON_DEPTH} levels"
            )));
        }
        match kind {
            CallKind::Track => {
                let object: Map<String, Value> = serde_json::from_slice(body).map_err(classify)?;
                let body_write_key = object
                    .get("writeKey")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let raw = String::from_utf8_lossy(body).into_owned();
                Ok(Self {
                    kind,
                    items: vec![RawItem { index: 0, raw }],
                    batch_context: Map::new(),
                    batch_integrations: Map::new(),
                    batch_sent_at: None,
                    body_write_key,
                })
            }
            CallKind::Batch => {
                let wire: BatchWire<'_> = serde_json::from_slice(body).map_err(classify)?;
                if wire.batch.len() > MAX_BATCH_EVENTS {
                    return Err(SegmentCallError::TooManyEvents(wire.batch.len()));
                }
                Ok(Self {
                    kind,
                    items: wire
                        .batch
                        .iter()
                        .enumerate()
                        .map(|(index, raw)| RawItem {
                            index,
                            raw: raw.get().to_owned(),
                        })
                        .collect(),
                    batch_context: wire.context.unwrap_or_default(),
                    batch_integrations: wire.integrations.unwrap_or_default(),
                    batch_sent_at: wire.sent_at,
                    body_write_key: wire.write_key,
                })
            }
        }
    }

    /// Authenticates with the HTTP Basic user name (`basic_user`) or, without one, the
    /// body's `writeKey`.
    pub fn authenticate(
        self,
        basic_user: Option<&str>,
        keys: &SegmentWriteKeys,
    ) -> Result<AuthenticatedCall, SegmentCallError> {
        let candidate = basic_user.or(self.body_write_key.as_deref());
        match candidate {
            Some(key) if keys.matches(key) => Ok(AuthenticatedCall { call: self }),
            _ => Err(SegmentCallError::InvalidWriteKey),
        }
    }
}

impl AuthenticatedCall {
    /// Which endpoint it came to.
    pub fn kind(&self) -> CallKind {
        self.call.kind
    }

    /// The events, as sent.
    pub fn items(&self) -> &[RawItem] {
        &self.call.items
    }

    /// Batch-level `context`, merged into every event.
    pub fn batch_context(&self) -> &Map<String, Value> {
        &self.call.batch_context
    }

    /// Batch-level `integrations`, merged into every event.
    pub fn batch_integrations(&self) -> &Map<String, Value> {
        &self.call.batch_integrations
    }

    /// Batch-level `sentAt`.
    pub fn batch_sent_at(&self) -> Option<&str> {
        self.call.batch_sent_at.as_deref()
    }
}

/// The user name of an `Authorization: Basic` header value: Segment's write key, with an
/// empty password, with or without the colon.
pub fn basic_auth_user(header_value: &str) -> Option<String> {
    // Authentication schemes are case-insensitive (RFC 9110, section 11.1).
    let (scheme, encoded) = header_value.trim().split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = decode_base64(encoded.trim())?;
    let text = String::from_utf8(decoded).ok()?;
    let user = text.split_once(':').map_or(text.as_str(), |(user, _)| user);
    (!user.is_empty()).then(|| user.to_owned())
}

/// Standard base64, padded or not (clients differ).
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    STANDARD
        .decode(text)
        .or_else(|_| STANDARD_NO_PAD.decode(text))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::WriteKey;

    fn verifier() -> SegmentWriteKeys {
        SegmentWriteKeys::new(vec![WriteKey::new("segment-write-key-0001").unwrap()])
    }

    #[test]
    fn reads_the_basic_user_with_or_without_the_colon() {
        // base64("segment-write-key-0001:") and base64("segment-write-key-0001")
        assert_eq!(
            basic_auth_user("Basic c2VnbWVudC13cml0ZS1rZXktMDAwMTo=").as_deref(),
            Some("segment-write-key-0001")
        );
        assert_eq!(
            basic_auth_user("Basic c2VnbWVudC13cml0ZS1rZXktMDAwMQ==").as_deref(),
            Some("segment-write-key-0001")
        );
        assert_eq!(basic_auth_user("Bearer abc"), None);
        assert_eq!(
            basic_auth_user("BASIC c2VnbWVudC13cml0ZS1rZXktMDAwMTo=").as_deref(),
            Some("segment-write-key-0001")
        );
        assert_eq!(basic_auth_user("Basic !!!"), None);
        assert_eq!(basic_auth_user("Basic Og=="), None, "empty user");
    }

    #[test]
    fn authenticates_by_basic_user_or_body_write_key() {
        let body =
            br#"{"event": "Email Opened", "userId": "u1", "writeKey": "segment-write-key-0001"}"#;
        assert!(
            SegmentCall::parse(body, CallKind::Track)
                .unwrap()
                .authenticate(None, &verifier())
                .is_ok()
        );
        let call = SegmentCall::parse(br#"{"batch": []}"#, CallKind::Batch).unwrap();
        assert!(
            call.authenticate(Some("segment-write-key-0001"), &verifier())
                .is_ok()
        );
        let call = SegmentCall::parse(br#"{"batch": []}"#, CallKind::Batch).unwrap();
        assert_eq!(
            call.authenticate(Some("wrong"), &verifier()).unwrap_err(),
            SegmentCallError::InvalidWriteKey
        );
        let call = SegmentCall::parse(br#"{"batch": []}"#, CallKind::Batch).unwrap();
        assert_eq!(
            call.authenticate(None, &verifier()).unwrap_err(),
            SegmentCallError::InvalidWriteKey
        );
    }

    #[test]
    fn keeps_batch_items_and_batch_level_fields() {
        let body =
            br#"{"batch": [{"type": "track"}, {"type": "identify"}], "context": {"ip": "1.2.3.4"},
                       "integrations": {"All": false}, "sentAt": "2024-01-04T18:05:25Z"}"#;
        let call = SegmentCall::parse(body, CallKind::Batch)
            .unwrap()
            .authenticate(Some("segment-write-key-0001"), &verifier())
            .unwrap();
        assert_eq!(call.items().len(), 2);
        assert_eq!(call.items()[1].raw, r#"{"type": "identify"}"#);
        assert_eq!(call.batch_context()["ip"], "1.2.3.4");
        assert_eq!(call.batch_integrations()["All"], false);
        assert_eq!(call.batch_sent_at(), Some("2024-01-04T18:05:25Z"));
    }

    #[test]
    fn refuses_wrong_shapes_and_oversized_batches() {
        assert!(matches!(
            SegmentCall::parse(b"{", CallKind::Track),
            Err(SegmentCallError::MalformedJson(_))
        ));
        assert!(matches!(
            SegmentCall::parse(b"[]", CallKind::Track),
            Err(SegmentCallError::InvalidShape(_))
        ));
        assert!(matches!(
            SegmentCall::parse(br#"{"batch": {}}"#, CallKind::Batch),
            Err(SegmentCallError::InvalidShape(_))
        ));
        let many = format!(
            r#"{{"batch": [{}]}}"#,
            vec!["{}"; MAX_BATCH_EVENTS + 1].join(",")
        );
        assert_eq!(
            SegmentCall::parse(many.as_bytes(), CallKind::Batch).unwrap_err(),
            SegmentCallError::TooManyEvents(MAX_BATCH_EVENTS + 1)
        );
    }
}
