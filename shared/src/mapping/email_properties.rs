//! Segment's Email spec properties, filled from Klaviyo's event properties.
//!
//! Klaviyo keys (see docs/formats.md): `$message` is the message id, `Subject`,
//! `Campaign Name`, `$flow` for flow sends, `URL` on clicks, `List` on list unsubscribes.

use serde_json::{Map, Value};

use crate::decoded_object::{DecodedObject, Member};

/// Adds the spec properties that Klaviyo's `klaviyo` properties can fill to `properties`.
/// Values are written as strings, as the spec types them. Nothing is invented: a property
/// whose source key is absent is left out.
pub fn add_email_spec_properties(
    collection_slug: &str,
    klaviyo: &DecodedObject,
    properties: &mut Map<String, Value>,
) {
    let message = text(klaviyo, "$message");
    if let Some(message) = &message {
        properties.insert("email_id".into(), Value::String(message.clone()));
    }
    if let Some(subject) = text(klaviyo, "Subject") {
        properties.insert("email_subject".into(), Value::String(subject));
    }
    // A flow send names its flow in `$flow`; a campaign send's `$message` is the campaign.
    if let Some(campaign) = text(klaviyo, "$flow").or(message) {
        properties.insert("campaign_id".into(), Value::String(campaign));
    }
    if let Some(name) = text(klaviyo, "Campaign Name") {
        properties.insert("campaign_name".into(), Value::String(name));
    }
    match collection_slug {
        "email_link_clicked" => {
            if let Some(url) = text(klaviyo, "URL") {
                properties.insert("link_url".into(), Value::String(url));
            }
            if let Some(link) = text(klaviyo, "Link ID").or_else(|| text(klaviyo, "$link_id")) {
                properties.insert("link_id".into(), Value::String(link));
            }
        }
        "email_unsubscribed" => {
            if let Some(list) = text(klaviyo, "List") {
                properties.insert("list_name".into(), Value::String(list));
            }
            if let Some(list) = text(klaviyo, "List ID").or_else(|| text(klaviyo, "$list")) {
                properties.insert("list_id".into(), Value::String(list));
            }
        }
        _ => {}
    }
}

/// A property as text: strings as they are, numbers and booleans printed; others absent.
fn text(properties: &DecodedObject, key: &str) -> Option<String> {
    match properties.get(key)? {
        Member::Text(text) if !text.is_empty() => Some(text.to_owned()),
        Member::Number(number) => Some(number.to_owned()),
        Member::Flag(flag) => Some(flag.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(slug: &str, klaviyo: Value) -> Value {
        let mut properties = Map::new();
        let klaviyo = serde_json::from_str(&klaviyo.to_string()).unwrap();
        add_email_spec_properties(slug, &klaviyo, &mut properties);
        Value::Object(properties)
    }

    #[test]
    fn fills_common_email_properties_from_a_campaign_send() {
        let props = spec(
            "email_opened",
            json!({"$message": "01HMSG", "Subject": "Hello", "Campaign Name": "Spring"}),
        );
        assert_eq!(
            props,
            json!({"email_id": "01HMSG", "email_subject": "Hello",
                   "campaign_id": "01HMSG", "campaign_name": "Spring"})
        );
    }

    #[test]
    fn uses_the_flow_as_campaign_of_a_flow_send() {
        let props = spec("email_delivered", json!({"$message": "M1", "$flow": "F1"}));
        assert_eq!(props["campaign_id"], "F1");
        assert_eq!(props["email_id"], "M1");
    }

    #[test]
    fn adds_link_url_only_to_clicks() {
        let click = spec("email_link_clicked", json!({"URL": "https://x.test/a"}));
        assert_eq!(click["link_url"], "https://x.test/a");
        let open = spec("email_opened", json!({"URL": "https://x.test/a"}));
        assert!(open.get("link_url").is_none());
    }

    #[test]
    fn adds_list_to_unsubscribes_and_prints_numbers() {
        let props = spec(
            "email_unsubscribed",
            json!({"List": "Newsletter", "$list": 42}),
        );
        assert_eq!(props["list_name"], "Newsletter");
        assert_eq!(props["list_id"], "42");
    }

    #[test]
    fn invents_nothing_when_keys_are_absent_or_empty() {
        assert_eq!(
            spec("email_bounced", json!({"Subject": "", "$message": null})),
            json!({})
        );
    }
}
