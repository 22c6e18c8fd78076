//! Resolving the profiles of one request: cache first, then as few Klaviyo calls as the API
//! allows (ids batched by 100), all inside a time budget so a slow Klaviyo never holds up
//! ingestion; ids that could not be looked up in time come back unresolved.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use source_core::identity::profile_cache::{Cached, ProfileCache};
use source_core::identity::profiles_response::MAX_PROFILES_PER_PAGE;
use source_core::identity::resolution::{Resolution, ResolutionStats};
use source_core::identity::{LookupError, ProfileDirectory};

/// Resolves profile ids through a cache and a directory.
pub struct IdentityResolver {
    directory: Arc<dyn ProfileDirectory>,
    cache: Mutex<ProfileCache>,
    budget: Duration,
}

impl IdentityResolver {
    /// A resolver over `directory`, caching for `ttl`, spending at most `budget` per request.
    pub fn new(directory: Arc<dyn ProfileDirectory>, ttl: Duration, budget: Duration) -> Self {
        Self {
            directory,
            cache: Mutex::new(ProfileCache::new(ttl)),
            budget,
        }
    }

    /// Resolves each distinct id of `ids`.
    /// Lookups stop at the resolver's budget or at `not_after`, whichever comes first.
    pub async fn resolve(
        &self,
        ids: &[&str],
        not_after: tokio::time::Instant,
    ) -> (HashMap<String, Resolution>, ResolutionStats) {
        let mut stats = ResolutionStats::default();
        let mut resolved = HashMap::new();
        let mut wanted = Vec::new();
        {
            let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            let now = std::time::Instant::now();
            for id in ids.iter().copied().collect::<BTreeSet<&str>>() {
                match cache.get(id, now) {
                    Some(Cached::Found(profile)) => {
                        resolved.insert(id.to_owned(), Resolution::Found(profile.clone()));
                        stats.cache_hits += 1;
                    }
                    Some(Cached::Missing) => {
                        resolved.insert(id.to_owned(), Resolution::Missing);
                        stats.cache_hits += 1;
                    }
                    None => wanted.push(id.to_owned()),
                }
            }
        }
        let deadline = (tokio::time::Instant::now() + self.budget).min(not_after);
        for chunk in wanted.chunks(MAX_PROFILES_PER_PAGE) {
            stats.lookups += 1;
            let answer = tokio::time::timeout_at(deadline, self.directory.lookup(chunk))
                .await
                .unwrap_or(Err(LookupError::Timeout));
            match answer {
                Ok(mut found) => {
                    let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
                    let now = std::time::Instant::now();
                    for id in chunk {
                        let resolution = match found.remove(id) {
                            Some(profile) => {
                                cache.put(id.clone(), Cached::Found(profile.clone()), now);
                                Resolution::Found(profile)
                            }
                            None => {
                                cache.put(id.clone(), Cached::Missing, now);
                                Resolution::Missing
                            }
                        };
                        resolved.insert(id.clone(), resolution);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, ids = chunk.len(), "profile lookup failed; identity falls back to the profile id");
                    for id in chunk {
                        resolved.insert(id.clone(), Resolution::Unresolved);
                        stats.unresolved += 1;
                    }
                }
            }
        }
        (resolved, stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn far() -> tokio::time::Instant {
        tokio::time::Instant::now() + Duration::from_secs(3600)
    }
    use source_core::identity::{LookupFuture, Profile};
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct CountingDirectory {
        calls: AtomicUsize,
        largest_call: AtomicUsize,
        fail: bool,
        delay: Duration,
    }

    impl CountingDirectory {
        fn new() -> Self {
            Self {
                calls: AtomicUsize::new(0),
                largest_call: AtomicUsize::new(0),
                fail: false,
                delay: Duration::ZERO,
            }
        }
    }

    impl ProfileDirectory for CountingDirectory {
        fn lookup<'a>(&'a self, ids: &'a [String]) -> LookupFuture<'a> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.largest_call.fetch_max(ids.len(), Ordering::SeqCst);
            Box::pin(async move {
                tokio::time::sleep(self.delay).await;
                if self.fail {
                    return Err(LookupError::Status(503));
                }
                Ok(ids
                    .iter()
                    .filter(|id| !id.starts_with("gone"))
                    .map(|id| {
                        (
                            id.clone(),
                            Profile {
                                id: id.clone(),
                                email: Some(format!("{id}@example.com")),
                                external_id: None,
                                phone_number: None,
                            },
                        )
                    })
                    .collect())
            })
        }
    }

    fn resolver(directory: Arc<CountingDirectory>) -> IdentityResolver {
        IdentityResolver::new(
            directory,
            Duration::from_secs(60),
            Duration::from_millis(500),
        )
    }

    #[tokio::test]
    async fn batches_ids_by_one_hundred_and_deduplicates() {
        let directory = Arc::new(CountingDirectory::new());
        let ids: Vec<String> = (0..250).map(|i| format!("p{i}")).collect();
        let mut refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        refs.extend(ids.iter().take(50).map(String::as_str));
        let (resolved, stats) = resolver(directory.clone()).resolve(&refs, far()).await;
        assert_eq!(resolved.len(), 250);
        assert_eq!(directory.calls.load(Ordering::SeqCst), 3);
        assert_eq!(directory.largest_call.load(Ordering::SeqCst), 100);
        assert_eq!(
            stats,
            ResolutionStats {
                cache_hits: 0,
                lookups: 3,
                unresolved: 0
            }
        );
    }

    #[tokio::test]
    async fn answers_repeated_ids_from_the_cache_including_missing_ones() {
        let directory = Arc::new(CountingDirectory::new());
        let resolver = resolver(directory.clone());
        let (first, _) = resolver.resolve(&["p1", "gone1"], far()).await;
        assert_eq!(first["gone1"], Resolution::Missing);
        let (second, stats) = resolver.resolve(&["p1", "gone1"], far()).await;
        assert_eq!(directory.calls.load(Ordering::SeqCst), 1);
        assert_eq!(stats.cache_hits, 2);
        assert_eq!(first, second);
    }

    #[tokio::test]
    async fn a_failing_directory_leaves_ids_unresolved_and_uncached() {
        let directory = Arc::new(CountingDirectory {
            fail: true,
            ..CountingDirectory::new()
        });
        let resolver = resolver(directory.clone());
        let (resolved, stats) = resolver.resolve(&["p1"], far()).await;
        assert_eq!(resolved["p1"], Resolution::Unresolved);
        assert_eq!(stats.unresolved, 1);
        resolver.resolve(&["p1"], far()).await;
        assert_eq!(
            directory.calls.load(Ordering::SeqCst),
            2,
            "failures are not cached"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_directory_is_cut_off_at_the_budget() {
        let directory = Arc::new(CountingDirectory {
            delay: Duration::from_secs(5),
            ..CountingDirectory::new()
        });
        let started = tokio::time::Instant::now();
        let (resolved, _) = resolver(directory).resolve(&["p1"], far()).await;
        assert_eq!(resolved["p1"], Resolution::Unresolved);
        assert!(
            started.elapsed() <= Duration::from_millis(600),
            "{:?}",
            started.elapsed()
        );
    }
}
