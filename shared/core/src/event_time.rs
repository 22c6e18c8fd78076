//! The event times the lake stores. Every stored row's `dt=` partition must be a date the
//! Glue tables' partition projection covers (`projection.dt.range` =
//! `2000-01-01,NOW+1YEARS` in template.yaml), or Athena never reads it. An event dated outside
//! the range is kept in the rejected collection (dated by receipt) with the reason, never
//! written where no table looks.

use chrono::{DateTime, Duration, Utc};

/// The earliest event time stored: 2000-01-01T00:00:00Z (unix seconds). Older dates are
/// clock or unit errors (Klaviyo was founded in 2012, Segment in 2011), not history.
pub const EARLIEST_EVENT_UNIX_SECONDS: i64 = 946_684_800;

/// How far ahead of its receipt an event may be dated. Klaviyo sends some events dated
/// ahead (scheduled sends); the tables project dates up to one year past the query time,
/// which is never earlier than the receipt, and a year has at least 365 days.
pub const MAX_DAYS_AHEAD_OF_RECEIPT: i64 = 365;

/// Checks that an event time falls inside the stored range, relative to its receipt.
pub fn check_event_time(
    occurred_at: DateTime<Utc>,
    received_at: DateTime<Utc>,
) -> Result<(), String> {
    if occurred_at.timestamp() < EARLIEST_EVENT_UNIX_SECONDS {
        return Err(format!(
            "its time {} is before 2000-01-01, the earliest date the tables cover",
            occurred_at.format("%Y-%m-%dT%H:%M:%SZ")
        ));
    }
    if occurred_at > received_at + Duration::days(MAX_DAYS_AHEAD_OF_RECEIPT) {
        return Err(format!(
            "its time {} is more than {MAX_DAYS_AHEAD_OF_RECEIPT} days after it was received, \
             past the latest date the tables cover",
            occurred_at.format("%Y-%m-%dT%H:%M:%SZ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time_format::parse_iso_datetime;

    fn utc(text: &str) -> DateTime<Utc> {
        parse_iso_datetime(text).unwrap()
    }

    #[test]
    fn accepts_the_boundaries_and_refuses_beyond_them() {
        let received = utc("2026-11-29T00:00:00Z");
        assert!(check_event_time(utc("2000-01-01T00:00:00Z"), received).is_ok());
        assert!(check_event_time(utc("1999-12-31T23:59:59Z"), received).is_err());
        assert!(check_event_time(utc("2027-11-29T00:00:00Z"), received).is_ok());
        let late = check_event_time(utc("2027-11-29T00:00:01Z"), received).unwrap_err();
        assert!(late.contains("365 days"), "{late}");
    }
}
