//! Deterministic `messageId`s: the same Klaviyo event always gets the same id, so
//! redeliveries and replays collapse in the warehouse's dedupe.

use sha2::{Digest, Sha256};

use crate::segment::track::MAX_MESSAGE_ID_LEN;

/// The id namespace of events that came from Klaviyo (webhooks, and the Events API pull):
/// no other source may store an id that starts with it.
pub const KLAVIYO_ID_PREFIX: &str = "klaviyo-";

/// The `messageId` for an event that Klaviyo identified by `klaviyo_id`: `klaviyo-<id>`,
/// or, for an id too long for Segment or holding control characters (which would make ids
/// and file names ambiguous), `klaviyo-h-<sha256 of the id>`.
pub fn message_id_from_klaviyo_id(klaviyo_id: &str) -> String {
    if KLAVIYO_ID_PREFIX.len() + klaviyo_id.len() < MAX_MESSAGE_ID_LEN
        && !klaviyo_id.chars().any(char::is_control)
    {
        // Two copies into an exact buffer: it runs for every event, and `format!` costs more.
        let mut readable = String::with_capacity(KLAVIYO_ID_PREFIX.len() + klaviyo_id.len());
        readable.push_str(KLAVIYO_ID_PREFIX);
        readable.push_str(klaviyo_id);
        readable
    } else {
        format!("klaviyo-h-{}", sha256_hex(klaviyo_id.as_bytes()))
    }
}

/// The `messageId` for content that carries no id: `<prefix>-<sha256 of the bytes>`.
/// Identical bytes give identical ids, so a replayed request adds no new id.
pub fn message_id_from_content(prefix: &str, content: &[u8]) -> String {
    format!("{prefix}-{}", sha256_hex(content))
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_with_control_characters_are_hashed() {
        let id = message_id_from_klaviyo_id("a\nb");
        assert!(id.starts_with("klaviyo-h-"), "{id}");
        assert!(!id.contains('\n'));
    }

    #[test]
    fn prefixes_short_klaviyo_ids() {
        assert_eq!(
            message_id_from_klaviyo_id("4vHPBsUkFKs"),
            "klaviyo-4vHPBsUkFKs"
        );
    }

    #[test]
    fn hashes_ids_too_long_for_segment() {
        let long = "x".repeat(200);
        let id = message_id_from_klaviyo_id(&long);
        assert!(id.len() < MAX_MESSAGE_ID_LEN);
        assert!(id.starts_with("klaviyo-h-"));
        assert_eq!(id, message_id_from_klaviyo_id(&long));
        assert_ne!(id, message_id_from_klaviyo_id(&"y".repeat(200)));
    }

    #[test]
    fn content_ids_are_stable_and_bounded() {
        let a = message_id_from_content("rejected", b"{}");
        assert_eq!(a, message_id_from_content("rejected", b"{}"));
        assert_ne!(a, message_id_from_content("rejected", b"[]"));
        assert!(a.len() < MAX_MESSAGE_ID_LEN);
    }
}
