//! Admission parity: every manifest in tests/admission/ is refused (or, for allowed updates, accepted)
//! alike by `dealpay pay`, the published JSON Schema (check-jsonschema), a Kubernetes 1.20 API server
//! and a modern one (the upstream apiextensions-apiserver 1.36, with CEL), each naming the same field.
//!
//! Each manifest says what it expects in its header comments:
//!   `# field: spec.autoVoucher`   the field path every refusal must name
//!   `# expect: refuse|accept`     (updates) the verdict; invalid/ manifests are always refused
//!   `# on-1.20: accepts: why`     a documented difference of Kubernetes 1.20 (no CEL, no field validation)
//!
//! A plain `cargo test` runs the `dealpay pay` and schema-file checks and reports the live check as
//! ignored. scripts/test runs it (`--include-ignored`) with `KUBECONFIG` (1.20: `scripts/local-cluster
//! env`), `MODERN_KUBECONFIG` (`scripts/modern-apiserver env`) and `DEALPAY_CHECK_JSONSCHEMA`
//! (`scripts/install-check-jsonschema`); it prints the parity table and writes it to
//! target/admission-parity.md.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use dealpay_operator::api::admission::{JSON_SCHEMA_FILE, json_schema_text};
use dealpay_operator::api::{DealPaymentSpec, crd, validate_update};
use dealpay_operator::pay::parse_manifests;
use http_body_util::BodyExt;
use kube::config::{KubeConfigOptions, Kubeconfig};
use regex::Regex;
use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const CRD_NAME: &str = "dealpayments.billing.dealpay.dev";
const COLLECTION: &str = "/apis/billing.dealpay.dev/v1alpha1/namespaces/default/dealpayments";

#[derive(Debug, Clone)]
struct Case {
    file: PathBuf,
    name: String,
    field: Option<String>,
    refuse: bool,
    on_120_accepts: Option<String>,
    docs: Vec<Value>,
}

fn header(text: &str, key: &str) -> Option<String> {
    text.lines()
        .take_while(|l| l.starts_with('#'))
        .find_map(|l| l.strip_prefix(&format!("# {key}: ")))
        .map(|s| s.trim().to_string())
}

fn load(dir: &str) -> Vec<Case> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(Path::new(ROOT).join("tests/admission").join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
    files.sort();
    files
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(&file).unwrap();
            let docs = serde_norway::Deserializer::from_str(&text)
                .map(|d| serde::Deserialize::deserialize(d).unwrap())
                .collect();
            let on_120 = header(&text, "on-1.20");
            Case {
                name: file.file_stem().unwrap().to_string_lossy().into(),
                field: header(&text, "field"),
                refuse: header(&text, "expect").is_none_or(|e| e == "refuse"),
                on_120_accepts: on_120
                    .filter(|s| s.starts_with("accepts"))
                    .map(|s| s.trim_start_matches("accepts:").trim().to_string()),
                docs,
                file,
            }
        })
        .collect()
}

impl Case {
    /// The old and new spec of an update case.
    fn update_specs(&self) -> (DealPaymentSpec, DealPaymentSpec) {
        let spec = |d: &Value| serde_json::from_value(d["spec"].clone()).unwrap();
        (spec(&self.docs[0]), spec(&self.docs[1]))
    }

    /// The documented 1.20 difference, as a table note.
    fn note_120(&self) -> String {
        self.on_120_accepts
            .as_ref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default()
    }

    /// A line for the failure list when `v` disagrees with the case on `server`.
    fn disagreement(&self, server: &str, v: &Verdict, refuse: bool) -> Option<String> {
        (!v.matches(self, refuse)).then(|| {
            format!(
                "{} on {server}: want {} naming {:?}, got {} — {}",
                self.name,
                if refuse { "refused" } else { "accepted" },
                self.field,
                v.cell(),
                v.message
            )
        })
    }
}

fn invalid_cases() -> Vec<Case> {
    load("invalid")
}

fn update_cases() -> Vec<Case> {
    load("update")
}

/// A verdict and the field paths named.
#[derive(Debug, Clone, Default)]
struct Verdict {
    refused: bool,
    fields: BTreeSet<String>,
    message: String,
}

impl Verdict {
    fn accepted() -> Self {
        Self::default()
    }
    fn cell(&self) -> String {
        if self.refused {
            format!(
                "refused `{}`",
                self.fields.iter().cloned().collect::<Vec<_>>().join("`, `")
            )
        } else {
            "accepted".into()
        }
    }
    /// Agrees with what the case expects (the field too, when refused).
    fn matches(&self, case: &Case, refuse: bool) -> bool {
        self.refused == refuse && (!refuse || case.field.as_ref().is_none_or(|f| self.names(f)))
    }

    /// Names the field `f`: exactly; or the list that holds it (Kubernetes 1.20 reports an item's error
    /// on the list, `spec.orderIds` for `spec.orderIds[0]`, and JSON Schema's uniqueItems too); or a field
    /// inside it (strict decoding reports `spec.orderIds.id` where `spec.orderIds` is an object).
    fn names(&self, f: &str) -> bool {
        let list = Regex::new(r"\[\d+\]")
            .unwrap()
            .replace_all(f, "")
            .to_string();
        self.fields.iter().any(|r| {
            r == f
                || *r == list
                || r.starts_with(&format!("{f}."))
                || r.starts_with(&format!("{f}["))
        })
    }
}

fn paths_in(text: &str) -> BTreeSet<String> {
    let re = Regex::new(
        r"(?:is invalid: \[?|, |^)((?:spec|metadata|status|apiVersion|kind)[A-Za-z0-9_.\[\]]*): ",
    )
    .unwrap();
    let unknown = Regex::new(r#"unknown field "\.?([^"]+)""#).unwrap();
    // oneOf errors carry no field (`<nil>`) but name it in the message: `"spec" must validate one ...`.
    let one_of = Regex::new(r#""([A-Za-z0-9_.\[\]]+)" must validate"#).unwrap();
    let mut out: BTreeSet<String> = BTreeSet::new();
    for line in text.lines() {
        out.extend(re.captures_iter(line).map(|c| c[1].to_string()));
        out.extend(unknown.captures_iter(line).map(|c| c[1].to_string()));
        out.extend(one_of.captures_iter(line).map(|c| c[1].to_string()));
    }
    out
}

/// `dealpay pay -f FILE`: the real CLI, which validates before anything else.
fn dealpay_pay(file: &Path) -> Verdict {
    let out = Command::new(env!("CARGO_BIN_EXE_dealpay"))
        .args(["pay", "--sandbox", "--timeout", "0", "-f"])
        .arg(file)
        .output()
        .expect("dealpay runs");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    if out.status.code() == Some(2) {
        Verdict {
            refused: true,
            fields: paths_in(&stderr),
            message: stderr.trim().to_string(),
        }
    } else {
        Verdict::accepted()
    }
}

#[test]
fn json_schema_file_matches_the_crd() {
    let path = Path::new(ROOT).join(JSON_SCHEMA_FILE);
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == json_schema_text(),
        "{JSON_SCHEMA_FILE} is stale: run `make crd` (cargo run -- crd --json-schema > {JSON_SCHEMA_FILE})"
    );
}

#[test]
fn there_are_at_least_thirty_invalid_manifests_each_naming_a_field() {
    let cases = invalid_cases();
    assert!(cases.len() >= 30, "only {} manifests", cases.len());
    for c in &cases {
        assert!(
            c.field.is_some(),
            "{}: no `# field:` header",
            c.file.display()
        );
        assert_eq!(c.docs.len(), 1, "{}", c.file.display());
    }
}

#[test]
fn dealpay_pay_refuses_every_invalid_manifest_naming_the_field() {
    let mut failures = Vec::new();
    for c in invalid_cases() {
        let v = dealpay_pay(&c.file);
        failures.extend(c.disagreement("dealpay pay", &v, true));
        // Every line of the refusal names a field.
        for line in v.message.lines() {
            assert!(
                !paths_in(line).is_empty(),
                "{}: a message names no field: {line}",
                c.name
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn type_errors_read_like_the_api_server() {
    let file = Path::new(ROOT).join("tests/admission/invalid");
    let f = std::fs::read_dir(&file)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("auto-voucher-string"))
        .unwrap();
    let v = dealpay_pay(&f);
    assert!(
        v.message.contains(
            "spec.autoVoucher: Invalid value: \"string\": spec.autoVoucher in body must be of type boolean: \"string\""
        ),
        "{}",
        v.message
    );
}

#[test]
fn the_examples_pass_admission() {
    for e in std::fs::read_dir(Path::new(ROOT).join("examples")).unwrap() {
        let p = e.unwrap().path();
        if !p.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        if text.contains("kind: DealPayment") {
            parse_manifests(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        }
    }
}

#[test]
fn update_rules_of_the_engine_match_the_cases() {
    for c in update_cases() {
        let (old, new) = c.update_specs();
        let errors = validate_update(&old, &new);
        assert_eq!(!errors.is_empty(), c.refuse, "{}: {errors:?}", c.name);
    }
}

// ------------------------------------------------------------------ live servers

struct Server {
    label: &'static str,
    client: kube::Client,
}

async fn server(label: &'static str, kubeconfig: &str) -> Server {
    let kc = Kubeconfig::read_from(kubeconfig).unwrap_or_else(|e| panic!("{kubeconfig}: {e}"));
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    Server {
        label,
        client: kube::Client::try_from(config).unwrap(),
    }
}

struct Reply {
    status: u16,
    body: Value,
    warnings: Vec<String>,
}

impl Server {
    async fn call(
        &self,
        method: &str,
        uri: &str,
        content_type: &str,
        body: Option<Vec<u8>>,
    ) -> Reply {
        let req = http::Request::builder()
            .method(method)
            .uri(uri)
            .header("Content-Type", content_type)
            .header("Accept", "application/json")
            .body(body.unwrap_or_default().into())
            .unwrap();
        let resp = self
            .client
            .send(req)
            .await
            .unwrap_or_else(|e| panic!("{} {method} {uri}: {e}", self.label));
        let status = resp.status().as_u16();
        let warnings = resp
            .headers()
            .get_all("Warning")
            .iter()
            .map(|h| h.to_str().unwrap_or_default().to_string())
            .collect();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            warnings,
        }
    }

    async fn json(&self, method: &str, uri: &str, body: &Value) -> Reply {
        self.call(
            method,
            uri,
            "application/json",
            Some(serde_json::to_vec(body).unwrap()),
        )
        .await
    }

    async fn version(&self) -> String {
        let r = self.call("GET", "/version", "application/json", None).await;
        r.body["gitVersion"].as_str().unwrap_or("?").to_string()
    }

    async fn established(&self) -> bool {
        let uri = format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{CRD_NAME}");
        let r = self.call("GET", &uri, "application/json", None).await;
        r.body["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Established" && c["status"] == "True")
            && self
                .call("GET", COLLECTION, "application/json", None)
                .await
                .status
                == 200
    }

    async fn wait_established(&self) {
        for _ in 0..120 {
            if self.established().await {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        panic!("{}: the CRD is not established", self.label);
    }

    /// The verdict of an API reply, with the field paths of its causes.
    fn verdict(r: &Reply) -> Verdict {
        if (200..300).contains(&r.status) {
            return Verdict::accepted();
        }
        let message = r.body["message"].as_str().unwrap_or_default().to_string();
        let mut fields: BTreeSet<String> = r.body["details"]["causes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["field"].as_str())
            .filter(|f| *f != "<nil>")
            .map(|f| f.trim_start_matches('.').to_string())
            .collect();
        fields.extend(paths_in(&message));
        Verdict {
            refused: true,
            fields,
            message: format!("{} {message}", r.status),
        }
    }

    /// Creates (server dry run, strict field validation as kubectl does by default).
    async fn create_dry_run(&self, object: &Value) -> Verdict {
        let r = self
            .json(
                "POST",
                &format!("{COLLECTION}?dryRun=All&fieldValidation=Strict"),
                object,
            )
            .await;
        Self::verdict(&r)
    }

    /// Stores `old`, then updates it to `new` (dry run) and deletes it.
    async fn update(&self, old: &Value, new: &Value) -> Verdict {
        let name = old["metadata"]["name"].as_str().unwrap();
        let item = format!("{COLLECTION}/{name}");
        self.call("DELETE", &item, "application/json", None).await;
        let created = self.json("POST", COLLECTION, old).await;
        assert!(
            (200..300).contains(&created.status),
            "{}: creating {name}: {}",
            self.label,
            created.body
        );
        let mut new = new.clone();
        new["metadata"]["resourceVersion"] = created.body["metadata"]["resourceVersion"].clone();
        let r = self
            .json(
                "PUT",
                &format!("{item}?dryRun=All&fieldValidation=Strict"),
                &new,
            )
            .await;
        self.call("DELETE", &item, "application/json", None).await;
        Self::verdict(&r)
    }
}

/// check-jsonschema over every manifest at once: file name -> verdict.
fn check_jsonschema(bin: &str, cases: &[Case]) -> Vec<Verdict> {
    let schema = Path::new(ROOT).join(JSON_SCHEMA_FILE);
    let out = Command::new(bin)
        .args(["-o", "json", "--schemafile"])
        .arg(&schema)
        .args(cases.iter().map(|c| &c.file))
        .output()
        .expect("check-jsonschema runs");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check-jsonschema output: {e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let required = Regex::new(r"^'([^']+)' is a required property").unwrap();
    let unexpected = Regex::new(r"\(([^)]*) (?:was|were) unexpected\)").unwrap();
    cases
        .iter()
        .map(|c| {
            let mut v = Verdict::accepted();
            for e in report["errors"].as_array().into_iter().flatten() {
                let f = e["filename"].as_str().unwrap_or_default();
                if !c.file.to_string_lossy().ends_with(f) {
                    continue;
                }
                v.refused = true;
                let path = e["path"].as_str().unwrap_or("$").trim_start_matches('$');
                let path = path.trim_start_matches('.');
                let msg = e["message"].as_str().unwrap_or_default();
                let join = |leaf: &str| {
                    if path.is_empty() {
                        leaf.to_string()
                    } else {
                        format!("{path}.{leaf}")
                    }
                };
                if let Some(m) = required.captures(msg) {
                    v.fields.insert(join(&m[1]));
                } else if let Some(m) = unexpected.captures(msg) {
                    for leaf in m[1].split(", ") {
                        v.fields.insert(join(leaf.trim_matches('\'')));
                    }
                } else {
                    v.fields.insert(if path.is_empty() {
                        "<root>".into()
                    } else {
                        path.into()
                    });
                }
                v.message = format!("{}{path}: {msg}; ", v.message);
            }
            v
        })
        .collect()
}

#[tokio::test]
#[ignore = "needs scripts/local-cluster and scripts/modern-apiserver; scripts/test runs it with --include-ignored"]
async fn parity_on_a_120_and_a_modern_api_server() {
    let old_kc =
        std::env::var("KUBECONFIG").expect("KUBECONFIG: eval \"$(scripts/local-cluster env)\"");
    let new_kc = std::env::var("MODERN_KUBECONFIG")
        .expect("MODERN_KUBECONFIG: scripts/modern-apiserver up && eval \"$(scripts/modern-apiserver env)\"");
    let k120 = server("1.20", &old_kc).await;
    let modern = server("modern", &new_kc).await;
    let (v120, vmodern) = (k120.version().await, modern.version().await);

    // The CRD, exactly as crds/ ships it, with server-side apply and strict field validation: the
    // modern server checks the structural schema, the CEL rules and their cost budget.
    let crd_yaml =
        std::fs::read(Path::new(ROOT).join("crds/billing.dealpay.dev_dealpayments.yaml")).unwrap();
    let applied = modern
        .call(
            "PATCH",
            &format!(
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{CRD_NAME}?fieldManager=dealpay-parity&force=true&fieldValidation=Strict"
            ),
            "application/apply-patch+yaml",
            Some(crd_yaml),
        )
        .await;
    assert!(
        (200..300).contains(&applied.status) && applied.warnings.is_empty(),
        "server-side apply of the CRD on {vmodern}: {} {} warnings {:?}",
        applied.status,
        applied.body,
        applied.warnings
    );
    modern.wait_established().await;
    // 1.20: the CRD as the e2e tests install it (1.20 drops the CEL field it does not know).
    if !k120.established().await {
        let crd = serde_json::to_value(crd()).unwrap();
        let r = k120
            .json(
                "POST",
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                &crd,
            )
            .await;
        assert!(
            r.status == 201 || r.status == 409,
            "CRD on 1.20: {} {}",
            r.status,
            r.body
        );
        k120.wait_established().await;
    }

    let cases = invalid_cases();
    let checker = std::env::var("DEALPAY_CHECK_JSONSCHEMA").ok();
    let schema_verdicts = checker.as_deref().map(|b| check_jsonschema(b, &cases));
    let mut table = vec![
        format!(
            "Admission parity: {} invalid manifests, {} updates; Kubernetes {v120} and {vmodern} (apiextensions-apiserver), `dealpay pay`, check-jsonschema + {JSON_SCHEMA_FILE}\n",
            cases.len(),
            update_cases().len()
        ),
        "| manifest | field | dealpay pay | JSON Schema | 1.20 | modern |".into(),
        "|---|---|---|---|---|---|".into(),
    ];
    let mut failures = Vec::new();
    let mut differ_120 = 0;
    for (i, c) in cases.iter().enumerate() {
        let local = dealpay_pay(&c.file);
        let schema = schema_verdicts.as_ref().map(|v| v[i].clone());
        let old = k120.create_dry_run(&c.docs[0]).await;
        let new = modern.create_dry_run(&c.docs[0]).await;
        let want_120_refuse = c.on_120_accepts.is_none();
        differ_120 += usize::from(!want_120_refuse);
        let checks = [
            ("dealpay pay", Some(&local), true),
            ("JSON Schema", schema.as_ref(), true),
            ("1.20", Some(&old), want_120_refuse),
            ("modern", Some(&new), true),
        ];
        failures.extend(
            checks
                .into_iter()
                .filter_map(|(what, v, refuse)| c.disagreement(what, v?, refuse)),
        );
        let note = c.note_120();
        table.push(format!(
            "| {} | `{}` | {} | {} | {}{note} | {} |",
            c.name,
            c.field.as_deref().unwrap_or_default(),
            local.cell(),
            schema.as_ref().map_or("not run".into(), Verdict::cell),
            old.cell(),
            new.cell()
        ));
        println!(
            "{}\n  dealpay: {}\n  1.20:    {}\n  modern:  {}",
            c.name, local.message, old.message, new.message
        );
    }
    table.push(String::new());
    table.push("| update | field | engine (`validate_update`) | 1.20 | modern |".into());
    table.push("|---|---|---|---|---|".into());
    for c in update_cases() {
        let (old_spec, new_spec) = c.update_specs();
        let engine = validate_update(&old_spec, &new_spec);
        let engine_refuses = !engine.is_empty();
        let old = k120.update(&c.docs[0], &c.docs[1]).await;
        let new = modern.update(&c.docs[0], &c.docs[1]).await;
        let want_120_refuse = c.refuse && c.on_120_accepts.is_none();
        if engine_refuses != c.refuse {
            failures.push(format!("{} in the engine: {engine:?}", c.name));
        }
        for (what, v, refuse) in [("1.20", &old, want_120_refuse), ("modern", &new, c.refuse)] {
            failures.extend(
                c.disagreement(what, v, refuse)
                    .map(|f| format!("update {f}")),
            );
        }
        let note = c.note_120();
        table.push(format!(
            "| {} | `{}` | {} | {}{note} | {} |",
            c.name,
            c.field.as_deref().unwrap_or("-"),
            if engine_refuses {
                "refused"
            } else {
                "accepted"
            },
            old.cell(),
            new.cell()
        ));
        println!(
            "update {}\n  1.20:    {}\n  modern:  {}",
            c.name, old.message, new.message
        );
    }
    table.push(format!(
        "\n{} manifests agree everywhere but {differ_120} create and the CEL update cases on 1.20, as documented.",
        cases.len()
    ));
    let text = table.join("\n");
    println!("{text}");
    let _ = std::fs::create_dir_all(Path::new(ROOT).join("target"));
    let _ = std::fs::write(
        Path::new(ROOT).join("target/admission-parity.md"),
        format!("{text}\n"),
    );
    assert!(
        checker.is_some(),
        "DEALPAY_CHECK_JSONSCHEMA is not set: scripts/install-check-jsonschema"
    );
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
