//! Games: pure state machines. No tokio, no clock, no I/O — time is an input.
//!
//! A game is driven the way str0m and quinn-proto are: [`Game::handle`] feeds one command from
//! one participant at time `now`, [`Game::handle_timeout`] tells it `now` has come, and
//! [`Game::poll_event`] drains what happened. [`Game::next_deadline`] says when to call
//! `handle_timeout` next. [`Game::routes`] is the routing policy for the current state: which
//! subscriber may receive which publisher's audio and video. The room owns the clock, the
//! sockets and the media; the game owns the rules.
//!
//! Mafia ([`mafia::Mafia`]) is the first game. Everything Mafia-specific lives in its module;
//! a new game is a new module implementing [`Game`].

pub mod mafia;
pub mod policy;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::media::Route;
use crate::protocol::ErrorCode;

/// Milliseconds on the room's clock (unix ms in production; any monotonic value in tests).
pub type Millis = u64;

/// A participant id.
pub type Id = String;

/// The phases of a Mafia game (the lobby included), in wire spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Before a game: everyone sees and hears everyone.
    Lobby,
    /// Roles are dealt.
    RoleReveal,
    /// The night roles act; the living town is in the dark.
    Night,
    /// The night's outcome is announced.
    Dawn,
    /// Free talk.
    Day,
    /// Votes to put someone on trial.
    Nomination,
    /// The accused speaks alone.
    Defense,
    /// Guilty or innocent.
    Judgment,
    /// The game ended; roles are revealed.
    GameOver,
}

impl Phase {
    /// Every phase, in wire order.
    pub const ALL: [Phase; 9] = [
        Phase::Lobby,
        Phase::RoleReveal,
        Phase::Night,
        Phase::Dawn,
        Phase::Day,
        Phase::Nomination,
        Phase::Defense,
        Phase::Judgment,
        Phase::GameOver,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Lobby => "lobby",
            Phase::RoleReveal => "role_reveal",
            Phase::Night => "night",
            Phase::Dawn => "dawn",
            Phase::Day => "day",
            Phase::Nomination => "nomination",
            Phase::Defense => "defense",
            Phase::Judgment => "judgment",
            Phase::GameOver => "game_over",
        }
    }

    /// Parse a wire name.
    pub fn parse(s: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Whether a game is running (neither lobby nor game over).
    pub fn in_game(self) -> bool {
        !matches!(self, Phase::Lobby | Phase::GameOver)
    }
}

/// A role, as told to its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Kills at night, knows the other mafia.
    Mafia,
    /// Saves one player a night.
    Doctor,
    /// Learns whether one player is mafia each night.
    Detective,
    /// No night action.
    Citizen,
    /// A host who does not play: sees every role and everyone.
    Moderator,
}

/// Chat channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Everyone.
    All,
    /// The mafia (read also by the dead and the moderator).
    Mafia,
    /// The dead (read also by the moderator).
    Dead,
}

/// A judgment vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Execute the accused.
    Guilty,
    /// Spare the accused.
    Innocent,
}

/// Who won.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Winner {
    /// Every mafioso is dead.
    Town,
    /// The living mafia are at least as many as the other living players.
    Mafia,
}

/// Why a player was eliminated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The mafia's night kill.
    Killed,
    /// Found guilty.
    Executed,
    /// Left mid-game (or their reconnection grace ran out).
    Left,
}

/// Which vote a tally is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VoteKind {
    /// Asking to end the day early.
    CallVote,
    /// Choosing whom to put on trial.
    Nomination,
    /// Guilty or innocent.
    Judgment,
}

/// One voter's current vote, as shown in a tally.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Ballot {
    /// `call_vote`: true. (Serialized as `true`.)
    Call(bool),
    /// Judgment. Listed before `Target` so `"guilty"` reads back as a verdict; participant ids
    /// are 10 characters long, so no id is ever spelled like a verdict.
    Verdict(Verdict),
    /// Nomination: a target id, or `null` to abstain.
    Target(Option<Id>),
}

/// `start_game` settings; anything absent takes its default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Number of mafia (default by player count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mafia: Option<u32>,
    /// Number of doctors (default 1 from 5 players).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doctor: Option<u32>,
    /// Number of detectives (default 1 from 6 players).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detective: Option<u32>,
    /// Whether the host plays (default true) or moderates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_plays: Option<bool>,
    /// Phase lengths in seconds, by wire phase name; fractions allowed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub phase_seconds: BTreeMap<String, f64>,
    /// Seed for this game's deal. Set by the room (never by a client: it is not read from
    /// the wire) so every game can be replayed from its own log; `None` keeps drawing from
    /// the seed the engine was created with.
    #[serde(skip)]
    pub seed: Option<u64>,
}

/// What a participant (or the room, for `Joined` / `Left`) asks of the game.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// Someone entered the room (the room calls this; order of calls = order of presence).
    Joined,
    /// Like `Joined`, in a room whose powers come only from a host token: the newcomer is
    /// never made host on arrival, even when nobody holds the powers.
    JoinedGuest,
    /// Someone presented a valid host token (the room checked it): the powers are theirs.
    TakeHost,
    /// Someone left the room for good (left, kicked, or grace expired).
    Left,
    /// Advisory readiness.
    Ready(bool),
    /// Host: start a game (from the lobby or from `game_over`).
    StartGame(Settings),
    /// Ask to end the day and vote.
    CallVote,
    /// Nomination vote: a living other player, or `None` to abstain.
    Nominate(Option<Id>),
    /// Judgment vote.
    Judge(Verdict),
    /// Night action on a target (kill / save / investigate by role).
    NightAction(Id),
    /// A chat message.
    Chat {
        /// Where.
        channel: Channel,
        /// What (already length-checked by the room).
        text: String,
    },
    /// Host: remove someone.
    Kick(Id),
}

/// A refused command: maps to a protocol error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GameError {
    /// Not in this phase.
    #[error("{0}")]
    WrongPhase(String),
    /// Not allowed for this participant (or on this target).
    #[error("{0}")]
    NotAllowed(String),
    /// Only the host may do this.
    #[error("{0}")]
    NotHost(String),
    /// A value is invalid (settings, unknown target).
    #[error("{0}")]
    BadField(String),
}

impl GameError {
    /// The protocol error code for this refusal.
    pub fn code(&self) -> ErrorCode {
        match self {
            GameError::WrongPhase(_) => ErrorCode::WrongPhase,
            GameError::NotAllowed(_) => ErrorCode::NotAllowed,
            GameError::NotHost(_) => ErrorCode::NotHost,
            GameError::BadField(_) => ErrorCode::BadField,
        }
    }
}

/// The public state of the current phase (the `phase` message, minus wire framing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseInfo {
    /// The phase.
    pub phase: Phase,
    /// The round (0 in the lobby; 1 for the first night and the day after it, …).
    pub round: u32,
    /// When it ends on the room clock, if it has a timer.
    pub ends_at: Option<Millis>,
    /// The living players.
    pub alive: Vec<Id>,
    /// The accused, during defense and judgment.
    pub accused: Option<Id>,
}

/// Who a chat message reaches.
pub type Recipients = Vec<Id>;

/// What happened, addressed: each event says who may learn it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// The phase changed (to everyone). The room applies [`Game::routes`] before sending it.
    Phase(PhaseInfo),
    /// A role, to its owner only.
    Role {
        /// The owner.
        to: Id,
        /// Their role.
        role: Role,
        /// Other mafia (mafia only).
        teammates: Vec<Id>,
        /// Every role (the moderator only).
        roles: Option<BTreeMap<Id, Role>>,
    },
    /// A public tally.
    VoteUpdate {
        /// Which vote.
        kind: VoteKind,
        /// Voter → ballot.
        votes: BTreeMap<Id, Ballot>,
        /// Votes needed (call_vote only).
        needed: Option<usize>,
    },
    /// The detective's answer, to the detective only.
    Investigation {
        /// The detective.
        to: Id,
        /// Whom they investigated.
        target: Id,
        /// Whether the target is mafia.
        is_mafia: bool,
    },
    /// A player died (to everyone).
    Eliminated {
        /// Who.
        id: Id,
        /// How.
        cause: Cause,
    },
    /// The host's powers moved (to everyone).
    HostChanged {
        /// The new host.
        host: Id,
    },
    /// Someone's `ready`, `playing` or `alive` changed (to everyone).
    ParticipantChanged {
        /// Who.
        id: Id,
    },
    /// A chat message and exactly who may read it.
    Chat {
        /// Sender.
        from: Id,
        /// Channel.
        channel: Channel,
        /// Text.
        text: String,
        /// When (room clock).
        at: Millis,
        /// Readers (the sender included when they may read the channel).
        to: Recipients,
    },
    /// The game ended (to everyone, with every role).
    GameOver {
        /// Who won.
        winner: Winner,
        /// Everyone's role.
        roles: BTreeMap<Id, Role>,
    },
    /// The host kicked someone: the room closes their socket and they may not rejoin this game.
    Kicked {
        /// Who.
        id: Id,
    },
}

/// What a participant looks like to everyone (the game's part of the participant object).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// Advisory readiness.
    pub ready: bool,
    /// Holds a seat in the current game.
    pub playing: bool,
    /// Alive (everyone is, in the lobby and for non-players before a game).
    pub alive: bool,
}

/// A game, as the room drives it.
pub trait Game: Send {
    /// One command from `who` at `now`. Events it causes are queued for [`Game::poll_event`].
    fn handle(&mut self, now: Millis, who: &str, command: Command) -> Result<(), GameError>;
    /// Time has reached `now`: run any phase timer that is due.
    fn handle_timeout(&mut self, now: Millis);
    /// The next queued event.
    fn poll_event(&mut self) -> Option<Event>;
    /// When [`Game::handle_timeout`] should next be called.
    fn next_deadline(&self) -> Option<Millis>;
    /// The routing policy now: every allowed (subscriber, publisher, kind), over the room's
    /// participants.
    fn routes(&self) -> Vec<Route>;
    /// The current phase message.
    fn phase(&self) -> PhaseInfo;
    /// The host (holder of the room's powers), if anyone is in the room.
    fn host(&self) -> Option<Id>;
    /// Everyone in the room, in presence order.
    fn participants(&self) -> Vec<Id>;
    /// A participant's standing.
    fn standing(&self, id: &str) -> Standing;
    /// What `id` is entitled to know of roles right now: their own role message, if any
    /// (used to redraw a client, e.g. on resume).
    fn role_of(&self, id: &str) -> Option<Event>;
}
