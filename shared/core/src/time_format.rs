//! Parsing the several time formats Klaviyo uses, and the one format we write.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// Unix times above this are taken as milliseconds: in seconds it is the year 5138.
const LARGEST_PLAUSIBLE_UNIX_SECONDS: i64 = 100_000_000_000;

/// Parses an ISO-8601 / RFC 3339 date-time, with `T` or a space between date and time
/// (Klaviyo's published examples show both).
pub fn parse_iso_datetime(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Parses a `Klaviyo-Timestamp` header: an HTTP-date (the documented form), unix seconds
/// or milliseconds (seen in third-party material), or an RFC 3339 date-time.
pub fn parse_header_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<i64>().ok().and_then(unix_time_to_datetime);
    }
    DateTime::parse_from_rfc2822(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
        .or_else(|| parse_iso_datetime(text))
}

/// Converts unix seconds (or milliseconds, when implausibly large for seconds).
pub fn unix_time_to_datetime(value: i64) -> Option<DateTime<Utc>> {
    if value.abs() >= LARGEST_PLAUSIBLE_UNIX_SECONDS {
        Utc.timestamp_millis_opt(value).single()
    } else {
        Utc.timestamp_opt(value, 0).single()
    }
}

/// The one way every timestamp is written: UTC, millisecond precision, `Z` suffix.
/// Because it is always UTC, its first ten characters are the partition date.
pub fn format_timestamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The `dt=` partition value for a time: its UTC date.
pub fn partition_date(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn accepts_iso_datetime_with_t_or_space() {
        let expected = utc("2023-08-10T07:21:56Z");
        assert_eq!(
            parse_iso_datetime("2023-08-10T07:21:56+00:00"),
            Some(expected)
        );
        assert_eq!(
            parse_iso_datetime("2023-08-10 07:21:56+00:00"),
            Some(expected)
        );
    }

    #[test]
    fn converts_offsets_to_utc() {
        assert_eq!(
            parse_iso_datetime("2023-08-10T09:21:56+02:00"),
            Some(utc("2023-08-10T07:21:56Z"))
        );
    }

    #[test]
    fn header_accepts_http_date_unix_seconds_and_millis() {
        let expected = utc("2024-01-04T18:05:25Z");
        assert_eq!(
            parse_header_timestamp("Thu, 04 Jan 2024 18:05:25 GMT"),
            Some(expected)
        );
        assert_eq!(parse_header_timestamp("1704391525"), Some(expected));
        assert_eq!(parse_header_timestamp("1704391525000"), Some(expected));
        assert_eq!(
            parse_header_timestamp("2024-01-04T18:05:25+00:00"),
            Some(expected)
        );
    }

    #[test]
    fn header_rejects_garbage() {
        assert_eq!(parse_header_timestamp(""), None);
        assert_eq!(parse_header_timestamp("yesterday"), None);
        assert_eq!(parse_header_timestamp("-5"), None);
        assert_eq!(parse_header_timestamp("99999999999999999999999"), None);
    }

    #[test]
    fn formats_in_utc_with_millis_and_derives_the_date() {
        let time = utc("2023-08-10T23:59:59.5-01:00");
        assert_eq!(format_timestamp(time), "2023-08-11T00:59:59.500Z");
        assert_eq!(partition_date(time), "2023-08-11");
    }
}
