//! Reading a well-formed webhook envelope in one pass over its events.
//!
//! The exact reading (`webhook::read_envelope_exactly`) takes two passes over every event:
//! serde_json first skips each element of `data` to find its text (a broken event is kept as
//! that text, and an event without ids is named after it), then parses the text. Here each
//! element is parsed once, where it stands in the body, and serde_json's stream reader says
//! where it ended, which gives the same text.
//!
//! This reader only answers for bodies it can read completely: anything else (a syntax error,
//! bytes that are not UTF-8, a missing, repeated or mistyped member of the envelope, trailing
//! text, nesting deeper than `MAX_JSON_DEPTH`) makes it give up, and the exact reading then
//! decodes the body and words its error.
//!
//! The nesting guard is applied to each value it reads (a member of the envelope, an element
//! of `data`) rather than to the whole body first: in a body that parses, the deepest point
//! is inside one of them, and a value with few brackets is cleared by counting them
//! (`json_depth`), where following the whole body's strings costs a scan of its own.
//! An element that does not decode is handed to the exact reading's own per-event decoder, so
//! its reason is worded as always. Either way, what comes out is what the exact reading gives:
//! the tests check it on every fixture, every truncation of four of them, every one-byte
//! change of another and envelopes of unusual shape, and the webhook fuzz target on every
//! body it makes.

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

#[cfg(any(test, fuzzing))]
use super::webhook::read_envelope_exactly;
use super::webhook::{DecodedEvent, EventWire, MetaWire, decode_event, event_from_wire};
use crate::json_depth::{MAX_JSON_DEPTH, nests_deeper_than};

/// How deep a member of the envelope sits (inside its `{`), and an element of `data`
/// (inside `{` and `[`): a value there may nest this much less than the body.
const MEMBER_DEPTH: usize = 1;
const ELEMENT_DEPTH: usize = 2;

/// The envelope's meta and every element of `data`, decoded, or `None` when only the exact
/// reading can say what is wrong with the body.
pub(super) fn read_envelope(body: &[u8]) -> Option<(MetaWire, Vec<DecodedEvent<'_>>)> {
    // The exact reading checks that every event's text is UTF-8; checking the whole body once
    // lets each event be read from text without checking it again.
    let text = std::str::from_utf8(body).ok()?;
    let mut cursor = Cursor { text, at: 0 };
    cursor.eat(b'{')?;
    let (mut meta, mut events) = (None, None);
    if cursor.peek()? == b'}' {
        // `{}`: no `data`, no `meta`.
        return None;
    }
    loop {
        let key: String = cursor.value()?.ok()?;
        cursor.eat(b':')?;
        let value_start = cursor.at;
        match key.as_str() {
            "data" if events.is_none() => events = Some(cursor.events()?),
            "meta" if meta.is_none() => {
                meta = Some(cursor.value::<MetaWire>()?.ok()?);
                cursor.within_depth_since(value_start, MEMBER_DEPTH)?;
            }
            // A repeated `data` or `meta` is an error the exact reading words.
            "data" | "meta" => return None,
            _ => {
                cursor.value::<IgnoredAny>()?.ok()?;
                cursor.within_depth_since(value_start, MEMBER_DEPTH)?;
            }
        }
        match cursor.next_byte()? {
            b',' => continue,
            b'}' => break,
            _ => return None,
        }
    }
    cursor.skip_whitespace();
    if cursor.at != text.len() {
        return None;
    }
    Some((meta?, events?))
}

/// A position in the body's text.
struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    /// JSON's whitespace, as serde_json skips it.
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.text.as_bytes().get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte that is not whitespace, without taking it.
    fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.text.as_bytes().get(self.at).copied()
    }

    /// Takes the next byte that is not whitespace.
    fn next_byte(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    /// Takes `expected` as the next byte that is not whitespace.
    fn eat(&mut self, expected: u8) -> Option<()> {
        (self.next_byte()? == expected).then_some(())
    }

    /// `Some` when the text from `start` to here, a value `base` levels deep in the body,
    /// keeps the body within `MAX_JSON_DEPTH`.
    fn within_depth_since(&self, start: usize, base: usize) -> Option<()> {
        let value = self.text.as_bytes().get(start..self.at)?;
        (!nests_deeper_than(value, MAX_JSON_DEPTH - base)).then_some(())
    }

    /// Parses the value that starts here and moves past it; stays put if it does not parse.
    /// `None` when there is no value left at all.
    fn value<T: Deserialize<'a>>(&mut self) -> Option<Result<T, serde_json::Error>> {
        self.skip_whitespace();
        let rest = self.text.get(self.at..)?;
        let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<T>();
        let parsed = stream.next()?;
        if parsed.is_ok() {
            self.at += stream.byte_offset();
        }
        Some(parsed)
    }

    /// The elements of the `data` array that starts here, each decoded.
    fn events(&mut self) -> Option<Vec<DecodedEvent<'a>>> {
        self.eat(b'[')?;
        let mut events = Vec::new();
        if self.peek()? == b']' {
            self.at += 1;
            return Some(events);
        }
        loop {
            events.push(self.event(events.len())?);
            match self.next_byte()? {
                b',' => continue,
                b']' => return Some(events),
                _ => return None,
            }
        }
    }

    /// Element `index` of `data`, decoded where it stands; one that does not decode goes to
    /// the exact reading's per-event decoder, which words why.
    fn event(&mut self, index: usize) -> Option<DecodedEvent<'a>> {
        let start = self.at;
        if self.peek()? == b'{' {
            let element_start = self.at;
            if let Ok(wire) = self.value::<EventWire>()? {
                self.within_depth_since(element_start, ELEMENT_DEPTH)?;
                let raw = self.text.get(element_start..self.at)?;
                return Some(event_from_wire(index, raw, wire));
            }
        }
        self.at = start;
        let raw: &'a RawValue = self.value()?.ok()?;
        self.within_depth_since(start, ELEMENT_DEPTH)?;
        Some(decode_event(index, raw))
    }
}

/// Whether the one-pass reader answered for `body`; fails an assertion if what it answered
/// differs from the exact reading. The tests and the webhook fuzz target check this.
#[cfg(any(test, fuzzing))]
pub fn answers_as_the_exact_reading(body: &[u8]) -> bool {
    let exact = read_envelope_exactly(body);
    let Some((one_pass_meta, one_pass_events)) = read_envelope(body) else {
        return false;
    };
    let exact = exact.ok();
    assert!(
        exact.is_some(),
        "the one-pass reader read a body the exact reading refuses"
    );
    let Some((exact_meta, exact_events)) = exact else {
        return false;
    };
    assert_eq!(one_pass_meta.into_meta(), exact_meta.into_meta());
    assert_eq!(one_pass_events, exact_events);
    true
}

#[cfg(test)]
mod tests {
    use super::super::webhook::read_envelope_exactly;
    use super::*;

    const FIXTURES: [&str; 8] = [
        include_str!("../../../../tests/fixtures/webhooks/all_six_collections.json"),
        include_str!("../../../../tests/fixtures/webhooks/datetime_variants.json"),
        include_str!("../../../../tests/fixtures/webhooks/empty_batch.json"),
        include_str!("../../../../tests/fixtures/webhooks/missing_account_id.json"),
        include_str!("../../../../tests/fixtures/webhooks/one_broken_event.json"),
        include_str!("../../../../tests/fixtures/webhooks/topic_variants.json"),
        include_str!("../../../../tests/fixtures/webhooks/unicode.json"),
        include_str!("../../../../tests/fixtures/webhooks/unknown_topics.json"),
    ];

    #[test]
    fn reads_every_fixture_as_the_exact_reading_does() {
        for fixture in FIXTURES {
            assert!(
                answers_as_the_exact_reading(fixture.as_bytes()),
                "{fixture}"
            );
        }
    }

    #[test]
    fn gives_up_on_every_truncated_body() {
        // The four smaller fixtures: every prefix is read twice, so the cost grows with the
        // square of the length.
        for fixture in [FIXTURES[2], FIXTURES[3], FIXTURES[4], FIXTURES[6]] {
            for end in 0..fixture.trim_end().len() {
                let Some(prefix) = fixture.as_bytes().get(..end) else {
                    continue;
                };
                // Every strict prefix of an object is malformed.
                assert!(!answers_as_the_exact_reading(prefix), "{end}");
            }
        }
    }

    #[test]
    fn agrees_on_bodies_with_one_byte_changed() {
        // unicode.json: escapes and multi-byte text in 2 KB.
        let body = FIXTURES[6].as_bytes();
        let mut answered = 0;
        for position in 0..body.len() {
            for replacement in *b"\"}],x\\" {
                let mut changed = body.to_vec();
                changed[position] = replacement;
                answered += usize::from(answers_as_the_exact_reading(&changed));
            }
        }
        // Most single changes land inside strings and leave a readable body.
        assert!(answered > body.len(), "{answered}");
    }

    #[test]
    fn agrees_on_envelopes_of_unusual_shape() {
        let event = r#"{"topic": "event:klaviyo.opened_email", "payload": {"data": {"id": "E1",
            "attributes": {"datetime": "2024-01-04T18:05:01+00:00", "event_properties": {"a": 1}},
            "relationships": {"profile": {"data": {"id": "P1"}}}}}}"#;
        let answered = [
            format!(r#"{{"meta": {{"klaviyo_webhook_id": "wh"}}, "data": [{event}]}}"#),
            format!(
                r#" {{ "d\u0061ta" : [ {event} , 7, "x", {{}} ] , "extra": [1, {{"x": null}}], "meta": {{"klaviyo_webhook_id": 12, "version": 3}} }} "#
            ),
            r#"{"data": [], "meta": {"klaviyo_webhook_id": "wh", "timestamp": [1]}}"#.to_owned(),
            format!(
                r#"{{"data": [{event}, {{"topic": 5}}, {{"topic": "x", "payload": {{"data": {{"attributes": {{"event_properties": {{"s": "\ud800"}}}}}}}}}}], "meta": {{"klaviyo_webhook_id": "wh"}}}}"#
            ),
        ];
        for body in &answered {
            assert!(answers_as_the_exact_reading(body.as_bytes()), "{body}");
        }
        let refused = [
            format!(r#"{{"data": [{event}], "data": [], "meta": {{"klaviyo_webhook_id": "wh"}}}}"#),
            r#"{"data": [], "meta": {"klaviyo_webhook_id": "wh"}, "meta": {}}"#.to_owned(),
            r#"{"data": [], "meta": {"klaviyo_webhook_id": "wh"}} x"#.to_owned(),
            r#"{"data": [], "meta": {"klaviyo_webhook_id": "wh"},}"#.to_owned(),
            r#"{"data": [1,], "meta": {"klaviyo_webhook_id": "wh"}}"#.to_owned(),
            r#"{"data": {}, "meta": {"klaviyo_webhook_id": "wh"}}"#.to_owned(),
            r#"{"data": []}"#.to_owned(),
            r#"{}"#.to_owned(),
            r#"[]"#.to_owned(),
            "\u{feff}{\"data\": [], \"meta\": {\"klaviyo_webhook_id\": \"wh\"}}".to_owned(),
        ];
        for body in &refused {
            assert!(!answers_as_the_exact_reading(body.as_bytes()), "{body}");
        }
        // Bytes that are not UTF-8 in a string nothing reads: the exact reading lets them
        // pass outside `data` and refuses them inside an event; the one-pass reader leaves
        // both to it.
        let not_utf8 = |before: &str, after: &str| {
            let mut body = before.as_bytes().to_vec();
            body.extend_from_slice(b"\xff");
            body.extend_from_slice(after.as_bytes());
            body
        };
        let outside = not_utf8(
            r#"{"data": [], "meta": {"klaviyo_webhook_id": "wh"}, "x": ""#,
            r#""}"#,
        );
        let inside = not_utf8(
            &format!(
                r#"{{"meta": {{"klaviyo_webhook_id": "wh"}}, "data": [{}"#,
                &event[..event.len() - 1]
            ),
            r#", "x": ""}]}"#,
        );
        assert!(!answers_as_the_exact_reading(&outside));
        assert!(read_envelope_exactly(&outside).is_ok());
        assert!(!answers_as_the_exact_reading(&inside));
        assert!(read_envelope_exactly(&inside).is_err());
    }
}
