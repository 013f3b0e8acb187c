//! The packet path and the routes: forwarding a publisher's packet to the subscribers its
//! routes allow (payload type, SSRC, sequence number and timestamp rewritten per subscriber),
//! keyframe requests both ways, and applying a route change to the tracks it touches.

use std::time::Instant;

use str0m::media::{KeyframeRequestKind, Mid};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite, Ssrc, Vp8Patch};
use str0m::Input;
use tracing::debug;

use super::{Worker, KEYFRAME_REQUEST_INTERVAL, RTX_CACHE_AGE, RTX_CACHE_PACKETS, RTX_RATIO_CAP};
use crate::layers::{LayerSelector, Pick, SenderClock, MAX_LAYERS};
use crate::peer::{configure, on_stream_tx, tracks_of, PeerKey, TrackOut};
use crate::rewrite::Verdict;
use crate::routes::{Kind, Reach};
use crate::stats::DropReason;
use crate::vp8;

/// What one packet does on one subscriber's track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admit {
    /// Write it with these numbers (and VP8 descriptor patch); `resumed` when it ends a
    /// keyframe wait, `started` when it starts a simulcast layer (the first, or a switch).
    Write { seq: u64, time: u32, resumed: bool, started: bool, patch: Option<Vp8Patch> },
    /// Drop it, for this reason ([`DropReason::WaitingKeyframe`] asks the publisher for one).
    Drop(DropReason),
}

/// What the packet path knows of one incoming packet, for every subscriber alike.
#[derive(Debug, Clone, Copy)]
pub(super) struct Packet<'a> {
    pub ssrc: u32,
    /// Extended sequence number.
    pub seq: u64,
    pub time: u32,
    /// Whether it starts a keyframe.
    pub keyframe: bool,
    /// Its simulcast layer (`None`: a track without layers, or a stream no layer names).
    pub layer: Option<u8>,
    /// The layers of its track flowing now, one bit each.
    pub flowing: u8,
    /// Its stream's latest sender report.
    pub clock: Option<SenderClock>,
    pub payload: &'a [u8],
    /// When it arrived.
    pub now: Instant,
}

/// Whether `track` takes a packet. The track's `allowed` flag is its route, resolved when the
/// route last changed, and it decides first: a denied pair never reaches the layer selector.
pub(super) fn admit(track: &mut TrackOut, pkt: &Packet) -> Admit {
    if !track.allowed {
        return Admit::Drop(DropReason::NotAllowed);
    }
    if !track.negotiated {
        return Admit::Drop(DropReason::NotNegotiated);
    }
    let (mut time, mut started) = (pkt.time, false);
    if let Some(selector) = track.layers.as_mut() {
        // A packet of a simulcast track that no layer names is not forwarded at all.
        let Some(layer) = pkt.layer else { return Admit::Drop(DropReason::OtherLayer) };
        selector.aim(pkt.flowing);
        match selector.pick(pkt.now, layer, pkt.ssrc, pkt.time, pkt.keyframe, pkt.clock) {
            Pick::Forward { time: aligned, switched } => (time, started) = (aligned, switched),
            Pick::OtherLayer => return Admit::Drop(DropReason::OtherLayer),
            Pick::WaitingLayer => return Admit::Drop(DropReason::WaitingKeyframe),
            Pick::NoSenderReport => return Admit::Drop(DropReason::NoSenderReport),
        }
    }
    let was_waiting = track.rewriter.waiting_keyframe();
    match track.rewriter.next(pkt.ssrc, pkt.seq, time, pkt.keyframe) {
        Verdict::Write { seq, time } => {
            let patch = track.layers.as_mut().and_then(|s| s.picture_patch(pkt.payload));
            Admit::Write { seq, time, resumed: was_waiting, started, patch }
        }
        Verdict::WaitKeyframe => Admit::Drop(DropReason::WaitingKeyframe),
        Verdict::Stale => Admit::Drop(DropReason::Stale),
    }
}

/// The layer a subscriber's track needs a keyframe of: for a simulcast track the one its
/// selector waits for (`Some(None)`: none known yet), else the track's one stream (`None`).
pub(super) fn keyframe_layer(track: &TrackOut) -> Option<Option<u8>> {
    track.layers.as_ref().map(LayerSelector::wanted)
}

/// Set whether a subscriber's tracks (sorted by publisher) of `publisher`'s `kind` are allowed. A pair that becomes
/// denied is paused, and a video one's mid goes to `paused` for its retransmission cache to be
/// emptied (audio is written not nackable: nothing of it is cached). A video pair that becomes
/// allowed needs a keyframe from the publisher's track (`keyframes`).
pub(super) fn set_allowed(
    tracks: &mut [TrackOut],
    publisher: PeerKey,
    kind: Kind,
    allowed: bool,
    paused: &mut Vec<(Mid, Option<Ssrc>)>,
    keyframes: &mut Vec<(PeerKey, Mid, Option<Option<u8>>)>,
) {
    for t in tracks_of(tracks, publisher).iter_mut().filter(|t| t.kind == kind) {
        if t.allowed && !allowed {
            t.rewriter.pause();
            if kind == Kind::Video {
                paused.push((t.mid, t.tx_ssrc));
            }
        }
        if !t.allowed && allowed && kind == Kind::Video {
            keyframes.push((t.publisher, t.publisher_mid, keyframe_layer(t)));
        }
        t.allowed = allowed;
    }
}

/// Whether a keyframe request last sent at `last` may be sent again at `now`; if so, `last`
/// becomes `now`.
pub(super) fn keyframe_request_due(last: &mut Option<Instant>, now: Instant) -> bool {
    if last.is_some_and(|t| now.saturating_duration_since(t) < KEYFRAME_REQUEST_INTERVAL) {
        return false;
    }
    *last = Some(now);
    true
}

impl Worker {
    /// Apply a route change to `room`: each reach replaces its (publisher, kind)'s receivers,
    /// and only the subscribers whose permission flipped are touched. Returns the epoch in
    /// force (a stale `epoch` changes nothing; an unknown room answers 0).
    pub(super) fn update_routes(&mut self, room: &str, epoch: u64, reaches: Vec<Reach>) -> u64 {
        let Some(r) = self.rooms.get_mut(room) else { return 0 };
        if !r.routes.advance(epoch) {
            return r.routes.epoch();
        }
        self.counters.matrix_updates += 1;
        let mut paused: Vec<(PeerKey, (Mid, Option<Ssrc>))> = Vec::new();
        let mut keyframes = Vec::new();
        let mut mids = Vec::new();
        for reach in reaches {
            let (publisher, kind) = (r.ids.get(&reach.publisher).copied(), reach.kind);
            let flips = r.routes.replace(reach);
            // A publisher without a peer has no tracks yet; they read the table when made.
            let Some(publisher) = publisher else { continue };
            for flip in flips {
                let Some(&s) = r.ids.get(&flip.subscriber) else { continue };
                let Some(sub) = self.peers.get_mut(&s) else { continue };
                set_allowed(&mut sub.tracks_out, publisher, kind, flip.allowed, &mut mids, &mut keyframes);
                paused.extend(mids.drain(..).map(|mid| (s, mid)));
            }
        }
        self.empty_rtx_caches(paused);
        for (p, mid, layer) in keyframes {
            self.request_keyframe(p, mid, layer, KeyframeRequestKind::Pli);
        }
        epoch
    }

    /// A publisher left: its tracks on the other members can never be written again, but
    /// their retransmission caches still hold what it sent. Deny and empty them now, so no
    /// later route change has to find them (it looks tracks up by the publisher's live peer).
    pub(super) fn deny_departed(&mut self, publisher: PeerKey, others: &[PeerKey]) {
        let (mut paused, mut mids, mut keyframes) = (Vec::new(), Vec::new(), Vec::new());
        for &s in others {
            let Some(sub) = self.peers.get_mut(&s) else { continue };
            for kind in Kind::ALL {
                set_allowed(&mut sub.tracks_out, publisher, kind, false, &mut mids, &mut keyframes);
            }
            paused.extend(mids.drain(..).map(|mid| (s, mid)));
        }
        self.empty_rtx_caches(paused);
    }

    /// A denied pair gets nothing by any path: empty the paused streams' retransmission
    /// caches, so a NACK cannot pull out even packets sent while the pair was still allowed.
    fn empty_rtx_caches(&mut self, mut paused: Vec<(PeerKey, (Mid, Option<Ssrc>))>) {
        paused.sort_unstable_by_key(|(s, _)| *s);
        let now = self.now;
        for group in paused.chunk_by(|a, b| a.0 == b.0) {
            let s = group[0].0;
            // Packets written while the pair was allowed may still wait in str0m's send queue
            // (it sends on the next timeout) and would be cached in the new, empty cache when
            // sent: send them first, into the cache that is about to be dropped. A queued
            // packet makes str0m's timeout due at once, so a peer whose timeout lies ahead has
            // none, and is spared a pass over all its streams.
            if self.peers.get(&s).is_some_and(|p| p.timeout <= now) {
                self.with_peer(s, |rtc| rtc.handle_input(Input::Timeout(now)));
            }
            // A fresh cache makes no output, so no drain of the peer's outputs follows (it
            // would cost a pass over all its streams, per subscriber: most of a stage change).
            let Some(peer) = self.peers.get_mut(&s) else { continue };
            let emptied = configure(peer, |rtc| {
                for (_, (mid, known)) in group {
                    on_stream_tx(rtc, *mid, *known, |tx| {
                        tx.set_rtx_cache(RTX_CACHE_PACKETS, RTX_CACHE_AGE, Some(RTX_RATIO_CAP))
                    });
                }
            });
            if let Err(fault) = emptied {
                self.fault(s, fault);
            }
        }
    }

    /// Forward one packet from publisher `from` to every subscriber its routes allow.
    pub(super) fn forward(&mut self, from: PeerKey, pkt: RtpPacket) {
        // Field borrows (not `peer_mut`) so the room is found without cloning its name.
        let Some(publisher) = self.peers.get_mut(&from) else { return };
        let pt = pkt.header.payload_type;
        let Some(codec) = publisher.rtc.codec_config().params().iter().find(|p| p.pt() == pt).map(|p| p.spec().codec)
        else {
            self.counters.drop(DropReason::BadPacket);
            return;
        };
        let Some((mid, rid)) = publisher.rtc.direct_api().stream_rx(&pkt.header.ssrc).map(|s| (s.mid(), s.rid()))
        else {
            self.counters.drop(DropReason::BadPacket);
            return;
        };
        let kind = if codec.is_video() { Kind::Video } else { Kind::Audio };
        // Which layer of its track the packet is, and which layers flow (this one does now).
        let (mut layer, mut flowing, mut resized) = (None, 0, false);
        if let Some(track) = publisher.tracks_in.iter_mut().find(|t| t.mid == mid) {
            layer = rid.and_then(|rid| track.layer_of(rid));
            if let Some(l) = layer.and_then(|l| track.layers.get_mut(l as usize)) {
                l.flowing = true;
                l.rate.observe(self.now, pkt.payload.len());
                if let Some(size) = vp8::keyframe_size(&pkt.payload).filter(|s| l.size != Some(*s)) {
                    l.size = Some(size);
                    resized = true;
                }
            }
            flowing = track.flowing();
        }
        // A copy (a subscriber whose connection dies during the loop leaves `members`), into a
        // buffer kept between packets so the hot path does not allocate.
        let mut members = std::mem::take(&mut self.members_scratch);
        members.clear();
        match self.rooms.get_mut(&publisher.room) {
            Some(r) => {
                if let (Kind::Audio, Some(level)) = (kind, pkt.header.ext_vals.audio_level) {
                    // str0m reads the level as a negative dBov.
                    r.speakers.observe(from, level.unsigned_abs(), self.now);
                }
                members.extend_from_slice(&r.members)
            }
            None => {
                self.members_scratch = members;
                return;
            }
        }
        // A layer's new picture size moves the subscribers whose tiles it now fits (or no
        // longer does), before this keyframe is offered to them.
        if resized {
            self.refit_tiles(from, mid);
        }
        let clock = match (layer, pkt.last_sender_info) {
            (Some(_), Some(info)) => SenderClock::new(info.ntp_time, info.rtp_time.numer() as u32, 90_000),
            _ => None,
        };
        let facts = Packet {
            ssrc: *pkt.header.ssrc,
            seq: *pkt.seq_no,
            time: pkt.header.timestamp,
            keyframe: kind == Kind::Video && vp8::is_keyframe_start(&pkt.payload),
            layer,
            flowing,
            clock,
            payload: &pkt.payload,
            now: self.now,
        };
        let mut delivered = 0usize;
        // Keyframes wanted: of the track's one stream, and of each layer (one bit each).
        let (mut want_keyframe, mut want_layers) = (false, 0u8);
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
            let (seq, time, patch, started) = match admit(track, &facts) {
                Admit::Write { seq, time, resumed, started, patch } => {
                    if resumed {
                        debug!(subscriber = s, publisher = from, "video resumes on a keyframe");
                    }
                    (seq, time, patch, started)
                }
                Admit::Drop(reason) => {
                    if reason == DropReason::WaitingKeyframe {
                        match keyframe_layer(track) {
                            None => want_keyframe = true,
                            Some(Some(l)) => want_layers |= 1 << l,
                            Some(None) => {}
                        }
                    }
                    self.counters.drop(reason);
                    continue;
                }
            };
            let (out_mid, known) = (track.mid, track.tx_ssrc);
            if started {
                self.counters.layer_starts += 1;
            }
            let ext = ExtensionValues {
                audio_level: pkt.header.ext_vals.audio_level,
                voice_activity: pkt.header.ext_vals.voice_activity,
                video_orientation: pkt.header.ext_vals.video_orientation,
                ..Default::default()
            };
            let mut write = RtpWrite::new(out_pt, seq.into(), time, pkt.timestamp, pkt.payload.clone())
                .marker(pkt.header.marker)
                .ext_vals(ext)
                .nackable(kind == Kind::Video);
            if let Some(patch) = patch {
                write = write.vp8_patch(patch);
            }
            let wrote = self.with_peer(s, |rtc| on_stream_tx(rtc, out_mid, known, |tx| tx.write_rtp(write)));
            match wrote {
                Some(Some(((), ssrc))) => {
                    if known != Some(ssrc) {
                        if let Some(t) = self.peer_mut(s).and_then(|p| p.track_out_mut(from, mid)) {
                            t.tx_ssrc = Some(ssrc);
                        }
                    }
                    delivered += 1;
                    self.counters.forwarded(kind, pkt.payload.len());
                    if let Some(l) = layer {
                        self.counters.forwarded_layers[l as usize] += 1;
                    }
                }
                Some(None) => self.counters.drop(DropReason::NotNegotiated),
                None => {}
            }
        }
        if delivered == 0 {
            self.counters.drop(DropReason::NoSubscriber);
        }
        self.members_scratch = members;
        if want_keyframe {
            self.request_keyframe(from, mid, None, KeyframeRequestKind::Pli);
        }
        for l in (0..MAX_LAYERS as u8).filter(|l| want_layers & (1 << l) != 0) {
            self.request_keyframe(from, mid, Some(Some(l)), KeyframeRequestKind::Pli);
        }
    }

    /// A subscriber asked for a keyframe on one of its receiving tracks: pass it upstream if
    /// it may receive that video at all, to the layer it gets (or is about to get).
    pub(super) fn keyframe_request_from_subscriber(&mut self, sub: PeerKey, mid: Mid, kind: KeyframeRequestKind) {
        let Some(track) = self.peer(sub).and_then(|p| p.tracks_out.iter().find(|t| t.mid == mid)) else {
            return;
        };
        if !track.allowed {
            self.counters.drop(DropReason::DeniedKeyframeRequest);
            return;
        }
        let (publisher, pmid, layer) = (track.publisher, track.publisher_mid, keyframe_layer(track));
        self.request_keyframe(publisher, pmid, layer, kind);
    }

    /// Ask a publisher for a keyframe on one track, at most once per interval: of its one
    /// stream (`layer` `None`), or of one simulcast layer (`Some(Some(l))`, each layer with its
    /// own interval; `Some(None)` asks nothing, no layer being known).
    pub(super) fn request_keyframe(
        &mut self,
        publisher: PeerKey,
        mid: Mid,
        layer: Option<Option<u8>>,
        kind: KeyframeRequestKind,
    ) {
        let now = self.now;
        let Some(p) = self.peer_mut(publisher) else { return };
        let Some(track) = p.tracks_in.iter_mut().find(|t| t.mid == mid) else { return };
        let rid = match layer {
            None if track.layers.is_empty() => {
                if !keyframe_request_due(&mut track.last_keyframe_request, now) {
                    return;
                }
                None
            }
            Some(Some(l)) => {
                let Some(layer) = track.layers.get_mut(l as usize) else { return };
                if !keyframe_request_due(&mut layer.last_keyframe_request, now) {
                    return;
                }
                Some(layer.rid)
            }
            // A simulcast track asked for "its stream", or no layer known: nothing to ask.
            _ => return,
        };
        debug!(publisher, %mid, ?rid, ?kind, "keyframe requested");
        self.counters.keyframe_requests += 1;
        self.with_peer(publisher, |rtc| {
            if let Some(rx) = rtc.direct_api().stream_rx_by_mid(mid, rid) {
                rx.request_keyframe(kind);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::rewrite::Rewriter;
    use crate::worker::rig::Rig;

    fn track(publisher: PeerKey, kind: Kind, mid: &str, allowed: bool) -> TrackOut {
        let video = kind == Kind::Video;
        TrackOut {
            publisher,
            publisher_mid: Mid::from(if video { "v" } else { "a" }),
            kind,
            mid: Mid::from(mid),
            negotiated: true,
            allowed,
            rewriter: Rewriter::new(video, if video { 90_000 } else { 48_000 }),
            layers: None,
            tile_height: None,
            tx_ssrc: None,
        }
    }

    /// A packet of a track without layers.
    fn plain(ssrc: u32, seq: u64, time: u32, keyframe: bool) -> Packet<'static> {
        Packet { ssrc, seq, time, keyframe, layer: None, flowing: 0, clock: None, payload: &[], now: Instant::now() }
    }

    #[test]
    fn a_denied_or_unanswered_track_takes_nothing() {
        let mut t = track(1, Kind::Audio, "m0", false);
        assert_eq!(admit(&mut t, &plain(7, 100, 960, false)), Admit::Drop(DropReason::NotAllowed));
        t.allowed = true;
        t.negotiated = false;
        assert_eq!(admit(&mut t, &plain(7, 101, 1920, false)), Admit::Drop(DropReason::NotNegotiated));
        t.negotiated = true;
        assert!(matches!(admit(&mut t, &plain(7, 102, 2880, false)), Admit::Write { resumed: false, .. }));
    }

    #[test]
    fn video_starts_and_resumes_on_a_keyframe_with_contiguous_numbers() {
        let mut t = track(1, Kind::Video, "m1", true);
        assert_eq!(admit(&mut t, &plain(9, 10, 0, false)), Admit::Drop(DropReason::WaitingKeyframe));
        let Admit::Write { seq: first, resumed: true, .. } = admit(&mut t, &plain(9, 11, 3000, true)) else {
            panic!("a keyframe starts the video")
        };
        assert!(
            matches!(admit(&mut t, &plain(9, 12, 6000, false)), Admit::Write { seq, resumed: false, .. } if seq == first + 1)
        );
        // Denied, then allowed again: the route change pauses the rewriter.
        let (mut paused, mut keyframes) = (Vec::new(), Vec::new());
        let mut tracks = [t];
        set_allowed(&mut tracks, 1, Kind::Video, false, &mut paused, &mut keyframes);
        assert_eq!(admit(&mut tracks[0], &plain(9, 13, 9000, true)), Admit::Drop(DropReason::NotAllowed));
        set_allowed(&mut tracks, 1, Kind::Video, true, &mut paused, &mut keyframes);
        assert_eq!(keyframes, vec![(1, Mid::from("v"), None)], "re-allowed video asks for a keyframe");
        assert_eq!(admit(&mut tracks[0], &plain(9, 50, 99_000, false)), Admit::Drop(DropReason::WaitingKeyframe));
        assert!(
            matches!(admit(&mut tracks[0], &plain(9, 51, 102_000, true)), Admit::Write { seq, resumed: true, .. } if seq == first + 2)
        );
    }

    #[test]
    fn a_route_flip_touches_only_its_publisher_and_kind() {
        let mut tracks =
            [track(1, Kind::Audio, "a1", true), track(1, Kind::Video, "v1", true), track(2, Kind::Video, "v2", true)];
        let (mut paused, mut keyframes) = (Vec::new(), Vec::new());
        set_allowed(&mut tracks, 1, Kind::Video, false, &mut paused, &mut keyframes);
        assert_eq!(tracks.iter().map(|t| t.allowed).collect::<Vec<_>>(), [true, false, true]);
        assert_eq!(paused, vec![(Mid::from("v1"), None)]);
        assert!(keyframes.is_empty());
        // Denying audio pauses it but has no cache to empty.
        paused.clear();
        set_allowed(&mut tracks, 1, Kind::Audio, false, &mut paused, &mut keyframes);
        assert!(!tracks[0].allowed && paused.is_empty());
        // Denying what is denied pauses nothing again; allowing audio needs no keyframe.
        set_allowed(&mut tracks, 1, Kind::Video, false, &mut paused, &mut keyframes);
        set_allowed(&mut tracks, 1, Kind::Audio, true, &mut paused, &mut keyframes);
        assert!(paused.is_empty() && keyframes.is_empty());
        assert!(tracks[0].allowed);
    }

    #[test]
    fn a_publishers_tracks_are_found_among_many_by_their_order() {
        let mut tracks: Vec<TrackOut> =
            (1..=5).flat_map(|p| [track(p, Kind::Audio, "a", true), track(p, Kind::Video, "v", true)]).collect();
        assert_eq!(tracks_of(&mut tracks, 3).iter().map(|t| t.publisher).collect::<Vec<_>>(), [3, 3]);
        assert!(tracks_of(&mut tracks, 9).is_empty() && tracks_of(&mut tracks, 0).is_empty());
        let (mut paused, mut keyframes) = (Vec::new(), Vec::new());
        set_allowed(&mut tracks, 5, Kind::Video, false, &mut paused, &mut keyframes);
        let denied: Vec<(PeerKey, Kind)> =
            tracks.iter().filter(|t| !t.allowed).map(|t| (t.publisher, t.kind)).collect();
        assert_eq!(denied, [(5, Kind::Video)]);
    }

    #[test]
    fn keyframe_requests_are_rate_limited_on_the_given_clock() {
        let t0 = Instant::now();
        let mut last = None;
        assert!(keyframe_request_due(&mut last, t0));
        assert!(!keyframe_request_due(&mut last, t0 + Duration::from_millis(199)));
        assert!(keyframe_request_due(&mut last, t0 + KEYFRAME_REQUEST_INTERVAL));
        assert!(!keyframe_request_due(&mut last, t0 + Duration::from_millis(300)));
        assert_eq!(last, Some(t0 + KEYFRAME_REQUEST_INTERVAL));
    }

    /// Three members negotiated in-process (nothing sent): what a route change does to the
    /// worker's tracks, on synthetic time.
    fn trio() -> Rig {
        let mut rig = Rig::on_loopback();
        for id in ["a", "b", "c"] {
            rig.join(id);
        }
        rig.settle();
        assert_eq!(rig.peers(), 3);
        assert_eq!(
            rig.allowed_tracks(),
            (0, 3 * 2 * 2),
            "every member receives both kinds of the others, none allowed"
        );
        rig
    }

    #[tokio::test]
    async fn a_route_change_applies_to_its_publisher_only_and_stale_epochs_are_ignored() {
        let mut rig = trio();
        assert_eq!(rig.update_routes(1, vec![Reach::new("a", Kind::Video, ["b", "c"])]), 1);
        assert_eq!(rig.allowed("b", "a", Kind::Video), Some(true));
        assert_eq!(rig.allowed("c", "a", Kind::Video), Some(true));
        assert_eq!(rig.allowed("b", "a", Kind::Audio), Some(false));
        assert_eq!(rig.allowed_tracks().0, 2);
        // A delta: b's video reaches a, a's reach stays as it was.
        assert_eq!(rig.update_routes(2, vec![Reach::new("b", Kind::Video, ["a"])]), 2);
        assert_eq!(rig.allowed_tracks().0, 3);
        assert_eq!(rig.allowed("a", "b", Kind::Video), Some(true));
        // A stale update changes nothing and answers the epoch in force.
        assert_eq!(rig.update_routes(1, vec![Reach::new("a", Kind::Video, Vec::<String>::new())]), 2);
        assert_eq!(rig.allowed("b", "a", Kind::Video), Some(true));
        // The complete set replaces the old one: c loses a's video, b keeps it.
        assert_eq!(rig.update_routes(3, vec![Reach::new("a", Kind::Video, ["b"])]), 3);
        assert_eq!(rig.allowed("c", "a", Kind::Video), Some(false));
        assert_eq!(rig.allowed("b", "a", Kind::Video), Some(true));
        assert_eq!(rig.worker.counters.matrix_updates, 3, "the stale one is not counted");
        assert_eq!(rig.update_routes(9, vec![]), 9, "an empty update moves the epoch");
    }

    #[tokio::test]
    async fn peers_joining_later_take_the_routes_already_set() {
        let mut rig = trio();
        // d is named before it joins; e is not named at all.
        rig.update_routes(1, vec![Reach::new("a", Kind::Audio, ["d"]), Reach::new("d", Kind::Video, ["a", "b"])]);
        rig.join("d");
        rig.join("e");
        rig.settle();
        assert_eq!(rig.allowed("d", "a", Kind::Audio), Some(true));
        assert_eq!(rig.allowed("a", "d", Kind::Video), Some(true));
        assert_eq!(rig.allowed("b", "d", Kind::Video), Some(true));
        assert_eq!(rig.allowed("c", "d", Kind::Video), Some(false));
        assert_eq!(rig.allowed("e", "a", Kind::Audio), Some(false));
        assert_eq!(rig.allowed_tracks(), (3, 5 * 4 * 2));
        // A member that leaves and comes back (a new peer) gets its routes back too.
        rig.leave("d");
        assert_eq!(rig.peers(), 4);
        rig.join("d");
        rig.settle();
        assert_eq!(rig.allowed("d", "a", Kind::Audio), Some(true));
        assert_eq!(rig.allowed("a", "d", Kind::Video), Some(true));
    }

    #[tokio::test]
    async fn a_departed_publishers_tracks_are_denied_until_the_offer_stops_them() {
        let mut rig = trio();
        rig.update_routes(1, vec![Reach::new("a", Kind::Video, ["b", "c"]), Reach::new("b", Kind::Audio, ["c"])]);
        assert_eq!(rig.allowed_tracks(), (3, 12));
        // d joins: everyone has an offer outstanding when a leaves, so no offer can stop a's
        // tracks yet. They stay, denied at once; b's audio to c is untouched.
        rig.join("d");
        rig.leave("a");
        assert_eq!(rig.allowed_tracks(), (1, 3 * 3 * 2));
        rig.settle();
        assert_eq!(rig.allowed_tracks(), (1, 3 * 2 * 2));
        assert_eq!(rig.allowed("c", "b", Kind::Audio), Some(true));
    }

    #[tokio::test]
    async fn resumed_video_asks_its_publisher_for_a_keyframe_at_most_once_per_interval() {
        let mut rig = trio();
        let requests = |rig: &Rig| rig.keyframe_requests();
        // Audio needs none; video allowed to two subscribers is one request to one track.
        rig.update_routes(1, vec![Reach::new("a", Kind::Audio, ["b", "c"])]);
        assert_eq!(requests(&rig), 0);
        rig.update_routes(2, vec![Reach::new("a", Kind::Video, ["b", "c"])]);
        assert_eq!(requests(&rig), 1);
        // Denied and allowed again within the interval: rate-limited.
        rig.update_routes(3, vec![Reach::new("a", Kind::Video, Vec::<String>::new())]);
        rig.advance(Duration::from_millis(100));
        rig.update_routes(4, vec![Reach::new("a", Kind::Video, ["b"])]);
        assert_eq!(requests(&rig), 1);
        rig.update_routes(5, vec![Reach::new("a", Kind::Video, Vec::<String>::new())]);
        rig.advance(KEYFRAME_REQUEST_INTERVAL);
        rig.update_routes(6, vec![Reach::new("a", Kind::Video, ["c"])]);
        assert_eq!(requests(&rig), 2);
        // Another publisher's track has its own budget.
        rig.update_routes(7, vec![Reach::new("b", Kind::Video, ["a"])]);
        assert_eq!(requests(&rig), 3);
    }
}
