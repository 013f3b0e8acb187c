//! The spotlight: eliminated players on stage for `spotlight_seconds` each, everyone seeing
//! them fall, then back to the audience; the winners at game over, until the lobby.
//!
//! At most `slots` stand in it at once (the stage's `max_on_stage`), so a red light that takes
//! out forty players forwards four extra cameras to everyone, not forty: the rest wait their
//! turn in the order they went out, each turn starting when a place frees up.

use std::collections::VecDeque;

use crate::game::{Id, Millis};

/// Who is in the spotlight and who waits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spotlight {
    slots: usize,
    /// In the spotlight, and until when (none: until cleared).
    lit: Vec<(Id, Option<Millis>)>,
    waiting: VecDeque<Id>,
}

impl Spotlight {
    /// At most `slots` at once.
    pub fn new(slots: usize) -> Spotlight {
        Spotlight { slots: slots.max(1), ..Spotlight::default() }
    }

    /// Whether `id` is in the spotlight.
    pub fn is_lit(&self, id: &str) -> bool {
        self.lit.iter().any(|(l, _)| l == id)
    }

    /// Who is in it.
    pub fn lit(&self) -> impl Iterator<Item = &Id> + '_ {
        self.lit.iter().map(|(id, _)| id)
    }

    /// When the next turn ends.
    pub fn next_end(&self) -> Option<Millis> {
        self.lit.iter().filter_map(|(_, until)| *until).min()
    }

    /// `id` steps in for `length` from `now`, or waits for a place. Returns who stepped in.
    pub fn push(&mut self, now: Millis, id: &str, length: Millis) -> Vec<Id> {
        if length == 0 || self.is_lit(id) || self.waiting.iter().any(|w| w == id) {
            return Vec::new();
        }
        self.waiting.push_back(id.to_owned());
        self.fill(now, length)
    }

    /// Turns over by `now` end and the waiting step in. Returns whose place changed.
    pub fn expire(&mut self, now: Millis, length: Millis) -> Vec<Id> {
        let mut changed: Vec<Id> = Vec::new();
        self.lit.retain(|(id, until)| {
            let over = until.is_some_and(|u| u <= now);
            if over {
                changed.push(id.clone());
            }
            !over
        });
        changed.extend(self.fill(now, length));
        changed
    }

    fn fill(&mut self, now: Millis, length: Millis) -> Vec<Id> {
        let mut stepped = Vec::new();
        while self.lit.len() < self.slots {
            let Some(id) = self.waiting.pop_front() else { break };
            self.lit.push((id.clone(), Some(now + length)));
            stepped.push(id);
        }
        stepped
    }

    /// `id` left the room: out of the spotlight and the queue.
    pub fn remove(&mut self, id: &str) {
        self.lit.retain(|(l, _)| l != id);
        self.waiting.retain(|w| w != id);
    }

    /// Only `ids` (at most `slots`), until cleared. Returns everyone whose place changed.
    pub fn hold(&mut self, ids: &[Id]) -> Vec<Id> {
        let before: Vec<Id> = self.lit().cloned().collect();
        self.waiting.clear();
        self.lit = ids.iter().take(self.slots).map(|id| (id.clone(), None)).collect();
        let mut changed: Vec<Id> = before.iter().filter(|b| !self.is_lit(b)).cloned().collect();
        changed.extend(self.lit().filter(|l| !before.contains(l)).cloned());
        changed
    }

    /// Nobody. Returns who was in it.
    pub fn clear(&mut self) -> Vec<Id> {
        self.waiting.clear();
        self.lit.drain(..).map(|(id, _)| id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_queue_and_end() {
        let mut s = Spotlight::new(2);
        assert_eq!(s.push(0, "a", 3_000), ["a"]);
        assert_eq!(s.push(100, "b", 3_000), ["b"]);
        assert!(s.push(200, "c", 3_000).is_empty(), "full: c waits");
        assert!(s.push(200, "c", 3_000).is_empty() && s.waiting.len() == 1, "once");
        assert_eq!(s.next_end(), Some(3_000));
        assert!(s.expire(2_999, 3_000).is_empty());
        assert_eq!(s.expire(3_000, 3_000), ["a", "c"], "a's turn ends, c's begins");
        assert!(s.is_lit("c") && !s.is_lit("a"));
        assert_eq!(s.next_end(), Some(3_100));
        s.remove("b");
        assert_eq!(s.lit().collect::<Vec<_>>(), ["c"]);
        assert!(s.push(0, "z", 0).is_empty(), "no spotlight at length 0");
    }

    #[test]
    fn winners_hold_it_until_cleared() {
        let mut s = Spotlight::new(2);
        s.push(0, "a", 3_000);
        s.push(0, "b", 3_000);
        s.push(0, "c", 3_000);
        let mut changed = s.hold(&["b".into(), "w".into()]);
        changed.sort();
        assert_eq!(changed, ["a", "w"]);
        assert_eq!(s.next_end(), None);
        assert!(s.expire(1_000_000, 3_000).is_empty(), "c no longer waits");
        assert_eq!(s.clear(), ["b", "w"]);
    }
}
