//! Per-subscriber bandwidth estimation without padding: how many bits per second the path to
//! one subscriber carries, from the loss its receiver reports say, and when its simulcast
//! video may move up a layer.
//!
//! It is **loss-based** on purpose. A delay-based estimator (str0m's `enable_bwe`, Google
//! congestion control) needs probes: padding or duplicated packets sent above the media rate.
//! str0m 0.25 pads on a send stream of its own choosing, which may be a pair the game denies (a
//! citizen's stream of the mafia at night), and "nothing reaches a denied pair, not even
//! padding" is a rule the SFU keeps (docs/ARCHITECTURE.md). So nothing extra is ever sent: the
//! probe is the upgrade itself, and the signal is the fraction lost that the subscriber's RTCP
//! receiver reports give per stream (str0m's `MediaEgressStats::loss`).
//!
//! The rule, once per report (about once a second):
//!
//! - loss below [`LOW_LOSS`] (2 %): the estimate grows by [`GROWTH_PER_SECOND`] (8 %/s) but not
//!   past what is being sent plus the cost of the next layer up, plus [`HEADROOM`] (10 %: the
//!   layers' rates are measured on payload, the rate sent on packets, and both wobble), so an
//!   idle path does not grow an estimate nobody tested; it never shrinks here;
//! - loss from 2 % to [`HIGH_LOSS`] (10 %): hold;
//! - loss above 10 %: cut to the lower of the estimate and what the path delivered (the rate
//!   sent times `1 − loss`), times `1 − loss / 2` (never below [`MIN_BPS`]). The base is the
//!   delivered rate rather than the rate sent because the rate sent includes retransmissions
//!   answering the very loss measured: cut from it, a path at 60 % of the top layer took four
//!   reports (4–6 s) to come down; from the delivered rate it takes one.
//!
//! A cut is not repeated within [`CUT_SPACING`] (2.5 s): the reports after a cut still cover
//! time before the downgrade it caused took effect (a receiver report covers the second before
//! it, str0m's stats the second before that, and the refit runs every 500 ms), and would cut
//! for the same loss again. At 1.5 s a failed probe sometimes fell two layers instead of one.
//!
//! Loss is the stream losses weighted by the bytes each stream sent ([`Gathered`]): a policer
//! drops the large video packets more often than the small audio ones, and weighted by packets
//! the many small audio packets hid half of the video's loss.
//!
//! And the hysteresis on top, like mediasoup's: no upgrade within [`HOLD_AFTER_DOWNGRADE`]
//! (10 s) of a downgrade, and a layer must have run [`MIN_LAYER_RUN`] (2 s) before the next
//! upgrade ([`Estimator::may_upgrade`]). An upgrade that brings loss is cut back by the next
//! report and then held off for 10 s: a failed probe costs a few seconds of loss (1.5–5 s in
//! `tests/bwe.rs`).
//!
//! The estimate starts at [`START_BPS`] (mediasoup's initial available outgoing bitrate), so a
//! subscriber begins on the layers that fit 600 kbit/s and loss brings it down from there.
//! Audio is not in the budget the estimate sets: it is subtracted from the estimate as sent, and
//! never dropped for video.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use str0m::media::Mid;

/// Where the estimate starts, bits per second.
pub const START_BPS: u64 = 600_000;
/// The estimate never goes below this (a floor for growth to start from again).
pub const MIN_BPS: u64 = 30_000;
/// Loss under this fraction lets the estimate grow.
pub const LOW_LOSS: f32 = 0.02;
/// Loss over this fraction cuts the estimate.
pub const HIGH_LOSS: f32 = 0.10;
/// The growth ceiling's margin over what is sent plus the next layer's cost.
pub const HEADROOM: f64 = 1.10;
/// How fast the estimate grows under low loss: this factor a second.
pub const GROWTH_PER_SECOND: f64 = 1.08;
/// No upgrade this long after a downgrade.
pub const HOLD_AFTER_DOWNGRADE: Duration = Duration::from_secs(10);
/// A layer runs this long before the next upgrade.
pub const MIN_LAYER_RUN: Duration = Duration::from_secs(2);
/// No second cut this soon after one.
pub const CUT_SPACING: Duration = Duration::from_millis(2500);
/// Growth is computed over at most this much time between reports (a report after a long
/// silence must not be read as seconds of good news).
const MAX_GROWTH_STEP: Duration = Duration::from_secs(2);

/// What one receiver-report interval said about the path to a subscriber.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Report {
    /// The fraction lost, 0 to 1 (values outside, or not a number, are treated as unknown).
    pub loss: f32,
    /// What was sent to the subscriber over the interval, bits per second (all streams).
    pub sent_bps: u64,
    /// What the next upgrade of its simulcast video would add, bits per second (0: none).
    pub next_cost: u64,
}

/// What a report did to the estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Low loss: the estimate grew (or stayed at its ceiling).
    Grow,
    /// Some loss: the estimate held.
    Hold,
    /// Heavy loss: the estimate was cut.
    Cut,
    /// The report carried no usable loss value: nothing changed.
    Ignored,
}

/// A subscriber's estimate and the times its hysteresis needs.
#[derive(Debug, Clone)]
pub struct Estimator {
    bps: u64,
    last_report: Option<Instant>,
    last_cut: Option<Instant>,
    last_downgrade: Option<Instant>,
    last_change: Option<Instant>,
}

impl Default for Estimator {
    fn default() -> Self {
        Estimator { bps: START_BPS, last_report: None, last_cut: None, last_downgrade: None, last_change: None }
    }
}

impl Estimator {
    /// The estimate, bits per second.
    pub fn bps(&self) -> u64 {
        self.bps
    }

    /// Take one report, arrived at `now`.
    pub fn report(&mut self, now: Instant, report: Report) -> Verdict {
        if !(0.0..=1.0).contains(&report.loss) {
            return Verdict::Ignored;
        }
        let elapsed = self.last_report.map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        self.last_report = Some(now);
        let recently_cut = self.last_cut.is_some_and(|t| now.saturating_duration_since(t) < CUT_SPACING);
        if report.loss > HIGH_LOSS && recently_cut {
            return Verdict::Hold;
        }
        if report.loss > HIGH_LOSS {
            self.last_cut = Some(now);
            let loss = f64::from(report.loss);
            let delivered = report.sent_bps as f64 * (1.0 - loss);
            let cut = (self.bps as f64).min(delivered) * (1.0 - loss / 2.0);
            self.bps = (cut.round() as u64).max(MIN_BPS);
            return Verdict::Cut;
        }
        if report.loss >= LOW_LOSS {
            return Verdict::Hold;
        }
        let ceiling = (report.sent_bps.saturating_add(report.next_cost) as f64 * HEADROOM) as u64;
        if self.bps < ceiling {
            let factor = GROWTH_PER_SECOND.powf(elapsed.min(MAX_GROWTH_STEP).as_secs_f64());
            let grown = (self.bps as f64 * factor).round() as u64;
            self.bps = grown.clamp(self.bps, ceiling);
        }
        Verdict::Grow
    }

    /// Whether a track may move up a layer at `now`: not within 10 s of a downgrade, and not
    /// before the last change has run 2 s.
    pub fn may_upgrade(&self, now: Instant) -> bool {
        let since = |t: Option<Instant>| t.map_or(Duration::MAX, |t| now.saturating_duration_since(t));
        since(self.last_downgrade) >= HOLD_AFTER_DOWNGRADE && since(self.last_change) >= MIN_LAYER_RUN
    }

    /// The allocation moved at `now`: some track went down (`down`) and/or up.
    pub fn moved(&mut self, now: Instant, down: bool) {
        self.last_change = Some(now);
        if down {
            self.last_downgrade = Some(now);
        }
    }
}

/// Per stream of one subscriber: the cumulative byte count of its last stats event, to turn the
/// next one into a rate.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamTally {
    bytes: u64,
}

impl StreamTally {
    /// Bytes since the last call, from the stream's cumulative count, and whether the count
    /// went back (a new stream on the same mid: it counts from zero).
    pub fn delta(&mut self, bytes: u64) -> (u64, bool) {
        let d = bytes.checked_sub(self.bytes).map_or((bytes, true), |d| (d, false));
        self.bytes = bytes;
        d
    }
}

/// One interval's stats of a subscriber's send streams, gathered until the estimator reads
/// them: loss weighted by the bytes each stream sent, and bytes sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gathered {
    lost: f64,
    weighed: u64,
    bytes: u64,
    /// Bytes of the streams the budget does not cover (audio, plain video).
    other_bytes: u64,
    until: Option<Instant>,
}

impl Gathered {
    /// A stream's stats at `now`: `bytes` sent since the last, its loss if a receiver report
    /// came (`None`, or a value that is not a fraction, adds no loss), and whether the budget
    /// covers it (simulcast video).
    pub fn add(&mut self, now: Instant, bytes: u64, loss: Option<f32>, budgeted: bool) {
        self.until = Some(now);
        self.bytes = self.bytes.saturating_add(bytes);
        if !budgeted {
            self.other_bytes = self.other_bytes.saturating_add(bytes);
        }
        if let Some(loss) = loss.filter(|l| (0.0..=1.0).contains(l)) {
            // A stream that sent nothing this interval still reports; give it a weight of one.
            let weight = bytes.max(1);
            self.lost += f64::from(loss) * weight as f64;
            self.weighed = self.weighed.saturating_add(weight);
        }
    }

    /// The interval's loss and rates (total, and not covered by the budget) over `interval`,
    /// and start a new one. `None` (and the interval goes on) when no stream reported loss.
    pub fn take(&mut self, interval: Duration) -> Option<(f32, u64, u64)> {
        // Without a report the bytes go on gathering into the next interval that has one.
        if self.weighed == 0 {
            return None;
        }
        let g = std::mem::take(self);
        let secs = interval.as_secs_f64().max(0.001);
        let rate = |b: u64| (b as f64 * 8.0 / secs) as u64;
        Some(((g.lost / g.weighed as f64) as f32, rate(g.bytes), rate(g.other_bytes)))
    }

    /// When the last stats of this interval came.
    pub fn until(&self) -> Option<Instant> {
        self.until
    }
}

/// One subscriber's estimation state.
#[derive(Debug, Default)]
pub(crate) struct PeerEstimate {
    pub estimator: Estimator,
    pub gathered: Gathered,
    /// Per send stream: the cumulative count of its last stats, and whether the budget covers
    /// it (found when the stream is first seen or restarts: a pass over the tracks, not one per
    /// stats event).
    pub tallies: HashMap<Mid, (StreamTally, bool)>,
    /// When the last stats read into the estimate came (`None`: none yet; the first batch
    /// only sets the tallies, its counts cover the whole life of the streams). Rates are over
    /// the time between batches, not between reads: str0m and the refit keep clocks of their own.
    pub last_taken: Option<Instant>,
    /// What the last report found the budget does not cover (audio, plain video), bits/s.
    pub other_bps: u64,
    /// A report arrived that the next fit has not used yet.
    pub fresh: bool,
}

impl PeerEstimate {
    /// The estimate, once a report came.
    pub fn estimate(&self) -> Option<u64> {
        self.last_taken.map(|_| self.estimator.bps())
    }

    /// The budget the estimate leaves the simulcast video, once a report came.
    pub fn video_budget(&self) -> Option<u64> {
        self.last_taken?;
        Some(self.estimator.bps().saturating_sub(self.other_bps))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    fn report(loss: f32, sent_bps: u64, next_cost: u64) -> Report {
        Report { loss, sent_bps, next_cost }
    }

    #[test]
    fn low_loss_grows_eight_percent_a_second_up_to_what_is_sent_plus_the_next_layer() {
        let t0 = Instant::now();
        let mut e = Estimator { bps: 100_000, ..Estimator::default() };
        assert_eq!(e.report(t0, report(0.0, 100_000, 200_000)), Verdict::Grow);
        assert_eq!(e.bps(), 100_000, "the first report has no interval to grow over");
        e.report(at(t0, 1000), report(0.01, 100_000, 200_000));
        assert_eq!(e.bps(), 108_000);
        e.report(at(t0, 2000), report(0.0, 100_000, 200_000));
        assert_eq!(e.bps(), 116_640);
        // The ceiling: what is sent plus what the next layer adds, plus 10 %.
        for s in 3..60 {
            e.report(at(t0, s * 1000), report(0.0, 100_000, 20_000));
        }
        assert_eq!(e.bps(), 132_000);
        // A long silence counts as 2 s of growth at most.
        let mut e = Estimator { bps: 100_000, ..Estimator::default() };
        e.report(t0, report(0.0, 1_000_000, 0));
        e.report(at(t0, 60_000), report(0.0, 1_000_000, 0));
        assert_eq!(e.bps(), 116_640);
        // Low loss never lowers an estimate above its ceiling (the start, before anything flows).
        let mut e = Estimator::default();
        e.report(t0, report(0.0, 50_000, 0));
        e.report(at(t0, 1000), report(0.0, 50_000, 0));
        assert_eq!(e.bps(), START_BPS);
    }

    #[test]
    fn some_loss_holds_and_heavy_loss_cuts_from_what_was_sent() {
        let t0 = Instant::now();
        let mut e = Estimator::default();
        assert_eq!(e.report(t0, report(0.05, 300_000, 100_000)), Verdict::Hold);
        assert_eq!(e.bps(), START_BPS);
        assert_eq!(e.report(at(t0, 1000), report(0.02, 300_000, 100_000)), Verdict::Hold);
        assert_eq!(e.report(at(t0, 2000), report(0.10, 300_000, 100_000)), Verdict::Hold);
        // 30 % lost of 300 kbit/s: 210 delivered, × 0.85.
        assert_eq!(e.report(at(t0, 3000), report(0.3, 300_000, 100_000)), Verdict::Cut);
        assert_eq!(e.bps(), 178_500);
        // Not again within 2.5 s: that report still covers the time before the cut.
        assert_eq!(e.report(at(t0, 5400), report(0.5, 900_000, 0)), Verdict::Hold);
        assert_eq!(e.bps(), 178_500);
        // Cut from the estimate when it is the lower.
        assert_eq!(e.report(at(t0, 5500), report(0.2, 900_000, 0)), Verdict::Cut);
        assert_eq!(e.bps(), 160_650);
        // Total loss, again and again: down to the floor, not to zero.
        for s in 3..200 {
            e.report(at(t0, 5500 + s * 1000), report(1.0, 0, 0));
        }
        assert_eq!(e.bps(), MIN_BPS);
    }

    #[test]
    fn garbage_loss_values_change_nothing() {
        let t0 = Instant::now();
        let mut e = Estimator::default();
        for loss in [f32::NAN, -0.1, 1.5, f32::INFINITY, f32::NEG_INFINITY] {
            assert_eq!(e.report(t0, report(loss, 1, 1)), Verdict::Ignored);
        }
        assert_eq!(e.bps(), START_BPS);
        assert_eq!(e.report(t0, report(0.5, u64::MAX, u64::MAX)), Verdict::Cut);
        assert_eq!(e.report(at(t0, 1000), report(0.0, u64::MAX, u64::MAX)), Verdict::Grow);
        let mut g = Gathered::default();
        g.add(t0, u64::MAX, Some(f32::NAN), true);
        g.add(t0, u64::MAX, Some(7.0), false);
        assert_eq!(g.take(Duration::from_secs(1)), None, "no usable loss");
        g = Gathered::default();
        g.add(t0, 1, Some(0.5), true);
        g.add(t0, 3, Some(0.0), false);
        g.add(t0, 0, Some(1.0), false);
        let (loss, total, other) = g.take(Duration::ZERO).unwrap();
        assert!((loss - 0.3).abs() < 1e-6, "a stream that sent nothing weighs one byte: {loss}");
        assert!(total > other && other > 0);
    }

    #[test]
    fn no_upgrade_for_ten_seconds_after_a_downgrade_nor_before_a_layer_ran_two() {
        let t0 = Instant::now();
        let mut e = Estimator::default();
        assert!(e.may_upgrade(t0), "nothing happened yet");
        e.moved(t0, false);
        assert!(!e.may_upgrade(at(t0, 1999)));
        assert!(e.may_upgrade(at(t0, 2000)));
        e.moved(at(t0, 3000), true);
        assert!(!e.may_upgrade(at(t0, 12_999)));
        assert!(e.may_upgrade(at(t0, 13_000)));
        // A clock that goes back (it cannot, but) holds rather than panics.
        assert!(!e.may_upgrade(t0));
    }

    #[test]
    fn gathered_stats_weigh_loss_by_bytes_and_split_the_budgeted_bytes() {
        let t0 = Instant::now();
        let mut g = Gathered::default();
        assert_eq!(g.until(), None);
        // Video: 30 kB at 30 % lost; audio: 10 kB at none; a stream without a report.
        g.add(t0, 30_000, Some(0.3), true);
        g.add(t0, 10_000, Some(0.0), false);
        assert_eq!(g.take(Duration::from_secs(1)).map(|(l, ..)| l > 0.2), Some(true));
        g.add(t0, 30_000, Some(0.3), true);
        g.add(t0, 10_000, Some(0.0), false);
        g.add(t0, 1_000, None, false);
        assert_eq!(g.until(), Some(t0));
        let (loss, total, other) = g.take(Duration::from_secs(1)).unwrap();
        assert!((loss - 0.225).abs() < 1e-6, "{loss}");
        assert_eq!((total, other), (328_000, 88_000));
        assert_eq!(g.until(), None, "taken: a new interval");
        // Without a report the bytes carry over to the interval that has one.
        g.add(t0, 1_000, None, true);
        assert_eq!(g.take(Duration::from_secs(1)), None);
        g.add(t0, 1_000, Some(0.0), true);
        assert_eq!(g.take(Duration::from_secs(2)), Some((0.0, 8_000, 0)));
        let mut tally = StreamTally::default();
        assert_eq!(tally.delta(100), (100, false));
        assert_eq!(tally.delta(250), (150, false));
        assert_eq!(tally.delta(40), (40, true), "a new stream counts from zero");
    }
}
