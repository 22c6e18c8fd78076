//! The `GET /api/events` query of one metric's stream over one time window.

use chrono::{DateTime, SecondsFormat, Utc};

use super::query_string::percent_encode;

/// The largest `page[size]` of `GET /api/events` ("Returns 200 events per page by default,
/// and up to 1000 with page[size]", revision 2026-01-15 and later).
/// <https://developers.klaviyo.com/en/reference/get_events>
pub const MAX_EVENTS_PAGE_SIZE: u32 = 1000;
/// The page size every revision accepts (the default): the fallback when Klaviyo refuses
/// [`MAX_EVENTS_PAGE_SIZE`] with a 400.
pub const DEFAULT_EVENTS_PAGE_SIZE: u32 = 200;

/// The query string (without `?`) for events of `metric_id` with `from <= datetime < to`,
/// oldest first, with the profile (email, external id and phone number only: identity) and
/// the attributions (campaign and flow of a conversion).
pub fn events_query(
    metric_id: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    page_size: u32,
) -> String {
    let filter = format!(
        "equals(metric_id,\"{}\"),greater-or-equal(datetime,{}),less-than(datetime,{})",
        metric_id.replace(['"', '\\'], ""),
        filter_time(from),
        filter_time(to)
    );
    format!(
        "filter={}&sort=datetime&page%5Bsize%5D={page_size}&include=profile%2Cattributions\
         &fields%5Bprofile%5D=email%2Cexternal_id%2Cphone_number",
        percent_encode(&filter)
    )
}

/// A filter time as Klaviyo's examples write them (`2023-01-01T00:00:00Z`); whole seconds,
/// since windows start and end on seconds.
pub fn filter_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time_format::parse_iso_datetime;

    #[test]
    fn asks_for_one_metric_in_a_half_open_window_oldest_first() {
        let from = parse_iso_datetime("2024-01-01T00:00:00Z").unwrap();
        let to = parse_iso_datetime("2024-01-02T00:00:00Z").unwrap();
        let query = events_query("Xi7Kwh", from, to, 1000);
        assert_eq!(
            query,
            "filter=equals%28metric_id%2C%22Xi7Kwh%22%29%2Cgreater-or-equal%28datetime%2C\
             2024-01-01T00%3A00%3A00Z%29%2Cless-than%28datetime%2C2024-01-02T00%3A00%3A00Z%29\
             &sort=datetime&page%5Bsize%5D=1000&include=profile%2Cattributions\
             &fields%5Bprofile%5D=email%2Cexternal_id%2Cphone_number"
        );
    }
}
