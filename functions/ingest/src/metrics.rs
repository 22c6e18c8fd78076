//! CloudWatch Embedded Metric Format: one JSON line per request on stdout, which Lambda's
//! log pipeline turns into metrics without any extra service or API call.
//! <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>

use std::io::Write;

use serde_json::{Value, json};

/// The CloudWatch namespace of every metric.
pub const METRICS_NAMESPACE: &str = "KlaviyoSource";

/// What one stored request did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
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
}

/// The EMF document for a stored request.
pub fn stored_request_document(route: &str, stored: &StoredRequest, timestamp_ms: i64) -> Value {
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
                "Dimensions": [["Route"]],
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

/// The EMF document for a refused request, counted by reason (the error code).
pub fn refused_request_document(route: &str, reason: &str, timestamp_ms: i64) -> Value {
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": METRICS_NAMESPACE,
                "Dimensions": [["Route", "Reason"]],
                "Metrics": [{"Name": "RequestsRefused", "Unit": "Count"}],
            }],
        },
        "Route": route,
        "Reason": reason,
        "RequestsRefused": 1,
    })
}

/// Writes EMF lines to stdout when enabled.
#[derive(Debug, Clone, Copy)]
pub struct MetricsEmitter {
    enabled: bool,
}

impl MetricsEmitter {
    /// An emitter that writes only when `enabled`.
    pub fn new(enabled: bool) -> Self {
        Self { enabled }
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
        };
        let doc = stored_request_document("klaviyo_webhook", &stored, 1_704_391_525_000);
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
        assert_eq!(doc["_aws"]["Timestamp"], 1_704_391_525_000_i64);
    }

    #[test]
    fn refused_document_is_dimensioned_by_reason() {
        let doc = refused_request_document("klaviyo_webhook", "invalid_signature", 1);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Route", "Reason"]])
        );
        assert_eq!(doc["Reason"], "invalid_signature");
        assert_eq!(doc["RequestsRefused"], 1);
    }
}
