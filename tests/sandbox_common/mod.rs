//! Helpers shared by the sandbox integration tests: signed raw requests and the demo client.
#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dealpay_operator::sandbox::{DEMO_SECRET_ID, DEMO_SECRET_KEY, Sandbox};
use dealpay_operator::tencent::client::request_headers;
use dealpay_operator::tencent::{Client, ClientConfig, Credentials};
use serde_json::Value;

/// Polls the in-process sandbox's state until `f` holds (it offers nothing to await), failing after
/// 20 s rather than going on as if it held.
pub async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The demo account's credentials.
pub fn demo_creds() -> Credentials {
    Credentials::new(DEMO_SECRET_ID, DEMO_SECRET_KEY, None)
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A project client for the sandbox, without client-side rate limiting.
pub fn client(sb: &Sandbox) -> Client {
    Client::new(&ClientConfig {
        endpoint: sb.url(),
        ca_file: sb.ca_pem_path(),
        rate_per_second: 0,
        timeout: Duration::from_secs(10),
        ..ClientConfig::default()
    })
    .unwrap()
}

/// `host:port` of the sandbox, as the Host header carries it.
pub fn host(sb: &Sandbox) -> String {
    sb.url().split("://").nth(1).unwrap().to_string()
}

/// One request to POST / with full control over every header.
#[derive(Debug, Clone)]
pub struct Raw {
    /// Header name/value pairs (Host included).
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Raw {
    /// A correctly signed request of `creds` for `action` with `body`, signed for `host`.
    pub fn signed(creds: &Credentials, host: &str, action: &str, body: &str) -> Self {
        Self::signed_at(creds, host, action, body, now())
    }

    /// Same, with a chosen timestamp.
    pub fn signed_at(creds: &Credentials, host: &str, action: &str, body: &str, ts: i64) -> Self {
        let headers = request_headers(creds, host, action, None, ts, body.as_bytes())
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        Self {
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    /// Replaces (or with `None` removes) one header.
    pub fn set(mut self, name: &str, value: Option<&str>) -> Self {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        if let Some(v) = value {
            self.headers.push((name.to_string(), v.to_string()));
        }
        self
    }

    /// The request as HTTP/1.1 bytes (connection closed after the answer).
    pub fn to_http(&self) -> Vec<u8> {
        let mut s = String::from("POST / HTTP/1.1\r\n");
        for (k, v) in &self.headers {
            s.push_str(&format!("{k}: {v}\r\n"));
        }
        s.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.body.len()
        ));
        let mut b = s.into_bytes();
        b.extend_from_slice(&self.body);
        b
    }

    /// Sends it with reqwest (plain HTTP sandboxes) and returns the JSON `Response` object.
    pub async fn send(&self, sb: &Sandbox) -> Value {
        let http = reqwest::Client::new();
        let mut rb = http.post(format!("{}/", sb.url()));
        for (k, v) in &self.headers {
            if !k.eq_ignore_ascii_case("host") {
                rb = rb.header(k.as_str(), v.as_str());
            }
        }
        // reqwest derives Host from the URL; a raw socket is needed to send any other Host.
        let resp = rb.body(self.body.clone()).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let v: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
        v["Response"].clone()
    }
}

/// The error code of a `Response` object, or "" on success.
pub fn code(resp: &Value) -> String {
    resp["Error"]["Code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Admin API: GET a path under /_sandbox/ as JSON.
pub async fn admin_get(sb: &Sandbox, path: &str) -> Value {
    get_json(
        &reqwest::Client::new(),
        &format!("{}/_sandbox/{path}", sb.url()),
    )
    .await
}

/// GET `url` and parse the body as JSON (whatever the status: the sandbox answers errors in JSON).
pub async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    let text = http.get(url).send().await.unwrap().text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: {e}: {text}"))
}

/// Admin API: send a JSON body with `method`; returns status and JSON (Null for empty bodies).
pub async fn admin_send(sb: &Sandbox, method: &str, path: &str, body: Value) -> (u16, Value) {
    let http = reqwest::Client::new();
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let resp = http
        .request(m, format!("{}/_sandbox/{path}", sb.url()))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body).unwrap())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A signed Tencent API call of the demo account with a JSON body; returns the `Response` object.
/// Raw JSON on purpose: the tests see exactly what the wire carries (empty lists included).
pub async fn call(sb: &Sandbox, action: &str, body: Value) -> Value {
    Raw::signed(&demo_creds(), &host(sb), action, &body.to_string())
        .send(sb)
        .await
}

/// DescribeDealsByCond for one order in every status over a window that holds every demo order.
pub async fn describe_one(sb: &Sandbox, order_id: &str) -> Value {
    let body = serde_json::json!({
        "StartTime": "2000-01-01 00:00:00",
        "EndTime": "2099-12-31 23:59:59",
        "Limit": 1000,
        "StatusSet": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 30],
        "OrderId": order_id,
    });
    call(sb, "DescribeDealsByCond", body).await
}

/// Reads a started `dealpay sandbox`'s first stdout line, `listening on URL`, and returns the URL.
pub fn listening_url(child: &mut std::process::Child) -> String {
    use std::io::{BufRead, BufReader};
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout piped"))
        .read_line(&mut line)
        .unwrap();
    line.trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string()
}
