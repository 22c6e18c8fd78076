//! Collections: the groupings of events, each of which becomes a warehouse table.

use crate::warehouse::column_name::to_column_name;

/// Longest slug we derive for a collection outside the seed's six: keeps S3 keys and
/// table names readable and bounded.
pub const MAX_COLLECTION_SLUG_LEN: usize = 64;

/// The collection that holds events which could not be mapped (kept, never dropped).
pub const REJECTED_COLLECTION: &str = "rejected_events";

/// Table names a derived slug must never take: `tracks` is the table of all events, and
/// the rejected collection is reserved for what could not be mapped.
const RESERVED_SLUGS: [&str; 2] = ["tracks", REJECTED_COLLECTION];

/// A collection: the Segment event name and the snake_case slug used for the table and
/// the `collection=` partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collection {
    slug: String,
    event_name: String,
}

/// The six email collections of the Klaviyo Source, as `(slug, Segment event name)`.
pub const EMAIL_COLLECTIONS: [(&str, &str); 6] = [
    ("email_delivered", "Email Delivered"),
    ("email_opened", "Email Opened"),
    ("email_link_clicked", "Email Link Clicked"),
    ("email_unsubscribed", "Email Unsubscribed"),
    ("email_bounced", "Email Bounced"),
    ("email_marked_as_spam", "Email Marked as Spam"),
];

impl Collection {
    /// One of the six email collections, by slug.
    pub fn email(slug: &str) -> Option<Self> {
        EMAIL_COLLECTIONS
            .iter()
            .find(|(known, _)| *known == slug)
            .map(|(slug, name)| Self {
                slug: (*slug).to_owned(),
                event_name: (*name).to_owned(),
            })
    }

    /// A collection for an event outside the six, named after the event: the slug is the
    /// snake_case of the name (bounded, never a reserved table name).
    pub fn named(event_name: &str) -> Self {
        let mut slug = to_column_name(event_name);
        if let Some((cut, _)) = slug.char_indices().nth(MAX_COLLECTION_SLUG_LEN) {
            slug.truncate(cut);
            slug = slug.trim_end_matches('_').to_owned();
        }
        if RESERVED_SLUGS.contains(&slug.as_str()) {
            slug = format!("other_{slug}");
        }
        Self {
            slug,
            event_name: event_name.to_owned(),
        }
    }

    /// The collection of a Segment track event named `event_name`: the six email events of
    /// Segment's Email spec (and the spec's plain `Unsubscribed`) by name, any other event
    /// in a collection named after it, as Segment's warehouses name track tables.
    pub fn for_event_name(event_name: &str) -> Self {
        let trimmed = event_name.trim();
        if trimmed.eq_ignore_ascii_case("Unsubscribed") {
            return Self::email("email_unsubscribed").unwrap_or_else(|| Self::named(trimmed));
        }
        EMAIL_COLLECTIONS
            .iter()
            .find(|(_, name)| name.eq_ignore_ascii_case(trimmed))
            .and_then(|(slug, _)| Self::email(slug))
            .unwrap_or_else(|| Self::named(trimmed))
    }

    /// The collection of events that could not be mapped.
    pub fn rejected() -> Self {
        Self {
            slug: REJECTED_COLLECTION.to_owned(),
            event_name: "Rejected Event".to_owned(),
        }
    }

    /// The snake_case table / partition name.
    pub fn slug(&self) -> &str {
        &self.slug
    }

    /// The Segment event name (`event` of the track call, `event_text` in the warehouse).
    pub fn event_name(&self) -> &str {
        &self.event_name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_six_email_collections() {
        let spam = Collection::email("email_marked_as_spam").unwrap();
        assert_eq!(spam.event_name(), "Email Marked as Spam");
        assert!(Collection::email("dropped_email").is_none());
    }

    #[test]
    fn names_other_collections_after_the_event() {
        let dropped = Collection::named("Dropped Email");
        assert_eq!(dropped.slug(), "dropped_email");
        assert_eq!(dropped.event_name(), "Dropped Email");
    }

    #[test]
    fn maps_segment_event_names_onto_the_same_collections() {
        assert_eq!(
            Collection::for_event_name("Email Opened").slug(),
            "email_opened"
        );
        assert_eq!(
            Collection::for_event_name("email marked as spam").event_name(),
            "Email Marked as Spam"
        );
        assert_eq!(
            Collection::for_event_name("Unsubscribed").slug(),
            "email_unsubscribed"
        );
        let other = Collection::for_event_name("Order Completed");
        assert_eq!(
            (other.slug(), other.event_name()),
            ("order_completed", "Order Completed")
        );
    }

    #[test]
    fn never_takes_a_reserved_table_name() {
        assert_eq!(Collection::named("Tracks").slug(), "other_tracks");
        assert_eq!(
            Collection::named("Rejected Events").slug(),
            "other_rejected_events"
        );
    }

    #[test]
    fn bounds_the_slug_length() {
        let long = "Very ".repeat(40);
        let slug = Collection::named(&long).slug().to_owned();
        assert!(slug.len() <= MAX_COLLECTION_SLUG_LEN, "{slug}");
        assert!(!slug.ends_with('_'));
    }
}
