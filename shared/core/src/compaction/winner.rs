//! Which copy of an event a table keeps. The raw landing holds an event as often as it was
//! delivered (Firehose retries, a sender's retry after a 503, the pull's re-reads, webhook and
//! pull both); a table holds it once per `id`, collection and day. The winner, in order:
//!
//! 1. a copy whose identity is resolved over one whose profile lookup failed
//!    (`context_klaviyo_identity_resolved = false`): a pulled copy repairs a webhook row;
//! 2. the earliest `received_at` (the first time the source had it);
//! 3. the smallest XXH3-128 of the row's JSON text: a fixed tie-break, so any order of arrival
//!    and any split into runs keeps the same row. XXH3 is a published, fixed algorithm, and
//!    the tie-break needs no secrecy: whoever could choose a row's hash could as well choose
//!    its text (measured 23 % of a dropped copy's time with SHA-256, bench/results).
//!
//! A row without `context_klaviyo_identity_resolved` (a Segment client's event) counts as
//! resolved; one without `received_at` comes after every copy that has it.

use std::cmp::Ordering;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use twox_hash::XxHash3_128;

use crate::raw_object::{Key, RawObject};

/// The row columns that rank a copy, in the order rows are written with them first
/// (`warehouse::row_writer`): a copy can then be ranked from its row's first members.
pub const RANK_COLUMNS: [&str; 3] = ["id", "received_at", "context_klaviyo_identity_resolved"];

/// What ranks one copy of an event, read from its row's members.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct CopyRank {
    /// The event's id (the table's key).
    pub id: String,
    /// Whether its identity is resolved (see the module's rule 1).
    pub resolved: bool,
    /// `received_at` as rows write it (`YYYY-MM-DDTHH:MM:SS.mmmZ`, so text order is time
    /// order); empty when the row has none.
    pub received_at: String,
    /// XXH3-128 of the row's JSON text, kept in the index as 32 hex digits. An index line
    /// written before the hash was XXH3 has none and reads as 0: its row wins a tie.
    #[serde(rename = "xxh3", with = "hex_u128", default)]
    pub hash: u128,
}

/// XXH3-128 of a row's JSON text: the rule's tie-break, and how an exact copy is known.
pub fn line_hash(line: &[u8]) -> u128 {
    XxHash3_128::oneshot(line)
}

/// A `u128` as 32 lowercase hex digits (JSON numbers that wide are not portable).
mod hex_u128 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(value: &u128, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("{value:032x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u128, D::Error> {
        let text = <&str>::deserialize(deserializer)?;
        u128::from_str_radix(text, 16).map_err(D::Error::custom)
    }
}

/// Why a raw line cannot be ranked: it is not a row with a text `id`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a row with a text id: {0}")]
pub struct UnrankableLine(pub String);

impl CopyRank {
    /// The rank of the row whose JSON text is `line`.
    pub fn of_line(line: &[u8]) -> Result<Self, UnrankableLine> {
        let members =
            RawObject::parse(line).ok_or_else(|| UnrankableLine("not a JSON object".to_owned()))?;
        Self::of_members(&members, line_hash(line))
    }

    /// The rank of the row whose members are `members` and whose [`line_hash`] is `hash`:
    /// read from the members of the one parse that also builds the row, when the row is new.
    /// A rank member sent twice, or of another type, makes the line unrankable.
    pub fn of_members(members: &RawObject<'_>, hash: u128) -> Result<Self, UnrankableLine> {
        let (mut id, mut resolved, mut received_at) = (None, None, None);
        for (Key(name), value) in &members.0 {
            match name.as_ref() {
                "id" => read_once(&mut id, name, value)?,
                "context_klaviyo_identity_resolved" => read_once(&mut resolved, name, value)?,
                "received_at" => read_once(&mut received_at, name, value)?,
                _ => {}
            }
        }
        let id: String = id.ok_or_else(|| UnrankableLine("no id".to_owned()))?;
        Ok(Self {
            id,
            resolved: resolved.flatten() != Some(false),
            received_at: received_at.flatten().unwrap_or_default(),
            hash,
        })
    }

    /// Whether this copy wins over `other` (a copy of the same id).
    pub fn beats(&self, other: &Self) -> bool {
        self.rule_key().beats(&other.rule_key())
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

/// What the rule compares of a copy: all of its rank but the id, borrowed, so a copy read
/// in place is ranked against a kept one without copying its texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleKey<'a> {
    /// As [`CopyRank::resolved`].
    pub resolved: bool,
    /// As [`CopyRank::received_at`].
    pub received_at: &'a str,
    /// As [`CopyRank::hash`].
    pub hash: u128,
}

impl RuleKey<'_> {
    /// Whether this copy wins over `other` (a copy of the same id).
    pub fn beats(&self, other: &RuleKey<'_>) -> bool {
        self.order(other) == Ordering::Less
    }

    /// The rule as an order: the winner sorts first.
    fn order(&self, other: &RuleKey<'_>) -> Ordering {
        other
            .resolved
            .cmp(&self.resolved)
            .then_with(|| received_order(self.received_at, other.received_at))
            .then_with(|| self.hash.cmp(&other.hash))
    }
}

/// Reads a rank member's value into `slot`, which must still be empty.
fn read_once<T: DeserializeOwned>(
    slot: &mut Option<T>,
    name: &str,
    value: &RawValue,
) -> Result<(), UnrankableLine> {
    if slot.is_some() {
        return Err(UnrankableLine(format!("{name} sent twice")));
    }
    let read = serde_json::from_str(value.get())
        .map_err(|err| UnrankableLine(format!("{name}: {err}")))?;
    *slot = Some(read);
    Ok(())
}

/// Earlier first; a missing time after any present one.
fn received_order(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (false, false) => a.cmp(b),
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (true, true) => Ordering::Equal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rank(line: &str) -> CopyRank {
        CopyRank::of_line(line.as_bytes()).unwrap()
    }

    #[test]
    fn a_resolved_copy_beats_an_earlier_unresolved_one() {
        let webhook = rank(
            r#"{"id":"klaviyo-1","context_klaviyo_identity_resolved":false,"received_at":"2024-01-04T18:05:30.000Z"}"#,
        );
        let pulled = rank(
            r#"{"id":"klaviyo-1","context_klaviyo_identity_resolved":true,"received_at":"2024-01-05T00:00:00.000Z"}"#,
        );
        assert!(pulled.beats(&webhook));
        assert!(!webhook.beats(&pulled));
    }

    #[test]
    fn among_equals_the_earliest_then_the_smallest_hash_wins() {
        let early = rank(r#"{"id":"a","received_at":"2024-01-04T18:05:30.000Z","x":1}"#);
        let late = rank(r#"{"id":"a","received_at":"2024-01-04T18:06:00.000Z","x":0}"#);
        assert!(early.beats(&late));
        let one = rank(r#"{"id":"a","received_at":"2024-01-04T18:05:30.000Z","x":2}"#);
        let (first, second) = if one.hash < early.hash {
            (&one, &early)
        } else {
            (&early, &one)
        };
        assert!(first.beats(second) && !second.beats(first));
        // A copy never beats itself: equal copies change nothing.
        assert!(!early.beats(&early.clone()));
    }

    #[test]
    fn a_segment_row_counts_as_resolved_and_a_missing_time_comes_last() {
        let segment = rank(r#"{"id":"s","received_at":"2024-01-04T18:05:30.000Z"}"#);
        assert!(segment.resolved);
        let timeless = rank(r#"{"id":"s"}"#);
        assert!(segment.beats(&timeless));
    }

    #[test]
    fn the_index_keeps_the_hash_as_hex_and_an_older_index_line_reads_as_zero() {
        let kept = rank(r#"{"id":"a","received_at":"2024-01-04T18:05:30.000Z"}"#);
        let text = serde_json::to_string(&kept).unwrap();
        assert!(text.contains(&format!(r#""xxh3":"{:032x}""#, kept.hash)));
        assert_eq!(serde_json::from_str::<CopyRank>(&text).unwrap(), kept);
        let older: CopyRank = serde_json::from_str(
            r#"{"id":"a","resolved":true,"received_at":"2024-01-04T18:05:30.000Z","hash":"ab"}"#,
        )
        .unwrap();
        assert_eq!(older.hash, 0);
        assert!(!kept.beats(&older));
    }

    #[test]
    fn a_line_without_a_text_id_is_refused() {
        assert!(CopyRank::of_line(br#"{"id": 7}"#).is_err());
        assert!(CopyRank::of_line(b"not json").is_err());
        assert!(CopyRank::of_line(br#"{"id": null}"#).is_err());
        assert!(CopyRank::of_line(br#"{"id":"a","id":"b"}"#).is_err());
        assert!(CopyRank::of_line(br#"{"id":"a","received_at":7}"#).is_err());
        assert!(CopyRank::of_line(b"{\"id\":\"\xff\"}").is_err());
        // Null rank members count as absent; what other members hold does not matter.
        let nulls = rank(
            r#"{"id":"a","context_klaviyo_identity_resolved":null,"received_at":null,"x":[]}"#,
        );
        assert!(nulls.resolved && nulls.received_at.is_empty());
    }
}
