//! The rows of one request (or one pulled page): every intake's mapped events, with the
//! identities resolved for them, become track rows, rejected rows or nothing (a profile that
//! is not the account's own, when only own profiles are kept), and the counts the answer
//! reports. The routes, the pull and the benchmark all call this one function.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::row::{WarehouseRow, rejected_row, track_row};
use super::row_writer::RowWriter;
use crate::identity::apply::{IdentityDecision, apply_identity, klaviyo_profile_id};
use crate::identity::resolution::Resolution;
use crate::mapping::Mapped;
use crate::time_format::format_timestamp;

/// Why one event was set aside.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RejectionSummary {
    /// Its position in the request.
    pub index: usize,
    /// What is wrong.
    pub reason: String,
}

/// What a stored request answers: how many events were stored as track events, how many
/// were set aside in the rejected collection (and why), how many were skipped.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct IntakeOutcome {
    /// Events stored as track events.
    pub accepted: usize,
    /// Events stored in the rejected collection instead.
    pub rejected: usize,
    /// One entry per rejected event.
    pub rejections: Vec<RejectionSummary>,
    /// Events not stored because "only own profiles" is on and their profile has no
    /// `external_id` (shown only when there are some).
    #[serde(skip_serializing_if = "is_zero")]
    pub skipped: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The rows of `mapped` (in order), with `resolutions` applied to the events that name a
/// Klaviyo profile (an id missing from the map counts as unresolved), and the outcome.
pub fn request_rows(
    mut mapped: Vec<Mapped>,
    resolutions: &HashMap<String, Resolution>,
    only_own_profiles: bool,
    received_at: DateTime<Utc>,
) -> (Vec<WarehouseRow>, IntakeOutcome) {
    let mut rows = Vec::with_capacity(mapped.len());
    let mut outcome = IntakeOutcome::default();
    let loaded_at = format_timestamp(received_at);
    RowWriter::with_thread_writer(|writer| {
        // Each event is worked on where it lies: an event is a large struct, and moving it
        // out of the vector and into `track_row` cost two copies of it.
        for event in &mut mapped {
            match event {
                Ok(event) => {
                    if let Some(profile_id) = klaviyo_profile_id(event) {
                        let resolution = resolutions
                            .get(profile_id)
                            .unwrap_or(&Resolution::Unresolved);
                        let decision = apply_identity(event, resolution, only_own_profiles);
                        if decision == IdentityDecision::SkipNotOwnProfile {
                            outcome.skipped += 1;
                            continue;
                        }
                    }
                    rows.push(track_row(writer, event, &loaded_at));
                    outcome.accepted += 1;
                }
                Err(rejection) => {
                    rows.push(rejected_row(writer, rejection, &loaded_at));
                    outcome.rejections.push(RejectionSummary {
                        index: rejection.index,
                        reason: std::mem::take(&mut rejection.reason),
                    });
                    outcome.rejected += 1;
                }
            }
        }
    });
    (rows, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Profile;
    use crate::mapping::outcome::{IntakeSource, Rejection};
    use crate::segment::track::TrackEvent;

    fn event(id: &str, profile: &str) -> TrackEvent {
        TrackEvent::klaviyo_opened_for_tests(&format!("klaviyo-{id}"), profile)
    }

    fn found(id: &str, external_id: Option<&str>) -> (String, Resolution) {
        let profile = Profile {
            id: id.into(),
            email: Some(format!("{id}@example.com")),
            external_id: external_id.map(str::to_owned),
            phone_number: None,
        };
        (id.to_owned(), Resolution::Found(profile))
    }

    #[test]
    fn keeps_own_profiles_skips_others_and_rows_rejections_in_order() {
        let now = DateTime::parse_from_rfc3339("2024-01-04T18:05:00Z")
            .unwrap()
            .to_utc();
        let rejection = Rejection::new(
            IntakeSource::KlaviyoWebhook,
            2,
            "no profile".into(),
            "{}".into(),
            None,
            now,
        );
        let mapped = vec![
            Ok(event("1", "OWN")),
            Ok(event("2", "OTHER")),
            Err(Box::new(rejection)),
            Ok(event("4", "UNKNOWN")),
        ];
        let resolutions = HashMap::from([found("OWN", Some("u-1")), found("OTHER", None)]);

        let (rows, outcome) = request_rows(mapped.clone(), &resolutions, true, now);
        assert_eq!(
            (outcome.accepted, outcome.rejected, outcome.skipped),
            (2, 1, 1)
        );
        assert_eq!(
            outcome.rejections,
            vec![RejectionSummary {
                index: 2,
                reason: "no profile".into()
            }]
        );
        let ids: Vec<&str> = rows.iter().map(WarehouseRow::id).collect();
        assert_eq!(ids[0], "klaviyo-1");
        assert_eq!(rows[0].columns().unwrap()["user_id"], "u-1");
        assert_eq!(rows[1].partition.collection, "rejected_events");
        assert_eq!(ids[2], "klaviyo-4");

        let (rows, outcome) = request_rows(mapped, &resolutions, false, now);
        assert_eq!((rows.len(), outcome.skipped), (4, 0));
    }
}
