//! Column naming: how Segment's warehouses turn property keys into column names.

use std::borrow::Cow;

/// Turns any key into a snake_case column name: camelCase words split (`userAgent` →
/// `user_agent`), every run of other characters becomes one `_` (`Campaign Name` →
/// `campaign_name`, `$event_id` → `event_id`), lower case, no leading or trailing `_`.
/// A key with no letters or digits at all becomes `_`.
pub fn to_column_name(key: &str) -> String {
    let mut name = String::with_capacity(key.len() + 4);
    push_column_name(&mut name, key);
    name
}

/// The column name of `key`, borrowed when `key` is one already (no allocation).
pub fn column_name(key: &str) -> Cow<'_, str> {
    if is_column_name_already(key) {
        Cow::Borrowed(key)
    } else {
        // Converted at once: `to_column_name` would ask again whether it is one already.
        let mut name = String::with_capacity(key.len() + 4);
        push_converted(&mut name, key);
        Cow::Owned(name)
    }
}

/// Appends the column name of `key` to `out` (see [`to_column_name`]); lets a caller build
/// `prefix_name` in one buffer.
pub fn push_column_name(out: &mut String, key: &str) {
    if is_column_name_already(key) {
        // Most context and spec keys (`profile_id`, `webhook_id`, `email_subject`) need no
        // change at all: copy them whole.
        out.push_str(key);
    } else {
        push_converted(out, key);
    }
}

/// The rule of [`to_column_name`] for a key that is not a column name already.
fn push_converted(out: &mut String, key: &str) {
    // At most one separator per character, plus the `_` of an empty name.
    out.reserve(2 * key.len() + 1);
    let start = out.len();
    let mut previous: Option<char> = None;
    let mut pending_separator = false;
    for ch in key.chars() {
        if ch.is_alphanumeric() {
            let starts_camel_word = ch.is_uppercase()
                && previous.is_some_and(|p| p.is_lowercase() || p.is_ascii_digit());
            if (pending_separator || starts_camel_word) && out.len() > start {
                out.push('_');
            }
            pending_separator = false;
            if ch.is_ascii() {
                out.push(ch.to_ascii_lowercase());
            } else {
                out.extend(ch.to_lowercase());
            }
        } else {
            pending_separator = true;
        }
        previous = Some(ch);
    }
    if out.len() == start {
        out.push('_');
    }
}

/// Whether `key` is its own column name: lower-case ASCII letters and digits in words joined
/// by single `_`, no `_` at either end.
fn is_column_name_already(key: &str) -> bool {
    let bytes = key.as_bytes();
    let word_byte = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    bytes.first().is_some_and(word_byte)
        && bytes.last().is_some_and(word_byte)
        && bytes.iter().all(|b| word_byte(b) || *b == b'_')
        && !bytes.windows(2).any(|pair| pair == b"__")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_after_a_prefix() {
        let mut name = String::from("context_");
        push_column_name(&mut name, "userAgent");
        assert_eq!(name, "context_user_agent");
    }

    #[test]
    fn keys_copied_whole_are_exactly_what_conversion_gives() {
        // Every pair of printable ASCII characters between and around a few word shapes.
        let printable: Vec<char> = (0x20u8..0x7f).map(char::from).collect();
        let mut copied = 0;
        for &a in &printable {
            for &b in &printable {
                for key in [format!("{a}{b}"), format!("{a}_{b}"), format!("{a}{b}x")] {
                    if is_column_name_already(&key) {
                        let mut converted = String::new();
                        push_converted(&mut converted, &key);
                        assert_eq!(converted, key);
                        copied += 1;
                    }
                }
            }
        }
        // 36 word characters: 36² pairs, 36² joined by `_`, 36² followed by `x`, and the 36
        // `<word>_x`.
        assert_eq!(copied, 3 * 36 * 36 + 36);
    }

    #[test]
    fn converts_klaviyo_property_keys() {
        for (key, column) in [
            ("Campaign Name", "campaign_name"),
            ("$event_id", "event_id"),
            ("$_cohort$message_send_cohort", "cohort_message_send_cohort"),
            ("URL", "url"),
            ("$ESP", "esp"),
            ("Client OS Family", "client_os_family"),
            ("machine_open", "machine_open"),
            ("userAgent", "user_agent"),
            ("originalTimestamp", "original_timestamp"),
            ("utm-source", "utm_source"),
            ("  spaced  out  ", "spaced_out"),
            ("Größe", "größe"),
            ("$$$", "_"),
            ("", "_"),
            ("ÉtéURL", "été_url"),
            ("aÄb", "a_äb"),
            ("x1Y", "x1_y"),
            ("profile_id", "profile_id"),
            ("a__b", "a_b"),
            ("_a", "a"),
            ("a_", "a"),
            ("9", "9"),
        ] {
            assert_eq!(to_column_name(key), column, "key {key:?}");
            let borrowed_or_not = column_name(key);
            assert_eq!(borrowed_or_not, column, "key {key:?}");
            // Borrowed exactly when the key is its own column name.
            assert_eq!(
                matches!(borrowed_or_not, Cow::Borrowed(_)),
                key == column,
                "key {key:?}"
            );
        }
    }
}
