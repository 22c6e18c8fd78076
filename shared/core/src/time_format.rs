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
    let (seconds, nanosecond) = (time.timestamp(), time.timestamp_subsec_nanos());
    let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_date(days);
    // Years of other than four digits, and leap seconds (chrono keeps them as a nanosecond
    // count of one second or more): chrono writes them.
    if !(0..=9999).contains(&year) || nanosecond >= 1_000_000_000 {
        return time.to_rfc3339_opts(SecondsFormat::Millis, true);
    }
    // Written by hand into a fixed buffer: it runs several times per event, and chrono's
    // general formatter costs several times more. What it writes equals chrono's output
    // (tested on 20,000 random instants).
    let mut text = *b"0000-00-00T00:00:00.000Z";
    // In range, each of these fits a u32 (the year has four digits, the day's second < 86,400).
    let (year, month, day, second_of_day) =
        (year as u32, month as u32, day as u32, second_of_day as u32);
    let millisecond = nanosecond / 1_000_000;
    put_two_digits(&mut text, 0, year / 100);
    put_two_digits(&mut text, 2, year % 100);
    put_two_digits(&mut text, 5, month);
    put_two_digits(&mut text, 8, day);
    put_two_digits(&mut text, 11, second_of_day / 3600);
    put_two_digits(&mut text, 14, second_of_day / 60 % 60);
    put_two_digits(&mut text, 17, second_of_day % 60);
    put_two_digits(&mut text, 20, millisecond / 10);
    text[22] = b'0' + (millisecond % 10) as u8;
    // Only ASCII digits and separators were written, so this is always UTF-8; chrono's
    // answer stands in should that ever change.
    match std::str::from_utf8(&text) {
        Ok(text) => text.to_owned(),
        Err(_) => time.to_rfc3339_opts(SecondsFormat::Millis, true),
    }
}

/// The proleptic Gregorian (year, month, day) of the day `days` after 1970-01-01: the
/// "days from civil" inverse of Howard Hinnant's date algorithms, over 400-year eras
/// (146,097 days) that start on 0000-03-01, so February's leap day ends each year.
fn civil_date(days: i64) -> (i64, i64, i64) {
    const DAYS_PER_ERA: i64 = 146_097;
    // 0000-03-01 is 719,468 days before 1970-01-01.
    let shifted = days + 719_468;
    let era = shifted.div_euclid(DAYS_PER_ERA);
    let day_of_era = shifted - era * DAYS_PER_ERA;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months counted from March: 0 is March, 11 is February.
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Writes `value` (below 100) as two decimal digits at `at`.
fn put_two_digits(text: &mut [u8; 24], at: usize, value: u32) {
    // Both are single digits: `value` is below 100.
    text[at] = b'0' + (value / 10 % 10) as u8;
    text[at + 1] = b'0' + (value % 10) as u8;
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
    fn the_hand_written_format_is_chronos() {
        let mut random = fastrand::Rng::with_seed(3);
        // Random instants from year 0 to 9999, and the edges of that range.
        let mut times: Vec<DateTime<Utc>> = (0..20_000)
            .filter_map(|_| {
                let seconds = random.i64(-62_167_219_200..253_402_300_800);
                let nanos = random.u32(..1_000_000_000);
                Utc.timestamp_opt(seconds, nanos).single()
            })
            .collect();
        times.extend([
            utc("0000-01-01T00:00:00Z"),
            utc("9999-12-31T23:59:59.999999999Z"),
            utc("1970-01-01T00:00:00Z"),
            utc("2024-02-29T12:00:00.0015Z"),
        ]);
        // Outside four-digit years and in a leap second, chrono writes it.
        for (seconds, nanos) in [
            (-62_167_219_201, 0),
            (253_402_300_800, 0),
            (1_483_228_799, 1_500_000_000),
        ] {
            times.push(Utc.timestamp_opt(seconds, nanos).single().unwrap());
        }
        assert!(times.len() > 20_000 - 10);
        for time in times {
            assert_eq!(
                format_timestamp(time),
                time.to_rfc3339_opts(SecondsFormat::Millis, true)
            );
        }
    }

    #[test]
    fn formats_in_utc_with_millis_and_derives_the_date() {
        let time = utc("2023-08-10T23:59:59.5-01:00");
        assert_eq!(format_timestamp(time), "2023-08-11T00:59:59.500Z");
        assert_eq!(partition_date(time), "2023-08-11");
    }
}
