//! Prometheus metrics, labelled with low-cardinality values only.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::engine::WindowBudget;
use crate::tencent::client::CallObserver;

/// Computes every budgeted namespace's figures as they stand now (see `Budgets::published`).
pub type BudgetFigures = Box<dyn Fn() -> Vec<(String, WindowBudget)> + Send + Sync>;

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
    /// "true" for a dry run: its verdict is the Payable condition, never a payment stuck.
    pub dry_run: String,
}

/// Labels of a per-namespace metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NamespaceLabels {
    /// Namespace of the DealPayments.
    pub namespace: String,
}

/// Labels of money counted per namespace and currency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct SpendLabels {
    pub namespace: String,
    /// The API's currency of the charged orders ("" when it gave none).
    pub currency: String,
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
    /// What the Charged PaymentReceipts of a namespace add up to, in cents: from the journal, so it
    /// does not fall when DealPayments are deleted and a restart starts from the same figure.
    pub spent_cents: Family<SpendLabels, Counter>,
    /// PaymentReceipts still Pending, and the age in seconds of the oldest, per namespace.
    pub receipts_pending: Family<NamespaceLabels, Gauge>,
    pub receipts_pending_oldest: Family<NamespaceLabels, Gauge>,
    /// Consecutive PayDeals calls with an unknown outcome, per DealPayment that has any.
    pub unknown_outcomes: Family<ObjectLabels, Gauge>,
    /// What each namespace budget has left in its window now, in cents (set at each scrape).
    pub budget_remaining: Family<NamespaceLabels, Gauge>,
    /// Each namespace budget's size, in cents.
    pub budget_limit: Family<NamespaceLabels, Gauge>,
    /// Where the budget gauges come from, once the controller's budgets exist.
    budget_figures: OnceLock<BudgetFigures>,
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
        let spent_cents = Family::<SpendLabels, Counter>::default();
        let receipts_pending = Family::<NamespaceLabels, Gauge>::default();
        let receipts_pending_oldest = Family::<NamespaceLabels, Gauge>::default();
        registry.register(
            "spent_cents",
            "What the Charged PaymentReceipts of a namespace add up to, in cents of their currency (the journal: deleting DealPayments does not lower it)",
            spent_cents.clone(),
        );
        registry.register(
            "receipts_pending",
            "PaymentReceipts whose attempt's outcome is not known yet",
            receipts_pending.clone(),
        );
        registry.register(
            "receipts_pending_oldest_age_seconds",
            "Age of the oldest Pending PaymentReceipt, in seconds (a receipt Pending long after its signature window needs a look)",
            receipts_pending_oldest.clone(),
        );
        let budget_remaining = Family::<NamespaceLabels, Gauge>::default();
        let budget_limit = Family::<NamespaceLabels, Gauge>::default();
        registry.register(
            "namespace_budget_remaining",
            "What a namespace budget (--namespace-budget) has left in its rolling window now, in cents: the figures the operator pays by",
            budget_remaining.clone(),
        );
        registry.register(
            "namespace_budget_limit",
            "The most a namespace's DealPayments may spend together in the budget's window, in cents",
            budget_limit.clone(),
        );
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
            spent_cents,
            receipts_pending,
            receipts_pending_oldest,
            budget_remaining,
            budget_limit,
            budget_figures: OnceLock::new(),
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
    /// Sets the budget gauges from `figures` on every encode from now on (the first source stays).
    pub fn watch_budgets(&self, figures: BudgetFigures) {
        let _ = self.budget_figures.set(figures);
    }

    /// Replaces the budget gauges with `figures` (a namespace no longer listed disappears).
    pub fn set_budgets(&self, figures: &[(String, WindowBudget)]) {
        self.budget_remaining.clear();
        self.budget_limit.clear();
        for (namespace, b) in figures {
            let labels = NamespaceLabels {
                namespace: namespace.clone(),
            };
            self.budget_remaining
                .get_or_create(&labels)
                .set(b.left_cents());
            self.budget_limit.get_or_create(&labels).set(b.limit_cents);
        }
    }

    /// Encodes every metric in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        if let Some(figures) = self.budget_figures.get() {
            self.set_budgets(&figures());
        }
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::controller::budget::{Budgets, parse_flag};

    fn budget(limit_cents: i64, spent_cents: i64) -> WindowBudget {
        WindowBudget {
            limit_cents,
            window: Duration::from_secs(3600),
            spent_cents,
            frees_at: None,
        }
    }

    /// The encoded samples of `name`, sorted (a family's order is a hash map's).
    fn lines(m: &Metrics, name: &str) -> Vec<String> {
        let mut out: Vec<String> = m
            .encode()
            .lines()
            .filter(|l| l.starts_with(name))
            .map(str::to_string)
            .collect();
        out.sort();
        out
    }

    #[test]
    fn namespace_budgets_are_gauges_of_what_is_left_and_of_their_size() {
        let m = Metrics::default();
        m.set_budgets(&[
            ("team-a".into(), budget(5000, 3000)),
            ("team-b".into(), budget(2000, 2500)),
        ]);
        assert_eq!(
            lines(&m, "dealpay_namespace_budget_remaining{"),
            [
                r#"dealpay_namespace_budget_remaining{namespace="team-a"} 2000"#,
                r#"dealpay_namespace_budget_remaining{namespace="team-b"} 0"#,
            ]
        );
        assert_eq!(
            lines(&m, "dealpay_namespace_budget_limit{"),
            [
                r#"dealpay_namespace_budget_limit{namespace="team-a"} 5000"#,
                r#"dealpay_namespace_budget_limit{namespace="team-b"} 2000"#,
            ]
        );
        // The next set replaces the last: a budget removed is no longer shown.
        m.set_budgets(&[("team-b".into(), budget(2000, 0))]);
        assert_eq!(
            lines(&m, "dealpay_namespace_budget_remaining{"),
            [r#"dealpay_namespace_budget_remaining{namespace="team-b"} 2000"#]
        );
    }

    #[test]
    fn published_budgets_are_measured_at_every_scrape() {
        let m = Metrics::default();
        let budgets = Budgets::new(
            vec![parse_flag("team-a=50.00/24h").unwrap()],
            Arc::default(),
        )
        .published(&m);
        assert_eq!(
            lines(&m, "dealpay_namespace_budget_remaining{"),
            [r#"dealpay_namespace_budget_remaining{namespace="team-a"} 5000"#]
        );
        drop(budgets);
        assert!(lines(&m, "dealpay_namespace_budget_remaining{").is_empty());
    }
}
