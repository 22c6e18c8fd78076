//! CloudWatch Embedded Metric Format: one JSON line per request on stdout, which Lambda's
//! log pipeline turns into metrics without any extra service or API call.
//! <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>

use std::io::Write;

use serde_json::{Value, json};
use source_core::collection::{EMAIL_COLLECTIONS, REJECTED_COLLECTION};

use crate::tables::compaction_run::CompactionReport;

/// The CloudWatch namespace of every metric.
pub const METRICS_NAMESPACE: &str = "KlaviyoSource";

/// The `Collection` dimension for collections outside the known ones: Segment callers name
/// their own events, and one metric per name would make CloudWatch's bill unbounded.
pub const OTHER_COLLECTIONS_DIMENSION: &str = "other";

/// What one stored request did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredRequest {
    /// Events stored as track events.
    pub accepted: usize,
    /// Events stored as rejected.
    pub rejected: usize,
    /// Events not stored by the "only own profiles" switch.
    pub skipped: usize,
    /// Profiles whose lookup failed or timed out.
    pub unresolved: usize,
    /// Firehose records resent.
    pub resent: usize,
    /// Rows spilled to the dead-letter store.
    pub spilled: usize,
    /// Time spent delivering, milliseconds.
    pub delivery_ms: f64,
    /// Rows stored per collection slug, in slug order.
    pub rows_per_collection: Vec<(String, usize)>,
}

/// The EMF document for a stored request: its metrics without dimensions, and with
/// `detailed` once more per `Route` (each name and dimension set is a custom metric CloudWatch
/// bills monthly, so the per-route set is a choice).
pub fn stored_request_document(
    route: &str,
    stored: &StoredRequest,
    timestamp_ms: i64,
    detailed: bool,
) -> Value {
    let metrics = [
        ("EventsAccepted", "Count"),
        ("EventsRejected", "Count"),
        ("EventsSkipped", "Count"),
        ("ProfilesUnresolved", "Count"),
        ("RecordsResent", "Count"),
        ("RowsSpilled", "Count"),
        ("DeliveryLatency", "Milliseconds"),
    ];
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": METRICS_NAMESPACE,
                // Without dimensions, so one alarm covers every route (a route added later
                // included); per route too when detailed.
                "Dimensions": if detailed { json!([["Route"], []]) } else { json!([[]]) },
                "Metrics": metrics.iter().map(|(name, unit)| json!({"Name": name, "Unit": unit})).collect::<Vec<_>>(),
            }],
        },
        "Route": route,
        "EventsAccepted": stored.accepted,
        "EventsRejected": stored.rejected,
        "EventsSkipped": stored.skipped,
        "ProfilesUnresolved": stored.unresolved,
        "RecordsResent": stored.resent,
        "RowsSpilled": stored.spilled,
        "DeliveryLatency": stored.delivery_ms,
    })
}

/// The EMF documents counting a stored request's rows per collection (`RowsStored` by
/// `Route` and `Collection`); collections outside the email ones and `rejected_events` are
/// summed under [`OTHER_COLLECTIONS_DIMENSION`].
pub fn collection_documents(route: &str, stored: &StoredRequest, timestamp_ms: i64) -> Vec<Value> {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for (slug, rows) in &stored.rows_per_collection {
        let known =
            slug == REJECTED_COLLECTION || EMAIL_COLLECTIONS.iter().any(|(email, _)| email == slug);
        let label = if known {
            slug.as_str()
        } else {
            OTHER_COLLECTIONS_DIMENSION
        };
        match counts.iter_mut().find(|(name, _)| *name == label) {
            Some((_, total)) => *total += rows,
            None => counts.push((label, *rows)),
        }
    }
    counts
        .into_iter()
        .map(|(collection, rows)| {
            json!({
                "_aws": {
                    "Timestamp": timestamp_ms,
                    "CloudWatchMetrics": [{
                        "Namespace": METRICS_NAMESPACE,
                        "Dimensions": [["Route", "Collection"]],
                        "Metrics": [{"Name": "RowsStored", "Unit": "Count"}],
                    }],
                },
                "Route": route,
                "Collection": collection,
                "RowsStored": rows,
            })
        })
        .collect()
}

/// The EMF document for a refused request: counted without dimensions, and with `detailed`
/// by route and reason (the error code) too.
pub fn refused_request_document(
    route: &str,
    reason: &str,
    timestamp_ms: i64,
    detailed: bool,
) -> Value {
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": METRICS_NAMESPACE,
                "Dimensions": if detailed { json!([["Route", "Reason"], []]) } else { json!([[]]) },
                "Metrics": [{"Name": "RequestsRefused", "Unit": "Count"}],
            }],
        },
        "Route": route,
        "Reason": reason,
        "RequestsRefused": 1,
    })
}

/// What one scheduled pull run did, for its metrics line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PullRunFigures {
    /// Events stored as track events.
    pub events_stored: u64,
    /// Requests sent to Klaviyo.
    pub requests: u64,
    /// 429 answers.
    pub rate_limited: u64,
    /// Whether Klaviyo refused the API key (401/403).
    pub key_refused: bool,
    /// Whether another run held the lease, so this one did nothing.
    pub lease_held: bool,
    /// Now less the oldest realtime cursor, when the run reached one.
    pub cursor_lag_secs: Option<i64>,
}

/// The EMF document of a scheduled pull run (no dimensions: one pull per stack). Without a
/// cursor the lag is left out, so the lag alarm sees missing data, which it counts as lag.
pub fn pull_run_document(figures: &PullRunFigures, timestamp_ms: i64) -> Value {
    let mut metrics = vec![
        json!({"Name": "PullEventsStored", "Unit": "Count"}),
        json!({"Name": "PullRequests", "Unit": "Count"}),
        json!({"Name": "PullRateLimited", "Unit": "Count"}),
        json!({"Name": "PullKeyRefused", "Unit": "Count"}),
        json!({"Name": "PullLeaseHeld", "Unit": "Count"}),
    ];
    let mut document = json!({
        "PullEventsStored": figures.events_stored,
        "PullRequests": figures.requests,
        "PullRateLimited": figures.rate_limited,
        "PullKeyRefused": u8::from(figures.key_refused),
        "PullLeaseHeld": u8::from(figures.lease_held),
    });
    if let Some(lag) = figures.cursor_lag_secs {
        metrics.push(json!({"Name": "PullCursorLagSeconds", "Unit": "Seconds"}));
        document["PullCursorLagSeconds"] = json!(lag);
    }
    document["_aws"] = json!({
        "Timestamp": timestamp_ms,
        "CloudWatchMetrics": [{
            "Namespace": METRICS_NAMESPACE,
            "Dimensions": [[]],
            "Metrics": metrics,
        }],
    });
    document
}

/// The EMF document of a finished compaction run (no dimensions: one compaction per
/// stack). `CompactionRunsCompleted` is 1 per run that finished, so its absence is what the
/// lag alarm watches: while runs finish, nothing raw waits longer than a schedule period and
/// a run.
pub fn compaction_run_document(report: &CompactionReport, timestamp_ms: i64) -> Value {
    let figures = [
        ("CompactionRunsCompleted", 1),
        ("CompactionObjectsRead", report.objects_read),
        ("CompactionRowsWritten", report.rows_written),
        ("CompactionNewIds", report.new_ids),
        ("CompactionDuplicatesDropped", report.duplicates_dropped),
        ("CompactionUnreadableLines", report.unreadable_lines),
        ("CompactionErrorObjectsFound", report.error_objects_found),
        ("CompactionLostRaces", report.lost_races),
        ("CompactionRowsWithCastErrors", report.rows_with_cast_errors),
        ("CompactionRowsPastColumnCap", report.rows_past_column_cap),
    ];
    let mut document = json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": METRICS_NAMESPACE,
                "Dimensions": [[]],
                "Metrics": figures
                    .iter()
                    .map(|(name, _)| json!({"Name": name, "Unit": "Count"}))
                    .collect::<Vec<_>>(),
            }],
        },
    });
    for (name, value) in figures {
        document[name] = json!(value);
    }
    document
}

/// Writes EMF lines to stdout when enabled.
#[derive(Debug, Clone, Copy)]
pub struct MetricsEmitter {
    enabled: bool,
    detailed: bool,
}

impl MetricsEmitter {
    /// An emitter that writes only when `enabled`, the basic set (no per-route or
    /// per-collection dimensions).
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            detailed: false,
        }
    }

    /// The same emitter, with per-route and per-collection dimensions when `detailed`.
    pub fn with_detail(self, detailed: bool) -> Self {
        Self { detailed, ..self }
    }

    /// Whether per-route and per-collection metrics are emitted.
    pub fn detailed(&self) -> bool {
        self.detailed
    }

    /// Emits `document` as one line.
    pub fn emit(&self, document: &Value) {
        if !self.enabled {
            return;
        }
        let mut line = document.to_string();
        line.push('\n');
        // One write call per line so concurrent requests never interleave a line.
        if std::io::stdout().lock().write_all(line.as_bytes()).is_err() {
            tracing::debug!("stdout closed; metric line dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_document_declares_every_metric_it_carries() {
        let stored = StoredRequest {
            accepted: 6,
            rejected: 1,
            skipped: 1,
            unresolved: 3,
            resent: 2,
            spilled: 0,
            delivery_ms: 12.5,
            rows_per_collection: Vec::new(),
        };
        let doc = stored_request_document("klaviyo_webhook", &stored, 1_704_391_525_000, true);
        let declared: Vec<&str> = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        for name in &declared {
            assert!(doc.get(*name).is_some(), "{name} declared but missing");
        }
        assert_eq!(doc["EventsAccepted"], 6);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Route"], []]),
            "RowsSpilled must also exist without dimensions for the stack's one alarm"
        );
        assert_eq!(doc["_aws"]["Timestamp"], 1_704_391_525_000_i64);
    }

    #[test]
    fn a_pull_document_declares_exactly_the_metrics_it_carries() {
        let declared = |doc: &Value| -> Vec<String> {
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["Name"].as_str().unwrap().to_owned())
                .collect()
        };
        let with_lag = pull_run_document(
            &PullRunFigures {
                events_stored: 30,
                cursor_lag_secs: Some(61),
                ..PullRunFigures::default()
            },
            1,
        );
        for name in declared(&with_lag) {
            assert!(with_lag.get(&name).is_some(), "{name} declared but missing");
        }
        assert_eq!(with_lag["PullCursorLagSeconds"], 61);
        let refused = pull_run_document(
            &PullRunFigures {
                key_refused: true,
                ..PullRunFigures::default()
            },
            1,
        );
        assert_eq!(refused["PullKeyRefused"], 1);
        assert_eq!(refused["PullLeaseHeld"], 0);
        assert!(!declared(&refused).contains(&"PullCursorLagSeconds".to_owned()));
        assert!(refused.get("PullCursorLagSeconds").is_none());
    }

    #[test]
    fn counts_rows_per_known_collection_and_sums_the_others() {
        let stored = StoredRequest {
            rows_per_collection: vec![
                ("email_opened".into(), 3),
                ("order_completed".into(), 2),
                ("rejected_events".into(), 1),
                ("received_sms".into(), 4),
            ],
            ..StoredRequest::default()
        };
        let docs = collection_documents("segment_batch", &stored, 1);
        let counts: Vec<(String, u64)> = docs
            .iter()
            .map(|d| {
                (
                    d["Collection"].as_str().unwrap().to_owned(),
                    d["RowsStored"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            counts,
            vec![
                ("email_opened".to_owned(), 3),
                ("other".to_owned(), 6),
                ("rejected_events".to_owned(), 1)
            ]
        );
    }

    #[test]
    fn refused_document_is_dimensioned_by_reason_only_when_detailed() {
        let doc = refused_request_document("klaviyo_webhook", "invalid_signature", 1, true);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Route", "Reason"], []])
        );
        let basic = refused_request_document("klaviyo_webhook", "invalid_signature", 1, false);
        assert_eq!(
            basic["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([[]])
        );
        assert_eq!(doc["Reason"], "invalid_signature");
        assert_eq!(doc["RequestsRefused"], 1);
    }
}
