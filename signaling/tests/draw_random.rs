//! Random drawing games: seeded random participants join, leave, resume, chat, guess (wrong,
//! close, right, the word dressed up in case, width, spaces and other words), draw when they
//! may not, and let timers fire at random times. After every step:
//!
//! - from the moment the drawer chooses a word until the `reveal` message, no message that
//!   reaches anyone but the drawer contains the word as a substring, in any field (the JSON
//!   text as the wire carries it, compared raw and lower-cased), and neither does the
//!   `welcome` catch-up of anyone but the drawer;
//! - strokes reach everyone but the drawer; nothing panics.
//!
//! Deterministic: the seeds are fixed, and time is synthetic.

mod draw_table;

use draw_table::Table;
use parlor_signaling::game::draw::words;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;

const GAMES: u64 = 120;
const STEPS: usize = 400;
const POOL: usize = 9;

/// The word as typed by someone who knows it, more or less.
fn dressed(word: &str, rng: &mut StdRng) -> String {
    let wide: String = word
        .chars()
        .map(|c| if c.is_ascii_graphic() { char::from_u32(c as u32 + 0xFEE0).unwrap_or(c) } else { c })
        .collect();
    match rng.random_range(0..7) {
        0 => word.to_owned(),
        1 => word.to_uppercase(),
        2 => format!("  {word} "),
        3 => wide,
        4 => format!("is it {word}?"),
        5 => format!("{word}s"),
        _ => word.chars().skip(1).collect(),
    }
}

fn leaks(text: &str, word: &str) -> bool {
    text.contains(word) || text.to_lowercase().contains(&word.to_lowercase())
}

#[test]
fn the_word_reaches_nobody_but_the_drawer_before_the_reveal() {
    let mut checked = 0usize;
    let mut turns = 0usize;
    for seed in 0..GAMES {
        let mut rng = StdRng::seed_from_u64(seed);
        let list = if seed % 3 == 0 { "ko" } else { "en" };
        let vocabulary = words::builtin(list).unwrap();
        let mut t = Table::new(seed);
        let pool: Vec<String> = (0..POOL).map(|i| format!("p{i}")).collect();
        for id in &pool[..3] {
            t.join(id);
        }
        let mut next_id = POOL;
        let mut present: Vec<String> = pool[..3].to_vec();
        // The secret of the current turn and where in the log its secrecy began.
        let mut secret: Option<(String, String)> = None;
        let mut scanned = 0;
        let mut stroke_id = 0u32;
        for _ in 0..STEPS {
            let who = present.choose(&mut rng).cloned().unwrap_or_else(|| pool[0].clone());
            let word = t.drawer().and_then(|d| t.last(&d, "word")).map(|w| w["word"].as_str().unwrap().to_owned());
            match rng.random_range(0..100) {
                0..=4 if present.len() < 12 => {
                    let id = format!("p{next_id}");
                    next_id += 1;
                    t.join(&id);
                    present.push(id);
                }
                5..=7 if present.len() > 1 => {
                    t.leave(&who);
                    present.retain(|p| *p != who);
                }
                8..=12 => {
                    let host = t.driver.roster().host().map(str::to_owned);
                    let settings = match rng.random_range(0..3) {
                        0 => json!({"rounds": 1, "words": list}),
                        1 => json!({"drawer": "host", "rounds": 2, "words": list}),
                        _ => json!({"words": ["cat", "cats", "catalog", "dog"], "rounds": 1}),
                    };
                    let _ = t.start(host.as_deref().unwrap_or(&who), settings);
                }
                13..=20 => {
                    let _ = t.send(&who, json!({"type": "choose_word", "index": rng.random_range(0..4)}));
                }
                21..=45 => {
                    let text = match (&word, rng.random_range(0..3)) {
                        (Some(w), 0) => dressed(w, &mut rng),
                        _ => vocabulary.choose(&mut rng).unwrap().clone(),
                    };
                    let _ = t.send(&who, json!({"type": "guess", "text": text}));
                }
                46..=60 => {
                    let text = match (&word, rng.random_range(0..2)) {
                        (Some(w), 0) => dressed(w, &mut rng),
                        _ => format!("hi {}", vocabulary.choose(&mut rng).unwrap()),
                    };
                    let _ = t.chat(&who, &text);
                }
                61..=75 => {
                    let drawer = t.drawer().unwrap_or_else(|| who.clone());
                    let by = if rng.random_bool(0.8) { drawer } else { who.clone() };
                    if rng.random_bool(0.3) {
                        stroke_id += 1;
                    }
                    let n = rng.random_range(1..6);
                    let points: Vec<[u32; 2]> =
                        (0..n).map(|_| [rng.random_range(0..=10_000), rng.random_range(0..=10_000)]).collect();
                    let before = t.log.len();
                    let sent = t.send(
                        &by,
                        json!({"type": "stroke", "id": stroke_id, "color": "#112233", "width": 20, "points": points}),
                    );
                    if sent.is_ok() {
                        let relayed: Vec<_> = t.log[before..].iter().filter(|d| d.msg["type"] == "stroke").collect();
                        assert_eq!(relayed.len(), 1, "seed {seed}");
                        let mut everyone_else: Vec<String> =
                            t.driver.roster().ids().filter(|i| **i != by).cloned().collect();
                        everyone_else.sort();
                        let mut to = relayed[0].to.clone();
                        to.sort();
                        assert_eq!(to, everyone_else, "seed {seed}");
                    }
                }
                76..=79 => {
                    let _ = t.send(&who, json!({"type": if rng.random_bool(0.5) { "undo" } else { "clear" }}));
                }
                _ => {
                    let ms = [100, 1_000, 5_000, 20_000, 60_000].choose(&mut rng).copied().unwrap();
                    t.advance(ms);
                }
            }

            // A turn's secret begins with its `word` message and ends with its `reveal`.
            for d in t.log[scanned..].iter().cloned() {
                if d.msg["type"] == "word" {
                    let drawer = d.to[0].clone();
                    secret = Some((d.msg["word"].as_str().unwrap().to_owned(), drawer));
                    turns += 1;
                    continue;
                }
                let Some((word, drawer)) = &secret else { continue };
                if d.msg["type"] == "reveal" || (d.msg["type"] == "phase" && d.msg["phase"] != "drawing") {
                    assert!(
                        d.msg["type"] != "phase" || d.msg["phase"] == "reveal" || d.msg["phase"] == "game_over",
                        "seed {seed}: {}",
                        d.msg
                    );
                    if d.msg["type"] == "reveal" || d.msg["phase"] == "game_over" {
                        secret = None;
                    }
                    continue;
                }
                let text = d.msg.to_string();
                for to in d.to.iter().filter(|to| *to != drawer) {
                    assert!(!leaks(&text, word), "seed {seed}: {word:?} reached {to}: {text}");
                    checked += 1;
                }
            }
            scanned = t.log.len();
            if let Some((word, drawer)) = &secret {
                for id in t.driver.roster().ids().filter(|id| *id != drawer) {
                    let view = t.catch_up(id, true).to_string();
                    assert!(!leaks(&view, word), "seed {seed}: {id}'s welcome holds {word:?}: {view}");
                }
            }
        }
    }
    println!("{turns} turns, {checked} deliveries checked");
    assert!(turns > 100 && checked > 10_000, "the games got going: {turns} turns, {checked} checked");
}
