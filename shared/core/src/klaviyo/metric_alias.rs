//! Klaviyo metric names (what `GET /api/metrics` lists) and the webhook topics they are the
//! same thing as, so a pulled event lands in the collection its webhook would.
//!
//! Klaviyo spells one metric several ways across accounts and years ("Unsubscribed" on old
//! accounts, "Unsubscribed from Email Marketing" on new ones; "SMS" renamed "Text Message"
//! in 2026, the SMS unsubscribe "Unsubscribed from Text Messaging Marketing" since July
//! 2026), so names are compared after folding case and white space, and every spelling of
//! one metric gives one topic.

/// Which family a metric belongs to; the pull selects email by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MetricChannel {
    /// Klaviyo's own email metrics: pulled unless the user narrows the selection.
    Email,
    /// Text messages (SMS): pulled when the user asks for them.
    Sms,
    /// Mobile push: pulled when the user asks for them.
    Push,
    /// Consent and list changes (subscribed, unsubscribed from a list, preferences, merged
    /// profiles): pulled when the user asks for them.
    Consent,
}

impl MetricChannel {
    /// The channel named `name` (`email`, `sms`, `push`, `consent`; case and spaces ignored).
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Email, Self::Sms, Self::Push, Self::Consent]
            .into_iter()
            .find(|channel| channel.as_str().eq_ignore_ascii_case(name.trim()))
    }

    /// The name used on the command line and in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
            Self::Push => "push",
            Self::Consent => "consent",
        }
    }
}

/// One Klaviyo metric the pull knows: its topic and every name Klaviyo gives it.
struct KnownMetric {
    topic: &'static str,
    channel: MetricChannel,
    names: &'static [&'static str],
}

/// Every metric the pull knows by name. The topic is the suffix of the webhook topic id
/// (`event:klaviyo.<topic>`), so [`crate::klaviyo::topic::collection_for_topic`] files both
/// paths' events in one collection.
const KNOWN_METRICS: &[KnownMetric] = &[
    KnownMetric {
        topic: "received_email",
        channel: MetricChannel::Email,
        names: &["Received Email"],
    },
    KnownMetric {
        topic: "opened_email",
        channel: MetricChannel::Email,
        names: &["Opened Email"],
    },
    KnownMetric {
        topic: "clicked_email",
        channel: MetricChannel::Email,
        names: &["Clicked Email"],
    },
    KnownMetric {
        topic: "bounced_email",
        channel: MetricChannel::Email,
        names: &["Bounced Email"],
    },
    KnownMetric {
        topic: "marked_email_as_spam",
        channel: MetricChannel::Email,
        names: &["Marked Email as Spam"],
    },
    KnownMetric {
        topic: "unsubscribed_from_email_marketing",
        channel: MetricChannel::Email,
        names: &["Unsubscribed from Email Marketing"],
    },
    KnownMetric {
        topic: "unsubscribed",
        channel: MetricChannel::Email,
        names: &["Unsubscribed"],
    },
    KnownMetric {
        topic: "dropped_email",
        channel: MetricChannel::Email,
        names: &["Dropped Email"],
    },
    KnownMetric {
        topic: "received_sms",
        channel: MetricChannel::Sms,
        names: &["Received SMS", "Received Text Message"],
    },
    KnownMetric {
        topic: "clicked_sms",
        channel: MetricChannel::Sms,
        names: &["Clicked SMS", "Clicked Text Message"],
    },
    KnownMetric {
        topic: "sent_sms",
        channel: MetricChannel::Sms,
        names: &["Sent SMS", "Sent Text Message"],
    },
    KnownMetric {
        topic: "failed_to_deliver_sms",
        channel: MetricChannel::Sms,
        names: &["Failed to Deliver SMS", "Failed to Deliver Text Message"],
    },
    KnownMetric {
        topic: "unsubscribed_from_sms",
        channel: MetricChannel::Sms,
        names: &[
            "Unsubscribed from SMS",
            "Unsubscribed from SMS Marketing",
            "Unsubscribed from Text Messages",
            "Unsubscribed from Text Message Marketing",
            "Unsubscribed from Text Messaging Marketing",
        ],
    },
    KnownMetric {
        topic: "consented_to_receive_sms",
        channel: MetricChannel::Sms,
        // "Consented to Receive SMS" is Klaviyo's name (help center, SMS Metrics); the text
        // message spelling follows the 2026 rename of its siblings (an assumption).
        names: &[
            "Consented to Receive SMS",
            "Consented to Receive Text Messages",
        ],
    },
    KnownMetric {
        topic: "received_push",
        channel: MetricChannel::Push,
        names: &["Received Push"],
    },
    KnownMetric {
        topic: "opened_push",
        channel: MetricChannel::Push,
        names: &["Opened Push"],
    },
    KnownMetric {
        topic: "bounced_push",
        channel: MetricChannel::Push,
        names: &["Bounced Push"],
    },
    KnownMetric {
        topic: "subscribed_to_email_marketing",
        channel: MetricChannel::Consent,
        names: &["Subscribed to Email Marketing"],
    },
    KnownMetric {
        topic: "subscribed_to_list",
        channel: MetricChannel::Consent,
        names: &["Subscribed to List"],
    },
    KnownMetric {
        topic: "unsubscribed_from_list",
        channel: MetricChannel::Consent,
        names: &["Unsubscribed from List"],
    },
    KnownMetric {
        topic: "updated_email_preferences",
        channel: MetricChannel::Consent,
        names: &["Updated Email Preferences"],
    },
    KnownMetric {
        topic: "merged_profile",
        channel: MetricChannel::Consent,
        names: &["Merged Profile"],
    },
];

/// What the pull knows of one metric name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricAlias {
    /// The webhook topic suffix (`opened_email`), shared by every spelling.
    pub topic: &'static str,
    /// Email, SMS or push.
    pub channel: MetricChannel,
}

/// The known metric named `name` (any of its spellings, case and spacing ignored).
pub fn alias_for_metric_name(name: &str) -> Option<MetricAlias> {
    let wanted = fold_metric_name(name);
    KNOWN_METRICS
        .iter()
        .find(|metric| {
            metric
                .names
                .iter()
                .any(|known| fold_metric_name(known) == wanted)
        })
        .map(|metric| MetricAlias {
            topic: metric.topic,
            channel: metric.channel,
        })
}

/// The webhook topic id of a metric: the alias's topic for a known name, else the name in
/// snake case, so an unknown metric the user selects still gets a stable collection.
pub fn topic_for_metric_name(name: &str) -> String {
    let suffix = match alias_for_metric_name(name) {
        Some(alias) => alias.topic.to_owned(),
        None => fold_metric_name(name).replace(' ', "_"),
    };
    format!("event:klaviyo.{suffix}")
}

/// The topics of one channel, for reports of metrics that should exist but do not.
pub fn topics_of_channel(channel: MetricChannel) -> Vec<&'static str> {
    KNOWN_METRICS
        .iter()
        .filter(|metric| metric.channel == channel)
        .map(|metric| metric.topic)
        .collect()
}

/// A metric name as compared: lower case, runs of white space as one space, trimmed.
pub fn fold_metric_name(name: &str) -> String {
    name.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_consent_metrics_are_a_channel_of_their_own() {
        for name in [
            "Subscribed to Email Marketing",
            "Subscribed to List",
            "Unsubscribed from List",
            "Updated Email Preferences",
            "Merged Profile",
        ] {
            assert_eq!(
                alias_for_metric_name(name).map(|a| a.channel),
                Some(MetricChannel::Consent),
                "{name}"
            );
        }
        assert_eq!(topics_of_channel(MetricChannel::Consent).len(), 5);
        assert_eq!(
            MetricChannel::parse(" Consent"),
            Some(MetricChannel::Consent)
        );
    }

    #[test]
    fn lists_the_topics_of_a_channel() {
        let email = topics_of_channel(MetricChannel::Email);
        assert_eq!(email.len(), 8);
        assert!(email.contains(&"opened_email"));
        assert!(!email.contains(&"received_sms"));
    }
}
