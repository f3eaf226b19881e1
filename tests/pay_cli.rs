//! `dealpay pay` as a user runs it: the shipped examples against `--sandbox`, exit codes, field errors.

use std::process::{Command, Output};

fn dealpay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dealpay"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("TENCENTCLOUD_SECRET_ID")
        .env_remove("TENCENTCLOUD_SECRET_KEY")
        .output()
        .expect("dealpay runs")
}

fn docs(out: &Output) -> Vec<serde_json::Value> {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_norway::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &serde_json::Value| !v.is_null())
        .collect()
}

fn ready(doc: &serde_json::Value) -> (String, String) {
    let c = doc["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    (
        c["status"].as_str().unwrap().into(),
        c["reason"].as_str().unwrap().into(),
    )
}

#[test]
fn shipped_examples_are_paid_by_the_sandbox() {
    for (file, resources) in [
        ("examples/dealpayment.yaml", 2),
        ("examples/bigdeal.yaml", 2),
        ("examples/voucher.yaml", 1),
    ] {
        let out = dealpay(&["pay", "--sandbox", "-f", file]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let d = docs(&out);
        assert_eq!(d.len(), 1);
        assert_eq!(ready(&d[0]), ("True".into(), "Paid".into()), "{file}");
        assert_eq!(
            d[0]["status"]["resourceIds"].as_array().unwrap().len(),
            resources,
            "{file}"
        );
        assert!(!d[0]["status"]["requestId"].as_str().unwrap().is_empty());
    }
}

#[test]
fn suspended_example_pays_nothing_and_exits_stalled() {
    let out = dealpay(&["pay", "--sandbox", "-f", "examples/suspended.yaml"]);
    assert_eq!(out.status.code(), Some(3));
    let d = docs(&out);
    assert_eq!(ready(&d[0]), ("False".into(), "Suspended".into()));
    assert_eq!(d[0]["status"]["attempts"], 0);
}

#[test]
fn invalid_manifest_exits_2_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.yaml");
    std::fs::write(
        &f,
        "apiVersion: billing.dealpay.dev/v1alpha1\nkind: DealPayment\nmetadata: {name: bad}\nspec:\n  orderIds: [\"1\"]\n  bigDealIds: [\"2\"]\n  voucherIds: [a, b]\n",
    )
    .unwrap();
    let out = dealpay(&["pay", "--sandbox", "-f", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    // Checked against the CRD schema before deserialising, in the API server's words.
    assert!(
        err.contains("DealPayment.billing.dealpay.dev \"bad\" is invalid: "),
        "{err}"
    );
    assert!(
        err.contains(
            "spec: Invalid value: \"object\": set exactly one of spec.orderIds and spec.bigDealIds"
        ),
        "{err}"
    );
    assert!(
        err.contains("spec.voucherIds: Too many: 2: must have at most 1 items"),
        "{err}"
    );
    let out = dealpay(&["pay", "--sandbox", "-f", "Cargo.toml"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn without_credentials_it_stalls_with_a_clear_reason() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("p.yaml");
    std::fs::write(&f, "apiVersion: billing.dealpay.dev/v1alpha1\nkind: DealPayment\nmetadata: {name: p}\nspec: {orderIds: [\"1\"]}\n").unwrap();
    let out = dealpay(&[
        "pay",
        "--endpoint",
        "http://127.0.0.1:9",
        "-f",
        f.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        ready(&docs(&out)[0]),
        ("False".into(), "NoCredentials".into())
    );
}

#[test]
fn timeout_exits_4() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("p.yaml");
    std::fs::write(&f, "apiVersion: billing.dealpay.dev/v1alpha1\nkind: DealPayment\nmetadata: {name: p}\nspec: {orderIds: [\"1\"]}\n").unwrap();
    // Port 9 (discard) refuses connections: a transient error retried until the deadline.
    let out = Command::new(env!("CARGO_BIN_EXE_dealpay"))
        .args([
            "pay",
            "--endpoint",
            "http://127.0.0.1:9",
            "--timeout",
            "2",
            "-f",
            f.to_str().unwrap(),
        ])
        .env("TENCENTCLOUD_SECRET_ID", "id")
        .env("TENCENTCLOUD_SECRET_KEY", "very-secret-key-value")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains("very-secret-key-value"));
    assert!(all.contains("Transport.NotSent"), "{all}");
}

#[test]
fn dry_run_prices_without_paying_and_a_cap_refuses() {
    let out = dealpay(&[
        "pay",
        "--sandbox",
        "--dry-run",
        "-f",
        "examples/dealpayment.yaml",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = docs(&out);
    let st = &d[0]["status"];
    assert_eq!(st["attempts"], 0, "nothing paid");
    let payable = st["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Payable")
        .unwrap();
    assert_eq!(payable["status"], "True");
    assert!(
        payable["message"].as_str().unwrap().contains("46.00"),
        "{payable}"
    );
    let out = dealpay(&[
        "pay",
        "--sandbox",
        "--max-total-cost",
        "45.99",
        "-f",
        "examples/dealpayment.yaml",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(ready(&docs(&out)[0]), ("False".into(), "OverBudget".into()));
    let out = dealpay(&[
        "pay",
        "--sandbox",
        "--max-total-cost",
        "1.234",
        "-f",
        "examples/dealpayment.yaml",
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an amount with three decimals is refused"
    );
}

fn condition(doc: &serde_json::Value, type_: &str) -> (String, String, String) {
    let c = doc["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap_or_else(|| panic!("no {type_} condition: {doc}"));
    let s = |k: &str| c[k].as_str().unwrap().to_string();
    (s("status"), s("reason"), s("message"))
}

#[test]
fn dry_run_names_the_sub_orders_a_big_deal_must_be_paid_with() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("together.yaml");
    let manifest = |ids: &str| {
        format!(
            "apiVersion: billing.dealpay.dev/v1alpha1\nkind: DealPayment\nmetadata: {{name: together}}\nspec:\n  orderIds: [{ids}]\n"
        )
    };
    std::fs::write(&f, manifest("\"20261128000000000401\"")).unwrap();
    let out = dealpay(&["pay", "--sandbox", "--dry-run", "-f", f.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "not Payable: {stderr}");
    let d = docs(&out);
    assert_eq!(d[0]["status"]["attempts"], 0, "nothing paid");
    let (status, reason, message) = condition(&d[0], "Payable");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "NeedPayTogether")
    );
    assert!(
        message.contains("big deal 20261128000000000400 also has unpaid 20261128000000000402"),
        "{message}"
    );
    assert!(stderr.contains("NeedPayTogether"), "{stderr}");
    std::fs::write(
        &f,
        manifest("\"20261128000000000401\", \"20261128000000000402\""),
    )
    .unwrap();
    let out = dealpay(&["pay", "--sandbox", "--dry-run", "-f", f.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(condition(&docs(&out)[0], "Payable").0, "True");
    // Any verdict of False is an answer, not a wait: exit 3 at once, whatever the engine's recheck.
    let out = dealpay(&[
        "pay",
        "--sandbox",
        "--dry-run",
        "--max-total-cost",
        "45.99",
        "-f",
        "examples/dealpayment.yaml",
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, reason, _) = condition(&docs(&out)[0], "Payable");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "OverBudget"));
}
