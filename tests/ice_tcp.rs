//! ICE-TCP with the `webrtc` crate as the client: a peer connection with no UDP socket at all
//! (only TCP) reaches a media worker through its passive TCP candidate (RFC 6544), the way a
//! browser on a network that blocks UDP does.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use parlor_media::{EventSink, Media, MediaConfig, MediaEvent};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::sync::watch;
use webrtc::peer_connection::{
    register_default_interceptors, MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCIceCandidateInit, RTCPeerConnectionState, RTCSessionDescription, Registry, SettingEngineBuilder,
};

/// Publishes the connection state.
struct StateWatch(watch::Sender<RTCPeerConnectionState>);

// What `#[async_trait]` would expand to (the root package has no async-trait dependency).
impl PeerConnectionEventHandler for StateWatch {
    fn on_connection_state_change<'life0, 'async_trait>(
        &'life0 self,
        state: RTCPeerConnectionState,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        self.0.send_replace(state);
        Box::pin(std::future::ready(()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webrtc_client_with_only_tcp_connects_through_the_passive_candidate() {
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

    let mut media_engine = MediaEngine::default();
    media_engine.register_default_codecs().unwrap();
    let registry = register_default_interceptors(Registry::new(), &mut media_engine).unwrap();
    let setting_engine = SettingEngineBuilder::new()
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .with_include_loopback_candidate(true)
        .build();
    let (state_tx, mut state) = watch::channel(RTCPeerConnectionState::New);
    let pc = PeerConnectionBuilder::new()
        .with_media_engine(media_engine)
        .with_setting_engine(setting_engine)
        .with_interceptor_registry(registry)
        .with_handler(Arc::new(StateWatch(state_tx)))
        // TCP only: no UDP socket exists, so whatever connects crossed the TCP connection.
        .with_tcp_addrs(vec!["127.0.0.1:0".to_owned()])
        .build()
        .await
        .unwrap();
    let recvonly = RTCRtpTransceiverInit {
        direction: RTCRtpTransceiverDirection::Recvonly,
        streams: vec![],
        send_encodings: vec![],
    };
    pc.add_transceiver_from_kind(RtpCodecKind::Audio, Some(recvonly)).await.unwrap();
    let offer = pc.create_offer(None).await.unwrap();
    pc.set_local_description(offer).await.unwrap();
    let offer = pc.local_description().await.unwrap().sdp;

    let answer = room.offer("a", offer).await.unwrap();
    pc.set_remote_description(RTCSessionDescription::answer(answer.clone()).unwrap()).await.unwrap();
    // The webrtc crate opens TCP only to trickled passive candidates: hand it the server's.
    let passive: Vec<&str> = answer
        .lines()
        .filter_map(|l| l.trim().strip_prefix("a="))
        .filter(|c| c.starts_with("candidate:") && c.contains(" tcp ") && c.contains(" tcptype passive"))
        .collect();
    assert_eq!(passive.len(), 1, "one passive TCP candidate in {answer}");
    assert!(passive[0].contains(&format!("127.0.0.1 {} typ host", tcp_addr.port())), "{}", passive[0]);
    for c in passive {
        let init = RTCIceCandidateInit {
            candidate: c.to_owned(),
            sdp_mid: Some("0".into()),
            sdp_mline_index: Some(0),
            ..Default::default()
        };
        pc.add_ice_candidate(init).await.unwrap();
    }

    let connected = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if *state.borrow_and_update() == RTCPeerConnectionState::Connected {
                return;
            }
            if state.changed().await.is_err() {
                return;
            }
        }
    })
    .await;
    assert!(connected.is_ok(), "no connection over ICE-TCP: client state {:?}", *state.borrow());
    // The worker saw it too (ICE and DTLS done over the TCP connection).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !events.lock().unwrap().iter().any(|e| matches!(e, MediaEvent::Connected { peer } if peer == "a")) {
        assert!(tokio::time::Instant::now() < deadline, "worker never reported the peer connected: {events:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = pc.close().await;
}
