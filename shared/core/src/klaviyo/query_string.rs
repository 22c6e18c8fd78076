//! Query strings for Klaviyo's API: filter expressions carry quotes, commas and brackets,
//! which Klaviyo asks to be URI-encoded.

/// `text` with every byte outside RFC 3986's unreserved set percent-encoded.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_everything_but_the_unreserved_set() {
        assert_eq!(
            percent_encode(r#"equals(metric_id,"AbC"),x+1 ~"#),
            "equals%28metric_id%2C%22AbC%22%29%2Cx%2B1%20~"
        );
    }
}
