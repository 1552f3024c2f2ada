//! Exponential backoff with jitter for reconnecting to cameras.
//!
//! Jitter spreads the reconnects of many cameras that failed together (a switch reboot)
//! so they do not all hit the network at the same instant.

use rand::Rng;
use std::time::Duration;

pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_millis(500), Duration::from_secs(30))
    }
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self { initial, max, attempt: 0 }
    }

    /// Failed attempts since the last success.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// After a session that worked, the next failure starts over at the initial delay.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The delay before the next attempt: doubling from `initial`, capped at `max`,
    /// each drawn uniformly from [half, whole] of that value.
    pub fn next_delay(&mut self) -> Duration {
        self.next_delay_at_most(self.max)
    }

    /// Like `next_delay`, capped at `cap` for this attempt (still with jitter below it).
    pub fn next_delay_at_most(&mut self, cap: Duration) -> Duration {
        let ceiling = self.initial.saturating_mul(1u32 << self.attempt.min(16)).min(self.max).min(cap);
        self.attempt = self.attempt.saturating_add(1);
        ceiling.mul_f64(rand::rng().random_range(0.5..=1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_doubling_then_stays_under_the_cap() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(30));
        let delays: Vec<Duration> = (0..20).map(|_| backoff.next_delay()).collect();
        for (i, delay) in delays.iter().enumerate().take(5) {
            let ceiling = Duration::from_millis(100 << i);
            assert!(*delay >= ceiling / 2 && *delay <= ceiling, "attempt {i}: {delay:?}");
        }
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(30)));
        assert!(delays[19] >= Duration::from_secs(15), "capped near 30 s: {:?}", delays[19]);
        assert_eq!(backoff.attempt(), 20);
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn a_cap_bounds_one_attempt_and_keeps_the_count() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(30));
        for _ in 0..10 {
            backoff.next_delay();
        }
        let capped = backoff.next_delay_at_most(Duration::from_millis(500));
        assert!(capped >= Duration::from_millis(250) && capped <= Duration::from_millis(500), "{capped:?}");
        assert_eq!(backoff.attempt(), 11);
        assert!(backoff.next_delay() >= Duration::from_secs(15), "uncapped again");
    }
}
