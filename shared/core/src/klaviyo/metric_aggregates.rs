//! Klaviyo's `POST /api/metric-aggregates`: how many events of a metric Klaviyo counts per
//! day, for a backfill's plan and for reconciling what was stored against Klaviyo.
//! <https://developers.klaviyo.com/en/reference/query_metric_aggregates>

use chrono::{DateTime, Months, NaiveDate, TimeDelta, Utc};
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

/// The longest span one query may cover: Klaviyo's "the maximum time frame is 1 year"
/// (Query Metric Aggregates), kept at 365 days so a leap year never exceeds it.
pub const MAX_SPAN: TimeDelta = TimeDelta::days(365);

/// How far back a query may reach: "up to 5 years of historical data" (Query Metric
/// Aggregates), in months.
pub const MAX_MONTHS_BACK: u32 = 60;

/// `[from, to)` as the spans queries may ask for: nothing before five years before `now`,
/// each span at most [`MAX_SPAN`], in order. Empty when nothing of the range is in reach.
pub fn count_spans(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let reach = now
        .checked_sub_months(Months::new(MAX_MONTHS_BACK))
        .unwrap_or(from);
    // Whole days, so each span's daily buckets are the days stored (the floor is the day
    // after the one five years back began).
    let reach = crate::pull::windows::window_floor(reach) + TimeDelta::days(1);
    let mut start = from.max(reach);
    let mut spans = Vec::new();
    while start < to {
        let end = (start + MAX_SPAN).min(to);
        spans.push((start, end));
        start = end;
    }
    spans
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
    fn a_long_range_is_asked_in_spans_of_a_year_within_five_years() {
        let now = parse_iso_datetime("2026-12-03T10:00:00Z").unwrap();
        let from = parse_iso_datetime("2018-01-01T00:00:00Z").unwrap();
        let spans = count_spans(from, now, now);
        assert_eq!(
            spans[0].0,
            parse_iso_datetime("2021-12-04T00:00:00Z").unwrap(),
            "nothing before five years back"
        );
        assert_eq!(spans.last().unwrap().1, now);
        assert!(spans.iter().all(|(a, b)| *b - *a <= MAX_SPAN));
        assert!(spans.windows(2).all(|pair| pair[0].1 == pair[1].0));
        // Five years and ten hours, with 2024's leap day: five whole spans and a short one.
        assert_eq!(spans.len(), 6);
        let recent = parse_iso_datetime("2026-11-01T00:00:00Z").unwrap();
        assert_eq!(count_spans(recent, now, now), vec![(recent, now)]);
        assert!(count_spans(from, from + TimeDelta::days(3), now).is_empty());
    }

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
