//! The Kubernetes shell: watch DealPayments and their Secrets, elect a leader, reconcile through the engine,
//! write status with server-side apply, publish events and metrics.

mod args;
pub mod budget;
pub mod caches;
pub mod credentials;
pub mod credentials_cache;
pub mod error;
pub mod events;
pub mod finalizer;
mod heap;
pub mod journal;
pub mod leader;
pub mod metrics;
pub mod pipeline;
pub mod reconcile;
pub mod server;
pub mod settled;
pub mod slots;
pub mod status;
pub mod superseded;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, reflector::reflector, watcher};
use kube::{Api, ResourceExt};
use tokio::sync::watch;

pub use args::RunArgs;
use caches::{Caches, Scope};
use credentials::DefaultCredentials;
use metrics::{Metrics, NamespaceLabels, ObjectLabels, ReasonLabels};
use reconcile::{Context, CredentialsCache, EventPublisher, error_policy, reconcile};

use crate::api::{DealPayment, PaymentReceipt};
use crate::controller::finalizer::FORCE_DELETE;
use crate::tencent::{Client as TencentClient, Credentials};

/// Runs the controller until SIGTERM/SIGINT; returns the exit code.
pub async fn run(args: RunArgs) -> i32 {
    match run_inner(args).await {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!(category = e.category(), "{e}");
            1
        }
    }
}

fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("shutting down: finishing reconciles in progress");
        let _ = tx.send(true);
    });
    rx
}

async fn wait_true(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

fn parse_secret_ref(s: &str) -> Result<(String, String), String> {
    match s.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() => Ok((ns.into(), name.into())),
        _ => Err(format!(
            "--default-credentials-secret {s:?}: expected namespace/name"
        )),
    }
}

/// The journal's figures: spend per namespace and currency (a counter: receipts are only ever added and
/// settled once), and the Pending receipts.
fn refresh_journal(metrics: &Metrics, caches: &caches::Caches) {
    use crate::api::ReceiptState;
    let now = jiff::Timestamp::now();
    let mut spent: std::collections::BTreeMap<metrics::SpendLabels, u64> = Default::default();
    let mut pending: std::collections::BTreeMap<String, (i64, i64)> = Default::default();
    caches.for_each_receipt(None, |r| {
        let namespace = r.metadata.namespace.clone().unwrap_or_default();
        let Some(st) = &r.status else { return };
        match st.state {
            ReceiptState::Charged => {
                let labels = metrics::SpendLabels {
                    namespace,
                    currency: st.currency.clone().unwrap_or_default(),
                };
                *spent.entry(labels).or_default() +=
                    u64::try_from(st.total_cents.unwrap_or(0)).unwrap_or(0);
            }
            ReceiptState::Pending => {
                let age = now.duration_since(r.spec.started_at.get()).as_secs().max(0);
                let e = pending.entry(namespace).or_default();
                *e = (e.0 + 1, e.1.max(age));
            }
            _ => {}
        }
    });
    metrics.spent_cents.clear();
    for (labels, cents) in spent {
        metrics.spent_cents.get_or_create(&labels).inc_by(cents);
    }
    metrics.receipts_pending.clear();
    metrics.receipts_pending_oldest.clear();
    for (namespace, (n, oldest)) in pending {
        let labels = NamespaceLabels { namespace };
        metrics.receipts_pending.get_or_create(&labels).set(n);
        metrics
            .receipts_pending_oldest
            .get_or_create(&labels)
            .set(oldest);
    }
}

fn refresh_gauges(metrics: &Metrics, caches: &caches::Caches) {
    metrics.by_reason.clear();
    metrics.unknown_outcomes.clear();
    metrics.spent.clear();
    refresh_journal(metrics, caches);
    caches.for_each(None, |namespace, name, dp| {
        if let Some(cents) = dp.spent_cents {
            let labels = NamespaceLabels {
                namespace: namespace.to_string(),
            };
            metrics.spent.get_or_create(&labels).inc_by(cents);
        }
        if dp.unknown_outcomes > 0 {
            let labels = ObjectLabels {
                namespace: namespace.to_string(),
                name: name.to_string(),
            };
            metrics
                .unknown_outcomes
                .get_or_create(&labels)
                .set(i64::from(dp.unknown_outcomes));
        }
        let labels = ReasonLabels {
            ready: dp.ready.as_ref().map_or("Unknown", |r| &r.0).to_string(),
            reason: dp.ready.as_ref().map_or("Pending", |r| &r.1).to_string(),
            dry_run: dp.dry_run.to_string(),
        };
        metrics.by_reason.get_or_create(&labels).inc();
    });
}

/// The cache keeps every watched DealPayment in memory for the operator's lifetime; what reconciling
/// never reads is dropped before it is stored: `managedFields` (as large as the rest of the object,
/// growing with every writer) and annotations other than ours (`kubectl apply` keeps a whole copy of
/// the object in `kubectl.kubernetes.io/last-applied-configuration`). Measured in README
/// "Performance": this is most of the memory with 10,000 objects cached.
fn trim(dp: &mut DealPayment) {
    dp.metadata.managed_fields = None;
    if let Some(annotations) = dp.metadata.annotations.as_mut() {
        annotations.retain(|k, _| k.as_str() == FORCE_DELETE);
        if annotations.is_empty() {
            dp.metadata.annotations = None;
        }
    }
}

/// The namespaces to watch, each once (`a,a` would start two reconcilers racing on one object).
fn scope_namespaces(flag: &[String]) -> Vec<String> {
    let mut out: Vec<String> = flag
        .iter()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

async fn run_inner(args: RunArgs) -> Result<(), StartError> {
    let (kube, lease_kube) = kube_clients(&args).await?;
    let metrics = Arc::new(Metrics::default());
    let caches: Arc<Caches> = Arc::default();
    let mut shutdown = shutdown_signal();
    let (health, server) = start_server(&args, &metrics, &caches, &shutdown);
    let identity = leader::identity(args.identity.as_deref());
    let (leader_rx, _election) = join_election(&args, &lease_kube, &identity).await?;
    health.ready.store(true, Ordering::Relaxed);
    let ctx = build_context(&args, kube, metrics, &caches, leader_rx, identity)?;
    heap::spawn_trimmer();
    lead(&args, &ctx, &caches, &mut shutdown).await;
    let _ = server.await;
    Ok(())
}

/// The client every reconcile, watch and Event shares, with at most `--apiserver-concurrency` requests
/// in flight (kube speaks HTTP/1: each concurrent request is a connection, kept idle for 90 s, and
/// its buffers); and one for the Lease alone, so a burst of payments never delays its renewal.
async fn kube_clients(args: &RunArgs) -> Result<(kube::Client, kube::Client), StartError> {
    let config = kube::Config::infer()
        .await
        .map_err(|e| StartError::Kube(kube::Error::InferConfig(e)))?;
    let lease = kube::Client::try_from(config.clone()).map_err(StartError::Kube)?;
    let limit =
        tower::limit::ConcurrencyLimitLayer::new(usize::from(args.apiserver_concurrency.max(1)));
    let shared = kube::client::ClientBuilder::try_from(config)
        .map_err(StartError::Kube)?
        .with_layer(&limit)
        .build();
    Ok((shared, lease))
}

/// Why `dealpay run` could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No usable kubeconfig or in-cluster configuration.
    #[error("Kubernetes client: {0}")]
    Kube(#[source] kube::Error),
    /// The Tencent client could not be built (e.g. an unreadable --ca-file).
    #[error("Tencent client: {0}")]
    Tencent(String),
    /// A flag's value is unusable.
    #[error("{0}")]
    Flag(String),
    /// The Lease could not be joined.
    #[error("leader election: {0}")]
    Election(String),
}

impl StartError {
    /// Label for the exit log line.
    pub fn category(&self) -> &'static str {
        match self {
            Self::Kube(_) => "kube",
            Self::Tencent(_) => "tencent",
            Self::Flag(_) => "flag",
            Self::Election(_) => "election",
        }
    }
}

/// The /metrics, /healthz and /readyz server; /readyz turns ready once the Lease is joined.
fn start_server(
    args: &RunArgs,
    metrics: &Arc<Metrics>,
    caches: &Arc<Caches>,
    shutdown: &watch::Receiver<bool>,
) -> (
    Arc<server::Health>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let health = Arc::new(server::Health {
        metrics: metrics.clone(),
        ready: Default::default(),
        refresh: {
            let (m, s) = (metrics.clone(), caches.clone());
            Box::new(move || refresh_gauges(&m, &s))
        },
    });
    let stop = {
        let mut s = shutdown.clone();
        async move { wait_true(&mut s).await }
    };
    let server = tokio::spawn(server::serve(args.metrics_addr, health.clone(), stop));
    (health, server)
}

/// Keeps leading possible while held: the election task, or the sender of an always-true flag.
enum Election {
    Always { _flag: watch::Sender<bool> },
    Lease { _task: tokio::task::JoinHandle<()> },
}

/// Joins the Lease when asked to; without leader election this replica always leads.
async fn join_election(
    args: &RunArgs,
    kube: &kube::Client,
    identity: &str,
) -> Result<(watch::Receiver<bool>, Election), StartError> {
    if !args.leader_election {
        let (tx, rx) = watch::channel(true);
        return Ok((rx, Election::Always { _flag: tx }));
    }
    let cfg = leader::LeaseConfig {
        name: args.lease_name.clone(),
        namespace: args
            .lease_namespace
            .clone()
            .or_else(leader::pod_namespace)
            .unwrap_or_else(|| "default".into()),
        identity: identity.to_string(),
        duration: args.lease_duration.max(5),
    };
    tracing::info!(lease = %cfg.name, namespace = %cfg.namespace, %identity, "joining leader election");
    let (rx, task) = leader::elect(kube.clone(), &cfg)
        .await
        .map_err(|e| StartError::Election(e.to_string()))?;
    Ok((rx, Election::Lease { _task: task }))
}

/// What every reconcile shares: clients, policy, budgets, metrics, events, the Lease.
fn build_context(
    args: &RunArgs,
    kube: kube::Client,
    metrics: Arc<Metrics>,
    caches: &Arc<Caches>,
    leader: watch::Receiver<bool>,
    identity: String,
) -> Result<Arc<Context>, StartError> {
    let tencent = TencentClient::new(&args.api.client_config())
        .map_err(|e| StartError::Tencent(e.to_string()))?
        .with_observer(metrics.clone());
    let defaults = default_credentials(args)?;
    Ok(Arc::new(Context {
        kube: kube.clone(),
        tencent,
        defaults,
        policy: args.policy(),
        budgets: budget::Budgets::new(args.namespace_budgets.clone(), caches.clone())
            .published(&metrics),
        metrics,
        recorder: EventPublisher::new(
            kube,
            Reporter {
                controller: "dealpay-operator".into(),
                instance: Some(identity),
            },
        ),
        leader,
        credentials: Arc::new(CredentialsCache::default()),
        superseded: Default::default(),
        filled: watch::Sender::new(false),
        slots: slots::Slots::new(usize::from(args.concurrency)),
    }))
}

fn default_credentials(args: &RunArgs) -> Result<DefaultCredentials, StartError> {
    let defaults = DefaultCredentials {
        env: Credentials::from_env(),
        secret: args
            .default_credentials_secret
            .as_deref()
            .map(parse_secret_ref)
            .transpose()
            .map_err(StartError::Flag)?,
        namespaces: args
            .default_credentials_namespaces
            .iter()
            .filter(|n| !n.is_empty())
            .cloned()
            .collect(),
    };
    if defaults.configured() && defaults.namespaces.is_empty() {
        tracing::warn!(
            "default credentials are configured but no namespace may use them (--default-credentials-namespaces)"
        );
    }
    Ok(defaults)
}

/// How long reconciles in progress may finish after SIGTERM before the process exits anyway (the
/// pod's grace period is 30 s; an attempt already recorded is resolved by the next leader's lookup).
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(20);

/// How long reconciles wait for the slowest namespace's first list before the others start without
/// it (a namespace RBAC does not cover never lists).
const FILL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// While leading, runs one controller per watched scope; stops them when the Lease is lost and
/// starts them again when it comes back; returns on shutdown.
async fn lead(
    args: &RunArgs,
    ctx: &Arc<Context>,
    caches: &Arc<Caches>,
    shutdown: &mut watch::Receiver<bool>,
) {
    let mut leader_rx = ctx.leader.clone();
    let namespaces = scope_namespaces(&args.namespaces);
    let scopes: Vec<Option<String>> = if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.into_iter().map(Some).collect()
    };
    loop {
        tokio::select! {
            _ = wait_true(&mut leader_rx) => {}
            _ = wait_true(shutdown) => return,
        }
        if *shutdown.borrow() {
            return;
        }
        tracing::info!("leading: starting controllers");
        ctx.metrics.leader.set(1);
        caches.clear();
        // Another replica may have paid while this one was not leading: the statuses tell.
        ctx.budgets.ledger.forget();
        ctx.filled.send_replace(false);
        let runs = scopes
            .iter()
            .map(|ns| scope_controller(args, ctx, caches, ns.as_deref(), shutdown));
        let all = futures::future::join(futures::future::join_all(runs), async {
            let late = caches.wait_filled(FILL_WAIT).await;
            if !late.is_empty() {
                tracing::warn!(
                    ?late,
                    "not listed after {FILL_WAIT:?}: the other namespaces start without them"
                );
            }
            ctx.filled.send_replace(true);
        });
        let lost = async {
            let mut rx = leader_rx.clone();
            let _ = rx.wait_for(|v| !*v).await;
        };
        let stuck = async {
            let mut s = shutdown.clone();
            wait_true(&mut s).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        tokio::select! {
            _ = all => {}
            // Dropping the controllers cancels their work at once; an attempt already recorded is
            // resolved by the next leader's lookup.
            _ = lost => tracing::warn!("lost the Lease: stopped reconciling"),
            _ = stuck => tracing::warn!("reconciles still running {SHUTDOWN_GRACE:?} after shutdown was asked: stopping them"),
        }
        ctx.metrics.leader.set(0);
        if *shutdown.borrow() {
            return;
        }
    }
}

/// One controller for one namespace (or the whole cluster), watching DealPayments and the metadata
/// of Secrets, with the Secret mapper that re-reconciles the DealPayments a Secret change affects.
fn scope_controller(
    args: &RunArgs,
    ctx: &Arc<Context>,
    caches: &Arc<Caches>,
    ns: Option<&str>,
    shutdown: &watch::Receiver<bool>,
) -> impl std::future::Future<Output = ()> + use<> {
    let kube = ctx.kube.clone();
    let (api, secrets): (Api<DealPayment>, Api<PartialObjectMeta<Secret>>) = match ns {
        Some(ns) => (Api::namespaced(kube.clone(), ns), Api::namespaced(kube, ns)),
        None => (Api::all(kube.clone()), Api::all(kube)),
    };
    // Lists come from the apiserver's watch cache, as client-go's informers do: several times cheaper
    // for the apiserver than a quorum read of etcd (measured in docs/performance.md), so a namespace
    // with a long history starts paying sooner after a restart. A cached list may lag etcd by the
    // watch's delay (milliseconds, against a Lease that changes hands in seconds); every write is
    // guarded by the resourceVersion it was decided on, so an old view cannot pay twice.
    let mut wc = watcher::Config::default().any_semantic();
    if let Some(sel) = &args.selector {
        wc = wc.labels(sel);
    }
    let (store, writer) = reflector::store();
    let settled = Arc::new(settled::Settled::default());
    let scope_name = ns.unwrap_or("all namespaces").to_string();
    let objects = cached_watch(watcher(api, wc), writer, &settled, ctx, scope_name.clone());
    // The reconciles of every namespace share `ctx.slots`; this only keeps one namespace from queueing
    // more tasks than the whole budget.
    let controller = Controller::for_stream(objects, store.clone())
        .with_config(ControllerConfig::default().concurrency(args.concurrency.max(1)));
    caches.add(Scope {
        name: scope_name.clone(),
        store: store.clone(),
        settled,
    });
    // The journal, for budgets: receipts of DealPayments that are gone still count.
    let receipts_api: Api<PaymentReceipt> = match ns {
        Some(ns) => Api::namespaced(ctx.kube.clone(), ns),
        None => Api::all(ctx.kube.clone()),
    };
    let (receipts, receipts_writer) = reflector::store();
    caches.add_receipts(receipts);
    let receipts_watch = reflector(
        receipts_writer,
        watcher(receipts_api, watcher::Config::default().any_semantic()),
    )
    .default_backoff()
    .for_each(|r| async move {
        if let Err(e) = r {
            tracing::debug!("receipts watch: {e}");
        }
    });
    let secret_events = watcher(secrets, watcher::Config::default())
        .default_backoff()
        .touched_objects();
    let mapper = secret_mapper(store, ctx);
    let stop = {
        let mut s = shutdown.clone();
        async move { wait_true(&mut s).await }
    };
    let run = controller
        .watches_stream(secret_events, mapper)
        .graceful_shutdown_on(stop)
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!("controller: {e}");
            }
        });
    async move {
        // The receipts watch lives as long as the controller.
        tokio::select! {
            _ = run => {}
            _ = receipts_watch => {}
        }
    }
}

/// One watch as its controller sees it: trimmed, settled objects routed to the index (`settled.rs`), the
/// others stored whole by the reflector; yields the objects to reconcile.
fn cached_watch<W>(
    watch: W,
    writer: reflector::store::Writer<DealPayment>,
    settled: &Arc<settled::Settled>,
    ctx: &Arc<Context>,
    scope: String,
) -> impl futures::Stream<Item = watcher::Result<DealPayment>> + Send + use<W>
where
    W: futures::Stream<Item = watcher::Result<watcher::Event<DealPayment>>> + Send + 'static,
{
    let (to_index, from_store, forget) = (settled.clone(), settled.clone(), ctx.clone());
    let mut listing = settled::Listing::default();
    // The backoff keeps a refused watch (403: RBAC does not cover this scope) from spinning.
    watch
        .default_backoff()
        .modify(trim)
        .try_filter_map(move |event| {
            let routed = to_index.before_store(event);
            listing.note(&scope, routed.as_ref());
            // Nothing reconciles a settled or deleted object again: no newer version to wait for.
            if let Some(watcher::Event::Delete(dp)) = &routed {
                forget.superseded.forget(&dp.uid().unwrap_or_default());
            }
            std::future::ready(Ok(routed))
        })
        .reflect(writer)
        .inspect_ok(move |event| from_store.after_store(event))
        .applied_objects()
}

/// The DealPayments to reconcile when a Secret changes: those in its namespace naming it, and all
/// that use the default credentials when it is the default Secret.
fn secret_mapper(
    store: Store<DealPayment>,
    ctx: &Arc<Context>,
) -> impl Fn(PartialObjectMeta<Secret>) -> Vec<ObjectRef<DealPayment>> + use<> {
    let credentials = ctx.credentials.clone();
    let default_secret = ctx.defaults.secret.clone();
    move |s: PartialObjectMeta<Secret>| {
        // Before the reconciles it triggers, so they read the changed Secret.
        credentials.invalidate();
        let (sns, sname) = (s.namespace().unwrap_or_default(), s.name_any());
        let is_default = default_secret.as_ref() == Some(&(sns.clone(), sname.clone()));
        store
            .state()
            .into_iter()
            .filter(|dp| match &dp.spec.credentials {
                Some(c) => {
                    dp.namespace().as_deref() == Some(sns.as_str()) && c.secret_ref.name == sname
                }
                None => is_default,
            })
            .map(|dp| ObjectRef::from_obj(&*dp))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use kube::Resource;

    use super::*;

    #[test]
    fn the_cache_keeps_what_reconciling_reads() {
        let mut dp: DealPayment = serde_json::from_value(serde_json::json!({
            "apiVersion": "billing.dealpay.dev/v1alpha1",
            "kind": "DealPayment",
            "metadata": {
                "name": "a", "namespace": "n", "uid": "u1", "resourceVersion": "7", "generation": 2,
                "labels": {"team": "x"},
                "finalizers": [finalizer::FINALIZER],
                "annotations": {
                    FORCE_DELETE: "true",
                    "kubectl.kubernetes.io/last-applied-configuration": "{\"spec\":{}}"
                },
                "managedFields": [{"manager": "kubectl", "operation": "Apply", "fieldsV1": {"f:spec": {}}}]
            },
            "spec": {"orderIds": ["1"]},
            "status": {"observedGeneration": 2}
        }))
        .unwrap();
        let before = dp.clone();
        trim(&mut dp);
        assert_eq!(dp.metadata.managed_fields, None);
        assert_eq!(
            dp.annotations().keys().collect::<Vec<_>>(),
            [FORCE_DELETE],
            "the force-delete escape hatch must survive"
        );
        assert_eq!(dp.finalizers(), before.finalizers());
        assert_eq!(dp.labels(), before.labels());
        assert_eq!(dp.object_ref(&()), before.object_ref(&()));
        assert_eq!(dp.metadata.generation, Some(2));
        assert_eq!(dp.spec, before.spec);
        assert_eq!(dp.status, before.status);
        dp.metadata.annotations = Some([("other".to_string(), "x".to_string())].into());
        trim(&mut dp);
        assert_eq!(dp.metadata.annotations, None);
    }

    #[test]
    fn a_dry_run_is_labelled_so_the_not_ready_alert_can_leave_it_out() {
        let dp = |name: &str, dry_run: bool| -> DealPayment {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "billing.dealpay.dev/v1alpha1", "kind": "DealPayment",
                "metadata": {"name": name, "namespace": "n", "uid": name, "generation": 1},
                "spec": {"orderIds": ["o1"], "dryRun": dry_run},
                "status": {"observedGeneration": 1, "conditions": [{
                    "type": "Ready", "status": "False", "reason": "NeedPayTogether", "message": "m",
                    "lastTransitionTime": "2026-11-29T10:00:00Z", "observedGeneration": 1}]}
            }))
            .unwrap()
        };
        let (store, mut writer) = reflector::store();
        let settled = Arc::new(settled::Settled::default());
        let events = [
            dp("check", true),
            dp("real", false),
            settled::tests::paid("paid", "n"),
        ];
        for event in events.map(watcher::Event::Apply) {
            if let Some(event) = settled.before_store(event) {
                writer.apply_watcher_event(&event);
                settled.after_store(&event);
            }
        }
        let (metrics, caches) = (Metrics::default(), Caches::default());
        caches.add(Scope {
            name: "n".into(),
            store,
            settled,
        });
        refresh_gauges(&metrics, &caches);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &metrics.registry).unwrap();
        for dry_run in ["true", "false"] {
            let line = format!(
                "dealpay_dealpayments{{ready=\"False\",reason=\"NeedPayTogether\",dry_run=\"{dry_run}\"}} 1"
            );
            assert!(text.contains(&line), "{line} in:\n{text}");
        }
        // Settled objects are counted from the index.
        for line in [
            r#"dealpay_dealpayments{ready="True",reason="Paid",dry_run="false"} 1"#,
            r#"dealpay_spent_total{namespace="n"} 1200"#,
        ] {
            assert!(text.contains(line), "{line} in:\n{text}");
        }
    }

    /// Issue 22: the spend counter comes from the journal, so deleting DealPayments does not lower it,
    /// and Pending receipts are counted with the age of the oldest.
    #[test]
    fn the_spend_counter_and_the_pending_gauge_come_from_the_receipts() {
        let receipt = |name: &str, state: &str, cents: i64| -> PaymentReceipt {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "billing.dealpay.dev/v1alpha1", "kind": "PaymentReceipt",
                "metadata": {"name": name, "namespace": "n", "uid": name},
                "spec": {"dealPayment": {"name": "gone", "uid": "u", "generation": 1},
                         "attemptId": name, "attempt": 1, "startedAt": "2026-11-29T10:00:00Z",
                         "kind": "Order", "ids": ["o1"], "orderCount": 1, "account": "key-x"},
                "status": {"state": state, "totalCents": cents, "currency": "USD"}
            }))
            .unwrap()
        };
        let (store, mut writer) = reflector::store();
        for r in [
            receipt("a", "Charged", 1200),
            receipt("b", "Charged", 300),
            receipt("c", "NotCharged", 0),
            receipt("d", "Pending", 500),
        ] {
            writer.apply_watcher_event(&watcher::Event::Apply(r));
        }
        let (metrics, caches) = (Metrics::default(), Caches::default());
        caches.add_receipts(store);
        refresh_gauges(&metrics, &caches);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &metrics.registry).unwrap();
        for line in [
            r#"dealpay_spent_cents_total{namespace="n",currency="USD"} 1500"#,
            r#"dealpay_receipts_pending{namespace="n"} 1"#,
        ] {
            assert!(text.contains(line), "{line} in:\n{text}");
        }
        assert!(
            text.contains("# TYPE dealpay_spent_cents counter"),
            "{text}"
        );
    }

    #[test]
    fn each_namespace_is_watched_once() {
        let flag: Vec<String> = ["b", "a", "", "a", " b "].map(String::from).to_vec();
        assert_eq!(scope_namespaces(&flag), ["a", "b"]);
        assert!(scope_namespaces(&[]).is_empty());
    }
}
