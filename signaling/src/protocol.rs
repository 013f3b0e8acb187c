//! Signaling protocol v1: one serde enum per direction, parsed once at the edge.
//!
//! Every frame is one JSON object discriminated by `"type"` (snake_case). Unknown fields are
//! ignored; an unknown type is `unknown_type`; a known type with a missing or invalid field is
//! `bad_field`; text that is not a JSON object is `bad_json`.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::game::{Ballot, Cause, Channel, Id, PhaseInfo, Role, Settings, Verdict, VoteKind, Winner};

/// Largest text frame accepted; a larger one gets `too_large` and close code 1009.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// WebSocket close code sent after `too_large` (RFC 6455 "message too big").
pub const CLOSE_TOO_LARGE: u16 = 1009;
/// WebSocket close code sent after persistent `rate_limited` abuse (RFC 6455 "policy violation").
pub const CLOSE_POLICY: u16 = 1008;
/// WebSocket close code after `kicked`.
pub const CLOSE_KICKED: u16 = 4000;
/// WebSocket close code after `replaced`.
pub const CLOSE_REPLACED: u16 = 4001;
/// WebSocket close code after `server_shutdown` (RFC 6455 "going away").
pub const CLOSE_GOING_AWAY: u16 = 1001;

/// A message from a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    /// Enter a room (creating it in open mode).
    Join {
        /// Room code.
        room: String,
        /// Display name.
        name: String,
        /// A resume token from an earlier `welcome`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<String>,
        /// A host token from the room API.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
        /// The room's pin, when the host set one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pin: Option<String>,
    },
    /// An SDP offer.
    Offer {
        /// The SDP.
        sdp: String,
    },
    /// An SDP answer to the server's offer.
    Answer {
        /// The SDP.
        sdp: String,
    },
    /// A trickled ICE candidate.
    Candidate(CandidateMsg),
    /// Clock and round-trip probe.
    Ping {
        /// Client clock, ms.
        t: f64,
    },
    /// Leave the room for good.
    Leave,
    /// A chat message.
    Chat {
        /// `all`, `mafia` or `dead`.
        channel: Channel,
        /// The text (1–500 characters).
        text: String,
    },
    /// Advisory readiness.
    Ready {
        /// Ready or not.
        ready: bool,
    },
    /// Host: start a game.
    StartGame {
        /// Optional settings.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        settings: Option<Settings>,
    },
    /// Ask to end the day and vote.
    CallVote,
    /// Nomination (`target`: an id, or null to abstain) or judgment (`verdict`).
    Vote {
        /// Nomination target; `null` abstains. Absent during judgment.
        #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
        target: Option<Option<Id>>,
        /// Judgment verdict. Absent during nomination.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        verdict: Option<Verdict>,
    },
    /// A night action on a target.
    NightAction {
        /// Whom to kill, save or investigate.
        target: Id,
    },
    /// Host: remove a participant.
    Kick {
        /// Whom.
        id: Id,
    },
    /// Host: lock the room against newcomers (`room_locked`), or open it again.
    Lock {
        /// Locked or not.
        locked: bool,
    },
}

/// Tells a present `null` (Some(None)) from an absent field (None, via `default`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<Id>>, D::Error> {
    Option::<Id>::deserialize(d).map(Some)
}

/// What one participant may receive from another, now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reception {
    /// Their audio.
    pub audio: bool,
    /// Their video.
    pub video: bool,
}

/// A role as its owner learns it (the `role` message, and `welcome.role` on resume).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleInfo {
    /// The role.
    pub role: Role,
    /// The other mafia (mafia only; empty otherwise).
    pub teammates: Vec<Id>,
    /// Every player's role (moderator only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<BTreeMap<Id, Role>>,
}

/// What one participant may receive (the `media_state` message, and `welcome.media_state`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaStateInfo {
    /// Participant id → audio/video.
    pub receive: BTreeMap<Id, Reception>,
}

/// A public tally (the `vote_update` message, and `welcome.vote_update` on resume).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteTally {
    /// Which vote.
    pub kind: VoteKind,
    /// Voter → ballot.
    pub votes: BTreeMap<Id, Ballot>,
    /// Votes needed (`call_vote` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needed: Option<usize>,
}

/// A trickled ICE candidate, either direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateMsg {
    /// The candidate line (`candidate:…`), or `""` to end the candidates.
    pub candidate: String,
    /// The m-line's mid.
    #[serde(default)]
    pub sdp_mid: Option<String>,
    /// The m-line's index.
    #[serde(default)]
    pub sdp_mline_index: Option<u32>,
}

/// A participant as everyone sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    /// Participant id, `[A-Za-z0-9-]{1,32}`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Advisory readiness.
    pub ready: bool,
    /// Whether their socket is connected.
    pub connected: bool,
    /// Whether they hold a seat in the current game.
    pub playing: bool,
    /// Whether they are alive (everyone is, in the lobby).
    pub alive: bool,
}

/// Limits the client should respect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Upper bound for the client's camera bitrate.
    pub max_video_kbps: u32,
    /// Largest text frame the server accepts.
    pub max_message_bytes: usize,
    /// Most participants a room holds.
    pub max_participants: usize,
}

/// One entry of `RTCConfiguration.iceServers`: a TURN relay (for networks that block UDP and
/// every port but 443) or a STUN server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IceServer {
    /// `turn:`, `turns:` or `stun:` URLs.
    pub urls: Vec<String>,
    /// TURN user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Why someone left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// They sent `leave`.
    Left,
    /// Their reconnection grace expired.
    Disconnected,
    /// The host kicked them.
    Kicked,
}

/// A message to a client. (Serialized once and dropped: boxing the large `welcome` would buy
/// nothing.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)]
pub enum ServerMsg {
    /// The join succeeded.
    Welcome {
        /// Your participant id.
        id: String,
        /// The room code.
        room: String,
        /// The host's participant id.
        host: String,
        /// Token to resume this seat after a dropped connection.
        resume_token: String,
        /// Everyone in the room, you included.
        participants: Vec<Participant>,
        /// The current game phase (null in the lobby).
        game: Option<PhaseInfo>,
        /// Limits to respect.
        limits: Limits,
        /// On resume: your role, if you have one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<RoleInfo>,
        /// On resume: what you may receive now.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        media_state: Option<MediaStateInfo>,
        /// On resume: the current tally, as last sent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vote_update: Option<VoteTally>,
        /// Whether the host locked the room against newcomers.
        #[serde(default)]
        locked: bool,
        /// STUN/TURN servers the client should give its peer connection (from the server's
        /// configuration; empty when media reaches the server directly).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ice_servers: Vec<IceServer>,
    },
    /// The host locked or unlocked the room (to everyone, after every `lock`).
    Locked {
        /// Locked or not.
        locked: bool,
    },
    /// Someone joined.
    ParticipantJoined {
        /// Who.
        participant: Participant,
    },
    /// Someone's state changed.
    ParticipantUpdated {
        /// The new state.
        participant: Participant,
    },
    /// Someone left.
    ParticipantLeft {
        /// Who.
        id: String,
        /// Why.
        reason: LeaveReason,
    },
    /// The host's powers moved.
    HostChanged {
        /// The new host.
        host: String,
    },
    /// The server's SDP offer.
    Offer {
        /// The SDP.
        sdp: String,
    },
    /// The server's SDP answer.
    Answer {
        /// The SDP.
        sdp: String,
    },
    /// A server ICE candidate.
    Candidate(CandidateMsg),
    /// Answer to `ping`.
    Pong {
        /// The client's `t`, echoed.
        t: f64,
        /// Server clock, unix ms.
        server_time: u64,
    },
    /// The phase changed (also the `game` field of `welcome`).
    Phase(PhaseInfo),
    /// Your role; sent only to its owner.
    Role(RoleInfo),
    /// What the policy lets you receive now, for every other participant.
    MediaState(MediaStateInfo),
    /// A public tally.
    VoteUpdate(VoteTally),
    /// The detective's answer; only to the detective.
    Investigation {
        /// Whom they investigated.
        target: Id,
        /// Whether that player is mafia.
        is_mafia: bool,
    },
    /// A player was eliminated.
    Eliminated {
        /// Who.
        id: Id,
        /// How.
        cause: Cause,
    },
    /// A chat message.
    Chat {
        /// Sender.
        from: Id,
        /// Channel.
        channel: Channel,
        /// Text.
        text: String,
        /// Server time, unix ms.
        at: u64,
    },
    /// The game ended.
    GameOver {
        /// Who won.
        winner: Winner,
        /// Every player's role.
        roles: BTreeMap<Id, Role>,
    },
    /// Something the client sent was refused.
    Error {
        /// Machine-readable code.
        code: ErrorCode,
        /// Human-readable explanation.
        message: String,
    },
}

impl ServerMsg {
    /// An `error` message.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerMsg::Error { code, message: message.into() }
    }

    /// The JSON text of this message.
    pub fn to_text(&self) -> String {
        // Serializing these plain types cannot fail (no maps with non-string keys).
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

/// Every error code of protocol v1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not a JSON object.
    BadJson,
    /// Missing or unknown `type`.
    UnknownType,
    /// A field is missing or invalid.
    BadField,
    /// Only `join` is allowed before joining.
    NotJoined,
    /// The room is at capacity.
    RoomFull,
    /// No such room (and rooms are not created on join).
    RoomNotFound,
    /// The host locked the room.
    RoomLocked,
    /// Wrong room pin.
    BadPin,
    /// The host token is invalid, expired, or for another room.
    BadToken,
    /// The host closed the room (through the API); the socket is then closed.
    RoomClosed,
    /// Someone in the room already has this name.
    NameTaken,
    /// Only the host may do this.
    NotHost,
    /// Not in this phase.
    WrongPhase,
    /// Not allowed for you.
    NotAllowed,
    /// The SDP could not be used.
    BadSdp,
    /// A server offer is outstanding: answer it, then offer again.
    Glare,
    /// Too many messages.
    RateLimited,
    /// Frame too large (the socket is then closed with 1009).
    TooLarge,
    /// The resume token is unknown or its grace period is over.
    ResumeExpired,
    /// Another socket took this seat.
    Replaced,
    /// The host removed you.
    Kicked,
    /// The server's room limit is reached.
    TooManyRooms,
    /// The server is at capacity.
    ServerFull,
    /// The server is shutting down.
    ServerShutdown,
}

/// The error type of this crate: a refused client frame, and what to answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct Refusal {
    /// The error code.
    pub code: ErrorCode,
    /// The explanation.
    pub message: String,
}

impl Refusal {
    /// A refusal with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Refusal { code, message: message.into() }
    }

    /// The `error` message to send.
    pub fn to_msg(&self) -> ServerMsg {
        ServerMsg::error(self.code, self.message.clone())
    }
}

const CLIENT_TYPES: &[&str] = &[
    "join",
    "offer",
    "answer",
    "candidate",
    "ping",
    "leave",
    "chat",
    "ready",
    "start_game",
    "call_vote",
    "vote",
    "night_action",
    "kick",
    "lock",
];

/// Parse one client text frame into its typed message, telling apart the three ways it
/// can be wrong.
pub fn parse_client(text: &str) -> Result<ClientMsg, Refusal> {
    if text.len() > MAX_FRAME_BYTES {
        return Err(Refusal::new(ErrorCode::TooLarge, format!("frames are limited to {MAX_FRAME_BYTES} bytes")));
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| Refusal::new(ErrorCode::BadJson, format!("invalid JSON: {e}")))?;
    let Some(obj) = value.as_object() else {
        return Err(Refusal::new(ErrorCode::BadJson, "a message must be a JSON object"));
    };
    let ty = match obj.get("type") {
        Some(serde_json::Value::String(t)) => t.as_str(),
        Some(_) => return Err(Refusal::new(ErrorCode::UnknownType, "\"type\" must be a string")),
        None => return Err(Refusal::new(ErrorCode::UnknownType, "missing \"type\"")),
    };
    if !CLIENT_TYPES.contains(&ty) {
        let shown: String = ty.chars().take(40).collect();
        return Err(Refusal::new(ErrorCode::UnknownType, format!("unknown message type \"{shown}\"")));
    }
    let ty = ty.to_owned();
    serde_json::from_value(value).map_err(|e| Refusal::new(ErrorCode::BadField, format!("{ty}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip_client(msg: ClientMsg) {
        let text = serde_json::to_string(&msg).unwrap();
        assert_eq!(parse_client(&text).unwrap(), msg, "{text}");
    }

    fn roundtrip_server(msg: ServerMsg) {
        let text = msg.to_text();
        let back: ServerMsg = serde_json::from_str(&text).unwrap();
        assert_eq!(back, msg, "{text}");
    }

    #[test]
    fn every_client_message_roundtrips() {
        roundtrip_client(ClientMsg::Join {
            room: "demo".into(),
            name: "Ann".into(),
            resume: Some("tok".into()),
            token: None,
            pin: Some("1234".into()),
        });
        roundtrip_client(ClientMsg::Join { room: "r".into(), name: "B".into(), resume: None, token: None, pin: None });
        roundtrip_client(ClientMsg::Offer { sdp: "v=0".into() });
        roundtrip_client(ClientMsg::Answer { sdp: "v=0".into() });
        roundtrip_client(ClientMsg::Candidate(CandidateMsg {
            candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host".into(),
            sdp_mid: Some("0".into()),
            sdp_mline_index: Some(0),
        }));
        roundtrip_client(ClientMsg::Ping { t: 1234.5 });
        roundtrip_client(ClientMsg::Leave);
        roundtrip_client(ClientMsg::Chat { channel: Channel::Mafia, text: "psst".into() });
        roundtrip_client(ClientMsg::Ready { ready: true });
        roundtrip_client(ClientMsg::StartGame { settings: None });
        let mut settings = Settings { mafia: Some(2), host_plays: Some(false), ..Default::default() };
        settings.phase_seconds.insert("night".into(), 0.5);
        roundtrip_client(ClientMsg::StartGame { settings: Some(settings) });
        roundtrip_client(ClientMsg::CallVote);
        roundtrip_client(ClientMsg::Vote { target: Some(Some("abc".into())), verdict: None });
        roundtrip_client(ClientMsg::Vote { target: None, verdict: Some(Verdict::Guilty) });
        roundtrip_client(ClientMsg::NightAction { target: "abc".into() });
        roundtrip_client(ClientMsg::Kick { id: "abc".into() });
        roundtrip_client(ClientMsg::Lock { locked: true });
    }

    #[test]
    fn vote_tells_abstain_from_absent() {
        let abstain = parse_client(r#"{"type":"vote","target":null}"#).unwrap();
        assert_eq!(abstain, ClientMsg::Vote { target: Some(None), verdict: None });
        let verdict = parse_client(r#"{"type":"vote","verdict":"innocent"}"#).unwrap();
        assert_eq!(verdict, ClientMsg::Vote { target: None, verdict: Some(Verdict::Innocent) });
        let text = serde_json::to_string(&ClientMsg::Vote { target: Some(None), verdict: None }).unwrap();
        assert_eq!(text, r#"{"type":"vote","target":null}"#);
        assert_eq!(parse_client(r#"{"type":"vote","verdict":"maybe"}"#).unwrap_err().code, ErrorCode::BadField);
        assert_eq!(
            parse_client(r#"{"type":"chat","channel":"town","text":"x"}"#).unwrap_err().code,
            ErrorCode::BadField
        );
    }

    #[test]
    fn every_server_message_roundtrips() {
        let p = Participant {
            id: "abc".into(),
            name: "Ann".into(),
            ready: false,
            connected: true,
            playing: false,
            alive: true,
        };
        roundtrip_server(ServerMsg::Welcome {
            id: "abc".into(),
            room: "demo".into(),
            host: "abc".into(),
            resume_token: "t".into(),
            participants: vec![p.clone()],
            game: None,
            limits: Limits { max_video_kbps: 600, max_message_bytes: 65536, max_participants: 24 },
            role: None,
            media_state: None,
            vote_update: None,
            locked: false,
            ice_servers: vec![IceServer {
                urls: vec!["turns:turn.example.org:443?transport=tcp".into()],
                username: Some("parlor".into()),
                credential: Some("secret".into()),
            }],
        });
        roundtrip_server(ServerMsg::ParticipantJoined { participant: p.clone() });
        roundtrip_server(ServerMsg::ParticipantUpdated { participant: p });
        for reason in [LeaveReason::Left, LeaveReason::Disconnected, LeaveReason::Kicked] {
            roundtrip_server(ServerMsg::ParticipantLeft { id: "abc".into(), reason });
        }
        roundtrip_server(ServerMsg::HostChanged { host: "abc".into() });
        roundtrip_server(ServerMsg::Offer { sdp: "v=0".into() });
        roundtrip_server(ServerMsg::Answer { sdp: "v=0".into() });
        roundtrip_server(ServerMsg::Candidate(CandidateMsg {
            candidate: "".into(),
            sdp_mid: None,
            sdp_mline_index: None,
        }));
        roundtrip_server(ServerMsg::Pong { t: 1.0, server_time: 1_700_000_000_000 });
        roundtrip_server(ServerMsg::error(ErrorCode::BadSdp, "nope"));
        roundtrip_server(ServerMsg::Phase(PhaseInfo {
            phase: crate::game::Phase::Night,
            round: 1,
            ends_at: Some(1_700_000_045_000),
            alive: vec!["a".into(), "b".into()],
            accused: None,
        }));
        let roles: BTreeMap<Id, Role> = [("a".to_string(), Role::Mafia), ("b".to_string(), Role::Doctor)].into();
        roundtrip_server(ServerMsg::Role(RoleInfo { role: Role::Mafia, teammates: vec!["c".into()], roles: None }));
        roundtrip_server(ServerMsg::Role(RoleInfo {
            role: Role::Moderator,
            teammates: vec![],
            roles: Some(roles.clone()),
        }));
        let receive: BTreeMap<Id, Reception> = [("b".to_string(), Reception { audio: true, video: false })].into();
        roundtrip_server(ServerMsg::MediaState(MediaStateInfo { receive: receive.clone() }));
        roundtrip_server(ServerMsg::Welcome {
            id: "abc".into(),
            room: "demo".into(),
            host: "x".into(),
            resume_token: "t2".into(),
            participants: vec![],
            game: None,
            limits: Limits { max_video_kbps: 600, max_message_bytes: 65536, max_participants: 24 },
            role: Some(RoleInfo { role: Role::Citizen, teammates: vec![], roles: None }),
            media_state: Some(MediaStateInfo { receive }),
            vote_update: Some(VoteTally { kind: VoteKind::Judgment, votes: BTreeMap::new(), needed: None }),
            locked: true,
            ice_servers: vec![],
        });
        roundtrip_server(ServerMsg::Locked { locked: true });
        roundtrip_server(ServerMsg::VoteUpdate(VoteTally {
            kind: VoteKind::CallVote,
            votes: [("a".to_string(), Ballot::Call(true))].into(),
            needed: Some(3),
        }));
        roundtrip_server(ServerMsg::VoteUpdate(VoteTally {
            kind: VoteKind::Nomination,
            votes: [("a".to_string(), Ballot::Target(Some("b".into()))), ("c".to_string(), Ballot::Target(None))]
                .into(),
            needed: None,
        }));
        roundtrip_server(ServerMsg::VoteUpdate(VoteTally {
            kind: VoteKind::Judgment,
            votes: [("a".to_string(), Ballot::Verdict(Verdict::Guilty))].into(),
            needed: None,
        }));
        roundtrip_server(ServerMsg::Investigation { target: "b".into(), is_mafia: false });
        roundtrip_server(ServerMsg::Eliminated { id: "b".into(), cause: Cause::Killed });
        roundtrip_server(ServerMsg::Chat { from: "a".into(), channel: Channel::All, text: "hi".into(), at: 5 });
        roundtrip_server(ServerMsg::GameOver { winner: Winner::Town, roles });
    }

    #[test]
    fn wire_names_are_snake_case() {
        let v: serde_json::Value =
            serde_json::from_str(&ServerMsg::HostChanged { host: "a".into() }.to_text()).unwrap();
        assert_eq!(v["type"], "host_changed");
        let v: serde_json::Value =
            serde_json::from_str(&ServerMsg::error(ErrorCode::ResumeExpired, "x").to_text()).unwrap();
        assert_eq!(v["code"], "resume_expired");
        let v: serde_json::Value = serde_json::from_str(
            &ServerMsg::ParticipantLeft { id: "a".into(), reason: LeaveReason::Disconnected }.to_text(),
        )
        .unwrap();
        assert_eq!(v["type"], "participant_left");
        assert_eq!(v["reason"], "disconnected");
    }

    #[test]
    fn bad_input_gets_the_right_code() {
        let code = |t: &str| parse_client(t).unwrap_err().code;
        assert_eq!(code("{not json"), ErrorCode::BadJson);
        assert_eq!(code("[1,2]"), ErrorCode::BadJson);
        assert_eq!(code("\"join\""), ErrorCode::BadJson);
        assert_eq!(code("{}"), ErrorCode::UnknownType);
        assert_eq!(code(r#"{"type":5}"#), ErrorCode::UnknownType);
        assert_eq!(code(r#"{"type":"dance"}"#), ErrorCode::UnknownType);
        assert_eq!(code(r#"{"type":"join","room":"x"}"#), ErrorCode::BadField);
        assert_eq!(code(r#"{"type":"offer","sdp":7}"#), ErrorCode::BadField);
        assert_eq!(code(r#"{"type":"ping"}"#), ErrorCode::BadField);
        assert_eq!(code(&"x".repeat(MAX_FRAME_BYTES + 1)), ErrorCode::TooLarge);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let m = parse_client(r#"{"type":"ping","t":5,"extra":{"a":1}}"#).unwrap();
        assert_eq!(m, ClientMsg::Ping { t: 5.0 });
        let m = parse_client(r#"{"type":"leave","why":"bye"}"#).unwrap();
        assert_eq!(m, ClientMsg::Leave);
    }
}
