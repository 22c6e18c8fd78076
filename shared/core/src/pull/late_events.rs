//! When the pull looks again for events Klaviyo listed late, and which days it reads again.
//!
//! Klaviyo promises attribution within 3 hours, and events have been seen to appear days
//! late. Re-reading a flat week every few hours costs a week of pages each time; instead:
//!
//! - **recent**: the last [`LatePasses::recent`] hours behind the realtime cursor are read
//!   again every [`LatePasses::recent_every`], ungated (most late events are minutes or
//!   hours late, and the day they fall in is still being written);
//! - **week**: every [`LatePasses::week_every`], Klaviyo's daily counts
//!   (`POST /api/metric-aggregates`, one request a metric) for the cursor's own day (up to
//!   the cursor) and the whole days 1 to [`LatePasses::week_days`] behind it are compared
//!   with the distinct ids stored for each day; only a day whose counts differ is read
//!   again;
//! - **month**: the same check once a day for days `week_days + 1` to
//!   [`LatePasses::month_days`].
//!
//! A re-read stores only ids its day's ledger does not hold, so reading again is safe;
//! the gates only keep it cheap.

use std::collections::BTreeMap;

use chrono::{DateTime, Days, NaiveDate, TimeDelta, Utc};

use super::state::DayRecord;
use super::windows::window_floor;

/// The late-event passes' reach and intervals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatePasses {
    /// How far behind the cursor the recent pass reads.
    pub recent: TimeDelta,
    /// How often the recent pass runs.
    pub recent_every: TimeDelta,
    /// The last day behind the cursor's day the week check covers (it covers the cursor's
    /// own day too); 0: no week check.
    pub week_days: u64,
    /// How often the week check runs.
    pub week_every: TimeDelta,
    /// The last day behind the cursor's day the month check covers (from `week_days + 1`);
    /// not above `week_days`: no month check.
    pub month_days: u64,
    /// How often the month check runs.
    pub month_every: TimeDelta,
}

impl Default for LatePasses {
    fn default() -> Self {
        Self {
            recent: TimeDelta::hours(3),
            recent_every: TimeDelta::hours(1),
            week_days: 7,
            week_every: TimeDelta::hours(6),
            month_days: 35,
            month_every: TimeDelta::hours(24),
        }
    }
}

impl LatePasses {
    /// No late-event pass at all (`--no-late-passes`, tests of the realtime sweep alone).
    pub fn none() -> Self {
        Self {
            recent: TimeDelta::zero(),
            week_days: 0,
            month_days: 0,
            ..Self::default()
        }
    }
}

/// Whether a pass last run at `last` is due again at `now`.
pub fn is_due(last: Option<DateTime<Utc>>, every: TimeDelta, now: DateTime<Utc>) -> bool {
    last.is_none_or(|last| now - last >= every)
}

/// The UTC days `first_back..=last_back` behind the day `cursor` falls in (0: that day, up
/// to the cursor, which is all the stream has read of it; 1: the day before), as
/// `[start, end)`; never a day that starts before `stream_from` (the stream never read it
/// whole). `None` when no day qualifies.
pub fn checked_days(
    cursor: DateTime<Utc>,
    stream_from: DateTime<Utc>,
    first_back: u64,
    last_back: u64,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    if last_back < first_back {
        return None;
    }
    let today = window_floor(cursor);
    let end = match first_back {
        0 => cursor,
        _ => today.checked_sub_days(Days::new(first_back - 1))?,
    };
    let start = today.checked_sub_days(Days::new(last_back))?;
    let first_whole_day = match window_floor(stream_from) {
        midnight if midnight == stream_from => midnight,
        midnight => midnight + TimeDelta::days(1),
    };
    let start = start.max(first_whole_day);
    (start < end).then_some((start, end))
}

/// The days of `counts` (Klaviyo's daily counts) to read again, each with the count that
/// asks for it: the count differs from the ids stored for the day, and from the count
/// that made the day be read again last time.
pub fn days_to_reread(
    counts: &[(NaiveDate, u64)],
    days: &BTreeMap<NaiveDate, DayRecord>,
) -> Vec<(NaiveDate, u64)> {
    counts
        .iter()
        .filter(|(day, count)| {
            let record = days.get(day).cloned().unwrap_or_default();
            *count != record.stored && Some(*count) != record.klaviyo_when_reread
        })
        .copied()
        .collect()
}

/// Forgets the records of days before `oldest_kept` (no pass looks at them any more).
pub fn forget_days_before(days: &mut BTreeMap<NaiveDate, DayRecord>, oldest_kept: NaiveDate) {
    days.retain(|day, _| *day >= oldest_kept);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time_format::parse_iso_datetime;

    fn t(text: &str) -> DateTime<Utc> {
        parse_iso_datetime(text).unwrap()
    }

    fn d(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn a_pass_is_due_once_its_interval_has_passed() {
        let every = TimeDelta::hours(6);
        assert!(is_due(None, every, t("2026-01-10T00:00:00Z")));
        assert!(!is_due(
            Some(t("2026-01-10T00:00:00Z")),
            every,
            t("2026-01-10T05:59:59Z")
        ));
        assert!(is_due(
            Some(t("2026-01-10T00:00:00Z")),
            every,
            t("2026-01-10T06:00:00Z")
        ));
    }

    #[test]
    fn the_checks_cover_whole_days_behind_the_cursor_and_none_before_the_stream() {
        let cursor = t("2026-01-10T14:20:00Z");
        let long_ago = t("2025-01-01T00:00:00Z");
        assert_eq!(
            checked_days(cursor, long_ago, 1, 7),
            Some((t("2026-01-03T00:00:00Z"), t("2026-01-10T00:00:00Z")))
        );
        // Day 0 is the cursor's own day, up to the cursor.
        assert_eq!(
            checked_days(cursor, long_ago, 0, 7),
            Some((t("2026-01-03T00:00:00Z"), cursor))
        );
        assert_eq!(
            checked_days(cursor, long_ago, 8, 35),
            Some((t("2025-12-06T00:00:00Z"), t("2026-01-03T00:00:00Z")))
        );
        // A stream that started mid-day on the 5th has read whole days from the 6th.
        assert_eq!(
            checked_days(cursor, t("2026-01-05T09:00:00Z"), 1, 7),
            Some((t("2026-01-06T00:00:00Z"), t("2026-01-10T00:00:00Z")))
        );
        assert_eq!(checked_days(cursor, t("2026-01-05T09:00:00Z"), 8, 35), None);
        assert_eq!(checked_days(cursor, long_ago, 2, 1), None);
    }

    #[test]
    fn only_days_whose_counts_differ_are_read_again_and_a_settled_difference_is_not() {
        let mut days = BTreeMap::new();
        days.insert(
            d("2026-01-07"),
            DayRecord {
                stored: 100,
                klaviyo_when_reread: None,
            },
        );
        days.insert(
            d("2026-01-08"),
            DayRecord {
                stored: 100,
                klaviyo_when_reread: None,
            },
        );
        // Klaviyo counts one fewer than stored (an event deleted since): read once, and
        // not again while the count stays.
        days.insert(
            d("2026-01-09"),
            DayRecord {
                stored: 100,
                klaviyo_when_reread: Some(99),
            },
        );
        let counts = [
            (d("2026-01-06"), 0),
            (d("2026-01-07"), 100),
            (d("2026-01-08"), 103),
            (d("2026-01-09"), 99),
        ];
        assert_eq!(days_to_reread(&counts, &days), vec![(d("2026-01-08"), 103)]);
        // A day nothing was stored for, with events at Klaviyo, is read.
        assert_eq!(
            days_to_reread(&[(d("2026-01-05"), 4)], &days),
            vec![(d("2026-01-05"), 4)]
        );
        forget_days_before(&mut days, d("2026-01-08"));
        assert_eq!(days.len(), 2);
    }
}
