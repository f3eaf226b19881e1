//! GitOps on the real apiserver: the kstatus rules (sigs.k8s.io/cli-utils `kstatus/status`, generic
//! resource path: deletionTimestamp → Terminating; generation > status.observedGeneration →
//! InProgress; Reconciling=True → InProgress; Stalled=True → Failed; then Ready: True → Current,
//! False/Unknown → InProgress; no conditions → Current) over the lifecycle the operator writes, and
//! the deletion finalizer.

use std::time::Duration;

use dealpay_operator::api::DealPayment;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};
use serde_json::{Value, json};

use super::*;

/// kstatus's Compute for a custom resource, on the object as the apiserver serves it.
fn kstatus(obj: &Value) -> &'static str {
    if !obj["metadata"]["deletionTimestamp"].is_null() {
        return "Terminating";
    }
    let generation = obj["metadata"]["generation"].as_i64();
    if let (Some(g), Some(o)) = (generation, obj["status"]["observedGeneration"].as_i64())
        && g > o
    {
        return "InProgress";
    }
    let empty = vec![];
    let conds = obj["status"]["conditions"].as_array().unwrap_or(&empty);
    let is = |t: &str, s: &str| conds.iter().any(|c| c["type"] == t && c["status"] == s);
    if is("Reconciling", "True") {
        return "InProgress";
    }
    if is("Stalled", "True") {
        return "Failed";
    }
    if let Some(r) = conds.iter().find(|c| c["type"] == "Ready") {
        return if r["status"] == "True" {
            "Current"
        } else {
            "InProgress"
        };
    }
    "Current"
}

async fn get(api: &Api<DealPayment>, name: &str) -> Value {
    serde_json::to_value(api.get(name).await.unwrap()).unwrap()
}

/// Waits, on watch events, until kstatus says `want` of the object as the apiserver serves it.
async fn wait_kstatus(api: &Api<DealPayment>, name: &str, want: &'static str, secs: u64) -> Value {
    let raw = Api::<DynamicObject>::namespaced_with(
        api.clone().into_client(),
        api.namespace().unwrap_or_default(),
        &ApiResource::erase::<DealPayment>(&()),
    );
    let reads = move |o: Option<&DynamicObject>| {
        o.is_some_and(|o| kstatus(&serde_json::to_value(o).unwrap()) == want)
    };
    match tokio::time::timeout(Duration::from_secs(secs), await_condition(raw, name, reads)).await {
        Ok(Ok(Some(o))) => serde_json::to_value(o).unwrap(),
        other => {
            let obj = get(api, name).await;
            panic!(
                "{name} never read {want} ({other:?}; now {}): {:#}",
                kstatus(&obj),
                obj["status"]
            )
        }
    }
}

/// Waits, on watch events, until the object is gone.
async fn wait_deleted(api: &Api<DealPayment>, name: &str, secs: u64) {
    let Some(uid) = api
        .get_opt(name)
        .await
        .unwrap()
        .and_then(|o| o.metadata.uid)
    else {
        return;
    };
    let gone = await_condition(api.clone(), name, conditions::is_deleted(&uid));
    let done = tokio::time::timeout(Duration::from_secs(secs), gone).await;
    assert!(done.is_ok_and(|r| r.is_ok()), "{name} was not released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end to end: needs scripts/local-cluster; scripts/test runs it with --include-ignored"]
async fn kstatus_reads_the_lifecycle_the_operator_writes() {
    let s = setup("e2e-kstatus", &[]).await;
    let Setup { client, ns, sb, .. } = &s;
    let api = Api::<DealPayment>::namespaced(client.clone(), ns);
    let orders = sb.add_orders("4300000000000", 3).await;
    secret(client, ns, "creds", DEMO_ID, DEMO_KEY).await;
    // Before any operator runs: the CRD's status default makes a new object InProgress, not Current.
    payment(client, ns, "new", &orders[..1], Some("creds")).await;
    let obj = get(&api, "new").await;
    assert_eq!(obj["status"]["observedGeneration"], 0, "{obj:#}");
    assert_eq!(kstatus(&obj), "InProgress");
    // A payment whose call hangs: InProgress while in flight.
    sb.admin(
        reqwest::Method::POST,
        "/faults",
        Some(json!({"kind": "latency", "ms": 600000, "orders": [orders[1]], "action": "PayDeals"})),
    )
    .await;
    payment(client, ns, "hangs", &orders[1..2], Some("creds")).await;
    // Stalled: its Secret does not exist.
    payment(client, ns, "stalls", &orders[2..3], Some("missing")).await;
    let op = s.operator("").await;
    let paid = wait_kstatus(&api, "new", "Current", 60).await;
    assert_eq!(paid["status"]["conditions"][0]["reason"], "Paid");
    let hanging = wait_kstatus(&api, "hangs", "InProgress", 30).await;
    assert!(
        !hanging["status"]["inFlight"].is_null() || hanging["status"]["observedGeneration"] == 0
    );
    wait_kstatus(&api, "stalls", "Failed", 60).await;
    // A spec change: InProgress until observed, then suspended: InProgress (Reconciling=True Suspended).
    let pp = PatchParams::default();
    api.patch(
        "stalls",
        &pp,
        &Patch::Merge(json!({"spec": {"suspend": true}})),
    )
    .await
    .unwrap();
    let changed = get(&api, "stalls").await;
    if changed["status"]["observedGeneration"].as_i64() < changed["metadata"]["generation"].as_i64()
    {
        assert_eq!(kstatus(&changed), "InProgress");
    }
    let suspended = wait_ready(client, ns, "stalls", "False", "Suspended", 30).await;
    let suspended = serde_json::to_value(suspended).unwrap();
    assert_eq!(
        kstatus(&suspended),
        "InProgress",
        "{:#}",
        suspended["status"]
    );
    // Deleting the paid one: settled, so the finalizer lets it go at once.
    let obj = get(&api, "new").await;
    assert!(
        obj["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f == "billing.dealpay.dev/payment-record")),
        "finalizer: {:#}",
        obj["metadata"]
    );
    api.delete("new", &DeleteParams::default()).await.unwrap();
    // Deleting the one whose call is in flight: held (Terminating) until settled or forced, still
    // there once the operator has released the settled one.
    api.delete("hangs", &DeleteParams::default()).await.unwrap();
    wait_deleted(&api, "new", 90).await;
    let held = get(&api, "hangs").await;
    assert_eq!(kstatus(&held), "Terminating");
    api.patch(
        "hangs",
        &pp,
        &Patch::Merge(
            json!({"metadata": {"annotations": {"billing.dealpay.dev/force-delete": "true"}}}),
        ),
    )
    .await
    .unwrap();
    // "hangs" goes once its PayDeals call (600 s of sandbox latency) gives up at --request-timeout (30 s):
    // a reconcile in progress is never cut short.
    wait_deleted(&api, "hangs", 90).await;
    op.terminate().await;
    s.sb.stop().await;
}
