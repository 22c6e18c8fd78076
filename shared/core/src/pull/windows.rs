//! Time windows: every read is a window aligned on UTC days and at most a day long, so a
//! re-read of the same day asks the same question (and, with the same events, yields the same
//! pages, rows and object names). A day, not an hour: a metric with few events costs one
//! request per window, and a year's backfill of six metrics is 2,190 windows, not 52,560.
//! Progress inside a window is checkpointed per page, so the window's length never limits
//! how much work a crash can lose.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

/// The longest window one query covers.
pub const WINDOW: TimeDelta = TimeDelta::days(1);

/// The start of the UTC day `time` falls in.
pub fn window_floor(time: DateTime<Utc>) -> DateTime<Utc> {
    time.duration_trunc(WINDOW).unwrap_or(time)
}

/// The window after `from`, ending at the next day boundary or at `limit`, whichever is
/// first; `None` once `from` has reached `limit`.
pub fn next_window(
    from: DateTime<Utc>,
    limit: DateTime<Utc>,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    if from >= limit {
        return None;
    }
    let boundary = window_floor(from) + WINDOW;
    Some((from, boundary.min(limit)))
}

/// The window before `to`, starting at the day boundary at or before `to` (or the one
/// before, when `to` is on a boundary), but not before `floor`; for newest-first reads.
pub fn previous_window(
    to: DateTime<Utc>,
    floor: DateTime<Utc>,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    if to <= floor {
        return None;
    }
    let mut start = window_floor(to);
    if start == to {
        start = to - WINDOW;
    }
    Some((start.max(floor), to))
}

/// The shortest window a dense window is split into.
pub const MIN_SPLIT_WINDOW: TimeDelta = TimeDelta::minutes(10);

/// Where to split a window whose first full page shows it is dense: the page covered
/// `[window_from, last_event_at]`, less than a quarter of the window, so many pages follow
/// and, read through one cursor, they come one after another. The rest of the window is
/// halved at a whole second, so the halves can be read at once. `None` when the page was
/// not full, covered enough, or the window is already short.
pub fn dense_split_point(
    window_from: DateTime<Utc>,
    window_to: DateTime<Utc>,
    last_event_at: DateTime<Utc>,
    page_was_full: bool,
) -> Option<DateTime<Utc>> {
    let span = window_to - window_from;
    if !page_was_full || span <= MIN_SPLIT_WINDOW || (last_event_at - window_from) * 4 >= span {
        return None;
    }
    let middle = last_event_at + (window_to - last_event_at) / 2;
    let middle = middle
        .duration_trunc(TimeDelta::seconds(1))
        .unwrap_or(middle);
    (middle > last_event_at && middle < window_to).then_some(middle)
}

/// The latest instant a read may ask for: `now` less the settle time, on a whole second.
/// Klaviyo is eventually consistent and refuses filters in the future, so a read never
/// reaches the last seconds.
pub fn settled_limit(now: DateTime<Utc>, settle: TimeDelta) -> DateTime<Utc> {
    (now - settle)
        .duration_trunc(TimeDelta::seconds(1))
        .unwrap_or(now - settle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time_format::parse_iso_datetime;

    fn t(text: &str) -> DateTime<Utc> {
        parse_iso_datetime(text).unwrap()
    }

    #[test]
    fn oldest_first_windows_end_on_day_boundaries() {
        let limit = t("2024-01-03T03:10:00Z");
        let mut from = t("2024-01-01T01:30:00Z");
        let mut windows = Vec::new();
        while let Some((start, end)) = next_window(from, limit) {
            windows.push((start, end));
            from = end;
        }
        assert_eq!(
            windows,
            vec![
                (t("2024-01-01T01:30:00Z"), t("2024-01-02T00:00:00Z")),
                (t("2024-01-02T00:00:00Z"), t("2024-01-03T00:00:00Z")),
                (t("2024-01-03T00:00:00Z"), t("2024-01-03T03:10:00Z")),
            ]
        );
    }

    #[test]
    fn newest_first_windows_mirror_them() {
        let floor = t("2024-01-01T01:30:00Z");
        let mut to = t("2024-01-03T03:10:00Z");
        let mut windows = Vec::new();
        while let Some((start, end)) = previous_window(to, floor) {
            windows.push((start, end));
            to = start;
        }
        assert_eq!(
            windows,
            vec![
                (t("2024-01-03T00:00:00Z"), t("2024-01-03T03:10:00Z")),
                (t("2024-01-02T00:00:00Z"), t("2024-01-03T00:00:00Z")),
                (t("2024-01-01T01:30:00Z"), t("2024-01-02T00:00:00Z")),
            ]
        );
    }

    #[test]
    fn splits_only_a_dense_long_window_and_after_the_events_already_read() {
        let from = t("2024-01-01T00:00:00Z");
        let to = t("2024-01-02T00:00:00Z");
        // A full page covering ten minutes of a day: split the rest in two.
        assert_eq!(
            dense_split_point(from, to, t("2024-01-01T00:10:00Z"), true),
            Some(t("2024-01-01T12:05:00Z"))
        );
        // Not full, or covering a quarter of the window or more: no split.
        assert_eq!(
            dense_split_point(from, to, t("2024-01-01T00:10:00Z"), false),
            None
        );
        assert_eq!(
            dense_split_point(from, to, t("2024-01-01T06:00:00Z"), true),
            None
        );
        // Short windows are not split further.
        let short_end = t("2024-01-01T00:10:00Z");
        assert_eq!(dense_split_point(from, short_end, from, true), None);
    }

    #[test]
    fn never_reads_the_last_seconds() {
        assert_eq!(
            settled_limit(t("2024-01-01T00:10:00.750Z"), TimeDelta::seconds(60)),
            t("2024-01-01T00:09:00Z")
        );
    }
}
