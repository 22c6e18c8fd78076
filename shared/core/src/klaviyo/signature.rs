//! Verifying `Klaviyo-Signature`: the write key check of the webhook route.
//!
//! Klaviyo signs each request with HMAC-SHA256, keyed by the secret the account owner
//! entered, over the raw body bytes followed directly by the `Klaviyo-Timestamp` header
//! value; the signature is lowercase hex. The only way to obtain an [`AuthenticatedBody`]
//! is [`SignatureVerifier::verify`], so code that takes one cannot see unauthenticated data.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::secret::WriteKey;
use crate::time_format::parse_header_timestamp;

/// How many keys may be valid at once: the current one and the one being rotated out.
pub const MAX_ACTIVE_WRITE_KEYS: usize = 2;

/// The signature-related headers of a request, as received.
#[derive(Debug, Clone, Copy, Default)]
pub struct SignatureHeaders<'a> {
    /// `Klaviyo-Signature`.
    pub signature: Option<&'a str>,
    /// `Klaviyo-Timestamp`.
    pub timestamp: Option<&'a str>,
    /// `Klaviyo-Webhook-Id`.
    pub webhook_id: Option<&'a str>,
}

/// A request body that passed the signature check, with the headers it was bound to.
#[derive(Debug)]
pub struct AuthenticatedBody<'a> {
    body: &'a [u8],
    webhook_id: String,
    signed_at: DateTime<Utc>,
}

impl<'a> AuthenticatedBody<'a> {
    /// The raw body bytes.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The `Klaviyo-Webhook-Id` header value.
    pub fn webhook_id(&self) -> &str {
        &self.webhook_id
    }

    /// When Klaviyo signed the request (`Klaviyo-Timestamp`).
    pub fn signed_at(&self) -> DateTime<Utc> {
        self.signed_at
    }
}

/// Why a request was not authenticated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// A signature header is missing or the signature does not match any key. Both cases
    /// are one error on purpose: a caller must not learn which part was wrong.
    #[error("missing or invalid Klaviyo-Signature")]
    InvalidSignature,
    /// `Klaviyo-Timestamp` is present but in no format Klaviyo uses.
    #[error("Klaviyo-Timestamp is neither an HTTP-date, unix seconds nor RFC 3339")]
    MalformedTimestamp,
    /// `Klaviyo-Timestamp` lies outside the freshness window.
    #[error(
        "Klaviyo-Timestamp is {skew_seconds} s away from the receiver's clock; at most {tolerance_seconds} s are accepted"
    )]
    StaleTimestamp {
        /// Signed distance from now, positive in the past.
        skew_seconds: i64,
        /// The configured window.
        tolerance_seconds: u64,
    },
}

/// Why a verifier could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifierConfigError {
    /// No key means every request would be refused.
    #[error("at least one write key is required")]
    NoKeys,
    /// More keys would widen the attack surface for no rotation benefit.
    #[error("at most {MAX_ACTIVE_WRITE_KEYS} write keys may be active, {0} were given")]
    TooManyKeys(usize),
}

/// Checks Klaviyo signatures against the configured write keys.
#[derive(Clone)]
pub struct SignatureVerifier {
    /// One HMAC per key, keyed once here: each request starts from a copy instead of hashing
    /// the padded key again.
    keyed: Vec<Hmac<Sha256>>,
    tolerance: Duration,
}

impl std::fmt::Debug for SignatureVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureVerifier")
            .field("keys", &self.keyed.len())
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

impl SignatureVerifier {
    /// A verifier accepting any of `keys` (one or two) within `tolerance` of the clock.
    pub fn new(keys: Vec<WriteKey>, tolerance: Duration) -> Result<Self, VerifierConfigError> {
        match keys.len() {
            0 => Err(VerifierConfigError::NoKeys),
            n if n > MAX_ACTIVE_WRITE_KEYS => Err(VerifierConfigError::TooManyKeys(n)),
            _ => Ok(Self {
                keyed: keys.iter().map(keyed_mac).collect(),
                tolerance,
            }),
        }
    }

    /// Authenticates `body` with its headers at time `now`.
    pub fn verify<'a>(
        &self,
        headers: SignatureHeaders<'_>,
        body: &'a [u8],
        now: DateTime<Utc>,
    ) -> Result<AuthenticatedBody<'a>, AuthError> {
        let (Some(signature), Some(timestamp), Some(webhook_id)) =
            (headers.signature, headers.timestamp, headers.webhook_id)
        else {
            return Err(AuthError::InvalidSignature);
        };
        let signed_at = parse_header_timestamp(timestamp).ok_or(AuthError::MalformedTimestamp)?;
        self.check_freshness(signed_at, now)?;
        // An HMAC-SHA256 is 32 bytes: a signature of any other length matches no key.
        let mut claimed = [0u8; 32];
        hex::decode_to_slice(signature.trim(), &mut claimed)
            .map_err(|_| AuthError::InvalidSignature)?;
        // `verify_slice` compares in constant time; every key is tried (no early stop) so
        // the time taken does not reveal which key matched.
        let matches_a_key = self
            .keyed
            .iter()
            .map(|keyed| {
                let mut mac = keyed.clone();
                mac.update(body);
                mac.update(timestamp.as_bytes());
                mac.verify_slice(&claimed).is_ok()
            })
            .fold(false, |matched, this_key| matched | this_key);
        if !matches_a_key {
            return Err(AuthError::InvalidSignature);
        }
        Ok(AuthenticatedBody {
            body,
            webhook_id: webhook_id.to_owned(),
            signed_at,
        })
    }

    fn check_freshness(
        &self,
        signed_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        let skew_seconds = (now - signed_at).num_seconds();
        let tolerance_seconds = self.tolerance.as_secs();
        if skew_seconds.unsigned_abs() > tolerance_seconds {
            return Err(AuthError::StaleTimestamp {
                skew_seconds,
                tolerance_seconds,
            });
        }
        Ok(())
    }
}

/// Computes the signature Klaviyo sends for `body` and `timestamp` under `key`, as
/// lowercase hex. Used by tests, the sample sender and benchmarks.
pub fn sign(key: &WriteKey, body: &[u8], timestamp: &str) -> String {
    hex::encode(signature_mac(key, body, timestamp).finalize().into_bytes())
}

/// SHA-256's block size, the length HMAC pads its key to.
const HMAC_SHA256_BLOCK_BYTES: usize = 64;

fn signature_mac(key: &WriteKey, body: &[u8], timestamp: &str) -> Hmac<Sha256> {
    let mut mac = keyed_mac(key);
    mac.update(body);
    mac.update(timestamp.as_bytes());
    mac
}

/// HMAC-SHA256 keyed with `key`, before any message.
fn keyed_mac(key: &WriteKey) -> Hmac<Sha256> {
    // HMAC's key schedule (RFC 2104, section 2): a key longer than the hash's 64-byte block
    // is hashed first, then the key is zero-padded to the block. Doing it here gives a
    // block-sized key, whose constructor cannot fail, instead of a fallible one with an
    // unreachable fallback.
    let raw = key.expose_secret().as_bytes();
    let mut block = [0u8; HMAC_SHA256_BLOCK_BYTES];
    if raw.len() > HMAC_SHA256_BLOCK_BYTES {
        let digest = Sha256::digest(raw);
        block[..digest.len()].copy_from_slice(&digest);
    } else {
        block[..raw.len()].copy_from_slice(raw);
    }
    <Hmac<Sha256> as KeyInit>::new(&block.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_block_sized_key_gives_the_same_mac_as_any_length_key() {
        for length in [16, 63, 64, 65, 100, 300] {
            let text = "k".repeat(length);
            let ours = signature_mac(&WriteKey::new(text.clone()).unwrap(), BODY, TIMESTAMP)
                .finalize()
                .into_bytes();
            let mut reference = <Hmac<Sha256> as Mac>::new_from_slice(text.as_bytes()).unwrap();
            reference.update(BODY);
            reference.update(TIMESTAMP.as_bytes());
            assert_eq!(
                ours,
                reference.finalize().into_bytes(),
                "key of {length} bytes"
            );
        }
    }

    const BODY: &[u8] = br#"{"data":[],"meta":{"klaviyo_webhook_id":"wh"}}"#;
    const TIMESTAMP: &str = "Thu, 04 Jan 2024 18:05:25 GMT";

    fn key(text: &str) -> WriteKey {
        WriteKey::new(text).unwrap()
    }

    /// The freshness window the tests verify with (the endpoint's default, five minutes).
    const TOLERANCE: Duration = Duration::from_secs(300);

    fn now() -> DateTime<Utc> {
        crate::time_format::parse_header_timestamp(TIMESTAMP).unwrap()
    }

    fn verifier(keys: &[&str]) -> SignatureVerifier {
        SignatureVerifier::new(keys.iter().map(|k| key(k)).collect(), TOLERANCE).unwrap()
    }

    fn headers<'a>(signature: &'a str, timestamp: &'a str) -> SignatureHeaders<'a> {
        SignatureHeaders {
            signature: Some(signature),
            timestamp: Some(timestamp),
            webhook_id: Some("wh"),
        }
    }

    #[test]
    fn matches_an_independently_computed_hmac() {
        // Reference from Python: hmac.new(key, body + timestamp, hashlib.sha256).hexdigest()
        assert_eq!(
            sign(&key("0123456789abcdef"), b"body", "1704391525"),
            "e655a451e258db715489d987e75035c5cb6af55529ae39faba11b140249a6cd0"
        );
    }

    #[test]
    fn accepts_a_correct_signature() {
        let signature = sign(&key("current-key-0123456"), BODY, TIMESTAMP);
        let verified = verifier(&["current-key-0123456"])
            .verify(headers(&signature, TIMESTAMP), BODY, now())
            .unwrap();
        assert_eq!(verified.body(), BODY);
        assert_eq!(verified.webhook_id(), "wh");
        assert_eq!(verified.signed_at(), now());
    }

    #[test]
    fn accepts_either_key_during_rotation() {
        let both = verifier(&["current-key-0123456", "previous-key-654321"]);
        for k in ["current-key-0123456", "previous-key-654321"] {
            let signature = sign(&key(k), BODY, TIMESTAMP);
            assert!(
                both.verify(headers(&signature, TIMESTAMP), BODY, now())
                    .is_ok()
            );
        }
    }

    #[test]
    fn rejects_a_key_rotated_out() {
        let signature = sign(&key("previous-key-654321"), BODY, TIMESTAMP);
        let err = verifier(&["current-key-0123456"])
            .verify(headers(&signature, TIMESTAMP), BODY, now())
            .unwrap_err();
        assert_eq!(err, AuthError::InvalidSignature);
    }

    #[test]
    fn rejects_a_tampered_body() {
        let signature = sign(&key("current-key-0123456"), BODY, TIMESTAMP);
        let tampered = br#"{"data":[],"meta":{"klaviyo_webhook_id":"wi"}}"#;
        let err = verifier(&["current-key-0123456"])
            .verify(headers(&signature, TIMESTAMP), tampered, now())
            .unwrap_err();
        assert_eq!(err, AuthError::InvalidSignature);
    }

    #[test]
    fn rejects_a_tampered_timestamp() {
        let signature = sign(&key("current-key-0123456"), BODY, TIMESTAMP);
        let other = "Thu, 04 Jan 2024 18:05:26 GMT";
        let err = verifier(&["current-key-0123456"])
            .verify(headers(&signature, other), BODY, now())
            .unwrap_err();
        assert_eq!(err, AuthError::InvalidSignature);
    }

    #[test]
    fn missing_and_wrong_signatures_are_the_same_error() {
        let v = verifier(&["current-key-0123456"]);
        let missing = SignatureHeaders {
            signature: None,
            ..headers("", TIMESTAMP)
        };
        assert_eq!(
            v.verify(missing, BODY, now()).unwrap_err(),
            AuthError::InvalidSignature
        );
        assert_eq!(
            v.verify(headers("not hex", TIMESTAMP), BODY, now())
                .unwrap_err(),
            AuthError::InvalidSignature
        );
        assert_eq!(
            v.verify(headers("00ff", TIMESTAMP), BODY, now())
                .unwrap_err(),
            AuthError::InvalidSignature
        );
    }

    #[test]
    fn rejects_stale_and_future_timestamps() {
        let v = verifier(&["current-key-0123456"]);
        let signature = sign(&key("current-key-0123456"), BODY, TIMESTAMP);
        let later = now() + chrono::Duration::seconds(301);
        let earlier = now() - chrono::Duration::seconds(301);
        assert!(matches!(
            v.verify(headers(&signature, TIMESTAMP), BODY, later),
            Err(AuthError::StaleTimestamp {
                skew_seconds: 301,
                ..
            })
        ));
        assert!(matches!(
            v.verify(headers(&signature, TIMESTAMP), BODY, earlier),
            Err(AuthError::StaleTimestamp {
                skew_seconds: -301,
                ..
            })
        ));
        let edge = now() + chrono::Duration::seconds(300);
        assert!(v.verify(headers(&signature, TIMESTAMP), BODY, edge).is_ok());
    }

    #[test]
    fn rejects_a_malformed_timestamp() {
        let v = verifier(&["current-key-0123456"]);
        let signature = sign(&key("current-key-0123456"), BODY, "soon");
        assert_eq!(
            v.verify(headers(&signature, "soon"), BODY, now())
                .unwrap_err(),
            AuthError::MalformedTimestamp
        );
    }

    #[test]
    fn accepts_unix_seconds_timestamps() {
        let v = verifier(&["current-key-0123456"]);
        let signature = sign(&key("current-key-0123456"), BODY, "1704391525");
        assert!(
            v.verify(headers(&signature, "1704391525"), BODY, now())
                .is_ok()
        );
    }

    #[test]
    fn refuses_zero_or_three_keys() {
        assert_eq!(
            SignatureVerifier::new(vec![], TOLERANCE).unwrap_err(),
            VerifierConfigError::NoKeys
        );
        let three = vec![
            key("aaaaaaaaaaaaaaaa"),
            key("bbbbbbbbbbbbbbbb"),
            key("cccccccccccccccc"),
        ];
        assert_eq!(
            SignatureVerifier::new(three, TOLERANCE).unwrap_err(),
            VerifierConfigError::TooManyKeys(3)
        );
    }
}
