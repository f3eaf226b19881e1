//! DescribeDealsByCond semantics as a pure function over the world, including the real API's status trap.

use serde::Serialize;

use super::api::ApiFailure;
use super::delivery::unix_ms;
use super::world::{Order, World, parse_time};
use tencent_billing::models::{DescribeDealsRequest, MAX_DEALS_LIMIT, status};

/// One order as the sandbox lists it (amounts are integer cents).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DealOut {
    /// Sub-order number.
    pub order_id: String,
    /// Big deal number, null for plain orders.
    pub big_deal_id: Option<String>,
    pub status: i64,
    /// Status in words.
    pub status_name: String,
    /// Order price in cents (what PayDeals charges, cash plus voucher); null for an unpriced order.
    pub real_total_cost: Option<i64>,
    /// Original price in cents (the sandbox has no discounts, so equal to `RealTotalCost`).
    pub total_cost: i64,
    /// Cents paid by vouchers.
    pub voucher_decline: i64,
    /// Currency of the amounts (`CNY` unless the world says otherwise).
    pub currency: String,
    /// Resources of the order.
    pub resource_id: Vec<String>,
    /// Uin of the paying account.
    pub payer: String,
    /// Uin of the creator (the payer in the sandbox).
    pub creator: String,
    /// `YYYY-MM-DD HH:MM:SS`, UTC+8.
    pub create_time: String,
    /// When paid, if paid.
    pub pay_time: Option<String>,
    /// Always `prePay`.
    pub pay_mode: String,
    /// Always `purchase`.
    pub action: String,
    /// Always `p_cvm`.
    pub product_code: String,
    /// Always `Cloud Virtual Machine`.
    pub product_name: String,
    /// Always 0.
    pub project_id: i64,
}

/// The DescribeDealsByCond success body (`RequestId` is added by the envelope).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeAnswer {
    /// One page.
    pub deals: Vec<DealOut>,
    /// Matches in all pages.
    pub total_count: u64,
}

fn deal_out(o: &Order, now_ms: i64) -> DealOut {
    let st = o.status_at(now_ms);
    DealOut {
        order_id: o.order_id.clone(),
        big_deal_id: o.big_deal_id.clone(),
        status: st,
        status_name: status::name(st).to_string(),
        real_total_cost: o.priced.then_some(o.price),
        total_cost: o.price,
        voucher_decline: o.voucher_decline,
        currency: o.currency.clone(),
        resource_id: o.resource_ids_at(now_ms).to_vec(),
        payer: o.account.clone(),
        creator: o.account.clone(),
        create_time: o.create_time.clone().unwrap_or_default(),
        pay_time: o.pay_time.clone(),
        pay_mode: "prePay".into(),
        action: "purchase".into(),
        product_code: "p_cvm".into(),
        product_name: "Cloud Virtual Machine".into(),
        project_id: 0,
    }
}

/// [`describe_deals_at`] the current time.
pub fn describe_deals(
    world: &World,
    account: &str,
    req: &DescribeDealsRequest,
) -> Result<DescribeAnswer, ApiFailure> {
    describe_deals_at(world, account, req, jiff::Timestamp::now())
}

/// Lists `account`'s orders created in [StartTime, EndTime] that pass every filter, newest first,
/// as they are at `now` (an order being delivered shows status 2 or 3 and no resources).
///
/// Without `Status` and `StatusSet` only delivered (4) orders match, as in the real API;
/// with both, an order must satisfy both. `Offset` is a page number, as the SDKs document it.
pub fn describe_deals_at(
    world: &World,
    account: &str,
    req: &DescribeDealsRequest,
    now: jiff::Timestamp,
) -> Result<DescribeAnswer, ApiFailure> {
    let now_ms = unix_ms(now);
    let (Some(start), Some(end)) = (parse_time(&req.start_time), parse_time(&req.end_time)) else {
        return Err(ApiFailure::new(
            "InvalidParameterValue",
            "StartTime and EndTime must be formatted as YYYY-MM-DD HH:MM:SS.",
        ));
    };
    if end < start {
        return Err(ApiFailure::new(
            "InvalidParameterValue",
            "EndTime must not be earlier than StartTime.",
        ));
    }
    if req.limit > MAX_DEALS_LIMIT {
        return Err(ApiFailure::new(
            "InvalidParameterValue",
            format!("Limit must be at most {MAX_DEALS_LIMIT}."),
        ));
    }
    let wants_status = |s: i64| match (req.status, req.status_set.is_empty()) {
        (None, true) => s == status::DELIVERED,
        (Some(one), true) => s == one,
        (None, false) => req.status_set.contains(&s),
        (Some(one), false) => s == one && req.status_set.contains(&s),
    };
    let in_window = |o: &Order| {
        o.create_time
            .as_deref()
            .is_some_and(|t| t >= req.start_time.as_str() && t <= req.end_time.as_str())
    };
    let matches = |o: &&Order| {
        o.account == account
            && wants_status(o.status_at(now_ms))
            && in_window(o)
            && req
                .big_deal_id
                .as_ref()
                .is_none_or(|d| o.big_deal_id.as_ref() == Some(d))
            && req
                .resource_id
                .as_ref()
                .is_none_or(|r| o.resource_ids_at(now_ms).contains(r))
    };
    let mut found: Vec<&Order> = match &req.order_id {
        Some(id) => world.orders.get(id).into_iter().filter(matches).collect(),
        None => world.orders.values().filter(matches).collect(),
    };
    // Newest first like the console; the order id breaks ties so pages are stable.
    found.sort_by(|a, b| {
        b.create_time
            .cmp(&a.create_time)
            .then_with(|| a.order_id.cmp(&b.order_id))
    });
    let total_count = found.len() as u64;
    // The SDKs document Offset as "第多少页，从0开始" (page number from 0), not a record count.
    let skip = u64::from(req.offset) * u64::from(req.limit);
    let deals = found
        .into_iter()
        .skip(usize::try_from(skip).unwrap_or(usize::MAX))
        .take(req.limit as usize)
        .map(|o| deal_out(o, now_ms))
        .collect();
    Ok(DescribeAnswer { deals, total_count })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pay::{PayContext, pay_deals};
    use crate::world::{DEMO_LOAD_ORDERS, DEMO_SECRET_ID, DEMO_UIN};
    use tencent_billing::models::PayDealsRequest;

    fn demo() -> World {
        World::demo_normalized()
    }

    fn now() -> jiff::Timestamp {
        "2026-11-28T02:00:00Z".parse().unwrap()
    }

    fn req() -> DescribeDealsRequest {
        DescribeDealsRequest {
            start_time: "2026-11-01 00:00:00".into(),
            end_time: "2026-12-01 00:00:00".into(),
            limit: 1000,
            ..Default::default()
        }
    }

    fn pay(w: &mut World, id: &str) {
        let req = PayDealsRequest {
            order_ids: vec![id.into()],
            ..Default::default()
        };
        let ctx = PayContext {
            account: DEMO_UIN,
            secret_id: DEMO_SECRET_ID,
            request_id: "r",
            time: "2026-11-28 09:00:00",
            now_ms: unix_ms(now()),
        };
        pay_deals(w, &req, &ctx).unwrap();
    }

    fn ids(a: &DescribeAnswer) -> Vec<&str> {
        a.deals.iter().map(|d| d.order_id.as_str()).collect()
    }

    #[test]
    fn without_status_only_delivered_orders_are_listed() {
        let mut w = demo();
        assert_eq!(
            describe_deals_at(&w, DEMO_UIN, &req(), now())
                .unwrap()
                .total_count,
            0
        );
        pay(&mut w, "20261128000000000001");
        let a = describe_deals_at(&w, DEMO_UIN, &req(), now()).unwrap();
        assert_eq!(ids(&a), ["20261128000000000001"]);
        let d = &a.deals[0];
        assert_eq!(d.status, 4);
        assert_eq!(d.real_total_cost, Some(1200));
        assert_eq!(d.currency, "CNY");
        assert_eq!(d.resource_id, ["ins-00000001"]);
        assert_eq!(d.payer, DEMO_UIN);
        assert_eq!(d.create_time, "2026-11-27 08:00:00");
        assert_eq!(d.pay_time.as_deref(), Some("2026-11-28 09:00:00"));
    }

    #[test]
    fn status_and_status_set_filter() {
        let mut w = demo();
        pay(&mut w, "20261128000000000001");
        let mut r = req();
        r.status = Some(status::UNPAID);
        let unpaid = describe_deals_at(&w, DEMO_UIN, &r, now()).unwrap();
        assert_eq!(unpaid.total_count, 10 + DEMO_LOAD_ORDERS);
        r.status = None;
        r.status_set = status::ALL.to_vec();
        assert_eq!(
            describe_deals_at(&w, DEMO_UIN, &r, now())
                .unwrap()
                .total_count,
            11 + DEMO_LOAD_ORDERS
        );
        r.status_set = vec![status::DELIVERED, status::DELIVERY_FAILED];
        assert_eq!(
            describe_deals_at(&w, DEMO_UIN, &r, now())
                .unwrap()
                .total_count,
            1
        );
        r.status = Some(status::UNPAID);
        assert_eq!(
            describe_deals_at(&w, DEMO_UIN, &r, now())
                .unwrap()
                .total_count,
            0
        );
    }

    #[test]
    fn id_filters() {
        let w = demo();
        let mut r = req();
        r.status_set = status::ALL.to_vec();
        r.order_id = Some("20261128000000000002".into());
        assert_eq!(
            ids(&describe_deals_at(&w, DEMO_UIN, &r, now()).unwrap()),
            ["20261128000000000002"]
        );
        r.order_id = Some("missing".into());
        assert_eq!(
            describe_deals_at(&w, DEMO_UIN, &r, now())
                .unwrap()
                .total_count,
            0
        );
        r.order_id = None;
        r.big_deal_id = Some("20261128000000000100".into());
        assert_eq!(
            ids(&describe_deals_at(&w, DEMO_UIN, &r, now()).unwrap()),
            ["20261128000000000101", "20261128000000000102"]
        );
        r.big_deal_id = Some("20261128000000000400".into());
        assert_eq!(
            ids(&describe_deals_at(&w, DEMO_UIN, &r, now()).unwrap()),
            ["20261128000000000401", "20261128000000000402"]
        );
        r.big_deal_id = None;
        r.resource_id = Some("ins-00000301".into());
        assert_eq!(
            ids(&describe_deals_at(&w, DEMO_UIN, &r, now()).unwrap()),
            ["20261128000000000301"]
        );
    }

    #[test]
    fn window_is_inclusive_on_create_time() {
        let mut w = demo();
        w.orders
            .get_mut("20261128000000000001")
            .unwrap()
            .create_time = Some("2026-11-28 10:00:00".into());
        let mut r = req();
        r.status = Some(status::UNPAID);
        r.start_time = "2026-11-28 10:00:00".into();
        r.end_time = "2026-11-28 10:00:00".into();
        assert_eq!(
            ids(&describe_deals_at(&w, DEMO_UIN, &r, now()).unwrap()),
            ["20261128000000000001"]
        );
        r.start_time = "2026-11-28 10:00:01".into();
        r.end_time = "2026-11-29 00:00:00".into();
        assert_eq!(
            describe_deals_at(&w, DEMO_UIN, &r, now())
                .unwrap()
                .total_count,
            0
        );
    }

    #[test]
    fn newest_first_and_pages() {
        let mut w = demo();
        w.orders
            .get_mut("20261128000000001019")
            .unwrap()
            .create_time = Some("2026-11-28 00:00:00".into());
        let mut r = req();
        r.status = Some(status::UNPAID);
        r.limit = 5;
        let first = describe_deals_at(&w, DEMO_UIN, &r, now()).unwrap();
        assert_eq!(first.deals.len(), 5);
        assert_eq!(first.total_count, 11 + DEMO_LOAD_ORDERS);
        assert_eq!(first.deals[0].order_id, "20261128000000001019");
        assert_eq!(first.deals[1].order_id, "20261128000000000001");
        let mut all = Vec::new();
        for page_no in 0.. {
            r.offset = page_no;
            let page = describe_deals_at(&w, DEMO_UIN, &r, now()).unwrap();
            assert_eq!(page.total_count, first.total_count);
            if page.deals.is_empty() {
                break;
            }
            all.extend(page.deals.into_iter().map(|d| d.order_id));
        }
        let distinct: std::collections::BTreeSet<_> = all.iter().collect();
        assert_eq!(all.len() as u64, first.total_count, "pages do not overlap");
        assert_eq!(distinct.len(), all.len());
        r.offset = 1;
        let second = describe_deals_at(&w, DEMO_UIN, &r, now()).unwrap();
        assert_eq!(
            second.deals[0].order_id, all[5],
            "Offset 1 is the second page"
        );
        r.limit = 0;
        assert!(
            describe_deals_at(&w, DEMO_UIN, &r, now())
                .unwrap()
                .deals
                .is_empty()
        );
    }

    #[test]
    fn delivering_orders_read_paid_then_delivering_without_resources() {
        let mut w = demo();
        let id = "20261128000000000002";
        w.orders.get_mut(id).unwrap().delivery_delay_ms = 60_000;
        pay(&mut w, id);
        let mut r = req();
        r.order_id = Some(id.into());
        assert_eq!(
            describe_deals_at(&w, DEMO_UIN, &r, now())
                .unwrap()
                .total_count,
            0
        );
        r.status_set = status::ALL.to_vec();
        let at = |secs: i64| {
            let a = describe_deals_at(
                &w,
                DEMO_UIN,
                &r,
                now() + jiff::SignedDuration::from_secs(secs),
            );
            let d = a.unwrap().deals.remove(0);
            (d.status, d.resource_id)
        };
        assert_eq!(at(0), (status::PAID, vec![]));
        assert_eq!(at(30), (status::DELIVERING, vec![]));
        assert_eq!(
            at(60),
            (status::DELIVERED, vec!["ins-00000002".to_string()])
        );
        r.status_set.clear();
        r.order_id = None;
        r.resource_id = Some("ins-00000002".into());
        assert_eq!(
            describe_deals_at(&w, DEMO_UIN, &r, now())
                .unwrap()
                .total_count,
            0
        );
    }

    #[test]
    fn bad_parameters() {
        let w = demo();
        let mut r = req();
        r.limit = 1001;
        assert_eq!(
            describe_deals_at(&w, DEMO_UIN, &r, now()).unwrap_err().code,
            "InvalidParameterValue"
        );
        for (s, e) in [
            ("2026-11-01", "2026-12-01 00:00:00"),
            ("2026-11-01 00:00:00", "tomorrow"),
            ("2026-12-01 00:00:00", "2026-11-01 00:00:00"),
        ] {
            let mut r = req();
            r.start_time = s.into();
            r.end_time = e.into();
            assert_eq!(
                describe_deals_at(&w, DEMO_UIN, &r, now()).unwrap_err().code,
                "InvalidParameterValue"
            );
        }
    }

    #[test]
    fn only_the_callers_orders() {
        let mut w = demo();
        let mut r = req();
        r.status = Some(status::UNPAID);
        w.orders.values_mut().for_each(|o| o.account = "2".into());
        assert_eq!(
            describe_deals_at(&w, DEMO_UIN, &r, now())
                .unwrap()
                .total_count,
            0
        );
    }

    #[test]
    fn cost_serialises_as_integer_cents() {
        let w = demo();
        let mut r = req();
        r.order_id = Some("20261128000000000002".into());
        r.status = Some(1);
        let v = serde_json::to_value(describe_deals_at(&w, DEMO_UIN, &r, now()).unwrap()).unwrap();
        assert_eq!(v["Deals"][0]["RealTotalCost"], serde_json::json!(3400));
        assert!(v["Deals"][0]["RealTotalCost"].is_i64());
        assert_eq!(v["TotalCount"], 1);
        assert!(v["Deals"][0]["BigDealId"].is_null());
    }
}
