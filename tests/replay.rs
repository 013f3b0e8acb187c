//! Replayable games: a game played through the server is logged, and the pure engine, fed the
//! log, produces exactly the same events (in-process and through `parlor replay`).

use crate::support;

use std::process::Command;

use serde_json::json;
use support::*;

/// Skip messages until the phase `name` arrives.
async fn phase(ws: &mut Ws, name: &str) {
    while ws.expect("phase").await["phase"] != name {}
}

#[tokio::test]
async fn a_played_game_replays_to_the_same_events_and_result() {
    let dir = std::env::temp_dir().join(format!("parlor-replay-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let log_dir = dir.to_string_lossy().into_owned();
    let server = server_with(|c| c.games.log_dir = log_dir.clone()).await;
    let mut socks = Vec::new();
    let mut ids = Vec::new();
    for name in ["Ann", "Bob", "Cy", "Dee"] {
        let mut ws = Ws::connect(&server).await;
        ids.push(ws.join("replayed", name).await["id"].as_str().unwrap().to_owned());
        socks.push(ws);
    }
    let phases = json!({"role_reveal": 0.2, "night": 30, "dawn": 0.2, "day": 30, "nomination": 30,
        "defense": 0.2, "judgment": 30, "game_over": 0.3});
    socks[0].send(json!({"type": "start_game", "settings": {"mafia": 1, "doctor": 0, "detective": 0, "phase_seconds": phases}})).await;
    let mut roles = Vec::new();
    for ws in &mut socks {
        roles.push(ws.expect("role").await["role"].as_str().unwrap().to_owned());
    }
    let mafia = roles.iter().position(|r| r == "mafia").unwrap();
    let town: Vec<usize> = (0..4).filter(|i| *i != mafia).collect();
    let (victim, voters) = (town[0], [town[1], town[2]]);
    phase(&mut socks[mafia], "night").await;
    socks[mafia].send(json!({"type": "night_action", "target": ids[victim]})).await;
    phase(&mut socks[mafia], "day").await;
    for v in voters {
        socks[v].send(json!({"type": "call_vote"})).await;
    }
    phase(&mut socks[mafia], "nomination").await;
    for v in voters {
        socks[v].send(json!({"type": "vote", "target": ids[mafia]})).await;
    }
    socks[mafia].send(json!({"type": "vote", "target": ids[voters[0]]})).await;
    phase(&mut socks[mafia], "judgment").await;
    for v in voters {
        socks[v].send(json!({"type": "vote", "verdict": "guilty"})).await;
    }
    let over = socks[voters[0]].expect("game_over").await;
    assert_eq!(over["winner"], "town");
    phase(&mut socks[voters[0]], "lobby").await;

    let logs: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(logs.len(), 1, "one game, one log: {logs:?}");
    let text = std::fs::read_to_string(&logs[0]).unwrap();
    let records = parlor_signaling::gamelog::parse(&text).unwrap();
    let replay = parlor_signaling::gamelog::replay(&parlor_signaling::Registry::builtin(), &records).unwrap();
    assert_eq!(replay.mismatch, None);
    assert_eq!(replay.game_over.as_ref().map(|over| over["winner"].clone()), Some(json!("town")));
    assert!(replay.events.len() >= 20, "{} events", replay.events.len());

    // The command line does the same and says so.
    let out = Command::new(env!("CARGO_BIN_EXE_parlor")).arg("replay").arg(&logs[0]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.trim_end().ends_with("matches the recording"), "{stdout}");
    assert!(stdout.contains("winner: town"), "{stdout}");
    assert_eq!(stdout.lines().count(), replay.events.len() + 1);

    // A tampered log is caught: the mafia now votes for someone else.
    let vote = |id: &str| format!("{{\"target\":\"{id}\",\"type\":\"vote\"}}");
    let tampered = text.replacen(&vote(&ids[voters[0]]), &vote(&ids[voters[1]]), 1);
    assert!(tampered != text, "the mafia's nomination is in the log");
    let bad = dir.join("tampered.jsonl");
    std::fs::write(&bad, tampered).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_parlor")).arg("replay").arg(&bad).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("differs from the recording"));
    let _ = std::fs::remove_dir_all(&dir);
}
