//! The packet path and the routes: forwarding a publisher's packet to the subscribers its
//! routes allow (payload type, SSRC, sequence number and timestamp rewritten per subscriber),
//! keyframe requests both ways, and applying a route change to the tracks it touches.

use std::time::Instant;

use str0m::media::{KeyframeRequestKind, Mid};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite};
use str0m::Input;
use tracing::debug;

use super::{Worker, KEYFRAME_REQUEST_INTERVAL, RTX_CACHE_AGE, RTX_CACHE_PACKETS, RTX_RATIO_CAP};
use crate::peer::{PeerKey, TrackOut};
use crate::rewrite::Verdict;
use crate::routes::{Kind, Reach};
use crate::stats::DropReason;
use crate::vp8;

/// What one packet does on one subscriber's track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admit {
    /// Write it with these numbers; `resumed` when it ends a keyframe wait.
    Write { seq: u64, time: u32, resumed: bool },
    /// Drop it, for this reason ([`DropReason::WaitingKeyframe`] asks the publisher for one).
    Drop(DropReason),
}

/// Whether `track` takes a packet (SSRC, extended sequence number, RTP time, whether it starts
/// a keyframe). The track's `allowed` flag is its route, resolved when the route last changed.
pub(super) fn admit(track: &mut TrackOut, ssrc: u32, seq: u64, time: u32, keyframe: bool) -> Admit {
    if !track.allowed {
        return Admit::Drop(DropReason::NotAllowed);
    }
    if !track.negotiated {
        return Admit::Drop(DropReason::NotNegotiated);
    }
    let was_waiting = track.rewriter.waiting_keyframe();
    match track.rewriter.next(ssrc, seq, time, keyframe) {
        Verdict::Write { seq, time } => Admit::Write { seq, time, resumed: was_waiting },
        Verdict::WaitKeyframe => Admit::Drop(DropReason::WaitingKeyframe),
        Verdict::Stale => Admit::Drop(DropReason::Stale),
    }
}

/// Set whether a subscriber's tracks of `publisher`'s `kind` are allowed. A pair that becomes
/// denied is paused (its mid goes to `paused`, for its retransmission cache to be emptied); a
/// video pair that becomes allowed needs a keyframe from the publisher's track (`keyframes`).
pub(super) fn set_allowed(
    tracks: &mut [TrackOut],
    publisher: PeerKey,
    kind: Kind,
    allowed: bool,
    paused: &mut Vec<Mid>,
    keyframes: &mut Vec<(PeerKey, Mid)>,
) {
    for t in tracks.iter_mut().filter(|t| t.publisher == publisher && t.kind == kind) {
        if t.allowed && !allowed {
            t.rewriter.pause();
            paused.push(t.mid);
        }
        if !t.allowed && allowed && kind == Kind::Video {
            keyframes.push((t.publisher, t.publisher_mid));
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
        let mut paused: Vec<(PeerKey, Mid)> = Vec::new();
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
        // A denied pair gets nothing by any path: empty the stream's retransmission cache so
        // a NACK cannot pull out even packets sent while it was still allowed.
        paused.sort_unstable_by_key(|(s, _)| *s);
        let now = self.now;
        for group in paused.chunk_by(|a, b| a.0 == b.0) {
            let s = group[0].0;
            // Packets written while the pair was allowed may still wait in str0m's send queue
            // (it sends on the next timeout) and would be cached in the new, empty cache when
            // sent: send them first, into the cache that is about to be dropped.
            self.with_peer(s, |rtc| rtc.handle_input(Input::Timeout(now)));
            self.with_peer(s, |rtc| {
                for (_, mid) in group {
                    if let Some(tx) = rtc.direct_api().stream_tx_by_mid(*mid, None) {
                        tx.set_rtx_cache(RTX_CACHE_PACKETS, RTX_CACHE_AGE, Some(RTX_RATIO_CAP));
                    }
                }
            });
        }
        for (p, mid) in keyframes {
            self.request_keyframe(p, mid, KeyframeRequestKind::Pli);
        }
        epoch
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
            let (seq, time) = match admit(track, *pkt.header.ssrc, *pkt.seq_no, pkt.header.timestamp, keyframe) {
                Admit::Write { seq, time, resumed } => {
                    if resumed {
                        debug!(subscriber = s, publisher = from, "video resumes on a keyframe");
                    }
                    (seq, time)
                }
                Admit::Drop(reason) => {
                    want_keyframe |= reason == DropReason::WaitingKeyframe;
                    self.counters.drop(reason);
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
    pub(super) fn keyframe_request_from_subscriber(&mut self, sub: PeerKey, mid: Mid, kind: KeyframeRequestKind) {
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
        let now = self.now;
        let Some(p) = self.peer_mut(publisher) else { return };
        let Some(track) = p.tracks_in.iter_mut().find(|t| t.mid == mid) else { return };
        if !keyframe_request_due(&mut track.last_keyframe_request, now) {
            return;
        }
        debug!(publisher, %mid, ?kind, "keyframe requested");
        self.counters.keyframe_requests += 1;
        self.with_peer(publisher, |rtc| {
            if let Some(rx) = rtc.direct_api().stream_rx_by_mid(mid, None) {
                rx.request_keyframe(kind);
            }
        });
    }
}
