//! Which of the account's metrics a pull reads, and what it reports about the ones it
//! expected: an expected email metric that is missing, a metric that disappeared since the
//! last run, or one that was renamed, is said out loud rather than skipped.

use std::collections::BTreeMap;

use source_core::klaviyo::metric_alias::{MetricChannel, alias_for_metric_name, fold_metric_name};
use source_core::klaviyo::metrics_page::AccountMetric;
use source_core::pull::state::StreamState;

/// The email metrics every Klaviyo account has (one of the two unsubscribe spellings).
const EXPECTED_EMAIL_TOPICS: [&[&str]; 6] = [
    &["received_email"],
    &["opened_email"],
    &["clicked_email"],
    &["bounced_email"],
    &["marked_email_as_spam"],
    &["unsubscribed_from_email_marketing", "unsubscribed"],
];

/// What to read: by channel (Klaviyo's own metrics of those channels) and by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricChoice {
    /// Channels whose Klaviyo metrics are read.
    pub channels: Vec<MetricChannel>,
    /// Further metrics, by exact name (case and spacing ignored).
    pub names: Vec<String>,
}

impl Default for MetricChoice {
    fn default() -> Self {
        Self {
            channels: vec![MetricChannel::Email],
            names: Vec::new(),
        }
    }
}

/// The metrics chosen and what was noticed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// The metrics to read, in the account's order.
    pub metrics: Vec<AccountMetric>,
    /// Things the user should know.
    pub warnings: Vec<String>,
}

/// Chooses among `account` (all its metrics) per `choice`, comparing with `known` (the
/// streams of earlier runs).
pub fn select_metrics(
    account: &[AccountMetric],
    choice: &MetricChoice,
    known: &BTreeMap<String, StreamState>,
) -> Selection {
    let fold = fold_metric_name;
    let wanted_names: Vec<String> = choice.names.iter().map(|n| fold(n)).collect();
    let mut selection = Selection::default();
    for metric in account {
        let by_channel = metric.is_klaviyos_own()
            && alias_for_metric_name(&metric.name)
                .is_some_and(|alias| choice.channels.contains(&alias.channel));
        let by_name = wanted_names.contains(&fold(&metric.name));
        // A stream of an earlier run continues even if the metric's name changed.
        let known_stream = known.contains_key(&metric.id);
        if by_channel || by_name || known_stream {
            if by_name && !metric.is_klaviyos_own() {
                selection.warnings.push(format!(
                    "metric \"{}\" ({}) is not one of Klaviyo's own but comes from integration {}: it is read like any metric, with the properties that integration sent (Klaviyo's custom metrics, which combine metrics, are a different object and are not read)",
                    metric.name,
                    metric.id,
                    metric.integration_key.as_deref().unwrap_or("unknown")
                ));
            }
            selection.metrics.push(metric.clone());
        }
    }
    for name in &choice.names {
        if !account.iter().any(|m| fold(&m.name) == fold(name)) {
            selection
                .warnings
                .push(format!("no metric named \"{name}\" in the account"));
        }
    }
    if choice.channels.contains(&MetricChannel::Email) {
        for spellings in EXPECTED_EMAIL_TOPICS {
            let present = account.iter().any(|m| {
                m.is_klaviyos_own()
                    && alias_for_metric_name(&m.name).is_some_and(|a| spellings.contains(&a.topic))
            });
            if !present {
                selection.warnings.push(format!(
                    "expected Klaviyo email metric ({}) is not in the account",
                    spellings.join(" or ")
                ));
            }
        }
    }
    for (id, stream) in known {
        match account.iter().find(|m| &m.id == id) {
            None => selection.warnings.push(format!(
                "metric \"{}\" ({id}) read by earlier runs is no longer in the account; its stream stops",
                stream.metric_name
            )),
            Some(now) if now.name != stream.metric_name => selection.warnings.push(format!(
                "metric {id} was renamed from \"{}\" to \"{}\"; its stream continues under the new name",
                stream.metric_name, now.name
            )),
            Some(_) => {}
        }
    }
    selection
}

#[cfg(test)]
mod tests {
    use super::*;
    use source_core::pull::state::{Order, Sweep};

    fn metric(id: &str, name: &str, key: &str) -> AccountMetric {
        AccountMetric {
            id: id.into(),
            name: name.into(),
            integration_key: Some(key.into()),
        }
    }

    fn stream(name: &str) -> StreamState {
        let at = chrono::DateTime::UNIX_EPOCH;
        StreamState {
            metric_name: name.into(),
            topic: "event:klaviyo.opened_email".into(),
            realtime: Sweep::new(at, at, Order::OldestFirst),
            rereads: Vec::new(),
            passes: Default::default(),
            days: Default::default(),
        }
    }

    #[test]
    fn reads_klaviyos_email_metrics_not_a_custom_one_of_the_same_name() {
        let account = vec![
            metric("R", "Received Email", "klaviyo"),
            metric("O", "Opened Email", "klaviyo"),
            metric("C", "Clicked Email", "klaviyo"),
            metric("X", "Clicked Email", "api"),
            metric("B", "Bounced Email", "klaviyo"),
            metric("S", "Marked Email as Spam", "klaviyo"),
            metric("U", "Unsubscribed", "klaviyo"),
            metric("T", "Received Text Message", "klaviyo"),
            metric("P", "Placed Order", "shopify"),
        ];
        let selection = select_metrics(&account, &MetricChoice::default(), &BTreeMap::new());
        let ids: Vec<&str> = selection.metrics.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, vec!["R", "O", "C", "B", "S", "U"]);
        assert_eq!(selection.warnings, Vec::<String>::new());

        let with_sms = MetricChoice {
            channels: vec![MetricChannel::Email, MetricChannel::Sms],
            names: vec!["placed  order".into()],
        };
        let selection = select_metrics(&account, &with_sms, &BTreeMap::new());
        let ids: Vec<&str> = selection.metrics.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, vec!["R", "O", "C", "B", "S", "U", "T", "P"]);
        assert_eq!(selection.warnings.len(), 1);
        assert!(selection.warnings[0].contains("Placed Order"));
    }

    #[test]
    fn reports_missing_vanished_and_renamed_metrics() {
        let account = vec![
            metric("R", "Received Email", "klaviyo"),
            metric("O", "Opened Email (renamed)", "klaviyo"),
        ];
        let known = BTreeMap::from([
            ("O".to_owned(), stream("Opened Email")),
            ("GONE".to_owned(), stream("Clicked Email")),
        ]);
        let selection = select_metrics(&account, &MetricChoice::default(), &known);
        let ids: Vec<&str> = selection.metrics.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, vec!["R", "O"]);
        let text = selection.warnings.join("\n");
        assert!(
            text.contains("(opened_email) is not in the account"),
            "{text}"
        );
        assert!(text.contains("(unsubscribed_from_email_marketing or unsubscribed)"));
        assert!(text.contains("\"Clicked Email\" (GONE) read by earlier runs is no longer"));
        assert!(text.contains("renamed from \"Opened Email\" to \"Opened Email (renamed)\""));
        assert_eq!(selection.warnings.len(), 7, "{text}");
    }
}
