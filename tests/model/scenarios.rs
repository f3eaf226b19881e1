//! The scenarios, kept small: 1-2 orders or one big deal of two sub-orders.

use dealpay_operator::api::IdKind;

use super::state::{Config, Faults};

const ALL: Faults = Faults {
    pay: true,
    lookup: true,
    crash: true,
    lease: true,
    stale: true,
    env: true,
    only_unknown: false,
    late: true,
};

/// Two independent orders, two replicas sharing a Lease.
pub fn two_orders(depth: usize) -> Config {
    Config {
        name: "two orders, 2 replicas",
        kind: IdKind::Order,
        ids: vec!["o1", "o2"],
        subs: vec![("o1", ""), ("o2", "")],
        groups: vec![],
        replicas: 2,
        max_faults: 2,
        depth,
        faults: ALL,
        live_bound: 80,
        pause_after_lease_check: false,
    }
}

/// Two orders that Tencent only pays together, one replica.
pub fn pay_together(depth: usize) -> Config {
    Config {
        name: "two orders paid together, 1 replica",
        groups: vec![vec![0, 1]],
        replicas: 1,
        faults: Faults {
            lease: false,
            ..ALL
        },
        ..two_orders(depth)
    }
}

/// One big deal of two sub-orders, one replica.
pub fn big_deal(depth: usize) -> Config {
    Config {
        name: "big deal of 2 sub-orders, 1 replica",
        kind: IdKind::BigDeal,
        ids: vec!["B1"],
        subs: vec![("s1", "B1"), ("s2", "B1")],
        groups: vec![],
        replicas: 1,
        max_faults: 2,
        depth,
        faults: Faults {
            lease: false,
            ..ALL
        },
        live_bound: 80,
        pause_after_lease_check: false,
    }
}

/// One order, PayDeals outcomes lost again and again (past max_unknown_outcomes), lookups failing too.
pub fn unknown_storm(depth: usize) -> Config {
    Config {
        name: "one order, unknown-outcome storm",
        kind: IdKind::Order,
        ids: vec!["o1"],
        subs: vec![("o1", "")],
        groups: vec![],
        replicas: 1,
        max_faults: 8,
        depth,
        faults: Faults {
            pay: true,
            lookup: true,
            crash: false,
            lease: false,
            stale: false,
            env: false,
            only_unknown: true,
            late: true,
        },
        live_bound: 120,
        pause_after_lease_check: false,
    }
}

/// One order, two replicas, and a replica may pause between its lease check and its send.
pub fn lease_pause(depth: usize) -> Config {
    Config {
        name: "one order, 2 replicas, pause after the lease check",
        kind: IdKind::Order,
        ids: vec!["o1"],
        subs: vec![("o1", "")],
        groups: vec![],
        replicas: 2,
        max_faults: 2,
        depth,
        faults: Faults {
            env: false,
            stale: false,
            ..ALL
        },
        live_bound: 80,
        pause_after_lease_check: true,
    }
}
