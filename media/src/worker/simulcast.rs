//! Simulcast at the worker: which layers of a published track flow, and what the room's
//! handle may ask of one subscriber's layer ([`crate::layers`] holds the per-subscriber choice).

use std::collections::HashMap;

use str0m::media::{KeyframeRequestKind, Mid, Rid};

use super::forward::keyframe_layer;
use super::Worker;
use crate::allocate::{allocate, Demand};
use crate::layers::{layer_for_tile, LayerState, MAX_LAYERS};
use crate::peer::{tracks_of, PeerKey};
use crate::routes::Kind;
use crate::stats::BweDecision;

impl Worker {
    /// A publisher's stream paused (no packets for a while) or resumed: a simulcast layer
    /// stops or starts counting as flowing, which moves its subscribers' targets with the
    /// next packet of the track.
    pub(super) fn stream_paused(&mut self, publisher: PeerKey, mid: Mid, rid: Option<Rid>, paused: bool) {
        let Some(p) = self.peer_mut(publisher) else { return };
        let Some(track) = p.tracks_in.iter_mut().find(|t| t.mid == mid) else { return };
        let Some(l) = rid.and_then(|rid| track.layer_of(rid)) else { return };
        if let Some(layer) = track.layers.get_mut(l as usize) {
            layer.flowing = !paused;
        }
    }

    /// Cap the simulcast layer `subscriber` gets of `publisher`'s video at `cap` (`None`: no
    /// cap), and ask for the keyframe the new target needs. False when there is no such
    /// simulcast track.
    pub(super) fn set_layer_cap(&mut self, room: &str, subscriber: &str, publisher: &str, cap: Option<u8>) -> bool {
        let (Some(s), Some(p)) = (self.find(room, subscriber), self.find(room, publisher)) else { return false };
        let flowing: Vec<(Mid, u8)> =
            self.peer(p).map(|p| p.tracks_in.iter().map(|t| (t.mid, t.flowing())).collect()).unwrap_or_default();
        let Some(sub) = self.peer_mut(s) else { return false };
        let (mut found, mut keyframes) = (false, Vec::new());
        for t in tracks_of(&mut sub.tracks_out, p).iter_mut().filter(|t| t.kind == Kind::Video) {
            let Some(selector) = t.layers.as_mut() else { continue };
            found = true;
            selector.set_cap(cap);
            if let Some((_, f)) = flowing.iter().find(|(m, _)| *m == t.publisher_mid) {
                selector.aim(*f);
            }
            // A denied pair asks nothing of the publisher; it aims again when allowed.
            if t.allowed && selector.target() != selector.selected() {
                keyframes.push((t.publisher_mid, keyframe_layer(t)));
            }
        }
        for (mid, layer) in keyframes {
            self.request_keyframe(p, mid, layer, KeyframeRequestKind::Pli);
        }
        found
    }

    /// How tall `subscriber` shows each publisher's video (device pixels, by publisher id; a
    /// publisher left out: no size). Each of its simulcast tracks then gets at most the lowest
    /// layer at least that tall. The number of simulcast tracks the sizes now limit.
    pub(super) fn set_tiles(&mut self, room: &str, subscriber: &str, tiles: &HashMap<String, u16>) -> usize {
        let Some(s) = self.find(room, subscriber) else { return 0 };
        let Some(sub) = self.peer(s) else { return 0 };
        let heights: Vec<Option<u16>> = sub
            .tracks_out
            .iter()
            .map(|t| {
                let p = t.layers.as_ref().and_then(|_| self.peer(t.publisher))?;
                tiles.get(&p.id).copied()
            })
            .collect();
        let Some(sub) = self.peer_mut(s) else { return 0 };
        sub.tiles = tiles.clone();
        let (mut tracks, mut limited) = (Vec::new(), 0);
        for (t, height) in sub.tracks_out.iter_mut().zip(heights) {
            if t.layers.is_some() {
                t.tile_height = height;
                limited += usize::from(height.is_some());
                tracks.push((t.publisher, t.publisher_mid));
            }
        }
        for (p, mid) in tracks {
            self.refit_tile(s, p, mid);
        }
        // The bandwidth the tracks share is split anew under their new limits.
        self.fit_budget(s);
        limited
    }

    /// A layer of `publisher`'s track `mid` declared a new picture size: every subscriber that
    /// said how tall it shows the track aims again.
    pub(super) fn refit_tiles(&mut self, publisher: PeerKey, mid: Mid) {
        let Some(room) = self.peer(publisher).map(|p| p.room.clone()) else { return };
        let members: Vec<PeerKey> = self.rooms.get(&room).map(|r| r.members.clone()).unwrap_or_default();
        for s in members.into_iter().filter(|s| *s != publisher) {
            self.refit_tile(s, publisher, mid);
        }
    }

    /// Aim `subscriber`'s track of (`publisher`, `mid`) at the layer its tile needs, and ask
    /// for the keyframe a new target needs.
    pub(super) fn refit_tile(&mut self, subscriber: PeerKey, publisher: PeerKey, mid: Mid) {
        let Some(track) = self.peer(publisher).and_then(|p| p.tracks_in.iter().find(|t| t.mid == mid)) else { return };
        let sizes: Vec<Option<u16>> = track.layers.iter().map(|l| l.size.map(|(_, h)| h)).collect();
        let flowing = track.flowing();
        let Some(t) = self.peer_mut(subscriber).and_then(|s| s.track_out_mut(publisher, mid)) else { return };
        let height = t.tile_height;
        let Some(selector) = t.layers.as_mut() else { return };
        selector.set_tile(height.and_then(|h| layer_for_tile(&sizes, h)));
        selector.aim(flowing);
        // A denied pair asks nothing of the publisher; it aims again when allowed.
        if t.allowed && selector.target() != selector.selected() {
            let layer = keyframe_layer(t);
            self.request_keyframe(publisher, mid, layer, KeyframeRequestKind::Pli);
        }
    }

    /// What `subscriber` gets of `publisher`'s simulcast video, if that is one.
    pub(super) fn layer_state(&self, room: &str, subscriber: &str, publisher: &str) -> Option<LayerState> {
        let (s, p) = (self.find(room, subscriber)?, self.find(room, publisher)?);
        let track = self.peer(s)?.tracks_out.iter().find(|t| t.publisher == p && t.layers.is_some())?;
        let selector = track.layers.as_ref()?;
        let published = self.peer(p)?.tracks_in.iter().find(|t| t.mid == track.publisher_mid)?;
        Some(LayerState {
            layers: published.layers.iter().map(|l| (l.rid.to_string(), l.flowing)).collect(),
            selected: selector.selected(),
            target: selector.target(),
            cap: selector.cap(),
            fits: selector.fits(),
            tile: selector.tile(),
            sizes: published.layers.iter().map(|l| l.size).collect(),
        })
    }

    /// Set the bitrate `peer`'s simulcast video must fit in (`None`: no limit) and fit it.
    pub(super) fn set_budget(&mut self, room: &str, peer: &str, bps: Option<u64>) -> bool {
        let Some(key) = self.find(room, peer) else { return false };
        let Some(p) = self.peer_mut(key) else { return false };
        p.budget = bps;
        self.fit_budget(key);
        true
    }

    /// Fit every peer's simulcast video to its budget (the layers' rates and the estimates move).
    pub(super) fn fit_budgets(&mut self) {
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.fit_budget(key);
        }
    }

    /// Which layer of each simulcast track `key` receives its budget affords, from the layers'
    /// measured rates; a track whose target moves asks its new layer for a keyframe. Denied
    /// tracks cost nothing and are not limited (they are not sent).
    ///
    /// The budget is the lower of the one set through the API and the one bandwidth estimation
    /// leaves ([`super::bwe`]). Where the estimate is the lower, its hysteresis holds: a track
    /// is not raised within 10 s of a downgrade or 2 s of the last change. A track the budget
    /// does not limit (it gets what it would without one) shows no `fits`.
    fn fit_budget(&mut self, key: PeerKey) {
        let now = self.now;
        let Some(sub) = self.peer(key) else { return };
        let explicit = sub.budget;
        let estimated = sub.bwe.video_budget();
        let budget = match (explicit, estimated) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // Whether the estimate is what limits (then its hysteresis applies).
        let estimate_binds = estimated.is_some_and(|e| explicit.is_none_or(|x| e < x));
        let may_upgrade = !estimate_binds || sub.bwe.estimator.may_upgrade(now);
        let mut demands = Vec::new();
        let mut at = Vec::new();
        let mut before = Vec::new();
        for (i, t) in sub.tracks_out.iter().enumerate() {
            let Some(selector) = t.layers.as_ref().filter(|_| t.allowed && budget.is_some()) else { continue };
            let Some(track) =
                self.peer(t.publisher).and_then(|p| p.tracks_in.iter().find(|x| x.mid == t.publisher_mid))
            else {
                continue;
            };
            let mut rates = [0; MAX_LAYERS];
            for (r, l) in rates.iter_mut().zip(&track.layers) {
                *r = l.rate.bps();
            }
            demands.push(Demand { flowing: track.flowing(), rates, cap: selector.limit() });
            at.push(i);
            before.push(selector.fits());
        }
        let free = allocate(u64::MAX, &demands);
        let mut fits = allocate(budget.unwrap_or(u64::MAX), &demands);
        let (mut up, mut down, mut held) = (false, false, false);
        for ((fit, old), top) in fits.iter_mut().zip(&before).zip(&free) {
            // What the track had: its last fit, or (unlimited) what it gets without a budget.
            let had = old.or(*top);
            if *fit > had && !may_upgrade {
                *fit = had;
                held = true;
            }
            up |= *fit > had;
            down |= *fit < had;
        }
        let fresh = self.peer_mut(key).is_some_and(|sub| std::mem::take(&mut sub.bwe.fresh));
        if estimate_binds && (up || down) {
            if let Some(sub) = self.peer_mut(key) {
                sub.bwe.estimator.moved(now, down);
            }
            self.counters.bwe(if down { BweDecision::Downgrade } else { BweDecision::Upgrade });
        } else if held && fresh {
            // Counted once per report, not once per refit.
            self.counters.bwe(BweDecision::UpgradeHeld);
        }
        let Some(sub) = self.peer_mut(key) else { return };
        let mut keyframes = Vec::new();
        for t in sub.tracks_out.iter_mut() {
            if let Some(selector) = t.layers.as_mut() {
                selector.set_fits(None);
            }
        }
        for (((i, fit), demand), top) in at.into_iter().zip(fits).zip(&demands).zip(free) {
            let t = &mut sub.tracks_out[i];
            let Some(selector) = t.layers.as_mut() else { continue };
            // A budget that does not limit this track leaves no mark on it.
            selector.set_fits(if fit == top && explicit.is_none() { None } else { fit });
            selector.aim(demand.flowing);
            if selector.target() != selector.selected() {
                keyframes.push((t.publisher, t.publisher_mid, keyframe_layer(t)));
            }
        }
        for (p, mid, layer) in keyframes {
            self.request_keyframe(p, mid, layer, KeyframeRequestKind::Pli);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::routes::Reach;
    use crate::worker::rig::{Rig, ROOM};
    use crate::Kind;

    #[tokio::test]
    async fn a_simulcast_offer_is_accepted_and_each_subscriber_gets_one_track_with_a_selector() {
        let mut rig = Rig::on_loopback();
        let answer = rig.join_with_layers("pub", &["q", "h", "f"]);
        for line in ["a=rid:q recv", "a=rid:h recv", "a=rid:f recv", "a=simulcast:recv q;h;f"] {
            assert!(answer.contains(line), "the answer accepts the layers ({line}): {answer}");
        }
        rig.join("sub");
        rig.settle();
        let w = &rig.worker;
        let p = w.find(ROOM, "pub").unwrap();
        let video = w.peers[&p].tracks_in.iter().find(|t| t.kind == Kind::Video).unwrap();
        let rids: Vec<String> = video.layers.iter().map(|l| l.rid.to_string()).collect();
        assert_eq!(rids, ["q", "h", "f"], "the layers, in the offer's order");
        assert_eq!(video.flowing(), 0, "nothing flows before a packet");
        let s = w.find(ROOM, "sub").unwrap();
        let from_pub: Vec<_> = w.peers[&s].tracks_out.iter().filter(|t| t.publisher == p).collect();
        assert_eq!(from_pub.len(), 2, "one audio and one video track, whatever the layers");
        assert!(from_pub.iter().all(|t| t.layers.is_some() == (t.kind == Kind::Video)));
        // The plain publisher's video has no selector.
        let plain = w.peers[&p].tracks_out.iter().find(|t| t.kind == Kind::Video).unwrap();
        assert!(plain.layers.is_none());
        let state = rig.worker.layer_state(ROOM, "sub", "pub").unwrap();
        assert_eq!(state.layers.len(), 3);
        assert_eq!((state.selected, state.target, state.cap), (None, None, None));
        assert!(rig.worker.layer_state(ROOM, "pub", "sub").is_none(), "no layers the other way");
    }

    #[tokio::test]
    async fn a_cap_from_the_api_sets_the_target_and_asks_that_layer_for_a_keyframe() {
        let mut rig = Rig::on_loopback();
        rig.join_with_layers("pub", &["q", "h", "f"]);
        rig.join("sub");
        rig.settle();
        rig.update_routes(1, vec![Reach::new("pub", Kind::Video, ["sub"])]);
        let p = rig.worker.find(ROOM, "pub").unwrap();
        for layer in &mut rig.worker.peers.get_mut(&p).unwrap().tracks_in[1].layers {
            layer.flowing = true;
        }
        let before = rig.keyframe_requests();
        assert!(rig.worker.set_layer_cap(ROOM, "sub", "pub", Some(1)));
        let state = rig.worker.layer_state(ROOM, "sub", "pub").unwrap();
        assert_eq!((state.target, state.cap), (Some(1), Some(1)));
        assert_eq!(rig.keyframe_requests(), before + 1, "the middle layer is asked for a keyframe");
        // Again at once: that layer's own rate limit holds; another layer has its own.
        assert!(rig.worker.set_layer_cap(ROOM, "sub", "pub", Some(1)));
        assert_eq!(rig.keyframe_requests(), before + 1);
        assert!(rig.worker.set_layer_cap(ROOM, "sub", "pub", None));
        assert_eq!(rig.worker.layer_state(ROOM, "sub", "pub").unwrap().target, Some(2));
        assert_eq!(rig.keyframe_requests(), before + 2);
        assert!(!rig.worker.set_layer_cap(ROOM, "pub", "sub", Some(0)), "not a simulcast track");
        assert!(!rig.worker.set_layer_cap(ROOM, "sub", "nobody", Some(0)));
    }
}
