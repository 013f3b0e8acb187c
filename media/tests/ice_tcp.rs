//! ICE-TCP end to end at the media layer: a str0m client whose UDP goes nowhere connects to a
//! worker over one TCP connection (RFC 6544 passive candidate, RFC 4571 framing): ICE, DTLS and
//! then RTP all cross that connection.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use parlor_media::tcp::{read_frame, write_frame};
use parlor_media::{DropReason, EventSink, Media, MediaConfig, MediaEvent};
use str0m::change::SdpAnswer;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime};
use str0m::net::{Protocol, Receive, TcpType};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::TcpStream;

#[tokio::test]
async fn a_client_without_udp_connects_over_ice_tcp() {
    let media = Media::start(&MediaConfig {
        bind_ip: "127.0.0.1".parse().unwrap(),
        udp_port: 0,
        workers: 1,
        announce_ips: vec!["127.0.0.1".parse().unwrap()],
        max_peers_per_worker: 10,
    })
    .unwrap();
    let tcp_addr = media.listen_tcp("127.0.0.1:0".parse().unwrap()).await.unwrap()[0];
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink_events = events.clone();
    let sink: EventSink = Arc::new(move |e| sink_events.lock().unwrap().push(e));
    let room = media.open_room("r", sink);

    // The client's end of the TCP connection is its (active) candidate.
    let stream = TcpStream::connect(tcp_addr).await.unwrap();
    let local = stream.local_addr().unwrap();
    // Frames are read by a task of their own: `read_frame` is not cancel-safe, so it must never
    // be raced against a timer (a frame cut in half would desynchronize the stream).
    let (mut reader, mut stream) = stream.into_split();
    let (frames_tx, mut frames) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let mut buf = Vec::new();
            let got = read_frame(&mut reader, &mut buf).await;
            let end = !matches!(got, Ok(Some(())));
            if frames_tx.send(got.map(|g| g.map(|()| buf))).is_err() || end {
                break;
            }
        }
    });
    let mut rtc = Rtc::builder().clear_codecs().enable_opus(true, false).enable_vp8(true).build(Instant::now());
    rtc.add_local_candidate(Candidate::builder().tcp().host(local).tcptype(TcpType::Active).build().unwrap());
    let mut api = rtc.sdp_api();
    let mid = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    let (offer, pending) = api.apply().unwrap();
    let answer = room.offer("a", offer.to_sdp_string()).await.unwrap();
    assert!(answer.contains(&format!(" {} typ host tcptype passive", tcp_addr.port())), "{answer}");
    rtc.sdp_api().accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap()).unwrap();

    let deadline = Instant::now() + Duration::from_secs(15);
    let (mut udp_dropped, mut tcp_sent, mut connected, mut rtp_sent) = (0, 0, false, 0u32);
    while Instant::now() < deadline {
        let next = match rtc.poll_output().unwrap() {
            Output::Transmit(t) if t.proto == Protocol::Tcp => {
                assert_eq!(t.destination, tcp_addr);
                write_frame(&mut stream, &t.contents).await.unwrap();
                tcp_sent += 1;
                continue;
            }
            Output::Transmit(_) => {
                udp_dropped += 1; // UDP is "blocked"
                continue;
            }
            Output::Event(Event::Connected) => {
                connected = true;
                continue;
            }
            Output::Event(_) => continue,
            Output::Timeout(t) => t.min(deadline),
        };
        // Once up, send audio through the same connection: 20 ms Opus frames (silence).
        if connected && rtp_sent < 50 {
            let pt = rtc.codec_config().params().iter().find(|p| p.spec().codec.is_audio()).map(|p| p.pt());
            if let (Some(pt), Some(writer)) = (pt, rtc.writer(mid)) {
                let time = MediaTime::new(u64::from(rtp_sent) * 960, Frequency::FORTY_EIGHT_KHZ);
                writer.write(pt, Instant::now(), time, vec![0xf8, 0xff, 0xfe]).unwrap();
                rtp_sent += 1;
                continue;
            }
        }
        if rtp_sent >= 50 && media.counters().await.dropped(DropReason::NoSubscriber) > 0 {
            break; // the worker decrypted audio that came over TCP (nobody else is in the room)
        }
        let wait = next.saturating_duration_since(Instant::now()).min(Duration::from_millis(50));
        match tokio::time::timeout(wait, frames.recv()).await {
            Ok(None) => panic!("the frame reader stopped"),
            Ok(Some(Ok(Some(buf)))) => {
                let input = Input::Receive(
                    Instant::now(),
                    Receive {
                        proto: Protocol::Tcp,
                        source: tcp_addr,
                        destination: local,
                        contents: buf.as_slice().try_into().unwrap(),
                    },
                );
                rtc.handle_input(input).unwrap();
            }
            Ok(Some(Ok(None))) => panic!("the worker closed the connection"),
            Ok(Some(Err(e))) => panic!("broken stream: {e}"),
            Err(_) => rtc.handle_input(Input::Timeout(Instant::now())).unwrap(),
        }
    }
    assert!(connected, "client never connected (sent {tcp_sent} frames over TCP, dropped {udp_dropped} UDP)");
    assert!(
        events.lock().unwrap().iter().any(|e| matches!(e, MediaEvent::Connected { peer } if peer == "a")),
        "the worker saw the peer connect: {:?}",
        events.lock().unwrap()
    );
    // RTP came through: received, decrypted, and dropped only for want of a subscriber.
    let counters = media.counters().await;
    assert!(counters.dropped(DropReason::NoSubscriber) > 0, "no audio reached the worker: {counters:?}");
    assert_eq!(counters.dropped(DropReason::BadPacket), 0, "{counters:?}");
    assert_eq!(counters.send_errors, 0, "{counters:?}");
}
