//! The `hint`: the word's shape, with letters revealed as the drawing goes on.
//!
//! Every character of the word becomes `_` (a space stays a space, so the pattern shows the
//! words), joined by single spaces: `"_ _ _"`. Letters are revealed at the fractions of the
//! drawing time in [`REVEAL_AT`], in an order drawn from the game's seed, and never more than
//! half of them — so a pattern never spells the word (its characters stay apart, and at least
//! one stays hidden).

use rand::seq::SliceRandom;
use rand::Rng;

/// When letters are revealed, as fractions of the drawing time.
pub const REVEAL_AT: [(u64, u64); 2] = [(1, 2), (3, 4)];

/// A word's hint for one turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    chars: Vec<char>,
    /// Positions of letters, in the order they will be revealed.
    order: Vec<usize>,
    shown: usize,
}

impl Hint {
    /// The hint of `word`, revealing letters in an order drawn from `rng`.
    pub fn new(word: &str, rng: &mut impl Rng) -> Hint {
        let chars: Vec<char> = word.chars().collect();
        let mut order: Vec<usize> = (0..chars.len()).filter(|&i| !chars[i].is_whitespace()).collect();
        order.shuffle(rng);
        // At most half, and never the last hidden one: a one-letter word shows nothing.
        order.truncate(order.len() / 2);
        Hint { chars, order, shown: 0 }
    }

    /// Reveal one more letter; false when no more may be shown.
    pub fn reveal(&mut self) -> bool {
        if self.shown < self.order.len() {
            self.shown += 1;
            true
        } else {
            false
        }
    }

    /// The pattern now.
    pub fn pattern(&self) -> String {
        let shown = &self.order[..self.shown];
        let cells: Vec<String> = self
            .chars
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if c.is_whitespace() {
                    " ".to_owned() // between its separators: a word gap shows as three spaces
                } else if shown.contains(&i) {
                    c.to_string()
                } else {
                    "_".to_owned()
                }
            })
            .collect();
        cells.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn shape_then_letters_never_the_word() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut h = Hint::new("apple", &mut rng);
        assert_eq!(h.pattern(), "_ _ _ _ _");
        assert!(h.reveal() && h.reveal());
        assert!(!h.reveal(), "at most half of five letters");
        let p = h.pattern();
        assert_eq!(p.chars().filter(|c| *c == '_').count(), 3, "{p}");
        assert_eq!(p.replace([' ', '_'], "").len(), 2, "{p}");
        let mut two = Hint::new("ice cream", &mut rng);
        assert_eq!(two.pattern(), "_ _ _   _ _ _ _ _");
        while two.reveal() {}
        assert_eq!(two.pattern().matches('_').count(), 4);
        let mut one = Hint::new("달", &mut rng);
        assert!(!one.reveal());
        assert_eq!(one.pattern(), "_");
    }
}
