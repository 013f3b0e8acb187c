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

/// What a client that flooded read afterwards, up to the end of its socket.
#[derive(Debug, Default)]
struct Afterwards {
    pongs: usize,
    /// The `message` of each `rate_limited`.
    rate_limited: Vec<String>,
    /// The close frame's code, if one came.
    close: Option<u16>,
    /// How the stream ended after that: an error (a reset) rather than its end.
    error: Option<String>,
}

/// Read everything up to the end of the stream (each frame within 20 s).
async fn read_to_the_end(ws: &mut Ws) -> Afterwards {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let mut got = Afterwards::default();
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(20), ws.stream.next()).await.expect("a frame within 20 s");
        match frame {
            Some(Ok(Message::Text(t))) => {
                let v: serde_json::Value = serde_json::from_str(t.as_str()).expect("server sends JSON");
                match v["type"].as_str() {
                    Some("pong") => got.pongs += 1,
                    Some("error") if v["code"] == "rate_limited" => {
                        got.rate_limited.push(v["message"].as_str().unwrap_or_default().to_owned())
                    }
                    _ => panic!("unexpected message {v}"),
                }
            }
            Some(Ok(Message::Close(c))) => got.close = Some(c.map_or(1005, |c| u16::from(c.code))),
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                got.error = Some(e.to_string());
                return got;
            }
            None => return got,
        }
    }
}

#[tokio::test]
async fn a_flood_read_only_afterwards_still_gets_its_replies_and_the_close() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let server = server_with(|c| {
        c.session.messages_per_second = 0.2;
        c.session.message_burst = 20;
    })
    .await;
    let mut ws = Ws::connect(&server).await;
    ws.join("deluge", "Ann").await;
    // The join took a token: 19 pings are answered, 20 refused, and the 21st refused gets the
    // last `rate_limited` and the close. The client sends 50 times that, as fast as it can,
    // and reads nothing until it is done.
    const FLOOD: usize = 2000;
    let started = Instant::now();
    let mut refused_send = None;
    for t in 0..FLOOD {
        let text = json!({"type": "ping", "t": t}).to_string();
        if let Err(e) = ws.stream.send(Message::Text(text.into())).await {
            refused_send = Some((t, e.to_string()));
            break;
        }
    }
    let flooding = started.elapsed();
    let got = read_to_the_end(&mut ws).await;
    // The server reads (and discards) what comes after its close frame until the client
    // answers it, so nothing the client sent was refused with a reset, and nothing the server
    // sent was lost to one.
    assert_eq!(refused_send, None, "every send of the flood went through ({flooding:?}); then read {got:?}");
    assert_eq!(got.pongs, 19, "the replies sent before the limit: {got:?}");
    assert!(!got.rate_limited.is_empty(), "{got:?}");
    assert!(got.rate_limited.last().unwrap().contains("disconnecting"), "the last rate_limited: {got:?}");
    assert_eq!(got.close, Some(1008), "a close frame, not a reset: {got:?}");
    assert_eq!(got.error, None, "the stream ends after the closing handshake: {got:?}");
}

#[tokio::test]
async fn a_client_that_floods_on_is_dropped_within_the_close_linger() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let server = server_with(|c| {
        c.session.messages_per_second = 0.2;
        c.session.message_burst = 20;
    })
    .await;
    let mut ws = Ws::connect(&server).await;
    ws.join("torrent", "Ann").await;
    // Flood without ever reading or answering the close: the server waits 2 s for the closing
    // handshake, then drops the socket, and the next send fails.
    let started = Instant::now();
    let mut t = 0u64;
    let failed = loop {
        let text = json!({"type": "ping", "t": t}).to_string();
        if ws.stream.send(Message::Text(text.into())).await.is_err() {
            break started.elapsed();
        }
        t += 1;
        assert!(started.elapsed() < Duration::from_secs(20), "still accepted after {t} messages");
    };
    assert!(failed >= Duration::from_secs(1), "the server waits for the handshake a while: {failed:?}");
    assert!(failed < Duration::from_secs(10), "dropped within the bound: {failed:?} ({t} messages)");
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
