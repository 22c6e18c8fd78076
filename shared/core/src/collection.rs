//! Collections: the groupings of events, each of which becomes a warehouse table.

use sha2::{Digest, Sha256};

use crate::warehouse::column_name::to_column_name;

/// Longest slug, in bytes, derived for a collection outside the seed's six: `collection=`
/// plus the slug stays far below the 255-byte file-name limit of local file systems and
/// keeps S3 keys and names readable. Slugs are ASCII, so bytes are characters.
pub const MAX_COLLECTION_SLUG_LEN: usize = 64;

/// Hex digits of the name's SHA-256 appended to a slug that had to be shortened or had
/// characters outside ASCII: distinct names keep distinct slugs.
const SLUG_HASH_DIGITS: usize = 8;

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

    /// A collection for an event outside the six, named after the event, with the one slug
    /// rule both intakes share ([`collection_slug`]).
    pub fn named(event_name: &str) -> Self {
        Self {
            slug: collection_slug(event_name),
            event_name: event_name.to_owned(),
        }
    }

    /// The collection of a Segment track event named `event_name`: the six email events of
    /// Segment's Email spec (and the spec's plain `Unsubscribed`), recognised by their slug
    /// (`Email Opened`, `EmailOpened`, `email_opened` alike), any other event in a
    /// collection named after it, as Segment's warehouses name track tables.
    pub fn for_event_name(event_name: &str) -> Self {
        let trimmed = event_name.trim();
        let slug = to_column_name(trimmed);
        if slug == "unsubscribed" {
            return Self::email("email_unsubscribed").unwrap_or_else(|| Self::named(trimmed));
        }
        Self::email(&slug).unwrap_or_else(|| Self::named(trimmed))
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

    /// The event name and the slug, by value (an event takes them without copying).
    pub fn into_parts(self) -> (String, String) {
        (self.event_name, self.slug)
    }
}

/// The slug of a collection named `name`, the same for webhooks and the Segment API: the
/// snake_case of the name (camelCase split, see [`to_column_name`]) in ASCII letters,
/// digits and `_`, at most [`MAX_COLLECTION_SLUG_LEN`] bytes, never a reserved table name.
/// Characters outside ASCII become `_`; when any were replaced, or the slug had to be cut,
/// or nothing readable is left, `_` and the first hex digits of the name's SHA-256 follow,
/// so distinct names keep distinct slugs.
pub fn collection_slug(name: &str) -> String {
    let snake = to_column_name(name);
    let mut slug = String::with_capacity(snake.len());
    let mut replaced = false;
    for ch in snake.chars() {
        if ch.is_ascii_alphanumeric() || ch == '_' {
            slug.push(ch);
        } else {
            replaced = true;
            if !slug.ends_with('_') {
                slug.push('_');
            }
        }
    }
    let mut slug = slug.trim_matches('_').to_owned();
    let needs_hash = replaced || slug.is_empty() || slug.len() > MAX_COLLECTION_SLUG_LEN;
    if needs_hash {
        let digest = hex::encode(Sha256::digest(name.as_bytes()));
        let room = MAX_COLLECTION_SLUG_LEN - SLUG_HASH_DIGITS - 1;
        slug.truncate(room);
        let readable = slug.trim_end_matches('_');
        slug = if readable.is_empty() {
            format!("event_{}", &digest[..SLUG_HASH_DIGITS])
        } else {
            format!("{readable}_{}", &digest[..SLUG_HASH_DIGITS])
        };
    }
    if RESERVED_SLUGS.contains(&slug.as_str()) {
        slug = format!("other_{slug}");
    }
    slug
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
    fn slugs_are_ascii_bytes_bounded_and_distinct() {
        // 62 four-byte characters: 248 bytes of name.
        let emoji = "😀".repeat(62);
        let slug = collection_slug(&emoji);
        assert!(
            slug.is_ascii() && slug.len() <= MAX_COLLECTION_SLUG_LEN,
            "{slug}"
        );
        assert_ne!(slug, collection_slug(&"😃".repeat(62)));
        let german = collection_slug("Bestellung Übermittelt");
        assert!(german.starts_with("bestellung_bermittelt_"), "{german}");
        assert_eq!(german.len(), "bestellung_bermittelt_".len() + 8);
        // Exactly at the limit stays readable; one byte more gets cut and hashed.
        let at_limit = "a".repeat(MAX_COLLECTION_SLUG_LEN);
        assert_eq!(collection_slug(&at_limit), at_limit);
        let over = collection_slug(&"a".repeat(MAX_COLLECTION_SLUG_LEN + 1));
        assert_eq!(over.len(), MAX_COLLECTION_SLUG_LEN);
        assert_ne!(over, at_limit);
        assert_eq!(collection_slug("9 Lives"), "9_lives");
        assert!(collection_slug("!!!").starts_with("event_"));
    }

    #[test]
    fn one_name_gets_one_collection_in_every_spelling() {
        for name in [
            "Email Opened",
            "EmailOpened",
            "email_opened",
            "email opened",
        ] {
            assert_eq!(
                Collection::for_event_name(name).slug(),
                "email_opened",
                "{name}"
            );
        }
    }

    #[test]
    fn bounds_the_slug_length() {
        let long = "Very ".repeat(40);
        let slug = Collection::named(&long).slug().to_owned();
        // 55 bytes of room before `_` and 8 hash digits; the cut `very_` loses its `_`; the
        // digits are the first of SHA-256("Very " x 40), computed outside Rust (Python's hashlib).
        let expected = format!("{}_4d097195", ["very"; 11].join("_"));
        assert_eq!(slug, expected);
        assert_eq!(slug.len(), 63);
    }
}
