//! A raw row's members as its line holds them: each name (borrowed from the line unless it
//! has escapes) beside its value's JSON text, in the line's order. A new row's cells are made
//! from these directly, without first building a map of names to `serde_json::Value`s (a
//! string per name and per value, a tree of nodes, and the names compared to place them).

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// The members of one raw row, in the line's order. A name given twice is there twice; the
/// later one wins where they are placed, as in a JSON object read into a map.
#[derive(Debug)]
pub struct RawMembers<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> RawMembers<'a> {
    /// The members of the JSON object `line`; `None` when it is not one.
    pub fn parse(line: &'a [u8]) -> Option<Self> {
        serde_json::from_slice(line).ok()
    }

    /// The members' names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(name, _)| name.as_ref())
    }

    /// The members, each name with its value's JSON text.
    pub fn into_members(self) -> impl Iterator<Item = (Cow<'a, str>, &'a RawValue)> {
        self.0.into_iter()
    }
}

impl<'de> Deserialize<'de> for RawMembers<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MembersVisitor)
    }
}

struct MembersVisitor;

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = RawMembers<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(64));
        while let Some(Name(name)) = map.next_key()? {
            members.push((name, map.next_value::<&'de RawValue>()?));
        }
        Ok(RawMembers(members))
    }
}

/// A member's name, borrowed when the line holds it without escapes (serde's own `Cow`
/// always copies).
struct Name<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(NameVisitor)
    }
}

struct NameVisitor;

impl<'de> Visitor<'de> for NameVisitor {
    type Value = Name<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a member's name")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, name: &'de str) -> Result<Self::Value, E> {
        Ok(Name(Cow::Borrowed(name)))
    }

    fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Self::Value, E> {
        Ok(Name(Cow::Owned(name.to_owned())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_keep_their_exact_text_and_escaped_names_are_read() {
        let line = br#"{"id":"k-1","e":1.50,"o":{"a": [1, 2]},"say\"hi":"x\ny","n":null}"#;
        let members: Vec<(String, String)> = RawMembers::parse(line)
            .unwrap()
            .into_members()
            .map(|(name, value)| (name.into_owned(), value.get().to_owned()))
            .collect();
        assert_eq!(
            members,
            [
                ("id", r#""k-1""#),
                ("e", "1.50"),
                ("o", r#"{"a": [1, 2]}"#),
                ("say\"hi", r#""x\ny""#),
                ("n", "null"),
            ]
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
        );
    }

    #[test]
    fn a_line_that_is_not_an_object_has_no_members() {
        assert!(RawMembers::parse(b"[1]").is_none());
        assert!(RawMembers::parse(b"\"x\"").is_none());
        assert!(RawMembers::parse(b"{\"a\":").is_none());
    }
}
