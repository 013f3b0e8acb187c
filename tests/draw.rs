//! The drawing game over the real server's WebSocket (docs/PROTOCOL.md, "Drawing rooms"): a
//! drawer and 30 guessers. Every guesser's relayed strokes equal what the drawer sent, in
//! order; a late joiner's `welcome.board` rebuilds the same picture, undo and clear applied; a
//! guesser who tries the drawer's commands, oversized or out-of-range strokes and a flood of
//! guesses gets errors and relays nothing, and the game goes on. The drawer sends a stroke
//! every 50 ms (the page's pace) and never meets `rate_limited`.

use crate::support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{server_with, Ws};

const GUESSERS: usize = 30;
/// Strokes the drawer sends, one every 50 ms: 6 s of drawing.
const STROKES: usize = 120;

/// Join `room` with a join message of our own; returns the welcome (and skips the
/// `media_state` after it).
async fn join(ws: &mut Ws, join: Value) -> Value {
    ws.send(join).await;
    let welcome = ws.expect("welcome").await;
    ws.expect("media_state").await;
    welcome
}

/// What the drawer sends at step `i`: mostly strokes (a new stroke every 5), an undo now and
/// then, one clear.
fn drawer_message(i: usize) -> Value {
    match i {
        i if i == STROKES / 3 => json!({"type": "clear"}),
        i if i % 17 == 16 => json!({"type": "undo"}),
        i => {
            let points: Vec<[u32; 2]> =
                (0..8).map(|k| [((i * 83 + k * 31) % 10_001) as u32, ((i * 47 + k * 59) % 10_001) as u32]).collect();
            let color = ["#ff0000", "#00aa00", "#123abc"][(i / 5) % 3];
            json!({"type": "stroke", "id": i / 5, "color": color, "width": 20 + (i / 5) % 4 * 10, "points": points})
        }
    }
}

/// The picture the drawer's messages leave, worked out here from the contract: batches with
/// the stroke's id continue it, undo drops the last stroke, clear drops all.
fn picture(messages: &[Value]) -> Vec<Value> {
    let mut strokes: Vec<Value> = Vec::new();
    for m in messages {
        match m["type"].as_str() {
            Some("clear") => strokes.clear(),
            Some("undo") => {
                strokes.pop();
            }
            _ => match strokes.last_mut().filter(|s| s["id"] == m["id"]) {
                Some(last) => {
                    let more = m["points"].as_array().unwrap().clone();
                    last["points"].as_array_mut().unwrap().extend(more);
                }
                None => {
                    let mut s = m.clone();
                    s.as_object_mut().unwrap().remove("type");
                    strokes.push(s);
                }
            },
        }
    }
    strokes
}

fn is_relay(v: &Value) -> bool {
    matches!(v["type"].as_str(), Some("stroke" | "undo" | "clear"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_guessers_see_every_stroke_a_late_joiner_the_picture_and_abuse_goes_nowhere() {
    let server = server_with(|_| {}).await;
    let mut drawer = Ws::connect(&server).await;
    let welcome = join(&mut drawer, json!({"type": "join", "room": "sketch", "name": "Drew", "kind": "draw"})).await;
    assert_eq!(welcome["kind"], "draw", "{welcome}");
    let mut guessers = Vec::new();
    for i in 0..GUESSERS {
        let mut ws = Ws::connect(&server).await;
        let w = join(&mut ws, json!({"type": "join", "room": "sketch", "name": format!("G{i}")})).await;
        guessers.push((w["id"].as_str().unwrap().to_owned(), ws));
    }
    let mut mallory = Ws::connect(&server).await;
    let mallory_id =
        join(&mut mallory, json!({"type": "join", "room": "sketch", "name": "Mallory"})).await["id"].clone();

    drawer.send(json!({"type": "start_game", "settings": {"drawer": "host", "rounds": 1}})).await;
    let choices = drawer.expect("word_choices").await;
    assert_eq!(choices["words"].as_array().unwrap().len(), 3, "{choices}");
    drawer.send(json!({"type": "choose_word", "index": 1})).await;
    let word = drawer.expect("word").await["word"].as_str().unwrap().to_owned();
    assert_eq!(word, choices["words"][1].as_str().unwrap());
    let phase = mallory.expect("phase").await;
    assert_eq!(phase["phase"], "choosing", "{phase}");
    let phase = mallory.expect("phase").await;
    assert_eq!((phase["phase"].as_str(), phase["drawer"].as_str()), (Some("drawing"), welcome["id"].as_str()));

    // Mallory tries the drawer's commands and bad strokes: errors, in order.
    let big = vec![[0u32, 0u32]; 10_000];
    for (bad, want) in [
        (json!({"type": "stroke", "id": 1, "color": "#000000", "width": 10, "points": [[1, 1]]}), "not_allowed"),
        (json!({"type": "clear"}), "not_allowed"),
        (json!({"type": "undo"}), "not_allowed"),
        (json!({"type": "choose_word", "index": 0}), "wrong_phase"),
        (json!({"type": "stroke", "id": 1, "color": "#000000", "width": 10, "points": big}), "not_allowed"),
        (json!({"type": "stroke", "id": 1, "color": "#000000", "width": 10, "points": [[10_001, 1]]}), "not_allowed"),
        (json!({"type": "stroke", "id": 1, "color": "#000000", "width": 10, "points": [[-1, 1]]}), "bad_field"),
    ] {
        mallory.send(bad.clone()).await;
        let err = mallory.expect("error").await;
        assert_eq!(err["code"], want, "{} → {err}", bad["type"]);
    }
    // A flood of guesses: the first few are shown as chat, the rest refused.
    for i in 0..30 {
        mallory.send(json!({"type": "guess", "text": format!("zz{i}")})).await;
    }
    let mut limited = 0;
    while limited == 0 {
        let v = mallory.json().await;
        if v["type"] == "error" {
            assert_eq!(v["code"], "rate_limited", "{v}");
            limited += 1;
        }
    }

    // Every guesser reads until it has every relayed message, then guesses.
    let sent: Vec<Value> = (0..STROKES).map(drawer_message).collect();
    let relayed_count = sent.len();
    let mut readers = Vec::new();
    for (id, mut ws) in guessers {
        let word = word.clone();
        readers.push(tokio::spawn(async move {
            let mut relayed = Vec::new();
            let mut chats_from_others = Vec::new();
            while relayed.len() < relayed_count {
                let v = ws.json().await;
                if is_relay(&v) {
                    relayed.push(v);
                } else if v["type"] == "chat" {
                    chats_from_others.push(v);
                } else {
                    assert_ne!(v["type"], "error", "{id}: {v}");
                }
            }
            ws.send(json!({"type": "guess", "text": word.to_uppercase()})).await;
            let mine = loop {
                let v = ws.expect("guessed").await;
                if v["id"] == id.as_str() {
                    break v;
                }
            };
            (id, relayed, chats_from_others, mine)
        }));
    }

    // The drawer: one message every 50 ms, the page's pace, and a ping now and then.
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    for (i, m) in sent.iter().enumerate() {
        tick.tick().await;
        drawer.send(m.clone()).await;
        if i % 20 == 0 {
            drawer.send(json!({"type": "ping", "t": i})).await;
        }
    }

    // A late joiner, after the last stroke (the room handles the drawer's messages before
    // the join that follows them): the same picture.
    drawer.send(json!({"type": "ping", "t": 0.5})).await;
    loop {
        let v = drawer.json().await;
        assert_ne!(v["type"], "error", "the drawer was refused: {v}");
        if v["type"] == "pong" && v["t"] == 0.5 {
            break;
        }
    }
    let mut late = Ws::connect(&server).await;
    let late_welcome = join(&mut late, json!({"type": "join", "room": "sketch", "name": "Late"})).await;
    let expected = picture(&sent);
    assert!(!expected.is_empty());
    assert_eq!(late_welcome["board"]["strokes"], json!(expected), "the late joiner's board");
    assert!(!late_welcome.to_string().contains(&word), "the word stays secret: {late_welcome}");
    assert_eq!(late_welcome["game"]["phase"], "drawing");

    let mut ranks = Vec::new();
    for reader in readers {
        let (id, relayed, chats, mine) = reader.await.unwrap();
        assert_eq!(relayed, sent, "{id}: the relayed messages, in order");
        assert!(chats.iter().all(|c| c["from"] != id.as_str()), "{id}");
        let shown = chats.iter().filter(|c| c["text"].as_str().unwrap_or("").starts_with("zz")).count();
        assert!((1..=5).contains(&shown), "{id}: Mallory's flood shows its first few only, not {shown}");
        assert!(mine["points"].as_u64().unwrap() >= 50, "{id}: {mine}");
        ranks.push(mine["rank"].as_u64().unwrap());
    }
    ranks.sort();
    assert_eq!(ranks, (1..=GUESSERS as u64).collect::<Vec<_>>(), "one rank each, in arrival order");
    // The 30 guessed; Mallory and Late have not, so the drawing goes on and Mallory, refused
    // so often, can still guess right.
    mallory.send(json!({"type": "guess", "text": format!(" {word} ")})).await;
    let guessed = loop {
        let v = mallory.expect("guessed").await;
        if v["id"] == mallory_id {
            break v;
        }
    };
    assert_eq!(guessed["rank"], GUESSERS as u64 + 1, "{guessed}");

    // The drawer never met rate_limited (nor any error).
    drawer.send(json!({"type": "chat", "channel": "all", "text": "done"})).await;
    loop {
        let v = drawer.json().await;
        assert_ne!(v["type"], "error", "the drawer was refused: {v}");
        if v["type"] == "chat" && v["text"] == "done" {
            break;
        }
    }
}
