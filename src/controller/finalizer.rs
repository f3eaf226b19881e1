//! Deleting a DealPayment: the finalizer that keeps the record of an unsettled payment.
//!
//! The status is the only record of a PayDeals call whose outcome is not known yet (`inFlight`) and of
//! ids still to be looked up (`pendingLookup`). Deleting the object while one exists would lose the fact
//! that money may have moved. So every DealPayment gets [`FINALIZER`], and on deletion:
//!
//! - nothing new is paid from the moment `deletionTimestamp` is set (the engine sees the spec as
//!   suspended), but lookups continue, so an unknown outcome is settled and recorded;
//! - the finalizer is removed once nothing is unsettled, or after [`SETTLE_LIMIT`], or at once when the
//!   escape hatch annotation [`FORCE_DELETE`]`: "true"` is set; the last two publish a Warning Event with
//!   what was left unsettled (attempt id, ids), and every removal an Event with what was paid.
//!
//! Deletion never refunds or cancels anything at Tencent. Without the operator, the finalizer can be
//! removed by hand (`kubectl patch dp NAME --type=merge -p '{"metadata":{"finalizers":null}}'`).

use std::borrow::Cow;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action as KubeAction;
use kube::runtime::events::{Event as KubeEvent, EventType};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::error::Error;
use super::pipeline::Next;
use super::reconcile::{Context, short};
use crate::api::{DealPayment, DealPaymentSpec, DealPaymentStatus};

/// The finalizer every DealPayment carries.
pub const FINALIZER: &str = "billing.dealpay.dev/payment-record";
/// Escape hatch: `billing.dealpay.dev/force-delete: "true"` lets a deletion go at once, settled or not.
pub const FORCE_DELETE: &str = "billing.dealpay.dev/force-delete";
/// How long a deletion waits for an unsettled payment before it lets the object go anyway.
pub const SETTLE_LIMIT: Duration = Duration::from_secs(10 * 60);

/// What a reconcile does after the finalizer step.
#[derive(Debug, Clone, PartialEq)]
pub enum Guard {
    /// Not being deleted: reconcile as usual.
    Proceed,
    /// The finalizer was just added: reconcile as usual from the version the patch made (waiting for
    /// its watch event would cost a reconcile per DealPayment).
    Added {
        /// resourceVersion after the patch.
        resource_version: String,
    },
    /// Being deleted with an unsettled payment: reconcile with nothing new paid, at most until `left`.
    Settle {
        /// Time left before [`SETTLE_LIMIT`] lets the object go.
        left: Duration,
    },
    /// Nothing more to do in this reconcile (the finalizer was added or removed, or the object goes).
    Stop(KubeAction),
}

impl Guard {
    /// The spec the engine sees: while settling a deletion, suspended, so no PayDeals call starts.
    pub fn spec<'a>(&self, spec: &'a DealPaymentSpec) -> Cow<'a, DealPaymentSpec> {
        match self {
            Guard::Settle { .. } => Cow::Owned(DealPaymentSpec {
                suspend: true,
                ..spec.clone()
            }),
            _ => Cow::Borrowed(spec),
        }
    }

    /// While settling, decide again no later than the deadline.
    pub fn bound(&self, next: Next) -> Next {
        match (self, next) {
            (Guard::Settle { left }, next) => {
                let wait = left.saturating_add(Duration::from_secs(1));
                match next {
                    Next::After(d) if d <= wait => Next::After(d),
                    _ => Next::After(wait),
                }
            }
            (_, next) => next,
        }
    }
}

/// The ids and attempt a deletion would lose track of, or None when the payment is settled.
pub fn unsettled(st: Option<&DealPaymentStatus>) -> Option<String> {
    let st = st?;
    let mut parts = Vec::new();
    if let Some(a) = &st.in_flight {
        parts.push(format!(
            "PayDeals attempt {} for {} has no recorded outcome",
            a.id,
            a.ids.join(", ")
        ));
    }
    if let Some(p) = &st.pending_lookup
        && !p.ids.is_empty()
    {
        parts.push(format!(
            "{} to be looked up ({})",
            p.ids.join(", "),
            p.reason.as_str()
        ));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// What was paid, for the Event that marks the record's end.
fn paid_summary(st: Option<&DealPaymentStatus>) -> String {
    let Some(st) = st else {
        return "nothing was paid".into();
    };
    let charged: Vec<String> = st
        .orders
        .iter()
        .filter(|o| o.state.charged())
        .map(|o| format!("{} {:?}", o.id, o.state))
        .collect();
    if charged.is_empty() {
        return "nothing was paid".into();
    }
    format!(
        "paid: {}; RequestId {}; resources {}",
        charged.join(", "),
        st.request_id.as_deref().unwrap_or("-"),
        if st.resource_ids.is_empty() {
            "-".to_string()
        } else {
            st.resource_ids.join(", ")
        }
    )
}

fn forced(dp: &DealPayment) -> bool {
    dp.annotations()
        .get(FORCE_DELETE)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// Time since `deletionTimestamp`.
fn deleting_for(dp: &DealPayment) -> Option<Duration> {
    let ts = dp.metadata.deletion_timestamp.as_ref()?;
    let since = jiff::Timestamp::now().duration_since(ts.0);
    Some(Duration::try_from(since).unwrap_or_default())
}

async fn publish(ctx: &Context, dp: &DealPayment, type_: EventType, reason: &str, note: String) {
    let ev = KubeEvent {
        type_,
        reason: reason.into(),
        note: Some(short(&note).to_string()),
        action: "Delete".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&ev, &dp.object_ref(&())).await {
        tracing::warn!(error = %e, "could not publish event");
    }
}

/// Writes `finalizers`, guarded by the resourceVersion the object was read at.
/// Returns the new resourceVersion (None if the object is already gone).
async fn set_finalizers(
    api: &Api<DealPayment>,
    dp: &DealPayment,
    finalizers: Vec<String>,
) -> Result<Option<String>, Error> {
    let name = dp.name_any();
    let body = json!({
        "metadata": {
            "finalizers": finalizers,
            "resourceVersion": dp.resource_version(),
        }
    });
    match api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&body))
        .await
    {
        Ok(obj) => Ok(obj.resource_version()),
        Err(kube::Error::Api(s)) if s.code == 409 => Err(Error::Conflict),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn release(
    api: &Api<DealPayment>,
    dp: &DealPayment,
    ctx: &Context,
    why: Option<(&str, String)>,
) -> Result<Guard, Error> {
    let keep: Vec<String> = dp
        .finalizers()
        .iter()
        .filter(|f| f.as_str() != FINALIZER)
        .cloned()
        .collect();
    set_finalizers(api, dp, keep).await?;
    let paid = paid_summary(dp.status.as_ref());
    match why {
        Some((reason, lost)) => {
            tracing::warn!(%reason, unsettled = %lost, %paid, "deleted with an unsettled payment");
            let note = format!(
                "deleted with an unsettled payment: {lost}; check these orders in the Tencent Cloud console; {paid}"
            );
            publish(ctx, dp, EventType::Warning, reason, note).await;
        }
        None => {
            tracing::info!(%paid, "payment record released for deletion");
            let note = format!("record deleted (nothing is refunded or cancelled); {paid}");
            publish(ctx, dp, EventType::Normal, "RecordDeleted", note).await;
        }
    }
    Ok(Guard::Stop(KubeAction::await_change()))
}

/// Adds the finalizer to a live object, or on deletion decides whether the record may go.
pub async fn guard(
    api: &Api<DealPayment>,
    dp: &DealPayment,
    ctx: &Context,
) -> Result<Guard, Error> {
    let ours = dp.finalizers().iter().any(|f| f == FINALIZER);
    let Some(elapsed) = deleting_for(dp) else {
        if ours {
            return Ok(Guard::Proceed);
        }
        let mut all = dp.finalizers().to_vec();
        all.push(FINALIZER.to_string());
        return match set_finalizers(api, dp, all).await {
            Ok(Some(rv)) => {
                if let (Some(uid), Some(old)) = (dp.uid(), dp.resource_version()) {
                    ctx.superseded.replaced(&uid, &old);
                }
                Ok(Guard::Added {
                    resource_version: rv,
                })
            }
            Ok(None) => Ok(Guard::Stop(KubeAction::await_change())),
            Err(Error::Kube(kube::Error::Api(s))) if s.code == 403 => {
                // RBAC without `patch` on dealpayments (an older chart): keep paying, unprotected.
                tracing::warn!(
                    "cannot add the {FINALIZER} finalizer (RBAC lacks patch on dealpayments): deleting this DealPayment mid-payment would lose its record"
                );
                Ok(Guard::Proceed)
            }
            Err(e) => Err(e),
        };
    };
    if !ours {
        // Going, and not ours to hold: never start a payment for an object being deleted.
        return Ok(Guard::Stop(KubeAction::await_change()));
    }
    let Some(lost) = unsettled(dp.status.as_ref()) else {
        return release(api, dp, ctx, None).await;
    };
    if forced(dp) {
        return release(api, dp, ctx, Some(("DeletionForced", lost))).await;
    }
    if elapsed >= SETTLE_LIMIT {
        return release(api, dp, ctx, Some(("SettlementTimedOut", lost))).await;
    }
    tracing::info!(unsettled = %lost, "deletion waits until the payment's outcome is settled");
    Ok(Guard::Settle {
        left: SETTLE_LIMIT - elapsed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(v: serde_json::Value) -> DealPaymentStatus {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn only_an_open_attempt_or_lookup_is_unsettled() {
        assert_eq!(unsettled(None), None);
        assert_eq!(unsettled(Some(&DealPaymentStatus::default())), None);
        let paid = json!({"id": "o1", "state": "Paid", "tencentStatus": 4, "requestId": "r1"});
        let st = status(json!({"orders": [paid]}));
        assert_eq!(unsettled(Some(&st)), None);
        let st = status(json!({"orders": [paid], "inFlight": {
            "id": "a1", "startedAt": "2026-11-28T00:00:00Z", "kind": "Order", "ids": ["o2"], "generation": 1
        }}));
        let msg = unsettled(Some(&st)).unwrap();
        assert!(msg.contains("a1") && msg.contains("o2"), "{msg}");
        let st = status(json!({"orders": [paid], "pendingLookup": {
            "kind": "Order", "ids": ["o3"], "since": "2026-11-28T00:00:00Z", "reason": "Delivery"
        }}));
        let msg = unsettled(Some(&st)).unwrap();
        assert!(msg.contains("o3 to be looked up (Delivery)"), "{msg}");
        assert!(paid_summary(Some(&st)).contains("o1 Paid"));
        assert_eq!(paid_summary(None), "nothing was paid");
    }

    #[test]
    fn settling_suspends_the_spec_and_bounds_the_wait() {
        let spec = DealPaymentSpec {
            order_ids: vec!["o1".into()],
            ..Default::default()
        };
        assert!(!Guard::Proceed.spec(&spec).suspend);
        let g = Guard::Settle {
            left: Duration::from_secs(30),
        };
        assert!(g.spec(&spec).suspend);
        let short_wait = Next::After(Duration::from_secs(5));
        assert_eq!(g.bound(short_wait.clone()), short_wait);
        let long = Next::After(Duration::from_secs(600));
        assert_eq!(g.bound(long), Next::After(Duration::from_secs(31)));
        assert_eq!(g.bound(Next::Await), Next::After(Duration::from_secs(31)));
        assert_eq!(Guard::Proceed.bound(Next::Await), Next::Await);
    }
}
