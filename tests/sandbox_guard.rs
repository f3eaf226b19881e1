//! `dealpay sandbox` guards: a non-loopback listen address needs --allow-remote, and the admin API
//! can require a bearer token (--admin-token); the Tencent API at `/` is not affected by the token.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use dealpay_operator::sandbox::{Sandbox, SandboxConfig, SandboxError};

mod sandbox_common;
use sandbox_common::listening_url;

const BIN: &str = env!("CARGO_BIN_EXE_dealpay");

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sandbox_cmd() -> Command {
    let mut c = Command::new(BIN);
    c.arg("sandbox")
        .env_remove("DEALPAY_SANDBOX_ALLOW_REMOTE")
        .env_remove("DEALPAY_SANDBOX_ADMIN_TOKEN")
        .env_remove("DEALPAY_SANDBOX_LISTEN");
    c
}

/// Starts it and returns the URL of its first stdout line.
fn start(mut cmd: Command) -> (Running, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = listening_url(&mut child);
    (Running(child), url)
}

#[test]
fn non_loopback_listen_is_refused_without_allow_remote() {
    for addr in ["0.0.0.0:0", "[::]:0"] {
        let out = sandbox_cmd()
            .args(["--listen", addr])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{addr}: {stderr}");
        assert!(out.stdout.is_empty(), "{addr}: printed {:?}", out.stdout);
        assert!(stderr.contains("refusing to listen on"), "{stderr}");
        assert!(stderr.contains("--allow-remote"), "{stderr}");
    }
    // The environment variable of the listen address is checked just the same.
    let out = sandbox_cmd()
        .env("DEALPAY_SANDBOX_LISTEN", "0.0.0.0:0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn allow_remote_flag_and_env_bind_every_interface() {
    let mut flag = sandbox_cmd();
    flag.args(["--listen", "0.0.0.0:0", "--allow-remote"]);
    let mut env = sandbox_cmd();
    env.args(["--listen", "0.0.0.0:0"])
        .env("DEALPAY_SANDBOX_ALLOW_REMOTE", "true");
    for cmd in [flag, env] {
        let (_sb, url) = start(cmd);
        // An unspecified bind address is printed as loopback, reachable from here.
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        let port = url.rsplit(':').next().unwrap();
        let mut s =
            std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        std::io::Write::write_all(
            &mut s,
            b"GET /_sandbox/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    }
}

#[test]
fn loopback_needs_no_flag() {
    for addr in ["127.0.0.1:0", "[::1]:0"] {
        if addr.starts_with('[') && std::net::TcpListener::bind("[::1]:0").is_err() {
            continue; // no IPv6 here
        }
        let mut cmd = sandbox_cmd();
        cmd.args(["--listen", addr]);
        let (_sb, url) = start(cmd);
        assert!(url.starts_with("http://"), "{url}");
    }
}

#[tokio::test]
async fn in_process_start_refuses_non_loopback_too() {
    let err = Sandbox::start(SandboxConfig {
        listen: "0.0.0.0:0".parse().unwrap(),
        ..SandboxConfig::default()
    })
    .await
    .unwrap_err();
    assert!(matches!(err, SandboxError::Remote(_)), "{err}");
    let sb = Sandbox::start(SandboxConfig {
        listen: "0.0.0.0:0".parse().unwrap(),
        allow_remote: true,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    sb.shutdown().await;
}

async fn status(http: &reqwest::Client, url: &str, token: Option<&str>) -> u16 {
    let mut req = http.get(url);
    if let Some(t) = token {
        req = req.header("Authorization", t);
    }
    req.send().await.unwrap().status().as_u16()
}

async fn check_token(base: &str) {
    let http = reqwest::Client::new();
    for path in [
        "/_sandbox/health",
        "/_sandbox/ledger",
        "/_sandbox/state",
        "/_sandbox/orders",
    ] {
        let url = format!("{base}{path}");
        assert_eq!(
            status(&http, &url, None).await,
            401,
            "{path} without a token"
        );
        assert_eq!(
            status(&http, &url, Some("Bearer wrong")).await,
            401,
            "{path} wrong token"
        );
        assert_eq!(
            status(&http, &url, Some("s3cret")).await,
            401,
            "{path} no Bearer"
        );
        assert_eq!(
            status(&http, &url, Some("Basic s3cret")).await,
            401,
            "{path} Basic"
        );
        assert_eq!(
            status(&http, &url, Some("Bearer s3cret")).await,
            200,
            "{path} right token"
        );
    }
    let resp = http
        .post(format!("{base}/_sandbox/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    let body = resp.text().await.unwrap();
    assert!(body.contains("Authorization: Bearer"), "{body}");
    // The Tencent API is not behind the token: an unsigned call gets Tencent's own answer.
    let resp = http
        .post(format!("{base}/"))
        .header("Content-Type", "application/json")
        .header("X-TC-Action", "PayDeals")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body = resp.text().await.unwrap();
    assert!(body.contains("\"Error\""), "{body}");
}

#[tokio::test]
async fn admin_token_from_flag_and_env() {
    let mut flag = sandbox_cmd();
    flag.args(["--listen", "127.0.0.1:0", "--admin-token", "s3cret"]);
    let (_a, url) = start(flag);
    check_token(&url).await;
    let mut env = sandbox_cmd();
    env.args(["--listen", "127.0.0.1:0"])
        .env("DEALPAY_SANDBOX_ADMIN_TOKEN", "s3cret");
    let (_b, url) = start(env);
    check_token(&url).await;
}

#[tokio::test]
async fn admin_token_in_process_and_no_token_by_default() {
    let sb = Sandbox::start(SandboxConfig {
        admin_token: Some("s3cret".into()),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    check_token(&sb.url()).await;
    sb.shutdown().await;
    let open = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let http = reqwest::Client::new();
    assert_eq!(
        status(&http, &format!("{}/_sandbox/health", open.url()), None).await,
        200
    );
    open.shutdown().await;
}
