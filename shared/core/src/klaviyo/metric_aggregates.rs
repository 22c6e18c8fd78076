//! Klaviyo's `POST /api/metric-aggregates`: how many events of a metric Klaviyo counts per
//! day, for a backfill's plan and for reconciling what was stored against Klaviyo.
//! <https://developers.klaviyo.com/en/reference/query_metric_aggregates>

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::json;

use super::events_query::filter_time;
use crate::time_format::parse_iso_datetime;

/// The request body: daily counts of `metric_id` in `[from, to)`, days in UTC.
pub fn daily_count_request(metric_id: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<u8> {
    json!({
        "data": {
            "type": "metric-aggregate",
            "attributes": {
                "metric_id": metric_id,
                "measurements": ["count"],
                "interval": "day",
                "timezone": "UTC",
                "filter": [
                    format!("greater-or-equal(datetime,{})", filter_time(from)),
                    format!("less-than(datetime,{})", filter_time(to)),
                ],
            }
        }
    })
    .to_string()
    .into_bytes()
}

#[derive(Deserialize)]
struct AnswerWire {
    data: AggregateWire,
}

#[derive(Deserialize)]
struct AggregateWire {
    attributes: AttributesWire,
}

#[derive(Deserialize)]
struct AttributesWire {
    #[serde(default)]
    dates: Vec<String>,
    #[serde(default)]
    data: Vec<SeriesWire>,
}

#[derive(Deserialize)]
struct SeriesWire {
    measurements: MeasurementsWire,
}

#[derive(Deserialize)]
struct MeasurementsWire {
    #[serde(default)]
    count: Vec<f64>,
}

/// The daily counts of an answer, day by day (summed over dimensions, of which a request
/// without `by` has one).
pub fn parse_daily_counts(body: &[u8]) -> Result<Vec<(NaiveDate, u64)>, String> {
    let answer: AnswerWire = serde_json::from_slice(body).map_err(|err| err.to_string())?;
    let attributes = answer.data.attributes;
    attributes
        .dates
        .iter()
        .enumerate()
        .map(|(i, date)| {
            let day = parse_iso_datetime(date)
                .map(|at| at.date_naive())
                .ok_or_else(|| format!("unreadable date {date:?}"))?;
            let count: f64 = attributes
                .data
                .iter()
                .filter_map(|series| series.measurements.count.get(i))
                .sum();
            // Counts are whole numbers sent as floats.
            Ok((day, count.round().max(0.0) as u64))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_for_daily_counts_and_reads_them_back() {
        let from = parse_iso_datetime("2024-01-01T00:00:00Z").unwrap();
        let to = parse_iso_datetime("2024-01-03T00:00:00Z").unwrap();
        let body: serde_json::Value =
            serde_json::from_slice(&daily_count_request("M1", from, to)).unwrap();
        assert_eq!(body["data"]["attributes"]["interval"], "day");
        assert_eq!(
            body["data"]["attributes"]["filter"][1],
            "less-than(datetime,2024-01-03T00:00:00Z)"
        );
        let answer = r#"{"data": {"type": "metric-aggregate", "id": "x", "attributes": {
            "dates": ["2024-01-01T00:00:00+00:00", "2024-01-02T00:00:00+00:00"],
            "data": [{"dimensions": [], "measurements": {"count": [3.0, 0.0]}}]}}}"#;
        assert_eq!(
            parse_daily_counts(answer.as_bytes()).unwrap(),
            vec![
                (NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(), 3),
                (NaiveDate::from_ymd_opt(2024, 1, 2).unwrap(), 0)
            ]
        );
    }
}
