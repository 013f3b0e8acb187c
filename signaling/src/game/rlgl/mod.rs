//! Red light, green light (docs/PROTOCOL.md, "Red light, green light rooms") as a pure state
//! machine behind the [`Game`] interface, played on a [`Stage`].
//!
//! Phases: `lobby` → `countdown` (3 s) → `green` / `red` alternating → `game_over` → `lobby`.
//! The light is automatic ([`light`], from the game's seed) or the host's (`light`). Players
//! send `move` with the steps their phone counted; the [`track`] caps and adds them; during
//! red each move is judged on its arrival time ([`judge`]). An eliminated player is put in the
//! [`spotlight`] for `spotlight_seconds`; the winners at game over.
//!
//! Decisions the contract leaves open:
//! - The host leads and does not run; everyone else seated at the start plays (at least one),
//!   except the web client's TV views (a seat named "TV" and four letters or digits, as
//!   web/app.js names a shared screen). Who joins later watches. A host who leaves hands the powers on as in every kind; a player
//!   who gets them keeps running.
//! - `move` with 0 steps is nothing (not judged). A move from the finished, the out or a
//!   spectator is `not_allowed`, outside green and red `wrong_phase`; either way nothing
//!   changes. Steps over the cap are dropped silently.
//! - A move arriving during green counts, even one arriving just after red ended.
//! - `light` is the host's and only while the light is not automatic (`not_allowed`
//!   otherwise); the colour it already has changes nothing.
//! - A player who leaves mid-game is `eliminated` with cause `left`, not spotlighted.
//! - The game lasts `seconds` from the first green; `game_over` lasts 15 s, and the host may
//!   start the next game from it.
//! - `progress` carries every player's distance; it goes out on the first change after a
//!   quiet 200 ms, else when 200 ms have passed since the last one.
//! - Stage commands (`raise_hand`, `stage`, `view`) work as in stage rooms, in every phase.

pub mod judge;
pub mod light;
pub mod spotlight;
pub mod track;
mod wire;

use std::collections::VecDeque;

use rand::rngs::StdRng;
use rand::SeedableRng;

use self::judge::Verdict;
use self::spotlight::Spotlight;
use self::track::Track;
pub use self::wire::{
    Cause, Color, Command, Judgment, Message, Phase, PhaseInfo, Place, Rules, Settings, Status, COMMANDS,
};
use super::stage::{Stage, StageLimits};
use super::{Game, GameError, Id, MediaKind, Millis, Output, Roster, Routes, Standing, To};

type Out = Output<Message, PhaseInfo>;

/// The countdown before the first green.
pub const COUNTDOWN_MS: Millis = 3_000;
/// How long the ranking shows before the lobby.
pub const GAME_OVER_MS: Millis = 15_000;
/// At most five `progress` a second.
pub const PROGRESS_INTERVAL_MS: Millis = 200;

/// An rlgl room's game.
#[derive(Debug)]
pub struct Rlgl {
    rng: StdRng,
    stage: Stage,
    limits: StageLimits,
    rules: Rules,
    phase: Phase,
    /// When the phase ends (none: the lobby, or a light the host holds).
    ends_at: Option<Millis>,
    game_ends_at: Option<Millis>,
    /// When the light turned red (T), while it is red.
    red_at: Option<Millis>,
    track: Track,
    spotlight: Spotlight,
    /// A change not yet in a `progress`.
    progress_dirty: bool,
    progress_sent_at: Option<Millis>,
    outputs: VecDeque<Out>,
}

impl Rlgl {
    /// A room in the lobby; `seed` drives the light until a game brings its own.
    pub fn new(seed: u64, limits: StageLimits) -> Rlgl {
        Rlgl {
            rng: StdRng::seed_from_u64(seed),
            stage: Stage::new(limits),
            limits,
            rules: Rules::default(),
            phase: Phase::Lobby,
            ends_at: None,
            game_ends_at: None,
            red_at: None,
            track: Track::default(),
            spotlight: Spotlight::new(limits.max_on_stage),
            progress_dirty: false,
            progress_sent_at: None,
            outputs: VecDeque::new(),
        }
    }

    /// The current phase.
    pub fn current_phase(&self) -> Phase {
        self.phase
    }

    /// The track of the current (or last) game.
    pub fn track(&self) -> &Track {
        &self.track
    }

    fn standings(&self, roster: &Roster) -> Vec<(Id, Standing)> {
        roster.ids().map(|id| (id.clone(), self.standing(roster, id))).collect()
    }

    fn emit_standing_changes(&mut self, roster: &Roster, before: Vec<(Id, Standing)>) {
        for (id, old) in before {
            if self.standing(roster, &id) != old {
                self.outputs.push_back(Output::Standing(id));
            }
        }
    }

    fn standing_changed(&mut self, ids: Vec<Id>) {
        self.outputs.extend(ids.into_iter().map(Output::Standing));
    }

    /// Begin `phase` at `now`, lasting `length` (none: until told), and announce it.
    fn enter(&mut self, now: Millis, roster: &Roster, phase: Phase, length: Option<Millis>) {
        self.phase = phase;
        self.red_at = (phase == Phase::Red).then_some(now);
        let ends = length.map(|l| now + l);
        // A light never outlasts the game.
        self.ends_at = match (ends, self.game_ends_at, matches!(phase, Phase::Green | Phase::Red)) {
            (Some(e), Some(g), true) => Some(e.min(g)),
            (e, _, _) => e,
        };
        let info = self.phase(roster);
        self.outputs.push_back(Output::Phase(info));
    }

    /// The light turns `color` at `now`.
    fn switch(&mut self, now: Millis, roster: &Roster, color: Color) {
        let length = self.rules.auto.then(|| light::draw(&mut self.rng, color));
        let phase = match color {
            Color::Green => Phase::Green,
            Color::Red => Phase::Red,
        };
        self.enter(now, roster, phase, length);
    }

    fn game_over(&mut self, now: Millis, roster: &Roster) {
        // The ranking carries every distance.
        self.progress_dirty = false;
        let ranking = self.track.ranking();
        let winners: Vec<Id> = ranking
            .iter()
            .filter(|p| p.rank == 1 && matches!(p.status, Status::Finished | Status::Running))
            .map(|p| p.id.clone())
            .collect();
        let before = self.standings(roster);
        self.spotlight.hold(&winners);
        self.game_ends_at = None;
        self.enter(now, roster, Phase::GameOver, Some(GAME_OVER_MS));
        self.outputs.push_back(Output::Send(To::All, Message::GameOver { ranking }));
        self.emit_standing_changes(roster, before);
    }

    fn back_to_lobby(&mut self, now: Millis, roster: &Roster) {
        let before = self.standings(roster);
        self.spotlight.clear();
        self.track = Track::default();
        self.progress_sent_at = None;
        // The room closes a game's log at its `lobby` phase: what changes goes before it.
        self.phase = Phase::Lobby;
        self.emit_standing_changes(roster, before);
        self.enter(now, roster, Phase::Lobby, None);
    }

    /// Send `progress` if something changed and the pace allows.
    fn flush_progress(&mut self, now: Millis) {
        if !self.progress_dirty {
            return;
        }
        let due = self.progress_sent_at.is_none_or(|at| now >= at + PROGRESS_INTERVAL_MS);
        if due {
            self.progress_dirty = false;
            self.progress_sent_at = Some(now);
            let distances = self.track.distances();
            self.outputs.push_back(Output::Send(To::All, Message::Progress { distances }));
        }
    }

    fn progress_due(&self) -> Option<Millis> {
        self.progress_dirty.then(|| self.progress_sent_at.map_or(0, |at| at + PROGRESS_INTERVAL_MS))
    }

    /// A `move` from `who`, judged first on its arrival time `now`.
    fn run(&mut self, now: Millis, roster: &Roster, who: &str, steps: u32) -> Result<(), GameError> {
        if !matches!(self.phase, Phase::Green | Phase::Red) {
            return Err(GameError::WrongPhase("move is for green and red".into()));
        }
        match self.track.status(who) {
            Some(Status::Running) => {}
            Some(Status::Finished) => return Err(GameError::NotAllowed("you have finished".into())),
            Some(Status::Out | Status::Left) => return Err(GameError::NotAllowed("you are out".into())),
            None => return Err(GameError::NotAllowed("you are not running in this game".into())),
        }
        if steps == 0 {
            return Ok(());
        }
        if let Some(red_at) = self.red_at {
            if let Verdict::Out(judgment) = judge::judge(&self.rules, red_at, now, roster.rtt(who)) {
                self.eliminate(now, roster, who, Cause::Moved, Some(judgment));
                return Ok(());
            }
        }
        let moved = self.track.step(who, now, steps);
        if moved.counted > 0 {
            self.progress_dirty = true;
        }
        if let Some(rank) = moved.finished {
            self.outputs.push_back(Output::Send(To::All, Message::Finished { id: who.to_owned(), rank }));
            self.outputs.push_back(Output::Standing(who.to_owned()));
        }
        self.flush_progress(now);
        if self.track.all_done() {
            self.game_over(now, roster);
        }
        Ok(())
    }

    fn eliminate(&mut self, now: Millis, roster: &Roster, who: &str, cause: Cause, judgment: Option<Judgment>) {
        let status = if cause == Cause::Left { Status::Left } else { Status::Out };
        if !self.track.stop(who, status) {
            return;
        }
        self.outputs.push_back(Output::Send(To::All, Message::Eliminated { id: who.to_owned(), cause, judgment }));
        if cause == Cause::Moved {
            self.outputs.push_back(Output::Standing(who.to_owned()));
            let lit = self.spotlight.push(now, who, self.rules.spotlight_ms);
            self.standing_changed(lit.into_iter().filter(|id| id != who).collect());
        }
        if self.track.all_done() {
            self.game_over(now, roster);
        }
    }

    fn set_light(&mut self, now: Millis, roster: &Roster, who: &str, color: Color) -> Result<(), GameError> {
        if !roster.is_host(who) {
            return Err(GameError::NotHost("only the host switches the light".into()));
        }
        if !matches!(self.phase, Phase::Green | Phase::Red) {
            return Err(GameError::WrongPhase("the light is for green and red".into()));
        }
        if self.rules.auto {
            return Err(GameError::NotAllowed("the light is automatic in this game".into()));
        }
        let now_color = if self.phase == Phase::Red { Color::Red } else { Color::Green };
        if color != now_color {
            self.switch(now, roster, color);
        }
        Ok(())
    }
}

impl Game for Rlgl {
    type Command = Command;
    type Message = Message;
    type Phase = PhaseInfo;
    type Settings = Settings;

    const COMMANDS: &'static [&'static str] = COMMANDS;

    fn check_settings(settings: &Settings) -> Result<(), GameError> {
        Rules::from_settings(settings).map(|_| ())
    }

    fn start(
        &mut self,
        now: Millis,
        roster: &Roster,
        _who: &str,
        settings: Settings,
        seed: Option<u64>,
    ) -> Result<(), GameError> {
        if self.running() {
            return Err(GameError::WrongPhase("a game is already running".into()));
        }
        let rules = Rules::from_settings(&settings)?;
        let players: Vec<Id> =
            roster.seats().iter().filter(|s| !roster.is_host(&s.id) && !s.is_screen()).map(|s| s.id.clone()).collect();
        if players.is_empty() {
            return Err(GameError::NotAllowed("need at least one player besides the host".into()));
        }
        if let Some(seed) = seed {
            self.rng = StdRng::seed_from_u64(seed);
        }
        self.spotlight.clear();
        self.spotlight = Spotlight::new(self.limits.max_on_stage);
        self.rules = rules;
        self.track = Track::new(now, &players, rules.distance, rules.max_steps_per_second);
        self.progress_dirty = false;
        self.progress_sent_at = None;
        self.game_ends_at = None;
        self.enter(now, roster, Phase::Countdown, Some(COUNTDOWN_MS));
        Ok(())
    }

    fn handle(&mut self, now: Millis, roster: &Roster, who: &str, command: Command) -> Result<(), GameError> {
        match command.into_stage() {
            Ok(stage) => {
                let changed = self.stage.handle(roster, who, stage)?;
                self.standing_changed(changed);
                Ok(())
            }
            Err(Command::Move { steps }) => self.run(now, roster, who, steps),
            Err(Command::Light { color }) => self.set_light(now, roster, who, color),
            Err(_) => Ok(()), // the stage's commands are taken above
        }
    }

    fn left(&mut self, now: Millis, roster: &Roster, who: &str) {
        self.stage.left(who);
        self.spotlight.remove(who);
        if self.running() {
            self.eliminate(now, roster, who, Cause::Left, None);
        }
    }

    fn handle_timeout(&mut self, now: Millis, roster: &Roster) {
        // Everything due by `now`, the phase first: each phase change starts its next timer
        // after `now`, so this ends.
        while self.ends_at.is_some_and(|at| at <= now) || self.game_ends_at.is_some_and(|at| at <= now) {
            if self.game_ends_at.is_some_and(|at| at <= now) {
                self.game_over(now, roster);
                continue;
            }
            match self.phase {
                Phase::Countdown => {
                    self.game_ends_at = Some(now + self.rules.game_ms);
                    self.switch(now, roster, Color::Green);
                }
                Phase::Green => self.switch(now, roster, Color::Red),
                Phase::Red => self.switch(now, roster, Color::Green),
                Phase::GameOver => self.back_to_lobby(now, roster),
                Phase::Lobby => self.ends_at = None,
            }
        }
        if self.spotlight.next_end().is_some_and(|at| at <= now) {
            let changed = self.spotlight.expire(now, self.rules.spotlight_ms);
            self.standing_changed(changed);
        }
        if self.running() {
            self.flush_progress(now);
        }
    }

    fn poll_output(&mut self) -> Option<Out> {
        self.outputs.pop_front()
    }

    fn next_deadline(&self) -> Option<Millis> {
        [self.ends_at, self.game_ends_at, self.spotlight.next_end(), self.progress_due()].into_iter().flatten().min()
    }

    fn phase(&self, _: &Roster) -> PhaseInfo {
        PhaseInfo {
            phase: self.phase,
            ends_at: self.ends_at,
            game_ends_at: self.game_ends_at,
            auto: self.rules.auto,
            distance: self.rules.distance,
        }
    }

    fn running(&self) -> bool {
        matches!(self.phase, Phase::Countdown | Phase::Green | Phase::Red)
    }

    fn routes(&self, roster: &Roster) -> Routes {
        let mut routes = self.stage.routes(roster);
        let everyone = roster.id_list();
        for id in self.spotlight.lit().filter(|id| roster.contains(id)) {
            for kind in MediaKind::ALL {
                routes.allow_all(&everyone, id, kind);
            }
        }
        routes
    }

    fn standing(&self, roster: &Roster, id: &str) -> Standing {
        let mut standing = self.stage.standing(roster, id);
        standing.on_stage |= self.spotlight.is_lit(id) && !roster.is_host(id);
        if self.phase != Phase::Lobby {
            if let Some(status) = self.track.status(id) {
                standing.playing = true;
                standing.alive = matches!(status, Status::Running | Status::Finished);
            }
        }
        standing
    }

    fn catch_up(&self, roster: &Roster, id: &str, _resumed: bool) -> Vec<(&'static str, serde_json::Value)> {
        let mut out = Vec::new();
        if roster.is_host(id) {
            out.push(("view", serde_json::json!(self.stage.view_list(roster))));
        }
        if self.phase != Phase::Lobby {
            out.push(("distances", serde_json::json!(self.track.distances())));
        }
        if self.phase == Phase::GameOver {
            out.push(("ranking", serde_json::json!(self.track.ranking())));
        }
        out
    }
}
