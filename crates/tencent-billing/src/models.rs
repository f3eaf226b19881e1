//! Request and response bodies of PayDeals and DescribeDealsByCond, and the response envelope.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use super::error::{ApiError, CallError};

/// Action name of the payment call.
pub const PAY_DEALS: &str = "PayDeals";
/// Action name of the order lookup.
pub const DESCRIBE_DEALS_BY_COND: &str = "DescribeDealsByCond";
/// API version of the Billing service.
pub const API_VERSION: &str = "2018-07-09";
/// Largest page DescribeDealsByCond accepts.
pub const MAX_DEALS_LIMIT: u32 = 1000;

fn is_zero(v: &u8) -> bool {
    *v == 0
}

/// PayDeals request; empty fields are omitted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PayDealsRequest {
    /// Sub-order numbers; exactly one of this and `big_deal_ids` is set.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub order_ids: Vec<String>,
    /// 1 to use vouchers automatically, 0 not to.
    #[serde(default)]
    pub auto_voucher: u8,
    /// At most one voucher id.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub voucher_ids: Vec<String>,
    /// Order numbers (big deals).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub big_deal_ids: Vec<String>,
    /// 0 self pay, 3 group agent, 4 reseller product-level order.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub agent_pay: u8,
    /// Passed through as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cps_uin: Option<String>,
}

/// Resource ids as PayDeals has answered them: a flat list, or per order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ResourceIds {
    /// Every resource id, in answer order.
    pub all: Vec<String>,
    /// Per order, when the API answered the object form.
    pub by_order: BTreeMap<String, Vec<String>>,
}

impl<'de> Deserialize<'de> for ResourceIds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            List(Vec<String>),
            Map(BTreeMap<String, Option<Vec<String>>>),
            Null(()),
        }
        Ok(match Wire::deserialize(d)? {
            Wire::List(all) => ResourceIds {
                all,
                by_order: BTreeMap::new(),
            },
            Wire::Map(m) => {
                let by_order: BTreeMap<_, _> = m
                    .into_iter()
                    .map(|(k, v)| (k, v.unwrap_or_default()))
                    .collect();
                ResourceIds {
                    all: by_order.values().flatten().cloned().collect(),
                    by_order,
                }
            }
            Wire::Null(()) => ResourceIds::default(),
        })
    }
}

/// PayDeals success response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PayDealsResponse {
    /// Sub-orders paid.
    #[serde(default, deserialize_with = "null_as_default")]
    pub order_ids: Vec<String>,
    /// Resources created.
    #[serde(default)]
    pub resource_ids: ResourceIds,
    /// Orders (big deals) paid.
    #[serde(default, deserialize_with = "null_as_default")]
    pub big_deal_ids: Vec<String>,
    /// RequestId of the call.
    #[serde(default)]
    pub request_id: String,
}

/// Order status codes of DescribeDealsByCond.
pub mod status {
    /// Not paid yet.
    pub const UNPAID: i64 = 1;
    /// Paid.
    pub const PAID: i64 = 2;
    /// Being delivered.
    pub const DELIVERING: i64 = 3;
    /// Delivered.
    pub const DELIVERED: i64 = 4;
    /// Paid, delivery failed.
    pub const DELIVERY_FAILED: i64 = 5;
    /// Refunded.
    pub const REFUNDED: i64 = 6;
    /// Cancelled.
    pub const CANCELLED: i64 = 7;
    /// Expired.
    pub const EXPIRED: i64 = 8;
    /// Invalid.
    pub const INVALID: i64 = 9;
    /// Product invalid.
    pub const PRODUCT_INVALID: i64 = 10;
    /// Reseller refused to pay.
    pub const RESELLER_REFUSED: i64 = 11;
    /// Payment in progress.
    pub const PAYING: i64 = 12;
    /// Refund in progress.
    pub const REFUNDING: i64 = 13;
    /// Awaiting confirmation.
    pub const AWAITING_CONFIRMATION: i64 = 30;
    /// Every status, for `StatusSet` (the API's default returns only DELIVERED).
    pub const ALL: [i64; 14] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 30];

    /// English name of a status code.
    pub fn name(code: i64) -> &'static str {
        match code {
            UNPAID => "unpaid",
            PAID => "paid",
            DELIVERING => "delivering",
            DELIVERED => "delivered",
            DELIVERY_FAILED => "delivery failed",
            REFUNDED => "refunded",
            CANCELLED => "cancelled",
            EXPIRED => "expired",
            INVALID => "invalid",
            PRODUCT_INVALID => "product invalid",
            RESELLER_REFUSED => "reseller payment refused",
            PAYING => "paying",
            REFUNDING => "refunding",
            AWAITING_CONFIRMATION => "awaiting confirmation",
            _ => "unknown status",
        }
    }
}

/// DescribeDealsByCond request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeDealsRequest {
    /// Window start, `YYYY-MM-DD HH:MM:SS`.
    pub start_time: String,
    /// Window end, `YYYY-MM-DD HH:MM:SS`.
    pub end_time: String,
    /// Page size, at most 1000.
    pub limit: u32,
    /// Page number from 0, as the SDK documents it (some read it as a record offset: the operator
    /// sends 0 and never needs a second page).
    #[serde(default)]
    pub offset: u32,
    /// One status to filter by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<i64>,
    /// Statuses to filter by; without it (and `status`) the API returns only delivered orders.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub status_set: Vec<i64>,
    /// Sub-order filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// Order (big deal) filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub big_deal_id: Option<String>,
    /// Resource filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
}

/// One order as DescribeDealsByCond lists it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Deal {
    /// Sub-order number.
    #[serde(default)]
    pub order_id: String,
    /// Order (big deal) number.
    #[serde(default, deserialize_with = "null_as_default")]
    pub big_deal_id: String,
    /// Status code (see [`status`]).
    #[serde(default)]
    pub status: i64,
    /// Amount paid in cents; the API has sent it as a number and as a string.
    #[serde(default, deserialize_with = "number_or_string")]
    pub real_total_cost: Option<f64>,
    /// Resources of the order.
    #[serde(default, deserialize_with = "null_as_default")]
    pub resource_id: Vec<String>,
    /// Currency of the amounts (the Billing API's `Currency`, e.g. `CNY`); may be absent or null.
    #[serde(default)]
    pub currency: Option<String>,
    /// Payer uin.
    #[serde(default, deserialize_with = "null_as_default")]
    pub payer: String,
    /// Creation time as the API formats it.
    #[serde(default, deserialize_with = "null_as_default")]
    pub create_time: String,
}

/// DescribeDealsByCond response.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeDealsResponse {
    /// One page of orders.
    #[serde(default, deserialize_with = "null_as_default")]
    pub deals: Vec<Deal>,
    /// Orders matching in all pages.
    #[serde(default)]
    pub total_count: u64,
    /// RequestId of the call.
    #[serde(default)]
    pub request_id: String,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn number_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Wire {
        N(f64),
        S(String),
        Null(()),
    }
    Ok(match Wire::deserialize(d)? {
        Wire::N(n) => Some(n),
        Wire::S(s) => s.trim().parse().ok(),
        Wire::Null(()) => None,
    })
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Response")]
    response: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct WireError {
    #[serde(rename = "Code", default)]
    code: String,
    #[serde(rename = "Message", default)]
    message: String,
}

/// Decodes a `{"Response": ...}` body into `T`, or the typed API error it carries.
pub fn parse_response<T: DeserializeOwned>(body: &[u8]) -> Result<T, CallError> {
    let env: Envelope = serde_json::from_slice(body)
        .map_err(|e| CallError::OutcomeUnknown(format!("unreadable response body: {e}")))?;
    let request_id = env
        .response
        .get("RequestId")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    if let Some(err) = env.response.get("Error") {
        let err: WireError = serde_json::from_value(err.clone())
            .map_err(|e| CallError::OutcomeUnknown(format!("unreadable error envelope: {e}")))?;
        return Err(CallError::Api(ApiError {
            code: err.code,
            message: err.message,
            request_id,
        }));
    }
    serde_json::from_value(serde_json::Value::Object(env.response))
        .map_err(|e| CallError::OutcomeUnknown(format!("unexpected response shape: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorClass;

    #[test]
    fn pay_deals_request_omits_empty_fields() {
        let r = PayDealsRequest {
            order_ids: vec!["1".into()],
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"OrderIds":["1"],"AutoVoucher":0}"#
        );
        let r = PayDealsRequest {
            big_deal_ids: vec!["b".into()],
            auto_voucher: 1,
            voucher_ids: vec!["v".into()],
            agent_pay: 3,
            cps_uin: Some("42".into()),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"AutoVoucher":1,"VoucherIds":["v"],"BigDealIds":["b"],"AgentPay":3,"CpsUin":"42"}"#
        );
    }

    #[test]
    fn pay_deals_success_is_parsed() {
        let body = br#"{"Response":{"OrderIds":["o1"],"BigDealIds":["b1"],"ResourceIds":["ins-abc","ins-xxx"],"RequestId":"eac6","Extra":1}}"#;
        let r: PayDealsResponse = parse_response(body).unwrap();
        assert_eq!(r.order_ids, ["o1"]);
        assert_eq!(r.big_deal_ids, ["b1"]);
        assert_eq!(r.resource_ids.all, ["ins-abc", "ins-xxx"]);
        assert_eq!(r.request_id, "eac6");
    }

    #[test]
    fn resource_ids_object_form_and_nulls() {
        let body = br#"{"Response":{"OrderIds":null,"BigDealIds":null,"ResourceIds":{"o1":["a","b"],"o2":null},"RequestId":"r"}}"#;
        let r: PayDealsResponse = parse_response(body).unwrap();
        assert!(r.order_ids.is_empty());
        assert_eq!(r.resource_ids.all, ["a", "b"]);
        assert_eq!(r.resource_ids.by_order["o1"], ["a", "b"]);
        assert!(r.resource_ids.by_order["o2"].is_empty());
        let body = br#"{"Response":{"ResourceIds":null,"RequestId":"r"}}"#;
        let r: PayDealsResponse = parse_response(body).unwrap();
        assert!(r.resource_ids.all.is_empty());
    }

    #[test]
    fn error_envelope_becomes_typed_error() {
        let body = br#"{"Response":{"Error":{"Code":"FailedOperation.BalanceInsufficient","Message":"no money"},"RequestId":"rid-1"}}"#;
        let err = parse_response::<PayDealsResponse>(body).unwrap_err();
        match &err {
            CallError::Api(e) => {
                assert_eq!(e.code, "FailedOperation.BalanceInsufficient");
                assert_eq!(e.message, "no money");
                assert_eq!(e.request_id, "rid-1");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(err.class(), ErrorClass::NeedsHuman);
    }

    #[test]
    fn garbage_bodies_are_outcome_unknown() {
        for body in [
            &b""[..],
            b"<html>502 Bad Gateway</html>",
            b"{\"Response\":{\"OrderIds\":[\"o1\"",
            b"{}",
            b"[]",
            b"{\"Response\":{\"OrderIds\":7}}",
            b"{\"Response\":{\"Error\":\"oops\"}}",
        ] {
            let err = parse_response::<PayDealsResponse>(body).unwrap_err();
            assert_eq!(
                err.class(),
                ErrorClass::OutcomeUnknown,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn describe_deals_tolerates_variants() {
        let body = br#"{"Response":{"Deals":[
            {"OrderId":"o1","BigDealId":"b1","Status":4,"RealTotalCost":1200,"ResourceId":["ins-1"],"Payer":"100","CreateTime":"2026-01-01 00:00:00","Unknown":true},
            {"OrderId":"o2","BigDealId":null,"Status":1,"RealTotalCost":"12.5","ResourceId":null}
        ],"TotalCount":2,"RequestId":"r"}}"#;
        let r: DescribeDealsResponse = parse_response(body).unwrap();
        assert_eq!(r.total_count, 2);
        assert_eq!(r.deals[0].real_total_cost, Some(1200.0));
        assert_eq!(r.deals[0].resource_id, ["ins-1"]);
        assert_eq!(r.deals[1].real_total_cost, Some(12.5));
        assert!(r.deals[1].resource_id.is_empty());
        let r: DescribeDealsResponse =
            parse_response(br#"{"Response":{"Deals":null,"RequestId":"r"}}"#).unwrap();
        assert!(r.deals.is_empty());
    }

    #[test]
    fn describe_request_serialises_status_set() {
        let r = DescribeDealsRequest {
            start_time: "2026-01-01 00:00:00".into(),
            end_time: "2026-01-02 00:00:00".into(),
            limit: 100,
            status_set: status::ALL.to_vec(),
            order_id: Some("o1".into()),
            ..Default::default()
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["StatusSet"].as_array().unwrap().len(), 14);
        assert_eq!(v["OrderId"], "o1");
        assert!(v.get("Status").is_none());
    }
}
