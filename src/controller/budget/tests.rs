//! The ledger: flags, what counts, and the reservation that keeps two payments from sharing a budget.

use std::sync::Barrier;

use super::*;
use crate::api::{Attempt, IdKind, OrderRecord, OrderState};

const NOW: &str = "2026-11-28T10:00:00Z";

fn now() -> Timestamp {
    NOW.parse().unwrap()
}

fn ledger(flag: &str) -> Ledger {
    Ledger::new(vec![parse_flag(flag).unwrap()])
}

/// A status about to be written with a new attempt in flight, quoted at `cents`.
fn attempting(id: &str, cents: i64) -> DealPaymentStatus {
    DealPaymentStatus {
        in_flight: Some(Box::new(Attempt {
            id: id.into(),
            started_at: NOW.parse().unwrap(),
            kind: IdKind::Order,
            ids: vec![format!("o-{id}")],
            generation: 1,
            quoted_cents: Some(cents),
            answered: None,
            number: 0,
        })),
        attempts: 1,
        ..Default::default()
    }
}

/// A status of a payment made at `at`, charged `cents`.
fn paid(at: &str, cents: i64) -> DealPaymentStatus {
    DealPaymentStatus {
        paid_at: Some(at.parse().unwrap()),
        orders: vec![OrderRecord {
            id: "o".into(),
            state: OrderState::Paid,
            tencent_status: Some(4),
            request_id: None,
            cost_cents: Some(cents),
            kind: None,
        }],
        attempts: 1,
        ..Default::default()
    }
}

fn seen(uid: &str, st: &DealPaymentStatus) -> Seen {
    Seen {
        uid: uid.into(),
        charge: charge(st),
        receipt_of: None,
    }
}

#[test]
fn flags_name_a_namespace_an_amount_and_a_window() {
    let b = parse_flag("team-a=5000.00/24h").unwrap();
    assert_eq!(
        (b.namespace.as_str(), b.limit_cents, b.window),
        ("team-a", 500_000, Duration::from_secs(86_400))
    );
    assert_eq!(b.to_string(), "team-a=5000.00/1d");
    assert_eq!(parse_flag("*=10/7d").unwrap().namespace, "*");
    for bad in [
        "team-a",
        "team-a=5000",
        "=5000/24h",
        "Team_A=5000/24h",
        "team-a=50.001/24h",
        "team-a=-5/24h",
        "team-a=5000/0h",
        "team-a=5000/1w",
    ] {
        assert!(parse_flag(bad).is_err(), "{bad}");
    }
    let l = Ledger::new(vec![
        parse_flag("*=1/1h").unwrap(),
        parse_flag("team-a=2/1h").unwrap(),
    ]);
    assert_eq!(l.budget_of("team-a").unwrap().limit_cents, 200);
    assert_eq!(
        l.budget_of("team-b").unwrap().limit_cents,
        100,
        "* covers the rest"
    );
    assert!(ledger("team-a=1/1h").budget_of("team-b").is_none());
}

#[test]
fn spend_in_the_window_comes_from_status() {
    let l = ledger("team-a=50.00/24h");
    let store = [
        seen("a", &paid("2026-11-28T08:00:00Z", 3000)),
        seen("b", &paid("2026-11-27T09:00:00Z", 9000)), // a day and an hour ago: out
        seen("c", &DealPaymentStatus::default()),
    ];
    let b = l.measure("team-a", &store, now()).unwrap();
    assert_eq!((b.spent_cents, b.left_cents()), (3000, 2000));
    assert_eq!(b.frees_at, Some("2026-11-29T08:00:00Z".parse().unwrap()));
    assert!(l.measure("team-b", &store, now()).is_none());
}

#[test]
fn an_attempt_is_admitted_only_within_what_is_left() {
    let l = ledger("team-a=50.00/24h");
    let store = [seen("a", &paid("2026-11-28T08:00:00Z", 3000))];
    let err = l
        .admit("team-a", "b", None, &attempting("x", 2100), &store, now())
        .unwrap_err();
    for figure in ["50.00 per 1d", "30.00 spent", "21.00"] {
        assert!(err.contains(figure), "{figure} in {err}");
    }
    let ok = l.admit("team-a", "b", None, &attempting("x", 2000), &store, now());
    assert!(ok.is_ok());
    // Admitted, it counts before the store shows it.
    assert_eq!(
        l.measure("team-a", &store, now()).unwrap().spent_cents,
        5000
    );
    // Writing the same attempt again (e.g. a status refresh) is not a new attempt.
    let again = l.admit(
        "team-a",
        "b",
        Some("x"),
        &attempting("x", 2000),
        &store,
        now(),
    );
    assert!(again.is_ok());
}

#[test]
fn a_failed_write_gives_the_reservation_back() {
    let l = ledger("team-a=50.00/24h");
    let a = l
        .admit("team-a", "a", None, &attempting("x", 4000), &[], now())
        .unwrap();
    assert!(
        l.admit("team-a", "b", None, &attempting("y", 4000), &[], now())
            .is_err()
    );
    l.roll_back(a);
    assert!(
        l.admit("team-a", "b", None, &attempting("y", 4000), &[], now())
            .is_ok()
    );
}

#[test]
fn a_refused_payment_frees_its_reservation_once_its_status_says_so() {
    let l = ledger("team-a=50.00/24h");
    let _ = l
        .admit("team-a", "a", None, &attempting("x", 4000), &[], now())
        .unwrap();
    // PayDeals refused it: the fold clears the attempt, and that write is what this process knows.
    let _ = l
        .admit(
            "team-a",
            "a",
            Some("x"),
            &DealPaymentStatus::default(),
            &[],
            now(),
        )
        .unwrap();
    // The store still shows the attempt in flight (it lags): this process's own write wins.
    let stale = [seen("a", &attempting("x", 4000))];
    assert_eq!(l.measure("team-a", &stale, now()).unwrap().spent_cents, 0);
    assert!(
        l.admit("team-a", "b", None, &attempting("y", 4000), &stale, now())
            .is_ok()
    );
}

#[test]
fn after_a_restart_attempts_in_flight_in_the_store_still_count() {
    let l = ledger("team-a=50.00/24h");
    let store = [seen("a", &attempting("x", 4000))];
    assert_eq!(
        l.measure("team-a", &store, now()).unwrap().spent_cents,
        4000
    );
    assert!(
        l.admit("team-a", "b", None, &attempting("y", 1001), &store, now())
            .is_err()
    );
}

#[test]
fn an_attempt_without_a_price_is_never_admitted_under_a_budget() {
    let l = ledger("team-a=50.00/24h");
    let mut st = attempting("x", 1);
    st.in_flight.as_mut().unwrap().quoted_cents = None;
    assert!(l.admit("team-a", "a", None, &st, &[], now()).is_err());
    assert!(
        ledger("team-b=1/1h")
            .admit("team-a", "a", None, &st, &[], now())
            .is_ok(),
        "no budget in team-a: nothing to check"
    );
}

#[test]
fn two_payments_at_once_with_budget_for_one_exactly_one_is_admitted() {
    for round in 0..200 {
        let l = ledger("team-a=50.00/24h");
        let gate = Barrier::new(2);
        let results: Vec<bool> = std::thread::scope(|s| {
            let tasks: Vec<_> = ["a", "b"]
                .map(|uid| {
                    let (l, gate) = (&l, &gate);
                    s.spawn(move || {
                        gate.wait();
                        l.admit("team-a", uid, None, &attempting(uid, 3000), &[], now())
                            .is_ok()
                    })
                })
                .into_iter()
                .collect();
            tasks.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert_eq!(
            results.iter().filter(|ok| **ok).count(),
            1,
            "round {round}: {results:?}"
        );
    }
}

#[test]
fn forgetting_on_a_new_leadership_falls_back_to_the_store() {
    let l = ledger("team-a=50.00/24h");
    let _ = l
        .admit("team-a", "a", None, &attempting("x", 4000), &[], now())
        .unwrap();
    l.forget();
    assert_eq!(l.measure("team-a", &[], now()).unwrap().spent_cents, 0);
}

#[test]
fn the_flag_and_its_environment_variable_reach_run() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: crate::controller::RunArgs,
    }
    let cli = Cli::try_parse_from([
        "dealpay",
        "--namespace-budget",
        "team-a=5000.00/24h",
        "--namespace-budget",
        "*=1/1h,team-b=2/7d",
    ])
    .unwrap();
    let flags: Vec<String> = cli
        .run
        .namespace_budgets
        .iter()
        .map(|b| b.to_string())
        .collect();
    assert_eq!(flags, ["team-a=5000.00/1d", "*=1.00/1h", "team-b=2.00/7d"]);
    assert!(Cli::try_parse_from(["dealpay", "--namespace-budget", "team-a=5000"]).is_err());
}

#[test]
fn the_gauges_show_each_budget_with_what_the_window_has_left() {
    let l = Ledger::new(vec![
        parse_flag("team-a=50.00/24h").unwrap(),
        parse_flag("team-c=10.00/1h").unwrap(),
        parse_flag("*=20.00/1h").unwrap(),
    ]);
    let mut seen_by_ns: BTreeMap<String, Vec<Seen>> = BTreeMap::new();
    seen_by_ns.insert(
        "team-a".into(),
        vec![
            seen("a", &paid("2026-11-28T08:00:00Z", 3000)),
            seen("b", &paid("2026-11-27T09:00:00Z", 9000)), // out of the window
        ],
    );
    seen_by_ns.insert(
        "team-b".into(),
        vec![seen("c", &paid("2026-11-28T09:30:00Z", 2500))],
    );
    // An attempt this process admitted and the store does not show yet counts too.
    let _reserved = l
        .admit("team-d", "d", None, &attempting("x", 500), &[], now())
        .unwrap();
    let figures: Vec<(String, i64, i64)> = l
        .figures(&seen_by_ns, now())
        .into_iter()
        .map(|(ns, b)| (ns, b.limit_cents, b.left_cents()))
        .collect();
    assert_eq!(
        figures,
        [
            ("team-a".to_string(), 5000, 2000),
            // Above its budget (the * one): nothing left, never negative.
            ("team-b".to_string(), 2000, 0),
            // Its own budget, nothing spent.
            ("team-c".to_string(), 1000, 1000),
            ("team-d".to_string(), 2000, 1500),
        ]
    );
    // Without a * budget only the namespaces named get a gauge.
    let l = ledger("team-a=50.00/24h");
    let names: Vec<String> = l
        .figures(&seen_by_ns, now())
        .into_iter()
        .map(|(ns, _)| ns)
        .collect();
    assert_eq!(names, ["team-a"]);
}

fn receipt(uid: &str, attempt: &str, cents: Option<i64>) -> Seen {
    Seen {
        uid: uid.into(),
        charge: cents.map(|cents| Charge { at: now(), cents }),
        receipt_of: Some(attempt.into()),
    }
}

/// Issue 22: a DealPayment pruned and re-created (same orders) while this replica leads. The re-created
/// one finds its order paid already and its status shows that cost; its own attempt's receipt says
/// NotCharged. The journal counts the money once (the end-to-end test caught 2.00 for 1.00 paid).
#[test]
fn a_re_created_payment_does_not_count_the_money_its_predecessor_spent() {
    let l = ledger("n=150.00/24h");
    let mut refound = paid(NOW, 10000);
    refound.open_attempts.clear();
    // This replica wrote the re-created object's status (the order found paid by a lookup)…
    let cache = [receipt("old", "a1", Some(10000))];
    let _ = l.admit("n", "new", None, &refound, &cache, now()).unwrap();
    // …and its own attempt's receipt is in the cache: refused, nothing charged.
    let cache = [
        receipt("old", "a1", Some(10000)),
        receipt("new", "a2", None),
    ];
    let b = l.measure("n", &cache, now()).unwrap();
    assert_eq!(b.spent_cents, 10000, "counted once, from the journal");
}

/// Until its receipt reaches the cache, an attempt this replica admitted still counts at its quote.
#[test]
fn an_admitted_attempt_counts_until_its_receipt_is_cached() {
    let l = ledger("n=150.00/24h");
    let mut st = attempting("a2", 4000);
    st.open_attempts.push(*st.in_flight.clone().unwrap());
    let cache = [receipt("p", "a1", Some(10000))];
    let _ = l.admit("n", "p", None, &st, &cache, now()).unwrap();
    assert_eq!(l.measure("n", &cache, now()).unwrap().spent_cents, 14000);
    let cache = [
        receipt("p", "a1", Some(10000)),
        receipt("p", "a2", Some(4000)),
    ];
    assert_eq!(
        l.measure("n", &cache, now()).unwrap().spent_cents,
        14000,
        "not twice"
    );
}
