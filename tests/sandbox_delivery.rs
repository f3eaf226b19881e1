//! Delivery that takes time (`deliveryDelayMs`): over HTTP, a charged order reads 2 (paid), then 3
//! (delivering), then 4 or 5, and shows resources only once delivered.
//!
//! Phases are asserted only when the measured timing proves which phase the read fell in, so a
//! slow, shared machine cannot make these tests flaky, while a wrong phase still fails them.

mod sandbox_common;

use std::time::{Duration, Instant};

use dealpay_operator::sandbox::{Sandbox, SandboxConfig, World};
use sandbox_common::*;
use serde_json::{Value, json};

async fn start(world: World) -> Sandbox {
    Sandbox::start(SandboxConfig {
        state: world,
        rate_limit: 0,
        ..SandboxConfig::default()
    })
    .await
    .unwrap()
}

/// Status and resource ids of the order's one deal.
fn deal(resp: &Value) -> (i64, Vec<String>) {
    assert_eq!(resp["TotalCount"], 1, "{resp}");
    let d = &resp["Deals"][0];
    let res = d["ResourceId"]
        .as_array()
        .unwrap_or_else(|| panic!("ResourceId must be a list: {resp}"))
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    (d["Status"].as_i64().unwrap(), res)
}

/// Pays `id` and returns the answer plus the instants just before and just after the call.
async fn pay(sb: &Sandbox, id: &str) -> (Value, Instant, Instant) {
    let before = Instant::now();
    let resp = call(sb, "PayDeals", json!({"OrderIds": [id]})).await;
    (resp, before, Instant::now())
}

/// Reads the order; also returns how long after `charged_before` the read ended, an upper bound
/// of the time since the charge.
async fn read(sb: &Sandbox, id: &str, charged_before: Instant) -> ((i64, Vec<String>), Duration) {
    let resp = describe_one(sb, id).await;
    (deal(&resp), charged_before.elapsed())
}

async fn sleep_until(t: Instant) {
    tokio::time::sleep_until(t.into()).await;
}

#[tokio::test]
async fn a_delayed_order_is_paid_then_delivering_then_delivered() {
    let sb = start(World::demo()).await;
    let id = "20261128000000000002";
    let delay = Duration::from_millis(3000);
    let (status, patched) = admin_send(
        &sb,
        "PATCH",
        &format!("orders/{id}"),
        json!({"deliveryDelayMs": 3000}),
    )
    .await;
    assert_eq!(
        (status, patched["deliveryDelayMs"].clone()),
        (200, json!(3000))
    );

    let (resp, before, after) = pay(&sb, id).await;
    assert_eq!(code(&resp), "", "{resp}");
    assert_eq!(resp["OrderIds"], json!([id]));
    assert_eq!(resp["ResourceIds"], json!([]), "nothing is delivered yet");

    let ((st, res), upper) = read(&sb, id, before).await;
    if upper < delay / 2 {
        assert_eq!(
            (st, res.is_empty()),
            (2, true),
            "first half: paid, no resources"
        );
    }
    // Without Status/StatusSet only delivered orders are listed: the paid order is not yet.
    let default_filter = json!({
        "StartTime": "2000-01-01 00:00:00",
        "EndTime": "2099-12-31 23:59:59",
        "Limit": 1000,
        "OrderId": id,
    });
    let listed = call(&sb, "DescribeDealsByCond", default_filter.clone()).await;
    if before.elapsed() < delay {
        assert_eq!(listed["TotalCount"], 0, "{listed}");
    }

    sleep_until(after + delay / 2 + Duration::from_millis(50)).await;
    let ((st, res), upper) = read(&sb, id, before).await;
    if upper < delay {
        assert_eq!((st, res.is_empty()), (3, true), "second half: delivering");
    }
    assert_ne!(
        st, 2,
        "past the first half the order is no longer just paid"
    );

    sleep_until(after + delay + Duration::from_millis(50)).await;
    let ((st, res), _) = read(&sb, id, before).await;
    assert_eq!((st, res), (4, vec!["ins-00000002".to_string()]));
    let listed = call(&sb, "DescribeDealsByCond", default_filter).await;
    assert_eq!(listed["TotalCount"], 1, "{listed}");

    assert_eq!(sb.ledger().len(), 1);
    assert!(sb.ledger()[0].delivered);
    sb.shutdown().await;
}

#[tokio::test]
async fn a_delayed_undeliverable_order_is_answered_success_and_fails_later() {
    let sb = start(World::demo()).await;
    let id = "20261201000000000001";
    let (status, added) = admin_send(
        &sb,
        "POST",
        "orders",
        json!({"orderId": id, "price": 700, "deliverable": false, "deliveryDelayMs": 1000}),
    )
    .await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(added[0]["deliveryDelayMs"], 1000);

    let (resp, before, after) = pay(&sb, id).await;
    assert_eq!(code(&resp), "", "the failure is not known yet: {resp}");
    assert_eq!(resp["OrderIds"], json!([id]));
    assert_eq!(resp["ResourceIds"], json!([]));

    let ((st, res), upper) = read(&sb, id, before).await;
    if upper < Duration::from_millis(500) {
        assert_eq!(st, 2);
    }
    assert!(res.is_empty());
    assert_ne!(st, 4, "an undeliverable order is never delivered");

    sleep_until(after + Duration::from_millis(1050)).await;
    let ((st, _), _) = read(&sb, id, before).await;
    assert_eq!(st, 5, "delivery failed, found by looking up");
    let ledger = admin_get(&sb, "ledger").await;
    assert_eq!(ledger[0]["orderId"], id);
    assert_eq!(ledger[0]["delivered"], false);
    assert_eq!(ledger[0]["amount"], 700);
    sb.shutdown().await;
}

#[tokio::test]
async fn without_a_delay_delivery_is_immediate_as_before() {
    let sb = start(World::demo()).await;
    let resp = call(
        &sb,
        "PayDeals",
        json!({"OrderIds": ["20261128000000000301"]}),
    )
    .await;
    assert_eq!(code(&resp), "FailedOperation.PaySuccDeliverFailed");
    assert_eq!(deal(&describe_one(&sb, "20261128000000000301").await).0, 5);
    let resp = call(
        &sb,
        "PayDeals",
        json!({"OrderIds": ["20261128000000000001"]}),
    )
    .await;
    assert_eq!(resp["ResourceIds"], json!(["ins-00000001"]));
    let (st, res) = deal(&describe_one(&sb, "20261128000000000001").await);
    assert_eq!((st, res), (4, vec!["ins-00000001".to_string()]));
    sb.shutdown().await;
}

#[tokio::test]
async fn state_file_key_and_admin_status_end_a_delivery() {
    let yaml = "accounts:\n- {uin: '1', secretId: sandbox-secret-id, secretKey: sandbox-secret-key, balance: 100000}\n\
                orders:\n- {orderId: '42', price: 10, deliveryDelayMs: 60000}\n";
    let sb = start(World::from_yaml(yaml).unwrap()).await;
    assert_eq!(admin_get(&sb, "orders/42").await["deliveryDelayMs"], 60000);

    let resp = call(&sb, "PayDeals", json!({"OrderIds": ["42"]})).await;
    assert_eq!(code(&resp), "", "{resp}");
    let (st, res) = deal(&describe_one(&sb, "42").await);
    assert_eq!(
        (st, res.is_empty()),
        (2, true),
        "a minute-long delivery has just begun"
    );
    let order = admin_get(&sb, "orders/42").await;
    assert!(order["chargedAtMs"].as_i64().unwrap() > 0, "{order}");
    let dump = reqwest::get(format!("{}/_sandbox/state", sb.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(dump.contains("deliveryDelayMs: 60000"), "{dump}");
    assert!(dump.contains("chargedAtMs: "), "{dump}");

    // A shorter delay applies to the delivery under way.
    admin_send(&sb, "PATCH", "orders/42", json!({"deliveryDelayMs": 1})).await;
    assert_eq!(deal(&describe_one(&sb, "42").await).0, 4);

    // An explicit status takes effect at once, even with a long delay.
    admin_send(&sb, "PATCH", "orders/42", json!({"deliveryDelayMs": 60000})).await;
    assert_eq!(deal(&describe_one(&sb, "42").await).0, 2);
    let (_, patched) = admin_send(&sb, "PATCH", "orders/42", json!({"status": 4})).await;
    assert!(patched.get("chargedAtMs").is_none(), "{patched}");
    assert_eq!(
        deal(&describe_one(&sb, "42").await),
        (4, vec!["ins-42".to_string()])
    );
    sb.shutdown().await;
}
