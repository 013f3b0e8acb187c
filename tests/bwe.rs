//! Bandwidth estimation end to end, on parlor-media with `webrtc`-crate peers: a simulcast
//! publisher (three synthetic VP8 layers of about 60, 120 and 230 kbit/s), a subscriber on a wide
//! path, and one whose UDP path from the server runs through an in-test relay on 127.0.0.1 that
//! polices its rate (a token bucket; what does not fit is dropped, as a bottleneck drops it). The
//! subscriber's own RTCP receiver reports (the webrtc crate's report interceptor) tell the server
//! the loss; the server pads nothing and probes with the upgrade itself.
//!
//! With the limit below the top layer the limited subscriber settles on a lower layer (on that
//! layer's keyframe, with no sequence gap from the server) and stays there through the 10 s
//! hold; once the hold is over it tries the top layer again (the probe), loses, and is back on
//! the lower layer; audio reaches it throughout; the wide subscriber keeps the top layer; lifted,
//! it climbs back. The times are printed (`-- --nocapture`).

use crate::support;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use parlor_media::{BweDecision, Kind as MKind, Reach};
use support::media_room::{media_room, start_media, MediaRoom, SdpRewrite};
use support::*;
use tokio::net::UdpSocket;

const RIDS: [&str; 3] = ["q", "h", "f"];
const LONG: Duration = Duration::from_secs(20);
/// The relay's limit while it limits: the top layer with audio (about 285 kbit/s on the wire)
/// does not fit, the middle one (about 170) does.
const LIMIT_BPS: u64 = 210_000;
/// The token bucket's depth: a few packets' burst.
const BUCKET_BYTES: f64 = 6_000.0;
/// Bounds asserted (generous: two shared cores); the measured times are printed.
const SETTLE_BOUND: Duration = Duration::from_secs(12);
const CLIMB_BOUND: Duration = Duration::from_secs(30);

/// One datagram the relay saw from the server.
#[derive(Debug, Clone, Copy)]
struct Seen {
    /// RTP SSRC and sequence number (the RTP header is in the clear under SRTP); `None` for
    /// anything else (RTCP, STUN, DTLS).
    rtp: Option<(u32, u16)>,
    /// Its size on the wire.
    len: usize,
    passed: bool,
}

/// A UDP relay between one client and the server: client → server unlimited, server → client
/// through a token bucket of `limit` bits per second (0: no limit).
struct Relay {
    /// Where the client sends (the address put into its copy of the server's candidates).
    client_side: SocketAddr,
    server: Arc<Mutex<Option<SocketAddr>>>,
    limit: Arc<AtomicU64>,
    log: Arc<Mutex<Vec<Seen>>>,
}

impl Relay {
    async fn start() -> Relay {
        let down = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let up = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let client_side = down.local_addr().unwrap();
        let server: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let client: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let limit = Arc::new(AtomicU64::new(0));
        let log: Arc<Mutex<Vec<Seen>>> = Arc::default();
        {
            let (down, up, server, client) = (down.clone(), up.clone(), server.clone(), client.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 2048];
                while let Ok((n, from)) = down.recv_from(&mut buf).await {
                    *client.lock().unwrap() = Some(from);
                    let to = *server.lock().unwrap();
                    if let Some(to) = to {
                        let _ = up.send_to(&buf[..n], to).await;
                    }
                }
            });
        }
        {
            let (limit, log) = (limit.clone(), log.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 2048];
                let (mut tokens, mut last) = (BUCKET_BYTES, Instant::now());
                while let Ok((n, _)) = up.recv_from(&mut buf).await {
                    let now = Instant::now();
                    let bps = limit.load(Ordering::Relaxed);
                    let passed = if bps == 0 {
                        tokens = BUCKET_BYTES;
                        true
                    } else {
                        tokens = (tokens + now.duration_since(last).as_secs_f64() * bps as f64 / 8.0).min(BUCKET_BYTES);
                        if tokens >= n as f64 {
                            tokens -= n as f64;
                            true
                        } else {
                            false
                        }
                    };
                    last = now;
                    log.lock().unwrap().push(Seen { rtp: rtp_header(&buf[..n]), len: n, passed });
                    let to = *client.lock().unwrap();
                    if let (true, Some(to)) = (passed, to) {
                        let _ = down.send_to(&buf[..n], to).await;
                    }
                }
            });
        }
        Relay { client_side, server, limit, log }
    }

    fn set_limit(&self, bps: u64) {
        self.limit.store(bps, Ordering::Relaxed);
    }

    /// A copy of the server's SDP for the client behind the relay: its UDP candidates name the
    /// relay, and the relay learns the server's address from them.
    fn rewrite(&self, sdp: &str) -> String {
        let mut out = String::new();
        for line in sdp.split_inclusive('\n') {
            let fields: Vec<&str> = line.trim_end().split(' ').collect();
            if line.starts_with("a=candidate:") && fields.len() > 5 && fields[2].eq_ignore_ascii_case("udp") {
                if let Ok(addr) = format!("{}:{}", fields[4], fields[5]).parse::<SocketAddr>() {
                    *self.server.lock().unwrap() = Some(addr);
                    let mut f = fields.clone();
                    let port = self.client_side.port().to_string();
                    f[5] = &port;
                    out.push_str(&f.join(" "));
                    out.push_str("\r\n");
                    continue;
                }
            }
            out.push_str(line);
        }
        out
    }

    fn log(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }
}

/// The SSRC and sequence number of an RTP packet (not RTCP: payload types 64–95 under mux).
fn rtp_header(d: &[u8]) -> Option<(u32, u16)> {
    if d.len() < 12 || d[0] >> 6 != 2 || (64..96).contains(&(d[1] & 0x7f)) {
        return None;
    }
    Some((u32::from_be_bytes([d[8], d[9], d[10], d[11]]), u16::from_be_bytes([d[2], d[3]])))
}

type Rig = MediaRoom;

/// A media room whose `relayed` peer's copy of the server's SDP points it at `relay`.
async fn rig(members: &[(&str, ClientOptions)], relayed: &str, relay: Arc<Relay>) -> Rig {
    // `PARLOR_TEST_LOG=parlor_media::worker::bwe=debug` shows each estimate as it is made.
    if let Ok(filter) = std::env::var("PARLOR_TEST_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    }
    let relayed = relayed.to_owned();
    let rewrite: SdpRewrite = Arc::new(move |id, sdp| if id == relayed { relay.rewrite(&sdp) } else { sdp });
    media_room(start_media(), "bwe", members, Some(rewrite)).await
}

fn reaches(publisher: &str, subscribers: &[&str]) -> Vec<Reach> {
    [MKind::Audio, MKind::Video].into_iter().map(|k| Reach::new(publisher, k, subscribers.iter().copied())).collect()
}

async fn selected(rig: &Rig, sub: &str) -> Option<u8> {
    rig.room.layers(sub, "pub").await.unwrap().and_then(|s| s.selected)
}

/// Waits until `sub` is forwarded `layer` and holds 10 packets of it; how long that took.
async fn wait_for_layer(rig: &Rig, sub: &str, layer: u8, within: Duration) -> Duration {
    let started = Instant::now();
    let rid = format!("pub/{}", RIDS[layer as usize]);
    let ok = wait_until_async(within, || async {
        let got = rig.peers[sub].received("pub", Kind::Video);
        selected(rig, sub).await == Some(layer)
            && got.iter().rev().take(10).filter(|p| p.mark().is_some_and(|m| m.publisher == rid)).count() == 10
    })
    .await;
    let estimate = rig.room.estimate(sub).await.unwrap();
    assert!(ok, "{sub} not on {rid} within {within:?}: {:?}, estimate {estimate:?}", rig.room.layers(sub, "pub").await);
    started.elapsed()
}

/// Samples `sub`'s selected layer every 200 ms for `span`; the layers seen.
async fn layers_over(rig: &Rig, sub: &str, span: Duration) -> Vec<Option<u8>> {
    let until = Instant::now() + span;
    let mut seen = Vec::new();
    while Instant::now() < until {
        seen.push(selected(rig, sub).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limited_subscriber_settles_lower_without_a_gap_and_climbs_back() {
    let relay = Arc::new(Relay::start().await);
    let rig = rig(
        &[
            ("pub", ClientOptions::publisher().with_simulcast(&RIDS)),
            ("wide", ClientOptions::receiver()),
            ("narrow", ClientOptions::receiver()),
            ("denied", ClientOptions::receiver()),
        ],
        "narrow",
        relay.clone(),
    )
    .await;
    rig.room.update_routes(1, reaches("pub", &["wide", "narrow"])).await.unwrap();
    let (publ, narrow, wide, denied) =
        (&rig.peers["pub"], &rig.peers["narrow"], &rig.peers["wide"], &rig.peers["denied"]);
    wait_for_layer(&rig, "wide", 2, LONG).await;
    wait_for_layer(&rig, "narrow", 2, LONG).await;
    assert!(relay.log().iter().any(|s| s.rtp.is_some()), "the narrow subscriber's media runs through the relay");
    // Its receiver reports reach the estimate (they run through the relay too, unlimited).
    assert!(
        wait_until_async(LONG, || async { rig.room.estimate("narrow").await.unwrap().is_some() }).await,
        "no estimate from the narrow subscriber's receiver reports"
    );
    println!(
        "estimates before the limit: narrow {:?}, wide {:?}",
        rig.room.estimate("narrow").await,
        rig.room.estimate("wide").await
    );

    // Limited below the top layer: down to a lower one.
    relay.set_limit(LIMIT_BPS);
    let limited_at = Instant::now();
    let audio_at_limit = narrow.count("pub", Kind::Audio);
    let wide_at_limit = wide.count("pub", Kind::Video);
    let settled =
        wait_until_async(SETTLE_BOUND, || async { selected(&rig, "narrow").await.is_some_and(|l| l < 2) }).await;
    let settle = limited_at.elapsed();
    let layer = selected(&rig, "narrow").await;
    println!(
        "limit {LIMIT_BPS} bit/s: narrow left the top layer after {settle:?} (now on {layer:?}), estimate {:?}",
        rig.room.estimate("narrow").await
    );
    assert!(
        settled,
        "narrow still on the top layer {SETTLE_BOUND:?} after the limit: {:?}",
        rig.room.layers("narrow", "pub").await
    );
    // The 10 s hold after a downgrade: it stays below the top for the next 8 s (and the
    // middle layer fits, so it is not pushed further down for long).
    let held = layers_over(&rig, "narrow", Duration::from_secs(8)).await;
    println!("narrow's layers over the 8 s after settling: {held:?}");
    assert!(held.iter().all(|l| l.is_some_and(|l| l < 2)), "narrow went back up within the hold: {held:?}");
    assert!(
        held.iter().filter(|l| **l == Some(1)).count() * 2 > held.len(),
        "narrow mostly on the middle layer: {held:?}"
    );
    let audio_limited = narrow.count("pub", Kind::Audio) - audio_at_limit;
    assert!(audio_limited > 200, "audio reaches narrow while limited: {audio_limited} packets in ~10 s");
    // The wide subscriber kept the top layer all along.
    let wide_layers = layers_over(&rig, "wide", Duration::from_secs(1)).await;
    assert!(wide_layers.iter().all(|l| *l == Some(2)), "wide left the top layer: {wide_layers:?}");

    // Still limited, the hold over: the upgrade is the probe. It brings loss, so it is taken
    // back, and the hold starts again.
    let probe = wait_until_async(Duration::from_secs(15), || async { selected(&rig, "narrow").await == Some(2) }).await;
    let probed_after = limited_at.elapsed() - settle;
    assert!(probe, "no probe of the top layer within 25 s of the downgrade");
    let probed_at = Instant::now();
    let back = wait_until_async(LONG, || async { selected(&rig, "narrow").await.is_some_and(|l| l < 2) }).await;
    let probe_lasted = probed_at.elapsed();
    println!("probe: the top layer again {probed_after:?} after the downgrade, left after {probe_lasted:?}");
    assert!(back, "the failed probe was not taken back within {LONG:?}");
    let held = layers_over(&rig, "narrow", Duration::from_secs(5)).await;
    assert!(held.iter().all(|l| l.is_some_and(|l| l < 2)), "narrow went back up within the hold: {held:?}");

    // Lifted: back to the top.
    relay.set_limit(0);
    let lifted_at = Instant::now();
    let audio_at_lift = narrow.count("pub", Kind::Audio);
    let climb = wait_for_layer(&rig, "narrow", 2, CLIMB_BOUND).await;
    println!(
        "limit lifted: narrow back on the top layer after {climb:?}, estimate {:?}",
        rig.room.estimate("narrow").await
    );
    assert!(lifted_at.elapsed() <= CLIMB_BOUND);
    assert!(narrow.count("pub", Kind::Audio) > audio_at_lift, "audio after the lift");
    // The wide subscriber got the top layer alone all the while.
    let wide_got = wide.received("pub", Kind::Video);
    let wide_limited = &wide_got[wide_at_limit..];
    assert!(wide_limited.len() > 500, "wide's video went on: {} packets", wide_limited.len());
    assert!(
        wide_limited.iter().all(|p| p.mark().is_some_and(|m| m.publisher == "pub/f")),
        "wide got another layer while narrow was limited"
    );
    // Audio never stopped reaching narrow: the longest silence between two audio packets (sent
    // every 20 ms) from the limit on, lost ones included.
    let arrivals: Vec<u64> =
        narrow.received("pub", Kind::Audio)[audio_at_limit..].iter().map(|p| p.arrival_us()).collect();
    let silence = arrivals.windows(2).map(|w| w[1].saturating_sub(w[0])).max().unwrap_or(u64::MAX);
    println!("narrow's audio from the limit on: {} packets, longest silence {} ms", arrivals.len(), silence / 1000);
    assert!(silence < 500_000, "narrow's audio stopped for {} ms", silence / 1000);

    // What the server sent narrow: no gap in its video's sequence numbers (the relay saw every
    // one, dropped or not), and every switch starts on the new layer's keyframe.
    let ssrc = narrow
        .remote_mlines()
        .await
        .iter()
        .find(|m| m.kind == "video" && m.msid.as_ref().is_some_and(|(s, _)| s == "pub"))
        .expect("pub's video m-line")
        .ssrcs[0];
    let log = relay.log();
    let sent: Vec<u16> = log.iter().filter_map(|s| s.rtp.filter(|(x, _)| *x == ssrc).map(|(_, q)| q)).collect();
    let dropped = log.iter().filter(|s| s.rtp.is_some_and(|(x, _)| x == ssrc) && !s.passed).count();
    assert!(sent.len() > 300 && dropped > 0, "{} video packets sent, {dropped} dropped by the relay", sent.len());
    for w in sent.windows(2) {
        assert_eq!(w[1], w[0].wrapping_add(1), "a gap in the server's sequence numbers");
    }
    // What narrow holds of it, originals and retransmissions repaired, by sequence number.
    let mut held: BTreeMap<u16, RecvPacket> = BTreeMap::new();
    for p in narrow.received("pub", Kind::Video).into_iter().chain(narrow.retransmissions("pub", Kind::Video)) {
        held.entry(p.seq).or_insert(p);
    }
    let mark = |p: &RecvPacket| p.mark().map(|m| m.publisher).unwrap_or_default();
    // A packet the relay dropped is told by its size: SRTP leaves the length of the payload as
    // it is, the server's header and the tag add the same to every packet of the stream, and
    // the synthetic layers' interframes (240, 480, 960 bytes) and keyframes (1000) differ.
    let wire: HashMap<u16, usize> =
        log.iter().filter_map(|s| s.rtp.filter(|(x, _)| *x == ssrc).map(|(_, q)| (q, s.len))).collect();
    let overheads: std::collections::HashSet<usize> =
        held.iter().filter_map(|(q, p)| wire.get(q).map(|w| w - p.payload.len())).collect();
    assert_eq!(overheads.len(), 1, "one header size on the stream: {overheads:?}");
    let overhead = *overheads.iter().next().unwrap();
    let mut class_of_len: HashMap<usize, String> = HashMap::new();
    for p in held.values() {
        let class = if p.is_keyframe() { "key".to_owned() } else { mark(p) };
        let before = class_of_len.insert(p.payload.len(), class.clone());
        assert!(before.as_ref().is_none_or(|b| *b == class), "two kinds of packet of one size: {before:?}, {class}");
    }
    let class_at = |q: u16| -> String {
        match held.get(&q) {
            Some(p) if p.is_keyframe() => "key".to_owned(),
            Some(p) => mark(p),
            None => wire.get(&q).and_then(|w| class_of_len.get(&(w - overhead))).cloned().unwrap_or_default(),
        }
    };
    let (mut verified, mut by_size) = (Vec::new(), 0);
    let runs: Vec<(u16, String)> = held.iter().map(|(s, p)| (*s, mark(p))).collect();
    for w in runs.windows(2) {
        let ((a, la), (b, lb)) = (&w[0], &w[1]);
        if la == lb {
            continue;
        }
        if *b == a.wrapping_add(1) {
            assert!(held[b].is_keyframe(), "the switch {la} -> {lb} at {b} does not start on a keyframe");
        } else {
            // Lost on the limited path between the two runs: the old layer's interframes, then
            // one keyframe, then the new layer's interframes, as the sizes tell.
            let classes: Vec<String> = (a + 1..=*b).map(class_at).collect();
            let first_new = classes.iter().position(|c| c != la);
            let ok = first_new.is_some_and(|i| classes[i] == "key" && classes[i + 1..].iter().all(|c| c == lb));
            assert!(ok, "the switch {la} -> {lb} between {a} and {b}, as sent: {classes:?}");
            by_size += 1;
        }
        verified.push(lb.clone());
    }
    println!(
        "switches to narrow: {verified:?} ({by_size} at packets the relay dropped, checked by size), {dropped} of {} video packets dropped by the relay",
        sent.len()
    );
    let downs = verified.iter().filter(|l| *l != "pub/f").count();
    assert!(downs >= 2, "the switch down and the probe's end were not both seen: {verified:?}");
    assert_eq!(verified.last().map(String::as_str), Some("pub/f"), "the climb back was not seen: {verified:?}");

    let counters = rig.media.counters().await;
    println!(
        "bwe decisions: {:?}",
        BweDecision::ALL.iter().map(|d| (d.as_str(), counters.bwe_decisions(*d))).collect::<Vec<_>>()
    );
    assert!(
        counters.bwe_decisions(BweDecision::EstimateCut) >= 1 && counters.bwe_decisions(BweDecision::Downgrade) >= 1
    );
    assert!(counters.bwe_decisions(BweDecision::Upgrade) >= 2, "the probe and the climb");
    assert!(counters.bwe_decisions(BweDecision::UpgradeHeld) >= 1);
    assert!(counters.estimate_reports > 10 && counters.estimates.iter().any(|(_, p, bps)| p == "narrow" && *bps > 0));
    // Nothing of pub ever reached the subscriber the routes deny, padding neither.
    assert_eq!(denied.count("pub", Kind::Video) + denied.count("pub", Kind::Audio), 0);
    assert!(denied.all_retransmissions().is_empty() && denied.rtx_padding() == 0);
    assert!(wide.rtx_padding() == 0 && narrow.rtx_padding() == 0, "no padding anywhere");
    let _ = publ;
}
