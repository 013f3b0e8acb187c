//! A whole Mafia game through the server with six real WebRTC clients (two mafia) and short
//! phases. Every payload carries its publisher's send time, so the contract of docs/PROTOCOL.md, "Ordering",
//! can be checked exactly: nothing a publisher sent after a subscriber was told a phase that
//! denies it reaches that subscriber. What is allowed must arrive whole (received / sent in
//! the window, by the publisher's own send log), every `media_state` is checked against the
//! routing table written out again here, and no phase change renegotiates SDP.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use serde_json::{json, Value};
use support::*;

const LONG: Duration = Duration::from_secs(20);
struct Player {
    c: TestClient,
    role: String,
}

async fn wait_phase(players: &[Player], phase: &str) {
    for p in players {
        p.c.expect_where(LONG, phase, |m| m["type"] == "phase" && m["phase"] == phase)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", p.c.id()));
    }
}

/// Packets `rx` got from `tx` of `kind` whose publisher send time lies in [from, to).
fn sent_between(rx: &TestClient, tx: &str, kind: Kind, from: u64, to: u64) -> Vec<RecvPacket> {
    rx.received(tx, kind)
        .into_iter()
        .filter(|p| p.mark().is_some_and(|m| m.sent_us >= from && m.sent_us < to))
        .collect()
}

async fn expect_error(c: &TestClient, code: &str) {
    let got = c.expect_error(LONG).await.unwrap();
    assert_eq!(got, code, "{} expected error {code}", c.id());
}

/// The routing table of docs/PROTOCOL.md, written out again from the table (not from the server's
/// code): may `rx` receive `tx`'s `kind` in the phase `phase` (a `phase` message)? `roles`
/// holds the players; anyone else in the room is a spectator (this game has no moderator).
fn table_allows(phase: &Value, roles: &HashMap<String, String>, rx: &str, tx: &str, kind: Kind) -> bool {
    let name = phase["phase"].as_str().unwrap();
    if matches!(name, "lobby" | "game_over") {
        return true;
    }
    let alive: Vec<&str> = phase["alive"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let player = |id: &str| roles.contains_key(id);
    let dead = |id: &str| player(id) && !alive.contains(&id);
    let living_mafia = |id: &str| alive.contains(&id) && roles[id] == "mafia";
    if !player(tx) {
        return false; // spectators publish to nobody
    }
    if dead(rx) {
        return true; // the dead receive every player
    }
    if dead(tx) {
        return false; // only the dead (and a moderator) receive the dead
    }
    // A living publisher, and a living or spectating subscriber (who gets what a citizen gets).
    match name {
        "night" => living_mafia(tx) && living_mafia(rx),
        "defense" => kind == Kind::Video || phase["accused"] == tx,
        _ => true,
    }
}

/// The `receive` object of the `media_state` the table prescribes for `rx` in `phase`, with
/// `members` in the room.
fn table_view(phase: &Value, roles: &HashMap<String, String>, members: &BTreeSet<String>, rx: &str) -> Value {
    let view: serde_json::Map<String, Value> = members
        .iter()
        .filter(|tx| *tx != rx)
        .map(|tx| {
            let cell = json!({
                "audio": table_allows(phase, roles, rx, tx, Kind::Audio),
                "video": table_allows(phase, roles, rx, tx, Kind::Video),
            });
            (tx.clone(), cell)
        })
        .collect();
    Value::Object(view)
}

/// The message right after `c`'s `phase` message of (phase, round), if it is a `media_state`.
fn state_after(c: &TestClient, phase: &str, round: u64) -> Option<Value> {
    let msgs = c.messages();
    let i = msgs.iter().position(|m| m["type"] == "phase" && m["phase"] == phase && m["round"] == round)?;
    msgs.get(i + 1).filter(|m| m["type"] == "media_state").cloned()
}

/// What [`check_media_states`] saw on one socket.
struct MediaStates {
    /// `phase` messages, each followed at once by its `media_state`.
    phases: usize,
    /// `media_state`s that came within a phase (not right after a `phase`, nor the first one
    /// after `welcome`), with the phase they came in.
    in_phase: Vec<(String, Value)>,
}

/// Walks `c`'s messages from index `start` on (a `phase` or a `welcome`) and checks every
/// `media_state` against the routing table: the message right after each `phase` is its
/// `media_state`; any other `media_state` is a change of view within the phase.
fn check_media_states(c: &TestClient, roles: &HashMap<String, String>, start: usize) -> MediaStates {
    let msgs = c.messages();
    let mut members: BTreeSet<String> = roles.keys().cloned().collect();
    let mut phase: Option<Value> = None;
    let mut prev: Option<Value> = None;
    let mut initial = false;
    let mut out = MediaStates { phases: 0, in_phase: Vec::new() };
    for (i, m) in msgs.iter().enumerate().skip(start) {
        match m["type"].as_str().unwrap_or("") {
            "welcome" => {
                members = m["participants"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["id"].as_str().unwrap().to_owned())
                    .collect();
                phase = Some(m["game"].clone());
                initial = true;
            }
            "participant_joined" => {
                members.insert(m["participant"]["id"].as_str().unwrap().to_owned());
            }
            "participant_left" => {
                members.remove(m["id"].as_str().unwrap());
            }
            "phase" => {
                out.phases += 1;
                phase = Some(m.clone());
                let next = msgs.get(i + 1).map(|n| n["type"].clone());
                assert_eq!(next, Some(json!("media_state")), "{}: what follows {m}", c.id());
            }
            "media_state" => {
                let now = phase.as_ref().unwrap_or_else(|| panic!("{}: media_state before any phase", c.id()));
                let expected = table_view(now, roles, &members, c.id());
                assert_eq!(m["receive"], expected, "{}: media_state in {}", c.id(), now["phase"]);
                let after_phase = i > 0 && msgs[i - 1]["type"] == "phase";
                if !after_phase && !initial {
                    assert_ne!(
                        prev.as_ref(),
                        Some(&m["receive"]),
                        "{}: an unchanged view within {}",
                        c.id(),
                        now["phase"]
                    );
                    out.in_phase.push((now["phase"].as_str().unwrap().to_owned(), m["receive"].clone()));
                }
                initial = false;
                prev = Some(m["receive"].clone());
            }
            _ => {}
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_players_night_falls_on_the_server() {
    let server = server().await;
    let url = format!("ws://{}/ws", server.http_addr);
    let mut clients = Vec::new();
    for i in 0..6 {
        // Delayed keyframes make "resumes on a keyframe" a real check: interframes come first.
        let opts = ClientOptions::publisher().with_keyframe_delay(Duration::from_millis(100));
        let opts = if i == 3 { opts.with_pts(109, 120) } else { opts };
        // Two of them send their video as three simulcast layers: no layer may leak either.
        let opts = if i == 1 || i == 4 { opts.with_simulcast(&["q", "h", "f"]) } else { opts };
        clients.push(TestClient::join(&url, "mafia-night", &format!("P{i}"), opts).await.unwrap());
    }
    for rx in &clients {
        for tx in clients.iter().filter(|t| t.id() != rx.id()) {
            rx.wait_count(tx.id(), Kind::Video, 5, LONG).await.unwrap();
        }
    }
    // Every subscriber settles on the simulcast publishers' top layer first (the server moves up
    // once their sender reports came), so no keyframe request of the server's own for a switch
    // falls into the night's checks below.
    for tx in clients.iter().filter(|t| !t.media().layer_ssrcs().is_empty()) {
        let top = format!("{}/f", tx.id());
        for rx in clients.iter().filter(|r| r.id() != tx.id()) {
            let on_top =
                || rx.received(tx.id(), Kind::Video).last().and_then(|p| p.mark()).is_some_and(|m| m.publisher == top);
            assert!(wait_until(LONG, on_top).await, "{} reaches {}'s top layer", rx.id(), tx.id());
        }
    }
    // Night, day, nomination and judgment end early on the players' actions below; their
    // timers are long so a slow machine cannot end them first. Dawn and the defense run on
    // their timers and are long enough for the delivery checks' windows.
    let settings = json!({"mafia": 2, "doctor": 1, "detective": 1, "phase_seconds": {
        "role_reveal": 0.3, "night": 30, "dawn": 1.5, "day": 30, "nomination": 30, "defense": 1.2,
        "judgment": 30, "game_over": 1}});
    let length = |phase: &str| settings["phase_seconds"][phase].as_f64().unwrap();
    // Only the host may start.
    clients[1].send_json(&json!({"type": "start_game", "settings": settings})).unwrap();
    expect_error(&clients[1], "not_host").await;
    clients[0].send_json(&json!({"type": "start_game", "settings": settings})).unwrap();

    let mut players = Vec::new();
    for c in clients {
        let role = c.expect_message("role", LONG).await.unwrap();
        players.push(Player { role: role["role"].as_str().unwrap().to_owned(), c });
    }
    let ids = |pred: &dyn Fn(&Player) -> bool| -> Vec<String> {
        players.iter().filter(|p| pred(p)).map(|p| p.c.id().to_owned()).collect()
    };
    let mafia = ids(&|p| p.role == "mafia");
    let citizens = ids(&|p| p.role == "citizen");
    assert_eq!(mafia.len(), 2);
    assert_eq!(citizens.len(), 2);
    let by_id: HashMap<String, usize> = players.iter().enumerate().map(|(i, p)| (p.c.id().to_owned(), i)).collect();
    let player = |id: &str| &players[by_id[id]];
    let doctor = ids(&|p| p.role == "doctor")[0].clone();
    let detective = ids(&|p| p.role == "detective")[0].clone();
    // The adversary is a citizen without the host's powers (players[0] is the host).
    let host = players[0].c.id().to_owned();
    let (adversary, victim) = if citizens[0] == host {
        (citizens[1].clone(), citizens[0].clone())
    } else {
        (citizens[0].clone(), citizens[1].clone())
    };
    // Roles reach only their owners; mafia learn each other.
    for p in &players {
        let roles = p.c.messages_of("role");
        assert_eq!(roles.len(), 1, "{} got {roles:?}", p.c.id());
        if p.role == "mafia" {
            let mate = mafia.iter().find(|m| *m != p.c.id()).unwrap();
            assert_eq!(roles[0]["teammates"], json!([mate]));
        } else {
            assert_eq!(roles[0]["teammates"], json!([]));
        }
        assert!(roles[0].get("roles").is_none());
    }

    // ---- night 1 ----
    wait_phase(&players, "night").await;
    // The mafia's night view: each other, both kinds, and nobody else. (Every media_state of
    // the game is checked against the routing table at the end.)
    for m in &mafia {
        let c = &player(m).c;
        assert!(wait_until(LONG, || state_after(c, "night", 1).is_some()).await, "{m}: media_state after night");
        let view = state_after(c, "night", 1).unwrap();
        for (id, r) in view["receive"].as_object().unwrap() {
            let mate = mafia.contains(id);
            assert_eq!(r, &json!({"audio": mate, "video": mate}), "{m}'s night view of {id}");
        }
    }
    // The adversary tries every way in.
    let adv = &player(&adversary).c;
    adv.send_json(&json!({"type": "vote", "target": mafia[0]})).unwrap();
    expect_error(adv, "wrong_phase").await;
    adv.send_json(&json!({"type": "night_action", "target": mafia[0]})).unwrap();
    expect_error(adv, "not_allowed").await;
    adv.send_json(&json!({"type": "chat", "channel": "mafia", "text": "let me in"})).unwrap();
    expect_error(adv, "not_allowed").await;
    adv.send_json(&json!({"type": "chat", "channel": "all", "text": "psst"})).unwrap();
    expect_error(adv, "not_allowed").await;
    adv.send_json(&json!({"type": "start_game"})).unwrap();
    expect_error(adv, "not_host").await;
    adv.send_json(&json!({"type": "kick", "id": mafia[0]})).unwrap();
    expect_error(adv, "not_host").await;
    // Its keyframe requests for streams it may not receive are dropped, counted, and never
    // reach the publishers.
    let denied_kf = || async { server.media_counters().await.dropped(parlor_media::DropReason::DeniedKeyframeRequest) };
    let denied_kf_before = denied_kf().await;
    let kf_asked_before: HashMap<String, u64> =
        by_id.keys().map(|id| (id.clone(), player(id).c.keyframe_requests())).collect();
    let mut plis = 0u64;
    let mut nacked: HashMap<String, (u64, Vec<u16>)> = HashMap::new();
    for other in by_id.keys().filter(|id| **id != adversary) {
        plis += adv.send_pli(other).await.unwrap() as u64;
        let seen: Vec<u16> = adv.received(other, Kind::Video).iter().rev().take(30).map(|p| p.seq).collect();
        let mut nacks = seen.clone();
        nacks.extend(
            seen.first().map(|s| (1..20u16).map(|i| s.wrapping_add(i)).collect::<Vec<_>>()).unwrap_or_default(),
        );
        nacked.insert(other.clone(), (now_us(), nacks.clone()));
        adv.send_nack(other, Kind::Video, &nacks).await.unwrap();
    }
    assert!(
        wait_until_async(LONG, || async { denied_kf().await >= denied_kf_before + plis }).await,
        "the adversary's {plis} PLIs were counted as denied keyframe requests ({} -> {})",
        denied_kf_before,
        denied_kf().await
    );
    let denied_kf_delta = denied_kf().await - denied_kf_before;
    // It renegotiates in the middle of the night: the server answers (and offers nothing),
    // well before the night ends.
    let reneg_at = now_us();
    let negotiations = adv.media().negotiations();
    adv.media().renegotiate();
    let answer_at =
        || adv.timed_messages().into_iter().find(|(t, m)| *t >= reneg_at && m["type"] == "answer").map(|(t, _)| t);
    assert!(wait_until(LONG, || answer_at().is_some()).await, "the server answers the night renegotiation");
    assert!(wait_until(LONG, || adv.media().negotiations() > negotiations).await, "the renegotiation completes");
    let answer_at = answer_at().unwrap();
    // The mafia see and hear each other all night, and can talk in their channel.
    let (m0, m1) = (&player(&mafia[0]).c, &player(&mafia[1]).c);
    // Let the night go on for a while after the renegotiation, so a leak it opened would show.
    assert!(
        wait_until(LONG, || sent_between(m0, &mafia[1], Kind::Video, answer_at, u64::MAX).len() >= 10
            && sent_between(m1, &mafia[0], Kind::Audio, answer_at, u64::MAX).len() >= 15)
        .await,
        "the mafia keep receiving each other after the renegotiation"
    );
    assert!(adv.arrival_of(|m| m["type"] == "phase" && m["phase"] == "dawn").is_none(), "still night");
    for (id, before) in &kf_asked_before {
        if *id != adversary {
            assert_eq!(player(id).c.keyframe_requests(), *before, "a denied PLI reached {id}");
        }
    }
    let night_m0 = phase_arrival(m0, "night", 1);
    assert!(
        wait_until(LONG, || sent_between(m0, &mafia[1], Kind::Video, night_m0, u64::MAX).len() >= 20
            && sent_between(m0, &mafia[1], Kind::Audio, night_m0, u64::MAX).len() >= 30)
        .await,
        "mafia receive each other at night"
    );
    assert!(wait_until(LONG, || sent_between(m1, &mafia[0], Kind::Video, night_m0, u64::MAX).len() >= 20).await);
    m0.send_json(&json!({"type": "chat", "channel": "mafia", "text": "the quiet one"})).unwrap();
    // Night actions end the night early. The detective checks a mafioso first (and may not act
    // twice), the doctor saves herself, then both mafia kill the victim.
    let det = &player(&detective).c;
    det.send_json(&json!({"type": "night_action", "target": mafia[0]})).unwrap();
    let inv = det.expect_message("investigation", LONG).await.unwrap();
    assert_eq!(inv["target"], mafia[0].as_str());
    assert_eq!(inv["is_mafia"], true);
    det.send_json(&json!({"type": "night_action", "target": mafia[1]})).unwrap();
    expect_error(det, "not_allowed").await;
    player(&doctor).c.send_json(&json!({"type": "night_action", "target": doctor})).unwrap();
    for m in &mafia {
        player(m).c.send_json(&json!({"type": "night_action", "target": victim})).unwrap();
    }

    // ---- dawn, day 1 ----
    wait_phase(&players, "dawn").await;
    for p in &players {
        let e = p.c.expect_message("eliminated", LONG).await.unwrap();
        assert_eq!(e, json!({"type": "eliminated", "id": victim, "cause": "killed"}));
    }
    // The night was dark for the living town, whatever the adversary sent.
    let mut resume_ms = Vec::new();
    for p in players.iter().filter(|p| p.role != "mafia") {
        let (night, dawn) = (phase_arrival(&p.c, "night", 1), phase_arrival(&p.c, "dawn", 1));
        let dawn_switch = switched_at(&p.c, "dawn", 1, length("dawn"));
        for tx in by_id.keys().filter(|id| **id != p.c.id()) {
            for kind in [Kind::Audio, Kind::Video] {
                let leaked = leaked(&p.c, tx, kind, night, dawn_switch);
                assert!(
                    leaked.is_empty(),
                    "{} ({}) got {} {kind} packets from {tx} sent during the night",
                    p.c.id(),
                    p.role,
                    leaked.len()
                );
            }
            // The adversary's night-time NACKs got no answer. (A retransmission the loaded
            // machine delivers late for a loss NACKed before the night is not one of them.)
            if let Some((asked_at, seqs)) = nacked.get(tx).filter(|_| p.c.id() == adversary) {
                let answered: Vec<u16> =
                    p.c.retransmissions(tx, Kind::Video)
                        .iter()
                        .filter(|r| r.arrival_us() > *asked_at && r.arrival_us() < dawn_switch && seqs.contains(&r.seq))
                        .map(|r| r.seq)
                        .collect();
                assert!(answered.is_empty(), "night-time NACKs for {tx} were answered: {answered:?}");
            }
        }
        // The last media_state of the night said so.
        let states: Vec<(u64, Value)> =
            p.c.timed_messages()
                .into_iter()
                .filter(|(t, m)| m["type"] == "media_state" && *t >= night && *t < dawn)
                .collect();
        let (_, last) = states.last().expect("media_state after phase night");
        for (id, r) in last["receive"].as_object().unwrap() {
            assert_eq!(r, &json!({"audio": false, "video": false}), "{} night view of {id}", p.c.id());
        }
    }
    // Mafia heard nothing of the town at night either.
    for m in &mafia {
        let c = &player(m).c;
        let (night, dawn_switch) = (phase_arrival(c, "night", 1), switched_at(c, "dawn", 1, length("dawn")));
        for tx in by_id.keys().filter(|id| !mafia.contains(id)) {
            for kind in [Kind::Audio, Kind::Video] {
                let leaked = leaked(c, tx, kind, night, dawn_switch).len();
                assert_eq!(leaked, 0, "mafioso {m} got {leaked} {kind} packets from {tx} sent during the night");
            }
        }
    }
    // After its renegotiation the adversary received nothing at all until dawn.
    // (Forwarded before the switch to dawn is what arrived before it: no slack needed.)
    let adv_dawn = switched_at(adv, "dawn", 1, length("dawn"));
    assert!(answer_at < adv_dawn, "the renegotiation completed inside the night");
    for tx in by_id.keys().filter(|id| **id != adversary) {
        for kind in [Kind::Audio, Kind::Video] {
            let got = adv
                .received(tx, kind)
                .iter()
                .filter(|p| p.arrival_us() >= answer_at && p.arrival_us() < adv_dawn)
                .count();
            assert_eq!(got, 0, "after renegotiating, the adversary got {got} {kind} packets from {tx} at night");
        }
    }
    // The mafia received each other all night, both kinds, whole.
    let mut mafia_share = Vec::new();
    for (rx, tx) in [(m0, m1), (m1, m0)] {
        let (night, dawn) = (phase_arrival(rx, "night", 1), phase_arrival(rx, "dawn", 1));
        for kind in [Kind::Audio, Kind::Video] {
            let share = assert_delivered(tx, rx, kind, (night + SLACK_US, dawn - SLACK_US), 10, "mafia at night").await;
            mafia_share.push(share);
        }
    }
    // The dead see and hear everyone from dawn on.
    let victim_c = &player(&victim).c;
    assert!(wait_until(LONG, || state_after(victim_c, "dawn", 1).is_some()).await);
    for (id, r) in state_after(victim_c, "dawn", 1).unwrap()["receive"].as_object().unwrap() {
        assert_eq!(r, &json!({"audio": true, "video": true}), "the dead's view of {id}");
    }
    // The mafia chat reached the mafia only (the victim was alive then).
    for p in &players {
        let got = p.c.messages_of("chat").iter().any(|m| m["channel"] == "mafia");
        assert_eq!(got, p.role == "mafia", "{} mafia chat", p.c.id());
    }
    // Investigations reached only the detective.
    for p in players.iter().filter(|p| p.c.id() != detective) {
        assert!(p.c.messages_of("investigation").is_empty());
    }

    // From dawn everyone living receives every living player again, resuming on a keyframe.
    let living: Vec<String> = by_id.keys().filter(|id| **id != victim).cloned().collect();
    for rx in living.iter().map(|id| &player(id).c) {
        let dawn = phase_arrival(rx, "dawn", 1);
        let night = phase_arrival(rx, "night", 1);
        for tx in living.iter().filter(|id| *id != rx.id()) {
            if mafia.contains(&rx.id().to_owned()) && mafia.contains(tx) {
                continue; // never paused
            }
            assert!(
                wait_until(LONG, || sent_between(rx, tx, Kind::Video, dawn.saturating_sub(SLACK_US), u64::MAX).len()
                    >= 5)
                .await,
                "{} receives {tx} again after dawn",
                rx.id()
            );
            assert!(
                wait_until(LONG, || sent_between(rx, tx, Kind::Audio, dawn, u64::MAX).len() >= 5).await,
                "{} hears {tx} again after dawn",
                rx.id()
            );
            let after: Vec<RecvPacket> =
                rx.received(tx, Kind::Video).into_iter().filter(|p| p.mark().unwrap().sent_us > night).collect();
            assert!(after[0].is_keyframe(), "{} resumed {tx} on a keyframe", rx.id());
            let first_arrival = after[0].arrival_us();
            resume_ms.push((first_arrival.saturating_sub(dawn)) as f64 / 1000.0);
        }
    }

    // Day: a majority calls the vote; the victim cannot.
    wait_phase(&players, "day").await;
    // Dawn carried every living player's audio to every other, whole.
    let mut dawn_share = Vec::new();
    for rx in living.iter().map(|id| &player(id).c) {
        let (dawn, day) = (phase_arrival(rx, "dawn", 1), phase_arrival(rx, "day", 1));
        for tx in living.iter().filter(|id| *id != rx.id()).map(|id| &player(id).c) {
            dawn_share.push(
                assert_delivered(tx, rx, Kind::Audio, (dawn + SLACK_US, day - SLACK_US), 10, "audio at dawn").await,
            );
        }
    }
    // A spectator joins (signaling only, so no track changes for anyone): everyone's view
    // changes within the day.
    let spectator = TestClient::join(&url, "mafia-night", "Spec", ClientOptions::signaling_only()).await.unwrap();
    let spec_id = spectator.id().to_owned();
    for p in &players {
        assert!(
            wait_until(LONG, || p.c.last_of("media_state").is_some_and(|m| m["receive"].get(&spec_id).is_some())).await,
            "{} got a media_state naming the spectator",
            p.c.id()
        );
    }
    assert_eq!(spectator.welcome().unwrap()["game"]["phase"], "day");
    victim_c.send_json(&json!({"type": "call_vote"})).unwrap();
    expect_error(victim_c, "not_allowed").await;
    // Five living: three calls are a majority (a fourth would arrive in nomination).
    for id in [&mafia[0], &mafia[1], &doctor] {
        player(id).c.send_json(&json!({"type": "call_vote"})).unwrap();
    }
    let tally = adv
        .expect_where(LONG, "call_vote tally", |m| {
            m["type"] == "vote_update"
                && m["kind"] == "call_vote"
                && m["votes"].as_object().is_some_and(|v| v.len() == 3)
        })
        .await
        .unwrap();
    assert_eq!(tally["needed"], 3);
    wait_phase(&players, "nomination").await;
    // Everyone but the adversary nominates the adversary, who abstains; the dead may not vote.
    victim_c.send_json(&json!({"type": "vote", "target": adversary})).unwrap();
    expect_error(victim_c, "not_allowed").await;
    adv.send_json(&json!({"type": "vote", "target": adversary})).unwrap();
    expect_error(adv, "not_allowed").await;
    adv.send_json(&json!({"type": "vote", "target": null})).unwrap();
    for id in living.iter().filter(|id| **id != adversary) {
        player(id).c.send_json(&json!({"type": "vote", "target": adversary})).unwrap();
    }

    // ---- defense: only the accused is heard ----
    wait_phase(&players, "defense").await;
    let defense_msg = player(&mafia[0]).c.last_of("phase").unwrap();
    assert_eq!(defense_msg["accused"], adversary.as_str());
    wait_phase(&players, "judgment").await;
    // Every living player, the accused included: everyone's video, the accused's audio only,
    // nothing of the dead.
    let mut defense_share = Vec::new();
    for rx in living.iter().map(|id| &player(id).c) {
        let (from, to) = (phase_arrival(rx, "defense", 1), phase_arrival(rx, "judgment", 1));
        let judgment_switch = switched_at(rx, "judgment", 1, length("judgment"));
        for tx in living.iter().filter(|id| *id != rx.id()).map(|id| &player(id).c) {
            let what = format!("{} receiving {} in defense", rx.id(), tx.id());
            if tx.id() == adversary {
                let share = assert_delivered(tx, rx, Kind::Audio, (from + SLACK_US, to - SLACK_US), 20, &what).await;
                defense_share.push(share);
            } else {
                let leaked = leaked(rx, tx.id(), Kind::Audio, from, judgment_switch).len();
                assert_eq!(leaked, 0, "{what}: heard {leaked} audio packets");
            }
            defense_share
                .push(assert_delivered(tx, rx, Kind::Video, (from + SLACK_US, to - SLACK_US), 10, &what).await);
        }
        // The dead victim is neither seen nor heard by the living.
        let from_dead =
            sent_between(rx, &victim, Kind::Audio, phase_arrival(rx, "dawn", 1), to.saturating_sub(SLACK_US)).len()
                + sent_between(rx, &victim, Kind::Video, phase_arrival(rx, "dawn", 1), to.saturating_sub(SLACK_US))
                    .len();
        assert_eq!(from_dead, 0, "{} received the dead victim", rx.id());
    }
    // The dead see and hear every living player during the defense.
    let (from, to) = (phase_arrival(victim_c, "defense", 1), phase_arrival(victim_c, "judgment", 1));
    for tx in living.iter().map(|id| &player(id).c) {
        for kind in [Kind::Audio, Kind::Video] {
            let share =
                assert_delivered(tx, victim_c, kind, (from + SLACK_US, to - SLACK_US), 10, "the dead in defense").await;
            defense_share.push(share);
        }
    }

    // ---- judgment: guilty; the mafia reach parity and win ----
    adv.send_json(&json!({"type": "vote", "verdict": "innocent"})).unwrap();
    expect_error(adv, "not_allowed").await;
    for id in living.iter().filter(|id| **id != adversary) {
        player(id).c.send_json(&json!({"type": "vote", "verdict": "guilty"})).unwrap();
    }
    for p in &players {
        let over = p.c.expect_message("game_over", LONG).await.unwrap();
        assert_eq!(over["winner"], "mafia");
        assert_eq!(over["roles"].as_object().unwrap().len(), 6, "every role revealed");
        assert_eq!(over["roles"][&mafia[0]], "mafia");
    }
    wait_phase(&players, "game_over").await;
    wait_phase(&players, "lobby").await;
    spectator.expect_where(LONG, "lobby", |m| m["type"] == "phase" && m["phase"] == "lobby").await.unwrap();

    // Phase changes never renegotiate: from role_reveal to the lobby no client got a server
    // offer, and only the adversary got an answer — the one to its own night-time offer.
    let roles: HashMap<String, String> = players.iter().map(|p| (p.c.id().to_owned(), p.role.clone())).collect();
    let mut media_states = 0;
    for c in players.iter().map(|p| &p.c).chain([&spectator]) {
        let last_phase = || c.messages().iter().rposition(|m| m["type"] == "phase").unwrap();
        assert!(
            wait_until(LONG, || c.messages().len() > last_phase() + 1).await,
            "{}: media_state after lobby",
            c.id()
        );
        let msgs = c.messages();
        let start = if c.id() == spec_id {
            msgs.iter().position(|m| m["type"] == "welcome").unwrap()
        } else {
            msgs.iter().position(|m| m["type"] == "phase" && m["phase"] == "role_reveal").unwrap()
        };
        let game = &msgs[start..=last_phase()];
        let offers = game.iter().filter(|m| m["type"] == "offer").count();
        assert_eq!(offers, 0, "{} got server offers during the game", c.id());
        let answers: Vec<u64> = c
            .timed_messages()
            .into_iter()
            .skip(start)
            .take(game.len())
            .filter(|(_, m)| m["type"] == "answer")
            .map(|(t, _)| t)
            .collect();
        let expected_answers = if c.id() == adversary { vec![answer_at] } else { vec![] };
        assert_eq!(answers, expected_answers, "{}: answers during the game", c.id());
        // Exactly one media_state right after each phase, matching the routing table; the only
        // other one is the spectator's arrival, within the day.
        let seen = check_media_states(c, &roles, start);
        media_states += seen.phases + seen.in_phase.len();
        if c.id() == spec_id {
            assert_eq!(seen.phases, 5, "nomination, defense, judgment, game_over, lobby");
            assert!(seen.in_phase.is_empty(), "spectator: {:?}", seen.in_phase);
        } else {
            assert_eq!(seen.phases, 9, "{}: role_reveal … lobby", c.id());
            let changes: Vec<&str> = seen.in_phase.iter().map(|(p, _)| p.as_str()).collect();
            assert_eq!(changes, ["day"], "{}: views changed within a phase", c.id());
            assert_eq!(seen.in_phase[0].1[&spec_id], json!({"audio": false, "video": false}));
        }
    }

    // Timer → phase delivered, for the timer-driven switches (role_reveal→night, dawn→day,
    // defense→judgment, game_over→lobby): how late the phase arrives after its deadline.
    let mut lateness = Vec::new();
    for p in &players {
        let timed = p.c.timed_messages();
        let phases: Vec<&(u64, Value)> = timed.iter().filter(|(_, m)| m["type"] == "phase").collect();
        for w in phases.windows(2) {
            let (prev, next) = (&w[0].1, &w[1]);
            if ["role_reveal", "dawn", "defense", "game_over"].contains(&prev["phase"].as_str().unwrap()) {
                let deadline_us = prev["ends_at"].as_u64().unwrap() * 1000;
                lateness.push(next.0.saturating_sub(deadline_us) as f64 / 1000.0);
            }
        }
    }
    let pct = |v: &mut Vec<f64>, q: f64| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[((v.len() - 1) as f64 * q).round() as usize]
    };
    println!(
        "phase switch, timer deadline -> phase message at the client: n={} p50={:.1} ms max={:.1} ms (ends_at has ms resolution)",
        lateness.len(),
        pct(&mut lateness, 0.5),
        pct(&mut lateness, 1.0)
    );
    println!(
        "video resume, phase dawn at the client -> first video packet: n={} p50={:.1} ms p95={:.1} ms max={:.1} ms (publishers delay keyframes by 100 ms)",
        resume_ms.len(),
        pct(&mut resume_ms, 0.5),
        pct(&mut resume_ms, 0.95),
        pct(&mut resume_ms, 1.0)
    );
    let min = |v: &[f64]| v.iter().cloned().fold(f64::INFINITY, f64::min) * 100.0;
    println!(
        "delivery (received / sent in the window): mafia at night min={:.1}% (n={}), audio at dawn min={:.1}% (n={}), defense min={:.1}% (n={})",
        min(&mafia_share),
        mafia_share.len(),
        min(&dawn_share),
        dawn_share.len(),
        min(&defense_share),
        defense_share.len()
    );
    println!(
        "adversary: {plis} PLIs for denied streams -> denied_keyframe_request +{denied_kf_delta}; renegotiation answered {:.1} ms after it started; media_state messages checked against the table: {media_states}",
        answer_at.saturating_sub(reneg_at) as f64 / 1000.0
    );
    // Server side: the cause of each phase switch (mostly a timer firing) → every media worker
    // has acknowledged the new routes.
    let apply = server.signaling_stats().phase_switch_apply.snapshot();
    let p50_bound = apply.buckets.iter().find(|(_, n)| *n * 2 >= apply.count).map_or(f64::NAN, |(b, _)| *b);
    println!(
        "phase switch, timer firing -> routes applied by the media worker: n={} mean={:.0} us p50<={:.0} us max={:.0} us",
        apply.count,
        apply.sum / apply.count as f64 * 1e6,
        p50_bound * 1e6,
        apply.max * 1e6
    );
    // role_reveal→night, dawn→day, defense→judgment, game_over→lobby run on timers.
    assert!(apply.count >= 4, "every timer-driven phase switch was counted: {}", apply.count);
    assert!(server.media_counters().await.dropped(parlor_media::DropReason::NotAllowed) > 0);
}
