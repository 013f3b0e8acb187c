//! The drawing game on synthetic time (docs/PROTOCOL.md, "Drawing rooms"): whole games in
//! `rotate` and `host` mode, ranking and points, the early end, departures, resumes, and what
//! the drawer and the guessers may and may not do.

mod draw_table;

use draw_table::{code, Table};
use parlor_signaling::game::draw::score;
use parlor_signaling::game::MediaKind;
use serde_json::{json, Value};

const DRAWING: u64 = 80_000;

/// Every guesser present guesses right, in the order given, 1 s apart.
fn all_guess(t: &mut Table, guessers: &[&str]) {
    let word = t.word();
    for g in guessers {
        t.advance(1000);
        t.send(g, json!({"type": "guess", "text": word})).unwrap();
    }
}

fn scores(v: &Value) -> Vec<(String, u64)> {
    v["scores"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap())).collect()
}

#[test]
fn a_whole_game_in_rotate_mode() {
    let ids = ["a", "b", "c"];
    let mut t = Table::with(&ids);
    t.start("a", json!({"rounds": 2})).unwrap();
    let mut drawers = Vec::new();
    let mut expected: std::collections::BTreeMap<String, u64> = ids.iter().map(|i| (i.to_string(), 0)).collect();
    for turn in 0..6 {
        assert_eq!(t.phase(), "choosing", "turn {turn}");
        let drawer = t.drawer().unwrap();
        drawers.push(drawer.clone());
        let phase = t.last("b", "phase").unwrap();
        assert_eq!((phase["round"].as_u64(), phase["rounds"].as_u64()), (Some(turn / 3 + 1), Some(2)), "{phase}");
        assert_eq!(t.choices().len(), 3);
        let pick = t.choices()[2].clone();
        t.send(&drawer, json!({"type": "choose_word", "index": 2})).unwrap();
        assert_eq!(t.phase(), "drawing");
        assert_eq!(t.word(), pick);
        let guessers: Vec<&str> = ids.iter().copied().filter(|g| *g != drawer).collect();
        let start = t.now;
        all_guess(&mut t, &guessers);
        // Everyone guessed: the drawing ends early, the word is revealed to all.
        assert_eq!(t.phase(), "reveal", "turn {turn}");
        let reveal = t.last("a", "reveal").unwrap();
        assert_eq!(reveal["word"], pick.as_str());
        for (i, g) in guessers.iter().enumerate() {
            let left = DRAWING - (t.now - start).min(DRAWING) + (guessers.len() - 1 - i) as u64 * 1000;
            *expected.get_mut(*g).unwrap() += u64::from(score::guess_points(i as u32 + 1, left, DRAWING));
        }
        *expected.get_mut(&drawer).unwrap() += u64::from(score::drawer_points(2, 2));
        assert_eq!(scores(&reveal), expected.clone().into_iter().collect::<Vec<_>>(), "turn {turn}");
        t.next_timer();
    }
    assert_eq!(drawers, ["a", "b", "c", "a", "b", "c"], "presence order, twice");
    assert_eq!(t.phase(), "game_over");
    let over = t.last("c", "game_over").unwrap();
    assert_eq!(scores(&over), expected.into_iter().collect::<Vec<_>>());
    t.next_timer();
    assert_eq!(t.phase(), "lobby");
    // And again, from the lobby.
    t.start("a", json!({})).unwrap();
    assert_eq!(t.phase(), "choosing");
}

#[test]
fn a_tv_view_neither_draws_nor_holds_the_drawing_open() {
    let mut t = Table::with(&["a", "b"]);
    t.join_named("tv", "TV k3x9");
    t.start("a", json!({"rounds": 1})).unwrap();
    let mut drawers = Vec::new();
    while t.phase() == "choosing" {
        let drawer = t.drawer().unwrap();
        drawers.push(drawer.clone());
        t.send(&drawer, json!({"type": "choose_word", "index": 0})).unwrap();
        let guesser = if drawer == "a" { "b" } else { "a" };
        all_guess(&mut t, &[guesser]);
        // The one person guessing is everyone: the screen does not count.
        assert_eq!(t.phase(), "reveal", "{drawer}'s turn ends once {guesser} guessed");
        t.next_timer();
    }
    assert_eq!(drawers, ["a", "b"], "the TV view never draws");
    assert_eq!(t.phase(), "game_over");
    // One person and a TV view are not the two a game needs.
    let mut t = Table::with(&["a"]);
    t.join_named("tv", "TV k3x9");
    assert_eq!(t.start("a", json!({})).map_err(|e| code(&e)), Err("not_allowed"));
}

#[test]
fn a_whole_game_in_host_mode_on_timers_alone() {
    let mut t = Table::with(&["h", "x", "y"]);
    t.start("h", json!({"drawer": "host", "rounds": 3, "words": "ko"})).unwrap();
    for turn in 1..=3 {
        assert_eq!((t.phase(), t.drawer()), ("choosing".into(), Some("h".into())), "turn {turn}");
        let first = t.choices()[0].clone();
        assert!(first.chars().all(|c| ('가'..='힣').contains(&c)), "{first}");
        // Nobody chooses: the first word after 15 s.
        t.next_timer();
        assert_eq!(t.phase(), "drawing");
        assert_eq!(t.word(), first);
        let since = t.now;
        // Hints at half and three quarters of the drawing; then the reveal at its end.
        let hints_before = t.all("x", "hint").len();
        t.advance(DRAWING - 1);
        assert_eq!(t.phase(), "drawing");
        assert!(t.all("x", "hint").len() > hints_before, "a hint at the start");
        t.advance(1);
        assert_eq!(t.phase(), "reveal");
        assert_eq!(t.now - since, DRAWING);
        assert_eq!(t.last("y", "reveal").unwrap()["word"], first.as_str());
        assert_eq!(t.last("y", "reveal").unwrap()["scores"]["h"], 0, "nobody guessed: nothing for the drawer");
        t.next_timer();
    }
    assert_eq!(t.phase(), "game_over");
}

#[test]
fn hints_reveal_letters_over_time_but_never_the_word() {
    let mut t = Table::with(&["a", "b"]);
    t.start("a", json!({"words": ["elephant"]})).unwrap();
    t.send("a", json!({"type": "choose_word", "index": 0})).unwrap();
    let patterns =
        |t: &Table| t.all("b", "hint").iter().map(|h| h["pattern"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert_eq!(patterns(&t), ["_ _ _ _ _ _ _ _"]);
    t.advance(DRAWING / 2 - 1);
    assert_eq!(patterns(&t).len(), 1);
    t.advance(1);
    t.advance(DRAWING / 4);
    let p = patterns(&t);
    assert_eq!(p.len(), 3, "{p:?}");
    assert_eq!(p[2].matches('_').count(), 6, "{p:?}");
    let shown: String = p[2].split(' ').filter(|c| *c != "_").collect();
    assert!(shown.chars().all(|c| "elephant".contains(c)), "{p:?}");
}

#[test]
fn ranking_follows_arrival_and_points_fall() {
    let mut t = Table::with(&["d", "g1", "g2", "g3", "g4"]);
    t.start("d", json!({})).unwrap();
    t.send("d", json!({"type": "choose_word", "index": 0})).unwrap();
    let word = t.word();
    let mut last = u64::MAX;
    for (i, g) in ["g3", "g1", "g4"].iter().enumerate() {
        t.advance(5_000);
        t.send(g, json!({"type": "guess", "text": format!("  {}  ", word.to_uppercase())})).unwrap();
        let guessed = t.last("g2", "guessed").unwrap();
        assert_eq!((guessed["id"].as_str(), guessed["rank"].as_u64()), (Some(*g), Some(i as u64 + 1)), "{guessed}");
        let points = guessed["points"].as_u64().unwrap();
        assert!(points < last, "{points} after {last}");
        last = points;
        assert!(guessed.get("text").is_none());
    }
    assert_eq!(t.phase(), "drawing", "g2 has not guessed");
    t.send("g2", json!({"type": "guess", "text": word})).unwrap();
    assert_eq!(t.phase(), "reveal");
    let reveal = t.last("d", "reveal").unwrap();
    assert_eq!(reveal["scores"]["d"], u64::from(score::drawer_points(4, 4)));
}

#[test]
fn the_drawer_leaving_reveals_the_word_and_the_game_goes_on() {
    let mut t = Table::with(&["a", "b", "c"]);
    t.start("a", json!({"rounds": 1})).unwrap();
    t.send("a", json!({"type": "choose_word", "index": 1})).unwrap();
    let word = t.word();
    t.send("a", json!({"type": "stroke", "id": 1, "color": "#000000", "width": 30, "points": [[1, 2]]})).unwrap();
    t.leave("a");
    assert_eq!(t.phase(), "reveal");
    let reveal = t.last("b", "reveal").unwrap();
    assert_eq!(reveal["word"], word.as_str());
    assert!(reveal["scores"].get("a").is_none(), "{reveal}");
    t.next_timer();
    assert_eq!((t.phase(), t.drawer()), ("choosing".into(), Some("b".into())));
    // A drawer who leaves while choosing: straight to the next turn.
    t.join("d");
    t.leave("b");
    assert_eq!((t.phase(), t.drawer()), ("choosing".into(), Some("c".into())));
    // Fewer than two: the game is over.
    t.leave("d");
    assert_eq!(t.phase(), "game_over");
}

#[test]
fn a_guesser_leaving_can_end_the_drawing() {
    let mut t = Table::with(&["a", "b", "c"]);
    t.start("a", json!({})).unwrap();
    t.send("a", json!({"type": "choose_word", "index": 0})).unwrap();
    let word = t.word();
    t.send("b", json!({"type": "guess", "text": word})).unwrap();
    assert_eq!(t.phase(), "drawing");
    t.leave("c");
    assert_eq!(t.phase(), "reveal", "everyone left has guessed");
    assert_eq!(t.last("a", "reveal").unwrap()["scores"].as_object().unwrap().len(), 2);
}

#[test]
fn a_resumed_guesser_gets_the_board_and_not_the_word_a_resumed_drawer_the_word() {
    let mut t = Table::with(&["a", "b", "c"]);
    t.start("a", json!({})).unwrap();
    let choices = t.choices();
    let drawer_view = t.catch_up("a", true);
    assert_eq!(drawer_view["word_choices"]["words"], json!(choices));
    let guesser_view = t.catch_up("b", true).to_string();
    assert!(choices.iter().all(|w| !guesser_view.contains(w.as_str())), "{guesser_view}");

    t.send("a", json!({"type": "choose_word", "index": 0})).unwrap();
    let word = t.word();
    for (id, pts) in [(1, vec![[0, 0], [100, 100]]), (1, vec![[200, 250]]), (2, vec![[5000, 5000]]), (3, vec![[9, 9]])]
    {
        t.send("a", json!({"type": "stroke", "id": id, "color": "#00AA00", "width": 50, "points": pts})).unwrap();
    }
    t.send("a", json!({"type": "undo"})).unwrap();
    t.send("c", json!({"type": "guess", "text": word})).unwrap();
    let b = t.catch_up("b", true);
    let strokes = b["board"]["strokes"].as_array().unwrap();
    assert_eq!(strokes.len(), 2, "{b}");
    assert_eq!(strokes[0]["points"], json!([[0, 0], [100, 100], [200, 250]]));
    assert_eq!(strokes[0]["color"], "#00aa00");
    assert_eq!(b["hint"]["pattern"].as_str().unwrap().matches('_').count(), word.chars().count());
    assert_eq!(b["guessed"][0]["id"], "c");
    assert!(b.get("word").is_none() && !b.to_string().contains(word.as_str()), "{b}");
    let joiner = {
        t.join("late");
        t.catch_up("late", false)
    };
    assert_eq!(joiner["board"], b["board"], "a late joiner sees the same drawing");
    assert!(!joiner.to_string().contains(word.as_str()));
    let a = t.catch_up("a", true);
    assert_eq!(a["word"]["word"], word.as_str());
    assert_eq!(a["board"], b["board"]);
    t.send("a", json!({"type": "clear"})).unwrap();
    assert_eq!(t.catch_up("late", true)["board"]["strokes"], json!([]));
}

#[test]
fn strokes_relay_to_everyone_but_the_drawer_and_only_from_the_drawer() {
    let mut t = Table::with(&["a", "b", "c"]);
    t.start("a", json!({})).unwrap();
    let stroke = json!({"type": "stroke", "id": 4, "color": "#123456", "width": 10, "points": [[1, 1], [2, 2]]});
    assert_eq!(code(&t.send("a", stroke.clone()).unwrap_err()), "wrong_phase", "not while choosing");
    assert_eq!(code(&t.send("b", json!({"type": "choose_word", "index": 0})).unwrap_err()), "not_allowed");
    assert_eq!(code(&t.send("a", json!({"type": "choose_word", "index": 3})).unwrap_err()), "bad_field");
    t.send("a", json!({"type": "choose_word", "index": 0})).unwrap();
    let relayed_before = t.log.len();
    t.send("a", stroke.clone()).unwrap();
    let relay = &t.log[relayed_before..];
    assert_eq!(relay.len(), 1);
    assert_eq!(relay[0].to, ["b", "c"]);
    assert_eq!(relay[0].msg, stroke);

    let n = t.log.len();
    for (who, v) in [
        ("b", stroke.clone()),
        ("b", json!({"type": "clear"})),
        ("b", json!({"type": "undo"})),
        ("a", json!({"type": "stroke", "id": 5, "color": "#123456", "width": 10, "points": vec![[0, 0]; 10_000]})),
        ("a", json!({"type": "stroke", "id": 5, "color": "#123456", "width": 10, "points": [[10_001, 0]]})),
        ("a", json!({"type": "stroke", "id": 5, "color": "blue", "width": 10, "points": [[1, 0]]})),
        ("a", json!({"type": "stroke", "id": 5, "color": "#123456", "width": 0, "points": [[1, 0]]})),
        ("a", json!({"type": "guess", "text": "anything"})),
    ] {
        let err = t.send(who, v.clone()).unwrap_err();
        let want = if who == "b" || v["type"] == "guess" { "not_allowed" } else { "bad_field" };
        assert_eq!(code(&err), want, "{who} {}", v["type"]);
    }
    assert_eq!(t.log.len(), n, "nothing relayed");
    assert_eq!(t.phase(), "drawing");
}

#[test]
fn guesses_close_wrong_and_flooded() {
    let mut t = Table::with(&["a", "b", "c"]);
    t.start("a", json!({"words": ["pumpkin"]})).unwrap();
    t.send("a", json!({"type": "choose_word", "index": 0})).unwrap();
    let n = t.log.len();
    t.send("b", json!({"type": "guess", "text": "pumpkn"})).unwrap();
    t.send("b", json!({"type": "guess", "text": "a big pumpkin pie"})).unwrap();
    let since: Vec<_> = t.log[n..].to_vec();
    assert_eq!(since.len(), 2);
    assert!(since.iter().all(|d| d.to == ["b"] && d.msg == json!({"type": "close"})), "{since:?}");
    t.advance(1000);
    t.send("b", json!({"type": "guess", "text": " melon "})).unwrap();
    let chat = t.last("c", "chat").unwrap();
    assert_eq!(
        (chat["from"].as_str(), chat["channel"].as_str(), chat["text"].as_str()),
        (Some("b"), Some("all"), Some("melon"))
    );
    assert_eq!(code(&t.send("b", json!({"type": "guess", "text": "x".repeat(65)})).unwrap_err()), "bad_field");
    assert_eq!(code(&t.send("b", json!({"type": "guess", "text": "   "})).unwrap_err()), "bad_field");
    // A flood: the burst, then refusals, nothing shown of what was refused.
    t.advance(10_000);
    let results: Vec<_> = (0..20).map(|i| t.send("c", json!({"type": "guess", "text": format!("guess{i}")}))).collect();
    let refused = results.iter().filter(|r| r.as_ref().is_err_and(|e| code(e) == "rate_limited")).count();
    assert_eq!(refused, 15);
    assert_eq!(t.all("b", "chat").iter().filter(|c| c["from"] == "c").count(), 5);
    t.advance(1000);
    t.send("c", json!({"type": "guess", "text": "pumpkin"})).unwrap();
    assert_eq!(code(&t.send("c", json!({"type": "guess", "text": "pumpkin"})).unwrap_err()), "not_allowed");
    assert_eq!(t.phase(), "drawing", "the game goes on");
}

#[test]
fn chat_keeps_the_secret() {
    let mut t = Table::with(&["a", "b", "c"]);
    t.start("a", json!({"words": ["guitar"]})).unwrap();
    assert_eq!(code(&t.chat("a", "which one").unwrap_err()), "not_allowed", "the drawer while choosing");
    t.chat("b", "hello").unwrap();
    t.send("a", json!({"type": "choose_word", "index": 0})).unwrap();
    assert_eq!(code(&t.chat("b", "is it a cat").unwrap_err()), "not_allowed");
    t.chat("a", "good luck").unwrap();
    assert_eq!(t.log.last().unwrap().to, ["a"], "the drawer's chat reaches those who know");
    t.send("b", json!({"type": "guess", "text": "Guitar"})).unwrap();
    t.chat("b", "nice").unwrap();
    assert_eq!(t.log.last().unwrap().to, ["a", "b"]);
    assert_eq!(code(&t.chat("b", "GUITAR!").unwrap_err()), "not_allowed", "not the word itself");
    assert_eq!(code(&t.chat("a", "a guitar").unwrap_err()), "not_allowed");
    let c_saw = serde_json::to_string(&t.received("c")).unwrap();
    assert!(!c_saw.to_lowercase().contains("guitar"), "{c_saw}");
    t.advance(DRAWING);
    assert_eq!(t.phase(), "reveal");
    t.chat("c", "it was a guitar?").unwrap();
    assert_eq!(t.log.last().unwrap().to, ["a", "b", "c"], "after the reveal, anything");
}

#[test]
fn media_follow_who_knows_the_word() {
    let mut t = Table::with(&["h", "d", "g1", "g2"]);
    t.start("h", json!({"drawer": "rotate"})).unwrap();
    // h draws first; let h's turn pass, d draws next with h guessing.
    t.next_timer();
    t.advance(DRAWING);
    t.next_timer();
    assert_eq!(t.drawer().as_deref(), Some("d"));
    t.send("d", json!({"type": "choose_word", "index": 0})).unwrap();
    let r = t.driver.routes();
    let audience = |p: &str, k| r.audience(p, k);
    assert_eq!(audience("d", MediaKind::Audio), ["g1", "g2", "h"]);
    for g in ["g1", "g2", "h"] {
        assert!(audience(g, MediaKind::Audio).is_empty(), "{g} has not guessed: heard by nobody");
    }
    assert!(t.driver.standing("d").on_stage && !t.driver.standing("h").on_stage);
    let word = t.word();
    t.send("g1", json!({"type": "guess", "text": word})).unwrap();
    t.send("h", json!({"type": "guess", "text": word})).unwrap();
    let r = t.driver.routes();
    assert_eq!(r.audience("g1", MediaKind::Audio), ["d", "h"]);
    assert_eq!(r.audience("h", MediaKind::Audio), ["d", "g1"]);
    assert_eq!(r.audience("h", MediaKind::Video), ["d", "g1"], "the host who knows is not seen by g2");
    assert!(r.audience("g2", MediaKind::Audio).is_empty());
    t.send("g2", json!({"type": "guess", "text": word})).unwrap();
    assert_eq!(t.phase(), "reveal");
    let r = t.driver.routes();
    assert_eq!(r.audience("h", MediaKind::Audio), ["d", "g1", "g2"], "at the reveal the host reaches everyone");
    assert_eq!(r.audience("d", MediaKind::Audio), ["g1", "g2", "h"]);
    assert!(r.audience("g2", MediaKind::Audio).is_empty());
}

#[test]
fn settings_are_checked_with_clear_errors() {
    let mut t = Table::with(&["a"]);
    assert_eq!(code(&t.start("a", json!({})).unwrap_err()), "not_allowed", "one is not enough");
    t.join("b");
    for (settings, field) in [
        (json!({"rounds": 0}), "rounds"),
        (json!({"rounds": 21}), "rounds"),
        (json!({"words": "fr"}), "words"),
        (json!({"words": []}), "words"),
        (json!({"words": [1]}), "words"),
        (json!({"phase_seconds": {"drawing": 0}}), "phase_seconds.drawing"),
        (json!({"phase_seconds": {"night": 5}}), "phase_seconds"),
    ] {
        let err = t.start("a", settings.clone()).unwrap_err();
        assert!(err.to_string().starts_with(field), "{settings}: {err}");
        assert_eq!(code(&err), "bad_field");
    }
    assert!(t.start("a", json!({"drawer": "everyone"})).is_err());
    assert_eq!(code(&t.start("b", json!({})).unwrap_err()), "not_host");
    t.start("a", json!({"phase_seconds": {"choosing": 2}})).unwrap();
    assert_eq!(code(&t.start("a", json!({})).unwrap_err()), "wrong_phase");
    let phase = t.last("b", "phase").unwrap();
    assert_eq!(phase["ends_at"].as_u64().unwrap() - t.now, 2000);
}
