//! The wire types of red light, green light (docs/PROTOCOL.md, "Red light, green light
//! rooms"): what a seat sends, what the game sends, its `phase` message and its settings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::game::stage;
use crate::game::{GameError, Id, Millis, PhaseView};

/// What a seat of an rlgl room sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    /// Player: the steps the phone counted since the last `move`.
    Move {
        /// Taps or shakes; the server caps what counts.
        steps: u32,
    },
    /// Host, when the light is not automatic: switch it.
    Light {
        /// The new colour.
        color: Color,
    },
    /// Audience: raise or lower a hand (as in stage rooms).
    RaiseHand {
        /// Raised or not.
        raised: bool,
    },
    /// Host: bring someone on stage or send them back (as in stage rooms).
    Stage {
        /// Whom.
        id: Id,
        /// On stage or not.
        on: bool,
    },
    /// Host: the audience members the host's grid shows now (as in stage rooms).
    View {
        /// At most 16.
        ids: Vec<Id>,
    },
}

impl Command {
    /// The stage's own command, if this is one.
    pub(super) fn into_stage(self) -> Result<stage::Command, Command> {
        match self {
            Command::RaiseHand { raised } => Ok(stage::Command::RaiseHand { raised }),
            Command::Stage { id, on } => Ok(stage::Command::Stage { id, on }),
            Command::View { ids } => Ok(stage::Command::View { ids }),
            own => Err(own),
        }
    }
}

/// The message types [`Command`] parses.
pub const COMMANDS: &[&str] = &["move", "light", "raise_hand", "stage", "view"];

/// The light's colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Color {
    /// Run.
    Green,
    /// Stand still.
    Red,
}

/// How a player went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// A `move` arrived after the red light's allowance.
    Moved,
    /// Left the room during the game.
    Left,
}

/// The figures an elimination was decided on, all on the room clock (unix ms): sent with
/// `eliminated` and so kept in the game log, where `parlor replay` reproduces them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Judgment {
    /// When the server switched the light to red (T).
    pub red_at: Millis,
    /// When the `move` arrived.
    pub arrived_at: Millis,
    /// The server's measurement of the player's round trip, if there was one.
    pub rtt_ms: Option<u32>,
    /// `settings.grace_ms`.
    pub grace_ms: u32,
    /// The round trip allowed: `rtt_ms` capped at `settings.max_allowance_ms` (the cap when
    /// nothing was measured yet).
    pub allowance_ms: u32,
    /// The last arrival that still counted: T + grace + allowance.
    pub deadline: Millis,
}

/// A player's place in the final ranking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Reached the finish.
    Finished,
    /// Still in the game when it ended.
    Running,
    /// Eliminated by the light.
    Out,
    /// Left the room during the game.
    Left,
}

/// One line of the ranking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    /// The player.
    pub id: Id,
    /// 1 is best; equal places share a rank (1, 1, 3).
    pub rank: u32,
    /// Steps covered.
    pub distance: u32,
    /// How they ended.
    pub status: Status,
}

/// What an rlgl room sends.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// Every player's distance (at most 5 a second).
    Progress {
        /// Player id → steps covered.
        distances: BTreeMap<Id, u32>,
    },
    /// A player is out.
    Eliminated {
        /// Whom.
        id: Id,
        /// Why.
        cause: Cause,
        /// For `moved`: the figures it was decided on.
        #[serde(skip_serializing_if = "Option::is_none")]
        judgment: Option<Judgment>,
    },
    /// A player reached the finish.
    Finished {
        /// Whom.
        id: Id,
        /// Their place (ties share it).
        rank: u32,
    },
    /// The game ended.
    GameOver {
        /// Everyone who played, best first.
        ranking: Vec<Place>,
    },
}

/// The phases of an rlgl room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Between games.
    Lobby,
    /// 3 s before the first green.
    Countdown,
    /// Run.
    Green,
    /// Stand still.
    Red,
    /// The ranking, then the lobby.
    GameOver,
}

impl Phase {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Lobby => "lobby",
            Phase::Countdown => "countdown",
            Phase::Green => "green",
            Phase::Red => "red",
            Phase::GameOver => "game_over",
        }
    }
}

/// The `phase` message of an rlgl room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhaseInfo {
    /// The phase.
    pub phase: Phase,
    /// When it ends (room clock, unix ms); null in the lobby and for a light the host holds.
    pub ends_at: Option<Millis>,
    /// When the game ends at the latest (from the first green on).
    pub game_ends_at: Option<Millis>,
    /// Whether the light is automatic.
    pub auto: bool,
    /// Where the finish is, in steps.
    pub distance: u32,
}

impl PhaseView for PhaseInfo {
    fn name(&self) -> &str {
        self.phase.as_str()
    }
}

/// `start_game.settings`; anything absent takes its default. Parsed field by field, so a
/// value of the wrong type is refused naming its field, as is a field this game lacks.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Settings {
    /// The light changes by itself (default true); false: the host's `light`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto: Option<bool>,
    /// Length of the game from the first green, seconds (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// The finish, in steps (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distance: Option<u32>,
    /// Grace after red, ms (default 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_ms: Option<u32>,
    /// Most round trip allowed on top of the grace, ms (default 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_allowance_ms: Option<u32>,
    /// Most steps counted per second (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_steps_per_second: Option<u32>,
    /// How long an eliminated player is on stage, seconds (default 3; 0: not at all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spotlight_seconds: Option<f64>,
}

/// The settings' field names.
const FIELDS: &[&str] =
    &["auto", "seconds", "distance", "grace_ms", "max_allowance_ms", "max_steps_per_second", "spotlight_seconds"];

impl<'de> Deserialize<'de> for Settings {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Settings, D::Error> {
        use serde::de::Error;
        let fields = BTreeMap::<String, serde_json::Value>::deserialize(deserializer)?;
        let mut s = Settings::default();
        for (name, value) in fields {
            fn parse<T: serde::de::DeserializeOwned, E: Error>(
                name: &str,
                v: serde_json::Value,
            ) -> Result<Option<T>, E> {
                if v.is_null() {
                    return Ok(None);
                }
                serde_json::from_value(v).map(Some).map_err(|e| E::custom(format!("{name}: {e}")))
            }
            match name.as_str() {
                "auto" => s.auto = parse(&name, value)?,
                "seconds" => s.seconds = parse(&name, value)?,
                "distance" => s.distance = parse(&name, value)?,
                "grace_ms" => s.grace_ms = parse(&name, value)?,
                "max_allowance_ms" => s.max_allowance_ms = parse(&name, value)?,
                "max_steps_per_second" => s.max_steps_per_second = parse(&name, value)?,
                "spotlight_seconds" => s.spotlight_seconds = parse(&name, value)?,
                other => {
                    let shown: String = other.chars().take(32).collect();
                    return Err(D::Error::custom(format!("no field {shown:?}; the fields are {}", FIELDS.join(", "))));
                }
            }
        }
        Ok(s)
    }
}

/// Settings checked and in the game's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Automatic light.
    pub auto: bool,
    /// Game length from the first green, ms.
    pub game_ms: Millis,
    /// The finish, in steps.
    pub distance: u32,
    /// Grace after red, ms.
    pub grace_ms: u32,
    /// Cap on the round trip allowed, ms.
    pub max_allowance_ms: u32,
    /// Most steps counted per second.
    pub max_steps_per_second: u32,
    /// Spotlight length, ms (0: none).
    pub spotlight_ms: Millis,
}

/// Checks `value` lies in `min..=max`, else `bad_field` naming `name`.
fn in_range<T: PartialOrd + std::fmt::Display>(name: &str, value: T, min: T, max: T) -> Result<T, GameError> {
    // A NaN fails both comparisons, so it is refused too.
    if value >= min && value <= max {
        Ok(value)
    } else {
        Err(GameError::BadField(format!("settings.{name}: must be between {min} and {max}, got {value}")))
    }
}

impl Rules {
    /// The rules `settings` ask for, or the first bad field.
    pub fn from_settings(s: &Settings) -> Result<Rules, GameError> {
        let seconds = in_range("seconds", s.seconds.unwrap_or(60.0), 5.0, 3600.0)?;
        let spotlight = in_range("spotlight_seconds", s.spotlight_seconds.unwrap_or(3.0), 0.0, 60.0)?;
        Ok(Rules {
            auto: s.auto.unwrap_or(true),
            game_ms: (seconds * 1000.0).round() as Millis,
            distance: in_range("distance", s.distance.unwrap_or(100), 1, 100_000)?,
            grace_ms: in_range("grace_ms", s.grace_ms.unwrap_or(200), 0, 5_000)?,
            max_allowance_ms: in_range("max_allowance_ms", s.max_allowance_ms.unwrap_or(500), 0, 5_000)?,
            max_steps_per_second: in_range("max_steps_per_second", s.max_steps_per_second.unwrap_or(10), 1, 100)?,
            spotlight_ms: (spotlight * 1000.0).round() as Millis,
        })
    }
}

impl Default for Rules {
    fn default() -> Self {
        // The defaults are in range by construction.
        Rules::from_settings(&Settings::default()).unwrap_or(Rules {
            auto: true,
            game_ms: 60_000,
            distance: 100,
            grace_ms: 200,
            max_allowance_ms: 500,
            max_steps_per_second: 10,
            spotlight_ms: 3_000,
        })
    }
}
