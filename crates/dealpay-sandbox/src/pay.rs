//! PayDeals semantics as pure functions over the world: check everything, then charge all or nothing.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::api::ApiFailure;
use super::world::{Order, World};
use tencent_billing::models::{PayDealsRequest, status};

/// One charged order in the ledger; tests read it to prove that nothing was paid twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Charge {
    /// Sub-order charged.
    pub order_id: String,
    /// Its big deal, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub big_deal_id: Option<String>,
    /// Uin of the account charged.
    pub account: String,
    /// SecretId that signed the request.
    pub secret_id: String,
    /// Order price in cents (cash + voucher).
    pub amount: i64,
    /// Cents taken from the balance.
    pub cash: i64,
    /// Cents taken from vouchers.
    pub voucher: i64,
    /// RequestId of the PayDeals call that charged.
    pub request_id: String,
    /// When (`YYYY-MM-DD HH:MM:SS`, UTC+8).
    pub time: String,
    /// False when delivery failed (status 5).
    pub delivered: bool,
    /// True when this order id already had a ledger entry: a double payment (set by the ledger).
    #[serde(default)]
    pub duplicate: bool,
}

/// Which orders PayDeals may charge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ChargeMode {
    /// Like the real API: only unpaid orders (status 1); anything else is `FailedOperation.InvalidDeal`.
    #[default]
    Strict,
    /// Orders already charged (status 2, 3, 4 or 5) are charged again, so that tests can see what a
    /// client that pays twice would cost; other statuses are still refused.
    DoubleCharge,
}

impl ChargeMode {
    /// `DoubleCharge` when `on` (the `--double-charge` flag and `doubleCharge` setting).
    pub fn from_flag(on: bool) -> Self {
        if on {
            ChargeMode::DoubleCharge
        } else {
            ChargeMode::Strict
        }
    }
}

/// Who pays and under which request; recorded in every charge.
#[derive(Debug, Clone, Copy)]
pub struct PayContext<'a> {
    /// Uin of the authenticated account.
    pub account: &'a str,
    /// SecretId that signed the request.
    pub secret_id: &'a str,
    /// RequestId of the call.
    pub request_id: &'a str,
    /// Current time as the API formats it.
    pub time: &'a str,
    /// The same instant in unix milliseconds: the start of a delayed delivery.
    pub now_ms: i64,
}

/// A request that passed every check, with everything needed to charge it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayPlan {
    /// Sub-orders to charge, in request order, without duplicates.
    pub orders: Vec<String>,
    /// Vouchers to spend from, in this order.
    pub vouchers: Vec<String>,
}

/// What one executed payment did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PayResult {
    /// Sub-orders charged.
    pub order_ids: Vec<String>,
    /// Distinct big deals of those sub-orders.
    pub big_deal_ids: Vec<String>,
    /// Resources of those sub-orders.
    pub resource_ids: Vec<String>,
    /// Ledger entries, one per sub-order.
    pub charges: Vec<Charge>,
    /// Sub-orders charged whose delivery failed.
    pub delivery_failed: Vec<String>,
}

/// The PayDeals success body (`RequestId` is added by the envelope).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PayAnswer {
    /// Sub-orders paid.
    pub order_ids: Vec<String>,
    /// Resources delivered.
    pub resource_ids: Vec<String>,
    /// Big deals paid.
    pub big_deal_ids: Vec<String>,
}

impl PayResult {
    /// The answer: success, or `PaySuccDeliverFailed` when any delivery failed (the money is gone either way).
    pub fn answer(&self) -> Result<PayAnswer, ApiFailure> {
        if !self.delivery_failed.is_empty() {
            return Err(ApiFailure::new(
                "FailedOperation.PaySuccDeliverFailed",
                format!(
                    "Payment succeeded but shipment failed for {}. Please contact the cloud platform staff for handling.",
                    self.delivery_failed.join(", ")
                ),
            ));
        }
        Ok(PayAnswer {
            order_ids: self.order_ids.clone(),
            resource_ids: self.resource_ids.clone(),
            big_deal_ids: self.big_deal_ids.clone(),
        })
    }
}

/// Checks a PayDeals request for `account` (a uin) by the real API's rules, without changing anything.
pub fn plan(world: &World, account: &str, req: &PayDealsRequest) -> Result<PayPlan, ApiFailure> {
    plan_with(world, account, req, ChargeMode::Strict)
}

/// Checks a PayDeals request for `account` (a uin) without changing anything.
///
/// The checks run in this order: parameter shape, account flags, order lookup and ownership,
/// order status (which statuses are payable depends on `mode`), pay-together groups, AgentPay,
/// voucher, balance.
pub fn plan_with(
    world: &World,
    account: &str,
    req: &PayDealsRequest,
    mode: ChargeMode,
) -> Result<PayPlan, ApiFailure> {
    check_request(req)?;
    let acct = check_account(world, account)?;
    let orders = resolve_orders(world, account, req)?;
    check_payable(world, &orders, mode)?;
    check_pay_together(world, account, &orders)?;
    check_agent_pay(world, req, &orders)?;
    let vouchers = choose_vouchers(world, account, req)?;
    check_balance(world, acct, &orders, &vouchers)?;
    Ok(PayPlan { orders, vouchers })
}

fn check_request(req: &PayDealsRequest) -> Result<(), ApiFailure> {
    let by_order = !req.order_ids.is_empty();
    let by_deal = !req.big_deal_ids.is_empty();
    if by_order == by_deal {
        return Err(ApiFailure::new(
            "InvalidParameter",
            "Exactly one of OrderIds and BigDealIds must be given.",
        ));
    }
    if req.voucher_ids.len() > 1 {
        return Err(ApiFailure::new(
            "InvalidParameterValue",
            "Only one voucher can be specified.",
        ));
    }
    if req.auto_voucher > 1 {
        return Err(ApiFailure::new(
            "InvalidParameterValue",
            "AutoVoucher must be 0 or 1.",
        ));
    }
    if !matches!(req.agent_pay, 0 | 3 | 4) {
        return Err(ApiFailure::new(
            "InvalidParameterValue",
            "AgentPay must be 0, 3 or 4.",
        ));
    }
    Ok(())
}

fn check_account<'w>(
    world: &'w World,
    account: &str,
) -> Result<&'w super::world::Account, ApiFailure> {
    let acct = world.account(account).ok_or_else(|| {
        ApiFailure::new(
            "AuthFailure.SecretIdNotFound",
            "The account does not exist.",
        )
    })?;
    if !acct.real_name_certified {
        return Err(ApiFailure::new(
            "UnauthorizedOperation.NotCertification",
            "The account has not been real-name authenticated, and payment failed.",
        ));
    }
    if acct.certification_needs_upgrade {
        return Err(ApiFailure::new(
            "UnauthorizedOperation.CertificationNeedUpgrade",
            "Due to account security upgrade, purchase cloud resources requires complete real-name information.",
        ));
    }
    if !acct.cam_permission {
        return Err(ApiFailure::new(
            "UnauthorizedOperation.CamNoAuth",
            "The account does not have CAM permission for billing:PayDeals.",
        ));
    }
    if !acct.finance_permission {
        return Err(ApiFailure::new(
            "UnauthorizedOperation.CamNoAuth",
            "The account does not have the finance permission needed to pay.",
        ));
    }

    Ok(acct)
}

/// The order ids to charge, once each: the given ones, or every sub-order of the given big deals.
fn resolve_orders(
    world: &World,
    account: &str,
    req: &PayDealsRequest,
) -> Result<Vec<String>, ApiFailure> {
    let by_order = !req.order_ids.is_empty();
    let mut orders: Vec<String> = Vec::new();
    let mut seen = BTreeSet::new();
    if by_order {
        for id in &req.order_ids {
            match world.orders.get(id) {
                Some(o) if o.account == account => {
                    if seen.insert(id.clone()) {
                        orders.push(id.clone());
                    }
                }
                _ => {
                    return Err(ApiFailure::new(
                        "InvalidParameterValue",
                        format!("The order {id} does not exist."),
                    ));
                }
            }
        }
    } else {
        for deal in &req.big_deal_ids {
            let subs: Vec<&String> = world
                .orders
                .values()
                .filter(|o| o.account == account && o.big_deal_id.as_deref() == Some(deal))
                .map(|o| &o.order_id)
                .collect();
            if subs.is_empty() {
                return Err(ApiFailure::new(
                    "InvalidParameterValue",
                    format!("The order {deal} does not exist."),
                ));
            }
            for id in subs {
                if seen.insert(id.clone()) {
                    orders.push(id.clone());
                }
            }
        }
    }

    Ok(orders)
}

fn check_payable(world: &World, orders: &[String], mode: ChargeMode) -> Result<(), ApiFailure> {
    for id in orders {
        let o = &world.orders[id];
        let payable = match mode {
            ChargeMode::Strict => o.status == status::UNPAID,
            ChargeMode::DoubleCharge => matches!(
                o.status,
                status::UNPAID
                    | status::PAID
                    | status::DELIVERING
                    | status::DELIVERED
                    | status::DELIVERY_FAILED
            ),
        };
        if !payable {
            return Err(ApiFailure::new(
                "FailedOperation.InvalidDeal",
                format!(
                    "Order status error. Only unpaid orders support payment: {id} is {}.",
                    status::name(o.status)
                ),
            ));
        }
    }

    Ok(())
}

/// A package is paid whole, and so are the sub-orders of a big deal purchased together: an unpaid
/// order of the same group left out refuses the call. The two groups answer different codes (the
/// big deal's with the API's misspelt `NeedPayTogeter`).
fn check_pay_together(world: &World, account: &str, orders: &[String]) -> Result<(), ApiFailure> {
    let seen: BTreeSet<&String> = orders.iter().collect();
    let left_out = |same: &dyn Fn(&Order) -> bool| -> Vec<&str> {
        world
            .orders
            .values()
            .filter(|o| {
                o.account == account
                    && o.status == status::UNPAID
                    && same(o)
                    && !seen.contains(&&o.order_id)
            })
            .map(|o| o.order_id.as_str())
            .collect()
    };
    for id in orders {
        let order = &world.orders[id];
        if let Some(group) = &order.pay_together_group {
            let missing = left_out(&|o| o.pay_together_group.as_ref() == Some(group));
            if !missing.is_empty() {
                return Err(ApiFailure::new(
                    "FailedOperation.NeedPayTogether",
                    format!(
                        "Package orders must be purchased together: also pay {}.",
                        missing.join(", ")
                    ),
                ));
            }
        }
        if let Some(big) = order
            .big_deal_id
            .as_ref()
            .filter(|_| order.pay_with_big_deal)
        {
            let missing = left_out(&|o| o.big_deal_id.as_ref() == Some(big));
            if !missing.is_empty() {
                return Err(ApiFailure::new(
                    "FailedOperation.NeedPayTogeter",
                    format!(
                        "Orders purchased together must be paid simultaneously: also pay {} (big deal {big}).",
                        missing.join(", ")
                    ),
                ));
            }
        }
    }

    Ok(())
}

fn check_agent_pay(
    world: &World,
    req: &PayDealsRequest,
    orders: &[String],
) -> Result<(), ApiFailure> {
    if req.agent_pay != 0
        && let Some(id) = orders
            .iter()
            .find(|id| !world.orders[*id].agent_pay_allowed)
    {
        return Err(ApiFailure::new(
            "FailedOperation.AgentPayDealCannotDown",
            format!("The order {id} cannot be paid by an agent."),
        ));
    }

    Ok(())
}

fn choose_vouchers(
    world: &World,
    account: &str,
    req: &PayDealsRequest,
) -> Result<Vec<String>, ApiFailure> {
    let usable = |v: &&super::world::Voucher| v.account == account && v.valid && v.amount > 0;
    let vouchers: Vec<String> = if let Some(vid) = req.voucher_ids.first() {
        match world.vouchers.iter().find(|v| &v.id == vid) {
            Some(v) if usable(&v) => vec![v.id.clone()],
            _ => {
                return Err(ApiFailure::new(
                    "FailedOperation.InvalidVoucher",
                    format!("Vouchers are not available: {vid}."),
                ));
            }
        }
    } else if req.auto_voucher == 1 {
        world
            .vouchers
            .iter()
            .filter(usable)
            .map(|v| v.id.clone())
            .collect()
    } else {
        Vec::new()
    };

    Ok(vouchers)
}

fn check_balance(
    world: &World,
    acct: &super::world::Account,
    orders: &[String],
    vouchers: &[String],
) -> Result<(), ApiFailure> {
    let total: i64 = orders.iter().map(|id| world.orders[id].price).sum();
    let voucher_total: i64 = world
        .vouchers
        .iter()
        .filter(|v| vouchers.contains(&v.id))
        .map(|v| v.amount)
        .sum();
    let cash = total - voucher_total.min(total);
    if cash > acct.balance {
        return Err(ApiFailure::new(
            "FailedOperation.BalanceInsufficient",
            format!(
                "The account balance is insufficient: {cash} cents needed, {} available.",
                acct.balance
            ),
        ));
    }
    Ok(())
}

/// Charges the planned orders except those `skip` names (a fault's partial payment), delivers them and records charges.
pub fn execute(
    world: &mut World,
    plan: &PayPlan,
    skip: &dyn Fn(usize, &str) -> bool,
    ctx: &PayContext<'_>,
) -> PayResult {
    let mut result = PayResult::default();
    for (i, id) in plan.orders.iter().enumerate() {
        if skip(i, id) {
            continue;
        }
        let Some(price) = world.orders.get(id).map(|o| o.price) else {
            continue;
        };
        let mut from_vouchers = 0;
        for vid in &plan.vouchers {
            if let Some(v) = world.vouchers.iter_mut().find(|v| &v.id == vid) {
                let take = v.amount.min(price - from_vouchers);
                v.amount -= take;
                from_vouchers += take;
            }
        }
        let cash = price - from_vouchers;
        if let Some(a) = world.account_mut(ctx.account) {
            a.balance -= cash;
        }
        let o = world.orders.get_mut(id).expect("order looked up above");
        // The stored status is the delivery's outcome; with a delay, readers see 2 and 3 first
        // (see `delivery`), and the answer can name neither resources nor a failure yet.
        o.status = if o.deliverable {
            status::DELIVERED
        } else {
            status::DELIVERY_FAILED
        };
        let delayed = o.delivery_delay_ms > 0;
        o.charged_at_ms = delayed.then_some(ctx.now_ms);
        o.voucher_decline = from_vouchers;
        o.pay_time = Some(ctx.time.to_string());
        result.order_ids.push(id.clone());
        if let Some(d) = &o.big_deal_id
            && !result.big_deal_ids.contains(d)
        {
            result.big_deal_ids.push(d.clone());
        }
        if delayed {
            // Not delivered yet: no resources, and a later failure is only visible by looking up.
        } else if o.deliverable {
            result.resource_ids.extend(o.resource_ids.iter().cloned());
        } else {
            result.delivery_failed.push(id.clone());
        }
        result.charges.push(Charge {
            order_id: id.clone(),
            big_deal_id: o.big_deal_id.clone(),
            account: ctx.account.to_string(),
            secret_id: ctx.secret_id.to_string(),
            amount: price,
            cash,
            voucher: from_vouchers,
            request_id: ctx.request_id.to_string(),
            time: ctx.time.to_string(),
            delivered: o.deliverable,
            duplicate: false,
        });
    }
    result
}

/// Plans (by the real API's rules) and executes in one step.
pub fn pay_deals(
    world: &mut World,
    req: &PayDealsRequest,
    ctx: &PayContext<'_>,
) -> Result<PayResult, ApiFailure> {
    let plan = plan(world, ctx.account, req)?;
    Ok(execute(world, &plan, &|_, _| false, ctx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::{Account, DEMO_BALANCE, DEMO_SECRET_ID, DEMO_UIN, DEMO_VOUCHER_ID, Order};

    fn demo() -> World {
        World::demo_normalized()
    }

    fn ctx() -> PayContext<'static> {
        PayContext {
            account: DEMO_UIN,
            secret_id: DEMO_SECRET_ID,
            request_id: "rid",
            time: "2026-11-28 08:00:00",
            now_ms: 0,
        }
    }

    fn orders(ids: &[&str]) -> PayDealsRequest {
        PayDealsRequest {
            order_ids: ids.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn deals(ids: &[&str]) -> PayDealsRequest {
        PayDealsRequest {
            big_deal_ids: ids.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn code(w: &mut World, req: &PayDealsRequest) -> String {
        let before = w.clone();
        let err = pay_deals(w, req, &ctx()).unwrap_err();
        assert_eq!(*w, before, "a refused payment changes nothing");
        err.code
    }

    fn balance(w: &World) -> i64 {
        w.account(DEMO_UIN).unwrap().balance
    }

    #[test]
    fn plain_orders_are_charged_and_delivered() {
        let mut w = demo();
        let r = pay_deals(
            &mut w,
            &orders(&["20261128000000000001", "20261128000000000002"]),
            &ctx(),
        )
        .unwrap();
        assert_eq!(
            r.order_ids,
            ["20261128000000000001", "20261128000000000002"]
        );
        assert_eq!(r.resource_ids, ["ins-00000001", "ins-00000002"]);
        assert!(r.big_deal_ids.is_empty());
        assert_eq!(balance(&w), DEMO_BALANCE - 4600);
        assert_eq!(w.orders["20261128000000000001"].status, status::DELIVERED);
        assert_eq!(r.charges.len(), 2);
        assert_eq!(r.charges[0].amount, 1200);
        assert_eq!(r.charges[0].cash, 1200);
        assert_eq!(r.charges[0].request_id, "rid");
        assert_eq!(r.charges[1].account, DEMO_UIN);
        let a = r.answer().unwrap();
        assert_eq!(a.order_ids.len(), 2);
    }

    #[test]
    fn paying_twice_is_invalid_deal() {
        let mut w = demo();
        pay_deals(&mut w, &orders(&["20261128000000000001"]), &ctx()).unwrap();
        assert_eq!(
            code(&mut w, &orders(&["20261128000000000001"])),
            "FailedOperation.InvalidDeal"
        );
    }

    #[test]
    fn double_charge_mode_charges_paid_orders_again() {
        let mut w = demo();
        let once = orders(&["20261128000000000001"]);
        let pay_again = |w: &mut World| {
            let p = plan_with(w, DEMO_UIN, &once, ChargeMode::DoubleCharge)?;
            Ok::<_, ApiFailure>(execute(w, &p, &|_, _| false, &ctx()))
        };
        pay_again(&mut w).unwrap();
        let r = pay_again(&mut w).unwrap();
        assert_eq!(r.charges.len(), 1);
        assert_eq!(balance(&w), DEMO_BALANCE - 2 * 1200);
        for st in [status::PAID, status::DELIVERING, status::DELIVERY_FAILED] {
            w.orders.get_mut("20261128000000000001").unwrap().status = st;
            pay_again(&mut w).unwrap();
        }
        w.orders.get_mut("20261128000000000001").unwrap().status = status::CANCELLED;
        let err = pay_again(&mut w).unwrap_err();
        assert_eq!(err.code, "FailedOperation.InvalidDeal");
    }

    #[test]
    fn delayed_delivery_answers_success_without_resources() {
        let mut w = demo();
        for id in ["20261128000000000001", "20261128000000000301"] {
            w.orders.get_mut(id).unwrap().delivery_delay_ms = 1_000;
        }
        let mut c = ctx();
        c.now_ms = 5_000;
        let req = orders(&["20261128000000000001", "20261128000000000301"]);
        let r = pay_deals(&mut w, &req, &c).unwrap();
        assert!(r.resource_ids.is_empty());
        assert!(r.delivery_failed.is_empty());
        assert_eq!(r.answer().unwrap().order_ids.len(), 2);
        let failing = &w.orders["20261128000000000301"];
        assert_eq!(failing.charged_at_ms, Some(5_000));
        assert_eq!(failing.status_at(5_000), status::PAID);
        assert_eq!(failing.status_at(6_000), status::DELIVERY_FAILED);
        assert!(!r.charges[1].delivered);
    }

    #[test]
    fn all_or_nothing_when_one_order_is_paid() {
        let mut w = demo();
        pay_deals(&mut w, &orders(&["20261128000000000002"]), &ctx()).unwrap();
        assert_eq!(
            code(
                &mut w,
                &orders(&["20261128000000000001", "20261128000000000002"])
            ),
            "FailedOperation.InvalidDeal"
        );
        assert_eq!(w.orders["20261128000000000001"].status, status::UNPAID);
    }

    #[test]
    fn duplicate_ids_are_charged_once() {
        let mut w = demo();
        let r = pay_deals(
            &mut w,
            &orders(&["20261128000000000001", "20261128000000000001"]),
            &ctx(),
        )
        .unwrap();
        assert_eq!(r.charges.len(), 1);
        assert_eq!(balance(&w), DEMO_BALANCE - 1200);
    }

    #[test]
    fn parameter_shape() {
        let mut w = demo();
        assert_eq!(
            code(&mut w, &PayDealsRequest::default()),
            "InvalidParameter"
        );
        let mut both = orders(&["20261128000000000001"]);
        both.big_deal_ids = vec!["20261128000000000100".into()];
        assert_eq!(code(&mut w, &both), "InvalidParameter");
        let mut two = orders(&["20261128000000000003"]);
        two.voucher_ids = vec!["a".into(), "b".into()];
        assert_eq!(code(&mut w, &two), "InvalidParameterValue");
        let mut auto = orders(&["20261128000000000001"]);
        auto.auto_voucher = 2;
        assert_eq!(code(&mut w, &auto), "InvalidParameterValue");
        let mut agent = orders(&["20261128000000000001"]);
        agent.agent_pay = 1;
        assert_eq!(code(&mut w, &agent), "InvalidParameterValue");
    }

    #[test]
    fn unknown_orders_and_big_deals() {
        let mut w = demo();
        assert_eq!(
            code(&mut w, &orders(&["20261128000000000001", "nope"])),
            "InvalidParameterValue"
        );
        assert_eq!(code(&mut w, &deals(&["nope"])), "InvalidParameterValue");
    }

    /// A second, empty account with uin 2.
    fn other_account() -> Account {
        Account {
            uin: "2".into(),
            secret_id: "other".into(),
            secret_key: "k".into(),
            token: None,
            balance: 0,
            real_name_certified: true,
            certification_needs_upgrade: false,
            cam_permission: true,
            finance_permission: true,
        }
    }

    #[test]
    fn another_accounts_orders_cannot_be_paid() {
        let mut w = demo();
        w.accounts.push(other_account());
        w.orders
            .insert("theirs".into(), Order::new("theirs", "2", 10));
        assert_eq!(code(&mut w, &orders(&["theirs"])), "InvalidParameterValue");
        let mut c = ctx();
        c.account = "2";
        let err = pay_deals(&mut w, &orders(&["20261128000000000001"]), &c).unwrap_err();
        assert_eq!(err.code, "InvalidParameterValue");
    }

    #[test]
    fn big_deal_pays_every_sub_order() {
        let mut w = demo();
        let r = pay_deals(&mut w, &deals(&["20261128000000000100"]), &ctx()).unwrap();
        assert_eq!(
            r.order_ids,
            ["20261128000000000101", "20261128000000000102"]
        );
        assert_eq!(r.big_deal_ids, ["20261128000000000100"]);
        assert_eq!(r.resource_ids, ["ins-00000101", "ins-00000102"]);
        assert_eq!(balance(&w), DEMO_BALANCE - 4000);
        assert_eq!(
            code(&mut w, &deals(&["20261128000000000100"])),
            "FailedOperation.InvalidDeal"
        );
    }

    #[test]
    fn sub_order_of_a_big_deal_can_be_paid_alone() {
        let mut w = demo();
        let r = pay_deals(&mut w, &orders(&["20261128000000000101"]), &ctx()).unwrap();
        assert_eq!(r.big_deal_ids, ["20261128000000000100"]);
        assert_eq!(w.orders["20261128000000000102"].status, status::UNPAID);
    }

    #[test]
    fn pay_together_group_must_be_complete() {
        let mut w = demo();
        assert_eq!(
            code(&mut w, &orders(&["20261128000000000201"])),
            "FailedOperation.NeedPayTogether"
        );
        let r = pay_deals(
            &mut w,
            &orders(&["20261128000000000202", "20261128000000000201"]),
            &ctx(),
        )
        .unwrap();
        assert_eq!(r.charges.len(), 2);
    }

    #[test]
    fn a_big_deal_purchased_together_is_paid_whole() {
        let (a, b) = ("20261128000000000401", "20261128000000000402");
        let mut w = demo();
        let before = w.clone();
        let err = pay_deals(&mut w, &orders(&[a]), &ctx()).unwrap_err();
        assert_eq!(err.code, "FailedOperation.NeedPayTogeter");
        assert!(
            err.message.contains(b) && err.message.contains("20261128000000000400"),
            "{}",
            err.message
        );
        assert_eq!(w, before, "a refused payment changes nothing");
        assert_eq!(
            code(&mut w, &orders(&[b])),
            "FailedOperation.NeedPayTogeter"
        );
        // Both sub-orders, or the big deal itself, pay.
        let r = pay_deals(&mut w, &orders(&[b, a]), &ctx()).unwrap();
        assert_eq!(r.charges.len(), 2);
        let mut w = demo();
        let r = pay_deals(&mut w, &deals(&["20261128000000000400"]), &ctx()).unwrap();
        assert_eq!(r.order_ids, [a, b]);
        // A sub-order left out that is no longer unpaid does not hold the other back.
        let mut w = demo();
        w.orders.get_mut(b).unwrap().status = status::CANCELLED;
        assert_eq!(
            pay_deals(&mut w, &orders(&[a]), &ctx())
                .unwrap()
                .charges
                .len(),
            1
        );
    }

    #[test]
    fn account_flags() {
        type Flag = fn(&mut Account);
        let cases: [(Flag, &str); 4] = [
            (
                |a| a.real_name_certified = false,
                "UnauthorizedOperation.NotCertification",
            ),
            (
                |a| a.certification_needs_upgrade = true,
                "UnauthorizedOperation.CertificationNeedUpgrade",
            ),
            (
                |a| a.cam_permission = false,
                "UnauthorizedOperation.CamNoAuth",
            ),
            (
                |a| a.finance_permission = false,
                "UnauthorizedOperation.CamNoAuth",
            ),
        ];
        for (flip, want) in cases {
            let mut w = demo();
            flip(w.account_mut(DEMO_UIN).unwrap());
            assert_eq!(code(&mut w, &orders(&["20261128000000000001"])), want);
        }
    }

    #[test]
    fn agent_pay_needs_permission_per_order() {
        let mut w = demo();
        let mut req = orders(&["20261128000000000001"]);
        req.agent_pay = 3;
        assert_eq!(code(&mut w, &req), "FailedOperation.AgentPayDealCannotDown");
        w.orders
            .get_mut("20261128000000000001")
            .unwrap()
            .agent_pay_allowed = true;
        req.agent_pay = 4;
        pay_deals(&mut w, &req, &ctx()).unwrap();
    }

    #[test]
    fn explicit_voucher_pays_first() {
        let mut w = demo();
        let mut req = orders(&["20261128000000000003"]);
        req.voucher_ids = vec![DEMO_VOUCHER_ID.into()];
        let r = pay_deals(&mut w, &req, &ctx()).unwrap();
        assert_eq!(r.charges[0].voucher, 4500);
        assert_eq!(r.charges[0].cash, 0);
        assert_eq!(balance(&w), DEMO_BALANCE);
        assert_eq!(w.vouchers[0].amount, 500);
        assert_eq!(w.orders["20261128000000000003"].voucher_decline, 4500);
        let mut next = orders(&["20261128000000000002"]);
        next.voucher_ids = vec![DEMO_VOUCHER_ID.into()];
        let r = pay_deals(&mut w, &next, &ctx()).unwrap();
        assert_eq!((r.charges[0].voucher, r.charges[0].cash), (500, 2900));
        assert_eq!(w.vouchers[0].amount, 0);
        let mut empty = orders(&["20261128000000000001"]);
        empty.voucher_ids = vec![DEMO_VOUCHER_ID.into()];
        assert_eq!(code(&mut w, &empty), "FailedOperation.InvalidVoucher");
    }

    #[test]
    fn bad_vouchers() {
        let mut w = demo();
        w.accounts.push(other_account());
        w.vouchers.push(crate::world::Voucher {
            id: "theirs".into(),
            account: "2".into(),
            amount: 100,
            valid: true,
        });
        w.vouchers.push(crate::world::Voucher {
            id: "expired".into(),
            account: DEMO_UIN.into(),
            amount: 100,
            valid: false,
        });
        for vid in ["nope", "theirs", "expired"] {
            let mut req = orders(&["20261128000000000001"]);
            req.voucher_ids = vec![vid.into()];
            assert_eq!(
                code(&mut w, &req),
                "FailedOperation.InvalidVoucher",
                "{vid}"
            );
        }
    }

    #[test]
    fn auto_voucher_uses_the_accounts_vouchers() {
        let mut w = demo();
        let mut req = orders(&["20261128000000000002"]);
        req.auto_voucher = 1;
        let r = pay_deals(&mut w, &req, &ctx()).unwrap();
        assert_eq!((r.charges[0].voucher, r.charges[0].cash), (3400, 0));
        assert_eq!(w.vouchers[0].amount, 1600);
        let r = pay_deals(&mut w, &orders(&["20261128000000000001"]), &ctx()).unwrap();
        assert_eq!(r.charges[0].voucher, 0, "AutoVoucher 0 spends no voucher");
    }

    #[test]
    fn balance_counts_vouchers() {
        let mut w = demo();
        w.account_mut(DEMO_UIN).unwrap().balance = 0;
        assert_eq!(
            code(&mut w, &orders(&["20261128000000000001"])),
            "FailedOperation.BalanceInsufficient"
        );
        let mut req = orders(&["20261128000000000003"]);
        req.auto_voucher = 1;
        pay_deals(&mut w, &req, &ctx()).unwrap();
        w.account_mut(DEMO_UIN).unwrap().balance = 1199;
        assert_eq!(
            code(&mut w, &orders(&["20261128000000000001"])),
            "FailedOperation.BalanceInsufficient"
        );
        w.account_mut(DEMO_UIN).unwrap().balance = 1200;
        pay_deals(&mut w, &orders(&["20261128000000000001"]), &ctx()).unwrap();
        assert_eq!(balance(&w), 0);
    }

    #[test]
    fn undeliverable_order_is_charged_and_fails_delivery() {
        let mut w = demo();
        let r = pay_deals(
            &mut w,
            &orders(&["20261128000000000301", "20261128000000000001"]),
            &ctx(),
        )
        .unwrap();
        assert_eq!(r.charges.len(), 2);
        assert!(!r.charges[0].delivered);
        assert_eq!(r.delivery_failed, ["20261128000000000301"]);
        assert_eq!(
            w.orders["20261128000000000301"].status,
            status::DELIVERY_FAILED
        );
        assert_eq!(w.orders["20261128000000000001"].status, status::DELIVERED);
        assert_eq!(balance(&w), DEMO_BALANCE - 990 - 1200);
        assert_eq!(
            r.answer().unwrap_err().code,
            "FailedOperation.PaySuccDeliverFailed"
        );
    }

    #[test]
    fn execute_can_skip_orders() {
        let mut w = demo();
        let p = plan(
            &w,
            DEMO_UIN,
            &orders(&["20261128000000000001", "20261128000000000002"]),
        )
        .unwrap();
        let r = execute(&mut w, &p, &|i, _| i > 0, &ctx());
        assert_eq!(r.order_ids, ["20261128000000000001"]);
        assert_eq!(w.orders["20261128000000000002"].status, status::UNPAID);
    }
}
