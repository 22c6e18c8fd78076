//! Who an email event is about: Klaviyo names the recipient only by its profile id, so the
//! profile's `external_id` (the customer's own id) and email are looked up in Klaviyo.
//!
//! The seed's rule: `userId` is the `external_id`; without one, the email is the
//! `anonymousId`. When the lookup is impossible (no API key, Klaviyo slow or down) the
//! profile id stands in and the row is marked unresolved, so SQL can fix it up later.

pub mod apply;
pub mod profile_cache;
pub mod profiles_response;
pub mod resolution;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

/// The parts of a Klaviyo profile that identity needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Klaviyo's profile id.
    pub id: String,
    /// `attributes.email`.
    pub email: Option<String>,
    /// `attributes.external_id`: the id the customer's own systems use.
    pub external_id: Option<String>,
    /// `attributes.phone_number` (E.164): the identity of a text-message-only profile.
    pub phone_number: Option<String>,
}

/// Why a lookup gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// Klaviyo answered 429 and its `Retry-After` did not fit the time left.
    #[error("Klaviyo rate limit (429), retry after {retry_after_secs:?} s")]
    RateLimited {
        /// `Retry-After`, seconds, if sent.
        retry_after_secs: Option<u64>,
    },
    /// No answer within the lookup's time budget.
    #[error("Klaviyo did not answer in time")]
    Timeout,
    /// Klaviyo answered with an error status.
    #[error("Klaviyo answered HTTP {0}")]
    Status(u16),
    /// The request could not be sent, or the answer not received (connection, TLS).
    #[error("Klaviyo could not be reached: {0}")]
    Unreachable(String),
    /// Klaviyo answered with a document that is not the profiles page expected.
    #[error("Klaviyo's answer is not a profiles page: {0}")]
    Unreadable(String),
    /// `links.next` pointed to another host: not followed, the API key stays with Klaviyo.
    #[error("links.next points to another host; not followed")]
    ForeignLink,
}

/// A boxed lookup future.
pub type LookupFuture<'a> =
    Pin<Box<dyn Future<Output = Result<HashMap<String, Profile>, LookupError>> + Send + 'a>>;

/// Looks profiles up by id (Klaviyo's `GET /api/profiles` in production).
pub trait ProfileDirectory: Send + Sync {
    /// The profiles among `ids` that exist; ids Klaviyo does not know are absent.
    fn lookup<'a>(&'a self, ids: &'a [String]) -> LookupFuture<'a>;
}
