//! A room: one task that owns its participants, its game and its media, handling one input
//! at a time.
//!
//! The game decides; the room translates. After every input that reaches the game, the room
//! drains the game's events, hands the game's routes to the media layer and waits until they
//! are applied, and only then sends the events out — so no client hears of a phase before its
//! media follows that phase (the ordering contract of DESIGN.md §2).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, info};

use crate::game::mafia::Mafia;
use crate::game::{Command, Event, Game, GameError, Millis, Phase};
use crate::gamelog::{GameLog, Record, VERSION};
use crate::hub::{HubInner, HubSettings, RoomInfo, RoomOptions};
use crate::ids;
use crate::media::{MediaKind, MediaNotice, MediaPort, MediaRefusal, Route};
use crate::protocol::{
    CandidateMsg, ErrorCode, LeaveReason, Limits, MediaStateInfo, Participant, Reception, Refusal, RoleInfo, ServerMsg,
    VoteTally, CLOSE_KICKED, CLOSE_REPLACED,
};
use crate::session::Outbound;

/// What made the game move (for timing phase switches).
#[derive(Debug, Clone, Copy)]
enum Cause {
    /// A phase timer fired.
    Timer,
    /// A participant's input: a vote, a start, a join, a leave or kick.
    Input,
}

/// What a room task receives.
pub(crate) enum RoomInput {
    Join {
        name: String,
        out: mpsc::UnboundedSender<Outbound>,
        reply: oneshot::Sender<Result<Joined, Refusal>>,
        /// The joiner presented a valid host token: they get the powers, past lock and PIN.
        host: bool,
        pin: Option<String>,
    },
    /// Take back a seat with a resume token.
    Resume {
        token: String,
        out: mpsc::UnboundedSender<Outbound>,
        reply: oneshot::Sender<Result<Joined, Refusal>>,
        /// A valid host token came with the resume.
        host: bool,
    },
    /// Host: lock or unlock the room.
    Lock {
        id: String,
        locked: bool,
    },
    /// The room API asks what the room looks like.
    Info {
        reply: oneshot::Sender<RoomInfo>,
    },
    /// The room API closes the room.
    Close,
    Offer {
        id: String,
        sdp: String,
    },
    Answer {
        id: String,
        sdp: String,
    },
    Candidate {
        id: String,
        candidate: CandidateMsg,
    },
    Leave {
        id: String,
    },
    /// A game command from a participant.
    Game {
        id: String,
        command: Command,
    },
    /// The participant's socket closed without `leave`.
    SocketClosed {
        id: String,
        connection: u64,
    },
    Media(MediaNotice),
    /// The server is going away.
    Shutdown,
}

/// A successful join.
#[derive(Debug)]
pub(crate) struct Joined {
    pub id: String,
    pub connection: u64,
}

/// A handle to send inputs to a room task.
#[derive(Clone)]
pub(crate) struct RoomHandle {
    pub tx: mpsc::UnboundedSender<RoomInput>,
    /// Distinguishes this room from a later one with the same code.
    pub instance: u64,
}

struct Member {
    name: String,
    connected: bool,
    out: Option<mpsc::UnboundedSender<Outbound>>,
    connection: u64,
    /// Presented by `join` with `resume` to take this seat back; rotated on every resume.
    resume_token: String,
    /// When the grace period of a disconnected member ends.
    grace_until: Option<Instant>,
    joined_seq: u64,
    /// The last `media_state` sent, to send again only on change within a phase.
    media_state: Option<BTreeMap<String, Reception>>,
}

pub(crate) struct Room {
    code: String,
    instance: u64,
    settings: HubSettings,
    hub: Arc<HubInner>,
    media: Box<dyn MediaPort>,
    game: Box<dyn Game>,
    members: HashMap<String, Member>,
    routes: Vec<Route>,
    epoch: u64,
    seq: u64,
    /// The last tally sent in this phase, for a resuming client.
    last_tally: Option<VoteTally>,
    /// Names (lower case) the host kicked: they may not come back until the game is over.
    banned: HashSet<String>,
    /// Since when nobody in the room has been connected.
    idle_since: Option<Instant>,
    closing: bool,
    /// The running game's log, if logging is on.
    log: Option<GameLog>,
    /// Events drained from the game and not yet sent.
    pending: Vec<Event>,
    /// PIN, host-token rule, defaults (see [`RoomOptions`]).
    options: RoomOptions,
    /// Newcomers are refused (`room_locked`).
    locked: bool,
}

/// The room clock: unix milliseconds, what `phase.ends_at` and `pong.server_time` speak.
pub(crate) fn unix_ms() -> Millis {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl Room {
    pub(crate) fn new(
        code: String,
        instance: u64,
        settings: HubSettings,
        hub: Arc<HubInner>,
        media: Box<dyn MediaPort>,
        options: RoomOptions,
    ) -> Self {
        let game = Box::new(Mafia::new(rand::random()));
        let locked = options.locked;
        Room {
            code,
            instance,
            settings,
            hub,
            media,
            game,
            members: HashMap::new(),
            routes: Vec::new(),
            epoch: 0,
            seq: 0,
            last_tally: None,
            banned: HashSet::new(),
            idle_since: None,
            closing: false,
            log: None,
            pending: Vec::new(),
            options,
            locked,
        }
    }

    pub(crate) async fn run(mut self, mut inputs: mpsc::UnboundedReceiver<RoomInput>) {
        info!(room = %self.code, "room opened");
        loop {
            let grace = self.members.values().filter_map(|m| m.grace_until).min();
            if self.members.values().any(|m| m.connected) {
                self.idle_since = None;
            } else if self.idle_since.is_none() {
                self.idle_since = Some(Instant::now());
            }
            let idle = self.idle_since.map(|t| t + self.settings.idle);
            let timer = self
                .game
                .next_deadline()
                .map(|at| Instant::now() + Duration::from_millis(at.saturating_sub(unix_ms())));
            tokio::select! {
                input = inputs.recv() => match input {
                    Some(input) => self.handle(input, Instant::now()).await,
                    None => break,
                },
                _ = sleep_until_opt(grace) => self.expire_graces().await,
                _ = sleep_until_opt(idle) => {
                    info!(room = %self.code, "nobody connected for {:?}; closing", self.settings.idle);
                    self.close_all(LeaveReason::Disconnected).await;
                }
                _ = sleep_until_opt(timer) => {
                    // Measured from here: the timer firing, through the pure game, to the
                    // media workers' acknowledgement of the new routes.
                    let fired = Instant::now();
                    self.game_timeout(unix_ms());
                    self.after_game_since(fired, Cause::Timer).await;
                }
            }
            // A room made through the API waits for its players (until idle or closed).
            if (self.members.is_empty() && !self.options.keep_when_empty) || self.closing {
                break;
            }
        }
        self.close_log();
        // Unregister first, so a join racing with the close creates a fresh room.
        self.hub.remove_room(&self.code, self.instance);
        inputs.close();
        info!(room = %self.code, "room closed");
    }

    /// One input, taken from the queue at `taken` (a phase switch it causes is timed from then).
    async fn handle(&mut self, input: RoomInput, taken: Instant) {
        match input {
            RoomInput::Join { name, out, reply, host, pin } => {
                let result = self.join(name, out, host, pin).await;
                let _ = reply.send(result);
            }
            RoomInput::Resume { token, out, reply, host } => {
                let result = self.resume(&token, out);
                let resumed = result.as_ref().ok().map(|j| j.id.clone());
                let _ = reply.send(result);
                if let (Some(id), true) = (resumed, host) {
                    let _ = self.game_handle(unix_ms(), &id, Command::TakeHost);
                    self.after_game().await;
                }
            }
            RoomInput::Lock { id, locked } => {
                if self.game.host().as_deref() != Some(id.as_str()) {
                    self.send(&id, &ServerMsg::error(ErrorCode::NotHost, "only the host may lock the room"));
                    return;
                }
                self.locked = locked;
                self.broadcast(&ServerMsg::Locked { locked });
                info!(room = %self.code, locked, "lock");
            }
            RoomInput::Info { reply } => {
                let phase = self.game.phase();
                let _ = reply.send(RoomInfo {
                    code: self.code.clone(),
                    phase: phase.phase,
                    round: phase.round,
                    host: self.game.host(),
                    locked: self.locked,
                    pin: self.options.pin.is_some(),
                    participants: self.participants(),
                    max_participants: self.settings.max_participants,
                });
            }
            RoomInput::Close => {
                let closed = ServerMsg::error(ErrorCode::RoomClosed, "the host closed this room").to_text();
                for (id, m) in &self.members {
                    if let Some(out) = &m.out {
                        let _ = out.send(Outbound::Text(closed.clone()));
                        let _ = out.send(Outbound::Close { code: 1000, reason: "room_closed".into() });
                    }
                    self.media.remove_peer(id);
                }
                self.hub.stats.participants.fetch_sub(self.members.len() as u64, Ordering::Relaxed);
                self.members.clear();
                self.closing = true;
                info!(room = %self.code, "closed through the API");
            }
            RoomInput::Offer { id, sdp } => {
                if !self.members.contains_key(&id) {
                    return;
                }
                match self.media.offer(&id, sdp).await {
                    Ok(answer) => self.send(&id, &ServerMsg::Answer { sdp: answer }),
                    Err(refusal) => self.send(&id, &media_error(refusal, "offer")),
                }
            }
            RoomInput::Answer { id, sdp } => {
                if !self.members.contains_key(&id) {
                    return;
                }
                if let Err(refusal) = self.media.answer(&id, sdp).await {
                    self.send(&id, &media_error(refusal, "answer"));
                }
            }
            RoomInput::Candidate { id, candidate } => {
                if self.members.contains_key(&id) {
                    self.media.candidate(&id, candidate.candidate);
                }
            }
            RoomInput::Game { id, command } => {
                if !self.members.contains_key(&id) {
                    return;
                }
                let result = self.game_handle(unix_ms(), &id, command);
                if let Err(e) = &result {
                    self.send(&id, &ServerMsg::error(e.code(), e.to_string()));
                }
                // Even a refused command may have run a phase timer that was due.
                self.after_game_since(taken, Cause::Input).await;
            }
            RoomInput::Leave { id } => self.remove(&id, LeaveReason::Left).await,
            RoomInput::SocketClosed { id, connection } => self.socket_closed(&id, connection),
            RoomInput::Media(notice) => self.media_notice(notice),
            // The sockets are told by the transport (it tells the unjoined ones too); the room
            // only ends, which releases its media.
            RoomInput::Shutdown => self.closing = true,
        }
    }

    /// Everyone leaves at once (idle close).
    async fn close_all(&mut self, reason: LeaveReason) {
        for id in self.member_ids() {
            self.remove(&id, reason).await;
        }
        self.closing = true;
    }

    async fn join(
        &mut self,
        name: String,
        out: mpsc::UnboundedSender<Outbound>,
        host: bool,
        pin: Option<String>,
    ) -> Result<Joined, Refusal> {
        if self.locked && !host {
            return Err(Refusal::new(ErrorCode::RoomLocked, "the host locked this room"));
        }
        if let Some(expected) = &self.options.pin {
            if !host && !pin.as_deref().is_some_and(|p| ids::same_secret(p, expected)) {
                let what = if pin.is_some() { "wrong PIN" } else { "this room needs a PIN" };
                return Err(Refusal::new(ErrorCode::BadPin, what));
            }
        }
        if self.members.len() >= self.settings.max_participants {
            return Err(Refusal::new(
                ErrorCode::RoomFull,
                format!("room {} is full ({} participants)", self.code, self.settings.max_participants),
            ));
        }
        if self.banned.contains(&name.to_lowercase()) {
            return Err(Refusal::new(ErrorCode::Kicked, "the host removed you from this game; wait for it to end"));
        }
        if self.members.values().any(|m| m.name.to_lowercase() == name.to_lowercase()) {
            return Err(Refusal::new(ErrorCode::NameTaken, format!("someone in this room is already called {name}")));
        }
        let mut id = ids::new_participant_id();
        while self.members.contains_key(&id) {
            id = ids::new_participant_id();
        }
        self.seq += 1;
        let connection = self.hub.next_connection();
        let resume_token = ids::new_token();
        self.members.insert(
            id.clone(),
            Member {
                name,
                connected: true,
                out: Some(out),
                connection,
                resume_token: resume_token.clone(),
                grace_until: None,
                joined_seq: self.seq,
                media_state: None,
            },
        );
        // A token holder arrives as a guest, then takes the powers: so `host_changed` always tells
        // the others, even when nobody held them.
        let arrival = if self.options.token_host || host { Command::JoinedGuest } else { Command::Joined };
        if let Err(e) = self.game_handle(unix_ms(), &id, arrival) {
            // The game refuses no join; if it ever does, the seat is not taken.
            self.members.remove(&id);
            return Err(Refusal::new(e.code(), e.to_string()));
        }
        if host {
            // Whoever holds the host token takes the powers back (`host_changed` to all).
            let _ = self.game_handle(unix_ms(), &id, Command::TakeHost);
        }
        self.hub.stats.participants.fetch_add(1, Ordering::Relaxed);
        let welcome = self.welcome(&id, resume_token, false);
        self.send(&id, &welcome);
        let joined = ServerMsg::ParticipantJoined { participant: self.participant(&id) };
        self.broadcast_except(&id, &joined);
        self.after_game().await;
        info!(room = %self.code, participant = %id, "joined");
        Ok(Joined { id, connection })
    }

    /// The `welcome` for `id`; a resuming client also gets what it needs to redraw
    /// everything: its role, its media view and the current tally.
    fn welcome(&self, id: &str, resume_token: String, resumed: bool) -> ServerMsg {
        let phase = self.game.phase();
        let role = match self.game.role_of(id) {
            Some(Event::Role { role, teammates, roles, .. }) if resumed => Some(RoleInfo { role, teammates, roles }),
            _ => None,
        };
        ServerMsg::Welcome {
            id: id.to_owned(),
            room: self.code.clone(),
            host: self.game.host().unwrap_or_default(),
            resume_token,
            participants: self.participants(),
            game: (phase.phase != Phase::Lobby).then_some(phase),
            limits: Limits {
                max_video_kbps: self.settings.max_video_kbps,
                max_message_bytes: crate::protocol::MAX_FRAME_BYTES,
                max_participants: self.settings.max_participants,
            },
            role,
            media_state: resumed.then(|| MediaStateInfo { receive: self.media_state(id) }),
            vote_update: if resumed { self.last_tally.clone() } else { None },
            locked: self.locked,
            ice_servers: self.settings.ice_servers.clone(),
        }
    }

    /// A socket presents a resume token: it takes the seat back, with everything the seat
    /// holds (id, role, life, votes, readiness). A socket still holding the seat is replaced.
    fn resume(&mut self, token: &str, out: mpsc::UnboundedSender<Outbound>) -> Result<Joined, Refusal> {
        let expired = || {
            Refusal::new(
                ErrorCode::ResumeExpired,
                "that seat is gone (unknown token, or its grace period ended); join again",
            )
        };
        let id = self
            .members
            .iter()
            .find(|(_, m)| ids::same_secret(&m.resume_token, token))
            .map(|(id, _)| id.clone())
            .ok_or_else(expired)?;
        let connection = self.hub.next_connection();
        let fresh_token = ids::new_token();
        let view = self.media_state(&id);
        let m = self.members.get_mut(&id).ok_or_else(expired)?;
        if let Some(old) = m.out.replace(out) {
            let _ = old.send(Outbound::Text(
                ServerMsg::error(ErrorCode::Replaced, "another connection took this seat").to_text(),
            ));
            let _ = old.send(Outbound::Close { code: CLOSE_REPLACED, reason: "replaced".into() });
        }
        let was_connected = m.connected;
        m.connected = true;
        m.connection = connection;
        m.grace_until = None;
        m.resume_token = fresh_token.clone();
        // The client redraws from the welcome; later views are sent as they change.
        m.media_state = Some(view);
        // The resumed client may hold a new peer connection: no server offer reaches it
        // before its own offer says which connection it has.
        self.media.hold_offers(&id);
        let welcome = self.welcome(&id, fresh_token, true);
        self.send(&id, &welcome);
        if !was_connected {
            self.broadcast_except(&id, &ServerMsg::ParticipantUpdated { participant: self.participant(&id) });
        }
        info!(room = %self.code, participant = %id, "resumed");
        Ok(Joined { id, connection })
    }

    fn participant(&self, id: &str) -> Participant {
        let standing = self.game.standing(id);
        let m = &self.members[id];
        Participant {
            id: id.to_owned(),
            name: m.name.clone(),
            ready: standing.ready,
            connected: m.connected,
            playing: standing.playing,
            alive: standing.alive,
        }
    }

    fn participants(&self) -> Vec<Participant> {
        let mut all: Vec<(&String, &Member)> = self.members.iter().collect();
        all.sort_by_key(|(_, m)| m.joined_seq);
        all.into_iter().map(|(id, _)| self.participant(id)).collect()
    }

    fn socket_closed(&mut self, id: &str, connection: u64) {
        let grace = self.settings.grace;
        let Some(m) = self.members.get_mut(id) else { return };
        if m.connection != connection {
            return; // a newer socket holds this seat
        }
        m.out = None;
        m.connected = false;
        m.grace_until = Some(Instant::now() + grace);
        let update = ServerMsg::ParticipantUpdated { participant: self.participant(id) };
        self.broadcast_except(id, &update);
        debug!(room = %self.code, participant = %id, "socket closed; grace started");
    }

    async fn expire_graces(&mut self) {
        let now = Instant::now();
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| m.grace_until.is_some_and(|t| t <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            self.remove(&id, LeaveReason::Disconnected).await;
        }
    }

    async fn remove(&mut self, id: &str, reason: LeaveReason) {
        let Some(member) = self.members.remove(id) else { return };
        self.hub.stats.participants.fetch_sub(1, Ordering::Relaxed);
        if let Some(out) = &member.out {
            let code = if reason == LeaveReason::Kicked { CLOSE_KICKED } else { 1000 };
            let _ = out.send(Outbound::Close { code, reason: format!("{reason:?}").to_lowercase() });
        }
        self.media.remove_peer(id);
        self.broadcast(&ServerMsg::ParticipantLeft { id: id.to_owned(), reason });
        // The game eliminates a player who leaves mid-game and passes the host's powers on.
        let _ = self.game_handle(unix_ms(), id, Command::Left);
        self.after_game().await;
        info!(room = %self.code, participant = %id, ?reason, "left");
    }

    /// Drain the game's events; apply its routes if they changed (and wait for that); then
    /// send the events, and `media_state` to whoever's view changed. Returns whether the
    /// phase changed.
    async fn after_game(&mut self) -> bool {
        self.after_game_since(Instant::now(), Cause::Input).await
    }

    /// [`Self::after_game`], with a phase switch's apply time counted from `started` (when the
    /// command or timer that caused it was taken up).
    async fn after_game_since(&mut self, started: Instant, cause: Cause) -> bool {
        self.drain_game();
        let events = std::mem::take(&mut self.pending);
        let switching = events.iter().any(|e| matches!(e, Event::Phase(_)));
        let routes = self.game.routes();
        if routes != self.routes {
            self.epoch += 1;
            self.media.set_routes(self.epoch, routes.clone()).await;
            self.routes = routes;
            debug!(room = %self.code, epoch = self.epoch, apply_us = started.elapsed().as_micros() as u64, "routes applied");
        }
        if switching {
            let took = started.elapsed();
            self.hub.stats.phase_switches.fetch_add(1, Ordering::Relaxed);
            let histogram = match cause {
                Cause::Timer => &self.hub.stats.phase_switch_apply,
                Cause::Input => &self.hub.stats.phase_switch_apply_input,
            };
            histogram.observe(took);
            debug!(room = %self.code, ?cause, elapsed_us = took.as_micros() as u64, "phase switch applied");
        }
        let mut phase_changed = false;
        let mut kicked = Vec::new();
        for event in events {
            match event {
                Event::Phase(info) => {
                    phase_changed = true;
                    self.last_tally = None;
                    if info.phase == Phase::Lobby {
                        self.banned.clear(); // the game is over: the kicked may come back
                    }
                    self.broadcast(&ServerMsg::Phase(info));
                    // Everyone's view, right after every phase message, changed or not.
                    for id in self.member_ids() {
                        self.send_media_state(&id, true);
                    }
                }
                Event::Role { to, role, teammates, roles } => {
                    self.send(&to, &ServerMsg::Role(RoleInfo { role, teammates, roles }));
                }
                Event::VoteUpdate { kind, votes, needed } => {
                    let tally = VoteTally { kind, votes, needed };
                    self.broadcast(&ServerMsg::VoteUpdate(tally.clone()));
                    self.last_tally = Some(tally);
                }
                Event::Investigation { to, target, is_mafia } => {
                    self.send(&to, &ServerMsg::Investigation { target, is_mafia });
                }
                Event::Eliminated { id, cause } => self.broadcast(&ServerMsg::Eliminated { id, cause }),
                Event::HostChanged { host } => self.broadcast(&ServerMsg::HostChanged { host }),
                Event::ParticipantChanged { id } => {
                    if self.members.contains_key(&id) {
                        self.broadcast(&ServerMsg::ParticipantUpdated { participant: self.participant(&id) });
                    }
                }
                Event::Chat { from, channel, text, at, to } => {
                    let msg = ServerMsg::Chat { from, channel, text, at };
                    for reader in to {
                        self.send(&reader, &msg);
                    }
                }
                Event::GameOver { winner, roles } => self.broadcast(&ServerMsg::GameOver { winner, roles }),
                Event::Kicked { id } => kicked.push(id),
            }
        }
        // Views can change within a phase too (a join, a leave, an elimination).
        for id in self.member_ids() {
            self.send_media_state(&id, false);
        }
        for id in kicked {
            if let Some(m) = self.members.get(&id) {
                self.banned.insert(m.name.to_lowercase());
            }
            self.send(&id, &ServerMsg::error(ErrorCode::Kicked, "the host removed you from this room"));
            Box::pin(self.remove(&id, LeaveReason::Kicked)).await;
        }
        phase_changed
    }

    /// Hand one command to the game, recording it (and, for a game that starts, opening its
    /// log first). Each game's deal gets a fresh seed, so each game replays on its own.
    fn game_handle(&mut self, now: Millis, who: &str, mut command: Command) -> Result<(), GameError> {
        let starting = matches!(command, Command::StartGame(_));
        if starting && self.game.next_deadline().is_some_and(|d| d <= now) {
            // A timer of the old game is due: it belongs to the old game's log.
            self.game_timeout(now);
            self.drain_game();
        }
        let seed: u64 = rand::random();
        if let Command::StartGame(settings) = &mut command {
            settings.seed = Some(seed);
            // What the host leaves out, the room's defaults (set at creation) fill in.
            let defaults = &self.options.settings;
            settings.mafia = settings.mafia.or(defaults.mafia);
            settings.doctor = settings.doctor.or(defaults.doctor);
            settings.detective = settings.detective.or(defaults.detective);
            settings.host_plays = settings.host_plays.or(defaults.host_plays);
            for (phase, secs) in &defaults.phase_seconds {
                settings.phase_seconds.entry(phase.clone()).or_insert(*secs);
            }
        }
        let roster = self.game.participants();
        let host = self.game.host();
        let recorded = command.clone();
        let result = self.game.handle(now, who, command);
        if starting && result.is_ok() {
            self.open_log(seed, now, roster.clone());
            // A replay makes the first of the roster host; a host token may have moved the
            // powers since, so the log says so before the start.
            if let Some(host) = host.filter(|h| roster.first() != Some(h)) {
                self.record(Record::Input { at: now, who: host.clone(), command: Command::TakeHost });
                self.record(Record::Event { event: Event::HostChanged { host } });
            }
        }
        self.record(Record::Input { at: now, who: who.to_owned(), command: recorded });
        result
    }

    /// The game's timer is due.
    fn game_timeout(&mut self, now: Millis) {
        self.record(Record::Timeout { at: now });
        self.game.handle_timeout(now);
    }

    /// Move the game's events to `pending`, recording them; a game back in the lobby closes
    /// its log.
    fn drain_game(&mut self) {
        while let Some(event) = self.game.poll_event() {
            let back_in_lobby = matches!(&event, Event::Phase(p) if p.phase == Phase::Lobby);
            self.record(Record::Event { event: event.clone() });
            self.pending.push(event);
            if back_in_lobby {
                self.close_log();
            }
        }
    }

    fn open_log(&mut self, seed: u64, now: Millis, roster: Vec<String>) {
        self.close_log();
        let Some(dir) = self.settings.game_log_dir.clone() else { return };
        let header = Record::Header { version: VERSION, room: self.code.clone(), seed, started_at: now, roster };
        match GameLog::create(&dir, &header) {
            Ok(log) => {
                info!(room = %self.code, path = %log.path().display(), "game log");
                self.log = Some(log);
            }
            Err(e) => tracing::warn!(room = %self.code, "cannot write a game log in {}: {e}", dir.display()),
        }
    }

    fn record(&mut self, record: Record) {
        let Some(log) = &mut self.log else { return };
        if let Err(e) = log.write(&record) {
            tracing::warn!(room = %self.code, "game log write failed, logging stops for this game: {e}");
            self.log = None;
        }
    }

    fn close_log(&mut self) {
        if let Some(mut log) = self.log.take() {
            if let Err(e) = log.flush() {
                tracing::warn!(room = %self.code, "game log flush failed: {e}");
            }
        }
    }

    fn member_ids(&self) -> Vec<String> {
        self.members.keys().cloned().collect()
    }

    /// What `id` may receive from each other participant under the applied routes.
    fn media_state(&self, id: &str) -> BTreeMap<String, Reception> {
        let mut view: BTreeMap<String, Reception> = self
            .members
            .keys()
            .filter(|p| p.as_str() != id)
            .map(|p| (p.clone(), Reception { audio: false, video: false }))
            .collect();
        for r in self.routes.iter().filter(|r| r.subscriber == id) {
            if let Some(v) = view.get_mut(&r.publisher) {
                match r.kind {
                    MediaKind::Audio => v.audio = true,
                    MediaKind::Video => v.video = true,
                }
            }
        }
        view
    }

    fn send_media_state(&mut self, id: &str, always: bool) {
        let view = self.media_state(id);
        let Some(m) = self.members.get_mut(id) else { return };
        if !always && m.media_state.as_ref() == Some(&view) {
            return;
        }
        m.media_state = Some(view.clone());
        self.send(id, &ServerMsg::MediaState(MediaStateInfo { receive: view }));
    }

    fn media_notice(&mut self, notice: MediaNotice) {
        match notice {
            MediaNotice::Offer { peer, sdp } => self.send(&peer, &ServerMsg::Offer { sdp }),
            MediaNotice::Connected { peer } => debug!(room = %self.code, %peer, "media connected"),
            MediaNotice::Lost { peer, reason } => info!(room = %self.code, %peer, %reason, "media lost"),
        }
    }

    fn send(&self, id: &str, msg: &ServerMsg) {
        if let Some(out) = self.members.get(id).and_then(|m| m.out.as_ref()) {
            let _ = out.send(Outbound::Text(msg.to_text()));
        }
    }

    fn broadcast(&self, msg: &ServerMsg) {
        let text = msg.to_text();
        for m in self.members.values() {
            if let Some(out) = &m.out {
                let _ = out.send(Outbound::Text(text.clone()));
            }
        }
    }

    fn broadcast_except(&self, except: &str, msg: &ServerMsg) {
        let text = msg.to_text();
        for (id, m) in &self.members {
            if id != except {
                if let Some(out) = &m.out {
                    let _ = out.send(Outbound::Text(text.clone()));
                }
            }
        }
    }
}

fn media_error(refusal: MediaRefusal, what: &str) -> ServerMsg {
    match refusal {
        MediaRefusal::BadSdp(e) => ServerMsg::error(ErrorCode::BadSdp, format!("invalid {what}: {e}")),
        MediaRefusal::Glare => ServerMsg::error(
            ErrorCode::Glare,
            "the server's offer is outstanding: roll back, answer it, then offer again",
        ),
        MediaRefusal::Full => ServerMsg::error(ErrorCode::ServerFull, "the media server is at capacity"),
        MediaRefusal::Failed(e) => ServerMsg::error(ErrorCode::BadSdp, format!("{what} failed: {e}")),
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
