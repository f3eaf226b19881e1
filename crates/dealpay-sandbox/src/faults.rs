//! Fault rules: what can go wrong on purpose, for which requests, and how often.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One way a request can be made to fail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Fault {
    /// Wait `ms` before processing (or after, with `afterCharge`), then answer normally.
    Latency {
        /// Milliseconds added.
        ms: u64,
        /// Sleep after the state changed instead of before, so a client timeout leaves a charge behind.
        #[serde(default)]
        after_charge: bool,
    },
    /// HTTP 502 with an HTML body, as a broken gateway answers; nothing is processed.
    Http502,
    /// Close the connection without answering; nothing is processed.
    Drop,
    /// Answer `InternalError`; nothing is processed.
    InternalError,
    /// Answer any error code; nothing is processed.
    Error {
        /// Tencent error code, e.g. `FailedOperation.PayPriceError`.
        code: String,
        /// Message; empty gets a generic one.
        #[serde(default)]
        message: String,
    },
    /// Charge, then close the connection without a single response byte.
    ChargeThenDrop,
    /// Charge, then answer `InternalError`.
    ChargeThenInternalError,
    /// Cut the client off at once without an answer, and run the request `ms` later, as a request that
    /// sat in the API's queue: it executes only if its X-TC-Timestamp is still inside the signature
    /// window then (else it is counted as `AuthFailure.SignatureExpire` and changes nothing).
    Late {
        /// Milliseconds until the request runs.
        ms: u64,
    },
    /// Charge only some orders and answer success listing only those: orders named in `orders`
    /// stay unpaid; without `orders`, only the first half (rounded up) of the request is charged.
    PartialPayment,
}

impl Fault {
    /// True for faults that act after the payment went through (they fire only when something was charged).
    pub fn after_charge(&self) -> bool {
        matches!(
            self,
            Fault::ChargeThenDrop | Fault::ChargeThenInternalError | Fault::PartialPayment
        )
    }
}

/// A fault plus the requests it applies to and how many times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    /// Assigned by the sandbox; used to delete the rule.
    #[serde(default)]
    pub id: u64,
    /// What happens.
    #[serde(flatten)]
    pub fault: Fault,
    /// Only requests naming one of these order or big deal ids (empty = every request).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orders: Vec<String>,
    /// Only this action (`PayDeals` or `DescribeDealsByCond`); absent = both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Fires this many more times, then disappears; absent = sticky.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
}

impl FaultRule {
    /// A sticky rule for every request.
    pub fn new(fault: Fault) -> Self {
        Self {
            id: 0,
            fault,
            orders: Vec::new(),
            action: None,
            count: None,
        }
    }

    /// Restricts the rule to requests naming one of `orders`.
    pub fn for_orders<I: IntoIterator<Item = S>, S: Into<String>>(mut self, orders: I) -> Self {
        self.orders = orders.into_iter().map(Into::into).collect();
        self
    }

    /// Restricts the rule to one action.
    pub fn for_action(mut self, action: &str) -> Self {
        self.action = Some(action.to_string());
        self
    }

    /// Makes the rule fire `n` times only.
    pub fn times(mut self, n: u32) -> Self {
        self.count = Some(n);
        self
    }

    fn matches(&self, action: &str, touched: &[String]) -> bool {
        self.count != Some(0)
            && self.action.as_deref().is_none_or(|a| a == action)
            && (self.orders.is_empty() || self.orders.iter().any(|o| touched.contains(o)))
    }
}

/// What the rules decided for one request before it is processed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Sleep before processing.
    pub delay_before: Duration,
    /// Sleep after processing.
    pub delay_after: Duration,
    /// A fault that replaces processing (502, drop, error).
    pub instead: Option<Fault>,
    /// Id of the first matching after-charge rule; it fires (and is consumed) only if something gets charged.
    pub after_rule: Option<u64>,
}

/// Picks the faults for one request and consumes one-shot counts of those that fire now.
///
/// Every matching latency rule adds up; of the other rules only the first match counts.
pub fn plan(rules: &mut Vec<FaultRule>, action: &str, touched: &[String]) -> Plan {
    let mut p = Plan::default();
    let mut outcome_taken = false;
    for r in rules.iter_mut() {
        if !r.matches(action, touched) {
            continue;
        }
        match &r.fault {
            Fault::Latency { ms, after_charge } => {
                let d = Duration::from_millis(*ms);
                if *after_charge {
                    p.delay_after += d;
                } else {
                    p.delay_before += d;
                }
                consume(r);
            }
            f if outcome_taken || (f.after_charge() && action != "PayDeals") => {}
            f if f.after_charge() => {
                p.after_rule = Some(r.id);
                outcome_taken = true;
            }
            f => {
                p.instead = Some(f.clone());
                outcome_taken = true;
                consume(r);
            }
        }
    }
    rules.retain(|r| r.count != Some(0));
    p
}

/// Fires the after-charge rule `id` if it still exists, returning its fault.
pub fn fire(rules: &mut Vec<FaultRule>, id: u64) -> Option<FaultRule> {
    let r = rules
        .iter_mut()
        .find(|r| r.id == id && r.count != Some(0))?;
    consume(r);
    let fired = r.clone();
    rules.retain(|r| r.count != Some(0));
    Some(fired)
}

fn consume(r: &mut FaultRule) {
    if let Some(n) = &mut r.count {
        *n = n.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn with_ids(mut rules: Vec<FaultRule>) -> Vec<FaultRule> {
        for (i, r) in rules.iter_mut().enumerate() {
            r.id = i as u64 + 1;
        }
        rules
    }

    #[test]
    fn yaml_form_is_flat() {
        let yaml = "- kind: latency\n  ms: 250\n  afterCharge: true\n- kind: chargeThenDrop\n  orders: ['1']\n  action: PayDeals\n  count: 1\n- kind: error\n  code: FailedOperation.PayPriceError\n";
        let rules: Vec<FaultRule> = serde_norway::from_str(yaml).unwrap();
        assert_eq!(
            rules[0].fault,
            Fault::Latency {
                ms: 250,
                after_charge: true
            }
        );
        assert_eq!(rules[1].fault, Fault::ChargeThenDrop);
        assert_eq!(rules[1].count, Some(1));
        assert_eq!(rules[1].orders, ["1"]);
        assert!(matches!(rules[2].fault, Fault::Error { .. }));
        let json = serde_json::to_value(&rules[1]).unwrap();
        assert_eq!(json["kind"], "chargeThenDrop");
        let back: FaultRule = serde_json::from_value(json).unwrap();
        assert_eq!(back, rules[1]);
    }

    #[test]
    fn one_shot_rules_disappear_after_firing() {
        let mut rules = with_ids(vec![FaultRule::new(Fault::InternalError).times(2)]);
        assert_eq!(
            plan(&mut rules, "PayDeals", &[]).instead,
            Some(Fault::InternalError)
        );
        assert_eq!(
            plan(&mut rules, "PayDeals", &[]).instead,
            Some(Fault::InternalError)
        );
        assert!(rules.is_empty());
        assert_eq!(plan(&mut rules, "PayDeals", &[]), Plan::default());
    }

    #[test]
    fn sticky_rules_stay() {
        let mut rules = with_ids(vec![FaultRule::new(Fault::Http502)]);
        for _ in 0..3 {
            assert_eq!(
                plan(&mut rules, "PayDeals", &[]).instead,
                Some(Fault::Http502)
            );
        }
        assert_eq!(rules.len(), 1);
    }

    #[test]
    fn order_and_action_filters() {
        let mut rules = with_ids(vec![
            FaultRule::new(Fault::Drop)
                .for_orders(["A"])
                .for_action("PayDeals"),
        ]);
        assert_eq!(plan(&mut rules, "PayDeals", &ids(&["B"])).instead, None);
        assert_eq!(
            plan(&mut rules, "DescribeDealsByCond", &ids(&["A"])).instead,
            None
        );
        assert_eq!(
            plan(&mut rules, "PayDeals", &ids(&["B", "A"])).instead,
            Some(Fault::Drop)
        );
    }

    #[test]
    fn latencies_add_up_and_first_outcome_wins() {
        let mut rules = with_ids(vec![
            FaultRule::new(Fault::Latency {
                ms: 10,
                after_charge: false,
            }),
            FaultRule::new(Fault::Latency {
                ms: 5,
                after_charge: true,
            })
            .times(1),
            FaultRule::new(Fault::InternalError),
            FaultRule::new(Fault::Http502),
        ]);
        let p = plan(&mut rules, "PayDeals", &[]);
        assert_eq!(p.delay_before, Duration::from_millis(10));
        assert_eq!(p.delay_after, Duration::from_millis(5));
        assert_eq!(p.instead, Some(Fault::InternalError));
        assert_eq!(rules.len(), 3);
    }

    #[test]
    fn after_charge_rules_wait_to_be_fired() {
        let mut rules = with_ids(vec![
            FaultRule::new(Fault::ChargeThenDrop).times(1),
            FaultRule::new(Fault::InternalError),
        ]);
        let p = plan(&mut rules, "PayDeals", &[]);
        assert_eq!(p.after_rule, Some(1));
        assert_eq!(
            p.instead, None,
            "an earlier after-charge rule shadows later ones"
        );
        assert_eq!(rules.len(), 2, "not consumed until fired");
        assert_eq!(fire(&mut rules, 1).unwrap().fault, Fault::ChargeThenDrop);
        assert!(fire(&mut rules, 1).is_none());
        assert_eq!(rules.len(), 1);
    }

    #[test]
    fn after_charge_rules_ignore_describe() {
        let mut rules = with_ids(vec![
            FaultRule::new(Fault::ChargeThenInternalError),
            FaultRule::new(Fault::Http502).for_action("DescribeDealsByCond"),
        ]);
        let p = plan(&mut rules, "DescribeDealsByCond", &[]);
        assert_eq!(p.after_rule, None);
        assert_eq!(p.instead, Some(Fault::Http502));
    }
}
