//! A fixed-resolution latency histogram: 10 µs buckets up to 200 ms, then one overflow bucket.

/// Width of one bucket, µs.
const BUCKET_US: u64 = 10;
const BUCKETS: usize = 20_000;

/// Counts of values in µs.
#[derive(Debug, Clone)]
pub struct Histogram {
    buckets: Vec<u32>,
    overflow: u64,
    count: u64,
    sum: u128,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { buckets: vec![0; BUCKETS], overflow: 0, count: 0, sum: 0, max: 0 }
    }
}

impl Histogram {
    /// Record one value.
    pub fn add(&mut self, us: u64) {
        let i = (us / BUCKET_US) as usize;
        match self.buckets.get_mut(i) {
            Some(b) => *b = b.saturating_add(1),
            None => self.overflow += 1,
        }
        self.count += 1;
        self.sum += us as u128;
        self.max = self.max.max(us);
    }

    /// Add another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a = a.saturating_add(*b);
        }
        self.overflow += other.overflow;
        self.count += other.count;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
    }

    /// Number of values.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Largest value.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Mean, µs.
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }

    /// The value below which a fraction `q` of the values fall (upper edge of its bucket), µs.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += *b as u64;
            if seen >= rank {
                return ((i as u64 + 1) * BUCKET_US).min(self.max);
            }
        }
        self.max
    }
}

/// Quantile of a sample list (sorted in place), nearest rank.
pub fn quantile_of(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let rank = ((q.clamp(0.0, 1.0) * values.len() as f64).ceil() as usize).clamp(1, values.len());
    Some(values[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_bucket_upper_edges() {
        let mut h = Histogram::default();
        for us in 1..=1000 {
            h.add(us);
        }
        assert_eq!(h.count(), 1000);
        // 500 lies in [500, 510): the quantile is the bucket's upper edge.
        assert_eq!(h.quantile(0.5), 510);
        assert_eq!(h.quantile(0.99), 1000);
        assert_eq!(h.quantile(1.0), 1000);
        let mut g = Histogram::default();
        g.add(1_000_000);
        h.merge(&g);
        assert_eq!(h.quantile(1.0), 1_000_000);
        assert_eq!(h.max(), 1_000_000);
    }

    #[test]
    fn sample_quantiles() {
        let mut v = vec![5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(quantile_of(&mut v, 0.5), Some(3.0));
        assert_eq!(quantile_of(&mut v, 0.95), Some(5.0));
        assert_eq!(quantile_of(&mut [], 0.5), None);
    }
}
