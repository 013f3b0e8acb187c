//! Comparing a guess with the word: trimmed, Unicode NFC (so Hangul typed as separate jamo
//! matches the composed syllables), case-insensitive, and full-width Latin letters, digits
//! and spaces equal to their ASCII forms. Runs of spaces count as one.

use unicode_normalization::UnicodeNormalization;

/// The form both sides are compared in.
pub fn normalize(text: &str) -> String {
    let composed: String = text.trim().nfc().collect();
    let mut out = String::with_capacity(composed.len());
    let mut space = false;
    for c in composed.chars().map(narrow) {
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        out.extend(c.to_lowercase());
    }
    out
}

/// A full-width form (U+FF01..U+FF5E, and the ideographic space) as its ASCII character.
fn narrow(c: char) -> char {
    match c {
        '\u{3000}' => ' ',
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        _ => c,
    }
}

/// How a guess compares with the word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The word.
    Right,
    /// One edit (insert, delete or replace a character) away, or holding the word: it must
    /// not be shown to anyone, and the guesser is told it is close.
    Close,
    /// Neither: shown to everyone as chat.
    Wrong,
}

/// Judge `guess` against `word`, both as typed.
pub fn judge(guess: &str, word: &str) -> Verdict {
    let (g, w) = (normalize(guess), normalize(word));
    if g == w {
        return Verdict::Right;
    }
    // The raw check catches what normalizing could hide (a combining mark after the word).
    if g.contains(&w) || guess.contains(word) || one_edit(&g, &w) {
        return Verdict::Close;
    }
    Verdict::Wrong
}

/// Whether `text` (any text) gives the word away: holds it, raw or normalized.
pub fn reveals(text: &str, word: &str) -> bool {
    text.contains(word) || normalize(text).contains(&normalize(word))
}

/// Whether `a` and `b` differ by exactly one inserted, deleted or replaced character.
fn one_edit(a: &str, b: &str) -> bool {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let (short, long) = if a.len() <= b.len() { (&a, &b) } else { (&b, &a) };
    match long.len() - short.len() {
        0 => short.iter().zip(long.iter()).filter(|(x, y)| x != y).count() == 1,
        1 => {
            // Skip the first mismatch in the longer one; the rest must agree.
            let split = short.iter().zip(long.iter()).take_while(|(x, y)| x == y).count();
            short[split..] == long[split + 1..]
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimmed_case_and_width_insensitive() {
        assert_eq!(judge("  Apple ", "apple"), Verdict::Right);
        assert_eq!(judge("ＡＰＰＬＥ", "apple"), Verdict::Right, "full-width letters");
        assert_eq!(judge("ice\u{3000}  cream", "Ice Cream"), Verdict::Right, "spaces of any width, any run");
        assert_eq!(judge("banana", "apple"), Verdict::Wrong);
        assert_eq!(judge("", "apple"), Verdict::Wrong);
    }

    #[test]
    fn hangul_composed_from_jamo_matches() {
        // 사과 typed as conjoining jamo: ᄉ ᅡ ᄀ ᅪ.
        let jamo = "\u{1109}\u{1161}\u{1100}\u{116A}";
        assert_ne!(jamo, "사과");
        assert_eq!(judge(jamo, "사과"), Verdict::Right);
        assert_eq!(judge("사과", jamo), Verdict::Right);
        assert_eq!(judge("사고", "사과"), Verdict::Close, "one syllable replaced");
        assert_eq!(judge("바나나", "사과"), Verdict::Wrong);
    }

    #[test]
    fn one_edit_away_or_holding_the_word_is_close() {
        assert_eq!(judge("aple", "apple"), Verdict::Close, "deleted");
        assert_eq!(judge("appple", "apple"), Verdict::Close, "inserted");
        assert_eq!(judge("apply", "apple"), Verdict::Close, "replaced");
        assert_eq!(judge("Xapple", "apple"), Verdict::Close, "inserted first");
        assert_eq!(judge("an apple pie", "apple"), Verdict::Close, "holds the word");
        assert_eq!(judge("cafe\u{301}", "cafe"), Verdict::Close, "holds it before a combining mark");
        assert_eq!(judge("apxlx", "apple"), Verdict::Wrong, "two edits");
        assert_eq!(judge("ap", "apple"), Verdict::Wrong);
    }

    #[test]
    fn what_reveals_the_word() {
        assert!(reveals("it is an APPLE!", "apple"));
        assert!(reveals("ａｐｐｌｅ", "apple"));
        assert!(!reveals("a p p l e", "apple"));
    }
}
