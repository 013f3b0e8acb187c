//! The seats of one game: who plays which role, who lives, who moderates.

use std::collections::{BTreeMap, BTreeSet};

use super::setup::Lengths;
use super::{Role, Winner};
use crate::game::Id;

/// One player's seat.
#[derive(Debug, Clone)]
pub(super) struct Seat {
    /// Dealt at the start; never changes.
    pub role: Role,
    /// Not yet eliminated.
    pub alive: bool,
    /// Left the room. The seat stays for the final reveal, but a returning id is a spectator:
    /// only this game's present players hold a seat's rights.
    pub left: bool,
}

/// A game from its deal to the return to the lobby.
#[derive(Debug, Clone)]
pub(super) struct Table {
    /// Seats by id.
    seats: BTreeMap<Id, Seat>,
    /// Seat ids in the presence order at the deal (for teammates and reveals).
    order: Vec<Id>,
    /// The host who chose not to play, while they stay in the room.
    pub moderator: Option<Id>,
    /// This game's phase lengths.
    pub lengths: Lengths,
    /// Each doctor's save of the night before: a doctor may not save the same player two
    /// nights running.
    pub last_saves: BTreeMap<Id, Id>,
}

impl Table {
    /// A fresh game with everyone alive.
    pub(super) fn new(deal: Vec<(Id, Role)>, moderator: Option<Id>, lengths: Lengths) -> Table {
        let order = deal.iter().map(|(id, _)| id.clone()).collect();
        let seats = deal.into_iter().map(|(id, role)| (id, Seat { role, alive: true, left: false })).collect();
        Table { seats, order, moderator, lengths, last_saves: BTreeMap::new() }
    }

    /// The seat `id` holds in the room now (none once they left).
    fn seat(&self, id: &str) -> Option<&Seat> {
        self.seats.get(id).filter(|s| !s.left)
    }

    /// `id`'s role, if they hold a seat in the room.
    pub(super) fn role(&self, id: &str) -> Option<Role> {
        self.seat(id).map(|s| s.role)
    }

    /// Whether `id` holds a seat in the room.
    pub(super) fn is_player(&self, id: &str) -> bool {
        self.seat(id).is_some()
    }

    /// Whether `id` was dealt into this game (even if they left since).
    pub(super) fn was_dealt(&self, id: &str) -> bool {
        self.seats.contains_key(id)
    }

    /// Whether `id` is a living player.
    pub(super) fn is_living(&self, id: &str) -> bool {
        self.seat(id).is_some_and(|s| s.alive)
    }

    /// Whether `id` is a dead player still in the room.
    pub(super) fn is_dead(&self, id: &str) -> bool {
        self.seat(id).is_some_and(|s| !s.alive)
    }

    /// Whether `id` is the moderator.
    pub(super) fn is_moderator(&self, id: &str) -> bool {
        self.moderator.as_deref() == Some(id)
    }

    /// Mark `id` dead. Returns whether they were alive.
    pub(super) fn kill(&mut self, id: &str) -> bool {
        match self.seats.get_mut(id) {
            Some(seat) if seat.alive && !seat.left => {
                seat.alive = false;
                true
            }
            _ => false,
        }
    }

    /// `id` left the room: they lose their seat's rights (and their life, which the caller
    /// announces only while a game runs). Returns whether they were a living player.
    pub(super) fn leave(&mut self, id: &str) -> bool {
        if self.moderator.as_deref() == Some(id) {
            // The moderator's view never passes to anyone.
            self.moderator = None;
        }
        let was_living = self.kill(id);
        if let Some(seat) = self.seats.get_mut(id) {
            seat.left = true;
        }
        was_living
    }

    /// The living players in deal order.
    pub(super) fn living(&self) -> impl Iterator<Item = &Id> + '_ {
        self.order.iter().filter(|id| self.is_living(id))
    }

    /// The living players holding `role`, in deal order.
    pub(super) fn living_with(&self, role: Role) -> impl Iterator<Item = &Id> + '_ {
        self.living().filter(move |id| self.role(id) == Some(role))
    }

    /// The other mafia of a mafioso, in deal order (dead or gone included: they were dealt
    /// together); empty for anyone else.
    pub(super) fn teammates(&self, id: &str) -> Vec<Id> {
        if self.role(id) != Some(Role::Mafia) {
            return Vec::new();
        }
        let mafia = |other: &&Id| self.seats.get(*other).is_some_and(|s| s.role == Role::Mafia);
        self.order.iter().filter(|other| other.as_str() != id).filter(mafia).cloned().collect()
    }

    /// Every dealt role, the departed included (for the moderator and the final reveal).
    pub(super) fn all_roles(&self) -> BTreeMap<Id, Role> {
        self.seats.iter().map(|(id, seat)| (id.clone(), seat.role)).collect()
    }

    /// The roles of the players in the room, for routing: a departed player who comes back
    /// is a spectator.
    pub(super) fn present_roles(&self) -> BTreeMap<Id, Role> {
        self.seats.iter().filter(|(_, s)| !s.left).map(|(id, s)| (id.clone(), s.role)).collect()
    }

    /// The living players, as a set.
    pub(super) fn living_set(&self) -> BTreeSet<Id> {
        self.living().cloned().collect()
    }

    /// The win check (docs/PROTOCOL.md, "How things are decided").
    pub(super) fn winner(&self) -> Option<Winner> {
        let mafia = self.living_with(Role::Mafia).count();
        let others = self.living().count() - mafia;
        if mafia == 0 {
            Some(Winner::Town)
        } else if mafia >= others {
            Some(Winner::Mafia)
        } else {
            None
        }
    }
}
