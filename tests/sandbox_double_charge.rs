//! Double-charge mode over HTTP: orders already charged are charged again, and the ledger and
//! `/_sandbox/stats` make every double payment visible with one GET.

mod sandbox_common;

use dealpay_operator::sandbox::{Sandbox, SandboxConfig, world::DEMO_BALANCE};
use sandbox_common::*;
use serde_json::{Value, json};

async fn start(double_charge: bool) -> Sandbox {
    Sandbox::start(SandboxConfig {
        rate_limit: 0,
        double_charge,
        ..SandboxConfig::default()
    })
    .await
    .unwrap()
}

async fn pay(sb: &Sandbox, id: &str) -> Value {
    call(sb, "PayDeals", json!({"OrderIds": [id]})).await
}

async fn balance(sb: &Sandbox) -> i64 {
    admin_get(sb, "accounts/sandbox-secret-id").await["balance"]
        .as_i64()
        .unwrap()
}

fn duplicates(ledger: &Value) -> Vec<bool> {
    ledger
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c["duplicate"]
                .as_bool()
                .expect("every entry says duplicate")
        })
        .collect()
}

#[tokio::test]
async fn strict_mode_refuses_a_second_payment_and_counts_no_duplicates() {
    let sb = start(false).await;
    assert_eq!(admin_get(&sb, "settings").await["doubleCharge"], false);
    assert_eq!(code(&pay(&sb, "20261128000000000001").await), "");
    assert_eq!(
        code(&pay(&sb, "20261128000000000001").await),
        "FailedOperation.InvalidDeal"
    );
    let stats = admin_get(&sb, "stats").await;
    assert_eq!(
        (stats["charges"].clone(), stats["duplicateCharges"].clone()),
        (json!(1), json!(0))
    );
    assert_eq!(duplicates(&admin_get(&sb, "ledger").await), [false]);
    sb.shutdown().await;
}

#[tokio::test]
async fn double_charge_mode_charges_again_and_the_ledger_says_so() {
    let sb = start(false).await;
    let (status, settings) =
        admin_send(&sb, "PATCH", "settings", json!({"doubleCharge": true})).await;
    assert_eq!(status, 200);
    assert_eq!(settings, json!({"rateLimit": 0, "doubleCharge": true}));

    let id = "20261128000000000001";
    let first = pay(&sb, id).await;
    let second = pay(&sb, id).await;
    assert_eq!(
        (code(&first), code(&second)),
        (String::new(), String::new()),
        "{second}"
    );
    assert_eq!(second["OrderIds"], json!([id]));
    assert_ne!(first["RequestId"], second["RequestId"]);
    assert_eq!(balance(&sb).await, DEMO_BALANCE - 2 * 1200, "charged twice");

    // A delivery failure (status 5) is charged again too.
    assert_eq!(
        code(&pay(&sb, "20261128000000000301").await),
        "FailedOperation.PaySuccDeliverFailed"
    );
    assert_eq!(
        code(&pay(&sb, "20261128000000000301").await),
        "FailedOperation.PaySuccDeliverFailed"
    );

    let ledger = admin_get(&sb, "ledger").await;
    assert_eq!(duplicates(&ledger), [false, true, false, true]);
    assert_eq!(ledger[1]["requestId"], second["RequestId"]);
    let stats = admin_get(&sb, "stats").await;
    assert_eq!(stats["charges"], 4);
    assert_eq!(stats["duplicateCharges"], 2);

    // Orders that were never charged, e.g. cancelled ones, are still refused.
    admin_send(
        &sb,
        "PATCH",
        "orders/20261128000000000002",
        json!({"status": 7}),
    )
    .await;
    assert_eq!(
        code(&pay(&sb, "20261128000000000002").await),
        "FailedOperation.InvalidDeal"
    );

    // Reset clears the ledger and the count; the mode stays, like the rate setting.
    admin_send(&sb, "POST", "reset", json!({})).await;
    assert_eq!(admin_get(&sb, "stats").await["duplicateCharges"], 0);
    assert_eq!(admin_get(&sb, "settings").await["doubleCharge"], true);
    assert_eq!(code(&pay(&sb, id).await), "");
    assert_eq!(code(&pay(&sb, id).await), "");
    assert_eq!(duplicates(&admin_get(&sb, "ledger").await), [false, true]);

    let (_, settings) = admin_send(&sb, "PATCH", "settings", json!({"doubleCharge": false})).await;
    assert_eq!(settings["doubleCharge"], false);
    assert_eq!(code(&pay(&sb, id).await), "FailedOperation.InvalidDeal");
    sb.shutdown().await;
}

#[tokio::test]
async fn the_config_field_turns_it_on_in_process() {
    let sb = start(true).await;
    assert_eq!(admin_get(&sb, "settings").await["doubleCharge"], true);
    let deal = "20261128000000000100";
    for _ in 0..2 {
        let r = call(&sb, "PayDeals", json!({"BigDealIds": [deal]})).await;
        assert_eq!(code(&r), "", "{r}");
    }
    assert_eq!(sb.stats().duplicate_charges, 2, "both sub-orders, twice");
    assert_eq!(sb.ledger().iter().filter(|c| c.duplicate).count(), 2);
    sb.set_double_charge(false);
    let r = call(&sb, "PayDeals", json!({"BigDealIds": [deal]})).await;
    assert_eq!(code(&r), "FailedOperation.InvalidDeal");
    sb.shutdown().await;
}

#[tokio::test]
async fn a_payment_after_an_admin_reset_of_the_status_is_a_duplicate_even_in_strict_mode() {
    // The count is about the ledger, not the mode: whatever let an order be charged twice shows.
    let sb = start(false).await;
    let id = "20261128000000000004";
    assert_eq!(code(&pay(&sb, id).await), "");
    admin_send(&sb, "PATCH", &format!("orders/{id}"), json!({"status": 1})).await;
    assert_eq!(code(&pay(&sb, id).await), "");
    assert_eq!(admin_get(&sb, "stats").await["duplicateCharges"], 1);
    sb.shutdown().await;
}
