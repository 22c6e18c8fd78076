//! The Segment HTTP Tracking API's own write keys. They travel in Basic headers and client
//! code, so they are never the keys that sign Klaviyo webhooks: whoever holds a Segment
//! write key must not be able to forge a signed webhook.

use crate::secret::WriteKey;

/// The write keys a Segment caller may present.
#[derive(Debug, Clone, Default)]
pub struct SegmentWriteKeys {
    keys: Vec<WriteKey>,
}

impl SegmentWriteKeys {
    /// These keys (none: the Segment API refuses every call).
    pub fn new(keys: Vec<WriteKey>) -> Self {
        Self { keys }
    }

    /// Whether no key is configured.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys.
    pub fn keys(&self) -> &[WriteKey] {
        &self.keys
    }

    /// Whether `candidate` equals one of the keys, compared in constant time against every
    /// key, so timing reveals nothing.
    pub fn matches(&self, candidate: &str) -> bool {
        use subtle::ConstantTimeEq;
        self.keys.iter().fold(false, |found, key| {
            found | bool::from(key.expose_secret().as_bytes().ct_eq(candidate.as_bytes()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_only_its_own_keys() {
        let keys = SegmentWriteKeys::new(vec![
            WriteKey::new("segment-write-key-0001").unwrap(),
            WriteKey::new("segment-write-key-0002").unwrap(),
        ]);
        assert!(keys.matches("segment-write-key-0002"));
        assert!(!keys.matches("segment-write-key-000"));
        assert!(!SegmentWriteKeys::default().matches(""));
    }
}
