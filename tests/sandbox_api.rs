//! The sandbox over HTTP(S): the project's client pays through it, requests are checked as the
//! real API checks them, the admin API steers it, and the rate limit holds under bursts.

mod sandbox_common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dealpay_operator::sandbox::{
    DEMO_UIN, Order, Sandbox, SandboxConfig, TlsMode, World, world::DEMO_BALANCE,
};
use dealpay_operator::tencent::models::{DescribeDealsRequest, PayDealsRequest, status};
use dealpay_operator::tencent::{CallError, ClientConfig, Credentials};
use sandbox_common::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn pay_orders(ids: &[&str]) -> PayDealsRequest {
    PayDealsRequest {
        order_ids: ids.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn describe_all(order_id: Option<&str>) -> DescribeDealsRequest {
    DescribeDealsRequest {
        start_time: "2000-01-01 00:00:00".into(),
        end_time: "2099-12-31 23:59:59".into(),
        limit: 1000,
        status_set: status::ALL.to_vec(),
        order_id: order_id.map(String::from),
        ..Default::default()
    }
}

async fn start() -> Sandbox {
    Sandbox::start(SandboxConfig::default()).await.unwrap()
}

#[tokio::test]
async fn client_pays_and_describes_over_http() {
    let sb = start().await;
    assert!(sb.url().starts_with("http://127.0.0.1:"));
    assert!(sb.ca_pem_path().is_none());
    let c = client(&sb);
    let creds = demo_creds();
    let paid = c
        .pay_deals(&creds, None, &pay_orders(&["20261128000000000001"]))
        .await
        .unwrap();
    assert_eq!(paid.order_ids, ["20261128000000000001"]);
    assert_eq!(paid.resource_ids.all, ["ins-00000001"]);
    assert!(uuid::Uuid::parse_str(&paid.request_id).is_ok());

    let ledger = sb.ledger();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].order_id, "20261128000000000001");
    assert_eq!(ledger[0].amount, 1200);
    assert_eq!(ledger[0].account, DEMO_UIN);
    assert_eq!(ledger[0].request_id, paid.request_id);

    let listed = c
        .describe_deals(&creds, None, &describe_all(Some("20261128000000000001")))
        .await
        .unwrap();
    assert_eq!(listed.total_count, 1);
    let d = &listed.deals[0];
    assert_eq!(d.status, status::DELIVERED);
    assert_eq!(d.real_total_cost, Some(1200.0));
    assert_eq!(d.resource_id, ["ins-00000001"]);
    assert_eq!(d.payer, DEMO_UIN);

    // The real API's trap: without Status/StatusSet only delivered orders come back.
    let mut default_filter = describe_all(None);
    default_filter.status_set.clear();
    let delivered = c
        .describe_deals(&creds, None, &default_filter)
        .await
        .unwrap();
    assert_eq!(delivered.total_count, 1);

    let again = c
        .pay_deals(&creds, None, &pay_orders(&["20261128000000000001"]))
        .await
        .unwrap_err();
    assert_eq!(again.code(), "FailedOperation.InvalidDeal");
    assert_eq!(sb.ledger().len(), 1, "never charged twice");
    sb.shutdown().await;
}

#[tokio::test]
async fn client_pays_over_https_with_the_sandbox_ca() {
    let dir = tempfile::tempdir().unwrap();
    let sb = Sandbox::start(SandboxConfig {
        tls: TlsMode::SelfSigned {
            dir: dir.path().to_path_buf(),
            extra_sans: vec![],
        },
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    assert!(sb.url().starts_with("https://127.0.0.1:"));
    let ca = sb.ca_pem_path().unwrap();
    assert!(ca.exists());
    let c = client(&sb);
    let paid = c
        .pay_deals(
            &demo_creds(),
            None,
            &PayDealsRequest {
                big_deal_ids: vec!["20261128000000000100".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(paid.big_deal_ids, ["20261128000000000100"]);
    assert_eq!(
        paid.order_ids,
        ["20261128000000000101", "20261128000000000102"]
    );

    // `localhost` is in the certificate too.
    let port = sb.addr().port();
    let by_name = dealpay_operator::tencent::Client::new(&ClientConfig {
        endpoint: format!("https://localhost:{port}"),
        ca_file: Some(ca),
        rate_per_second: 0,
        ..ClientConfig::default()
    })
    .unwrap();
    by_name
        .describe_deals(&demo_creds(), None, &describe_all(None))
        .await
        .unwrap();

    // Without the CA the handshake fails: nothing was sent.
    let untrusting = dealpay_operator::tencent::Client::new(&ClientConfig {
        endpoint: sb.url(),
        rate_per_second: 0,
        ..ClientConfig::default()
    })
    .unwrap();
    let err = untrusting
        .pay_deals(&demo_creds(), None, &pay_orders(&["20261128000000000002"]))
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::NotSent(_)), "{err:?}");
    assert_eq!(sb.ledger().len(), 2);
    sb.shutdown().await;
}

#[tokio::test]
async fn signature_and_header_checks() {
    let sb = start().await;
    let h = host(&sb);
    let body = r#"{"OrderIds":["20261128000000000001"]}"#;
    let good = Raw::signed(&demo_creds(), &h, "PayDeals", body);
    let wrong_key = Credentials::new("sandbox-secret-id", "nope", None);
    let unknown = Credentials::new("who-is-this", "sandbox-secret-key", None);
    let cases: Vec<(&str, Raw, &str)> = vec![
        (
            "no Authorization",
            good.clone().set("Authorization", None),
            "AuthFailure.InvalidAuthorization",
        ),
        (
            "malformed Authorization",
            good.clone()
                .set("Authorization", Some("TC3-HMAC-SHA256 garbage")),
            "AuthFailure.InvalidAuthorization",
        ),
        (
            "wrong key",
            Raw::signed(&wrong_key, &h, "PayDeals", body),
            "AuthFailure.SignatureFailure",
        ),
        (
            "unknown SecretId",
            Raw::signed(&unknown, &h, "PayDeals", body),
            "AuthFailure.SecretIdNotFound",
        ),
        (
            "Host signed without the port",
            Raw::signed(&demo_creds(), "127.0.0.1", "PayDeals", body),
            "AuthFailure.SignatureFailure",
        ),
        (
            "Content-Type differs from the signed one",
            good.clone()
                .set("Content-Type", Some("application/json; charset=utf-8")),
            "AuthFailure.SignatureFailure",
        ),
        (
            "body changed after signing",
            Raw {
                body: br#"{"OrderIds":["20261128000000000002"]}"#.to_vec(),
                ..good.clone()
            },
            "AuthFailure.SignatureFailure",
        ),
        (
            "timestamp 10 minutes old",
            Raw::signed_at(&demo_creds(), &h, "PayDeals", body, now() - 600),
            "AuthFailure.SignatureExpire",
        ),
        (
            "timestamp 10 minutes ahead",
            Raw::signed_at(&demo_creds(), &h, "PayDeals", body, now() + 600),
            "AuthFailure.SignatureExpire",
        ),
        (
            "token for an account without one",
            good.clone().set("X-TC-Token", Some("sts")),
            "AuthFailure.TokenFailure",
        ),
        (
            "unknown action",
            Raw::signed(&demo_creds(), &h, "DescribeInstances", body),
            "InvalidAction",
        ),
        (
            "wrong version",
            good.clone().set("X-TC-Version", Some("2017-03-12")),
            "NoSuchVersion",
        ),
        (
            "body not an object",
            Raw::signed(&demo_creds(), &h, "PayDeals", "[1]"),
            "InvalidParameter",
        ),
        (
            "OrderIds not a list",
            Raw::signed(&demo_creds(), &h, "PayDeals", r#"{"OrderIds":"1"}"#),
            "InvalidParameter",
        ),
        (
            "Limit not a number",
            Raw::signed(
                &demo_creds(),
                &h,
                "DescribeDealsByCond",
                r#"{"StartTime":"2026-01-01 00:00:00","EndTime":"2026-01-02 00:00:00","Limit":"9"}"#,
            ),
            "InvalidParameter",
        ),
        (
            "Limit above 1000",
            Raw::signed(
                &demo_creds(),
                &h,
                "DescribeDealsByCond",
                r#"{"StartTime":"2026-01-01 00:00:00","EndTime":"2026-01-02 00:00:00","Limit":1001}"#,
            ),
            "InvalidParameterValue",
        ),
    ];
    let mut request_ids = BTreeSet::new();
    for (what, raw, want) in cases {
        let resp = raw.send(&sb).await;
        assert_eq!(code(&resp), want, "{what}: {resp}");
        let rid = resp["RequestId"].as_str().unwrap().to_string();
        assert!(uuid::Uuid::parse_str(&rid).is_ok(), "{what}: {rid}");
        assert!(request_ids.insert(rid), "RequestIds are fresh");
    }
    assert!(sb.ledger().is_empty());
    let ok = good.send(&sb).await;
    assert_eq!(code(&ok), "", "{ok}");
    assert_eq!(sb.ledger().len(), 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn sts_token_accounts_need_their_token() {
    let mut world = World::demo();
    world.accounts[0].token = Some("sts-token".into());
    let sb = Sandbox::start(SandboxConfig {
        state: world,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let c = client(&sb);
    let req = pay_orders(&["20261128000000000001"]);
    let err = c.pay_deals(&demo_creds(), None, &req).await.unwrap_err();
    assert_eq!(err.code(), "AuthFailure.TokenFailure");
    let bad = Credentials::new(
        "sandbox-secret-id",
        "sandbox-secret-key",
        Some("other".into()),
    );
    let err = c.pay_deals(&bad, None, &req).await.unwrap_err();
    assert_eq!(err.code(), "AuthFailure.TokenFailure");
    let good = Credentials::new(
        "sandbox-secret-id",
        "sandbox-secret-key",
        Some("sts-token".into()),
    );
    c.pay_deals(&good, None, &req).await.unwrap();
    sb.shutdown().await;
}

#[tokio::test]
async fn host_header_with_port_is_what_gets_signed() {
    let sb = start().await;
    let body = r#"{"OrderIds":["20261128000000000001"]}"#;
    // Signed for "localhost:PORT" and sent with exactly that Host over a raw socket.
    let h = format!("localhost:{}", sb.addr().port());
    let raw = Raw::signed(&demo_creds(), &h, "PayDeals", body);
    let mut s = TcpStream::connect(sb.addr()).await.unwrap();
    s.write_all(&raw.to_http()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(
        out.contains("\"OrderIds\":[\"20261128000000000001\"]"),
        "{out}"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn pay_rules_over_http() {
    let sb = start().await;
    let c = client(&sb);
    let creds = demo_creds();
    let code_of = |r: Result<_, CallError>| {
        r.map(|_| String::new())
            .unwrap_or_else(|e| e.code().to_string())
    };
    assert_eq!(
        code_of(
            c.pay_deals(&creds, None, &pay_orders(&["20261128000000000201"]))
                .await
        ),
        "FailedOperation.NeedPayTogether"
    );
    assert_eq!(
        code_of(
            c.pay_deals(
                &creds,
                None,
                &pay_orders(&["20261128000000000201", "20261128000000000202"])
            )
            .await
        ),
        ""
    );
    let mut voucher = pay_orders(&["20261128000000000003"]);
    voucher.voucher_ids = vec!["sandbox-voucher-1".into()];
    assert_eq!(code_of(c.pay_deals(&creds, None, &voucher).await), "");
    assert_eq!(sb.ledger().last().unwrap().voucher, 4500);
    assert_eq!(
        code_of(
            c.pay_deals(&creds, None, &pay_orders(&["20261128000000000301"]))
                .await
        ),
        "FailedOperation.PaySuccDeliverFailed"
    );
    assert_eq!(
        sb.order("20261128000000000301").unwrap().status,
        status::DELIVERY_FAILED
    );
    assert_eq!(
        code_of(c.pay_deals(&creds, None, &pay_orders(&["nope"])).await),
        "InvalidParameterValue"
    );
    let mut both = pay_orders(&["20261128000000000004"]);
    both.big_deal_ids = vec!["20261128000000000100".into()];
    assert_eq!(
        code_of(c.pay_deals(&creds, None, &both).await),
        "InvalidParameter"
    );
    let charged: Vec<String> = sb.ledger().into_iter().map(|c| c.order_id).collect();
    assert_eq!(
        charged,
        [
            "20261128000000000201",
            "20261128000000000202",
            "20261128000000000003",
            "20261128000000000301"
        ]
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn admin_api_steers_the_world() {
    let sb = start().await;
    let c = client(&sb);
    let creds = demo_creds();
    assert_eq!(admin_get(&sb, "health").await["ok"], true);

    // A payment stuck on balance recovers after a top-up.
    let (st, acct) = admin_send(
        &sb,
        "PATCH",
        "accounts/sandbox-secret-id",
        json!({"balance": 100}),
    )
    .await;
    assert_eq!(st, 200, "{acct}");
    assert_eq!(acct["balance"], 100);
    let req = pay_orders(&["20261128000000000002"]);
    let err = c.pay_deals(&creds, None, &req).await.unwrap_err();
    assert_eq!(err.code(), "FailedOperation.BalanceInsufficient");
    let (st, acct) = admin_send(
        &sb,
        "PATCH",
        &format!("accounts/{DEMO_UIN}"),
        json!({"addBalance": 5000}),
    )
    .await;
    assert_eq!((st, acct["balance"].as_i64()), (200, Some(5100)));
    c.pay_deals(&creds, None, &req).await.unwrap();
    assert_eq!(sb.world().account(DEMO_UIN).unwrap().balance, 1700);

    // Flags.
    admin_send(
        &sb,
        "PATCH",
        "accounts/sandbox-secret-id",
        json!({"realNameCertified": false}),
    )
    .await;
    let err = c
        .pay_deals(&creds, None, &pay_orders(&["20261128000000000001"]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "UnauthorizedOperation.NotCertification");
    admin_send(
        &sb,
        "PATCH",
        "accounts/sandbox-secret-id",
        json!({"realNameCertified": true, "camPermission": false}),
    )
    .await;
    let err = c
        .pay_deals(&creds, None, &pay_orders(&["20261128000000000001"]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "UnauthorizedOperation.CamNoAuth");
    admin_send(
        &sb,
        "PATCH",
        "accounts/sandbox-secret-id",
        json!({"camPermission": true}),
    )
    .await;

    // Orders: add, read, patch, list.
    let (st, added) = admin_send(
        &sb,
        "POST",
        "orders",
        json!([{"orderId": "77", "price": 10}, {"orderId": "78", "price": 20, "createTime": "2026-01-01 00:00:00"}]),
    )
    .await;
    assert_eq!(st, 201, "{added}");
    assert_eq!(added[0]["account"], DEMO_UIN);
    assert_eq!(added[0]["resourceIds"][0], "ins-77");
    let (st, _) = admin_send(&sb, "POST", "orders", json!({"orderId": "77", "price": 1})).await;
    assert_eq!(st, 409);
    let order = admin_get(&sb, "orders/78").await;
    assert_eq!(order["createTime"], "2026-01-01 00:00:00");
    let (st, patched) = admin_send(&sb, "PATCH", "orders/78", json!({"status": 4})).await;
    assert_eq!((st, patched["status"].as_i64()), (200, Some(4)));
    let err = c
        .pay_deals(&creds, None, &pay_orders(&["78"]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "FailedOperation.InvalidDeal");
    c.pay_deals(&creds, None, &pay_orders(&["77"]))
        .await
        .unwrap();
    let orders = admin_get(&sb, "orders").await;
    assert_eq!(
        orders.as_array().unwrap().len(),
        World::demo().orders.len() + 2
    );

    // Vouchers.
    let (st, _) = admin_send(
        &sb,
        "POST",
        "vouchers",
        json!({"id": "v2", "account": DEMO_UIN, "amount": 99}),
    )
    .await;
    assert_eq!(st, 201);
    let (st, _) = admin_send(&sb, "PATCH", "vouchers/v2", json!({"valid": false})).await;
    assert_eq!(st, 200);
    let vouchers = admin_get(&sb, "vouchers").await;
    assert_eq!(vouchers[1]["valid"], false);

    // Accounts can be added.
    let (st, _) = admin_send(
        &sb,
        "POST",
        "accounts",
        json!({"uin": "2", "secretId": "id2", "secretKey": "k2", "balance": 0}),
    )
    .await;
    assert_eq!(st, 201);
    let (st, _) = admin_send(
        &sb,
        "POST",
        "accounts",
        json!({"uin": "3", "secretId": "id2", "secretKey": "k3", "balance": 0}),
    )
    .await;
    assert_eq!(st, 409, "duplicate SecretId");
    assert_eq!(admin_get(&sb, "accounts/id2").await["uin"], "2");

    // Ledger, stats, state, settings.
    let ledger = admin_get(&sb, "ledger").await;
    let ids: Vec<&str> = ledger
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["orderId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["20261128000000000002", "77"]);
    assert!(ledger[0]["requestId"].as_str().is_some());
    assert!(ledger[0]["time"].as_str().is_some());
    assert_eq!(ledger[0]["amount"], 3400);
    let stats = admin_get(&sb, "stats").await;
    assert_eq!(stats["actions"]["PayDeals"]["succeeded"], 2);
    assert_eq!(stats["charges"], 2);
    let yaml = reqwest::get(format!("{}/_sandbox/state", sb.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let world = World::from_yaml(&yaml).unwrap();
    assert_eq!(world.orders["77"].status, status::DELIVERED);
    assert_eq!(admin_get(&sb, "settings").await["rateLimit"], 20);
    let (_, s) = admin_send(&sb, "PATCH", "settings", json!({"rateLimit": 0})).await;
    assert_eq!(s["rateLimit"], 0);

    // Reset brings back the initial world.
    let (st, _) = admin_send(&sb, "POST", "reset", Value::Null).await;
    assert_eq!(st, 200);
    assert!(
        admin_get(&sb, "ledger")
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
    let w = sb.world();
    assert_eq!(w.account(DEMO_UIN).unwrap().balance, DEMO_BALANCE);
    assert!(!w.orders.contains_key("77"));
    assert_eq!(w.orders["20261128000000000002"].status, status::UNPAID);
    assert_eq!(admin_get(&sb, "stats").await["charges"], 0);

    // Unknown routes answer 404 JSON.
    let resp = reqwest::get(format!("{}/nowhere", sb.url())).await.unwrap();
    assert_eq!(resp.status(), 404);
    sb.shutdown().await;
}

#[tokio::test]
async fn describe_over_http_filters_and_pages() {
    let mut world = World::demo();
    let mut o = Order::new("old", DEMO_UIN, 5);
    o.create_time = Some("2020-01-01 00:00:00".into());
    world.orders.insert("old".into(), o);
    let sb = Sandbox::start(SandboxConfig {
        state: world,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let c = client(&sb);
    let creds = demo_creds();
    let mut req = describe_all(None);
    req.start_time = "2021-01-01 00:00:00".into();
    req.status = Some(status::UNPAID);
    req.status_set.clear();
    req.limit = 7;
    let mut seen = Vec::new();
    loop {
        let page = c.describe_deals(&creds, None, &req).await.unwrap();
        assert_eq!(page.total_count, 31);
        if page.deals.is_empty() {
            break;
        }
        seen.extend(page.deals.into_iter().map(|d| d.order_id));
        // Offset is a page number (the SDKs: "第多少页，从0开始"), not a count of records.
        req.offset += 1;
    }
    assert_eq!(seen.len(), 31, "five pages of 7, no record twice");
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 31);
    assert!(!seen.contains(&"old".to_string()));
    req.offset = 4;
    let last = c.describe_deals(&creds, None, &req).await.unwrap();
    assert_eq!(last.deals.len(), 3, "page 4 holds records 28 to 30 only");
    assert_eq!(last.deals[0].order_id, seen[28]);
    req.offset = 0;
    req.big_deal_id = Some("20261128000000000100".into());
    let page = c.describe_deals(&creds, None, &req).await.unwrap();
    assert_eq!(page.total_count, 2);
    req.big_deal_id = None;
    req.resource_id = Some("ins-00000002".into());
    let page = c.describe_deals(&creds, None, &req).await.unwrap();
    assert_eq!(page.deals[0].order_id, "20261128000000000002");
    sb.shutdown().await;
}

/// Sends `n` signed PayDeals requests at once over pre-opened connections; returns the error codes
/// and the window that holds every rate-limit decision (from before the first request is written
/// to after the last answer is read).
async fn burst(sb: &Sandbox, n: usize) -> (Vec<String>, Duration) {
    let h = host(sb);
    let mut conns = Vec::new();
    for _ in 0..n {
        conns.push(TcpStream::connect(sb.addr()).await.unwrap());
    }
    // Unknown orders: each request is checked and answered without changing the world.
    let reqs: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            Raw::signed(
                &demo_creds(),
                &h,
                "PayDeals",
                &format!(r#"{{"OrderIds":["x{i}"]}}"#),
            )
            .to_http()
        })
        .collect();
    let gate = Arc::new(tokio::sync::Barrier::new(n));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (mut s, req) in conns.into_iter().zip(reqs) {
        let gate = gate.clone();
        tasks.push(tokio::spawn(async move {
            gate.wait().await;
            s.write_all(&req).await.unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
            let v: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{out}"));
            code(&v["Response"])
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    (codes, started.elapsed())
}

fn refused(codes: &[String]) -> usize {
    codes
        .iter()
        .filter(|c| *c == "RequestLimitExceeded")
        .count()
}

/// Asserts that a burst of `codes` (over `window`) let through at least a full bucket of capacity
/// `rate` and at most the bucket plus what refills at `rate` per second within the window: a loaded
/// machine stretches the window and lets more through, never more than that. Returns how many were
/// refused.
fn assert_within_bucket(codes: &[String], rate: u32, window: Duration) -> usize {
    let limited = refused(codes);
    let passed = codes.len() - limited;
    let most = (f64::from(rate) * (1.0 + window.as_secs_f64())).floor() as usize;
    assert!(
        (rate as usize..=most).contains(&passed),
        "{passed} of {} passed in {window:?} at {rate}/s: {codes:?}",
        codes.len()
    );
    limited
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_refuses_the_excess_of_a_burst() {
    let rate = SandboxConfig::default().rate_limit;
    // A burst of the rate fits the full bucket however it is scheduled: tokens only grow between
    // requests.
    let sb = start().await;
    let (codes, _) = burst(&sb, rate as usize).await;
    assert!(
        codes.iter().all(|c| c == "InvalidParameterValue"),
        "{codes:?}"
    );

    // Twice the rate: at least the bucket's worth passes, at most the bucket plus its refill over
    // the measured window (fresh sandbox, so the bucket starts full).
    let sb2 = start().await;
    let n = 2 * rate as usize;
    let (codes, window) = burst(&sb2, n).await;
    let limited = assert_within_bucket(&codes, rate, window);
    assert!(
        codes
            .iter()
            .all(|c| c == "InvalidParameterValue" || c == "RequestLimitExceeded"),
        "{codes:?}"
    );
    let stats = sb2.stats();
    assert_eq!(stats.actions["PayDeals"].rate_limited as usize, limited);
    assert_eq!(stats.actions["PayDeals"].requests, n as u64);
    // DescribeDealsByCond has its own bucket.
    let c = client(&sb2);
    c.describe_deals(&demo_creds(), None, &describe_all(None))
        .await
        .unwrap();

    // At one request per second the excess is refused even when the burst is spread over seconds.
    let sb3 = Sandbox::start(SandboxConfig {
        rate_limit: 1,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let (codes, window) = burst(&sb3, 40).await;
    assert_within_bucket(&codes, 1, window);
    for sb in [sb, sb2, sb3] {
        sb.shutdown().await;
    }
}

#[tokio::test]
async fn rate_limit_zero_is_off() {
    let sb = Sandbox::start(SandboxConfig {
        rate_limit: 0,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let (codes, _) = burst(&sb, 60).await;
    assert!(
        codes.iter().all(|c| c == "InvalidParameterValue"),
        "{codes:?}"
    );
    sb.shutdown().await;
}
