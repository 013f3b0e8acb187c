//! The drawing game (docs/PROTOCOL.md, "Drawing rooms"): one draws, everyone else guesses,
//! and the word reaches the drawer only, until the reveal.
//!
//! Its parts: [`wire`] (the messages), [`words`] (the lists and the three offered), [`guess`]
//! (matching), [`board`] (the stroke log and its checks), [`hint`] (letters revealed over
//! time), [`score`] (points), [`routing`] (media on top of the stage table) and [`rate`].
//!
//! Decisions the contract leaves open:
//! - A game needs two participants. In `rotate` mode the drawers are everyone present at the
//!   start, in presence order, `rounds` times over; one who has left is skipped. In `host`
//!   mode whoever holds the host's powers draws, `rounds` words. Newcomers guess and score.
//! - The drawer leaving while choosing moves on to the next turn; while drawing, the drawing
//!   ends: the word is revealed (no points for the drawer) and the game goes on. Fewer than
//!   two left ends the game. Someone who leaves loses their place in the scores.
//! - A guess is trimmed and at most 64 characters; each guesser may guess 3 times a second
//!   (bursts of 5). A guess one edit away, or holding the word, is never shown: its sender
//!   alone gets `close`. Only wrong guesses are shown, as `chat` on `all`.
//! - Chat keeps the secret too: while drawing, those who know the word (the drawer and who
//!   guessed) chat among themselves (`all` reaches only them) but not the word itself, and
//!   the others' chat is refused (`not_allowed`: their guesses are shown as chat anyway);
//!   while choosing the drawer's chat is refused.
//! - The stage's commands (`raise_hand`, `stage`, `view`) work between games; during a game
//!   they are `wrong_phase` and places on stage from the lobby are set aside (the drawer is
//!   the one on stage). Phase ends are `now + length` when the phase begins.

pub mod board;
pub mod guess;
pub mod hint;
pub mod rate;
pub mod routing;
pub mod score;
pub mod wire;
pub mod words;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::json;

use self::board::{Board, Change};
use self::guess::Verdict;
use self::hint::{Hint, REVEAL_AT};
use self::rate::Rate;
pub use self::wire::{Command, DrawerMode, Message, Phase, PhaseInfo, Scores, Settings, Stroke, COMMANDS};
use self::words::Deck;
use crate::game::stage::{self, Stage, StageLimits};
use crate::game::{ChatLine, Game, GameError, Id, Millis, Output, Roster, Routes, Standing, To};

type Out = Output<Message, PhaseInfo>;

/// The longest guess, in characters.
pub const MAX_GUESS_CHARS: usize = 64;
/// Guesses a second each guesser may send, sustained, and in a burst.
const GUESSES_PER_SECOND: u32 = 3;
const GUESS_BURST: u32 = 5;
/// Rounds a game may have.
const ROUNDS: std::ops::RangeInclusive<u32> = 1..=20;
/// The longest phase a host may set, in seconds.
const MAX_PHASE_SECONDS: f64 = 3600.0;

/// Default phase lengths, seconds.
const DEFAULT_SECONDS: [(&str, f64); 4] = [("choosing", 15.0), ("drawing", 80.0), ("reveal", 6.0), ("game_over", 20.0)];

/// One game's phase lengths, ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Lengths {
    choosing: Millis,
    drawing: Millis,
    reveal: Millis,
    game_over: Millis,
}

impl Lengths {
    fn from_settings(settings: &Settings) -> Result<Lengths, GameError> {
        let mut seconds: BTreeMap<&str, f64> = DEFAULT_SECONDS.into_iter().collect();
        for (name, &value) in &settings.phase_seconds {
            let Some(slot) = seconds.get_mut(name.as_str()) else {
                let shown: String = name.chars().take(24).collect();
                return Err(GameError::BadField(format!(
                    "phase_seconds: no timed phase {shown:?} (choosing, drawing, reveal, game_over)"
                )));
            };
            // False for NaN too.
            if !(value.is_finite() && value > 0.0 && value <= MAX_PHASE_SECONDS) {
                return Err(GameError::BadField(format!(
                    "phase_seconds.{name}: a number of seconds above 0 and at most 3600"
                )));
            }
            *slot = value;
        }
        // Validated to (0, 3600]: whole milliseconds, never 0.
        let ms = |name: &str| ((seconds[name] * 1000.0).round() as Millis).max(1);
        Ok(Lengths {
            choosing: ms("choosing"),
            drawing: ms("drawing"),
            reveal: ms("reveal"),
            game_over: ms("game_over"),
        })
    }
}

/// Check `start_game.settings` on their own.
pub fn check_settings(settings: &Settings) -> Result<(), GameError> {
    Lengths::from_settings(settings)?;
    rounds(settings)?;
    words::from_setting(settings.words.as_ref())?;
    Ok(())
}

fn rounds(settings: &Settings) -> Result<u32, GameError> {
    let default = match settings.drawer {
        DrawerMode::Rotate => 2,
        DrawerMode::Host => 5,
    };
    let n = settings.rounds.unwrap_or(default);
    if !ROUNDS.contains(&n) {
        return Err(GameError::BadField(format!("rounds: {} to {}, not {n}", ROUNDS.start(), ROUNDS.end())));
    }
    Ok(n)
}

/// One turn: a drawer, their word, the drawing and who guessed it.
#[derive(Debug, Clone)]
struct Turn {
    drawer: Id,
    choices: Vec<String>,
    word: Option<String>,
    hint: Option<Hint>,
    /// How many of [`REVEAL_AT`] have passed.
    hints_given: usize,
    /// When the drawing began.
    drawing_since: Millis,
    board: Board,
    /// Who guessed, with rank and points, in rank order.
    guessed: Vec<(Id, u32)>,
    guessed_ids: BTreeSet<Id>,
    guess_rates: BTreeMap<Id, Rate>,
}

/// A game from its start until the return to the lobby.
#[derive(Debug, Clone)]
struct Table {
    mode: DrawerMode,
    rounds: u32,
    lengths: Lengths,
    deck: Deck,
    /// `rotate`: the drawers, in order.
    order: Vec<Id>,
    /// The turn's place: in `rotate` an index into `order` repeated `rounds` times, in
    /// `host` the turn number; from 0.
    slot: u32,
    scores: Scores,
    turn: Option<Turn>,
}

impl Table {
    fn slots(&self) -> u32 {
        match self.mode {
            DrawerMode::Rotate => self.rounds.saturating_mul(self.order.len() as u32),
            DrawerMode::Host => self.rounds,
        }
    }

    fn round(&self) -> u32 {
        match self.mode {
            DrawerMode::Rotate => self.slot / (self.order.len().max(1) as u32) + 1,
            DrawerMode::Host => self.slot + 1,
        }
        .min(self.rounds)
    }

    /// The scores of those still here.
    fn scores(&self, roster: &Roster) -> Scores {
        self.scores.iter().filter(|(id, _)| roster.contains(id)).map(|(id, p)| (id.clone(), *p)).collect()
    }
}

/// The drawing game of one room.
#[derive(Debug)]
pub struct Draw {
    rng: StdRng,
    stage: Stage,
    phase: Phase,
    ends_at: Option<Millis>,
    table: Option<Table>,
    out: VecDeque<Out>,
}

impl Draw {
    /// A drawing room in the lobby; `seed` drives the words and hints until a game brings its
    /// own.
    pub fn new(seed: u64, limits: StageLimits) -> Draw {
        Draw {
            rng: StdRng::seed_from_u64(seed),
            stage: Stage::new(limits),
            phase: Phase::Lobby,
            ends_at: None,
            table: None,
            out: VecDeque::new(),
        }
    }

    /// The current phase.
    pub fn current_phase(&self) -> Phase {
        self.phase
    }

    fn turn(&self) -> Option<&Turn> {
        self.table.as_ref().and_then(|t| t.turn.as_ref())
    }

    fn turn_mut(&mut self) -> Option<&mut Turn> {
        self.table.as_mut().and_then(|t| t.turn.as_mut())
    }

    /// Who draws now (during a turn).
    pub fn drawer(&self) -> Option<&str> {
        self.turn().filter(|_| self.phase.in_turn()).map(|t| t.drawer.as_str())
    }

    fn is_drawer(&self, id: &str) -> bool {
        self.drawer() == Some(id)
    }

    /// Who knows the word now: the drawer and those who guessed it.
    fn knowers(&self, roster: &Roster) -> Vec<Id> {
        let Some(turn) = self.turn() else { return Vec::new() };
        std::iter::once(turn.drawer.clone())
            .chain(turn.guessed.iter().map(|(id, _)| id.clone()))
            .filter(|id| roster.contains(id))
            .collect()
    }

    fn emit(&mut self, output: Out) {
        self.out.push_back(output);
    }

    fn standings(&self, roster: &Roster) -> Vec<(Id, Standing)> {
        roster.ids().map(|id| (id.clone(), self.standing(roster, id))).collect()
    }

    fn emit_standing_changes(&mut self, roster: &Roster, before: Vec<(Id, Standing)>) {
        for (id, old) in before {
            if roster.contains(&id) && self.standing(roster, &id) != old {
                self.emit(Output::Standing(id));
            }
        }
    }

    fn enter(&mut self, now: Millis, roster: &Roster, phase: Phase, length: Option<Millis>) {
        self.phase = phase;
        self.ends_at = length.map(|l| now.saturating_add(l));
        let info = self.phase(roster);
        self.emit(Output::Phase(info));
    }

    // ----- turns -----

    /// Begin the turn at the table's slot (or the next one whose drawer is here), or end the
    /// game when none is left.
    fn start_turn(&mut self, now: Millis, roster: &Roster) {
        let Some(table) = self.table.as_mut() else { return };
        table.turn = None;
        let drawer = loop {
            if table.slot >= table.slots() || roster.len() < 2 {
                break None;
            }
            let candidate = match table.mode {
                DrawerMode::Rotate => table.order.get(table.slot as usize % table.order.len()).cloned(),
                DrawerMode::Host => roster.host().map(str::to_owned),
            };
            match candidate {
                Some(id) if roster.contains(&id) => break Some(id),
                Some(_) if table.mode == DrawerMode::Rotate => table.slot += 1,
                _ => break None,
            }
        };
        let Some(drawer) = drawer else {
            self.game_over(now, roster);
            return;
        };
        let choices = table.deck.deal(&mut self.rng);
        let length = table.lengths.choosing;
        table.turn = Some(Turn {
            drawer: drawer.clone(),
            choices: choices.clone(),
            word: None,
            hint: None,
            hints_given: 0,
            drawing_since: now,
            board: Board::new(now),
            guessed: Vec::new(),
            guessed_ids: BTreeSet::new(),
            guess_rates: BTreeMap::new(),
        });
        self.enter(now, roster, Phase::Choosing, Some(length));
        self.emit(Output::Send(To::one(&drawer), Message::WordChoices { words: choices }));
    }

    fn begin_drawing(&mut self, now: Millis, roster: &Roster, index: usize) {
        let Some(table) = self.table.as_mut() else { return };
        let length = table.lengths.drawing;
        let Some(turn) = table.turn.as_mut() else { return };
        let Some(word) = turn.choices.get(index).cloned() else { return };
        let hint = Hint::new(&word, &mut self.rng);
        let pattern = hint.pattern();
        turn.word = Some(word.clone());
        turn.hint = Some(hint);
        turn.drawing_since = now;
        turn.board = Board::new(now);
        let drawer = turn.drawer.clone();
        self.enter(now, roster, Phase::Drawing, Some(length));
        self.emit(Output::Send(To::one(&drawer), Message::Word { word }));
        self.emit(Output::Send(To::All, Message::Hint { pattern }));
    }

    /// The drawing is over (time, everyone guessed, or the drawer left): the reveal.
    fn end_drawing(&mut self, now: Millis, roster: &Roster) {
        let Some(table) = self.table.as_mut() else { return };
        let Some(turn) = table.turn.as_ref() else { return };
        if roster.contains(&turn.drawer) {
            let guessers = roster.people().filter(|s| s.id != turn.drawer).count();
            let guessed = turn.guessed.iter().filter(|(id, _)| roster.contains(id)).count();
            *table.scores.entry(turn.drawer.clone()).or_default() += score::drawer_points(guessed, guessers);
        }
        let word = turn.word.clone().unwrap_or_default();
        let scores = table.scores(roster);
        let length = table.lengths.reveal;
        self.enter(now, roster, Phase::Reveal, Some(length));
        self.emit(Output::Send(To::All, Message::Reveal { word, scores }));
    }

    fn next_turn(&mut self, now: Millis, roster: &Roster) {
        if let Some(table) = self.table.as_mut() {
            table.slot += 1;
        }
        self.start_turn(now, roster);
    }

    fn game_over(&mut self, now: Millis, roster: &Roster) {
        let Some(table) = self.table.as_mut() else { return };
        table.turn = None;
        let scores = table.scores(roster);
        let length = table.lengths.game_over;
        self.emit(Output::Send(To::All, Message::GameOver { scores }));
        self.enter(now, roster, Phase::GameOver, Some(length));
    }

    fn back_to_lobby(&mut self, now: Millis, roster: &Roster) {
        self.table = None;
        self.enter(now, roster, Phase::Lobby, None);
    }

    /// When the next hint is due, while drawing.
    fn next_hint_at(&self) -> Option<Millis> {
        let table = self.table.as_ref()?;
        let turn = table.turn.as_ref().filter(|_| self.phase == Phase::Drawing)?;
        let (num, den) = REVEAL_AT.get(turn.hints_given)?;
        Some(turn.drawing_since.saturating_add(table.lengths.drawing.saturating_mul(*num) / den))
    }

    fn give_hint(&mut self) {
        let Some(turn) = self.turn_mut() else { return };
        turn.hints_given += 1;
        let Some(hint) = turn.hint.as_mut() else { return };
        if hint.reveal() {
            let pattern = hint.pattern();
            self.emit(Output::Send(To::All, Message::Hint { pattern }));
        }
    }

    /// Whether every guesser here has guessed.
    fn all_guessed(&self, roster: &Roster) -> bool {
        let Some(turn) = self.turn() else { return false };
        // A TV view (a screen, not a person) never guesses: it must not hold the drawing open.
        roster.people().filter(|s| s.id != turn.drawer).all(|s| turn.guessed_ids.contains(&s.id))
    }

    // ----- commands -----

    fn drawer_command(&self, who: &str, what: &str, phase: Phase) -> Result<(), GameError> {
        if self.phase != phase {
            return Err(GameError::WrongPhase(format!("{what} is for the {} phase", phase.as_str())));
        }
        if !self.is_drawer(who) {
            return Err(GameError::NotAllowed(format!("only the drawer may {what}")));
        }
        Ok(())
    }

    fn board_change(&mut self, now: Millis, command: Command) -> Result<(), GameError> {
        let Some(turn) = self.turn_mut() else { return Ok(()) };
        let (change, message) = match command {
            Command::Stroke(mut stroke) => {
                let change = turn.board.stroke(now, &mut stroke)?;
                (change, Message::Stroke(stroke))
            }
            Command::Undo => (turn.board.undo(now)?, Message::Undo),
            _ => (turn.board.clear(now)?, Message::Clear),
        };
        if change == Change::Relay {
            let drawer = turn.drawer.clone();
            self.emit(Output::Send(To::AllBut(vec![drawer]), message));
        }
        Ok(())
    }

    fn guess(&mut self, now: Millis, roster: &Roster, who: &str, text: &str) -> Result<(), GameError> {
        if self.phase != Phase::Drawing {
            return Err(GameError::WrongPhase("guesses are for the drawing phase".into()));
        }
        if self.is_drawer(who) {
            return Err(GameError::NotAllowed("the drawer does not guess".into()));
        }
        let text = text.trim();
        let n = text.chars().count();
        if n == 0 || n > MAX_GUESS_CHARS {
            return Err(GameError::BadField(format!("text: 1 to {MAX_GUESS_CHARS} characters, not {n}")));
        }
        let Some(table) = self.table.as_mut() else { return Ok(()) };
        let length = table.lengths.drawing;
        let Some(turn) = table.turn.as_mut() else { return Ok(()) };
        if turn.guessed_ids.contains(who) {
            return Err(GameError::NotAllowed("you have guessed the word already".into()));
        }
        let rate =
            turn.guess_rates.entry(who.to_owned()).or_insert_with(|| Rate::new(GUESSES_PER_SECOND, GUESS_BURST, now));
        if !rate.take(now) {
            return Err(GameError::RateLimited(format!("at most {GUESSES_PER_SECOND} guesses a second")));
        }
        let word = turn.word.clone().unwrap_or_default();
        match guess::judge(text, &word) {
            Verdict::Right => {
                let rank = turn.guessed.len() as u32 + 1;
                let left = (turn.drawing_since + length).saturating_sub(now);
                let points = score::guess_points(rank, left, length);
                turn.guessed.push((who.to_owned(), points));
                turn.guessed_ids.insert(who.to_owned());
                *table.scores.entry(who.to_owned()).or_default() += points;
                self.emit(Output::Send(To::All, Message::Guessed { id: who.to_owned(), rank, points }));
                if self.all_guessed(roster) {
                    self.end_drawing(now, roster);
                }
            }
            Verdict::Close => self.emit(Output::Send(To::one(who), Message::Close {})),
            Verdict::Wrong => {
                let line = ChatLine { from: who.to_owned(), channel: "all".into(), text: text.to_owned(), at: now };
                self.emit(Output::Send(To::All, Message::Chat(line)));
            }
        }
        Ok(())
    }

    fn stage_command(&mut self, roster: &Roster, who: &str, command: stage::Command) -> Result<(), GameError> {
        if self.phase.in_turn() {
            return Err(GameError::WrongPhase("the stage is set aside while the game is on".into()));
        }
        let changed = self.stage.handle(roster, who, command)?;
        self.out.extend(changed.into_iter().map(Output::Standing));
        Ok(())
    }

    /// The catch-up of a turn for `id`: the board for everyone, the word (or the choices) for
    /// the drawer, the hint for the others.
    fn turn_catch_up(&self, roster: &Roster, id: &str, out: &mut Vec<(&'static str, serde_json::Value)>) {
        let Some(turn) = self.turn().filter(|_| self.phase.in_turn()) else { return };
        out.push(("board", json!(turn.board.view())));
        let guessed: Vec<_> = turn
            .guessed
            .iter()
            .enumerate()
            .map(|(i, (who, points))| json!({"id": who, "rank": i + 1, "points": points}))
            .collect();
        out.push(("guessed", json!(guessed)));
        let word = turn.word.clone().unwrap_or_default();
        match self.phase {
            Phase::Choosing if turn.drawer == id => out.push(("word_choices", json!({"words": turn.choices}))),
            Phase::Drawing if turn.drawer == id => out.push(("word", json!({"word": word}))),
            Phase::Drawing => {
                let pattern = turn.hint.as_ref().map(Hint::pattern).unwrap_or_default();
                out.push(("hint", json!({"pattern": pattern})));
            }
            Phase::Reveal => {
                let scores = self.table.as_ref().map(|t| t.scores(roster)).unwrap_or_default();
                out.push(("reveal", json!({"word": word, "scores": scores})));
            }
            _ => {}
        }
    }
}

impl Game for Draw {
    type Command = Command;
    type Message = Message;
    type Phase = PhaseInfo;
    type Settings = Settings;

    const COMMANDS: &'static [&'static str] = COMMANDS;

    fn check_settings(settings: &Settings) -> Result<(), GameError> {
        check_settings(settings)
    }

    fn start(
        &mut self,
        now: Millis,
        roster: &Roster,
        _who: &str,
        settings: Settings,
        seed: Option<u64>,
    ) -> Result<(), GameError> {
        if self.phase.in_turn() {
            return Err(GameError::WrongPhase("a game is on already".into()));
        }
        if roster.people().count() < 2 {
            return Err(GameError::NotAllowed("a drawing game needs at least 2 participants".into()));
        }
        let lengths = Lengths::from_settings(&settings)?;
        let rounds = rounds(&settings)?;
        let words = words::from_setting(settings.words.as_ref())?;
        if let Some(seed) = seed {
            self.rng = StdRng::seed_from_u64(seed);
        }
        self.table = Some(Table {
            mode: settings.drawer,
            rounds,
            lengths,
            deck: Deck::new(words),
            // Screens (TV views) watch: they never draw.
            order: roster.people().map(|s| s.id.clone()).collect(),
            slot: 0,
            scores: roster.ids().map(|id| (id.clone(), 0)).collect(),
            turn: None,
        });
        self.start_turn(now, roster);
        Ok(())
    }

    fn handle(&mut self, now: Millis, roster: &Roster, who: &str, command: Command) -> Result<(), GameError> {
        match command {
            Command::ChooseWord { index } => {
                self.drawer_command(who, "choose the word", Phase::Choosing)?;
                let offered = self.turn().map_or(0, |t| t.choices.len());
                if index >= offered {
                    return Err(GameError::BadField(format!("index: 0 to {}, not {index}", offered.saturating_sub(1))));
                }
                self.begin_drawing(now, roster, index);
            }
            Command::Stroke(_) | Command::Undo | Command::Clear => {
                let what = match &command {
                    Command::Stroke(_) => "draw",
                    Command::Undo => "undo",
                    _ => "clear the board",
                };
                self.drawer_command(who, what, Phase::Drawing)?;
                self.board_change(now, command)?;
            }
            Command::Guess { text } => {
                let before = self.standings(roster);
                self.guess(now, roster, who, &text)?;
                self.emit_standing_changes(roster, before);
            }
            Command::RaiseHand { raised } => self.stage_command(roster, who, stage::Command::RaiseHand { raised })?,
            Command::Stage { id, on } => self.stage_command(roster, who, stage::Command::Stage { id, on })?,
            Command::View { ids } => self.stage_command(roster, who, stage::Command::View { ids })?,
        }
        Ok(())
    }

    fn joined(&mut self, _now: Millis, _roster: &Roster, who: &str) {
        if let Some(table) = self.table.as_mut().filter(|_| self.phase.in_turn()) {
            table.scores.entry(who.to_owned()).or_insert(0);
        }
    }

    fn left(&mut self, now: Millis, roster: &Roster, who: &str) {
        let before = self.standings(roster);
        self.stage.left(who);
        let was_drawer = self.is_drawer(who);
        if let Some(table) = self.table.as_mut() {
            table.scores.remove(who);
        }
        if self.phase.in_turn() {
            if roster.len() < 2 {
                self.game_over(now, roster);
            } else if was_drawer && self.phase == Phase::Choosing {
                self.next_turn(now, roster);
            } else if self.phase == Phase::Drawing && (was_drawer || self.all_guessed(roster)) {
                self.end_drawing(now, roster);
            }
        }
        self.emit_standing_changes(roster, before);
    }

    fn handle_timeout(&mut self, now: Millis, roster: &Roster) {
        if self.ends_at.is_some_and(|at| at <= now) {
            let before = self.standings(roster);
            match self.phase {
                Phase::Choosing => self.begin_drawing(now, roster, 0),
                Phase::Drawing => self.end_drawing(now, roster),
                Phase::Reveal => self.next_turn(now, roster),
                Phase::GameOver => self.back_to_lobby(now, roster),
                Phase::Lobby => self.ends_at = None,
            }
            self.emit_standing_changes(roster, before);
        } else if self.next_hint_at().is_some_and(|at| at <= now) {
            self.give_hint();
        }
    }

    fn poll_output(&mut self) -> Option<Out> {
        self.out.pop_front()
    }

    fn next_deadline(&self) -> Option<Millis> {
        match (self.ends_at, self.next_hint_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn phase(&self, _roster: &Roster) -> PhaseInfo {
        let table = self.table.as_ref();
        PhaseInfo {
            phase: self.phase,
            round: table.map_or(0, Table::round),
            rounds: table.map_or(0, |t| t.rounds),
            ends_at: self.ends_at,
            drawer: self.drawer().map(str::to_owned),
        }
    }

    fn running(&self) -> bool {
        self.phase.in_turn()
    }

    fn routes(&self, roster: &Roster) -> Routes {
        let turn = self.turn().filter(|_| self.phase.in_turn()).map(|t| routing::TurnView {
            drawer: &t.drawer,
            drawing: self.phase == Phase::Drawing,
            guessed: &t.guessed_ids,
        });
        routing::routes(&self.stage, roster, turn)
    }

    fn standing(&self, roster: &Roster, id: &str) -> Standing {
        let playing = self.table.as_ref().is_some_and(|t| t.scores.contains_key(id));
        if self.phase.in_turn() {
            return Standing { playing, on_stage: self.is_drawer(id), ..Standing::LOBBY };
        }
        Standing { playing, ..self.stage.standing(roster, id) }
    }

    fn chat_readers(&self, roster: &Roster, who: &str, channel: &str) -> Result<To, GameError> {
        if channel != "all" {
            return Err(GameError::BadField(format!("channel: this room has only \"all\", not {channel:?}")));
        }
        match self.phase {
            Phase::Choosing if self.is_drawer(who) => {
                Err(GameError::NotAllowed("choose a word first; the chat is back when the drawing starts".into()))
            }
            Phase::Drawing => {
                let knowers = self.knowers(roster);
                if knowers.iter().any(|k| k == who) {
                    Ok(To::Only(knowers))
                } else {
                    Err(GameError::NotAllowed(
                        "while someone draws, type in the guess box: wrong guesses are shown as chat".into(),
                    ))
                }
            }
            _ => Ok(To::All),
        }
    }

    fn check_chat(&self, _roster: &Roster, _who: &str, _channel: &str, text: &str) -> Result<(), GameError> {
        match self.turn().and_then(|t| t.word.as_deref()) {
            Some(word) if self.phase == Phase::Drawing && guess::reveals(text, word) => {
                Err(GameError::NotAllowed("that would give the word away before the reveal".into()))
            }
            _ => Ok(()),
        }
    }

    fn catch_up(&self, roster: &Roster, id: &str, _resumed: bool) -> Vec<(&'static str, serde_json::Value)> {
        let mut out = Vec::new();
        if roster.is_host(id) && !self.phase.in_turn() {
            out.push(("view", json!(self.stage.view_list(roster))));
        }
        if let Some(table) = self.table.as_ref() {
            out.push(("scores", json!(table.scores(roster))));
        }
        self.turn_catch_up(roster, id, &mut out);
        out
    }
}
