//! Decoding an authenticated webhook body: the one-pass reader first (`webhook_one_pass`),
//! the exact reading (`webhook`) when it gives up. A module of its own so that the two
//! readers import only what they share, never each other both ways.

use super::signature::AuthenticatedBody;
use super::webhook::{DecodeError, VerifiedWebhook, read_envelope_exactly};
use super::webhook_one_pass::read_envelope;
use crate::json_depth::{MAX_JSON_DEPTH, nests_deeper_than};

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
    Ok(VerifiedWebhook::new(meta, events))
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
