//! A whole Mafia game through the server with six real WebRTC clients (two mafia) and short
//! phases. Every payload carries its publisher's send time, so the contract of DESIGN.md §2
//! can be checked exactly: nothing a publisher sent after a subscriber was told a phase that
//! denies it reaches that subscriber.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};
use support::*;

const LONG: Duration = Duration::from_secs(20);
/// How long after a phase message a packet sent before it may still be in flight, and how
/// much earlier than the phase message the server may already apply the next phase's routes.
const SLACK_US: u64 = 50_000;

struct Player {
    c: TestClient,
    role: String,
}

fn phase_arrival(c: &TestClient, phase: &str, round: u64) -> u64 {
    c.arrival_of(|m| m["type"] == "phase" && m["phase"] == phase && m["round"] == round)
        .unwrap_or_else(|| panic!("{} never got phase {phase} (round {round})", c.id()))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_players_night_falls_on_the_server() {
    let server = server().await;
    let url = format!("ws://{}/ws", server.http_addr);
    let mut clients = Vec::new();
    for i in 0..6 {
        // Delayed keyframes make "resumes on a keyframe" a real check: interframes come first.
        let opts = ClientOptions::publisher().with_keyframe_delay(Duration::from_millis(100));
        let opts = if i == 3 { opts.with_pts(109, 120) } else { opts };
        clients.push(TestClient::join(&url, "mafia-night", &format!("P{i}"), opts).await.unwrap());
    }
    for rx in &clients {
        for tx in clients.iter().filter(|t| t.id() != rx.id()) {
            rx.wait_count(tx.id(), Kind::Video, 5, LONG).await.unwrap();
        }
    }
    let settings = json!({"mafia": 2, "doctor": 1, "detective": 1, "phase_seconds": {
        "role_reveal": 0.3, "night": 6, "dawn": 0.5, "day": 6, "nomination": 6, "defense": 1.2,
        "judgment": 6, "game_over": 1}});
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
    for p in &players {
        let state = p.c.expect_message("media_state", LONG).await.unwrap();
        let _ = state; // the full check is below, on the last media_state of the night
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
    let mut nacked: HashMap<String, (u64, Vec<u16>)> = HashMap::new();
    for other in by_id.keys().filter(|id| **id != adversary) {
        adv.send_pli(other).await.unwrap();
        let seen: Vec<u16> = adv.received(other, Kind::Video).iter().rev().take(30).map(|p| p.seq).collect();
        let mut nacks = seen.clone();
        nacks.extend(
            seen.first().map(|s| (1..20u16).map(|i| s.wrapping_add(i)).collect::<Vec<_>>()).unwrap_or_default(),
        );
        nacked.insert(other.clone(), (now_us(), nacks.clone()));
        adv.send_nack(other, Kind::Video, &nacks).await.unwrap();
    }
    adv.media().renegotiate();
    // The mafia see and hear each other all night, and can talk in their channel.
    let (m0, m1) = (&player(&mafia[0]).c, &player(&mafia[1]).c);
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
        for tx in by_id.keys().filter(|id| **id != p.c.id()) {
            for kind in [Kind::Audio, Kind::Video] {
                let leaked = sent_between(&p.c, tx, kind, night, dawn.saturating_sub(SLACK_US));
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
                        .filter(|r| r.arrival_us() > *asked_at && r.arrival_us() < dawn && seqs.contains(&r.seq))
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
        let (night, dawn) = (phase_arrival(c, "night", 1), phase_arrival(c, "dawn", 1));
        for tx in by_id.keys().filter(|id| !mafia.contains(id)) {
            assert!(sent_between(c, tx, Kind::Video, night, dawn.saturating_sub(SLACK_US)).is_empty());
        }
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
            let after: Vec<RecvPacket> =
                rx.received(tx, Kind::Video).into_iter().filter(|p| p.mark().unwrap().sent_us > night).collect();
            assert!(after[0].is_keyframe(), "{} resumed {tx} on a keyframe", rx.id());
            let first_arrival = after[0].arrival_us();
            resume_ms.push((first_arrival.saturating_sub(dawn)) as f64 / 1000.0);
        }
    }
    // Nobody living receives the dead victim during the game.
    let victim_c = &player(&victim).c;

    // Day: a majority calls the vote; the victim cannot.
    wait_phase(&players, "day").await;
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
    for rx in living.iter().filter(|id| **id != adversary).map(|id| &player(id).c) {
        let (from, to) = (phase_arrival(rx, "defense", 1), phase_arrival(rx, "judgment", 1));
        let heard = sent_between(rx, &adversary, Kind::Audio, from, to.saturating_sub(SLACK_US)).len();
        assert!(heard >= 20, "{} hears the accused in defense ({heard})", rx.id());
        for tx in living.iter().filter(|id| **id != adversary && *id != rx.id()) {
            let leaked = sent_between(rx, tx, Kind::Audio, from, to.saturating_sub(SLACK_US)).len();
            assert_eq!(leaked, 0, "{} heard {tx} during the defense", rx.id());
            let seen = sent_between(rx, tx, Kind::Video, from, to.saturating_sub(SLACK_US)).len();
            assert!(seen >= 10, "{} still sees {tx} during the defense ({seen})", rx.id());
        }
        // The dead victim is neither seen nor heard by the living.
        let from_dead =
            sent_between(rx, &victim, Kind::Audio, phase_arrival(rx, "dawn", 1), to.saturating_sub(SLACK_US)).len()
                + sent_between(rx, &victim, Kind::Video, phase_arrival(rx, "dawn", 1), to.saturating_sub(SLACK_US))
                    .len();
        assert_eq!(from_dead, 0, "{} received the dead victim", rx.id());
    }
    // The dead hear everyone during the defense.
    let (from, to) = (phase_arrival(victim_c, "defense", 1), phase_arrival(victim_c, "judgment", 1));
    assert!(sent_between(victim_c, &mafia[0], Kind::Audio, from, to).len() >= 10, "the dead hear all");

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
    assert!(server.media_counters().await.dropped(parlor_media::DropReason::NotAllowed) > 0);
}
