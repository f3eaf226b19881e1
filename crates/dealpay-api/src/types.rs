//! The DealPayment resource: spec, status and the records the payment engine keeps.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{ErrorClass, Time};

/// Pays Tencent Cloud orders with the Billing API action PayDeals.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "billing.dealpay.dev",
    version = "v1alpha1",
    kind = "DealPayment",
    plural = "dealpayments",
    singular = "dealpayment",
    namespaced,
    status = "DealPaymentStatus",
    shortname = "dp",
    category = "tencentcloud",
    category = "billing",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status","description":"Ready=True: every order paid and delivered"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason","description":"Why it is (not) Ready"}"#,
    printcolumn = r#"{"name":"Paid","type":"string","jsonPath":".status.conditions[?(@.type==\"Paid\")].status","description":"Paid=True once money moved (also when delivery then failed)"}"#,
    printcolumn = r#"{"name":"Orders","type":"string","jsonPath":".spec.orderIds","description":"Sub-orders to pay (spec.orderIds)"}"#,
    printcolumn = r#"{"name":"BigDeals","type":"string","jsonPath":".spec.bigDealIds","description":"Orders to pay (spec.bigDealIds)"}"#,
    printcolumn = r#"{"name":"Cost","type":"string","jsonPath":".status.totalCost","description":"What the charged orders cost (status.totalCost)"}"#,
    printcolumn = r#"{"name":"Currency","type":"string","jsonPath":".status.currency","priority":1,"description":"Currency of status.totalCost, when the API gives one"}"#,
    printcolumn = r#"{"name":"Resources","type":"string","jsonPath":".status.resourceIds","priority":1,"description":"Resources created by the payment"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Message","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message","priority":1,"description":"The Ready condition's message"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct DealPaymentSpec {
    /// Sub-order numbers to pay (PayDeals `OrderIds`). Set exactly one of orderIds and bigDealIds. Cannot change once set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order_ids: Vec<String>,
    /// Order numbers to pay (PayDeals `BigDealIds`). Set exactly one of orderIds and bigDealIds. Cannot change once set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub big_deal_ids: Vec<String>,
    /// Use vouchers automatically (PayDeals `AutoVoucher` 1).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_voucher: bool,
    /// Voucher to pay with (PayDeals `VoucherIds`); at most one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub voucher_ids: Vec<String>,
    /// Who pays: 0 self pay (default), 3 group agent pay, 4 reseller product-level order.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub agent_pay: i32,
    /// Passed through to PayDeals `CpsUin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cps_uin: Option<String>,
    /// X-TC-Region for the calls; PayDeals needs none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Tencent Cloud API credentials; omitted: the operator's default credentials, where allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<CredentialsSource>,
    /// When true nothing is paid: an approval gate (merge the manifest suspended, flip it to pay).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspend: bool,
    /// Most this payment may cost, in the account's currency, e.g. "1200.00". Before the first PayDeals
    /// the orders are priced with DescribeDealsByCond (RealTotalCost); above this nothing is paid
    /// (reason OverBudget). The operator's own cap (--max-total-cost) applies too; the stricter wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_total_cost: Option<String>,
    /// When true nothing is paid: the orders are looked up and priced, and the Payable condition says
    /// whether they could be paid now (exist, unpaid, priced, within the caps). Set it to false to pay.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

fn is_zero(v: &i32) -> bool {
    *v == 0
}

/// Where the API key comes from.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsSource {
    /// A Secret in the DealPayment's own namespace with keys `secretId`, `secretKey` and optional `token`.
    pub secret_ref: SecretReference,
}

/// A Secret in the same namespace.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretReference {
    /// Name of the Secret.
    pub name: String,
}

/// Which PayDeals list a spec uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum IdKind {
    /// Sub-order numbers (`OrderIds`).
    Order,
    /// Order numbers (`BigDealIds`).
    BigDeal,
}

impl DealPaymentSpec {
    /// The ids to pay and their kind (orderIds win if, invalidly, both are set).
    pub fn targets(&self) -> (IdKind, &[String]) {
        if !self.order_ids.is_empty() || self.big_deal_ids.is_empty() {
            (IdKind::Order, &self.order_ids)
        } else {
            (IdKind::BigDeal, &self.big_deal_ids)
        }
    }
}

/// What the operator knows about a payment. Read `conditions` first.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DealPaymentStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling, Stalled and Paid, in the Kubernetes condition shape (kstatus: Reconciling=True
    /// is InProgress, Stalled=True is Failed, Ready=True with both False is Current).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// Sub-orders paid, as PayDeals or DescribeDealsByCond reported them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order_ids: Vec<String>,
    /// Orders (big deals) paid.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub big_deal_ids: Vec<String>,
    /// Resources created by the payment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_ids: Vec<String>,
    /// RequestId of the call that proved the payment (PayDeals or DescribeDealsByCond).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// When the last order was found paid (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<Time>,
    /// PayDeals calls made for this resource.
    #[serde(default)]
    pub attempts: u32,
    /// Per-id payment state; an id listed here is never paid again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orders: Vec<OrderRecord>,
    /// The last error, if the payment is not settled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<Box<LastError>>,
    /// Write-ahead record of a PayDeals call: persisted before the call, cleared when its outcome is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<Box<Attempt>>,
    /// Attempts whose outcome is not settled yet, each with a Pending PaymentReceipt; an attempt leaves
    /// this list once its receipt records what it charged (or that it charged nothing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open_attempts: Vec<Attempt>,
    /// Ids whose payment outcome is unknown and must be looked up before anything else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_lookup: Option<Box<PendingLookup>>,
    /// Earliest time of the next call (RFC 3339), while backing off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_retry_at: Option<Time>,
    /// Consecutive failed PayDeals calls of the current kind, for exponential backoff.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub consecutive_failures: u32,
    /// Consecutive PayDeals calls whose outcome was unknown; past a limit the payment is Stalled.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub unknown_outcomes: u32,
    /// What the orders cost in all, charged orders only, in the account's currency (e.g. "46.00"), from
    /// DescribeDealsByCond's RealTotalCost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_cost: Option<String>,
    /// Currency of `totalCost` as DescribeDealsByCond gives it (`Currency`, e.g. "CNY"); absent when the
    /// API gives none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// The last pricing of the orders still to pay (when a cap or a dry run asks for one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<Box<Quote>>,
    /// Spec generation that hit a terminal error; nothing is paid until the generation changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stalled_generation: Option<i64>,
    /// Version of the credentials last used; a change resets the slow backoff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_version: Option<String>,
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

fn conditions_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    // metav1.Condition's own schema, with listType map so server-side apply merges by type, and
    // descriptions so that `kubectl explain dealpayment.status.conditions` says what each type means.
    schemars::json_schema!({
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": {
            "type": "object",
            "description": "One condition, in the Kubernetes (metav1.Condition) and kstatus shape.",
            "required": ["type", "status", "lastTransitionTime", "reason", "message"],
            "properties": {
                "type": {
                    "type": "string",
                    "maxLength": 316,
                    "description": "Ready: every order is paid and delivered (reason Paid). Reconciling: a call is in progress, a retry is scheduled, or the payment waits for approval (reason Suspended). Stalled: it cannot progress without a person or a spec change. Paid: money has moved (reasons Paid, PartiallyPaid, DeliveryFailed)."
                },
                "status": {
                    "type": "string",
                    "enum": ["True", "False", "Unknown"],
                    "description": "True, False or Unknown."
                },
                "observedGeneration": {
                    "type": "integer",
                    "format": "int64",
                    "minimum": 0,
                    "description": "The metadata.generation the condition was set for."
                },
                "lastTransitionTime": {
                    "type": "string",
                    "format": "date-time",
                    "description": "When the status last changed (RFC 3339); a new reason or message alone keeps it."
                },
                "reason": {
                    "type": "string",
                    "maxLength": 1024,
                    "description": "CamelCase cause, e.g. Paid, Paying, Delivering, Suspended, OutcomeUnknown, BalanceInsufficient, DeliveryFailed (README: Reading the status)."
                },
                "message": {
                    "type": "string",
                    "maxLength": 32768,
                    "description": "What happened and what to do, with Tencent's code, message and RequestId where there is one."
                }
            }
        }
    })
}

/// The state of one id. Every state but `Unpayable` means money moved; an id listed is never paid again.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum OrderState {
    /// Paid and delivered (Tencent status 4; for a big deal, every sub-order).
    Paid,
    /// Paid, delivery not yet confirmed (Tencent status 2 or 3): looked up until it is 4 or 5.
    Delivering,
    /// Charged, delivery failed: never paid again, needs Tencent support.
    DeliveryFailed,
    /// Cannot be paid: cancelled, expired, invalid, refunded.
    Unpayable,
    /// A big deal whose sub-orders ended part charged, part unpayable (e.g. one delivered, one cancelled).
    PartlyUnpayable,
    /// A big deal with some sub-orders charged and others still unpaid: looked up until it settles;
    /// the big deal is never paid again (pay the rest by their sub-order ids in a new DealPayment).
    PartlyPaid,
}

impl OrderState {
    /// True when money moved for this id.
    pub fn charged(self) -> bool {
        !matches!(self, OrderState::Unpayable)
    }

    /// True while a lookup must still settle it (money moved, the end state not yet known).
    pub fn awaiting(self) -> bool {
        matches!(self, OrderState::Delivering | OrderState::PartlyPaid)
    }
}

/// What is known about one id.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderRecord {
    /// The sub-order or order number.
    pub id: String,
    pub state: OrderState,
    /// Tencent order status code, when a lookup saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tencent_status: Option<i64>,
    /// RequestId of the call that established the state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// What it cost (RealTotalCost, in cents; for a big deal, its sub-orders together), once a lookup saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_cents: Option<i64>,
    /// Whether `id` is an order or a big deal (absent in records written before it was kept: the
    /// spec's kind), so that a spec switched between orderIds and bigDealIds still looks it up right.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<IdKind>,
}

/// Orders priced before paying: what they cost and what stands in the way.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Quote {
    /// The ids priced (those still to pay).
    pub ids: Vec<String>,
    /// Their RealTotalCost together, in cents.
    pub total_cents: i64,
    /// Currency of the priced orders, when DescribeDealsByCond gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// When they were priced (RFC 3339); an old quote is priced again before paying.
    pub checked_at: Time,
    /// RequestId of the lookup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Why some id cannot be paid now (not found, not unpaid, no price), one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// Checked by a dry run of orderIds (absent otherwise): per big deal of the priced sub-orders, its
    /// unpaid sub-orders that spec.orderIds leaves out (empty when none is); PayDeals may refuse to pay
    /// sub-orders of one big deal apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay_together: Option<Vec<PayTogether>>,
}

/// Unpaid sub-orders of one big deal that a dry run of orderIds leaves out.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PayTogether {
    /// The big deal (Tencent's order) the priced sub-orders belong to.
    pub big_deal_id: String,
    /// Its unpaid sub-orders not in spec.orderIds.
    pub missing: Vec<String>,
}

/// The last error seen.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastError {
    /// Tencent error code, or a local code such as `SecretNotFound`.
    pub code: String,
    /// Message, never containing a secret.
    pub message: String,
    /// RequestId of the failed call, when the API answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// What the error means for the payment.
    pub class: ErrorClass,
}

/// A PayDeals call about to be made or in flight.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// Unique id of the attempt.
    pub id: String,
    /// When it was recorded (RFC 3339).
    pub started_at: Time,
    /// Kind of the ids.
    pub kind: IdKind,
    /// Ids sent in this call.
    pub ids: Vec<String>,
    /// Spec generation it was made for.
    pub generation: i64,
    /// What the ids were priced at just before the call, in cents, when a cap or dry run priced them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quoted_cents: Option<i64>,
    /// The attempt's number (status.attempts once it started); names its PaymentReceipt.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub number: u32,
    /// RequestId of the PayDeals answer that listed ids as paid (kept while the attempt is open, for
    /// its receipt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered: Option<String>,
}

/// Ids to look up with DescribeDealsByCond: outcomes to establish, deliveries to confirm.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingLookup {
    /// Kind of the ids.
    pub kind: IdKind,
    /// Ids to look up; those recorded `Delivering` in `orders` are paid and only their delivery is checked.
    pub ids: Vec<String>,
    /// When the attempt that made them unknown started (RFC 3339).
    pub since: Time,
    /// Why the ids not yet recorded in `orders` are unknown.
    pub reason: LookupReason,
    /// Lookups so far that settled nothing; bounds the lookup backoff and, past a limit, stalls.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub tries: u32,
    /// Earliest time of the next lookup (RFC 3339), while backing off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_at: Option<Time>,
    /// Ids the last lookup did not find at all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_found: Vec<String>,
    /// Why the last lookup failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<LastError>,
}

/// Why ids are being looked up.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum LookupReason {
    /// PayDeals' answer was lost or unreadable (or the operator stopped mid-call).
    OutcomeUnknown,
    /// PayDeals answered success without listing these ids.
    PartialPayment,
    /// PayDeals answered `FailedOperation.InvalidDeal`: some ids may be paid already.
    InvalidDeal,
    /// PayDeals answered `FailedOperation.PaySuccDeliverFailed`: which orders were charged and delivered.
    DeliverFailed,
    /// Every id is paid; waiting for delivery.
    Delivery,
    /// A status carried over from elsewhere (`dealpay pay --resume`, a state file): verified before trusted.
    Resume,
    /// Pricing the orders before paying (a cost cap or a dry run).
    Quote,
}

impl LookupReason {
    /// The name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OutcomeUnknown => "OutcomeUnknown",
            Self::PartialPayment => "PartialPayment",
            Self::InvalidDeal => "InvalidDeal",
            Self::DeliverFailed => "DeliverFailed",
            Self::Delivery => "Delivery",
            Self::Resume => "Resume",
            Self::Quote => "Quote",
        }
    }
}
