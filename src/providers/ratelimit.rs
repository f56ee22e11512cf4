//! A small async rate limiter shared by the provider clients.
//!
//! Providers publish budgets as "N requests per window, per operation category" and count
//! them with a sliding window on their side. [`RateLimiter`] mirrors that on ours: each
//! category key has its own sliding window (the instants of the grants still inside the
//! window); [`RateLimiter::acquire`] returns at once while the window has room and otherwise
//! sleeps until the oldest grant leaves it. Categories are independent, so a full order-status
//! budget never delays order creation. A key without a configured limit uses the default
//! limit when one is set, and is unlimited otherwise.
//!
//! [`jittered`] spreads a provider's `Retry-After` hint by ±15 % so that several workers do
//! not wake up in the same instant and hit the next window together.
//!
//! Time comes from `tokio::time`, so the limiter follows a paused test clock as well.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

/// A budget: at most `max` grants in any sliding window of length `per`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// Grants allowed inside one window (at least 1).
    pub max: u32,
    /// Length of the sliding window.
    pub per: Duration,
}

impl Limit {
    /// `max` grants per `per`; a `max` of 0 is raised to 1 so the limiter never blocks forever.
    pub fn new(max: u32, per: Duration) -> Self {
        Self {
            max: max.max(1),
            per,
        }
    }

    /// `max` grants per minute.
    pub fn per_minute(max: u32) -> Self {
        Self::new(max, Duration::from_secs(60))
    }
}

struct Inner<K> {
    limits: HashMap<K, Limit>,
    default: Option<Limit>,
    windows: Mutex<HashMap<K, VecDeque<Instant>>>,
}

/// Sliding-window limiter keyed by category. Cheap to clone (shared state).
pub struct RateLimiter<K> {
    inner: Arc<Inner<K>>,
}

impl<K> Clone for RateLimiter<K> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K: fmt::Debug> fmt::Debug for RateLimiter<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("limits", &self.inner.limits)
            .field("default", &self.inner.default)
            .finish()
    }
}

impl<K: Eq + Hash + Clone> RateLimiter<K> {
    /// A limiter with one limit per category; categories not listed are unlimited.
    pub fn new(limits: impl IntoIterator<Item = (K, Limit)>) -> Self {
        Self::with_default(limits, None)
    }

    /// Like [`RateLimiter::new`], with `default` for every category not listed.
    pub fn with_default(
        limits: impl IntoIterator<Item = (K, Limit)>,
        default: Option<Limit>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                limits: limits.into_iter().collect(),
                default,
                windows: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The limit that applies to `category`, if any.
    pub fn limit_of(&self, category: &K) -> Option<Limit> {
        self.inner
            .limits
            .get(category)
            .copied()
            .or(self.inner.default)
    }

    /// Waits until `category` has room in its window, then records one grant.
    pub async fn acquire(&self, category: K) {
        let Some(limit) = self.limit_of(&category) else {
            return;
        };
        loop {
            let wait = match self.try_acquire_at(&category, limit, Instant::now()) {
                None => return,
                Some(wait) => wait,
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Records a grant without waiting: `None` when there was room, otherwise how long
    /// until there is (nothing recorded then). For callers that tell a person to wait
    /// rather than hold them.
    pub fn try_acquire(&self, category: K) -> Option<Duration> {
        let limit = self.limit_of(&category)?;
        self.try_acquire_at(&category, limit, Instant::now())
    }

    /// Records a grant and returns `None` when there is room; otherwise returns how long
    /// to wait before the oldest grant leaves the window.
    fn try_acquire_at(&self, category: &K, limit: Limit, now: Instant) -> Option<Duration> {
        // A poisoned lock only means another task panicked while holding it; the window
        // data (a queue of instants) is still consistent, so keep using it.
        let mut windows = match self.inner.windows.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let window = windows.entry(category.clone()).or_default();
        while let Some(&oldest) = window.front() {
            if now.duration_since(oldest) >= limit.per {
                window.pop_front();
            } else {
                break;
            }
        }
        if window.len() < limit.max as usize {
            window.push_back(now);
            return None;
        }
        let oldest = window.front().copied().unwrap_or(now);
        let wait = (oldest + limit.per).saturating_duration_since(now);
        Some(wait.max(Duration::from_millis(1)))
    }

    /// Grants recorded for `category` inside its current window.
    pub fn in_window(&self, category: &K) -> usize {
        let Some(limit) = self.limit_of(category) else {
            return 0;
        };
        let now = Instant::now();
        let windows = match self.inner.windows.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        windows
            .get(category)
            .map(|w| {
                w.iter()
                    .filter(|t| now.duration_since(**t) < limit.per)
                    .count()
            })
            .unwrap_or(0)
    }
}

/// `retry_after` scaled by a random factor in [0.85, 1.15] (±15 % jitter).
pub fn jittered(retry_after: Duration) -> Duration {
    let factor: f64 = rand::thread_rng().gen_range(0.85..=1.15);
    retry_after.mul_f64(factor)
}

/// A `Retry-After` value in (possibly fractional) seconds; `None` for anything else
/// (an HTTP date, a negative number), so callers fall back to their own backoff.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    use std::str::FromStr;
    let secs = rust_decimal::Decimal::from_str(v.trim()).ok()?;
    if secs.is_sign_negative() {
        return None;
    }
    let millis = (secs * rust_decimal::Decimal::from(1000))
        .trunc()
        .to_string()
        .parse::<u64>()
        .ok()?;
    Some(Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq, Eq, Hash)]
    enum Cat {
        A,
        B,
        C,
    }

    #[tokio::test]
    async fn grants_within_budget_do_not_wait() {
        let limiter = RateLimiter::new([(Cat::A, Limit::new(5, Duration::from_secs(60)))]);
        let start = Instant::now();
        for _ in 0..5 {
            limiter.acquire(Cat::A).await;
        }
        assert!(start.elapsed() < Duration::from_millis(50));
        assert_eq!(limiter.in_window(&Cat::A), 5);
    }

    #[tokio::test]
    async fn over_budget_waits_for_the_window_to_slide() {
        let per = Duration::from_millis(150);
        let limiter = RateLimiter::new([(Cat::A, Limit::new(2, per))]);
        let start = Instant::now();
        limiter.acquire(Cat::A).await;
        limiter.acquire(Cat::A).await;
        assert!(start.elapsed() < Duration::from_millis(50));
        limiter.acquire(Cat::A).await;
        let waited = start.elapsed();
        assert!(
            waited >= per,
            "third grant came after {waited:?}, window is {per:?}"
        );
        assert!(waited < per * 4, "waited far too long: {waited:?}");
    }

    #[tokio::test]
    async fn categories_are_independent() {
        let limiter = RateLimiter::new([
            (Cat::A, Limit::new(1, Duration::from_secs(60))),
            (Cat::B, Limit::new(1, Duration::from_secs(60))),
        ]);
        limiter.acquire(Cat::A).await;
        let start = Instant::now();
        // A is exhausted for a minute; B must still be granted at once.
        limiter.acquire(Cat::B).await;
        assert!(start.elapsed() < Duration::from_millis(50));
        // A blocks: prove it with a timeout instead of waiting a minute.
        let blocked =
            tokio::time::timeout(Duration::from_millis(80), limiter.acquire(Cat::A)).await;
        assert!(blocked.is_err(), "category A should still be exhausted");
    }

    #[tokio::test]
    async fn unlisted_category_uses_default_or_is_unlimited() {
        let unlimited = RateLimiter::new([(Cat::A, Limit::new(1, Duration::from_secs(60)))]);
        for _ in 0..100 {
            unlimited.acquire(Cat::C).await;
        }
        assert_eq!(unlimited.limit_of(&Cat::C), None);

        let defaulted = RateLimiter::with_default(
            Vec::<(Cat, Limit)>::new(),
            Some(Limit::new(1, Duration::from_secs(60))),
        );
        defaulted.acquire(Cat::C).await;
        let blocked =
            tokio::time::timeout(Duration::from_millis(80), defaulted.acquire(Cat::C)).await;
        assert!(
            blocked.is_err(),
            "default limit of 1/min must block the second grant"
        );
    }

    #[tokio::test]
    async fn concurrent_acquirers_never_exceed_the_budget() {
        let per = Duration::from_millis(200);
        let limiter = RateLimiter::new([(Cat::A, Limit::new(3, per))]);
        let start = Instant::now();
        let mut handles = Vec::new();
        for _ in 0..6 {
            let l = limiter.clone();
            handles.push(tokio::spawn(async move {
                l.acquire(Cat::A).await;
                start.elapsed()
            }));
        }
        let mut times = Vec::new();
        for h in handles {
            times.push(h.await.expect("task"));
        }
        times.sort();
        // The first three go at once, the last three only after the window slid.
        assert!(times[2] < Duration::from_millis(50), "{times:?}");
        assert!(times[3] >= per, "{times:?}");
    }

    #[test]
    fn zero_max_is_raised_to_one() {
        assert_eq!(Limit::new(0, Duration::from_secs(1)).max, 1);
        assert_eq!(
            Limit::per_minute(30),
            Limit::new(30, Duration::from_secs(60))
        );
    }

    #[test]
    fn jitter_stays_within_fifteen_percent_and_varies() {
        let base = Duration::from_secs(10);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..500 {
            let j = jittered(base);
            assert!(j >= Duration::from_millis(8_500), "{j:?}");
            assert!(j <= Duration::from_millis(11_500), "{j:?}");
            seen.insert(j.as_millis());
        }
        assert!(
            seen.len() > 10,
            "jitter should vary, got {} distinct values",
            seen.len()
        );
        assert_eq!(jittered(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn retry_after_reads_whole_and_fractional_seconds_only() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(" 0.25 "),
            Some(Duration::from_millis(250))
        );
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT"), None);
    }
}
