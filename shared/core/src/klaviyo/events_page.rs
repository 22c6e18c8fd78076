//! One page of Klaviyo's `GET /api/events` with `include=profile,attributions`: the events
//! (each the same resource a webhook carries in `payload.data`, with its attribution put back
//! into its properties, attributions.rs), the profiles they name, and the next page's link.

use std::collections::HashMap;

use serde::Deserialize;

use crate::klaviyo::json_api::{LinksWire, next_link};
use serde_json::value::RawValue;

use super::attributions::{RelationshipsWire, attributed_properties};
use super::webhook::{DecodedEvent, StringOrNumber, decode_event_resource};
use crate::identity::Profile;
use crate::json_depth::{MAX_JSON_DEPTH, nests_deeper_than};

/// A decoded page. Events borrow their text from the page's body.
#[derive(Debug)]
pub struct EventsPage<'a> {
    /// Every element of `data`, in order, decoded (with the stream's topic) or broken.
    pub events: Vec<DecodedEvent<'a>>,
    /// The included profiles, by id: the identity of the page's events.
    pub profiles: HashMap<String, Profile>,
    /// `links.next`, when there is another page.
    pub next: Option<String>,
}

/// Why a page could not be read at all.
#[derive(Debug, thiserror::Error)]
#[error("Klaviyo's events page is not readable: {0}")]
pub struct PageError(String);

#[derive(Deserialize)]
struct PageWire<'a> {
    #[serde(borrow, default)]
    data: Vec<&'a RawValue>,
    #[serde(default)]
    included: Vec<IncludedWire>,
    #[serde(default)]
    links: Option<LinksWire>,
}

#[derive(Deserialize)]
struct IncludedWire {
    #[serde(rename = "type")]
    kind: String,
    id: StringOrNumber,
    #[serde(default)]
    attributes: IncludedAttributesWire,
    /// An attribution's relationships (campaign, flow, ...); other types' are not read.
    #[serde(default)]
    relationships: Option<RelationshipsWire>,
}

/// The attributes of an included profile: only what identity uses.
#[derive(Deserialize, Default)]
struct IncludedAttributesWire {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    phone_number: Option<String>,
}

/// Decodes one page of a stream that reads one metric; every event gets the stream's
/// `metric_topic`, which stays the same when Klaviyo renames the metric, so a rename never
/// moves a stream's events to another collection.
pub fn decode_events_page<'a>(
    body: &'a [u8],
    metric_topic: &str,
) -> Result<EventsPage<'a>, PageError> {
    if nests_deeper_than(body, MAX_JSON_DEPTH) {
        return Err(PageError(format!(
            "JSON nests deeper than {MAX_JSON_DEPTH} levels"
        )));
    }
    let page: PageWire<'a> =
        serde_json::from_slice(body).map_err(|err| PageError(err.to_string()))?;
    let present = |value: Option<String>| value.filter(|v| !v.trim().is_empty());
    let mut profiles = HashMap::new();
    let mut attributions = HashMap::new();
    for included in page.included {
        if included.kind == "attribution" {
            let relationships = included.relationships.unwrap_or_default();
            attributions.insert(String::from(included.id), relationships.attribution());
        } else if included.kind == "profile" {
            let id = String::from(included.id);
            profiles.insert(
                id.clone(),
                Profile {
                    id,
                    email: present(included.attributes.email),
                    external_id: present(included.attributes.external_id),
                    phone_number: present(included.attributes.phone_number),
                },
            );
        }
    }
    let events = page
        .data
        .iter()
        .enumerate()
        .map(|(index, raw)| {
            decode_event_resource(index, raw).map(|mut event| {
                event.topic = metric_topic.to_owned();
                // Only pages with attributions (conversion metrics) pay for this.
                if !attributions.is_empty()
                    && let Some(properties) = attributed_properties(event.raw, &attributions)
                {
                    event.properties = properties;
                }
                event
            })
        })
        .collect();
    Ok(EventsPage {
        events,
        profiles,
        next: next_link(page.links),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"{
      "data": [
        {"type": "event", "id": "4sDShKQjrdT",
         "attributes": {"timestamp": 1704391501, "datetime": "2024-01-04 18:05:01+00:00",
                        "uuid": "u-1", "event_properties": {"Subject": "Hi"}},
         "relationships": {"profile": {"data": {"type": "profile", "id": "P1"}},
                           "metric": {"data": {"type": "metric", "id": "M1"}}}},
        {"type": "event", "id": "broken", "attributes": {"event_properties": {}}}
      ],
      "included": [
        {"type": "profile", "id": "P1", "attributes": {"email": "a@example.com", "external_id": ""}},
        {"type": "metric", "id": "M1", "attributes": {"name": "Opened Email"}}
      ],
      "links": {"self": "x", "next": "https://a.klaviyo.com/api/events?page%5Bcursor%5D=abc"}
    }"#;

    #[test]
    fn decodes_events_with_the_streams_topic_and_the_included_profiles() {
        let page = decode_events_page(PAGE.as_bytes(), "event:klaviyo.opened_email").unwrap();
        let event = page.events[0].as_ref().unwrap();
        assert_eq!(event.event_id.as_deref(), Some("4sDShKQjrdT"));
        assert_eq!(event.topic, "event:klaviyo.opened_email");
        assert_eq!(event.profile_id.as_deref(), Some("P1"));
        assert_eq!(
            event.properties.get("Subject"),
            Some(crate::decoded_object::Member::Text("Hi"))
        );
        let broken = page.events[1].as_ref().unwrap_err();
        assert!(broken.reason.contains("neither datetime nor timestamp"));
        assert_eq!(
            page.profiles["P1"],
            Profile {
                id: "P1".into(),
                email: Some("a@example.com".into()),
                external_id: None,
                phone_number: None,
            }
        );
        assert_eq!(
            page.next.as_deref(),
            Some("https://a.klaviyo.com/api/events?page%5Bcursor%5D=abc")
        );
    }

    #[test]
    fn a_page_without_next_link_is_the_last() {
        let body = r#"{"data": [{"type": "event", "id": "E", "attributes": {"timestamp": 1}}],
                       "links": {"next": null}}"#;
        let page = decode_events_page(body.as_bytes(), "event:klaviyo.clicked_email").unwrap();
        assert_eq!(page.events.len(), 1);
        assert_eq!(page.next, None);
    }

    #[test]
    fn refuses_what_is_not_a_page() {
        assert!(decode_events_page(b"[1,2]", "t").is_err());
        assert!(decode_events_page(b"{\"data\": [", "t").is_err());
    }
}
