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
    let sources = Sources::of(klaviyo);
    let clicked = collection_slug == "email_link_clicked";
    let unsubscribed = collection_slug == "email_unsubscribed";
    let spec: [(&'static str, Option<&'a str>); 8] = [
        ("email_id", sources.message),
        ("email_subject", sources.subject),
        // A flow send names its flow in `$flow`; a campaign send's `$message` is the campaign.
        ("campaign_id", sources.flow.or(sources.message)),
        ("campaign_name", sources.campaign_name),
        ("link_url", sources.url.filter(|_| clicked)),
        (
            "link_id",
            sources
                .link_id
                .or(sources.dollar_link_id)
                .filter(|_| clicked),
        ),
        ("list_name", sources.list.filter(|_| unsubscribed)),
        (
            "list_id",
            sources
                .list_id
                .or(sources.dollar_list)
                .filter(|_| unsubscribed),
        ),
    ];
    spec.into_iter()
        .filter_map(|(name, value)| value.map(|value| (name, value)))
}

/// The text of each Klaviyo key a spec property is read from, if present and usable.
#[derive(Default)]
struct Sources<'a> {
    message: Option<&'a str>,
    subject: Option<&'a str>,
    flow: Option<&'a str>,
    campaign_name: Option<&'a str>,
    url: Option<&'a str>,
    link_id: Option<&'a str>,
    dollar_link_id: Option<&'a str>,
    list: Option<&'a str>,
    list_id: Option<&'a str>,
    dollar_list: Option<&'a str>,
}

impl<'a> Sources<'a> {
    /// One pass over the properties: a key is matched on its length first, so most keys
    /// cost no comparison of their bytes (a binary search per source key cost several).
    fn of(klaviyo: &'a DecodedObject) -> Self {
        let mut sources = Self::default();
        for (key, member) in klaviyo.view().iter() {
            let slot = match key {
                "$message" => &mut sources.message,
                "Subject" => &mut sources.subject,
                "$flow" => &mut sources.flow,
                "Campaign Name" => &mut sources.campaign_name,
                "URL" => &mut sources.url,
                "Link ID" => &mut sources.link_id,
                "$link_id" => &mut sources.dollar_link_id,
                "List" => &mut sources.list,
                "List ID" => &mut sources.list_id,
                "$list" => &mut sources.dollar_list,
                _ => continue,
            };
            *slot = text(member);
        }
        sources
    }
}

/// A property's value as the spec's string: text that is not empty, a number's text, or
/// `true`/`false`.
fn text(member: Member<'_>) -> Option<&str> {
    match member {
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
