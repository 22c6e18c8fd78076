//! An in-memory cache of profiles with a time to live. It lives as long as the process, so
//! it survives across warm Lambda invocations; it holds only identity (id, email,
//! external_id), never event data, so a frozen Lambda holds nothing undelivered.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::Profile;

/// Most profiles kept: bounds memory (each entry is well under 1 KB) in a 128 MB function.
pub const MAX_CACHED_PROFILES: usize = 50_000;

/// What the cache knows about an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached {
    /// The profile, as last looked up.
    Found(Profile),
    /// Klaviyo said no such profile.
    Missing,
}

/// Profiles by id, each valid for `ttl` after it was stored.
#[derive(Debug)]
pub struct ProfileCache {
    ttl: Duration,
    entries: HashMap<String, (Instant, Cached)>,
}

impl ProfileCache {
    /// An empty cache whose entries expire after `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: HashMap::new(),
        }
    }

    /// The entry for `id` if it is still fresh at `now`.
    pub fn get(&self, id: &str, now: Instant) -> Option<&Cached> {
        self.entries
            .get(id)
            .filter(|(stored, _)| now.saturating_duration_since(*stored) < self.ttl)
            .map(|(_, cached)| cached)
    }

    /// Stores `entry` for `id` at `now`. When full, expired entries are dropped first, then
    /// the whole cache (simple, and refilling costs one batched call per request).
    pub fn put(&mut self, id: String, entry: Cached, now: Instant) {
        if self.entries.len() >= MAX_CACHED_PROFILES && !self.entries.contains_key(&id) {
            let ttl = self.ttl;
            self.entries
                .retain(|_, (stored, _)| now.saturating_duration_since(*stored) < ttl);
            if self.entries.len() >= MAX_CACHED_PROFILES {
                self.entries.clear();
            }
        }
        self.entries.insert(id, (now, entry));
    }

    /// Entries held, fresh or not.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(id: &str) -> Profile {
        Profile {
            id: id.into(),
            email: None,
            external_id: Some("u".into()),
            phone_number: None,
        }
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let start = Instant::now();
        let mut cache = ProfileCache::new(Duration::from_secs(60));
        cache.put("a".into(), Cached::Found(profile("a")), start);
        cache.put("b".into(), Cached::Missing, start);
        assert_eq!(
            cache.get("a", start + Duration::from_secs(59)),
            Some(&Cached::Found(profile("a")))
        );
        assert_eq!(
            cache.get("b", start + Duration::from_secs(59)),
            Some(&Cached::Missing)
        );
        assert_eq!(cache.get("a", start + Duration::from_secs(60)), None);
        assert_eq!(cache.get("c", start), None);
    }

    #[test]
    fn stays_bounded() {
        let start = Instant::now();
        let mut cache = ProfileCache::new(Duration::from_secs(60));
        for i in 0..(MAX_CACHED_PROFILES + 10) {
            cache.put(i.to_string(), Cached::Missing, start);
        }
        // Full of fresh entries at the 50,001st: nothing has expired, so the cache starts
        // over with that one; the nine after it join it.
        assert_eq!(cache.len(), 10);
        assert!(cache.get(&MAX_CACHED_PROFILES.to_string(), start).is_some());
        assert!(
            cache
                .get(&(MAX_CACHED_PROFILES + 9).to_string(), start)
                .is_some()
        );
        assert!(cache.get("0", start).is_none());
        assert!(
            cache
                .get(&(MAX_CACHED_PROFILES - 1).to_string(), start)
                .is_none()
        );
    }
}
