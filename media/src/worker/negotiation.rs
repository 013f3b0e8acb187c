//! The SDP side of the worker: client offers and answers, the server's own offers, trickled
//! candidates, and which tracks each peer publishes and receives.

use std::net::SocketAddr;

use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::{Direction, MediaKind, Mid, Rids};
use str0m::net::TcpType;
use str0m::rtp::Ssrc;
use str0m::{Candidate, Rtc};
use tracing::{debug, warn};

use super::{Worker, RTX_CACHE_AGE, RTX_CACHE_PACKETS, RTX_RATIO_CAP};
use crate::layers::LayerSelector;
use crate::peer::{configure, Peer, PeerKey, TrackIn, TrackOut};
use crate::rewrite::Rewriter;
use crate::routes::Kind;
use crate::{MediaError, MediaEvent};

impl Worker {
    /// A client's offer: creates the peer on its first one; returns the answer SDP.
    pub(super) fn offer(&mut self, room: &str, peer: &str, sdp: &str) -> Result<String, MediaError> {
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
        let now = self.now;
        let mut rtc = Rtc::builder()
            .set_ice_lite(true)
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            // Egress stats carry the subscriber's receiver reports: bandwidth estimation's input.
            .set_stats_interval(Some(super::bwe::STATS_INTERVAL))
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
            budget: None,
            bwe: Default::default(),
            tiles: std::collections::HashMap::new(),
            sent_to: None,
            new_addresses: Vec::new(),
        };
        let key = self.next_key;
        self.next_key += 1;
        self.peers.insert(key, new);
        self.demux.set_ufrag(key, &ufrag);
        if let Some(r) = self.rooms.get_mut(room) {
            r.members.push(key);
            r.ids.insert(peer.to_owned(), key);
        }
        Ok(key)
    }

    /// A client's answer to the server's outstanding offer.
    pub(super) fn answer(&mut self, room: &str, peer: &str, sdp: &str) -> Result<(), MediaError> {
        let key = self.find(room, peer).ok_or(MediaError::UnknownPeer)?;
        let answer = SdpAnswer::from_sdp_string(sdp).map_err(|e| MediaError::BadSdp(e.to_string()))?;
        let pending = self.peer_mut(key).and_then(|p| p.pending.take()).ok_or(MediaError::NoPendingOffer)?;
        let result = self
            .with_peer(key, |rtc| rtc.sdp_api().accept_answer(pending, answer))
            .ok_or_else(|| MediaError::PeerFailed("peer dropped".into()))?;
        let result = result.map_err(|e| MediaError::BadSdp(e.to_string()));
        let mut fresh_video = Vec::new();
        let mut fresh = Vec::new();
        if let Some(p) = self.peer_mut(key) {
            if result.is_ok() {
                for t in &mut p.tracks_out {
                    if !t.negotiated && t.kind == Kind::Video {
                        fresh_video.push(t.mid);
                    }
                    if !t.negotiated {
                        fresh.push(t.mid);
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
        // Each new send stream's SSRC, found by mid once here, so the packet path and route
        // changes find the stream by hash from the start.
        if let Some(p) = self.peer_mut(key) {
            let found: Vec<(Mid, Ssrc)> = configure(p, |rtc| {
                let mut api = rtc.direct_api();
                fresh.iter().filter_map(|mid| api.stream_tx_by_mid(*mid, None).map(|tx| (*mid, tx.ssrc()))).collect()
            })
            .unwrap_or_default();
            for t in p.tracks_out.iter_mut() {
                if let Some((_, ssrc)) = found.iter().find(|(mid, _)| *mid == t.mid) {
                    t.tx_ssrc = Some(*ssrc);
                }
            }
        }
        self.maybe_offer(key);
        result
    }

    /// A trickled remote candidate.
    pub(super) fn candidate(&mut self, room: &str, peer: &str, candidate: &str) {
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
    pub(super) fn remove_peer(&mut self, key: PeerKey, fault: Option<String>) {
        let Some(mut peer) = self.peers.remove(&key) else { return };
        peer.rtc.disconnect();
        self.demux.remove(key);
        let mut others = Vec::new();
        if let Some(room) = self.rooms.get_mut(&peer.room) {
            room.members.retain(|k| *k != key);
            room.speakers.forget(key);
            if room.ids.get(&peer.id) == Some(&key) {
                room.ids.remove(&peer.id);
            }
            others = room.members.clone();
            if let Some(reason) = fault {
                (room.sink)(MediaEvent::Failed { peer: peer.id.clone(), reason });
            }
        }
        // The others' tracks from this peer stay until the offer that stops them is answered;
        // nothing can be written to them, since the publisher key is never reused.
        self.deny_departed(key, &others);
        for other in others {
            self.maybe_offer(other);
        }
    }

    /// A peer's published tracks changed: everyone else in the room needs an offer.
    pub(super) fn tracks_changed(&mut self, key: PeerKey) {
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
        let mut layered = Vec::new();
        for &p in room.members.iter().filter(|p| **p != key) {
            if let Some(publisher) = self.peer(p) {
                for t in &publisher.tracks_in {
                    wanted.push((p, publisher.id.clone(), t.mid, t.kind));
                    if !t.layers.is_empty() {
                        layered.push((p, t.mid));
                    }
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
        let allowed: Vec<bool> = add.iter().map(|(_, pid, _, kind)| room.routes.allows(&sub_id, pid, *kind)).collect();
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
        let mut sized = Vec::new();
        for (((p, pid, pmid, kind), mid), allowed) in add.into_iter().zip(mids).zip(allowed) {
            let clock = if kind == Kind::Video { 90_000 } else { 48_000 };
            // One track per publisher track, whatever its layers: a selector picks one of them.
            let simulcast = layered.contains(&(p, pmid));
            let rewriter = if simulcast { Rewriter::aligned(clock) } else { Rewriter::new(kind == Kind::Video, clock) };
            peer.tracks_out.push(TrackOut {
                publisher: p,
                publisher_mid: pmid,
                kind,
                mid,
                negotiated: false,
                allowed,
                rewriter,
                layers: simulcast.then(LayerSelector::default),
                // The page's last layout may name this publisher already.
                tile_height: peer.tiles.get(&pid).copied().filter(|_| simulcast),
                tx_ssrc: None,
            });
            if simulcast && peer.tiles.contains_key(&pid) {
                sized.push((p, pmid));
            }
        }
        peer.sort_tracks_out();
        if let Some((offer, pending)) = applied {
            peer.pending = Some(pending);
            let ours: Vec<Mid> = peer.tracks_out.iter().map(|t| t.mid).collect();
            let sdp = scrub_client_lines(&offer.to_sdp_string(), &ours);
            let id = peer.id.clone();
            if let Some(room) = self.rooms.get(&room_name) {
                (room.sink)(MediaEvent::Offer { peer: id, sdp });
            }
        }
        for (p, pmid) in sized {
            self.refit_tile(key, p, pmid);
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
    pub(super) fn add_track_in(&mut self, key: PeerKey, mid: Mid, kind: MediaKind) -> bool {
        let kind = match kind {
            MediaKind::Audio => Kind::Audio,
            MediaKind::Video => Kind::Video,
        };
        let Some(p) = self.peer_mut(key) else { return false };
        if p.tracks_in.iter().any(|t| t.mid == mid) {
            return false;
        }
        // A simulcast offer (a=rid, a=simulcast) names the layers str0m will accept on this mid.
        let rids = match p.rtc.media(mid).map(|m| m.rids_rx()) {
            Some(Rids::Specific(rids)) if kind == Kind::Video => rids.clone(),
            _ => Vec::new(),
        };
        p.tracks_in.push(TrackIn::new(mid, kind, &rids));
        true
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
    use crate::worker::rig::{client_offer, worker_with_room};

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
}
