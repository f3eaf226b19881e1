//! Chaos driver: the operator as real processes against a real kube-apiserver and `dealpay sandbox
//! --double-charge`, with randomised fault rules, SIGKILLs at random moments and sometimes a second
//! replica racing for the Lease. The truth is read from the sandbox ledger afterwards.
//!
//! Run (needs the cluster of `scripts/local-cluster`; `#[ignore]`d, so a plain `cargo test` reports
//! it as ignored and scripts/test runs it with `--include-ignored`):
//!
//! ```sh
//! eval "$(scripts/local-cluster env)"
//! cargo test --test chaos -- --include-ignored --nocapture
//! DEALPAY_CHAOS_SEED=42 DEALPAY_CHAOS_TRIALS=500 cargo test --test chaos -- --include-ignored --nocapture
//! DEALPAY_CHAOS_SEED=42 DEALPAY_CHAOS_ONLY=17 cargo test --test chaos -- --include-ignored --nocapture
//! ```
//!
//! Environment: `DEALPAY_CHAOS_SEED` (u64; random and printed when unset), `DEALPAY_CHAOS_TRIALS`
//! (default 20), `DEALPAY_CHAOS_FIRST` (index of the first trial, default 0: lets a long run be split
//! into chunks that together equal one run), `DEALPAY_CHAOS_ONLY` (run only this trial index),
//! `DEALPAY_CHAOS_PARALLEL` (trials at once, default 3), `DEALPAY_CHAOS_BUDGET` (seconds a trial may
//! take to settle after its faults are cleared, default 90).
//!
//! Trial `i` of seed `S` draws everything — workload, fault rules, delivery delays, kill times,
//! failpoints, second replica — from `fastrand::Rng::with_seed(S ^ i·φ)`, so a seed and an index
//! reproduce a scenario (timing on a busy machine still varies). Each trial has its own sandbox
//! account (so the sandbox's per-account rate limit is the trial's own), namespace, Lease and order
//! ids; fault rules name the trial's ids only.
//!
//! Per run it prints `trials orders charged double_charges false_paid false_failed unresolved
//! missing_resource_ids storm_calls` and fails if any of the last seven is not 0:
//!
//! - `trials`: trials run.
//! - `orders`: sandbox (sub-)orders the trials' DealPayments pay (a big deal counts its sub-orders).
//! - `charged`: those orders with at least one ledger entry.
//! - `double_charges`: ledger entries beyond the first per order (the sandbox charges a paid order
//!   again in double-charge mode, so any second PayDeals that reached it for a paid order counts).
//! - `false_paid`: orders the operator claims paid — listed in `status.orderIds`, or in
//!   `status.orders[]` as `Paid`/`Delivering`/`DeliveryFailed` (directly or through their big deal)
//!   — without a ledger entry; plus orders of a `Ready=True` DealPayment whose Tencent status is not 4.
//! - `false_failed`: orders with a ledger entry whose DealPayment ends `Paid=False`, or lists them
//!   `Unpayable`/`PartlyUnpayable`, or reports `DeliveryFailed` while Tencent status is 4.
//! - `unresolved`: DealPayments not in their expected final state when the trial's settle budget
//!   ends (faults cleared at the end of the chaos phase, one replica left running): `Ready=True`
//!   reason `Paid` when every order is deliverable, else `Ready=False` reason `DeliveryFailed` with
//!   `Stalled=True`. (A Stalled `OutcomeUnknown` counts as unresolved: once faults are gone it must
//!   settle.)
//! - `missing_resource_ids`: resource ids the sandbox lists for the orders of a `Ready=True`
//!   DealPayment that its `status.resourceIds` lacks.
//! - `storm_calls`: PayDeals calls naming an order (read from every replica's "calling PayDeals" log
//!   line) that came less than [`MIN_GAP`] after the previous call naming that order. Every backoff
//!   curve the driver configures waits at least 0.5 s before a new attempt (1 s base, jitter down to
//!   half), a new replica looks an unknown outcome up before paying, and a call follows only a failed
//!   or unknown one; so two calls for one order closer than that are a storm.

#[allow(dead_code)]
#[path = "e2e/harness.rs"]
mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dealpay_operator::api::{DealPayment, DealPaymentSpec, OrderState};
use futures::StreamExt;
use harness::*;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use reqwest::Method;
use serde_json::{Value, json};

/// Two PayDeals calls for one order closer than this are a storm (the smallest backoff is 500 ms).
const MIN_GAP: Duration = Duration::from_millis(400);

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// The figures of one trial or a whole run.
#[derive(Debug, Default, Clone, Copy)]
struct Figures {
    trials: u64,
    orders: u64,
    charged: u64,
    double_charges: u64,
    false_paid: u64,
    false_failed: u64,
    unresolved: u64,
    missing_resource_ids: u64,
    storm_calls: u64,
}

impl Figures {
    fn add(&mut self, o: &Figures) {
        self.trials += o.trials;
        self.orders += o.orders;
        self.charged += o.charged;
        self.double_charges += o.double_charges;
        self.false_paid += o.false_paid;
        self.false_failed += o.false_failed;
        self.unresolved += o.unresolved;
        self.missing_resource_ids += o.missing_resource_ids;
        self.storm_calls += o.storm_calls;
    }
    fn bad(&self) -> u64 {
        self.double_charges
            + self.false_paid
            + self.false_failed
            + self.unresolved
            + self.missing_resource_ids
            + self.storm_calls
    }
    fn line(&self) -> String {
        format!(
            "{} {} {} {} {} {} {} {} {}",
            self.trials,
            self.orders,
            self.charged,
            self.double_charges,
            self.false_paid,
            self.false_failed,
            self.unresolved,
            self.missing_resource_ids,
            self.storm_calls
        )
    }
}

/// One DealPayment of a trial.
#[derive(Debug, Clone)]
struct Dp {
    name: String,
    /// `orderIds` or, for a big deal, `bigDealIds`.
    ids: Vec<String>,
    big_deal: bool,
    /// The sub-orders it pays.
    orders: Vec<String>,
    deliverable: bool,
    what: &'static str,
}

/// What a trial does, all drawn from its seed.
#[derive(Debug)]
struct Scenario {
    dps: Vec<Dp>,
    orders: Vec<Value>,
    faults: Vec<Value>,
    chaos: Duration,
    /// Kill moments (from the start of the chaos phase) and the pause before the restart.
    kills: Vec<(Duration, Duration)>,
    /// Kill the replica the moment its failpoint pauses (between write-ahead write and call).
    kill_on_failpoint: bool,
    /// Failpoint pause in seconds for the first replica, if any.
    failpoint: Option<f64>,
    second_replica: bool,
}

fn draw(rng: &mut fastrand::Rng, trial: u64) -> Scenario {
    let mut dps = Vec::new();
    let mut orders = Vec::new();
    let n = rng.usize(1..=3);
    for d in 0..n {
        let oid = |k: usize| format!("2027{trial:08}{d:04}{k:04}");
        let delay = |rng: &mut fastrand::Rng| {
            if rng.bool() { 0 } else { rng.u64(200..=3000) }
        };
        let order = |rng: &mut fastrand::Rng, id: &str| json!({"orderId": id, "price": rng.i64(100..=5000), "deliveryDelayMs": delay(rng)});
        let kind = rng.usize(0..10);
        // The sandbox orders (drawn in the same order as ever, so a seed replays its old trials),
        // and the ids the spec names when they are not the orders themselves (a big deal).
        let mut big = None;
        let (subs, what): (Vec<Value>, &'static str) = match kind {
            0..=2 => (vec![order(rng, &oid(0))], "one order"),
            3..=4 => {
                let ids: Vec<String> = (0..rng.usize(2..=4)).map(oid).collect();
                (
                    ids.iter().map(|id| order(rng, id)).collect(),
                    "several orders",
                )
            }
            5..=6 => {
                let group = format!("pkg-{trial}-{d}");
                let subs = (0..2).map(oid).map(|id| {
                    let mut o = order(rng, &id);
                    o["payTogetherGroup"] = json!(group);
                    o
                });
                (subs.collect(), "pay-together group")
            }
            7..=8 => {
                let id = format!("2027{trial:08}{d:04}9999");
                let ids: Vec<String> = (0..rng.usize(2..=3)).map(oid).collect();
                let subs = ids.iter().map(|sub| {
                    let mut o = order(rng, sub);
                    o["bigDealId"] = json!(id);
                    o
                });
                let subs = subs.collect();
                big = Some(id);
                (subs, "big deal")
            }
            _ => {
                let mut o = order(rng, &oid(0));
                o["deliverable"] = json!(false);
                (vec![o], "undeliverable order")
            }
        };
        let sub_ids: Vec<String> = subs
            .iter()
            .map(|o| o["orderId"].as_str().unwrap().to_string())
            .collect();
        dps.push(Dp {
            name: format!("dp{d}"),
            ids: big.clone().map_or_else(|| sub_ids.clone(), |b| vec![b]),
            big_deal: big.is_some(),
            orders: sub_ids,
            deliverable: subs.iter().all(|o| o["deliverable"] != false),
            what,
        });
        orders.extend(subs);
    }
    let all_ids: Vec<String> = dps.iter().flat_map(|d| d.ids.clone()).collect();
    let mut faults = Vec::new();
    for _ in 0..rng.usize(0..=3) {
        let mut f = match rng.usize(0..10) {
            0 => json!({"kind": "latency", "ms": rng.u64(100..=3000), "afterCharge": rng.bool()}),
            1 => json!({"kind": "http502"}),
            2 => json!({"kind": "drop"}),
            3 => json!({"kind": "internalError"}),
            4 => {
                let code = ["RequestLimitExceeded", "InternalError.DbError"][rng.usize(0..2)];
                json!({"kind": "error", "code": code, "message": "chaos"})
            }
            5 => json!({"kind": "chargeThenDrop"}),
            6 => json!({"kind": "chargeThenInternalError"}),
            7 => json!({"kind": "partialPayment"}),
            // Cut off, run later: within the 5 s signature window of these tests, or expired.
            8 => json!({"kind": "late", "ms": rng.u64(500..=6000)}),
            _ => json!({"kind": "latency", "ms": rng.u64(1000..=4000), "afterCharge": true}),
        };
        // Which requests: one DealPayment's ids, or all of the trial's.
        f["orders"] = if rng.bool() {
            json!(dps[rng.usize(0..dps.len())].ids)
        } else {
            json!(all_ids)
        };
        match rng.usize(0..3) {
            0 => f["action"] = json!("PayDeals"),
            1 => f["action"] = json!("DescribeDealsByCond"),
            _ => {}
        }
        // Sticky (no count) one time in four.
        if rng.usize(0..4) != 0 {
            f["count"] = json!(rng.u64(1..=3));
        }
        faults.push(f);
    }
    let chaos = Duration::from_millis(rng.u64(2000..=8000));
    let mut kills: Vec<(Duration, Duration)> = (0..rng.usize(0..=2))
        .map(|_| {
            (
                Duration::from_millis(rng.u64(0..=chaos.as_millis() as u64)),
                Duration::from_millis(rng.u64(0..=2000)),
            )
        })
        .collect();
    kills.sort();
    let failpoint = (rng.usize(0..3) == 0).then(|| rng.f64() * 2.0 + 0.5);
    let kill_on_failpoint = failpoint.is_some() && rng.bool();
    Scenario {
        dps,
        orders,
        faults,
        chaos,
        kills,
        kill_on_failpoint,
        failpoint,
        second_replica: rng.usize(0..3) == 0,
    }
}

/// Shared by every trial of a run.
struct Run {
    c: &'static Cluster,
    client: kube::Client,
    sb: SandboxProc,
    http: reqwest::Client,
    seed: u64,
    dir: PathBuf,
    budget: Duration,
}

impl Run {
    /// An admin call that may fail (a fault rule with a count may be gone already).
    async fn try_admin(&self, method: Method, path: &str, body: Option<Value>) -> Option<Value> {
        let mut rb = self
            .http
            .request(method, format!("{}/_sandbox{path}", self.sb.url));
        if let Some(b) = body {
            rb = rb
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = rb.send().await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        Some(serde_json::from_str(&resp.text().await.ok()?).unwrap_or(Value::Null))
    }
}

/// A replica of a trial, with where its failpoint writes.
struct Replica {
    op: Operator,
    marker: Option<PathBuf>,
}

struct TrialCtx<'a> {
    run: &'a Run,
    trial: u64,
    ns: String,
    lease: String,
    dir: PathBuf,
    started: usize,
    logs: Vec<PathBuf>,
    trace: String,
    t0: Instant,
}

impl TrialCtx<'_> {
    fn note(&mut self, what: impl AsRef<str>) {
        let _ = writeln!(
            self.trace,
            "  [{:6.2}s] {}",
            self.t0.elapsed().as_secs_f64(),
            what.as_ref()
        );
    }

    async fn start(&mut self, failpoint: Option<f64>) -> Replica {
        self.started += 1;
        let log = self.dir.join(format!("op{}.log", self.started));
        self.logs.push(log.clone());
        let mut opts = OperatorOpts {
            lease_duration: 5,
            identity: Some(format!("chaos-{}-{}", self.trial, self.started)),
            extra: [
                "--unknown-outcome-backoff-base",
                "1",
                "--unknown-outcome-backoff-max",
                "4",
                "--request-timeout",
                "10",
            ]
            .map(String::from)
            .to_vec(),
            envs: Vec::new(),
        };
        let mut marker = None;
        if let Some(secs) = failpoint {
            let m = self.dir.join(format!("op{}.failpoint", self.started));
            opts.envs.push((
                "DEALPAY_TEST_FAILPOINT".into(),
                format!("pause-before-paydeals:{secs:.2}"),
            ));
            opts.envs.push((
                "DEALPAY_TEST_FAILPOINT_FILE".into(),
                m.display().to_string(),
            ));
            marker = Some(m);
        }
        let op = Operator::start_opts(
            self.run.c,
            &self.run.sb.url,
            &self.ns,
            &self.lease,
            log,
            &opts,
        )
        .await;
        self.note(format!(
            "started op{} (pid {}){}",
            self.started,
            op.pid(),
            failpoint
                .map(|s| format!(" with failpoint pause {s:.2}s"))
                .unwrap_or_default()
        ));
        Replica { op, marker }
    }
}

fn marker_lines(m: &Option<PathBuf>) -> usize {
    m.as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map_or(0, |s| s.lines().count())
}

/// The DealPayment has reached what its orders make possible.
fn settled(dp: &DealPayment, want: &Dp) -> bool {
    let Some(st) = dp.status.as_ref() else {
        return false;
    };
    let cond = |t: &str| st.conditions.iter().find(|c| c.type_ == t);
    let ready = cond("Ready");
    if want.deliverable {
        ready.is_some_and(|c| c.status == "True" && c.reason == "Paid")
    } else {
        ready.is_some_and(|c| c.status == "False" && c.reason == "DeliveryFailed")
            && cond("Stalled").is_some_and(|c| c.status == "True")
    }
}

/// PayDeals calls per id (order or big deal id as sent) from the operators' JSON logs.
fn calls_from_logs(logs: &[PathBuf]) -> Vec<(jiff::Timestamp, String)> {
    let mut out = Vec::new();
    for log in logs {
        let Ok(text) = std::fs::read_to_string(log) else {
            continue;
        };
        for line in text.lines().filter(|l| l.contains("calling PayDeals")) {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let Some(ts) = v["timestamp"]
                .as_str()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            else {
                continue;
            };
            out.push((ts, v["ids"].as_str().unwrap_or_default().into()));
        }
    }
    out.sort();
    out
}

async fn trial(run: &Run, trial: u64) -> (Figures, Option<String>) {
    let mut rng = fastrand::Rng::with_seed(run.seed ^ trial.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let sc = draw(&mut rng, trial);
    let ns = namespace(&run.client, &format!("chaos-{trial}")).await;
    let dir = run.dir.join(format!("trial-{trial}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut cx = TrialCtx {
        run,
        trial,
        lease: format!("lease-{ns}"),
        ns,
        dir,
        started: 0,
        logs: Vec::new(),
        trace: String::new(),
        t0: Instant::now(),
    };
    let _ = writeln!(
        cx.trace,
        "trial {trial} (seed {}, namespace {}): chaos {:.1}s, kills {:?}, failpoint {:?} (kill on it: {}), second replica {}",
        run.seed,
        cx.ns,
        sc.chaos.as_secs_f64(),
        sc.kills,
        sc.failpoint,
        sc.kill_on_failpoint,
        sc.second_replica
    );
    for d in &sc.dps {
        let _ = writeln!(cx.trace, "  {} {}: {:?}", d.name, d.what, d.ids);
    }
    for o in &sc.orders {
        let _ = writeln!(cx.trace, "  order {o}");
    }
    for f in &sc.faults {
        let _ = writeln!(cx.trace, "  fault {f}");
    }

    // The trial's own account, orders and credentials.
    let uin = format!("3{trial:011}");
    let (sid, skey) = (format!("chaos-id-{trial}"), format!("chaos-key-{trial}"));
    run.sb
        .admin(
            Method::POST,
            "/accounts",
            Some(json!({"uin": uin, "secretId": sid, "secretKey": skey, "balance": 1_000_000_000i64})),
        )
        .await;
    let orders: Vec<Value> = sc
        .orders
        .iter()
        .map(|o| {
            let mut o = o.clone();
            o["account"] = json!(uin);
            o
        })
        .collect();
    run.sb
        .admin(Method::POST, "/orders", Some(json!(orders)))
        .await;
    secret(&run.client, &cx.ns, "creds", &sid, &skey).await;
    let ids = run
        .sb
        .admin(Method::POST, "/faults", Some(json!(sc.faults)))
        .await;
    let fault_ids: Vec<u64> = ids
        .as_array()
        .map(|a| a.iter().filter_map(|f| f["id"].as_u64()).collect())
        .unwrap_or_default();

    let mut replicas = vec![cx.start(sc.failpoint).await];
    if sc.second_replica {
        let r = cx.start(None).await;
        replicas.push(r);
    }
    let api = Api::<DealPayment>::namespaced(run.client.clone(), &cx.ns);
    for d in &sc.dps {
        let mut spec = DealPaymentSpec::default();
        if d.big_deal {
            spec.big_deal_ids = d.ids.clone();
        } else {
            spec.order_ids = d.ids.clone();
        }
        spec.credentials =
            Some(serde_json::from_value(json!({"secretRef": {"name": "creds"}})).unwrap());
        api.create(&PostParams::default(), &DealPayment::new(&d.name, spec))
            .await
            .unwrap();
    }
    cx.note("DealPayments created");

    // Chaos phase: kills at random moments (and at the failpoint), restarts after a random pause.
    let chaos_start = Instant::now();
    let mut kills = sc.kills.clone().into_iter().peekable();
    let mut fp_seen = 0;
    let mut fp_killed = false;
    while chaos_start.elapsed() < sc.chaos {
        let due = kills
            .peek()
            .is_some_and(|(at, _)| chaos_start.elapsed() >= *at);
        let fp_now = sc.kill_on_failpoint
            && !fp_killed
            && replicas
                .first()
                .is_some_and(|r| marker_lines(&r.marker) > fp_seen);
        if due || fp_now {
            let pause = if due {
                kills.next().map(|k| k.1).unwrap_or_default()
            } else {
                fp_seen = marker_lines(&replicas[0].marker);
                fp_killed = true;
                Duration::ZERO
            };
            // Kill the leader when one is known, else any replica.
            let mut victim = 0;
            for (i, r) in replicas.iter().enumerate() {
                if r.op.leads().await {
                    victim = i;
                }
            }
            if fp_now {
                victim = 0;
            }
            if victim < replicas.len() {
                let r = replicas.remove(victim);
                let pid = r.op.pid();
                r.op.kill().await;
                cx.note(format!(
                    "SIGKILL pid {pid}{}",
                    if fp_now {
                        " (paused at the failpoint: after the write-ahead write, before PayDeals)"
                    } else {
                        ""
                    }
                ));
            }
            tokio::time::sleep(pause).await;
            let fp = if rng.bool() { sc.failpoint } else { None };
            let r = cx.start(fp).await;
            replicas.push(r);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for id in &fault_ids {
        let _ = run
            .try_admin(Method::DELETE, &format!("/faults/{id}"), None)
            .await;
    }
    cx.note("faults cleared");
    // One replica without a failpoint is left (a failpoint replica still pays, just slower).
    if replicas.iter().all(|r| r.marker.is_some()) {
        let r = cx.start(None).await;
        replicas.push(r);
    }

    // Settle: wait for every DealPayment's expected final state, up to the budget.
    let settle = Instant::now();
    let mut last: Vec<DealPayment> = Vec::new();
    while settle.elapsed() < run.budget {
        last = api
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        let done = sc.dps.iter().all(|d| {
            last.iter()
                .find(|o| o.metadata.name.as_deref() == Some(&d.name))
                .is_some_and(|o| settled(o, d))
        });
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    cx.note(format!(
        "settle phase ended after {:.1}s",
        settle.elapsed().as_secs_f64()
    ));
    for r in replicas {
        r.op.kill().await;
    }

    // Truth: the ledger and the sandbox's orders.
    let ledger = run.sb.admin(Method::GET, "/ledger", None).await;
    let all_orders: BTreeSet<&str> = sc
        .dps
        .iter()
        .flat_map(|d| d.orders.iter().map(|s| s.as_str()))
        .collect();
    let mut entries: BTreeMap<String, u64> = BTreeMap::new();
    for c in ledger.as_array().cloned().unwrap_or_default() {
        let id = c["orderId"].as_str().unwrap_or_default();
        if all_orders.contains(id) {
            *entries.entry(id.to_string()).or_default() += 1;
            let _ = writeln!(cx.trace, "  ledger {c}");
        }
    }
    let mut tencent: BTreeMap<String, (i64, Vec<String>)> = BTreeMap::new();
    for id in &all_orders {
        let o = run
            .sb
            .admin(Method::GET, &format!("/orders/{id}"), None)
            .await;
        let rids = o["resourceIds"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|r| r.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        tencent.insert(id.to_string(), (o["status"].as_i64().unwrap_or(-1), rids));
    }

    let mut f = Figures {
        trials: 1,
        orders: all_orders.len() as u64,
        charged: entries.len() as u64,
        double_charges: entries.values().map(|n| n.saturating_sub(1)).sum(),
        ..Default::default()
    };
    for d in &sc.dps {
        let obj = last
            .iter()
            .find(|o| o.metadata.name.as_deref() == Some(&d.name));
        let st = obj.and_then(|o| o.status.clone()).unwrap_or_default();
        let cond = |t: &str| st.conditions.iter().find(|c| c.type_ == t).cloned();
        let ready = cond("Ready");
        let _ = writeln!(
            cx.trace,
            "  {} final: Ready={:?} Paid={:?} Stalled={:?} orderIds={:?} resourceIds={:?} orders={:?} attempts={} inFlight={:?} pendingLookup={:?} lastError={:?}",
            d.name,
            ready
                .as_ref()
                .map(|c| format!("{}/{}: {}", c.status, c.reason, c.message)),
            cond("Paid").map(|c| format!("{}/{}", c.status, c.reason)),
            cond("Stalled").map(|c| format!("{}/{}", c.status, c.reason)),
            st.order_ids,
            st.resource_ids,
            st.orders
                .iter()
                .map(|o| format!("{}={:?}/{:?}", o.id, o.state, o.tencent_status))
                .collect::<Vec<_>>(),
            st.attempts,
            st.in_flight,
            st.pending_lookup,
            st.last_error,
        );
        if !obj.is_some_and(|o| settled(o, d)) {
            f.unresolved += 1;
        }
        let ready_true = ready.as_ref().is_some_and(|c| c.status == "True");
        let paid_cond = cond("Paid").is_some_and(|c| c.status == "True");
        // The state the status gives an order (directly or through its big deal).
        let state_of = |id: &str| -> Option<OrderState> {
            st.orders
                .iter()
                .find(|r| r.id == id || (d.big_deal && d.ids.contains(&r.id)))
                .map(|r| r.state)
        };
        for id in &d.orders {
            let charged = entries.contains_key(id);
            let (tstatus, rids) = tencent.get(id).cloned().unwrap_or((-1, Vec::new()));
            let claimed = st.order_ids.contains(id)
                || matches!(
                    state_of(id),
                    Some(OrderState::Paid | OrderState::Delivering | OrderState::DeliveryFailed)
                );
            if (claimed && !charged) || (ready_true && tstatus != 4) {
                f.false_paid += 1;
            }
            if charged
                && (!paid_cond
                    || matches!(
                        state_of(id),
                        Some(OrderState::Unpayable | OrderState::PartlyUnpayable)
                    )
                    || (state_of(id) == Some(OrderState::DeliveryFailed) && tstatus == 4))
            {
                f.false_failed += 1;
            }
            if ready_true {
                f.missing_resource_ids +=
                    rids.iter().filter(|r| !st.resource_ids.contains(r)).count() as u64;
            }
        }
    }
    // Storms: calls naming an order closer than MIN_GAP to the previous one naming it.
    let calls = calls_from_logs(&cx.logs);
    for d in &sc.dps {
        for id in &d.ids {
            let times: Vec<jiff::Timestamp> = calls
                .iter()
                .filter(|(_, ids)| ids.contains(id.as_str()))
                .map(|(t, _)| *t)
                .collect();
            for w in times.windows(2) {
                let gap = w[1].duration_since(w[0]);
                if gap < jiff::SignedDuration::try_from(MIN_GAP).unwrap() {
                    f.storm_calls += 1;
                }
            }
            let _ = writeln!(
                cx.trace,
                "  PayDeals calls naming {id}: {}",
                times
                    .iter()
                    .map(|t| t.strftime("%H:%M:%S%.3f").to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let _ = writeln!(cx.trace, "  figures: {}", f.line());
    let _ = writeln!(
        cx.trace,
        "  logs: {}",
        cx.logs
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );
    std::fs::write(cx.dir.join("trace.txt"), &cx.trace).unwrap();
    // Clean up the namespace and Lease (the logs stay under the run's directory).
    let _ = Api::<k8s_openapi::api::core::v1::Namespace>::all(run.client.clone())
        .delete(&cx.ns, &DeleteParams::default())
        .await;
    let _ = Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(
        run.client.clone(),
        "dealpay-system",
    )
    .delete(&cx.lease, &DeleteParams::default())
    .await;
    let bad = f.bad() > 0;
    (f, bad.then_some(cx.trace))
}

fn run_dir(seed: u64) -> PathBuf {
    let d = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/chaos-logs"))
        .join(format!("seed-{seed}"));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn append(path: &Path, text: &str) {
    use std::io::Write as _;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = f.write_all(text.as_bytes());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end to end: needs scripts/local-cluster; scripts/test runs it with --include-ignored"]
async fn chaos_never_pays_twice_and_always_settles() {
    let c = cluster();
    let seed = env_u64("DEALPAY_CHAOS_SEED").unwrap_or_else(|| fastrand::u64(..));
    let trials = env_u64("DEALPAY_CHAOS_TRIALS").unwrap_or(20);
    let first = env_u64("DEALPAY_CHAOS_FIRST").unwrap_or(0);
    let parallel = env_u64("DEALPAY_CHAOS_PARALLEL").unwrap_or(3).max(1) as usize;
    let budget = Duration::from_secs(env_u64("DEALPAY_CHAOS_BUDGET").unwrap_or(90));
    let indices: Vec<u64> = match env_u64("DEALPAY_CHAOS_ONLY") {
        Some(i) => vec![i],
        None => (first..first + trials).collect(),
    };
    println!(
        "chaos: seed {seed}, trials {}..{} ({}), {parallel} at once, settle budget {}s",
        indices[0],
        indices[indices.len() - 1],
        indices.len(),
        budget.as_secs()
    );
    let run = Run {
        c,
        client: admin_client(c).await,
        sb: SandboxProc::start(&["--double-charge"]).await,
        http: reqwest::Client::new(),
        seed,
        dir: run_dir(seed),
        budget,
    };
    let started = Instant::now();
    let report = run.dir.join("failures.txt");
    let mut total = Figures::default();
    let mut failed = Vec::new();
    let mut results = futures::stream::iter(indices.iter().copied())
        .map(|i| {
            let run = &run;
            async move { (i, trial(run, i).await) }
        })
        .buffer_unordered(parallel);
    while let Some((i, (f, trace))) = results.next().await {
        total.add(&f);
        println!(
            "chaos trial {i}: {} ({:.0}s)",
            f.line(),
            started.elapsed().as_secs_f64()
        );
        if let Some(t) = trace {
            println!("{t}");
            append(&report, &t);
            failed.push(i);
        }
    }
    drop(results);
    run.sb.stop().await;
    println!(
        "chaos seed {seed}: {} trials in {:.0}s",
        total.trials,
        started.elapsed().as_secs_f64()
    );
    println!(
        "trials orders charged double_charges false_paid false_failed unresolved missing_resource_ids storm_calls"
    );
    println!("{}", total.line());
    assert!(
        total.bad() == 0,
        "chaos seed {seed}: trials {failed:?} failed (traces above and in {}); reproduce one with DEALPAY_CHAOS_SEED={seed} DEALPAY_CHAOS_ONLY=<trial>",
        report.display()
    );
}
