//! Active speaker (docs/PROTOCOL.md, `speaking`): the media layer reads every publisher's
//! RFC 6464 audio level, and the room tells each participant who speaks among those it may
//! hear — never about a publisher whose audio the routes keep from it, however loud.

use crate::support;

use std::time::Duration;

use serde_json::{json, Value};
use support::*;

const LONG: Duration = Duration::from_secs(30);

fn paced(opts: ClientOptions) -> ClientOptions {
    ClientOptions { audio_interval: Duration::from_millis(20), video_interval: Duration::from_millis(100), ..opts }
}

async fn join_stage(url: &str, room: &str, name: &str, opts: ClientOptions) -> TestClient {
    let join = json!({"type": "join", "room": room, "name": name, "kind": "stage"});
    let c = TestClient::join_with(url, join, opts).await.unwrap_or_else(|e| panic!("{name} joins: {e}"));
    c.wait_connected(LONG).await.unwrap_or_else(|e| panic!("{name} connects: {e}"));
    c
}

/// The ids of a `speaking` message, sorted.
fn ids_of(msg: &Value) -> Vec<String> {
    let mut ids: Vec<String> =
        msg["ids"].as_array().expect("speaking.ids").iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    ids.sort();
    ids
}

/// Waits until `c`'s last `speaking` names exactly `expected` (none received counts as nobody).
async fn wait_speaking(c: &TestClient, expected: &[&str], what: &str) {
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    want.sort();
    let ok = wait_until(LONG, || c.last_of("speaking").map_or(Vec::new(), |m| ids_of(&m)) == want).await;
    assert!(ok, "{what}: {} should hear {want:?} speaking; got {:?}", c.id(), c.messages_of("speaking"));
}

/// Every `speaking` `c` received after `since` (µs, arrival), with its arrival.
fn speaking_after(c: &TestClient, since: u64) -> Vec<Vec<String>> {
    c.timed_messages()
        .into_iter()
        .filter(|(at, m)| *at >= since && msg_type(m) == "speaking")
        .map(|(_, m)| ids_of(&m))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_speaker_is_reported_only_to_those_who_may_hear_them() {
    let server = server().await;
    let url = format!("ws://{}/ws", server.http_addr);
    let host = join_stage(&url, "speakers", "Host", paced(ClientOptions::publisher())).await;
    let a = join_stage(&url, "speakers", "Ann", paced(ClientOptions::publisher())).await;
    let b = join_stage(&url, "speakers", "Bo", paced(ClientOptions::publisher())).await;
    let r = join_stage(&url, "speakers", "Ray", paced(ClientOptions::receiver())).await;
    let (h, b_id) = (host.id().to_owned(), b.id().to_owned());
    for c in [&a, &b, &r] {
        c.wait_count(&h, Kind::Audio, 10, LONG).await.unwrap();
    }

    // The host and an audience member talk, the audience member louder. The audience's audio
    // reaches nobody (the stage table), so everyone is told of the host alone, in the same
    // reports that carry Bo: a room that did not filter would name Bo here.
    host.media().set_audio_level(Some(20));
    b.media().set_audio_level(Some(5));
    for c in [&a, &b, &r] {
        wait_speaking(c, &[&h], "the host talks").await;
    }
    // The host hears nobody in the audience: nothing to tell it.
    for c in [&host, &a, &b, &r] {
        assert!(
            c.messages_of("speaking").iter().all(|m| !ids_of(m).contains(&b_id)),
            "{} was told of Bo, whom nobody hears: {:?}",
            c.id(),
            c.messages_of("speaking")
        );
    }
    assert!(host.messages_of("speaking").iter().all(|m| ids_of(m).is_empty()), "{:?}", host.messages_of("speaking"));

    // On stage, Bo reaches everyone: now everyone but Bo is told (nobody hears themself).
    host.send_json(&json!({"type": "stage", "id": b_id, "on": true})).unwrap();
    wait_speaking(&host, &[&b_id], "Bo on stage").await;
    for c in [&a, &r] {
        wait_speaking(c, &[&h, &b_id], "Bo on stage").await;
    }
    wait_speaking(&b, &[&h], "Bo on stage, as Bo hears it").await;

    // Sent back: from the update announcing it, nobody is told of Bo again.
    host.send_json(&json!({"type": "stage", "id": b_id, "on": false})).unwrap();
    let mut back_at = Vec::new();
    let back = |m: &Value| {
        msg_type(m) == "participant_updated"
            && m["participant"]["id"] == b_id.as_str()
            && m["participant"]["on_stage"] == false
    };
    for c in [&host, &a, &r] {
        let mut at = None;
        let ok = wait_until(LONG, || {
            at = c.arrival_of(back);
            at.is_some()
        })
        .await;
        assert!(ok, "{} is told Bo went back: {:?}", c.id(), c.types());
        back_at.push(at.unwrap());
    }
    wait_speaking(&host, &[], "Bo back").await;
    for c in [&a, &r] {
        wait_speaking(c, &[&h], "Bo back").await;
    }
    for (c, at) in [&host, &a, &r].into_iter().zip(back_at) {
        let later = speaking_after(c, at);
        assert!(!later.is_empty(), "{} is told that Bo stopped reaching it", c.id());
        assert!(later.iter().all(|ids| !ids.contains(&b_id)), "{}: {later:?}", c.id());
    }

    // Silence (level 127), then a muted microphone (no audio at all): nobody speaks.
    host.media().set_audio_level(Some(127));
    for c in [&a, &b, &r] {
        wait_speaking(c, &[], "the host fell silent").await;
    }
    host.media().set_audio_level(Some(10));
    for c in [&a, &b, &r] {
        wait_speaking(c, &[&h], "the host talks again").await;
    }
    host.media().set_publishing(false);
    for c in [&a, &b, &r] {
        wait_speaking(c, &[], "the host's microphone is off").await;
    }
}
