//! The Tencent API surface: error answers, the response envelope and request body checks.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use tencent_billing::models::{DescribeDealsRequest, PayDealsRequest};

/// An error answer: `{"Response":{"Error":{"Code","Message"},"RequestId"}}` with HTTP 200.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFailure {
    /// Tencent error code.
    pub code: String,
    /// Human-readable message.
    pub message: String,
}

impl ApiFailure {
    /// An error answer with this code and message.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_string(),
            message: message.into(),
        }
    }
}

/// `{"Response": {..fields, "RequestId": id}}` for a success.
pub fn success_body<T: Serialize>(fields: &T, request_id: &str) -> Vec<u8> {
    let mut response = match serde_json::to_value(fields) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    response.insert("RequestId".into(), Value::String(request_id.into()));
    envelope(response)
}

/// `{"Response": {"Error": {...}, "RequestId": id}}` for a failure.
pub fn error_body(f: &ApiFailure, request_id: &str) -> Vec<u8> {
    let mut response = Map::new();
    response.insert(
        "Error".into(),
        serde_json::json!({"Code": f.code, "Message": f.message}),
    );
    response.insert("RequestId".into(), Value::String(request_id.into()));
    envelope(response)
}

fn envelope(response: Map<String, Value>) -> Vec<u8> {
    let mut outer = Map::new();
    outer.insert("Response".into(), Value::Object(response));
    serde_json::to_vec(&Value::Object(outer)).unwrap_or_default()
}

const PAY_FIELDS: &[&str] = &[
    "OrderIds",
    "AutoVoucher",
    "VoucherIds",
    "BigDealIds",
    "AgentPay",
    "CpsUin",
];
const DESCRIBE_FIELDS: &[&str] = &[
    "StartTime",
    "EndTime",
    "Limit",
    "Offset",
    "Status",
    "StatusSet",
    "OrderId",
    "BigDealId",
    "ResourceId",
];
const DESCRIBE_REQUIRED: &[&str] = &["StartTime", "EndTime", "Limit"];

/// Decodes a PayDeals body: a JSON object of known fields with the documented types.
pub fn parse_pay_deals(body: &[u8]) -> Result<PayDealsRequest, ApiFailure> {
    parse_object(body, PAY_FIELDS, &[])
}

/// Decodes a DescribeDealsByCond body; StartTime, EndTime and Limit are required.
pub fn parse_describe_deals(body: &[u8]) -> Result<DescribeDealsRequest, ApiFailure> {
    parse_object(body, DESCRIBE_FIELDS, DESCRIBE_REQUIRED)
}

fn parse_object<T: DeserializeOwned>(
    body: &[u8],
    known: &[&str],
    required: &[&str],
) -> Result<T, ApiFailure> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiFailure::new(
            "InvalidParameter",
            format!("the request body is not valid JSON: {e}"),
        )
    })?;
    let Value::Object(map) = &value else {
        return Err(ApiFailure::new(
            "InvalidParameter",
            "the request body must be a JSON object",
        ));
    };
    if let Some(unknown) = map.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(ApiFailure::new(
            "UnknownParameter",
            format!("The parameter `{unknown}` is not recognized."),
        ));
    }
    if let Some(missing) = required
        .iter()
        .find(|k| map.get(**k).is_none_or(Value::is_null))
    {
        return Err(ApiFailure::new(
            "MissingParameter",
            format!("The request is missing a required parameter `{missing}`."),
        ));
    }
    serde_json::from_value(value).map_err(|e| {
        ApiFailure::new(
            "InvalidParameter",
            format!("A parameter has the wrong type: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_have_the_tencent_shape() {
        let ok: Value = serde_json::from_slice(&success_body(
            &serde_json::json!({"OrderIds": ["1"]}),
            "rid",
        ))
        .unwrap();
        assert_eq!(ok["Response"]["OrderIds"][0], "1");
        assert_eq!(ok["Response"]["RequestId"], "rid");
        let err: Value =
            serde_json::from_slice(&error_body(&ApiFailure::new("InvalidAction", "no"), "r2"))
                .unwrap();
        assert_eq!(err["Response"]["Error"]["Code"], "InvalidAction");
        assert_eq!(err["Response"]["Error"]["Message"], "no");
        assert_eq!(err["Response"]["RequestId"], "r2");
    }

    #[test]
    fn pay_deals_body_types_are_checked() {
        let r = parse_pay_deals(br#"{"OrderIds":["1","2"],"AutoVoucher":1,"AgentPay":3}"#).unwrap();
        assert_eq!(r.order_ids, ["1", "2"]);
        assert_eq!(r.auto_voucher, 1);
        assert_eq!(r.agent_pay, 3);
        for (body, code) in [
            (&b"not json"[..], "InvalidParameter"),
            (b"[]", "InvalidParameter"),
            (b"\"x\"", "InvalidParameter"),
            (br#"{"OrderIds":"1"}"#, "InvalidParameter"),
            (br#"{"OrderIds":[1]}"#, "InvalidParameter"),
            (br#"{"AutoVoucher":"1"}"#, "InvalidParameter"),
            (br#"{"AgentPay":-1}"#, "InvalidParameter"),
            (br#"{"CpsUin":5}"#, "InvalidParameter"),
            (br#"{"OrderIdz":["1"]}"#, "UnknownParameter"),
        ] {
            assert_eq!(
                parse_pay_deals(body).unwrap_err().code,
                code,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn describe_body_requires_window_and_limit() {
        let r = parse_describe_deals(
            br#"{"StartTime":"2026-01-01 00:00:00","EndTime":"2026-01-02 00:00:00","Limit":10,"StatusSet":[1,4]}"#,
        )
        .unwrap();
        assert_eq!(r.limit, 10);
        assert_eq!(r.status_set, [1, 4]);
        for (body, code) in [
            (
                &br#"{"StartTime":"a","EndTime":"b"}"#[..],
                "MissingParameter",
            ),
            (
                br#"{"StartTime":"a","EndTime":"b","Limit":null}"#,
                "MissingParameter",
            ),
            (
                br#"{"StartTime":"a","EndTime":"b","Limit":"10"}"#,
                "InvalidParameter",
            ),
            (
                br#"{"StartTime":1,"EndTime":"b","Limit":10}"#,
                "InvalidParameter",
            ),
            (
                br#"{"StartTime":"a","EndTime":"b","Limit":10,"Status":"4"}"#,
                "InvalidParameter",
            ),
            (
                br#"{"StartTime":"a","EndTime":"b","Limit":10,"Foo":1}"#,
                "UnknownParameter",
            ),
        ] {
            assert_eq!(
                parse_describe_deals(body).unwrap_err().code,
                code,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
