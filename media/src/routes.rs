//! Routes: whom each publisher's audio and whom its video reaches, per publisher.
//!
//! A room's routes change by [`Reach`]es: the complete new set of subscribers of one
//! (publisher, kind). A change costs the size of the sets it names — never all pairs of the
//! room — and tells the worker exactly which subscribers' permission flipped.

use std::collections::{HashMap, HashSet};

/// The two kinds of media parlor forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Microphone audio (Opus).
    Audio,
    /// Camera video (VP8).
    Video,
}

impl Kind {
    /// Both kinds, audio first.
    pub const ALL: [Kind; 2] = [Kind::Audio, Kind::Video];

    /// Lower-case name, as used in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Audio => "audio",
            Kind::Video => "video",
        }
    }
}

/// Who receives one publisher's media of one kind: the complete set (nobody else does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reach {
    /// Whose media.
    pub publisher: String,
    /// Which kind of media.
    pub kind: Kind,
    /// Everyone who receives it now. A peer listed before it joins receives it once it does.
    pub subscribers: Vec<String>,
}

impl Reach {
    /// `publisher`'s `kind` reaches exactly `subscribers`.
    pub fn new<S: Into<String>>(
        publisher: impl Into<String>,
        kind: Kind,
        subscribers: impl IntoIterator<Item = S>,
    ) -> Reach {
        Reach { publisher: publisher.into(), kind, subscribers: subscribers.into_iter().map(Into::into).collect() }
    }
}

/// A subscriber whose permission for one (publisher, kind) changed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Flip {
    /// Who receives (or no longer does).
    pub subscriber: String,
    /// Whether it receives now.
    pub allowed: bool,
}

/// A room's routes, by peer id: per publisher, the receivers of each kind. Anything not in
/// it is denied, so a peer the routes do not name yet receives nothing — a race between a
/// join and a policy update can only ever withhold media, never leak it.
#[derive(Debug, Default)]
pub(crate) struct RouteTable {
    epoch: u64,
    reach: HashMap<String, [HashSet<String>; 2]>,
}

impl RouteTable {
    /// The epoch of the last update applied.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Start applying an update of `epoch`; false (and nothing changes) if it is older than
    /// the one in force.
    pub fn advance(&mut self, epoch: u64) -> bool {
        if epoch < self.epoch {
            return false;
        }
        self.epoch = epoch;
        true
    }

    /// Whether `subscriber` receives `publisher`'s `kind`.
    pub fn allows(&self, subscriber: &str, publisher: &str, kind: Kind) -> bool {
        self.reach.get(publisher).is_some_and(|r| r[kind as usize].contains(subscriber))
    }

    /// Replace one (publisher, kind)'s receivers; returns whose permission flipped, sorted.
    pub fn replace(&mut self, reach: Reach) -> Vec<Flip> {
        let new: HashSet<String> = reach.subscribers.into_iter().collect();
        let sets = self.reach.entry(reach.publisher).or_default();
        let old = std::mem::replace(&mut sets[reach.kind as usize], new);
        let new = &sets[reach.kind as usize];
        let mut flips: Vec<Flip> =
            new.iter().filter(|s| !old.contains(*s)).map(|s| Flip { subscriber: s.clone(), allowed: true }).collect();
        flips.extend(old.into_iter().filter(|s| !new.contains(s)).map(|s| Flip { subscriber: s, allowed: false }));
        flips.sort_unstable();
        flips
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flip(subscriber: &str, allowed: bool) -> Flip {
        Flip { subscriber: subscriber.into(), allowed }
    }

    #[test]
    fn unlisted_is_denied() {
        let mut t = RouteTable::default();
        assert_eq!(t.replace(Reach::new("p", Kind::Audio, ["s"])), vec![flip("s", true)]);
        assert!(t.allows("s", "p", Kind::Audio));
        assert!(!t.allows("s", "p", Kind::Video));
        assert!(!t.allows("p", "s", Kind::Audio));
        assert!(!t.allows("x", "p", Kind::Audio));
    }

    #[test]
    fn a_reach_replaces_the_whole_set_and_names_only_the_flips() {
        let mut t = RouteTable::default();
        t.replace(Reach::new("p", Kind::Video, ["a", "b", "c"]));
        t.replace(Reach::new("q", Kind::Video, ["a"]));
        let flips = t.replace(Reach::new("p", Kind::Video, ["b", "c", "d"]));
        assert_eq!(flips, vec![flip("a", false), flip("d", true)]);
        assert!(!t.allows("a", "p", Kind::Video) && t.allows("d", "p", Kind::Video));
        // Other publishers and kinds are untouched.
        assert!(t.allows("a", "q", Kind::Video));
        assert!(t.replace(Reach::new("p", Kind::Video, ["d", "c", "b"])).is_empty(), "same set, no flips");
        assert_eq!(t.replace(Reach::new("p", Kind::Video, Vec::<String>::new())).len(), 3);
        assert!(!t.allows("b", "p", Kind::Video));
    }

    #[test]
    fn stale_epochs_are_refused() {
        let mut t = RouteTable::default();
        assert!(t.advance(5));
        assert!(!t.advance(4));
        assert_eq!(t.epoch(), 5);
        assert!(t.advance(5), "the same epoch applies again");
        assert!(t.advance(6) && t.epoch() == 6);
    }
}
