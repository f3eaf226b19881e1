//! Fault injection end to end: what the project's client makes of each fault, and what the ledger
//! says was charged.

mod sandbox_common;

use std::time::Duration;

use dealpay_operator::sandbox::{
    Fault, FaultRule, Sandbox, SandboxConfig, TlsMode, World, handler::BAD_GATEWAY_HTML,
};
use dealpay_operator::tencent::models::{DescribeDealsRequest, PayDealsRequest, status};
use dealpay_operator::tencent::{CallError, Client, ClientConfig, ErrorClass};
use sandbox_common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn pay(ids: &[&str]) -> PayDealsRequest {
    PayDealsRequest {
        order_ids: ids.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn describe(order_id: &str) -> DescribeDealsRequest {
    DescribeDealsRequest {
        start_time: "2000-01-01 00:00:00".into(),
        end_time: "2099-01-01 00:00:00".into(),
        limit: 10,
        status_set: status::ALL.to_vec(),
        order_id: Some(order_id.into()),
        ..Default::default()
    }
}

async fn start() -> Sandbox {
    Sandbox::start(SandboxConfig::default()).await.unwrap()
}

fn charged(sb: &Sandbox, order: &str) -> usize {
    sb.ledger().iter().filter(|c| c.order_id == order).count()
}

#[tokio::test]
async fn charge_then_drop_is_outcome_unknown_and_charged_once() {
    let sb = start().await;
    sb.add_fault(
        FaultRule::new(Fault::ChargeThenDrop)
            .for_orders(["20261128000000000001"])
            .times(1),
    );
    let c = client(&sb);
    let creds = demo_creds();
    let err = c
        .pay_deals(&creds, None, &pay(&["20261128000000000001"]))
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::OutcomeUnknown(_)), "{err:?}");
    assert_eq!(err.class(), ErrorClass::OutcomeUnknown);
    assert_eq!(charged(&sb, "20261128000000000001"), 1);
    // The operator's recovery path: look the order up, see it delivered, never pay again.
    let found = c
        .describe_deals(&creds, None, &describe("20261128000000000001"))
        .await
        .unwrap();
    assert_eq!(found.deals[0].status, status::DELIVERED);
    let again = c
        .pay_deals(&creds, None, &pay(&["20261128000000000001"]))
        .await
        .unwrap_err();
    assert_eq!(again.code(), "FailedOperation.InvalidDeal");
    assert_eq!(charged(&sb, "20261128000000000001"), 1);
    assert!(sb.world().faults.is_empty(), "one-shot fault consumed");
    assert_eq!(sb.stats().actions["PayDeals"].faults["chargeThenDrop"], 1);
    sb.shutdown().await;
}

async fn raw_bytes_after_request(sb: &Sandbox, order: &str) -> Vec<u8> {
    let raw = Raw::signed(
        &demo_creds(),
        &host(sb),
        "PayDeals",
        &format!(r#"{{"OrderIds":["{order}"]}}"#),
    );
    let mut s = TcpStream::connect(sb.addr()).await.unwrap();
    s.write_all(&raw.to_http()).await.unwrap();
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got))
        .await
        .expect("the sandbox closes the connection");
    // A reset is as good as a close; either way no byte may have arrived.
    if let Err(e) = read {
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
    }
    got
}

#[tokio::test]
async fn charge_then_drop_sends_zero_bytes() {
    let sb = start().await;
    sb.add_fault(FaultRule::new(Fault::ChargeThenDrop).times(1));
    let got = raw_bytes_after_request(&sb, "20261128000000000002").await;
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    assert_eq!(charged(&sb, "20261128000000000002"), 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn drop_without_charge_sends_zero_bytes_over_tls_too() {
    let dir = tempfile::tempdir().unwrap();
    let sb = Sandbox::start(SandboxConfig {
        tls: TlsMode::SelfSigned {
            dir: dir.path().into(),
            extra_sans: vec![],
        },
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    sb.add_fault(FaultRule::new(Fault::Drop).times(1));
    let err = client(&sb)
        .pay_deals(&demo_creds(), None, &pay(&["20261128000000000002"]))
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::OutcomeUnknown(_)), "{err:?}");
    assert!(sb.ledger().is_empty());
    sb.shutdown().await;

    let plain = start().await;
    plain.add_fault(FaultRule::new(Fault::Drop).times(1));
    assert!(
        raw_bytes_after_request(&plain, "20261128000000000002")
            .await
            .is_empty()
    );
    assert!(plain.ledger().is_empty());
    plain.shutdown().await;
}

#[tokio::test]
async fn bad_gateway_is_outcome_unknown_and_charges_nothing() {
    let sb = start().await;
    sb.add_fault(FaultRule::new(Fault::Http502).for_action("PayDeals"));
    let err = client(&sb)
        .pay_deals(&demo_creds(), None, &pay(&["20261128000000000001"]))
        .await
        .unwrap_err();
    match &err {
        CallError::OutcomeUnknown(m) => assert!(m.contains("502"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(sb.ledger().is_empty());
    let raw = Raw::signed(&demo_creds(), &host(&sb), "PayDeals", "{}");
    let resp = reqwest::Client::new()
        .post(format!("{}/", sb.url()))
        .headers(
            raw.headers
                .iter()
                .filter(|(k, _)| k != "Host")
                .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
                .collect(),
        )
        .body(raw.body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    assert_eq!(resp.headers()["content-type"], "text/html");
    assert_eq!(resp.text().await.unwrap(), BAD_GATEWAY_HTML);
    sb.shutdown().await;
}

#[tokio::test]
async fn connection_refused_is_not_sent() {
    let sb = start().await;
    let url = sb.url();
    sb.shutdown().await;
    let c = Client::new(&ClientConfig {
        endpoint: url,
        rate_per_second: 0,
        ..ClientConfig::default()
    })
    .unwrap();
    let err = c
        .pay_deals(&demo_creds(), None, &pay(&["20261128000000000001"]))
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::NotSent(_)), "{err:?}");
}

#[tokio::test]
async fn internal_error_before_and_after_charge() {
    let sb = start().await;
    let c = client(&sb);
    let creds = demo_creds();
    sb.add_fault(FaultRule::new(Fault::InternalError).times(1));
    let err = c
        .pay_deals(&creds, None, &pay(&["20261128000000000001"]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "InternalError");
    assert_eq!(err.class(), ErrorClass::OutcomeUnknown);
    assert!(sb.ledger().is_empty(), "InternalError before charging");

    sb.add_fault(FaultRule::new(Fault::ChargeThenInternalError).times(1));
    let err = c
        .pay_deals(&creds, None, &pay(&["20261128000000000001"]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "InternalError");
    assert_eq!(
        charged(&sb, "20261128000000000001"),
        1,
        "charged, then InternalError"
    );
    assert_eq!(
        sb.order("20261128000000000001").unwrap().status,
        status::DELIVERED
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn after_charge_faults_wait_for_a_charge() {
    let sb = start().await;
    let c = client(&sb);
    sb.update_world(|w| w.accounts[0].balance = 0);
    sb.add_fault(FaultRule::new(Fault::ChargeThenDrop).times(1));
    let err = c
        .pay_deals(&demo_creds(), None, &pay(&["20261128000000000001"]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "FailedOperation.BalanceInsufficient");
    assert_eq!(
        sb.world().faults.len(),
        1,
        "not consumed by a refused payment"
    );
    sb.update_world(|w| w.accounts[0].balance = 10_000);
    let err = c
        .pay_deals(&demo_creds(), None, &pay(&["20261128000000000001"]))
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::OutcomeUnknown(_)));
    assert_eq!(sb.ledger().len(), 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn partial_payment_answers_only_what_was_charged() {
    let sb = start().await;
    let c = client(&sb);
    sb.add_fault(FaultRule::new(Fault::PartialPayment).times(1));
    let ids = [
        "20261128000000001000",
        "20261128000000001001",
        "20261128000000001002",
    ];
    let r = c.pay_deals(&demo_creds(), None, &pay(&ids)).await.unwrap();
    assert_eq!(
        r.order_ids,
        ["20261128000000001000", "20261128000000001001"]
    );
    assert_eq!(sb.ledger().len(), 2);
    assert_eq!(
        sb.order("20261128000000001002").unwrap().status,
        status::UNPAID
    );

    // Naming an order leaves exactly that one unpaid.
    sb.add_fault(
        FaultRule::new(Fault::PartialPayment)
            .for_orders(["20261128000000001003"])
            .times(1),
    );
    let r = c
        .pay_deals(
            &demo_creds(),
            None,
            &pay(&["20261128000000001003", "20261128000000001004"]),
        )
        .await
        .unwrap();
    assert_eq!(r.order_ids, ["20261128000000001004"]);
    assert_eq!(sb.ledger().len(), 3);
    sb.shutdown().await;
}

#[tokio::test]
async fn latency_and_client_timeouts() {
    let sb = start().await;
    let slow = Client::new(&ClientConfig {
        endpoint: sb.url(),
        rate_per_second: 0,
        timeout: Duration::from_millis(300),
        ..ClientConfig::default()
    })
    .unwrap();
    // Sleep after charging: the client gives up, the money has moved.
    sb.add_fault(
        FaultRule::new(Fault::Latency {
            ms: 1500,
            after_charge: true,
        })
        .for_action("PayDeals")
        .times(1),
    );
    let err = slow
        .pay_deals(&demo_creds(), None, &pay(&["20261128000000000002"]))
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::OutcomeUnknown(_)), "{err:?}");
    assert_eq!(charged(&sb, "20261128000000000002"), 1);

    // Plain latency below the timeout just slows the answer.
    sb.add_fault(
        FaultRule::new(Fault::Latency {
            ms: 100,
            after_charge: false,
        })
        .times(1),
    );
    let started = std::time::Instant::now();
    slow.pay_deals(&demo_creds(), None, &pay(&["20261128000000000001"]))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(100));
    sb.shutdown().await;
}

#[tokio::test]
async fn injected_error_codes_and_describe_faults() {
    let sb = start().await;
    let c = client(&sb);
    sb.add_fault(
        FaultRule::new(Fault::Error {
            code: "FailedOperation.PayPriceError".into(),
            message: String::new(),
        })
        .times(1),
    );
    let err = c
        .pay_deals(&demo_creds(), None, &pay(&["20261128000000000001"]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "FailedOperation.PayPriceError");
    assert!(sb.ledger().is_empty());

    // One 502 on DescribeDealsByCond: the client's describe retry gets through.
    sb.add_fault(
        FaultRule::new(Fault::Http502)
            .for_action("DescribeDealsByCond")
            .times(1),
    );
    c.describe_deals(&demo_creds(), None, &describe("20261128000000000001"))
        .await
        .unwrap();
    let stats = sb.stats();
    assert_eq!(stats.actions["DescribeDealsByCond"].requests, 2);
    assert_eq!(stats.actions["DescribeDealsByCond"].faults["http502"], 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn faults_from_the_state_file_and_the_admin_api() {
    let yaml = format!(
        "{}faults:\n- kind: chargeThenInternalError\n  orders: ['20261128000000000100']\n  count: 1\n",
        World::demo().to_yaml()
    );
    let sb = Sandbox::start(SandboxConfig {
        state: World::from_yaml(&yaml).unwrap(),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let c = client(&sb);
    let listed = admin_get(&sb, "faults").await;
    assert_eq!(listed[0]["kind"], "chargeThenInternalError");
    assert_eq!(listed[0]["id"], 1);
    // The rule names the big deal; paying one of its sub-orders matches it.
    let err = c
        .pay_deals(&demo_creds(), None, &pay(&["20261128000000000101"]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "InternalError");
    assert_eq!(sb.ledger().len(), 1);

    let (st, added) = admin_send(
        &sb,
        "POST",
        "faults",
        json!({"kind": "http502", "action": "PayDeals"}),
    )
    .await;
    assert_eq!(st, 201, "{added}");
    let id = added[0]["id"].as_u64().unwrap();
    let err = c
        .pay_deals(&demo_creds(), None, &pay(&["20261128000000000002"]))
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::OutcomeUnknown(_)));
    let (st, _) = admin_send(&sb, "DELETE", &format!("faults/{id}"), json!(null)).await;
    assert_eq!(st, 204);
    let (st, _) = admin_send(&sb, "DELETE", &format!("faults/{id}"), json!(null)).await;
    assert_eq!(st, 404);
    c.pay_deals(&demo_creds(), None, &pay(&["20261128000000000002"]))
        .await
        .unwrap();
    admin_send(
        &sb,
        "POST",
        "faults",
        json!([{"kind": "drop"}, {"kind": "internalError"}]),
    )
    .await;
    assert_eq!(admin_get(&sb, "faults").await.as_array().unwrap().len(), 2);
    let (st, _) = admin_send(&sb, "DELETE", "faults", json!(null)).await;
    assert_eq!(st, 204);
    assert!(
        admin_get(&sb, "faults")
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Reset restores the state file's faults.
    sb.reset();
    assert_eq!(sb.world().faults.len(), 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let sb = start().await;
    sb.add_fault(
        FaultRule::new(Fault::Latency {
            ms: 300,
            after_charge: false,
        })
        .times(1),
    );
    let c = client(&sb);
    let pending = tokio::spawn(async move {
        c.pay_deals(&demo_creds(), None, &pay(&["20261128000000000001"]))
            .await
    });
    // Ask for shutdown once the request is inside the sandbox.
    wait_for("the PayDeals request reached the sandbox", || {
        sb.stats()
            .actions
            .get("PayDeals")
            .is_some_and(|a| a.requests == 1)
    })
    .await;
    let url = sb.url();
    sb.shutdown().await;
    let paid = pending.await.unwrap().unwrap();
    assert_eq!(paid.order_ids, ["20261128000000000001"]);
    // And nothing listens any more.
    let after = Client::new(&ClientConfig {
        endpoint: url,
        rate_per_second: 0,
        ..ClientConfig::default()
    })
    .unwrap()
    .pay_deals(&demo_creds(), None, &pay(&["20261128000000000002"]))
    .await
    .unwrap_err();
    assert!(matches!(after, CallError::NotSent(_)), "{after:?}");
}
