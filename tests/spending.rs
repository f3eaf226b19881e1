//! Spending control against the sandbox over HTTP: caps, dry runs and the recorded total, with the
//! ledger as the truth of what was charged.

use std::time::Duration;

use dealpay_operator::api::{DealPayment, DealPaymentSpec};
use dealpay_operator::engine::conditions::{ConditionType, PAYABLE, READY, STALLED, find, is_true};
use dealpay_operator::engine::{Curve, Policy};
use dealpay_operator::pay::{Outcome, drive};
use dealpay_operator::sandbox::{DEMO_SECRET_ID, DEMO_SECRET_KEY, Sandbox, SandboxConfig};
use dealpay_operator::tencent::{Client, ClientConfig, Credentials};
use tokio::time::Instant;

const O1: &str = "20261128000000000001"; // 1200 cents
const O2: &str = "20261128000000000002"; // 3400 cents
const BIG: &str = "20261128000000000100"; // 2500 + 1500 cents

fn policy(cap: Option<i64>) -> Policy {
    let c = Curve {
        base: Duration::from_millis(20),
        cap: Duration::from_millis(200),
    };
    Policy {
        transient: c,
        lookup: c,
        unknown: c,
        max_total_cents: cap,
        ..Policy::default()
    }
}

async fn run(sb: &Sandbox, dp: &mut DealPayment, cap: Option<i64>) -> Outcome {
    let client = Client::new(&ClientConfig {
        endpoint: sb.url(),
        rate_per_second: 0,
        ..Default::default()
    })
    .unwrap();
    let creds = Credentials::new(DEMO_SECRET_ID, DEMO_SECRET_KEY, None);
    let deadline = Instant::now() + Duration::from_secs(20);
    drive(&client, Ok(&creds), dp, deadline, &policy(cap)).await
}

fn payment(spec: DealPaymentSpec) -> DealPayment {
    DealPayment::new("p", spec)
}

fn orders(ids: &[&str], cap: Option<&str>) -> DealPaymentSpec {
    DealPaymentSpec {
        order_ids: ids.iter().map(|s| s.to_string()).collect(),
        max_total_cost: cap.map(str::to_string),
        ..Default::default()
    }
}

fn reason(dp: &DealPayment, t: ConditionType) -> (String, String, String) {
    let c = find(&dp.status.as_ref().unwrap().conditions, t).unwrap();
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig {
        double_charge: true,
        ..SandboxConfig::default()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn within_the_cap_it_pays_and_records_what_was_charged() {
    let sb = sandbox().await;
    let mut dp = payment(orders(&[O1, O2], Some("46.00")));
    assert_eq!(run(&sb, &mut dp, None).await, Outcome::Ready);
    let charged: i64 = sb.ledger().iter().map(|c| c.amount).sum();
    assert_eq!(charged, 4600);
    assert_eq!(
        dp.status.as_ref().unwrap().total_cost.as_deref(),
        Some("46.00")
    );
    assert_eq!(reason(&dp, PAYABLE).0, "True");
    sb.shutdown().await;
}

#[tokio::test]
async fn above_any_cap_nothing_is_paid() {
    let sb = sandbox().await;
    // The spec's cap.
    let mut dp = payment(orders(&[O1, O2], Some("45.99")));
    assert_eq!(run(&sb, &mut dp, None).await, Outcome::Stalled);
    let (s, r, msg) = reason(&dp, STALLED);
    assert_eq!((s.as_str(), r.as_str()), ("True", "OverBudget"));
    assert!(msg.contains("46.00") && msg.contains("45.99"), "{msg}");
    // The operator's cap, stricter than the spec's.
    let mut dp = payment(orders(&[O1, O2], Some("1000")));
    assert_eq!(run(&sb, &mut dp, Some(4599)).await, Outcome::Stalled);
    assert_eq!(reason(&dp, READY).1, "OverBudget");
    // A big deal is priced by its sub-orders together (4000 cents).
    let mut dp = payment(DealPaymentSpec {
        big_deal_ids: vec![BIG.into()],
        max_total_cost: Some("39.99".into()),
        ..Default::default()
    });
    assert_eq!(run(&sb, &mut dp, None).await, Outcome::Stalled);
    assert!(
        reason(&dp, READY).2.contains("40.00"),
        "{:?}",
        reason(&dp, READY)
    );
    assert!(sb.ledger().is_empty(), "nothing above the cap is paid");
    sb.shutdown().await;
}

#[tokio::test]
async fn an_unknown_order_is_never_paid_blind_under_a_cap() {
    let sb = sandbox().await;
    let mut dp = payment(orders(&[O1, "20269999000000000001"], Some("100")));
    assert_eq!(run(&sb, &mut dp, None).await, Outcome::Stalled);
    let (_, r, msg) = reason(&dp, READY);
    assert_eq!(r, "NotPayable");
    assert!(msg.contains("20269999000000000001: not found"), "{msg}");
    assert!(sb.ledger().is_empty());
    sb.shutdown().await;
}

#[tokio::test]
async fn a_dry_run_proves_payability_then_the_real_run_pays_the_price_charged() {
    let sb = sandbox().await;
    let mut dp = payment(DealPaymentSpec {
        dry_run: true,
        ..orders(&[O1], Some("20"))
    });
    assert_eq!(run(&sb, &mut dp, None).await, Outcome::Stalled);
    assert!(is_true(&dp.status.as_ref().unwrap().conditions, PAYABLE));
    assert_eq!(reason(&dp, READY).1, "DryRun");
    assert!(reason(&dp, PAYABLE).2.contains("12.00"));
    assert!(sb.ledger().is_empty());
    // The price changes between the check and the payment (within the quote's 60 s): the recorded
    // total is what was charged, not what was quoted.
    sb.update_world(|w| w.orders.get_mut(O1).unwrap().price = 1300);
    dp.spec.dry_run = false;
    dp.metadata.generation = Some(2);
    assert_eq!(run(&sb, &mut dp, None).await, Outcome::Ready);
    let st = dp.status.as_ref().unwrap();
    assert_eq!(sb.ledger()[0].amount, 1300);
    assert_eq!(st.total_cost.as_deref(), Some("13.00"));
    assert_eq!(sb.stats().duplicate_charges, 0);
    sb.shutdown().await;
}

#[tokio::test]
async fn an_order_without_a_price_is_never_paid_under_a_cap() {
    let sb = sandbox().await;
    sb.update_world(|w| w.orders.get_mut(O2).unwrap().priced = false);
    let mut dp = payment(orders(&[O1, O2], Some("100")));
    assert_eq!(run(&sb, &mut dp, None).await, Outcome::Stalled);
    let (_, r, msg) = reason(&dp, READY);
    assert_eq!(r, "NotPayable");
    assert!(msg.contains(&format!("{O2}: no price")), "{msg}");
    assert_eq!(reason(&dp, PAYABLE).0, "False");
    // The operator's cap alone is enough to refuse paying blind.
    let mut dp = payment(orders(&[O1, O2], None));
    assert_eq!(run(&sb, &mut dp, Some(10_000)).await, Outcome::Stalled);
    assert_eq!(reason(&dp, READY).1, "NotPayable");
    assert!(sb.ledger().is_empty(), "nothing is paid blind");
    // Without any cap nothing is priced, as before caps existed: it pays, and the total stays unknown.
    let mut dp = payment(orders(&[O1, O2], None));
    assert_eq!(run(&sb, &mut dp, None).await, Outcome::Ready);
    assert_eq!(sb.ledger().len(), 2);
    assert_eq!(dp.status.as_ref().unwrap().total_cost, None);
    sb.shutdown().await;
}

#[tokio::test]
async fn the_currency_the_lookup_gives_is_recorded_with_the_total() {
    let sb = sandbox().await;
    let mut dp = payment(orders(&[O1], Some("20")));
    assert_eq!(run(&sb, &mut dp, None).await, Outcome::Ready);
    let st = dp.status.as_ref().unwrap();
    assert_eq!(
        (st.total_cost.as_deref(), st.currency.as_deref()),
        (Some("12.00"), Some("CNY"))
    );
    // Orders priced in two currencies cannot be held to one cap.
    sb.update_world(|w| w.orders.get_mut(BIG_SUB_2).unwrap().currency = "USD".into());
    let mut dp = payment(DealPaymentSpec {
        big_deal_ids: vec![BIG.into()],
        max_total_cost: Some("100".into()),
        ..Default::default()
    });
    assert_eq!(run(&sb, &mut dp, None).await, Outcome::Stalled);
    let msg = reason(&dp, READY).2;
    assert!(msg.contains("more than one currency (CNY, USD)"), "{msg}");
    assert_eq!(sb.ledger().len(), 1);
    sb.shutdown().await;
}

const BIG_SUB_2: &str = "20261128000000000102";
const PKG_1: &str = "20261128000000000201"; // package with ...202
const PKG_2: &str = "20261128000000000202";

#[tokio::test]
async fn a_pay_together_shortfall_is_named_and_nothing_is_paid() {
    let sb = sandbox().await;
    // DescribeDealsByCond shows no package membership (the real API's Deal has no such field), so
    // the dry run can only say the order itself is payable, and says what it cannot see.
    let mut dp = payment(DealPaymentSpec {
        dry_run: true,
        ..orders(&[PKG_1], Some("100"))
    });
    assert_eq!(run(&sb, &mut dp, None).await, Outcome::Stalled);
    assert_eq!(reason(&dp, PAYABLE).0, "True");
    assert!(
        reason(&dp, READY)
            .2
            .contains("FailedOperation.NeedPayTogether"),
        "{:?}",
        reason(&dp, READY)
    );
    // Paying for real: PayDeals refuses the incomplete package and names the missing order; nothing
    // is charged and the payment waits for a spec that lists the whole package.
    dp.spec.dry_run = false;
    dp.metadata.generation = Some(2);
    assert_eq!(run(&sb, &mut dp, None).await, Outcome::Stalled);
    let (s, r, msg) = reason(&dp, STALLED);
    assert_eq!(
        (s.as_str(), r.as_str()),
        ("True", "NeedPayTogether"),
        "{msg}"
    );
    assert!(msg.contains(PKG_2), "{msg}");
    assert!(sb.ledger().is_empty());
    // The whole package pays.
    let mut dp = payment(orders(&[PKG_1, PKG_2], Some("100")));
    assert_eq!(run(&sb, &mut dp, None).await, Outcome::Ready);
    assert_eq!(sb.ledger().len(), 2);
    sb.shutdown().await;
}

const TOGETHER_1: &str = "20261128000000000401"; // 1800 cents, big deal ...400 purchased together
const TOGETHER_2: &str = "20261128000000000402"; // 700 cents
const TOGETHER: &str = "20261128000000000400";

fn dry_run(ids: &[&str]) -> DealPayment {
    payment(DealPaymentSpec {
        dry_run: true,
        ..orders(ids, None)
    })
}

#[tokio::test]
async fn a_dry_run_names_the_sub_orders_its_big_deal_must_be_paid_with() {
    let sb = sandbox().await;
    // One sub-order alone: the lookup lists its big deal and finds the other one unpaid.
    let mut dp = dry_run(&[TOGETHER_1]);
    assert_eq!(run(&sb, &mut dp, None).await, Outcome::Stalled);
    let (s, r, msg) = reason(&dp, PAYABLE);
    assert_eq!(
        (s.as_str(), r.as_str()),
        ("False", "NeedPayTogether"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("big deal {TOGETHER} also has unpaid {TOGETHER_2}")),
        "{msg}"
    );
    assert_eq!(reason(&dp, READY).1, "NeedPayTogether");
    assert_eq!(reason(&dp, STALLED).0, "False", "a verdict, not a stall");
    // Both: payable, for both prices together.
    let mut dp = dry_run(&[TOGETHER_1, TOGETHER_2]);
    assert_eq!(run(&sb, &mut dp, None).await, Outcome::Stalled);
    let (s, r, msg) = reason(&dp, PAYABLE);
    assert_eq!((s.as_str(), r.as_str()), ("True", "Payable"), "{msg}");
    assert!(msg.contains("25.00"), "{msg}");
    assert!(sb.ledger().is_empty(), "a dry run pays nothing");
    // Turning the dry run off pays both, once.
    dp.spec.dry_run = false;
    dp.metadata.generation = Some(2);
    assert_eq!(run(&sb, &mut dp, None).await, Outcome::Ready);
    let mut charged: Vec<String> = sb.ledger().into_iter().map(|c| c.order_id).collect();
    charged.sort();
    assert_eq!(charged, [TOGETHER_1, TOGETHER_2]);
    assert_eq!(sb.stats().duplicate_charges, 0);
    sb.shutdown().await;
}

#[tokio::test]
async fn paying_one_sub_order_of_a_big_deal_purchased_together_is_refused_and_charges_nothing() {
    let sb = sandbox().await;
    // The prediction holds no real payment back: PayDeals decides, and refuses.
    let mut dp = payment(orders(&[TOGETHER_1], None));
    assert_eq!(run(&sb, &mut dp, None).await, Outcome::Stalled);
    let (s, r, msg) = reason(&dp, STALLED);
    assert_eq!(
        (s.as_str(), r.as_str()),
        ("True", "NeedPayTogether"),
        "{msg}"
    );
    assert!(
        msg.contains("FailedOperation.NeedPayTogeter") && msg.contains(TOGETHER_2),
        "{msg}"
    );
    assert_eq!(dp.status.as_ref().unwrap().attempts, 1);
    assert!(sb.ledger().is_empty(), "nothing charged");
    sb.shutdown().await;
}
