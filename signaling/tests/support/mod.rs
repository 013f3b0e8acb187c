//! A test table around [`Mafia`]: synthetic time, every event kept, roles learned from the
//! `Role` events the way a client would.
#![allow(dead_code)]

use std::collections::BTreeMap;

use parlor_signaling::game::mafia::{self, Message};
pub use parlor_signaling::game::mafia::{
    Ballot, Cause, Channel, Phase, PhaseInfo, Role, Settings, Verdict, VoteKind, Winner,
};
use parlor_signaling::game::{Driver, Input, To};
pub use parlor_signaling::game::{GameError, Id, Millis};
use parlor_signaling::{MediaKind, Route};

/// What a participant (or the room, for `Joined` / `Left`) asks: the seats' inputs and Mafia's
/// commands in one list, as the engine tests are written.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Someone entered the room (order of calls = order of presence).
    Joined,
    /// Like `Joined`, in a room whose powers come only from a host token.
    JoinedGuest,
    /// Someone presented a valid host token.
    TakeHost,
    /// Someone left the room for good.
    Left,
    /// Advisory readiness.
    Ready(bool),
    /// Host: start a game.
    StartGame(Settings),
    /// Ask to end the day and vote.
    CallVote,
    /// Nomination vote.
    Nominate(Option<Id>),
    /// Judgment vote.
    Judge(Verdict),
    /// Night action.
    NightAction(Id),
    /// A chat message.
    Chat { channel: Channel, text: String },
    /// Host: remove someone.
    Kick(Id),
}

/// What happened, addressed, as the engine tests read it.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Phase(PhaseInfo),
    Role { to: Id, role: Role, teammates: Vec<Id>, roles: Option<BTreeMap<Id, Role>> },
    VoteUpdate { kind: VoteKind, votes: BTreeMap<Id, Ballot>, needed: Option<usize> },
    Investigation { to: Id, target: Id, is_mafia: bool },
    Eliminated { id: Id, cause: Cause },
    HostChanged { host: Id },
    ParticipantChanged { id: Id },
    Chat { from: Id, channel: Channel, text: String, at: Millis, to: Vec<Id> },
    GameOver { winner: Winner, roles: BTreeMap<Id, Role> },
    Kicked { id: Id },
}

/// A participant's readiness (the seats') and standing (the game's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub ready: bool,
    pub playing: bool,
    pub alive: bool,
}

/// Mafia with the room's seats ([`Driver`]), behind the calls the engine tests use. Every
/// output's addressing is checked on the way: a role, an investigation or a tally sent to
/// anyone but whom it must reach fails the test.
pub struct Mafia {
    driver: Driver<mafia::Mafia>,
}

impl Mafia {
    pub fn new(seed: u64) -> Mafia {
        Mafia { driver: Driver::new(mafia::Mafia::new(seed)) }
    }

    pub fn handle(&mut self, now: Millis, who: &str, command: Command) -> Result<(), GameError> {
        let game = |c: mafia::Command| Input::Game(c);
        let input = match command {
            Command::Joined => Input::Join { name: who.to_owned(), guest: false },
            Command::JoinedGuest => Input::Join { name: who.to_owned(), guest: true },
            Command::TakeHost => Input::TakeHost,
            Command::Left => Input::Leave,
            Command::Ready(ready) => Input::Ready { ready },
            Command::StartGame(settings) => Input::Start { settings, seed: None },
            Command::CallVote => game(mafia::Command::CallVote),
            Command::Nominate(target) => game(mafia::Command::Vote { target: Some(target), verdict: None }),
            Command::Judge(verdict) => game(mafia::Command::Vote { target: None, verdict: Some(verdict) }),
            Command::NightAction(target) => game(mafia::Command::NightAction { target }),
            Command::Chat { channel, text } => Input::Chat { channel: channel.as_str().to_owned(), text },
            Command::Kick(id) => Input::Kick { id },
        };
        self.driver.handle(now, who, input)
    }

    pub fn handle_timeout(&mut self, now: Millis) {
        self.driver.handle_timeout(now);
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        use parlor_signaling::game::Event as E;
        let only_one = |to: &To| match to {
            To::Only(ids) if ids.len() == 1 => ids[0].clone(),
            other => panic!("a private message addressed to {other:?}"),
        };
        Some(match self.driver.poll_event()? {
            E::Phase(info) => Event::Phase(info),
            E::Updated(id) => Event::ParticipantChanged { id },
            E::HostChanged(host) => Event::HostChanged { host },
            E::Kicked(id) => Event::Kicked { id },
            E::Chat(to, line) => {
                let To::Only(to) = to else { panic!("mafia chat goes to a list of readers, not {to:?}") };
                let channel = Channel::parse(&line.channel).expect("a channel the engine knows");
                Event::Chat { from: line.from, channel, text: line.text, at: line.at, to }
            }
            E::Send(to, Message::Role(info)) => {
                Event::Role { to: only_one(&to), role: info.role, teammates: info.teammates, roles: info.roles }
            }
            E::Send(to, Message::Investigation { target, is_mafia }) => {
                Event::Investigation { to: only_one(&to), target, is_mafia }
            }
            E::Send(To::All, Message::VoteUpdate(t)) => {
                Event::VoteUpdate { kind: t.kind, votes: t.votes, needed: t.needed }
            }
            E::Send(To::All, Message::Eliminated { id, cause }) => Event::Eliminated { id, cause },
            E::Send(To::All, Message::GameOver { winner, roles }) => Event::GameOver { winner, roles },
            E::Send(to, message) => panic!("a public message addressed to {to:?}: {message:?}"),
        })
    }

    pub fn next_deadline(&self) -> Option<Millis> {
        self.driver.next_deadline()
    }

    pub fn routes(&self) -> Vec<Route> {
        self.driver.routes().pairs()
    }

    pub fn phase(&self) -> PhaseInfo {
        self.driver.phase()
    }

    pub fn host(&self) -> Option<Id> {
        self.driver.roster().host().map(str::to_owned)
    }

    pub fn participants(&self) -> Vec<Id> {
        self.driver.roster().id_list()
    }

    pub fn standing(&self, id: &str) -> Standing {
        let ready = self.driver.roster().seat(id).is_some_and(|s| s.ready);
        let s = self.driver.standing(id);
        Standing { ready, playing: s.playing, alive: s.alive }
    }

    pub fn role_of(&self, id: &str) -> Option<Event> {
        let info = self.driver.game().role_of(id)?;
        Some(Event::Role { to: id.to_owned(), role: info.role, teammates: info.teammates, roles: info.roles })
    }
}

/// Participant ids `p0`, `p1`, …
pub fn ids(n: usize) -> Vec<Id> {
    (0..n).map(|i| format!("p{i}")).collect()
}

/// A game at a synthetic time, with the events it emitted and the roles it dealt.
pub struct Table {
    /// The engine under test.
    pub game: Mafia,
    /// The room clock.
    pub now: Millis,
    /// Events not yet taken by the test.
    pub pending: Vec<Event>,
    /// Every event ever emitted.
    pub log: Vec<Event>,
    /// The current game's roles, in deal (presence) order.
    pub dealt: Vec<(Id, Role)>,
    /// The current game's moderator.
    pub moderator: Option<Id>,
}

impl Table {
    /// An empty room.
    pub fn new(seed: u64) -> Table {
        Table {
            game: Mafia::new(seed),
            now: 1_000,
            pending: Vec::new(),
            log: Vec::new(),
            dealt: Vec::new(),
            moderator: None,
        }
    }

    /// A room where `p0`..`p{n-1}` joined in order (`p0` hosts).
    pub fn room(seed: u64, n: usize) -> Table {
        let mut t = Table::new(seed);
        for id in ids(n) {
            t.ok(&id, Command::Joined);
        }
        t
    }

    /// A room of `n` with a game started with `settings` and roles dealt; pending emptied.
    pub fn started(seed: u64, n: usize, settings: Settings) -> Table {
        let mut t = Table::room(seed, n);
        t.ok("p0", Command::StartGame(settings));
        t.take();
        t
    }

    fn pump(&mut self) {
        while let Some(event) = self.game.poll_event() {
            match &event {
                Event::Phase(PhaseInfo { phase: Phase::RoleReveal, .. }) => {
                    self.dealt.clear();
                    self.moderator = None;
                }
                Event::Role { to, role: Role::Moderator, .. } => self.moderator = Some(to.clone()),
                Event::Role { to, role, .. } => self.dealt.push((to.clone(), *role)),
                _ => {}
            }
            self.log.push(event.clone());
            self.pending.push(event);
        }
    }

    /// Feed a command at the current time.
    pub fn handle(&mut self, who: &str, command: Command) -> Result<(), GameError> {
        let result = self.game.handle(self.now, who, command);
        self.pump();
        result
    }

    /// Feed a command that must succeed.
    #[track_caller]
    pub fn ok(&mut self, who: &str, command: Command) {
        let c = format!("{command:?}");
        if let Err(e) = self.handle(who, command) {
            panic!("{who} {c}: {e:?} in {:?}", self.game.phase());
        }
    }

    /// Feed a command that must fail; returns the refusal.
    #[track_caller]
    pub fn err(&mut self, who: &str, command: Command) -> GameError {
        let c = format!("{command:?}");
        match self.handle(who, command) {
            Ok(()) => panic!("{who} {c} was accepted in {:?}", self.game.phase()),
            Err(e) => e,
        }
    }

    /// Events since the last take.
    pub fn take(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.pending)
    }

    /// Jump to the next deadline and run it; returns the new phase.
    #[track_caller]
    pub fn skip(&mut self) -> Phase {
        let deadline = self.game.next_deadline().expect("a deadline");
        assert!(deadline > self.now, "deadline {deadline} is not after now {}", self.now);
        self.now = deadline;
        self.game.handle_timeout(self.now);
        self.pump();
        self.phase()
    }

    /// Skip timers until `phase` begins.
    #[track_caller]
    pub fn skip_to(&mut self, phase: Phase) {
        for _ in 0..20 {
            if self.phase() == phase {
                return;
            }
            self.skip();
        }
        panic!("never reached {phase:?}");
    }

    /// Move the clock by `ms` without running timers.
    pub fn wait(&mut self, ms: Millis) {
        self.now += ms;
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.game.phase().phase
    }

    /// The current round.
    pub fn round(&self) -> u32 {
        self.game.phase().round
    }

    /// The living players.
    pub fn living(&self) -> Vec<Id> {
        self.game.phase().alive
    }

    /// `id`'s dealt role.
    pub fn role(&self, id: &str) -> Role {
        self.dealt.iter().find(|(i, _)| i == id).map(|(_, r)| *r).expect("a dealt role")
    }

    /// The players dealt `role`, in presence order.
    pub fn with(&self, role: Role) -> Vec<Id> {
        self.dealt.iter().filter(|(_, r)| *r == role).map(|(id, _)| id.clone()).collect()
    }

    /// The living players dealt `role`.
    pub fn living_with(&self, role: Role) -> Vec<Id> {
        let living = self.living();
        self.with(role).into_iter().filter(|id| living.contains(id)).collect()
    }

    /// The living players who are not mafia.
    pub fn living_town(&self) -> Vec<Id> {
        let living = self.living();
        self.dealt.iter().filter(|(id, r)| *r != Role::Mafia && living.contains(id)).map(|(id, _)| id.clone()).collect()
    }

    /// Whether `subscriber` receives `publisher`'s `kind` now.
    pub fn receives(&self, subscriber: &str, publisher: &str, kind: MediaKind) -> bool {
        let route = Route { subscriber: subscriber.into(), publisher: publisher.into(), kind };
        self.game.routes().contains(&route)
    }

    /// Whom `publisher`'s `kind` reaches now, sorted.
    pub fn audience(&self, publisher: &str, kind: MediaKind) -> Vec<Id> {
        let mut out: Vec<Id> = self
            .game
            .routes()
            .into_iter()
            .filter(|r| r.publisher == publisher && r.kind == kind)
            .map(|r| r.subscriber)
            .collect();
        out.sort();
        out
    }
}

/// The phases announced in `events`, in order.
pub fn phases(events: &[Event]) -> Vec<Phase> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Phase(info) => Some(info.phase),
            _ => None,
        })
        .collect()
}

/// The role map of a dealt list.
pub fn role_map(dealt: &[(Id, Role)]) -> BTreeMap<Id, Role> {
    dealt.iter().cloned().collect()
}

/// Settings with phase lengths and counts.
pub fn settings(mafia: Option<u32>, doctor: Option<u32>, detective: Option<u32>) -> Settings {
    Settings { mafia, doctor, detective, ..Settings::default() }
}
