//! A worker with a room of negotiated members and no network: each member is an in-process
//! str0m client whose SDP goes straight to the worker's entry points, on synthetic time.
//! For unit tests and the route benchmark; nothing is sent, so no packet ever flows.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::{Direction, MediaKind};
use str0m::Rtc;
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

use super::{Command, Worker};
use crate::routes::Reach;
use crate::{EventSink, MediaEvent};

/// The one room of a rig.
pub(crate) const ROOM: &str = "r";

/// A worker, its room, and the clients of the room's members.
pub(crate) struct Rig {
    pub worker: Worker,
    pub events: Arc<Mutex<Vec<MediaEvent>>>,
    clients: HashMap<String, Rtc>,
    /// The synthetic clock: every call advances it a little.
    pub now: Instant,
}

impl Rig {
    /// A worker on `socket` (which never sends: no client ever connects) with an empty room.
    pub fn new(socket: std::net::UdpSocket) -> Rig {
        socket.set_nonblocking(true).expect("non-blocking socket");
        let socket = UdpSocket::from_std(socket).expect("inside a tokio runtime");
        let worker = Worker::new(socket, vec!["127.0.0.1".parse().expect("an address")], 1000).expect("worker");
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink_events = events.clone();
        let sink: EventSink = Arc::new(move |e| sink_events.lock().unwrap_or_else(|e| e.into_inner()).push(e));
        let mut rig = Rig { worker, events, clients: HashMap::new(), now: Instant::now() };
        rig.command(Command::OpenRoom { room: ROOM.into(), sink });
        rig
    }

    /// A rig bound to an ephemeral loopback port.
    pub fn on_loopback() -> Rig {
        Rig::new(std::net::UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0))).expect("loopback socket"))
    }

    /// Move the clock on by `by`.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    /// Run the peers' due timeouts, as the worker's loop does between inputs.
    #[cfg(feature = "bench")]
    pub fn timeouts(&mut self) {
        self.now += Duration::from_micros(1);
        self.worker.timeouts(self.now);
    }

    /// Hand the worker one command at the rig's time.
    pub fn command(&mut self, cmd: Command) {
        self.now += Duration::from_micros(1);
        self.worker.command(cmd, self.now);
    }

    /// A command with a reply, answered synchronously.
    fn call<T>(&mut self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> T {
        let (reply, mut rx) = oneshot::channel();
        self.command(make(reply));
        rx.try_recv().expect("the worker answers commands at once")
    }

    /// `id` joins publishing audio and video (its first offer, answered). Others get offers:
    /// [`Rig::settle`] answers them.
    pub fn join(&mut self, id: &str) {
        self.join_with_layers(id, &[]);
    }

    /// `id` joins like [`Rig::join`], its video sent as simulcast with these rids (none: plain).
    /// Returns the worker's answer.
    pub fn join_with_layers(&mut self, id: &str, rids: &[&str]) -> String {
        let mut rtc = Rtc::builder().clear_codecs().enable_opus(true, false).enable_vp8(true).build(self.now);
        let mut api = rtc.sdp_api();
        let simulcast = (!rids.is_empty()).then(|| {
            let mut s = str0m::media::Simulcast::new();
            for rid in rids {
                s.add_send_layer(str0m::media::SimulcastLayer::new(rid));
            }
            s
        });
        api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        api.add_media(MediaKind::Video, Direction::SendRecv, None, None, simulcast);
        let (offer, pending) = api.apply().expect("an offer");
        let (room, peer, sdp) = (ROOM.to_owned(), id.to_owned(), offer.to_sdp_string());
        let answer = self.call(|reply| Command::Offer { room, peer, sdp, reply }).expect("the worker answers");
        let parsed = SdpAnswer::from_sdp_string(&answer).expect("a parsable answer");
        rtc.sdp_api().accept_answer(pending, parsed).expect("the client takes the answer");
        self.clients.insert(id.to_owned(), rtc);
        answer
    }

    /// `id` leaves.
    #[cfg(test)]
    pub fn leave(&mut self, id: &str) {
        self.clients.remove(id);
        self.command(Command::RemovePeer { room: ROOM.into(), peer: id.into() });
    }

    /// Answer the server's offers until it makes no more: every member then receives a track
    /// of every other member's audio and video.
    pub fn settle(&mut self) {
        loop {
            let offers: Vec<(String, String)> =
                std::mem::take(&mut *self.events.lock().unwrap_or_else(|e| e.into_inner()))
                    .into_iter()
                    .filter_map(|e| match e {
                        MediaEvent::Offer { peer, sdp } => Some((peer, sdp)),
                        _ => None,
                    })
                    .collect();
            if offers.is_empty() {
                return;
            }
            for (peer, sdp) in offers {
                let Some(client) = self.clients.get_mut(&peer) else { continue };
                let offer = SdpOffer::from_sdp_string(&sdp).expect("a parsable offer");
                let sdp = client.sdp_api().accept_offer(offer).expect("the client takes the offer").to_sdp_string();
                let room = ROOM.to_owned();
                self.call(|reply| Command::Answer { room, peer, sdp, reply }).expect("the worker takes the answer");
            }
        }
    }

    /// Change the routes; the epoch in force after.
    pub fn update_routes(&mut self, epoch: u64, reaches: Vec<Reach>) -> u64 {
        let room = ROOM.to_owned();
        self.call(|reply| Command::UpdateRoutes { room, epoch, reaches, reply })
    }

    /// Peers the worker holds (a peer that failed would be gone).
    pub fn peers(&self) -> usize {
        self.worker.peers.len()
    }

    /// Keyframe requests the worker sent so far.
    pub fn keyframe_requests(&self) -> u64 {
        self.worker.counters.keyframe_requests
    }

    /// The worker, its clock set to the rig's next instant: for calls below the commands.
    #[cfg(feature = "bench")]
    pub fn worker_now(&mut self) -> &mut Worker {
        self.now += Duration::from_micros(1);
        self.worker.now = self.now;
        &mut self.worker
    }

    /// Whether `subscriber`'s track of `publisher`'s `kind` is allowed (None: no such track).
    #[cfg(test)]
    pub fn allowed(&self, subscriber: &str, publisher: &str, kind: crate::routes::Kind) -> Option<bool> {
        let w = &self.worker;
        let (s, p) = (w.find(ROOM, subscriber)?, w.find(ROOM, publisher)?);
        w.peers[&s].tracks_out.iter().find(|t| t.publisher == p && t.kind == kind).map(|t| t.allowed)
    }

    /// How many (subscriber, publisher, kind) tracks are allowed, and how many tracks there are.
    pub fn allowed_tracks(&self) -> (usize, usize) {
        let tracks = self.worker.peers.values().flat_map(|p| &p.tracks_out);
        tracks.fold((0, 0), |(a, n), t| (a + t.allowed as usize, n + 1))
    }
}

/// A worker on an ephemeral loopback port with an empty room "r" whose events are collected.
#[cfg(test)]
pub(crate) async fn worker_with_room() -> (Worker, Arc<Mutex<Vec<MediaEvent>>>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut worker = Worker::new(socket, vec!["127.0.0.1".parse().unwrap()], 10).unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink_events = events.clone();
    let sink: EventSink = Arc::new(move |e| sink_events.lock().unwrap().push(e));
    worker.command(Command::OpenRoom { room: ROOM.into(), sink }, Instant::now());
    (worker, events)
}

/// An offer from a str0m client publishing audio and video.
#[cfg(test)]
pub(crate) fn client_offer() -> String {
    let mut rtc = Rtc::builder().clear_codecs().enable_opus(true, false).enable_vp8(true).build(Instant::now());
    let mut api = rtc.sdp_api();
    api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    api.add_media(MediaKind::Video, Direction::SendRecv, None, None, None);
    let (offer, _pending) = api.apply().unwrap();
    offer.to_sdp_string()
}
