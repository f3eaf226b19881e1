//! The driver's lookup against the sandbox over HTTP: what a dry run of sub-order ids asks for (the
//! sub-orders of their big deals) comes back once each, and a big deal listed in more than one page is
//! an error, never a guess.

use dealpay_operator::api::IdKind;
use dealpay_operator::driver::perform;
use dealpay_operator::engine::{Action, Event, LookupAnswer};
use dealpay_operator::sandbox::{
    DEMO_SECRET_ID, DEMO_SECRET_KEY, DEMO_UIN, Order, Sandbox, SandboxConfig,
};
use dealpay_operator::tencent::{CallError, Client, ClientConfig, Credentials};

const A: &str = "20261128000000000401";
const B: &str = "20261128000000000402";
const BIG: &str = "20261128000000000400";

async fn look_up(
    sb: &Sandbox,
    ids: &[&str],
    list_big_deals: bool,
) -> Result<LookupAnswer, CallError> {
    let client = Client::new(&ClientConfig {
        endpoint: sb.url(),
        rate_per_second: 0,
        ..Default::default()
    })
    .unwrap();
    let creds = Credentials::new(DEMO_SECRET_ID, DEMO_SECRET_KEY, None);
    let action = Action::LookUp {
        kind: IdKind::Order,
        ids: ids.iter().map(|s| s.to_string()).collect(),
        start_time: "2000-01-01 00:00:00".into(),
        end_time: "2099-12-31 23:59:59".into(),
        list_big_deals,
        since: dealpay_operator::api::Time::new(jiff::Timestamp::now()),
        reason: dealpay_operator::api::LookupReason::Quote,
    };
    match perform(&client, &creds, None, &action).await {
        Some(Event::LookedUp { asked, result }) => {
            assert_eq!(asked.ids, ids, "the answer names the lookup it answers");
            result
        }
        other => panic!("a lookup answer was expected: {other:?}"),
    }
}

fn order_ids(answer: &LookupAnswer) -> Vec<&str> {
    answer.deals.iter().map(|d| d.order_id.as_str()).collect()
}

#[tokio::test]
async fn a_big_deals_sub_orders_are_listed_once_each_when_asked() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let plain = look_up(&sb, &[A], false).await.unwrap();
    assert_eq!(order_ids(&plain), [A]);
    let listed = look_up(&sb, &[A], true).await.unwrap();
    assert_eq!(order_ids(&listed), [A, B]);
    assert!(listed.deals.iter().all(|d| d.big_deal_id == BIG));
    // Both ids given: still each deal once, and one query for the big deal they share.
    let both = look_up(&sb, &[B, A], true).await.unwrap();
    assert_eq!(order_ids(&both), [B, A]);
    // An order of no big deal asks for nothing more.
    let alone = look_up(&sb, &["20261128000000000001"], true).await.unwrap();
    assert_eq!(order_ids(&alone), ["20261128000000000001"]);
    sb.shutdown().await;
}

#[tokio::test]
async fn a_big_deal_larger_than_one_page_is_an_error_not_a_guess() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    sb.update_world(|w| {
        for i in 0..1000 {
            let mut o = Order::new(format!("20261128000000{i:06}9"), DEMO_UIN, 1);
            o.big_deal_id = Some(BIG.into());
            o.create_time = w.orders[A].create_time.clone();
            w.orders.insert(o.order_id.clone(), o);
        }
    });
    let err = look_up(&sb, &[A], true).await.unwrap_err();
    assert!(matches!(err, CallError::Incomplete(_)), "{err:?}");
    assert!(err.message().contains(BIG), "{}", err.message());
    // Without the big deal listing the same lookup answers.
    assert_eq!(order_ids(&look_up(&sb, &[A], false).await.unwrap()), [A]);
    sb.shutdown().await;
}
