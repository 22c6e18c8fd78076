//! Segment's Email spec properties, filled from Klaviyo's event properties.
//!
//! Klaviyo keys (see docs/formats.md): `$message` is the message id, `Subject`,
//! `Campaign Name`, `$flow` for flow sends, `URL` on clicks, `List` on list unsubscribes.

use crate::decoded_object::{DecodedObject, Member};

/// The spec properties Klaviyo's properties fill for an event of `collection_slug`, by name,
/// each borrowed from `klaviyo` (nothing is copied). Values are strings, as the spec types
/// them. Nothing is invented: a property whose source key is absent is not there.
pub fn email_spec_properties<'a>(
    collection_slug: &str,
    klaviyo: &'a DecodedObject,
) -> impl Iterator<Item = (&'static str, &'a str)> {
    let text = |key: &str| text(klaviyo, key);
    let clicked = collection_slug == "email_link_clicked";
    let unsubscribed = collection_slug == "email_unsubscribed";
    let message = text("$message");
    let spec: [(&'static str, Option<&'a str>); 8] = [
        ("email_id", message),
        ("email_subject", text("Subject")),
        // A flow send names its flow in `$flow`; a campaign send's `$message` is the campaign.
        ("campaign_id", text("$flow").or(message)),
        ("campaign_name", text("Campaign Name")),
        ("link_url", if clicked { text("URL") } else { None }),
        (
            "link_id",
            if clicked {
                text("Link ID").or_else(|| text("$link_id"))
            } else {
                None
            },
        ),
        ("list_name", if unsubscribed { text("List") } else { None }),
        (
            "list_id",
            if unsubscribed {
                text("List ID").or_else(|| text("$list"))
            } else {
                None
            },
        ),
    ];
    spec.into_iter()
        .filter_map(|(name, value)| value.map(|value| (name, value)))
}

/// A property as text: strings as they are (an empty one is absent), numbers as written,
/// booleans as `true` or `false`; other types absent.
fn text<'a>(properties: &'a DecodedObject, key: &str) -> Option<&'a str> {
    match properties.get(key)? {
        Member::Text(text) if !text.is_empty() => Some(text),
        Member::Number(number) => Some(number),
        Member::Flag(true) => Some("true"),
        Member::Flag(false) => Some("false"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Value, json};

    fn spec(slug: &str, klaviyo: Value) -> Value {
        let klaviyo: DecodedObject = serde_json::from_str(&klaviyo.to_string()).unwrap();
        let properties: Map<String, Value> = email_spec_properties(slug, &klaviyo)
            .map(|(name, value)| (name.to_owned(), Value::from(value)))
            .collect();
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
