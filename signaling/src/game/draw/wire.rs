//! The drawing game's vocabulary and its wire messages (docs/PROTOCOL.md, "Drawing rooms"):
//! what a seat sends (`choose_word`, `stroke`, `clear`, `undo`, `guess`, and the stage's
//! `raise_hand`, `stage`, `view`), what the game sends, its `phase` message and
//! `start_game.settings`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::game::{ChatLine, Id, Millis, PhaseView};

/// The phases of a drawing game (the lobby included), in wire spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Between games.
    Lobby,
    /// The drawer picks one of three words.
    Choosing,
    /// The drawer draws, everyone else guesses.
    Drawing,
    /// The word is shown to everyone, with the scores.
    Reveal,
    /// The game ended: final scores.
    GameOver,
}

impl Phase {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Lobby => "lobby",
            Phase::Choosing => "choosing",
            Phase::Drawing => "drawing",
            Phase::Reveal => "reveal",
            Phase::GameOver => "game_over",
        }
    }

    /// Whether a turn is under way (choosing, drawing or reveal).
    pub fn in_turn(self) -> bool {
        matches!(self, Phase::Choosing | Phase::Drawing | Phase::Reveal)
    }
}

/// One batch of a stroke: the drawer's page sends one about every 50 ms while the pen is down;
/// batches with the same `id` continue one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stroke {
    /// The stroke's number, chosen by the drawer's page; consecutive batches share it.
    pub id: u32,
    /// `#rrggbb`.
    pub color: String,
    /// Line width in board units (the board is 10000 across).
    pub width: u32,
    /// Board coordinates, 0..=10000 on both axes.
    pub points: Vec<[u32; 2]>,
}

/// What a seat of a drawing room sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    /// Drawer, while choosing: take word number `index` of the three offered.
    ChooseWord {
        /// 0, 1 or 2.
        index: usize,
    },
    /// Drawer, while drawing: a batch of points.
    Stroke(Stroke),
    /// Drawer, while drawing: wipe the board.
    Clear,
    /// Drawer, while drawing: take back the last stroke.
    Undo,
    /// Guesser, while drawing: a guess.
    Guess {
        /// At most 64 characters.
        text: String,
    },
    /// Audience, between games: raise or lower a hand (the stage's).
    RaiseHand {
        /// Raised or not.
        raised: bool,
    },
    /// Host, between games: bring someone on stage or send them back (the stage's).
    Stage {
        /// Whom.
        id: Id,
        /// On stage or not.
        on: bool,
    },
    /// Host, between games: the audience cameras the host's grid shows (the stage's).
    View {
        /// At most 16.
        ids: Vec<Id>,
    },
}

/// The message types [`Command`] parses.
pub const COMMANDS: &[&str] = &["choose_word", "stroke", "clear", "undo", "guess", "raise_hand", "stage", "view"];

/// Everyone's points, by participant id.
pub type Scores = BTreeMap<Id, u32>;

/// What the game sends.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// To the drawer only: the words to choose from.
    WordChoices {
        /// Three words (fewer if the host's list is shorter).
        words: Vec<String>,
    },
    /// To the drawer only: the word to draw.
    Word {
        /// The word.
        word: String,
    },
    /// To everyone: the word's shape, letters revealed over time (`"_ _ _"`).
    Hint {
        /// One character or `_` per letter, separated by spaces.
        pattern: String,
    },
    /// To everyone but the drawer: a batch of points.
    Stroke(Stroke),
    /// To everyone but the drawer: the board was wiped.
    Clear,
    /// To everyone but the drawer: the last stroke was taken back.
    Undo,
    /// To everyone: someone guessed the word (never what they typed).
    Guessed {
        /// Who.
        id: Id,
        /// 1 for the first to guess this turn, …
        rank: u32,
        /// What the guess earned.
        points: u32,
    },
    /// To one guesser: the guess was one edit away (or held the word).
    Close {},
    /// A wrong guess, shown on `all`.
    Chat(ChatLine),
    /// To everyone: the turn's word, and everyone's points after it.
    Reveal {
        /// The word.
        word: String,
        /// Points by id.
        scores: Scores,
    },
    /// To everyone: the final points.
    GameOver {
        /// Points by id.
        scores: Scores,
    },
}

/// The `phase` message of a drawing room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhaseInfo {
    /// The phase.
    pub phase: Phase,
    /// The round (1 for the first; 0 in the lobby). In `host` mode, the turn.
    pub round: u32,
    /// How many rounds the game has (0 in the lobby).
    pub rounds: u32,
    /// When the phase ends on the room clock, if it has a timer.
    pub ends_at: Option<Millis>,
    /// Who draws this turn (null outside a turn).
    pub drawer: Option<Id>,
}

impl PhaseView for PhaseInfo {
    fn name(&self) -> &str {
        self.phase.as_str()
    }
}

/// Who draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DrawerMode {
    /// The host draws every turn; everyone else guesses.
    Host,
    /// Everyone present at the start draws in turn, `rounds` times.
    #[default]
    Rotate,
}

/// `start_game.settings` of a drawing room.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `host` or `rotate` (default).
    #[serde(default)]
    pub drawer: DrawerMode,
    /// Rounds: in `rotate` how often everyone draws (default 2), in `host` how many words the
    /// host draws (default 5). 1..=20.
    #[serde(default)]
    pub rounds: Option<u32>,
    /// `"en"` (default), `"ko"`, or the host's own list of words. Checked by
    /// `check_settings`, so that a wrong value gets a message that says what is wanted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub words: Option<serde_json::Value>,
    /// Seconds per phase: `choosing`, `drawing`, `reveal`, `game_over`.
    #[serde(default)]
    pub phase_seconds: BTreeMap<String, f64>,
}
