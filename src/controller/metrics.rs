//! Prometheus metrics, labelled with low-cardinality values only.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::tencent::client::CallObserver;

/// Result label of a reconcile.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `ok` or the error category.
    pub result: String,
}

/// Labels of a payment outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PaymentLabels {
    /// `paid` or the error class.
    pub outcome: String,
    /// Tencent error code, empty on success.
    pub code: String,
}

/// Labels of an API call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// PayDeals or DescribeDealsByCond.
    pub action: String,
    /// `success` or the error code.
    pub outcome: String,
}

/// Labels of the rate-limiter wait.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    /// PayDeals or DescribeDealsByCond.
    pub action: String,
}

/// Labels of an API call of one Tencent account.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AccountCallLabels {
    /// The account's label: its configured `accountId`/`uin`, else `key-` + a hash of the SecretId.
    pub account: String,
    /// PayDeals or DescribeDealsByCond.
    pub action: String,
    /// `success` or the error code.
    pub outcome: String,
}

/// Labels of the per-account rate-limiter wait.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AccountActionLabels {
    /// The account's label (see [`AccountCallLabels::account`]).
    pub account: String,
    /// PayDeals or DescribeDealsByCond.
    pub action: String,
}

/// Labels of the per-reason gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub ready: String,
    pub reason: String,
}

/// Labels of a per-namespace metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NamespaceLabels {
    /// Namespace of the DealPayments.
    pub namespace: String,
}

/// Labels of a per-object gauge (only objects with a non-zero value appear).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    /// Namespace of the DealPayment.
    pub namespace: String,
    /// Name of the DealPayment.
    pub name: String,
}

/// Every metric of the operator.
pub struct Metrics {
    /// The registry that `/metrics` encodes.
    pub registry: Registry,
    /// Reconciles by result.
    pub reconciles: Family<ResultLabels, Counter>,
    /// PayDeals outcomes.
    pub payments: Family<PaymentLabels, Counter>,
    /// Tencent API call latency.
    pub api_calls: Family<CallLabels, Histogram>,
    /// Time spent waiting for the rate limiter (per-account lanes and the optional ceiling).
    pub limiter_wait: Family<ActionLabels, Histogram>,
    /// Tencent API calls per account, action and outcome.
    pub account_calls: Family<AccountCallLabels, Counter>,
    /// Time spent waiting for the rate limiter, per account and action.
    pub account_limiter_wait: Family<AccountActionLabels, Histogram>,
    /// DealPayments by Ready status and reason.
    pub by_reason: Family<ReasonLabels, Gauge>,
    /// What the DealPayments of a namespace have cost, in cents, summed from their status.totalCost
    /// (derived from status, so it survives restarts).
    pub spent: Family<NamespaceLabels, Gauge>,
    /// Consecutive PayDeals calls with an unknown outcome, per DealPayment that has any.
    pub unknown_outcomes: Family<ObjectLabels, Gauge>,
    /// 1 while this replica holds the Lease.
    pub leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("dealpay");
        let reconciles = Family::<ResultLabels, Counter>::default();
        let payments = Family::<PaymentLabels, Counter>::default();
        let api_calls = Family::<CallLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 14))
        });
        let limiter_wait = Family::<ActionLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 16))
        });
        let account_calls = Family::<AccountCallLabels, Counter>::default();
        let account_limiter_wait =
            Family::<AccountActionLabels, Histogram>::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 16))
            });
        let by_reason = Family::<ReasonLabels, Gauge>::default();
        let leader = Gauge::default();
        let unknown_outcomes = Family::<ObjectLabels, Gauge>::default();
        let spent = Family::<NamespaceLabels, Gauge>::default();
        registry.register(
            "spent_total",
            "What the DealPayments of a namespace cost, in the currency's smallest unit (cents), from their status",
            spent.clone(),
        );
        registry.register(
            "consecutive_unknown_outcomes",
            "Consecutive PayDeals calls whose outcome was unknown, per DealPayment (absent when 0)",
            unknown_outcomes.clone(),
        );
        registry.register("reconciles", "Reconciles by result", reconciles.clone());
        registry.register(
            "payments",
            "PayDeals outcomes by class and Tencent code",
            payments.clone(),
        );
        registry.register(
            "api_call_duration_seconds",
            "Tencent API call latency",
            api_calls.clone(),
        );
        registry.register(
            "ratelimiter_wait_seconds",
            "Time waiting for the Tencent API rate limiter (per account and action, and the optional process-wide ceiling)",
            limiter_wait.clone(),
        );
        registry.register(
            "account_api_calls",
            "Tencent API calls per account (configured accountId/uin, else a hash of the SecretId), action and outcome",
            account_calls.clone(),
        );
        registry.register(
            "account_ratelimiter_wait_seconds",
            "Time waiting for the rate limiter, per account and action",
            account_limiter_wait.clone(),
        );
        registry.register(
            "dealpayments",
            "DealPayments by Ready status and reason",
            by_reason.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the leader Lease",
            leader.clone(),
        );
        Self {
            registry,
            reconciles,
            payments,
            api_calls,
            limiter_wait,
            account_calls,
            account_limiter_wait,
            by_reason,
            unknown_outcomes,
            spent,
            leader,
        }
    }
}

impl CallObserver for Metrics {
    fn observe(
        &self,
        account: &str,
        action: &'static str,
        outcome: &str,
        latency: Duration,
        limiter_wait: Duration,
    ) {
        self.api_calls
            .get_or_create(&CallLabels {
                action: action.into(),
                outcome: outcome.into(),
            })
            .observe(latency.as_secs_f64());
        self.limiter_wait
            .get_or_create(&ActionLabels {
                action: action.into(),
            })
            .observe(limiter_wait.as_secs_f64());
        self.account_calls
            .get_or_create(&AccountCallLabels {
                account: account.into(),
                action: action.into(),
                outcome: outcome.into(),
            })
            .inc();
        self.account_limiter_wait
            .get_or_create(&AccountActionLabels {
                account: account.into(),
                action: action.into(),
            })
            .observe(limiter_wait.as_secs_f64());
    }
}

impl Metrics {
    /// Encodes every metric in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
