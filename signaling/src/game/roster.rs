//! The seats of a room, which every kind of game shares: who is here in presence order, their
//! names, who holds the host's powers, who is ready, whom the host kicked, and each seat's
//! round-trip time as the server measured it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::Id;

/// A seat's round-trip time, measured by the server from its own WebSocket Ping frames; never
/// what a client says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rtt {
    /// The robust figure: the smallest round trip of the recent window, ms.
    pub ms: u32,
    /// How much the round trips of that window vary (largest − smallest), ms.
    pub jitter_ms: u32,
}

/// One participant's seat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seat {
    /// Participant id.
    pub id: Id,
    /// Display name.
    pub name: String,
    /// Advisory readiness.
    pub ready: bool,
    /// The latest measured round trip, once there is one.
    pub rtt: Option<Rtt>,
}

impl Seat {
    /// Whether this seat is a shared screen rather than a person: the reference web client's
    /// TV view joins as "TV " and four lower-case letters or digits (web/app.js). A screen
    /// watches; the games that count players (draw, rlgl) leave it out. A person who picks such
    /// a name only keeps themself out of play.
    pub fn is_screen(&self) -> bool {
        self.name
            .strip_prefix("TV ")
            .is_some_and(|rest| rest.len() == 4 && rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
    }
}

/// Everyone in a room, in order of arrival.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roster {
    seats: Vec<Seat>,
    host: Option<Id>,
    /// Names (lower case) the host kicked: refused until the game is over.
    banned: BTreeSet<String>,
}

impl Roster {
    /// An empty room.
    pub fn new() -> Roster {
        Roster::default()
    }

    /// The seats, in presence order.
    pub fn seats(&self) -> &[Seat] {
        &self.seats
    }

    /// The seats of people, in presence order: every seat but the screens ([`Seat::is_screen`]).
    pub fn people(&self) -> impl Iterator<Item = &Seat> + '_ {
        self.seats.iter().filter(|s| !s.is_screen())
    }

    /// The ids, in presence order.
    pub fn ids(&self) -> impl Iterator<Item = &Id> + '_ {
        self.seats.iter().map(|s| &s.id)
    }

    /// The ids, in presence order, owned.
    pub fn id_list(&self) -> Vec<Id> {
        self.ids().cloned().collect()
    }

    /// How many seats are taken.
    pub fn len(&self) -> usize {
        self.seats.len()
    }

    /// Whether nobody is here.
    pub fn is_empty(&self) -> bool {
        self.seats.is_empty()
    }

    /// Whether `id` holds a seat.
    pub fn contains(&self, id: &str) -> bool {
        self.seat(id).is_some()
    }

    /// `id`'s seat.
    pub fn seat(&self, id: &str) -> Option<&Seat> {
        self.seats.iter().find(|s| s.id == id)
    }

    /// Whoever holds the host's powers.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// Whether `id` holds the host's powers.
    pub fn is_host(&self, id: &str) -> bool {
        self.host.as_deref() == Some(id)
    }

    /// `id`'s measured round trip.
    pub fn rtt(&self, id: &str) -> Option<Rtt> {
        self.seat(id).and_then(|s| s.rtt)
    }

    /// Whether someone here is called `name` (case-insensitively).
    pub fn name_taken(&self, name: &str) -> bool {
        let name = name.to_lowercase();
        self.seats.iter().any(|s| s.name.to_lowercase() == name)
    }

    /// Whether the host kicked someone called `name` from this game.
    pub fn is_banned(&self, name: &str) -> bool {
        self.banned.contains(&name.to_lowercase())
    }

    // ----- changes (the driver makes them) -----

    /// `id` takes a seat at the end of the presence order; with `may_host`, they get the powers
    /// if nobody holds them. False when `id` is already seated.
    pub fn join(&mut self, id: &str, name: &str, may_host: bool) -> bool {
        if self.contains(id) {
            return false;
        }
        self.seats.push(Seat { id: id.to_owned(), name: name.to_owned(), ready: false, rtt: None });
        if may_host && self.host.is_none() {
            self.host = Some(id.to_owned());
        }
        true
    }

    /// `id` leaves. If they held the powers, the longest-present participant gets them:
    /// returns that new host.
    pub fn leave(&mut self, id: &str) -> Option<Id> {
        self.seats.retain(|s| s.id != id);
        if self.host.as_deref() != Some(id) {
            return None;
        }
        self.host = self.seats.first().map(|s| s.id.clone());
        self.host.clone()
    }

    /// `id` takes the powers. Returns whether they changed hands.
    pub fn take_host(&mut self, id: &str) -> bool {
        if self.host.as_deref() == Some(id) || !self.contains(id) {
            return false;
        }
        self.host = Some(id.to_owned());
        true
    }

    /// Set `id`'s readiness. Returns whether it changed.
    pub fn set_ready(&mut self, id: &str, ready: bool) -> bool {
        match self.seats.iter_mut().find(|s| s.id == id) {
            Some(seat) if seat.ready != ready => {
                seat.ready = ready;
                true
            }
            _ => false,
        }
    }

    /// Everyone unready (a game starts).
    pub fn clear_ready(&mut self) {
        for seat in &mut self.seats {
            seat.ready = false;
        }
    }

    /// Record `id`'s round trip. Returns whether it changed.
    pub fn set_rtt(&mut self, id: &str, rtt: Rtt) -> bool {
        match self.seats.iter_mut().find(|s| s.id == id) {
            Some(seat) if seat.rtt != Some(rtt) => {
                seat.rtt = Some(rtt);
                true
            }
            _ => false,
        }
    }

    /// Refuse `name` until the bans are cleared.
    pub fn ban(&mut self, name: &str) {
        self.banned.insert(name.to_lowercase());
    }

    /// The game is over: the kicked may come back.
    pub fn clear_bans(&mut self) {
        self.banned.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_order_and_host_hand_over() {
        let mut r = Roster::new();
        assert!(r.join("a", "Ann", true));
        assert!(r.join("b", "Bob", true));
        assert!(!r.join("a", "Ann", true), "a second seat for one id");
        assert!(r.join("c", "Cy", false));
        assert_eq!(r.host(), Some("a"));
        assert_eq!(r.id_list(), ["a", "b", "c"]);
        assert_eq!(r.leave("b"), None, "not the host: nobody new holds the powers");
        assert_eq!(r.leave("a"), Some("c".to_owned()), "the longest present gets them");
        assert!(!r.take_host("c") && r.is_host("c"));
        assert_eq!(r.leave("c"), None);
        assert!(r.is_empty() && r.host().is_none());
    }

    #[test]
    fn a_guest_first_does_not_host_and_a_token_takes_the_powers() {
        let mut r = Roster::new();
        r.join("g", "Guest", false);
        assert_eq!(r.host(), None);
        r.join("h", "Holder", false);
        assert!(r.take_host("h"));
        assert!(!r.take_host("nobody"), "only a seat may hold the powers");
        assert!(r.is_host("h"));
    }

    #[test]
    fn names_bans_ready_and_rtt() {
        let mut r = Roster::new();
        r.join("a", "Ann", true);
        assert!(r.name_taken("ANN"));
        r.ban("Bob");
        assert!(r.is_banned("bob"));
        r.clear_bans();
        assert!(!r.is_banned("bob"));
        assert!(r.set_ready("a", true));
        assert!(!r.set_ready("a", true), "no change, no event");
        r.clear_ready();
        assert!(!r.seat("a").unwrap().ready);
        let rtt = Rtt { ms: 40, jitter_ms: 3 };
        assert!(r.set_rtt("a", rtt));
        assert!(!r.set_rtt("a", rtt));
        assert_eq!(r.rtt("a"), Some(rtt));
        assert_eq!(r.rtt("zed"), None);
    }
}
