//! Protocol behaviour over a real WebSocket: every bad-input case gets its error code and
//! the socket keeps working; joins, names, capacity and departures behave as documented.

use crate::support;

use std::time::Duration;

use futures_util::SinkExt;
use serde_json::json;
use support::{server, server_with, wait_until, Got, Ws};

async fn expect_error(ws: &mut Ws, code: &str) {
    let v = ws.json().await;
    assert_eq!(v["type"], "error", "expected error {code}, got {v}");
    assert_eq!(v["code"], code, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "error without message: {v}");
}

#[tokio::test]
async fn bad_input_before_join_gets_codes_and_the_socket_stays_open() {
    let server = server().await;
    let mut ws = Ws::connect(&server).await;
    ws.send_text("{not json").await;
    expect_error(&mut ws, "bad_json").await;
    ws.send_text("[1,2,3]").await;
    expect_error(&mut ws, "bad_json").await;
    ws.send(json!({"type": "teleport"})).await;
    expect_error(&mut ws, "unknown_type").await;
    ws.send(json!({"no_type": true})).await;
    expect_error(&mut ws, "unknown_type").await;
    ws.send(json!({"type": "join", "room": "demo"})).await;
    expect_error(&mut ws, "bad_field").await;
    ws.send(json!({"type": "join", "room": "bad room!", "name": "Ann"})).await;
    expect_error(&mut ws, "bad_field").await;
    ws.send(json!({"type": "join", "room": "demo", "name": "   "})).await;
    expect_error(&mut ws, "bad_field").await;
    ws.send(json!({"type": "join", "room": "demo", "name": "x".repeat(25)})).await;
    expect_error(&mut ws, "bad_field").await;
    ws.send(json!({"type": "join", "room": "demo", "name": "bell\u{7}"})).await;
    expect_error(&mut ws, "bad_field").await;
    for msg in [json!({"type": "ping", "t": 1}), json!({"type": "offer", "sdp": "v=0"}), json!({"type": "leave"})] {
        ws.send(msg).await;
        expect_error(&mut ws, "not_joined").await;
    }
    ws.stream.send(tokio_tungstenite::tungstenite::Message::Binary(vec![1, 2, 3].into())).await.unwrap();
    expect_error(&mut ws, "bad_json").await;
    // Still usable: it can join and answer ping.
    ws.join("demo", "Ann").await;
    ws.assert_alive().await;
}

#[tokio::test]
async fn bad_input_after_join_keeps_the_seat() {
    let server = server().await;
    let mut ws = Ws::connect(&server).await;
    ws.join("room-1", "Ann").await;
    ws.send_text("}}}").await;
    expect_error(&mut ws, "bad_json").await;
    ws.send(json!({"type": "fly"})).await;
    expect_error(&mut ws, "unknown_type").await;
    ws.send(json!({"type": "offer"})).await;
    expect_error(&mut ws, "bad_field").await;
    ws.send(json!({"type": "ping", "t": "soon"})).await;
    expect_error(&mut ws, "bad_field").await;
    ws.send(json!({"type": "offer", "sdp": "this is not sdp"})).await;
    expect_error(&mut ws, "bad_sdp").await;
    ws.send(json!({"type": "answer", "sdp": "v=0\r\n"})).await;
    expect_error(&mut ws, "bad_sdp").await;
    ws.send(json!({"type": "join", "room": "room-1", "name": "Bob"})).await;
    expect_error(&mut ws, "bad_field").await;
    ws.send(json!({"type": "candidate", "candidate": "garbage", "sdp_mid": "0", "sdp_mline_index": 0})).await;
    ws.send(json!({"type": "candidate", "candidate": "", "sdp_mid": null, "sdp_mline_index": null})).await;
    ws.assert_alive().await;
    // Another participant still sees Ann in the room.
    let mut other = Ws::connect(&server).await;
    let welcome = other.join("room-1", "Bob").await;
    let names: Vec<&str> =
        welcome["participants"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Ann", "Bob"]);
}

#[tokio::test]
async fn oversized_frame_gets_too_large_then_close_1009() {
    let server = server().await;
    let mut ws = Ws::connect(&server).await;
    ws.join("big", "Ann").await;
    let huge = json!({"type": "offer", "sdp": "a".repeat(70 * 1024)});
    ws.send(huge).await;
    expect_error(&mut ws, "too_large").await;
    match ws.next().await {
        Got::Closed(code) => assert_eq!(code, Some(1009)),
        Got::Json(v) => panic!("expected close right after too_large, got {v}"),
    }
    // A frame just under the limit is only a bad field, not too large.
    let mut ws = Ws::connect(&server).await;
    ws.send(json!({"type": "join", "room": "big", "name": "x", "pad": "p".repeat(60 * 1024)})).await;
    let v = ws.json().await;
    assert_eq!(v["type"], "welcome", "{v}");
}

#[tokio::test]
async fn welcome_roster_updates_and_departures() {
    let server = server_with(|c| c.session.grace_seconds = 0.3).await;
    let mut ann = Ws::connect(&server).await;
    let w = ann.join("lobby", "Ann").await;
    let ann_id = w["id"].as_str().unwrap().to_owned();
    assert_eq!(w["host"], ann_id.as_str());
    assert_eq!(w["room"], "lobby");
    assert_eq!(w["game"], serde_json::Value::Null);
    assert_eq!(w["resume_token"].as_str().unwrap().len(), 32);
    assert!(w["limits"]["max_video_kbps"].as_u64().unwrap() > 0);
    assert_eq!(
        w["participants"][0],
        // docs/PROTOCOL.md, participant object: every kind's participant object also says `on_stage` and `hand`.
        json!({"id": ann_id, "name": "Ann", "ready": false, "connected": true, "playing": false, "alive": true,
            "on_stage": false, "hand": false})
    );

    let mut bob = Ws::connect(&server).await;
    // Names are unique in a room, compared without case.
    bob.send(json!({"type": "join", "room": "lobby", "name": "ann"})).await;
    expect_error(&mut bob, "name_taken").await;
    let w = bob.join("lobby", "Bob").await;
    let bob_id = w["id"].as_str().unwrap().to_owned();
    assert_eq!(w["host"], ann_id.as_str());
    let joined = ann.expect("participant_joined").await;
    assert_eq!(joined["participant"]["id"], bob_id.as_str());

    // Bob's socket drops without leave: connected false, then after grace he leaves.
    drop(bob);
    let upd = ann.expect("participant_updated").await;
    assert_eq!(upd["participant"]["id"], bob_id.as_str());
    assert_eq!(upd["participant"]["connected"], false);
    let left = ann.expect("participant_left").await;
    assert_eq!(left["id"], bob_id.as_str());
    assert_eq!(left["reason"], "disconnected");

    // Cara joins, Ann leaves: host passes to Cara, who has been there longest.
    let mut cara = Ws::connect(&server).await;
    let w = cara.join("lobby", "Cara").await;
    let cara_id = w["id"].as_str().unwrap().to_owned();
    ann.expect("participant_joined").await;
    ann.send(json!({"type": "leave"})).await;
    assert_eq!(ann.closed().await, Some(1000), "leave closes the socket normally");
    let left = cara.expect("participant_left").await;
    assert_eq!(left["id"], ann_id.as_str());
    assert_eq!(left["reason"], "left");
    let host = cara.expect("host_changed").await;
    assert_eq!(host["host"], cara_id.as_str());
}

#[tokio::test]
async fn room_capacity_and_cleanup() {
    let server = server_with(|c| c.rooms.max_participants = 2).await;
    let mut a = Ws::connect(&server).await;
    a.join("small", "A").await;
    let mut b = Ws::connect(&server).await;
    b.join("small", "B").await;
    let mut c = Ws::connect(&server).await;
    c.send(json!({"type": "join", "room": "small", "name": "C"})).await;
    expect_error(&mut c, "room_full").await;
    // Refused, not joined, socket alive: ping before join is still answered with not_joined.
    c.send(json!({"type": "ping", "t": 1})).await;
    expect_error(&mut c, "not_joined").await;
    assert_eq!(server.room_count(), 1);
    a.send(json!({"type": "leave"})).await;
    b.send(json!({"type": "leave"})).await;
    assert!(wait_until(Duration::from_secs(5), || server.room_count() == 0).await, "empty room is closed");
    // The code can be used again: a fresh room with a fresh host.
    let w = c.join("small", "C").await;
    assert_eq!(w["participants"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn welcome_carries_the_configured_ice_servers() {
    use parlor_signaling::protocol::IceServer;
    let turn = IceServer {
        urls: vec!["turns:turn.example.org:443?transport=tcp".into()],
        username: Some("parlor".into()),
        credential: Some("s3cret".into()),
    };
    let server = server_with(move |c| c.media.ice_servers = vec![turn]).await;
    let mut ws = Ws::connect(&server).await;
    let welcome = ws.join("ice", "Ann").await;
    assert_eq!(
        welcome["ice_servers"],
        serde_json::json!([{"urls": ["turns:turn.example.org:443?transport=tcp"], "username": "parlor", "credential": "s3cret"}])
    );
    // Without any configured, the field is left out.
    let plain = server_with(|_| {}).await;
    let mut ws = Ws::connect(&plain).await;
    assert!(ws.join("ice", "Bob").await.get("ice_servers").is_none());
}
