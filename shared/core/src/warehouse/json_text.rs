//! Writing JSON text straight into a byte buffer, byte for byte as `serde_json` writes it
//! compactly, but without a `Result`: appending to a `Vec` cannot fail, and a row's values
//! are always representable, so there is no error to carry.

use serde_json::Value;

/// Appends `text` as a JSON string: `"` and `\` escaped, control characters as `\b`, `\t`,
/// `\n`, `\f`, `\r` or `\u00XX` (lower-case hex), everything else (non-ASCII included) as is.
pub fn write_json_str(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // Most text needs no escape at all: that is found eight bytes at a time, and it is copied
    // whole. Other text is escaped from the first word that needs it, not read again from
    // its start.
    let clean = clean_prefix_len(bytes);
    if clean == bytes.len() {
        out.extend_from_slice(bytes);
    } else {
        write_escaped(out, bytes, clean);
    }
    out.push(b'"');
}

/// How many leading bytes of `bytes` surely need no escape: its words up to the first that
/// holds such a byte, by the word test; when there is none, also the last few bytes, one by
/// one (copying them into a padded word costs a stall on the store).
fn clean_prefix_len(bytes: &[u8]) -> usize {
    let mut words = bytes.chunks_exact(8);
    let mut clean = 0;
    for word in words.by_ref() {
        if any_byte_needs_escape(word_at(word, 0)) {
            return clean;
        }
        clean += 8;
    }
    clean
        + words
            .remainder()
            .iter()
            .take_while(|&&byte| ESCAPE[usize::from(byte)] == 0)
            .count()
}

/// `bytes` with every byte that needs one escaped (without the quotes); the first `clean`
/// bytes are known to need none.
fn write_escaped(out: &mut Vec<u8>, bytes: &[u8], clean: usize) {
    let mut start = 0;
    let mut index = clean;
    while index < bytes.len() {
        // Long text with few escapes: step over it eight bytes at a time.
        if index + 8 <= bytes.len() && !any_byte_needs_escape(word_at(bytes, index)) {
            index += 8;
            continue;
        }
        let byte = bytes[index];
        let escape = ESCAPE[usize::from(byte)];
        if escape != 0 {
            out.extend_from_slice(&bytes[start..index]);
            if escape == b'u' {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(byte >> 4)]);
                out.push(HEX[usize::from(byte & 0xf)]);
            } else {
                out.extend_from_slice(&[b'\\', escape]);
            }
            start = index + 1;
        }
        index += 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

fn word_at(bytes: &[u8], index: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[index..index + 8]);
    u64::from_le_bytes(word)
}

/// Whether any of the eight bytes of `word` is below 0x20, `"` or `\`, by the classic
/// "has a zero byte" bit trick (exact for the question "any?").
fn any_byte_needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGH_BITS;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH_BITS;
    let quote = has_zero(word ^ (ONES * u64::from(b'"')));
    let backslash = has_zero(word ^ (ONES * u64::from(b'\\')));
    (below_space | quote | backslash) != 0
}

/// For each byte, 0 when it is written as is, else the letter after the backslash of its
/// escape (`u` for `\u00XX`). One table lookup per byte keeps the common case a tight loop.
const ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = b'u';
        byte += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// Appends `value` as compact JSON. Numbers are written as their exact text (the crate
/// keeps numbers at arbitrary precision); object keys in the map's order.
pub fn write_json_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(number) => out.extend_from_slice(number.as_str().as_bytes()),
        Value::String(text) => write_json_str(out, text),
        Value::Array(items) => {
            out.push(b'[');
            for (position, item) in items.iter().enumerate() {
                if position > 0 {
                    out.push(b',');
                }
                write_json_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(members) => {
            out.push(b'{');
            for (position, (key, member)) in members.iter().enumerate() {
                if position > 0 {
                    out.push(b',');
                }
                write_json_str(out, key);
                out.push(b':');
                write_json_value(out, member);
            }
            out.push(b'}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_escapes_them() {
        // Every ASCII byte, the characters around the escape boundaries, and non-ASCII.
        let mut samples: Vec<String> = (0u8..=0x7f).map(|b| char::from(b).to_string()).collect();
        samples.extend(
            [
                "",
                "plain",
                "a\"b\\c",
                "tab\there",
                "é",
                "日本語",
                "emoji 😀",
                "\u{7f}\u{80}",
            ]
            .map(str::to_owned),
        );
        samples.push((0u8..=0x7f).map(char::from).collect());
        for sample in samples {
            let mut ours = Vec::new();
            write_json_str(&mut ours, &sample);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(&sample).unwrap(),
                "{sample:?}"
            );
        }
    }

    #[test]
    fn long_strings_with_an_escape_at_every_position_match_serde_json() {
        for special in ['"', '\\', '\n', '\u{1}', '\u{1f}', 'é'] {
            for position in 0..20 {
                let mut sample: String = "abcdefghijklmnopqrst".into();
                sample.insert(position, special);
                let mut ours = Vec::new();
                write_json_str(&mut ours, &sample);
                assert_eq!(ours, serde_json::to_vec(&sample).unwrap(), "{sample:?}");
            }
        }
    }

    #[test]
    fn the_word_test_flags_exactly_the_bytes_that_need_escaping() {
        for byte in 0u8..=255 {
            for position in 0..8 {
                let mut word = [b'a'; 8];
                word[position] = byte;
                assert_eq!(
                    any_byte_needs_escape(u64::from_le_bytes(word)),
                    ESCAPE[usize::from(byte)] != 0,
                    "byte {byte:#x} at {position}"
                );
            }
        }
    }

    #[test]
    fn values_are_written_exactly_as_serde_json_writes_them() {
        let text = r#"{"n":null,"t":true,"f":false,"big":123456789012345678901234567890,
            "neg":-0.1000000000000000055511151231257827,"e":1.5e300,"s":"x\ny",
            "a":[1,"two",[3],{"k":{}}],"o":{"z":1,"a":[]},"empty":""}"#;
        let value: Value = serde_json::from_str(text).unwrap();
        let mut ours = Vec::new();
        write_json_value(&mut ours, &value);
        assert_eq!(ours, serde_json::to_vec(&value).unwrap());
    }
}
