//! Taking, keeping and leaving seats: join, resume, socket loss and grace, departure, the
//! room API's close, and switching the room's kind.

use std::sync::atomic::Ordering;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info};

use super::members::Member;
use super::{Joined, Room};
use crate::game::{AnyEvent, AnyInput, GameError, LOBBY};
use crate::ids;
use crate::outbound::Outbound;
use crate::protocol::{
    ErrorCode, LeaveReason, Limits, MediaStateInfo, Participant, Refusal, ServerMsg, Welcome, CLOSE_KICKED,
    CLOSE_REPLACED,
};

impl Room {
    pub(super) async fn join(
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
        let capacity = self.capacity();
        if self.members.len() >= capacity {
            return Err(Refusal::new(
                ErrorCode::RoomFull,
                format!("room {} is full ({capacity} participants)", self.code),
            ));
        }
        let roster = self.game.roster();
        if roster.is_banned(&name) {
            return Err(Refusal::new(ErrorCode::Kicked, "the host removed you from this game; wait for it to end"));
        }
        if roster.name_taken(&name) {
            return Err(Refusal::new(ErrorCode::NameTaken, format!("someone in this room is already called {name}")));
        }
        let mut id = ids::new_participant_id();
        while self.members.contains(&id) {
            id = ids::new_participant_id();
        }
        let connection = self.home.next_connection();
        let resume_token = ids::new_token();
        self.members.insert(
            id.clone(),
            Member {
                connected: true,
                out: Some(out),
                connection,
                resume_token: resume_token.clone(),
                grace_until: None,
                media_state: None,
                speaking: Vec::new(),
            },
        );
        // A token holder arrives as a guest, then takes the powers: so `host_changed` always tells
        // the others, even when nobody held them.
        let guest = self.options.token_host || host;
        let now = self.now(super::unix_ms());
        if let Err(e) = self.play(now, &id, AnyInput::Join { name, guest }) {
            // The seats refuse no join; if they ever do, the seat is not taken.
            self.members.remove(&id);
            return Err(e.into());
        }
        if host {
            // Whoever holds the host token takes the powers back (`host_changed` to all).
            let _ = self.play(now, &id, AnyInput::TakeHost);
        }
        self.home.stats().participants.fetch_add(1, Ordering::Relaxed);
        let welcome = self.welcome(&id, resume_token, false);
        self.send(&id, &welcome);
        let joined = ServerMsg::ParticipantJoined { participant: self.participant(&id) };
        self.broadcast_except(&id, &joined);
        self.membership_changed = true;
        self.after_game().await;
        info!(room = %self.code, participant = %id, "joined");
        Ok(Joined { id, connection })
    }

    /// The `welcome` for `id`; a resuming client also gets what it needs to redraw everything:
    /// its media view and what the game says it needs (Mafia: its role and the current tally).
    /// What a client must respect in this room, for its kind.
    fn limits(&self) -> Limits {
        Limits {
            max_video_kbps: self.settings.max_video_kbps,
            max_message_bytes: crate::protocol::MAX_FRAME_BYTES,
            max_participants: self.capacity(),
            kind: self.game.limits().into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        }
    }

    pub(super) fn welcome(&self, id: &str, resume_token: String, resumed: bool) -> ServerMsg {
        let (phase, info) = self.game.phase();
        ServerMsg::Welcome(Welcome {
            id: id.to_owned(),
            room: self.code.clone(),
            kind: self.game.kind().to_owned(),
            host: self.game.roster().host().unwrap_or_default().to_owned(),
            resume_token,
            participants: self.participants(),
            game: (phase != LOBBY).then_some(info),
            limits: self.limits(),
            media_state: resumed.then(|| MediaStateInfo { receive: self.media_state(id) }),
            locked: self.locked,
            ice_servers: self.settings.ice_servers.clone(),
            catch_up: self.game.catch_up(id, resumed).into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        })
    }

    /// A socket presents a resume token: it takes the seat back, with everything the seat
    /// holds (id, role, life, votes, readiness). A socket still holding the seat is replaced.
    pub(super) fn resume(&mut self, token: &str, out: mpsc::UnboundedSender<Outbound>) -> Result<Joined, Refusal> {
        let expired = || {
            Refusal::new(
                ErrorCode::ResumeExpired,
                "that seat is gone (unknown token, or its grace period ended); join again",
            )
        };
        let id = self.members.by_token(token).ok_or_else(expired)?;
        let connection = self.home.next_connection();
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
        // A resumed page knows of no speaker: the next change (or phase) tells it.
        m.speaking = Vec::new();
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

    pub(super) fn participant(&self, id: &str) -> Participant {
        let standing = self.game.standing(id);
        let seat = self.game.roster().seat(id);
        Participant {
            id: id.to_owned(),
            name: seat.map(|s| s.name.clone()).unwrap_or_default(),
            ready: seat.is_some_and(|s| s.ready),
            connected: self.members.get(id).is_some_and(|m| m.connected),
            playing: standing.playing,
            alive: standing.alive,
            on_stage: standing.on_stage,
            hand: standing.hand,
        }
    }

    /// Everyone, in order of arrival.
    pub(super) fn participants(&self) -> Vec<Participant> {
        self.game.roster().ids().map(|id| self.participant(id)).collect()
    }

    pub(super) fn socket_closed(&mut self, id: &str, connection: u64) {
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

    pub(super) async fn expire_graces(&mut self) {
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

    /// Everyone leaves at once (idle close).
    pub(super) async fn close_all(&mut self, reason: LeaveReason) {
        for id in self.members.ids() {
            self.remove(&id, reason).await;
        }
        self.closing = true;
    }

    /// The room API closes the room: everyone is told and disconnected.
    pub(super) fn close_by_api(&mut self) {
        let closed = ServerMsg::error(ErrorCode::RoomClosed, "the host closed this room").to_text();
        for (id, m) in self.members.iter() {
            if let Some(out) = &m.out {
                let _ = out.send(Outbound::Text(closed.clone()));
                let _ = out.send(Outbound::Close { code: 1000, reason: "room_closed".into() });
            }
            self.media.remove_peer(id);
        }
        self.home.stats().participants.fetch_sub(self.members.len() as u64, Ordering::Relaxed);
        self.members.clear();
        self.closing = true;
        info!(room = %self.code, "closed through the API");
    }

    pub(super) async fn remove(&mut self, id: &str, reason: LeaveReason) {
        let Some(member) = self.members.remove(id) else { return };
        self.home.stats().participants.fetch_sub(1, Ordering::Relaxed);
        if let Some(out) = &member.out {
            let code = if reason == LeaveReason::Kicked { CLOSE_KICKED } else { 1000 };
            let _ = out.send(Outbound::Close { code, reason: format!("{reason:?}").to_lowercase() });
        }
        self.media.remove_peer(id);
        self.broadcast(&ServerMsg::ParticipantLeft { id: id.to_owned(), reason });
        // The game eliminates a player who leaves mid-game; the seats pass the host's powers on.
        let now = self.now(super::unix_ms());
        let _ = self.play(now, id, AnyInput::Leave);
        self.membership_changed = true;
        self.after_game().await;
        info!(room = %self.code, participant = %id, ?reason, "left");
    }

    /// Host, in the lobby: the room becomes another kind. The seats stay; the new game starts
    /// in its lobby, which everyone is told (`kind_changed`, then its `phase`).
    pub(super) async fn set_kind(&mut self, id: &str, kind: &str) -> Result<(), Refusal> {
        if self.game.roster().host() != Some(id) {
            return Err(GameError::NotHost("only the host can change the kind of room".into()).into());
        }
        let registry = self.home.registry();
        registry.get(kind)?;
        let (phase, _) = self.game.phase();
        if self.game.running() || phase != LOBBY {
            return Err(GameError::WrongPhase("the kind of room changes in the lobby".into()).into());
        }
        if kind == self.game.kind() {
            return Ok(());
        }
        let capacity = super::capacity(&self.settings, registry, kind);
        if self.members.len() > capacity {
            return Err(GameError::NotAllowed(format!(
                "a {kind} room holds at most {capacity}; {} are here",
                self.members.len()
            ))
            .into());
        }
        self.game = registry.create(kind, rand::random(), self.game.roster().clone())?;
        info!(room = %self.code, kind, "kind changed");
        self.broadcast(&ServerMsg::KindChanged { kind: kind.to_owned(), limits: self.limits() });
        let (name, info) = self.game.phase();
        self.pending.push(AnyEvent::Phase { name, info });
        for id in self.game.roster().id_list() {
            self.pending.push(AnyEvent::Updated(id));
        }
        self.after_game().await;
        Ok(())
    }
}
