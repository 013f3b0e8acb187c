//! Mafia (docs/PROTOCOL.md, "The game") as a pure state machine behind the [`Game`] interface.
//!
//! The seats (presence, host, ready, kick) are the room's ([`Roster`]); this module holds the
//! game: the deal, the phases, the night, the votes, the win check and the routing table.
//! Roles are dealt from the seed of each game, so a game replays exactly from its log.
//!
//! Decisions the rules leave open:
//! - Targets: an id that is not a player of this game (unknown, spectator, moderator) is
//!   `bad_field`; a player who may not be targeted (dead, oneself, a fellow mafioso, the
//!   doctor's save of last night) is `not_allowed`.
//! - A player who leaves keeps their seat for the reveal (`game_over`, the moderator's roles)
//!   but loses its rights: if the same id comes back during the game they are a spectator.
//!   Leaving emits `eliminated` (`left`) but no standing change (the room announces the
//!   departure itself). A moderator who leaves ends the moderator's view for this game.
//! - Night picks of mafia who die or leave before dawn are discarded, as are saves of doctors
//!   who leave; the majority is over the mafia living at night's end.
//! - A ballot of a player who leaves is withdrawn (a fresh `vote_update` says so); nomination
//!   votes *for* a player who leaves count as "no trial". A repeated `call_vote` changes
//!   nothing and sends nothing.
//! - Phase ends are `now + length` at the moment the phase begins.

mod chat;
pub mod policy;
mod setup;
mod table;
mod tally;
mod wire;

use std::collections::VecDeque;

use rand::rngs::StdRng;
use rand::SeedableRng;

pub use self::setup::check_settings;
use self::setup::{Counts, Lengths, MAX_PLAYERS, MIN_PLAYERS};
use self::table::Table;
use self::tally::{Ballots, Night};
pub use self::wire::{
    Ballot, Cause, Channel, Command, Message, Phase, PhaseInfo, Role, RoleInfo, Settings, Verdict, VoteKind, VoteTally,
    Winner,
};
use crate::game::{Game, GameError, Id, Millis, Output, Roster, Routes, Standing, To};

type Out = Output<Message, PhaseInfo>;

/// The Mafia game of one room.
#[derive(Debug)]
pub struct Mafia {
    /// Deals roles; one stream across the room's games unless a game brings its own seed.
    rng: StdRng,
    phase: Phase,
    round: u32,
    ends_at: Option<Millis>,
    /// On trial, during defense and judgment.
    accused: Option<Id>,
    /// The current game, from the deal until the return to the lobby.
    table: Option<Table>,
    night: Night,
    ballots: Ballots,
    /// The tally last sent in this phase, for a seat that resumes.
    last_tally: Option<VoteTally>,
    outputs: VecDeque<Out>,
}

impl Mafia {
    /// A new game in the lobby; `seed` drives role dealing until a game brings its own.
    pub fn new(seed: u64) -> Self {
        Mafia {
            rng: StdRng::seed_from_u64(seed),
            phase: Phase::Lobby,
            round: 0,
            ends_at: None,
            accused: None,
            table: None,
            night: Night::default(),
            ballots: Ballots::default(),
            last_tally: None,
            outputs: VecDeque::new(),
        }
    }

    /// The current phase.
    pub fn current_phase(&self) -> Phase {
        self.phase
    }

    fn is_living(&self, id: &str) -> bool {
        self.table.as_ref().is_some_and(|t| t.is_living(id))
    }

    /// The living players in presence order.
    fn living(&self, roster: &Roster) -> Vec<Id> {
        roster.ids().filter(|id| self.is_living(id)).cloned().collect()
    }

    fn emit(&mut self, output: Out) {
        self.outputs.push_back(output);
    }

    fn send_all(&mut self, message: Message) {
        self.emit(Output::Send(To::All, message));
    }

    /// Everyone's standing, to diff across a change that touches many.
    fn standings(&self, roster: &Roster) -> Vec<(Id, Standing)> {
        roster.ids().map(|id| (id.clone(), self.standing(roster, id))).collect()
    }

    /// A standing change for everyone whose standing differs from `before`.
    fn emit_standing_changes(&mut self, roster: &Roster, before: Vec<(Id, Standing)>) {
        for (id, old) in before {
            if self.standing(roster, &id) != old {
                self.emit(Output::Standing(id));
            }
        }
    }

    // ----- phase flow -----

    /// Begin `phase` at `now` and announce it.
    fn enter(&mut self, now: Millis, roster: &Roster, phase: Phase) {
        if phase == Phase::Night {
            self.round = self.round.saturating_add(1);
            self.night = Night::default();
        }
        if !matches!(phase, Phase::Defense | Phase::Judgment) {
            self.accused = None;
        }
        self.ballots = Ballots::default();
        self.last_tally = None;
        self.phase = phase;
        self.ends_at = self.table.as_ref().and_then(|t| t.lengths.get(phase)).map(|len| now.saturating_add(len));
        let info = self.phase(roster);
        self.emit(Output::Phase(info));
    }

    /// Resolve the night: the kill (if any), then dawn.
    fn end_night(&mut self, now: Millis, roster: &Roster) {
        let Some(table) = self.table.as_mut() else { return };
        let victim = self.night.victim(table);
        table.last_saves = self.night.saves_by_living(table);
        if let Some(victim) = victim {
            if self.eliminate(now, roster, &victim, Cause::Killed) {
                return;
            }
        }
        self.enter(now, roster, Phase::Dawn);
    }

    /// Resolve the nomination: a trial, or the night.
    fn end_nomination(&mut self, now: Millis, roster: &Roster) {
        match tally::accused(&self.ballots.nominations, &self.living(roster)) {
            Some(accused) => {
                self.accused = Some(accused);
                self.enter(now, roster, Phase::Defense);
            }
            None => self.enter(now, roster, Phase::Night),
        }
    }

    /// The judgment's voters: the living other than the accused.
    fn jurors(&self, roster: &Roster) -> Vec<Id> {
        let mut living = self.living(roster);
        living.retain(|id| Some(id) != self.accused.as_ref());
        living
    }

    /// Resolve the judgment: maybe an execution, then the night.
    fn end_judgment(&mut self, now: Millis, roster: &Roster) {
        if tally::convicts(&self.ballots.verdicts, &self.jurors(roster)) {
            if let Some(accused) = self.accused.clone() {
                if self.eliminate(now, roster, &accused, Cause::Executed) {
                    return;
                }
            }
        }
        self.enter(now, roster, Phase::Night);
    }

    /// A player dies in the game (they are still in the room). Returns whether the game ended.
    fn eliminate(&mut self, now: Millis, roster: &Roster, id: &str, cause: Cause) -> bool {
        if !self.table.as_mut().is_some_and(|t| t.kill(id)) {
            return false;
        }
        self.send_all(Message::Eliminated { id: id.to_string(), cause });
        self.emit(Output::Standing(id.to_string()));
        self.check_win(now, roster)
    }

    /// The win check; ends the game if someone won. Returns whether it did.
    fn check_win(&mut self, now: Millis, roster: &Roster) -> bool {
        match self.table.as_ref().and_then(Table::winner) {
            Some(winner) => {
                self.game_over(now, roster, winner);
                true
            }
            None => false,
        }
    }

    fn game_over(&mut self, now: Millis, roster: &Roster, winner: Winner) {
        let roles = self.table.as_ref().map(Table::all_roles).unwrap_or_default();
        self.send_all(Message::GameOver { winner, roles });
        self.enter(now, roster, Phase::GameOver);
    }

    fn back_to_lobby(&mut self, now: Millis, roster: &Roster) {
        let before = self.standings(roster);
        self.table = None;
        self.round = 0;
        self.phase = Phase::Lobby;
        self.emit_standing_changes(roster, before);
        self.enter(now, roster, Phase::Lobby);
    }

    /// Early ends: a phase whose condition is met (all acted, all voted, a majority called)
    /// ends now. Checked after every vote and every departure.
    fn maybe_end_early(&mut self, now: Millis, roster: &Roster) {
        let Some(table) = self.table.as_ref() else { return };
        match self.phase {
            Phase::Night if self.night.all_acted(table) => self.end_night(now, roster),
            Phase::Day if self.ballots.calls.len() >= tally::calls_needed(self.living(roster).len()) => {
                self.enter(now, roster, Phase::Nomination)
            }
            Phase::Nomination if self.living(roster).iter().all(|id| self.ballots.nominations.contains_key(id)) => {
                self.end_nomination(now, roster)
            }
            Phase::Judgment if self.jurors(roster).iter().all(|id| self.ballots.verdicts.contains_key(id)) => {
                self.end_judgment(now, roster)
            }
            _ => {}
        }
    }

    /// The current tally of this phase's vote, as sent to everyone.
    fn vote_update(&self, roster: &Roster) -> Option<VoteTally> {
        let (kind, votes, needed) = match self.phase {
            Phase::Day => {
                (VoteKind::CallVote, self.ballots.call_votes(), Some(tally::calls_needed(self.living(roster).len())))
            }
            Phase::Nomination => (VoteKind::Nomination, self.ballots.nomination_votes(), None),
            Phase::Judgment => (VoteKind::Judgment, self.ballots.judgment_votes(), None),
            _ => return None,
        };
        Some(VoteTally { kind, votes, needed })
    }

    fn emit_vote_update(&mut self, roster: &Roster) {
        if let Some(tally) = self.vote_update(roster) {
            self.last_tally = Some(tally.clone());
            self.send_all(Message::VoteUpdate(tally));
        }
    }

    /// `id`'s role message, if they are entitled to one now (to redraw a client on resume).
    pub fn role_of(&self, id: &str) -> Option<RoleInfo> {
        let table = self.table.as_ref().filter(|_| self.phase != Phase::Lobby)?;
        if table.is_moderator(id) {
            return Some(RoleInfo { role: Role::Moderator, teammates: Vec::new(), roles: Some(table.all_roles()) });
        }
        let role = table.role(id)?;
        Some(RoleInfo { role, teammates: table.teammates(id), roles: None })
    }

    // ----- commands -----

    fn call_vote(&mut self, now: Millis, roster: &Roster, who: &str) -> Result<(), GameError> {
        if self.phase != Phase::Day {
            return Err(GameError::WrongPhase("call_vote is for the day".into()));
        }
        if !self.is_living(who) {
            return Err(GameError::NotAllowed("only the living may call the vote".into()));
        }
        if self.ballots.calls.insert(who.to_string()) {
            self.emit_vote_update(roster);
            self.maybe_end_early(now, roster);
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

    fn nominate(&mut self, now: Millis, roster: &Roster, who: &str, target: Option<Id>) -> Result<(), GameError> {
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
        self.emit_vote_update(roster);
        self.maybe_end_early(now, roster);
        Ok(())
    }

    fn judge(&mut self, now: Millis, roster: &Roster, who: &str, verdict: Verdict) -> Result<(), GameError> {
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
        self.emit_vote_update(roster);
        self.maybe_end_early(now, roster);
        Ok(())
    }

    fn night_action(&mut self, now: Millis, roster: &Roster, who: &str, target: &str) -> Result<(), GameError> {
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
                self.emit(Output::Send(To::one(who), Message::Investigation { target: target_id, is_mafia }));
            }
        }
        self.night.acted.insert(who_id);
        self.maybe_end_early(now, roster);
        Ok(())
    }
}

impl Game for Mafia {
    type Command = Command;
    type Message = Message;
    type Phase = PhaseInfo;
    type Settings = Settings;

    const COMMANDS: &'static [&'static str] = Command::TYPES;

    fn check_settings(settings: &Settings) -> Result<(), GameError> {
        check_settings(settings)
    }

    fn start(
        &mut self,
        now: Millis,
        roster: &Roster,
        who: &str,
        settings: Settings,
        seed: Option<u64>,
    ) -> Result<(), GameError> {
        if self.phase.in_game() {
            return Err(GameError::WrongPhase("a game is already running".into()));
        }
        let lengths = Lengths::from_settings(&settings)?;
        let host_plays = settings.host_plays.unwrap_or(true);
        let players: Vec<Id> = roster.ids().filter(|id| host_plays || id.as_str() != who).cloned().collect();
        if !(MIN_PLAYERS..=MAX_PLAYERS).contains(&players.len()) {
            return Err(GameError::NotAllowed(format!("need {MIN_PLAYERS} to {MAX_PLAYERS} players")));
        }
        let counts = Counts::from_settings(&settings, players.len())?;

        if let Some(seed) = seed {
            self.rng = StdRng::seed_from_u64(seed);
        }
        let deal = setup::deal(counts, &players, &mut self.rng);
        let moderator = (!host_plays).then(|| who.to_string());
        self.table = Some(Table::new(deal, moderator.clone(), lengths));
        self.round = 0;
        self.night = Night::default();
        self.phase = Phase::RoleReveal;
        // The seats' standing changes (everyone dealt in now plays) are announced by the
        // driver, together with the cleared `ready`.
        self.enter(now, roster, Phase::RoleReveal);
        for id in players.iter().chain(moderator.iter()) {
            if let Some(role) = self.role_of(id) {
                self.emit(Output::Send(To::one(id), Message::Role(role)));
            }
        }
        Ok(())
    }

    fn handle(&mut self, now: Millis, roster: &Roster, who: &str, command: Command) -> Result<(), GameError> {
        match command {
            Command::CallVote => self.call_vote(now, roster, who),
            Command::Vote { target: Some(target), verdict: None } => self.nominate(now, roster, who, target),
            Command::Vote { target: None, verdict: Some(verdict) } => self.judge(now, roster, who, verdict),
            Command::Vote { .. } => {
                Err(GameError::BadField("vote: give either target (nomination) or verdict (judgment)".into()))
            }
            Command::NightAction { target } => self.night_action(now, roster, who, &target),
        }
    }

    fn left(&mut self, now: Millis, roster: &Roster, who: &str) {
        let was_living = self.table.as_mut().is_some_and(|t| t.leave(who));
        if !(was_living && self.phase.in_game()) {
            return;
        }
        self.send_all(Message::Eliminated { id: who.to_string(), cause: Cause::Left });
        if self.check_win(now, roster) {
            return;
        }
        if self.accused.as_deref() == Some(who) {
            // No one left to judge: the night falls.
            self.enter(now, roster, Phase::Night);
            return;
        }
        let withdrew = self.ballots.forget(who);
        // The day's `needed` shrank with the living, so its tally always changes.
        if withdrew || self.phase == Phase::Day {
            self.emit_vote_update(roster);
        }
        self.maybe_end_early(now, roster);
    }

    fn handle_timeout(&mut self, now: Millis, roster: &Roster) {
        if self.ends_at.is_none_or(|end| now < end) {
            return;
        }
        match self.phase {
            Phase::Lobby => self.ends_at = None,
            Phase::RoleReveal => self.enter(now, roster, Phase::Night),
            Phase::Night => self.end_night(now, roster),
            Phase::Dawn => self.enter(now, roster, Phase::Day),
            Phase::Day => self.enter(now, roster, Phase::Nomination),
            Phase::Nomination => self.end_nomination(now, roster),
            Phase::Defense => self.enter(now, roster, Phase::Judgment),
            Phase::Judgment => self.end_judgment(now, roster),
            Phase::GameOver => self.back_to_lobby(now, roster),
        }
    }

    fn poll_output(&mut self) -> Option<Out> {
        self.outputs.pop_front()
    }

    fn next_deadline(&self) -> Option<Millis> {
        self.ends_at
    }

    fn phase(&self, roster: &Roster) -> PhaseInfo {
        let alive = if self.phase == Phase::Lobby { roster.id_list() } else { self.living(roster) };
        PhaseInfo { phase: self.phase, round: self.round, ends_at: self.ends_at, alive, accused: self.accused.clone() }
    }

    fn running(&self) -> bool {
        self.phase.in_game()
    }

    fn routes(&self, roster: &Roster) -> Routes {
        let participants = roster.id_list();
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

    fn standing(&self, _roster: &Roster, id: &str) -> Standing {
        match self.table.as_ref().filter(|_| self.phase != Phase::Lobby) {
            None => Standing::LOBBY,
            Some(table) => Standing { playing: table.is_player(id), alive: table.is_living(id), ..Standing::default() },
        }
    }

    fn chat_readers(&self, roster: &Roster, who: &str, channel: &str) -> Result<To, GameError> {
        let Some(channel) = Channel::parse(channel) else {
            let shown: String = channel.chars().take(24).collect();
            return Err(GameError::BadField(format!("channel: {shown:?} is not all, mafia or dead")));
        };
        self.may_write(who, channel)?;
        Ok(To::Only(self.readers(roster, channel)))
    }

    fn catch_up(&self, _roster: &Roster, id: &str, resumed: bool) -> Vec<(&'static str, serde_json::Value)> {
        if !resumed {
            return Vec::new();
        }
        let mut out = Vec::new();
        if let Some(role) = self.role_of(id) {
            out.push(("role", serde_json::to_value(role).unwrap_or_default()));
        }
        if let Some(tally) = &self.last_tally {
            out.push(("vote_update", serde_json::to_value(tally).unwrap_or_default()));
        }
        out
    }
}
