//! The forwarding matrix: which subscriber may receive which publisher's audio or video.

use std::collections::HashSet;

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

/// One allowed (subscriber, publisher, kind) triple.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entry {
    /// Who receives.
    pub subscriber: String,
    /// Whose media.
    pub publisher: String,
    /// Which kind of media.
    pub kind: Kind,
}

/// A versioned set of allowed pairs. Anything not listed is denied: a peer the matrix
/// does not name yet receives nothing, so a race between a join and a policy update can
/// only ever withhold media, never leak it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matrix {
    epoch: u64,
    allowed: HashSet<Entry>,
}

impl Matrix {
    /// An empty matrix (everything denied) with the given epoch.
    pub fn new(epoch: u64) -> Self {
        Matrix { epoch, allowed: HashSet::new() }
    }

    /// Everyone receives everyone else's audio and video.
    pub fn everyone<S: AsRef<str>>(epoch: u64, ids: &[S]) -> Self {
        let mut m = Matrix::new(epoch);
        for s in ids {
            for p in ids {
                if s.as_ref() != p.as_ref() {
                    for kind in Kind::ALL {
                        m.allow(s.as_ref(), p.as_ref(), kind);
                    }
                }
            }
        }
        m
    }

    /// The version of this matrix; the worker ignores a matrix older than the one it has.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Allow `subscriber` to receive `publisher`'s `kind`.
    pub fn allow(&mut self, subscriber: &str, publisher: &str, kind: Kind) {
        self.allowed.insert(Entry { subscriber: subscriber.to_owned(), publisher: publisher.to_owned(), kind });
    }

    /// Whether `subscriber` may receive `publisher`'s `kind`.
    pub fn allows(&self, subscriber: &str, publisher: &str, kind: Kind) -> bool {
        // Building an owned key per query is fine here: lookups happen on policy
        // changes, never per packet (the worker resolves the matrix to peer keys).
        self.allowed.contains(&Entry { subscriber: subscriber.to_owned(), publisher: publisher.to_owned(), kind })
    }

    /// All allowed entries, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.allowed.iter()
    }

    /// Number of allowed entries.
    pub fn len(&self) -> usize {
        self.allowed.len()
    }

    /// Whether nothing is allowed.
    pub fn is_empty(&self) -> bool {
        self.allowed.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everyone_allows_all_but_self() {
        let m = Matrix::everyone(3, &["a", "b", "c"]);
        assert_eq!(m.epoch(), 3);
        assert_eq!(m.len(), 3 * 2 * 2);
        assert!(m.allows("a", "b", Kind::Video));
        assert!(m.allows("c", "a", Kind::Audio));
        assert!(!m.allows("a", "a", Kind::Audio));
        assert!(!m.allows("a", "d", Kind::Audio));
    }

    #[test]
    fn unlisted_is_denied() {
        let mut m = Matrix::new(1);
        m.allow("s", "p", Kind::Audio);
        assert!(m.allows("s", "p", Kind::Audio));
        assert!(!m.allows("s", "p", Kind::Video));
        assert!(!m.allows("p", "s", Kind::Audio));
    }
}
