//! The runtime state behind one mutex: the world, the initial world for resets, the ledger, counters and rate limiter.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use serde::Serialize;

use super::faults::FaultRule;
use super::pay::{Charge, ChargeMode};
use super::ratelimit::RateLimiter;
use super::world::World;

/// Counters of one action (`PayDeals`, `DescribeDealsByCond`, or `(other)` for everything else).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionStats {
    /// Requests received.
    pub requests: u64,
    /// Answered with success.
    pub succeeded: u64,
    /// Answered `RequestLimitExceeded` by the rate limiter.
    pub rate_limited: u64,
    /// Error answers by code (including `RequestLimitExceeded`).
    pub errors: BTreeMap<String, u64>,
    /// Injected faults by kind.
    pub faults: BTreeMap<String, u64>,
}

/// Counters of the whole sandbox since start or reset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub actions: BTreeMap<String, ActionStats>,
    /// Ledger entries written.
    pub charges: u64,
    /// Ledger entries for an order id that already had one: double payments (0 is what tests want).
    pub duplicate_charges: u64,
}

impl Stats {
    /// The counters of `action` (unknown actions share one entry so garbage cannot grow the map).
    pub fn action(&mut self, action: &str) -> &mut ActionStats {
        let key = match action {
            "PayDeals" | "DescribeDealsByCond" => action,
            _ => "(other)",
        };
        self.actions.entry(key.to_string()).or_default()
    }
}

/// Everything that changes while the sandbox runs.
#[derive(Debug)]
pub struct State {
    /// The current world.
    pub world: World,
    /// The world as started, restored by reset.
    pub initial: World,
    /// Every charge, in order.
    pub ledger: Vec<Charge>,
    pub stats: Stats,
    pub limiter: RateLimiter,
    /// Whether already charged orders are charged again (a setting: reset keeps it).
    pub charge_mode: ChargeMode,
    /// Seconds a signed request stays valid after its X-TC-Timestamp (Tencent: 300; a setting).
    pub signature_ttl: i64,
    /// Order ids with a ledger entry, so that marking duplicates does not scan the ledger.
    charged: HashSet<String>,
    next_fault_id: u64,
}

impl State {
    /// Starts from a normalized world.
    pub fn new(world: World, rate_limit: u32, charge_mode: ChargeMode) -> Self {
        let mut s = Self {
            initial: world.clone(),
            world,
            ledger: Vec::new(),
            stats: Stats::default(),
            limiter: RateLimiter::new(rate_limit),
            charge_mode,
            signature_ttl: crate::auth::MAX_CLOCK_SKEW,
            charged: HashSet::new(),
            next_fault_id: 1,
        };
        s.number_faults();
        s.initial.faults = s.world.faults.clone();
        s
    }

    fn number_faults(&mut self) {
        for r in &mut self.world.faults {
            if r.id == 0 {
                r.id = self.next_fault_id;
            }
            self.next_fault_id = self.next_fault_id.max(r.id + 1);
        }
    }

    /// Adds a fault rule and returns it with its id.
    pub fn add_fault(&mut self, mut rule: FaultRule) -> FaultRule {
        rule.id = self.next_fault_id;
        self.next_fault_id += 1;
        self.world.faults.push(rule.clone());
        rule
    }

    /// Appends charges to the ledger, marking and counting those for orders charged before.
    pub fn record_charges(&mut self, charges: impl IntoIterator<Item = Charge>) {
        for mut c in charges {
            c.duplicate = !self.charged.insert(c.order_id.clone());
            self.stats.charges += 1;
            self.stats.duplicate_charges += u64::from(c.duplicate);
            self.ledger.push(c);
        }
    }

    /// Restores the initial world and clears ledger, counters and buckets (the rate and
    /// charge-mode settings stay).
    pub fn reset(&mut self) {
        self.world = self.initial.clone();
        self.ledger.clear();
        self.charged.clear();
        self.stats = Stats::default();
        self.limiter.reset();
    }
}

/// The state plus its lock; handlers hold the lock only for short, non-async sections.
#[derive(Debug)]
pub struct Shared {
    state: Mutex<State>,
}

impl Shared {
    /// Wraps a state.
    pub fn new(state: State) -> Self {
        Self {
            state: Mutex::new(state),
        }
    }

    /// Locks the state; a panic elsewhere never makes the sandbox unusable.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::Fault;

    fn charge(order_id: &str) -> Charge {
        Charge {
            order_id: order_id.into(),
            big_deal_id: None,
            account: "1".into(),
            secret_id: "s".into(),
            amount: 1,
            cash: 1,
            voucher: 0,
            request_id: "r".into(),
            time: "2026-11-28 08:00:00".into(),
            delivered: true,
            duplicate: false,
        }
    }

    #[test]
    fn reset_restores_the_initial_world_and_faults() {
        let mut w = World::demo();
        w.faults.push(FaultRule::new(Fault::Http502).times(1));
        let mut s = State::new(w, 20, ChargeMode::DoubleCharge);
        assert_eq!(s.world.faults[0].id, 1);
        let added = s.add_fault(FaultRule::new(Fault::Drop));
        assert_eq!(added.id, 2);
        s.world.faults.remove(0);
        s.world.accounts[0].balance = 0;
        s.stats.action("PayDeals").requests += 1;
        s.stats.action("Bogus").requests += 1;
        assert_eq!(s.stats.actions["(other)"].requests, 1);
        s.record_charges([charge("a"), charge("a"), charge("b")]);
        assert_eq!(s.stats.duplicate_charges, 1);
        let dup: Vec<bool> = s.ledger.iter().map(|c| c.duplicate).collect();
        assert_eq!(dup, [false, true, false]);
        s.reset();
        assert_eq!(s.charge_mode, ChargeMode::DoubleCharge);
        assert!(s.ledger.is_empty());
        s.record_charges([charge("a")]);
        assert_eq!(
            s.stats.duplicate_charges, 0,
            "reset forgets earlier charges"
        );
        s.reset();
        assert_eq!(s.world, s.initial);
        assert_eq!(s.world.faults.len(), 1);
        assert!(s.stats.actions.is_empty());
        assert_eq!(s.add_fault(FaultRule::new(Fault::Drop)).id, 3);
    }
}
