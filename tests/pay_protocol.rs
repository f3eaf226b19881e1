//! `dealpay pay` as a separate process against the sandbox over HTTP: the defects of the payment
//! protocol, reproduced as a user met them (issue: bounded retries, statuses from elsewhere, kills).

use std::path::Path;
use std::process::{Command, Output, Stdio};

use dealpay_operator::sandbox::{
    DEMO_SECRET_ID, DEMO_SECRET_KEY, Fault, FaultRule, Sandbox, SandboxConfig,
};
use serde_json::Value;

mod sandbox_common;
use sandbox_common::wait_for;

const O1: &str = "20261128000000000001";

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox starts")
}

fn manifest(dir: &Path) -> std::path::PathBuf {
    let f = dir.join("p.yaml");
    std::fs::write(
        &f,
        format!("apiVersion: billing.dealpay.dev/v1alpha1\nkind: DealPayment\nmetadata: {{name: p}}\nspec: {{orderIds: [\"{O1}\"]}}\n"),
    )
    .unwrap();
    f
}

fn pay_cmd(sb: &Sandbox, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dealpay"));
    c.arg("pay")
        .args(["--endpoint", &sb.url(), "--rate", "0"])
        .args(args)
        .env("TENCENTCLOUD_SECRET_ID", DEMO_SECRET_ID)
        .env("TENCENTCLOUD_SECRET_KEY", DEMO_SECRET_KEY)
        .env("DEALPAY_LOG", "warn");
    c
}

async fn pay(sb: &Sandbox, args: &[&str]) -> Output {
    let mut c = pay_cmd(sb, args);
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

fn status(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_norway::from_str(text.trim_start_matches("---\n")).unwrap();
    v["status"].clone()
}

fn condition(st: &Value, t: &str) -> (String, String, String) {
    let c = st["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == t)
        .unwrap();
    let s = |k: &str| c[k].as_str().unwrap().to_string();
    (s("status"), s("reason"), s("message"))
}

fn calls(sb: &Sandbox, action: &str) -> u64 {
    sb.stats().actions.get(action).map_or(0, |a| a.requests)
}

fn charges_of(sb: &Sandbox, id: &str) -> usize {
    sb.ledger().iter().filter(|c| c.order_id == id).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sticky_internal_error_backs_off_instead_of_storming() {
    let sb = sandbox().await;
    sb.add_fault(
        FaultRule::new(Fault::InternalError)
            .for_action("PayDeals")
            .for_orders([O1]),
    );
    let dir = tempfile::tempdir().unwrap();
    let f = manifest(dir.path());
    let out = pay(&sb, &["--timeout", "10", "-f", f.to_str().unwrap()]).await;
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Before the fix: 98 PayDeals and 98 lookups in these 10 s. The unknown-outcome backoff (5 s
    // base, jitter down to half, doubling) leaves room for at most 3 calls in 10 s; a slow machine
    // only makes fewer, so only the upper bound is a property of the code.
    let (pays, lookups) = (calls(&sb, "PayDeals"), calls(&sb, "DescribeDealsByCond"));
    assert!((1..=4).contains(&pays), "{pays} PayDeals in 10 s");
    assert!(lookups <= pays + 1, "{lookups} lookups for {pays} PayDeals");
    let st = status(&out);
    assert_eq!(st["unknownOutcomes"].as_u64(), Some(pays));
    let (_, reason, msg) = condition(&st, "Ready");
    assert_eq!(reason, "OutcomeUnknown");
    assert!(
        msg.contains("InternalError") && msg.contains("RequestId"),
        "{msg}"
    );
    assert_eq!(charges_of(&sb, O1), 0);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_input_status_is_ignored_unless_resumed_and_then_verified() {
    let first = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let f = manifest(dir.path());
    let out = pay(&first, &["-f", f.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(0));
    let earlier = dir.path().join("earlier.yaml");
    std::fs::write(&earlier, &out.stdout).unwrap();
    let old_rid = status(&out)["requestId"].as_str().unwrap().to_string();

    // Another endpoint, where nothing is paid: before the fix, Ready=True with the old RequestId.
    let other = sandbox().await;
    let out = pay(&other, &["-f", earlier.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        charges_of(&other, O1),
        1,
        "the input status is not believed"
    );
    assert_ne!(status(&out)["requestId"].as_str().unwrap(), old_rid);

    // --resume against the endpoint that paid: looked up, found delivered, nothing paid again.
    let before = calls(&first, "PayDeals");
    let out = pay(&first, &["--resume", "-f", earlier.to_str().unwrap()]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(calls(&first, "PayDeals"), before);
    assert!(calls(&first, "DescribeDealsByCond") >= 2);
    assert_eq!(condition(&status(&out), "Ready").0, "True");
    assert_eq!(charges_of(&first, O1), 1);
    first.shutdown().await;
    other.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pay_killed_during_paydeals_is_settled_by_lookup_from_its_state_file() {
    let sb = sandbox().await;
    // Charged at once, answered only after 30 s: the process is killed while it waits.
    sb.add_fault(
        FaultRule::new(Fault::Latency {
            ms: 30_000,
            after_charge: true,
        })
        .for_action("PayDeals")
        .times(1),
    );
    let dir = tempfile::tempdir().unwrap();
    let f = manifest(dir.path());
    let state = dir.path().join("state.yaml");
    let args = [
        "--state-file",
        state.to_str().unwrap(),
        "-f",
        f.to_str().unwrap(),
    ];
    let mut child = pay_cmd(&sb, &args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The charge is in the ledger only after the write-ahead record is on disk.
    wait_for("the charge", || charges_of(&sb, O1) > 0).await;
    let on_disk = std::fs::read_to_string(&state).unwrap();
    assert!(on_disk.contains("inFlight"), "{on_disk}");
    child.kill().unwrap();
    child.wait().unwrap();

    let out = pay(&sb, &args).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(charges_of(&sb, O1), 1, "never paid twice");
    assert_eq!(
        calls(&sb, "PayDeals"),
        1,
        "the rerun looked up instead of paying"
    );
    let st = status(&out);
    assert_eq!(condition(&st, "Ready").0, "True");
    assert_eq!(
        st["unknownOutcomes"].as_u64(),
        None,
        "settled resets the count"
    );
    sb.shutdown().await;
}
