//! Room kinds and the server-measured round trip over the real server (docs/PROTOCOL.md,
//! "Room kinds" and `pong`). The kinds' logic with a second game is in
//! signaling/tests/toy_game.rs; this is the binary's wiring of it: the room API, the
//! WebSocket and the transport's own Ping frames.

use crate::support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{server_with, Ws};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One HTTP/1.0 request; (status, JSON body).
async fn post(server: &parlor::Server, path: &str, body: &Value) -> (u16, Value) {
    let mut stream = TcpStream::connect(server.http_addr).await.unwrap();
    let body = body.to_string();
    let head = format!(
        "POST {path} HTTP/1.0\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        server.http_addr,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut raw)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

async fn get(server: &parlor::Server, path: &str) -> Value {
    let (status, _, body) = support::http_get(server, path).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[tokio::test]
async fn the_room_api_takes_a_kind_and_refuses_one_that_does_not_exist() {
    let server = server_with(|_| {}).await;
    let (status, created) = post(&server, "/api/rooms", &json!({"code": "quiz", "kind": "mafia"})).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(get(&server, "/api/rooms/quiz").await["kind"], "mafia");

    let (status, created) = post(&server, "/api/rooms", &json!({"code": "hall", "kind": "stage"})).await;
    assert_eq!(status, 201, "{created}");
    let hall = get(&server, "/api/rooms/hall").await;
    assert_eq!((hall["kind"].as_str(), hall["max_participants"].as_u64()), (Some("stage"), Some(100)), "{hall}");

    // Kinds no server offers: refused, naming what exists.
    for kind in ["chess", "poker"] {
        let (status, err) = post(&server, "/api/rooms", &json!({"kind": kind})).await;
        assert_eq!(status, 400, "{err}");
        assert_eq!(err["error"], "bad_field", "{err}");
        let message = err["message"].as_str().unwrap();
        assert!(["mafia", "stage", "draw", "rlgl"].iter().all(|k| message.contains(k)), "{err}");
    }
    let (status, err) = post(&server, "/api/rooms", &json!({"kind": 3})).await;
    assert_eq!((status, err["error"].as_str()), (400, Some("bad_field")), "{err}");

    // Without one: the default kind, which the welcome names.
    let (status, created) = post(&server, "/api/rooms", &json!({})).await;
    assert_eq!(status, 201, "{created}");
    let code = created["code"].as_str().unwrap();
    let mut ws = Ws::connect(&server).await;
    let welcome = ws.join(code, "Mina").await;
    assert_eq!(welcome["kind"], "mafia", "{welcome}");
}

#[tokio::test]
async fn kinds_on_the_websocket() {
    let server = server_with(|_| {}).await;
    let mut host = Ws::connect(&server).await;
    host.send(json!({"type": "join", "room": "r1", "name": "Hana", "kind": "chess"})).await;
    let err = host.expect("error").await;
    assert_eq!(err["code"], "bad_field", "{err}");
    assert!(err["message"].as_str().unwrap().contains("mafia"), "{err}");
    // The failed join created nothing and left the socket usable.
    host.send(json!({"type": "join", "room": "r1", "name": "Hana", "kind": "mafia"})).await;
    assert_eq!(host.expect("welcome").await["kind"], "mafia");

    host.send(json!({"type": "set_kind", "kind": "poker"})).await;
    assert_eq!(host.expect("error").await["code"], "bad_field");
    host.send(json!({"type": "set_kind", "kind": 7})).await;
    assert_eq!(host.expect("error").await["code"], "bad_field");
    // The kind it already is: nothing happens. The room handles a socket's messages in
    // order, so everything it sent for the set_kind arrives before the chat line after it.
    host.send(json!({"type": "set_kind", "kind": "mafia"})).await;
    host.send(json!({"type": "chat", "channel": "all", "text": "after"})).await;
    loop {
        let v = host.json().await;
        assert_ne!(v["type"], "kind_changed", "{v}");
        if v["type"] == "chat" {
            assert_eq!(v["text"], "after");
            break;
        }
    }

    let mut guest = Ws::connect(&server).await;
    guest.join("r1", "Gil").await;
    guest.send(json!({"type": "set_kind", "kind": "mafia"})).await;
    assert_eq!(guest.expect("error").await["code"], "not_host");
    // A type of the game but out of place is the game's error; one nobody takes is unknown.
    guest.send(json!({"type": "night_action", "target": "x"})).await;
    assert_eq!(guest.expect("error").await["code"], "wrong_phase");
    guest.send(json!({"type": "raise_the_roof"})).await;
    assert_eq!(guest.expect("error").await["code"], "unknown_type");
}

#[tokio::test]
async fn pong_carries_the_round_trip_the_server_measured_itself() {
    let server = server_with(|c| c.session.ping_seconds = 0.1).await;
    let mut ws = Ws::connect(&server).await;
    ws.join("rtt", "Rui").await;
    // Before any Ping came back there is no figure; a client's `t` never makes one. The
    // client's `t` here claims a round trip of more than fifty years.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let rtt = loop {
        assert!(tokio::time::Instant::now() < deadline, "no rtt_ms within 10 s of 100 ms pings");
        ws.send(json!({"type": "ping", "t": 1})).await;
        let pong = ws.expect("pong").await;
        assert_eq!(pong["t"], 1.0, "{pong}");
        match &pong["rtt_ms"] {
            Value::Null => tokio::time::sleep(Duration::from_millis(50)).await,
            v => break v.as_u64().unwrap_or_else(|| panic!("rtt_ms is a whole number of ms: {pong}")),
        }
    };
    // Loopback: the server's own Ping frames come back in well under a second, however
    // old the client's clock says its ping is.
    assert!(rtt < 1000, "rtt_ms {rtt}");
}
