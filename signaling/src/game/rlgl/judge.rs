//! Judging a `move` during red, fairly whatever the player's latency (docs/PROTOCOL.md,
//! "Judging"). The server sent red at T. A move the player made before *their* screen turned
//! red left them at most half a round trip after T and reaches the server by T + RTT; so a
//! move counts if it arrives by T + grace + RTT_i, with RTT_i the server's own measurement of
//! that connection (its WebSocket Ping frames, never a figure the client sends), capped. A
//! seat not measured yet is allowed the cap: it costs an honest slow phone nothing, and a
//! client could reach the cap anyway by answering Pings late.

use super::wire::{Judgment, Rules};
use crate::game::{Millis, Rtt};

/// What a move arriving during red comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Made before the player saw red: its steps count.
    Counts,
    /// Made after: the player is out.
    Out(Judgment),
}

/// Judge a move that arrived at `arrived_at` while the light has been red since `red_at`, from
/// a seat whose measured round trip is `rtt`.
pub fn judge(rules: &Rules, red_at: Millis, arrived_at: Millis, rtt: Option<Rtt>) -> Verdict {
    let rtt_ms = rtt.map(|r| r.ms);
    let allowance_ms = rtt_ms.map_or(rules.max_allowance_ms, |ms| ms.min(rules.max_allowance_ms));
    let deadline = red_at + Millis::from(rules.grace_ms) + Millis::from(allowance_ms);
    if arrived_at <= deadline {
        Verdict::Counts
    } else {
        Verdict::Out(Judgment { red_at, arrived_at, rtt_ms, grace_ms: rules.grace_ms, allowance_ms, deadline })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtt(ms: u32) -> Option<Rtt> {
        Some(Rtt { ms, jitter_ms: 0 })
    }

    #[test]
    fn the_deadline_is_red_plus_grace_plus_the_capped_round_trip() {
        let rules = Rules::default(); // grace 200, cap 500
        let t = 10_000;
        assert_eq!(judge(&rules, t, t + 220, rtt(20)), Verdict::Counts);
        let Verdict::Out(j) = judge(&rules, t, t + 221, rtt(20)) else { panic!("one ms late") };
        assert_eq!((j.deadline, j.allowance_ms, j.rtt_ms), (t + 220, 20, Some(20)));
        // The cap: a round trip of 3 s is allowed 500 ms.
        assert_eq!(judge(&rules, t, t + 700, rtt(3_000)), Verdict::Counts);
        assert!(matches!(judge(&rules, t, t + 701, rtt(3_000)), Verdict::Out(j) if j.allowance_ms == 500));
        // Not measured yet: the cap.
        assert_eq!(judge(&rules, t, t + 700, None), Verdict::Counts);
        assert!(matches!(judge(&rules, t, t + 701, None), Verdict::Out(j) if j.rtt_ms.is_none()));
    }
}
