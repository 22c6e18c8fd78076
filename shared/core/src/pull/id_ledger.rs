//! The ids the pull has stored for one metric and one UTC day: what lets a re-read store
//! only the events it has not stored before.
//!
//! Each id is kept as a 128-bit fingerprint (the first 16 bytes of its SHA-256), 16 bytes
//! whatever the id's length: a day of a million events is 16 MB in memory and in its object.
//! Two different ids share a fingerprint with a probability of about n² / 2¹²⁹ (n ids in
//! the day): for a million ids, 1.5 × 10⁻²⁷. A shared fingerprint would make the second id
//! look stored; at that probability no account will ever see it.
//!
//! The encoded form is a magic line followed by the fingerprints sorted ascending, 16 bytes
//! each, little endian: a merge of two ledgers (two writers of one day) is a union.

use std::collections::HashSet;

use sha2::{Digest, Sha256};

/// The first bytes of an encoded ledger (its format's name and version).
pub const LEDGER_MAGIC: &[u8] = b"klaviyo-source id ledger v1\n";

/// An id's fingerprint.
pub fn fingerprint(id: &str) -> u128 {
    let digest = Sha256::digest(id.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    u128::from_le_bytes(first)
}

/// The ids stored for one metric and day, as fingerprints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdLedger {
    ids: HashSet<u128>,
}

/// Why bytes are not a ledger.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerDecodeError {
    /// The bytes do not start with [`LEDGER_MAGIC`].
    #[error("not an id ledger (the first bytes are not the ledger's magic line)")]
    NotALedger,
    /// The bytes after the magic line are not whole fingerprints.
    #[error("an id ledger cut short ({0} bytes after its magic line, not a multiple of 16)")]
    CutShort(usize),
}

impl IdLedger {
    /// Whether `id` is stored.
    pub fn contains(&self, id: &str) -> bool {
        self.contains_fingerprint(fingerprint(id))
    }

    /// Records `id` as stored; whether it was new.
    pub fn insert(&mut self, id: &str) -> bool {
        self.insert_fingerprint(fingerprint(id))
    }

    /// Whether the id whose [`fingerprint`] is `print` is stored (for a caller that checks
    /// and records one id in several ledgers: it hashes the id once).
    pub fn contains_fingerprint(&self, print: u128) -> bool {
        self.ids.contains(&print)
    }

    /// Records the id whose [`fingerprint`] is `print` as stored; whether it was new.
    pub fn insert_fingerprint(&mut self, print: u128) -> bool {
        self.ids.insert(print)
    }

    /// How many distinct ids are stored.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no id is stored.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Adds every id of `other` (two writers of one day: neither loses the other's ids).
    pub fn merge(&mut self, other: &IdLedger) {
        self.ids.extend(other.ids.iter().copied());
    }

    /// The ledger's bytes: the magic line, then the sorted fingerprints.
    pub fn encode(&self) -> Vec<u8> {
        let mut sorted: Vec<u128> = self.ids.iter().copied().collect();
        sorted.sort_unstable();
        let mut bytes = Vec::with_capacity(LEDGER_MAGIC.len() + sorted.len() * 16);
        bytes.extend_from_slice(LEDGER_MAGIC);
        for id in sorted {
            bytes.extend_from_slice(&id.to_le_bytes());
        }
        bytes
    }

    /// A ledger from [`IdLedger::encode`]'s bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, LedgerDecodeError> {
        let body = bytes
            .strip_prefix(LEDGER_MAGIC)
            .ok_or(LedgerDecodeError::NotALedger)?;
        if body.len() % 16 != 0 {
            return Err(LedgerDecodeError::CutShort(body.len()));
        }
        let ids = body
            .chunks_exact(16)
            .map(|chunk| {
                let mut bytes = [0u8; 16];
                bytes.copy_from_slice(chunk);
                u128::from_le_bytes(bytes)
            })
            .collect();
        Ok(Self { ids })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_ids_and_counts_each_once() {
        let mut ledger = IdLedger::default();
        assert!(ledger.insert("01JEVT1"));
        assert!(ledger.insert("01JEVT2"));
        assert!(!ledger.insert("01JEVT1"), "a second insert is not new");
        assert!(ledger.contains("01JEVT2"));
        assert!(!ledger.contains("01JEVT3"));
        assert_eq!(ledger.len(), 2);
    }

    #[test]
    fn survives_encoding_and_merges_two_writers() {
        let mut first = IdLedger::default();
        let mut second = IdLedger::default();
        for i in 0..1_000 {
            first.insert(&format!("A{i}"));
            second.insert(&format!("A{}", i + 500));
        }
        let decoded = IdLedger::decode(&first.encode()).unwrap();
        assert_eq!(decoded, first);
        let mut merged = decoded;
        merged.merge(&second);
        assert_eq!(merged.len(), 1_500);
        assert!(merged.contains("A0") && merged.contains("A1499"));
        // The same set encodes to the same bytes, whatever the insertion order.
        let mut reversed = IdLedger::default();
        for i in (0..1_500).rev() {
            reversed.insert(&format!("A{i}"));
        }
        assert_eq!(reversed.encode(), merged.encode());
    }

    #[test]
    fn refuses_bytes_that_are_not_a_whole_ledger() {
        assert_eq!(
            IdLedger::decode(b"{\"ids\": []}"),
            Err(LedgerDecodeError::NotALedger)
        );
        let mut bytes = IdLedger::default().encode();
        bytes.extend_from_slice(&[1, 2, 3]);
        assert_eq!(
            IdLedger::decode(&bytes),
            Err(LedgerDecodeError::CutShort(3))
        );
        assert!(IdLedger::decode(LEDGER_MAGIC).unwrap().is_empty());
    }
}
