//! The payment journal on the API server: a PaymentReceipt per PayDeals attempt, created before the
//! call and settled (once, never edited after) when the engine knows the attempt's outcome. Receipts
//! have no ownerReference: deleting a DealPayment keeps them, and budgets count them.

use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};

use super::error::Error;
use crate::api::receipt::{DealPaymentRef, Provenance, ReceiptOrder};
use crate::api::{
    Attempt, DealPayment, DealPaymentStatus, PaymentReceipt, PaymentReceiptSpec,
    PaymentReceiptStatus, ReceiptState, Time,
};
use crate::engine::receipts::SettledAttempt;

/// Label with the DealPayment's name on each of its receipts.
pub const DEAL_PAYMENT_LABEL: &str = "billing.dealpay.dev/deal-payment";
/// Label with the DealPayment's uid.
pub const UID_LABEL: &str = "billing.dealpay.dev/deal-payment-uid";
/// Label with the receipt's state (selectable: `-l billing.dealpay.dev/state=Pending`).
pub const STATE_LABEL: &str = "billing.dealpay.dev/state";

/// One DealPayment's receipts.
pub struct Journal<'a> {
    pub api: Api<PaymentReceipt>,
    pub dp: &'a DealPayment,
    /// The account label (never the SecretId).
    pub account: String,
}

fn uid(dp: &DealPayment) -> String {
    dp.uid().unwrap_or_default()
}

/// Who asked for the payment, as far as the object tells.
pub fn provenance(dp: &DealPayment) -> Provenance {
    let label = |k: &str| dp.labels().get(k).cloned();
    let flux = match (
        label("kustomize.toolkit.fluxcd.io/namespace"),
        label("kustomize.toolkit.fluxcd.io/name"),
    ) {
        (Some(ns), Some(n)) => Some(format!("{ns}/{n}")),
        (None, Some(n)) => Some(n),
        _ => None,
    };
    // The manager of the newest managedFields entry that touched the spec.
    let spec_manager = dp
        .meta()
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| {
            m.fields_v1
                .as_ref()
                .is_some_and(|f| f.0.get("f:spec").is_some())
        })
        .max_by_key(|m| m.time.as_ref().map(|t| t.0))
        .and_then(|m| m.manager.clone());
    Provenance {
        argocd_tracking_id: dp
            .annotations()
            .get("argocd.argoproj.io/tracking-id")
            .cloned(),
        app_instance: label("app.kubernetes.io/instance"),
        flux_kustomization: flux,
        spec_manager,
    }
}

impl Journal<'_> {
    fn name(&self, a: &Attempt) -> String {
        PaymentReceipt::name_for(&self.dp.name_any(), &uid(self.dp), a.number)
    }

    fn pending(&self, a: &Attempt) -> PaymentReceipt {
        let mut r = PaymentReceipt::new(
            &self.name(a),
            PaymentReceiptSpec {
                deal_payment: DealPaymentRef {
                    name: self.dp.name_any(),
                    uid: uid(self.dp),
                    generation: a.generation,
                },
                attempt_id: a.id.clone(),
                attempt: a.number,
                started_at: a.started_at,
                kind: a.kind,
                ids: a.ids.clone(),
                order_count: a.ids.len() as u32,
                quoted_cents: a.quoted_cents,
                account: self.account.clone(),
                provenance: provenance(self.dp),
            },
        );
        r.metadata.namespace = self.dp.namespace();
        r.metadata.labels = Some(
            [
                (DEAL_PAYMENT_LABEL.to_string(), self.dp.name_any()),
                (UID_LABEL.to_string(), uid(self.dp)),
                (STATE_LABEL.to_string(), "Pending".to_string()),
            ]
            .into(),
        );
        r.status = Some(
            PaymentReceiptStatus {
                state: ReceiptState::Pending,
                ..Default::default()
            }
            .with_total(a.quoted_cents),
        );
        r
    }

    /// Creates the Pending receipt; an existing one for the same attempt is ours already.
    pub async fn open(&self, a: &Attempt) -> Result<(), Error> {
        match self
            .api
            .create(&PostParams::default(), &self.pending(a))
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => {
                let existing = self.api.get(&self.name(a)).await?;
                if existing.spec.attempt_id == a.id {
                    Ok(())
                } else {
                    Err(Error::Conflict)
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Settles each receipt that is still Pending (a receipt that was never created, because its
    /// attempt was never called, is created settled, so the journal has every attempt).
    pub async fn settle(
        &self,
        all: &[SettledAttempt],
        st: &DealPaymentStatus,
    ) -> Result<(), Error> {
        for s in all {
            let status = settled_status(s, st);
            let name = self.name(&s.attempt);
            let state = status.state.as_str();
            // JSON Patch with a test: applied only while the receipt is Pending, so a settled
            // receipt is never changed (one request, no read).
            let patch = serde_json::json!([
                {"op": "test", "path": "/status/state", "value": "Pending"},
                {"op": "replace", "path": "/status", "value": status},
                {"op": "replace", "path": format!("/metadata/labels/{}", STATE_LABEL.replace('/', "~1")), "value": state},
            ]);
            let patch: json_patch::Patch = serde_json::from_value(patch)?;
            match self
                .api
                .patch(&name, &PatchParams::default(), &Patch::<()>::Json(patch))
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {
                    let mut r = self.pending(&s.attempt);
                    r.labels_mut()
                        .insert(STATE_LABEL.to_string(), state.to_string());
                    r.status = Some(status);
                    match self.api.create(&PostParams::default(), &r).await {
                        Ok(_) => {}
                        Err(kube::Error::Api(e)) if e.code == 409 => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                // The test failed: settled already (by this process before a conflict, or another).
                Err(kube::Error::Api(e)) if e.code == 422 || e.code == 409 => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// What a settled attempt's receipt says, with the amounts and proof its DealPayment's status holds.
pub fn settled_status(s: &SettledAttempt, st: &DealPaymentStatus) -> PaymentReceiptStatus {
    let now = Time::seconds(jiff::Timestamp::now());
    let mut out = PaymentReceiptStatus {
        state: s.state,
        code: s.code.clone(),
        confirmed_by: s.confirmed_by.map(str::to_string),
        settled_at: Some(now),
        ..Default::default()
    };
    if s.state != ReceiptState::Charged {
        return out;
    }
    let known: Option<i64> = s.orders.iter().map(|o| o.cost_cents).sum();
    // A cost the lookup did not give is counted at the quote: an over-count, never an under-count.
    let total = known.or(s.attempt.quoted_cents).or_else(|| {
        Some(s.orders.iter().filter_map(|o| o.cost_cents).sum()).filter(|c: &i64| *c > 0)
    });
    out.orders = s
        .orders
        .iter()
        .map(|o| ReceiptOrder {
            id: o.id.clone(),
            cost_cents: o.cost_cents,
            tencent_status: o.tencent_status,
        })
        .collect();
    out.currency = st.currency.clone();
    out.resource_ids = st.resource_ids.clone();
    out.request_ids = [s.attempt.answered.clone(), st.request_id.clone()]
        .into_iter()
        .flatten()
        .filter(|r| !r.is_empty())
        .fold(Vec::new(), |mut v, r| {
            if !v.contains(&r) {
                v.push(r);
            }
            v
        });
    out.paid_at = st.paid_at.or(Some(now));
    out.with_total(total)
}
