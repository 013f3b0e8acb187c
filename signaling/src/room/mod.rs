//! A room: one task that owns its participants' connections, its game (behind
//! [`AnyDriver`], whatever the kind) and its media, handling one input at a time.
//!
//! The game decides; the room translates. After every input that reaches the game, the room
//! drains the game's events, hands the routes that changed to the media layer and waits until
//! they are applied, and only then sends the events out — so no client hears of a phase before
//! its media follows that phase (the ordering contract, docs/ARCHITECTURE.md "A phase switch").

mod members;
mod play;
mod seats;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::info;

use crate::game::{AnyDriver, AnyEvent, AnyInput, Id, Millis, Registry, Routes, Rtt};
use crate::gamelog::GameLog;
use crate::media::{MediaNotice, MediaPort};
use crate::options::{HubSettings, RoomInfo, RoomOptions};
use crate::outbound::Outbound;
use crate::protocol::{CandidateMsg, ErrorCode, LeaveReason, Refusal, ServerMsg};
use crate::stats::SignalingStats;

use self::members::Members;

/// What a room needs of whoever keeps the rooms (the hub), declared here so the room does not
/// depend on it.
pub(crate) trait Home: Send + Sync {
    /// A fresh connection number (also distinguishes room instances).
    fn next_connection(&self) -> u64;
    /// The room `code` (this `instance`) has ended: forget it.
    fn room_closed(&self, code: &str, instance: u64);
    /// Where statistics go.
    fn stats(&self) -> &SignalingStats;
    /// The kinds of room this server offers.
    fn registry(&self) -> &Registry;
}

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
        id: Id,
        locked: bool,
    },
    /// Host: switch the room's kind (in the lobby).
    SetKind {
        id: Id,
        kind: String,
    },
    /// How tall the participant shows each publisher's video (`layout`).
    Layout {
        id: Id,
        heights: BTreeMap<Id, u16>,
    },
    /// The room API asks what the room looks like.
    Info {
        reply: oneshot::Sender<RoomInfo>,
    },
    /// The room API closes the room.
    Close,
    Offer {
        id: Id,
        sdp: String,
    },
    Answer {
        id: Id,
        sdp: String,
    },
    Candidate {
        id: Id,
        candidate: CandidateMsg,
    },
    Leave {
        id: Id,
    },
    /// An input for the seats or the game (chat, ready, start, kick, a game message), with
    /// the time its frame arrived.
    Play {
        id: Id,
        input: AnyInput,
        at: Millis,
    },
    /// The connection measured its round trip again.
    Rtt {
        id: Id,
        rtt: Rtt,
    },
    /// The participant's socket closed without `leave`.
    SocketClosed {
        id: Id,
        connection: u64,
    },
    Media(MediaNotice),
    /// The server is going away.
    Shutdown,
}

/// A successful join.
#[derive(Debug)]
pub(crate) struct Joined {
    pub id: Id,
    pub connection: u64,
}

/// A handle to send inputs to a room task.
#[derive(Clone)]
pub(crate) struct RoomHandle {
    pub tx: mpsc::UnboundedSender<RoomInput>,
    /// Distinguishes this room from a later one with the same code.
    pub instance: u64,
}

pub(crate) struct Room {
    code: String,
    instance: u64,
    settings: HubSettings,
    home: Arc<dyn Home>,
    media: Box<dyn MediaPort>,
    game: Box<dyn AnyDriver>,
    members: Members,
    /// The routes the media layer has applied.
    routes: Routes,
    /// Who speaks, as the media layer last said (everyone's, heard or not).
    speakers: Vec<Id>,
    epoch: u64,
    /// Since when nobody in the room has been connected.
    idle_since: Option<Instant>,
    closing: bool,
    /// The running game's log, if logging is on.
    log: Option<GameLog>,
    /// Events drained from the game and not yet sent.
    pending: Vec<AnyEvent>,
    /// PIN, host-token rule, defaults (see [`RoomOptions`]).
    options: RoomOptions,
    /// Newcomers are refused (`room_locked`).
    locked: bool,
    /// The latest time handed to the game: inputs are stamped when their frames arrived, and
    /// the game's clock never runs backwards.
    clock: Millis,
    /// Someone joined or left since the last `media_state` round: everyone's view has a
    /// participant more or less.
    membership_changed: bool,
}

/// The room clock: unix milliseconds, what `phase.ends_at` and `pong.server_time` speak.
pub(crate) fn unix_ms() -> Millis {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl Room {
    /// A room of `options.kind` (already checked against the registry by the hub).
    pub(crate) fn new(
        code: String,
        instance: u64,
        settings: HubSettings,
        home: Arc<dyn Home>,
        media: Box<dyn MediaPort>,
        options: RoomOptions,
    ) -> Result<Self, Refusal> {
        let registry = home.registry();
        let kind = options.kind.clone().unwrap_or_else(|| registry.default_kind().to_owned());
        let game = registry.create(&kind, rand::random(), Default::default()).map_err(Refusal::from)?;
        let locked = options.locked;
        Ok(Room {
            code,
            instance,
            settings,
            home,
            media,
            game,
            members: Members::default(),
            routes: Routes::new(),
            speakers: Vec::new(),
            epoch: 0,
            idle_since: None,
            closing: false,
            log: None,
            pending: Vec::new(),
            options,
            locked,
            clock: 0,
            membership_changed: false,
        })
    }

    pub(crate) async fn run(mut self, mut inputs: mpsc::UnboundedReceiver<RoomInput>) {
        info!(room = %self.code, kind = self.game.kind(), "room opened");
        loop {
            let grace = self.members.earliest_grace();
            if self.members.any_connected() {
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
                    let now = self.now(unix_ms());
                    self.game_timeout(now);
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
        self.home.room_closed(&self.code, self.instance);
        inputs.close();
        info!(room = %self.code, "room closed");
    }

    /// The game's clock at an input stamped `at`: never earlier than any time it was given.
    fn now(&mut self, at: Millis) -> Millis {
        self.clock = self.clock.max(at);
        self.clock
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
                    let now = self.now(unix_ms());
                    let _ = self.play(now, &id, AnyInput::TakeHost);
                    self.after_game().await;
                }
            }
            RoomInput::Lock { id, locked } => {
                if self.game.roster().host() != Some(id.as_str()) {
                    self.send(&id, &ServerMsg::error(ErrorCode::NotHost, "only the host may lock the room"));
                    return;
                }
                self.locked = locked;
                self.broadcast(&ServerMsg::Locked { locked });
                info!(room = %self.code, locked, "lock");
            }
            RoomInput::SetKind { id, kind } => {
                if let Err(refusal) = self.set_kind(&id, &kind).await {
                    self.send(&id, &refusal.to_msg());
                }
            }
            RoomInput::Layout { id, heights } => {
                if self.members.contains(&id) {
                    self.media.layout(&id, heights).await;
                }
            }
            RoomInput::Info { reply } => {
                let _ = reply.send(self.info());
            }
            RoomInput::Close => self.close_by_api(),
            RoomInput::Offer { id, sdp } => {
                if !self.members.contains(&id) {
                    return;
                }
                match self.media.offer(&id, sdp).await {
                    Ok(answer) => self.send(&id, &ServerMsg::Answer { sdp: answer }),
                    Err(refusal) => self.send(&id, &members::media_error(refusal, "offer")),
                }
            }
            RoomInput::Answer { id, sdp } => {
                if !self.members.contains(&id) {
                    return;
                }
                if let Err(refusal) = self.media.answer(&id, sdp).await {
                    self.send(&id, &members::media_error(refusal, "answer"));
                }
            }
            RoomInput::Candidate { id, candidate } => {
                if self.members.contains(&id) {
                    self.media.candidate(&id, candidate.candidate);
                }
            }
            RoomInput::Play { id, input, at } => {
                if !self.members.contains(&id) {
                    return;
                }
                let now = self.now(at);
                let result = self.play_checked(now, &id, input);
                if let Err(refusal) = result {
                    self.send(&id, &refusal.to_msg());
                }
                // Even a refused input may have run a phase timer that was due.
                self.after_game_since(taken, Cause::Input).await;
            }
            RoomInput::Rtt { id, rtt } => {
                if self.members.contains(&id) {
                    let now = self.now(unix_ms());
                    let _ = self.play(now, &id, AnyInput::Rtt(rtt));
                    self.after_game_since(taken, Cause::Input).await;
                }
            }
            RoomInput::Leave { id } => self.remove(&id, LeaveReason::Left).await,
            RoomInput::SocketClosed { id, connection } => self.socket_closed(&id, connection),
            RoomInput::Media(notice) => self.media_notice(notice),
            // The sockets are told by the transport (it tells the unjoined ones too); the room
            // only ends, which releases its media.
            RoomInput::Shutdown => self.closing = true,
        }
    }

    /// The room's capacity for its kind now.
    fn capacity(&self) -> usize {
        capacity(&self.settings, self.home.registry(), self.game.kind())
    }

    fn info(&self) -> RoomInfo {
        let (phase, value) = self.game.phase();
        RoomInfo {
            code: self.code.clone(),
            kind: self.game.kind().to_owned(),
            phase,
            round: value.get("round").and_then(|r| r.as_u64()).map_or(0, |r| r as u32),
            host: self.game.roster().host().map(str::to_owned),
            locked: self.locked,
            pin: self.options.pin.is_some(),
            participants: self.participants(),
            max_participants: self.capacity(),
        }
    }
}

/// Most participants a room of `kind` holds under `settings`.
pub(crate) fn capacity(settings: &HubSettings, registry: &Registry, kind: &str) -> usize {
    settings.capacity.get(kind).copied().or_else(|| registry.get(kind).ok().map(|k| k.default_capacity())).unwrap_or(24)
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
