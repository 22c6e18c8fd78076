//! Write keys: the secret a Klaviyo account owner types into Klaviyo's webhook settings.

use std::fmt;

/// Klaviyo refuses webhook secret keys shorter than this, so a shorter key is a typo.
pub const MIN_WRITE_KEY_LEN: usize = 16;

/// A configured write key. Its `Debug` output never shows the key.
#[derive(Clone)]
pub struct WriteKey(String);

/// Why a configured write key was refused at start-up.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WriteKeyError {
    /// Klaviyo requires at least [`MIN_WRITE_KEY_LEN`] characters.
    #[error(
        "a write key must have at least {MIN_WRITE_KEY_LEN} characters (Klaviyo's own minimum), this one has {0}"
    )]
    TooShort(usize),
    /// Leading or trailing white space is almost always a copy-and-paste accident.
    #[error("a write key must not start or end with white space")]
    SurroundingWhitespace,
}

impl WriteKey {
    /// Validates and wraps a key.
    pub fn new(key: impl Into<String>) -> Result<Self, WriteKeyError> {
        let key = key.into();
        if key.trim() != key {
            return Err(WriteKeyError::SurroundingWhitespace);
        }
        let len = key.chars().count();
        if len < MIN_WRITE_KEY_LEN {
            return Err(WriteKeyError::TooShort(len));
        }
        Ok(Self(key))
    }

    /// The key spelled by 32 random bytes, hex encoded (64 characters, always valid). The
    /// randomness is the caller's: this crate reads no OS randomness.
    pub fn from_random_bytes(bytes: [u8; 32]) -> Self {
        Self(hex::encode(bytes))
    }

    /// The key's bytes, for computing a MAC. Deliberately the only way to read it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for WriteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WriteKey([redacted])")
    }
}

/// A Klaviyo private API key. Its `Debug` output never shows the key.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key, trimming surrounding white space (a copy-and-paste accident).
    pub fn new(key: impl Into<String>) -> Option<Self> {
        let key = key.into().trim().to_owned();
        (!key.is_empty()).then_some(Self(key))
    }

    /// The key, for the `Authorization` header. Deliberately the only way to read it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_key() {
        let key = WriteKey::new("super-secret-key-123").unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains("super-secret"), "{shown}");
        assert_eq!(shown, "WriteKey([redacted])");
    }

    #[test]
    fn api_keys_are_trimmed_redacted_and_never_empty() {
        let key = ApiKey::new(" pk_live_abc ").unwrap();
        assert_eq!(key.expose_secret(), "pk_live_abc");
        assert_eq!(format!("{key:?}"), "ApiKey([redacted])");
        assert!(ApiKey::new("  ").is_none());
    }

    #[test]
    fn rejects_keys_shorter_than_klaviyo_allows() {
        assert_eq!(
            WriteKey::new("short").unwrap_err(),
            WriteKeyError::TooShort(5)
        );
    }

    #[test]
    fn rejects_keys_with_surrounding_whitespace() {
        assert_eq!(
            WriteKey::new(" 0123456789abcdef").unwrap_err(),
            WriteKeyError::SurroundingWhitespace
        );
    }

    #[test]
    fn keys_from_random_bytes_are_long_and_follow_the_bytes() {
        let a = WriteKey::from_random_bytes([1; 32]);
        let b = WriteKey::from_random_bytes([2; 32]);
        assert_eq!(a.expose_secret().len(), 64);
        assert!(WriteKey::new(a.expose_secret()).is_ok());
        assert_ne!(a.expose_secret(), b.expose_secret());
    }
}
