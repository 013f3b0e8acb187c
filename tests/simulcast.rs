//! Simulcast in, one layer out, driven directly on parlor-media with `webrtc`-crate peers: a
//! publisher sends three layers (synthetic VP8 per layer, keyframes only on request of that
//! layer), each subscriber receives exactly one of them with exact payloads, a forced switch
//! lands on the target layer's keyframe with no sequence gap and aligned timestamps, and a denied
//! subscriber gets nothing from any layer, across switches too.

use crate::support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use parlor_media::{DropReason, Kind as MKind, LayerState, Reach};
use support::media_room::{media_room, start_media, MediaRoom};
use support::*;

const LONG: Duration = Duration::from_secs(20);
const RIDS: [&str; 3] = ["q", "h", "f"];

/// A media room whose peers' signaling goes straight to `RoomMedia`.
type Rig = MediaRoom;

async fn rig(members: &[(&str, ClientOptions)]) -> Rig {
    media_room(start_media(), "sim", members, None).await
}

/// `publisher`'s audio and video reach exactly `subscribers`.
fn reaches(publisher: &str, subscribers: &[&str]) -> Vec<Reach> {
    [MKind::Audio, MKind::Video].into_iter().map(|k| Reach::new(publisher, k, subscribers.iter().copied())).collect()
}

fn simulcast_publisher() -> ClientOptions {
    ClientOptions::publisher().with_simulcast(&RIDS)
}

async fn layers(rig: &Rig, sub: &str, publ: &str) -> LayerState {
    rig.room.layers(sub, publ).await.unwrap().expect("a simulcast track")
}

/// Waits until `sub` is forwarded `layer` of `publ` and holds `more` packets of it.
async fn wait_for_layer(rig: &Rig, sub: &str, publ: &str, layer: u8, more: usize) {
    let rid = format!("{publ}/{}", RIDS[layer as usize]);
    let ok = wait_until_async(LONG, || async {
        // Until negotiation made the track there is no state.
        let state = rig.room.layers(sub, publ).await.unwrap();
        let got = rig.peers[sub].received(publ, Kind::Video);
        state.is_some_and(|s| s.selected == Some(layer))
            && got.iter().rev().take(more).filter(|p| mark_of(p) == rid).count() == more
    })
    .await;
    assert!(ok, "{sub} never got {more} packets of layer {rid}: {:?}", rig.room.layers(sub, publ).await);
}

fn mark_of(p: &RecvPacket) -> String {
    p.mark().expect("a synthetic payload").publisher
}

/// What one subscriber received of one simulcast publisher holds up: every packet is a copy of
/// one the publisher sent (same layer, same counter, same bytes but for the VP8 picture id and
/// TL0PICIDX, which run on contiguously across switches); one layer at a time (a frame
/// tick comes twice only where a switch takes the new layer's keyframe of a moment already
/// written); sequence numbers are contiguous; each run of a layer starts on that layer's keyframe;
/// and timestamps advance with the send time, within a layer and across switches (aligned from
/// the sender reports). Returns the layers' runs, in order.
async fn check_one_layer_at_a_time(sub: &MediaPeer, publ: &MediaPeer) -> Vec<(String, usize)> {
    let got = sub.received(publ.id(), Kind::Video);
    assert!(!got.is_empty(), "{} got no video from {}", sub.id(), publ.id());
    let sent: HashMap<(String, u32), SentPacket> = publ
        .sent_covering(Kind::Video, &got)
        .await
        .into_iter()
        .map(|p| ((format!("{}/{}", publ.id(), p.rid.clone().unwrap_or_default()), p.counter), p))
        .collect();
    let mut ticks = HashSet::new();
    let mut runs: Vec<(String, usize)> = Vec::new();
    for (i, p) in got.iter().enumerate() {
        let mark = p.mark().unwrap();
        let original = sent.get(&(mark.publisher.clone(), mark.counter)).expect("received packet was sent");
        // Byte for byte, but for the picture id and TL0PICIDX (bytes 2..5), which the server
        // re-bases at a switch; those go up by one a frame across every switch.
        let (got_picture, sent_picture) = (vp8_picture(&p.payload), vp8_picture(&original.payload));
        assert!(got_picture.is_some() && sent_picture.is_some(), "picture ids at packet {i}");
        assert_eq!(p.payload.len(), original.payload.len());
        assert_eq!(p.payload[..2], original.payload[..2], "descriptor ({} #{})", mark.publisher, mark.counter);
        assert_eq!(p.payload[5..], original.payload[5..], "payload bytes ({} #{})", mark.publisher, mark.counter);
        if i == 0 {
            assert_eq!(got_picture, sent_picture, "the first layer keeps its own numbers");
        } else {
            let ((pic, tl0), (prev_pic, prev_tl0)) = (got_picture.unwrap(), vp8_picture(&got[i - 1].payload).unwrap());
            assert_eq!(pic, prev_pic.wrapping_add(1) & 0x7fff, "contiguous picture ids at packet {i}");
            assert_eq!(tl0, prev_tl0.wrapping_add(1), "contiguous TL0PICIDX at packet {i}");
        }
        let switch = i > 0 && mark_of(&got[i - 1]) != mark.publisher;
        assert!(
            ticks.insert(mark.sent_us) || switch,
            "two layers of one frame reached {}: {}",
            sub.id(),
            mark.publisher
        );
        match runs.last_mut() {
            Some((layer, n)) if *layer == mark.publisher => *n += 1,
            _ => {
                // webrtc may lose a new track's very first packets before its reader runs: the
                // server's first one is number 1.
                if i > 0 || p.seq == 1 {
                    assert!(p.is_keyframe(), "the run of {} starts on a keyframe (packet {i})", mark.publisher);
                }
                runs.push((mark.publisher.clone(), 1));
            }
        }
        if i == 0 {
            continue;
        }
        let prev = &got[i - 1];
        assert_eq!(p.seq, prev.seq.wrapping_add(1), "contiguous sequence numbers at packet {i}");
        let ts_ticks = p.timestamp.wrapping_sub(prev.timestamp) as i32 as i64;
        assert!(ts_ticks > 0, "timestamps move on at packet {i}");
        let prev_mark = prev.mark().unwrap();
        if !switch {
            // Within a layer the step is the publisher's own, exactly.
            let prev_sent = &sent[&(prev_mark.publisher.clone(), prev_mark.counter)];
            let sent_ticks = original.timestamp.wrapping_sub(prev_sent.timestamp) as i32 as i64;
            assert_eq!(ts_ticks, sent_ticks, "timestamp step at packet {i} ({})", mark.publisher);
            continue;
        }
        // Across a switch the sender reports carry the mapping, to within 10 ms (frames are 33 ms,
        // 2970 ticks, apart; without alignment every switch would step 1800, whatever the time).
        let wall_ticks = (mark.sent_us as i64 - prev_mark.sent_us as i64) * 90 / 1000;
        assert!(
            (ts_ticks - wall_ticks).abs() <= 900,
            "timestamp step {ts_ticks} for {wall_ticks} ticks of send time at packet {i} ({} -> {})",
            prev_mark.publisher,
            mark.publisher
        );
    }
    runs
}

/// The SSRC the server sends `publisher`'s video to `sub` on, from the server's offer.
async fn server_video_ssrc(sub: &MediaPeer, publisher: &str) -> u32 {
    let lines = sub.remote_mlines().await;
    let line = lines
        .iter()
        .find(|m| m.kind == "video" && m.msid.as_ref().is_some_and(|(s, _)| s == publisher))
        .expect("an m-line for the publisher's video");
    line.ssrcs[0]
}

/// Keyframe requests each layer of `publ` got so far.
fn layer_requests(publ: &MediaPeer) -> Vec<u64> {
    RIDS.iter().map(|r| publ.layer_keyframe_requests(r)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_gets_the_top_layer_alone_with_exact_payloads() {
    let rig = rig(&[("pub", simulcast_publisher()), ("sub", ClientOptions::receiver())]).await;
    rig.room.update_routes(1, reaches("pub", &["sub"])).await.unwrap();
    let (publ, sub) = (&rig.peers["pub"], &rig.peers["sub"]);
    // It starts on whatever layer flows first and moves up once the sender reports let it.
    wait_for_layer(&rig, "sub", "pub", 2, 30).await;
    let state = layers(&rig, "sub", "pub").await;
    assert_eq!(state.layers.iter().map(|(rid, _)| rid.as_str()).collect::<Vec<_>>(), RIDS);
    assert!(state.layers.iter().all(|(_, flowing)| *flowing), "{state:?}");
    assert_eq!(state.target, Some(2));
    let runs = check_one_layer_at_a_time(sub, publ).await;
    assert_eq!(runs.last().unwrap().0, "pub/f", "{runs:?}");
    // Each layer sent one keyframe at the start plus one per request of its own SSRC: the
    // server asked the top layer, the one it switched to, for one.
    assert!(publ.layer_keyframe_requests("f") >= 1);
    let sent = publ.sent(Kind::Video);
    for rid in RIDS {
        let keyframes = sent.iter().filter(|p| p.rid.as_deref() == Some(rid) && p.keyframe).count() as u64;
        let requests = publ.layer_keyframe_requests(rid);
        // Requests that arrive within one frame are answered by one keyframe.
        assert!((1..=1 + requests).contains(&keyframes), "{rid}: {keyframes} keyframes, {requests} requests");
    }
    let counters = rig.media.counters().await;
    assert!(counters.dropped(DropReason::OtherLayer) > 0, "the other layers are dropped: {counters:?}");
    // Audio is untouched by all this.
    assert!(sub.count("pub", Kind::Audio) > 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_switch_lands_on_the_targets_keyframe_without_a_gap() {
    let rig = rig(&[("pub", simulcast_publisher()), ("sub", ClientOptions::receiver())]).await;
    rig.room.update_routes(1, reaches("pub", &["sub"])).await.unwrap();
    let (publ, sub) = (&rig.peers["pub"], &rig.peers["sub"]);
    wait_for_layer(&rig, "sub", "pub", 2, 10).await;
    // Down to the lowest layer: asked of that layer's SSRC, taken on its keyframe.
    let q_requests = publ.layer_keyframe_requests("q");
    assert!(rig.room.prefer_layer("sub", "pub", Some(0)).await.unwrap());
    wait_for_layer(&rig, "sub", "pub", 0, 10).await;
    assert!(publ.layer_keyframe_requests("q") > q_requests, "the lowest layer was asked for a keyframe");
    let state = layers(&rig, "sub", "pub").await;
    assert_eq!((state.selected, state.target, state.cap), (Some(0), Some(0), Some(0)));
    // The subscriber's own keyframe request goes to the layer it gets, and to no other. (Ten
    // more frames first: past the per-layer rate limit of the switch's own request.)
    let n = sub.count("pub", Kind::Video);
    assert!(wait_until(LONG, || sub.count("pub", Kind::Video) >= n + 10).await);
    let before = layer_requests(publ);
    assert_eq!(sub.send_pli("pub").await.unwrap(), 1);
    assert!(wait_until(LONG, || layer_requests(publ)[0] > before[0]).await, "the PLI reached layer q");
    let n = sub.count("pub", Kind::Video);
    assert!(wait_until(LONG, || sub.count("pub", Kind::Video) >= n + 10).await);
    assert_eq!(&layer_requests(publ)[1..], &before[1..], "no other layer was asked");
    // Up to the middle one, then the cap lifted: back to the top.
    assert!(rig.room.prefer_layer("sub", "pub", Some(1)).await.unwrap());
    wait_for_layer(&rig, "sub", "pub", 1, 10).await;
    assert!(rig.room.prefer_layer("sub", "pub", None).await.unwrap());
    wait_for_layer(&rig, "sub", "pub", 2, 10).await;
    let runs = check_one_layer_at_a_time(sub, publ).await;
    let order: Vec<&str> = runs.iter().map(|(l, _)| l.as_str()).collect();
    let forced = &order[order.len() - 4..];
    assert_eq!(forced, ["pub/f", "pub/q", "pub/h", "pub/f"], "{runs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_subscriber_gets_nothing_of_any_layer_even_across_switches() {
    let rig = rig(&[
        ("pub", simulcast_publisher()),
        ("seen", ClientOptions::receiver()),
        ("denied", ClientOptions::receiver()),
        // A plain publisher the denied subscriber does receive: its track carries the RTCP.
        ("other", ClientOptions::publisher()),
    ])
    .await;
    let mut routes = reaches("pub", &["seen"]);
    routes.extend(reaches("other", &["denied"]));
    rig.room.update_routes(1, routes).await.unwrap();
    let (publ, seen, denied) = (&rig.peers["pub"], &rig.peers["seen"], &rig.peers["denied"]);
    wait_for_layer(&rig, "seen", "pub", 2, 10).await;
    assert!(wait_until(LONG, || denied.count("other", Kind::Video) >= 5).await, "{:?}", denied.counts());
    // The denied subscriber negotiated its track of pub's video (with a layer selector).
    assert!(layers(&rig, "denied", "pub").await.layers.len() == 3);
    let ssrc = server_video_ssrc(denied, "pub").await;

    // Its own layer choices and keyframe requests reach nobody while it is denied.
    let before = layer_requests(publ);
    let seen0 = seen.count("pub", Kind::Video);
    for cap in [Some(0), Some(1), None] {
        assert!(rig.room.prefer_layer("denied", "pub", cap).await.unwrap());
        denied.send_pli_for_ssrc(ssrc).await.unwrap();
        denied.send_fir_for_ssrc(ssrc, 1).await.unwrap();
    }
    // Seen's video is the clock: 30 frames later, every request would long have arrived.
    assert!(wait_until(LONG, || seen.count("pub", Kind::Video) >= seen0 + 30).await);
    assert_eq!(layer_requests(publ), before, "a denied subscriber's requests never reach the publisher");
    let counters = rig.media.counters().await;
    assert!(counters.dropped(DropReason::DeniedKeyframeRequest) >= 3, "{counters:?}");

    // The allowed subscriber switches through every layer while the other stays denied.
    for cap in [Some(0), Some(1), None] {
        assert!(rig.room.prefer_layer("seen", "pub", cap).await.unwrap());
        wait_for_layer(&rig, "seen", "pub", cap.unwrap_or(2), 5).await;
    }
    assert_eq!(denied.count("pub", Kind::Video), 0, "denied got video: {:?}", denied.counts());
    assert_eq!(denied.count("pub", Kind::Audio), 0, "denied got audio: {:?}", denied.counts());
    assert!(denied.all_retransmissions().is_empty() && denied.rtx_padding() == 0, "nothing by RTX either");
    let state = layers(&rig, "denied", "pub").await;
    assert_eq!(state.selected, None, "a denied pair never reaches the selector: {state:?}");
    let counters = rig.media.counters().await;
    assert!(counters.dropped(DropReason::NotAllowed) > 0, "{counters:?}");

    // Allowed, capped at the lowest layer: it starts on that layer's keyframe.
    assert!(rig.room.prefer_layer("denied", "pub", Some(0)).await.unwrap());
    let allowed_at = now_us();
    rig.room.update_routes(2, reaches("pub", &["seen", "denied"])).await.unwrap();
    wait_for_layer(&rig, "denied", "pub", 0, 10).await;
    let runs = check_one_layer_at_a_time(denied, publ).await;
    assert_eq!(runs[0].0, "pub/q", "{runs:?}");
    assert!(denied.received("pub", Kind::Video)[0].mark().unwrap().sent_us >= allowed_at);

    // Denied again, with its cap lifted and the other subscriber switching: nothing sent after
    // the deny reaches it, of any layer.
    rig.room.update_routes(3, reaches("pub", &["seen"])).await.unwrap();
    let denied_at = now_us();
    assert!(rig.room.prefer_layer("denied", "pub", None).await.unwrap());
    denied.send_pli_for_ssrc(ssrc).await.unwrap();
    for cap in [Some(1), None] {
        assert!(rig.room.prefer_layer("seen", "pub", cap).await.unwrap());
        wait_for_layer(&rig, "seen", "pub", cap.unwrap_or(2), 10).await;
    }
    for p in denied.received("pub", Kind::Video).iter().chain(&denied.received("pub", Kind::Audio)) {
        let m = p.mark().unwrap();
        assert!(
            m.sent_us < denied_at,
            "{} sent {} µs after the deny reached denied",
            m.publisher,
            m.sent_us - denied_at
        );
    }
    assert!(denied.all_retransmissions().is_empty() && denied.rtx_padding() == 0, "nothing by RTX either");
}

/// A publisher that declares more layers than the server keeps: the extra layer is never
/// forwarded (a stream no kept layer names), and the room goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layer_past_the_last_kept_one_is_never_forwarded() {
    let rig = rig(&[
        ("pub", ClientOptions::publisher().with_simulcast(&["q", "h", "f", "x"])),
        ("sub", ClientOptions::receiver()),
    ])
    .await;
    rig.room.update_routes(1, reaches("pub", &["sub"])).await.unwrap();
    wait_for_layer(&rig, "sub", "pub", 2, 30).await;
    let state = layers(&rig, "sub", "pub").await;
    assert_eq!(state.layers.iter().map(|(rid, _)| rid.as_str()).collect::<Vec<_>>(), RIDS, "three layers kept");
    let publ = &rig.peers["pub"];
    assert!(publ.sent(Kind::Video).iter().any(|p| p.rid.as_deref() == Some("x")), "the extra layer was sent");
    let got = rig.peers["sub"].received("pub", Kind::Video);
    assert!(got.iter().all(|p| mark_of(p) != "pub/x"), "the extra layer reached the subscriber");
    check_one_layer_at_a_time(&rig.peers["sub"], publ).await;
    assert_eq!(publ.layer_keyframe_requests("x"), 0, "nobody asks the extra layer for keyframes");
}

/// A subscriber's bandwidth budget picks its layer from what the layers measure (the synthetic
/// layers are about 60, 120 and 230 kbit/s): a tight budget keeps it on the lowest, a middle one
/// lets it up one layer, none lets it reach the top; the switches land on keyframes as ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_chooses_the_layer_a_subscriber_can_afford() {
    let rig = rig(&[("pub", simulcast_publisher()), ("sub", ClientOptions::receiver())]).await;
    rig.room.update_routes(1, reaches("pub", &["sub"])).await.unwrap();
    let (publ, sub) = (&rig.peers["pub"], &rig.peers["sub"]);
    wait_for_layer(&rig, "sub", "pub", 2, 10).await;
    assert!(rig.room.set_budget("sub", Some(80_000)).await.unwrap());
    wait_for_layer(&rig, "sub", "pub", 0, 30).await;
    assert_eq!(layers(&rig, "sub", "pub").await.fits, Some(0));
    assert!(rig.room.set_budget("sub", Some(170_000)).await.unwrap());
    wait_for_layer(&rig, "sub", "pub", 1, 30).await;
    let state = layers(&rig, "sub", "pub").await;
    assert_eq!((state.fits, state.target), (Some(1), Some(1)), "{state:?}");
    assert!(rig.room.set_budget("sub", None).await.unwrap());
    wait_for_layer(&rig, "sub", "pub", 2, 10).await;
    assert_eq!(layers(&rig, "sub", "pub").await.fits, None);
    let runs = check_one_layer_at_a_time(sub, publ).await;
    let order: Vec<&str> = runs.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(&order[order.len() - 3..], ["pub/q", "pub/h", "pub/f"], "{runs:?}");
    assert!(!rig.room.set_budget("nobody", Some(1)).await.unwrap());
}

/// The top layer stops (as a browser drops it when its uplink is short): once str0m sees its
/// stream paused, the subscriber falls back to the next layer on that layer's keyframe, and
/// returns to the top when it comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layer_that_stops_is_left_for_the_next_one_down() {
    let rig = rig(&[("pub", simulcast_publisher()), ("sub", ClientOptions::receiver())]).await;
    rig.room.update_routes(1, reaches("pub", &["sub"])).await.unwrap();
    let (publ, sub) = (&rig.peers["pub"], &rig.peers["sub"]);
    wait_for_layer(&rig, "sub", "pub", 2, 10).await;
    publ.set_layer_sending("f", false);
    wait_for_layer(&rig, "sub", "pub", 1, 10).await;
    let state = layers(&rig, "sub", "pub").await;
    assert_eq!(state.layers[2], ("f".to_owned(), false), "{state:?}");
    publ.set_layer_sending("f", true);
    wait_for_layer(&rig, "sub", "pub", 2, 10).await;
    let runs = check_one_layer_at_a_time(sub, publ).await;
    let order: Vec<&str> = runs.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(&order[order.len() - 3..], ["pub/f", "pub/h", "pub/f"], "{runs:?}");
}

/// The page says how tall it shows each video (`layout`): the subscriber gets the lowest layer
/// at least that tall, from the sizes the layers' keyframes declare (80×60, 160×120, 320×240
/// here), and the tallest when the tile is taller than any layer; a tile of 0 (off screen) gets
/// the lowest. Another subscriber that said nothing keeps the top layer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tile_gets_the_lowest_layer_at_least_as_tall() {
    let rig =
        rig(&[("pub", simulcast_publisher()), ("sub", ClientOptions::receiver()), ("wide", ClientOptions::receiver())])
            .await;
    rig.room.update_routes(1, reaches("pub", &["sub", "wide"])).await.unwrap();
    let (publ, sub) = (&rig.peers["pub"], &rig.peers["sub"]);
    wait_for_layer(&rig, "sub", "pub", 2, 10).await;
    let state = layers(&rig, "sub", "pub").await;
    assert_eq!(state.sizes, [Some((80, 60)), Some((160, 120)), Some((320, 240))], "{state:?}");
    let tile = |h: u16| [("pub".to_owned(), h)].into_iter().collect();
    assert_eq!(rig.room.set_tiles("sub", tile(100)).await.unwrap(), 1);
    wait_for_layer(&rig, "sub", "pub", 1, 30).await;
    assert_eq!(layers(&rig, "sub", "pub").await.tile, Some(1));
    rig.room.set_tiles("sub", tile(0)).await.unwrap();
    wait_for_layer(&rig, "sub", "pub", 0, 30).await;
    rig.room.set_tiles("sub", tile(1080)).await.unwrap();
    wait_for_layer(&rig, "sub", "pub", 2, 30).await;
    assert_eq!(layers(&rig, "sub", "pub").await.tile, None, "taller than any layer: the top one");
    rig.room.set_tiles("sub", tile(120)).await.unwrap();
    wait_for_layer(&rig, "sub", "pub", 1, 30).await;
    // Leaving the publisher out of the next layout lifts its limit.
    assert_eq!(rig.room.set_tiles("sub", Default::default()).await.unwrap(), 0);
    wait_for_layer(&rig, "sub", "pub", 2, 30).await;
    assert_eq!(layers(&rig, "wide", "pub").await.selected, Some(2), "the other subscriber kept the top layer");
    let runs = check_one_layer_at_a_time(sub, publ).await;
    let order: Vec<&str> = runs.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(&order[order.len() - 6..], ["pub/f", "pub/h", "pub/q", "pub/f", "pub/h", "pub/f"], "{runs:?}");
    // The counters behind /metrics: every layer forwarded, and each of sub's five switches (plus
    // both subscribers' first layer) counted as a layer start.
    let counters = rig.media.counters().await;
    assert!(counters.forwarded_layers.iter().all(|n| *n > 0), "{:?}", counters.forwarded_layers);
    assert!(counters.layer_starts >= 7, "layer starts: {}", counters.layer_starts);
}
