//! Stage rooms through the whole server with real WebRTC clients (docs/PROTOCOL.md, "Stage
//! rooms"): the host and the stage reach everyone, an audience member reaches nobody by audio
//! and only the host by video while in the host's `view`. Every payload carries its
//! publisher's send time, so each change of routes is judged by when a packet was SENT
//! against when its receiver got the message announcing the change (the room applies routes
//! before it sends that message, docs/PROTOCOL.md "Ordering"): nothing sent after it may
//! arrive where the routes now deny it, whenever a lagging reader reads it.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use parlor_media::DropReason;
use serde_json::{json, Value};
use support::*;

const LONG: Duration = Duration::from_secs(30);

/// Audience cameras answer keyframe requests late (interframes go out meanwhile), so a camera
/// forwarded without waiting for its keyframe would show.
const KEYFRAME_DELAY: Duration = Duration::from_millis(150);

/// The tests share two cores with other work: one room at a time in this binary.
static ONE_ROOM_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A stage room: the host (who created it), audience members who publish camera and
/// microphone, and receive-only audience members.
struct Hall {
    host: TestClient,
    publishers: Vec<TestClient>,
    receivers: Vec<TestClient>,
}

impl Hall {
    fn audience(&self) -> impl Iterator<Item = &TestClient> {
        self.publishers.iter().chain(&self.receivers)
    }

    fn everyone(&self) -> impl Iterator<Item = &TestClient> {
        std::iter::once(&self.host).chain(self.audience())
    }

    fn ids(&self) -> Vec<String> {
        self.everyone().map(|c| c.id().to_owned()).collect()
    }
}

/// Every client sends Opus every 40 ms and a video frame every 50 ms (half the usual packet
/// rate): thirty peer connections share two cores with other work.
fn paced(opts: ClientOptions) -> ClientOptions {
    ClientOptions { audio_interval: Duration::from_millis(40), video_interval: Duration::from_millis(50), ..opts }
}

fn audience_publisher() -> ClientOptions {
    paced(ClientOptions::publisher().with_keyframe_delay(KEYFRAME_DELAY))
}

/// How many clients join at once before their connections are awaited: a burst of thirty
/// DTLS handshakes on a loaded machine can outlast ICE's patience.
const JOIN_BATCH: usize = 5;

async fn join_stage(url: &str, room: &str, name: &str, opts: ClientOptions) -> TestClient {
    let join = json!({"type": "join", "room": room, "name": name, "kind": "stage"});
    let c = TestClient::join_with(url, join, opts).await.unwrap_or_else(|e| panic!("{name} joins {room}: {e}"));
    assert_eq!(c.welcome().unwrap()["kind"], "stage", "{name}: {:?}", c.welcome());
    c
}

/// Opens a stage room (the host joins first, creating it with `"kind": "stage"`), then the
/// publishing audience, then the receive-only audience (whose joins change nobody's tracks),
/// and waits until every audience member receives the host's audio and video.
async fn open_hall(url: &str, room: &str, publishers: usize, receivers: usize) -> Hall {
    let host = join_stage(url, room, "Host", paced(ClientOptions::publisher())).await;
    host.wait_connected(LONG).await.unwrap();
    let mut hall = Hall { host, publishers: Vec::new(), receivers: Vec::new() };
    let seats =
        (0..publishers).map(|i| (true, format!("Cam{i}"))).chain((0..receivers).map(|i| (false, format!("Seat{i}"))));
    let seats: Vec<(bool, String)> = seats.collect();
    for batch in seats.chunks(JOIN_BATCH) {
        let mut joined = Vec::new();
        for (publishes, name) in batch {
            let opts = if *publishes { audience_publisher() } else { paced(ClientOptions::receiver()) };
            joined.push((*publishes, join_stage(url, room, name, opts).await));
        }
        for (publishes, c) in joined {
            if let Err(e) = c.wait_connected(LONG).await {
                panic!("{e}; negotiation {:?}; messages {:?}", c.media().signaling_log(), c.types());
            }
            if publishes {
                hall.publishers.push(c);
            } else {
                hall.receivers.push(c);
            }
        }
    }
    let host = hall.host.id().to_owned();
    for c in hall.audience() {
        for kind in [Kind::Video, Kind::Audio] {
            if let Err(e) = c.wait_count(&host, kind, 10, LONG).await {
                let m = c.media();
                panic!("{e}; state {:?}; negotiation {:?}; messages {:?}", m.state(), m.signaling_log(), c.types());
            }
        }
    }
    hall
}

/// The `receive` object the stage table of docs/PROTOCOL.md prescribes for `rx` (written out
/// again from the table, not from the server's code): the host and the stage reach everyone,
/// an audience camera reaches the host while in `view`.
fn table_view(ids: &[String], host: &str, on_stage: &[&str], view: &[&str], rx: &str) -> Value {
    let speaker = |id: &str| id == host || on_stage.contains(&id);
    let cells = ids
        .iter()
        .filter(|id| *id != rx)
        .map(|tx| {
            let video = speaker(tx) || (rx == host && view.contains(&tx.as_str()));
            (tx.clone(), json!({"audio": speaker(tx), "video": video}))
        })
        .collect();
    Value::Object(cells)
}

/// Waits for a `media_state` that arrived at or after `since` and equals `expected`; its arrival.
async fn wait_media_state(c: &TestClient, since: u64, expected: &Value, what: &str) -> u64 {
    let found = || {
        c.timed_messages()
            .into_iter()
            .find(|(t, m)| *t >= since && m["type"] == "media_state" && m["receive"] == *expected)
            .map(|(t, _)| t)
    };
    if !wait_until(LONG, || found().is_some()).await {
        panic!("{}: no media_state {expected} ({what}); last {:?}", c.id(), c.last_of("media_state"));
    }
    found().unwrap()
}

/// Waits until `c`'s latest `media_state` is `expected` and `c` got a `participant_updated`
/// or `media_state` at or after `since` (the change was announced, whether or not it changed
/// `c`'s view).
async fn wait_last_media_state(c: &TestClient, since: u64, expected: &Value, what: &str) {
    let ok = || {
        c.last_of("media_state").is_some_and(|m| m["receive"] == *expected)
            && c.timed_messages()
                .iter()
                .any(|(t, m)| *t >= since && matches!(m["type"].as_str(), Some("participant_updated" | "media_state")))
    };
    if !wait_until(LONG, ok).await {
        panic!("{}: latest media_state is not {expected} ({what}); last {:?}", c.id(), c.last_of("media_state"));
    }
}

/// When `c` got (first, at or after `since`) a `participant_updated` about `id` whose
/// participant object satisfies `pred`.
async fn wait_update(c: &TestClient, since: u64, id: &str, what: &str, pred: impl Fn(&Value) -> bool) -> u64 {
    let found = || {
        c.timed_messages()
            .into_iter()
            .find(|(t, m)| {
                *t >= since
                    && m["type"] == "participant_updated"
                    && m["participant"]["id"] == id
                    && pred(&m["participant"])
            })
            .map(|(t, _)| t)
    };
    if !wait_until(LONG, || found().is_some()).await {
        panic!("{}: no participant_updated for {id} ({what}); got {:?}", c.id(), c.types());
    }
    found().unwrap()
}

async fn expect_error(c: &TestClient, code: &str, what: &str) {
    let got = c.expect_error(LONG).await.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(got, code, "{}: {what}", c.id());
}

/// Packets `rx` got from `tx` of `kind` whose publisher send time lies in [from, to).
fn sent_between(rx: &TestClient, tx: &str, kind: Kind, from: u64, to: u64) -> Vec<RecvPacket> {
    rx.received(tx, kind)
        .into_iter()
        .filter(|p| p.mark().is_some_and(|m| m.sent_us >= from && m.sent_us < to))
        .collect()
}

/// Every packet `rx` got from `tx` of `kind` is one `tx` sent, byte for byte (matched by the
/// counter in its mark), and none came twice. Returns how many were checked.
async fn assert_exact(tx: &TestClient, rx: &TestClient, kind: Kind) -> usize {
    let got = rx.received(tx.id(), kind);
    let sent: HashMap<u32, SentPacket> =
        tx.sent_covering(kind, &got).await.into_iter().map(|p| (p.counter, p)).collect();
    let mut seen = HashSet::new();
    for p in &got {
        let m = p.mark().unwrap_or_else(|| panic!("{} got an unmarked {kind} packet from {}", rx.id(), tx.id()));
        assert_eq!((m.publisher.as_str(), m.kind), (tx.id(), kind), "{} got a mislabelled packet", rx.id());
        let s = sent
            .get(&m.counter)
            .unwrap_or_else(|| panic!("{}: {kind} #{} never sent by {}", rx.id(), m.counter, tx.id()));
        assert_eq!(
            p.payload,
            s.payload,
            "{}: {kind} #{} from {} differs from what was sent",
            rx.id(),
            m.counter,
            tx.id()
        );
        assert!(seen.insert(m.counter), "{}: {kind} #{} from {} arrived twice", rx.id(), m.counter, tx.id());
    }
    got.len()
}

/// Waits until `rx` holds `tx`'s `kind` packets sent at or after `at` (by `tx`'s clock of
/// marks): `rx`'s reader has caught up past `at` on that stream.
async fn wait_read_past(rx: &TestClient, tx: &str, kind: Kind, at: u64, what: &str) {
    let ok =
        wait_until(LONG, || rx.received(tx, kind).last().and_then(|p| p.mark()).is_some_and(|m| m.sent_us >= at)).await;
    assert!(ok, "{}: {what}: {kind} from {tx} sent after {at} never arrived ({:?})", rx.id(), rx.media().counts());
}

/// Waits until `tx` itself has sent a `kind` packet at or after `at`.
/// The end of a window starting at `from`: at least `min_us` long, and long enough that `tx`
/// sent `n` packets of `kind` in it, however slowly a loaded machine lets the test client send
/// (so a delivery check over it always has that many packets to judge).
async fn window_end(tx: &TestClient, kind: Kind, from: u64, n: usize, min_us: u64) -> u64 {
    let nth = || {
        tx.sent(kind).iter().filter_map(|p| parse_mark(&p.payload)).map(|m| m.sent_us).filter(|t| *t >= from).nth(n - 1)
    };
    let ok = wait_until(LONG, || nth().is_some()).await;
    assert!(ok, "{} sent {n} {kind} packets from the window's start", tx.id());
    (nth().unwrap() + 1).max(from + min_us)
}

async fn wait_sent_past(tx: &TestClient, kind: Kind, at: u64) {
    let ok =
        wait_until(LONG, || tx.sent(kind).last().and_then(|p| parse_mark(&p.payload)).is_some_and(|m| m.sent_us >= at))
            .await;
    assert!(ok, "{} keeps sending {kind}", tx.id());
}

/// `rx`'s first packet of `tx`'s video starts a keyframe, as the server forwards it: webrtc
/// 0.21 can drop a new remote track's first packet(s) before its handler runs (see
/// tests/support_smoke.rs), so the first packet received may follow the keyframe the server
/// started with by at most three, and then that keyframe is the last `tx` sent before it.
/// Returns how many were lost that way.
async fn assert_starts_on_keyframe(tx: &TestClient, rx: &TestClient, what: &str) -> u32 {
    let got = rx.received(tx.id(), Kind::Video);
    let first = got.first().unwrap_or_else(|| panic!("{}: no video of {} ({what})", rx.id(), tx.id()));
    if first.is_keyframe() {
        return 0;
    }
    let c0 = first.mark().unwrap().counter;
    let sent = tx.sent_covering(Kind::Video, &got[..1]).await;
    let key = sent.iter().filter(|s| s.keyframe && s.counter <= c0).map(|s| s.counter).max();
    let missed = key.map(|k| c0 - k);
    assert!(
        missed.is_some_and(|m| m <= 3),
        "{}'s first packet of {} ({what}) is interframe #{c0}, {missed:?} after the last keyframe sent before it",
        rx.id(),
        tx.id()
    );
    missed.unwrap()
}

fn min(v: &[f64]) -> f64 {
    v.iter().cloned().fold(f64::INFINITY, f64::min) * 100.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_in_a_stage_room_hear_the_host_and_the_host_sees_one_page() {
    let _one = ONE_ROOM_AT_A_TIME.lock().await;
    let server = server().await;
    let url = format!("ws://{}/ws", server.http_addr);
    let started = std::time::Instant::now();
    // 1 host + 4 publishing + 25 receive-only audience members: 30 peer connections.
    let hall = open_hall(&url, "town-hall", 4, 25).await;
    let setup = started.elapsed();
    let ids = hall.ids();
    assert_eq!(ids.len(), 30);
    let host = &hall.host;
    let h = host.id().to_owned();
    let cams: Vec<&TestClient> = hall.publishers.iter().collect();
    let cam: Vec<String> = cams.iter().map(|c| c.id().to_owned()).collect();
    let t0 = now_us();

    // Everyone's view is the table's: the audience gets the host only; the host's page is empty.
    for c in hall.everyone() {
        let expected = table_view(&ids, &h, &[], &[], c.id());
        wait_media_state(c, 0, &expected, "after everyone joined").await;
    }

    // A page of two cameras: the host gets those, video only, each starting on a keyframe.
    let mut lost_first = Vec::new();
    let page1 = [cam[0].as_str(), cam[1].as_str()];
    let sent_view1 = now_us();
    host.send_json(&json!({"type": "view", "ids": page1})).unwrap();
    wait_media_state(host, sent_view1, &table_view(&ids, &h, &[], &page1, &h), "page 1").await;
    for id in page1 {
        host.wait_count(id, Kind::Video, 15, LONG).await.unwrap();
        let c = cams.iter().find(|c| c.id() == id).unwrap();
        lost_first.push(assert_starts_on_keyframe(c, host, "new on the page").await);
    }

    // The next page: cam0 leaves it, cam2 joins it, cam1 stays.
    let page2 = [cam[1].as_str(), cam[2].as_str()];
    let sent_view2 = now_us();
    host.send_json(&json!({"type": "view", "ids": page2})).unwrap();
    let switch = wait_media_state(host, sent_view2, &table_view(&ids, &h, &[], &page2, &h), "page 2").await;
    host.wait_count(&cam[2], Kind::Video, 15, LONG).await.unwrap();
    // Let the page run for three seconds past the switch, with every reader caught up past it.
    let end = window_end(cams[2], Kind::Video, switch, 40, 3_000_000).await;
    wait_sent_past(cams[0], Kind::Video, end).await;
    wait_read_past(host, &cam[1], Kind::Video, end, "page 2 runs").await;
    wait_read_past(host, &cam[2], Kind::Video, end, "page 2 runs").await;
    let leaked = sent_between(host, &cam[0], Kind::Video, switch, u64::MAX);
    assert!(
        leaked.is_empty(),
        "the host got {} packets of {} (off the page) sent after its media_state; first sent {} us after it",
        leaked.len(),
        cam[0],
        leaked[0].mark().unwrap().sent_us - switch
    );
    lost_first.push(assert_starts_on_keyframe(cams[2], host, "new on the page").await);
    let cam2_from = host.received(&cam[2], Kind::Video)[0].mark().unwrap().sent_us;
    // Delivery while on the page, and byte for byte.
    let mut host_share = Vec::new();
    host_share.push(
        assert_delivered(cams[1], host, Kind::Video, (sent_view1 + 1_000_000, end), 30, "a camera on both pages").await,
    );
    host_share
        .push(assert_delivered(cams[2], host, Kind::Video, (cam2_from, end), 20, "the camera new on page 2").await);
    for c in &cams {
        assert_exact(c, host, Kind::Video).await;
        // No audience microphone reaches the host, and cam3 was never on a page.
        assert_eq!(host.count(c.id(), Kind::Audio), 0, "the host heard {}", c.id());
    }
    assert_eq!(host.count(&cam[3], Kind::Video), 0, "the host saw {}, never on its page", cam[3]);
    assert!(host.retransmissions(&cam[3], Kind::Video).is_empty());

    // The audience got the host, whole and exact, and nothing of each other, by any path.
    let t1 = now_us();
    let mut share = Vec::new();
    for rx in hall.audience() {
        wait_read_past(rx, &h, Kind::Audio, t1, "the host keeps talking").await;
        for kind in [Kind::Audio, Kind::Video] {
            assert!(assert_exact(host, rx, kind).await > 0);
            share.push(assert_delivered(host, rx, kind, (t0, t1), 20, "the host to the audience").await);
        }
        lost_first.push(assert_starts_on_keyframe(host, rx, "joining").await);
        for tx in cams.iter().filter(|c| c.id() != rx.id()) {
            for kind in [Kind::Audio, Kind::Video] {
                assert_eq!(rx.count(tx.id(), kind), 0, "audience {} got {kind} from audience {}", rx.id(), tx.id());
                assert!(rx.retransmissions(tx.id(), kind).is_empty(), "{} got {kind} resent from {}", rx.id(), tx.id());
            }
        }
    }
    let dropped = server.media_counters().await.dropped(DropReason::NotAllowed);
    assert!(dropped > 0, "the audience cameras were dropped by the routes");
    let lost: u32 = lost_first.iter().sum();
    println!(
        "stage of 30: first video packets of a new track lost by the client: {lost} over {} tracks",
        lost_first.len()
    );
    println!(
        "stage of 30: setup {:.1} s; host -> audience delivery min {:.1}% (n={}); page -> host min {:.1}% (n={}); NotAllowed drops {dropped}",
        setup.as_secs_f64(),
        min(&share),
        share.len(),
        min(&host_share),
        host_share.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raised_hand_comes_on_stage_and_goes_back() {
    let _one = ONE_ROOM_AT_A_TIME.lock().await;
    // A stage of two, so the third is refused.
    let server = server_with(|c| c.stage.max_on_stage = 2).await;
    let url = format!("ws://{}/ws", server.http_addr);
    // 1 host + 3 who may come up + 26 receive-only: the hand, the stage and the way back in a
    // room of 30, every receiver checked.
    let hall = open_hall(&url, "stage-door", 3, 26).await;
    let ids = hall.ids();
    let host = &hall.host;
    let h = host.id().to_owned();
    let (g1, g2, g3) = (&hall.publishers[0], &hall.publishers[1], &hall.publishers[2]);
    let (g1_id, g2_id, g3_id) = (g1.id().to_owned(), g2.id().to_owned(), g3.id().to_owned());

    // g1 is on the host's page from the start; g2 is not.
    let since = now_us();
    host.send_json(&json!({"type": "view", "ids": [g1_id]})).unwrap();
    wait_media_state(host, since, &table_view(&ids, &h, &[], &[&g1_id], &h), "page g1").await;
    host.wait_count(&g1_id, Kind::Video, 10, LONG).await.unwrap();

    // Hands: everyone sees them (the one who raised included).
    for g in [g1, g2, g3] {
        let since = now_us();
        g.send_json(&json!({"type": "raise_hand", "raised": true})).unwrap();
        for c in hall.everyone() {
            wait_update(c, since, g.id(), "hand up", |p| p["hand"] == true && p["on_stage"] == false).await;
        }
    }

    // Up: both guests reach everyone, audio and video, video starting on a keyframe (the host
    // had g1's camera already and keeps it).
    for (g, stage) in [(g1, vec![g1_id.as_str()]), (g2, vec![g1_id.as_str(), g2_id.as_str()])] {
        let since = now_us();
        host.send_json(&json!({"type": "stage", "id": g.id(), "on": true})).unwrap();
        for c in hall.everyone() {
            let up = wait_update(c, since, g.id(), "on stage", |p| p["on_stage"] == true && p["hand"] == false).await;
            // (The guest's own view does not change: no media_state for it.)
            let expected = table_view(&ids, &h, &stage, &[&g1_id], c.id());
            wait_last_media_state(c, up, &expected, "stage").await;
        }
        for rx in hall.everyone().filter(|c| c.id() != g.id()) {
            let up = wait_update(rx, since, g.id(), "on stage", |p| p["on_stage"] == true).await;
            let ok = wait_until(LONG, || {
                sent_between(rx, g.id(), Kind::Audio, up, u64::MAX).len() >= 10
                    && sent_between(rx, g.id(), Kind::Video, up, u64::MAX).len() >= 10
            })
            .await;
            assert!(ok, "{} receives {} on stage: {:?}", rx.id(), g.id(), rx.media().counts());
            if !(rx.id() == h && g.id() == g1_id) {
                assert_starts_on_keyframe(g, rx, "on stage").await;
            }
            for kind in [Kind::Audio, Kind::Video] {
                assert_exact(g, rx, kind).await;
            }
        }
    }
    // The stage is full; g3 keeps the hand up.
    host.send_json(&json!({"type": "stage", "id": g3_id, "on": true})).unwrap();
    expect_error(host, "stage_full", "a third on a stage of two").await;
    assert!(g3.count(&g1_id, Kind::Audio) > 0, "g3 (audience) hears the stage");

    // Back: from each receiver's participant_updated on, nothing g1 or g2 sent reaches anyone
    // but the host, who keeps g1's camera (on its page) and nothing else of theirs.
    let mut back = HashMap::new();
    for g in [g1, g2] {
        let since = now_us();
        host.send_json(&json!({"type": "stage", "id": g.id(), "on": false})).unwrap();
        for c in hall.everyone() {
            let at = wait_update(c, since, g.id(), "back", |p| p["on_stage"] == false).await;
            back.insert((c.id().to_owned(), g.id().to_owned()), at);
        }
    }
    for c in hall.everyone() {
        wait_last_media_state(c, 0, &table_view(&ids, &h, &[], &[&g1_id], c.id()), "everyone back").await;
    }
    let last_back = back.values().max().copied().unwrap();
    let end = window_end(g1, Kind::Video, last_back, 40, 2_000_000).await;
    wait_sent_past(g1, Kind::Audio, end).await;
    wait_sent_past(g2, Kind::Video, end).await;
    let mut g1_share = 0.0;
    for rx in hall.everyone() {
        // Every reader has caught up two seconds past the last switch.
        let (tx, what) = if rx.id() == h { (&g1_id, "g1 stays on the page") } else { (&h, "the host keeps sending") };
        wait_read_past(rx, tx, Kind::Video, end, what).await;
        for g in [g1, g2].into_iter().filter(|g| g.id() != rx.id()) {
            let from = back[&(rx.id().to_owned(), g.id().to_owned())];
            for kind in [Kind::Audio, Kind::Video] {
                let allowed = rx.id() == h && g.id() == g1_id && kind == Kind::Video;
                let after = sent_between(rx, g.id(), kind, from, u64::MAX);
                if allowed {
                    g1_share = assert_delivered(g, rx, kind, (from, end), 30, "g1 stays on the host's page").await;
                    // The camera never left the host's page: no new keyframe was needed.
                    assert_exact(g, rx, kind).await;
                } else {
                    assert!(
                        after.is_empty(),
                        "{} got {} {kind} packets of {} sent after it went back; first sent {} us after",
                        rx.id(),
                        after.len(),
                        g.id(),
                        after[0].mark().unwrap().sent_us - from
                    );
                }
            }
        }
    }
    // g3 never reached anyone.
    for rx in hall.everyone().filter(|c| c.id() != g3_id) {
        assert_eq!(rx.count(&g3_id, Kind::Audio) + rx.count(&g3_id, Kind::Video), 0, "{} got g3", rx.id());
    }
    println!("back in the audience: the host kept g1's camera, delivery {:.1}%", g1_share * 100.0);
}

/// The SSRCs `c` was told `publisher`'s `kind` comes under (its remote description), the
/// first of each m-line (the primary stream, not its RTX).
async fn announced_ssrcs(c: &TestClient, publisher: &str, kind: Kind) -> Vec<u32> {
    c.media()
        .remote_mlines()
        .await
        .into_iter()
        .filter(|m| m.kind == kind.as_str() && m.msid.as_ref().is_some_and(|(s, _)| s == publisher))
        .filter_map(|m| m.ssrcs.first().copied())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audience_cannot_take_the_stage_or_the_streams() {
    let _one = ONE_ROOM_AT_A_TIME.lock().await;
    let server = server().await;
    let url = format!("ws://{}/ws", server.http_addr);
    // adv, p (off the page) and q (on it) publish; r only receives.
    let hall = open_hall(&url, "heckle", 3, 1).await;
    let ids = hall.ids();
    let host = &hall.host;
    let h = host.id().to_owned();
    let (adv, p, q) = (&hall.publishers[0], &hall.publishers[1], &hall.publishers[2]);
    let r = &hall.receivers[0];
    let (a, p_id, q_id) = (adv.id().to_owned(), p.id().to_owned(), q.id().to_owned());
    let since = now_us();
    host.send_json(&json!({"type": "view", "ids": [q_id]})).unwrap();
    wait_media_state(host, since, &table_view(&ids, &h, &[], &[&q_id], &h), "page q").await;
    host.wait_count(&q_id, Kind::Video, 10, LONG).await.unwrap();
    let adv_from = now_us();

    // Leading is the host's.
    adv.send_json(&json!({"type": "stage", "id": a, "on": true})).unwrap();
    expect_error(adv, "not_host", "stage itself").await;
    adv.send_json(&json!({"type": "stage", "id": q_id, "on": true})).unwrap();
    expect_error(adv, "not_host", "stage another").await;
    adv.send_json(&json!({"type": "stage", "id": h, "on": false})).unwrap();
    expect_error(adv, "not_host", "stage the host off").await;
    adv.send_json(&json!({"type": "view", "ids": [p_id, q_id]})).unwrap();
    expect_error(adv, "not_host", "view").await;
    adv.send_json(&json!({"type": "view", "ids": []})).unwrap();
    expect_error(adv, "not_host", "an empty view").await;
    // Malformed hands.
    for bad in [
        json!({"type": "raise_hand"}),
        json!({"type": "raise_hand", "raised": "yes"}),
        json!({"type": "raise_hand", "raised": 1}),
        json!({"type": "raise_hand", "raised": null}),
    ] {
        adv.send_json(&bad).unwrap();
        expect_error(adv, "bad_field", &bad.to_string()).await;
    }
    adv.send_json(&json!({"type": "stage", "id": a})).unwrap();
    expect_error(adv, "bad_field", "stage without on").await;
    // Another kind's game.
    for mafia in [
        json!({"type": "vote", "target": h}),
        json!({"type": "night_action", "target": h}),
        json!({"type": "call_vote"}),
    ] {
        adv.send_json(&mafia).unwrap();
        expect_error(adv, "wrong_kind", &mafia.to_string()).await;
    }
    // None of it changed anything anyone was told.
    let quiet_until = now_us();
    adv.ping(7).unwrap();
    adv.expect_message("pong", LONG).await.unwrap();
    assert_unchanged(&hall, adv_from, quiet_until);

    // Feedback about streams adv may not receive: keyframe requests and NACKs naming the SSRCs
    // it was told p's and q's tracks come under, and their publishers' own SSRCs (a guess).
    let kf_p = keyframe_requests_settle(p).await;
    let kf_q = keyframe_requests_settle(q).await;
    let denied = || async { server.media_counters().await.dropped(DropReason::DeniedKeyframeRequest) };
    let denied_before = denied().await;
    let mut announced_requests = 0u64;
    let mut fir_seq = 0u8;
    let rtcp_at = now_us();
    for c in [p, q] {
        for kind in [Kind::Audio, Kind::Video] {
            let announced = announced_ssrcs(adv, c.id(), kind).await;
            assert_eq!(announced.len(), 1, "{a} was told of one {kind} track of {}", c.id());
            let own = c.media().local_ssrc(kind).unwrap();
            // What the host got of q, and what p and q sent lately: sequence numbers a cache
            // somewhere may hold.
            let mut seqs: Vec<u16> = c.sent(kind).iter().rev().take(40).map(|s| s.seq).collect();
            seqs.extend(host.received(c.id(), kind).iter().rev().take(40).map(|r| r.seq));
            seqs.extend(0..64);
            seqs.sort_unstable();
            seqs.dedup();
            for ssrc in [announced[0], own] {
                if kind == Kind::Video {
                    adv.media().send_pli_for_ssrc(ssrc).await.unwrap();
                    fir_seq = fir_seq.wrapping_add(1);
                    adv.media().send_fir_for_ssrc(ssrc, fir_seq).await.unwrap();
                    if ssrc == announced[0] {
                        announced_requests += 2;
                    }
                }
                adv.media().send_nack_for_ssrc(ssrc, &seqs).await.unwrap();
            }
        }
    }
    assert!(
        wait_until_async(LONG, || async { denied().await >= denied_before + announced_requests }).await,
        "{announced_requests} keyframe requests for announced, denied streams counted as denied: {} -> {}",
        denied_before,
        denied().await
    );
    // Let a second pass, every reader past it.
    let rtcp_end = now_us() + 1_000_000;
    wait_read_past(adv, &h, Kind::Video, rtcp_end, "the host after the feedback").await;
    assert_eq!(p.keyframe_requests(), kf_p, "a keyframe request of {a} reached p");
    assert_eq!(q.keyframe_requests(), kf_q, "a keyframe request of {a} reached q");

    // It renegotiates on its own: an answer, and still nothing it may not receive.
    let reneg_at = now_us();
    let negotiations = adv.media().negotiations();
    adv.media().renegotiate();
    let answer_at =
        || adv.timed_messages().into_iter().find(|(t, m)| *t >= reneg_at && m["type"] == "answer").map(|(t, _)| t);
    assert!(wait_until(LONG, || answer_at().is_some()).await, "the server answers {a}'s offer: {:?}", adv.types());
    assert!(wait_until(LONG, || adv.media().negotiations() > negotiations).await, "the renegotiation completes");
    let answer_at = answer_at().unwrap();
    let end = now_us().max(answer_at) + 2_000_000;
    wait_read_past(adv, &h, Kind::Video, end, "the host after the renegotiation").await;
    for c in [p, q] {
        for kind in [Kind::Audio, Kind::Video] {
            assert_eq!(adv.count(c.id(), kind), 0, "{a} got {kind} of {}", c.id());
            assert!(adv.retransmissions(c.id(), kind).is_empty(), "{a} got {kind} of {} resent", c.id());
        }
    }
    let foreign: Vec<String> = adv
        .media()
        .all_retransmissions()
        .iter()
        .filter_map(|p| p.mark())
        .filter(|m| m.publisher != h)
        .map(|m| format!("{} {} #{}", m.publisher, m.kind, m.counter))
        .collect();
    assert!(foreign.is_empty(), "{a} got retransmissions of the audience: {foreign:?}");
    assert_eq!(p.keyframe_requests(), kf_p, "p was asked for keyframes");
    assert_unchanged(&hall, adv_from, now_us());

    // The room kept working for everyone else: r and adv got the host whole, the host got q.
    for kind in [Kind::Audio, Kind::Video] {
        for rx in [r, adv] {
            assert_delivered(host, rx, kind, (adv_from, end - 500_000), 30, "the host after the attack").await;
            assert_exact(host, rx, kind).await;
        }
    }
    assert_delivered(q, host, Kind::Video, (adv_from, end - 500_000), 30, "the host's page after the attack").await;
    assert_eq!(host.count(&p_id, Kind::Video) + host.count(&a, Kind::Video), 0, "the host saw only its page");
    for rx in hall.everyone() {
        for tx in hall.publishers.iter().filter(|t| t.id() != rx.id()) {
            assert_eq!(rx.count(tx.id(), Kind::Audio), 0, "{} heard {}", rx.id(), tx.id());
        }
    }
    // And adv's own hand still works.
    let since = now_us();
    adv.send_json(&json!({"type": "raise_hand", "raised": true})).unwrap();
    for c in hall.everyone() {
        wait_update(c, since, &a, "hand up", |p| p["hand"] == true).await;
    }
    println!(
        "adversary: {announced_requests} keyframe requests for announced denied streams -> denied_keyframe_request +{}; renegotiation answered in {:.1} ms; feedback sent at +{:.1} s",
        denied().await - denied_before,
        answer_at.saturating_sub(reneg_at) as f64 / 1000.0,
        rtcp_at.saturating_sub(adv_from) as f64 / 1e6
    );
}

/// Nobody in `hall` got a `participant_updated` or `media_state` in [from, to).
fn assert_unchanged(hall: &Hall, from: u64, to: u64) {
    for c in hall.everyone() {
        let changed: Vec<Value> = c
            .timed_messages()
            .into_iter()
            .filter(|(t, m)| {
                (from..to).contains(t) && matches!(m["type"].as_str(), Some("participant_updated" | "media_state"))
            })
            .map(|(_, m)| m)
            .collect();
        assert!(changed.is_empty(), "{}: refused messages changed {changed:?}", c.id());
    }
}

/// Waits until `c` has seen no keyframe request for a second (the server's own requests, and
/// earlier ones in flight, are over); the count then.
async fn keyframe_requests_settle(c: &TestClient) -> u64 {
    let deadline = std::time::Instant::now() + LONG;
    loop {
        let n = c.keyframe_requests();
        if !wait_until(Duration::from_secs(1), || c.keyframe_requests() != n).await {
            return n;
        }
        assert!(std::time::Instant::now() < deadline, "keyframe requests to {} never settle", c.id());
    }
}
