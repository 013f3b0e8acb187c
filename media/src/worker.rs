//! A media worker: one thread, one UDP socket, every peer of the rooms assigned to it.
//!
//! The loop waits for a datagram, a command or the earliest peer timeout, feeds it to the
//! owning peer's str0m instance, drains that instance and forwards each RTP packet it yields
//! straight into the allowed subscribers' instances — no channel hop, no lock on the packet path.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid};
use str0m::net::{Protocol, Receive, TcpType};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite};
use str0m::{Candidate, Event, IceConnectionState, Input, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::demux::Demux;
use crate::matrix::{Kind, Matrix};
use crate::peer::{mutate, Fault, Peer, PeerKey, TrackIn, TrackOut};
use crate::rewrite::{Rewriter, Verdict};
use crate::stats::{Counters, DropReason};
use crate::tcp::{TcpEvent, TcpSide};
use crate::vp8;
use crate::{binding, nat};
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

/// What the handle asks of a worker.
pub(crate) enum Command {
    OpenRoom { room: String, sink: EventSink },
    CloseRoom { room: String },
    Offer { room: String, peer: String, sdp: String, reply: oneshot::Sender<Result<String, MediaError>> },
    Answer { room: String, peer: String, sdp: String, reply: oneshot::Sender<Result<(), MediaError>> },
    Candidate { room: String, peer: String, candidate: String },
    RemovePeer { room: String, peer: String },
    HoldOffers { room: String, peer: String },
    SetMatrix { room: String, matrix: Matrix, reply: oneshot::Sender<u64> },
    Stats { reply: oneshot::Sender<Counters> },
    ListenTcp { listener: std::net::TcpListener, reply: oneshot::Sender<std::io::Result<SocketAddr>> },
}

struct Room {
    sink: EventSink,
    members: Vec<PeerKey>,
    matrix: Matrix,
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
    /// `forward`'s copy of a room's members, reused from packet to packet.
    members_scratch: Vec<PeerKey>,
    /// ICE-TCP: the listener and the open connections (idle unless `ListenTcp` came).
    tcp: TcpSide,
    /// Answers to plain STUN binding requests (capped: they are unauthenticated).
    plain_stun: binding::ReplyBudget,
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
            members_scratch: Vec::new(),
            tcp: TcpSide::new(),
            plain_stun: binding::ReplyBudget::default(),
        })
    }

    pub(crate) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let Some(mut tcp_events) = self.tcp.take_events() else { return };
        loop {
            let deadline = self.next_timeout();
            let socket = self.socket.clone();
            tokio::select! {
                biased;
                cmd = commands.recv() => match cmd {
                    Some(cmd) => {
                        let started = Instant::now();
                        self.command(cmd);
                        self.counters.busy_ns += started.elapsed().as_nanos() as u64;
                    }
                    None => break,
                },
                res = socket.recv_from(&mut buf) => match res {
                    Ok((n, source)) => {
                        let started = Instant::now();
                        self.datagram(source, &buf[..n]);
                        // Drain what else is queued before paying for another select.
                        for _ in 0..64 {
                            match socket.try_recv_from(&mut buf) {
                                Ok((n, source)) => self.datagram(source, &buf[..n]),
                                Err(_) => break,
                            }
                        }
                        // The same for ICE-TCP: a busy UDP socket would otherwise starve it
                        // (the select is biased towards UDP).
                        for _ in 0..64 {
                            match tcp_events.try_recv() {
                                Ok(event) => self.tcp_event(event),
                                Err(_) => break,
                            }
                        }
                        // Under steady load the socket is always ready and would starve the
                        // timer branch. And str0m sends what a write queued only on its next
                        // timeout: so forwarded packets, RTCP, keyframe requests and
                        // retransmissions due now go out after every batch, not a select later.
                        self.timeouts();
                        self.counters.busy_ns += started.elapsed().as_nanos() as u64;
                    }
                    Err(e) => debug!("udp recv error: {e}"),
                },
                Some(event) = tcp_events.recv() => {
                    let started = Instant::now();
                    self.tcp_event(event);
                    while let Ok(event) = tcp_events.try_recv() {
                        self.tcp_event(event);
                    }
                    self.timeouts();
                    self.counters.busy_ns += started.elapsed().as_nanos() as u64;
                }
                _ = tokio::time::sleep_until(deadline.into()) => {
                    let started = Instant::now();
                    self.timeouts();
                    self.counters.busy_ns += started.elapsed().as_nanos() as u64;
                }
            }
        }
        info!(port = self.local.port(), "media worker stopped");
    }

    fn next_timeout(&self) -> Instant {
        let idle = Instant::now() + IDLE;
        self.peers.values().map(|p| p.timeout).fold(idle, Instant::min)
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::OpenRoom { room, sink } => {
                self.rooms.insert(room, Room { sink, members: Vec::new(), matrix: Matrix::new(0) });
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
            Command::SetMatrix { room, matrix, reply } => {
                let epoch = self.set_matrix(&room, matrix);
                let _ = reply.send(epoch);
            }
            Command::Stats { reply } => {
                let mut c = self.counters.clone();
                c.peers = self.peers.len() as u64;
                c.rooms = self.rooms.len() as u64;
                let _ = reply.send(c);
            }
            // Accept ICE-TCP on this listener; peers created from now on announce it.
            Command::ListenTcp { listener, reply } => {
                let _ = reply.send(self.tcp.listen(listener));
            }
        }
    }

    fn find(&self, room: &str, peer: &str) -> Option<PeerKey> {
        let r = self.rooms.get(room)?;
        r.members.iter().copied().find(|k| self.peers.get(k).is_some_and(|p| p.id == peer))
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
        let result = mutate(peer, &self.socket, &self.tcp, &mut self.counters, &mut events, f);
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

    // ---- signaling-side operations ----

    fn offer(&mut self, room: &str, peer: &str, sdp: &str) -> Result<String, MediaError> {
        let offer = SdpOffer::from_sdp_string(&publish_only(sdp)).map_err(|e| MediaError::BadSdp(e.to_string()))?;
        let existing = self.find(room, peer);
        // A new RTCPeerConnection (say, after a page reload) brings a new DTLS certificate:
        // it replaces the old peer. The same certificate with new ICE credentials is an ICE
        // restart of the peer we have.
        if let Some(old) = existing.filter(|k| self.is_new_connection(*k, sdp)) {
            debug!(%peer, "offer from a new peer connection; replacing the old one");
            self.remove_peer(old, None);
        }
        let key = match self.find(room, peer) {
            Some(key) => {
                if self.peer(key).is_some_and(|p| p.pending.is_some()) {
                    return Err(MediaError::Glare);
                }
                key
            }
            None => self.create_peer(room, peer)?,
        };
        let answer = self
            .with_peer(key, |rtc| rtc.sdp_api().accept_offer(offer))
            .ok_or_else(|| MediaError::PeerFailed("peer dropped".into()))?;
        let answer = match answer {
            Ok(a) => {
                let ours: Vec<Mid> =
                    self.peer(key).map(|p| p.tracks_out.iter().map(|t| t.mid).collect()).unwrap_or_default();
                scrub_client_lines(&a.to_sdp_string(), &ours)
            }
            Err(e) => {
                // A first offer that fails leaves no half-made peer behind.
                if self.peer(key).is_some_and(|p| p.tracks_in.is_empty() && p.tracks_out.is_empty() && !p.connected) {
                    self.remove_peer(key, None);
                }
                return Err(MediaError::BadSdp(e.to_string()));
            }
        };
        // An ICE restart brings new local credentials: re-key the demultiplexer.
        if let Some(p) = self.peer_mut(key) {
            let ufrag = p.rtc.direct_api().local_ice_credentials().ufrag;
            if ufrag != p.ufrag {
                p.ufrag = ufrag.clone();
                self.demux.set_ufrag(key, &ufrag);
            }
        }
        if let Some(p) = self.peer_mut(key) {
            p.answered = true;
            p.held = false;
        }
        self.sync_tracks_in(key, &answer);
        self.maybe_offer(key);
        Ok(answer)
    }

    /// Whether `sdp` comes from a different peer connection than the one `key` is talking to.
    fn is_new_connection(&mut self, key: PeerKey, sdp: &str) -> bool {
        let offered = sdp
            .lines()
            .find_map(|l| l.trim().strip_prefix("a=fingerprint:"))
            .and_then(|f| f.parse::<str0m::config::Fingerprint>().ok());
        let Some(peer) = self.peer_mut(key) else { return false };
        let current = peer.rtc.direct_api().remote_dtls_fingerprint().cloned();
        matches!((offered, current), (Some(o), Some(c)) if o != c)
    }

    fn create_peer(&mut self, room: &str, peer: &str) -> Result<PeerKey, MediaError> {
        if !self.rooms.contains_key(room) {
            return Err(MediaError::UnknownPeer);
        }
        if self.peers.len() >= self.max_peers {
            return Err(MediaError::Full);
        }
        let now = Instant::now();
        let mut rtc = Rtc::builder()
            .set_ice_lite(true)
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .build(now);
        for ip in &self.announce {
            let addr = SocketAddr::new(*ip, self.local.port());
            match Candidate::host(addr, "udp") {
                Ok(c) => {
                    rtc.add_local_candidate(c);
                }
                Err(e) => warn!(%addr, "bad announce address: {e}"),
            }
            // ICE-TCP for clients whose network blocks UDP (RFC 6544: the client connects).
            if let Some(tcp) = self.tcp.addr() {
                let addr = SocketAddr::new(*ip, tcp.port());
                match Candidate::builder().tcp().host(addr).tcptype(TcpType::Passive).build() {
                    Ok(c) => {
                        rtc.add_local_candidate(c);
                    }
                    Err(e) => warn!(%addr, "bad announce address: {e}"),
                }
            }
        }
        let ufrag = rtc.direct_api().local_ice_credentials().ufrag;
        let new = Peer {
            id: peer.to_owned(),
            room: room.to_owned(),
            rtc,
            ufrag: ufrag.clone(),
            timeout: now,
            tracks_in: Vec::new(),
            tracks_out: Vec::new(),
            pending: None,
            answered: false,
            held: false,
            connected: false,
            sent_to: None,
            new_addresses: Vec::new(),
        };
        let key = self.next_key;
        self.next_key += 1;
        self.peers.insert(key, new);
        self.demux.set_ufrag(key, &ufrag);
        if let Some(r) = self.rooms.get_mut(room) {
            r.members.push(key);
        }
        Ok(key)
    }

    fn answer(&mut self, room: &str, peer: &str, sdp: &str) -> Result<(), MediaError> {
        let key = self.find(room, peer).ok_or(MediaError::UnknownPeer)?;
        let answer = SdpAnswer::from_sdp_string(sdp).map_err(|e| MediaError::BadSdp(e.to_string()))?;
        let pending = self.peer_mut(key).and_then(|p| p.pending.take()).ok_or(MediaError::NoPendingOffer)?;
        let result = self
            .with_peer(key, |rtc| rtc.sdp_api().accept_answer(pending, answer))
            .ok_or_else(|| MediaError::PeerFailed("peer dropped".into()))?;
        let result = result.map_err(|e| MediaError::BadSdp(e.to_string()));
        let mut fresh_video = Vec::new();
        if let Some(p) = self.peer_mut(key) {
            if result.is_ok() {
                for t in &mut p.tracks_out {
                    if !t.negotiated && t.kind == Kind::Video {
                        fresh_video.push(t.mid);
                    }
                    t.negotiated = true;
                }
            } else {
                // The offer is void: forget the m-lines it proposed and offer again.
                p.tracks_out.retain(|t| t.negotiated);
            }
        }
        // Our retransmission history on new video streams: str0m's default (3 s) holds a copy
        // of every packet per subscriber, most of a participant's memory (see BENCHMARKS.md).
        if !fresh_video.is_empty() {
            self.with_peer(key, |rtc| {
                for mid in fresh_video {
                    if let Some(tx) = rtc.direct_api().stream_tx_by_mid(mid, None) {
                        tx.set_rtx_cache(RTX_CACHE_PACKETS, RTX_CACHE_AGE, Some(RTX_RATIO_CAP));
                    }
                }
            });
        }
        self.maybe_offer(key);
        result
    }

    fn candidate(&mut self, room: &str, peer: &str, candidate: &str) {
        let Some(key) = self.find(room, peer) else { return };
        let text = candidate.trim();
        let text = text.strip_prefix("a=").unwrap_or(text);
        if text.is_empty() {
            return; // end of candidates
        }
        match Candidate::from_sdp_string(text) {
            Ok(c) => {
                self.with_peer(key, |rtc| rtc.add_remote_candidate(c));
            }
            Err(e) => debug!("ignoring unparsable candidate: {e}"),
        }
    }

    /// Remove a peer; `fault` says why when the worker itself dropped it.
    fn remove_peer(&mut self, key: PeerKey, fault: Option<String>) {
        let Some(mut peer) = self.peers.remove(&key) else { return };
        peer.rtc.disconnect();
        self.demux.remove(key);
        let mut others = Vec::new();
        if let Some(room) = self.rooms.get_mut(&peer.room) {
            room.members.retain(|k| *k != key);
            others = room.members.clone();
            if let Some(reason) = fault {
                (room.sink)(MediaEvent::Failed { peer: peer.id.clone(), reason });
            }
        }
        // The others' tracks from this peer stay until the offer that stops them is made;
        // nothing can be written to them, since the publisher key is never reused.
        for other in others {
            self.maybe_offer(other);
        }
    }

    fn set_matrix(&mut self, room: &str, matrix: Matrix) -> u64 {
        let Some(r) = self.rooms.get_mut(room) else { return 0 };
        if matrix.epoch() < r.matrix.epoch() {
            return r.matrix.epoch(); // stale
        }
        r.matrix = matrix;
        self.counters.matrix_updates += 1;
        let epoch = r.matrix.epoch();
        self.apply_matrix(room);
        epoch
    }

    /// Resolve the room's matrix onto every receiving track; pause what became denied and
    /// ask for a keyframe where video became allowed.
    fn apply_matrix(&mut self, room: &str) {
        let Some(r) = self.rooms.get(room) else { return };
        let members = r.members.clone();
        let mut keyframes = Vec::new();
        let mut paused = Vec::new();
        for &s in &members {
            let Some(sub_id) = self.peer(s).map(|p| p.id.clone()) else { continue };
            let mut decisions = Vec::new();
            if let Some(sp) = self.peer(s) {
                for (i, t) in sp.tracks_out.iter().enumerate() {
                    let pub_id = self.peer(t.publisher).map(|p| p.id.as_str()).unwrap_or("");
                    let allowed = self.rooms[room].matrix.allows(&sub_id, pub_id, t.kind);
                    decisions.push((i, allowed));
                }
            }
            let Some(sp) = self.peer_mut(s) else { continue };
            for (i, allowed) in decisions {
                let t = &mut sp.tracks_out[i];
                if t.allowed && !allowed {
                    t.rewriter.pause();
                    paused.push((s, t.mid));
                }
                if !t.allowed && allowed && t.kind == Kind::Video {
                    keyframes.push((t.publisher, t.publisher_mid));
                }
                t.allowed = allowed;
            }
        }
        // A denied pair gets nothing by any path: empty the stream's retransmission cache so
        // a NACK cannot pull out even packets sent while it was still allowed.
        for (s, mid) in paused {
            // Packets written while the pair was allowed may still wait in str0m's send queue
            // (it sends on the next timeout) and would be cached in the new, empty cache when
            // sent: send them first, into the cache that is about to be dropped.
            self.with_peer(s, |rtc| rtc.handle_input(Input::Timeout(Instant::now())));
            self.with_peer(s, |rtc| {
                if let Some(tx) = rtc.direct_api().stream_tx_by_mid(mid, None) {
                    tx.set_rtx_cache(RTX_CACHE_PACKETS, RTX_CACHE_AGE, Some(RTX_RATIO_CAP));
                }
            });
        }
        for (p, mid) in keyframes {
            self.request_keyframe(p, mid, KeyframeRequestKind::Pli);
        }
    }

    // ---- negotiation ----

    /// A peer's published tracks changed: everyone else in the room needs an offer.
    fn tracks_changed(&mut self, key: PeerKey) {
        let Some(room) = self.peer(key).map(|p| p.room.clone()) else { return };
        let others: Vec<PeerKey> = self.rooms.get(&room).map(|r| r.members.clone()).unwrap_or_default();
        for other in others.into_iter().filter(|o| *o != key) {
            self.maybe_offer(other);
        }
    }

    /// Offer `key` the tracks it should receive, if they differ from what it has and the
    /// negotiation rules allow an offer now (first offer answered, none outstanding).
    fn maybe_offer(&mut self, key: PeerKey) {
        let Some(peer) = self.peer(key) else { return };
        // We may offer only after answering the client's first offer (we then hold its
        // remote description) and only when no offer of ours is outstanding.
        if peer.pending.is_some() || !peer.answered || peer.held {
            return;
        }
        let Some(room) = self.rooms.get(&peer.room) else { return };
        let mut wanted = Vec::new();
        for &p in room.members.iter().filter(|p| **p != key) {
            if let Some(publisher) = self.peer(p) {
                for t in &publisher.tracks_in {
                    wanted.push((p, publisher.id.clone(), t.mid, t.kind));
                }
            }
        }
        let sub_id = peer.id.clone();
        let room_name = peer.room.clone();
        let add: Vec<_> = wanted
            .iter()
            .filter(|(p, _, mid, _)| !peer.tracks_out.iter().any(|t| t.publisher == *p && t.publisher_mid == *mid))
            .cloned()
            .collect();
        let stop: Vec<Mid> = peer
            .tracks_out
            .iter()
            .filter(|t| !wanted.iter().any(|(p, _, mid, _)| t.publisher == *p && t.publisher_mid == *mid))
            .map(|t| t.mid)
            .collect();
        if add.is_empty() && stop.is_empty() {
            return;
        }
        let matrix_allows: Vec<bool> =
            add.iter().map(|(_, pid, _, kind)| room.matrix.allows(&sub_id, pid, *kind)).collect();
        let offer = self.with_peer(key, |rtc| {
            let mut api = rtc.sdp_api();
            let mut mids = Vec::new();
            for (_, pid, pmid, kind) in &add {
                let media_kind = match kind {
                    Kind::Audio => MediaKind::Audio,
                    Kind::Video => MediaKind::Video,
                };
                let track = format!("{pid}-{pmid}");
                mids.push(api.add_media(media_kind, Direction::SendOnly, Some(pid.clone()), Some(track), None));
            }
            for mid in &stop {
                api.stop_media(*mid);
            }
            (mids, api.apply())
        });
        let Some((mids, applied)) = offer else { return };
        let Some(peer) = self.peer_mut(key) else { return };
        peer.tracks_out.retain(|t| !stop.contains(&t.mid));
        for (((p, _, pmid, kind), mid), allowed) in add.into_iter().zip(mids).zip(matrix_allows) {
            let clock = if kind == Kind::Video { 90_000 } else { 48_000 };
            peer.tracks_out.push(TrackOut {
                publisher: p,
                publisher_mid: pmid,
                kind,
                mid,
                negotiated: false,
                allowed,
                rewriter: Rewriter::new(kind == Kind::Video, clock),
            });
        }
        if let Some((offer, pending)) = applied {
            peer.pending = Some(pending);
            let ours: Vec<Mid> = peer.tracks_out.iter().map(|t| t.mid).collect();
            let sdp = scrub_client_lines(&offer.to_sdp_string(), &ours);
            let id = peer.id.clone();
            if let Some(room) = self.rooms.get(&room_name) {
                (room.sink)(MediaEvent::Offer { peer: id, sdp });
            }
        }
    }

    // ---- str0m events ----

    fn event(&mut self, key: PeerKey, event: Event) {
        match event {
            Event::RtpPacket(pkt) => self.forward(key, pkt),
            Event::KeyframeRequest(req) => self.keyframe_request_from_subscriber(key, req.mid, req.kind),
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

    /// Learn the tracks a peer publishes from the answer we just gave it: every m-line we
    /// receive on that is not one of ours. (str0m's `MediaAdded` only comes once DTLS is up;
    /// knowing at once lets the other peers' offers go out in parallel with the handshake.)
    fn sync_tracks_in(&mut self, key: PeerKey, answer: &str) {
        let Some(p) = self.peer(key) else { return };
        let mut receiving = Vec::new();
        for line in answer.lines() {
            let Some(mid) = line.strip_prefix("a=mid:") else { continue };
            let mid = Mid::from(mid.trim());
            if p.tracks_out.iter().any(|t| t.mid == mid) {
                continue;
            }
            if let Some(media) = p.rtc.media(mid) {
                if media.direction().is_receiving() {
                    receiving.push((mid, media.kind()));
                }
            }
        }
        let mut changed = p.tracks_in.iter().any(|t| !receiving.iter().any(|(m, _)| *m == t.mid));
        if let Some(p) = self.peer_mut(key) {
            p.tracks_in.retain(|t| receiving.iter().any(|(m, _)| *m == t.mid));
        }
        for (mid, kind) in receiving {
            changed |= self.add_track_in(key, mid, kind);
        }
        // One renegotiation for the whole change, not one per track.
        if changed {
            self.tracks_changed(key);
        }
    }

    /// Record a published track; true if it is new.
    fn add_track_in(&mut self, key: PeerKey, mid: Mid, kind: MediaKind) -> bool {
        let kind = match kind {
            MediaKind::Audio => Kind::Audio,
            MediaKind::Video => Kind::Video,
        };
        let Some(p) = self.peer_mut(key) else { return false };
        if p.tracks_in.iter().any(|t| t.mid == mid) {
            return false;
        }
        p.tracks_in.push(TrackIn { mid, kind, last_keyframe_request: None });
        true
    }

    // ---- the packet path ----

    fn datagram(&mut self, source: SocketAddr, buf: &[u8]) {
        self.counters.datagrams_in += 1;
        self.receive(Protocol::Udp, nat::canonical(source), buf);
    }

    /// A packet from an ICE-TCP connection, or news of one.
    fn tcp_event(&mut self, event: TcpEvent) {
        let closed = match &event {
            TcpEvent::Closed { remote, .. } => Some(*remote),
            _ => None,
        };
        if let Some(remote) = closed {
            self.tcp.event(event);
            // Its address may come back as a new connection; until then it routes nowhere.
            if !self.tcp.is_open(remote) {
                self.demux.forget_addr(remote);
            }
            return;
        }
        if let Some((source, packet)) = self.tcp.event(event) {
            self.counters.datagrams_in += 1;
            self.receive(Protocol::Tcp, source, &packet);
        }
    }

    /// One packet, from UDP or ICE-TCP: to its peer, or answered here if it is a plain STUN
    /// binding request (those never reach a peer).
    fn receive(&mut self, proto: Protocol, source: SocketAddr, buf: &[u8]) {
        if let Some(reply) = binding::plain_binding_reply(buf, source) {
            if self.plain_stun.allow(Instant::now()) {
                let sent = match proto {
                    Protocol::Tcp => self.tcp.send(source, &reply),
                    _ => self.socket.try_send_to(&reply, source).is_ok(),
                };
                if sent {
                    self.counters.datagrams_out += 1;
                } else {
                    self.counters.send_errors += 1;
                }
            }
            return;
        }
        let Some(key) = self.demux.route(source, buf) else {
            self.counters.drop(DropReason::UnknownSource);
            return;
        };
        let Ok(contents) = buf.try_into() else {
            self.counters.drop(DropReason::BadPacket);
            return;
        };
        let destination = self.destination(proto, source);
        let input = Input::Receive(Instant::now(), Receive { proto, source, destination, contents });
        let accepted = self.with_peer(key, |rtc| rtc.handle_input(input));
        if let Some(Err(e)) = accepted {
            debug!("peer rejected datagram: {e}");
            self.counters.drop(DropReason::BadPacket);
        }
    }

    /// The address a packet from `source` was sent to, as str0m must see it (it only answers
    /// STUN sent to one of its local candidates; see [`nat`]).
    fn destination(&self, proto: Protocol, source: SocketAddr) -> SocketAddr {
        let bound = match (proto, self.tcp.addr()) {
            (Protocol::Tcp, Some(tcp)) => tcp,
            _ => self.local,
        };
        nat::candidate_addr(bound, &self.announce, source)
    }

    fn timeouts(&mut self) {
        let now = Instant::now();
        let due: Vec<PeerKey> = self.peers.iter().filter(|(_, p)| p.timeout <= now).map(|(k, _)| *k).collect();
        for key in due {
            if let Some(Err(e)) = self.with_peer(key, |rtc| rtc.handle_input(Input::Timeout(now))) {
                debug!("timeout input failed: {e}");
            }
        }
    }

    /// Forward one packet from publisher `from` to every subscriber the matrix allows.
    fn forward(&mut self, from: PeerKey, pkt: RtpPacket) {
        // Field borrows (not `peer_mut`) so the room is found without cloning its name.
        let Some(publisher) = self.peers.get_mut(&from) else { return };
        let pt = pkt.header.payload_type;
        let Some(codec) = publisher.rtc.codec_config().params().iter().find(|p| p.pt() == pt).map(|p| p.spec().codec)
        else {
            self.counters.drop(DropReason::BadPacket);
            return;
        };
        let Some(mid) = publisher.rtc.direct_api().stream_rx(&pkt.header.ssrc).map(|s| s.mid()) else {
            self.counters.drop(DropReason::BadPacket);
            return;
        };
        let kind = if codec.is_video() { Kind::Video } else { Kind::Audio };
        // A copy (a subscriber whose connection dies during the loop leaves `members`), into a
        // buffer kept between packets so the hot path does not allocate.
        let mut members = std::mem::take(&mut self.members_scratch);
        members.clear();
        match self.rooms.get(&publisher.room) {
            Some(r) => members.extend_from_slice(&r.members),
            None => {
                self.members_scratch = members;
                return;
            }
        }
        let keyframe = kind == Kind::Video && vp8::is_keyframe_start(&pkt.payload);
        let mut delivered = 0usize;
        let mut want_keyframe = false;
        for &s in members.iter().filter(|s| **s != from) {
            let Some(sub) = self.peer_mut(s) else { continue };
            if !sub.connected {
                self.counters.drop(DropReason::NotConnected);
                continue;
            }
            let Some(out_pt) = sub.rtc.codec_config().params().iter().find(|p| p.spec().codec == codec).map(|p| p.pt())
            else {
                self.counters.drop(DropReason::NoCodec);
                continue;
            };
            let Some(track) = sub.track_out_mut(from, mid) else {
                self.counters.drop(DropReason::NotNegotiated);
                continue;
            };
            if !track.allowed {
                self.counters.drop(DropReason::NotAllowed);
                continue;
            }
            if !track.negotiated {
                self.counters.drop(DropReason::NotNegotiated);
                continue;
            }
            let was_waiting = track.rewriter.waiting_keyframe();
            let (seq, time) = match track.rewriter.next(*pkt.header.ssrc, *pkt.seq_no, pkt.header.timestamp, keyframe) {
                Verdict::Write { seq, time } => {
                    if was_waiting {
                        debug!(subscriber = s, publisher = from, "video resumes on a keyframe");
                    }
                    (seq, time)
                }
                Verdict::WaitKeyframe => {
                    want_keyframe = true;
                    self.counters.drop(DropReason::WaitingKeyframe);
                    continue;
                }
                Verdict::Stale => {
                    self.counters.drop(DropReason::Stale);
                    continue;
                }
            };
            let out_mid = track.mid;
            let ext = ExtensionValues {
                audio_level: pkt.header.ext_vals.audio_level,
                voice_activity: pkt.header.ext_vals.voice_activity,
                video_orientation: pkt.header.ext_vals.video_orientation,
                ..Default::default()
            };
            let write = RtpWrite::new(out_pt, seq.into(), time, pkt.timestamp, pkt.payload.clone())
                .marker(pkt.header.marker)
                .ext_vals(ext)
                .nackable(kind == Kind::Video);
            let wrote = self.with_peer(s, |rtc| match rtc.direct_api().stream_tx_by_mid(out_mid, None) {
                Some(tx) => {
                    tx.write_rtp(write);
                    true
                }
                None => false,
            });
            match wrote {
                Some(true) => {
                    delivered += 1;
                    self.counters.forwarded(kind, pkt.payload.len());
                }
                Some(false) => self.counters.drop(DropReason::NotNegotiated),
                None => {}
            }
        }
        if delivered == 0 {
            self.counters.drop(DropReason::NoSubscriber);
        }
        self.members_scratch = members;
        if want_keyframe {
            self.request_keyframe(from, mid, KeyframeRequestKind::Pli);
        }
    }

    /// A subscriber asked for a keyframe on one of its receiving tracks: pass it upstream if
    /// it may receive that video at all.
    fn keyframe_request_from_subscriber(&mut self, sub: PeerKey, mid: Mid, kind: KeyframeRequestKind) {
        let Some(track) = self.peer(sub).and_then(|p| p.tracks_out.iter().find(|t| t.mid == mid)) else {
            return;
        };
        if !track.allowed {
            self.counters.drop(DropReason::DeniedKeyframeRequest);
            return;
        }
        let (publisher, pmid) = (track.publisher, track.publisher_mid);
        self.request_keyframe(publisher, pmid, kind);
    }

    /// Ask a publisher for a keyframe on one track, at most once per interval.
    fn request_keyframe(&mut self, publisher: PeerKey, mid: Mid, kind: KeyframeRequestKind) {
        let now = Instant::now();
        let Some(p) = self.peer_mut(publisher) else { return };
        let Some(track) = p.tracks_in.iter_mut().find(|t| t.mid == mid) else { return };
        if track.last_keyframe_request.is_some_and(|t| now.duration_since(t) < KEYFRAME_REQUEST_INTERVAL) {
            return;
        }
        track.last_keyframe_request = Some(now);
        debug!(publisher, %mid, ?kind, "keyframe requested");
        self.counters.keyframe_requests += 1;
        self.with_peer(publisher, |rtc| {
            if let Some(rx) = rtc.direct_api().stream_rx_by_mid(mid, None) {
                rx.request_keyframe(kind);
            }
        });
    }
}

/// The m-lines a client creates only ever carry its own media to us; we send on m-lines of
/// our own, labelled with the publisher's id. So we read a client's `sendrecv` as `sendonly`
/// (str0m then answers `recvonly`).
fn publish_only(sdp: &str) -> String {
    sdp.split_inclusive('\n')
        .map(|line| match line.trim_end() {
            "a=sendrecv" => line.replacen("a=sendrecv", "a=sendonly", 1),
            _ => line.to_owned(),
        })
        .collect()
}

/// Remove str0m's own stream labels (random `a=msid`, and `a=ssrc` lines) from the m-lines
/// the client created, in any SDP we send: we never send on those lines, and a label there
/// would make a browser announce a track with a stream id that names nobody. A client's
/// `recvonly` line stays answered `sendonly` (not `inactive`): some stacks start no ICE when
/// every line of an answer is inactive.
fn scrub_client_lines(sdp: &str, ours: &[Mid]) -> String {
    let mut out = String::with_capacity(sdp.len());
    let mut section: Vec<&str> = Vec::new();
    let flush = |section: &mut Vec<&str>, out: &mut String| {
        let ours = section
            .iter()
            .any(|l| l.trim_end().strip_prefix("a=mid:").is_some_and(|m| ours.iter().any(|o| o.to_string() == m)));
        let is_media = section.first().is_some_and(|l| l.starts_with("m="));
        for line in section.drain(..) {
            let label = line.starts_with("a=msid:") || line.starts_with("a=ssrc:") || line.starts_with("a=ssrc-group:");
            if !(is_media && !ours && label) {
                out.push_str(line);
            }
        }
    };
    for line in sdp.split_inclusive('\n') {
        if line.starts_with("m=") {
            flush(&mut section, &mut out);
        }
        section.push(line);
    }
    flush(&mut section, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A worker on an ephemeral loopback port, with a room whose events are collected.
    async fn worker_with_room() -> (Worker, Arc<Mutex<Vec<MediaEvent>>>) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut worker = Worker::new(socket, vec!["127.0.0.1".parse().unwrap()], 10).unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink_events = events.clone();
        let sink: EventSink = Arc::new(move |e| sink_events.lock().unwrap().push(e));
        worker.command(Command::OpenRoom { room: "r".into(), sink });
        (worker, events)
    }

    /// An offer from a str0m client publishing audio and video.
    fn client_offer() -> String {
        let mut rtc = Rtc::builder().clear_codecs().enable_opus(true, false).enable_vp8(true).build(Instant::now());
        let mut api = rtc.sdp_api();
        api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        api.add_media(MediaKind::Video, Direction::SendRecv, None, None, None);
        let (offer, _pending) = api.apply().unwrap();
        offer.to_sdp_string()
    }

    #[tokio::test]
    async fn offers_create_peers_and_renegotiate_the_others() {
        let (mut w, events) = worker_with_room().await;
        let answer = w.offer("r", "a", &client_offer()).unwrap();
        assert!(answer.contains("a=ice-lite"), "{answer}");
        assert!(answer.contains("127.0.0.1"), "host candidate announced: {answer}");
        assert!(events.lock().unwrap().is_empty(), "no offer to a alone");
        w.offer("r", "b", &client_offer()).unwrap();
        let events = events.lock().unwrap().clone();
        let offers: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                MediaEvent::Offer { peer, sdp } => Some((peer.clone(), sdp.clone())),
                _ => None,
            })
            .collect();
        // a gets b's two tracks; b gets a's two tracks, each labelled with the publisher's id.
        assert_eq!(offers.len(), 2, "{offers:?}");
        let to_a = &offers.iter().find(|(p, _)| p == "a").unwrap().1;
        let to_b = &offers.iter().find(|(p, _)| p == "b").unwrap().1;
        assert_eq!(to_a.matches("a=msid:b ").count(), 2, "{to_a}");
        assert_eq!(to_b.matches("a=msid:a ").count(), 2, "{to_b}");
        // While b's offer is unanswered a client offer from b is glare.
        assert!(matches!(w.offer("r", "b", &client_offer()), Err(MediaError::Glare)));
        assert!(matches!(w.answer("r", "b", "v=0"), Err(MediaError::BadSdp(_))));
    }

    #[test]
    fn client_lines_become_publish_only() {
        let sdp = "v=0\r\nm=audio 9 X 111\r\na=sendrecv\r\nm=video 9 X 96\r\na=recvonly\r\n";
        assert_eq!(publish_only(sdp), "v=0\r\nm=audio 9 X 111\r\na=sendonly\r\nm=video 9 X 96\r\na=recvonly\r\n");
    }

    #[test]
    fn scrub_keeps_labels_only_on_our_lines() {
        let sdp =
            "v=0\r\na=msid-semantic: WMS x\r\nm=audio 9 X 111\r\na=mid:c0\r\na=msid:rnd t\r\na=ssrc:1 cname:x\r\n\
                   m=video 9 X 96\r\na=mid:s1\r\na=msid:pub pub-v\r\na=ssrc-group:FID 2 3\r\na=ssrc:2 cname:y\r\n";
        let out = scrub_client_lines(sdp, &[Mid::from("s1")]);
        assert!(!out.contains("a=msid:rnd") && !out.contains("a=ssrc:1 "), "{out}");
        assert!(
            out.contains("a=msid:pub pub-v") && out.contains("a=ssrc-group:FID 2 3") && out.contains("a=ssrc:2 "),
            "{out}"
        );
        assert!(out.contains("a=msid-semantic: WMS x") && out.contains("a=mid:c0"), "{out}");
    }

    #[tokio::test]
    async fn answers_never_announce_server_tracks_on_client_lines() {
        let (mut w, _) = worker_with_room().await;
        let answer = w.offer("r", "a", &client_offer()).unwrap();
        assert_eq!(answer.matches("a=recvonly").count(), 2, "{answer}");
        assert!(!answer.contains("a=sendrecv") && !answer.contains("a=msid:"), "{answer}");
    }

    #[tokio::test]
    async fn invalid_sdp_is_refused_without_a_peer_left_behind() {
        let (mut w, _) = worker_with_room().await;
        assert!(matches!(w.offer("r", "a", "nonsense"), Err(MediaError::BadSdp(_))));
        assert!(matches!(w.offer("r", "a", "v=0\r\n"), Err(MediaError::BadSdp(_))));
        assert!(w.peers.is_empty());
        assert!(matches!(w.answer("r", "a", "v=0"), Err(MediaError::UnknownPeer)));
    }

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

    #[tokio::test]
    async fn plain_binding_requests_are_answered_here_never_by_peers() {
        use stun_rs::attributes::stun::UserName;
        let (mut w, events) = worker_with_room().await;
        w.offer("r", "a", &client_offer()).unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let src = client.local_addr().unwrap();
        // The client's address already belongs to peer a (as after a's first ICE check).
        let ufrag = w.peers.values().next().unwrap().ufrag.clone();
        let check = stun_rs::StunMessageBuilder::new(stun_rs::methods::BINDING, stun_rs::MessageClass::Request)
            .with_attribute(UserName::new(format!("{ufrag}:remote")).unwrap())
            .build();
        let mut buf = vec![0u8; 128];
        let n = stun_rs::MessageEncoderBuilder::default().build().encode(&mut buf, &check).unwrap();
        w.datagram(src, &buf[..n]);
        let bad_before = w.counters.dropped(DropReason::BadPacket);
        let (request, id) = binding::binding_request();
        // tokio's try_send_to needs the socket's writability seen once (the run loop does that).
        w.socket.writable().await.unwrap();
        w.datagram(src, &request);
        let mut reply = [0u8; 128];
        let (n, from) =
            tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut reply)).await.unwrap().unwrap();
        assert_eq!(from, w.local);
        assert_eq!(binding::mapped_address(&reply[..n], &id), Some(src));
        // The peer never saw it: nothing rejected, nothing failed, the peer is still there.
        assert_eq!(w.counters.dropped(DropReason::BadPacket), bad_before);
        assert_eq!(w.peers.len(), 1);
        assert!(events.lock().unwrap().iter().all(|e| !matches!(e, MediaEvent::Failed { .. })));
    }

    #[tokio::test]
    async fn garbage_datagrams_are_counted_not_fatal() {
        let (mut w, _) = worker_with_room().await;
        w.offer("r", "a", &client_offer()).unwrap();
        let src: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for i in 0..2000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 1200) as usize;
            let mut buf: Vec<u8> = (0..len).map(|j| (seed >> (j % 56)) as u8 ^ j as u8).collect();
            if i % 3 == 0 && buf.len() >= 20 {
                // Make some look like STUN so the ufrag parser sees them too.
                buf[0] = 0;
                buf[4..8].copy_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
            }
            w.datagram(src, &buf);
        }
        assert_eq!(w.counters.datagrams_in, 2000);
        assert_eq!(w.counters.dropped(DropReason::UnknownSource), 2000);
        assert_eq!(w.peers.len(), 1);
    }
}
