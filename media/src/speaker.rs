//! Who is speaking in a room, from the audio level each publisher's packets carry (RFC 6464:
//! the level in -dBov, 0 loudest, 127 silence). The worker feeds every audio packet's level in
//! and asks, a few times a second, which publishers speak now; the room decides who may be told
//! (the media layer knows nothing about who may hear whom beyond its routes).
//!
//! A level alone flickers between syllables, so each publisher's is smoothed (an exponential
//! average that rises fast and falls slower) and a publisher speaks from when the average
//! passes [`LOUD_DBOV`] until it has stayed below it for [`HOLD`] — a pause between words
//! is not silence — or until its audio stops arriving.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// A smoothed level above this (dBov) is speech.
pub const LOUD_DBOV: f32 = -40.0;
/// Speaking lasts this long after the level was last loud.
pub const HOLD: Duration = Duration::from_millis(600);
/// A publisher whose audio has not arrived for this long is silent (muted, gone, paused).
pub const SILENT_AFTER: Duration = Duration::from_millis(400);
/// How often the worker asks who speaks (the most `speaking` changes a room sends a second).
pub const CHECK_EVERY: Duration = Duration::from_millis(250);
/// The most publishers reported as speaking at once (the loudest).
pub const MAX_SPEAKERS: usize = 4;

/// The average's time constants: rising (a word is heard within ~0.1 s) and falling.
const RISE: Duration = Duration::from_millis(50);
const FALL: Duration = Duration::from_millis(150);

/// One publisher's smoothed level.
#[derive(Debug, Clone, Copy)]
struct Loudness {
    dbov: f32,
    /// The last packet.
    last: Instant,
    /// When the average was last above [`LOUD_DBOV`].
    loud_at: Option<Instant>,
}

/// The speakers of one room, keyed by whatever names a publisher (the worker's peer key).
#[derive(Debug)]
pub struct Speakers<K> {
    levels: HashMap<K, Loudness>,
    /// What the last [`Speakers::changed`] returned.
    reported: Vec<K>,
}

impl<K> Default for Speakers<K> {
    fn default() -> Self {
        Speakers { levels: HashMap::new(), reported: Vec::new() }
    }
}

impl<K: Copy + Eq + Hash + Ord> Speakers<K> {
    /// A packet of `publisher`'s audio arrived at `now` with `level` (-dBov, as the header
    /// extension carries it: 0 loudest, 127 silence; anything larger counts as silence).
    pub fn observe(&mut self, publisher: K, level: u8, now: Instant) {
        let dbov = -f32::from(level.min(127));
        let entry = self.levels.entry(publisher).or_insert(Loudness { dbov: -127.0, last: now, loud_at: None });
        // An average over time, not over packets: a sender at any packet rate weighs the same.
        // (Two packets at one instant: the second counts as if 1 ms later.)
        let gap = now.saturating_duration_since(entry.last).clamp(Duration::from_millis(1), FALL * 5);
        let tc = if dbov > entry.dbov { RISE } else { FALL };
        let weight = 1.0 - (-gap.as_secs_f32() / tc.as_secs_f32()).exp();
        entry.dbov += (dbov - entry.dbov) * weight;
        entry.last = now;
        if entry.dbov > LOUD_DBOV {
            entry.loud_at = Some(now);
        }
    }

    /// Whether no publisher's level is known.
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// `publisher` is gone: forget it.
    pub fn forget(&mut self, publisher: K) {
        self.levels.remove(&publisher);
    }

    /// Who speaks at `now`, loudest first (at most [`MAX_SPEAKERS`]).
    pub fn speaking(&self, now: Instant) -> Vec<K> {
        let mut on: Vec<(K, f32)> = self
            .levels
            .iter()
            .filter(|(_, l)| {
                now.saturating_duration_since(l.last) < SILENT_AFTER
                    && l.loud_at.is_some_and(|t| now.saturating_duration_since(t) < HOLD)
            })
            .map(|(k, l)| (*k, l.dbov))
            .collect();
        on.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        on.truncate(MAX_SPEAKERS);
        on.into_iter().map(|(k, _)| k).collect()
    }

    /// Who speaks at `now`, if that is not who the last call returned (the order alone
    /// changing is no change).
    pub fn changed(&mut self, now: Instant) -> Option<Vec<K>> {
        let now_speaking = self.speaking(now);
        let (mut a, mut b) = (now_speaking.clone(), self.reported.clone());
        a.sort();
        b.sort();
        if a == b {
            return None;
        }
        self.reported = now_speaking.clone();
        Some(now_speaking)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `level` from `who` every 20 ms for `ms`, starting at `*t` (which moves on).
    fn talk(s: &mut Speakers<u32>, who: u32, level: u8, t: &mut Instant, ms: u64) {
        for _ in 0..ms / 20 {
            *t += Duration::from_millis(20);
            s.observe(who, level, *t);
        }
    }

    #[test]
    fn a_loud_publisher_speaks_within_a_fraction_of_a_second_and_a_quiet_one_never() {
        let mut s = Speakers::default();
        let mut t = Instant::now();
        talk(&mut s, 1, 127, &mut t, 1000);
        assert!(s.speaking(t).is_empty(), "silence");
        let start = t;
        let mut heard_at = None;
        for _ in 0..50 {
            t += Duration::from_millis(20);
            s.observe(1, 20, t);
            s.observe(2, 60, t);
            if heard_at.is_none() && s.speaking(t) == [1] {
                heard_at = Some(t - start);
            }
        }
        let heard_at = heard_at.expect("a level of -20 dBov speaks");
        assert!(heard_at <= Duration::from_millis(200), "{heard_at:?}");
        assert_eq!(s.speaking(t), [1], "-60 dBov is background noise");
    }

    #[test]
    fn a_pause_between_words_keeps_speaking_and_silence_ends_it() {
        let mut s = Speakers::default();
        let mut t = Instant::now();
        talk(&mut s, 7, 25, &mut t, 600);
        assert_eq!(s.speaking(t), [7]);
        // A 300 ms pause between words is not silence.
        talk(&mut s, 7, 127, &mut t, 300);
        assert_eq!(s.speaking(t), [7]);
        talk(&mut s, 7, 25, &mut t, 200);
        // Real silence ends it within a second.
        talk(&mut s, 7, 127, &mut t, 1000);
        assert!(s.speaking(t).is_empty());
    }

    #[test]
    fn audio_that_stops_arriving_is_silent_and_a_forgotten_publisher_is_gone() {
        let mut s = Speakers::default();
        let mut t = Instant::now();
        for _ in 0..25 {
            t += Duration::from_millis(20);
            s.observe(1, 10, t);
            s.observe(2, 10, t);
        }
        assert_eq!(s.speaking(t).len(), 2);
        // Only 2 keeps sending: 1 muted.
        talk(&mut s, 2, 10, &mut t, 500);
        assert_eq!(s.speaking(t), [2]);
        s.forget(2);
        assert!(s.speaking(t).is_empty());
    }

    #[test]
    fn loudest_first_at_most_four_and_changes_reported_once() {
        let mut s = Speakers::default();
        let mut t = Instant::now();
        for _ in 0..40 {
            t += Duration::from_millis(20);
            for who in 0..6u32 {
                s.observe(who, 10 + who as u8 * 3, t);
            }
        }
        assert_eq!(s.speaking(t), [0, 1, 2, 3]);
        assert_eq!(s.changed(t), Some(vec![0, 1, 2, 3]));
        assert_eq!(s.changed(t), None, "nothing new");
        talk(&mut s, 0, 127, &mut t, 1000);
        assert!(s.changed(t).is_some_and(|v| !v.contains(&0)), "0 went quiet");
    }
}
