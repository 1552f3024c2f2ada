//! A token bucket per client address: `burst` at once, refilled at `per_second`. Used for new
//! sessions and failed authentications. The table is bounded: a full bucket is the same as
//! none and is dropped first, so memory stays bounded however many addresses come.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

const MAX_ADDRESSES: usize = 65_536;

pub struct PerIpBuckets {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

/// One token bucket: `tokens` as of `at`.
#[derive(Clone, Copy)]
pub(super) struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub(super) fn full(burst: f64, now: Instant) -> Self {
        Bucket { tokens: burst, at: now }
    }

    fn refilled(self, now: Instant, per_second: f64, burst: f64) -> Self {
        let tokens = (self.tokens + now.saturating_duration_since(self.at).as_secs_f64() * per_second).min(burst);
        Bucket { tokens, at: now }
    }

    /// Refills to `now` and takes one token if there is one.
    pub(super) fn take(&mut self, now: Instant, per_second: f64, burst: f64) -> bool {
        *self = self.refilled(now, per_second, burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return true;
        }
        false
    }
}

impl PerIpBuckets {
    pub fn new(per_second: f64, burst: u32) -> Self {
        Self { per_second, burst: f64::from(burst.max(1)), buckets: Mutex::default() }
    }

    /// Takes one token for `ip` at `now`; when none is left, how long until one is.
    pub fn take(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock();
        if buckets.len() >= MAX_ADDRESSES && !buckets.contains_key(&ip) {
            let (per_second, burst) = (self.per_second, self.burst);
            buckets.retain(|_, b| b.refilled(now, per_second, burst).tokens < burst);
            if buckets.len() >= MAX_ADDRESSES {
                // Every address in the table is busy: this one goes unbounded rather than
                // pushing out one that is being limited.
                return Ok(());
            }
        }
        let bucket = buckets.entry(ip).or_insert(Bucket::full(self.burst, now));
        if bucket.take(now, self.per_second, self.burst) {
            return Ok(());
        }
        Err(self.until_one(bucket.tokens))
    }

    /// How long until `ip` has a token again, without taking one; `None` if it has one now.
    pub fn empty_for(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let buckets = self.buckets.lock();
        let bucket = buckets.get(&ip)?.refilled(now, self.per_second, self.burst);
        (bucket.tokens < 1.0).then(|| self.until_one(bucket.tokens))
    }

    fn until_one(&self, tokens: f64) -> Duration {
        if self.per_second <= 0.0 {
            return Duration::from_secs(3600);
        }
        Duration::from_secs_f64(((1.0 - tokens) / self.per_second).clamp(0.0, 3600.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let buckets = PerIpBuckets::new(2.0, 3);
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().expect("ip"), "192.0.2.2".parse().expect("ip"));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(buckets.take(a, t0), Ok(()));
        }
        let wait = buckets.take(a, t0).expect_err("the burst is spent");
        assert!(wait > Duration::from_millis(400) && wait <= Duration::from_millis(500), "{wait:?}");
        assert_eq!(buckets.take(b, t0), Ok(()), "another address has its own bucket");
        assert_eq!(buckets.empty_for(a, t0 + Duration::from_millis(200)).map(|d| d.as_millis()), Some(300));
        assert_eq!(buckets.take(a, t0 + Duration::from_millis(500)), Ok(()));
        assert_eq!(buckets.empty_for(b, t0 + Duration::from_secs(10)), None);
    }

    #[test]
    fn the_table_stays_bounded() {
        let buckets = PerIpBuckets::new(1.0, 1);
        let t0 = Instant::now();
        for i in 0..(MAX_ADDRESSES as u32 + 10) {
            let _ = buckets.take(IpAddr::from(i.to_be_bytes()), t0);
        }
        assert!(buckets.buckets.lock().len() <= MAX_ADDRESSES);
        // Once their buckets refill, old addresses make room for new ones.
        let later = t0 + Duration::from_secs(5);
        assert_eq!(buckets.take("198.51.100.1".parse().expect("ip"), later), Ok(()));
        assert!(buckets.buckets.lock().len() < 10);
    }
}
