//! PaymentReceipt: the payment journal. One receipt per PayDeals attempt, created before the call and
//! settled once its outcome is known; not owned by its DealPayment, so it outlives it (a prune, a
//! `kubectl delete`, a namespace teardown), and budgets count it after the DealPayment is gone.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::money::format_cents;
use crate::{IdKind, Time};

/// What one PayDeals attempt was about to pay, written before the call.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "billing.dealpay.dev",
    version = "v1alpha1",
    kind = "PaymentReceipt",
    plural = "paymentreceipts",
    singular = "paymentreceipt",
    namespaced,
    status = "PaymentReceiptStatus",
    shortname = "receipt",
    shortname = "receipts",
    category = "billing",
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".status.state","description":"Pending, Charged, NotCharged or Refunded"}"#,
    printcolumn = r#"{"name":"Amount","type":"string","jsonPath":".status.amount","description":"What was charged (or, while Pending, the quoted amount)"}"#,
    printcolumn = r#"{"name":"Currency","type":"string","jsonPath":".status.currency"}"#,
    printcolumn = r#"{"name":"Orders","type":"integer","jsonPath":".spec.orderCount","description":"How many ids the attempt paid"}"#,
    printcolumn = r#"{"name":"DealPayment","type":"string","jsonPath":".spec.dealPayment.name"}"#,
    printcolumn = r#"{"name":"Paid","type":"date","jsonPath":".status.paidAt","description":"When the charge was confirmed"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ids","type":"string","jsonPath":".spec.ids","priority":1}"#,
    printcolumn = r#"{"name":"RequestIds","type":"string","jsonPath":".status.requestIds","priority":1}"#
)]
#[serde(rename_all = "camelCase")]
pub struct PaymentReceiptSpec {
    /// The DealPayment that made the attempt (it may be gone since).
    pub deal_payment: DealPaymentRef,
    /// The attempt's id (the DealPayment's status.inFlight.id when it was made).
    pub attempt_id: String,
    /// The attempt's number within its DealPayment (status.attempts).
    pub attempt: u32,
    /// When the attempt started; the PayDeals request was signed with this time.
    pub started_at: Time,
    /// Whether `ids` are orders (OrderIds) or big deals (BigDealIds).
    pub kind: IdKind,
    /// The ids sent to PayDeals.
    pub ids: Vec<String>,
    /// How many ids (for the printer column).
    pub order_count: u32,
    /// What the ids were priced at before the call, in cents, when a cap or budget priced them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quoted_cents: Option<i64>,
    /// The account paid from: the Secret's `accountId`/`uin`, else `key-` and a hash of the SecretId
    /// (never the SecretId).
    pub account: String,
    /// Who asked for the payment, as far as the cluster knows it.
    #[serde(default, skip_serializing_if = "Provenance::is_empty")]
    pub provenance: Provenance,
}

/// The DealPayment a receipt belongs to.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DealPaymentRef {
    pub name: String,
    /// metadata.uid: a re-created DealPayment of the same name is another payment.
    pub uid: String,
    /// metadata.generation the attempt was made for.
    pub generation: i64,
}

/// GitOps provenance of the DealPayment and the last writer of its spec.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    /// Argo CD's tracking annotation (`argocd.argoproj.io/tracking-id`), when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argocd_tracking_id: Option<String>,
    /// The `app.kubernetes.io/instance` label (Argo CD's label tracking), when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_instance: Option<String>,
    /// Flux's `kustomize.toolkit.fluxcd.io/namespace`/`name` labels, as `namespace/name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flux_kustomization: Option<String>,
    /// The field manager that last changed the spec (from managedFields: a client's self-chosen
    /// name such as `kubectl-client-side-apply` or `argocd-controller`, not an authenticated user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_manager: Option<String>,
}

impl Provenance {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Where the receipt stands.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ReceiptState {
    /// PayDeals is being called, or its outcome is not known yet.
    #[default]
    Pending,
    /// Money moved: `orders` lists what each id cost.
    Charged,
    /// Nothing was charged by this attempt (`code` says why).
    NotCharged,
    /// Charged, then refunded.
    Refunded,
}

impl ReceiptState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Charged => "Charged",
            Self::NotCharged => "NotCharged",
            Self::Refunded => "Refunded",
        }
    }
}

/// How a receipt was settled. Written once: a settled receipt is never changed.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentReceiptStatus {
    pub state: ReceiptState,
    /// What each charged id cost.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orders: Vec<ReceiptOrder>,
    /// Total charged in cents (while Pending: the quoted amount, when known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_cents: Option<i64>,
    /// `totalCents` as a decimal amount, e.g. `12.00`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    /// Currency the API gave for the charged orders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Resources the payment created (the DealPayment's status.resourceIds when it settled).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_ids: Vec<String>,
    /// RequestIds of the calls that established the outcome.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_ids: Vec<String>,
    /// When the charge was confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<Time>,
    /// `Answer` when PayDeals' answer listed the ids, `Lookup` when DescribeDealsByCond found them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_by: Option<String>,
    /// Why nothing was charged (Tencent's code, or what the lookup found).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// When the receipt was settled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_at: Option<Time>,
}

/// One charged id.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptOrder {
    pub id: String,
    /// RealTotalCost in cents, when DescribeDealsByCond gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_cents: Option<i64>,
    /// Tencent's order status when settled (4 delivered, 5 delivery failed, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tencent_status: Option<i64>,
}

impl PaymentReceipt {
    /// The receipt's name for attempt `number` of the DealPayment `name`/`uid`: deterministic, so two
    /// writers of one attempt collide on AlreadyExists.
    pub fn name_for(dp_name: &str, uid: &str, number: u32) -> String {
        let short_uid: String = uid.chars().filter(|c| *c != '-').take(8).collect();
        let head: String = dp_name.chars().take(200).collect();
        format!("{head}-{short_uid}-{number}")
    }

    /// What the receipt counts against a budget now, and since when: a charge at its amount, a
    /// pending attempt at its quote (an over-count until settled, never an under-count).
    pub fn charge(&self) -> Option<(Time, i64)> {
        let st = self.status.as_ref();
        match st.map(|s| s.state).unwrap_or_default() {
            ReceiptState::Charged => {
                let s = st?;
                Some((s.paid_at.unwrap_or(self.spec.started_at), s.total_cents?))
            }
            ReceiptState::Pending => Some((self.spec.started_at, self.spec.quoted_cents?)),
            ReceiptState::NotCharged | ReceiptState::Refunded => None,
        }
    }
}

impl PaymentReceiptStatus {
    /// Sets `totalCents` and its decimal form together.
    pub fn with_total(mut self, cents: Option<i64>) -> Self {
        self.total_cents = cents;
        self.amount = cents.map(format_cents);
        self
    }
}
