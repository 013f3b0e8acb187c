//! A room: one task that owns its participants and its media, handling one input at a time.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, info};

use crate::hub::{HubInner, RoomSettings};
use crate::ids;
use crate::media::{MediaKind, MediaNotice, MediaPort, MediaRefusal, Route};
use crate::protocol::{CandidateMsg, ErrorCode, LeaveReason, Limits, Participant, Refusal, ServerMsg};
use crate::session::Outbound;

/// What a room task receives.
pub(crate) enum RoomInput {
    Join {
        name: String,
        out: mpsc::UnboundedSender<Outbound>,
        reply: oneshot::Sender<Result<Joined, Refusal>>,
    },
    Offer { id: String, sdp: String },
    Answer { id: String, sdp: String },
    Candidate { id: String, candidate: CandidateMsg },
    Leave { id: String },
    /// The participant's socket closed without `leave`.
    SocketClosed { id: String, connection: u64 },
    Media(MediaNotice),
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
    info: Participant,
    out: Option<mpsc::UnboundedSender<Outbound>>,
    connection: u64,
    #[allow(dead_code)] // presented by `join` with `resume` (sessions that survive come next)
    resume_token: String,
    /// When the grace period of a disconnected member ends.
    grace_until: Option<Instant>,
    joined_seq: u64,
}

pub(crate) struct Room {
    code: String,
    instance: u64,
    settings: RoomSettings,
    hub: Arc<HubInner>,
    media: Box<dyn MediaPort>,
    members: HashMap<String, Member>,
    host: Option<String>,
    epoch: u64,
    seq: u64,
}

impl Room {
    pub(crate) fn new(
        code: String,
        instance: u64,
        settings: RoomSettings,
        hub: Arc<HubInner>,
        media: Box<dyn MediaPort>,
    ) -> Self {
        Room { code, instance, settings, hub, media, members: HashMap::new(), host: None, epoch: 0, seq: 0 }
    }

    pub(crate) async fn run(mut self, mut inputs: mpsc::UnboundedReceiver<RoomInput>) {
        info!(room = %self.code, "room opened");
        loop {
            let deadline = self.members.values().filter_map(|m| m.grace_until).min();
            let input = tokio::select! {
                input = inputs.recv() => input,
                _ = sleep_until_opt(deadline) => {
                    self.expire_graces().await;
                    if self.members.is_empty() { break; }
                    continue;
                }
            };
            let Some(input) = input else { break };
            self.handle(input).await;
            if self.members.is_empty() {
                break;
            }
        }
        // Unregister first, so a join racing with the close creates a fresh room.
        self.hub.remove_room(&self.code, self.instance);
        // Late joins that reached our queue get told to retry via a closed reply.
        inputs.close();
        info!(room = %self.code, "room closed");
    }

    async fn handle(&mut self, input: RoomInput) {
        match input {
            RoomInput::Join { name, out, reply } => {
                let result = self.join(name, out).await;
                let _ = reply.send(result);
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
            RoomInput::Leave { id } => self.remove(&id, LeaveReason::Left).await,
            RoomInput::SocketClosed { id, connection } => self.socket_closed(&id, connection),
            RoomInput::Media(notice) => self.media_notice(notice),
        }
    }

    async fn join(&mut self, name: String, out: mpsc::UnboundedSender<Outbound>) -> Result<Joined, Refusal> {
        if self.members.len() >= self.settings.max_participants {
            return Err(Refusal::new(
                ErrorCode::RoomFull,
                format!("room {} is full ({} participants)", self.code, self.settings.max_participants),
            ));
        }
        if self.members.values().any(|m| m.info.name.to_lowercase() == name.to_lowercase()) {
            return Err(Refusal::new(ErrorCode::NameTaken, format!("someone in this room is already called {name}")));
        }
        let mut id = ids::new_participant_id();
        while self.members.contains_key(&id) {
            id = ids::new_participant_id();
        }
        let info = Participant { id: id.clone(), name, ready: false, connected: true, playing: false, alive: true };
        self.seq += 1;
        let connection = self.hub.next_connection();
        let resume_token = ids::new_token();
        self.members.insert(
            id.clone(),
            Member {
                info: info.clone(),
                out: Some(out),
                connection,
                resume_token: resume_token.clone(),
                grace_until: None,
                joined_seq: self.seq,
            },
        );
        if self.host.is_none() {
            self.host = Some(id.clone());
        }
        let welcome = ServerMsg::Welcome {
            id: id.clone(),
            room: self.code.clone(),
            host: self.host.clone().unwrap_or_default(),
            resume_token,
            participants: self.participants(),
            game: None,
            limits: Limits {
                max_video_kbps: self.settings.max_video_kbps,
                max_message_bytes: crate::protocol::MAX_FRAME_BYTES,
                max_participants: self.settings.max_participants,
            },
        };
        self.send(&id, &welcome);
        self.broadcast_except(&id, &ServerMsg::ParticipantJoined { participant: info });
        self.update_routes().await;
        info!(room = %self.code, participant = %id, "joined");
        Ok(Joined { id, connection })
    }

    fn participants(&self) -> Vec<Participant> {
        let mut all: Vec<&Member> = self.members.values().collect();
        all.sort_by_key(|m| m.joined_seq);
        all.into_iter().map(|m| m.info.clone()).collect()
    }

    fn socket_closed(&mut self, id: &str, connection: u64) {
        let grace = self.settings.grace;
        let Some(m) = self.members.get_mut(id) else { return };
        if m.connection != connection {
            return; // a newer socket holds this seat
        }
        m.out = None;
        m.info.connected = false;
        m.grace_until = Some(Instant::now() + grace);
        let update = ServerMsg::ParticipantUpdated { participant: m.info.clone() };
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
        if let Some(out) = &member.out {
            if reason == LeaveReason::Left {
                let _ = out.send(Outbound::Close { code: 1000, reason: "left".into() });
            }
        }
        self.media.remove_peer(id);
        self.broadcast(&ServerMsg::ParticipantLeft { id: id.to_owned(), reason });
        if self.host.as_deref() == Some(id) {
            // The powers pass to whoever has been here longest.
            self.host = self.members.values().min_by_key(|m| m.joined_seq).map(|m| m.info.id.clone());
            if let Some(host) = self.host.clone() {
                self.broadcast(&ServerMsg::HostChanged { host });
            }
        }
        self.update_routes().await;
        info!(room = %self.code, participant = %id, ?reason, "left");
    }

    fn media_notice(&mut self, notice: MediaNotice) {
        match notice {
            MediaNotice::Offer { peer, sdp } => self.send(&peer, &ServerMsg::Offer { sdp }),
            MediaNotice::Connected { peer } => debug!(room = %self.code, %peer, "media connected"),
            MediaNotice::Lost { peer, reason } => info!(room = %self.code, %peer, %reason, "media lost"),
        }
    }

    /// Everyone in the room receives everyone else (the game's policy takes over later).
    async fn update_routes(&mut self) {
        self.epoch += 1;
        let ids: Vec<&String> = self.members.keys().collect();
        let mut routes = Vec::with_capacity(ids.len() * ids.len() * 2);
        for s in &ids {
            for p in &ids {
                if s != p {
                    for kind in [MediaKind::Audio, MediaKind::Video] {
                        routes.push(Route { subscriber: (*s).clone(), publisher: (*p).clone(), kind });
                    }
                }
            }
        }
        self.media.set_routes(self.epoch, routes).await;
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
        for m in self.members.values().filter(|m| m.info.id != except) {
            if let Some(out) = &m.out {
                let _ = out.send(Outbound::Text(text.clone()));
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
