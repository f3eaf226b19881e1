//! The cached form of a settled DealPayment: what the gauges and namespace budgets read, nothing more.
//!
//! Most DealPayments in a long-lived cluster are paid and delivered, and the cache holds each of them for
//! the operator's lifetime. A settled object has nothing left to decide (`Ready=True` for its generation,
//! no attempt or lookup open, not being deleted), so reconciles skip it, and its status is cut to what
//! is still read from the cache: the `Ready` condition's status and reason (the by-reason gauge), what it
//! spent and when (`dealpay_spent_total`, the namespace budget's window), and which Secret it names
//! (the Secret watch's mapper). Anything that could give it work again (a spec change, a deletion)
//! arrives as a new, whole object from the watch.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use crate::api::{DealPayment, DealPaymentSpec, DealPaymentStatus, OrderRecord};
use crate::engine::conditions::{READY, find};

/// True when nothing is left to decide for this object's generation.
pub fn is_compact(dp: &DealPayment) -> bool {
    let Some(st) = &dp.status else {
        return false;
    };
    let generation = dp.metadata.generation;
    dp.metadata.deletion_timestamp.is_none()
        && generation.is_some()
        && st.observed_generation == generation
        && st.in_flight.is_none()
        && st.pending_lookup.is_none()
        && find(&st.conditions, READY).is_some_and(|c| {
            c.status == "True" && Some(c.observed_generation.unwrap_or(0)) == generation
        })
}

/// Cuts a settled object's status to what the cache is still read for; leaves others whole.
pub fn compact(dp: &mut DealPayment) {
    if !is_compact(dp) {
        return;
    }
    let Some(st) = dp.status.take() else {
        return;
    };
    // Nothing reads these from the cache for a settled object: the Secret mapper reads the credentials,
    // and a change of anything else arrives as a new object.
    dp.metadata.creation_timestamp = None;
    dp.metadata.labels = None;
    dp.metadata.owner_references = None;
    dp.spec = DealPaymentSpec {
        credentials: dp.spec.credentials.take(),
        ..Default::default()
    };
    let ready = find(&st.conditions, READY).map(|c| Condition {
        message: String::new(),
        ..c.clone()
    });
    // A charged order without a price counts at the quoted total (engine::spend::charge).
    let unpriced = st
        .orders
        .iter()
        .any(|o| o.state.charged() && o.cost_cents.is_none());
    dp.status = Some(DealPaymentStatus {
        observed_generation: st.observed_generation,
        conditions: ready.into_iter().collect(),
        paid_at: st.paid_at,
        attempts: st.attempts,
        orders: st
            .orders
            .into_iter()
            .map(|o| OrderRecord {
                id: o.id,
                state: o.state,
                cost_cents: o.cost_cents,
                tencent_status: None,
                request_id: None,
            })
            .collect(),
        total_cost: st.total_cost,
        currency: st.currency,
        quote: st.quote.filter(|_| unpriced),
        ..Default::default()
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::spend::charge;

    fn paid(generation: i64) -> DealPayment {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "billing.dealpay.dev/v1alpha1",
            "kind": "DealPayment",
            "metadata": {"name": "a", "namespace": "n", "uid": "u1", "resourceVersion": "7", "generation": generation},
            "spec": {"orderIds": ["o1"], "credentials": {"secretRef": {"name": "tencent"}}},
            "status": {
                "observedGeneration": 2,
                "conditions": [
                    {"type": "Ready", "status": "True", "reason": "Paid", "message": "paid and delivered o1 (RequestId r)",
                     "lastTransitionTime": "2026-11-29T10:00:00Z", "observedGeneration": 2},
                    {"type": "Paid", "status": "True", "reason": "Paid", "message": "money moved",
                     "lastTransitionTime": "2026-11-29T10:00:00Z", "observedGeneration": 2}
                ],
                "orderIds": ["o1"], "resourceIds": ["ins-1"], "requestId": "r",
                "paidAt": "2026-11-29T10:00:00Z", "attempts": 1,
                "orders": [{"id": "o1", "state": "Paid", "tencentStatus": 4, "requestId": "r", "costCents": 1200}],
                "totalCost": "12.00", "currency": "CNY"
            }
        }))
        .unwrap()
    }

    #[test]
    fn a_settled_object_keeps_what_gauges_and_budgets_read() {
        let mut dp = paid(2);
        let before = dp.status.clone().unwrap();
        compact(&mut dp);
        let st = dp.status.as_ref().unwrap();
        assert_eq!(st.conditions.len(), 1);
        let ready = find(&st.conditions, READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("True", "Paid")
        );
        assert!(st.resource_ids.is_empty() && st.request_id.is_none());
        assert_eq!(st.total_cost.as_deref(), Some("12.00"));
        assert_eq!(
            charge(st),
            charge(&before),
            "the budget counts the same money"
        );
        assert!(is_compact(&dp), "still settled, so still skipped");
        assert_eq!(
            dp.spec.credentials.map(|c| c.secret_ref.name).as_deref(),
            Some("tencent"),
            "the Secret mapper still finds it"
        );
    }

    #[test]
    fn work_left_keeps_the_object_whole() {
        let mut newer_spec = paid(3);
        let whole = newer_spec.clone();
        compact(&mut newer_spec);
        assert_eq!(
            newer_spec.status, whole.status,
            "a new generation is decided on"
        );

        let mut deleting = paid(2);
        deleting.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
        );
        let whole = deleting.clone();
        compact(&mut deleting);
        assert_eq!(
            deleting.status, whole.status,
            "deletion reads what was paid"
        );

        let mut looking = paid(2);
        looking.status.as_mut().unwrap().conditions[0].status = "False".into();
        let whole = looking.clone();
        compact(&mut looking);
        assert_eq!(looking.status, whole.status);
    }
}
