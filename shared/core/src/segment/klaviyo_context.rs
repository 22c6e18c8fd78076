//! The part of a track event's `context` that says where a Klaviyo event came from, typed.
//!
//! Every event from Klaviyo carries the same few identifiers in `context.integration` and
//! `context.klaviyo`. Held as fields instead of a JSON map, they cost no map and no key
//! allocations per event; the row writer writes their columns directly
//! (`context_integration_*`, `context_klaviyo_*`), exactly as a map of these members would
//! flatten. What every event of one request shares (the revision, the webhook and account
//! ids) is shared, not copied per event.

use std::sync::Arc;

use serde_json::{Map, Value};

/// `context.integration` and `context.klaviyo` of an event that came from Klaviyo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KlaviyoContext {
    /// `context.integration.version`: the API revision of the payload, when known.
    pub integration_version: Option<Arc<str>>,
    /// `context.klaviyo.profile_id`: the Klaviyo profile the event is about.
    pub profile_id: String,
    /// `context.klaviyo.identity_resolved`: whether the profile was looked up.
    pub identity_resolved: bool,
    /// `context.klaviyo.topic`: the webhook topic, or the one a pulled event's metric stands for.
    pub topic: String,
    /// `context.klaviyo.source`: `webhook` or `pull`.
    pub source: &'static str,
    /// `context.klaviyo.webhook_id`, for a pushed event.
    pub webhook_id: Option<Arc<str>>,
    /// `context.klaviyo.event_id`: Klaviyo's event id.
    pub event_id: Option<String>,
    /// `context.klaviyo.event_uuid`.
    pub event_uuid: Option<String>,
    /// `context.klaviyo.external_id`.
    pub external_id: Option<String>,
    /// `context.klaviyo.metric_id`.
    pub metric_id: Option<String>,
    /// `context.klaviyo.account_id`, when the webhook names it.
    pub account_id: Option<Arc<str>>,
}

/// `context.integration.name` of every Klaviyo event.
pub const INTEGRATION_NAME: &str = "klaviyo";

impl KlaviyoContext {
    /// The members of `context.klaviyo` that are present, in key order (as a JSON map would
    /// hold them).
    pub fn klaviyo_members(&self) -> impl Iterator<Item = (&'static str, KlaviyoMember<'_>)> {
        fn text<T: AsRef<str>>(value: &Option<T>) -> Option<KlaviyoMember<'_>> {
            value
                .as_ref()
                .map(|text| KlaviyoMember::Text(text.as_ref()))
        }
        [
            ("account_id", text(&self.account_id)),
            ("event_id", text(&self.event_id)),
            ("event_uuid", text(&self.event_uuid)),
            ("external_id", text(&self.external_id)),
            (
                "identity_resolved",
                Some(KlaviyoMember::Flag(self.identity_resolved)),
            ),
            ("metric_id", text(&self.metric_id)),
            ("profile_id", Some(KlaviyoMember::Text(&self.profile_id))),
            ("source", Some(KlaviyoMember::Text(self.source))),
            ("topic", Some(KlaviyoMember::Text(&self.topic))),
            ("webhook_id", text(&self.webhook_id)),
        ]
        .into_iter()
        .filter_map(|(key, member)| member.map(|member| (key, member)))
    }

    /// The JSON form: the `integration` and `klaviyo` members of `context`.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut integration = Map::new();
        integration.insert("name".into(), Value::from(INTEGRATION_NAME));
        if let Some(version) = &self.integration_version {
            integration.insert("version".into(), Value::from(&**version));
        }
        let klaviyo: Map<String, Value> = self
            .klaviyo_members()
            .map(|(key, member)| {
                let value = match member {
                    KlaviyoMember::Text(text) => Value::from(text),
                    KlaviyoMember::Flag(flag) => Value::from(flag),
                };
                (key.to_owned(), value)
            })
            .collect();
        let mut context = Map::new();
        context.insert("integration".into(), Value::Object(integration));
        context.insert("klaviyo".into(), Value::Object(klaviyo));
        context
    }
}

#[cfg(test)]
impl KlaviyoContext {
    /// A pushed event's context naming only `profile_id`, not yet resolved.
    pub(crate) fn for_profile(profile_id: &str) -> Self {
        Self {
            integration_version: None,
            profile_id: profile_id.to_owned(),
            identity_resolved: false,
            topic: String::new(),
            source: "webhook",
            webhook_id: None,
            event_id: None,
            event_uuid: None,
            external_id: None,
            metric_id: None,
            account_id: None,
        }
    }
}

/// One member of `context.klaviyo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KlaviyoMember<'a> {
    /// A string.
    Text(&'a str),
    /// A boolean.
    Flag(bool),
}
