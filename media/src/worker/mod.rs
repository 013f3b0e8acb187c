//! A media worker: one thread, one UDP socket, every peer of the rooms assigned to it.
//!
//! The loop waits for a datagram, a command or the earliest peer timeout, feeds it to the
//! owning peer's str0m instance, drains that instance and forwards each RTP packet it yields
//! straight into the allowed subscribers' instances — no channel hop, no lock on the packet path.
//!
//! This module holds the loop and the peer table; [`negotiation`] the SDP side, [`ingress`]
//! what arrives from the network, [`forward`] the packet path and the routes. Time is an
//! input: each entry point takes the `now` it runs at (the loop passes the clock), so the
//! logic below it can be driven on synthetic time.

mod bwe;
mod forward;
mod ingress;
mod negotiation;
#[cfg(feature = "bench")]
pub(crate) mod replaced;
#[cfg(any(test, feature = "bench"))]
pub(crate) mod rig;
mod simulcast;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::{Event, IceConnectionState, Input, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::batch::{send_mmsg, SendBatch};
use crate::demux::Demux;
use crate::layers::LayerState;
use crate::peer::{mutate, Fault, Peer, PeerKey};
use crate::routes::{Reach, RouteTable};
use crate::speaker::{self, Speakers};
use crate::stats::Counters;
use crate::tcp::TcpSide;
use crate::{allocate, binding};
use crate::{EventSink, MediaError, MediaEvent};

/// Keyframe requests to one publisher track are sent at most this often.
const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(200);
/// Largest datagram we read (anything larger is truncated garbage for WebRTC anyway).
const MAX_DATAGRAM: usize = 2048;
/// Retransmission cache of every video stream we send, re-created (emptied) when a pair is
/// paused. 500 ms (Janus's default `min_nack_queue`) still answers two NACK rounds at 200 ms
/// RTT; str0m's default 3 s, one copy per subscriber, tripled the memory per participant.
const RTX_CACHE_PACKETS: usize = 1024;
const RTX_CACHE_AGE: Duration = Duration::from_millis(500);
const RTX_RATIO_CAP: f32 = 0.15;
/// How long the loop sleeps when no peer has a timeout.
const IDLE: Duration = Duration::from_secs(1);

/// What the handle asks of a worker (a `pair` is (subscriber, publisher)).
pub(crate) enum Command {
    OpenRoom { room: String, sink: EventSink },
    CloseRoom { room: String },
    Offer { room: String, peer: String, sdp: String, reply: oneshot::Sender<Result<String, MediaError>> },
    Answer { room: String, peer: String, sdp: String, reply: oneshot::Sender<Result<(), MediaError>> },
    Candidate { room: String, peer: String, candidate: String },
    RemovePeer { room: String, peer: String },
    HoldOffers { room: String, peer: String },
    UpdateRoutes { room: String, epoch: u64, reaches: Vec<Reach>, reply: oneshot::Sender<u64> },
    PreferLayer { room: String, pair: (String, String), max_layer: Option<u8>, reply: oneshot::Sender<bool> },
    Layers { room: String, pair: (String, String), reply: oneshot::Sender<Option<LayerState>> },
    SetBudget { room: String, peer: String, bps: Option<u64>, reply: oneshot::Sender<bool> },
    Estimate { room: String, peer: String, reply: oneshot::Sender<Option<u64>> },
    SetTiles { room: String, peer: String, tiles: HashMap<String, u16>, reply: oneshot::Sender<usize> },
    Stats { reply: oneshot::Sender<Counters> },
    ListenTcp { listener: std::net::TcpListener, reply: oneshot::Sender<std::io::Result<SocketAddr>> },
}

struct Room {
    sink: EventSink,
    members: Vec<PeerKey>,
    /// The members by peer id (one peer per id: a new connection replaces the old peer).
    ids: HashMap<String, PeerKey>,
    /// Who may receive whom, by id. Resolved onto each receiving track's `allowed` when the
    /// track is made and when a route changes, so the packet path reads one flag.
    routes: RouteTable,
    /// Who speaks, from the audio level of every member's audio (allowed anywhere or not).
    speakers: Speakers<PeerKey>,
}

pub(crate) struct Worker {
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    announce: Vec<IpAddr>,
    max_peers: usize,
    /// Keys are never reused, so a stale reference to a departed peer can never match a new one.
    peers: HashMap<PeerKey, Peer>,
    next_key: PeerKey,
    rooms: HashMap<String, Room>,
    demux: Demux<PeerKey>,
    counters: Counters,
    events: Vec<Event>,
    /// The UDP datagrams this pass made, flushed together (`flush_sends`).
    sends: SendBatch,
    /// `forward`'s copy of a room's members, reused from packet to packet.
    members_scratch: Vec<PeerKey>,
    /// ICE-TCP: the listener and the open connections (idle unless `ListenTcp` came).
    tcp: TcpSide,
    /// Answers to plain STUN binding requests (capped: they are unauthenticated).
    plain_stun: binding::ReplyBudget,
    /// The time of the input being handled, set by each entry point: what str0m, the
    /// keyframe rate limit and the reply budget see as now.
    now: Instant,
    /// When to next ask each room who speaks.
    next_speakers: Instant,
    /// When to next fit the budgeted peers' simulcast video to their budgets.
    next_fit: Instant,
}

impl Worker {
    pub(crate) fn new(socket: UdpSocket, announce: Vec<IpAddr>, max_peers: usize) -> std::io::Result<Self> {
        let local = socket.local_addr()?;
        Ok(Worker {
            socket: Arc::new(socket),
            local,
            announce,
            max_peers,
            peers: HashMap::new(),
            next_key: 0,
            rooms: HashMap::new(),
            demux: Demux::default(),
            counters: Counters::default(),
            events: Vec::new(),
            sends: SendBatch::default(),
            members_scratch: Vec::new(),
            tcp: TcpSide::new(),
            plain_stun: binding::ReplyBudget::default(),
            now: Instant::now(),
            next_speakers: Instant::now(),
            next_fit: Instant::now(),
        })
    }

    pub(crate) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let Some(mut tcp_events) = self.tcp.take_events() else { return };
        loop {
            // Everything the last pass made goes out now, in one system call per 64 datagrams.
            self.flush_sends();
            let deadline = self.next_timeout();
            let socket = self.socket.clone();
            let blocked = !self.sends.is_empty();
            tokio::select! {
                biased;
                // The socket buffer was full: send the rest as soon as there is room.
                Ok(()) = socket.writable(), if blocked => {}
                cmd = commands.recv() => match cmd {
                    Some(cmd) => {
                        let started = Instant::now();
                        self.command(cmd, started);
                        self.counters.busy_ns += started.elapsed().as_nanos() as u64;
                    }
                    None => break,
                },
                res = socket.recv_from(&mut buf) => match res {
                    Ok((n, source)) => {
                        let started = Instant::now();
                        self.datagram(source, &buf[..n], started);
                        // Drain what else is queued before paying for another select, taking
                        // commands as they come: a route change must not wait out the batch.
                        for _ in 0..64 {
                            while let Ok(cmd) = commands.try_recv() {
                                self.command(cmd, Instant::now());
                            }
                            match socket.try_recv_from(&mut buf) {
                                Ok((n, source)) => self.datagram(source, &buf[..n], Instant::now()),
                                Err(_) => break,
                            }
                        }
                        // The same for ICE-TCP: a busy UDP socket would otherwise starve it
                        // (the select is biased towards UDP).
                        for _ in 0..64 {
                            match tcp_events.try_recv() {
                                Ok(event) => self.tcp_event(event, Instant::now()),
                                Err(_) => break,
                            }
                        }
                        // Under steady load the socket is always ready and would starve the
                        // timer branch. And str0m sends what a write queued only on its next
                        // timeout: so forwarded packets, RTCP, keyframe requests and
                        // retransmissions due now go out after every batch, not a select later.
                        self.timeouts(Instant::now());
                        self.counters.busy_ns += started.elapsed().as_nanos() as u64;
                    }
                    Err(e) => debug!("udp recv error: {e}"),
                },
                Some(event) = tcp_events.recv() => {
                    let started = Instant::now();
                    self.tcp_event(event, started);
                    while let Ok(event) = tcp_events.try_recv() {
                        self.tcp_event(event, Instant::now());
                    }
                    self.timeouts(Instant::now());
                    self.counters.busy_ns += started.elapsed().as_nanos() as u64;
                }
                _ = tokio::time::sleep_until(deadline.into()) => {
                    let started = Instant::now();
                    self.timeouts(Instant::now());
                    self.counters.busy_ns += started.elapsed().as_nanos() as u64;
                }
            }
        }
        info!(port = self.local.port(), "media worker stopped");
    }

    /// Send the queued datagrams; what the socket cannot take now waits for the next flush.
    fn flush_sends(&mut self) {
        if self.sends.is_empty() {
            return;
        }
        let socket = &self.socket;
        let done = self.sends.flush(|d| send_mmsg(socket, d));
        self.counters.datagrams_out += done.sent as u64;
        self.counters.send_errors += done.refused as u64;
        self.counters.send_calls += done.calls as u64;
    }

    fn next_timeout(&self) -> Instant {
        let idle = Instant::now() + IDLE;
        let first = self.peers.values().map(|p| p.timeout).fold(idle, Instant::min);
        // A room where anyone's audio carries levels wants its speakers reported on time, and
        // peers (budgeted, or estimated) their layers refitted.
        let first =
            if self.rooms.values().any(|r| !r.speakers.is_empty()) { first.min(self.next_speakers) } else { first };
        if self.peers.is_empty() {
            first
        } else {
            first.min(self.next_fit)
        }
    }

    /// One command from the room's handle, at `now`.
    fn command(&mut self, cmd: Command, now: Instant) {
        self.now = now;
        match cmd {
            Command::OpenRoom { room, sink } => {
                let r = Room {
                    sink,
                    members: Vec::new(),
                    ids: HashMap::new(),
                    routes: RouteTable::default(),
                    speakers: Speakers::default(),
                };
                self.rooms.insert(room, r);
            }
            Command::CloseRoom { room } => {
                if let Some(r) = self.rooms.get(&room) {
                    for key in r.members.clone() {
                        self.remove_peer(key, None);
                    }
                }
                self.rooms.remove(&room);
            }
            Command::Offer { room, peer, sdp, reply } => {
                let _ = reply.send(self.offer(&room, &peer, &sdp));
            }
            Command::Answer { room, peer, sdp, reply } => {
                let _ = reply.send(self.answer(&room, &peer, &sdp));
            }
            Command::Candidate { room, peer, candidate } => self.candidate(&room, &peer, &candidate),
            Command::RemovePeer { room, peer } => {
                if let Some(key) = self.find(&room, &peer) {
                    self.remove_peer(key, None);
                }
            }
            Command::HoldOffers { room, peer } => {
                if let Some(p) = self.find(&room, &peer).and_then(|k| self.peer_mut(k)) {
                    p.held = true;
                }
            }
            Command::UpdateRoutes { room, epoch, reaches, reply } => {
                let _ = reply.send(self.update_routes(&room, epoch, reaches));
            }
            Command::PreferLayer { room, pair: (subscriber, publisher), max_layer, reply } => {
                let _ = reply.send(self.set_layer_cap(&room, &subscriber, &publisher, max_layer));
            }
            Command::Layers { room, pair: (subscriber, publisher), reply } => {
                let _ = reply.send(self.layer_state(&room, &subscriber, &publisher));
            }
            Command::SetBudget { room, peer, bps, reply } => {
                let _ = reply.send(self.set_budget(&room, &peer, bps));
            }
            Command::Estimate { room, peer, reply } => {
                let estimate = self.find(&room, &peer).and_then(|k| self.peer(k)).and_then(|p| p.bwe.estimate());
                let _ = reply.send(estimate);
            }
            Command::SetTiles { room, peer, tiles, reply } => {
                let _ = reply.send(self.set_tiles(&room, &peer, &tiles));
            }
            Command::Stats { reply } => {
                let mut c = self.counters.clone();
                c.peers = self.peers.len() as u64;
                c.rooms = self.rooms.len() as u64;
                c.estimates = self
                    .peers
                    .values()
                    .filter_map(|p| Some((p.room.clone(), p.id.clone(), p.bwe.estimate()?)))
                    .collect();
                let _ = reply.send(c);
            }
            // Accept ICE-TCP on this listener; peers created from now on announce it.
            Command::ListenTcp { listener, reply } => {
                let _ = reply.send(self.tcp.listen(listener));
            }
        }
    }

    fn find(&self, room: &str, peer: &str) -> Option<PeerKey> {
        self.rooms.get(room)?.ids.get(peer).copied()
    }

    fn peer(&self, key: PeerKey) -> Option<&Peer> {
        self.peers.get(&key)
    }

    fn peer_mut(&mut self, key: PeerKey) -> Option<&mut Peer> {
        self.peers.get_mut(&key)
    }

    /// Run one mutation on a peer and handle what it yields; a faulty peer is removed.
    fn with_peer<T>(&mut self, key: PeerKey, f: impl FnOnce(&mut Rtc) -> T) -> Option<T> {
        let mut events = std::mem::take(&mut self.events);
        let peer = self.peers.get_mut(&key)?;
        let result = mutate(peer, &mut self.sends, &self.tcp, &mut self.counters, &mut events, f);
        let out = match result {
            Ok(v) => {
                if !peer.new_addresses.is_empty() {
                    let learned: Vec<SocketAddr> = peer.new_addresses.drain(..).collect();
                    self.learn_addresses(key, learned);
                }
                Some(v)
            }
            Err(fault) => {
                events.clear();
                self.events = events;
                self.fault(key, fault);
                return None;
            }
        };
        for event in events.drain(..) {
            self.event(key, event);
        }
        self.events = events;
        if self.peer(key).is_some_and(|p| !p.rtc.is_alive()) {
            self.remove_peer(key, Some("connection closed".into()));
        }
        out
    }

    /// Let the demultiplexer route datagrams from these addresses to `key`, except one that
    /// another peer is sending to right now: a participant could otherwise spoof a check from
    /// someone else's address with its own (valid) credentials and take their media path.
    fn learn_addresses(&mut self, key: PeerKey, addresses: Vec<SocketAddr>) {
        for addr in addresses {
            let held = self
                .demux
                .owner(addr)
                .filter(|owner| *owner != key)
                .is_some_and(|owner| self.peers.get(&owner).is_some_and(|p| p.sent_to == Some(addr)));
            if held {
                debug!(%addr, "not re-pointing an address another peer is using");
            } else {
                self.demux.learn(addr, key);
            }
        }
    }

    fn fault(&mut self, key: PeerKey, fault: Fault) {
        warn!(%fault, "dropping faulty peer");
        self.counters.peer_faults += 1;
        self.remove_peer(key, Some(fault.to_string()));
    }

    /// Every peer whose str0m timeout is due at `now`.
    fn timeouts(&mut self, now: Instant) {
        self.now = now;
        let due: Vec<PeerKey> = self.peers.iter().filter(|(_, p)| p.timeout <= now).map(|(k, _)| *k).collect();
        for key in due {
            if let Some(Err(e)) = self.with_peer(key, |rtc| rtc.handle_input(Input::Timeout(now))) {
                debug!("timeout input failed: {e}");
            }
        }
        if now >= self.next_speakers {
            self.next_speakers = now + speaker::CHECK_EVERY;
            self.report_speakers(now);
        }
        if now >= self.next_fit {
            self.next_fit = now + allocate::RATE_WINDOW;
            self.estimate_all(now);
            self.fit_budgets();
        }
    }

    /// Tell each room whose speakers changed who speaks now.
    fn report_speakers(&mut self, now: Instant) {
        for room in self.rooms.values_mut() {
            let Some(keys) = room.speakers.changed(now) else { continue };
            let peers = keys.iter().filter_map(|k| self.peers.get(k)).map(|p| p.id.clone()).collect();
            (room.sink)(MediaEvent::Speaking { peers });
        }
    }

    /// What a peer's str0m instance yielded.
    fn event(&mut self, key: PeerKey, event: Event) {
        match event {
            Event::RtpPacket(pkt) => self.forward(key, pkt),
            Event::KeyframeRequest(req) => self.keyframe_request_from_subscriber(key, req.mid, req.kind),
            Event::MediaEgressStats(stats) => self.egress_stats(key, stats),
            Event::StreamPaused(p) => self.stream_paused(key, p.mid, p.rid, p.paused),
            Event::MediaAdded(added)
                if added.direction.is_receiving() && self.add_track_in(key, added.mid, added.kind) =>
            {
                self.tracks_changed(key);
            }
            Event::MediaChanged(changed) => {
                let kind = self.peer(key).and_then(|p| p.rtc.media(changed.mid)).map(|m| m.kind());
                let ours = self.peer(key).is_some_and(|p| p.tracks_out.iter().any(|t| t.mid == changed.mid));
                if ours {
                    return;
                }
                if changed.direction.is_receiving() {
                    if kind.is_some_and(|kind| self.add_track_in(key, changed.mid, kind)) {
                        self.tracks_changed(key);
                    }
                } else if let Some(p) = self.peer_mut(key) {
                    let before = p.tracks_in.len();
                    p.tracks_in.retain(|t| t.mid != changed.mid);
                    if p.tracks_in.len() != before {
                        self.tracks_changed(key);
                    }
                }
            }
            Event::Connected => {
                if let Some(p) = self.peer_mut(key) {
                    p.connected = true;
                    let (id, room) = (p.id.clone(), p.room.clone());
                    if let Some(r) = self.rooms.get(&room) {
                        (r.sink)(MediaEvent::Connected { peer: id });
                    }
                }
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.counters.paths_lost += 1;
                if let Some(p) = self.peer(key) {
                    if let Some(r) = self.rooms.get(&p.room) {
                        (r.sink)(MediaEvent::Disconnected { peer: p.id.clone() });
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::worker::rig::{client_offer, worker_with_room};
    use crate::MediaEvent;

    #[tokio::test]
    async fn a_panicking_peer_is_dropped_and_the_room_lives_on() {
        let (mut w, events) = worker_with_room().await;
        w.offer("r", "a", &client_offer()).unwrap();
        w.offer("r", "b", &client_offer()).unwrap();
        w.offer("r", "c", &client_offer()).unwrap();
        let a = w.find("r", "a").unwrap();
        let result = w.with_peer(a, |_| -> () { panic!("injected fault") });
        assert!(result.is_none());
        assert!(w.find("r", "a").is_none(), "faulty peer removed");
        assert!(w.find("r", "b").is_some() && w.find("r", "c").is_some(), "others kept");
        assert_eq!(w.counters.peer_faults, 1);
        let failed = events.lock().unwrap().iter().any(
            |e| matches!(e, MediaEvent::Failed { peer, reason } if peer == "a" && reason.contains("injected fault")),
        );
        assert!(failed, "room told about the fault");
        // The worker still serves the room.
        w.offer("r", "d", &client_offer()).unwrap();
    }
}
