//! Server-wide signaling statistics, kept in atomics so any room task can record and the
//! metrics endpoint can read without locks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A histogram of durations with fixed bucket bounds (Prometheus style, cumulative on read).
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_ns: AtomicU64,
    max_ns: AtomicU64,
    total: AtomicU64,
}

/// A snapshot of a [`Histogram`].
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// (upper bound in seconds, cumulative count), ascending; the +Inf bucket is `count`.
    pub buckets: Vec<(f64, u64)>,
    /// Sum of observations, seconds.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
    /// The largest observation, seconds (0 with none).
    pub max: f64,
}

impl Histogram {
    /// A histogram with these bucket upper bounds (seconds, ascending).
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
            total: AtomicU64::new(0),
        }
    }

    /// Record one duration.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = self.bounds.iter().position(|b| secs <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_ns.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
        self.max_ns.fetch_max(d.as_nanos() as u64, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    /// The cumulative buckets, sum and count.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = 0;
        let buckets = self
            .bounds
            .iter()
            .zip(&self.counts)
            .map(|(b, c)| {
                cumulative += c.load(Ordering::Relaxed);
                (*b, cumulative)
            })
            .collect();
        HistogramSnapshot {
            buckets,
            sum: self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
            count: self.total.load(Ordering::Relaxed),
            max: self.max_ns.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

/// Bucket bounds for fast server-side work (phase switches): 50 µs … 1 s.
pub const FAST_BUCKETS: &[f64] = &[0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0];
/// Bucket bounds for network round trips: 1 ms … 10 s.
pub const RTT_BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// Everything the signaling side counts.
#[derive(Debug)]
pub struct SignalingStats {
    /// Participants in all rooms now.
    pub participants: AtomicU64,
    /// Game phase changes.
    pub phase_switches: AtomicU64,
    /// Phase changes on a timer: from the timer firing to the new routes being applied by the
    /// media workers.
    pub phase_switch_apply: Histogram,
    /// Phase changes caused by a participant's input (the last vote, a start, a leave): from
    /// the room taking the input (for a join or leave: from the game having handled it) to
    /// the new routes being applied.
    pub phase_switch_apply_input: Histogram,
    /// WebSocket round trips (server Ping to client Pong).
    pub rtt: Histogram,
}

impl Default for SignalingStats {
    fn default() -> Self {
        SignalingStats {
            participants: AtomicU64::new(0),
            phase_switches: AtomicU64::new(0),
            phase_switch_apply: Histogram::new(FAST_BUCKETS),
            phase_switch_apply_input: Histogram::new(FAST_BUCKETS),
            rtt: Histogram::new(RTT_BUCKETS),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let h = Histogram::new(&[0.001, 0.01, 0.1]);
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_secs(3));
        let s = h.snapshot();
        assert_eq!(s.buckets, vec![(0.001, 1), (0.01, 3), (0.1, 3)]);
        assert_eq!(s.count, 4);
        assert!((s.sum - 3.0105).abs() < 1e-9, "{}", s.sum);
    }
}
