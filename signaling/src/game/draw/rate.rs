//! A token bucket on the game's own clock (synthetic time in tests), for the drawer's strokes
//! and each guesser's guesses. The connection has its own, coarser limit on all messages.

use crate::game::Millis;

/// `per_second` actions a second, in bursts of at most `burst`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rate {
    per_second: u32,
    burst: u32,
    /// Thousandths of an action.
    tokens: u64,
    topped: Millis,
}

impl Rate {
    /// A full bucket at `now`.
    pub fn new(per_second: u32, burst: u32, now: Millis) -> Rate {
        Rate { per_second, burst, tokens: u64::from(burst) * 1000, topped: now }
    }

    /// Take one action at `now`; false (and nothing taken) when the bucket is empty.
    pub fn take(&mut self, now: Millis) -> bool {
        // `per_second` actions a second is `per_second` thousandths a millisecond.
        let dripped = now.saturating_sub(self.topped).saturating_mul(u64::from(self.per_second));
        self.tokens = self.tokens.saturating_add(dripped).min(u64::from(self.burst) * 1000);
        self.topped = self.topped.max(now);
        if self.tokens < 1000 {
            return false;
        }
        self.tokens -= 1000;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let mut r = Rate::new(2, 3, 1000);
        assert!(r.take(1000) && r.take(1000) && r.take(1000));
        assert!(!r.take(1000));
        assert!(!r.take(1499), "one action a 500 ms");
        assert!(r.take(1500));
        assert!(!r.take(400), "time running backwards adds nothing");
        assert!(r.take(100_000) && r.take(100_000) && r.take(100_000) && !r.take(100_000), "never above the burst");
    }
}
