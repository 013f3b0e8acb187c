//! The drawing of one turn: the stroke log, `undo` and `clear` applied to it, the checks every
//! batch of points passes before it is relayed, and the drawer's rate.
//!
//! Decisions the contract leaves open:
//! - Consecutive batches with the same `id` are one stroke: `undo` takes back all of it, and
//!   `welcome.board` carries it as one stroke with every point. A batch that continues a
//!   stroke must keep its colour and width.
//! - `undo` on an empty board and `clear` on an empty board change nothing and are not
//!   relayed. A `clear` cannot be undone.
//! - The drawer may send [`MAX_ACTIONS_PER_SECOND`] strokes, undos and clears a second
//!   (bursts of as many); the board holds at most [`MAX_BOARD_POINTS`] points.

use serde::Serialize;

use super::rate::Rate;
use super::wire::Stroke;
use crate::game::{GameError, Millis};

/// The largest coordinate on either axis.
pub const MAX_COORD: u32 = 10_000;
/// The most points one `stroke` message carries.
pub const MAX_POINTS: usize = 256;
/// The thinnest and thickest line, in board units.
pub const WIDTHS: std::ops::RangeInclusive<u32> = 1..=1000;
/// The drawer's sustained rate of strokes, undos and clears: 30 a second leaves room for the
/// page's one batch per 50 ms.
pub const MAX_ACTIONS_PER_SECOND: u32 = 30;
/// The most points one drawing holds (so `welcome.board` stays well under a megabyte).
pub const MAX_BOARD_POINTS: usize = 30_000;

/// What a change did to the board: whether to relay it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Relay the message to everyone but the drawer.
    Relay,
    /// Nothing changed: nothing to relay.
    Nothing,
}

/// A drawing, as `welcome.board` carries it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BoardView {
    /// Every stroke still on the board, oldest first.
    pub strokes: Vec<Stroke>,
}

/// One turn's drawing and the drawer's rate.
#[derive(Debug, Clone)]
pub struct Board {
    strokes: Vec<Stroke>,
    points: usize,
    rate: Rate,
}

impl Board {
    /// An empty board whose drawer starts with a full burst at `now`.
    pub fn new(now: Millis) -> Board {
        Board { strokes: Vec::new(), points: 0, rate: Rate::new(MAX_ACTIONS_PER_SECOND, MAX_ACTIONS_PER_SECOND, now) }
    }

    /// What `welcome.board` carries.
    pub fn view(&self) -> BoardView {
        BoardView { strokes: self.strokes.clone() }
    }

    /// How many points the board holds.
    pub fn points(&self) -> usize {
        self.points
    }

    /// Spend one of the drawer's actions at `now`, or `rate_limited`.
    fn spend(&mut self, now: Millis) -> Result<(), GameError> {
        if self.rate.take(now) {
            return Ok(());
        }
        Err(GameError::RateLimited(format!(
            "drawing too fast: at most {MAX_ACTIONS_PER_SECOND} strokes, undos and clears a second"
        )))
    }

    /// A batch of points, checked; lower-cases its colour. The check comes before the rate,
    /// so a refused batch costs nothing.
    pub fn stroke(&mut self, now: Millis, stroke: &mut Stroke) -> Result<Change, GameError> {
        check(stroke)?;
        stroke.color.make_ascii_lowercase();
        if self.points + stroke.points.len() > MAX_BOARD_POINTS {
            return Err(GameError::NotAllowed(format!(
                "the board is full ({MAX_BOARD_POINTS} points): undo or clear first"
            )));
        }
        let continues = self.strokes.last().filter(|last| last.id == stroke.id);
        if let Some(last) = continues {
            if last.color != stroke.color || last.width != stroke.width {
                return Err(GameError::BadField(format!(
                    "stroke {}: a stroke keeps its colour and width; give a new id",
                    stroke.id
                )));
            }
        }
        self.spend(now)?;
        self.points += stroke.points.len();
        match self.strokes.last_mut().filter(|last| last.id == stroke.id) {
            Some(last) => last.points.extend_from_slice(&stroke.points),
            None => self.strokes.push(stroke.clone()),
        }
        Ok(Change::Relay)
    }

    /// Take back the last stroke.
    pub fn undo(&mut self, now: Millis) -> Result<Change, GameError> {
        self.spend(now)?;
        Ok(match self.strokes.pop() {
            Some(stroke) => {
                self.points -= stroke.points.len();
                Change::Relay
            }
            None => Change::Nothing,
        })
    }

    /// Wipe the board.
    pub fn clear(&mut self, now: Millis) -> Result<Change, GameError> {
        self.spend(now)?;
        if self.strokes.is_empty() {
            return Ok(Change::Nothing);
        }
        self.strokes.clear();
        self.points = 0;
        Ok(Change::Relay)
    }
}

/// The checks of one batch on its own.
fn check(stroke: &Stroke) -> Result<(), GameError> {
    let bad = |why: String| Err(GameError::BadField(format!("stroke: {why}")));
    let n = stroke.points.len();
    if n == 0 || n > MAX_POINTS {
        return bad(format!("points: 1 to {MAX_POINTS} points a message, not {n}"));
    }
    if let Some([x, y]) = stroke.points.iter().find(|[x, y]| *x > MAX_COORD || *y > MAX_COORD) {
        return bad(format!("points: coordinates run 0 to {MAX_COORD}, not [{x}, {y}]"));
    }
    if !is_colour(&stroke.color) {
        let shown: String = stroke.color.chars().take(16).collect();
        return bad(format!("color: \"#rrggbb\" (hex), not {shown:?}"));
    }
    if !WIDTHS.contains(&stroke.width) {
        return bad(format!("width: {} to {} board units, not {}", WIDTHS.start(), WIDTHS.end(), stroke.width));
    }
    Ok(())
}

fn is_colour(text: &str) -> bool {
    text.len() == 7 && text.starts_with('#') && text[1..].chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: u32, points: &[[u32; 2]]) -> Stroke {
        Stroke { id, color: "#FF0000".into(), width: 40, points: points.to_vec() }
    }

    #[test]
    fn batches_join_undo_takes_a_stroke_clear_takes_all() {
        let mut b = Board::new(0);
        assert_eq!(b.stroke(0, &mut line(1, &[[0, 0], [10, 10]])).unwrap(), Change::Relay);
        assert_eq!(b.stroke(50, &mut line(1, &[[20, 20]])).unwrap(), Change::Relay);
        b.stroke(100, &mut line(2, &[[5, 5]])).unwrap();
        let v = b.view();
        assert_eq!(v.strokes.len(), 2);
        assert_eq!(v.strokes[0].points, vec![[0, 0], [10, 10], [20, 20]]);
        assert_eq!(v.strokes[0].color, "#ff0000", "colours are kept lower-case");
        assert_eq!(b.undo(150).unwrap(), Change::Relay);
        assert_eq!(b.view().strokes.len(), 1);
        assert_eq!(b.points(), 3);
        assert_eq!(b.clear(200).unwrap(), Change::Relay);
        assert_eq!(b.view(), BoardView::default());
        assert_eq!(b.undo(250).unwrap(), Change::Nothing);
        assert_eq!(b.clear(300).unwrap(), Change::Nothing);
    }

    #[test]
    fn bad_batches_are_refused_and_change_nothing() {
        let mut b = Board::new(0);
        let too_many = vec![[1, 1]; MAX_POINTS + 1];
        let cases = [
            line(1, &[]),
            line(1, &too_many),
            line(1, &[[10_001, 5]]),
            line(1, &[[5, u32::MAX]]),
            Stroke { color: "red".into(), ..line(1, &[[1, 1]]) },
            Stroke { color: "#12345g".into(), ..line(1, &[[1, 1]]) },
            Stroke { width: 0, ..line(1, &[[1, 1]]) },
            Stroke { width: 1001, ..line(1, &[[1, 1]]) },
        ];
        for mut s in cases {
            assert!(matches!(b.stroke(0, &mut s), Err(GameError::BadField(_))), "{s:?}");
        }
        assert_eq!(b.view(), BoardView::default());
        b.stroke(0, &mut line(7, &[[1, 1]])).unwrap();
        let mut recoloured = Stroke { color: "#000000".into(), ..line(7, &[[2, 2]]) };
        assert!(matches!(b.stroke(0, &mut recoloured), Err(GameError::BadField(_))));
        assert_eq!(b.points(), 1);
    }

    #[test]
    fn a_batch_every_50_ms_never_meets_the_rate_but_a_flood_does() {
        let mut b = Board::new(0);
        for i in 0..2_000u64 {
            b.stroke(i * 50, &mut line(i as u32, &[[1, 1]])).unwrap();
            if b.points() > MAX_BOARD_POINTS / 2 {
                b.clear(i * 50 + 1).unwrap();
            }
        }
        let mut flood = Board::new(0);
        let results: Vec<_> = (0..40).map(|i| flood.stroke(0, &mut line(i, &[[1, 1]]))).collect();
        assert!(results[..30].iter().all(Result::is_ok));
        assert!(results[30..].iter().all(|r| matches!(r, Err(GameError::RateLimited(_)))));
        assert!(flood.stroke(1000, &mut line(99, &[[1, 1]])).is_ok(), "the rate refills");
    }

    #[test]
    fn the_board_holds_a_bounded_number_of_points() {
        let mut b = Board::new(0);
        let full = vec![[1, 1]; MAX_POINTS];
        let mut t = 0;
        while b.points() + MAX_POINTS <= MAX_BOARD_POINTS {
            t += 100;
            b.stroke(t, &mut line(t as u32, &full)).unwrap();
        }
        let err = b.stroke(t + 100, &mut line(1, &full)).unwrap_err();
        assert!(matches!(err, GameError::NotAllowed(_)), "{err:?}");
    }
}
