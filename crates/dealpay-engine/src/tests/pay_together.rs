//! A dry run of sub-order ids checks the big deals they belong to: an unpaid sub-order of the same big
//! deal left out of the spec makes the verdict NeedPayTogether; a real payment leaves that to PayDeals.

use super::*;
use dealpay_api::PayTogether;

const A: &str = "20261128000000000401";
const B: &str = "20261128000000000402";
const BIG: &str = "20261128000000000400";

fn sub(id: &str, big: &str, status: i64, cents: f64) -> Deal {
    Deal {
        real_total_cost: Some(cents),
        ..deal(id, big, status)
    }
}

fn dry(ids: &[&str]) -> Run {
    Run::new(DealPaymentSpec {
        dry_run: true,
        ..spec(ids)
    })
}

fn lists_big_deals(a: &Action) -> bool {
    match a {
        Action::LookUp { list_big_deals, .. } => *list_big_deals,
        other => panic!("a lookup was expected: {other:?}"),
    }
}

#[test]
fn a_dry_run_names_the_unpaid_sub_orders_of_its_big_deals_left_out() {
    let mut r = dry(&[A]);
    assert!(lists_big_deals(&r.step(Event::Observe).action));
    // The sub-order comes back twice (its own query and its big deal's): priced once.
    let d = r.step(looked_up(vec![
        sub(A, BIG, 1, 1800.0),
        sub(A, BIG, 1, 1800.0),
        sub(B, BIG, 1, 700.0),
    ]));
    assert!(
        matches!(d.action, Action::AwaitChange { .. }),
        "{:?}",
        d.action
    );
    let (status, reason, msg) = r.cond(PAYABLE);
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "NeedPayTogether")
    );
    assert!(
        msg.contains(&format!("big deal {BIG} also has unpaid {B}")),
        "{msg}"
    );
    assert!(msg.contains("spec.bigDealIds"), "{msg}");
    let (status, reason, msg) = r.cond(READY);
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "NeedPayTogether")
    );
    assert!(msg.starts_with("dry run: ") && msg.contains(B), "{msg}");
    // A verdict, not a wait and not a stall: nothing to do until the spec changes.
    assert_eq!(r.cond(RECONCILING).0, "False");
    assert_eq!(r.cond(STALLED).0, "False");
    let q = r.st().quote.clone().unwrap();
    assert_eq!(q.total_cents, 1800, "priced once");
    assert_eq!(
        q.pay_together,
        Some(vec![PayTogether {
            big_deal_id: BIG.into(),
            missing: vec![B.into()],
        }])
    );
    assert_eq!(r.st().attempts, 0);
}

#[test]
fn sub_orders_all_listed_or_not_unpaid_leave_a_dry_run_payable() {
    let cases: [(&[&str], Vec<Deal>); 4] = [
        (&[A, B], vec![sub(A, BIG, 1, 1800.0), sub(B, BIG, 1, 700.0)]),
        (&[A], vec![sub(A, BIG, 1, 1800.0), sub(B, BIG, 4, 700.0)]),
        (&[A], vec![sub(A, BIG, 1, 1800.0), sub(B, BIG, 7, 700.0)]),
        (&[A], vec![sub(A, "", 1, 1800.0), sub(B, "", 1, 700.0)]),
    ];
    for (ids, deals) in cases {
        let mut r = dry(ids);
        r.step(Event::Observe);
        r.step(looked_up(deals.clone()));
        let (status, reason, msg) = r.cond(PAYABLE);
        assert_eq!(
            (status.as_str(), reason.as_str()),
            ("True", "Payable"),
            "{ids:?} {deals:?}: {msg}"
        );
        assert_eq!(r.cond(READY).1, "DryRun");
        assert_eq!(r.st().quote.as_ref().unwrap().pay_together, Some(vec![]));
    }
}

#[test]
fn only_a_dry_run_of_sub_order_ids_asks_for_its_big_deals() {
    assert!(lists_big_deals(&dry(&[A]).step(Event::Observe).action));
    let mut by_big_deal = Run::new(DealPaymentSpec {
        dry_run: true,
        big_deal_ids: vec![BIG.into()],
        ..Default::default()
    });
    assert!(!lists_big_deals(&by_big_deal.step(Event::Observe).action));
    let mut capped = Run::new(DealPaymentSpec {
        max_total_cost: Some("100".into()),
        ..spec(&[A])
    });
    assert!(!lists_big_deals(&capped.step(Event::Observe).action));
    // The delivery lookup after a payment does not either.
    capped.step(looked_up(vec![sub(A, BIG, 1, 1800.0)]));
    capped.step(ok(&[A], "rid"));
    assert!(!lists_big_deals(&capped.step(Event::Observe).action));
}

#[test]
fn a_real_payment_is_not_held_back_by_sub_orders_left_out() {
    // Under a cap the lookup may still show a sibling: PayDeals decides, not the prediction.
    let mut r = Run::new(DealPaymentSpec {
        max_total_cost: Some("100".into()),
        ..spec(&[A])
    });
    r.step(Event::Observe);
    let d = r.step(looked_up(vec![
        sub(A, BIG, 1, 1800.0),
        sub(B, BIG, 1, 700.0),
    ]));
    assert!(is_pay(&d.action), "{:?}", d.action);
    assert_eq!(r.cond(PAYABLE).0, "True");

    // A dry run's verdict does not hold back the real payment that follows it (which, under a cap,
    // reuses the dry run's recent price).
    let mut r = dry(&[A]);
    r.spec.max_total_cost = Some("100".into());
    r.step(Event::Observe);
    r.step(looked_up(vec![
        sub(A, BIG, 1, 1800.0),
        sub(B, BIG, 1, 700.0),
    ]));
    assert_eq!(r.cond(READY).1, "NeedPayTogether");
    r.spec.dry_run = false;
    r.generation = 2;
    let d = r.step(Event::Observe);
    assert!(is_pay(&d.action), "{:?}", d.action);
    assert_eq!(r.cond(PAYABLE).0, "True");
    // PayDeals is the authority: its refusal charges nothing and waits for a spec change.
    r.step(api_err("FailedOperation.NeedPayTogeter"));
    let (status, reason, msg) = r.cond(STALLED);
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "NeedPayTogether")
    );
    assert!(msg.contains("FailedOperation.NeedPayTogeter"), "{msg}");
    assert_eq!(r.cond(PAID).0, "False");
}

#[test]
fn a_dry_run_does_not_reuse_a_price_that_never_checked_the_big_deals() {
    let mut r = Run::new(DealPaymentSpec {
        max_total_cost: Some("10".into()),
        ..spec(&[A])
    });
    r.step(Event::Observe);
    r.step(looked_up(vec![sub(A, BIG, 1, 1800.0)]));
    assert_eq!(r.cond(STALLED).1, "OverBudget");
    assert_eq!(r.st().quote.as_ref().unwrap().pay_together, None);
    r.spec.dry_run = true;
    r.generation = 2;
    let d = r.step(Event::Observe);
    assert!(
        lists_big_deals(&d.action),
        "priced again, with the big deals: {:?}",
        d.action
    );
}
