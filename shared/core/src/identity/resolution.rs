//! What resolving a profile id gave: the rows' identity rule reads it, the resolver
//! (an I/O step) produces it.

use super::Profile;

/// What is known about one profile id after resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Klaviyo returned the profile (now or from the cache).
    Found(Profile),
    /// Klaviyo has no such profile.
    Missing,
    /// Not known: no lookup configured, or Klaviyo failed or was too slow.
    Unresolved,
}

/// Counts of one resolution, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResolutionStats {
    /// Ids answered from the cache.
    pub cache_hits: usize,
    /// Calls made to the directory.
    pub lookups: usize,
    /// Ids left unresolved.
    pub unresolved: usize,
}
