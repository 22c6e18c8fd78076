//! Webhook topic ids and the collections they map to.
//!
//! Klaviyo's own pages disagree on topic ids ("delivered" is both `received_email` and
//! `email_delivered`) and show white-space variants, so ids are normalised before matching:
//! white space removed, lower case, the `event:` and `klaviyo.` prefixes dropped.

use std::borrow::Cow;

use super::metric_alias::alias_for_metric_name;
use crate::collection::Collection;
use crate::warehouse::column_name::column_name;

/// Topic names (after normalisation) of each of the six email collections.
const EMAIL_TOPICS: [(&str, &[&str]); 6] = [
    (
        "email_delivered",
        &["received_email", "email_delivered", "delivered_email"],
    ),
    ("email_opened", &["opened_email"]),
    ("email_link_clicked", &["clicked_email"]),
    (
        "email_unsubscribed",
        &["unsubscribed_from_email_marketing", "unsubscribed"],
    ),
    ("email_bounced", &["bounced_email"]),
    ("email_marked_as_spam", &["marked_email_as_spam"]),
];

/// Words kept lower case when a topic is turned into an event name, as Klaviyo's metric
/// names do ("Subscribed to Email Marketing", "Marked Email as Spam").
const LOWER_CASE_WORDS: [&str; 9] = ["a", "an", "and", "as", "from", "in", "of", "the", "to"];

/// The collection an event of `topic` belongs to: one of the six email collections, or
/// (documented rule) a collection named after the topic, e.g. `event:klaviyo.dropped_email`
/// → event "Dropped Email", table `dropped_email`. Never `None`: nothing is dropped.
pub fn collection_for_topic(topic: &str) -> Collection {
    let name = normalise_topic(topic);
    EMAIL_TOPICS
        .iter()
        .find(|(slug, topics)| *slug == name || topics.contains(&&*name))
        .and_then(|(slug, _)| Collection::email(slug))
        .unwrap_or_else(|| {
            // A topic named after any spelling of a metric the pull knows (a webhook topic
            // of a renamed metric) lands where that metric's pulled events do.
            let known = alias_for_metric_name(&name.replace('_', " "));
            let name = known.map_or(name, |alias| Cow::Borrowed(alias.topic));
            Collection::named(&event_name_for_topic(&name))
        })
}

/// Strips white space and the `event:` / `klaviyo.` prefixes (in any case) from a topic
/// id and turns the rest into snake_case with the same rule as event names and columns
/// (`EmailOpened` → `email_opened`), so a topic and a Segment event of the same name land
/// in the same collection. A topic as Klaviyo sends it (`event:klaviyo.opened_email`)
/// needs no copy: its normal form is part of it.
pub fn normalise_topic(topic: &str) -> Cow<'_, str> {
    if topic.chars().any(char::is_whitespace) {
        let compact: String = topic.chars().filter(|c| !c.is_whitespace()).collect();
        return Cow::Owned(column_name(without_prefixes(&compact)).into_owned());
    }
    column_name(without_prefixes(topic))
}

/// `topic` without a leading `event:`, then without a leading `klaviyo.`, in any case.
fn without_prefixes(topic: &str) -> &str {
    let strip = |text: &str, prefix: &str| -> Option<usize> {
        text.get(..prefix.len())
            .filter(|head| head.eq_ignore_ascii_case(prefix))
            .map(|_| prefix.len())
    };
    let mut rest = topic;
    if let Some(cut) = strip(rest, "event:") {
        rest = &rest[cut..];
    }
    if let Some(cut) = strip(rest, "klaviyo.") {
        rest = &rest[cut..];
    }
    rest
}

fn event_name_for_topic(normalised: &str) -> String {
    let words = normalised
        .split(['_', '.', '-', ':'])
        .filter(|w| !w.is_empty())
        .enumerate()
        .map(|(i, word)| {
            if i > 0 && LOWER_CASE_WORDS.contains(&word) {
                word.to_owned()
            } else {
                let mut chars = word.chars();
                chars
                    .next()
                    .map(|first| first.to_uppercase().chain(chars).collect())
                    .unwrap_or_default()
            }
        })
        .collect::<Vec<String>>();
    if words.is_empty() {
        "Unknown Klaviyo Event".to_owned()
    } else {
        words.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::klaviyo::metric_alias::{MetricChannel, topic_for_metric_name};

    #[test]
    fn a_topic_and_a_segment_event_of_one_name_share_a_collection() {
        assert_eq!(
            collection_for_topic("event:klaviyo.EmailOpened").slug(),
            "email_opened"
        );
        assert_eq!(
            collection_for_topic("Event:Klaviyo.Dropped Email").slug(),
            "dropped_email"
        );
        for name in ["OrderCompleted", "Order Completed", "order_completed"] {
            assert_eq!(
                collection_for_topic(&format!("event:klaviyo.{name}")).slug(),
                Collection::for_event_name(name).slug(),
                "{name}"
            );
        }
    }

    fn slug(topic: &str) -> String {
        collection_for_topic(topic).slug().to_owned()
    }

    #[test]
    fn maps_every_documented_email_topic() {
        for (topic, expected) in [
            ("event:klaviyo.received_email", "email_delivered"),
            ("event:klaviyo.email_delivered", "email_delivered"),
            ("event:klaviyo.opened_email", "email_opened"),
            ("event:klaviyo.clicked_email", "email_link_clicked"),
            (
                "event:klaviyo.unsubscribed_from_email_marketing",
                "email_unsubscribed",
            ),
            ("event:klaviyo.unsubscribed", "email_unsubscribed"),
            ("event:klaviyo.bounced_email", "email_bounced"),
            ("event:klaviyo.marked_email_as_spam", "email_marked_as_spam"),
        ] {
            assert_eq!(slug(topic), expected, "{topic}");
        }
    }

    #[test]
    fn tolerates_whitespace_case_and_missing_prefixes() {
        assert_eq!(slug(" event: klaviyo.opened_email "), "email_opened");
        assert_eq!(slug("EVENT:KLAVIYO.Opened_Email"), "email_opened");
        assert_eq!(slug("opened_email"), "email_opened");
    }

    #[test]
    fn names_other_topics_after_klaviyo_metric_style() {
        let dropped = collection_for_topic("event:klaviyo.dropped_email");
        assert_eq!(dropped.slug(), "dropped_email");
        assert_eq!(dropped.event_name(), "Dropped Email");
        let subscribed = collection_for_topic("event:klaviyo.subscribed_to_email_marketing");
        assert_eq!(subscribed.event_name(), "Subscribed to Email Marketing");
        assert_eq!(subscribed.slug(), "subscribed_to_email_marketing");
    }

    #[test]
    fn keeps_the_integration_of_non_klaviyo_topics() {
        let order = collection_for_topic("event:shopify.placed_order");
        assert_eq!(order.slug(), "shopify_placed_order");
        assert_eq!(order.event_name(), "Shopify Placed Order");
    }

    #[test]
    fn names_an_empty_topic() {
        assert_eq!(
            collection_for_topic("event:").slug(),
            "unknown_klaviyo_event"
        );
    }

    // Pulled metrics and webhook topics share collections through the metric aliases.
    #[test]
    fn every_spelling_of_an_email_metric_lands_in_the_webhook_collection() {
        for (name, collection) in [
            ("Received Email", "email_delivered"),
            ("Opened Email", "email_opened"),
            ("Clicked Email", "email_link_clicked"),
            ("Bounced Email", "email_bounced"),
            ("Marked Email as Spam", "email_marked_as_spam"),
            ("marked  email AS spam", "email_marked_as_spam"),
            ("Unsubscribed", "email_unsubscribed"),
            ("Unsubscribed from Email Marketing", "email_unsubscribed"),
            ("Dropped Email", "dropped_email"),
        ] {
            let topic = topic_for_metric_name(name);
            assert_eq!(collection_for_topic(&topic).slug(), collection, "{name}");
        }
    }

    #[test]
    fn the_text_message_rename_keeps_the_sms_collection() {
        for (old, new) in [
            ("Received SMS", "Received Text Message"),
            ("Clicked SMS", "Clicked Text Message"),
            ("Failed to Deliver SMS", "Failed to Deliver Text Message"),
            ("Unsubscribed from SMS", "Unsubscribed from Text Messages"),
            (
                "Unsubscribed from SMS",
                "Unsubscribed from Text Messaging Marketing",
            ),
            (
                "Consented to Receive SMS",
                "Consented to Receive Text Messages",
            ),
        ] {
            assert_eq!(topic_for_metric_name(old), topic_for_metric_name(new));
            assert_eq!(
                alias_for_metric_name(new).map(|a| a.channel),
                Some(MetricChannel::Sms)
            );
        }
        assert_eq!(
            collection_for_topic(&topic_for_metric_name("Received Text Message")).slug(),
            "received_sms"
        );
    }

    #[test]
    fn a_webhook_topic_named_after_a_renamed_metric_lands_with_its_pulled_events() {
        for (topic, metric) in [
            (
                "event:klaviyo.unsubscribed_from_text_messaging_marketing",
                "Unsubscribed from SMS",
            ),
            ("event:klaviyo.received_text_message", "Received SMS"),
            ("event:klaviyo.received_sms", "Received Text Message"),
        ] {
            assert_eq!(
                collection_for_topic(topic).slug(),
                collection_for_topic(&topic_for_metric_name(metric)).slug(),
                "{topic}"
            );
        }
    }

    #[test]
    fn an_unknown_metric_keeps_its_own_name() {
        assert_eq!(alias_for_metric_name("Placed Order"), None);
        assert_eq!(
            topic_for_metric_name("Placed  Order"),
            "event:klaviyo.placed_order"
        );
        assert_eq!(
            collection_for_topic(&topic_for_metric_name("Placed Order")).slug(),
            "placed_order"
        );
    }
}
