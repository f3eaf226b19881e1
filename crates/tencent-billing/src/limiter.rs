//! Rate limits per Tencent account and action, with an optional process-wide ceiling.
//!
//! Tencent limits PayDeals (and DescribeDealsByCond) per **account and action**, so the operator
//! keeps one evenly spaced lane per `(account, action)`:
//!
//! - **Account key**: the credentials' `accountId`/`uin` when the Secret names one (so several keys
//!   of one account share one lane), else the SecretId. See [`super::Credentials::account_key`].
//! - **Even spacing**: a lane hands out one slot every `1 / rate` seconds; no one-second window ever
//!   sees more than `rate` calls of one account and action, and no burst is allowed.
//! - **Fairness inside an account: FIFO.** A caller reserves the next free slot of its lane when it
//!   asks, so calls go out in the order they asked. A DealPayment making many calls (lookups of many
//!   ids, retries) asks for one slot at a time, so every other DealPayment of the same account that
//!   asked meanwhile goes before its next call: lookups and first attempts interleave, nobody starves.
//! - **Separation**: lanes never wait for each other; a slow or refused account delays only itself.
//! - **`RequestLimitExceeded`**: [`Limiter::penalize`] pushes only that lane's next free slot one
//!   second out (the time Tencent's window needs to refill).
//! - **Process-wide ceiling** (optional): after its lane's slot, a call also takes a slot of one
//!   shared lane, FIFO in the order the account slots came due.
//! - **Idle lanes are dropped**: a lane with no reserved slot for [`IDLE`] is removed on a later call.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How long a lane stays after its last slot before it is dropped.
pub const IDLE: Duration = Duration::from_secs(60);
/// How far `RequestLimitExceeded` pushes the lane's next slot.
pub const PENALTY: Duration = Duration::from_secs(1);

struct Lanes {
    by_key: HashMap<(String, &'static str), Instant>,
    last_sweep: Instant,
}

/// Evenly spaced lanes per `(account, action)` plus an optional global ceiling.
pub struct Limiter {
    interval: Option<Duration>,
    global_interval: Option<Duration>,
    lanes: Mutex<Lanes>,
    global_next: Mutex<Instant>,
}

fn interval(rate: u32) -> Option<Duration> {
    (rate > 0).then(|| Duration::from_secs_f64(1.0 / f64::from(rate)))
}

impl Limiter {
    /// `rate` per account and action, `global_rate` for the whole process; 0 means unlimited.
    pub fn new(rate: u32, global_rate: u32) -> Self {
        let now = Instant::now();
        Self {
            interval: interval(rate),
            global_interval: interval(global_rate),
            lanes: Mutex::new(Lanes {
                by_key: HashMap::new(),
                last_sweep: now,
            }),
            global_next: Mutex::new(now),
        }
    }

    /// Whether this limiter limits anything.
    pub fn is_active(&self) -> bool {
        self.interval.is_some() || self.global_interval.is_some()
    }

    /// Reserves the next slot of the lane `(account, action)` and returns when it is due.
    pub fn reserve(&self, account: &str, action: &'static str) -> Instant {
        self.reserve_at(account, action, Instant::now())
    }

    /// [`Self::reserve`] as asked at `now`.
    pub fn reserve_at(&self, account: &str, action: &'static str, now: Instant) -> Instant {
        let Some(step) = self.interval else {
            return now;
        };
        let mut lanes = self.lanes.lock().unwrap_or_else(|e| e.into_inner());
        if now.saturating_duration_since(lanes.last_sweep) >= IDLE {
            lanes.last_sweep = now;
            lanes.by_key.retain(|_, next| *next + IDLE > now);
        }
        let next = lanes
            .by_key
            .entry((account.to_string(), action))
            .or_insert(now);
        let slot = (*next).max(now);
        *next = slot + step;
        slot
    }

    /// Reserves the next slot of the process-wide ceiling as asked at `now`.
    pub fn reserve_global_at(&self, now: Instant) -> Instant {
        let Some(step) = self.global_interval else {
            return now;
        };
        let mut next = self.global_next.lock().unwrap_or_else(|e| e.into_inner());
        let slot = (*next).max(now);
        *next = slot + step;
        slot
    }

    /// Waits for a slot of `(account, action)` and then of the global ceiling; returns the time waited.
    pub async fn acquire(&self, account: &str, action: &'static str) -> Duration {
        let asked = Instant::now();
        tokio::time::sleep_until(self.reserve(account, action)).await;
        tokio::time::sleep_until(self.reserve_global_at(Instant::now())).await;
        asked.elapsed()
    }

    /// Slows only `(account, action)`: its next free slot moves [`PENALTY`] from now.
    pub fn penalize(&self, account: &str, action: &'static str) {
        self.penalize_at(account, action, Instant::now());
    }

    /// [`Self::penalize`] at `now`.
    pub fn penalize_at(&self, account: &str, action: &'static str, now: Instant) {
        if self.interval.is_none() {
            return;
        }
        let mut lanes = self.lanes.lock().unwrap_or_else(|e| e.into_inner());
        let next = lanes
            .by_key
            .entry((account.to_string(), action))
            .or_insert(now);
        *next = (*next).max(now + PENALTY);
    }

    /// Lanes currently kept (idle ones are dropped lazily).
    pub fn lanes(&self) -> usize {
        self.lanes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_key
            .len()
    }
}

#[cfg(test)]
mod tests {
    //! Every test passes its own clock (`now`), so nothing depends on how busy the machine is.

    use super::*;

    const PAY: &str = "PayDeals";
    const LOOK: &str = "DescribeDealsByCond";
    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn one_lane_is_evenly_spaced() {
        let l = Limiter::new(20, 0);
        let t = Instant::now();
        let slots: Vec<_> = (0..5).map(|_| l.reserve_at("a", PAY, t)).collect();
        assert_eq!(slots[0], t);
        for w in slots.windows(2) {
            assert_eq!(w[1] - w[0], 50 * MS);
        }
        // After a quiet spell the next call goes at once: no burst is saved up either.
        let later = t + Duration::from_secs(10);
        assert_eq!(l.reserve_at("a", PAY, later), later);
        assert_eq!(l.reserve_at("a", PAY, later), later + 50 * MS);
    }

    #[test]
    fn accounts_and_actions_do_not_wait_for_each_other() {
        let l = Limiter::new(20, 0);
        let t = Instant::now();
        for _ in 0..100 {
            l.reserve_at("busy", PAY, t);
        }
        assert_eq!(l.reserve_at("quiet", PAY, t), t);
        assert_eq!(l.reserve_at("busy", LOOK, t), t);
        assert_eq!(l.lanes(), 3);
    }

    #[test]
    fn rate_limited_slows_only_that_account() {
        let l = Limiter::new(20, 0);
        let t = Instant::now();
        l.penalize_at("refused", PAY, t);
        assert!(l.reserve_at("refused", PAY, t) >= t + PENALTY);
        assert_eq!(l.reserve_at("other", PAY, t), t);
        assert_eq!(l.reserve_at("refused", LOOK, t), t);
    }

    #[test]
    fn idle_lanes_are_dropped() {
        let l = Limiter::new(20, 0);
        let t = Instant::now();
        l.reserve_at("a", PAY, t);
        l.reserve_at("b", PAY, t);
        assert_eq!(l.lanes(), 2);
        l.reserve_at("c", PAY, t + IDLE * 2);
        assert_eq!(l.lanes(), 1);
    }

    #[test]
    fn global_ceiling_spaces_all_accounts() {
        let l = Limiter::new(20, 10);
        let t = Instant::now();
        // Account slots come due at t for both accounts; the ceiling then spaces them 100 ms apart.
        let a = l.reserve_global_at(l.reserve_at("a", PAY, t));
        let b = l.reserve_global_at(l.reserve_at("b", PAY, t));
        assert_eq!(b - a, 100 * MS);
        assert_eq!(Limiter::new(0, 0).reserve_global_at(t), t);
    }

    #[test]
    fn unlimited_never_waits() {
        let l = Limiter::new(0, 0);
        assert!(!l.is_active());
        let t = Instant::now();
        assert_eq!(l.reserve_at("a", PAY, t), t);
        assert_eq!(l.reserve_at("a", PAY, t), t);
    }

    /// A DealPayment looking up many ids one by one cannot starve first attempts of the same account:
    /// it asks for its next slot only when its previous call went out, so it joins the queue behind
    /// everyone who asked meanwhile (FIFO).
    #[test]
    fn many_calls_of_one_object_interleave_with_others() {
        let l = Limiter::new(20, 0);
        let t = Instant::now();
        let mut out: Vec<(Instant, String)> = Vec::new();
        // heavy: 10 sequential calls, each asked when the previous one went out.
        let mut asked = t;
        let mut heavy = Vec::new();
        let others: Vec<Instant> = (0..5).map(|k| t + MS + k * MS).collect();
        let mut others_left = others.iter().enumerate().peekable();
        for i in 0..10 {
            // Everyone who asked before heavy's next ask reserves first.
            while let Some((k, at)) = others_left.peek().copied() {
                if *at > asked {
                    break;
                }
                out.push((l.reserve_at("acct", PAY, *at), format!("other{k}")));
                others_left.next();
            }
            let slot = l.reserve_at("acct", PAY, asked);
            heavy.push(slot);
            out.push((slot, format!("heavy{i}")));
            asked = slot;
        }
        out.sort();
        let names: Vec<&str> = out.iter().map(|(_, n)| n.as_str()).collect();
        let last_other = names.iter().rposition(|n| n.starts_with("other")).unwrap();
        assert!(last_other <= 6, "{names:?}");
        assert_eq!(names.len(), 15);
        for w in out.windows(2) {
            assert_eq!(w[1].0 - w[0].0, 50 * MS, "{names:?}");
        }
    }
}
