//! Signaling protocol v1: one serde enum per direction, parsed once at the edge.
//!
//! Every frame is one JSON object discriminated by `"type"` (snake_case). Unknown fields are
//! ignored; a known type with a missing or invalid field is `bad_field`; text that is not a JSON
//! object is `bad_json`. The room-level messages are typed here; any other type is handed,
//! as JSON, to the room's game, which parses it or refuses it (`unknown_type`, or `wrong_kind`
//! when it belongs to another kind of room). Each game's own messages live in its module.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::game::{ChatLine, GameError, Id};

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
/// WebSocket close code after `redirect`: the room lives on another node.
pub const CLOSE_REDIRECT: u16 = 4002;
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
        /// The kind of room to create, when this join creates it (open mode); ignored
        /// otherwise.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kind: Option<String>,
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
        /// The channel: `all`, or one of the room's game (Mafia: `mafia`, `dead`).
        channel: String,
        /// The text (1–500 characters).
        text: String,
    },
    /// Advisory readiness.
    Ready {
        /// Ready or not.
        ready: bool,
    },
    /// Host: start a game, with the room's game's settings.
    StartGame {
        /// Optional settings (the game's own object).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        settings: Option<serde_json::Value>,
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
    /// Host, in the lobby: make the room another kind.
    SetKind {
        /// The kind.
        kind: String,
    },
    /// How the page shows others' video now: for simulcast, the layer each needs.
    Layout {
        /// Publisher id → its tile (publishers left out: no size said).
        tiles: BTreeMap<Id, Tile>,
    },
}

/// One publisher's video as a page shows it (`layout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tile {
    /// The picture height it needs, in device pixels (0: not on screen).
    pub height: u16,
}

/// Most tiles one `layout` may list.
pub const MAX_LAYOUT_TILES: usize = 128;

/// Tallest tile height a `layout` may give (8K).
pub const MAX_TILE_HEIGHT: u16 = 4320;

/// What one participant may receive from another, now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reception {
    /// Their audio.
    pub audio: bool,
    /// Their video.
    pub video: bool,
}

/// What one participant may receive (the `media_state` message, and `welcome.media_state`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaStateInfo {
    /// Participant id → audio/video.
    pub receive: BTreeMap<Id, Reception>,
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
    /// Whether they are on stage (stage-based kinds; false in Mafia).
    #[serde(default)]
    pub on_stage: bool,
    /// Whether they have a hand raised (stage-based kinds; false in Mafia).
    #[serde(default)]
    pub hand: bool,
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
    /// The room kind's own limits (stage-based kinds: `max_on_stage`).
    #[serde(flatten)]
    pub kind: serde_json::Map<String, serde_json::Value>,
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

/// The `welcome` message: everything a client needs to draw the room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    /// Your participant id.
    pub id: String,
    /// The room code.
    pub room: String,
    /// The room's kind (`mafia`, …).
    pub kind: String,
    /// The host's participant id.
    pub host: String,
    /// Token to resume this seat after a dropped connection.
    pub resume_token: String,
    /// Everyone in the room, you included.
    pub participants: Vec<Participant>,
    /// The current `phase` message without its `type` (null in the lobby).
    pub game: Option<serde_json::Value>,
    /// Limits to respect.
    pub limits: Limits,
    /// On resume: what you may receive now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_state: Option<MediaStateInfo>,
    /// Whether the host locked the room against newcomers.
    #[serde(default)]
    pub locked: bool,
    /// STUN/TURN servers the client should give its peer connection (from the server's
    /// configuration; empty when media reaches the server directly).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ice_servers: Vec<IceServer>,
    /// What the room's game adds to catch the client up (Mafia, on resume: `role` and
    /// `vote_update`).
    #[serde(flatten)]
    pub catch_up: serde_json::Map<String, serde_json::Value>,
}

/// A message to a client. (Serialized once and dropped: boxing the large `welcome` would buy
/// nothing.) The room's game sends messages of its own besides these (docs/PROTOCOL.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)]
pub enum ServerMsg {
    /// The join succeeded.
    Welcome(Welcome),
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
    /// The host made the room another kind (to everyone; the new kind's `phase` follows).
    KindChanged {
        /// The kind.
        kind: String,
        /// The room's limits under the new kind (as in `welcome`).
        limits: Limits,
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
        /// The server's own measurement of this connection's round trip (from its WebSocket
        /// Ping frames), ms; null until measured.
        rtt_ms: Option<u32>,
    },
    /// The phase changed (the room's game's `phase` message; also `welcome.game`).
    Phase(serde_json::Map<String, serde_json::Value>),
    /// What the policy lets you receive now, for every other participant.
    MediaState(MediaStateInfo),
    /// Who is speaking now, loudest first, among the participants you may hear (sent when
    /// that changes, and with every `phase`).
    Speaking {
        /// Participant ids (at most four; empty: nobody).
        ids: Vec<Id>,
    },
    /// A chat message.
    Chat(ChatLine),
    /// The room lives on another node of the cluster: connect to `url`'s `/ws` and send the
    /// same `join` there. The socket is then closed with 4002.
    Redirect {
        /// The owner's public base URL (`http(s)://host[:port]`).
        url: String,
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
    /// The message belongs to another kind of room.
    WrongKind,
    /// The stage is full (`stage.max_on_stage`).
    StageFull,
    /// The cluster cannot place a new room now (its directory is unreachable); rooms in
    /// progress are not affected. Try again shortly.
    ClusterUnavailable,
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

impl From<GameError> for Refusal {
    fn from(e: GameError) -> Refusal {
        let code = match &e {
            GameError::WrongPhase(_) => ErrorCode::WrongPhase,
            GameError::NotAllowed(_) => ErrorCode::NotAllowed,
            GameError::NotHost(_) => ErrorCode::NotHost,
            GameError::BadField(_) => ErrorCode::BadField,
            GameError::StageFull(_) => ErrorCode::StageFull,
            GameError::UnknownType(_) => ErrorCode::UnknownType,
            GameError::WrongKind(_) => ErrorCode::WrongKind,
            GameError::RateLimited(_) => ErrorCode::RateLimited,
        };
        Refusal::new(code, e.to_string())
    }
}

/// A client frame, parsed: a room-level message, or one for the room's game (its `type` and
/// the whole object).
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// A message of the room itself.
    Room(ClientMsg),
    /// Another type: the room's game parses it, or refuses it.
    Game {
        /// The `type`.
        ty: String,
        /// The whole message.
        value: serde_json::Value,
    },
}

/// The room-level message types ([`ClientMsg`]).
pub const CLIENT_TYPES: &[&str] = &[
    "join",
    "offer",
    "answer",
    "candidate",
    "ping",
    "leave",
    "chat",
    "ready",
    "start_game",
    "kick",
    "lock",
    "set_kind",
    "layout",
];

/// Longest `type` a game message may have.
const MAX_TYPE_CHARS: usize = 32;

/// Parse one client text frame, telling apart the ways it can be wrong: `too_large`,
/// `bad_json` (not a JSON object), `unknown_type` (no usable `type`), `bad_field` (a room
/// message with a missing or invalid field). Game messages come back whole, for the room's game.
pub fn parse_client(text: &str) -> Result<Parsed, Refusal> {
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
        let plausible = !ty.is_empty()
            && ty.chars().count() <= MAX_TYPE_CHARS
            && ty.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        if !plausible {
            let shown: String = ty.chars().take(40).collect();
            return Err(Refusal::new(ErrorCode::UnknownType, format!("unknown message type \"{shown}\"")));
        }
        return Ok(Parsed::Game { ty: ty.to_owned(), value });
    }
    let ty = ty.to_owned();
    serde_json::from_value(value).map(Parsed::Room).map_err(|e| Refusal::new(ErrorCode::BadField, format!("{ty}: {e}")))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn room(text: &str) -> ClientMsg {
        match parse_client(text).unwrap() {
            Parsed::Room(msg) => msg,
            other => panic!("{text} parsed as {other:?}"),
        }
    }

    fn roundtrip_client(msg: ClientMsg) {
        let text = serde_json::to_string(&msg).unwrap();
        assert_eq!(room(&text), msg, "{text}");
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
            kind: None,
        });
        roundtrip_client(ClientMsg::Join {
            room: "r".into(),
            name: "B".into(),
            resume: None,
            token: None,
            pin: None,
            kind: Some("stage".into()),
        });
        roundtrip_client(ClientMsg::Offer { sdp: "v=0".into() });
        roundtrip_client(ClientMsg::Answer { sdp: "v=0".into() });
        roundtrip_client(ClientMsg::Candidate(CandidateMsg {
            candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host".into(),
            sdp_mid: Some("0".into()),
            sdp_mline_index: Some(0),
        }));
        roundtrip_client(ClientMsg::Ping { t: 1234.5 });
        roundtrip_client(ClientMsg::Leave);
        roundtrip_client(ClientMsg::Chat { channel: "mafia".into(), text: "psst".into() });
        roundtrip_client(ClientMsg::Ready { ready: true });
        roundtrip_client(ClientMsg::StartGame { settings: None });
        let settings = serde_json::json!({"mafia": 2, "host_plays": false, "phase_seconds": {"night": 0.5}});
        roundtrip_client(ClientMsg::StartGame { settings: Some(settings) });
        roundtrip_client(ClientMsg::Kick { id: "abc".into() });
        roundtrip_client(ClientMsg::Lock { locked: true });
        roundtrip_client(ClientMsg::SetKind { kind: "draw".into() });
        let tiles = BTreeMap::from([("abc".to_owned(), Tile { height: 360 }), ("def".to_owned(), Tile { height: 0 })]);
        roundtrip_client(ClientMsg::Layout { tiles });
    }

    #[test]
    fn other_types_go_to_the_game_whole() {
        let text = r#"{"type":"vote","target":null,"extra":1}"#;
        match parse_client(text).unwrap() {
            Parsed::Game { ty, value } => {
                assert_eq!(ty, "vote");
                assert_eq!(value, serde_json::from_str::<serde_json::Value>(text).unwrap());
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse_client(r#"{"type":"dance"}"#).unwrap(), Parsed::Game { .. }));
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
            on_stage: true,
            hand: false,
        };
        let welcome = |catch_up: serde_json::Map<String, serde_json::Value>, media_state| Welcome {
            id: "abc".into(),
            room: "demo".into(),
            kind: "mafia".into(),
            host: "abc".into(),
            resume_token: "t".into(),
            participants: vec![p.clone()],
            game: None,
            limits: Limits {
                max_video_kbps: 600,
                max_message_bytes: 65536,
                max_participants: 24,
                kind: serde_json::Map::new(),
            },
            media_state,
            locked: false,
            ice_servers: vec![IceServer {
                urls: vec!["turns:turn.example.org:443?transport=tcp".into()],
                username: Some("parlor".into()),
                credential: Some("secret".into()),
            }],
            catch_up,
        };
        roundtrip_server(ServerMsg::Welcome(welcome(serde_json::Map::new(), None)));
        let receive: BTreeMap<Id, Reception> = [("b".to_string(), Reception { audio: true, video: false })].into();
        let mut extra = serde_json::Map::new();
        extra.insert("role".into(), serde_json::json!({"role": "citizen", "teammates": []}));
        let resumed = ServerMsg::Welcome(welcome(extra, Some(MediaStateInfo { receive: receive.clone() })));
        roundtrip_server(resumed.clone());
        let v: serde_json::Value = serde_json::from_str(&resumed.to_text()).unwrap();
        assert_eq!(v["type"], "welcome");
        assert_eq!(v["role"]["role"], "citizen", "a game's catch-up is a top-level field: {v}");
        assert_eq!(v["kind"], "mafia");
        roundtrip_server(ServerMsg::ParticipantJoined { participant: p.clone() });
        roundtrip_server(ServerMsg::ParticipantUpdated { participant: p });
        for reason in [LeaveReason::Left, LeaveReason::Disconnected, LeaveReason::Kicked] {
            roundtrip_server(ServerMsg::ParticipantLeft { id: "abc".into(), reason });
        }
        roundtrip_server(ServerMsg::HostChanged { host: "abc".into() });
        let mut stage_limits = serde_json::Map::new();
        stage_limits.insert("max_on_stage".into(), 4.into());
        let limits =
            Limits { max_video_kbps: 600, max_message_bytes: 65536, max_participants: 100, kind: stage_limits };
        let changed = ServerMsg::KindChanged { kind: "stage".into(), limits };
        let v: serde_json::Value = serde_json::from_str(&changed.to_text()).unwrap();
        assert_eq!(v["limits"]["max_on_stage"], 4, "{v}");
        roundtrip_server(changed);
        roundtrip_server(ServerMsg::Offer { sdp: "v=0".into() });
        roundtrip_server(ServerMsg::Answer { sdp: "v=0".into() });
        roundtrip_server(ServerMsg::Candidate(CandidateMsg {
            candidate: "".into(),
            sdp_mid: None,
            sdp_mline_index: None,
        }));
        roundtrip_server(ServerMsg::Pong { t: 1.0, server_time: 1_700_000_000_000, rtt_ms: Some(12) });
        roundtrip_server(ServerMsg::Pong { t: 1.0, server_time: 1_700_000_000_000, rtt_ms: None });
        roundtrip_server(ServerMsg::Speaking { ids: vec!["a".into(), "b".into()] });
        roundtrip_server(ServerMsg::error(ErrorCode::BadSdp, "nope"));
        let phase = serde_json::json!({"phase": "night", "round": 1, "ends_at": 1_700_000_045_000u64,
            "alive": ["a", "b"], "accused": null});
        let serde_json::Value::Object(phase) = phase else { unreachable!() };
        roundtrip_server(ServerMsg::Phase(phase));
        roundtrip_server(ServerMsg::MediaState(MediaStateInfo { receive }));
        roundtrip_server(ServerMsg::Locked { locked: true });
        roundtrip_server(ServerMsg::Chat(ChatLine {
            from: "a".into(),
            channel: "all".into(),
            text: "hi".into(),
            at: 5,
        }));
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
        let v: serde_json::Value =
            serde_json::from_str(&ServerMsg::error(ErrorCode::WrongKind, "x").to_text()).unwrap();
        assert_eq!(v["code"], "wrong_kind");
        assert_eq!(serde_json::to_value(ErrorCode::StageFull).unwrap(), "stage_full");
        assert_eq!(serde_json::to_value(ErrorCode::ClusterUnavailable).unwrap(), "cluster_unavailable");
        let redirect = ServerMsg::Redirect { url: "http://10.0.0.2:8080".into() }.to_text();
        assert_eq!(redirect, r#"{"type":"redirect","url":"http://10.0.0.2:8080"}"#);
    }

    #[test]
    fn bad_input_gets_the_right_code() {
        let code = |t: &str| parse_client(t).unwrap_err().code;
        assert_eq!(code("{not json"), ErrorCode::BadJson);
        assert_eq!(code("[1,2]"), ErrorCode::BadJson);
        assert_eq!(code("\"join\""), ErrorCode::BadJson);
        assert_eq!(code("{}"), ErrorCode::UnknownType);
        assert_eq!(code(r#"{"type":5}"#), ErrorCode::UnknownType);
        assert_eq!(code(r#"{"type":""}"#), ErrorCode::UnknownType);
        assert_eq!(code(r#"{"type":"Not A Type!"}"#), ErrorCode::UnknownType);
        assert_eq!(code(&format!(r#"{{"type":"{}"}}"#, "a".repeat(33))), ErrorCode::UnknownType);
        assert_eq!(code(r#"{"type":"join","room":"x"}"#), ErrorCode::BadField);
        assert_eq!(code(r#"{"type":"offer","sdp":7}"#), ErrorCode::BadField);
        assert_eq!(code(r#"{"type":"ping"}"#), ErrorCode::BadField);
        assert_eq!(code(r#"{"type":"chat","channel":7,"text":"x"}"#), ErrorCode::BadField);
        assert_eq!(code(&"x".repeat(MAX_FRAME_BYTES + 1)), ErrorCode::TooLarge);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        assert_eq!(room(r#"{"type":"ping","t":5,"extra":{"a":1}}"#), ClientMsg::Ping { t: 5.0 });
        assert_eq!(room(r#"{"type":"leave","why":"bye"}"#), ClientMsg::Leave);
    }

    #[test]
    fn game_errors_keep_their_codes() {
        let cases = [
            (GameError::WrongPhase("a".into()), ErrorCode::WrongPhase),
            (GameError::NotAllowed("a".into()), ErrorCode::NotAllowed),
            (GameError::NotHost("a".into()), ErrorCode::NotHost),
            (GameError::BadField("a".into()), ErrorCode::BadField),
            (GameError::StageFull("a".into()), ErrorCode::StageFull),
            (GameError::UnknownType("a".into()), ErrorCode::UnknownType),
            (GameError::WrongKind("a".into()), ErrorCode::WrongKind),
            (GameError::RateLimited("a".into()), ErrorCode::RateLimited),
        ];
        for (e, code) in cases {
            let r = Refusal::from(e);
            assert_eq!((r.code, r.message.as_str()), (code, "a"));
        }
    }
}
