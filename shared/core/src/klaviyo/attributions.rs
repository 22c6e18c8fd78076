//! Campaign and flow attribution of pulled events. In recent revisions Klaviyo moved a
//! conversion event's attribution out of its `event_properties` into relationships: Get
//! Events with `include=attributions` lists, per event, `relationships.attributions.data`
//! (attribution ids) and, in `included`, each attribution's `relationships`:
//! `attributed-event`, `campaign`, `campaign-message`, `flow`, `flow-message`,
//! `flow-message-variation`.
//! <https://developers.klaviyo.com/en/reference/get_events>
//!
//! A pulled event gets them back as the properties webhooks carry for the same purpose, so
//! the Email spec columns (`campaign_id` from `$flow` or `$message`, `email_id` from
//! `$message`) fill the same way: `$flow` (the flow), `$message` (the flow message, else the
//! campaign, as a campaign send's `$message` names its campaign), `$variation`,
//! `$attributed_event_id`. A key the event's own properties already hold is left as it is.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::decoded_object::DecodedObject;

/// One attribution, by the ids it names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attribution {
    /// The event credited (an email open or click, say).
    pub attributed_event: Option<String>,
    /// The campaign credited.
    pub campaign: Option<String>,
    /// The campaign's message.
    pub campaign_message: Option<String>,
    /// The flow credited.
    pub flow: Option<String>,
    /// The flow's message.
    pub flow_message: Option<String>,
    /// The flow message's variation.
    pub variation: Option<String>,
}

#[derive(Deserialize, Default)]
pub(crate) struct RelationshipsWire {
    #[serde(rename = "attributed-event", default)]
    attributed_event: Option<RelationshipWire>,
    #[serde(default)]
    campaign: Option<RelationshipWire>,
    #[serde(rename = "campaign-message", default)]
    campaign_message: Option<RelationshipWire>,
    #[serde(default)]
    flow: Option<RelationshipWire>,
    #[serde(rename = "flow-message", default)]
    flow_message: Option<RelationshipWire>,
    #[serde(rename = "flow-message-variation", default)]
    variation: Option<RelationshipWire>,
}

#[derive(Deserialize, Default)]
struct RelationshipWire {
    #[serde(default)]
    data: Option<IdWire>,
}

#[derive(Deserialize)]
struct IdWire {
    id: String,
}

impl RelationshipsWire {
    /// The attribution these relationships of an included `attribution` name.
    pub(crate) fn attribution(self) -> Attribution {
        let id = |relationship: Option<RelationshipWire>| {
            relationship
                .and_then(|r| r.data)
                .map(|d| d.id)
                .filter(|id| !id.is_empty())
        };
        Attribution {
            attributed_event: id(self.attributed_event),
            campaign: id(self.campaign),
            campaign_message: id(self.campaign_message),
            flow: id(self.flow),
            flow_message: id(self.flow_message),
            variation: id(self.variation),
        }
    }
}

#[derive(Deserialize)]
struct EventWire {
    #[serde(default)]
    attributes: Option<AttributesWire>,
    #[serde(default)]
    relationships: Option<EventRelationshipsWire>,
}

#[derive(Deserialize)]
struct AttributesWire {
    #[serde(default)]
    event_properties: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
struct EventRelationshipsWire {
    #[serde(default)]
    attributions: Option<AttributionsWire>,
}

#[derive(Deserialize)]
struct AttributionsWire {
    #[serde(default)]
    data: Vec<IdWire>,
}

/// The properties of the event resource `raw` with its attribution added (the first of its
/// `relationships.attributions` that `included` describes); `None` when it has none, or
/// nothing to add.
pub fn attributed_properties(
    raw: &str,
    included: &HashMap<String, Attribution>,
) -> Option<DecodedObject> {
    let event: EventWire = serde_json::from_str(raw).ok()?;
    let attribution = event
        .relationships?
        .attributions?
        .data
        .iter()
        .find_map(|id| included.get(&id.id))?;
    let mut properties = event
        .attributes
        .and_then(|a| a.event_properties)
        .unwrap_or_default();
    let message = attribution
        .flow_message
        .as_ref()
        .or(attribution.campaign.as_ref())
        .or(attribution.campaign_message.as_ref());
    let mut added = false;
    for (key, value) in [
        ("$flow", attribution.flow.as_ref()),
        ("$message", message),
        ("$variation", attribution.variation.as_ref()),
        (
            "$attributed_event_id",
            attribution.attributed_event.as_ref(),
        ),
    ] {
        if let Some(value) = value
            && !properties.contains_key(key)
        {
            properties.insert(key.to_owned(), Value::String(value.clone()));
            added = true;
        }
    }
    if !added {
        return None;
    }
    serde_json::to_string(&properties)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoded_object::Member;

    fn included() -> HashMap<String, Attribution> {
        let relationships: RelationshipsWire = serde_json::from_str(
            r#"{"attributed-event": {"data": {"type": "event", "id": "OPEN1"}},
                "campaign": {"data": null},
                "campaign-message": {"data": null},
                "flow": {"data": {"type": "flow", "id": "FLOW1"}},
                "flow-message": {"data": {"type": "flow-message", "id": "FMSG1"}},
                "flow-message-variation": {"data": {"type": "flow-message", "id": "VAR1"}}}"#,
        )
        .unwrap();
        HashMap::from([("ATTR1".to_owned(), relationships.attribution())])
    }

    #[test]
    fn a_flow_attribution_fills_the_keys_webhooks_carry() {
        let raw = r#"{"type": "event", "id": "ORDER1",
            "attributes": {"event_properties": {"$value": 42.5, "Items": ["a"]}},
            "relationships": {"attributions": {"data": [{"type": "attribution", "id": "ATTR1"}]}}}"#;
        let properties = attributed_properties(raw, &included()).unwrap();
        assert_eq!(properties.get("$flow"), Some(Member::Text("FLOW1")));
        assert_eq!(properties.get("$message"), Some(Member::Text("FMSG1")));
        assert_eq!(properties.get("$variation"), Some(Member::Text("VAR1")));
        assert_eq!(
            properties.get("$attributed_event_id"),
            Some(Member::Text("OPEN1"))
        );
        assert_eq!(properties.get("$value"), Some(Member::Number("42.5")));
    }

    #[test]
    fn the_events_own_keys_win_and_no_attribution_changes_nothing() {
        let raw = r#"{"attributes": {"event_properties": {"$flow": "OWN", "$message": "OWNMSG",
            "$variation": "V", "$attributed_event_id": "E"}},
            "relationships": {"attributions": {"data": [{"id": "ATTR1"}]}}}"#;
        assert_eq!(attributed_properties(raw, &included()), None);
        let unattributed = r#"{"attributes": {"event_properties": {}}}"#;
        assert_eq!(attributed_properties(unattributed, &included()), None);
        let unknown = r#"{"relationships": {"attributions": {"data": [{"id": "OTHER"}]}}}"#;
        assert_eq!(attributed_properties(unknown, &included()), None);
    }
}
