//! A media room driven without a server: WebRTC test peers whose signaling goes straight to
//! `RoomMedia` — what a room does, minus everything but SDP and candidates. For the tests that
//! drive parlor-media directly (matrix, simulcast, bandwidth estimation).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use parlor_media::{Media, MediaConfig, MediaError, MediaEvent, RoomMedia};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::peer::{MediaPeer, SignalSink};
use super::ClientOptions;

/// What a peer is sent of the server's SDP: (peer id, SDP) → the SDP it gets (e.g. one that names
/// a relay in front of the server).
pub type SdpRewrite = Arc<dyn Fn(&str, String) -> String + Send + Sync>;

/// One worker's room and its peers.
pub struct MediaRoom {
    pub media: Media,
    pub room: Arc<RoomMedia>,
    pub peers: HashMap<String, MediaPeer>,
    /// Peers whose media path the server reported lost (`MediaEvent::Disconnected`), in order.
    pub lost: Arc<Mutex<Vec<String>>>,
}

/// One media worker on 127.0.0.1, on a free port.
pub fn start_media() -> Media {
    Media::start(&MediaConfig {
        bind_ip: "127.0.0.1".parse().unwrap(),
        udp_port: 0,
        workers: 1,
        announce_ips: vec!["127.0.0.1".parse().unwrap()],
        max_peers_per_worker: 16,
    })
    .unwrap()
}

/// Room `name` on `media` (see [`start_media`]) holding `members`; the server's SDP reaches each
/// peer through `rewrite`, if given.
pub async fn media_room(
    media: Media,
    name: &str,
    members: &[(&str, ClientOptions)],
    rewrite: Option<SdpRewrite>,
) -> MediaRoom {
    let (event_tx, mut events) = mpsc::unbounded_channel::<MediaEvent>();
    let room = Arc::new(media.open_room(name, Arc::new(move |e| drop(event_tx.send(e)))));
    let (from_peers_tx, mut from_peers) = mpsc::unbounded_channel::<(String, Value)>();
    let mut to_peers: HashMap<String, mpsc::UnboundedSender<Value>> = HashMap::new();
    let mut peers = HashMap::new();
    for (id, opts) in members {
        let (tx, rx) = mpsc::unbounded_channel();
        to_peers.insert(id.to_string(), tx);
        let out = from_peers_tx.clone();
        let me = id.to_string();
        let sink: SignalSink = Arc::new(move |v| drop(out.send((me.clone(), v))));
        peers.insert(id.to_string(), MediaPeer::start(id, opts, sink, rx).await.unwrap());
    }
    let lost = Arc::new(Mutex::new(Vec::new()));
    let lost_log = lost.clone();
    let driver_room = room.clone();
    let server_sdp = move |id: &str, sdp: String| match &rewrite {
        Some(f) => f(id, sdp),
        None => sdp,
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                Some((id, msg)) = from_peers.recv() => {
                    let sdp = msg["sdp"].as_str().unwrap_or_default().to_owned();
                    let reply = match msg["type"].as_str() {
                        Some("offer") => match driver_room.offer(&id, sdp).await {
                            Ok(answer) => Some(json!({"type": "answer", "sdp": server_sdp(&id, answer)})),
                            Err(MediaError::Glare) => Some(json!({"type": "error", "code": "glare", "message": "glare"})),
                            Err(e) => panic!("offer from {id} refused: {e}"),
                        },
                        Some("answer") => {
                            driver_room.answer(&id, sdp).await.unwrap();
                            None
                        }
                        Some("candidate") => {
                            driver_room.candidate(&id, msg["candidate"].as_str().unwrap_or_default().to_owned());
                            None
                        }
                        _ => None,
                    };
                    if let Some(reply) = reply {
                        let _ = to_peers[&id].send(reply);
                    }
                }
                Some(event) = events.recv() => match event {
                    MediaEvent::Offer { peer, sdp } => {
                        let sdp = server_sdp(&peer, sdp);
                        let _ = to_peers[&peer].send(json!({"type": "offer", "sdp": sdp}));
                    }
                    MediaEvent::Disconnected { peer } => lost_log.lock().unwrap().push(peer),
                    _ => {}
                },
                else => break,
            }
        }
    });
    MediaRoom { media, room, peers, lost }
}
