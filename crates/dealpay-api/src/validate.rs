//! Checks a DealPayment against the admission rules, naming the field, for `dealpay pay` and the engine.

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;

use super::rules::*;
use super::types::DealPaymentSpec;

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("rule patterns are valid")
}

static ID: LazyLock<Regex> = LazyLock::new(|| re(ID_PATTERN));
static VOUCHER: LazyLock<Regex> = LazyLock::new(|| re(VOUCHER_PATTERN));
static CPS_UIN: LazyLock<Regex> = LazyLock::new(|| re(CPS_UIN_PATTERN));
static REGION: LazyLock<Regex> = LazyLock::new(|| re(REGION_PATTERN));
static SECRET_NAME: LazyLock<Regex> = LazyLock::new(|| re(SECRET_NAME_PATTERN));
static AMOUNT: LazyLock<Regex> = LazyLock::new(|| re(AMOUNT_PATTERN));

fn check_list(field: &str, ids: &[String], pattern: &Regex, max: usize, errors: &mut Vec<String>) {
    if ids.len() > max {
        errors.push(format!(
            "spec.{field}: at most {max} items, got {}",
            ids.len()
        ));
    }
    let mut seen = HashSet::new();
    for (i, id) in ids.iter().enumerate() {
        if !pattern.is_match(id) {
            errors.push(format!(
                "spec.{field}[{i}]: {id:?} does not match {}",
                pattern.as_str()
            ));
        }
        if !seen.insert(id) {
            errors.push(format!("spec.{field}[{i}]: duplicate value {id:?}"));
        }
    }
}

/// Every rule the spec breaks, each naming its field; empty when valid.
pub fn validate_spec(spec: &DealPaymentSpec) -> Vec<String> {
    let mut errors = Vec::new();
    match (spec.order_ids.is_empty(), spec.big_deal_ids.is_empty()) {
        (true, true) => errors.push(
            "spec: set exactly one of spec.orderIds and spec.bigDealIds (both are empty)"
                .to_string(),
        ),
        (false, false) => errors.push(
            "spec: set exactly one of spec.orderIds and spec.bigDealIds (both are set)".to_string(),
        ),
        _ => {}
    }
    check_list("orderIds", &spec.order_ids, &ID, MAX_IDS, &mut errors);
    check_list("bigDealIds", &spec.big_deal_ids, &ID, MAX_IDS, &mut errors);
    check_list("voucherIds", &spec.voucher_ids, &VOUCHER, 1, &mut errors);
    if let Some(cap) = &spec.max_total_cost
        && !AMOUNT.is_match(cap)
    {
        errors.push(format!(
            "spec.maxTotalCost: {cap:?} is not an amount like \"1200.00\" (at most two decimals)"
        ));
    }
    if !AGENT_PAY_VALUES.contains(&spec.agent_pay) {
        errors.push(format!(
            "spec.agentPay: {} is not one of 0 (self pay), 3 (group agent), 4 (reseller)",
            spec.agent_pay
        ));
    }
    if let Some(c) = spec.cps_uin.as_deref().filter(|c| !CPS_UIN.is_match(c)) {
        errors.push(format!(
            "spec.cpsUin: {c:?} does not match {CPS_UIN_PATTERN}"
        ));
    }
    if let Some(r) = spec
        .region
        .as_deref()
        .filter(|r| r.len() > 32 || !REGION.is_match(r))
    {
        errors.push(format!(
            "spec.region: {r:?} is not a region such as ap-guangzhou"
        ));
    }
    if let Some(c) = &spec.credentials {
        let n = &c.secret_ref.name;
        if n.is_empty() || n.len() > 253 || !SECRET_NAME.is_match(n) {
            errors.push(format!(
                "spec.credentials.secretRef.name: {n:?} is not a valid Secret name"
            ));
        }
    }
    errors
}

/// The same ids, in any order: the lists are `x-kubernetes-list-type: set`, compared as sets by CEL.
fn same_set(a: &[String], b: &[String]) -> bool {
    a.iter().collect::<HashSet<_>>() == b.iter().collect::<HashSet<_>>()
}

/// The rules that compare an update with the stored object (CEL transition rules on 1.25+).
pub fn validate_update(old: &DealPaymentSpec, new: &DealPaymentSpec) -> Vec<String> {
    let mut errors = Vec::new();
    if !old.order_ids.is_empty() && !same_set(&old.order_ids, &new.order_ids) {
        errors.push(
            "spec.orderIds cannot change once set: create a new DealPayment for other orders"
                .into(),
        );
    }
    if !old.big_deal_ids.is_empty() && !same_set(&old.big_deal_ids, &new.big_deal_ids) {
        errors.push(
            "spec.bigDealIds cannot change once set: create a new DealPayment for other orders"
                .into(),
        );
    }
    errors
}
