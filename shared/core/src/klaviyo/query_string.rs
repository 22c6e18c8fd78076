//! Query strings for Klaviyo's API: filter expressions carry quotes, commas and brackets,
//! which Klaviyo asks to be URI-encoded.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Every byte but RFC 3986's unreserved set: ASCII letters, digits, `-`, `_`, `.`, `~`.
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `text` with every byte outside RFC 3986's unreserved set percent-encoded.
pub fn percent_encode(text: &str) -> String {
    utf8_percent_encode(text, NOT_UNRESERVED).to_string()
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
        assert_eq!(percent_encode("é/ü"), "%C3%A9%2F%C3%BC");
    }
}
