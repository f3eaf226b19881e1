//! Flags of `dealpay run`, each with its environment variable.

use std::net::SocketAddr;

use crate::tencent::ClientArgs;

/// Flags of `dealpay run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub api: ClientArgs,
    /// Namespaces to watch, comma-separated; empty watches all namespaces. Each is listed once at
    /// start, and reconciles begin when all are (at most 10 s), as with one watch of all namespaces.
    #[arg(long, env = "DEALPAY_NAMESPACES", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// Only DealPayments matching this label selector (e.g. `team=payments`).
    #[arg(long, env = "DEALPAY_SELECTOR")]
    pub selector: Option<String>,
    /// DealPayments reconciled at once, across every watched namespace; one whose Tencent call waits for
    /// its account's rate limit or answer does not count meanwhile.
    #[arg(long, env = "DEALPAY_CONCURRENCY", default_value_t = 64)]
    pub concurrency: u16,
    /// Requests to the Kubernetes API server in flight at once (reconciles, watches starting, Events);
    /// each is an HTTP/1 connection. The Lease has its own connection outside this limit.
    #[arg(long, env = "DEALPAY_APISERVER_CONCURRENCY", default_value_t = 32)]
    pub apiserver_concurrency: u16,
    /// Threads running reconciles, watches and calls: 1 runs everything on one thread (five accounts at
    /// their ceilings used ~20 % of one core, see docs/performance.md), 0 one per core.
    #[arg(long, env = "DEALPAY_WORKER_THREADS", default_value_t = 1)]
    pub worker_threads: u16,
    /// Address of the metrics, /healthz and /readyz server.
    #[arg(long, env = "DEALPAY_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Elect a leader with a Lease so that only one replica pays.
    #[arg(long, env = "DEALPAY_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Name of the Lease.
    #[arg(long, env = "DEALPAY_LEASE_NAME", default_value = "dealpay-operator")]
    pub lease_name: String,
    /// Namespace of the Lease (default: the pod's namespace, else `default`).
    #[arg(long, env = "DEALPAY_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// Lease duration in seconds; a new leader takes over at most this long after the old one vanished.
    #[arg(long, env = "DEALPAY_LEASE_DURATION", default_value_t = 15)]
    pub lease_duration: u64,
    /// This replica's identity in the Lease (default: the pod name or host name plus a random suffix).
    #[arg(long, env = "DEALPAY_IDENTITY")]
    pub identity: Option<String>,
    /// Default credentials: a Secret `namespace/name` with keys secretId, secretKey, token. Off unless set
    /// (TENCENTCLOUD_SECRET_ID/KEY/TOKEN in the operator's environment are the other way to set them).
    #[arg(long, env = "DEALPAY_DEFAULT_CREDENTIALS_SECRET")]
    pub default_credentials_secret: Option<String>,
    /// Namespaces whose DealPayments may pay with the default credentials, comma-separated; none by default.
    #[arg(
        long,
        env = "DEALPAY_DEFAULT_CREDENTIALS_NAMESPACES",
        value_delimiter = ','
    )]
    pub default_credentials_namespaces: Vec<String>,
    /// First retry delay, in seconds, after an error a person must fix (balance, permission, key); it doubles per failure.
    #[arg(long, env = "DEALPAY_NEEDS_HUMAN_BACKOFF_BASE", default_value_t = 30.0)]
    pub needs_human_backoff_base: f64,
    /// Largest retry delay, in seconds, after such errors (a changed credentials Secret retries at once).
    #[arg(long, env = "DEALPAY_NEEDS_HUMAN_BACKOFF_MAX", default_value_t = 900.0)]
    pub needs_human_backoff_max: f64,
    /// First delay, in seconds, before a new PayDeals attempt after an unknown outcome proved the orders
    /// unpaid; it doubles per consecutive unknown outcome.
    #[arg(
        long,
        env = "DEALPAY_UNKNOWN_OUTCOME_BACKOFF_BASE",
        default_value_t = 5.0
    )]
    pub unknown_outcome_backoff_base: f64,
    /// Largest delay, in seconds, between attempts after unknown outcomes.
    #[arg(
        long,
        env = "DEALPAY_UNKNOWN_OUTCOME_BACKOFF_MAX",
        default_value_t = 600.0
    )]
    pub unknown_outcome_backoff_max: f64,
    /// Most one DealPayment may cost (e.g. "1200.00", the account's currency); none by default. A
    /// DealPayment's own spec.maxTotalCost applies too: the stricter wins.
    #[arg(long, env = "DEALPAY_MAX_TOTAL_COST", value_parser = crate::api::money::amount_arg)]
    pub max_total_cost: Option<i64>,
    /// A namespace's budget over a rolling window, `NAMESPACE=AMOUNT/WINDOW` (e.g. `team-a=5000.00/24h`;
    /// window units d, h, m, s; `*` for each namespace without its own); repeatable or comma-separated.
    /// No DealPayment pays more than its namespace has left in the window; none by default.
    #[arg(
        long = "namespace-budget",
        env = "DEALPAY_NAMESPACE_BUDGETS",
        value_delimiter = ',',
        value_parser = super::budget::parse_flag
    )]
    pub namespace_budgets: Vec<super::budget::NamespaceBudget>,
    /// Seconds a pricing (DescribeDealsByCond's RealTotalCost) stays valid for a capped payment.
    #[arg(long, env = "DEALPAY_QUOTE_MAX_AGE", default_value_t = 60.0)]
    pub quote_max_age: f64,
    /// Consecutive unknown outcomes after which a DealPayment is Stalled (it keeps retrying slowly).
    #[arg(long, env = "DEALPAY_MAX_UNKNOWN_OUTCOMES", default_value_t = 5)]
    pub max_unknown_outcomes: u32,
}

impl RunArgs {
    /// The engine's backoff policy these flags describe.
    pub fn policy(&self) -> crate::engine::Policy {
        let secs = |s: f64| std::time::Duration::from_secs_f64(s.max(0.01));
        let curve = |base: f64, max: f64| crate::engine::Curve {
            base: secs(base),
            cap: secs(max.max(base)),
        };
        let policy = crate::engine::Policy {
            needs_human: curve(self.needs_human_backoff_base, self.needs_human_backoff_max),
            unknown: curve(
                self.unknown_outcome_backoff_base,
                self.unknown_outcome_backoff_max,
            ),
            max_unknown_outcomes: self.max_unknown_outcomes.max(1),
            max_total_cents: self.max_total_cost,
            quote_max_age: secs(self.quote_max_age),
            ..crate::engine::Policy::default()
        };
        crate::driver::with_request_window(policy, &self.api)
    }
}
