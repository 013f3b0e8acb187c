//! Who may write and read each chat channel (docs/PROTOCOL.md, "Chat channels").

use super::table::Table;
use super::{Channel, Mafia, Phase, Role};
use crate::game::{GameError, Id, Roster};

impl Mafia {
    /// The table while a game runs (role_reveal..judgment): outside it only `all` is open.
    fn running_table(&self) -> Option<&Table> {
        self.table.as_ref().filter(|_| self.phase.in_game())
    }

    /// Whether `who` may write `channel` now, or why not.
    pub(super) fn may_write(&self, who: &str, channel: Channel) -> Result<(), GameError> {
        let refuse = |why: &str| Err(GameError::NotAllowed(why.into()));
        let Some(table) = self.running_table() else {
            return match channel {
                Channel::All => Ok(()),
                _ => refuse("only the all channel is open outside a game"),
            };
        };
        match channel {
            Channel::All if table.is_moderator(who) => Ok(()),
            Channel::All if table.is_living(who) && self.phase != Phase::Night => Ok(()),
            Channel::All if table.is_living(who) => refuse("the living keep silent at night"),
            Channel::All => refuse("only the living (and the moderator) write in all during a game"),
            Channel::Mafia if table.is_living(who) && table.role(who) == Some(Role::Mafia) => Ok(()),
            Channel::Mafia => refuse("only the living mafia write in mafia"),
            Channel::Dead if table.is_dead(who) => Ok(()),
            Channel::Dead => refuse("only the dead write in dead"),
        }
    }

    /// Whether `id` may read `channel` now.
    fn may_read(&self, id: &str, channel: Channel) -> bool {
        let Some(table) = self.running_table() else {
            return channel == Channel::All;
        };
        match channel {
            Channel::All => true,
            Channel::Mafia => table.is_moderator(id) || table.is_dead(id) || table.role(id) == Some(Role::Mafia),
            Channel::Dead => table.is_moderator(id) || table.is_dead(id),
        }
    }

    /// Everyone in the room who may read `channel`, in presence order.
    pub(super) fn readers(&self, roster: &Roster, channel: Channel) -> Vec<Id> {
        roster.ids().filter(|id| self.may_read(id, channel)).cloned().collect()
    }
}
