//! Fitting a subscriber's simulcast video into its bandwidth budget: what each layer of a
//! published track costs (measured as it arrives), and which layer of each track one subscriber
//! can afford.
//!
//! The budget is the lower of the one handed in (`RoomMedia::set_budget`) and the one each
//! subscriber's bandwidth estimate leaves (`crate::estimate`, `worker/bwe.rs`).

use std::time::{Duration, Instant};

use crate::layers::MAX_LAYERS;

/// How long a layer's bitrate is measured over.
pub const RATE_WINDOW: Duration = Duration::from_millis(500);

/// The bitrate of one stream, from the payload bytes of its last full window.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rate {
    start: Option<Instant>,
    bytes: u64,
    bps: u64,
}

impl Rate {
    /// `bytes` of payload arrived at `now`.
    pub fn observe(&mut self, now: Instant, bytes: usize) {
        let start = *self.start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= RATE_WINDOW {
            self.bps = (u128::from(self.bytes) * 8 * 1_000_000_000 / elapsed.as_nanos().max(1)) as u64;
            self.bytes = 0;
            self.start = Some(now);
        }
        self.bytes = self.bytes.saturating_add(bytes as u64);
    }

    /// Bits per second over the last full window (0 before one passed).
    pub fn bps(&self) -> u64 {
        self.bps
    }
}

/// One simulcast track a subscriber receives, as the allocator sees it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Demand {
    /// The layers flowing, one bit each.
    pub flowing: u8,
    /// Each layer's bitrate.
    pub rates: [u64; MAX_LAYERS],
    /// The highest layer allowed otherwise (the room's cap), if any.
    pub cap: Option<u8>,
}

/// The highest layer each track may get within `budget` bits per second: every track starts on
/// its lowest flowing layer (a subscriber keeps some video of everyone it may see, whatever the
/// budget), then, round after round, each track in turn moves up one layer while the total still
/// fits — so the tracks rise evenly rather than one taking it all. `None` for a track with no
/// layer flowing.
pub fn allocate(budget: u64, demands: &[Demand]) -> Vec<Option<u8>> {
    let flowing = |d: &Demand, l: u8| d.flowing & (1 << l) != 0;
    let mut chosen: Vec<Option<u8>> = demands.iter().map(|d| (0..MAX_LAYERS as u8).find(|l| flowing(d, *l))).collect();
    let rate = |d: &Demand, l: u8| d.rates[l as usize];
    let mut spent: u64 = demands.iter().zip(&chosen).filter_map(|(d, c)| c.map(|l| rate(d, l))).sum();
    loop {
        let mut raised = false;
        for (d, c) in demands.iter().zip(chosen.iter_mut()) {
            let Some(current) = *c else { continue };
            let next = (current + 1..MAX_LAYERS as u8).find(|l| flowing(d, *l) && d.cap.is_none_or(|cap| *l <= cap));
            let Some(next) = next else { continue };
            let cost = rate(d, next).saturating_sub(rate(d, current));
            if spent.saturating_add(cost) <= budget {
                *c = Some(next);
                spent += cost;
                raised = true;
            }
        }
        if !raised {
            return chosen;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(flowing: u8, rates: [u64; 3]) -> Demand {
        Demand { flowing, rates, cap: None }
    }

    #[test]
    fn a_rate_is_measured_over_whole_windows() {
        let t0 = Instant::now();
        let mut r = Rate::default();
        for i in 0..50u32 {
            r.observe(t0 + Duration::from_millis(u64::from(i) * 10), 125);
        }
        assert_eq!(r.bps(), 0, "no window has passed");
        r.observe(t0 + RATE_WINDOW, 125);
        // 50 packets of 125 bytes in 500 ms: 100 kbit/s.
        assert_eq!(r.bps(), 100_000);
        r.observe(t0 + RATE_WINDOW * 3, 0);
        assert_eq!(r.bps(), 125 * 8 * 1000 / 1000, "one packet over the next (long) window");
    }

    #[test]
    fn tracks_rise_evenly_within_the_budget() {
        let t = track(0b111, [100, 300, 1000]);
        assert_eq!(allocate(0, &[t, t]), [Some(0), Some(0)], "the lowest layer whatever the budget");
        assert_eq!(allocate(400, &[t, t]), [Some(1), Some(0)]);
        assert_eq!(allocate(600, &[t, t]), [Some(1), Some(1)]);
        assert_eq!(allocate(1299, &[t, t]), [Some(1), Some(1)]);
        assert_eq!(allocate(1300, &[t, t]), [Some(2), Some(1)]);
        assert_eq!(allocate(u64::MAX, &[t, t]), [Some(2), Some(2)]);
    }

    #[test]
    fn only_flowing_layers_under_the_cap_are_given() {
        let gap = track(0b101, [100, 300, 1000]);
        assert_eq!(allocate(5000, &[gap]), [Some(2)], "the missing middle layer is skipped");
        let capped = Demand { cap: Some(0), ..track(0b111, [100, 300, 1000]) };
        assert_eq!(allocate(5000, &[capped]), [Some(0)]);
        assert_eq!(allocate(5000, &[track(0, [0; 3])]), [None]);
        let high_only = track(0b100, [0, 0, 700]);
        assert_eq!(allocate(10, &[high_only]), [Some(2)]);
        assert!(allocate(10, &[]).is_empty());
    }
}
