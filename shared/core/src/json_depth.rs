//! A guard against hostile nesting: serde_json limits the depth of what it parses, but parts
//! that are skipped or kept raw (the events of a webhook, read one by one) are not counted.
//! One cheap pass over the bytes refuses a body nested deeper than any real event.

/// Deepest nesting accepted: a Klaviyo event sits at depth 7 (envelope, data, element,
/// payload, data, attributes, event_properties), so 64 leaves room for any real property.
pub const MAX_JSON_DEPTH: usize = 64;

/// Whether `bytes` nest objects and arrays deeper than `max` (brackets inside strings do
/// not count). Malformed input is not judged here; the parser reports it.
pub fn nests_deeper_than(bytes: &[u8], max: usize) -> bool {
    // Nesting is never deeper than the count of opening brackets (in strings or not): a
    // small body, a request of one event, has too few to matter, and counting them is
    // several times cheaper than following the body's strings.
    if opening_brackets(bytes) <= max {
        return false;
    }
    let mut depth = 0usize;
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        match byte {
            b'"' => match string_end(bytes, index + 1) {
                Some(end) => index = end,
                // Unterminated: the parser reports it.
                None => return false,
            },
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        index += 1;
    }
    false
}

/// How many `[` and `{` `bytes` hold, strings included: a loop the compiler vectorises.
fn opening_brackets(bytes: &[u8]) -> usize {
    // Setting bit 0x20 turns `[` into `{`, and no other byte into it. Counting in bytes, 255
    // at most per chunk, keeps the vector lanes narrow.
    bytes
        .chunks(255)
        .map(|chunk| {
            let in_chunk = chunk
                .iter()
                .fold(0u8, |count, &byte| count + u8::from(byte | 0x20 == b'{'));
            usize::from(in_chunk)
        })
        .sum()
}

/// The index of the `"` closing a string whose text starts at `from`; jumps from one `"` or
/// `\` to the next, since most of a body is string text.
fn string_end(bytes: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let at = from + memchr::memchr2(b'"', b'\\', bytes.get(from..)?)?;
        if bytes[at] == b'"' {
            return Some(at);
        }
        // Skip the escaped character, whatever it is.
        from = at + 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_nesting_outside_strings_only() {
        assert!(!nests_deeper_than(br#"{"a": [[1]]}"#, 3));
        assert!(nests_deeper_than(br#"{"a": [[[1]]]}"#, 3));
        assert!(!nests_deeper_than(br#"{"a": "[[[[[[[[\"]]]]"}"#, 1));
        assert!(!nests_deeper_than(br#"{"a": "\\", "b": 1}"#, 1));
        assert!(nests_deeper_than(br#"{"a": "\\\"[", "b": [1]}"#, 1));
        assert!(!nests_deeper_than(br#"{"a": "\\\"[[", "b": 1}"#, 1));
        // An unterminated string, or one ending in a lone backslash, ends the scan.
        assert!(!nests_deeper_than(br#"{"a": "[[[["#, 1));
        assert!(!nests_deeper_than(br#"{"a": "\"#, 1));
    }

    #[test]
    fn a_body_with_few_brackets_is_not_followed_through_its_strings() {
        // Three brackets in all: no deeper than three, whatever the strings hold.
        assert!(!nests_deeper_than(br#"{"a": [{"b": "\"#, 3));
        assert!(nests_deeper_than(br#"{"a": [{"b": 1}]}"#, 2));
        // Brackets in strings count towards the shortcut but not towards the depth.
        assert!(!nests_deeper_than(br#"{"a": "[[[[", "b": [1]}"#, 3));
    }

    #[test]
    fn refuses_ten_thousand_levels() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(nests_deeper_than(deep.as_bytes(), MAX_JSON_DEPTH));
    }
}
