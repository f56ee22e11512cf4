//! The FazerCards catalog cache: one entry per catalog request (a category list, one
//! category's offers, the Steam rates, the whole Steam-gifts list…), kept for the
//! configured TTL. The seed asks for exactly this ("cache catalog data locally, 5–15 min,
//! instead of refetching per order").
//!
//! Two ways to read an entry:
//! - [`Freshness::Browse`]: after the first fetch browsing never waits on FazerCards: an
//!   expired entry is served as it is and refreshed in the background (one refresh per
//!   entry at a time; a failed refresh keeps the old value and is tried again next time).
//! - [`Freshness::Price`]: quotes need a current price, so an expired entry is refetched
//!   before answering, and an error is returned rather than an old price.
//!
//! Errors are never cached.

use std::any::Any;
use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Freshness {
    Browse,
    Price,
}

type Stored = Arc<dyn Any + Send + Sync>;

struct Entry {
    value: Stored,
    fetched_at: Instant,
    refreshing: bool,
}

pub(crate) struct CatalogCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

enum Plan<T> {
    Hit(Arc<T>),
    /// Expired, served anyway; `true` when this caller starts the refresh.
    Stale(Arc<T>, bool),
    Fetch,
}

impl CatalogCache {
    pub(crate) fn new(ttl: Duration) -> Arc<Self> {
        Arc::new(Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        })
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock leaves a map that is still consistent.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn store<T: Send + Sync + 'static>(&self, key: &str, value: Arc<T>) {
        self.entries().insert(
            key.to_owned(),
            Entry {
                value,
                fetched_at: Instant::now(),
                refreshing: false,
            },
        );
    }

    /// Drops one entry (e.g. a gift-card listing after an out-of-stock answer).
    pub(crate) fn invalidate(&self, key: &str) {
        self.entries().remove(key);
    }

    /// The cached value of `key`, fetched with `fetch` when missing (or expired, see
    /// [`Freshness`]).
    pub(crate) async fn get<T, E, F, Fut>(
        self: &Arc<Self>,
        key: &str,
        freshness: Freshness,
        fetch: F,
    ) -> Result<Arc<T>, E>
    where
        T: Send + Sync + 'static,
        E: Display + Send + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let plan = {
            let mut entries = self.entries();
            match entries.get_mut(key) {
                Some(entry) => match Arc::clone(&entry.value).downcast::<T>() {
                    Ok(value) if entry.fetched_at.elapsed() < self.ttl => Plan::Hit(value),
                    Ok(value) if freshness == Freshness::Browse => {
                        let start = !entry.refreshing;
                        entry.refreshing = true;
                        Plan::Stale(value, start)
                    }
                    _ => Plan::Fetch,
                },
                None => Plan::Fetch,
            }
        };
        match plan {
            Plan::Hit(value) => Ok(value),
            Plan::Stale(value, start) => {
                if start {
                    self.refresh_in_background(key, fetch());
                }
                Ok(value)
            }
            Plan::Fetch => {
                let value = Arc::new(fetch().await?);
                self.store(key, Arc::clone(&value));
                Ok(value)
            }
        }
    }

    fn refresh_in_background<T, E, Fut>(self: &Arc<Self>, key: &str, fetching: Fut)
    where
        T: Send + Sync + 'static,
        E: Display + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let cache = Arc::clone(self);
        let key = key.to_owned();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            cache.refresh_failed(&key);
            return;
        };
        runtime.spawn(async move {
            match fetching.await {
                Ok(value) => cache.store(&key, Arc::new(value)),
                Err(error) => {
                    tracing::warn!(key = %key, %error, "FazerCards catalog refresh failed; serving the cached copy");
                    cache.refresh_failed(&key);
                }
            }
        });
    }

    fn refresh_failed(&self, key: &str) {
        if let Some(entry) = self.entries().get_mut(key) {
            entry.refreshing = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    async fn counted(
        cache: &Arc<CatalogCache>,
        calls: &Arc<AtomicU32>,
        freshness: Freshness,
        fail: bool,
    ) -> Result<Arc<u32>, String> {
        let calls = Arc::clone(calls);
        cache
            .get("k", freshness, move || async move {
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                if fail {
                    Err(format!("failure {n}"))
                } else {
                    Ok(n)
                }
            })
            .await
    }

    #[tokio::test]
    async fn hit_within_ttl_and_stale_served_while_refreshing() {
        let cache = CatalogCache::new(Duration::from_millis(40));
        let calls = Arc::new(AtomicU32::new(0));
        assert_eq!(
            *counted(&cache, &calls, Freshness::Browse, false)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            *counted(&cache, &calls, Freshness::Browse, false)
                .await
                .unwrap(),
            1
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(60)).await;
        // Expired: the old value at once, one refresh behind it.
        assert_eq!(
            *counted(&cache, &calls, Freshness::Browse, false)
                .await
                .unwrap(),
            1
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(
            *counted(&cache, &calls, Freshness::Browse, false)
                .await
                .unwrap(),
            2
        );
    }

    #[tokio::test]
    async fn price_reads_refetch_and_errors_are_not_cached() {
        let cache = CatalogCache::new(Duration::from_millis(20));
        let calls = Arc::new(AtomicU32::new(0));
        assert!(
            counted(&cache, &calls, Freshness::Price, true)
                .await
                .is_err()
        );
        assert_eq!(
            *counted(&cache, &calls, Freshness::Price, false)
                .await
                .unwrap(),
            2
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
        // An expired price is fetched again, and a failure is not papered over.
        assert!(
            counted(&cache, &calls, Freshness::Price, true)
                .await
                .is_err()
        );
        // Browsing still gets the old value after the failed refetch.
        assert_eq!(
            *counted(&cache, &calls, Freshness::Browse, true)
                .await
                .unwrap(),
            2
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            4,
            "one background refresh, failed"
        );
        cache.invalidate("k");
        assert_eq!(
            *counted(&cache, &calls, Freshness::Browse, false)
                .await
                .unwrap(),
            5
        );
    }
}
