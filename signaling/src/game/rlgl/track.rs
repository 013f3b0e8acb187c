//! The track: each player's distance, the speed cap, the finish and the ranking.
//!
//! The cap is a bucket per player holding at most one second of steps
//! (`max_steps_per_second`), refilled continuously on the room clock: steps beyond it are
//! dropped, never an error, so a phone that bunches its messages loses nothing and a client
//! that claims a thousand taps gains one second's worth. Arithmetic is in thousandths of a
//! step, so it is exact on synthetic time.
//!
//! Players who reach the finish in the same millisecond share a place, as do players left at
//! the same distance when the game ends; the ranking is the finished (in order of arrival),
//! then those still running (furthest first), then those out or gone (furthest first).

use std::collections::BTreeMap;

use super::wire::{Place, Status};
use crate::game::{Id, Millis};

/// One player's run.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Runner {
    distance: u32,
    /// Thousandths of a step that may still be counted.
    bucket: u64,
    /// When the bucket was last refilled.
    refilled_at: Millis,
    status: Status,
    /// For the finished: when and their place.
    finish: Option<(Millis, u32)>,
}

/// What one `move` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moved {
    /// Steps counted (after the cap and the finish).
    pub counted: u32,
    /// The place, if this move reached the finish.
    pub finished: Option<u32>,
}

/// Every player's run in one game.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Track {
    runners: BTreeMap<Id, Runner>,
    /// Players in presence order at the start (the order ties are listed in).
    order: Vec<Id>,
    goal: u32,
    /// Thousandths of a step per ms = steps per second.
    rate: u64,
    finished: u32,
    last_finish: Option<(Millis, u32)>,
}

impl Track {
    /// A race of `players` to `goal` steps at most `max_steps_per_second`, from `now`.
    pub fn new(now: Millis, players: &[Id], goal: u32, max_steps_per_second: u32) -> Track {
        let rate = u64::from(max_steps_per_second);
        let runner =
            Runner { distance: 0, bucket: rate * 1000, refilled_at: now, status: Status::Running, finish: None };
        Track {
            runners: players.iter().map(|id| (id.clone(), runner.clone())).collect(),
            order: players.to_vec(),
            goal,
            rate,
            finished: 0,
            last_finish: None,
        }
    }

    /// Whether `id` plays in this game.
    pub fn plays(&self, id: &str) -> bool {
        self.runners.contains_key(id)
    }

    /// `id`'s status, if they play.
    pub fn status(&self, id: &str) -> Option<Status> {
        self.runners.get(id).map(|r| r.status)
    }

    /// Whether nobody is running any more.
    pub fn all_done(&self) -> bool {
        self.runners.values().all(|r| r.status != Status::Running)
    }

    /// Every player's distance.
    pub fn distances(&self) -> BTreeMap<Id, u32> {
        self.runners.iter().map(|(id, r)| (id.clone(), r.distance)).collect()
    }

    /// `steps` from running player `id` at `now`, capped. Nothing for anyone else.
    pub fn step(&mut self, id: &str, now: Millis, steps: u32) -> Moved {
        let (rate, goal) = (self.rate, self.goal);
        let Some(r) = self.runners.get_mut(id).filter(|r| r.status == Status::Running) else {
            return Moved { counted: 0, finished: None };
        };
        let elapsed = now.saturating_sub(r.refilled_at);
        r.bucket = r.bucket.saturating_add(elapsed.saturating_mul(rate)).min(rate * 1000);
        r.refilled_at = r.refilled_at.max(now);
        let allowed = u32::try_from(r.bucket / 1000).unwrap_or(u32::MAX);
        let counted = steps.min(allowed).min(goal - r.distance);
        r.bucket -= u64::from(counted) * 1000;
        r.distance += counted;
        if r.distance < goal {
            return Moved { counted, finished: None };
        }
        // Same millisecond, same place.
        let rank = match self.last_finish {
            Some((at, rank)) if at == now => rank,
            _ => self.finished + 1,
        };
        self.finished += 1;
        self.last_finish = Some((now, rank));
        r.status = Status::Finished;
        r.finish = Some((now, rank));
        Moved { counted, finished: Some(rank) }
    }

    /// Running player `id` is out (`Out`) or gone (`Left`). Returns whether they were running.
    pub fn stop(&mut self, id: &str, status: Status) -> bool {
        match self.runners.get_mut(id) {
            Some(r) if r.status == Status::Running => {
                r.status = status;
                true
            }
            _ => false,
        }
    }

    /// The ranking now.
    pub fn ranking(&self) -> Vec<Place> {
        let group = |s: Status| match s {
            Status::Finished => 0,
            Status::Running => 1,
            Status::Out | Status::Left => 2,
        };
        let mut lines: Vec<(&Id, &Runner)> =
            self.order.iter().filter_map(|id| Some((id, self.runners.get(id)?))).collect();
        // Stable: ties stay in presence order.
        lines.sort_by_key(|(_, r)| (group(r.status), r.finish.map_or(0, |(at, _)| at), std::cmp::Reverse(r.distance)));
        let mut places: Vec<Place> = Vec::with_capacity(lines.len());
        let mut previous: Option<(u8, Millis, u32)> = None;
        for (i, (id, r)) in lines.into_iter().enumerate() {
            let key = (group(r.status), r.finish.map_or(0, |(at, _)| at), r.distance);
            let rank = match (previous, places.last()) {
                (Some(prev), Some(last)) if prev == key => last.rank,
                _ => i as u32 + 1,
            };
            previous = Some(key);
            places.push(Place { id: id.clone(), rank, distance: r.distance, status: r.status });
        }
        places
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> Vec<Id> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_cap_holds_whatever_a_client_claims() {
        let mut t = Track::new(0, &ids(&["a"]), 1_000, 10);
        // A full bucket: one second's worth at once, not a thousand.
        assert_eq!(t.step("a", 0, 1_000).counted, 10);
        assert_eq!(t.step("a", 0, 5).counted, 0, "empty until time passes");
        // 100 ms refills one step; claims every 100 ms for 10 s count at most 10 a second.
        let mut counted = 0;
        for i in 1..=100 {
            counted += t.step("a", i * 100, u32::MAX).counted;
        }
        assert_eq!(counted, 100);
        assert_eq!(t.distances()["a"], 110);
        // A long pause refills at most one second.
        assert_eq!(t.step("a", 60_000, 50).counted, 10);
    }

    #[test]
    fn the_finish_ranks_and_same_millisecond_ties_share() {
        let mut t = Track::new(0, &ids(&["a", "b", "c", "d"]), 10, 10);
        assert_eq!(t.step("b", 1_000, 10), Moved { counted: 10, finished: Some(1) });
        assert_eq!(t.step("c", 1_500, 10).finished, Some(2));
        assert_eq!(t.step("a", 1_500, 12), Moved { counted: 10, finished: Some(2) }, "a tie at 1.5 s");
        assert_eq!(t.step("a", 2_000, 3).counted, 0, "no steps after the finish");
        assert_eq!(t.step("d", 2_000, 4).counted, 4);
        assert!(!t.all_done());
        let ranking = t.ranking();
        let shown: Vec<(&str, u32, Status)> = ranking.iter().map(|p| (p.id.as_str(), p.rank, p.status)).collect();
        assert_eq!(
            shown,
            [
                ("b", 1, Status::Finished),
                ("a", 2, Status::Finished),
                ("c", 2, Status::Finished),
                ("d", 4, Status::Running)
            ]
        );
    }

    #[test]
    fn out_and_gone_rank_last_by_distance() {
        let mut t = Track::new(0, &ids(&["a", "b", "c", "d", "e"]), 100, 10);
        t.step("a", 0, 5);
        t.step("b", 0, 7);
        t.step("c", 0, 7);
        t.step("d", 0, 9);
        t.step("e", 0, 1);
        assert!(t.stop("d", Status::Out));
        assert!(!t.stop("d", Status::Out), "once");
        assert!(t.stop("e", Status::Left));
        assert_eq!(t.step("d", 5_000, 5).counted, 0, "the out do not run");
        let ranking = t.ranking();
        let shown: Vec<(&str, u32)> = ranking.iter().map(|p| (p.id.as_str(), p.rank)).collect();
        assert_eq!(shown, [("b", 1), ("c", 1), ("a", 3), ("d", 4), ("e", 5)]);
        t.stop("a", Status::Out);
        t.stop("b", Status::Out);
        t.stop("c", Status::Out);
        assert!(t.all_done());
    }
}
