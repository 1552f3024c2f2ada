//! A histogram with fixed bucket bounds (of seconds, or of a ratio), as the metrics export
//! them: a count per bucket (not cumulative), the sum and the count.

#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One per bound, and one past the last.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    /// Empty, with these upper bounds (ascending; `+Inf` is implied after them).
    pub fn new(bounds: &'static [f64]) -> Self {
        Self { bounds, counts: vec![0; bounds.len() + 1], sum: 0.0, count: 0 }
    }

    /// One counted elsewhere: `counts` per bucket (one past the last bound) and the sum.
    pub fn from_counts(bounds: &'static [f64], counts: Vec<u64>, sum: f64) -> Self {
        debug_assert_eq!(counts.len(), bounds.len() + 1);
        Self { bounds, count: counts.iter().sum(), counts, sum }
    }

    pub fn observe(&mut self, value: f64) {
        let bucket = self.bounds.iter().position(|&bound| value <= bound).unwrap_or(self.bounds.len());
        self.counts[bucket] += 1;
        self.sum += value;
        self.count += 1;
    }

    /// Adds another histogram's observations; both have the same bounds.
    pub fn add(&mut self, other: &Histogram) {
        debug_assert_eq!(self.bounds, other.bounds);
        for (count, more) in self.counts.iter_mut().zip(&other.counts) {
            *count += more;
        }
        self.sum += other.sum;
        self.count += other.count;
    }

    /// (upper bound, count) of each bucket, `+Inf` last.
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        self.bounds.iter().copied().chain([f64::INFINITY]).zip(self.counts.iter().copied()).collect()
    }

    pub fn sum(&self) -> f64 {
        self.sum
    }

    pub fn count(&self) -> u64 {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_fall_in_the_first_bucket_that_holds_them() {
        let mut histogram = Histogram::new(&[0.1, 1.0]);
        for value in [0.05, 0.1, 0.5, 3.0] {
            histogram.observe(value);
        }
        assert_eq!(histogram.buckets(), vec![(0.1, 2), (1.0, 1), (f64::INFINITY, 1)]);
        assert_eq!((histogram.count(), histogram.sum()), (4, 3.65));
        let mut both = histogram.clone();
        both.add(&histogram);
        assert_eq!(both.buckets(), vec![(0.1, 4), (1.0, 2), (f64::INFINITY, 2)]);
        assert_eq!((both.count(), both.sum()), (8, 7.3));
    }
}
