//! A JSON object's members as its text holds them: each key (borrowed from the text unless it
//! has escapes) beside its value's JSON text, in the order sent, a key sent twice there twice.
//! Read this way, an object costs one vector, not a `Map` of `Value`s (a string per key and
//! per value, and a tree of nodes); [`crate::decoded_object`] and the compaction's new rows
//! start from it.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// An object's members as sent: keys (borrowed unless escaped) and raw values.
#[derive(Debug)]
pub struct RawObject<'de>(pub Vec<(Key<'de>, &'de RawValue)>);

impl<'de> RawObject<'de> {
    /// The members of the JSON object `text`; `None` when it is not one.
    pub fn parse(text: &'de [u8]) -> Option<Self> {
        // The text's UTF-8 checked once, whole: read from bytes, serde_json checks each key
        // and value again on its own, which cost more than the check of the line.
        serde_json::from_str(std::str::from_utf8(text).ok()?).ok()
    }

    /// The members' keys, in the order sent.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(key, _)| key.0.as_ref())
    }
}

impl<'de> Deserialize<'de> for RawObject<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(RawObjectVisitor)
    }
}

struct RawObjectVisitor;

impl<'de> Visitor<'de> for RawObjectVisitor {
    type Value = RawObject<'de>;

    // The words serde_json's `Map` uses, so a wrong type is reported as it always was.
    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::with_capacity(access.size_hint().unwrap_or(16));
        while let Some(member) = access.next_entry::<Key<'de>, &'de RawValue>()? {
            members.push(member);
        }
        Ok(RawObject(members))
    }
}

/// An object key: borrowed from the input when it has no escapes (serde's own `Cow` always
/// copies).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key<'de>(pub Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a string key")
    }

    fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Self::Value, E> {
        Ok(Key(Cow::Borrowed(key)))
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(Key(Cow::Owned(key.to_owned())))
    }

    fn visit_string<E: de::Error>(self, key: String) -> Result<Self::Value, E> {
        Ok(Key(Cow::Owned(key)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_keep_their_exact_text_order_and_repeats_and_escaped_keys_are_read() {
        let text = br#"{"id":"k-1","e":1.50,"o":{"a": [1, 2]},"say\"hi":"x\ny","n":null,"e":2}"#;
        let members: Vec<(String, String)> = RawObject::parse(text)
            .unwrap()
            .0
            .into_iter()
            .map(|(key, value)| (key.0.into_owned(), value.get().to_owned()))
            .collect();
        assert_eq!(
            members,
            [
                ("id", r#""k-1""#),
                ("e", "1.50"),
                ("o", r#"{"a": [1, 2]}"#),
                ("say\"hi", r#""x\ny""#),
                ("n", "null"),
                ("e", "2"),
            ]
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
        );
        let borrowed = RawObject::parse(br#"{"plain":1}"#).unwrap();
        assert!(matches!(borrowed.0[0].0.0, Cow::Borrowed("plain")));
    }

    #[test]
    fn text_that_is_not_an_object_has_no_members() {
        assert!(RawObject::parse(b"[1]").is_none());
        assert!(RawObject::parse(b"\"x\"").is_none());
        assert!(RawObject::parse(b"{\"a\":").is_none());
    }
}
