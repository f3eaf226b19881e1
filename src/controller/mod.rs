//! The Kubernetes shell: watch DealPayments and their Secrets, elect a leader, reconcile through the engine,
//! write status with server-side apply, publish events and metrics.

mod args;
pub mod budget;
pub mod credentials;
pub mod credentials_cache;
pub mod error;
pub mod events;
pub mod finalizer;
pub mod leader;
pub mod metrics;
pub mod pipeline;
pub mod reconcile;
pub mod server;
pub mod status;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use tokio::sync::watch;

pub use args::RunArgs;
use credentials::DefaultCredentials;
use metrics::{Metrics, NamespaceLabels, ObjectLabels, ReasonLabels};
use reconcile::{Context, CredentialsCache, EventPublisher, error_policy, reconcile};

use crate::api::DealPayment;
use crate::controller::finalizer::FORCE_DELETE;
use crate::engine::conditions::{READY, find};
use crate::tencent::{Client as TencentClient, Credentials};

/// Runs the controller until SIGTERM/SIGINT; returns the exit code.
pub async fn run(args: RunArgs) -> i32 {
    match run_inner(args).await {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("{e}");
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

fn refresh_gauges(metrics: &Metrics, stores: &Mutex<Vec<Store<DealPayment>>>) {
    metrics.by_reason.clear();
    metrics.unknown_outcomes.clear();
    metrics.spent.clear();
    for store in stores.lock().expect("stores lock").iter() {
        for dp in store.state() {
            let cost = dp.status.as_ref().and_then(|s| s.total_cost.as_deref());
            if let Some(cents) = cost.and_then(crate::api::money::parse_cents) {
                let labels = NamespaceLabels {
                    namespace: dp.namespace().unwrap_or_default(),
                };
                metrics.spent.get_or_create(&labels).inc_by(cents);
            }
            let unknown = dp.status.as_ref().map_or(0, |s| s.unknown_outcomes);
            if unknown > 0 {
                let labels = ObjectLabels {
                    namespace: dp.namespace().unwrap_or_default(),
                    name: dp.name_any(),
                };
                metrics
                    .unknown_outcomes
                    .get_or_create(&labels)
                    .set(i64::from(unknown));
            }
            let ready = dp.status.as_ref().and_then(|s| find(&s.conditions, READY));
            let labels = ReasonLabels {
                ready: ready.map_or("Unknown", |c| c.status.as_str()).to_string(),
                reason: ready.map_or("Pending", |c| c.reason.as_str()).to_string(),
            };
            metrics.by_reason.get_or_create(&labels).inc();
        }
    }
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

async fn run_inner(args: RunArgs) -> Result<(), String> {
    let kube = kube::Client::try_default()
        .await
        .map_err(|e| format!("Kubernetes client: {e}"))?;
    let metrics = Arc::new(Metrics::default());
    let tencent = TencentClient::new(&args.api.client_config())
        .map_err(|e| e.to_string())?
        .with_observer(metrics.clone());
    let defaults = DefaultCredentials {
        env: Credentials::from_env(),
        secret: args
            .default_credentials_secret
            .as_deref()
            .map(parse_secret_ref)
            .transpose()?,
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
    let namespaces = scope_namespaces(&args.namespaces);
    let identity = leader::identity(args.identity.as_deref());
    let mut shutdown = shutdown_signal();

    let stores: Arc<Mutex<Vec<Store<DealPayment>>>> = Arc::default();
    let health = Arc::new(server::Health {
        metrics: metrics.clone(),
        ready: Default::default(),
        refresh: {
            let (m, s) = (metrics.clone(), stores.clone());
            Box::new(move || refresh_gauges(&m, &s))
        },
    });
    let server_shutdown = {
        let mut s = shutdown.clone();
        async move { wait_true(&mut s).await }
    };
    let server = tokio::spawn(server::serve(
        args.metrics_addr,
        health.clone(),
        server_shutdown,
    ));

    let (_always_leader, mut leader_rx) = watch::channel(true);
    let mut _election = None;
    if args.leader_election {
        let cfg = leader::LeaseConfig {
            name: args.lease_name.clone(),
            namespace: args
                .lease_namespace
                .clone()
                .or_else(leader::pod_namespace)
                .unwrap_or_else(|| "default".into()),
            identity: identity.clone(),
            duration: args.lease_duration.max(5),
        };
        tracing::info!(lease = %cfg.name, namespace = %cfg.namespace, %identity, "joining leader election");
        let (rx, task) = leader::elect(kube.clone(), &cfg)
            .await
            .map_err(|e| format!("leader election: {e}"))?;
        leader_rx = rx;
        _election = Some(task);
    }
    health.ready.store(true, Ordering::Relaxed);

    let credentials_cache = Arc::new(CredentialsCache::default());
    let ctx = Arc::new(Context {
        kube: kube.clone(),
        tencent,
        defaults: defaults.clone(),
        policy: args.policy(),
        budgets: Arc::new(budget::Budgets::new(
            args.namespace_budgets.clone(),
            stores.clone(),
        )),
        metrics: metrics.clone(),
        recorder: EventPublisher::new(
            kube.clone(),
            Reporter {
                controller: "dealpay-operator".into(),
                instance: Some(identity.clone()),
            },
        ),
        leader: leader_rx.clone(),
        credentials: credentials_cache.clone(),
    });

    loop {
        tokio::select! {
            _ = wait_true(&mut leader_rx) => {}
            _ = wait_true(&mut shutdown) => break,
        }
        if *shutdown.borrow() {
            break;
        }
        tracing::info!("leading: starting controllers");
        metrics.leader.set(1);
        let scopes: Vec<Option<String>> = if namespaces.is_empty() {
            vec![None]
        } else {
            namespaces.iter().cloned().map(Some).collect()
        };
        let mut runs = Vec::new();
        stores.lock().expect("stores lock").clear();
        // Another replica may have paid while this one was not leading: the statuses tell.
        ctx.budgets.ledger.forget();
        for ns in scopes {
            let (api, secrets): (Api<DealPayment>, Api<PartialObjectMeta<Secret>>) = match &ns {
                Some(ns) => (
                    Api::namespaced(kube.clone(), ns),
                    Api::namespaced(kube.clone(), ns),
                ),
                None => (Api::all(kube.clone()), Api::all(kube.clone())),
            };
            let mut wc = watcher::Config::default();
            if let Some(sel) = &args.selector {
                wc = wc.labels(sel);
            }
            let (store, writer) = reflector::store();
            let objects = watcher(api, wc)
                .modify(trim)
                .reflect(writer)
                .applied_objects();
            let controller = Controller::for_stream(objects, store.clone())
                .with_config(ControllerConfig::default().concurrency(args.concurrency.max(1)));
            stores.lock().expect("stores lock").push(store.clone());
            let defaults = defaults.clone();
            let secret_events = watcher(secrets, watcher::Config::default()).touched_objects();
            let credentials = credentials_cache.clone();
            let mapper = move |s: PartialObjectMeta<Secret>| {
                // Before the reconciles it triggers, so they read the changed Secret.
                credentials.invalidate();
                let (sns, sname) = (s.namespace().unwrap_or_default(), s.name_any());
                let is_default = defaults.secret.as_ref() == Some(&(sns.clone(), sname.clone()));
                store
                    .state()
                    .into_iter()
                    .filter(|dp| match &dp.spec.credentials {
                        Some(c) => {
                            dp.namespace().as_deref() == Some(sns.as_str())
                                && c.secret_ref.name == sname
                        }
                        None => is_default,
                    })
                    .map(|dp| ObjectRef::from_obj(&*dp))
                    .collect::<Vec<_>>()
            };
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
            runs.push(run);
        }
        let all = futures::future::join_all(runs);
        let lost = async {
            let mut rx = leader_rx.clone();
            let _ = rx.wait_for(|v| !*v).await;
        };
        tokio::select! {
            _ = all => {}
            // Dropping the controllers cancels their work at once; an attempt already recorded is
            // resolved by the next leader's lookup.
            _ = lost => tracing::warn!("lost the Lease: stopped reconciling"),
        }
        metrics.leader.set(0);
        if *shutdown.borrow() {
            break;
        }
    }
    let _ = server.await;
    Ok(())
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
    fn each_namespace_is_watched_once() {
        let flag: Vec<String> = ["b", "a", "", "a", " b "].map(String::from).to_vec();
        assert_eq!(scope_namespaces(&flag), ["a", "b"]);
        assert!(scope_namespaces(&[]).is_empty());
    }
}
