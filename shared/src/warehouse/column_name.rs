//! Column naming: how Segment's warehouses turn property keys into column names.

/// Turns any key into a snake_case column name: camelCase words split (`userAgent` →
/// `user_agent`), every run of other characters becomes one `_` (`Campaign Name` →
/// `campaign_name`, `$event_id` → `event_id`), lower case, no leading or trailing `_`.
/// A key with no letters or digits at all becomes `_`.
pub fn to_column_name(key: &str) -> String {
    let mut name = String::with_capacity(key.len() + 4);
    push_column_name(&mut name, key);
    name
}

/// Appends the column name of `key` to `out` (see [`to_column_name`]); lets a caller build
/// `prefix_name` in one buffer.
pub fn push_column_name(out: &mut String, key: &str) {
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
        ] {
            assert_eq!(to_column_name(key), column, "key {key:?}");
        }
    }
}
