//! Limits and abuse, idle rooms, and a graceful shutdown of the real binary.

use crate::support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::*;

async fn expect_error(ws: &mut Ws, code: &str) {
    let v = ws.expect("error").await;
    assert_eq!(v["code"], code, "{v}");
}

#[tokio::test]
async fn message_flood_is_rate_limited_then_disconnected() {
    // A refill this slow makes the test independent of how fast this machine sends.
    let server = server_with(|c| {
        c.session.messages_per_second = 0.2;
        c.session.message_burst = 60;
    })
    .await;
    let mut ws = Ws::connect(&server).await;
    ws.join("flood", "Ann").await;
    // The join spent one token: 59 pings pass, the next is refused.
    for t in 0..60 {
        ws.send(json!({"type": "ping", "t": t})).await;
    }
    let mut pongs = 0;
    loop {
        let v = ws.json().await;
        match v["type"].as_str() {
            Some("pong") => pongs += 1,
            Some("error") => {
                assert_eq!(v["code"], "rate_limited");
                break;
            }
            _ => {}
        }
    }
    assert!((55..=62).contains(&pongs), "a burst gets through: {pongs}");
    // Keeping on past another burst's worth of refusals gets the socket closed.
    for t in 0..200 {
        ws.send(json!({"type": "ping", "t": t})).await;
    }
    assert_eq!(ws.closed().await, Some(1008));
}

#[tokio::test]
async fn a_polite_client_is_never_limited() {
    let server = server_with(|c| {
        c.session.messages_per_second = 50.0;
        c.session.message_burst = 5;
    })
    .await;
    let mut ws = Ws::connect(&server).await;
    ws.join("calm", "Ann").await;
    for t in 0..30 {
        ws.send(json!({"type": "ping", "t": t})).await;
        let v = ws.expect("pong").await;
        assert_eq!(v["t"].as_f64(), Some(t as f64));
        tokio::time::sleep(Duration::from_millis(25)).await; // pacing below the limit, not sync
    }
}

#[tokio::test]
async fn room_and_connection_limits() {
    let server = server_with(|c| {
        c.rooms.max_rooms = 1;
        c.server.max_connections = 2;
    })
    .await;
    let mut a = Ws::connect(&server).await;
    a.join("only", "Ann").await;
    let mut b = Ws::connect(&server).await;
    b.send(json!({"type": "join", "room": "another", "name": "Bob"})).await;
    expect_error(&mut b, "too_many_rooms").await;
    // Joining the existing room still works.
    b.join("only", "Bob").await;
    // A third connection is over the limit: told why, then closed.
    let mut c = Ws::connect(&server).await;
    expect_error(&mut c, "server_full").await;
    assert_eq!(c.closed().await, Some(1001));
    // When a place frees up, connections are accepted again.
    b.send(json!({"type": "leave"})).await;
    assert_eq!(b.closed().await, Some(1000));
    drop(b);
    let mut d = None;
    for _ in 0..100 {
        let mut ws = Ws::connect(&server).await;
        ws.send(json!({"type": "ping", "t": 1})).await;
        if ws.json().await["code"] == "not_joined" {
            d = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(d.is_some(), "a freed place is reusable");
}

#[tokio::test]
async fn the_host_kicks_and_the_kicked_stay_out_until_the_game_ends() {
    let server = server().await;
    let mut host = Ws::connect(&server).await;
    host.join("kick", "Host").await;
    let mut bob = Ws::connect(&server).await;
    let w = bob.join("kick", "Bob").await;
    let bob_id = w["id"].as_str().unwrap().to_owned();
    // Only the host may kick.
    bob.send(json!({"type": "kick", "id": w["host"]})).await;
    expect_error(&mut bob, "not_host").await;
    host.send(json!({"type": "kick", "id": bob_id})).await;
    expect_error(&mut bob, "kicked").await;
    assert_eq!(bob.closed().await, Some(4000));
    let left = host.expect("participant_left").await;
    assert_eq!((left["id"].as_str(), left["reason"].as_str()), (Some(bob_id.as_str()), Some("kicked")));
    let mut again = Ws::connect(&server).await;
    again.send(json!({"type": "join", "room": "kick", "name": "bob"})).await;
    expect_error(&mut again, "kicked").await;
}

#[tokio::test]
async fn a_room_nobody_is_connected_to_closes_after_its_idle_time() {
    let server = server_with(|c| {
        c.session.grace_seconds = 60.0;
        c.rooms.idle_seconds = 0.3;
    })
    .await;
    let mut ann = Ws::connect(&server).await;
    ann.join("sleepy", "Ann").await;
    assert_eq!(server.room_count(), 1);
    drop(ann);
    let started = Instant::now();
    assert!(wait_until(Duration::from_secs(10), || server.room_count() == 0).await, "idle room closed");
    assert!(started.elapsed() >= Duration::from_millis(250), "not before its idle time");
    let counters = server.media_counters().await;
    assert_eq!((counters.rooms, counters.peers), (0, 0), "media released");
}

#[tokio::test]
async fn sigterm_during_a_game_ends_cleanly() {
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_parlor"))
        .args(["serve", "--listen", "127.0.0.1:0", "--udp-port", "0"])
        .env("PARLOR_GAMES__LOG_DIR", "")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start parlor");
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout).lines().map_while(Result::ok).find(|l| l.contains("parlor is serving"))
    })
    .await
    .unwrap()
    .expect("the serving line on stdout");
    let addr = line.split("http://").nth(1).and_then(|r| r.split('/').next()).expect("serving line").to_owned();
    let url = format!("ws://{addr}/ws");
    let mut socks = Vec::new();
    for name in ["A", "B", "C", "D"] {
        let (stream, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        let mut ws = Ws { stream };
        ws.send(json!({"type": "join", "room": "term", "name": name})).await;
        ws.expect("welcome").await;
        socks.push(ws);
    }
    socks[0].send(json!({"type": "start_game", "settings": {"phase_seconds": {"role_reveal": 30}}})).await;
    for ws in &mut socks {
        ws.expect("role").await;
    }
    let started = Instant::now();
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    for ws in &mut socks {
        expect_error(ws, "server_shutdown").await;
        assert_eq!(ws.closed().await, Some(1001));
    }
    let exit = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert!(exit.success(), "clean exit: {exit:?}");
    // Well under the 30 s phase: shutdown does not wait for the game.
    assert!(started.elapsed() < Duration::from_secs(15), "gone within 15 s: {:?}", started.elapsed());
}
