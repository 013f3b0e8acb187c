//! The words to draw: the built-in lists (one everyday noun a line, in `words/`) or the
//! host's own, and the three offered each turn.
//!
//! Offered words are not offered again in the same game until the list runs out.

use std::collections::BTreeSet;

use rand::seq::IndexedRandom;
use rand::Rng;

use super::guess::normalize;
use crate::game::GameError;

/// The English list.
const EN: &str = include_str!("words/en.txt");
/// The Korean list.
const KO: &str = include_str!("words/ko.txt");

/// The longest word the host's list may hold, in characters.
pub const MAX_WORD_CHARS: usize = 32;
/// The most words the host's list may hold.
pub const MAX_WORDS: usize = 2000;
/// How many words the drawer chooses from.
pub const CHOICES: usize = 3;

/// The built-in list called `name`.
pub fn builtin(name: &str) -> Option<Vec<String>> {
    let text = match name {
        "en" => EN,
        "ko" => KO,
        _ => return None,
    };
    Some(text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned).collect())
}

/// The list `settings.words` names: `None` is English, a string a built-in list, an array the
/// host's own words (trimmed; duplicates, as compared for guesses, count once).
pub fn from_setting(value: Option<&serde_json::Value>) -> Result<Vec<String>, GameError> {
    let bad = |why: String| Err(GameError::BadField(format!("words: {why}")));
    match value {
        None | Some(serde_json::Value::Null) => Ok(builtin("en").unwrap_or_default()),
        Some(serde_json::Value::String(name)) => match builtin(name) {
            Some(list) => Ok(list),
            None => {
                let shown: String = name.chars().take(16).collect();
                bad(format!("no built-in list {shown:?}: \"en\", \"ko\", or a list of words"))
            }
        },
        Some(serde_json::Value::Array(items)) => {
            if items.is_empty() || items.len() > MAX_WORDS {
                return bad(format!("a list of 1 to {MAX_WORDS} words, not {}", items.len()));
            }
            let mut seen = BTreeSet::new();
            let mut list = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let Some(word) = item.as_str().map(str::trim) else {
                    return bad(format!("[{i}]: a word is a string"));
                };
                let n = word.chars().count();
                if n == 0 || n > MAX_WORD_CHARS || word.chars().any(char::is_control) {
                    return bad(format!("[{i}]: 1 to {MAX_WORD_CHARS} characters, no control characters"));
                }
                if seen.insert(normalize(word)) {
                    list.push(word.to_owned());
                }
            }
            Ok(list)
        }
        Some(_) => bad("\"en\", \"ko\", or a list of words".into()),
    }
}

/// A game's words, and which have been offered.
#[derive(Debug, Clone, Default)]
pub struct Deck {
    words: Vec<String>,
    offered: BTreeSet<usize>,
}

impl Deck {
    /// A deck of `words` (not empty).
    pub fn new(words: Vec<String>) -> Deck {
        Deck { words, offered: BTreeSet::new() }
    }

    /// Up to [`CHOICES`] different words not offered yet in this game (all words are fresh
    /// again once every one has been offered).
    pub fn deal(&mut self, rng: &mut impl Rng) -> Vec<String> {
        let want = CHOICES.min(self.words.len());
        if self.words.len() - self.offered.len() < want {
            self.offered.clear();
        }
        let fresh: Vec<usize> = (0..self.words.len()).filter(|i| !self.offered.contains(i)).collect();
        let picked: Vec<usize> = fresh.choose_multiple(rng, want).copied().collect();
        self.offered.extend(&picked);
        picked.into_iter().map(|i| self.words[i].clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use serde_json::json;

    #[test]
    fn the_built_in_lists_are_a_few_hundred_distinct_nouns() {
        for name in ["en", "ko"] {
            let list = builtin(name).unwrap();
            assert!(list.len() >= 200, "{name}: {}", list.len());
            let distinct: BTreeSet<String> = list.iter().map(|w| normalize(w)).collect();
            assert_eq!(distinct.len(), list.len(), "{name} has duplicates");
            // A word of one character would show up inside too much ordinary text.
            assert!(list.iter().all(|w| w.chars().count() >= 2), "{name}");
        }
        assert!(builtin("en").unwrap().iter().all(|w| w.chars().count() >= 3));
        assert!(builtin("ko").unwrap().iter().all(|w| w.chars().all(|c| ('가'..='힣').contains(&c))));
    }

    #[test]
    fn settings_name_a_list_or_give_one() {
        assert_eq!(from_setting(None).unwrap(), builtin("en").unwrap());
        assert_eq!(from_setting(Some(&json!("ko"))).unwrap(), builtin("ko").unwrap());
        assert_eq!(from_setting(Some(&json!([" cat ", "CAT", "dog"]))).unwrap(), vec!["cat", "dog"]);
        for bad in [json!("fr"), json!([]), json!([3]), json!([""]), json!(["a\u{7}"]), json!(5), json!({"a": 1})] {
            let err = from_setting(Some(&bad)).unwrap_err();
            assert!(matches!(&err, GameError::BadField(m) if m.starts_with("words")), "{bad}: {err:?}");
        }
    }

    #[test]
    fn deals_three_fresh_words_until_the_list_runs_out() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut deck = Deck::new((0..7).map(|i| format!("w{i}")).collect());
        let a = deck.deal(&mut rng);
        let b = deck.deal(&mut rng);
        assert_eq!(a.len(), 3);
        let both: BTreeSet<&String> = a.iter().chain(&b).collect();
        assert_eq!(both.len(), 6, "nothing offered twice: {a:?} {b:?}");
        assert_eq!(deck.deal(&mut rng).len(), 3, "the list starts over");
        assert_eq!(Deck::new(vec!["solo".into()]).deal(&mut rng), vec!["solo"]);
    }
}
