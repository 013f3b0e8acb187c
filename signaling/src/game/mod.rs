//! Games: pure state machines behind one interface. No tokio, no clock, no I/O — time is an
//! input.
//!
//! A game is driven the way str0m and quinn-proto are: [`Game::handle`] feeds one command from
//! one seat at time `now`, [`Game::handle_timeout`] tells it `now` has come, and
//! [`Game::poll_output`] drains what happened, each output addressed ([`To`]).
//! [`Game::next_deadline`] says when to call `handle_timeout` next. [`Game::routes`] is the
//! routing policy for the current state, per publisher. The room owns the clock, the sockets,
//! the media and the seats ([`Roster`]); the game owns the rules.
//!
//! Nothing here names a game. A game brings its own command, message, phase and settings types
//! (serde: they *are* its wire messages), is wrapped by a [`Driver`] (the seats every game
//! shares: presence, host, ready, kick) and reaches the room in the object-safe, JSON-speaking
//! form of [`AnyDriver`]. [`registry`] is the one file that names every game.
//! docs/ARCHITECTURE.md walks through adding one.

pub mod any;
pub mod draw;
pub mod driver;
pub mod mafia;
pub mod registry;
pub mod rlgl;
pub mod roster;
pub mod routes;
pub mod stage;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use self::any::{AnyDriver, AnyEvent, AnyInput};
pub use self::driver::{Driver, Event, Input};
pub use self::registry::Registry;
pub use self::roster::{Roster, Rtt, Seat};
pub use self::routes::{MediaKind, Reach, Route, RouteChange, Routes};

/// Milliseconds on the room's clock (unix ms in production; any monotonic value in tests).
pub type Millis = u64;

/// A participant id.
pub type Id = String;

/// The phase every kind of room starts in and returns to: between games.
pub const LOBBY: &str = "lobby";

/// Who an output is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum To {
    /// Everyone in the room.
    All,
    /// Exactly these.
    Only(Vec<Id>),
    /// Everyone but these.
    AllBut(Vec<Id>),
}

impl To {
    /// One participant.
    pub fn one(id: &str) -> To {
        To::Only(vec![id.to_owned()])
    }

    /// Whether `id` is addressed.
    pub fn includes(&self, id: &str) -> bool {
        match self {
            To::All => true,
            To::Only(ids) => ids.iter().any(|i| i == id),
            To::AllBut(ids) => !ids.iter().any(|i| i == id),
        }
    }
}

/// A refused command, with what to tell its sender. The room maps each to a protocol error
/// code of the same name.
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
    /// The stage is full.
    #[error("{0}")]
    StageFull(String),
    /// No game knows this message type.
    #[error("{0}")]
    UnknownType(String),
    /// The message belongs to another kind of room.
    #[error("{0}")]
    WrongKind(String),
    /// Too many of a game's own commands too fast (a drawer's strokes, a guesser's
    /// guesses); the socket stays open.
    #[error("{0}")]
    RateLimited(String),
}

/// What a participant looks like to everyone: the game's part of the participant object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Standing {
    /// Holds a seat in the current game.
    pub playing: bool,
    /// Alive (everyone is, in the lobby and for non-players before a game).
    pub alive: bool,
    /// On stage (stage-based kinds).
    pub on_stage: bool,
    /// Has a hand raised (stage-based kinds).
    pub hand: bool,
}

impl Standing {
    /// In a room with no game running: alive, nothing else.
    pub const LOBBY: Standing = Standing { playing: false, alive: true, on_stage: false, hand: false };
}

/// The state of the current phase, as the `phase` message carries it (without its `type`).
/// The phase's name is the game's own; every game has a [`LOBBY`].
pub trait PhaseView: Serialize + Clone + std::fmt::Debug + Send {
    /// The phase's wire name.
    fn name(&self) -> &str;
}

/// A chat line, as every kind sends it (the `chat` message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatLine {
    /// Sender.
    pub from: Id,
    /// Channel.
    pub channel: String,
    /// Text.
    pub text: String,
    /// Server time, unix ms.
    pub at: Millis,
}

/// What a game emits.
#[derive(Debug, Clone, PartialEq)]
pub enum Output<M, P> {
    /// A message, to whom.
    Send(To, M),
    /// The phase changed (to everyone). The room applies [`Game::routes`] before sending it.
    Phase(P),
    /// Someone's [`Standing`] changed (the room sends `participant_updated`).
    Standing(Id),
}

/// A kind of room's game: a pure state machine.
pub trait Game: Send + 'static {
    /// What a seat may send: parsed from the wire object, `type` included.
    type Command: DeserializeOwned + Serialize + Clone + std::fmt::Debug + Send;
    /// What the game sends: serialized as the wire object, `type` included.
    type Message: Serialize + Clone + std::fmt::Debug + Send;
    /// The phase message.
    type Phase: PhaseView;
    /// `start_game.settings`.
    type Settings: DeserializeOwned + Serialize + Default + Clone + std::fmt::Debug + Send;

    /// The message types [`Game::Command`] parses (each command's `type`).
    const COMMANDS: &'static [&'static str];

    /// Check settings on their own (before anyone is counted), as the room API does.
    fn check_settings(settings: &Self::Settings) -> Result<(), GameError>;

    /// The host starts a game (the driver checked it is the host) with `settings`. With a
    /// `seed` (the room draws one per game and logs it) everything random in this game comes
    /// from it, so the game replays from its log; without one the game keeps drawing from its
    /// own stream.
    fn start(
        &mut self,
        now: Millis,
        roster: &Roster,
        who: &str,
        settings: Self::Settings,
        seed: Option<u64>,
    ) -> Result<(), GameError>;

    /// One command from a seat of `roster` at `now`.
    fn handle(&mut self, now: Millis, roster: &Roster, who: &str, command: Self::Command) -> Result<(), GameError>;

    /// `who` took a seat (already in `roster`).
    fn joined(&mut self, _now: Millis, _roster: &Roster, _who: &str) {}

    /// `who` left the room for good (already gone from `roster`, whose host is already the
    /// new one).
    fn left(&mut self, now: Millis, roster: &Roster, who: &str);

    /// Time has reached `now`: run any timer that is due.
    fn handle_timeout(&mut self, now: Millis, roster: &Roster);

    /// The next output.
    fn poll_output(&mut self) -> Option<Output<Self::Message, Self::Phase>>;

    /// When [`Game::handle_timeout`] should next be called.
    fn next_deadline(&self) -> Option<Millis>;

    /// The current phase message.
    fn phase(&self, roster: &Roster) -> Self::Phase;

    /// Whether a game is in progress (not in the lobby, not over): seats are fixed, `ready`
    /// waits, a newcomer watches.
    fn running(&self) -> bool;

    /// Who receives whom, now, over the seats of `roster`.
    fn routes(&self, roster: &Roster) -> Routes;

    /// `id`'s standing.
    fn standing(&self, roster: &Roster, id: &str) -> Standing;

    /// Who reads `who`'s chat on `channel` now, or why `who` may not write it. By default a
    /// kind has one channel, `all`, that everyone writes and reads.
    fn chat_readers(&self, _roster: &Roster, _who: &str, channel: &str) -> Result<To, GameError> {
        match channel {
            "all" => Ok(To::All),
            other => Err(GameError::BadField(format!("channel: this room has only \"all\", not {other:?}"))),
        }
    }

    /// Whether `who` may write `text` on `channel` now, once [`Game::chat_readers`] allowed
    /// the channel: a game that keeps a secret screens what would give it away. By default
    /// anything goes.
    fn check_chat(&self, _roster: &Roster, _who: &str, _channel: &str, _text: &str) -> Result<(), GameError> {
        Ok(())
    }

    /// What `id` must be sent, in its `welcome`, to catch up: a seat that resumes
    /// (`resumed`) or that joins now. Field name → value.
    fn catch_up(&self, _roster: &Roster, _id: &str, _resumed: bool) -> Vec<(&'static str, serde_json::Value)> {
        Vec::new()
    }

    /// Limits of this kind the client should respect, added to `welcome.limits` (stage-based
    /// kinds: `max_on_stage`). Field name → value; none by default.
    fn limits(&self) -> Vec<(&'static str, serde_json::Value)> {
        Vec::new()
    }
}
