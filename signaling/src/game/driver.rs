//! The seats every kind of game shares, around one game: a [`Driver`] takes a room's inputs —
//! arrivals and departures, the host's powers, `ready`, `kick`, chat, `start_game`, and the
//! game's own commands — keeps the [`Roster`] and hands the game what is its business. Pure,
//! like the game: time is an input, outputs are queued.
//!
//! Decisions shared by every kind (where docs/PROTOCOL.md leaves the choice open):
//! - Any input first runs a game timer that is already due at `now`, so a vote that arrives
//!   after its phase's deadline is refused (`wrong_phase`) even if the room's timer is late.
//!   The timer's outputs are queued before the input's.
//! - An input from someone not seated is `not_allowed` (a second `join` of a seat too).
//! - The first to join holds the powers, without a [`Event::HostChanged`] (the `welcome` says
//!   who hosts); the event marks hand-overs only. A guest (a room whose powers come from a host
//!   token) never gets them on arrival.
//! - `ready` is for the lobby and game over, and is cleared for everyone when a game starts, so
//!   it means "ready for the next one".
//! - A kicked name may not come back until the game returns to the lobby.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::{ChatLine, Game, GameError, Id, Millis, Output, PhaseView, Roster, Routes, Rtt, Standing, To, LOBBY};

/// What a room asks of its seats and game; `C` and `S` are the game's command and settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Input<C, S> {
    /// Someone takes a seat. A `guest` does not get the powers on arrival.
    Join {
        /// Display name.
        name: String,
        /// Arrives without the powers even when nobody holds them.
        #[serde(default)]
        guest: bool,
    },
    /// Someone leaves for good (left, kicked, or their reconnection grace ran out).
    Leave,
    /// Someone presented a valid host token (the room checked it): the powers are theirs.
    TakeHost,
    /// Advisory readiness.
    Ready {
        /// Ready or not.
        ready: bool,
    },
    /// Host: start a game (from the lobby or from game over).
    Start {
        /// The game's settings.
        settings: S,
        /// The game's seed: the room draws one per game (so the log replays it); none keeps
        /// drawing from the game's own stream.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seed: Option<u64>,
    },
    /// A chat message (length already checked).
    Chat {
        /// Channel name.
        channel: String,
        /// Text.
        text: String,
    },
    /// Host: remove someone.
    Kick {
        /// Whom.
        id: Id,
    },
    /// The server measured the seat's round trip again.
    Rtt(Rtt),
    /// One of the game's own commands.
    Game(C),
}

/// What the seats and the game tell the room, addressed.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<M, P> {
    /// A game message, to whom.
    Send(To, M),
    /// The phase changed (to everyone): the room applies the routes before sending it.
    Phase(P),
    /// Someone's participant object changed (`participant_updated`).
    Updated(Id),
    /// The host's powers moved (to everyone).
    HostChanged(Id),
    /// The host kicked someone: the room closes their socket and removes them.
    Kicked(Id),
    /// A chat message and exactly who may read it.
    Chat(To, ChatLine),
}

/// The typed event of a driver around `G`.
pub type EventOf<G> = Event<<G as Game>::Message, <G as Game>::Phase>;

/// A game with its seats.
#[derive(Debug)]
pub struct Driver<G: Game> {
    roster: Roster,
    game: G,
    events: VecDeque<EventOf<G>>,
}

impl<G: Game> Driver<G> {
    /// `game` in an empty room.
    pub fn new(game: G) -> Self {
        Driver::with_roster(game, Roster::new())
    }

    /// `game` in a room whose seats are already taken (a kind switch keeps the seats).
    pub fn with_roster(game: G, roster: Roster) -> Self {
        Driver { roster, game, events: VecDeque::new() }
    }

    /// The seats.
    pub fn roster(&self) -> &Roster {
        &self.roster
    }

    /// The game.
    pub fn game(&self) -> &G {
        &self.game
    }

    /// The seats, giving the game up (a kind switch).
    pub fn into_roster(self) -> Roster {
        self.roster
    }

    /// One input from `who` at `now`. Outputs it causes are queued for [`Driver::poll_event`].
    pub fn handle(&mut self, now: Millis, who: &str, input: Input<G::Command, G::Settings>) -> Result<(), GameError> {
        self.handle_timeout(now);
        let joining = matches!(input, Input::Join { .. });
        if !joining && !self.roster.contains(who) {
            return Err(GameError::NotAllowed("not in the room".into()));
        }
        let result = self.input(now, who, input);
        self.drain_game();
        result
    }

    fn input(&mut self, now: Millis, who: &str, input: Input<G::Command, G::Settings>) -> Result<(), GameError> {
        match input {
            Input::Join { name, guest } => {
                if !self.roster.join(who, &name, !guest) {
                    return Err(GameError::NotAllowed("already in the room".into()));
                }
                self.game.joined(now, &self.roster, who);
            }
            Input::Leave => {
                // A hand-over can change standings that depend on who hosts (a stage's); the
                // game reports what the departure itself changes.
                let before = self.standings();
                if let Some(host) = self.roster.leave(who) {
                    self.events.push_back(Event::HostChanged(host));
                    self.emit_changes(before);
                }
                self.game.left(now, &self.roster, who);
            }
            Input::TakeHost => {
                let before = self.standings();
                if self.roster.take_host(who) {
                    self.events.push_back(Event::HostChanged(who.to_owned()));
                    self.emit_changes(before);
                }
            }
            Input::Ready { ready } => {
                if self.game.running() {
                    return Err(GameError::WrongPhase("ready is for the lobby and game over".into()));
                }
                if self.roster.set_ready(who, ready) {
                    self.events.push_back(Event::Updated(who.to_owned()));
                }
            }
            Input::Start { settings, seed } => {
                if !self.roster.is_host(who) {
                    return Err(GameError::NotHost("only the host can start a game".into()));
                }
                // The game's own check runs for every kind here, not in each game's `start`.
                G::check_settings(&settings)?;
                let before = self.standings();
                self.game.start(now, &self.roster, who, settings, seed)?;
                self.roster.clear_ready();
                self.emit_changes(before);
            }
            Input::Chat { channel, text } => {
                let to = self.game.chat_readers(&self.roster, who, &channel)?;
                self.game.check_chat(&self.roster, who, &channel, &text)?;
                self.events.push_back(Event::Chat(to, ChatLine { from: who.to_owned(), channel, text, at: now }));
            }
            Input::Kick { id } => {
                if !self.roster.is_host(who) {
                    return Err(GameError::NotHost("only the host can kick".into()));
                }
                let Some(name) = self.roster.seat(&id).map(|s| s.name.clone()) else {
                    return Err(GameError::BadField(format!("id: {id:?} is not in the room")));
                };
                if id == who {
                    return Err(GameError::NotAllowed("the host cannot kick themselves".into()));
                }
                self.roster.ban(&name);
                self.events.push_back(Event::Kicked(id));
            }
            Input::Rtt(rtt) => {
                self.roster.set_rtt(who, rtt);
            }
            Input::Game(command) => self.game.handle(now, &self.roster, who, command)?,
        }
        Ok(())
    }

    /// Time has reached `now`: run the game's timer if it is due.
    pub fn handle_timeout(&mut self, now: Millis) {
        if self.game.next_deadline().is_some_and(|d| d <= now) {
            self.game.handle_timeout(now, &self.roster);
            self.drain_game();
        }
    }

    /// The next queued event.
    pub fn poll_event(&mut self) -> Option<EventOf<G>> {
        self.events.pop_front()
    }

    /// When [`Driver::handle_timeout`] should next be called.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.game.next_deadline()
    }

    /// The routing policy now.
    pub fn routes(&self) -> Routes {
        self.game.routes(&self.roster)
    }

    /// The current phase message.
    pub fn phase(&self) -> G::Phase {
        self.game.phase(&self.roster)
    }

    /// Whether a game is in progress.
    pub fn running(&self) -> bool {
        self.game.running()
    }

    /// `id`'s standing in the game.
    pub fn standing(&self, id: &str) -> Standing {
        self.game.standing(&self.roster, id)
    }

    /// What `id`'s `welcome` must carry to catch up.
    pub fn catch_up(&self, id: &str, resumed: bool) -> Vec<(&'static str, serde_json::Value)> {
        self.game.catch_up(&self.roster, id, resumed)
    }

    /// The game's own limits, for `welcome.limits`.
    pub fn limits(&self) -> Vec<(&'static str, serde_json::Value)> {
        self.game.limits()
    }

    /// Everyone's (ready, standing), to diff across a change that touches many.
    fn standings(&self) -> Vec<(Id, bool, Standing)> {
        self.roster.seats().iter().map(|s| (s.id.clone(), s.ready, self.standing(&s.id))).collect()
    }

    fn emit_changes(&mut self, before: Vec<(Id, bool, Standing)>) {
        for (id, ready, standing) in before {
            if !self.roster.contains(&id) {
                continue; // gone: `participant_left` says so
            }
            let now_ready = self.roster.seat(&id).is_some_and(|s| s.ready);
            if now_ready != ready || self.standing(&id) != standing {
                self.events.push_back(Event::Updated(id));
            }
        }
    }

    /// Move the game's outputs to the queue; a return to the lobby lifts the kicks.
    fn drain_game(&mut self) {
        while let Some(output) = self.game.poll_output() {
            self.events.push_back(match output {
                Output::Send(to, message) => Event::Send(to, message),
                Output::Phase(phase) => {
                    if phase.name() == LOBBY {
                        self.roster.clear_bans();
                    }
                    Event::Phase(phase)
                }
                Output::Standing(id) => Event::Updated(id),
            });
        }
    }
}
