//! Tests of the test client itself, without a server: payload builders, and two clients' peer
//! connections wired directly to each other over 127.0.0.1.

use crate::support;

use std::collections::HashMap;

use support::*;

#[test]
fn vp8_payloads_are_valid_rfc7741() {
    let key = vp8_payload("alice", 7, 123_456, true, 320, 240);
    // Descriptor: X=0, N=0, S=1, PID=0.
    assert_eq!(key[0], 0x10);
    // VP8 payload header: P bit 0 for a keyframe, start code, 320x240.
    assert_eq!(key[1] & 0x01, 0);
    assert_eq!(&key[4..7], &[0x9d, 0x01, 0x2a]);
    let info = parse_vp8(&key).unwrap();
    assert!(info.keyframe && info.start_of_partition && info.partition_id == 0);
    assert_eq!((info.width, info.height), (Some(320), Some(240)));
    assert!(is_vp8_keyframe(&key));

    let inter = vp8_payload("alice", 8, 123_999, false, 320, 240);
    assert_eq!(inter[0], 0x10);
    assert_eq!(inter[1] & 0x01, 1, "interframe P bit");
    let info = parse_vp8(&inter).unwrap();
    assert!(!info.keyframe);
    assert_eq!(info.inter, Some(true));
    assert!(!is_vp8_keyframe(&inter));

    // A descriptor with extensions (as a browser or SFU might send) still parses.
    let mut ext = vec![0x90, 0x80, 0x81, 0x23];
    ext.extend_from_slice(&key[1..]);
    assert!(is_vp8_keyframe(&ext));
    // A continuation packet (S=0) is never a keyframe start.
    let mut cont = key.to_vec();
    cont[0] = 0x00;
    assert!(!is_vp8_keyframe(&cont));

    let m = parse_mark(&key).unwrap();
    assert_eq!(m, MediaMark { publisher: "alice".into(), kind: Kind::Video, counter: 7, sent_us: 123_456 });
    let a = opus_payload("bob-2", 42, 99);
    let m = parse_mark(&a).unwrap();
    assert_eq!((m.publisher.as_str(), m.kind, m.counter, m.sent_us), ("bob-2", Kind::Audio, 42, 99));
    // Pure function of its inputs.
    assert_eq!(opus_payload("bob-2", 42, 99), a);
    assert_ne!(opus_payload("bob-2", 43, 99), a);
}

#[test]
fn sdp_reader() {
    let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 109\r\na=mid:0\r\na=sendrecv\r\n\
               a=msid:alice alice-audio\r\na=rtpmap:109 opus/48000/2\r\na=ssrc:5 cname:x\r\n\
               m=video 9 UDP/TLS/RTP/SAVPF 120\r\na=mid:1\r\na=recvonly\r\na=rtpmap:120 VP8/90000\r\n";
    let m = parse_sdp(sdp);
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].mid, "0");
    assert_eq!(m[0].direction, "sendrecv");
    assert_eq!(m[0].pts_for("OPUS"), vec![109]);
    assert_eq!(m[0].msid, Some(("alice".into(), "alice-audio".into())));
    assert_eq!(m[0].ssrcs, vec![5]);
    assert_eq!(m[1].kind, "video");
    assert_eq!(m[1].pts_for("vp8"), vec![120]);
}

fn first_keyframe_index(pkts: &[RecvPacket]) -> Option<usize> {
    pkts.iter().position(|p| p.is_keyframe())
}

/// How many of a publisher's first video packets (counter 0, the keyframe, onwards) the
/// receiver never got: webrtc 0.21 can drop a new track's first packet(s) before its on_track
/// handler is registered. When none was lost, the first one received must be the keyframe.
fn first_video_missed(got: &[RecvPacket]) -> u32 {
    let missed = got.iter().filter_map(|p| p.mark()).map(|m| m.counter).min().expect("marked video");
    assert!(missed <= 3, "the receiver lost the first {missed} video packets");
    if missed == 0 {
        assert!(got[0].is_keyframe(), "the first video packet received is the keyframe");
    }
    missed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_peer_to_peer() -> anyhow::Result<()> {
    // alice offers Opus 109 / VP8 120; bob is registered with the defaults 111/96 and must answer
    // (and send) with alice's payload types.
    let alice_opts = ClientOptions::publisher().with_pts(109, 120);
    let bob_opts = ClientOptions::publisher();
    let (alice, bob) = connect_pair("alice", &alice_opts, "bob-1", &bob_opts).await?;

    alice.wait_connected(secs(15)).await?;
    bob.wait_connected(secs(15)).await?;

    // Payload types: alice's offer carries the chosen ones, and only those.
    let offer = alice.local_sdp().await.expect("local sdp");
    assert!(offer.contains("a=rtpmap:109 opus/48000/2"), "offer:\n{offer}");
    assert!(offer.contains("a=rtpmap:120 VP8/90000"), "offer:\n{offer}");
    assert!(!offer.contains("a=rtpmap:111 "), "offer:\n{offer}");
    assert!(!offer.contains("a=rtpmap:96 "), "offer:\n{offer}");
    assert_eq!(alice.negotiated_pts("opus").await, vec![109]);
    assert_eq!(alice.negotiated_pts("VP8").await, vec![120]);
    assert_eq!(bob.negotiated_pts("opus").await, vec![109]);
    assert_eq!(bob.negotiated_pts("VP8").await, vec![120]);
    // msid stream id = participant id.
    let mlines = alice.local_mlines().await;
    assert!(mlines.iter().all(|m| m.msid.as_ref().map(|x| x.0.as_str()) == Some("alice")), "{mlines:?}");

    // Every UDP socket of this process is on 127.0.0.1 (no wildcard, no mDNS socket).
    let udp = process_udp_sockets();
    assert!(udp.len() >= 2, "{udp:?}");
    assert!(udp.iter().all(|a| a.starts_with("127.0.0.1:")), "{udp:?}");
    // Loopback candidates only.
    for c in alice.local_candidates().iter().chain(bob.local_candidates().iter()) {
        assert!(c.contains(" 127.0.0.1 "), "non-loopback candidate {c}");
    }
    assert!(!alice.local_candidates().is_empty());

    // Media flows both ways, attributed by msid stream id.
    wait_for(secs(15), "media both ways", || {
        bob.count("alice", Kind::Audio) >= 25
            && bob.count("alice", Kind::Video) >= 15
            && alice.count("bob-1", Kind::Audio) >= 25
            && alice.count("bob-1", Kind::Video) >= 15
    })
    .await
    .map_err(|e| {
        anyhow::anyhow!(
            "{e}; bob {:?} alice {:?}; errors {:?} {:?}",
            bob.counts(),
            alice.counts(),
            alice.errors(),
            bob.errors()
        )
    })?;
    assert_eq!(bob.publishers(), vec!["alice".to_string()]);
    assert_eq!(alice.publishers(), vec!["bob-1".to_string()]);
    let tracks = bob.remote_tracks();
    assert!(tracks.iter().any(|t| t.publisher == "alice" && t.kind == Kind::Audio), "{tracks:?}");
    assert!(tracks.iter().any(|t| t.publisher == "alice" && t.kind == Kind::Video), "{tracks:?}");

    // Received under the receiver's negotiated payload types, both directions.
    for (rx, from) in [(&bob, "alice"), (&alice, "bob-1")] {
        assert!(rx.received(from, Kind::Audio).iter().all(|p| p.pt == 109));
        assert!(rx.received(from, Kind::Video).iter().all(|p| p.pt == 120));
    }
    assert!(bob.sent(Kind::Audio).iter().all(|p| p.pt == 109), "bob must send alice's PTs");

    // Byte-for-byte: every received packet equals the sent one with the same sequence number.
    for kind in [Kind::Audio, Kind::Video] {
        let got = bob.received("alice", kind);
        let sent: HashMap<u16, SentPacket> =
            alice.sent_covering(kind, &got).await.into_iter().map(|p| (p.seq, p)).collect();
        assert!(!got.is_empty());
        for p in &got {
            let s = sent.get(&p.seq).unwrap_or_else(|| panic!("{kind} seq {} never sent", p.seq));
            assert_eq!(p.payload, s.payload, "{kind} seq {}", p.seq);
            assert_eq!(p.ssrc, s.ssrc);
            assert_eq!(p.timestamp, s.timestamp);
            let mark = p.mark().expect("mark");
            assert_eq!((mark.publisher.as_str(), mark.kind, mark.counter), ("alice", kind, s.counter));
        }
    }

    // Keyframes: exactly one (the first frame) until someone asks; bob sees it unless it was
    // among the first packets webrtc dropped.
    let video = bob.received("alice", Kind::Video);
    assert!(alice.sent(Kind::Video)[0].keyframe, "alice's first video packet is a keyframe");
    let missed = first_video_missed(&video);
    let first_seen = usize::from(missed == 0);
    let expect_first = (missed == 0).then_some(0);
    assert_eq!(first_keyframe_index(&video), expect_first, "the keyframe is the first and only one (missed {missed})");
    assert!(video.iter().all(|p| p.marker), "one-packet frames carry the marker bit");
    assert_eq!(alice.keyframe_requests(), 0);
    assert_eq!(alice.keyframes_sent(), 1);
    assert_eq!(video.iter().filter(|p| p.is_keyframe()).count(), first_seen);

    // A PLI from bob makes alice send exactly one more keyframe.
    assert_eq!(bob.send_pli("alice").await?, 1);
    wait_for(secs(20), "alice sees the PLI", || alice.keyframe_requests() == 1).await?;
    wait_for(secs(20), "bob receives the requested keyframe", || {
        bob.received("alice", Kind::Video).iter().filter(|p| p.is_keyframe()).count() == first_seen + 1
    })
    .await?;
    assert_eq!(alice.keyframes_sent(), 2);
    assert_eq!(alice.feedback(Kind::Video).pli, 1);

    // NACKs reach the publisher's feedback counter.
    let some_seq = bob.received("alice", Kind::Video)[3].seq;
    bob.send_nack("alice", Kind::Video, &[some_seq, some_seq.wrapping_add(2)]).await?;
    wait_for(secs(20), "alice sees the NACK", || alice.feedback(Kind::Video).nack >= 1).await?;
    assert_eq!(alice.feedback(Kind::Video).nacked_seqs, 2);
    // Both registered RTX, so alice's NACK responder answers on her RTX stream; bob records the
    // retransmissions apart from what he received, and webrtc repaired them (OSN = seq).
    let nacked = [some_seq, some_seq.wrapping_add(2)];
    wait_for(secs(20), "bob receives both retransmissions", || bob.retransmissions("alice", Kind::Video).len() >= 2)
        .await
        .map_err(|e| anyhow::anyhow!("{e}: {:?}", bob.all_retransmissions()))?;
    let rtx = bob.retransmissions("alice", Kind::Video);
    assert_eq!(rtx.iter().map(|p| p.seq).collect::<Vec<_>>(), nacked);
    let originals: HashMap<u16, RecvPacket> =
        bob.received("alice", Kind::Video).into_iter().map(|p| (p.seq, p)).collect();
    let alice_video_ssrc = alice.local_ssrc(Kind::Video).unwrap();
    for p in &rtx {
        let info = p.rtx.expect("rtx info");
        assert!(info.associated && info.repaired, "{info:?}");
        assert_ne!(info.ssrc, alice_video_ssrc);
        assert_eq!(info.pt, alice_opts.rtx_pt().unwrap());
        assert_eq!((p.ssrc, p.pt), (alice_video_ssrc, 120));
        assert_eq!(p.payload, originals[&p.seq].payload, "seq {}", p.seq);
    }
    let video = bob.received("alice", Kind::Video);
    assert!(video.iter().all(|p| p.rtx.is_none()));
    assert_eq!(originals.len(), video.len(), "no retransmission counted as received");
    assert!(alice.retransmissions("bob-1", Kind::Video).is_empty());

    // Pausing stops the packets; resuming starts them again (no keyframe without a request).
    alice.set_publishing(false);
    let paused_at = alice.sent_count(Kind::Video);
    // Allow at most one frame already in flight inside the publish loop.
    assert!(
        !wait_until(millis(300), || alice.sent_count(Kind::Video) > paused_at + 1).await,
        "still publishing while paused"
    );
    let before = bob.count("alice", Kind::Video);
    alice.set_publishing(true);
    wait_for(secs(20), "video resumes", || bob.count("alice", Kind::Video) >= before + 10).await?;
    assert_eq!(alice.keyframes_sent(), 2);

    // Both sides trickled and ended their candidates.
    for p in [&alice, &bob] {
        let log = p.signaling_log();
        assert!(log.iter().any(|l| l == "remote end of candidates"), "{log:?}");
    }
    assert!(alice.errors().is_empty(), "alice errors {:?}", alice.errors());
    assert!(bob.errors().is_empty(), "bob errors {:?}", bob.errors());

    alice.close().await;
    bob.close().await;
    Ok(())
}

/// `keyframe_delay`: a keyframe request is answered on the first frame at least that long after
/// it arrived, with interframes meanwhile; without RTX, nothing is taken for a retransmission.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_keyframes_and_no_rtx() -> anyhow::Result<()> {
    let delay = millis(300);
    let alice_opts = ClientOptions::publisher().with_keyframe_delay(delay).with_rtx(false);
    let bob_opts = ClientOptions::receiver().with_rtx(false);
    let (alice, bob) = connect_pair("alice", &alice_opts, "bob", &bob_opts).await?;
    wait_for(secs(15), "bob receives video", || bob.count("alice", Kind::Video) >= 10).await?;
    // The very first frame is a keyframe regardless of the delay (bob sees it unless webrtc
    // dropped it).
    assert!(alice.sent(Kind::Video)[0].keyframe);
    first_video_missed(&bob.received("alice", Kind::Video));
    assert!(!bob.local_sdp().await.unwrap_or_default().contains(" rtx/90000"));

    let asked = std::time::Instant::now();
    bob.send_pli("alice").await?;
    wait_for(secs(20), "the second keyframe", || alice.keyframes_sent() == 2).await?;
    let sent = alice.sent(Kind::Video);
    let key = sent.iter().filter(|p| p.keyframe).nth(1).unwrap();
    assert!(key.sent_at >= asked + delay, "keyframe {:?} after the PLI", key.sent_at - asked);
    let between = sent.iter().filter(|p| p.sent_at > asked && p.sent_at < key.sent_at).count();
    assert!(between >= 2, "only {between} interframes before the delayed keyframe");
    assert_eq!(alice.keyframe_requests(), 1);

    // A NACK without RTX: alice's responder resends on the primary SSRC (a plain duplicate),
    // which is not an RTX retransmission.
    let seq = bob.received("alice", Kind::Video)[2].seq;
    bob.send_nack("alice", Kind::Video, &[seq]).await?;
    wait_for(secs(20), "alice sees the NACK", || alice.feedback(Kind::Video).nack >= 1).await?;
    assert!(bob.all_retransmissions().is_empty());
    alice.close().await;
    bob.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receive_only_client_gets_media() -> anyhow::Result<()> {
    // A recvonly offerer (like a client without camera) and a publishing answerer.
    let (viewer, publisher) =
        connect_pair("viewer", &ClientOptions::receiver(), "pub", &ClientOptions::publisher().with_pts(109, 120))
            .await?;
    viewer.wait_connected(secs(15)).await?;
    wait_for(secs(15), "viewer receives both kinds", || {
        viewer.count("pub", Kind::Audio) >= 10 && viewer.count("pub", Kind::Video) >= 5
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}; {:?} {:?} {:?}", viewer.counts(), viewer.errors(), publisher.errors()))?;
    // The viewer offered 111/96 (defaults); the answerer must follow them.
    assert!(viewer.received("pub", Kind::Audio).iter().all(|p| p.pt == 111));
    assert!(viewer.received("pub", Kind::Video).iter().all(|p| p.pt == 96));
    assert!(viewer.sent_count(Kind::Audio) == 0 && viewer.sent_count(Kind::Video) == 0);
    let offer = viewer.local_sdp().await.unwrap();
    assert_eq!(parse_sdp(&offer).iter().filter(|m| m.direction == "recvonly").count(), 2, "{offer}");
    viewer.close().await;
    publisher.close().await;
    Ok(())
}

/// Glare as parlor's server produces it: the client's first offer crosses an offer from the
/// (impolite) server, which ignores the client's offer and replies `error` `glare`. The client
/// must roll back, answer the server's offer, then offer again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glare_recovery() -> anyhow::Result<()> {
    use serde_json::{json, Value};
    use std::sync::Arc;
    use tokio::sync::mpsc;

    let (to_cli, cli_in) = mpsc::unbounded_channel::<Value>();
    let (to_srv, srv_in) = mpsc::unbounded_channel::<Value>();
    let (cli_out_tx, mut cli_out) = mpsc::unbounded_channel::<Value>();
    let (srv_out_tx, mut srv_out) = mpsc::unbounded_channel::<Value>();
    let cli_sink: SignalSink = Arc::new(move |v| {
        let _ = cli_out_tx.send(v);
    });
    let srv_sink: SignalSink = Arc::new(move |v| {
        let _ = srv_out_tx.send(v);
    });
    let mut srv_opts = ClientOptions::publisher();
    srv_opts.initial_offer = false;
    let srv = MediaPeer::start("srv", &srv_opts, srv_sink, srv_in).await?;
    let cli = MediaPeer::start("cli", &ClientOptions::publisher().with_pts(109, 120), cli_sink, cli_in).await?;

    // The client's first offer: swallowed, as the server ignores it.
    let deadline = secs(10);
    let first = tokio::time::timeout(deadline, async {
        loop {
            let m = cli_out.recv().await.expect("client sink open");
            if msg_type(&m) == "offer" {
                return m;
            }
        }
    })
    .await?;
    assert_eq!(msg_type(&first), "offer");

    // The server's own offer (sent before it saw the client's), then the glare error.
    srv.renegotiate();
    let srv_offer = tokio::time::timeout(deadline, async {
        loop {
            let m = srv_out.recv().await.expect("server sink open");
            if msg_type(&m) == "offer" {
                return m;
            }
            // Server candidates may precede nothing here; keep them for later.
            let _ = to_cli.send(m);
        }
    })
    .await?;
    to_cli.send(srv_offer)?;
    to_cli.send(json!({"type": "error", "code": "glare", "message": "offer crossed the server's"}))?;

    // From here on, relay everything both ways.
    let relay_c = tokio::spawn({
        let to_srv = to_srv.clone();
        async move {
            while let Some(m) = cli_out.recv().await {
                let _ = to_srv.send(m);
            }
        }
    });
    let relay_s = tokio::spawn({
        let to_cli = to_cli.clone();
        async move {
            while let Some(m) = srv_out.recv().await {
                let _ = to_cli.send(m);
            }
        }
    });

    cli.wait_connected(secs(15)).await?;
    srv.wait_connected(secs(15)).await?;
    wait_for(secs(15), "media both ways after glare", || {
        srv.count("cli", Kind::Video) >= 10
            && cli.count("srv", Kind::Video) >= 10
            && srv.count("cli", Kind::Audio) >= 10
            && cli.count("srv", Kind::Audio) >= 10
    })
    .await
    .map_err(|e| {
        anyhow::anyhow!(
            "{e}; cli {:?} {:?} srv {:?} {:?}; cli log {:?}",
            cli.counts(),
            cli.errors(),
            srv.counts(),
            srv.errors(),
            cli.signaling_log()
        )
    })?;
    wait_for(secs(20), "the re-offer was answered", || cli.negotiations() >= 2).await?;

    let log = cli.signaling_log();
    let pos = |s: &str| log.iter().position(|l| l == s);
    assert!(pos("rolled back local offer").is_some(), "{log:?}");
    assert!(pos("rolled back local offer") < pos("sent answer"), "{log:?}");
    assert!(pos("sent answer") < pos("received glare"), "{log:?}");
    assert_eq!(log.iter().filter(|l| *l == "sent offer").count(), 2, "{log:?}");
    assert!(cli.errors().is_empty(), "{:?}", cli.errors());
    assert!(srv.errors().is_empty(), "{:?}", srv.errors());

    // The server offered first, so the shared m-lines carry its payload types (111/96).
    assert_eq!(cli.negotiated_pts_for("srv", Kind::Video).await, vec![96]);
    assert!(cli.received("srv", Kind::Video).iter().all(|p| p.pt == 96));

    relay_c.abort();
    relay_s.abort();
    cli.close().await;
    srv.close().await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// TestClient over a WebSocket, against a tiny fake signaling server whose "SFU" is a MediaPeer.
// ---------------------------------------------------------------------------------------------

mod fake_server {
    use super::support::*;
    use futures_util::{SinkExt, StreamExt};
    use serde_json::{json, Value};
    use std::sync::Arc;
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::mpsc;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::Message;

    /// Starts the fake server; returns its ws:// URL.
    pub async fn start() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(session(tcp));
            }
        });
        format!("ws://{addr}/ws")
    }

    async fn session(tcp: TcpStream) {
        let ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let (mut write, mut read) = ws.split();
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Message>();
        tokio::spawn(async move {
            while let Some(m) = out_rx.recv().await {
                let close = matches!(m, Message::Close(_));
                if write.send(m).await.is_err() || close {
                    break;
                }
            }
        });
        let send = |v: Value| {
            let _ = out_tx.send(Message::text(v.to_string()));
        };
        let mut peer: Option<(MediaPeer, mpsc::UnboundedSender<Value>)> = None;
        while let Some(Ok(frame)) = read.next().await {
            let Message::Text(t) = frame else { continue };
            let Ok(v) = serde_json::from_str::<Value>(t.as_str()) else {
                send(json!({"type": "error", "code": "bad_json", "message": "not JSON"}));
                continue;
            };
            match msg_type(&v) {
                "join" if v["room"] == "locked" => {
                    send(json!({"type": "error", "code": "room_locked", "message": "locked"}))
                }
                "join" => {
                    let id = format!("p-{}", v["name"].as_str().unwrap_or("x"));
                    send(json!({"type": "welcome", "id": id, "room": v["room"], "host": id,
                                "resume_token": "tok", "participants": [], "game": null,
                                "limits": {"max_video_kbps": 500}}));
                    let (to_peer, peer_in) = mpsc::unbounded_channel();
                    let tx = out_tx.clone();
                    let sink: SignalSink = Arc::new(move |v: Value| {
                        let _ = tx.send(Message::text(v.to_string()));
                    });
                    let mut opts = ClientOptions::publisher();
                    opts.initial_offer = false;
                    let p = MediaPeer::start("sfu", &opts, sink, peer_in).await.unwrap();
                    peer = Some((p, to_peer));
                }
                "offer" | "answer" | "candidate" => {
                    if let Some((_, to_peer)) = &peer {
                        let _ = to_peer.send(v);
                    }
                }
                "ping" => send(json!({"type": "pong", "t": v["t"], "server_time": now_us() / 1000})),
                "shout" => {
                    let _ = out_tx.send(Message::Close(Some(CloseFrame {
                        code: CloseCode::from(1009),
                        reason: "too large".into(),
                    })));
                }
                "leave" => {
                    if let Some((p, _)) = &peer {
                        p.close().await;
                    }
                    send(json!({"type": "participant_left", "id": "me", "reason": "left"}));
                }
                other => send(json!({"type": "error", "code": "unknown_type", "message": other})),
            }
        }
        if let Some((p, _)) = peer {
            p.close().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_client_over_websocket() -> anyhow::Result<()> {
    let url = fake_server::start().await;

    // Refused join → JoinError with the server's code.
    let err =
        TestClient::join(&url, "locked", "eve", ClientOptions::signaling_only()).await.err().expect("join must fail");
    let je = err.downcast_ref::<JoinError>().expect("JoinError");
    assert_eq!(je.code, "room_locked");

    // Signaling-only client: ping/pong, bad JSON, unknown types, close frames.
    let s = TestClient::join(&url, "r1", "sig", ClientOptions::signaling_only()).await?;
    assert_eq!(s.id(), "p-sig");
    assert!(!s.has_media());
    s.ping(1234)?;
    let pong = s.expect_message("pong", secs(20)).await?;
    assert_eq!(pong["t"], 1234);
    s.send_text("{not json")?;
    assert_eq!(s.expect_error(secs(5)).await?, "bad_json");
    s.send_json(&serde_json::json!({"type": "frobnicate"}))?;
    assert_eq!(s.expect_error(secs(5)).await?, "unknown_type");
    assert!(s.expect_message("pong", millis(100)).await.is_err(), "pong already consumed");
    assert_eq!(s.messages_of("pong").len(), 1);
    assert_eq!(s.types()[0], "welcome");
    s.send_json(&serde_json::json!({"type": "shout"}))?;
    let close = s.wait_socket_closed(secs(5)).await?;
    assert_eq!(close.map(|c| c.0), Some(1009));

    // Media client (PTs 109/120) against the fake SFU peer.
    let mut c = TestClient::join(&url, "r1", "media", ClientOptions::publisher().with_pts(109, 120)).await?;
    c.wait_connected(secs(15)).await?;
    c.wait_count("sfu", Kind::Audio, 10, secs(15)).await?;
    c.wait_count("sfu", Kind::Video, 5, secs(15)).await?;
    first_video_missed(&c.received("sfu", Kind::Video));
    assert_eq!(c.media().negotiated_pts_for("sfu", Kind::Video).await, vec![120]);
    assert!(c.received("sfu", Kind::Video).iter().all(|p| p.pt == 120));
    assert!(c.sent_count(Kind::Video) > 0);
    assert_eq!(c.keyframes_sent(), 1);
    // Our own outgoing signaling went through the socket: offer then candidates ("" last).
    assert!(c.media().signaling_log().iter().any(|l| l == "received answer"));
    assert!(c.media().errors().is_empty(), "{:?}", c.media().errors());

    c.leave().await?;
    c.expect_message("participant_left", secs(5)).await?;
    c.close_socket().await;
    assert!(c.socket_closed());
    Ok(())
}

/// The SFU flow: after the first exchange the "server" adds a track for another publisher and
/// re-offers; the client answers the new m-line and attributes its packets by msid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_offer_with_a_new_track() -> anyhow::Result<()> {
    use rtc::media_stream::MediaStreamTrack;
    use rtc::rtp_transceiver::rtp_sender::{
        RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
    };
    use std::sync::Arc;
    use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
    use webrtc::media_stream::track_local::TrackLocal;

    let mut sfu_opts = ClientOptions::receiver();
    sfu_opts.recv_transceivers = false;
    let (cli, sfu) = connect_pair("cli", &ClientOptions::publisher().with_pts(109, 120), "sfu", &sfu_opts).await?;
    cli.wait_connected(secs(15)).await?;
    wait_for(secs(10), "sfu receives the client", || sfu.count("cli", Kind::Video) >= 5).await?;
    let before = cli.negotiations();

    // "Forward" a publisher called carol: new sendonly m-line with msid carol.
    let ssrc = 0x00C0_FFEE;
    let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        "carol".to_owned(),
        "carol-video".to_owned(),
        "fwd".to_owned(),
        RtpCodecKind::Video,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() },
            codec: RTCRtpCodec { mime_type: "video/VP8".to_owned(), clock_rate: 90000, ..Default::default() },
            ..Default::default()
        }],
    )));
    let sender = sfu.pc().add_track(Arc::clone(&track) as Arc<dyn TrackLocal>).await?;
    sfu.renegotiate();
    wait_for(secs(10), "the re-offer is answered", || cli.negotiations() > before).await?;
    let pt = sender
        .get_parameters()
        .await?
        .rtp_parameters
        .codecs
        .iter()
        .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case("video/VP8"))
        .map(|c| c.payload_type)
        .expect("negotiated VP8");

    let deadline = std::time::Instant::now() + secs(10);
    let mut seq = 0u16;
    let mut pace = tokio::time::interval(millis(20)); // a 50 packets/s source
    while cli.count("carol", Kind::Video) < 10 && std::time::Instant::now() < deadline {
        let pkt = rtc::rtp::packet::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                marker: true,
                payload_type: pt,
                sequence_number: seq,
                timestamp: seq as u32 * 3000,
                ssrc,
                ..Default::default()
            },
            payload: vp8_payload("carol", seq as u32, now_us(), seq == 0, 320, 240),
        };
        track.write_rtp(pkt).await?;
        seq += 1;
        pace.tick().await;
    }
    assert!(cli.count("carol", Kind::Video) >= 10, "{:?} {:?}", cli.counts(), cli.errors());
    let expected = cli.negotiated_pts_for("carol", Kind::Video).await;
    assert!(!expected.is_empty());
    assert!(cli.received("carol", Kind::Video).iter().all(|p| expected.contains(&p.pt)));
    assert!(cli.remote_tracks().iter().any(|t| t.publisher == "carol"));
    assert!(cli.errors().is_empty(), "{:?}", cli.errors());
    cli.close().await;
    sfu.close().await;
    Ok(())
}
