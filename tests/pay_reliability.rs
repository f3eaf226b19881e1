//! The engine, driven by `dealpay pay`'s loop, against the real sandbox over HTTP with injected faults.
//! The sandbox's charge ledger proves that no order is ever charged twice.

use std::collections::BTreeMap;
use std::time::Duration;

use dealpay_operator::api::{DealPayment, DealPaymentSpec, OrderState};
use dealpay_operator::engine::conditions::{PAID, READY, STALLED, find};
use dealpay_operator::engine::{Curve, Policy};
use dealpay_operator::pay::{Outcome, drive};
use dealpay_operator::sandbox::{
    DEMO_SECRET_ID, DEMO_SECRET_KEY, Fault, FaultRule, Sandbox, SandboxConfig,
};
use dealpay_operator::tencent::{Client, ClientConfig, Credentials};
use tokio::time::Instant;

const O1: &str = "20261128000000000001";
const O2: &str = "20261128000000000002";
const UNDELIVERABLE: &str = "20261128000000000301";

/// The sandbox's and the engine's signature window, short so that a lost answer is waited out fast.
const SIGNATURE_TTL: u64 = 2;

fn fast_policy() -> Policy {
    let c = Curve {
        base: Duration::from_millis(20),
        cap: Duration::from_millis(200),
    };
    Policy {
        transient: c,
        needs_human: c,
        lookup: c,
        unknown: c,
        signature_ttl: Duration::from_secs(SIGNATURE_TTL),
        clock_margin: Duration::from_secs(1),
        window_lookup_every: Duration::from_millis(500),
        ..Policy::default()
    }
}

/// The sandbox as the real API behaves: an order that is not unpaid is refused (InvalidDeal).
async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig {
        signature_ttl: SIGNATURE_TTL,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox starts")
}

/// The sandbox in double-charge mode: a second PayDeals for a paid order is charged again, so a
/// double payment shows in the ledger instead of being refused.
async fn double_charge_sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig {
        double_charge: true,
        signature_ttl: SIGNATURE_TTL,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox starts")
}

/// Nothing was paid twice, and (in the normal mode) nothing paid was ever offered to PayDeals again.
fn assert_never_repaid(sb: &Sandbox, what: &str) {
    let stats = sb.stats();
    assert_eq!(stats.duplicate_charges, 0, "{what}: {:?}", sb.ledger());
    let invalid = stats
        .actions
        .get("PayDeals")
        .and_then(|a| a.errors.get("FailedOperation.InvalidDeal"))
        .copied()
        .unwrap_or(0);
    assert_eq!(invalid, 0, "{what}: PayDeals was offered a paid order");
}

fn client(sb: &Sandbox, timeout: Duration) -> Client {
    Client::new(&ClientConfig {
        endpoint: sb.url(),
        timeout,
        rate_per_second: 0,
        ..Default::default()
    })
    .unwrap()
}

fn payment(ids: &[&str]) -> DealPayment {
    DealPayment::new(
        "p",
        DealPaymentSpec {
            order_ids: ids.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        },
    )
}

fn demo() -> Credentials {
    Credentials::new(DEMO_SECRET_ID, DEMO_SECRET_KEY, None)
}

async fn pay_with(
    sb: &Sandbox,
    dp: &mut DealPayment,
    creds: &Credentials,
    timeout: Duration,
) -> Outcome {
    let deadline = Instant::now() + Duration::from_secs(20);
    drive(
        &client(sb, timeout),
        Ok(creds),
        dp,
        deadline,
        &fast_policy(),
    )
    .await
}

fn charges(sb: &Sandbox) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for c in sb.ledger() {
        *m.entry(c.order_id).or_insert(0) += 1;
    }
    m
}

fn ready_reason(dp: &DealPayment) -> (String, String) {
    let c = find(&dp.status.as_ref().unwrap().conditions, READY).unwrap();
    (c.status.clone(), c.reason.clone())
}

async fn ends_ready_charged_once(fault: Fault, expected_attempts: u32) {
    for double in [true, false] {
        let sb = if double {
            double_charge_sandbox().await
        } else {
            sandbox().await
        };
        let mut rule = FaultRule::new(fault.clone());
        rule.action = Some("PayDeals".into());
        rule.count = Some(1);
        sb.add_fault(rule);
        let mut dp = payment(&[O1, O2]);
        let outcome = pay_with(&sb, &mut dp, &demo(), Duration::from_secs(2)).await;
        assert_eq!(outcome, Outcome::Ready, "{fault:?}: {:?}", dp.status);
        let ch = charges(&sb);
        assert_eq!(ch.get(O1), Some(&1), "{fault:?}: {ch:?}");
        assert_eq!(ch.get(O2), Some(&1), "{fault:?}: {ch:?}");
        assert_never_repaid(&sb, &format!("{fault:?}"));
        let st = dp.status.as_ref().unwrap();
        assert_eq!(st.attempts, expected_attempts, "{fault:?}");
        assert_eq!(ready_reason(&dp), ("True".into(), "Paid".into()));
        assert!(st.in_flight.is_none() && st.pending_lookup.is_none());
        assert_eq!(st.resource_ids.len(), 2, "{fault:?}: {:?}", st.resource_ids);
        sb.shutdown().await;
    }
}

#[tokio::test]
async fn charge_then_dropped_connection_is_looked_up_not_repaid() {
    ends_ready_charged_once(Fault::ChargeThenDrop, 1).await;
}

#[tokio::test]
async fn charge_then_internal_error_is_looked_up_not_repaid() {
    ends_ready_charged_once(Fault::ChargeThenInternalError, 1).await;
}

#[tokio::test]
async fn internal_error_before_charging_is_proved_unpaid_then_paid() {
    ends_ready_charged_once(Fault::InternalError, 2).await;
}

#[tokio::test]
async fn bad_gateway_is_proved_unpaid_then_paid() {
    ends_ready_charged_once(Fault::Http502, 2).await;
}

#[tokio::test]
async fn dropped_connection_without_charge_is_proved_unpaid_then_paid() {
    ends_ready_charged_once(Fault::Drop, 2).await;
}

#[tokio::test]
async fn partial_payment_pays_only_the_rest() {
    ends_ready_charged_once(Fault::PartialPayment, 2).await;
}

#[tokio::test]
async fn timeout_after_charge_is_looked_up_not_repaid() {
    let sb = double_charge_sandbox().await;
    let mut rule = FaultRule::new(Fault::Latency {
        ms: 1500,
        after_charge: true,
    });
    rule.action = Some("PayDeals".into());
    rule.count = Some(1);
    sb.add_fault(rule);
    let mut dp = payment(&[O1]);
    let outcome = pay_with(&sb, &mut dp, &demo(), Duration::from_millis(500)).await;
    assert_eq!(outcome, Outcome::Ready, "{:?}", dp.status);
    assert_eq!(charges(&sb).get(O1), Some(&1));
    assert_never_repaid(&sb, "timeout after charge");
    assert_eq!(dp.status.unwrap().attempts, 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn insufficient_balance_stalls_with_the_reason_and_recovers_after_top_up() {
    let sb = sandbox().await;
    sb.update_world(|w| w.accounts.iter_mut().for_each(|a| a.balance = 0));
    let mut dp = payment(&[O1]);
    let outcome = pay_with(&sb, &mut dp, &demo(), Duration::from_secs(2)).await;
    assert_eq!(outcome, Outcome::Stalled);
    assert_eq!(
        ready_reason(&dp),
        ("False".into(), "BalanceInsufficient".into())
    );
    let st = dp.status.clone().unwrap();
    assert!(find(&st.conditions, STALLED).unwrap().status == "True");
    let msg = &find(&st.conditions, READY).unwrap().message;
    assert!(
        msg.contains("FailedOperation.BalanceInsufficient") && msg.contains("RequestId"),
        "{msg}"
    );
    assert!(charges(&sb).is_empty());
    // Top up; once the backoff has run out (here: declared over) the next run pays.
    sb.update_world(|w| w.accounts.iter_mut().for_each(|a| a.balance = 1_000_000));
    dp.status.as_mut().unwrap().next_retry_at = None;
    let outcome = pay_with(&sb, &mut dp, &demo(), Duration::from_secs(2)).await;
    assert_eq!(outcome, Outcome::Ready, "{:?}", dp.status);
    assert_eq!(charges(&sb).get(O1), Some(&1));
    sb.shutdown().await;
}

#[tokio::test]
async fn undeliverable_order_is_paid_once_and_stalls() {
    let sb = double_charge_sandbox().await;
    let mut dp = payment(&[UNDELIVERABLE]);
    let outcome = pay_with(&sb, &mut dp, &demo(), Duration::from_secs(2)).await;
    assert_eq!(outcome, Outcome::Stalled);
    assert_eq!(ready_reason(&dp).1, "DeliveryFailed");
    let paid = find(&dp.status.as_ref().unwrap().conditions, PAID).unwrap();
    assert_eq!(paid.status, "True");
    // Running again never pays again.
    let outcome = pay_with(&sb, &mut dp, &demo(), Duration::from_secs(2)).await;
    assert_eq!(outcome, Outcome::Stalled);
    assert_eq!(charges(&sb).get(UNDELIVERABLE), Some(&1));
    assert_never_repaid(&sb, "undeliverable");
    sb.shutdown().await;
}

#[tokio::test]
async fn already_paid_order_is_recognised_by_lookup() {
    let sb = sandbox().await;
    let mut first = payment(&[O1]);
    assert_eq!(
        pay_with(&sb, &mut first, &demo(), Duration::from_secs(2)).await,
        Outcome::Ready
    );
    // A second resource for the same order: PayDeals says InvalidDeal, the lookup proves it paid.
    let mut second = payment(&[O1]);
    assert_eq!(
        pay_with(&sb, &mut second, &demo(), Duration::from_secs(2)).await,
        Outcome::Ready
    );
    assert_eq!(charges(&sb).get(O1), Some(&1));
    sb.shutdown().await;
}

#[tokio::test]
async fn wrong_key_stalls_and_never_prints_the_key() {
    let sb = sandbox().await;
    let creds = Credentials::new(DEMO_SECRET_ID, "a-wrong-key-value-42", None);
    let mut dp = payment(&[O1]);
    let outcome = pay_with(&sb, &mut dp, &creds, Duration::from_secs(2)).await;
    assert_eq!(outcome, Outcome::Stalled);
    assert_eq!(ready_reason(&dp).1, "SignatureFailure");
    let yaml = serde_norway::to_string(&dp).unwrap();
    assert!(!yaml.contains("a-wrong-key-value-42"));
    assert!(charges(&sb).is_empty());
    sb.shutdown().await;
}

#[tokio::test]
async fn deliver_failed_on_two_orders_keeps_the_delivered_one() {
    let sb = double_charge_sandbox().await;
    let mut dp = payment(&[O1, UNDELIVERABLE]);
    let outcome = pay_with(&sb, &mut dp, &demo(), Duration::from_secs(2)).await;
    assert_eq!(outcome, Outcome::Stalled);
    let st = dp.status.as_ref().unwrap();
    let state = |id: &str| st.orders.iter().find(|o| o.id == id).map(|o| o.state);
    assert_eq!(state(O1), Some(OrderState::Paid), "{:?}", st.orders);
    assert_eq!(state(UNDELIVERABLE), Some(OrderState::DeliveryFailed));
    assert!(
        st.resource_ids.iter().any(|r| r.ends_with("00000001")),
        "the delivered order keeps its resource id: {:?}",
        st.resource_ids
    );
    assert_eq!(ready_reason(&dp).1, "DeliveryFailed");
    assert_never_repaid(&sb, "deliver failed");
    sb.shutdown().await;
}

#[tokio::test]
async fn ready_waits_for_delivery_and_sees_a_late_failure() {
    let sb = double_charge_sandbox().await;
    sb.update_world(|w| {
        for id in [O1, UNDELIVERABLE] {
            w.orders.get_mut(id).unwrap().delivery_delay_ms = 600;
        }
    });
    let mut dp = payment(&[O1]);
    assert_eq!(
        pay_with(&sb, &mut dp, &demo(), Duration::from_secs(2)).await,
        Outcome::Ready
    );
    let st = dp.status.as_ref().unwrap();
    assert!(st.orders.iter().all(|o| o.state == OrderState::Paid));
    assert!(
        !st.resource_ids.is_empty(),
        "filled from the delivered deal"
    );
    // Charged, answered success, then delivery fails: found by looking, never paid again.
    let mut dp = payment(&[UNDELIVERABLE]);
    assert_eq!(
        pay_with(&sb, &mut dp, &demo(), Duration::from_secs(2)).await,
        Outcome::Stalled
    );
    assert_eq!(ready_reason(&dp).1, "DeliveryFailed");
    assert_eq!(
        find(&dp.status.as_ref().unwrap().conditions, PAID)
            .unwrap()
            .status,
        "True"
    );
    assert_never_repaid(&sb, "delivery delay");
    assert!(
        sb.stats().actions["DescribeDealsByCond"].requests >= 3,
        "Ready came from lookups"
    );
    sb.shutdown().await;
}

/// Pays O1 against a double-charge sandbox whose first PayDeals is cut off and executed 1.5 s later
/// (the `late` fault: a request that sat in the API's queue), with `policy`; the charges of O1.
async fn late_request_charges(policy: &Policy) -> (Outcome, usize, DealPayment) {
    let sb = double_charge_sandbox().await;
    sb.add_fault(
        FaultRule::new(Fault::Late { ms: 1500 })
            .for_action("PayDeals")
            .times(1),
    );
    let mut dp = payment(&[O1]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let c = client(&sb, Duration::from_secs(2));
    let outcome = drive(&c, Ok(&demo()), &mut dp, deadline, policy).await;
    // The late request has run (or expired) by now: the ledger is final.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let n = charges(&sb).get(O1).copied().unwrap_or(0);
    sb.shutdown().await;
    (outcome, n, dp)
}

/// Issue 21, defect 2: a retry must not race the request it replaces. With the signature window
/// waited out (lookups in between), the late request is found paid and nothing is sent again.
#[tokio::test]
async fn a_late_request_is_waited_out_not_raced() {
    let (outcome, charged, dp) = late_request_charges(&fast_policy()).await;
    assert_eq!(outcome, Outcome::Ready, "{:?}", dp.status);
    assert_eq!(charged, 1, "charged once");
    assert_eq!(
        dp.status.as_ref().unwrap().attempts,
        1,
        "no second PayDeals"
    );
}

/// The control: without the window (the engine before the fix retried as soon as a lookup saw the
/// order unpaid), the same fault charges twice. Shows the test above can fail.
#[tokio::test]
async fn without_the_window_the_same_late_request_double_charges() {
    let racing = Policy {
        signature_ttl: Duration::from_millis(1),
        clock_margin: Duration::ZERO,
        ..fast_policy()
    };
    let (_, charged, _) = late_request_charges(&racing).await;
    assert_eq!(charged, 2, "the retry and the late request both charged");
}
