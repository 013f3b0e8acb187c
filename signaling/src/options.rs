//! How the hub and its rooms are set up: server-wide limits, one room's options, and what the
//! room API shows of a room.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::protocol::{IceServer, Participant};

/// How a room is set up when it opens.
#[derive(Debug, Clone, Default)]
pub struct RoomOptions {
    /// The room's kind; `None` is the server's default kind.
    pub kind: Option<String>,
    /// A PIN newcomers must give in `join` (`bad_pin` otherwise).
    pub pin: Option<String>,
    /// Locked from the start: only the host token and resumes get in.
    pub locked: bool,
    /// The host's powers come from a host token only: the first to join does not get them.
    pub token_host: bool,
    /// Created through the API: the room stays open while empty, until it has been idle for
    /// the idle period or is closed through the API.
    pub keep_when_empty: bool,
    /// Defaults for the `start_game` settings a host leaves out (a JSON object of the kind's
    /// settings; `null` for none).
    pub settings: serde_json::Value,
}

/// A room as the room API shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RoomInfo {
    /// The room code.
    pub code: String,
    /// The room's kind.
    pub kind: String,
    /// The game phase (`lobby` when no game runs).
    pub phase: String,
    /// The round (0 in the lobby; games without rounds say 0).
    pub round: u32,
    /// The host's participant id, if someone holds the powers.
    pub host: Option<String>,
    /// Whether newcomers are refused (`room_locked`).
    pub locked: bool,
    /// Whether newcomers must give a PIN.
    pub pin: bool,
    /// Everyone in the room, in order of arrival.
    pub participants: Vec<Participant>,
    /// Most participants the room holds.
    pub max_participants: usize,
}

/// The signaling side's limits and timings, server-wide.
#[derive(Debug, Clone)]
pub struct HubSettings {
    /// Most participants a room of a kind holds (`room_full` beyond), by kind; a kind not
    /// named holds its game's default.
    pub capacity: BTreeMap<String, usize>,
    /// How long a participant whose socket closed keeps their seat.
    pub grace: Duration,
    /// The camera bitrate clients are asked to stay under.
    pub max_video_kbps: u32,
    /// Most rooms at once (`too_many_rooms` beyond).
    pub max_rooms: usize,
    /// A room in which nobody has been connected for this long closes.
    pub idle: Duration,
    /// Messages per second each connection may send, sustained.
    pub messages_per_second: f64,
    /// Burst of messages each connection may send.
    pub message_burst: u32,
    /// Where each game's replayable log is written (`None`: not written).
    pub game_log_dir: Option<std::path::PathBuf>,
    /// STUN/TURN servers passed to clients in `welcome`.
    pub ice_servers: Vec<IceServer>,
}

impl Default for HubSettings {
    fn default() -> Self {
        HubSettings {
            capacity: BTreeMap::new(),
            grace: Duration::from_secs(30),
            max_video_kbps: 600,
            max_rooms: 1000,
            idle: Duration::from_secs(600),
            messages_per_second: 40.0,
            message_burst: 60,
            game_log_dir: None,
            ice_servers: Vec::new(),
        }
    }
}
