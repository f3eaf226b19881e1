//! Processes and clients for the end-to-end tests: a real kube-apiserver (scripts/local-cluster),
//! the sandbox and the operator as separate processes.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use dealpay_operator::api::{DealPayment, DealPaymentSpec};
use dealpay_operator::engine::conditions::{READY, find};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::wait::await_condition;
use kube::{Client, Config};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const DEMO_ID: &str = "sandbox-secret-id";
pub const DEMO_KEY: &str = "sandbox-secret-key";
pub const DEMO_UIN: &str = "100000000001";

/// The `dealpay` binary under test: `DEALPAY_BIN` if set (a long chaos run uses a private copy, so
/// that a rebuild of target/debug/dealpay meanwhile cannot mix two builds), else Cargo's.
pub fn dealpay_bin() -> PathBuf {
    std::env::var_os("DEALPAY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_dealpay")))
}

/// The cluster of `scripts/local-cluster` (its kubeconfigs and kubectl).
pub struct Cluster {
    pub kubeconfig: PathBuf,
    /// Kubeconfig with the chart ServiceAccount's identity, when the chart's RBAC was applied.
    pub operator_kubeconfig: PathBuf,
    pub kubectl: PathBuf,
}

fn env_path(name: &str) -> PathBuf {
    PathBuf::from(std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: end-to-end tests need the local cluster \
             (scripts/local-cluster up; eval \"$(scripts/local-cluster env)\"), as scripts/test does"
        )
    }))
}

/// The cluster, prepared once per test binary (CRD and the chart's RBAC applied). Every test that
/// calls it is `#[ignore]`d, so a plain `cargo test` reports it as ignored rather than passed, and
/// scripts/test runs it with `--include-ignored`; without the cluster it fails, naming what is missing.
pub fn cluster() -> &'static Cluster {
    static C: OnceLock<Cluster> = OnceLock::new();
    C.get_or_init(|| {
        let c = Cluster {
            kubeconfig: env_path("KUBECONFIG"),
            operator_kubeconfig: env_path("KUBECONFIG_OPERATOR"),
            kubectl: env_path("KUBECTL"),
        };
        // The CRD the binary under test generates (`dealpay crd`): tests/crd.rs keeps the shipped
        // file identical to it, and a stale file must not make every end-to-end test fail with
        // "field not declared in schema" on the status write.
        for (flag, name) in [
            (None, "dealpayments"),
            (Some("--receipt"), "paymentreceipts"),
        ] {
            let out = std::process::Command::new(dealpay_bin())
                .arg("crd")
                .args(flag)
                .output()
                .expect("dealpay crd runs");
            assert!(out.status.success(), "dealpay crd failed");
            let crd = std::env::temp_dir()
                .join(format!("dealpay-crd-{name}-{}.yaml", std::process::id()));
            std::fs::write(&crd, &out.stdout).unwrap();
            // 1.20's kubectl refuses x-kubernetes-validations client-side; the server accepts and drops them.
            kubectl(
                &c,
                &["apply", "--validate=false", "-f", crd.to_str().unwrap()],
            );
            kubectl(
                &c,
                &[
                    "wait",
                    "--for=condition=Established",
                    &format!("crd/{name}.billing.dealpay.dev"),
                    "--timeout=60s",
                ],
            );
        }
        let rbac = concat!(env!("CARGO_MANIFEST_DIR"), "/target/packaging/rbac.yaml");
        assert!(
            std::path::Path::new(rbac).exists(),
            "{rbac} missing: scripts/packaging-check renders the chart's RBAC first"
        );
        let _ = std::process::Command::new(&c.kubectl)
            .args(["create", "namespace", "dealpay-system"])
            .env("KUBECONFIG", &c.kubeconfig)
            .output();
        kubectl(&c, &["apply", "-f", rbac]);
        c
    })
}

/// Runs kubectl as admin and panics with its output on failure.
pub fn kubectl(c: &Cluster, args: &[&str]) -> String {
    let out = std::process::Command::new(&c.kubectl)
        .args(args)
        .env("KUBECONFIG", &c.kubeconfig)
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub async fn admin_client(c: &Cluster) -> Client {
    let kc = kube::config::Kubeconfig::read_from(&c.kubeconfig).unwrap();
    let cfg = Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    Client::try_from(cfg).unwrap()
}

/// A fresh namespace for one test.
pub async fn namespace(client: &Client, prefix: &str) -> String {
    let name = format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..6]
    );
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    name
}

pub async fn secret(client: &Client, ns: &str, name: &str, id: &str, key: &str) {
    let s: Secret = serde_json::from_value(json!({
        "metadata": {"name": name},
        "stringData": {"secretId": id, "secretKey": key}
    }))
    .unwrap();
    create(client, ns, &s).await;
}

async fn create<K>(client: &Client, ns: &str, object: &K)
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    Api::<K>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), object)
        .await
        .unwrap();
}

pub async fn payment(
    client: &Client,
    ns: &str,
    name: &str,
    orders: &[String],
    secret: Option<&str>,
) {
    let mut spec = DealPaymentSpec {
        order_ids: orders.to_vec(),
        ..Default::default()
    };
    spec.credentials =
        secret.map(|s| serde_json::from_value(json!({"secretRef": {"name": s}})).unwrap());
    create(client, ns, &DealPayment::new(name, spec)).await;
}

/// Waits (on watch events) until the Ready condition has `status` and `reason`.
pub async fn wait_ready(
    client: &Client,
    ns: &str,
    name: &str,
    status: &str,
    reason: &str,
    secs: u64,
) -> DealPayment {
    let api = Api::<DealPayment>::namespaced(client.clone(), ns);
    let (s, r) = (status.to_string(), reason.to_string());
    let cond = move |o: Option<&DealPayment>| {
        o.and_then(|dp| dp.status.as_ref())
            .and_then(|st| find(&st.conditions, READY))
            .is_some_and(|c| c.status == s && c.reason == r)
    };
    match tokio::time::timeout(
        Duration::from_secs(secs),
        await_condition(api.clone(), name, cond),
    )
    .await
    {
        Ok(Ok(Some(dp))) => dp,
        other => {
            let now = api.get(name).await.ok().and_then(|d| d.status);
            panic!(
                "{ns}/{name} never reached Ready={status}/{reason}: {other:?}; status now {now:#?}"
            )
        }
    }
}

/// A sandbox process on an ephemeral port.
pub struct SandboxProc {
    pub url: String,
    child: Child,
    http: reqwest::Client,
}

/// The signature window the sandbox processes and the operators of these tests share (Tencent's is
/// 300 s): a lost answer is waited out in seconds, not minutes.
pub const SIGNATURE_TTL: &str = "5";
/// The operators' clock margin on top of it (one host, one clock).
pub const CLOCK_MARGIN: &str = "1";

impl SandboxProc {
    pub async fn start(extra: &[&str]) -> Self {
        let mut child = Command::new(dealpay_bin())
            .args(["sandbox", "--listen", "127.0.0.1:0"])
            .env("DEALPAY_SANDBOX_SIGNATURE_TTL", SIGNATURE_TTL)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines
            .next_line()
            .await
            .unwrap()
            .expect("sandbox prints its URL");
        let url = first
            .strip_prefix("listening on ")
            .expect("listening line")
            .trim()
            .to_string();
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            url,
            child,
            http: reqwest::Client::new(),
        }
    }

    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut rb = self
            .http
            .request(method, format!("{}/_sandbox{path}", self.url));
        if let Some(b) = body {
            rb = rb
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = rb.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "admin {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Adds `n` unpaid demo-account orders with ids `<prefix><i>` and returns the ids.
    pub async fn add_orders(&self, prefix: &str, n: usize) -> Vec<String> {
        let ids: Vec<String> = (0..n).map(|i| format!("{prefix}{i:04}")).collect();
        let orders: Vec<Value> = ids
            .iter()
            .map(|id| json!({"orderId": id, "account": DEMO_UIN, "price": 100}))
            .collect();
        self.admin(reqwest::Method::POST, "/orders", Some(json!(orders)))
            .await;
        ids
    }

    /// Charges per order id from the ledger.
    pub async fn charges(&self) -> std::collections::BTreeMap<String, u64> {
        let ledger = self.admin(reqwest::Method::GET, "/ledger", None).await;
        let mut m = std::collections::BTreeMap::new();
        for c in ledger.as_array().cloned().unwrap_or_default() {
            *m.entry(c["orderId"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
        }
        m
    }

    /// `GET /_sandbox/stats`.
    pub async fn stats(&self) -> Value {
        self.admin(reqwest::Method::GET, "/stats", None).await
    }

    /// Ledger entries for an order that already had one (double-charge mode makes them possible).
    pub async fn duplicate_charges(&self) -> u64 {
        self.stats().await["duplicateCharges"].as_u64().unwrap_or(0)
    }

    /// PayDeals calls answered `FailedOperation.InvalidDeal`: in normal mode, an attempt to pay an
    /// order that was already paid.
    pub async fn invalid_deal_answers(&self) -> u64 {
        self.stats().await["actions"]["PayDeals"]["errors"]["FailedOperation.InvalidDeal"]
            .as_u64()
            .unwrap_or(0)
    }

    /// The operator never tried to pay what it had already paid: in double-charge mode no ledger
    /// entry is a duplicate; in normal mode no PayDeals was refused with `InvalidDeal`.
    pub async fn assert_never_paid_twice(&self) {
        let settings = self.admin(reqwest::Method::GET, "/settings", None).await;
        if settings["doubleCharge"].as_bool() == Some(true) {
            let ledger = self.admin(reqwest::Method::GET, "/ledger", None).await;
            let dups: Vec<&Value> = ledger
                .as_array()
                .map(|l| l.iter().filter(|c| c["duplicate"] == true).collect())
                .unwrap_or_default();
            assert!(dups.is_empty(), "charged twice: {dups:?}");
            assert_eq!(self.duplicate_charges().await, 0, "duplicateCharges");
        } else {
            assert_eq!(
                self.invalid_deal_answers().await,
                0,
                "a PayDeals for an already paid order was answered InvalidDeal: {}",
                self.stats().await
            );
        }
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// How to start an operator process beyond the defaults of [`Operator::start`].
#[derive(Debug, Clone)]
pub struct OperatorOpts {
    /// `--lease-duration` in seconds (the operator uses at least 5).
    pub lease_duration: u64,
    /// `--identity` (default: generated).
    pub identity: Option<String>,
    /// Extra flags.
    pub extra: Vec<String>,
    /// Extra environment variables.
    pub envs: Vec<(String, String)>,
}

impl Default for OperatorOpts {
    fn default() -> Self {
        Self {
            lease_duration: 6,
            identity: None,
            extra: Vec::new(),
            envs: Vec::new(),
        }
    }
}

/// The operator as a process, with the chart ServiceAccount's identity.
pub struct Operator {
    pub child: Child,
    pub log: PathBuf,
    pub metrics: String,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Operator {
    pub async fn start(
        c: &Cluster,
        sandbox: &SandboxProc,
        ns: &str,
        lease: &str,
        log: PathBuf,
    ) -> Self {
        Self::start_with(c, sandbox, ns, lease, log, &[], &[]).await
    }

    /// Starts with extra flags and environment variables.
    pub async fn start_with(
        c: &Cluster,
        sandbox: &SandboxProc,
        ns: &str,
        lease: &str,
        log: PathBuf,
        extra: &[&str],
        envs: &[(&str, &str)],
    ) -> Self {
        let opts = OperatorOpts {
            extra: extra.iter().map(|s| s.to_string()).collect(),
            envs: envs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        };
        Self::start_opts(c, &sandbox.url, ns, lease, log, &opts).await
    }

    /// Starts against the Billing endpoint `endpoint` with `opts`; waits until /readyz answers
    /// (a follower is ready too).
    pub async fn start_opts(
        c: &Cluster,
        endpoint: &str,
        ns: &str,
        lease: &str,
        log: PathBuf,
        opts: &OperatorOpts,
    ) -> Self {
        let op = Self::spawn(c, endpoint, ns, lease, log, opts);
        op.wait_healthy().await;
        op
    }

    /// Starts without waiting for /readyz.
    pub fn spawn(
        c: &Cluster,
        endpoint: &str,
        ns: &str,
        lease: &str,
        log: PathBuf,
        opts: &OperatorOpts,
    ) -> Self {
        let port = free_port();
        let duration = opts.lease_duration.to_string();
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(dealpay_bin())
            .args([
                "run",
                "--endpoint",
                endpoint,
                "--namespaces",
                ns,
                "--log-format",
                "json",
                "--log-level",
                "info",
            ])
            .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
            .args([
                "--lease-namespace",
                "dealpay-system",
                "--lease-name",
                lease,
                "--lease-duration",
                &duration,
            ])
            .args([
                "--needs-human-backoff-base",
                "1",
                "--needs-human-backoff-max",
                "2",
            ])
            .args(
                opts.identity
                    .iter()
                    .flat_map(|i| ["--identity".to_string(), i.clone()]),
            )
            .args(&opts.extra)
            .env("KUBECONFIG", &c.operator_kubeconfig)
            .env_remove("TENCENTCLOUD_SECRET_ID")
            .env_remove("TENCENTCLOUD_SECRET_KEY")
            .env_remove("DEALPAY_TEST_FAILPOINT")
            .env_remove("DEALPAY_TEST_FAILPOINT_FILE")
            .env("DEALPAY_SIGNATURE_TTL", SIGNATURE_TTL)
            .env("DEALPAY_CLOCK_MARGIN", CLOCK_MARGIN)
            .envs(opts.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let metrics = format!("http://127.0.0.1:{port}");
        Self {
            child,
            log,
            metrics,
        }
    }

    /// The process id (while it runs).
    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// True if the metrics say this replica leads.
    pub async fn leads(&self) -> bool {
        match reqwest::get(format!("{}/metrics", self.metrics)).await {
            Ok(r) => r
                .text()
                .await
                .is_ok_and(|m| m.lines().any(|l| l == "dealpay_leader 1")),
            Err(_) => false,
        }
    }

    /// Polls /readyz (a process offers nothing to await) for up to 60 s: slowness of a debug build
    /// starting on a loaded 2-core machine is not what this tests.
    pub async fn wait_healthy(&self) {
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while tokio::time::Instant::now() < deadline {
            if let Ok(r) = http.get(format!("{}/readyz", self.metrics)).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "operator never became ready; log:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// Peak resident memory of the operator process (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let pid = self.child.id().unwrap_or_default();
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_default()
    }

    pub async fn scrape(&self) -> String {
        reqwest::get(format!("{}/metrics", self.metrics))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Sends SIGTERM and waits (bounded) for the exit code.
    pub async fn terminate(mut self) -> Option<i32> {
        let pid = self.child.id().expect("running").to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await;
        status.ok().and_then(|s| s.ok()).and_then(|s| s.code())
    }

    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Where operator logs go, kept after the run for reading a failure.
pub fn log_dir() -> PathBuf {
    let d = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/e2e-logs"));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Polls `f` until it holds, failing after `secs`: for state that only another process holds (a
/// sandbox ledger, a log file, a metrics page), which offers nothing to watch.
pub async fn wait_until<F, Fut>(what: &str, secs: u64, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What every end-to-end test starts from: the cluster, an admin client, a fresh namespace with its
/// own Lease name, and a sandbox process started with `sandbox_args` (e.g. `--double-charge`).
pub struct Setup {
    pub c: &'static Cluster,
    pub client: Client,
    pub ns: String,
    pub lease: String,
    pub sb: SandboxProc,
}

pub async fn setup(prefix: &str, sandbox_args: &[&str]) -> Setup {
    let c = cluster();
    let client = admin_client(c).await;
    let ns = namespace(&client, prefix).await;
    let sb = SandboxProc::start(sandbox_args).await;
    Setup {
        c,
        client,
        lease: format!("lease-{ns}"),
        ns,
        sb,
    }
}

impl Setup {
    /// An operator watching this namespace on its Lease, logging to `<ns><tag>.log`.
    pub async fn operator(&self, tag: &str) -> Operator {
        self.operator_with(tag, &self.ns, &[], &[]).await
    }

    /// An operator on this Lease watching `namespaces`, with extra flags and environment.
    pub async fn operator_with(
        &self,
        tag: &str,
        namespaces: &str,
        extra: &[&str],
        envs: &[(&str, &str)],
    ) -> Operator {
        let log = log_dir().join(format!("{}{tag}.log", self.ns));
        Operator::start_with(self.c, &self.sb, namespaces, &self.lease, log, extra, envs).await
    }
}

/// The end of every end-to-end test: the operators stop, then the ledger must show no order paid
/// twice, then the sandbox stops.
pub async fn finish(ops: impl IntoIterator<Item = Operator>, sb: SandboxProc) {
    for op in ops {
        op.kill().await;
    }
    sb.assert_never_paid_twice().await;
    sb.stop().await;
}
