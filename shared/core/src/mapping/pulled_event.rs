//! Events read from Klaviyo's Events API → the same track events a webhook gives, with the
//! identity of the profiles the page includes (no further lookups).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::klaviyo_event::{KlaviyoDelivery, map_klaviyo_events};
use super::outcome::Mapped;
use crate::identity::resolution::Resolution;
use crate::klaviyo::events_page::EventsPage;

/// A mapped page: its events in order, and the identity of every profile the page
/// included, ready for the same identity step the webhook path uses.
#[derive(Debug)]
pub struct MappedPage {
    /// One entry per event of the page.
    pub mapped: Vec<Mapped>,
    /// The included profiles as resolutions. A profile the page names but does not include
    /// stays unresolved, exactly as a failed lookup leaves a webhook event.
    pub resolutions: HashMap<String, Resolution>,
}

/// Maps one page read with `revision` at `received_at`.
pub fn map_events_page(
    page: EventsPage<'_>,
    revision: &str,
    account_id: Option<&str>,
    received_at: DateTime<Utc>,
) -> MappedPage {
    let resolutions = page
        .profiles
        .into_iter()
        .map(|(id, profile)| (id, Resolution::Found(profile)))
        .collect();
    MappedPage {
        mapped: map_klaviyo_events(
            page.events,
            KlaviyoDelivery::Pull {
                revision,
                account_id,
            },
            received_at,
        ),
        resolutions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::klaviyo::events_page::decode_events_page;
    use crate::time_format::parse_iso_datetime;

    #[test]
    fn a_pulled_event_keeps_klaviyos_id_and_says_it_was_pulled() {
        let body = r#"{"data": [{"type": "event", "id": "EVT1",
            "attributes": {"datetime": "2024-01-04T18:05:01+00:00", "event_properties": {}},
            "relationships": {"profile": {"data": {"type": "profile", "id": "P1"}},
                              "metric": {"data": {"type": "metric", "id": "M1"}}}},
            {"type": "event", "id": "EVT2", "attributes": {"timestamp": 1704391501}}],
            "included": [{"type": "profile", "id": "P1", "attributes": {"external_id": "cust-1"}},
                         {"type": "metric", "id": "M1", "attributes": {"name": "Clicked Email"}}]}"#;
        let page = decode_events_page(body.as_bytes(), "event:klaviyo.clicked_email").unwrap();
        let received = parse_iso_datetime("2024-01-05T00:00:00Z").unwrap();
        let mapped = map_events_page(page, "2026-01-15", Some("XyZ9Ab"), received);
        let track = mapped.mapped[0].as_ref().unwrap();
        assert_eq!(track.message_id, "klaviyo-EVT1");
        assert_eq!(track.collection_slug, "email_link_clicked");
        assert_eq!(track.context_json()["klaviyo"]["source"], "pull");
        assert_eq!(track.context_json()["integration"]["version"], "2026-01-15");
        assert!(track.context_json()["klaviyo"].get("webhook_id").is_none());
        // The account, as webhook rows carry it from meta.klaviyo_account_id.
        assert_eq!(track.context_json()["klaviyo"]["account_id"], "XyZ9Ab");
        assert_eq!(track.sent_at, None);
        let rejection = mapped.mapped[1].as_ref().unwrap_err();
        assert_eq!(rejection.source, "klaviyo_pull");
        assert!(rejection.reason.contains("profile"), "{}", rejection.reason);
        assert!(matches!(
            &mapped.resolutions["P1"],
            Resolution::Found(profile) if profile.external_id.as_deref() == Some("cust-1")
        ));
    }
}
