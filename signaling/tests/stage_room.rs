//! Stage rooms over the wire (docs/PROTOCOL.md, "Stage rooms"): raised hands, the stage, the
//! host's view, the routes they give the media layer, and what the audience may not do. The
//! packets themselves are checked with real WebRTC clients in the workspace's tests/.

mod wire;

use std::sync::Arc;
use std::time::Duration;

use parlor_signaling::game::stage::StageLimits;
use parlor_signaling::{Hub, HubSettings, MediaKind, OpenAccess, Registry};
use serde_json::{json, Value};
use wire::{join, Client, Recorder};

fn hub(media: &Recorder, max_on_stage: usize) -> Hub {
    let registry = Registry::builtin_with(StageLimits { max_on_stage });
    Hub::with_games(Arc::new(media.clone()), HubSettings::default(), Arc::new(OpenAccess), registry)
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn hands_the_stage_and_the_view() {
    let media = Recorder::default();
    let hub = hub(&media, 1);
    let (mut host, h) = join(&hub, "hall", "Host", Some("stage")).await;
    let mut audience = Vec::new();
    for name in ["Ari", "Bo", "Cy"] {
        audience.push(join(&hub, "hall", name, None).await);
    }
    let a = audience[0].1.clone();
    let b = audience[1].1.clone();
    let c = audience[2].1.clone();
    // The host reaches everyone; the audience nobody, until the host's view names them.
    assert_eq!(sorted(media.receivers(&h, MediaKind::Audio).unwrap()), sorted(vec![a.clone(), b.clone(), c.clone()]));
    assert_eq!(media.receivers(&a, MediaKind::Video).unwrap_or_default(), Vec::<String>::new());

    // A hand, seen by everyone in the participant object.
    audience[1].0.send(json!({"type": "raise_hand", "raised": true})).await;
    let up = host.next("participant_updated").await;
    assert_eq!((up["participant"]["id"].as_str(), up["participant"]["hand"].as_bool()), (Some(b.as_str()), Some(true)));

    // The audience may not lead.
    let (ari, _) = &mut audience[0];
    ari.send(json!({"type": "stage", "id": a, "on": true})).await;
    assert_eq!(ari.error().await, "not_host");
    ari.send(json!({"type": "view", "ids": [a]})).await;
    assert_eq!(ari.error().await, "not_host");
    ari.send(json!({"type": "stage", "id": a})).await;
    assert_eq!(ari.error().await, "bad_field", "`on` is required");
    ari.send(json!({"type": "vote", "target": a})).await;
    assert_eq!(ari.error().await, "wrong_kind");

    // Bo comes up: heard and seen by all, hand down. The stage holds one.
    host.send(json!({"type": "stage", "id": b, "on": true})).await;
    let up = audience[2].0.next_where("participant_updated", |v| v["participant"]["on_stage"] == true).await;
    assert_eq!(up["participant"]["id"], b.as_str(), "{up}");
    assert_eq!(up["participant"]["hand"], false, "{up}");
    assert_eq!(sorted(media.receivers(&b, MediaKind::Audio).unwrap()), sorted(vec![h.clone(), a.clone(), c.clone()]));
    host.send(json!({"type": "stage", "id": c, "on": true})).await;
    assert_eq!(host.error().await, "stage_full");

    // The host's page: exactly these cameras, to the host only.
    host.send(json!({"type": "view", "ids": [a, c]})).await;
    let state = host.next_where("media_state", |v| v["receive"][&a]["video"] == true).await;
    assert_eq!(state["receive"][&a]["video"], true, "{state}");
    assert_eq!(state["receive"][&a]["audio"], false, "{state}");
    assert_eq!(media.receivers(&a, MediaKind::Video), Some(vec![h.clone()]));
    assert_eq!(media.receivers(&c, MediaKind::Video), Some(vec![h.clone()]));
    let too_many: Vec<String> = (0..17).map(|i| format!("x{i}")).collect();
    host.send(json!({"type": "view", "ids": too_many})).await;
    assert_eq!(host.error().await, "bad_field");

    // Sent back: nobody but the host (whose view does not name Bo) receives Bo.
    host.send(json!({"type": "stage", "id": b, "on": false})).await;
    audience[0]
        .0
        .next_where("participant_updated", |v| {
            v["participant"]["on_stage"] == false && v["participant"]["id"] == b.as_str()
        })
        .await;
    assert_eq!(media.receivers(&b, MediaKind::Audio), Some(vec![]));
    assert_eq!(media.receivers(&b, MediaKind::Video), Some(vec![]));

    // A stage room has no game to start.
    host.send(json!({"type": "start_game"})).await;
    assert_eq!(host.error().await, "not_allowed");
}

#[tokio::test]
async fn the_host_leaving_hands_over_and_a_leaver_frees_the_stage() {
    let media = Recorder::default();
    let hub = hub(&media, 1);
    let (mut host, _) = join(&hub, "hall", "Host", Some("stage")).await;
    let (mut ari, a) = join(&hub, "hall", "Ari", None).await;
    let (mut bo, b) = join(&hub, "hall", "Bo", None).await;
    host.send(json!({"type": "stage", "id": a, "on": true})).await;
    bo.next_where("participant_updated", |v| v["participant"]["on_stage"] == true).await;
    host.send(json!({"type": "view", "ids": [b]})).await;
    host.drain().await;

    // Ari (on stage) leaves: the place is free for Bo.
    ari.send(json!({"type": "leave"})).await;
    bo.next("participant_left").await;
    host.send(json!({"type": "stage", "id": b, "on": true})).await;
    let up = bo.next_where("participant_updated", |v| v["participant"]["id"] == b.as_str()).await;
    assert_eq!(up["participant"]["on_stage"], true, "{up}");

    // The host leaves: the powers pass to Bo, who is now the host and not "on stage".
    host.send(json!({"type": "leave"})).await;
    assert_eq!(bo.next("host_changed").await["host"], b.as_str());
    let seen = bo.drain().await;
    let me = seen.iter().rev().find(|v| v["type"] == "participant_updated" && v["participant"]["id"] == b.as_str());
    assert_eq!(me.map(|v| v["participant"]["on_stage"].clone()), Some(json!(false)), "{seen:?}");
    // The new host leads.
    let (_cy, c) = join(&hub, "hall", "Cy", None).await;
    bo.send(json!({"type": "view", "ids": [c]})).await;
    let seen = bo.drain().await;
    let state = seen.iter().rev().find(|v| v["type"] == "media_state").unwrap();
    assert_eq!(state["receive"][&c], json!({"audio": false, "video": true}), "{seen:?}");
    assert_eq!(media.receivers(&c, MediaKind::Video), Some(vec![b.clone()]));
}

#[tokio::test]
async fn a_stage_room_holds_100_by_default_and_a_mafia_room_can_become_one() {
    let media = Recorder::default();
    let hub = hub(&media, 4);
    let _host = join(&hub, "big", "h", Some("stage")).await;
    let mut seats = Vec::new();
    for i in 1..100 {
        seats.push(join(&hub, "big", &format!("p{i}"), None).await);
    }
    let mut extra = Client::new(&hub);
    extra.send(json!({"type": "join", "room": "big", "name": "late"})).await;
    assert_eq!(extra.error().await, "room_full");

    // A Mafia room switched to a stage room in the lobby.
    let (mut m, _) = join(&hub, "night", "m", None).await;
    m.send(json!({"type": "set_kind", "kind": "stage"})).await;
    assert_eq!(m.next("kind_changed").await["kind"], "stage");
    m.send(json!({"type": "raise_hand", "raised": true})).await;
    assert_eq!(m.error().await, "not_allowed", "the host does not raise a hand");
}

#[tokio::test]
async fn limits_carry_the_stage_size_in_stage_rooms_only() {
    let media = Recorder::default();
    let hub = hub(&media, 3);
    let mut host = Client::new(&hub);
    host.send(json!({"type": "join", "room": "hall", "name": "h", "kind": "stage"})).await;
    let welcome = host.next("welcome").await;
    assert_eq!(welcome["kind"], "stage");
    assert_eq!(welcome["limits"]["max_on_stage"], 3, "{welcome}");
    assert_eq!(welcome["limits"]["max_participants"], 100, "{welcome}");
    let mut guest = Client::new(&hub);
    guest.send(json!({"type": "join", "room": "hall", "name": "g"})).await;
    assert_eq!(guest.next("welcome").await["limits"]["max_on_stage"], 3);

    // A Mafia room has no stage, so no such limit.
    let mut m = Client::new(&hub);
    m.send(json!({"type": "join", "room": "night", "name": "m"})).await;
    let welcome = m.next("welcome").await;
    assert_eq!(welcome["kind"], "mafia");
    assert!(welcome["limits"].get("max_on_stage").is_none(), "{welcome}");
    assert_eq!(welcome["limits"]["max_participants"], 24, "{welcome}");

    // Made a stage room, it says its new limits to who is there; made Mafia again, it drops them.
    m.send(json!({"type": "set_kind", "kind": "stage"})).await;
    let changed = m.next("kind_changed").await;
    assert_eq!(
        (changed["limits"]["max_on_stage"].as_u64(), changed["limits"]["max_participants"].as_u64()),
        (Some(3), Some(100)),
        "{changed}"
    );
    m.send(json!({"type": "set_kind", "kind": "mafia"})).await;
    let changed = m.next("kind_changed").await;
    assert!(changed["limits"].get("max_on_stage").is_none(), "{changed}");
    assert_eq!(changed["limits"]["max_participants"], 24, "{changed}");
}

#[tokio::test]
async fn a_layout_reaches_the_media_layer_and_a_bad_one_is_refused() {
    let media = Recorder::default();
    let hub = hub(&media, 4);
    let (mut host, host_id) = join(&hub, "tiles", "h", Some("stage")).await;
    let (mut guest, guest_id) = join(&hub, "tiles", "g", None).await;
    host.send(json!({"type": "layout", "tiles": {guest_id.as_str(): {"height": 360}}})).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while media.layouts.lock().unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the layout reached the media layer");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let got = media.layouts.lock().unwrap().clone();
    assert_eq!(got, vec![(host_id.clone(), [(guest_id.clone(), 360)].into())]);

    // Too tall, too many, or not the shape: `bad_field`, and nothing passed on.
    guest.send(json!({"type": "layout", "tiles": {host_id.as_str(): {"height": 99999}}})).await;
    assert_eq!(guest.error().await, "bad_field");
    guest.send(json!({"type": "layout", "tiles": {host_id.as_str(): {"height": 4321}}})).await;
    assert_eq!(guest.error().await, "bad_field");
    let many: serde_json::Map<String, Value> = (0..129).map(|i| (format!("p{i}"), json!({"height": 10}))).collect();
    guest.send(json!({"type": "layout", "tiles": many})).await;
    assert_eq!(guest.error().await, "bad_field");
    guest.send(json!({"type": "layout", "tiles": {host_id.as_str(): {"height": 10, "bitrate": 5}}})).await;
    assert_eq!(guest.error().await, "bad_field");
    guest.send(json!({"type": "layout", "tiles": [1, 2]})).await;
    assert_eq!(guest.error().await, "bad_field");
    assert_eq!(media.layouts.lock().unwrap().len(), 1, "no refused layout passed on");
}
