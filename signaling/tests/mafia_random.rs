//! Random games: seeded random participants send random commands (valid and not), join and
//! leave mid-game and let timers fire at random times. A model rebuilt from the events alone
//! (as a client with every seat's view would) checks the engine after every step:
//!
//! - nothing panics, and the engine's phase, standings, roles and host agree with the model;
//! - the routes are exactly the table of docs/PROTOCOL.md, "Routing"; in particular at night no living town
//!   player or spectator receives any player (only the moderator reaches them), and during
//!   a game nobody living receives the dead;
//! - `Role` goes to its owner only, teammates only to mafia, `roles` only to the moderator;
//!   `Investigation` only to a living detective, and truthfully;
//! - chat reaches exactly the channel's readers and only permitted writers get through;
//! - `GameOver` comes exactly when the win check says so and reveals every role;
//! - nothing about night actions comes out except the detective's answer.
//!
//! Deterministic: the seeds are fixed, and time is synthetic.

use std::collections::{BTreeMap, BTreeSet};

mod support;

use parlor_signaling::{MediaKind, Route};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use support::{
    Ballot, Cause, Channel, Command, Event, GameError, Id, Mafia, Millis, Phase, Role, Settings, Verdict, VoteKind,
    Winner,
};

const GAMES: u64 = 160;
const STEPS: usize = 260;
const POOL: usize = 18;

#[derive(Debug, Clone)]
struct Seat {
    role: Role,
    alive: bool,
    gone: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    LivingMafia,
    LivingTown,
    Dead,
    Moderator,
    Spectator,
}

/// What the events say the game is.
#[derive(Debug, Default)]
struct Model {
    present: Vec<Id>,
    host: Option<Id>,
    phase: Option<Phase>,
    accused: Option<Id>,
    seats: BTreeMap<Id, Seat>,
    deal_order: Vec<Id>,
    moderator: Option<Id>,
    ready: BTreeSet<Id>,
    /// The last deal's `teammates` by recipient, checked once the whole deal is in.
    told_mates: BTreeMap<Id, Vec<Id>>,
    /// The roles the moderator was told at the last deal.
    told_moderator: Option<BTreeMap<Id, Role>>,
}

impl Model {
    fn phase(&self) -> Phase {
        self.phase.unwrap_or(Phase::Lobby)
    }

    fn seat(&self, id: &str) -> Option<&Seat> {
        self.seats.get(id).filter(|s| !s.gone)
    }

    fn living(&self, id: &str) -> bool {
        self.seat(id).is_some_and(|s| s.alive)
    }

    fn role(&self, id: &str) -> Option<Role> {
        self.seat(id).map(|s| s.role)
    }

    fn kind(&self, id: &str) -> Kind {
        if self.moderator.as_deref() == Some(id) {
            return Kind::Moderator;
        }
        match self.seat(id) {
            None => Kind::Spectator,
            Some(s) if !s.alive => Kind::Dead,
            Some(s) if s.role == Role::Mafia => Kind::LivingMafia,
            Some(_) => Kind::LivingTown,
        }
    }

    fn living_ids(&self) -> Vec<Id> {
        self.present.iter().filter(|id| self.living(id)).cloned().collect()
    }

    fn winner(&self) -> Option<Winner> {
        let alive = self.seats.values().filter(|s| s.alive && !s.gone);
        let (mafia, others) =
            alive.fold((0, 0), |(m, o), s| if s.role == Role::Mafia { (m + 1, o) } else { (m, o + 1) });
        if mafia == 0 {
            Some(Winner::Town)
        } else if mafia >= others {
            Some(Winner::Mafia)
        } else {
            None
        }
    }

    /// The routing table of docs/PROTOCOL.md, restated.
    fn receives(&self, s: &str, p: &str, kind: MediaKind) -> bool {
        if s == p {
            return false;
        }
        if !self.phase().in_game() {
            return true;
        }
        let (sk, pk) = (self.kind(s), self.kind(p));
        let privileged = matches!(sk, Kind::Dead | Kind::Moderator);
        match (self.phase(), pk) {
            (_, Kind::Moderator) => true,
            (_, Kind::Spectator) => false,
            (_, Kind::Dead) => privileged,
            (Phase::Night, Kind::LivingMafia) => privileged || sk == Kind::LivingMafia,
            (Phase::Night, _) => privileged,
            (Phase::Defense, _) => privileged || kind == MediaKind::Video || self.accused.as_deref() == Some(p),
            _ => true,
        }
    }

    /// The chat rules of docs/PROTOCOL.md, restated.
    fn can_write(&self, id: &str, channel: Channel) -> bool {
        if !self.present.iter().any(|p| p == id) {
            return false;
        }
        if !self.phase().in_game() {
            return channel == Channel::All;
        }
        match (channel, self.kind(id)) {
            (Channel::All, Kind::Moderator) => true,
            (Channel::All, Kind::LivingMafia | Kind::LivingTown) => self.phase() != Phase::Night,
            (Channel::Mafia, Kind::LivingMafia) => true,
            (Channel::Dead, Kind::Dead) => true,
            _ => false,
        }
    }

    fn readers(&self, channel: Channel) -> Vec<Id> {
        let reads = |id: &Id| {
            if !self.phase().in_game() {
                return channel == Channel::All;
            }
            match channel {
                Channel::All => true,
                Channel::Mafia => {
                    matches!(self.kind(id), Kind::Moderator | Kind::Dead) || self.role(id) == Some(Role::Mafia)
                }
                Channel::Dead => matches!(self.kind(id), Kind::Moderator | Kind::Dead),
            }
        };
        self.present.iter().filter(|id| reads(id)).cloned().collect()
    }
}

#[derive(Debug, Default)]
struct Stats {
    games: usize,
    town_wins: usize,
    mafia_wins: usize,
    moderated: usize,
    killed: usize,
    executed: usize,
    left: usize,
    investigations: usize,
    chats: usize,
    refusals: usize,
    host_changes: usize,
}

struct Run {
    game: Mafia,
    model: Model,
    now: Millis,
    rng: StdRng,
    pool: Vec<Id>,
    stats: Stats,
    /// What the current step is, for failure messages.
    step: String,
}

impl Run {
    fn new(seed: u64) -> Run {
        Run {
            game: Mafia::new(seed),
            model: Model::default(),
            now: 1_000,
            rng: StdRng::seed_from_u64(seed ^ 0x5eed),
            pool: (0..POOL).map(|i| format!("u{i}")).collect(),
            stats: Stats::default(),
            step: String::new(),
        }
    }

    fn fail(&self, what: &str) -> ! {
        panic!("{what}\n  step: {}\n  phase: {:?}\n  model: {:?}", self.step, self.game.phase(), self.model)
    }

    fn check(&self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.fail(&what());
        }
    }

    // ----- driving -----

    fn random_member(&mut self) -> Id {
        let roll = self.rng.random_range(0..100);
        if roll < 88 && !self.model.present.is_empty() {
            self.model.present.choose(&mut self.rng).cloned().unwrap_or_default()
        } else if roll < 97 {
            self.pool.choose(&mut self.rng).cloned().unwrap_or_default()
        } else {
            "ghost".to_string()
        }
    }

    /// A plausible actor for the phase (mostly living players), else anyone.
    fn random_actor(&mut self) -> Id {
        let living = self.model.living_ids();
        if !living.is_empty() && self.rng.random_bool(0.8) {
            living.choose(&mut self.rng).cloned().unwrap_or_default()
        } else {
            self.random_member()
        }
    }

    fn random_target(&mut self) -> Id {
        self.random_actor()
    }

    fn random_settings(&mut self) -> Settings {
        let mut s = Settings::default();
        let rng = &mut self.rng;
        if rng.random_bool(0.3) {
            s.host_plays = Some(rng.random_bool(0.5));
        }
        for slot in [&mut s.mafia, &mut s.doctor, &mut s.detective] {
            if rng.random_bool(0.1) {
                *slot = Some(rng.random_range(0..5));
            }
        }
        if rng.random_bool(0.3) {
            let name = [
                "role_reveal",
                "night",
                "dawn",
                "day",
                "nomination",
                "defense",
                "judgment",
                "game_over",
                "lobby",
                "dusk",
            ]
            .choose(rng)
            .copied()
            .unwrap_or("day");
            let secs = [-1.0, 0.0, 0.001, 0.5, 3.0, 60.0, 3600.0, 4000.0, f64::NAN].choose(rng).copied().unwrap_or(1.0);
            s.phase_seconds.insert(name.to_string(), secs);
        }
        s
    }

    fn random_command(&mut self) -> (Id, Command) {
        let phase = self.model.phase();
        let any = self.rng.random_bool(0.12);
        let pick = if any { self.rng.random_range(0..9) } else { 99 };
        let who;
        let command = match (phase, pick) {
            (_, 0) | (Phase::Lobby | Phase::GameOver, 99) if self.rng.random_bool(0.4) || pick == 0 => {
                who = if self.rng.random_bool(0.85) {
                    self.model.host.clone().unwrap_or_default()
                } else {
                    self.random_member()
                };
                Command::StartGame(self.random_settings())
            }
            (_, 1) | (Phase::Lobby | Phase::GameOver, 99) if self.rng.random_bool(0.5) || pick == 1 => {
                who = self.random_member();
                Command::Ready(self.rng.random_bool(0.5))
            }
            (_, 2) | (Phase::Night, 99) if self.rng.random_bool(0.8) || pick == 2 => {
                // Mostly the night roles, at mostly living targets.
                let night_roles: Vec<Id> = self
                    .model
                    .living_ids()
                    .into_iter()
                    .filter(|id| self.model.role(id).is_some_and(|r| r != Role::Citizen))
                    .collect();
                who = if self.rng.random_bool(0.8) && !night_roles.is_empty() {
                    night_roles.choose(&mut self.rng).cloned().unwrap_or_default()
                } else {
                    self.random_member()
                };
                Command::NightAction(self.random_target())
            }
            (_, 3) | (Phase::Day, 99) if self.rng.random_bool(0.8) || pick == 3 => {
                who = self.random_actor();
                Command::CallVote
            }
            (_, 4) | (Phase::Nomination, 99) if self.rng.random_bool(0.85) || pick == 4 => {
                who = self.random_actor();
                // Herd half the votes onto one candidate so that trials happen.
                let living = self.model.living_ids();
                let favourite = living.iter().find(|id| **id != who).cloned();
                let target = match self.rng.random_range(0..4) {
                    0 => None,
                    1 => Some(self.random_target()),
                    _ => favourite,
                };
                Command::Nominate(target)
            }
            (_, 5) | (Phase::Judgment, 99) if self.rng.random_bool(0.85) || pick == 5 => {
                who = self.random_actor();
                Command::Judge(if self.rng.random_bool(0.5) { Verdict::Guilty } else { Verdict::Innocent })
            }
            (_, 6) => {
                who = if self.rng.random_bool(0.6) {
                    self.model.host.clone().unwrap_or_default()
                } else {
                    self.random_member()
                };
                Command::Kick(self.random_member())
            }
            _ => {
                who = if self.rng.random_bool(0.2) {
                    self.model.moderator.clone().unwrap_or_else(|| self.random_member())
                } else {
                    self.random_member()
                };
                let channel = [Channel::All, Channel::Mafia, Channel::Dead]
                    .choose(&mut self.rng)
                    .copied()
                    .unwrap_or(Channel::All);
                Command::Chat { channel, text: "t".into() }
            }
        };
        (who, command)
    }

    fn step(&mut self) {
        let roll = self.rng.random_range(0..100);
        let crowd = self.model.present.len();
        if roll < 5 || (crowd < 4 && roll < 30) {
            let who = self.pool.choose(&mut self.rng).cloned().unwrap_or_default();
            self.command(who, Command::Joined, true);
        } else if roll < 8 && crowd > 0 {
            let who = self.model.present.choose(&mut self.rng).cloned().unwrap_or_default();
            self.command(who, Command::Left, true);
        } else if roll < 30 {
            let deadline = self.game.next_deadline();
            self.now = match deadline {
                Some(d) if self.rng.random_bool(0.7) => d.max(self.now),
                _ => self.now + self.rng.random_range(0..8_000),
            };
            self.step = format!("timeout at {}", self.now);
            self.game.handle_timeout(self.now);
            self.drain(None);
            if let Some(d) = self.game.next_deadline() {
                self.check(d > self.now, || format!("deadline {d} not after now after a timeout"));
            }
        } else {
            if self.rng.random_bool(0.15) {
                self.now += self.rng.random_range(0..3_000);
            }
            let (who, command) = self.random_command();
            // Chat decisions are checked against the model, so bring it up to date first;
            // other commands sometimes meet a due timer inside `handle`.
            let pre = matches!(command, Command::Chat { .. }) || self.rng.random_bool(0.5);
            self.command(who, command, pre);
        }
        self.check_state();
    }

    /// Send one command; `pre` runs due timers first (as `handle` would).
    fn command(&mut self, who: Id, command: Command, pre: bool) {
        if pre {
            self.game.handle_timeout(self.now);
            self.step = format!("timers before {who} {command:?}");
            self.drain(None);
        }
        self.step = format!("{who} {command:?} at {}", self.now);
        let member = self.model.present.contains(&who);
        let result = self.game.handle(self.now, &who, command.clone());
        match (&command, &result) {
            (Command::Joined, Ok(())) => {
                self.check(!member, || "joined twice".into());
                self.model.present.push(who.clone());
                if self.model.host.is_none() {
                    self.model.host = Some(who.clone());
                }
            }
            (Command::Joined, Err(e)) => {
                self.check(member && matches!(e, GameError::NotAllowed(_)), || format!("join refused: {e:?}"))
            }
            (_, Err(e)) if !member => {
                self.check(matches!(e, GameError::NotAllowed(_)), || format!("stranger got {e:?}"))
            }
            (_, Ok(())) if !member => self.fail("a stranger's command was accepted"),
            (Command::Left, Ok(())) => {
                self.model.present.retain(|p| *p != who);
                self.model.ready.remove(&who);
                if self.model.host.as_deref() == Some(who.as_str()) {
                    self.model.host = self.model.present.first().cloned();
                }
                if self.model.moderator.as_deref() == Some(who.as_str()) {
                    self.model.moderator = None;
                }
                if let Some(seat) = self.model.seats.get_mut(&who) {
                    seat.gone = true;
                }
            }
            (Command::Ready(r), Ok(())) => {
                if *r {
                    self.model.ready.insert(who.clone());
                } else {
                    self.model.ready.remove(&who);
                }
            }
            _ => {}
        }
        if result.is_err() {
            self.stats.refusals += 1;
        }
        let kicked = self.drain(Some((&who, &command)));
        // A refused chat must be one the rules refuse (chat changes nothing, so the model
        // after the drain is the model the engine judged by).
        if let (Command::Chat { channel, .. }, Err(_)) = (&command, &result) {
            self.check(!self.model.can_write(&who, *channel), || {
                format!("chat refused to a permitted writer: {result:?}")
            });
        }
        if let (Command::Chat { .. }, Ok(())) = (&command, &result) {
            self.stats.chats += 1;
        }
        // The room removes whoever the host kicked.
        for id in kicked {
            self.command(id, Command::Left, true);
        }
    }

    // ----- checking -----

    /// Apply and check every queued event; returns the kicked.
    fn drain(&mut self, cause: Option<(&Id, &Command)>) -> Vec<Id> {
        let mut kicked = Vec::new();
        let mut dealt = false;
        let night_action = matches!(cause, Some((_, Command::NightAction(_))));
        while let Some(event) = self.game.poll_event() {
            match event {
                Event::Phase(info) => {
                    if matches!(info.phase, Phase::RoleReveal | Phase::Lobby) {
                        self.model.seats.clear();
                        self.model.deal_order.clear();
                        self.model.moderator = None;
                        self.model.told_mates.clear();
                        self.model.told_moderator = None;
                    }
                    if info.phase == Phase::RoleReveal {
                        dealt = true;
                        self.model.ready.clear();
                        self.stats.games += 1;
                    }
                    self.model.phase = Some(info.phase);
                    self.model.accused = info.accused.clone();
                    self.check(
                        info.accused.is_some() == matches!(info.phase, Phase::Defense | Phase::Judgment),
                        || format!("accused {:?} in {:?}", info.accused, info.phase),
                    );
                    if let Some(a) = &info.accused {
                        self.check(self.model.living(a), || "the accused must live".into());
                    }
                }
                Event::Role { to, role, teammates, roles } => {
                    self.check(self.model.phase() == Phase::RoleReveal && dealt, || "a role outside the deal".into());
                    self.check(self.model.present.contains(&to), || format!("role for {to}, not here"));
                    if role == Role::Moderator {
                        self.check(roles.is_some() && teammates.is_empty(), || "moderator's role message".into());
                        self.check(self.model.host.as_deref() == Some(to.as_str()), || {
                            "moderator is not the host".into()
                        });
                        self.check(self.model.moderator.is_none(), || "two moderators".into());
                        self.model.moderator = Some(to.clone());
                        self.model.told_moderator = roles;
                        self.stats.moderated += 1;
                    } else {
                        self.check(roles.is_none(), || format!("roles leaked to {to}"));
                        self.check(role == Role::Mafia || teammates.is_empty(), || format!("teammates leaked to {to}"));
                        self.check(!self.model.seats.contains_key(&to), || format!("{to} dealt twice"));
                        self.model.told_mates.insert(to.clone(), teammates);
                        self.model.seats.insert(to.clone(), Seat { role, alive: true, gone: false });
                        self.model.deal_order.push(to);
                    }
                }
                Event::Investigation { to, target, is_mafia } => {
                    self.stats.investigations += 1;
                    self.check(night_action && cause.is_some_and(|(w, _)| *w == to), || "unasked investigation".into());
                    self.check(self.model.living(&to) && self.model.role(&to) == Some(Role::Detective), || {
                        format!("investigation to {to}, not a living detective")
                    });
                    self.check(self.model.living(&target) && target != to, || "bad investigation target".into());
                    self.check(is_mafia == (self.model.role(&target) == Some(Role::Mafia)), || {
                        "the detective was lied to".into()
                    });
                }
                Event::Eliminated { id, cause: how } => {
                    self.check(self.model.phase().in_game(), || "elimination outside a game".into());
                    let Some(seat) = self.model.seats.get_mut(&id) else { self.fail("eliminated a non-player") };
                    let was_alive = seat.alive;
                    seat.alive = false;
                    let role = seat.role;
                    self.check(was_alive, || format!("{id} died twice"));
                    match how {
                        Cause::Killed => {
                            self.stats.killed += 1;
                            self.check(role != Role::Mafia, || "the mafia killed their own".into());
                        }
                        Cause::Executed => {
                            self.stats.executed += 1;
                            self.check(self.model.accused.as_deref() == Some(id.as_str()), || {
                                "executed the unaccused".into()
                            });
                        }
                        Cause::Left => {
                            self.stats.left += 1;
                            self.check(!self.model.present.contains(&id), || "left but here".into());
                        }
                    }
                }
                Event::GameOver { winner, roles } => {
                    self.check(Some(winner) == self.model.winner(), || {
                        format!("{winner:?} won but the model says {:?}", self.model.winner())
                    });
                    let all: BTreeMap<Id, Role> = self.model.seats.iter().map(|(id, s)| (id.clone(), s.role)).collect();
                    self.check(roles == all, || "game over must reveal every role".into());
                    match winner {
                        Winner::Town => self.stats.town_wins += 1,
                        Winner::Mafia => self.stats.mafia_wins += 1,
                    }
                }
                Event::VoteUpdate { kind, votes, needed } => {
                    self.check(!night_action, || "a night action made a tally".into());
                    let expected_kind = match self.model.phase() {
                        Phase::Day => VoteKind::CallVote,
                        Phase::Nomination => VoteKind::Nomination,
                        Phase::Judgment => VoteKind::Judgment,
                        p => self.fail(&format!("a tally in {p:?}")),
                    };
                    self.check(kind == expected_kind, || "tally kind".into());
                    for (voter, ballot) in &votes {
                        self.check(self.model.living(voter), || format!("{voter} votes but is not alive"));
                        let shape = match ballot {
                            Ballot::Call(true) => kind == VoteKind::CallVote,
                            Ballot::Target(t) => kind == VoteKind::Nomination && t.as_deref() != Some(voter.as_str()),
                            Ballot::Verdict(_) => {
                                kind == VoteKind::Judgment && self.model.accused.as_deref() != Some(voter.as_str())
                            }
                            Ballot::Call(false) => false,
                        };
                        self.check(shape, || format!("ballot {ballot:?} in {kind:?}"));
                    }
                    let want = (kind == VoteKind::CallVote).then(|| self.model.living_ids().len() / 2 + 1);
                    self.check(needed == want, || format!("needed {needed:?}, want {want:?}"));
                }
                Event::Chat { from, channel, at, to, .. } => {
                    self.check(at == self.now, || "chat time".into());
                    self.check(matches!(cause, Some((w, Command::Chat { .. })) if *w == from), || {
                        "unasked chat".into()
                    });
                    self.check(self.model.can_write(&from, channel), || format!("{from} may not write {channel:?}"));
                    let want = self.model.readers(channel);
                    self.check(to == want, || format!("{channel:?} chat to {to:?}, want {want:?}"));
                }
                Event::HostChanged { host } => {
                    self.stats.host_changes += 1;
                    self.check(self.model.host.as_deref() == Some(host.as_str()), || format!("host → {host}"));
                    self.check(self.model.present.first() == Some(&host), || {
                        "powers pass to the longest present".into()
                    });
                }
                Event::ParticipantChanged { id } => {
                    self.check(self.model.present.contains(&id), || format!("update for absent {id}"));
                }
                Event::Kicked { id } => {
                    self.check(
                        matches!(cause, Some((w, Command::Kick(_))) if self.model.host.as_ref() == Some(w)),
                        || "kick by a non-host".into(),
                    );
                    self.check(self.model.present.contains(&id) && self.model.host.as_ref() != Some(&id), || {
                        "bad kick".into()
                    });
                    kicked.push(id);
                }
            }
        }
        if dealt {
            self.check_deal();
        }
        kicked
    }

    /// After a deal: teammates are exactly the other mafia; the moderator saw every role.
    fn check_deal(&mut self) {
        let m = &self.model;
        let mafia: Vec<&Id> = m.deal_order.iter().filter(|id| m.role(id) == Some(Role::Mafia)).collect();
        for (to, mates) in &m.told_mates {
            let want: Vec<Id> = if m.role(to) == Some(Role::Mafia) {
                mafia.iter().filter(|o| **o != to).map(|o| o.to_string()).collect()
            } else {
                Vec::new()
            };
            self.check(*mates == want, || format!("{to}'s teammates {mates:?}, want {want:?}"));
        }
        if m.moderator.is_some() {
            let all: BTreeMap<Id, Role> = m.seats.iter().map(|(id, s)| (id.clone(), s.role)).collect();
            self.check(m.told_moderator.as_ref() == Some(&all), || "the moderator is told every role".into());
        }
        let n = m.seats.len();
        self.check((4..=16).contains(&n), || format!("{n} players dealt"));
        self.check(m.winner().is_none(), || "a game that starts won".into());
    }

    /// The engine's state agrees with the model; the routes obey the table.
    fn check_state(&self) {
        let m = &self.model;
        let phase = m.phase();
        let info = self.game.phase();
        self.check(info.phase == phase, || "phase".into());
        self.check(self.game.host() == m.host, || "host".into());
        let alive: Vec<Id> = if phase == Phase::Lobby { m.present.clone() } else { m.living_ids() };
        self.check(info.alive == alive, || format!("alive {:?} want {alive:?}", info.alive));
        self.check((phase == Phase::Lobby) == self.game.next_deadline().is_none(), || "deadline iff not lobby".into());
        if phase.in_game() {
            self.check(m.winner().is_none(), || "the game should be over".into());
            for (id, seat) in &m.seats {
                self.check(!seat.gone || !seat.alive, || format!("{id} left mid-game but lives"));
            }
        }
        for id in &m.present {
            let s = self.game.standing(id);
            self.check(s.ready == m.ready.contains(id), || format!("{id} ready"));
            let want = if phase == Phase::Lobby { (false, true) } else { (m.seat(id).is_some(), m.living(id)) };
            self.check((s.playing, s.alive) == want, || format!("{id} standing {s:?}"));
            let role = self.game.role_of(id);
            match (&role, m.kind(id)) {
                (None, Kind::Spectator) => {}
                (None, _) => self.check(phase == Phase::Lobby, || format!("{id} has no role")),
                (Some(Event::Role { to, role: Role::Moderator, roles: Some(_), .. }), Kind::Moderator) => {
                    self.check(to == id, || "role_of addressee".into())
                }
                (
                    Some(Event::Role { to, role, teammates, roles: None }),
                    Kind::LivingMafia | Kind::LivingTown | Kind::Dead,
                ) => {
                    self.check(to == id && Some(*role) == m.role(id), || format!("{id}'s role"));
                    self.check(*role == Role::Mafia || teammates.is_empty(), || "teammates".into());
                }
                (other, k) => self.fail(&format!("role_of({id}) = {other:?} for {k:?}")),
            }
        }

        let routes = self.game.routes();
        let mut want = Vec::new();
        for s in &m.present {
            for p in &m.present {
                for kind in [MediaKind::Audio, MediaKind::Video] {
                    if m.receives(s, p, kind) {
                        want.push(Route { subscriber: s.clone(), publisher: p.clone(), kind });
                    }
                }
            }
        }
        want.sort();
        if routes != want {
            let extra: Vec<_> = routes.iter().filter(|r| !want.contains(r)).collect();
            let missing: Vec<_> = want.iter().filter(|r| !routes.contains(r)).collect();
            self.fail(&format!("routes differ: extra {extra:?} missing {missing:?}"));
        }
        // The table's headline promises, stated on their own.
        for r in &routes {
            let (sk, pk) = (m.kind(&r.subscriber), m.kind(&r.publisher));
            if phase == Phase::Night && matches!(sk, Kind::LivingTown | Kind::Spectator) {
                self.check(pk == Kind::Moderator, || format!("{r:?} at night"));
            }
            if phase.in_game() {
                self.check(!(pk == Kind::Dead && matches!(sk, Kind::LivingMafia | Kind::LivingTown)), || {
                    format!("{r:?}: the living receive the dead")
                });
                self.check(pk != Kind::Spectator, || format!("{r:?}: a spectator publishes"));
            }
        }
    }
}

#[test]
fn random_games_keep_every_invariant() {
    let mut total = Stats::default();
    for seed in 0..GAMES {
        let mut run = Run::new(seed);
        for _ in 0..STEPS {
            run.step();
        }
        let s = run.stats;
        total.games += s.games;
        total.town_wins += s.town_wins;
        total.mafia_wins += s.mafia_wins;
        total.moderated += s.moderated;
        total.killed += s.killed;
        total.executed += s.executed;
        total.left += s.left;
        total.investigations += s.investigations;
        total.chats += s.chats;
        total.refusals += s.refusals;
        total.host_changes += s.host_changes;
    }
    eprintln!("{total:?}");
    // The walk must actually play: every outcome and event kind shows up many times.
    for (what, n) in [
        ("games", total.games),
        ("town wins", total.town_wins),
        ("mafia wins", total.mafia_wins),
        ("moderated games", total.moderated),
        ("kills", total.killed),
        ("executions", total.executed),
        ("departures", total.left),
        ("investigations", total.investigations),
        ("chats", total.chats),
        ("refusals", total.refusals),
        ("host changes", total.host_changes),
    ] {
        assert!(n >= 20, "only {n} {what}: {total:?}");
    }
}
