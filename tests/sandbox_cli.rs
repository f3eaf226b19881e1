//! `dealpay sandbox` as a process: first stdout line, TLS files, state files, demo state, signals.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use dealpay_operator::sandbox::World;

mod sandbox_common;
use sandbox_common::{get_json, listening_url};

const BIN: &str = env!("CARGO_BIN_EXE_dealpay");

struct Running {
    child: Child,
    url: String,
}

impl Running {
    fn start(args: &[&str]) -> Self {
        Self::start_with_env(args, &[])
    }

    fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(BIN)
            .arg("sandbox")
            .args(args)
            .env_remove("DEALPAY_SANDBOX_DOUBLE_CHARGE")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = listening_url(&mut child);
        Self { child, url }
    }

    fn terminate(mut self) -> i32 {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        // Waits for the exit itself; a watchdog SIGKILLs a sandbox that ignores SIGTERM, so the
        // wait ends either way and the test says which.
        let pid = self.child.id().to_string();
        let (exited, watch) = std::sync::mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            let ignored = watch.recv_timeout(Duration::from_secs(20)).is_err();
            if ignored {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
            }
            ignored
        });
        let code = self.child.wait().unwrap().code().unwrap_or(-1);
        let _ = exited.send(());
        assert!(!watchdog.join().unwrap(), "sandbox ignored SIGTERM");
        code
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn print_demo_state_is_the_demo_world() {
    let out = Command::new(BIN)
        .args(["sandbox", "--print-demo-state"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let world = World::from_yaml(&String::from_utf8(out.stdout).unwrap()).unwrap();
    assert_eq!(world, World::demo());
}

#[tokio::test]
async fn https_with_self_signed_files_and_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    let sb = Running::start(&[
        "--listen",
        "127.0.0.1:0",
        "--tls-self-signed",
        tls.to_str().unwrap(),
    ]);
    assert!(sb.url.starts_with("https://127.0.0.1:"), "{}", sb.url);
    for f in ["ca.pem", "cert.pem", "key.pem"] {
        assert!(tls.join(f).exists(), "{f}");
    }
    let ca = reqwest::Certificate::from_pem(&std::fs::read(tls.join("ca.pem")).unwrap()).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let port = sb.url.rsplit(':').next().unwrap().to_string();
    for base in [sb.url.clone(), format!("https://localhost:{port}")] {
        let health = get_json(&http, &format!("{base}/_sandbox/health")).await;
        assert_eq!(health, serde_json::json!({"ok": true}));
    }
    assert_eq!(sb.terminate(), 0);

    // The same certificate and key, given as files.
    let files = Running::start(&[
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        tls.join("cert.pem").to_str().unwrap(),
        "--tls-key",
        tls.join("key.pem").to_str().unwrap(),
    ]);
    assert!(files.url.starts_with("https://"), "{}", files.url);
    let health = get_json(&http, &format!("{}/_sandbox/health", files.url)).await;
    assert_eq!(health, serde_json::json!({"ok": true}));
    assert_eq!(files.terminate(), 0);
}

#[tokio::test]
async fn state_file_and_rate_limit_flag() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.yaml");
    std::fs::write(
        &state,
        "accounts:\n- uin: '7'\n  secretId: my-id\n  secretKey: my-key\n  balance: 10\norders:\n- orderId: '1'\n  price: 99\n  deliveryDelayMs: 250\n",
    )
    .unwrap();
    let sb = Running::start(&[
        "--listen",
        "127.0.0.1:0",
        "--state",
        state.to_str().unwrap(),
        "--rate-limit",
        "0",
    ]);
    assert!(sb.url.starts_with("http://"));
    let orders = reqwest::get(format!("{}/_sandbox/orders", sb.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let orders: serde_json::Value = serde_json::from_str(&orders).unwrap();
    assert_eq!(orders[0]["orderId"], "1");
    assert_eq!(orders[0]["account"], "7");
    assert_eq!(orders[0]["deliveryDelayMs"], 250);
    assert_eq!(
        settings(&sb).await,
        serde_json::json!({"rateLimit": 0, "doubleCharge": false})
    );
    assert_eq!(sb.terminate(), 0);
}

async fn settings(sb: &Running) -> serde_json::Value {
    get_json(
        &reqwest::Client::new(),
        &format!("{}/_sandbox/settings", sb.url),
    )
    .await
}

#[tokio::test]
async fn double_charge_flag_and_env() {
    let listen = ["--listen", "127.0.0.1:0"];
    let flag = Running::start(&[listen[0], listen[1], "--double-charge"]);
    assert_eq!(settings(&flag).await["doubleCharge"], true);
    assert_eq!(flag.terminate(), 0);
    for (value, on) in [("true", true), ("1", true), ("false", false), ("0", false)] {
        let sb = Running::start_with_env(&listen, &[("DEALPAY_SANDBOX_DOUBLE_CHARGE", value)]);
        assert_eq!(settings(&sb).await["doubleCharge"], on, "{value}");
        assert_eq!(sb.terminate(), 0);
    }
}

#[test]
fn bad_state_file_fails_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("bad.yaml");
    std::fs::write(&state, "orders: [{orderId: x, price: 1}]\n").unwrap();
    let out = Command::new(BIN)
        .args(["sandbox", "--listen", "127.0.0.1:0", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid sandbox state"));
    let out = Command::new(BIN)
        .args(["sandbox", "--listen", "127.0.0.1:0", "--state"])
        .arg(dir.path().join("missing.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}
