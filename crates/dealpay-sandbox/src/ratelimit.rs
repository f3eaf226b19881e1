//! Per (account, action) token buckets: capacity = rate, refilled at rate per second.
//!
//! A full bucket absorbs jitter, so a client spacing calls at exactly the rate is never
//! refused, while a burst of twice the rate sees about half refused.

use std::collections::HashMap;
use std::time::Instant;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// All buckets of one sandbox.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    rate: u32,
    buckets: HashMap<(String, String), Bucket>,
}

impl RateLimiter {
    /// Requests per second per account and action; 0 turns limiting off.
    pub fn new(rate: u32) -> Self {
        Self {
            rate,
            buckets: HashMap::new(),
        }
    }

    /// The configured rate.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Changes the rate; every bucket starts full again.
    pub fn set_rate(&mut self, rate: u32) {
        self.rate = rate;
        self.buckets.clear();
    }

    /// Forgets every bucket (they start full).
    pub fn reset(&mut self) {
        self.buckets.clear();
    }

    /// Takes one token for `(account, action)` at `now`; false means `RequestLimitExceeded`.
    pub fn try_acquire(&mut self, account: &str, action: &str, now: Instant) -> bool {
        if self.rate == 0 {
            return true;
        }
        let cap = f64::from(self.rate);
        let key = (account.to_string(), action.to_string());
        let b = self.buckets.entry(key).or_insert(Bucket {
            tokens: cap,
            last: now,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * cap).min(cap);
        b.last = b.last.max(now);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_gets_the_capacity_and_no_more() {
        let mut l = RateLimiter::new(20);
        let t = Instant::now();
        let ok = (0..40)
            .filter(|_| l.try_acquire("a", "PayDeals", t))
            .count();
        assert_eq!(ok, 20);
    }

    #[test]
    fn evenly_spaced_calls_at_the_rate_never_fail_even_with_jitter() {
        let mut l = RateLimiter::new(20);
        let t0 = Instant::now();
        for i in 0..2000u64 {
            // Every call is due at i*50ms but arrives up to 40ms late or early.
            let jitter = (i * 7919 % 81) as i64 - 40;
            let at = (i as i64 * 50 + jitter).max(0) as u64;
            assert!(
                l.try_acquire("a", "PayDeals", t0 + Duration::from_millis(at)),
                "call {i} refused"
            );
        }
    }

    #[test]
    fn buckets_refill_at_the_rate() {
        let mut l = RateLimiter::new(10);
        let t = Instant::now();
        for _ in 0..10 {
            assert!(l.try_acquire("a", "x", t));
        }
        assert!(!l.try_acquire("a", "x", t));
        assert!(!l.try_acquire("a", "x", t + Duration::from_millis(50)));
        assert!(l.try_acquire("a", "x", t + Duration::from_millis(101)));
        let later = t + Duration::from_secs(60);
        let ok = (0..30).filter(|_| l.try_acquire("a", "x", later)).count();
        assert_eq!(ok, 10, "idle time fills the bucket only up to capacity");
    }

    #[test]
    fn accounts_and_actions_have_separate_buckets() {
        let mut l = RateLimiter::new(1);
        let t = Instant::now();
        assert!(l.try_acquire("a", "PayDeals", t));
        assert!(!l.try_acquire("a", "PayDeals", t));
        assert!(l.try_acquire("a", "DescribeDealsByCond", t));
        assert!(l.try_acquire("b", "PayDeals", t));
    }

    #[test]
    fn zero_is_unlimited_and_set_rate_refills() {
        let mut l = RateLimiter::new(0);
        let t = Instant::now();
        assert!((0..10_000).all(|_| l.try_acquire("a", "x", t)));
        l.set_rate(1);
        assert!(l.try_acquire("a", "x", t));
        assert!(!l.try_acquire("a", "x", t));
        l.reset();
        assert!(l.try_acquire("a", "x", t));
    }
}
