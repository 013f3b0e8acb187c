//! Mafia (DESIGN.md §4) as a pure state machine.
//!
//! The room feeds [`Command`]s with the time they arrived and calls
//! [`Game::handle_timeout`] at [`Game::next_deadline`]; everything that happens comes out of
//! [`Game::poll_event`], addressed. Roles are dealt from the seed given to [`Mafia::new`], so a
//! game replays exactly from its seed and its inputs.
//!
//! Decisions where DESIGN.md is silent:
//! - [`Game::handle`] first runs any phase timer that is already due at `now`, so a vote that
//!   arrives after its phase's deadline is refused (`wrong_phase`) even if the room's timer is
//!   late. The timer's events are queued before the command's.
//! - A command from someone not in the room is `not_allowed` (a second `Joined` too).
//! - Targets: an id that is not a player of this game (unknown, spectator, moderator) is
//!   `bad_field`; a player who may not be targeted (dead, oneself, a fellow mafioso, the
//!   doctor's save of last night) is `not_allowed`.
//! - The first participant becomes host without a [`Event::HostChanged`] (the room's
//!   `welcome` says who the host is); the event marks hand-overs only.
//! - `ready` is cleared for everyone when a game starts, so it means "ready for the next one".
//! - A player who leaves keeps their seat for the reveal (`game_over`, the moderator's roles)
//!   but loses its rights: if the same id comes back during the game they are a spectator.
//!   Leaving emits [`Event::Eliminated`] (`left`) but no [`Event::ParticipantChanged`] (the
//!   room announces the departure itself). A moderator who leaves ends the moderator's view
//!   for this game.
//! - Night picks of mafia who die or leave before dawn are discarded, as are saves of doctors
//!   who leave; the majority is over the mafia living at night's end.
//! - A ballot of a player who leaves is withdrawn (a fresh `vote_update` says so); nomination
//!   votes *for* a player who leaves count as "no trial". A repeated `call_vote` changes
//!   nothing and sends nothing.
//! - Phase ends are `now + length` at the moment the phase begins.

mod chat;
mod setup;
mod table;
mod tally;

use std::collections::VecDeque;

use rand::rngs::StdRng;
use rand::SeedableRng;

pub use self::setup::check_settings;
use self::setup::{Counts, Lengths, MAX_PLAYERS, MIN_PLAYERS};
use self::table::Table;
use self::tally::{Ballots, Night};
use super::{
    policy, Cause, Channel, Command, Event, Game, GameError, Id, Millis, Phase, PhaseInfo, Role, Settings, Standing,
    Verdict, VoteKind, Winner,
};
use crate::media::Route;

/// Someone in the room.
#[derive(Debug, Clone)]
struct Member {
    id: Id,
    ready: bool,
}

/// The Mafia game: a room's participants, and the game they are playing (if any).
#[derive(Debug)]
pub struct Mafia {
    /// Deals roles; one stream across the room's games.
    rng: StdRng,
    /// Everyone in the room, in presence order.
    members: Vec<Member>,
    /// Who holds the room's powers.
    host: Option<Id>,
    phase: Phase,
    round: u32,
    ends_at: Option<Millis>,
    /// On trial, during defense and judgment.
    accused: Option<Id>,
    /// The current game, from the deal until the return to the lobby.
    table: Option<Table>,
    night: Night,
    ballots: Ballots,
    events: VecDeque<Event>,
}

impl Mafia {
    /// A new game in the lobby; `seed` drives role dealing.
    pub fn new(seed: u64) -> Self {
        Mafia {
            rng: StdRng::seed_from_u64(seed),
            members: Vec::new(),
            host: None,
            phase: Phase::Lobby,
            round: 0,
            ends_at: None,
            accused: None,
            table: None,
            night: Night::default(),
            ballots: Ballots::default(),
            events: VecDeque::new(),
        }
    }

    fn is_member(&self, id: &str) -> bool {
        self.members.iter().any(|m| m.id == id)
    }

    fn is_living(&self, id: &str) -> bool {
        self.table.as_ref().is_some_and(|t| t.is_living(id))
    }

    /// The living players in presence order.
    fn living(&self) -> Vec<Id> {
        self.members.iter().filter(|m| self.is_living(&m.id)).map(|m| m.id.clone()).collect()
    }

    fn emit(&mut self, event: Event) {
        self.events.push_back(event);
    }

    /// Everyone's standing, to diff across a change that touches many.
    fn standings(&self) -> Vec<(Id, Standing)> {
        self.members.iter().map(|m| (m.id.clone(), self.standing(&m.id))).collect()
    }

    /// [`Event::ParticipantChanged`] for everyone whose standing differs from `before`.
    fn emit_standing_changes(&mut self, before: Vec<(Id, Standing)>) {
        for (id, old) in before {
            if self.standing(&id) != old {
                self.emit(Event::ParticipantChanged { id });
            }
        }
    }

    // ----- phase flow -----

    /// Begin `phase` at `now` and announce it.
    fn enter(&mut self, now: Millis, phase: Phase) {
        if phase == Phase::Night {
            self.round = self.round.saturating_add(1);
            self.night = Night::default();
        }
        if !matches!(phase, Phase::Defense | Phase::Judgment) {
            self.accused = None;
        }
        self.ballots = Ballots::default();
        self.phase = phase;
        self.ends_at = self.table.as_ref().and_then(|t| t.lengths.get(phase)).map(|len| now.saturating_add(len));
        let info = self.phase();
        self.emit(Event::Phase(info));
    }

    /// Resolve the night: the kill (if any), then dawn.
    fn end_night(&mut self, now: Millis) {
        let Some(table) = self.table.as_mut() else { return };
        let victim = self.night.victim(table);
        table.last_saves = self.night.saves_by_living(table);
        if let Some(victim) = victim {
            if self.eliminate(now, &victim, Cause::Killed) {
                return;
            }
        }
        self.enter(now, Phase::Dawn);
    }

    /// Resolve the nomination: a trial, or the night.
    fn end_nomination(&mut self, now: Millis) {
        match tally::accused(&self.ballots.nominations, &self.living()) {
            Some(accused) => {
                self.accused = Some(accused);
                self.enter(now, Phase::Defense);
            }
            None => self.enter(now, Phase::Night),
        }
    }

    /// The judgment's voters: the living other than the accused.
    fn jurors(&self) -> Vec<Id> {
        let mut living = self.living();
        living.retain(|id| Some(id) != self.accused.as_ref());
        living
    }

    /// Resolve the judgment: maybe an execution, then the night.
    fn end_judgment(&mut self, now: Millis) {
        if tally::convicts(&self.ballots.verdicts, &self.jurors()) {
            if let Some(accused) = self.accused.clone() {
                if self.eliminate(now, &accused, Cause::Executed) {
                    return;
                }
            }
        }
        self.enter(now, Phase::Night);
    }

    /// A player dies in the game (they are still in the room). Returns whether the game ended.
    fn eliminate(&mut self, now: Millis, id: &str, cause: Cause) -> bool {
        if !self.table.as_mut().is_some_and(|t| t.kill(id)) {
            return false;
        }
        self.emit(Event::Eliminated { id: id.to_string(), cause });
        self.emit(Event::ParticipantChanged { id: id.to_string() });
        self.check_win(now)
    }

    /// The win check; ends the game if someone won. Returns whether it did.
    fn check_win(&mut self, now: Millis) -> bool {
        match self.table.as_ref().and_then(Table::winner) {
            Some(winner) => {
                self.game_over(now, winner);
                true
            }
            None => false,
        }
    }

    fn game_over(&mut self, now: Millis, winner: Winner) {
        let roles = self.table.as_ref().map(Table::all_roles).unwrap_or_default();
        self.emit(Event::GameOver { winner, roles });
        self.enter(now, Phase::GameOver);
    }

    fn back_to_lobby(&mut self, now: Millis) {
        let before = self.standings();
        self.table = None;
        self.round = 0;
        self.phase = Phase::Lobby;
        self.emit_standing_changes(before);
        self.enter(now, Phase::Lobby);
    }

    /// Early ends: a phase whose condition is met (all acted, all voted, a majority called)
    /// ends now. Checked after every vote and every departure.
    fn maybe_end_early(&mut self, now: Millis) {
        let Some(table) = self.table.as_ref() else { return };
        match self.phase {
            Phase::Night if self.night.all_acted(table) => self.end_night(now),
            Phase::Day if self.ballots.calls.len() >= tally::calls_needed(self.living().len()) => {
                self.enter(now, Phase::Nomination)
            }
            Phase::Nomination if self.living().iter().all(|id| self.ballots.nominations.contains_key(id)) => {
                self.end_nomination(now)
            }
            Phase::Judgment if self.jurors().iter().all(|id| self.ballots.verdicts.contains_key(id)) => {
                self.end_judgment(now)
            }
            _ => {}
        }
    }

    /// The current tally of this phase's vote, as sent to everyone.
    fn vote_update(&self) -> Option<Event> {
        let (kind, votes, needed) = match self.phase {
            Phase::Day => {
                (VoteKind::CallVote, self.ballots.call_votes(), Some(tally::calls_needed(self.living().len())))
            }
            Phase::Nomination => (VoteKind::Nomination, self.ballots.nomination_votes(), None),
            Phase::Judgment => (VoteKind::Judgment, self.ballots.judgment_votes(), None),
            _ => return None,
        };
        Some(Event::VoteUpdate { kind, votes, needed })
    }

    fn emit_vote_update(&mut self) {
        if let Some(update) = self.vote_update() {
            self.emit(update);
        }
    }

    // ----- commands -----

    fn join(&mut self, who: &str, may_host: bool) -> Result<(), GameError> {
        if self.is_member(who) {
            return Err(GameError::NotAllowed("already in the room".into()));
        }
        self.members.push(Member { id: who.to_string(), ready: false });
        if may_host && self.host.is_none() {
            self.host = Some(who.to_string());
        }
        Ok(())
    }

    fn leave(&mut self, now: Millis, who: &str) {
        self.members.retain(|m| m.id != who);
        if self.host.as_deref() == Some(who) {
            // Powers pass to the longest-present participant; a moderator's view does not.
            self.host = self.members.first().map(|m| m.id.clone());
            if let Some(host) = self.host.clone() {
                self.emit(Event::HostChanged { host });
            }
        }
        let was_living = self.table.as_mut().is_some_and(|t| t.leave(who));
        if !(was_living && self.phase.in_game()) {
            return;
        }
        self.emit(Event::Eliminated { id: who.to_string(), cause: Cause::Left });
        if self.check_win(now) {
            return;
        }
        if self.accused.as_deref() == Some(who) {
            // No one left to judge: the night falls.
            self.enter(now, Phase::Night);
            return;
        }
        let withdrew = self.ballots.forget(who);
        // The day's `needed` shrank with the living, so its tally always changes.
        if withdrew || self.phase == Phase::Day {
            self.emit_vote_update();
        }
        self.maybe_end_early(now);
    }

    fn ready(&mut self, who: &str, ready: bool) -> Result<(), GameError> {
        if self.phase.in_game() {
            return Err(GameError::WrongPhase("ready is for the lobby and game over".into()));
        }
        if let Some(member) = self.members.iter_mut().find(|m| m.id == who) {
            if member.ready != ready {
                member.ready = ready;
                self.emit(Event::ParticipantChanged { id: who.to_string() });
            }
        }
        Ok(())
    }

    fn start(&mut self, now: Millis, who: &str, settings: &Settings) -> Result<(), GameError> {
        if self.host.as_deref() != Some(who) {
            return Err(GameError::NotHost("only the host can start a game".into()));
        }
        if self.phase.in_game() {
            return Err(GameError::WrongPhase("a game is already running".into()));
        }
        let lengths = Lengths::from_settings(settings)?;
        let host_plays = settings.host_plays.unwrap_or(true);
        let players: Vec<Id> =
            self.members.iter().filter(|m| host_plays || m.id != who).map(|m| m.id.clone()).collect();
        if !(MIN_PLAYERS..=MAX_PLAYERS).contains(&players.len()) {
            return Err(GameError::NotAllowed(format!("need {MIN_PLAYERS} to {MAX_PLAYERS} players")));
        }
        let counts = Counts::from_settings(settings, players.len())?;

        if let Some(seed) = settings.seed {
            self.rng = StdRng::seed_from_u64(seed);
        }
        let before = self.standings();
        let deal = setup::deal(counts, &players, &mut self.rng);
        let moderator = (!host_plays).then(|| who.to_string());
        self.table = Some(Table::new(deal, moderator.clone(), lengths));
        for member in &mut self.members {
            member.ready = false;
        }
        self.round = 0;
        self.night = Night::default();
        self.phase = Phase::RoleReveal;
        self.emit_standing_changes(before);
        self.enter(now, Phase::RoleReveal);
        for id in players.iter().chain(moderator.iter()) {
            if let Some(role) = self.role_of(id) {
                self.emit(role);
            }
        }
        Ok(())
    }

    fn call_vote(&mut self, now: Millis, who: &str) -> Result<(), GameError> {
        if self.phase != Phase::Day {
            return Err(GameError::WrongPhase("call_vote is for the day".into()));
        }
        if !self.is_living(who) {
            return Err(GameError::NotAllowed("only the living may call the vote".into()));
        }
        if self.ballots.calls.insert(who.to_string()) {
            self.emit_vote_update();
            self.maybe_end_early(now);
        }
        Ok(())
    }

    /// A target id must name a player of this game. One who was dealt in but left is refused
    /// like the dead (the move is not allowed); an id never dealt is a bad field.
    fn check_target(&self, target: &str) -> Result<(), GameError> {
        match self.table.as_ref() {
            Some(t) if t.is_player(target) => Ok(()),
            Some(t) if t.was_dealt(target) => Err(GameError::NotAllowed(format!("{target} has left the game"))),
            _ => Err(GameError::BadField(format!("target: {target:?} is not a player"))),
        }
    }

    fn nominate(&mut self, now: Millis, who: &str, target: Option<Id>) -> Result<(), GameError> {
        if self.phase != Phase::Nomination {
            return Err(GameError::WrongPhase("nominations are for the nomination".into()));
        }
        if !self.is_living(who) {
            return Err(GameError::NotAllowed("only the living vote".into()));
        }
        if self.ballots.nominations.contains_key(who) {
            return Err(GameError::NotAllowed("you have already voted".into()));
        }
        if let Some(target) = target.as_deref() {
            self.check_target(target)?;
            if !self.is_living(target) {
                return Err(GameError::NotAllowed("you can only nominate the living".into()));
            }
            if target == who {
                return Err(GameError::NotAllowed("you cannot nominate yourself".into()));
            }
        }
        self.ballots.nominations.insert(who.to_string(), target);
        self.emit_vote_update();
        self.maybe_end_early(now);
        Ok(())
    }

    fn judge(&mut self, now: Millis, who: &str, verdict: Verdict) -> Result<(), GameError> {
        if self.phase != Phase::Judgment {
            return Err(GameError::WrongPhase("verdicts are for the judgment".into()));
        }
        if self.accused.as_deref() == Some(who) {
            return Err(GameError::NotAllowed("the accused does not vote".into()));
        }
        if !self.is_living(who) {
            return Err(GameError::NotAllowed("only the living vote".into()));
        }
        if self.ballots.verdicts.contains_key(who) {
            return Err(GameError::NotAllowed("you have already voted".into()));
        }
        self.ballots.verdicts.insert(who.to_string(), verdict);
        self.emit_vote_update();
        self.maybe_end_early(now);
        Ok(())
    }

    fn night_action(&mut self, now: Millis, who: &str, target: &str) -> Result<(), GameError> {
        if self.phase != Phase::Night {
            return Err(GameError::WrongPhase("night actions are for the night".into()));
        }
        let Some(table) = self.table.as_ref() else {
            return Err(GameError::WrongPhase("no game is running".into()));
        };
        let role = match table.role(who) {
            Some(role @ (Role::Mafia | Role::Doctor | Role::Detective)) if table.is_living(who) => role,
            _ => return Err(GameError::NotAllowed("only the living mafia, doctor and detective act at night".into())),
        };
        if self.night.acted.contains(who) {
            return Err(GameError::NotAllowed("you have already acted tonight".into()));
        }
        self.check_target(target)?;
        if !table.is_living(target) {
            return Err(GameError::NotAllowed("the target must be alive".into()));
        }
        let (who_id, target_id) = (who.to_string(), target.to_string());
        match role {
            Role::Mafia => {
                if table.role(target) == Some(Role::Mafia) {
                    return Err(GameError::NotAllowed("the mafia cannot target a mafioso".into()));
                }
                self.night.kills.insert(who_id.clone(), target_id);
            }
            Role::Doctor => {
                if table.last_saves.get(who) == Some(&target_id) {
                    return Err(GameError::NotAllowed("you cannot save the same player two nights running".into()));
                }
                self.night.saves.insert(who_id.clone(), target_id);
            }
            _ => {
                if target == who {
                    return Err(GameError::NotAllowed("you cannot investigate yourself".into()));
                }
                let is_mafia = table.role(target) == Some(Role::Mafia);
                self.emit(Event::Investigation { to: who_id.clone(), target: target_id, is_mafia });
            }
        }
        self.night.acted.insert(who_id);
        self.maybe_end_early(now);
        Ok(())
    }

    fn chat(&mut self, now: Millis, who: &str, channel: Channel, text: String) -> Result<(), GameError> {
        self.may_write(who, channel)?;
        let to = self.readers(channel);
        self.emit(Event::Chat { from: who.to_string(), channel, text, at: now, to });
        Ok(())
    }

    fn kick(&mut self, who: &str, target: &str) -> Result<(), GameError> {
        if self.host.as_deref() != Some(who) {
            return Err(GameError::NotHost("only the host can kick".into()));
        }
        if !self.is_member(target) {
            return Err(GameError::BadField(format!("id: {target:?} is not in the room")));
        }
        if target == who {
            return Err(GameError::NotAllowed("the host cannot kick themselves".into()));
        }
        self.emit(Event::Kicked { id: target.to_string() });
        Ok(())
    }
}

impl Game for Mafia {
    fn handle(&mut self, now: Millis, who: &str, command: Command) -> Result<(), GameError> {
        // A command arriving after its phase's deadline is late, however late the timer is.
        self.handle_timeout(now);
        if !matches!(command, Command::Joined | Command::JoinedGuest) && !self.is_member(who) {
            return Err(GameError::NotAllowed("not in the room".into()));
        }
        match command {
            Command::Joined => self.join(who, true),
            Command::JoinedGuest => self.join(who, false),
            Command::TakeHost => {
                if self.host.as_deref() != Some(who) {
                    self.host = Some(who.to_string());
                    self.emit(Event::HostChanged { host: who.to_string() });
                }
                Ok(())
            }
            Command::Left => {
                self.leave(now, who);
                Ok(())
            }
            Command::Ready(ready) => self.ready(who, ready),
            Command::StartGame(settings) => self.start(now, who, &settings),
            Command::CallVote => self.call_vote(now, who),
            Command::Nominate(target) => self.nominate(now, who, target),
            Command::Judge(verdict) => self.judge(now, who, verdict),
            Command::NightAction(target) => self.night_action(now, who, &target),
            Command::Chat { channel, text } => self.chat(now, who, channel, text),
            Command::Kick(target) => self.kick(who, &target),
        }
    }

    fn handle_timeout(&mut self, now: Millis) {
        if self.ends_at.is_none_or(|end| now < end) {
            return;
        }
        match self.phase {
            Phase::Lobby => self.ends_at = None,
            Phase::RoleReveal => self.enter(now, Phase::Night),
            Phase::Night => self.end_night(now),
            Phase::Dawn => self.enter(now, Phase::Day),
            Phase::Day => self.enter(now, Phase::Nomination),
            Phase::Nomination => self.end_nomination(now),
            Phase::Defense => self.enter(now, Phase::Judgment),
            Phase::Judgment => self.end_judgment(now),
            Phase::GameOver => self.back_to_lobby(now),
        }
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn next_deadline(&self) -> Option<Millis> {
        self.ends_at
    }

    fn routes(&self) -> Vec<Route> {
        let participants: Vec<Id> = self.members.iter().map(|m| m.id.clone()).collect();
        let Some(table) = self.table.as_ref().filter(|_| self.phase != Phase::Lobby) else {
            let input =
                policy::PolicyInput { phase: Some(self.phase), participants: &participants, ..Default::default() };
            return policy::routes(&input);
        };
        let roles = table.present_roles();
        let alive = table.living_set();
        let input = policy::PolicyInput {
            phase: Some(self.phase),
            participants: &participants,
            roles: Some(&roles),
            alive: Some(&alive),
            accused: self.accused.as_deref(),
            moderator: table.moderator.as_deref(),
        };
        policy::routes(&input)
    }

    fn phase(&self) -> PhaseInfo {
        let alive = if self.phase == Phase::Lobby {
            self.members.iter().map(|m| m.id.clone()).collect()
        } else {
            self.living()
        };
        PhaseInfo { phase: self.phase, round: self.round, ends_at: self.ends_at, alive, accused: self.accused.clone() }
    }

    fn participants(&self) -> Vec<Id> {
        self.members.iter().map(|m| m.id.clone()).collect()
    }

    fn host(&self) -> Option<Id> {
        self.host.clone()
    }

    fn standing(&self, id: &str) -> Standing {
        let ready = self.members.iter().any(|m| m.id == id && m.ready);
        match self.table.as_ref().filter(|_| self.phase != Phase::Lobby) {
            None => Standing { ready, playing: false, alive: true },
            Some(table) => Standing { ready, playing: table.is_player(id), alive: table.is_living(id) },
        }
    }

    fn role_of(&self, id: &str) -> Option<Event> {
        let table = self.table.as_ref().filter(|_| self.phase != Phase::Lobby)?;
        if table.is_moderator(id) {
            return Some(Event::Role {
                to: id.to_string(),
                role: Role::Moderator,
                teammates: Vec::new(),
                roles: Some(table.all_roles()),
            });
        }
        let role = table.role(id)?;
        Some(Event::Role { to: id.to_string(), role, teammates: table.teammates(id), roles: None })
    }
}
