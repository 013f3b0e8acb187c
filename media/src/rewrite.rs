//! Per-subscriber rewriting of one forwarded stream: sequence numbers stay contiguous across
//! pauses and source changes, and video resumes only on a keyframe.

/// What to do with one incoming packet for one subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Write it with this extended sequence number and RTP timestamp.
    Write {
        /// Outgoing extended sequence number.
        seq: u64,
        /// Outgoing RTP timestamp.
        time: u32,
    },
    /// Drop it: video is waiting for a keyframe.
    WaitKeyframe,
    /// Drop it: a reordered packet from before the point where the run was re-based. Its
    /// outgoing number would repeat one already written (and it may date from a pause).
    Stale,
}

/// Rewrites one publisher stream for one subscriber.
///
/// Sequence numbers are `incoming + offset`; the offset is re-based whenever packets were
/// withheld (a pause, a keyframe wait) or the source changed, so the subscriber sees a
/// contiguous run, while network loss upstream still shows as a gap it can NACK.
#[derive(Debug, Clone)]
pub struct Rewriter {
    video: bool,
    clock_rate: u32,
    offset: i64,
    time_offset: u32,
    source: Option<u32>,
    last_out: Option<(u64, u32)>,
    rebase: bool,
    waiting_keyframe: bool,
    /// The incoming sequence number the current run was re-based on.
    floor: Option<u64>,
    /// The source before the last change: its late packets are stale, not a new change.
    previous_source: Option<u32>,
    /// Every source's timestamps are already on one timeline (simulcast layers, aligned by
    /// [`crate::layers`], which also passes only the selected source's packets): a source
    /// change keeps the timestamp offset, and any earlier source may come back.
    aligned: bool,
}

/// How far behind the re-base point a packet may be and still count as reordered (stale);
/// further back, the publisher restarted its numbering and the run is re-based.
const REORDER_WINDOW: u64 = 512;

/// First outgoing sequence number: low, so str0m needs no out-of-band rollover counter.
const FIRST_SEQ: u64 = 1;

impl Rewriter {
    /// A rewriter for a new subscription; video starts waiting for a keyframe.
    pub fn new(video: bool, clock_rate: u32) -> Self {
        Rewriter {
            video,
            clock_rate,
            offset: 0,
            time_offset: 0,
            source: None,
            last_out: None,
            rebase: true,
            waiting_keyframe: video,
            floor: None,
            previous_source: None,
            aligned: false,
        }
    }

    /// A rewriter for a simulcast track, whose sources (layers) come on one timeline.
    pub fn aligned(clock_rate: u32) -> Self {
        Rewriter { aligned: true, ..Rewriter::new(true, clock_rate) }
    }

    /// Packets are being withheld from now on (denied pair). The next written packet is
    /// re-based to follow the last one written, and video waits for a keyframe.
    pub fn pause(&mut self) {
        self.rebase = true;
        if self.video {
            self.waiting_keyframe = true;
        }
    }

    /// Whether video is waiting for a keyframe before anything is written.
    pub fn waiting_keyframe(&self) -> bool {
        self.waiting_keyframe
    }

    /// Decide for one packet: `ssrc` and `seq` (extended) and `time` are the publisher's,
    /// `keyframe` says whether this packet starts a keyframe.
    pub fn next(&mut self, ssrc: u32, seq: u64, time: u32, keyframe: bool) -> Verdict {
        if !self.aligned && self.previous_source == Some(ssrc) && self.source != Some(ssrc) {
            return Verdict::Stale;
        }
        let source_changed = self.source.is_some_and(|s| s != ssrc);
        if source_changed {
            self.previous_source = self.source;
            self.rebase = true;
            if self.video {
                self.waiting_keyframe = true;
            }
        }
        match self.floor {
            Some(f) if !source_changed && !self.rebase && seq < f => {
                if f - seq <= REORDER_WINDOW {
                    return Verdict::Stale;
                }
                self.rebase = true;
            }
            _ => {}
        }
        if self.waiting_keyframe {
            if !keyframe {
                self.rebase = true;
                return Verdict::WaitKeyframe;
            }
            self.waiting_keyframe = false;
        }
        if self.rebase || self.source.is_none() {
            let (next_seq, next_time) = match self.last_out {
                // A small step keeps the receiver's jitter buffer sane across a source change.
                Some((s, t)) => (s + 1, t.wrapping_add(self.clock_rate / 50)),
                None => (FIRST_SEQ, time),
            };
            self.offset = next_seq as i64 - seq as i64;
            self.floor = Some(seq);
            if (source_changed && !self.aligned) || self.source.is_none() {
                self.time_offset = next_time.wrapping_sub(time);
            }
            // An aligned source may start on the very moment the last one was at (a layer's
            // keyframe of a frame already written from another layer): a new frame must not
            // share the timestamp of the last, so it goes a tick later.
            if let (true, Some((_, last))) = (self.aligned && source_changed, self.last_out) {
                let ahead = time.wrapping_add(self.time_offset).wrapping_sub(last) as i32;
                if ahead <= 0 {
                    self.time_offset = self.time_offset.wrapping_add((1 - ahead) as u32);
                }
            }
            self.rebase = false;
        }
        self.source = Some(ssrc);
        let out_seq = (seq as i64 + self.offset).max(0) as u64;
        let out_time = time.wrapping_add(self.time_offset);
        // Late (reordered) packets keep their relative place; only advance the high mark.
        match self.last_out {
            Some((s, _)) if s >= out_seq => {}
            _ => self.last_out = Some((out_seq, out_time)),
        }
        Verdict::Write { seq: out_seq, time: out_time }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs(r: &mut Rewriter, ssrc: u32, range: std::ops::Range<u64>, key_at: Option<u64>) -> Vec<Option<u64>> {
        range
            .map(|s| match r.next(ssrc, s, (s * 3000) as u32, Some(s) == key_at) {
                Verdict::Write { seq, .. } => Some(seq),
                Verdict::WaitKeyframe | Verdict::Stale => None,
            })
            .collect()
    }

    #[test]
    fn audio_starts_at_first_seq_and_keeps_gaps_from_loss() {
        let mut r = Rewriter::new(false, 48_000);
        assert_eq!(r.next(7, 5000, 100, false), Verdict::Write { seq: 1, time: 100 });
        assert_eq!(r.next(7, 5001, 1060, false), Verdict::Write { seq: 2, time: 1060 });
        // 5002 lost upstream: the subscriber sees the gap too and may NACK it.
        assert_eq!(r.next(7, 5003, 2980, false), Verdict::Write { seq: 4, time: 2980 });
    }

    #[test]
    fn video_waits_for_keyframe_then_is_contiguous_after_pause() {
        let mut r = Rewriter::new(true, 90_000);
        assert_eq!(seqs(&mut r, 1, 10..14, Some(12)), vec![None, None, Some(1), Some(2)]);
        r.pause();
        // Paused: the forwarder writes nothing for 14..20. Resume: waits for a keyframe at 22.
        assert_eq!(seqs(&mut r, 1, 20..25, Some(22)), vec![None, None, Some(3), Some(4), Some(5)]);
    }

    #[test]
    fn a_late_packet_from_before_the_resume_point_is_dropped() {
        let mut r = Rewriter::new(true, 90_000);
        assert_eq!(seqs(&mut r, 1, 10..12, Some(10)), vec![Some(1), Some(2)]);
        r.pause();
        assert_eq!(seqs(&mut r, 1, 20..24, Some(22)), vec![None, None, Some(3), Some(4)]);
        // 21 arrives late: written, it would take number 2 a second time.
        assert_eq!(r.next(1, 21, 21 * 3000, false), Verdict::Stale);
        // Reordering inside the run keeps its place.
        assert_eq!(seqs(&mut r, 1, 25..26, None), vec![Some(6)]);
        assert_eq!(r.next(1, 24, 24 * 3000, false), Verdict::Write { seq: 5, time: (24 * 3000) as u32 });

        let mut a = Rewriter::new(false, 48_000);
        assert_eq!(a.next(1, 10_100, 0, false), Verdict::Write { seq: 1, time: 0 });
        a.pause();
        assert_eq!(a.next(1, 10_150, 960, false), Verdict::Write { seq: 2, time: 960 });
        assert_eq!(a.next(1, 10_149, 0, false), Verdict::Stale);
        // Far behind: the publisher restarted its numbering; the run goes on from there.
        assert_eq!(a.next(1, 10_151, 1920, false), Verdict::Write { seq: 3, time: 1920 });
        assert_eq!(a.next(1, 7, 2880, false), Verdict::Write { seq: 4, time: 2880 });
        assert_eq!(a.next(1, 8, 3840, false), Verdict::Write { seq: 5, time: 3840 });
    }

    #[test]
    fn a_late_packet_of_the_previous_source_is_stale_not_a_change() {
        let mut r = Rewriter::new(true, 90_000);
        assert_eq!(seqs(&mut r, 1, 0..2, Some(0)), vec![Some(1), Some(2)]);
        assert_eq!(seqs(&mut r, 2, 50..52, Some(50)), vec![Some(3), Some(4)]);
        assert_eq!(r.next(1, 2, 6000, false), Verdict::Stale);
        assert!(!r.waiting_keyframe(), "no freeze");
        assert_eq!(seqs(&mut r, 2, 52..53, None), vec![Some(5)]);
    }

    #[test]
    fn source_change_rebases_and_waits_for_keyframe() {
        let mut r = Rewriter::new(true, 90_000);
        assert_eq!(seqs(&mut r, 1, 0..3, Some(0)), vec![Some(1), Some(2), Some(3)]);
        let out = seqs(&mut r, 2, 900..903, Some(901));
        assert_eq!(out, vec![None, Some(4), Some(5)]);
    }

    #[test]
    fn aligned_sources_keep_the_timeline_and_may_come_back() {
        let mut r = Rewriter::aligned(90_000);
        assert_eq!(seqs(&mut r, 1, 100..103, Some(100)), vec![Some(1), Some(2), Some(3)]);
        // Layer 2 from its keyframe: numbers follow on, its (already aligned) times are kept.
        assert_eq!(r.next(2, 7000, 103 * 3000, true), Verdict::Write { seq: 4, time: 103 * 3000 });
        assert_eq!(r.next(2, 7001, 104 * 3000, false), Verdict::Write { seq: 5, time: 104 * 3000 });
        // And back to layer 1, which a plain rewriter would take for a straggler.
        assert_eq!(r.next(1, 105, 105 * 3000, true), Verdict::Write { seq: 6, time: 105 * 3000 });
        assert_eq!(r.next(1, 106, 106 * 3000, false), Verdict::Write { seq: 7, time: 106 * 3000 });
        // A layer's keyframe of the moment already written goes one tick later, and its run
        // keeps that step.
        assert_eq!(r.next(2, 7010, 106 * 3000, true), Verdict::Write { seq: 8, time: 106 * 3000 + 1 });
        assert_eq!(r.next(2, 7011, 107 * 3000, false), Verdict::Write { seq: 9, time: 107 * 3000 + 1 });
    }

    #[test]
    fn timestamps_follow_the_source_after_pause() {
        let mut r = Rewriter::new(false, 48_000);
        assert_eq!(r.next(1, 10, 1000, false), Verdict::Write { seq: 1, time: 1000 });
        r.pause();
        // After a pause the same source keeps its own timeline (wall time passed).
        assert_eq!(r.next(1, 60, 49_000, false), Verdict::Write { seq: 2, time: 49_000 });
    }

    #[test]
    fn reordered_packet_keeps_its_place() {
        let mut r = Rewriter::new(false, 48_000);
        r.next(1, 100, 0, false);
        r.next(1, 102, 1920, false);
        assert_eq!(r.next(1, 101, 960, false), Verdict::Write { seq: 2, time: 960 });
        assert_eq!(r.next(1, 103, 2880, false), Verdict::Write { seq: 4, time: 2880 });
    }
}
