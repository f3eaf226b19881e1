//! Prices on the sandbox's wire: an order can be listed without a price (`RealTotalCost` null, as the
//! API may answer) and carries the API's `Currency`; the admin API changes both, as it changes prices.

mod sandbox_common;

use dealpay_operator::sandbox::{Sandbox, SandboxConfig};
use dealpay_operator::tencent::models::DescribeDealsResponse;
use sandbox_common::*;
use serde_json::json;

const O1: &str = "20261128000000000001";

async fn listed(sb: &Sandbox) -> serde_json::Value {
    let filter = json!({
        "StartTime": "2000-01-01 00:00:00",
        "EndTime": "2099-12-31 23:59:59",
        "Limit": 10,
        "OrderId": O1,
        "StatusSet": [1],
    });
    let answer = call(sb, "DescribeDealsByCond", filter).await;
    assert_eq!(answer["TotalCount"], 1, "{answer}");
    answer
}

#[tokio::test]
async fn an_order_can_lose_its_price_and_change_currency() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let deal = &listed(&sb).await["Deals"][0];
    assert_eq!(
        (deal["RealTotalCost"].as_i64(), deal["Currency"].as_str()),
        (Some(1200), Some("CNY"))
    );

    let (st, o) = admin_send(
        &sb,
        "PATCH",
        &format!("orders/{O1}"),
        json!({"priced": false, "currency": "USD", "price": 1300}),
    )
    .await;
    assert_eq!(
        (st, o["priced"].as_bool(), o["currency"].as_str()),
        (200, Some(false), Some("USD")),
        "{o}"
    );
    let answer = listed(&sb).await;
    let deal = &answer["Deals"][0];
    assert!(deal["RealTotalCost"].is_null(), "{deal}");
    assert_eq!(deal["Currency"], "USD");
    // The client reads a null price as no price, never as zero.
    let parsed: DescribeDealsResponse = serde_json::from_value(answer.clone()).unwrap();
    assert_eq!(parsed.deals[0].real_total_cost, None);
    assert_eq!(parsed.deals[0].currency.as_deref(), Some("USD"));

    // Priced again: the new price shows.
    admin_send(
        &sb,
        "PATCH",
        &format!("orders/{O1}"),
        json!({"priced": true}),
    )
    .await;
    assert_eq!(listed(&sb).await["Deals"][0]["RealTotalCost"], 1300);
    sb.shutdown().await;
}
