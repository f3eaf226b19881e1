//! GitOps on the real apiserver: the kstatus rules (sigs.k8s.io/cli-utils `kstatus/status`, generic
//! resource path: deletionTimestamp → Terminating; generation > status.observedGeneration →
//! InProgress; Reconciling=True → InProgress; Stalled=True → Failed; then Ready: True → Current,
//! False/Unknown → InProgress; no conditions → Current) over the lifecycle the operator writes, and
//! the deletion finalizer.

use std::time::Duration;

use dealpay_operator::api::DealPayment;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
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

/// Polls until kstatus says `want` (every 100 ms, up to `secs`).
async fn wait_kstatus(api: &Api<DealPayment>, name: &str, want: &str, secs: u64) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let obj = get(api, name).await;
        if kstatus(&obj) == want {
            return obj;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{name} never read {want} (now {}): {:#}",
            kstatus(&obj),
            obj["status"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kstatus_reads_the_lifecycle_the_operator_writes() {
    let Some(c) = cluster() else { return };
    let client = admin_client(c).await;
    let ns = namespace(&client, "e2e-kstatus").await;
    let api = Api::<DealPayment>::namespaced(client.clone(), &ns);
    let sb = SandboxProc::start(&[]).await;
    let orders = sb.add_orders("4300000000000", 3).await;
    secret(&client, &ns, "creds", DEMO_ID, DEMO_KEY).await;
    // Before any operator runs: the CRD's status default makes a new object InProgress, not Current.
    payment(&client, &ns, "new", &orders[..1], Some("creds")).await;
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
    payment(&client, &ns, "hangs", &orders[1..2], Some("creds")).await;
    // Stalled: its Secret does not exist.
    payment(&client, &ns, "stalls", &orders[2..3], Some("missing")).await;
    let op = Operator::start(
        c,
        &sb,
        &ns,
        &format!("lease-{ns}"),
        log_dir().join(format!("{ns}.log")),
    )
    .await;
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
    let suspended = wait_ready(&client, &ns, "stalls", "False", "Suspended", 30).await;
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
    // Deleting the one whose call is in flight: held (Terminating) until settled or forced.
    api.delete("hangs", &DeleteParams::default()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
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
    for name in ["new", "hangs"] {
        let mut gone = false;
        for _ in 0..900 {
            if api.get_opt(name).await.unwrap().is_none() {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(gone, "{name} was not released");
    }
    op.terminate().await;
    sb.stop().await;
}
