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
        let now = Instant::now();
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

    fn reserve_global(&self) -> Instant {
        let now = Instant::now();
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
        tokio::time::sleep_until(self.reserve_global()).await;
        asked.elapsed()
    }

    /// Slows only `(account, action)`: its next free slot moves [`PENALTY`] from now.
    pub fn penalize(&self, account: &str, action: &'static str) {
        if self.interval.is_none() {
            return;
        }
        let now = Instant::now();
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
    use std::sync::Arc;

    use super::*;

    const PAY: &str = "PayDeals";
    const LOOK: &str = "DescribeDealsByCond";

    #[tokio::test(start_paused = true)]
    async fn one_lane_is_evenly_spaced() {
        let l = Limiter::new(20, 0);
        let slots: Vec<_> = (0..5).map(|_| l.reserve("a", PAY)).collect();
        for w in slots.windows(2) {
            assert_eq!(w[1] - w[0], Duration::from_millis(50));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn accounts_and_actions_do_not_wait_for_each_other() {
        let l = Limiter::new(20, 0);
        let now = Instant::now();
        for _ in 0..100 {
            l.reserve("busy", PAY);
        }
        assert_eq!(l.reserve("quiet", PAY), now);
        assert_eq!(l.reserve("busy", LOOK), now);
        assert_eq!(l.lanes(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limited_slows_only_that_account() {
        let l = Limiter::new(20, 0);
        let now = Instant::now();
        l.penalize("refused", PAY);
        assert!(l.reserve("refused", PAY) >= now + PENALTY);
        assert_eq!(l.reserve("other", PAY), now);
        assert_eq!(l.reserve("refused", LOOK), now);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_lanes_are_dropped() {
        let l = Limiter::new(20, 0);
        l.reserve("a", PAY);
        l.reserve("b", PAY);
        assert_eq!(l.lanes(), 2);
        tokio::time::advance(IDLE * 2).await;
        l.reserve("c", PAY);
        assert_eq!(l.lanes(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn global_ceiling_spaces_all_accounts() {
        let l = Arc::new(Limiter::new(20, 10));
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for acct in ["a", "b"] {
            for _ in 0..3 {
                let (l, order) = (l.clone(), order.clone());
                tasks.push(tokio::spawn(async move {
                    l.acquire(acct, PAY).await;
                    order.lock().unwrap().push(Instant::now());
                }));
            }
        }
        for t in tasks {
            t.await.unwrap();
        }
        let mut times = order.lock().unwrap().clone();
        times.sort();
        for w in times.windows(2) {
            assert!(w[1] - w[0] >= Duration::from_millis(100), "{times:?}");
        }
    }

    /// A DealPayment looking up many ids one by one cannot starve a first attempt of the same account.
    #[tokio::test(start_paused = true)]
    async fn many_calls_of_one_object_interleave_with_others() {
        let l = Arc::new(Limiter::new(20, 0));
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        // "heavy" makes 10 sequential calls; five other objects each make one call, asking a little later.
        {
            let (l, log) = (l.clone(), log.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..10 {
                    l.acquire("acct", PAY).await;
                    log.lock().unwrap().push(format!("heavy{i}"));
                }
            }));
        }
        for k in 0..5 {
            let (l, log) = (l.clone(), log.clone());
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                l.acquire("acct", PAY).await;
                log.lock().unwrap().push(format!("other{k}"));
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let log = log.lock().unwrap().clone();
        let last_other = log.iter().rposition(|s| s.starts_with("other")).unwrap();
        // All five others go out within the first seven calls: heavy gets at most one more slot
        // between two of them (FIFO), never its whole queue first.
        assert!(last_other <= 6, "{log:?}");
        assert_eq!(log.len(), 15);
    }
}
