//! A per-buyer flood limit: at most N messages and taps per minute. Past it the bot
//! says once that it is slowing down, then ignores the rest of that minute.

use std::time::{Duration, Instant};

use dashmap::DashMap;

const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// The first update over the limit: warn the buyer.
    Warn,
    /// Later updates in the same window: drop silently.
    Drop,
}

#[derive(Debug)]
pub struct FloodGuard {
    per_minute: u32,
    windows: DashMap<i64, (Instant, u32)>,
}

impl FloodGuard {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            windows: DashMap::new(),
        }
    }

    pub fn check(&self, user_id: i64) -> Verdict {
        self.check_at(user_id, Instant::now())
    }

    fn check_at(&self, user_id: i64, now: Instant) -> Verdict {
        let mut entry = self.windows.entry(user_id).or_insert((now, 0));
        let (started, count) = *entry;
        if now.duration_since(started) >= WINDOW {
            *entry = (now, 1);
            return Verdict::Allow;
        }
        let count = count.saturating_add(1);
        entry.1 = count;
        if count <= self.per_minute {
            Verdict::Allow
        } else if count == self.per_minute + 1 {
            Verdict::Warn
        } else {
            Verdict::Drop
        }
    }

    /// Forgets windows that ended, so memory follows active buyers only.
    pub fn prune(&self) {
        let now = Instant::now();
        self.windows
            .retain(|_, (started, _)| now.duration_since(*started) < WINDOW);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_once_then_drops_until_the_window_ends() {
        let guard = FloodGuard::new(3);
        let start = Instant::now();
        let verdicts: Vec<_> = (0..6).map(|_| guard.check_at(1, start)).collect();
        assert_eq!(
            verdicts,
            vec![
                Verdict::Allow,
                Verdict::Allow,
                Verdict::Allow,
                Verdict::Warn,
                Verdict::Drop,
                Verdict::Drop
            ]
        );
        assert_eq!(
            guard.check_at(2, start),
            Verdict::Allow,
            "buyers are counted apart"
        );
        assert_eq!(
            guard.check_at(1, start + WINDOW),
            Verdict::Allow,
            "a new minute"
        );
    }
}
