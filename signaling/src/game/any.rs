//! Any game, as the room holds it: one object-safe form that speaks JSON. The room, the game
//! log and the room API see a room's kind and JSON only; each game's types stay in its module.

use serde::{Deserialize, Serialize};

use super::driver::{Driver, Event, Input};
use super::{ChatLine, Game, GameError, Id, Millis, PhaseView, Roster, Routes, Standing, To};

/// An input with the game's parts (its command, its settings) still JSON.
pub type AnyInput = Input<serde_json::Value, serde_json::Value>;

/// An event with the game's parts encoded: each message is serialized once, here, for every
/// socket it goes to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnyEvent {
    /// A game message (its JSON text), to whom.
    Send {
        /// Recipients.
        to: To,
        /// The message, `type` included.
        text: String,
    },
    /// The phase changed: apply the routes, then send `phase` to everyone.
    Phase {
        /// The phase's name.
        name: String,
        /// The `phase` message without its `type`.
        info: serde_json::Value,
    },
    /// Someone's participant object changed.
    Updated(Id),
    /// The host's powers moved.
    HostChanged(Id),
    /// The host kicked someone.
    Kicked(Id),
    /// A chat message and its readers.
    Chat {
        /// Readers.
        to: To,
        /// The line.
        line: ChatLine,
    },
}

/// A room's game and seats, whatever the game.
pub trait AnyDriver: Send {
    /// The room kind (the registry's name for the game).
    fn kind(&self) -> &'static str;
    /// The seats.
    fn roster(&self) -> &Roster;
    /// Whether `ty` is one of this game's message types.
    fn accepts(&self, ty: &str) -> bool;
    /// One input; the game's command and settings are parsed here (`bad_field` when they do
    /// not parse).
    fn handle(&mut self, now: Millis, who: &str, input: AnyInput) -> Result<(), GameError>;
    /// Run a due timer.
    fn handle_timeout(&mut self, now: Millis);
    /// The next event.
    fn poll_event(&mut self) -> Option<AnyEvent>;
    /// When to call [`AnyDriver::handle_timeout`].
    fn next_deadline(&self) -> Option<Millis>;
    /// The routes now.
    fn routes(&self) -> Routes;
    /// The current phase: its name and its message without `type`.
    fn phase(&self) -> (String, serde_json::Value);
    /// Whether a game is in progress.
    fn running(&self) -> bool;
    /// `id`'s standing in the game.
    fn standing(&self, id: &str) -> Standing;
    /// What `id`'s `welcome` must carry to catch up.
    fn catch_up(&self, id: &str, resumed: bool) -> Vec<(&'static str, serde_json::Value)>;
    /// The kind's own limits for `welcome.limits`.
    fn limits(&self) -> Vec<(&'static str, serde_json::Value)>;
}

/// A [`Driver`] named by its kind.
pub(crate) struct Kinded<G: Game> {
    pub(crate) kind: &'static str,
    pub(crate) driver: Driver<G>,
}

fn to_json<T: Serialize>(value: &T) -> serde_json::Value {
    // The games' wire types are plain data with string keys: serializing cannot fail.
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

impl<G: Game> AnyDriver for Kinded<G> {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn roster(&self) -> &Roster {
        self.driver.roster()
    }

    fn accepts(&self, ty: &str) -> bool {
        G::COMMANDS.contains(&ty)
    }

    fn handle(&mut self, now: Millis, who: &str, input: AnyInput) -> Result<(), GameError> {
        let typed = match input {
            Input::Join { name, guest } => Input::Join { name, guest },
            Input::Leave => Input::Leave,
            Input::TakeHost => Input::TakeHost,
            Input::Ready { ready } => Input::Ready { ready },
            Input::Start { settings, seed } => {
                let settings = match settings {
                    serde_json::Value::Null => G::Settings::default(),
                    value => {
                        serde_json::from_value(value).map_err(|e| GameError::BadField(format!("settings: {e}")))?
                    }
                };
                Input::Start { settings, seed }
            }
            Input::Chat { channel, text } => Input::Chat { channel, text },
            Input::Kick { id } => Input::Kick { id },
            Input::Rtt(rtt) => Input::Rtt(rtt),
            Input::Game(value) => {
                let ty = value.get("type").and_then(|t| t.as_str()).unwrap_or("").to_owned();
                let command = serde_json::from_value(value).map_err(|e| GameError::BadField(format!("{ty}: {e}")))?;
                Input::Game(command)
            }
        };
        self.driver.handle(now, who, typed)
    }

    fn handle_timeout(&mut self, now: Millis) {
        self.driver.handle_timeout(now);
    }

    fn poll_event(&mut self) -> Option<AnyEvent> {
        Some(match self.driver.poll_event()? {
            Event::Send(to, message) => {
                let text = serde_json::to_string(&message).unwrap_or_else(|_| "{}".into());
                AnyEvent::Send { to, text }
            }
            Event::Phase(phase) => AnyEvent::Phase { name: phase.name().to_owned(), info: to_json(&phase) },
            Event::Updated(id) => AnyEvent::Updated(id),
            Event::HostChanged(id) => AnyEvent::HostChanged(id),
            Event::Kicked(id) => AnyEvent::Kicked(id),
            Event::Chat(to, line) => AnyEvent::Chat { to, line },
        })
    }

    fn next_deadline(&self) -> Option<Millis> {
        self.driver.next_deadline()
    }

    fn routes(&self) -> Routes {
        self.driver.routes()
    }

    fn phase(&self) -> (String, serde_json::Value) {
        let phase = self.driver.phase();
        (phase.name().to_owned(), to_json(&phase))
    }

    fn running(&self) -> bool {
        self.driver.running()
    }

    fn standing(&self, id: &str) -> Standing {
        self.driver.standing(id)
    }

    fn catch_up(&self, id: &str, resumed: bool) -> Vec<(&'static str, serde_json::Value)> {
        self.driver.catch_up(id, resumed)
    }

    fn limits(&self) -> Vec<(&'static str, serde_json::Value)> {
        self.driver.limits()
    }
}
