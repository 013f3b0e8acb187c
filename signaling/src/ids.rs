//! Identifiers, codes and names: how they are made and what is accepted.

use rand::Rng;

const ID_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";

/// Whether `s` is a valid participant id or room code: `[A-Za-z0-9-]{1,32}`.
pub fn is_valid_code(s: &str) -> bool {
    (1..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A fresh participant id (10 characters from an unambiguous alphabet).
pub fn new_participant_id() -> String {
    let mut rng = rand::rng();
    (0..10).map(|_| ID_ALPHABET[rng.random_range(0..ID_ALPHABET.len())] as char).collect()
}

/// Letters of server-made room codes: lower case, without `i`, `l` and `o` (read as 1 and 0).
const CODE_LETTERS: &[u8] = b"abcdefghjkmnpqrstuvwxyz";
/// Digits of server-made room codes: without `0` and `1`.
const CODE_DIGITS: &[u8] = b"23456789";

/// A fresh room code such as `kfzr-wdhx-47`: 8 letters of 23 and 2 digits of 8, about 42
/// random bits, so codes cannot be found by guessing (lookups are also rate-limited); no
/// character can be mistaken for another.
pub fn new_room_code() -> String {
    let mut rng = rand::rng();
    let mut letter = || CODE_LETTERS[rng.random_range(0..CODE_LETTERS.len())] as char;
    let a: String = (0..4).map(|_| letter()).collect();
    let b: String = (0..4).map(|_| letter()).collect();
    let d: String = (0..2).map(|_| CODE_DIGITS[rand::rng().random_range(0..CODE_DIGITS.len())] as char).collect();
    format!("{a}-{b}-{d}")
}

/// A fresh secret token: 128 random bits as 32 hex characters.
pub fn new_token() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compare two secrets in time that depends only on their lengths, not on where they differ
/// (`subtle` keeps the optimizer from turning the comparison into an early exit).
pub fn same_secret(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Check and normalise a display name: trimmed, 1–24 characters, no control characters.
pub fn clean_name(name: &str) -> Result<String, &'static str> {
    let name = name.trim();
    if name.is_empty() {
        return Err("name must not be empty");
    }
    if name.chars().count() > 24 {
        return Err("name must be at most 24 characters");
    }
    if name.chars().any(char::is_control) {
        return Err("name must not contain control characters");
    }
    Ok(name.to_owned())
}

/// Longest chat message, in characters.
pub const MAX_CHAT_CHARS: usize = 500;

/// Check a chat message: trimmed, 1–500 characters, no control characters but newlines.
pub fn clean_chat(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("must not be empty".into());
    }
    if text.chars().count() > MAX_CHAT_CHARS {
        return Err(format!("must be at most {MAX_CHAT_CHARS} characters"));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err("must not contain control characters".into());
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert!(is_valid_code("demo"));
        assert!(is_valid_code("A-9"));
        assert!(is_valid_code(&"a".repeat(32)));
        assert!(!is_valid_code(""));
        assert!(!is_valid_code(&"a".repeat(33)));
        assert!(!is_valid_code("a b"));
        assert!(!is_valid_code("ä"));
        assert!(!is_valid_code("a/b"));
    }

    #[test]
    fn ids_and_tokens_are_valid_and_distinct() {
        let a = new_participant_id();
        assert!(is_valid_code(&a));
        assert_ne!(a, new_participant_id());
        let t = new_token();
        assert_eq!(t.len(), 32);
        assert_ne!(t, new_token());
    }

    #[test]
    fn room_codes_are_unambiguous() {
        for _ in 0..200 {
            let c = new_room_code();
            assert!(is_valid_code(&c), "{c}");
            assert_eq!(c.len(), 12, "{c}");
            assert!(!c.contains(['0', '1', 'o', 'i', 'l', 'O', 'I']), "{c}");
        }
        assert_ne!(new_room_code(), new_room_code());
    }

    #[test]
    fn secrets() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert!(same_secret("", ""));
    }

    #[test]
    fn chat_text() {
        assert_eq!(clean_chat(" hi\nthere ").unwrap(), "hi\nthere");
        assert!(clean_chat("").is_err());
        assert!(clean_chat(&"x".repeat(501)).is_err());
        assert!(clean_chat(&"x".repeat(500)).is_ok());
        assert!(clean_chat("a\u{1b}[31m").is_err());
    }

    #[test]
    fn names() {
        assert_eq!(clean_name("  Ann  ").unwrap(), "Ann");
        assert_eq!(clean_name("Zoë 🎭").unwrap(), "Zoë 🎭");
        assert!(clean_name("   ").is_err());
        assert!(clean_name(&"x".repeat(25)).is_err());
        assert!(clean_name(&"é".repeat(24)).is_ok());
        assert!(clean_name("a\u{7}b").is_err());
        assert!(clean_name("a\nb").is_err());
    }
}
