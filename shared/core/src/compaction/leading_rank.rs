//! A copy's rank read from the first members of its row alone. The row writer puts the rank
//! columns ([`super::winner::RANK_COLUMNS`]) first, so the three values that decide whether a
//! copy beats the kept row sit in the line's first hundred bytes or so; the other forty
//! members (about 1.5 KB) need not be read to drop a copy that loses. serde_json reads those
//! first members, checked as always; the visitor stops at the first member that is not a rank
//! column, and serde_json's complaint that the object was left open is then expected, not a
//! fault of the line.
//!
//! Only a losing copy is decided this way: a copy that may win is read whole and ranked by
//! [`super::winner::CopyRank::of_members`], so a kept row is always a line that parses whole.
//! A losing copy's tail is not checked: broken text after its rank members is dropped with
//! it, as a duplicate of the row the table keeps.

use std::borrow::Cow;
use std::fmt;

use serde::Deserializer as _;
use serde::de::{MapAccess, Visitor};

use super::winner::RuleKey;
use crate::raw_object::Key;

/// A copy's rank read from its leading members, its texts borrowed from the line where they
/// have no escapes: a copy that loses is dropped without a copy of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadingRank<'a> {
    /// The event's id, as [`super::winner::CopyRank::id`].
    pub id: Cow<'a, str>,
    /// As [`super::winner::CopyRank::resolved`].
    pub resolved: bool,
    /// As [`super::winner::CopyRank::received_at`].
    pub received_at: Cow<'a, str>,
    /// As [`super::winner::CopyRank::hash`].
    pub hash: u128,
}

impl<'a> LeadingRank<'a> {
    /// The rank of the row `line` (whose [`super::winner::line_hash`] is `hash`) when its
    /// first members are the three rank columns, each once, of the right types; `None` when
    /// they are not (a row written before they led, a row without one of them, such as a
    /// Segment client's, or text that is not a row): the whole line must then be read.
    pub fn of_leading_members(line: &'a [u8], hash: u128) -> Option<Self> {
        let mut leading = LeadingMembers::default();
        let mut deserializer = serde_json::Deserializer::from_slice(line);
        // Stopping early leaves the object open, which serde_json reports as an error: the
        // members read before the stop are what counts, and they are in `leading`.
        match deserializer.deserialize_map(LeadingVisitor(&mut leading)) {
            Ok(()) | Err(_) => {}
        }
        let LeadingMembers {
            id: Some(Key(id)),
            resolved: Some(resolved),
            received_at: Some(received_at),
        } = leading
        else {
            return None;
        };
        Some(Self {
            id,
            resolved: resolved != Some(false),
            received_at: received_at.map_or(Cow::Borrowed(""), |Key(at)| at),
            hash,
        })
    }

    /// What the rule compares of this copy.
    pub fn rule_key(&self) -> RuleKey<'_> {
        RuleKey {
            resolved: self.resolved,
            received_at: &self.received_at,
            hash: self.hash,
        }
    }
}

/// The rank columns read so far; a null value is `Some(None)`, as for a whole line.
#[derive(Default)]
struct LeadingMembers<'de> {
    id: Option<Key<'de>>,
    resolved: Option<Option<bool>>,
    received_at: Option<Option<Key<'de>>>,
}

impl LeadingMembers<'_> {
    fn complete(&self) -> bool {
        self.id.is_some() && self.resolved.is_some() && self.received_at.is_some()
    }
}

/// Reads members into its `LeadingMembers` while they are rank columns not read yet.
struct LeadingVisitor<'l, 'de>(&'l mut LeadingMembers<'de>);

impl<'de> Visitor<'de> for LeadingVisitor<'_, 'de> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a row")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<(), A::Error> {
        let leading = self.0;
        while !leading.complete() {
            let Some(Key(name)) = access.next_key::<Key<'de>>()? else {
                break;
            };
            match name.as_ref() {
                "id" if leading.id.is_none() => leading.id = Some(access.next_value()?),
                "received_at" if leading.received_at.is_none() => {
                    leading.received_at = Some(access.next_value()?);
                }
                "context_klaviyo_identity_resolved" if leading.resolved.is_none() => {
                    leading.resolved = Some(access.next_value()?);
                }
                // Not a rank column, or one sent again: the leading members end here.
                _ => break,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compaction::winner::{CopyRank, RANK_COLUMNS, line_hash};
    use crate::warehouse::row_writer::{Cell, RowWriter};

    /// The leading rank of `line`, owned, to compare with a whole read's.
    fn leading(line: &str) -> Option<CopyRank> {
        LeadingRank::of_leading_members(line.as_bytes(), line_hash(line.as_bytes())).map(|rank| {
            CopyRank {
                id: rank.id.into_owned(),
                resolved: rank.resolved,
                received_at: rank.received_at.into_owned(),
                hash: rank.hash,
            }
        })
    }

    #[test]
    fn leading_rank_members_rank_the_line_as_a_whole_read_does() {
        for line in [
            r#"{"id":"k-1","received_at":"2024-01-04T18:05:30.000Z","context_klaviyo_identity_resolved":false,"a":1}"#,
            r#"{"context_klaviyo_identity_resolved":true,"id":"k-1","received_at":null,"a":[1,{"b":2}]}"#,
            r#"{"received_at":"2024-01-04T18:05:30.000Z","context_klaviyo_identity_resolved":null,"id":"k\u002d1"}"#,
        ] {
            let whole = CopyRank::of_line(line.as_bytes()).unwrap();
            assert_eq!(leading(line), Some(whole), "{line}");
        }
    }

    #[test]
    fn a_line_whose_rank_members_do_not_lead_is_left_to_a_whole_read() {
        for line in [
            // Written before the rank columns led.
            r#"{"anonymous_id":"p","context_klaviyo_identity_resolved":true,"id":"k-1","received_at":"2024-01-04T18:05:30.000Z"}"#,
            // A Segment client's row: no identity column.
            r#"{"id":"s-1","received_at":"2024-01-04T18:05:30.000Z","anonymous_id":"p"}"#,
            r#"{"id":"s-1","received_at":"2024-01-04T18:05:30.000Z"}"#,
            // A rank member sent again before the set is complete.
            r#"{"id":"k-1","id":"k-2","received_at":"x","context_klaviyo_identity_resolved":true}"#,
            // Wrong types, and text that is not a row.
            r#"{"id":7,"received_at":"x","context_klaviyo_identity_resolved":true}"#,
            r#"{"id":"k-1","received_at":"x","context_klaviyo_identity_resolved":"yes"}"#,
            "[1]",
            "not json",
        ] {
            assert_eq!(leading(line), None, "{line}");
        }
        assert_eq!(
            LeadingRank::of_leading_members(b"{\"id\":\"\xff\"", 0),
            None,
            "not UTF-8"
        );
    }

    /// The writer's order and this reader agree: a row the writer makes, with its columns
    /// pushed in any order, is ranked from its first members.
    #[test]
    fn a_row_from_the_writer_is_ranked_from_its_first_members() {
        let mut writer = RowWriter::default();
        writer.push("anonymous_id", Cell::Text("p"));
        writer.push("zeta", Cell::Number("1"));
        for (position, name) in RANK_COLUMNS.iter().enumerate().rev() {
            let cell = match position {
                0 => Cell::Text("k-1"),
                1 => Cell::Text("2024-01-04T18:05:30.000Z"),
                _ => Cell::Flag(false),
            };
            writer.push(name, cell);
        }
        let row = writer.finish();
        let rank = leading(std::str::from_utf8(&row).unwrap()).unwrap();
        assert_eq!(rank, CopyRank::of_line(&row).unwrap());
        assert!(!rank.resolved);
    }

    #[test]
    fn texts_without_escapes_are_borrowed_from_the_line() {
        let line = br#"{"id":"k-1","received_at":"2024-01-04T18:05:30.000Z","context_klaviyo_identity_resolved":true}"#;
        let rank = LeadingRank::of_leading_members(line, 1).unwrap();
        assert!(matches!(rank.id, Cow::Borrowed("k-1")));
        assert!(matches!(
            rank.received_at,
            Cow::Borrowed("2024-01-04T18:05:30.000Z")
        ));
        let escaped =
            br#"{"id":"k\u002d1","received_at":null,"context_klaviyo_identity_resolved":true}"#;
        let rank = LeadingRank::of_leading_members(escaped, 1).unwrap();
        assert!(matches!(rank.id, Cow::Owned(ref id) if id == "k-1"));
        assert_eq!(rank.received_at, "");
    }

    #[test]
    fn what_follows_the_leading_members_is_not_read() {
        let line = r#"{"id":"k-1","received_at":"2024-01-04T18:05:30.000Z","context_klaviyo_identity_resolved":true,"id":"k-2",broken"#;
        let rank = leading(line).unwrap();
        assert_eq!(rank.id, "k-1");
        assert!(rank.resolved);
        assert!(CopyRank::of_line(line.as_bytes()).is_err());
    }
}
