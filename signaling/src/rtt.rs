//! Round-trip time per connection, from the server's own WebSocket Ping frames (docs/PROTOCOL.md,
//! Transport and `pong`). A browser answers those in its network stack, so page code cannot
//! inflate them; no latency a client reports is ever used.
//!
//! The robust figure is the smallest round trip of the last [`WINDOW_MS`]: a late Pong (a busy
//! phone, a stalled reader) raises nothing, while a path that really got slower shows within
//! the window. The jitter is how far the window's round trips spread.

use std::collections::VecDeque;

use crate::game::{Millis, Rtt};

/// How far back the robust figure looks.
pub const WINDOW_MS: Millis = 10_000;

/// One connection's recent round trips.
#[derive(Debug, Clone, Default)]
pub struct RttTracker {
    /// (when it was measured, round trip in ms), oldest first.
    samples: VecDeque<(Millis, f64)>,
}

impl RttTracker {
    /// No measurement yet.
    pub fn new() -> Self {
        RttTracker::default()
    }

    /// A Pong came back at `now` after `rtt_ms`.
    pub fn observe(&mut self, now: Millis, rtt_ms: f64) {
        if !rtt_ms.is_finite() || rtt_ms < 0.0 {
            return;
        }
        self.samples.push_back((now, rtt_ms));
        // Keep the window, and always the newest sample (a connection silent for a while
        // still has a figure).
        while self.samples.len() > 1 && self.samples.front().is_some_and(|(at, _)| now.saturating_sub(*at) > WINDOW_MS)
        {
            self.samples.pop_front();
        }
    }

    /// The current figure, once anything was measured.
    pub fn current(&self) -> Option<Rtt> {
        let min = self.samples.iter().map(|(_, r)| *r).fold(f64::INFINITY, f64::min);
        let max = self.samples.iter().map(|(_, r)| *r).fold(0.0, f64::max);
        if !min.is_finite() {
            return None;
        }
        let ms = |v: f64| v.round().clamp(0.0, f64::from(u32::MAX)) as u32;
        Some(Rtt { ms: ms(min), jitter_ms: ms(max - min) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_until_measured() {
        assert_eq!(RttTracker::new().current(), None);
        let mut t = RttTracker::new();
        t.observe(0, f64::NAN);
        t.observe(0, -3.0);
        assert_eq!(t.current(), None, "garbage is not a measurement");
    }

    #[test]
    fn the_minimum_of_the_window_and_its_spread() {
        let mut t = RttTracker::new();
        // Every 2 s, as the server pings: a steady 40 ms path with one stalled reply.
        for (i, rtt) in [41.0, 40.2, 180.0, 43.0, 40.6].into_iter().enumerate() {
            t.observe(i as Millis * 2_000, rtt);
        }
        assert_eq!(t.current(), Some(Rtt { ms: 40, jitter_ms: 140 }));
        // The path really gets slower: after the window, the old fast replies no longer count.
        for i in 5..12 {
            t.observe(i * 2_000, 200.0 + i as f64);
        }
        assert_eq!(t.current(), Some(Rtt { ms: 206, jitter_ms: 5 }));
    }

    #[test]
    fn a_lone_old_sample_still_counts() {
        let mut t = RttTracker::new();
        t.observe(0, 25.0);
        t.observe(60_000, 30.0);
        assert_eq!(t.current(), Some(Rtt { ms: 30, jitter_ms: 0 }), "the newest is kept, the stale dropped");
    }
}
