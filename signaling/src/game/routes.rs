//! Routing, per publisher: whom each publisher's audio and whom its video reaches. "The host
//! reaches all 99" is one set of 99, and a change is told to the media layer as the new sets of
//! the publishers it touched — never as an all-pairs list.

use std::collections::{BTreeMap, BTreeSet};

use super::Id;

/// The kinds of media a route covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MediaKind {
    /// Microphone.
    Audio,
    /// Camera.
    Video,
}

impl MediaKind {
    /// Both kinds, audio first.
    pub const ALL: [MediaKind; 2] = [MediaKind::Audio, MediaKind::Video];
}

/// One allowed (subscriber, publisher, kind): the pairwise view, for tests and tables.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Route {
    /// Who receives.
    pub subscriber: Id,
    /// Whose media.
    pub publisher: Id,
    /// Which kind.
    pub kind: MediaKind,
}

/// Who receives one publisher.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    /// Receivers of the publisher's audio.
    pub audio: BTreeSet<Id>,
    /// Receivers of the publisher's video.
    pub video: BTreeSet<Id>,
}

impl Reach {
    /// The receivers of `kind`.
    pub fn get(&self, kind: MediaKind) -> &BTreeSet<Id> {
        match kind {
            MediaKind::Audio => &self.audio,
            MediaKind::Video => &self.video,
        }
    }

    fn get_mut(&mut self, kind: MediaKind) -> &mut BTreeSet<Id> {
        match kind {
            MediaKind::Audio => &mut self.audio,
            MediaKind::Video => &mut self.video,
        }
    }

    fn is_empty(&self) -> bool {
        self.audio.is_empty() && self.video.is_empty()
    }
}

/// A (publisher, kind) whose receivers changed, with the complete new set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteChange {
    /// Whose media.
    pub publisher: Id,
    /// Which kind.
    pub kind: MediaKind,
    /// Everyone who receives it now (nobody else does).
    pub subscribers: Vec<Id>,
}

/// The routing policy's answer: per publisher, its [`Reach`]. Anything not listed is denied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes {
    reach: BTreeMap<Id, Reach>,
}

impl Routes {
    /// Nobody receives anybody.
    pub fn new() -> Routes {
        Routes::default()
    }

    /// Let `subscriber` receive `publisher`'s `kind` (never themselves).
    pub fn allow(&mut self, subscriber: &str, publisher: &str, kind: MediaKind) {
        if subscriber != publisher {
            self.reach.entry(publisher.to_owned()).or_default().get_mut(kind).insert(subscriber.to_owned());
        }
    }

    /// Let everyone of `subscribers` but the publisher receive `publisher`'s `kind`.
    pub fn allow_all<'a>(&mut self, subscribers: impl IntoIterator<Item = &'a Id>, publisher: &str, kind: MediaKind) {
        let set = self.reach.entry(publisher.to_owned()).or_default().get_mut(kind);
        set.extend(subscribers.into_iter().filter(|s| s.as_str() != publisher).cloned());
    }

    /// Whether `subscriber` receives `publisher`'s `kind`.
    pub fn allows(&self, subscriber: &str, publisher: &str, kind: MediaKind) -> bool {
        self.reach.get(publisher).is_some_and(|r| r.get(kind).contains(subscriber))
    }

    /// `publisher`'s reach (empty if it reaches nobody).
    pub fn reach(&self, publisher: &str) -> Option<&Reach> {
        self.reach.get(publisher)
    }

    /// Who receives `publisher`'s `kind`, sorted.
    pub fn audience(&self, publisher: &str, kind: MediaKind) -> Vec<Id> {
        self.reach.get(publisher).map(|r| r.get(kind).iter().cloned().collect()).unwrap_or_default()
    }

    /// Every allowed (subscriber, publisher, kind), sorted.
    pub fn pairs(&self) -> Vec<Route> {
        let mut out = Vec::new();
        for (publisher, reach) in &self.reach {
            for kind in MediaKind::ALL {
                for subscriber in reach.get(kind) {
                    out.push(Route { subscriber: subscriber.clone(), publisher: publisher.clone(), kind });
                }
            }
        }
        out.sort();
        out
    }

    /// Number of allowed pairs.
    pub fn len(&self) -> usize {
        self.reach.values().map(|r| r.audio.len() + r.video.len()).sum()
    }

    /// Whether nothing is allowed.
    pub fn is_empty(&self) -> bool {
        self.reach.values().all(Reach::is_empty)
    }

    /// What differs from `old`: the new receivers of each (publisher, kind) whose set changed,
    /// an empty set where a publisher now reaches nobody. Costs the size of both, never pairs
    /// × pairs.
    pub fn changes_from(&self, old: &Routes) -> Vec<RouteChange> {
        let empty = Reach::default();
        let mut out = Vec::new();
        let publishers: BTreeSet<&Id> = self.reach.keys().chain(old.reach.keys()).collect();
        for publisher in publishers {
            let new = self.reach.get(publisher).unwrap_or(&empty);
            let was = old.reach.get(publisher).unwrap_or(&empty);
            for kind in MediaKind::ALL {
                if new.get(kind) != was.get(kind) {
                    out.push(RouteChange {
                        publisher: publisher.clone(),
                        kind,
                        subscribers: new.get(kind).iter().cloned().collect(),
                    });
                }
            }
        }
        out
    }

    /// The subscribers whose reception changes when `old` becomes `self`, given the changes
    /// between them.
    pub fn touched(old: &Routes, changes: &[RouteChange]) -> BTreeSet<Id> {
        let mut out = BTreeSet::new();
        for change in changes {
            let new: BTreeSet<&Id> = change.subscribers.iter().collect();
            let was: BTreeSet<&Id> =
                old.reach.get(&change.publisher).map(|r| r.get(change.kind).iter().collect()).unwrap_or_default();
            out.extend(new.symmetric_difference(&was).map(|s| (*s).clone()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<Id> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn nobody_receives_themselves_and_unlisted_is_denied() {
        let mut r = Routes::new();
        r.allow("a", "a", MediaKind::Audio);
        assert!(r.is_empty());
        let everyone = ids(&["a", "b", "c"]);
        r.allow_all(&everyone, "a", MediaKind::Video);
        assert_eq!(r.audience("a", MediaKind::Video), ids(&["b", "c"]));
        assert!(!r.allows("b", "a", MediaKind::Audio));
        assert!(!r.allows("a", "b", MediaKind::Video));
        assert_eq!(r.len(), 2);
        assert_eq!(r.pairs().len(), 2);
    }

    #[test]
    fn changes_name_only_what_differs_with_the_whole_new_set() {
        let everyone = ids(&["h", "a", "b", "c"]);
        let mut old = Routes::new();
        old.allow_all(&everyone, "h", MediaKind::Audio);
        old.allow_all(&everyone, "h", MediaKind::Video);
        old.allow("h", "a", MediaKind::Video);
        let mut new = old.clone();
        // `b` comes on stage: reaches everyone; `a` leaves the host's view.
        new.allow_all(&everyone, "b", MediaKind::Audio);
        new.allow_all(&everyone, "b", MediaKind::Video);
        new.reach.remove("a");
        let changes = new.changes_from(&old);
        assert_eq!(
            changes,
            vec![
                RouteChange { publisher: "a".into(), kind: MediaKind::Video, subscribers: vec![] },
                RouteChange { publisher: "b".into(), kind: MediaKind::Audio, subscribers: ids(&["a", "c", "h"]) },
                RouteChange { publisher: "b".into(), kind: MediaKind::Video, subscribers: ids(&["a", "c", "h"]) },
            ]
        );
        assert!(new.changes_from(&new).is_empty());
        let touched = Routes::touched(&old, &changes);
        assert_eq!(touched.into_iter().collect::<Vec<_>>(), ids(&["a", "c", "h"]));
    }
}
