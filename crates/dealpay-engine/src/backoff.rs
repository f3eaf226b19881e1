//! Per-class exponential backoff with jitter, as pure arithmetic.

use std::time::Duration;

use super::spend::WindowBudget;

/// Base and cap of one backoff curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Curve {
    /// Delay after the first failure (before jitter).
    pub base: Duration,
    pub cap: Duration,
}

impl Curve {
    /// Delay after `failures` consecutive failures; `jitter` in [0, 1) spreads it over [d/2, d].
    pub fn delay(&self, failures: u32, jitter: f64) -> Duration {
        let exp = failures.saturating_sub(1).min(30);
        let raw = self.base.saturating_mul(1u32 << exp.min(20)).min(self.cap);
        let factor = 0.5 + 0.5 * jitter.clamp(0.0, 1.0);
        raw.mul_f64(factor)
    }
}

/// How the engine waits, per error class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Rejected before processing (rate limit, clock skew, not sent): retry fast.
    pub transient: Curve,
    /// A person must act: retry slowly; reset when the credentials change.
    pub needs_human: Curve,
    /// Looking up an unknown outcome or a delivery.
    pub lookup: Curve,
    /// A new PayDeals attempt after an unknown outcome proved the orders unpaid: the call may be what
    /// fails, so attempts slow down instead of storming.
    pub unknown: Curve,
    /// Consecutive unknown outcomes after which the payment is Stalled (it keeps retrying on `unknown`).
    pub max_unknown_outcomes: u32,
    /// Lookups that settle nothing after which the payment is Stalled (it keeps looking on `lookup`).
    pub max_lookups: u32,
    /// How far before the attempt the order lookup window starts (orders are created before they are paid).
    pub lookback: Duration,
    /// Requeue while waiting for credentials to appear (the Secret watch usually comes first).
    pub credentials_recheck: Duration,
    /// The operator's cap on one DealPayment's total, in cents (`--max-total-cost`); `spec.maxTotalCost`
    /// and the namespace budget apply too, the strictest wins.
    pub max_total_cents: Option<i64>,
    /// The namespace's budget over its rolling window, as the shell measured it for this decision.
    pub namespace_budget: Option<WindowBudget>,
    /// A pricing older than this is done again before paying, so the cap is checked on a recent price.
    pub quote_max_age: Duration,
    /// False when the shell must not start a new PayDeals call now (its step budget or deadline is
    /// spent): an answer is still folded, and the attempt is chosen again next time instead.
    pub start_attempts: bool,
    /// How long the API executes a signed request after its `X-TC-Timestamp` (TC3: 300 s). PayDeals is
    /// signed with its attempt's start, so a request given up on may still execute until then.
    pub signature_ttl: Duration,
    /// Clock difference allowed between this host and the API (and between replicas) on top of
    /// `signature_ttl` before a request given up on is taken as dead.
    pub clock_margin: Duration,
    /// While such a request may still execute, how often its ids are looked up (a lookup that finds
    /// them paid settles them at once; the one that proves them unpaid is made after the window).
    pub window_lookup_every: Duration,
}

/// TC3-HMAC-SHA256: the API refuses a request whose timestamp is older than this.
pub const SIGNATURE_TTL: Duration = Duration::from_secs(300);

impl Policy {
    /// Until when a PayDeals request of an attempt started at `started_at` may still execute.
    pub fn request_dead_after(&self, started_at: jiff::Timestamp) -> jiff::Timestamp {
        let span = self.signature_ttl.saturating_add(self.clock_margin);
        let span = jiff::SignedDuration::try_from(span).unwrap_or(jiff::SignedDuration::MAX);
        started_at.checked_add(span).unwrap_or(jiff::Timestamp::MAX)
    }

    /// The same policy, holding new attempts back.
    pub fn holding(self) -> Self {
        Self {
            start_attempts: false,
            ..self
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            transient: Curve {
                base: Duration::from_secs(1),
                cap: Duration::from_secs(60),
            },
            needs_human: Curve {
                base: Duration::from_secs(30),
                cap: Duration::from_secs(15 * 60),
            },
            lookup: Curve {
                base: Duration::from_secs(2),
                cap: Duration::from_secs(5 * 60),
            },
            unknown: Curve {
                base: Duration::from_secs(5),
                cap: Duration::from_secs(10 * 60),
            },
            max_unknown_outcomes: 5,
            max_lookups: 5,
            lookback: Duration::from_secs(31 * 24 * 3600),
            credentials_recheck: Duration::from_secs(5 * 60),
            max_total_cents: None,
            namespace_budget: None,
            quote_max_age: Duration::from_secs(60),
            start_attempts: true,
            signature_ttl: SIGNATURE_TTL,
            clock_margin: Duration::from_secs(60),
            window_lookup_every: Duration::from_secs(60),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_to_the_cap() {
        let c = Curve {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
        };
        assert_eq!(c.delay(1, 0.999_999).as_millis(), 999);
        assert_eq!(c.delay(2, 0.999_999).as_millis(), 1999);
        assert_eq!(c.delay(3, 0.999_999).as_millis(), 3999);
        assert_eq!(c.delay(7, 0.999_999).as_millis(), 59_999);
        assert_eq!(c.delay(100, 0.999_999).as_millis(), 59_999);
    }

    #[test]
    fn jitter_spreads_between_half_and_full() {
        let c = Curve {
            base: Duration::from_secs(8),
            cap: Duration::from_secs(60),
        };
        assert_eq!(c.delay(1, 0.0), Duration::from_secs(4));
        assert_eq!(c.delay(1, 0.5), Duration::from_secs(6));
        assert_eq!(c.delay(0, 0.0), Duration::from_secs(4));
    }
}
