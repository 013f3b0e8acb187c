//! Simulcast: which of a published video track's layers one subscriber receives.
//!
//! A simulcast publisher sends one video track as up to [`MAX_LAYERS`] streams (layers, told
//! apart by their rid), each with its own SSRC, sequence numbers, RTP timestamps and VP8 picture
//! ids. A subscriber receives one of them on its one track. [`LayerSelector`] holds, per
//! subscriber track, the layer being forwarded (selected) and the layer wanted (target):
//!
//! - packets of other layers are dropped before the rewriter;
//! - the switch to the target happens only on a keyframe of the target layer;
//! - timestamps of every layer are put on one timeline from the publisher's sender reports
//!   (SR: the NTP time of an RTP time, per stream), so a switch keeps the subscriber's clock
//!   running; a layer whose SR is unknown is refused until one arrives (the very first layer
//!   selected needs none: there is nothing yet to align it with; and a selected layer that
//!   stopped before its first SR, which will never send one, is left by arrival time);
//! - VP8 picture ids and TL0PICIDX continue across a switch ([`PictureIds`]).
//!
//! Sequence numbers stay contiguous through the [`Rewriter`](crate::rewrite::Rewriter), which
//! sees a switch as a change of source on an already aligned timeline.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use str0m::rtp::{Vp8Descriptor, Vp8Patch};

/// Most layers one published track may have; further rids of an offer are ignored.
pub const MAX_LAYERS: usize = 3;

/// The clock of simulcast (video) timestamps.
const CLOCK_RATE: u32 = 90_000;

/// One stream's sender report: the RTP time that corresponds to an NTP (wall clock) time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderClock {
    /// The NTP time in ticks of the stream's clock since the UNIX epoch.
    pub ntp_ticks: u64,
    /// The RTP time at that moment.
    pub rtp: u32,
}

impl SenderClock {
    /// The mapping of an SR whose NTP time is `ntp` and RTP time `rtp`, for a clock of
    /// `clock_rate` Hz. `None` for an NTP time before 1970 (a broken sender).
    pub fn new(ntp: SystemTime, rtp: u32, clock_rate: u32) -> Option<SenderClock> {
        let since = ntp.duration_since(UNIX_EPOCH).ok()?;
        let ticks = since.as_nanos().checked_mul(u128::from(clock_rate))? / 1_000_000_000;
        Some(SenderClock { ntp_ticks: ticks as u64, rtp })
    }
}

/// The layer a subscriber should get: the highest flowing layer at or below `cap` (no cap: the
/// highest flowing), else the lowest flowing one; `None` when no layer flows. `flowing` has bit
/// `i` set for each layer `i` that flows. The cap is the lowest of the room's, the tile's and
/// what the subscriber's bandwidth affords ([`LayerSelector::aim`]).
pub fn choose(flowing: u8, cap: Option<u8>) -> Option<u8> {
    let layers = (0..MAX_LAYERS as u8).filter(|l| flowing & (1 << l) != 0);
    let lowest = layers.clone().next();
    layers.rev().find(|l| cap.is_none_or(|c| *l <= c)).or(lowest)
}

/// The lower of two optional limits (`None` is no limit).
fn lower(a: Option<u8>, b: Option<u8>) -> Option<u8> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The layer a tile `height` device pixels tall needs: the lowest whose keyframes declare at
/// least that height (`heights` by layer, lowest first; `None` where no keyframe was seen).
/// `None` (no limit) when no known layer is that tall — the tallest then serves — or no size
/// is known yet.
pub fn layer_for_tile(heights: &[Option<u16>], height: u16) -> Option<u8> {
    heights.iter().position(|h| h.is_some_and(|h| h >= height)).map(|l| l as u8)
}

/// What one subscriber gets of one publisher's simulcast video (see `RoomMedia::layers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerState {
    /// The publisher's layers by rid, lowest first (as its offer listed them), and whether each
    /// flows now.
    pub layers: Vec<(String, bool)>,
    /// The layer being forwarded (an index into `layers`).
    pub selected: Option<u8>,
    /// The layer wanted: the next keyframe of it switches.
    pub target: Option<u8>,
    /// The highest layer allowed (`RoomMedia::prefer_layer`), if any.
    pub cap: Option<u8>,
    /// The highest layer the subscriber's bandwidth affords (its estimate, or `RoomMedia::set_budget`),
    /// when that limits this track.
    pub fits: Option<u8>,
    /// The layer the subscriber's tile needs (`RoomMedia::set_tiles`), if it said its size and
    /// a layer that tall is known.
    pub tile: Option<u8>,
    /// Each layer's picture size, from its latest keyframe.
    pub sizes: Vec<Option<(u16, u16)>>,
}

/// What the selector makes of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// Forward it with this RTP timestamp (on the track's timeline); `switched` when it is the
    /// keyframe that starts a new layer (or a new stream of the same layer).
    Forward {
        /// The packet's timestamp moved onto the track's timeline.
        time: u32,
        /// Whether this packet starts a new source.
        switched: bool,
    },
    /// Drop it: it belongs to a layer this subscriber does not get now.
    OtherLayer,
    /// Drop it: it is of the target layer, which starts only on its keyframe.
    WaitingLayer,
    /// Drop it: it is of the target layer, but the sender report of the target or of the
    /// selected stream is not known yet, so their timestamps cannot be aligned.
    NoSenderReport,
}

/// The stream being forwarded.
#[derive(Debug, Clone, Copy)]
struct Source {
    layer: u8,
    ssrc: u32,
    /// Its latest sender report.
    clock: Option<SenderClock>,
    /// Added to its RTP timestamps to put them on the track's timeline.
    offset: u32,
}

/// Per subscriber track of a simulcast publisher: the selected and the target layer.
#[derive(Debug, Clone, Default)]
pub struct LayerSelector {
    current: Option<Source>,
    target: Option<u8>,
    /// The highest layer this subscriber should get (set through the API), if any.
    cap: Option<u8>,
    /// The highest layer its bandwidth budget affords (`crate::allocate`), if it has one.
    fits: Option<u8>,
    /// The smallest layer at least as tall as the subscriber shows the video ([`layer_for_tile`]).
    tile: Option<u8>,
    /// The layers flowing when it last aimed.
    flowing: u8,
    /// The last forwarded packet's time on the track's timeline, and when it arrived.
    last: Option<(u32, Instant)>,
    pictures: PictureIds,
}

impl LayerSelector {
    /// The layer being forwarded, if any.
    pub fn selected(&self) -> Option<u8> {
        self.current.map(|c| c.layer)
    }

    /// The layer wanted.
    pub fn target(&self) -> Option<u8> {
        self.target
    }

    /// The highest layer this subscriber should get.
    pub fn cap(&self) -> Option<u8> {
        self.cap
    }

    /// Limit the layers this subscriber gets (`None`: any).
    pub fn set_cap(&mut self, cap: Option<u8>) {
        self.cap = cap;
    }

    /// The layer the subscriber's tile needs, if it said its size.
    pub fn tile(&self) -> Option<u8> {
        self.tile
    }

    /// Limit the layers to what the subscriber's tile needs (`None`: no size known).
    pub fn set_tile(&mut self, tile: Option<u8>) {
        self.tile = tile;
    }

    /// The highest layer allowed before any budget: the lower of the room's cap and the tile's.
    pub fn limit(&self) -> Option<u8> {
        lower(self.cap, self.tile)
    }

    /// The highest layer the subscriber's budget affords, if it has one.
    pub fn fits(&self) -> Option<u8> {
        self.fits
    }

    /// Limit the layers to what the subscriber's budget affords (`None`: no budget).
    pub fn set_fits(&mut self, fits: Option<u8>) {
        self.fits = fits;
    }

    /// Aim at the layer [`choose`] picks from the layers flowing now, under the lowest of the
    /// room's cap, the tile's and the budget's.
    pub fn aim(&mut self, flowing: u8) {
        self.flowing = flowing;
        self.target = choose(flowing, lower(self.limit(), self.fits));
    }

    /// The layer whose keyframe this subscriber waits for: the target while a switch is due,
    /// else the selected layer.
    pub fn wanted(&self) -> Option<u8> {
        self.target.or(self.selected())
    }

    /// Decide for one packet of `layer`, from stream `ssrc`, with RTP time `time`, whether it
    /// starts a keyframe, and the latest sender report of its stream, arrived at `now`.
    pub fn pick(
        &mut self,
        now: Instant,
        layer: u8,
        ssrc: u32,
        time: u32,
        keyframe: bool,
        clock: Option<SenderClock>,
    ) -> Pick {
        if let Some(c) = self.current.as_mut().filter(|c| c.layer == layer && c.ssrc == ssrc) {
            if clock.is_some() {
                c.clock = clock;
            }
            // The selected layer goes on until the target's keyframe arrives.
            let aligned = time.wrapping_add(c.offset);
            self.last = Some((aligned, now));
            return Pick::Forward { time: aligned, switched: false };
        }
        // A new stream of the selected layer (a sender restarted it) is switched to like a layer.
        let candidate = self.target == Some(layer) || self.selected() == Some(layer);
        if !candidate {
            return Pick::OtherLayer;
        }
        let offset = match self.current {
            None => 0,
            Some(c) => match (c.clock, clock, self.last) {
                (Some(from), Some(to), _) => aligned_offset(c.offset, from, to),
                // The selected stream stopped before its first sender report, so none will come:
                // go on from its last packet by the time that has passed since it arrived.
                (None, Some(_), Some((last, at))) if self.flowing & (1 << c.layer) == 0 => {
                    let ticks = now.saturating_duration_since(at).as_micros() * u128::from(CLOCK_RATE) / 1_000_000;
                    last.wrapping_add(ticks as u32).wrapping_sub(time)
                }
                // Either report will come (its stream flows): until then the switch waits.
                _ => return Pick::NoSenderReport,
            },
        };
        if !keyframe {
            return Pick::WaitingLayer;
        }
        self.current = Some(Source { layer, ssrc, clock, offset });
        self.pictures.switch();
        let aligned = time.wrapping_add(offset);
        self.last = Some((aligned, now));
        Pick::Forward { time: aligned, switched: true }
    }

    /// The VP8 descriptor rewrite that keeps picture ids contiguous for a forwarded packet.
    pub fn picture_patch(&mut self, payload: &[u8]) -> Option<Vp8Patch> {
        self.pictures.patch(payload)
    }
}

/// The offset for a stream whose sender clock is `to`, such that its timestamps land on the same
/// timeline as those of the stream with clock `from` and offset `from_offset`: at any wall time
/// both give the same timestamp on the track's timeline.
fn aligned_offset(from_offset: u32, from: SenderClock, to: SenderClock) -> u32 {
    // At wall time w: t_from = from.rtp + (w - from.ntp), t_to = to.rtp + (w - to.ntp), and
    // t_to + offset = t_from + from_offset. Wrapping arithmetic: only differences matter.
    let wall = to.ntp_ticks.wrapping_sub(from.ntp_ticks) as u32;
    from_offset.wrapping_add(from.rtp).wrapping_sub(to.rtp).wrapping_add(wall)
}

/// VP8 picture id and TL0PICIDX continuity across switches: each layer numbers its pictures on
/// its own, so after a switch the numbers are re-based to follow the last ones written.
#[derive(Debug, Clone, Copy, Default)]
pub struct PictureIds {
    /// Added to incoming picture ids (mod 2^15) and TL0PICIDX (mod 2^8).
    picture_offset: u16,
    tl0_offset: u8,
    /// The last picture id and TL0PICIDX written.
    last_picture: Option<u16>,
    last_tl0: Option<u8>,
    /// The next packet re-bases the offsets.
    rebase: bool,
}

const PICTURE_ID_MASK: u16 = 0x7fff;
const SHORT_PICTURE_ID_MASK: u16 = 0x7f;

impl PictureIds {
    /// A new source starts: its first packet continues the numbering.
    pub fn switch(&mut self) {
        self.rebase = true;
    }

    /// The patch for one packet, if its descriptor carries a picture id or TL0PICIDX that must
    /// change. A payload that does not parse is left alone (its receiver decides).
    pub fn patch(&mut self, payload: &[u8]) -> Option<Vp8Patch> {
        let descriptor = Vp8Descriptor::parse(payload).ok()?;
        let (picture, tl0) = (descriptor.picture_id(), descriptor.tl0_pic_idx());
        // A picture id is at byte 2; its M bit says 15 bits (else 7, wrapping at 128).
        let short = picture.is_some() && payload.get(2).is_some_and(|b| b & 0x80 == 0);
        let (out_picture, out_tl0) = self.next(picture, tl0, short);
        if out_picture == picture && out_tl0 == tl0 {
            return None;
        }
        let mut builder = descriptor.patch();
        if let Some(p) = out_picture {
            builder = builder.picture_id(p);
        }
        if let Some(t) = out_tl0 {
            builder = builder.tl0_pic_idx(t);
        }
        builder.build().ok()
    }

    /// The picture id and TL0PICIDX to write for a packet that carries these (`short`: a 7-bit
    /// picture id).
    pub fn next(&mut self, picture: Option<u16>, tl0: Option<u8>, short: bool) -> (Option<u16>, Option<u8>) {
        let mask = if short { SHORT_PICTURE_ID_MASK } else { PICTURE_ID_MASK };
        if self.rebase {
            self.rebase = false;
            if let (Some(p), Some(last)) = (picture, self.last_picture) {
                self.picture_offset = last.wrapping_add(1).wrapping_sub(p) & PICTURE_ID_MASK;
            }
            if let (Some(t), Some(last)) = (tl0, self.last_tl0) {
                self.tl0_offset = last.wrapping_add(1).wrapping_sub(t);
            }
        }
        let out_picture = picture.map(|p| p.wrapping_add(self.picture_offset) & mask);
        let out_tl0 = tl0.map(|t| t.wrapping_add(self.tl0_offset));
        self.last_picture = out_picture.or(self.last_picture);
        self.last_tl0 = out_tl0.or(self.last_tl0);
        (out_picture, out_tl0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const HZ: u32 = 90_000;

    /// One fixed instant for tests where arrival times do not matter.
    fn epoch() -> Instant {
        static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *EPOCH.get_or_init(Instant::now)
    }

    /// A sender report taken at `wall_ms` (since some epoch) for a stream whose timestamps were
    /// `base` at wall time 0.
    fn sr(wall_ms: u64, base: u32) -> SenderClock {
        let ntp = UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_millis(wall_ms);
        SenderClock::new(ntp, base.wrapping_add((wall_ms * 90) as u32), HZ).unwrap()
    }

    /// The RTP time of a stream with base `base` at wall time `ms`.
    fn at(base: u32, ms: u64) -> u32 {
        base.wrapping_add((ms * 90) as u32)
    }

    #[test]
    fn the_target_is_the_highest_flowing_layer_under_the_cap() {
        assert_eq!(choose(0b000, None), None);
        assert_eq!(choose(0b111, None), Some(2));
        assert_eq!(choose(0b011, None), Some(1));
        assert_eq!(choose(0b101, Some(1)), Some(0));
        assert_eq!(choose(0b110, Some(0)), Some(1), "nothing under the cap: the lowest flowing");
        assert_eq!(choose(0b111, Some(1)), Some(1));
        assert_eq!(choose(0xff, None), Some(2), "bits past the last layer mean nothing");
    }

    #[test]
    fn only_the_selected_layer_is_forwarded_and_the_first_starts_on_its_keyframe() {
        let mut s = LayerSelector::default();
        s.aim(0b111);
        assert_eq!(s.target(), Some(2));
        assert_eq!(s.pick(epoch(), 0, 10, 100, true, None), Pick::OtherLayer);
        assert_eq!(s.pick(epoch(), 2, 30, 300, false, None), Pick::WaitingLayer);
        // The first layer needs no sender report: there is nothing to align it with.
        assert_eq!(s.pick(epoch(), 2, 30, 400, true, None), Pick::Forward { time: 400, switched: true });
        assert_eq!(s.pick(epoch(), 2, 30, 500, false, None), Pick::Forward { time: 500, switched: false });
        assert_eq!(s.pick(epoch(), 1, 20, 500, true, None), Pick::OtherLayer);
        assert_eq!(s.selected(), Some(2));
    }

    #[test]
    fn a_switch_waits_for_the_targets_keyframe_and_keeps_the_timeline() {
        let (low, high) = (1_000_000u32, 4_000_000_000u32);
        let mut s = LayerSelector::default();
        s.aim(0b001);
        assert_eq!(
            s.pick(epoch(), 0, 1, at(low, 0), true, Some(sr(0, low))),
            Pick::Forward { time: at(low, 0), switched: true }
        );
        // Layer 2 starts flowing: it becomes the target, layer 0 goes on until 2's keyframe.
        s.aim(0b101);
        assert_eq!(s.target(), Some(2));
        assert_eq!(s.pick(epoch(), 2, 3, at(high, 33), false, Some(sr(10, high))), Pick::WaitingLayer);
        assert_eq!(
            s.pick(epoch(), 0, 1, at(low, 33), false, None),
            Pick::Forward { time: at(low, 33), switched: false }
        );
        // The keyframe at wall time 66 ms lands where layer 0's timeline is at 66 ms.
        assert_eq!(
            s.pick(epoch(), 2, 3, at(high, 66), true, Some(sr(10, high))),
            Pick::Forward { time: at(low, 66), switched: true }
        );
        assert_eq!(s.pick(epoch(), 0, 1, at(low, 99), false, None), Pick::OtherLayer);
        assert_eq!(
            s.pick(epoch(), 2, 3, at(high, 99), false, None),
            Pick::Forward { time: at(low, 99), switched: false }
        );
        // Back down (capped): still on layer 0's timeline, whatever the SR's moment.
        s.set_cap(Some(0));
        s.aim(0b101);
        assert_eq!(
            s.pick(epoch(), 0, 1, at(low, 132), true, Some(sr(120, low))),
            Pick::Forward { time: at(low, 132), switched: true }
        );
        assert_eq!(s.selected(), Some(0));
    }

    #[test]
    fn the_budget_and_the_cap_both_limit_the_target() {
        let mut s = LayerSelector::default();
        s.set_fits(Some(1));
        s.aim(0b111);
        assert_eq!(s.target(), Some(1));
        s.set_cap(Some(0));
        s.aim(0b111);
        assert_eq!(s.target(), Some(0));
        s.set_fits(None);
        s.set_cap(None);
        s.aim(0b111);
        assert_eq!(s.target(), Some(2));
    }

    #[test]
    fn a_tile_needs_the_lowest_layer_at_least_as_tall() {
        let heights = [Some(120), Some(240), Some(480)];
        assert_eq!(layer_for_tile(&heights, 90), Some(0));
        assert_eq!(layer_for_tile(&heights, 120), Some(0));
        assert_eq!(layer_for_tile(&heights, 121), Some(1));
        assert_eq!(layer_for_tile(&heights, 480), Some(2));
        assert_eq!(layer_for_tile(&heights, 1080), None, "taller than any layer: the tallest, no limit");
        assert_eq!(layer_for_tile(&[None, None, Some(480)], 100), Some(2), "sizes not seen yet are skipped");
        assert_eq!(layer_for_tile(&[None, None], 100), None);
        assert_eq!(layer_for_tile(&[], 100), None);
    }

    #[test]
    fn the_tile_limits_the_target_with_the_cap_and_the_budget() {
        let mut s = LayerSelector::default();
        s.set_tile(Some(1));
        s.aim(0b111);
        assert_eq!((s.target(), s.limit()), (Some(1), Some(1)));
        s.set_cap(Some(0));
        s.aim(0b111);
        assert_eq!((s.target(), s.limit()), (Some(0), Some(0)), "the lower of cap and tile");
        s.set_cap(None);
        s.set_fits(Some(0));
        s.aim(0b111);
        assert_eq!(s.target(), Some(0), "the budget lower still");
        s.set_fits(None);
        s.set_tile(None);
        s.aim(0b111);
        assert_eq!(s.target(), Some(2));
        s.set_tile(Some(1));
        s.aim(0b101);
        assert_eq!(s.target(), Some(0), "the tile's layer not flowing: the highest flowing under it");
    }

    #[test]
    fn a_layer_without_a_sender_report_is_refused() {
        let (low, high) = (5u32, 77_777u32);
        let mut s = LayerSelector::default();
        s.aim(0b001);
        s.pick(epoch(), 0, 1, at(low, 0), true, None);
        s.aim(0b101);
        // Neither stream's SR known: no switch, and no keyframe is asked for in vain.
        assert_eq!(s.pick(epoch(), 2, 3, at(high, 10), true, None), Pick::NoSenderReport);
        assert_eq!(s.pick(epoch(), 2, 3, at(high, 20), true, Some(sr(0, high))), Pick::NoSenderReport);
        // The selected stream's SR arrives with its packets; then the target's keyframe switches.
        s.pick(epoch(), 0, 1, at(low, 30), false, Some(sr(25, low)));
        assert_eq!(s.pick(epoch(), 2, 3, at(high, 40), false, Some(sr(0, high))), Pick::WaitingLayer);
        assert_eq!(
            s.pick(epoch(), 2, 3, at(high, 50), true, Some(sr(0, high))),
            Pick::Forward { time: at(low, 50), switched: true }
        );
    }

    #[test]
    fn a_layer_that_stopped_before_its_first_report_is_left_by_arrival_time() {
        let (low, high) = (1_000u32, 2_000_000u32);
        let t0 = epoch();
        let mut s = LayerSelector::default();
        s.aim(0b100);
        // Started on the top layer before any sender report.
        assert_eq!(s.pick(t0, 2, 3, at(high, 0), true, None), Pick::Forward { time: at(high, 0), switched: true });
        s.aim(0b110);
        // While it flows, its report will come: the switch waits for it.
        let later = t0 + Duration::from_millis(40);
        assert_eq!(s.pick(later, 1, 2, at(low, 40), true, Some(sr(0, low))), Pick::OtherLayer, "the top is the target");
        // It stops before sending one: the middle layer takes over, timed by arrival.
        s.aim(0b010);
        let then = t0 + Duration::from_millis(1500);
        assert_eq!(
            s.pick(then, 1, 2, at(low, 1500), true, Some(sr(0, low))),
            Pick::Forward { time: at(high, 1500), switched: true }
        );
        // A target without a report of its own is still refused.
        let mut s = LayerSelector::default();
        s.aim(0b100);
        s.pick(t0, 2, 3, at(high, 0), true, None);
        s.aim(0b010);
        assert_eq!(s.pick(then, 1, 2, at(low, 1500), true, None), Pick::NoSenderReport);
    }

    #[test]
    fn a_restarted_stream_of_the_selected_layer_is_switched_to_on_its_keyframe() {
        let (old, new) = (100u32, 9_000_000u32);
        let mut s = LayerSelector::default();
        s.aim(0b010);
        s.pick(epoch(), 1, 7, at(old, 0), true, Some(sr(0, old)));
        assert_eq!(s.pick(epoch(), 1, 8, at(new, 40), false, Some(sr(30, new))), Pick::WaitingLayer);
        assert_eq!(
            s.pick(epoch(), 1, 8, at(new, 80), true, Some(sr(30, new))),
            Pick::Forward { time: at(old, 80), switched: true }
        );
        // The old stream's stragglers are not forwarded (only its keyframe could take it back).
        assert!(!matches!(s.pick(epoch(), 1, 7, at(old, 90), false, None), Pick::Forward { .. }));
        assert_eq!(
            s.pick(epoch(), 1, 8, at(new, 100), false, None),
            Pick::Forward { time: at(old, 100), switched: false }
        );
    }

    #[test]
    fn timestamps_wrap_on_the_track_timeline() {
        let (a, b) = (u32::MAX - 900, 3u32);
        let mut s = LayerSelector::default();
        s.aim(0b001);
        s.pick(epoch(), 0, 1, at(a, 0), true, Some(sr(0, a)));
        s.aim(0b011);
        assert_eq!(
            s.pick(epoch(), 1, 2, at(b, 20), true, Some(sr(5, b))),
            Pick::Forward { time: at(a, 20), switched: true }
        );
    }

    /// A VP8 payload with an extended descriptor: a 15-bit picture id and a TL0PICIDX.
    fn vp8(picture: u16, tl0: u8, key: bool) -> Vec<u8> {
        vec![0x90, 0xe0, 0x80 | (picture >> 8) as u8, picture as u8, tl0, 0x20, if key { 0x00 } else { 0x01 }, 0xaa]
    }

    #[test]
    fn picture_ids_continue_across_a_switch() {
        let mut ids = PictureIds::default();
        assert_eq!(ids.patch(&vp8(500, 7, true)), None, "the first source keeps its numbers");
        assert_eq!(ids.patch(&vp8(501, 8, false)), None);
        ids.switch();
        let key = vp8(32_700, 250, true);
        let expected = Vp8Descriptor::parse(&key).unwrap().patch().picture_id(502).tl0_pic_idx(9).build().unwrap();
        assert_eq!(ids.patch(&key), Some(expected), "the new layer's keyframe follows on");
        assert_eq!(ids.next(Some(32_767), Some(255), false), (Some(569), Some(14)));
        assert_eq!(ids.next(Some(0), Some(0), false), (Some(570), Some(15)), "the source's wrap keeps the run");
        // A descriptor without the fields has nothing to patch; garbage is left alone.
        assert_eq!(ids.patch(&[0x10, 0x00, 0x9d]), None);
        assert_eq!(ids.patch(&[]), None);
        assert_eq!(ids.patch(&[0x90]), None);
    }

    #[test]
    fn short_picture_ids_wrap_at_128() {
        let mut ids = PictureIds::default();
        ids.next(Some(100), None, true);
        ids.switch();
        assert_eq!(ids.next(Some(5), None, true), (Some(101), None));
        assert_eq!(ids.next(Some(31), None, true), (Some(127), None));
        assert_eq!(ids.next(Some(32), None, true), (Some(0), None));
    }

    /// Random packets, targets and payloads, as a hostile or broken publisher might send: no
    /// panic, and only a keyframe of the target (or of a new stream of the selected layer)
    /// ever changes what is forwarded.
    #[test]
    fn garbage_never_breaks_the_one_source_rule() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut s = LayerSelector::default();
        let (mut forwarded, mut switches) = (0, 0);
        for _ in 0..20_000 {
            let r = next();
            if r % 7 == 0 {
                s.aim((r >> 8) as u8);
            }
            if r % 31 == 0 {
                s.set_cap(Some((r >> 16) as u8 % 5).filter(|c| *c < 4));
            }
            let (layer, ssrc) = ((r >> 20) as u8 % 5, (r >> 24) as u32 % 4);
            let keyframe = r % 3 == 0;
            let clock = (r % 5 != 0).then(|| SenderClock { ntp_ticks: next(), rtp: next() as u32 });
            let before = s.current;
            match s.pick(epoch(), layer, ssrc, next() as u32, keyframe, clock) {
                Pick::Forward { switched: false, .. } => {
                    assert!(before.is_some_and(|c| c.layer == layer && c.ssrc == ssrc));
                    forwarded += 1;
                }
                Pick::Forward { switched: true, .. } => {
                    switches += 1;
                    assert!(keyframe);
                    assert!(s.target() == Some(layer) || before.is_some_and(|c| c.layer == layer));
                }
                _ => assert_eq!(s.current.map(|c| (c.layer, c.ssrc)), before.map(|c| (c.layer, c.ssrc))),
            }
            let len = (next() % 12) as usize;
            let payload: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = s.picture_patch(&payload);
        }
        assert!(forwarded > 100 && switches > 100, "the run exercised both ({forwarded}, {switches})");
        assert!(SenderClock::new(UNIX_EPOCH - Duration::from_secs(1), 0, HZ).is_none());
        assert!(SenderClock::new(UNIX_EPOCH + Duration::from_secs(1 << 40), 0, HZ).is_some());
    }
}
