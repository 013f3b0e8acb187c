//! Bandwidth estimation at the worker: each subscriber's egress stats (str0m's
//! `MediaEgressStats`, from its RTCP receiver reports) feed its [`Estimator`], whose estimate,
//! less what its audio and plain video take, becomes the budget its simulcast video is fitted
//! to ([`crate::allocate`]), with the upgrade hysteresis the estimator keeps. No padding and no
//! probe is ever sent (see [`crate::estimate`] for why).

use std::time::{Duration, Instant};

use str0m::stats::MediaEgressStats;
use tracing::debug;

use super::Worker;
use crate::estimate::{Gathered, Report, StreamTally, Verdict};
use crate::peer::PeerKey;
use crate::routes::Kind;
use crate::stats::BweDecision;

/// How often str0m reports each peer's stream stats (receiver reports come about once a second
/// from browsers and the webrtc crate; the loss of an interval without one is carried over).
pub(crate) const STATS_INTERVAL: Duration = Duration::from_secs(1);

impl Worker {
    /// One send stream's stats of `key`'s str0m instance.
    pub(super) fn egress_stats(&mut self, key: PeerKey, stats: MediaEgressStats) {
        let now = self.now;
        let Some(p) = self.peer_mut(key) else { return };
        // Only the simulcast video is budgeted; everything else is what the budget must leave.
        let tracks = &p.tracks_out;
        let is_budgeted = || tracks.iter().any(|t| t.mid == stats.mid && t.kind == Kind::Video && t.layers.is_some());
        let (tally, budgeted) =
            p.bwe.tallies.entry(stats.mid).or_insert_with(|| (StreamTally::default(), is_budgeted()));
        let (bytes, restarted) = tally.delta(stats.bytes);
        if restarted {
            *budgeted = is_budgeted();
        }
        let budgeted = *budgeted;
        p.bwe.gathered.add(now, bytes, stats.loss, budgeted);
    }

    /// Read every subscriber's gathered stats into its estimate (at the budget's refit).
    pub(super) fn estimate_all(&mut self, now: Instant) {
        let keys: Vec<PeerKey> =
            self.peers.iter().filter(|(_, p)| p.bwe.gathered.until().is_some()).map(|(k, _)| *k).collect();
        for key in keys {
            let next_cost = self.next_cost(key);
            let Some(p) = self.peer_mut(key) else { continue };
            let bwe = &mut p.bwe;
            let Some(until) = bwe.gathered.until() else { continue };
            let Some(since) = bwe.last_taken else {
                // The first stats count from the streams' start: they only set the tallies.
                bwe.gathered = Gathered::default();
                bwe.last_taken = Some(until);
                continue;
            };
            let interval = until.saturating_duration_since(since);
            let Some((loss, sent_bps, other_bps)) = bwe.gathered.take(interval) else { continue };
            bwe.last_taken = Some(until);
            bwe.other_bps = other_bps;
            bwe.fresh = true;
            let verdict = bwe.estimator.report(now, Report { loss, sent_bps, next_cost });
            debug!(peer = %p.id, loss, sent_bps, estimate = bwe.estimator.bps(), ?verdict, "bandwidth estimate");
            match verdict {
                Verdict::Grow => self.counters.bwe(BweDecision::EstimateGrew),
                Verdict::Hold => self.counters.bwe(BweDecision::EstimateHeld),
                Verdict::Cut => self.counters.bwe(BweDecision::EstimateCut),
                Verdict::Ignored => {}
            }
            self.counters.estimate_reports += 1;
        }
    }

    /// What the cheapest next upgrade of `key`'s simulcast video would add, bits/s (0: none).
    fn next_cost(&self, key: PeerKey) -> u64 {
        let Some(sub) = self.peer(key) else { return 0 };
        let mut cheapest: Option<u64> = None;
        for t in sub.tracks_out.iter().filter(|t| t.allowed) {
            let Some(selector) = t.layers.as_ref() else { continue };
            let Some(track) =
                self.peer(t.publisher).and_then(|p| p.tracks_in.iter().find(|x| x.mid == t.publisher_mid))
            else {
                continue;
            };
            let Some(now) = selector.target().or(selector.selected()) else { continue };
            if selector.limit().is_some_and(|limit| now >= limit) {
                continue;
            }
            let Some(next) = track.layers.iter().skip(now as usize + 1).find(|l| l.flowing) else { continue };
            let current = track.layers.get(now as usize).map_or(0, |l| l.rate.bps());
            let cost = next.rate.bps().saturating_sub(current);
            cheapest = Some(cheapest.map_or(cost, |c| c.min(cost)));
        }
        cheapest.unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use str0m::media::Mid;
    use str0m::stats::MediaEgressStats;

    use crate::allocate::RATE_WINDOW;
    use crate::routes::Reach;
    use crate::stats::BweDecision;
    use crate::worker::rig::{Rig, ROOM};
    use crate::Kind;

    fn stats(mid: Mid, bytes: u64, loss: Option<f32>, at: Instant) -> MediaEgressStats {
        MediaEgressStats {
            mid,
            rid: None,
            bytes,
            packets: bytes / 500,
            firs: 0,
            plis: 0,
            nacks: 0,
            rtt: None,
            loss,
            timestamp: at,
            remote: None,
        }
    }

    /// A subscriber of a three-layer publisher (layers measured at 60, 120 and 230 kbit/s) and
    /// its video and audio mids.
    fn rig() -> (Rig, Mid, Mid) {
        let mut rig = Rig::on_loopback();
        rig.join_with_layers("pub", &["q", "h", "f"]);
        rig.join("sub");
        rig.settle();
        rig.update_routes(1, vec![Reach::new("pub", Kind::Video, ["sub"]), Reach::new("pub", Kind::Audio, ["sub"])]);
        let (p, s) = (rig.worker.find(ROOM, "pub").unwrap(), rig.worker.find(ROOM, "sub").unwrap());
        let t0 = rig.now;
        let video = rig.worker.peers.get_mut(&p).unwrap().tracks_in.iter_mut().find(|t| t.kind == Kind::Video).unwrap();
        for (layer, bps) in video.layers.iter_mut().zip([60_000u64, 120_000, 230_000]) {
            layer.flowing = true;
            layer.rate.observe(t0, (bps / 16) as usize);
            layer.rate.observe(t0 + RATE_WINDOW, 0);
        }
        let mid =
            |kind| rig.worker.peers[&s].tracks_out.iter().find(|t| t.publisher == p && t.kind == kind).unwrap().mid;
        let (v, a) = (mid(Kind::Video), mid(Kind::Audio));
        (rig, v, a)
    }

    /// One second of stats: `video` and `audio` bits sent, at `loss`; then a refit.
    fn second(rig: &mut Rig, (v, a): (Mid, Mid), sent: &mut (u64, u64), (video, audio): (u64, u64), loss: f32) {
        rig.advance(Duration::from_secs(1));
        let now = rig.now;
        rig.worker.now = now;
        let s = rig.worker.find(ROOM, "sub").unwrap();
        sent.0 += video / 8;
        sent.1 += audio / 8;
        rig.worker.egress_stats(s, stats(v, sent.0, Some(loss), now));
        rig.worker.egress_stats(s, stats(a, sent.1, Some(loss / 4.0), now));
        rig.worker.estimate_all(now);
        rig.worker.fit_budgets();
    }

    #[tokio::test]
    async fn loss_takes_a_subscriber_down_and_only_the_hold_lets_it_probe_again() {
        let (mut rig, v, a) = rig();
        let mids = (v, a);
        let mut sent = (0, 0);
        let fits = |rig: &Rig| rig.worker.layer_state(ROOM, "sub", "pub").unwrap().fits;
        // The first stats only start the tallies; then clean seconds at the top: no limit shown.
        for _ in 0..3 {
            second(&mut rig, mids, &mut sent, (240_000, 45_000), 0.0);
        }
        assert_eq!(fits(&rig), None, "600 kbit/s affords the top layer");
        // 30 % lost (video; audio a quarter of that): cut, down a layer.
        second(&mut rig, mids, &mut sent, (240_000, 45_000), 0.3);
        assert_eq!(fits(&rig), Some(1));
        let estimate = rig.worker.peers[&rig.worker.find(ROOM, "sub").unwrap()].bwe.estimate().unwrap();
        assert!(estimate < 230_000, "{estimate}");
        // Clean again: the estimate grows past the top layer's cost, but 10 s must pass.
        let mut up_after = None;
        for s in 1..=15 {
            second(&mut rig, mids, &mut sent, (125_000, 45_000), 0.0);
            if up_after.is_none() && fits(&rig) != Some(1) {
                up_after = Some(s);
            }
        }
        assert_eq!(up_after, Some(10), "the probe comes when the hold is over");
        assert_eq!(fits(&rig), None, "back on the top layer");
        let c = &rig.worker.counters;
        assert_eq!((c.bwe_decisions(BweDecision::Downgrade), c.bwe_decisions(BweDecision::Upgrade)), (1, 1));
        assert!(c.bwe_decisions(BweDecision::UpgradeHeld) >= 1);
        assert!(c.bwe_decisions(BweDecision::EstimateCut) == 1);
    }

    #[tokio::test]
    async fn an_explicit_budget_bounds_the_estimate_and_garbage_stats_change_nothing() {
        let (mut rig, v, a) = rig();
        let mut sent = (0, 0);
        for _ in 0..3 {
            second(&mut rig, (v, a), &mut sent, (240_000, 45_000), 0.0);
        }
        assert!(rig.worker.set_budget(ROOM, "sub", Some(100_000)));
        assert_eq!(rig.worker.layer_state(ROOM, "sub", "pub").unwrap().fits, Some(0));
        // Lifted: the explicit budget moved it, not the estimate, so there is no hold.
        assert!(rig.worker.set_budget(ROOM, "sub", None));
        assert_eq!(rig.worker.layer_state(ROOM, "sub", "pub").unwrap().fits, None);
        let s = rig.worker.find(ROOM, "sub").unwrap();
        let before = rig.worker.peers[&s].bwe.estimate();
        let now = rig.now;
        for loss in [Some(f32::NAN), Some(-3.0), Some(f32::INFINITY), Some(2.0), None] {
            rig.worker.egress_stats(s, stats(v, 0, loss, now));
            rig.worker.egress_stats(s, stats(Mid::from("nope"), u64::MAX, loss, now));
        }
        rig.worker.estimate_all(now + Duration::from_secs(1));
        rig.worker.fit_budgets();
        assert_eq!(rig.worker.peers[&s].bwe.estimate(), before);
        assert_eq!(rig.worker.layer_state(ROOM, "sub", "pub").unwrap().fits, None);
    }
}
