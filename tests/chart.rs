//! The Helm chart as rendered by `helm template`, read into k8s-openapi types: least-privilege RBAC,
//! a restricted Deployment whose environment the binary reads (and whose defaults are the binary's),
//! the CRD identical to crds/, the kinds each set of values renders.
//!
//! Needs helm: scripts/packaging-check installs it under ${DEALPAY_CACHE:-/var/cache/dealpay}/helm
//! (or set DEALPAY_HELM). The tests are `#[ignore]`d so that a plain `cargo test` without helm says
//! "ignored" instead of passing; scripts/test runs them with `--include-ignored`, and then a missing
//! helm is a failure, not a skip.
//!
//! Every check returns the list of what is wrong, so that the `*_teeth` tests can mutate a rendered
//! value and see the check name it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::CommandFactory;
use k8s_openapi::Resource;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, EnvVar};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::Value;

const RELEASE: &str = "dealpay-operator";
const RELEASE_NS: &str = "dealpay-system";
const NONDEFAULT: &str = "charts/dealpay-operator/ci/nondefault-values.yaml";
const CRD_FILE: &str = "crds/billing.dealpay.dev_dealpayments.yaml";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The helm that scripts/packaging-check installed; loud when there is none.
fn helm() -> PathBuf {
    if let Some(h) = std::env::var_os("DEALPAY_HELM") {
        return h.into();
    }
    let cache = std::env::var_os("DEALPAY_CACHE").unwrap_or_else(|| "/var/cache/dealpay".into());
    let cached = Path::new(&cache).join("helm/helm");
    assert!(
        cached.is_file(),
        "HELM NOT FOUND at {} (nor DEALPAY_HELM): these chart tests cannot run; \
         run scripts/packaging-check once to install it",
        cached.display()
    );
    cached
}

/// The documents of `helm template` with these extra arguments, in order.
struct Rendered {
    docs: Vec<Value>,
}

fn render(args: &[&str]) -> Rendered {
    let out = Command::new(helm())
        .args([
            "template",
            RELEASE,
            "charts/dealpay-operator",
            "--namespace",
            RELEASE_NS,
        ])
        .args(args)
        .current_dir(repo())
        .output()
        .expect("helm runs");
    assert!(
        out.status.success(),
        "helm template {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Rendered::parse(&String::from_utf8(out.stdout).unwrap())
}

impl Rendered {
    fn parse(text: &str) -> Self {
        let docs = serde_norway::Deserializer::from_str(text)
            .map(|d| Value::deserialize(d).expect("rendered YAML parses"))
            .filter(|v| !v.is_null())
            .collect();
        Self { docs }
    }

    /// Every document of `K`'s kind, deserialised into `K` (a field of the wrong type fails here).
    fn all<K: Resource + DeserializeOwned>(&self) -> Vec<K> {
        self.docs
            .iter()
            .filter(|d| d["kind"] == K::KIND && d["apiVersion"] == K::API_VERSION)
            .map(|d| {
                serde_json::from_value(d.clone()).unwrap_or_else(|e| panic!("{}: {e}", K::KIND))
            })
            .collect()
    }

    fn one<K: Resource + DeserializeOwned>(&self) -> K {
        let mut all = self.all::<K>();
        assert_eq!(all.len(), 1, "expected one {}", K::KIND);
        all.remove(0)
    }

    fn doc_mut(&mut self, kind: &str) -> &mut Value {
        self.docs
            .iter_mut()
            .find(|d| d["kind"] == kind)
            .expect(kind)
    }

    fn kinds(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for d in &self.docs {
            *m.entry(d["kind"].as_str().unwrap_or("?").to_string())
                .or_insert(0) += 1;
        }
        m
    }
}

/// What is wrong, in words; empty when nothing is.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn want(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            self.0.push(what.into());
        }
    }

    fn assert_none(self, what: &str) {
        assert!(self.0.is_empty(), "{what}:\n  {}", self.0.join("\n  "));
    }

    fn assert_names(&self, needle: &str) {
        assert!(
            self.0.iter().any(|p| p.contains(needle)),
            "the check missed the mutation ({needle}); it found only {:?}",
            self.0
        );
    }
}

fn check_kinds(r: &Rendered, expected: &[(&str, usize)]) -> Problems {
    let want: BTreeMap<String, usize> = expected.iter().map(|(k, n)| (k.to_string(), *n)).collect();
    let mut p = Problems::default();
    p.want(
        r.kinds() == want,
        format!("kinds {:?} != expected {want:?}", r.kinds()),
    );
    p
}

// ------------------------------------------------------------------------------ Deployment

/// Chart defaults that differ from the binary's on purpose.
const INTENDED_OVERRIDES: [&str; 2] = [
    "DEALPAY_LOG_FORMAT", // JSON logs in a cluster
    "DEALPAY_LEASE_NAME", // the release's full name, so that two releases never share a Lease
];

/// The environment variables `dealpay run` reads, with the flag's default: from clap itself, so the
/// chart cannot set a variable the binary ignores, nor a default that silently differs.
fn run_flags() -> BTreeMap<String, Option<String>> {
    let mut cmd = dealpay_operator::cli::Cli::command();
    cmd.build();
    let run = cmd.find_subcommand("run").expect("dealpay run");
    run.get_arguments()
        .filter_map(|a| {
            let env = a.get_env()?.to_string_lossy().into_owned();
            let default = a
                .get_default_values()
                .first()
                .map(|v| v.to_string_lossy().into_owned());
            Some((env, default))
        })
        .collect()
}

fn same_value(chart: &str, binary: &str) -> bool {
    match (chart.parse::<f64>(), binary.parse::<f64>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => chart.eq_ignore_ascii_case(binary),
    }
}

fn env_value<'a>(env: &'a BTreeMap<&str, &EnvVar>, name: &str) -> Option<&'a str> {
    env.get(name).and_then(|e| e.value.as_deref())
}

fn check_security(pod: &k8s_openapi::api::core::v1::PodSpec, c: &Container, p: &mut Problems) {
    let psc = pod.security_context.clone().unwrap_or_default();
    p.want(psc.run_as_non_root == Some(true), "pod runAsNonRoot");
    p.want(psc.run_as_user == Some(65532), "pod runAsUser 65532");
    let seccomp = |s: &Option<k8s_openapi::api::core::v1::SeccompProfile>| {
        s.as_ref().map(|s| s.type_.as_str()) == Some("RuntimeDefault")
    };
    p.want(seccomp(&psc.seccomp_profile), "pod seccomp RuntimeDefault");
    let sc = c.security_context.clone().unwrap_or_default();
    p.want(sc.run_as_non_root == Some(true), "container runAsNonRoot");
    p.want(sc.run_as_user == Some(65532), "container runAsUser 65532");
    p.want(
        sc.read_only_root_filesystem == Some(true),
        "readOnlyRootFilesystem",
    );
    p.want(
        sc.allow_privilege_escalation == Some(false),
        "allowPrivilegeEscalation false",
    );
    p.want(sc.privileged != Some(true), "not privileged");
    let caps = sc.capabilities.unwrap_or_default();
    p.want(
        caps.drop == Some(vec!["ALL".into()]),
        "capabilities drop [ALL]",
    );
    p.want(
        caps.add.unwrap_or_default().is_empty(),
        "no capabilities added",
    );
    p.want(
        seccomp(&sc.seccomp_profile),
        "container seccomp RuntimeDefault",
    );
}

fn check_probes(c: &Container, p: &mut Problems) {
    let port = c
        .ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some("metrics"));
    p.want(
        port.map(|p| p.container_port) == Some(8080),
        "port metrics 8080",
    );
    for (name, probe, path) in [
        ("livenessProbe", &c.liveness_probe, "/healthz"),
        ("readinessProbe", &c.readiness_probe, "/readyz"),
    ] {
        let get = probe.as_ref().and_then(|p| p.http_get.as_ref());
        let ok = get.is_some_and(|g| {
            g.path.as_deref() == Some(path)
                && g.port
                    == k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(
                        "metrics".into(),
                    )
        });
        p.want(ok, format!("{name} GET {path} on port metrics"));
    }
    let res = c.resources.clone().unwrap_or_default();
    p.want(
        res.requests.is_some_and(|r| !r.is_empty()) && res.limits.is_some_and(|l| !l.is_empty()),
        "resources requests and limits",
    );
}

fn check_env(c: &Container, chart_defaults: bool, p: &mut Problems) {
    let env: BTreeMap<&str, &EnvVar> = c
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.as_str(), e))
        .collect();
    p.want(
        env_value(&env, "DEALPAY_LEADER_ELECTION") == Some("true"),
        "DEALPAY_LEADER_ELECTION=true",
    );
    let identity = env
        .get("DEALPAY_IDENTITY")
        .and_then(|e| e.value_from.as_ref());
    let field = identity
        .and_then(|v| v.field_ref.as_ref())
        .map(|f| f.field_path.as_str());
    p.want(
        field == Some("metadata.name"),
        "DEALPAY_IDENTITY from the pod name",
    );
    p.want(
        env_value(&env, "DEALPAY_METRICS_ADDR") == Some("0.0.0.0:8080"),
        "DEALPAY_METRICS_ADDR",
    );
    for name in [
        "DEALPAY_ENDPOINT",
        "DEALPAY_RATE",
        "DEALPAY_CONCURRENCY",
        "DEALPAY_APISERVER_CONCURRENCY",
        "DEALPAY_LOG",
        "DEALPAY_LOG_FORMAT",
        "DEALPAY_LEASE_NAME",
        "DEALPAY_LEASE_NAMESPACE",
        "DEALPAY_LEASE_DURATION",
    ] {
        p.want(env.contains_key(name), format!("env {name}"));
    }
    if let Some(ca) = env_value(&env, "DEALPAY_CA_FILE") {
        let mounted =
            c.volume_mounts.iter().flatten().any(|m| {
                ca.starts_with(&format!("{}/", m.mount_path)) && m.read_only == Some(true)
            });
        p.want(mounted, "DEALPAY_CA_FILE lies in a read-only mount");
    }
    let flags = run_flags();
    for (name, e) in &env {
        if !name.starts_with("DEALPAY_") {
            continue;
        }
        let Some(default) = flags.get(*name) else {
            p.want(false, format!("{name}: no flag of `dealpay run` reads it"));
            continue;
        };
        if let (true, Some(chart), Some(binary)) = (
            chart_defaults && !INTENDED_OVERRIDES.contains(name),
            &e.value,
            default,
        ) {
            p.want(
                same_value(chart, binary),
                format!("chart default {name}={chart:?} differs from the binary's {binary:?}"),
            );
        }
    }
}

/// `chart_defaults`: the default values, where every value the chart sets must be the flag's own default.
fn check_deployment(r: &Rendered, replicas: i32, chart_defaults: bool) -> Problems {
    let d: Deployment = r.one();
    let mut p = Problems::default();
    let spec = d.spec;
    p.want(
        spec.replicas == Some(replicas),
        format!("replicas {:?} != {replicas}", spec.replicas),
    );
    let pod = spec.template.spec.unwrap_or_default();
    p.want(
        pod.automount_service_account_token == Some(true),
        "automountServiceAccountToken true",
    );
    p.want(
        pod.termination_grace_period_seconds == Some(30),
        "terminationGracePeriodSeconds 30",
    );
    p.want(pod.containers.len() == 1, "one container");
    let c = &pod.containers[0];
    p.want(
        c.args == Some(vec!["run".into()]) && c.command.is_none(),
        "args [run], the image's ENTRYPOINT",
    );
    check_security(&pod, c, &mut p);
    check_probes(c, &mut p);
    check_env(c, chart_defaults, &mut p);
    for v in pod.volumes.iter().flatten() {
        let mode = v.config_map.as_ref().map(|c| c.default_mode);
        let mode = mode.or(v.secret.as_ref().map(|s| s.default_mode)).flatten();
        p.want(
            mode == Some(0o444),
            format!("volume {} mode {mode:?}: read-only 0444", v.name),
        );
    }
    let labels = d.metadata.labels.unwrap_or_default();
    for k in [
        "app.kubernetes.io/name",
        "app.kubernetes.io/instance",
        "app.kubernetes.io/version",
        "app.kubernetes.io/managed-by",
        "helm.sh/chart",
    ] {
        p.want(labels.contains_key(k), format!("label {k}"));
    }
    p
}

// ------------------------------------------------------------------------------ RBAC

/// (apiGroup, resource, verb, resourceNames) — one row per permission, so that sets compare.
type Grant = (String, String, String, Vec<String>);

fn grants(rules: &[PolicyRule]) -> BTreeSet<Grant> {
    let mut out = BTreeSet::new();
    for r in rules {
        let names = r.resource_names.clone().unwrap_or_default();
        for g in r.api_groups.iter().flatten() {
            for res in r.resources.iter().flatten() {
                for v in &r.verbs {
                    out.insert((g.clone(), res.clone(), v.clone(), names.clone()));
                }
            }
        }
    }
    out
}

fn expand(spec: &[(&str, &str, &[&str])]) -> BTreeSet<Grant> {
    let mut out = BTreeSet::new();
    for (g, r, verbs) in spec {
        for v in *verbs {
            out.insert((g.to_string(), r.to_string(), v.to_string(), vec![]));
        }
    }
    out
}

/// What the operator needs, wherever it watches; patch on dealpayments is for the finalizer only.
fn operator_grants() -> BTreeSet<Grant> {
    expand(&[
        (
            "billing.dealpay.dev",
            "dealpayments",
            &["get", "list", "watch", "patch"],
        ),
        (
            "billing.dealpay.dev",
            "dealpayments/status",
            &["get", "patch", "update"],
        ),
        (
            "billing.dealpay.dev",
            "paymentreceipts",
            &["get", "list", "watch", "create", "patch"],
        ),
        ("events.k8s.io", "events", &["create", "patch"]),
        ("", "events", &["create", "patch"]),
        ("", "secrets", &["get", "list", "watch"]),
    ])
}

/// What tenants get through the built-in view/edit/admin roles: reading receipts, nothing else.
fn receipt_reader_grants() -> BTreeSet<Grant> {
    expand(&[(
        "billing.dealpay.dev",
        "paymentreceipts",
        &["get", "list", "watch"],
    )])
}

fn lease_grants() -> BTreeSet<Grant> {
    let verbs: &[&str] = &["get", "list", "watch", "create", "update", "patch"];
    expand(&[("coordination.k8s.io", "leases", verbs)])
}

enum Scope {
    Cluster,
    /// The namespaces the operator watches (DEALPAY_NAMESPACES).
    Namespaced(BTreeSet<String>),
}

fn check_rbac(r: &Rendered, scope: Scope) -> Problems {
    let mut p = Problems::default();
    let roles: Vec<Role> = r.all();
    let cluster_roles: Vec<ClusterRole> = r.all();
    let role_grants = |r: &Role| grants(r.rules.as_deref().unwrap_or_default());
    let ns_of = |r: &Role| r.metadata.namespace.clone().unwrap_or_default();
    let lease: Vec<&Role> = roles
        .iter()
        .filter(|r| role_grants(r) == lease_grants())
        .collect();
    p.want(
        lease.len() == 1,
        format!("expected 1 lease Role, found {}", lease.len()),
    );
    p.want(
        lease.iter().all(|r| ns_of(r) == RELEASE_NS),
        "the lease Role lives in the release namespace",
    );
    match scope {
        Scope::Cluster => {
            p.want(
                cluster_roles.len() == 2,
                format!("expected 2 ClusterRoles, found {}", cluster_roles.len()),
            );
            for cr in &cluster_roles {
                let g = grants(cr.rules.as_deref().unwrap_or_default());
                let labels = cr.metadata.labels.clone().unwrap_or_default();
                let aggregated = ["view", "edit", "admin"].iter().all(|r| {
                    labels.get(&format!("rbac.authorization.k8s.io/aggregate-to-{r}"))
                        == Some(&"true".to_string())
                });
                p.want(
                    g == operator_grants() || (aggregated && g == receipt_reader_grants()),
                    format!("ClusterRole grants {g:?}"),
                );
            }
            p.want(roles.len() == 1, "no Role but the lease Role");
        }
        Scope::Namespaced(watched) => {
            let cluster_bindings: Vec<ClusterRoleBinding> = r.all();
            p.want(
                cluster_roles.is_empty() && cluster_bindings.is_empty(),
                "namespaced mode must create nothing cluster-wide",
            );
            let mut operator_ns = BTreeSet::new();
            for role in roles.iter().filter(|r| role_grants(r) != lease_grants()) {
                let g = role_grants(role);
                let named: BTreeSet<Grant> =
                    g.iter().filter(|x| !x.3.is_empty()).cloned().collect();
                if g == operator_grants() {
                    operator_ns.insert(ns_of(role));
                } else if named == g {
                    // the default-credentials Secret outside the watched namespaces: that one, read only
                    let ok = g.iter().all(|x| {
                        (x.0.as_str(), x.1.as_str(), x.2.as_str()) == ("", "secrets", "get")
                    });
                    p.want(
                        ok && g.len() == 1,
                        format!("Role {}: named grants {g:?}", ns_of(role)),
                    );
                } else {
                    p.want(
                        false,
                        format!("Role {}/{:?} grants {g:?}", ns_of(role), role.metadata.name),
                    );
                }
            }
            p.want(
                operator_ns == watched,
                format!("operator Roles in {operator_ns:?}, watched {watched:?}"),
            );
        }
    }
    let bindings: Vec<RoleBinding> = r.all();
    let cluster_bindings: Vec<ClusterRoleBinding> = r.all();
    let subjects = bindings
        .iter()
        .map(|b| b.subjects.clone())
        .chain(cluster_bindings.iter().map(|b| b.subjects.clone()));
    for s in subjects {
        let s = s.unwrap_or_default();
        let ok = s.len() == 1
            && s[0].kind == "ServiceAccount"
            && s[0].namespace.as_deref() == Some(RELEASE_NS);
        p.want(
            ok,
            format!("binding subjects {s:?}: only the release's ServiceAccount"),
        );
    }
    p
}

// ------------------------------------------------------------------------------ CRD

enum Keep {
    Yes,
    No,
}

fn crds_dir_crd() -> CustomResourceDefinition {
    let text = std::fs::read_to_string(repo().join(CRD_FILE)).unwrap();
    serde_norway::from_str(&text).expect("crds/ parses as a CRD")
}

/// The DealPayment CRD of a render that also holds the PaymentReceipt CRD.
fn dealpayment_crd(r: &Rendered) -> CustomResourceDefinition {
    let mut all: Vec<CustomResourceDefinition> = r
        .all::<CustomResourceDefinition>()
        .into_iter()
        .filter(|c| c.metadata.name.as_deref() == Some("dealpayments.billing.dealpay.dev"))
        .collect();
    assert_eq!(all.len(), 1, "expected one DealPayment CRD");
    all.remove(0)
}

fn check_crd(r: &Rendered, keep: Keep) -> Problems {
    let mut p = Problems::default();
    let mut crd = dealpayment_crd(r);
    let annotations = crd.metadata.annotations.take().unwrap_or_default();
    let labels = crd.metadata.labels.take().unwrap_or_default();
    let has_keep = annotations
        .get("helm.sh/resource-policy")
        .map(String::as_str)
        == Some("keep");
    // GitOps prune protection comes with keep: Argo CD and Flux must not delete the CRD either.
    let gitops = [
        (
            "argocd.argoproj.io/sync-options",
            "Prune=false,Delete=false",
        ),
        ("kustomize.toolkit.fluxcd.io/prune", "disabled"),
    ];
    match keep {
        Keep::Yes => {
            p.want(has_keep, "helm.sh/resource-policy: keep is missing");
            for (k, v) in gitops {
                p.want(
                    annotations.get(k).map(String::as_str) == Some(v),
                    format!("CRD annotation {k}: {v}"),
                );
            }
        }
        Keep::No => {
            p.want(!has_keep, "helm.sh/resource-policy: keep is set");
            for (k, _) in gitops {
                p.want(
                    !annotations.contains_key(k),
                    format!("CRD annotation {k} is set without keep"),
                );
            }
        }
    }
    p.want(
        labels
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str)
            == Some("Helm"),
        "CRD lacks the chart's labels",
    );
    let expected = crds_dir_crd();
    p.want(
        expected.metadata.labels.is_none() && expected.metadata.annotations.is_none(),
        "crds/ has labels or annotations; the chart's template adds its own",
    );
    p.want(
        crd == expected,
        format!("the chart's CRD differs from {CRD_FILE}"),
    );
    p
}

// ------------------------------------------------------------------------------ tests

fn nondefault_watched() -> BTreeSet<String> {
    ["team-a", "team-b"].map(String::from).into()
}

#[test]
#[ignore = "needs helm (scripts/packaging-check installs it); run with --include-ignored"]
fn default_values() {
    let r = render(&[]);
    check_kinds(
        &r,
        &[
            ("ServiceAccount", 1),
            ("ClusterRole", 2),
            ("ClusterRoleBinding", 1),
            ("Role", 1),
            ("RoleBinding", 1),
            ("Service", 1),
            ("Deployment", 1),
            ("CustomResourceDefinition", 2),
        ],
    )
    .assert_none("kinds");
    check_deployment(&r, 1, true).assert_none("Deployment");
    check_rbac(&r, Scope::Cluster).assert_none("RBAC (cluster-wide)");
    check_crd(&r, Keep::Yes).assert_none("CRD");
    // The journal's CRD is crds/'s, kept on uninstall like the DealPayment CRD.
    let receipt = r
        .all::<CustomResourceDefinition>()
        .into_iter()
        .find(|c| c.metadata.name.as_deref() == Some("paymentreceipts.billing.dealpay.dev"))
        .expect("the PaymentReceipt CRD");
    let text =
        std::fs::read_to_string(repo().join("crds/billing.dealpay.dev_paymentreceipts.yaml"))
            .unwrap();
    let on_disk: CustomResourceDefinition = serde_norway::from_str(&text).unwrap();
    assert_eq!(
        receipt.spec, on_disk.spec,
        "chart receipt CRD differs from crds/"
    );
    let keep = receipt.metadata.annotations.unwrap_or_default();
    assert_eq!(
        keep.get("helm.sh/resource-policy").map(String::as_str),
        Some("keep")
    );
}

#[test]
#[ignore = "needs helm (scripts/packaging-check installs it); run with --include-ignored"]
fn nondefault_values() {
    let r = render(&["-f", NONDEFAULT]);
    check_kinds(
        &r,
        &[
            ("ServiceAccount", 1),
            ("Role", 4),
            ("RoleBinding", 4),
            ("Service", 1),
            ("Deployment", 1),
            ("CustomResourceDefinition", 2),
            ("ConfigMap", 1),
            ("ServiceMonitor", 1),
            ("PrometheusRule", 1),
            ("NetworkPolicy", 1),
        ],
    )
    .assert_none("kinds");
    check_deployment(&r, 2, false).assert_none("Deployment");
    check_rbac(&r, Scope::Namespaced(nondefault_watched())).assert_none("RBAC (watchNamespaces)");
    check_crd(&r, Keep::No).assert_none("CRD");
}

/// The Roles are exactly where the operator watches: DEALPAY_NAMESPACES and the Role namespaces
/// come from the same value, and must stay together.
#[test]
#[ignore = "needs helm (scripts/packaging-check installs it); run with --include-ignored"]
fn watch_namespaces_are_the_role_namespaces() {
    let r = render(&["--set", "watchNamespaces={team-x,team-y,team-x}"]);
    let d: Deployment = r.one();
    let c = d.spec.template.spec.unwrap().containers.remove(0);
    let flag = c
        .env
        .unwrap()
        .into_iter()
        .find(|e| e.name == "DEALPAY_NAMESPACES");
    let watched: BTreeSet<String> = flag
        .and_then(|e| e.value)
        .unwrap()
        .split(',')
        .map(String::from)
        .collect();
    assert_eq!(watched, ["team-x", "team-y"].map(String::from).into());
    check_rbac(&r, Scope::Namespaced(watched)).assert_none("RBAC (watchNamespaces)");
}

#[test]
#[ignore = "needs helm (scripts/packaging-check installs it); run with --include-ignored"]
fn crds_install_false_renders_no_crd() {
    let r = render(&["--set", "crds.install=false"]);
    assert!(r.all::<CustomResourceDefinition>().is_empty());
    assert!(r.all::<Deployment>().len() == 1, "the rest still renders");
}

fn set(doc: &mut Value, pointer: &str, v: Value) {
    *doc.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer}")) = v;
}

#[test]
#[ignore = "needs helm (scripts/packaging-check installs it); run with --include-ignored"]
fn deployment_check_has_teeth() {
    let base = render(&[]);
    let c0 = "/spec/template/spec/containers/0";
    let cases: [(&str, Value, &str); 4] = [
        (
            "/securityContext/readOnlyRootFilesystem",
            false.into(),
            "readOnlyRootFilesystem",
        ),
        (
            "/readinessProbe/httpGet/path",
            "/healthz".into(),
            "readinessProbe",
        ),
        (
            "/env/0",
            serde_json::json!({"name": "DEALPAY_NO_SUCH_FLAG", "value": "1"}),
            "no flag",
        ),
        ("/args", serde_json::json!(["run", "--x"]), "args [run]"),
    ];
    for (pointer, value, needle) in cases {
        let mut r = Rendered {
            docs: base.docs.clone(),
        };
        set(r.doc_mut("Deployment"), &format!("{c0}{pointer}"), value);
        check_deployment(&r, 1, true).assert_names(needle);
    }
    // a chart default that differs from the binary's
    let mut r = Rendered {
        docs: base.docs.clone(),
    };
    let env = r
        .doc_mut("Deployment")
        .pointer_mut(&format!("{c0}/env"))
        .unwrap();
    let rate = env
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|e| e["name"] == "DEALPAY_RATE")
        .unwrap();
    rate["value"] = "21".into();
    check_deployment(&r, 1, true).assert_names("DEALPAY_RATE");
}

#[test]
#[ignore = "needs helm (scripts/packaging-check installs it); run with --include-ignored"]
fn rbac_and_crd_checks_have_teeth() {
    let base = render(&[]);
    let mut r = Rendered {
        docs: base.docs.clone(),
    };
    set(
        r.doc_mut("ClusterRole"),
        "/rules/4/verbs/0",
        "delete".into(),
    );
    check_rbac(&r, Scope::Cluster).assert_names("ClusterRole grants");
    let mut r = Rendered {
        docs: base.docs.clone(),
    };
    set(
        r.doc_mut("ClusterRoleBinding"),
        "/subjects/0/namespace",
        "default".into(),
    );
    check_rbac(&r, Scope::Cluster).assert_names("binding subjects");
    // a chart CRD that drifted from crds/
    let mut r = Rendered {
        docs: base.docs.clone(),
    };
    let crd = r.doc_mut("CustomResourceDefinition");
    set(crd, "/spec/names/shortNames/0", "dpx".into());
    check_crd(&r, Keep::Yes).assert_names("differs from");
    check_crd(&base, Keep::No).assert_names("keep is set");
    // namespaced: a Role in a namespace the operator does not watch
    let ns = render(&["-f", NONDEFAULT]);
    let mut fewer = nondefault_watched();
    fewer.remove("team-b");
    check_rbac(&ns, Scope::Namespaced(fewer)).assert_names("operator Roles in");
}
