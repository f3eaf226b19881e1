//! End to end: a real kube-apiserver, the sandbox and the operator as processes, the operator running
//! with the identity and RBAC of the Helm chart's ServiceAccount.
//!
//! Every test is `#[ignore]`d, so a plain `cargo test` reports them as ignored; scripts/test starts
//! `scripts/local-cluster` and runs them with `--include-ignored`.

mod budget;
mod failover;
mod gitops;
#[allow(dead_code)] // some helpers serve only tests/chaos.rs, which includes this file too
mod harness;

use std::time::{Duration, Instant};

use harness::*;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams};
use reqwest::Method;
use serde_json::json;

/// A [`Setup`] with one operator watching its namespace.
struct Scenario {
    c: &'static Cluster,
    client: kube::Client,
    ns: String,
    sb: SandboxProc,
    op: Operator,
}

async fn scenario(prefix: &str, sandbox_args: &[&str]) -> Scenario {
    let s = setup(prefix, sandbox_args).await;
    let op = s.operator("").await;
    let Setup {
        c, client, ns, sb, ..
    } = s;
    Scenario {
        c,
        client,
        ns,
        sb,
        op,
    }
}

/// One DealPayment `p<i>` per order, paying with Secret `creds`.
async fn pay_each(client: &kube::Client, ns: &str, orders: &[String]) {
    for (i, o) in orders.iter().enumerate() {
        payment(
            client,
            ns,
            &format!("p{i}"),
            std::slice::from_ref(o),
            Some("creds"),
        )
        .await;
    }
}

async fn wait_all_paid(client: &kube::Client, ns: &str, n: usize, secs: u64) {
    for i in 0..n {
        wait_ready(client, ns, &format!("p{i}"), "True", "Paid", secs).await;
    }
}

/// Waits, on a watch, for an Event with this reason and type in the namespace.
async fn wait_event(client: &kube::Client, ns: &str, reason: &str, type_: &str) {
    use futures::StreamExt;
    use kube::runtime::{WatchStreamExt, watcher};
    let api = Api::<Event>::namespaced(client.clone(), ns);
    let found = watcher(api, watcher::Config::default())
        .applied_objects()
        .any(|e| {
            let hit = e.is_ok_and(|e| {
                e.reason.as_deref() == Some(reason) && e.type_.as_deref() == Some(type_)
            });
            async move { hit }
        });
    let ok = tokio::time::timeout(Duration::from_secs(30), found)
        .await
        .unwrap_or(false);
    assert!(ok, "no {type_} event {reason} in {ns}");
}

async fn events(client: &kube::Client, ns: &str) -> Vec<Event> {
    Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end to end: needs scripts/local-cluster; scripts/test runs it with --include-ignored"]
async fn payment_becomes_ready_with_what_the_api_paid() {
    let Scenario {
        c,
        client,
        ns,
        sb,
        op,
    } = scenario("e2e-happy", &[]).await;
    let orders = sb.add_orders("4100000000000", 2).await;
    secret(&client, &ns, "creds", DEMO_ID, DEMO_KEY).await;
    payment(&client, &ns, "web", &orders, Some("creds")).await;

    let dp = wait_ready(&client, &ns, "web", "True", "Paid", 60).await;
    let st = dp.status.unwrap();
    assert_eq!(st.order_ids, orders);
    assert_eq!(st.resource_ids, ["ins-00000000", "ins-00000001"]);
    let ledger = sb.admin(Method::GET, "/ledger", None).await;
    // Delivery is confirmed by lookup, so status.requestId names the call that proved the payment:
    // the PayDeals answer or the DescribeDealsByCond that saw status 4.
    assert!(
        st.request_id.is_some() && ledger.as_array().is_some_and(|l| l.len() == 2),
        "{st:?}"
    );
    assert!(
        st.in_flight.is_none(),
        "Ready with an attempt still in flight: {st:?}"
    );
    assert_eq!(st.attempts, 1);
    assert_eq!(st.observed_generation, Some(1));

    // kubectl wait, as GitOps users and CI pipelines do.
    kubectl(
        c,
        &[
            "wait",
            "-n",
            &ns,
            "--for=condition=Ready",
            "dealpayment/web",
            "--timeout=30s",
        ],
    );
    let table = kubectl(c, &["get", "dp", "-n", &ns]);
    assert!(table.contains("Paid") && table.contains("READY"), "{table}");

    // Events are written off the payment path: await them. The attempt's start is its receipt's.
    wait_event(&client, &ns, "PaymentSucceeded", "Normal").await;
    let receipts = kubectl(
        c,
        &["get", "paymentreceipts.billing.dealpay.dev", "-n", &ns],
    );
    assert!(
        receipts.contains("Charged") && receipts.contains("web"),
        "{receipts}"
    );

    let m = op.scrape().await;
    assert!(
        m.contains("dealpay_payments_total{outcome=\"paid\",code=\"\"} 1"),
        "{m}"
    );
    assert!(
        m.contains(
            "dealpay_api_call_duration_seconds_count{action=\"PayDeals\",outcome=\"success\"} 1"
        ),
        "{m}"
    );
    assert!(
        m.contains("dealpay_dealpayments{ready=\"True\",reason=\"Paid\",dry_run=\"false\"} 1"),
        "{m}"
    );
    assert!(m.lines().any(|l| l == "dealpay_leader 1"), "{m}");

    let log = std::fs::read_to_string(&op.log).unwrap();
    assert!(
        log.contains("\"request_id\""),
        "JSON logs carry the RequestId"
    );
    assert!(
        !log.contains(DEMO_KEY),
        "the secret key never reaches a log line"
    );
    finish([op], sb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end to end: needs scripts/local-cluster; scripts/test runs it with --include-ignored"]
async fn every_cause_is_explained_and_fixing_it_leads_to_ready() {
    let Scenario {
        client, ns, sb, op, ..
    } = scenario("e2e-fix", &[]).await;
    let o = sb.add_orders("4200000000000", 3).await;
    secret(&client, &ns, "good", DEMO_ID, DEMO_KEY).await;
    secret(&client, &ns, "wrong", DEMO_ID, "not-the-key-31337").await;

    // Needs a person: no money. Stalled, with the Tencent code and RequestId in the message.
    sb.admin(
        Method::PATCH,
        &format!("/accounts/{DEMO_UIN}"),
        Some(json!({"balance": 0})),
    )
    .await;
    payment(&client, &ns, "poor", &o[..1], Some("good")).await;
    let dp = wait_ready(&client, &ns, "poor", "False", "BalanceInsufficient", 60).await;
    let conds = dp.status.unwrap().conditions;
    let stalled = conds.iter().find(|c| c.type_ == "Stalled").unwrap();
    assert_eq!(stalled.status, "True");
    assert!(
        stalled
            .message
            .contains("FailedOperation.BalanceInsufficient")
            && stalled.message.contains("RequestId"),
        "{}",
        stalled.message
    );
    // A Warning event names the cause.
    wait_event(&client, &ns, "BalanceInsufficient", "Warning").await;
    // Top up: Ready without touching the DealPayment.
    sb.admin(
        Method::PATCH,
        &format!("/accounts/{DEMO_UIN}"),
        Some(json!({"balance": 100_000_000})),
    )
    .await;
    wait_ready(&client, &ns, "poor", "True", "Paid", 60).await;

    // Wrong key: fixing the Secret retries at once.
    payment(&client, &ns, "badkey", &o[1..2], Some("wrong")).await;
    wait_ready(&client, &ns, "badkey", "False", "SignatureFailure", 60).await;
    Api::<Secret>::namespaced(client.clone(), &ns)
        .patch(
            "wrong",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"secretKey": DEMO_KEY}})),
        )
        .await
        .unwrap();
    wait_ready(&client, &ns, "badkey", "True", "Paid", 60).await;

    // Missing Secret: creating it is enough.
    payment(&client, &ns, "later", &o[2..3], Some("later-creds")).await;
    wait_ready(&client, &ns, "later", "False", "SecretNotFound", 60).await;
    secret(&client, &ns, "later-creds", DEMO_ID, DEMO_KEY).await;
    wait_ready(&client, &ns, "later", "True", "Paid", 60).await;

    // Terminal: an order Tencent does not know stalls until the spec changes.
    payment(
        &client,
        &ns,
        "unknown",
        &["999999999".to_string()],
        Some("good"),
    )
    .await;
    let dp = wait_ready(
        &client,
        &ns,
        "unknown",
        "False",
        "InvalidParameterValue",
        60,
    )
    .await;
    let conds = dp.status.unwrap().conditions;
    assert!(
        conds
            .iter()
            .any(|c| c.type_ == "Stalled" && c.status == "True")
    );
    assert!(
        conds
            .iter()
            .any(|c| c.type_ == "Reconciling" && c.status == "False")
    );

    // A DealPayment without credentials in a namespace not allowed the default ones.
    payment(&client, &ns, "nocreds", &o[..1], None).await;
    wait_ready(&client, &ns, "nocreds", "False", "NoCredentials", 60).await;

    let charges = sb.charges().await;
    assert!(
        o.iter().all(|id| charges.get(id) == Some(&1)),
        "{charges:?}"
    );
    let log = std::fs::read_to_string(&op.log).unwrap();
    assert!(!log.contains(DEMO_KEY) && !log.contains("not-the-key-31337"));
    finish([op], sb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end to end: needs scripts/local-cluster; scripts/test runs it with --include-ignored"]
async fn operator_killed_mid_payment_never_charges_twice() {
    // Double-charge mode: a second PayDeals for a paid order is charged again, visibly.
    let s = setup("e2e-kill", &["--double-charge"]).await;
    let op = s.operator("-1").await;
    let Setup { client, ns, sb, .. } = &s;
    // Every payment is charged, then answered only after 3 s: the kill lands between charge and answer.
    sb.admin(
        Method::POST,
        "/faults",
        Some(json!({"kind": "latency", "ms": 3000, "afterCharge": true, "action": "PayDeals"})),
    )
    .await;
    let orders = sb.add_orders("4300000000000", 10).await;
    secret(client, ns, "creds", DEMO_ID, DEMO_KEY).await;
    pay_each(client, ns, &orders).await;
    // Kill hard once charges happened (the ledger shows them).
    wait_until("three charges", 60, || async {
        sb.charges().await.len() >= 3
    })
    .await;
    op.kill().await;
    sb.admin(Method::DELETE, "/faults", None).await;
    let op = s.operator("-2").await;
    wait_all_paid(client, ns, orders.len(), 90).await;
    let charges = sb.charges().await;
    assert!(
        orders.iter().all(|id| charges.get(id) == Some(&1)),
        "each order charged exactly once: {charges:?}"
    );
    let log = std::fs::read_to_string(&op.log).unwrap();
    assert!(
        log.contains("DescribeDealsByCond"),
        "the restarted operator resolved unknown outcomes by lookup"
    );
    finish([op], s.sb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end to end: needs scripts/local-cluster; scripts/test runs it with --include-ignored"]
async fn two_replicas_with_leader_election_charge_once() {
    // Double-charge mode: a second PayDeals for a paid order is charged again, visibly.
    let s = setup("e2e-ha", &["--double-charge"]).await;
    let (a, b) = (s.operator("-a").await, s.operator("-b").await);
    let Setup { client, ns, sb, .. } = &s;
    let orders = sb.add_orders("4400000000000", 20).await;
    secret(client, ns, "creds", DEMO_ID, DEMO_KEY).await;
    pay_each(client, ns, &orders).await;
    wait_all_paid(client, ns, orders.len(), 90).await;
    let charges = sb.charges().await;
    assert!(
        orders.iter().all(|id| charges.get(id) == Some(&1)),
        "{charges:?}"
    );
    let leaders = [a.scrape().await, b.scrape().await]
        .iter()
        .filter(|m| m.lines().any(|l| l == "dealpay_leader 1"))
        .count();
    assert_eq!(leaders, 1, "exactly one replica leads");
    finish([a, b], s.sb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end to end: needs scripts/local-cluster; scripts/test runs it with --include-ignored"]
async fn two_hundred_payments_at_once_stay_under_the_rate_limit() {
    let Scenario {
        client, ns, sb, op, ..
    } = scenario("e2e-load", &["--double-charge"]).await;
    let orders = sb.add_orders("4500000000000", 200).await;
    secret(&client, &ns, "creds", DEMO_ID, DEMO_KEY).await;
    let started = Instant::now();
    futures::future::join_all(orders.iter().enumerate().map(|(i, o)| {
        let (client, ns) = (client.clone(), ns.clone());
        async move {
            payment(
                &client,
                &ns,
                &format!("p{i}"),
                std::slice::from_ref(o),
                Some("creds"),
            )
            .await
        }
    }))
    .await;
    wait_all_paid(&client, &ns, orders.len(), 180).await;
    let secs = started.elapsed().as_secs_f64();
    let stats = sb.admin(Method::GET, "/stats", None).await;
    let limited: u64 = ["PayDeals", "DescribeDealsByCond"]
        .iter()
        .map(|a| stats["actions"][a]["rateLimited"].as_u64().unwrap_or(0))
        .sum();
    let calls = stats["actions"]["PayDeals"]["requests"]
        .as_u64()
        .unwrap_or(0);
    println!(
        "e2e load: 200 DealPayments Ready in {secs:.1} s ({:.1} payments/s; {calls} PayDeals calls; {limited} RequestLimitExceeded; operator peak RSS {} KiB)",
        200.0 / secs,
        op.peak_rss_kib()
    );
    assert_eq!(limited, 0, "{stats}");
    let charges = sb.charges().await;
    assert!(orders.iter().all(|id| charges.get(id) == Some(&1)));
    finish([op], sb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end to end: needs scripts/local-cluster; scripts/test runs it with --include-ignored"]
async fn secrets_of_other_namespaces_cannot_be_used_and_never_leak() {
    let s = setup("e2e-tenant-a", &[]).await;
    let ns_b = namespace(&s.client, "e2e-tenant-b").await;
    let op = s
        .operator_with("", &format!("{},{ns_b}", s.ns), &[], &[])
        .await;
    let Setup {
        c,
        client,
        ns: ns_a,
        sb,
        ..
    } = s;
    let orders = sb.add_orders("4600000000000", 1).await;
    secret(&client, &ns_a, "creds", DEMO_ID, DEMO_KEY).await;
    // Tenant B names tenant A's Secret: it is looked up in B only.
    payment(&client, &ns_b, "steal", &orders, Some("creds")).await;
    let dp = wait_ready(&client, &ns_b, "steal", "False", "SecretNotFound", 60).await;
    let msg = &dp.status.as_ref().unwrap().conditions[0].message;
    assert!(
        msg.contains(&format!("Secret {ns_b}/creds not found")),
        "{msg}"
    );
    assert!(sb.charges().await.is_empty());
    // The owner pays with it.
    payment(&client, &ns_a, "own", &orders, Some("creds")).await;
    wait_ready(&client, &ns_a, "own", "True", "Paid", 60).await;
    for ns in [&ns_a, &ns_b] {
        let evs = serde_json::to_string(&events(&client, ns).await).unwrap();
        let dps = kubectl(c, &["get", "dp", "-n", ns, "-o", "yaml"]);
        for text in [&evs, &dps] {
            assert!(!text.contains(DEMO_KEY), "secret value in {ns}");
        }
    }
    let log = std::fs::read_to_string(&op.log).unwrap();
    assert!(!log.contains(DEMO_KEY));
    finish([op], sb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end to end: needs scripts/local-cluster; scripts/test runs it with --include-ignored"]
async fn default_credentials_only_in_allowed_namespaces() {
    let s = setup("e2e-platform", &[]).await;
    let other = namespace(&s.client, "e2e-other").await;
    let op = s
        .operator_with(
            "",
            &format!("{},{other}", s.ns),
            &["--default-credentials-namespaces", &s.ns],
            &[
                ("TENCENTCLOUD_SECRET_ID", DEMO_ID),
                ("TENCENTCLOUD_SECRET_KEY", DEMO_KEY),
            ],
        )
        .await;
    let Setup {
        client,
        ns: allowed,
        sb,
        ..
    } = s;
    let orders = sb.add_orders("4700000000000", 2).await;
    payment(&client, &allowed, "platform", &orders[..1], None).await;
    payment(&client, &other, "sneaky", &orders[1..], None).await;
    wait_ready(&client, &allowed, "platform", "True", "Paid", 60).await;
    let dp = wait_ready(
        &client,
        &other,
        "sneaky",
        "False",
        "CredentialsNotAllowed",
        60,
    )
    .await;
    let stalled = dp
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Stalled")
        .unwrap();
    assert_eq!(stalled.status, "True");
    let charges = sb.charges().await;
    assert_eq!(charges.get(&orders[0]), Some(&1));
    assert_eq!(charges.get(&orders[1]), None);
    finish([op], sb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end to end: needs scripts/local-cluster; scripts/test runs it with --include-ignored"]
async fn sigterm_finishes_and_records_calls_in_flight() {
    let Scenario {
        client, ns, sb, op, ..
    } = scenario("e2e-term", &[]).await;
    // Each PayDeals answer takes 2 s: SIGTERM arrives while calls are in flight.
    sb.admin(
        Method::POST,
        "/faults",
        Some(json!({"kind": "latency", "ms": 2000, "action": "PayDeals"})),
    )
    .await;
    let orders = sb.add_orders("4800000000000", 5).await;
    secret(&client, &ns, "creds", DEMO_ID, DEMO_KEY).await;
    pay_each(&client, &ns, &orders).await;
    wait_until("a PayDeals call", 60, || async {
        sb.stats().await["actions"]["PayDeals"]["requests"]
            .as_u64()
            .is_some_and(|n| n > 0)
    })
    .await;
    assert_eq!(op.terminate().await, Some(0), "clean exit on SIGTERM");
    let charges = sb.charges().await;
    assert!(!charges.is_empty(), "calls were in flight");
    let api = Api::<dealpay_operator::api::DealPayment>::namespaced(client.clone(), &ns);
    for dp in api.list(&ListParams::default()).await.unwrap() {
        let st = dp.status.clone().unwrap_or_default();
        assert!(
            st.in_flight.is_none(),
            "{:?}: a call was left unrecorded",
            dp.metadata.name
        );
        for id in &dp.spec.order_ids {
            let charged = charges.contains_key(id);
            assert_eq!(
                st.order_ids.contains(id),
                charged,
                "{id}: status and ledger agree"
            );
        }
    }
    finish([], sb).await;
}
