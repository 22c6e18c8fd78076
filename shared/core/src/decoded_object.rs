//! A JSON object decoded once into one text buffer, for objects that are read a few times and
//! written out as columns once (Klaviyo's `event_properties`, one per event on the hot path).
//!
//! Decoding it into a `Map<String, Value>` costs two allocations per member and a tree to
//! free; a [`DecodedObject`] of flat, unescaped members costs three allocations in all (more
//! only for escaped text, arrays and nested objects). Its content equals what serde_json's
//! `Map` would hold, member for member:
//!
//! - members are ordered by key, byte for byte, and a key sent twice keeps its last value;
//! - strings are unescaped;
//! - numbers are the text serde_json keeps with `arbitrary_precision` (as sent, except that an
//!   exponent is written `e` with its sign: `1E5` becomes `1e+5`);
//! - an array is kept as the compact JSON text serde_json writes for it (the form it is
//!   stored in); nested objects are decoded the same way as the top level.
//!
//! A nested object is read by serde_json's map in one pass, so serde_json's nesting limit
//! holds and no text is read more than twice, however deep the nesting.
//!
//! One difference from `Map`: an escape that is not text (a lone UTF-16 surrogate, `"\ud800"`)
//! in a member's value is still refused, but the error's position is just after the object's
//! end rather than at the escape, because values are first taken as raw text.

use serde::de::{self, Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::raw_object::{Key, RawObject};

/// A JSON object decoded into one buffer (see the module documentation for what it keeps).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodedObject {
    text: String,
    entries: Vec<Entry>,
}

/// One member's value, borrowed from a [`DecodedObject`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member<'a> {
    /// `null`.
    Null,
    /// `true` or `false`.
    Flag(bool),
    /// A number, as serde_json writes it.
    Number(&'a str),
    /// A string, unescaped.
    Text(&'a str),
    /// An array, as its compact JSON text.
    ArrayJson(&'a str),
    /// A nested object.
    Object(ObjectView<'a>),
}

/// The members of a decoded object (the top level or a nested one), ordered by key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectView<'a> {
    text: &'a str,
    entries: &'a [Entry],
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    key: Span,
    value: Node,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Null,
    Flag(bool),
    Number(Span),
    Text(Span),
    ArrayJson(Span),
    Object(Vec<Entry>),
}

/// A range of the text buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: usize,
    end: usize,
}

impl DecodedObject {
    /// The top-level members.
    pub fn view(&self) -> ObjectView<'_> {
        ObjectView {
            text: &self.text,
            entries: &self.entries,
        }
    }

    /// The member named `key`, if present.
    pub fn get(&self, key: &str) -> Option<Member<'_>> {
        self.view().get(key)
    }

    /// Whether the object has no members.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The object as a serde_json map, for the tests' comparisons.
    #[cfg(test)]
    pub(crate) fn to_json(&self) -> Map<String, Value> {
        self.view().to_json()
    }
}

impl<'a> ObjectView<'a> {
    /// The member named `key`, if present.
    pub fn get(&self, key: &str) -> Option<Member<'a>> {
        let text = self.text;
        let found = self
            .entries
            .binary_search_by(|entry| slice(text, entry.key).cmp(key))
            .ok()?;
        self.entries
            .get(found)
            .map(|entry| self.member(&entry.value))
    }

    /// Every member, ordered by key.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, Member<'a>)> + 'a {
        let view = *self;
        self.entries
            .iter()
            .map(move |entry| (slice(view.text, entry.key), view.member(&entry.value)))
    }

    fn member(&self, node: &'a Node) -> Member<'a> {
        match node {
            Node::Null => Member::Null,
            Node::Flag(flag) => Member::Flag(*flag),
            Node::Number(span) => Member::Number(slice(self.text, *span)),
            Node::Text(span) => Member::Text(slice(self.text, *span)),
            Node::ArrayJson(span) => Member::ArrayJson(slice(self.text, *span)),
            Node::Object(entries) => Member::Object(ObjectView {
                text: self.text,
                entries,
            }),
        }
    }

    #[cfg(test)]
    fn to_json(self) -> Map<String, Value> {
        self.iter()
            .map(|(key, member)| {
                let value = match member {
                    Member::Null => Value::Null,
                    Member::Flag(flag) => Value::Bool(flag),
                    Member::Number(number) | Member::ArrayJson(number) => {
                        serde_json::from_str(number).unwrap_or(Value::Null)
                    }
                    Member::Text(text) => Value::String(text.to_owned()),
                    Member::Object(nested) => Value::Object(nested.to_json()),
                };
                (key.to_owned(), value)
            })
            .collect()
    }
}

fn slice(text: &str, span: Span) -> &str {
    text.get(span.start..span.end).unwrap_or_default()
}

impl<'de> Deserialize<'de> for DecodedObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let RawObject(members) = RawObject::deserialize(deserializer)?;
        let mut text = String::with_capacity(
            members
                .iter()
                .map(|(key, value)| key.0.len() + value.get().len())
                .sum(),
        );
        let entries = decode_members(members, &mut text).map_err(de::Error::custom)?;
        Ok(Self { text, entries })
    }
}

/// Orders `members` by key, keeps the last value of a repeated key, and decodes each value
/// into `text`.
fn decode_members(
    mut members: Vec<(Key<'_>, &RawValue)>,
    text: &mut String,
) -> Result<Vec<Entry>, String> {
    // A stable sort keeps repeated keys in the order sent, so the last of a run is the last sent.
    members.sort_by(|left, right| left.0.cmp(&right.0));
    let mut entries = Vec::with_capacity(members.len());
    for (position, (key, value)) in members.iter().enumerate() {
        if members
            .get(position + 1)
            .is_some_and(|(next, _)| next == key)
        {
            continue;
        }
        let key = push(text, &key.0);
        let value = decode_value(value, text)?;
        entries.push(Entry { key, value });
    }
    Ok(entries)
}

fn decode_value(raw: &RawValue, text: &mut String) -> Result<Node, String> {
    let json = raw.get();
    Ok(match json.as_bytes().first() {
        Some(b'"') => {
            let inner = json.get(1..json.len() - 1).unwrap_or_default();
            if inner.contains('\\') {
                let unescaped: String = serde_json::from_str(json).map_err(without_position)?;
                Node::Text(push(text, &unescaped))
            } else {
                Node::Text(push(text, inner))
            }
        }
        Some(b'{') => {
            // Nested objects are rare in event properties: serde_json's map reads one in a
            // single pass (within its nesting limit), and its members are copied from there.
            let nested: Map<String, Value> =
                serde_json::from_str(json).map_err(without_position)?;
            Node::Object(entries_of_map(&nested, text))
        }
        // Most arrays (`$group_ids`, lists of ids or names) are sent as serde_json writes
        // them: their text is kept as it is.
        Some(b'[') if is_written_as_serde_json_writes_it(json) => Node::ArrayJson(push(text, json)),
        Some(b'[') => {
            // Parsed and written again: the stored form is serde_json's compact text, with
            // strings re-escaped the way it escapes them.
            let array: Value = serde_json::from_str(json).map_err(without_position)?;
            Node::ArrayJson(push(text, &array.to_string()))
        }
        Some(b't') => Node::Flag(true),
        Some(b'f') => Node::Flag(false),
        Some(b'n') => Node::Null,
        _ => Node::Number(push_number(text, json)),
    })
}

/// Whether `json`, the text of a valid JSON value, is the compact text serde_json writes for
/// it: no white space between tokens, no escape (it may write one differently), no object
/// (it sorts keys and drops repeated ones), no exponent (it writes `1E5` as `1e+5`). Any
/// other text is written as it was read.
fn is_written_as_serde_json_writes_it(json: &str) -> bool {
    let mut in_string = false;
    let mut previous = 0u8;
    for &byte in json.as_bytes() {
        if in_string {
            match byte {
                b'\\' => return false,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match byte {
                b'"' => in_string = true,
                b' ' | b'\t' | b'\n' | b'\r' | b'{' => return false,
                // Outside strings, only an exponent follows a digit with `e` or `E` (the `e`
                // of `true` and `false` follows a letter).
                b'e' | b'E' if previous.is_ascii_digit() => return false,
                _ => {}
            }
        }
        previous = byte;
    }
    true
}

/// The entries of a map serde_json read, its values copied into `text`.
fn entries_of_map(map: &Map<String, Value>, text: &mut String) -> Vec<Entry> {
    map.iter()
        .map(|(key, value)| Entry {
            key: push(text, key),
            value: match value {
                Value::Null => Node::Null,
                Value::Bool(flag) => Node::Flag(*flag),
                Value::Number(number) => Node::Number(push(text, number.as_str())),
                Value::String(string) => Node::Text(push(text, string)),
                Value::Array(_) => Node::ArrayJson(push(text, &value.to_string())),
                Value::Object(nested) => Node::Object(entries_of_map(nested, text)),
            },
        })
        .collect()
}

fn push(text: &mut String, part: &str) -> Span {
    let start = text.len();
    text.push_str(part);
    Span {
        start,
        end: text.len(),
    }
}

/// A number as serde_json keeps it with `arbitrary_precision`: the exponent letter is `e`
/// and its sign is always written.
fn push_number(text: &mut String, number: &str) -> Span {
    let Some(at) = number.find(['e', 'E']) else {
        return push(text, number);
    };
    let start = text.len();
    text.push_str(&number[..at]);
    text.push('e');
    let exponent = &number[at + 1..];
    if !exponent.starts_with(['+', '-']) {
        text.push('+');
    }
    text.push_str(exponent);
    Span {
        start,
        end: text.len(),
    }
}

/// The reason of a nested parse error; its position is relative to the value, which would
/// mislead next to the position serde_json adds to the custom error.
fn without_position(error: serde_json::Error) -> String {
    let message = error.to_string();
    match message.rsplit_once(" at line ") {
        Some((reason, _)) => reason.to_owned(),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(json: &str) -> DecodedObject {
        serde_json::from_str(json).unwrap()
    }

    /// The same text, through serde_json's own map.
    fn as_map(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn holds_what_serde_jsons_map_holds() {
        for json in [
            r#"{}"#,
            r#"{"b": 1, "a": "x", "c": null, "d": true, "e": false}"#,
            r#"{"n": [1, "two", {"z": 1, "a": [null]}], "o": {"y": {"x": "deep"}, "b": 2}}"#,
            r#"{"k": 1, "k": 2, "j": "first", "k": "last"}"#,
            r#"{"esc\u00e9\"": "tab\there \u00e9 \/ \ud83d\ude00", "plain": "no escapes"}"#,
            r#"{"big": 123456789012345678901234567890, "e1": 1E5, "e2": -2.5e-3, "e3": 7e+2, "neg": -0}"#,
            r#"{"arr": [ 1 , 2E3 , "a\u0041" ], "empty": [], "obj": {}}"#,
            r#"{"Z": 1, "a": 2, "_": 3, "$x": 4, "é": 5, "A": 6}"#,
        ] {
            assert_eq!(decode(json).to_json(), as_map(json), "{json}");
        }
    }

    /// A random object as JSON text: keys drawn from a few (so some repeat), escaped and plain
    /// strings, numbers with and without exponents, nested objects and arrays.
    fn random_object(random: &mut fastrand::Rng, depth: usize) -> String {
        const KEYS: [&str; 8] = ["a", "A", "a b", r"\u0061", "$x", "é", r#"k\"q"#, ""];
        const SCALARS: [&str; 14] = [
            "\"x\"",
            "\"\"",
            "\"tab\\there\"",
            "\"\\u00e9\\/\\ud83d\\ude00\"",
            "\"é\"",
            "1",
            "-0",
            "1E5",
            "2.5e-3",
            "7e+2",
            "123456789012345678901234567890",
            "true",
            "false",
            "null",
        ];
        let members = random.usize(..6);
        let mut text = String::from("{");
        for position in 0..members {
            if position > 0 {
                text.push_str(if random.bool() { "," } else { " , " });
            }
            text.push('"');
            text.push_str(KEYS[random.usize(..KEYS.len())]);
            text.push_str("\":");
            match random.usize(..5) {
                0 if depth < 3 => text.push_str(&random_object(random, depth + 1)),
                1 => {
                    text.push('[');
                    for item in 0..random.usize(..3) {
                        if item > 0 {
                            text.push(',');
                        }
                        text.push_str(SCALARS[random.usize(..SCALARS.len())]);
                    }
                    if depth < 3 && random.bool() {
                        text.push_str(if text.ends_with('[') { "" } else { "," });
                        text.push_str(&random_object(random, depth + 1));
                    }
                    text.push(']');
                }
                _ => text.push_str(SCALARS[random.usize(..SCALARS.len())]),
            }
        }
        text.push('}');
        text
    }

    #[test]
    fn an_array_is_kept_as_sent_only_when_serde_json_writes_it_so() {
        let written_again = |json: &str| serde_json::from_str::<Value>(json).unwrap().to_string();
        for json in [
            r#"["XyZ12a"]"#,
            r#"[1,-0,2.50,"e1","1e5 in text",true,false,null,[],[["é",7]]]"#,
            "[]",
        ] {
            assert!(is_written_as_serde_json_writes_it(json), "{json}");
            assert_eq!(json, written_again(json));
        }
        // Each of these serde_json writes otherwise.
        for json in [
            r#"[ "a"]"#,
            "[1,\n2]",
            r#"["a\/b"]"#,
            r#"["\u00e9"]"#,
            "[1E5]",
            "[7e2]",
            r#"[{"b":1,"a":2}]"#,
        ] {
            assert!(!is_written_as_serde_json_writes_it(json), "{json}");
            assert_ne!(json, written_again(json));
        }
        // Every exponent goes the exact way, even one serde_json writes back unchanged.
        assert!(!is_written_as_serde_json_writes_it("[2.5e-3]"));
    }

    #[test]
    fn random_objects_hold_what_the_map_holds() {
        let mut random = fastrand::Rng::with_seed(5);
        for _ in 0..3_000 {
            let json = random_object(&mut random, 0);
            let object = decode(&json);
            assert_eq!(object.to_json(), as_map(&json), "{json}");
            // Written out, numbers and arrays keep serde_json's exact text too.
            let map_text = serde_json::to_string(&as_map(&json)).unwrap();
            assert_eq!(written(object.view()), map_text, "{json}");
        }
    }

    /// The object as compact JSON, from the texts it keeps.
    fn written(object: ObjectView<'_>) -> String {
        let members: Vec<String> = object
            .iter()
            .map(|(key, member)| {
                let value = match member {
                    Member::Null => "null".to_owned(),
                    Member::Flag(flag) => flag.to_string(),
                    Member::Number(text) | Member::ArrayJson(text) => text.to_owned(),
                    Member::Text(text) => serde_json::to_string(text).unwrap(),
                    Member::Object(nested) => written(nested),
                };
                format!("{}:{value}", serde_json::to_string(key).unwrap())
            })
            .collect();
        format!("{{{}}}", members.join(","))
    }

    #[test]
    fn numbers_are_the_text_serde_json_writes() {
        let object = decode(
            r#"{"a": 1E5, "b": -2.5e-3, "c": 7e+2, "d": 0.1000000000000000055511151231257827, "e": 12}"#,
        );
        let map = as_map(
            r#"{"a": 1E5, "b": -2.5e-3, "c": 7e+2, "d": 0.1000000000000000055511151231257827, "e": 12}"#,
        );
        for (key, member) in object.view().iter() {
            assert_eq!(member, Member::Number(&map[key].to_string()), "{key}");
        }
        assert_eq!(object.get("a"), Some(Member::Number("1e+5")));
    }

    #[test]
    fn arrays_are_their_compact_text() {
        let object = decode(r#"{"a": [ 1, "\u0041\/", {"b": 2, "a": 1, "b": 3} ]}"#);
        assert_eq!(
            object.get("a"),
            Some(Member::ArrayJson(r#"[1,"A/",{"a":1,"b":3}]"#))
        );
    }

    #[test]
    fn members_are_ordered_by_key_and_found_by_key() {
        let object = decode(r#"{"b": 1, "a": {"d": "x", "c": "y"}, "k": "1", "k": "2"}"#);
        let keys: Vec<&str> = object.view().iter().map(|(key, _)| key).collect();
        assert_eq!(keys, ["a", "b", "k"]);
        assert_eq!(object.get("k"), Some(Member::Text("2")));
        assert_eq!(object.get("missing"), None);
        let Some(Member::Object(nested)) = object.get("a") else {
            panic!("a is an object");
        };
        assert_eq!(nested.get("c"), Some(Member::Text("y")));
        let nested_keys: Vec<&str> = nested.iter().map(|(key, _)| key).collect();
        assert_eq!(nested_keys, ["c", "d"]);
    }

    #[test]
    fn refuses_nesting_deeper_than_serde_json_reads() {
        let nested =
            |levels: usize| format!("{}1{}", r#"{"a":"#.repeat(levels), "}".repeat(levels));
        assert!(serde_json::from_str::<DecodedObject>(&nested(100)).is_ok());
        let error = serde_json::from_str::<DecodedObject>(&nested(100_000)).unwrap_err();
        assert!(error.to_string().contains("recursion limit"), "{error}");
    }

    #[test]
    fn refuses_what_the_map_refuses() {
        for json in [
            r#"[1]"#,
            r#""text""#,
            r#"{"a": "\ud800"}"#,
            r#"{"a": ["\udc00"]}"#,
        ] {
            let ours = serde_json::from_str::<DecodedObject>(json);
            let theirs = serde_json::from_str::<Map<String, Value>>(json);
            assert!(ours.is_err() && theirs.is_err(), "{json}");
        }
        let wrong_type = serde_json::from_str::<DecodedObject>("[1]").unwrap_err();
        let map_wrong_type = serde_json::from_str::<Map<String, Value>>("[1]").unwrap_err();
        assert_eq!(wrong_type.to_string(), map_wrong_type.to_string());
    }
}
