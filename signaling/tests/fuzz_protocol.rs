//! A seeded fuzz of the protocol parser: whatever a client sends, `parse_client` returns a
//! typed message or a refusal with one of the documented codes — it never panics, and a
//! message it accepts survives a round trip.

use parlor_signaling::protocol::{parse_client, Parsed, MAX_FRAME_BYTES};
use parlor_signaling::ErrorCode;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const TYPES: &[&str] = &[
    "join",
    "offer",
    "answer",
    "candidate",
    "ping",
    "leave",
    "chat",
    "ready",
    "start_game",
    "call_vote",
    "vote",
    "night_action",
    "kick",
    "JOIN",
    "",
    "phase",
    "welcome",
];
const FIELDS: &[&str] = &[
    "type",
    "room",
    "name",
    "resume",
    "token",
    "pin",
    "sdp",
    "candidate",
    "sdp_mid",
    "sdp_mline_index",
    "t",
    "channel",
    "text",
    "ready",
    "settings",
    "target",
    "verdict",
    "id",
    "mafia",
    "phase_seconds",
    "host_plays",
];

fn random_value(rng: &mut StdRng, depth: u32) -> Value {
    match rng.random_range(0..if depth > 2 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.random::<bool>()),
        2 => json!(rng.random::<i64>()),
        3 => json!(rng.random::<f64>() * 1e6),
        4 => json!(["guilty", "innocent", "all", "mafia", "dead", "x", "", "🎭"][rng.random_range(0..8)]),
        5 => json!((0..rng.random_range(0..40)).map(|_| rng.random_range(0x20u8..0x7f) as char).collect::<String>()),
        6 => Value::Array((0..rng.random_range(0..4)).map(|_| random_value(rng, depth + 1)).collect()),
        _ => random_object(rng, depth + 1),
    }
}

fn random_object(rng: &mut StdRng, depth: u32) -> Value {
    let mut obj = serde_json::Map::new();
    if rng.random_bool(0.9) {
        obj.insert("type".into(), json!(TYPES[rng.random_range(0..TYPES.len())]));
    }
    for _ in 0..rng.random_range(0..6) {
        obj.insert(FIELDS[rng.random_range(0..FIELDS.len())].into(), random_value(rng, depth));
    }
    Value::Object(obj)
}

fn check(text: &str) {
    match parse_client(text) {
        Ok(Parsed::Room(msg)) => {
            // Accepted messages are well-formed: they serialize and parse back to themselves.
            let again = serde_json::to_string(&msg).expect("serializes");
            let back = parse_client(&again).expect("re-parses");
            assert_eq!(back, Parsed::Room(msg), "{text}");
        }
        Ok(Parsed::Game { ty, value }) => {
            // Handed to the room's game whole: an object whose `type` is the one named, a
            // plausible name that no room-level message has.
            assert_eq!(value["type"], ty.as_str(), "{text}");
            assert!(!ty.is_empty() && ty.len() <= 32 && ty.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            assert!(!parlor_signaling::protocol::CLIENT_TYPES.contains(&ty.as_str()));
        }
        Err(refusal) => {
            assert!(
                matches!(
                    refusal.code,
                    ErrorCode::BadJson | ErrorCode::UnknownType | ErrorCode::BadField | ErrorCode::TooLarge
                ),
                "{text}: {refusal:?}"
            );
            assert!(!refusal.message.is_empty());
        }
    }
}

#[test]
fn random_frames_never_panic_and_get_documented_codes() {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut accepted = 0;
    for i in 0..20_000 {
        let text = match i % 4 {
            // Structured: plausible objects with random fields.
            0 | 1 => random_object(&mut rng, 0).to_string(),
            // Mutated: a valid message with bytes flipped, cut or duplicated.
            2 => {
                let base = random_object(&mut rng, 0).to_string();
                let mut bytes = base.into_bytes();
                for _ in 0..rng.random_range(1..4) {
                    if bytes.is_empty() {
                        break;
                    }
                    let at = rng.random_range(0..bytes.len());
                    match rng.random_range(0..3) {
                        0 => bytes[at] = rng.random_range(0x20..0x7f),
                        1 => bytes.truncate(at),
                        _ => {
                            let copy = bytes[at..].to_vec();
                            bytes.extend_from_slice(&copy);
                        }
                    }
                }
                String::from_utf8_lossy(&bytes).into_owned()
            }
            // Raw noise, including invalid UTF-8 turned into replacement characters.
            _ => {
                let len = rng.random_range(0..200);
                let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                String::from_utf8_lossy(&bytes).into_owned()
            }
        };
        if matches!(parse_client(&text), Ok(Parsed::Room(_))) {
            accepted += 1;
        }
        check(&text);
    }
    // The generator does reach the typed messages, not only the error paths.
    assert!(accepted > 500, "only {accepted} frames parsed");
}

#[test]
fn deep_nesting_and_huge_frames_are_refused_cleanly() {
    let deep = "[".repeat(100_000);
    assert_eq!(parse_client(&deep).unwrap_err().code, ErrorCode::TooLarge);
    let nested = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
    assert_eq!(parse_client(&nested).unwrap_err().code, ErrorCode::BadJson);
    let big = json!({"type": "chat", "channel": "all", "text": "x".repeat(MAX_FRAME_BYTES)}).to_string();
    assert_eq!(parse_client(&big).unwrap_err().code, ErrorCode::TooLarge);
}
