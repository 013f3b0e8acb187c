//! A token bucket, for the per-connection message limit and the binary's per-address lookup
//! limit.

use tokio::time::Instant;

/// `rate` tokens a second, holding at most `burst`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    last: Instant,
    rate: f64,
    burst: f64,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn full(rate: f64, burst: f64, now: Instant) -> Self {
        TokenBucket { tokens: burst, last: now, rate, burst }
    }

    /// Add what has dripped in since the last call; whether a whole token is there now.
    pub fn refill(&mut self, now: Instant) -> bool {
        self.tokens =
            (self.tokens + now.saturating_duration_since(self.last).as_secs_f64() * self.rate).min(self.burst);
        self.last = now;
        self.tokens >= 1.0
    }

    /// Spend one token; call after [`TokenBucket::refill`] said there is one.
    pub fn spend(&mut self) {
        self.tokens -= 1.0;
    }

    /// Refill, then spend a token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let ok = self.refill(now);
        if ok {
            self.spend();
        }
        ok
    }

    /// Whether the bucket would be full again at `now` (nothing to remember about it).
    pub fn full_by(&self, now: Instant) -> bool {
        self.tokens + now.saturating_duration_since(self.last).as_secs_f64() * self.rate >= self.burst
    }

    /// Tokens a second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// The most it holds.
    pub fn burst(&self) -> f64 {
        self.burst
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn spends_the_burst_then_drips() {
        let t0 = Instant::now();
        let mut b = TokenBucket::full(2.0, 3.0, t0);
        assert!(b.try_take(t0) && b.try_take(t0) && b.try_take(t0));
        assert!(!b.try_take(t0), "the burst is spent");
        assert!(!b.full_by(t0));
        assert!(b.try_take(t0 + Duration::from_millis(500)), "2 a second: one after 0.5 s");
        assert!(!b.try_take(t0 + Duration::from_millis(600)));
        assert!(b.full_by(t0 + Duration::from_secs(10)));
        // Never more than the burst, however long it waits.
        let later = t0 + Duration::from_secs(100);
        assert!(b.try_take(later) && b.try_take(later) && b.try_take(later) && !b.try_take(later));
    }
}
