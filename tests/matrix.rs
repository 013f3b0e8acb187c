//! The forwarding matrix, driven directly on parlor-media with real WebRTC clients: a denied
//! pair gets nothing by any path (not even retransmissions of what it had), and a re-allowed
//! video pair resumes on a keyframe with contiguous sequence numbers. Also glare, through the
//! whole server.

use crate::support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parlor_media::{DropReason, Kind as MKind, Media, MediaError, Reach, RoomMedia};
use serde_json::Value;
use support::media_room::{media_room, start_media, MediaRoom, SdpRewrite};
use support::peer::{forged_binding_request, ice_pwd, ice_ufrag, signed_binding_request};
use support::*;
use tokio::sync::mpsc;

const LONG: Duration = Duration::from_secs(20);

/// A media room with WebRTC peers whose signaling goes straight to `RoomMedia`.
struct Rig {
    media: Media,
    room: Arc<RoomMedia>,
    peers: HashMap<String, MediaPeer>,
    /// The relay in front of the server for one peer, if asked for.
    relay: Option<Relay>,
    /// Peers whose media path the server reported lost (`MediaEvent::Disconnected`), in order.
    lost: Arc<std::sync::Mutex<Vec<String>>>,
}

/// SDP the server sends to a peer, with its media address replaced by a relay's.
type Rewrites = Arc<std::sync::Mutex<HashMap<String, (String, String)>>>;

fn rewrite(rewrites: &Rewrites, peer: &str, sdp: String) -> String {
    match rewrites.lock().unwrap().get(peer) {
        Some((from, to)) => sdp.replace(from.as_str(), to.as_str()),
        None => sdp,
    }
}

async fn rig(members: &[(&str, ClientOptions)]) -> Rig {
    rig_with(members, None).await
}

/// A rig; `relayed` names a peer that reaches the server only through a [`Relay`].
/// Publishers a and b, b behind the test relay, everyone allowed, each already holding `min`
/// video packets from the other.
async fn relayed_call(min: usize) -> Rig {
    let rig = rig_with(&[("a", ClientOptions::publisher()), ("b", ClientOptions::publisher())], Some("b")).await;
    set_routes(&rig.room, everyone_but(1, &["a", "b"], None)).await.unwrap();
    let (a, b) = (&rig.peers["a"], &rig.peers["b"]);
    assert!(
        wait_until(LONG, || a.count("b", Kind::Video) >= min && b.count("a", Kind::Video) >= min).await,
        "call through the relay"
    );
    rig
}

async fn rig_with(members: &[(&str, ClientOptions)], relayed: Option<&str>) -> Rig {
    let media = start_media();
    let rewrites = Rewrites::default();
    let mut relay = None;
    if let Some(peer) = relayed {
        // Every SDP the server sends this peer names the relay instead of the server.
        let server = media.local_addrs()[0];
        let r = Relay::start(server).await;
        let (from, to) =
            (format!("127.0.0.1 {} typ host", server.port()), format!("127.0.0.1 {} typ host", r.client_side.port()));
        rewrites.lock().unwrap().insert(peer.to_owned(), (from, to));
        relay = Some(r);
    }
    let sdp: SdpRewrite = Arc::new(move |id, sdp| rewrite(&rewrites, id, sdp));
    let MediaRoom { media, room, peers, lost } = media_room(media, "m", members, Some(sdp)).await;
    Rig { media, room, peers, relay, lost }
}

/// Routes of `epoch`: everyone receives everyone else's audio and video, except `denied`
/// (subscriber, publisher, kind). Names every (publisher, kind), so it replaces all routes.
fn everyone_but(epoch: u64, ids: &[&str], denied: Option<(&str, &str, MKind)>) -> (u64, Vec<Reach>) {
    let mut reaches = Vec::new();
    for p in ids {
        for kind in [MKind::Audio, MKind::Video] {
            let subscribers = ids.iter().filter(|s| *s != p && denied != Some((s, p, kind)));
            reaches.push(Reach::new(*p, kind, subscribers.copied()));
        }
    }
    (epoch, reaches)
}

/// Apply routes made by [`everyone_but`] (or by hand); the epoch in force after.
async fn set_routes(room: &RoomMedia, (epoch, reaches): (u64, Vec<Reach>)) -> Result<u64, MediaError> {
    room.update_routes(epoch, reaches).await
}

/// Every client registers RTX for VP8 (as browsers do), so the server's streams toward them
/// carry an RTX stream and str0m answers NACKs; `pub` answers keyframe requests only after
/// [`KEYFRAME_DELAY`], sending interframes meanwhile, so a resume that does not wait for a
/// keyframe shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_video_gets_nothing_and_resumes_on_a_keyframe_without_gaps() {
    const KEYFRAME_DELAY: Duration = Duration::from_millis(300);
    let ids = ["sub", "pub", "other"];
    let rig = rig(&[
        ("sub", ClientOptions::publisher()),
        ("pub", ClientOptions::publisher().with_pts(109, 120).with_keyframe_delay(KEYFRAME_DELAY)),
        ("other", ClientOptions::publisher()),
    ])
    .await;
    let (sub, publ, other) = (&rig.peers["sub"], &rig.peers["pub"], &rig.peers["other"]);
    set_routes(&rig.room, everyone_but(1, &ids, None)).await.unwrap();
    for (rx, tx) in [("sub", "pub"), ("other", "pub"), ("sub", "other"), ("pub", "sub")] {
        let rx = &rig.peers[rx];
        assert!(
            wait_until(LONG, || rx.count(tx, Kind::Video) >= 30).await,
            "{tx} video reaches {}: {:?}",
            rx.id(),
            rx.counts()
        );
    }

    // Positive control for the denial below: while the pair is allowed, a NACK for a packet sub
    // received recently is answered with a retransmission on sub's RTX stream for pub's video.
    let had = sub.received("pub", Kind::Video);
    let probe = had[had.len() - 5].clone();
    sub.send_nack("pub", Kind::Video, &[probe.seq]).await.unwrap();
    assert!(
        wait_until(LONG, || sub.retransmissions("pub", Kind::Video).iter().any(|p| p.seq == probe.seq)).await,
        "an allowed pair gets a NACKed packet retransmitted: {:?}",
        sub.all_retransmissions()
    );
    let resent = sub.retransmissions("pub", Kind::Video).into_iter().find(|p| p.seq == probe.seq).unwrap();
    let info = resent.rtx.unwrap();
    assert!(info.associated && info.repaired, "{info:?}");
    assert_ne!(info.ssrc, probe.ssrc);
    assert_eq!((resent.ssrc, resent.pt, &resent.payload), (probe.ssrc, probe.pt, &probe.payload));

    // Deny (sub, pub, video).
    assert_eq!(set_routes(&rig.room, everyone_but(2, &ids, Some(("sub", "pub", MKind::Video)))).await.unwrap(), 2);
    let denied_at = now_us();
    let denied_instant = std::time::Instant::now();
    let kf_before = publ.keyframe_requests();
    let (audio0, other_video0, pub_to_other0) =
        (sub.count("pub", Kind::Audio), sub.count("other", Kind::Video), other.count("pub", Kind::Video));
    // Let the in-flight packets land, then try every way back in: keyframe requests, and NACKs
    // for the last 30 packets sub received (all still in str0m's retransmission cache unless
    // the server emptied it) and for packets sent since.
    assert!(wait_until(LONG, || sub.count("pub", Kind::Audio) >= audio0 + 10).await);
    let had = sub.received("pub", Kind::Video);
    let nacked_at = Instant::now();
    let seen: Vec<u16> = had.iter().rev().take(30).map(|p| p.seq).collect();
    assert_eq!(seen.len(), 30, "sub saw pub's video before the deny");
    let last_seen = had.last().unwrap().seq;
    let nacks: Vec<u16> = seen.iter().copied().chain((1..=20u16).map(|i| last_seen.wrapping_add(i))).collect();
    sub.send_pli("pub").await.unwrap();
    sub.send_nack("pub", Kind::Video, &nacks).await.unwrap();
    sub.send_pli("pub").await.unwrap();
    // Meanwhile everything else keeps flowing.
    assert!(wait_until(LONG, || sub.count("pub", Kind::Audio) >= audio0 + 60).await, "sub still hears pub");
    assert!(wait_until(LONG, || sub.count("other", Kind::Video) >= other_video0 + 30).await, "sub still sees other");
    assert!(wait_until(LONG, || other.count("pub", Kind::Video) >= pub_to_other0 + 30).await, "other still sees pub");
    let during = sub.received("pub", Kind::Video);
    let mut seqs = HashSet::new();
    for p in &during {
        let m = p.mark().unwrap();
        assert!(m.sent_us < denied_at, "packet sent {} µs after the deny reached sub", m.sent_us - denied_at);
        // Anything arriving after the NACKs could be their answer; a resent copy of a packet
        // sub already had would also show as a repeated sequence number.
        assert!(p.arrival < nacked_at, "packet {} reached sub after the NACKs", p.seq);
        assert!(seqs.insert(p.seq), "packet {} reached sub twice", p.seq);
    }
    let resent: Vec<(u16, Duration)> = sub
        .retransmissions("pub", Kind::Video)
        .iter()
        .filter(|p| p.arrival >= denied_instant)
        .map(|p| (p.seq, p.arrival.saturating_duration_since(nacked_at)))
        .collect();
    assert!(
        resent.is_empty(),
        "retransmissions of pub's video reached sub while denied (seq, after the NACK): {resent:?}"
    );
    // Nor padding: RTX packets with no original packet in them (counted apart from
    // retransmissions, after webrtc strips the RTP padding).
    assert_eq!(sub.rtx_padding(), 0, "padding-only RTX packets reached sub");
    assert_eq!(publ.keyframe_requests(), kf_before, "sub's keyframe requests for a denied pair never reach pub");
    let counters = rig.media.counters().await;
    assert!(counters.dropped(DropReason::NotAllowed) > 0, "{counters:?}");
    assert!(counters.dropped(DropReason::DeniedKeyframeRequest) >= 1, "{counters:?}");

    // Re-allow: the server asks pub for a keyframe; sub's first new packet starts one and
    // follows the last it had without a gap in sequence numbers.
    let (n_before, last_seq) = (during.len(), during.last().unwrap().seq);
    let allowed_at = now_us();
    set_routes(&rig.room, everyone_but(3, &ids, None)).await.unwrap();
    assert!(wait_until(LONG, || sub.count("pub", Kind::Video) >= n_before + 10).await, "video resumes");
    assert!(publ.keyframe_requests() > kf_before, "the server requested a keyframe");
    let all = sub.received("pub", Kind::Video);
    let first_new = &all[n_before];
    let first_sent_us = first_new.mark().unwrap().sent_us;
    // pub answers the server's keyframe request late, so interframes came first: the server had
    // to hold them back.
    let held_back = publ
        .sent(Kind::Video)
        .iter()
        .filter(|p| !p.keyframe)
        .filter(|p| (allowed_at..first_sent_us).contains(&parse_mark(&p.payload).unwrap().sent_us))
        .count();
    assert!(
        first_new.is_keyframe(),
        "first packet after resume starts a keyframe ({held_back} interframes sent before it)"
    );
    assert!(held_back >= 1, "pub sent interframes after the re-allow, before the keyframe");
    assert!(first_sent_us >= allowed_at, "nothing sent while denied is delivered late");
    let seqs: Vec<u16> = all[n_before - 1..].iter().map(|p| p.seq).collect();
    for w in seqs.windows(2) {
        assert_eq!(w[1], w[0].wrapping_add(1), "contiguous sequence numbers across the pause: {seqs:?}");
    }
    assert_eq!(seqs[1], last_seq.wrapping_add(1));
}

/// Waits until `publ` has seen no keyframe request for `quiet` (the server's own requests at
/// setup, and earlier ones in flight, are over); fails after `LONG`.
async fn keyframe_requests_settle(publ: &MediaPeer, quiet: Duration) -> u64 {
    let deadline = Instant::now() + LONG;
    loop {
        let n = publ.keyframe_requests();
        if !wait_until(quiet, || publ.keyframe_requests() != n).await {
            return n;
        }
        assert!(Instant::now() < deadline, "keyframe requests to {} never settle", publ.id());
    }
}

/// The most keyframe requests the server may send one publisher track in `elapsed`: one per
/// 200 ms interval begun (parlor's `KEYFRAME_REQUEST_INTERVAL`).
fn keyframe_request_budget(elapsed: Duration) -> u64 {
    (elapsed.as_millis() / 200) as u64 + 1
}

/// An allowed subscriber's keyframe requests reach the publisher, at most one per publisher
/// track per 200 ms however many the subscriber sends. The publisher's count is every PLI/FIR
/// for its video SSRC seen in its receive chain (`MediaPeer::keyframe_requests`); it answers
/// each with a keyframe but that sends no request, so the count is exactly what the server sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_keyframe_request_goes_upstream_rate_limited() {
    let ids = ["sub", "pub"];
    let rig = rig(&[("sub", ClientOptions::publisher()), ("pub", ClientOptions::publisher())]).await;
    let (sub, publ) = (&rig.peers["sub"], &rig.peers["pub"]);
    set_routes(&rig.room, everyone_but(1, &ids, None)).await.unwrap();
    assert!(wait_until(LONG, || sub.count("pub", Kind::Video) >= 30).await, "pub's video reaches sub");
    let quiet = Duration::from_millis(400);

    // One PLI: it reaches pub, and pub's answer (a keyframe) reaches sub.
    let kf0 = keyframe_requests_settle(publ, quiet).await;
    let server0 = rig.media.counters().await.keyframe_requests;
    let seen0 = sub.count("pub", Kind::Video);
    assert_eq!(sub.send_pli("pub").await.unwrap(), 1);
    assert!(wait_until(LONG, || publ.keyframe_requests() > kf0).await, "sub's PLI reaches pub");
    assert!(
        wait_until(LONG, || sub.received("pub", Kind::Video)[seen0..].iter().any(|p| p.is_keyframe())).await,
        "pub's keyframe answers sub's request"
    );
    assert_eq!(rig.media.counters().await.keyframe_requests, server0 + 1, "counted once");

    // A burst of 20 PLIs within a few ms: the first goes upstream, the rest fall within 200 ms.
    let kf1 = keyframe_requests_settle(publ, quiet).await;
    let server1 = rig.media.counters().await.keyframe_requests;
    let seen1 = sub.count("pub", Kind::Video);
    let burst_start = Instant::now();
    for _ in 0..20 {
        sub.send_pli("pub").await.unwrap();
    }
    let burst_took = burst_start.elapsed();
    assert!(wait_until(LONG, || publ.keyframe_requests() > kf1).await, "the burst's first PLI reaches pub");
    // Watch for a while longer, clocked by pub's video (about half a second).
    assert!(wait_until(LONG, || sub.count("pub", Kind::Video) >= seen1 + 15).await, "video flows");
    let elapsed = burst_start.elapsed();
    let upstream = publ.keyframe_requests() - kf1;
    let server = rig.media.counters().await.keyframe_requests - server1;
    println!("burst: 20 PLIs sent in {burst_took:?}; pub got {upstream} (server sent {server}) in {elapsed:?}");
    assert!(upstream <= keyframe_request_budget(elapsed), "{upstream} keyframe requests reached pub in {elapsed:?}");
    assert!(server <= keyframe_request_budget(elapsed), "{server} keyframe requests sent in {elapsed:?}");

    // A steady stream of PLIs every 10 ms for a second: one gets through per interval, not
    // just the first.
    let kf2 = keyframe_requests_settle(publ, quiet).await;
    let server2 = rig.media.counters().await.keyframe_requests;
    let start = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    let mut sent = 0;
    while start.elapsed() < Duration::from_secs(1) {
        ticker.tick().await;
        sub.send_pli("pub").await.unwrap();
        sent += 1;
    }
    let seen2 = sub.count("pub", Kind::Video);
    assert!(wait_until(LONG, || sub.count("pub", Kind::Video) >= seen2 + 3).await, "video flows");
    let elapsed = start.elapsed();
    let upstream = publ.keyframe_requests() - kf2;
    let server = rig.media.counters().await.keyframe_requests - server2;
    println!("steady: {sent} PLIs; pub got {upstream} (server sent {server}) in {elapsed:?}");
    assert!(upstream >= 2, "requests keep going upstream after the first: {upstream}");
    assert!(upstream <= keyframe_request_budget(elapsed), "{upstream} keyframe requests reached pub in {elapsed:?}");
    assert!(server <= keyframe_request_budget(elapsed), "{server} keyframe requests sent in {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_matrix_is_ignored_and_unlisted_peers_get_nothing() {
    let rig = rig(&[("a", ClientOptions::publisher()), ("b", ClientOptions::publisher())]).await;
    // Epoch 5 allows only b -> a video; an older epoch 4 that allows everything comes late.
    let m = (5, vec![Reach::new("b", MKind::Video, ["a"])]);
    assert_eq!(set_routes(&rig.room, m).await.unwrap(), 5);
    assert_eq!(set_routes(&rig.room, everyone_but(4, &["a", "b"], None)).await.unwrap(), 5);
    let (a, b) = (&rig.peers["a"], &rig.peers["b"]);
    assert!(wait_until(LONG, || a.count("b", Kind::Video) >= 30).await);
    assert_eq!(a.count("b", Kind::Audio), 0, "audio not listed");
    assert_eq!(b.count("a", Kind::Video) + b.count("a", Kind::Audio), 0, "b listed for nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glare_gets_an_error_and_recovers() {
    let server = server().await;
    let url = format!("ws://{}/ws", server.http_addr);
    let a = TestClient::join(&url, "glare", "Ann", ClientOptions::publisher()).await.unwrap();
    let b = TestClient::join(&url, "glare", "Bob", ClientOptions::publisher()).await.unwrap();
    a.wait_count(b.id(), Kind::Video, 10, LONG).await.unwrap();

    // Ann's signaling is driven by hand: she is connected and negotiated; when Cy joins, the
    // server offers to Ann, and Ann offers at the same moment.
    let mut ann = Ws::connect(&server).await;
    let w = ann.join("glare", "Dee").await;
    let dee_id = w["id"].as_str().unwrap().to_owned();
    let (sig_tx, sig_rx) = mpsc::unbounded_channel::<Value>();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Value>();
    let sink: SignalSink = Arc::new(move |v| drop(out_tx.send(v)));
    let dee = MediaPeer::start(&dee_id, &ClientOptions::publisher(), sink, sig_rx).await.unwrap();
    // Pump: Dee's messages to the socket; the socket's to Dee, holding back one server offer.
    let mut held_offer: Option<Value> = None;
    let mut saw_glare = false;
    let deadline = tokio::time::Instant::now() + LONG;
    let mut cy: Option<TestClient> = None;
    let mut renegotiated = false;
    loop {
        tokio::select! {
            Some(v) = out_rx.recv() => {
                ann.send(v).await;
            }
            got = ann.next() => {
                let Got::Json(v) = got else { panic!("socket closed") };
                match v["type"].as_str() {
                    Some("offer") if cy.is_some() && held_offer.is_none() && !saw_glare => {
                        // Hold the server's offer and make Dee offer on her own: glare.
                        held_offer = Some(v);
                        dee.renegotiate();
                    }
                    Some("error") => {
                        assert_eq!(v["code"], "glare", "{v}");
                        saw_glare = true;
                        let _ = sig_tx.send(v);
                        // Now let Dee see the server's offer: she rolls back, answers, offers again.
                        if let Some(offer) = held_offer.take() {
                            let _ = sig_tx.send(offer);
                        }
                    }
                    Some("answer") | Some("offer") | Some("candidate") => {
                        if saw_glare && v["type"] == "answer" {
                            renegotiated = true;
                        }
                        let _ = sig_tx.send(v);
                    }
                    _ => {}
                }
            }
            // Re-check the conditions below at least every 20 ms.
            _ = tokio::time::sleep(Duration::from_millis(20)) => {
                assert!(tokio::time::Instant::now() < deadline, "glare scenario timed out (glare seen: {saw_glare})");
            }
        }
        if cy.is_none() && dee.count(a.id(), Kind::Video) >= 10 {
            cy = Some(TestClient::join(&url, "glare", "Cy", ClientOptions::publisher()).await.unwrap());
        }
        if let Some(c) = &cy {
            if renegotiated && dee.count(c.id(), Kind::Video) >= 10 && c.count(&dee_id, Kind::Video) >= 10 {
                break;
            }
        }
    }
    assert!(saw_glare);
    assert!(dee.errors().is_empty(), "{:?}", dee.errors());
}

/// A UDP relay between one client and the server: the server sees the relay's server-side
/// socket as the client's address, and `move_to_new_address` swaps that socket, the way a
/// phone leaving Wi-Fi would.
struct Relay {
    client_side: std::net::SocketAddr,
    switch: tokio::sync::watch::Sender<u32>,
    forwarded: Arc<std::sync::atomic::AtomicUsize>,
    /// While set, the relay drops everything both ways (a dead network path).
    dead: Arc<std::sync::atomic::AtomicBool>,
    /// Datagrams to send the server from the relay's server-side socket, i.e. from the client's
    /// address as the server sees it (a spoofed source).
    inject: mpsc::UnboundedSender<Vec<u8>>,
}

impl Relay {
    async fn start(server: std::net::SocketAddr) -> Relay {
        use tokio::net::UdpSocket;
        let client_sock = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let client_side = client_sock.local_addr().unwrap();
        let (switch, mut switched) = tokio::sync::watch::channel(0u32);
        let forwarded = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = forwarded.clone();
        let dead = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let is_dead = dead.clone();
        let (inject, mut injected) = mpsc::unbounded_channel::<Vec<u8>>();
        tokio::spawn(async move {
            let mut server_sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let mut client: Option<std::net::SocketAddr> = None;
            let (mut up, mut down) = (vec![0u8; 2048], vec![0u8; 2048]);
            loop {
                tokio::select! {
                    r = client_sock.recv_from(&mut up) => {
                        let Ok((n, from)) = r else { break };
                        if is_dead.load(std::sync::atomic::Ordering::Relaxed) { continue; }
                        client = Some(from);
                        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let _ = server_sock.send_to(&up[..n], server).await;
                    }
                    r = server_sock.recv_from(&mut down) => {
                        let Ok((n, _)) = r else { break };
                        if is_dead.load(std::sync::atomic::Ordering::Relaxed) { continue; }
                        if let Some(c) = client {
                            let _ = client_sock.send_to(&down[..n], c).await;
                        }
                    }
                    Some(d) = injected.recv() => {
                        let _ = server_sock.send_to(&d, server).await;
                    }
                    changed = switched.changed() => {
                        if changed.is_err() { break; }
                        // The old address is gone for good: nothing sent to it arrives.
                        server_sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                    }
                }
            }
        });
        Relay { client_side, switch, forwarded, dead, inject }
    }

    /// Datagrams relayed from the client so far.
    fn forwarded(&self) -> usize {
        self.forwarded.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Cut (or restore) the path: nothing passes either way.
    fn set_dead(&self, dead: bool) {
        self.dead.store(dead, std::sync::atomic::Ordering::Relaxed);
    }

    /// Sends `datagram` to the server as if the client had sent it.
    fn inject(&self, datagram: Vec<u8>) {
        let _ = self.inject.send(datagram);
    }

    fn move_to_new_address(&self) {
        self.switch.send_modify(|n| *n += 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_restart_from_a_new_address_with_new_credentials() {
    let rig = relayed_call(20).await;
    let relay = rig.relay.as_ref().unwrap();
    let (a, b) = (&rig.peers["a"], &rig.peers["b"]);
    // Everything b sent went through the relay (which also carries b's STUN, DTLS and RTCP).
    let sent = b.sent_count(Kind::Video) + b.sent_count(Kind::Audio);
    assert!(
        relay.forwarded() + 5 >= sent,
        "b's media goes through the relay: {} relayed, {sent} sent",
        relay.forwarded()
    );
    let before = b.local_sdp().await.unwrap();

    // The network changes: b's packets now come from a new address, and b restarts ICE.
    relay.move_to_new_address();
    b.restart_ice();
    let moved_at = now_us();
    let fresh = |rx: &MediaPeer, tx: &str| {
        rx.received(tx, Kind::Video).iter().filter(|p| p.mark().is_some_and(|m| m.sent_us > moved_at + 200_000)).count()
    };
    let started = std::time::Instant::now();
    assert!(wait_until(LONG, || fresh(a, "b") >= 20 && fresh(b, "a") >= 20).await, "media flows again both ways");
    println!("media back {} ms after the move (time for 20 fresh packets both ways)", started.elapsed().as_millis());
    let after = b.local_sdp().await.unwrap();
    let ufrag = |sdp: &str| sdp.lines().find_map(|l| l.strip_prefix("a=ice-ufrag:")).map(str::to_owned);
    assert_ne!(ufrag(&before), ufrag(&after), "new ICE credentials");
}

/// ICE consent: a peer whose path goes silent is reported lost by the server (str0m's ICE-lite
/// agent drops a pair after 15 s without a binding request), and an ICE restart from a new
/// address brings it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_media_path_is_noticed_and_an_ice_restart_revives_it() {
    let rig = relayed_call(20).await;
    let relay = rig.relay.as_ref().unwrap();
    let (a, b) = (&rig.peers["a"], &rig.peers["b"]);
    assert!(rig.lost.lock().unwrap().is_empty(), "no path lost while the call flows");
    let lost_before = rig.media.counters().await.paths_lost;

    // The path dies: nothing passes either way.
    relay.set_dead(true);
    let died = Instant::now();
    let noticed = wait_until(Duration::from_secs(30), || rig.lost.lock().unwrap().iter().any(|p| p == "b")).await;
    assert!(noticed, "the server reports b's dead path within 30 s");
    let after = died.elapsed();
    println!("dead path noticed after {} ms", after.as_millis());
    assert!(after >= Duration::from_secs(5), "not before consent could have failed: {after:?}");
    assert!(!rig.lost.lock().unwrap().iter().any(|p| p == "a"), "a's path is alive");
    assert_eq!(rig.media.counters().await.paths_lost, lost_before + 1, "counted once");

    // b comes back from a new address with new credentials.
    relay.move_to_new_address();
    relay.set_dead(false);
    b.restart_ice();
    let back_from = now_us();
    let fresh = |rx: &MediaPeer, tx: &str| {
        rx.received(tx, Kind::Video)
            .iter()
            .filter(|p| p.mark().is_some_and(|m| m.sent_us > back_from + 200_000))
            .count()
    };
    assert!(wait_until(LONG, || fresh(a, "b") >= 20 && fresh(b, "a") >= 20).await, "media flows again both ways");
}

/// A STUN check with a forged integrity, sent from b's address (spoofed) and naming a's
/// server-side ufrag. Before the fix the demultiplexer re-pointed b's address at a's peer on
/// any such request, so b's SRTP went to a's str0m (which could not decrypt it) until b's next
/// genuine check: repeated, it cut b's upstream media. Now an address is learnt only from a
/// check its peer answered. Then garbage from b's own address, which reaches b's str0m.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_check_from_a_spoofed_address_does_not_divert_its_media() {
    let rig = relayed_call(30).await;
    let relay = rig.relay.as_ref().unwrap();
    let (a, b) = (&rig.peers["a"], &rig.peers["b"]);
    let username =
        format!("{}:{}", ice_ufrag(&a.remote_sdp().await.unwrap()), ice_ufrag(&a.local_sdp().await.unwrap()));
    // For two seconds, one forged check every 50 ms from b's address.
    let (from_b0, to_b0) = (a.count("b", Kind::Video), b.count("a", Kind::Video));
    let start = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_millis(50));
    let mut n = 0u8;
    // At least two seconds, and until the control direction has carried ten packets (a loaded
    // machine sends fewer frames).
    let going = |start: Instant, to_b0: usize| {
        let long_enough = start.elapsed() >= Duration::from_secs(2) && b.count("a", Kind::Video) >= to_b0 + 10;
        !long_enough && start.elapsed() < LONG
    };
    while going(start, to_b0) {
        ticker.tick().await;
        n = n.wrapping_add(1);
        relay.inject(forged_binding_request(&username, [n; 20], [n; 12]));
    }
    let (from_b, to_b) = (a.count("b", Kind::Video) - from_b0, b.count("a", Kind::Video) - to_b0);
    let stopped = Instant::now();
    let counters = rig.media.counters().await;
    let back = a.count("b", Kind::Video);
    let recovered = wait_until(LONG, || a.count("b", Kind::Video) >= back + 10).await;
    println!("after the forgeries stop: b's video reaches a again ({recovered}) within {:?}", stopped.elapsed());
    println!(
        "during {:?} of forged checks: a got {from_b} video packets from b, b got {to_b} from a; {counters:?}",
        stopped - start
    );
    // About 60 frames each way in two seconds on an idle machine. Diverting b's address cuts
    // only b's upstream (to 1–3 packets, before the fix), so a → b is the control.
    assert!(to_b >= 10, "a's video flows to b: {to_b} packets in {:?}", stopped - start);
    assert!(2 * from_b >= to_b, "b's video to a was cut by forged checks from b's address: {from_b} vs {to_b} packets");
    assert!(recovered, "b's video keeps reaching a");

    // A participant knows its own credentials: a's genuine checks sent from b's address are
    // answered by a's str0m, but b's address, in use by b, is not handed to a.
    let password = ice_pwd(&a.remote_sdp().await.unwrap());
    let (from_b0, to_b0) = (a.count("b", Kind::Video), b.count("a", Kind::Video));
    let start = Instant::now();
    while going(start, to_b0) {
        ticker.tick().await;
        n = n.wrapping_add(1);
        relay.inject(signed_binding_request(&username, &password, [n; 12]));
    }
    let (from_b, to_b) = (a.count("b", Kind::Video) - from_b0, b.count("a", Kind::Video) - to_b0);
    println!(
        "during {:?} of a's signed checks from b's address: a got {from_b} video packets from b, b got {to_b}",
        start.elapsed()
    );
    assert!(to_b >= 10, "a's video flows to b: {to_b} packets in {:?}", start.elapsed());
    assert!(2 * from_b >= to_b, "b's video to a was cut by a's checks from b's address: {from_b} vs {to_b} packets");

    // Garbage from b's own (spoofed) address reaches b's str0m: RTP, RTCP, DTLS-shaped and STUN
    // range. Nothing panics, no peer is dropped, and b's media keeps flowing both ways.
    let mut rng = XorShift::new(0x9e37_79b9_7f4a_7c15);
    let mut byte = move || rng.next_u64() as u8;
    let (from_b0, to_b0) = (a.count("b", Kind::Video), b.count("a", Kind::Video));
    for i in 0..1000 {
        let len = 12 + (usize::from(byte()) << 2);
        let mut d: Vec<u8> = (0..len).map(|_| byte()).collect();
        match i % 4 {
            0 => d[0] = 0x80 | (d[0] & 0x3f),
            1 => {
                d[0] = 0x80 | (d[0] & 0x1f);
                d[1] = 200 + d[1] % 7;
            }
            2 => d[0] = 20 + d[0] % 44,
            _ => d[0] %= 4,
        }
        relay.inject(d);
        if i % 50 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let flowing =
        wait_until(LONG, || a.count("b", Kind::Video) >= from_b0 + 30 && b.count("a", Kind::Video) >= to_b0 + 30).await;
    let after = rig.media.counters().await;
    println!("after 1000 garbage datagrams from b's address: {after:?}");
    assert_eq!(after.peer_faults, 0, "no peer dropped: {after:?}");
    assert!(flowing, "b's media flows both ways after the garbage");
    assert!(b.is_connected() && a.is_connected());
}
