//! Where a stored page leaves its window, to the second: Klaviyo's datetime filters work on
//! whole seconds, so a window read again (an expired cursor, a split) starts at the second
//! of the last stored event, inclusive. The ids already stored in that second are kept, so
//! reading it again stores none of them twice.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

use super::state::{OpenWindow, StoredPage};
use crate::klaviyo::webhook::{DecodedEvent, KlaviyoEvent};

/// The second an event happened in.
pub fn event_second(event: &KlaviyoEvent<'_>) -> Option<DateTime<Utc>> {
    let at = event.occurred_at()?;
    Some(at.duration_trunc(TimeDelta::seconds(1)).unwrap_or(at))
}

/// The position a page of `events` leaves its window at.
pub fn stored_page(events: &[DecodedEvent<'_>], next_link: Option<String>) -> StoredPage {
    let stamped: Vec<(DateTime<Utc>, Option<&str>)> = events
        .iter()
        .filter_map(|event| event.as_ref().ok())
        .filter_map(|event| Some((event_second(event)?, event.event_id.as_deref())))
        .collect();
    let last_second = stamped.iter().map(|(second, _)| *second).max();
    let ids_in_last_second = stamped
        .iter()
        .filter(|(second, _)| Some(*second) == last_second)
        .filter_map(|(_, id)| id.map(str::to_owned))
        .collect();
    StoredPage {
        last_second,
        ids_in_last_second,
        next_link,
    }
}

/// Removes the events `window` already stored: those of its resume second whose ids it
/// holds. Returns how many were removed.
pub fn drop_already_stored(events: &mut Vec<DecodedEvent<'_>>, window: &OpenWindow) -> usize {
    if window.stored_in_resume_second.is_empty() {
        return 0;
    }
    let before = events.len();
    events.retain(|event| match event {
        Ok(event) => {
            let stored = event_second(event) == Some(window.resume_at)
                && event
                    .event_id
                    .as_ref()
                    .is_some_and(|id| window.stored_in_resume_second.contains(id));
            !stored
        }
        Err(_) => true,
    });
    before - events.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::klaviyo::events_page::decode_events_page;
    use crate::time_format::parse_iso_datetime;

    fn page(ids_and_times: &[(&str, &str)]) -> String {
        let data: Vec<String> = ids_and_times
            .iter()
            .map(|(id, at)| {
                format!(
                    r#"{{"type": "event", "id": "{id}", "attributes": {{"datetime": "{at}"}}}}"#
                )
            })
            .collect();
        format!(r#"{{"data": [{}]}}"#, data.join(","))
    }

    #[test]
    fn a_window_read_again_from_its_last_second_stores_no_event_twice() {
        let first = page(&[
            ("a", "2024-01-01T00:00:01+00:00"),
            ("b", "2024-01-01T00:00:02.250+00:00"),
            ("c", "2024-01-01 00:00:02+00:00"),
        ]);
        let decoded = decode_events_page(first.as_bytes(), "t").unwrap();
        let position = stored_page(&decoded.events, None);
        let second = parse_iso_datetime("2024-01-01T00:00:02Z").unwrap();
        assert_eq!(position.last_second, Some(second));
        assert_eq!(position.ids_in_last_second, vec!["b", "c"]);

        let window = OpenWindow {
            from: parse_iso_datetime("2024-01-01T00:00:00Z").unwrap(),
            to: parse_iso_datetime("2024-01-02T00:00:00Z").unwrap(),
            resume_at: second,
            next_link: None,
            stored_in_resume_second: vec!["b".into(), "c".into()],
        };
        // Read again from 00:00:02: b and c come back, d is new in that second.
        let again = page(&[
            ("b", "2024-01-01T00:00:02+00:00"),
            ("c", "2024-01-01T00:00:02+00:00"),
            ("d", "2024-01-01T00:00:02+00:00"),
            ("e", "2024-01-01T00:00:03+00:00"),
        ]);
        let mut decoded = decode_events_page(again.as_bytes(), "t").unwrap();
        assert_eq!(drop_already_stored(&mut decoded.events, &window), 2);
        let left: Vec<_> = decoded
            .events
            .iter()
            .map(|e| e.as_ref().unwrap().event_id.clone().unwrap())
            .collect();
        assert_eq!(left, vec!["d", "e"]);
    }
}
