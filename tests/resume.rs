//! Sessions that survive: resuming a seat with its token, replacing a socket that still holds
//! it, and what happens once the grace period is over.

use crate::support;

use std::time::Duration;

use serde_json::{json, Value};
use support::*;

const LONG: Duration = Duration::from_secs(20);

async fn join_with_resume(server: &parlor::Server, room: &str, token: &str) -> (Ws, Value) {
    let mut ws = Ws::connect(server).await;
    ws.send(json!({"type": "join", "room": room, "name": "ignored on resume", "resume": token})).await;
    let v = ws.json().await;
    (ws, v)
}

#[tokio::test]
async fn resume_within_grace_restores_the_seat_and_rotates_the_token() {
    let server = server_with(|c| c.session.grace_seconds = 30.0).await;
    let mut ann = Ws::connect(&server).await;
    ann.join("comeback", "Ann").await;
    let mut bob = Ws::connect(&server).await;
    let w = bob.join("comeback", "Bob").await;
    let (bob_id, token) = (w["id"].as_str().unwrap().to_owned(), w["resume_token"].as_str().unwrap().to_owned());
    drop(bob);
    let down = ann.expect("participant_updated").await;
    assert_eq!(
        (down["participant"]["id"].as_str(), down["participant"]["connected"].as_bool()),
        (Some(bob_id.as_str()), Some(false))
    );

    let (mut bob2, welcome) = join_with_resume(&server, "comeback", &token).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_eq!(welcome["id"], bob_id.as_str(), "same seat");
    let new_token = welcome["resume_token"].as_str().unwrap();
    assert_ne!(new_token, token, "token rotated");
    assert_eq!(new_token.len(), 32);
    let me = welcome["participants"].as_array().unwrap().iter().find(|p| p["id"] == bob_id.as_str()).unwrap().clone();
    assert_eq!(me["name"], "Bob", "the seat keeps its name");
    assert_eq!(me["connected"], true);
    assert!(welcome["media_state"]["receive"].is_object(), "resume welcome carries the view: {welcome}");
    let up = ann.expect("participant_updated").await;
    assert_eq!(
        (up["participant"]["id"].as_str(), up["participant"]["connected"].as_bool()),
        (Some(bob_id.as_str()), Some(true))
    );
    bob2.assert_alive().await;

    // The old token is spent.
    let (_, refused) = join_with_resume(&server, "comeback", &token).await;
    assert_eq!((refused["type"].as_str(), refused["code"].as_str()), (Some("error"), Some("resume_expired")));
    // A token of another room does not open this one, and a room that is gone has no seats.
    let (_, refused) = join_with_resume(&server, "elsewhere", new_token).await;
    assert_eq!(refused["code"], "resume_expired");
}

#[tokio::test]
async fn a_second_socket_with_the_token_replaces_the_first() {
    let server = server().await;
    let mut ann = Ws::connect(&server).await;
    let w = ann.join("twice", "Ann").await;
    let token = w["resume_token"].as_str().unwrap().to_owned();
    let (mut ann2, welcome) = join_with_resume(&server, "twice", &token).await;
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["id"], w["id"]);
    let err = ann.expect("error").await;
    assert_eq!(err["code"], "replaced");
    assert_eq!(ann.closed().await, Some(4001));
    // The replaced socket's close does not disconnect the seat.
    let mut bob = Ws::connect(&server).await;
    let seen = bob.join("twice", "Bob").await;
    let ann_seen = &seen["participants"][0];
    assert_eq!((ann_seen["id"].as_str(), ann_seen["connected"].as_bool()), (w["id"].as_str(), Some(true)));
    ann2.assert_alive().await;
}

#[tokio::test]
async fn after_grace_the_player_is_eliminated_and_the_token_expired() {
    let server = server_with(|c| c.session.grace_seconds = 0.3).await;
    let mut socks = Vec::new();
    let mut tokens = Vec::new();
    for name in ["Ann", "Bob", "Cy", "Dee", "Eve"] {
        let mut ws = Ws::connect(&server).await;
        let w = ws.join("late", name).await;
        tokens.push((w["id"].as_str().unwrap().to_owned(), w["resume_token"].as_str().unwrap().to_owned()));
        socks.push(ws);
    }
    socks[0].send(json!({"type": "start_game", "settings": {"mafia": 1, "phase_seconds": {"role_reveal": 30}}})).await;
    for ws in &mut socks {
        ws.expect("role").await;
    }
    let (eve_id, eve_token) = tokens[4].clone();
    drop(socks.pop());
    let left = socks[0].expect("participant_left").await;
    assert_eq!((left["id"].as_str(), left["reason"].as_str()), (Some(eve_id.as_str()), Some("disconnected")));
    let gone = socks[0].expect("eliminated").await;
    assert_eq!(gone, json!({"type": "eliminated", "id": eve_id, "cause": "left"}));
    let (_, refused) = join_with_resume(&server, "late", &eve_token).await;
    assert_eq!(refused["code"], "resume_expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_dropped_mid_night_comes_back_to_the_dark() {
    let server = server_with(|c| c.session.grace_seconds = 20.0).await;
    let url = format!("ws://{}/ws", server.http_addr);
    let mut players = Vec::new();
    for i in 0..4 {
        players.push(TestClient::join(&url, "tunnel", &format!("P{i}"), ClientOptions::publisher()).await.unwrap());
    }
    for rx in &players {
        for tx in players.iter().filter(|t| t.id() != rx.id()) {
            rx.wait_count(tx.id(), Kind::Video, 5, LONG).await.unwrap();
        }
    }
    // The night ends when the mafioso and the doctor have acted, which the test does once it
    // has checked the resumed seat; its timer is long so a slow machine cannot end it first.
    let dawn_s: f64 = 0.3;
    let settings = json!({"mafia": 1, "doctor": 1,
        "phase_seconds": {"role_reveal": 0.3, "night": 60, "dawn": dawn_s, "day": 30}});
    players[0].send_json(&json!({"type": "start_game", "settings": settings})).unwrap();
    let mut roles = Vec::new();
    for p in &players {
        roles.push(p.expect_message("role", LONG).await.unwrap()["role"].as_str().unwrap().to_owned());
    }
    // A citizen without the host's powers drops off in the night (two of the four are citizens).
    let who = (1..4).find(|i| roles[*i] == "citizen").expect("a citizen");
    let role_of = |role: &str| roles.iter().position(|r| r == role).expect(role);
    let (mafioso, doctor) = (role_of("mafia"), role_of("doctor"));
    for p in &players {
        p.expect_where(LONG, "night", |m| m["type"] == "phase" && m["phase"] == "night").await.unwrap();
    }
    let token = players[who].resume_token().unwrap();
    let id = players[who].id().to_owned();
    let mut old = players.remove(who);
    old.close_socket().await;
    old.close_media().await;
    players[0]
        .expect_where(LONG, "disconnected", |m| {
            m["type"] == "participant_updated" && m["participant"]["connected"] == false
        })
        .await
        .unwrap();

    // Back within the grace period, on a new peer connection.
    let join = json!({"type": "join", "room": "tunnel", "name": format!("P{who}"), "resume": token});
    let back = TestClient::join_with(&url, join, ClientOptions::publisher()).await.unwrap();
    let resumed_at = now_us();
    let w = back.welcome().unwrap().clone();
    assert_eq!(w["id"], id.as_str());
    assert_eq!(w["role"]["role"], "citizen", "role restored: {w}");
    assert_eq!(w["game"]["phase"], "night");
    for (pid, r) in w["media_state"]["receive"].as_object().unwrap() {
        assert_eq!(r, &json!({"audio": false, "video": false}), "dark for {pid}");
    }
    // Still nothing at night. Let the night go on with the new peer connected and everyone
    // publishing to it (a leak would show), then end it: the mafioso picks the resumed citizen
    // and the doctor saves them, so nobody dies.
    back.wait_connected(LONG).await.unwrap();
    let connected_at = now_us();
    let published = |c: &TestClient| {
        c.sent(Kind::Video).iter().filter(|p| parse_mark(&p.payload).is_some_and(|m| m.sent_us >= connected_at)).count()
    };
    assert!(
        wait_until(LONG, || players.iter().all(|p| published(p) >= 20) && published(&back) >= 20).await,
        "everyone keeps publishing at night"
    );
    assert!(back.messages_of("phase").is_empty(), "still the night of the welcome");
    // `players` lost the resumed seat: indices past it moved down by one.
    let seat = |i: usize| &players[if i > who { i - 1 } else { i }];
    seat(mafioso).send_json(&json!({"type": "night_action", "target": id})).unwrap();
    seat(doctor).send_json(&json!({"type": "night_action", "target": id})).unwrap();
    back.expect_where(LONG, "dawn", |m| m["type"] == "phase" && m["phase"] == "dawn").await.unwrap();
    // Judged against the server's switch to dawn, not this client's reading of it.
    let switched = switched_at(&back, "dawn", 1, dawn_s);
    for p in &players {
        for kind in [Kind::Audio, Kind::Video] {
            let leaked = leaked(&back, p.id(), kind, resumed_at, switched).len();
            assert_eq!(leaked, 0, "resumed citizen received {kind} from {} at night", p.id());
        }
    }
    // From dawn it receives every living player again, and they receive it.
    for p in &players {
        back.wait_count(p.id(), Kind::Video, 10, LONG).await.unwrap();
        p.wait_count(&id, Kind::Video, 10, LONG).await.unwrap();
    }
    assert!(players[0].messages_of("eliminated").is_empty(), "nobody was eliminated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_socket_gets_no_offer_before_it_offers() {
    let server = server().await;
    let url = format!("ws://{}/ws", server.http_addr);
    let a = TestClient::join(&url, "held", "Ann", ClientOptions::publisher()).await.unwrap();
    let mut b = TestClient::join(&url, "held", "Bob", ClientOptions::publisher()).await.unwrap();
    a.wait_count(b.id(), Kind::Video, 5, LONG).await.unwrap();
    let token = b.resume_token().unwrap();
    b.close_socket().await;
    // Bob is back on a new socket that has not offered (a reloaded page still setting up).
    let (mut bob, welcome) = join_with_resume(&server, "held", &token).await;
    assert_eq!(welcome["type"], "welcome");
    // Cy joins and publishes: Ann is offered Cy's tracks, Bob's new socket is not.
    let offers_before = a.messages_of("offer").len();
    let c = TestClient::join(&url, "held", "Cy", ClientOptions::publisher()).await.unwrap();
    a.wait_count(c.id(), Kind::Video, 5, LONG).await.unwrap();
    assert_eq!(a.messages_of("offer").len(), offers_before + 1);
    bob.send(json!({"type": "ping", "t": 1})).await;
    loop {
        let v = bob.json().await;
        assert_ne!(v["type"], "offer", "a held peer got an offer: {v}");
        if v["type"] == "pong" {
            break;
        }
    }
}

/// Through the whole server: an ICE restart (new credentials, same socket) keeps media flowing.
/// (`tests/matrix.rs` moves the client to a new address as well.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_restart_with_new_credentials_keeps_media_flowing() {
    let server = server().await;
    let url = format!("ws://{}/ws", server.http_addr);
    let a = TestClient::join(&url, "restart", "Ann", ClientOptions::publisher()).await.unwrap();
    let b = TestClient::join(&url, "restart", "Bob", ClientOptions::publisher()).await.unwrap();
    a.wait_count(b.id(), Kind::Video, 10, LONG).await.unwrap();
    b.wait_count(a.id(), Kind::Video, 10, LONG).await.unwrap();
    let before_sdp = b.media().local_sdp().await.unwrap();
    b.media().restart_ice();
    let restarted_at = now_us();
    // Media keeps flowing both ways with packets sent after the restart.
    let fresh = |rx: &TestClient, tx: &str| {
        rx.received(tx, Kind::Video).iter().filter(|p| p.mark().is_some_and(|m| m.sent_us > restarted_at)).count()
    };
    assert!(wait_until(LONG, || fresh(&a, b.id()) >= 30 && fresh(&b, a.id()) >= 30).await, "media after the restart");
    let after_sdp = b.media().local_sdp().await.unwrap();
    let ufrag = |sdp: &str| sdp.lines().find_map(|l| l.strip_prefix("a=ice-ufrag:")).map(str::to_owned);
    assert_ne!(ufrag(&before_sdp), ufrag(&after_sdp), "new ICE credentials");
}

/// A player reconnects at day on a new socket and a new peer connection: the time from opening
/// the socket to the first video packet of every other player is printed (the closing notes
/// quote it). Bounded only loosely: timing is a benchmark's business, not a test's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_at_day_brings_every_video_back() {
    let server = server().await;
    let url = format!("ws://{}/ws", server.http_addr);
    let mut players = Vec::new();
    for i in 0..4 {
        players.push(TestClient::join(&url, "dusk", &format!("P{i}"), ClientOptions::publisher()).await.unwrap());
    }
    let settings = json!({"mafia": 1, "phase_seconds": {"role_reveal": 0.2, "night": 0.3, "dawn": 0.2, "day": 60}});
    players[0].send_json(&json!({"type": "start_game", "settings": settings})).unwrap();
    for p in &players {
        p.expect_where(LONG, "day", |m| m["type"] == "phase" && m["phase"] == "day").await.unwrap();
    }
    let mut old = players.remove(3);
    let (id, token) = (old.id().to_owned(), old.resume_token().unwrap());
    old.close_socket().await;
    old.close_media().await;

    let join = json!({"type": "join", "room": "dusk", "name": "P3", "resume": token});
    let opened = std::time::Instant::now();
    let back = TestClient::join_with(&url, join, ClientOptions::publisher()).await.unwrap();
    assert_eq!(back.welcome().unwrap()["id"], id.as_str(), "same seat");
    let mut firsts = Vec::new();
    for p in &players {
        back.wait_count(p.id(), Kind::Video, 1, LONG).await.unwrap();
        let first = back.received(p.id(), Kind::Video)[0].arrival;
        firsts.push(first.duration_since(opened));
        p.wait_count(&id, Kind::Video, 1, LONG).await.unwrap();
    }
    println!(
        "resume at day: socket open → first video packet of each player {:?} ms",
        firsts.iter().map(|d| d.as_millis()).collect::<Vec<_>>()
    );
}
