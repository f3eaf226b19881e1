//! The bodies of the fuzz targets, shared by the cargo-fuzz binaries (`fuzz/fuzz_targets/*.rs`) and
//! the stable smoke test (`tests/fuzz_smoke.rs`, which includes this file with `#[path]`).
//!
//! Every function takes arbitrary bytes and panics only when a property is broken:
//!
//! - [`parse_response`]: the client's response envelope handling (`tencent::models::parse_response`)
//!   never panics; `Response.Error` always wins over success fields and becomes `CallError::Api` with
//!   the envelope's `RequestId`; `ResourceIds` in either shape (list or per-order map) keeps `all` equal
//!   to the flattened map; a parsed response re-rendered on the wire parses back equal; and what the
//!   sandbox's envelope writers produce (`sandbox::api::{error_body, success_body}`) parses back to
//!   exactly the code, message, fields and RequestId that went in.
//! - [`verify_request`]: first byte even — arbitrary header values and body go through
//!   `sign::parse_authorization` and `sandbox::auth::authenticate` (no panic; a parsed header
//!   re-formatted parses back equal; success only with a signature the shared signer recomputes).
//!   First byte odd — a request signed by `tencent::client::request_headers` (`sign.rs`) for a key
//!   pair built from the input always verifies, and one single-byte substitution, insertion or
//!   deletion in any part the sandbox reads (Authorization, Host, Content-Type, X-TC-Timestamp,
//!   X-TC-Token, X-TC-Content-SHA256, body) fails, unless the change is invisible to the parser
//!   (whitespace the Authorization parser trims, a timestamp that parses to the same integer,
//!   the case of `UNSIGNED-PAYLOAD`, or the body when it is declared unsigned).
//! - [`sandbox_body`]: the sandbox's request body checks (`sandbox::api::parse_pay_deals`,
//!   `parse_describe_deals`) never panic and answer only the documented codes; an accepted body
//!   serialised again is accepted and equal; the pure actions (`sandbox::pay::plan`,
//!   `sandbox::describe::describe_deals`) run on the demo world without panicking, and a
//!   DescribeDealsByCond answer read back by the client lists the same orders.

use std::sync::OnceLock;

use dealpay_operator::api::Reason;
use dealpay_operator::sandbox::api::{self, ApiFailure};
use dealpay_operator::sandbox::auth::{self, AuthInput, UNSIGNED_PAYLOAD};
use dealpay_operator::sandbox::world::{DEMO_UIN, World};
use dealpay_operator::sandbox::{describe, pay};
use dealpay_operator::tencent::client::request_headers;
use dealpay_operator::tencent::credentials::Credentials;
use dealpay_operator::tencent::error::{CallError, classify};
use dealpay_operator::tencent::models::{
    DescribeDealsResponse, PAY_DEALS, PayDealsResponse, parse_response as parse,
};
use dealpay_operator::tencent::sign::{
    ALGORITHM, ParsedAuthorization, SIGNED_HEADERS, SignInput, parse_authorization, scope_date,
    sign,
};
use serde_json::{Map, Value, json};

/// The sandbox clock every target uses (the same instant as the unit tests of `sandbox::auth`).
pub const NOW: i64 = 1_795_000_000;

/// A fuzz target body.
pub type Target = fn(&[u8]);

/// Every target by name, as `fuzz/corpus/<name>/` and `cargo fuzz run <name>` know them.
pub const TARGETS: &[(&str, Target)] = &[
    ("parse_response", parse_response),
    ("verify_request", verify_request),
    ("sandbox_body", sandbox_body),
];

fn demo_world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(World::demo)
}

/// The demo world plus an STS account, as in the unit tests of `sandbox::auth`.
fn auth_world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(World::demo_with_sts)
}

/// Reads structured values off the front of the input; past its end every read yields zeros.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }

    /// A string of up to `max` bytes drawn from `alphabet`.
    fn word(&mut self, alphabet: &[u8], max: u8) -> String {
        let n = usize::from(self.u8() % max.max(1));
        self.take(n)
            .iter()
            .map(|b| char::from(alphabet[usize::from(*b) % alphabet.len()]))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// parse_response

fn call_error_is_sane(e: &CallError) {
    let _ = (e.class(), e.code(), e.to_string(), format!("{e:?}"));
    if let CallError::Api(a) = e {
        let _ = (classify(&a.code), Reason::from_code(&a.code), a.to_string());
    }
}

/// The object the envelope parser reads as `Response` (serde also accepts the sequence form `[{..}]`).
fn response_object(v: &Value) -> Option<&Map<String, Value>> {
    match v {
        Value::Object(m) => m.get("Response")?.as_object(),
        Value::Array(a) if a.len() == 1 => a[0].as_object(),
        _ => None,
    }
}

/// The checks every result of `parse_response` must pass against the raw body.
fn check_envelope<T>(body: &[u8], result: &Result<T, CallError>) {
    if let Err(e) = result {
        call_error_is_sane(e);
    }
    let envelope_unreadable = matches!(result, Err(CallError::OutcomeUnknown(m)) if m.starts_with("unreadable response body"));
    if envelope_unreadable {
        return;
    }
    let value: Value = serde_json::from_slice(body).expect("a readable envelope is valid JSON");
    let response = response_object(&value).expect("a readable envelope has a Response object");
    let request_id = response
        .get("RequestId")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match (response.get("Error"), result) {
        (Some(_), Ok(_)) => panic!("Response.Error present but parsed as a success"),
        (None, Err(CallError::Api(e))) => panic!("no Response.Error but an API error: {e:?}"),
        (Some(err), _) => {
            let field = |k: &str| match err.as_object().map(|o| o.get(k)) {
                Some(None) => Some(""),
                Some(Some(Value::String(s))) => Some(s.as_str()),
                _ => None,
            };
            if let (Some(code), Some(message)) = (field("Code"), field("Message")) {
                let Err(CallError::Api(e)) = result else {
                    panic!("well-formed Response.Error not turned into an API error");
                };
                assert_eq!(e.code, code);
                assert_eq!(e.message, message);
                assert_eq!(e.request_id, request_id);
            }
        }
        (None, _) => {}
    }
}

/// A PayDeals answer as the API would send it: `ResourceIds` as a list, or per order when it came so.
fn pay_wire(p: &PayDealsResponse) -> Vec<u8> {
    let resource_ids = if p.resource_ids.by_order.is_empty() {
        json!(p.resource_ids.all)
    } else {
        json!(p.resource_ids.by_order)
    };
    let v = json!({"Response": {
        "OrderIds": p.order_ids,
        "ResourceIds": resource_ids,
        "BigDealIds": p.big_deal_ids,
        "RequestId": p.request_id,
    }});
    serde_json::to_vec(&v).expect("serialisable")
}

fn check_pay_success(body: &[u8], p: &PayDealsResponse) {
    let ids = &p.resource_ids;
    if !ids.by_order.is_empty() {
        let flat: Vec<String> = ids.by_order.values().flatten().cloned().collect();
        assert_eq!(ids.all, flat, "ResourceIds.all is not the flattened map");
    }
    let value: Value = serde_json::from_slice(body).expect("parsed, so JSON");
    let response = response_object(&value).expect("parsed, so it has a Response");
    if let Some(Value::Array(list)) = response.get("ResourceIds") {
        assert!(ids.by_order.is_empty());
        assert_eq!(ids.all.len(), list.len());
    }
    let again: PayDealsResponse =
        parse(&pay_wire(p)).expect("a re-rendered PayDeals answer parses");
    assert_eq!(&again, p, "PayDeals answer changed through the wire");
}

/// Equal, or (for amounts) within one unit in the last place: serde_json is built without
/// `float_roundtrip`, so its float parser is not always correctly rounded (see docs/fuzzing.md).
fn cost_eq(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => {
            x == y || (x.to_bits().abs_diff(y.to_bits()) <= 1 && x.signum() == y.signum())
        }
        (x, y) => x.is_none() && y.is_none(),
    }
}

fn check_describe_success(d: &DescribeDealsResponse) {
    // A RealTotalCost given as a string is parsed with `str::parse::<f64>`, which also accepts
    // "NaN" and "inf": such a value cannot be written back as JSON (see docs/fuzzing.md).
    if d.deals
        .iter()
        .any(|x| x.real_total_cost.is_some_and(|c| !c.is_finite()))
    {
        return;
    }
    let mut response = match serde_json::to_value(d).expect("serialisable") {
        Value::Object(m) => m,
        other => panic!("DescribeDealsResponse serialised as {other}"),
    };
    response.insert("RequestId".into(), Value::String(d.request_id.clone()));
    let body = serde_json::to_vec(&json!({ "Response": response })).expect("serialisable");
    let again: DescribeDealsResponse = parse(&body).expect("a re-serialised answer parses");
    assert_eq!(again.total_count, d.total_count);
    assert_eq!(again.request_id, d.request_id);
    assert_eq!(again.deals.len(), d.deals.len());
    for (a, b) in again.deals.iter().zip(&d.deals) {
        assert!(
            cost_eq(a.real_total_cost, b.real_total_cost),
            "RealTotalCost {:?} came back as {:?}",
            b.real_total_cost,
            a.real_total_cost
        );
        let (mut a, mut b) = (a.clone(), b.clone());
        a.real_total_cost = None;
        b.real_total_cost = None;
        assert_eq!(a, b, "a Deal changed through serialise → parse");
    }
}

/// The sandbox's envelopes, built from strings taken from the input, read back by the client.
fn check_sandbox_envelopes(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '|');
    let code = parts.next().unwrap_or_default();
    let message = parts.next().unwrap_or_default();
    let request_id = parts.next().unwrap_or_default();

    let body = api::error_body(&ApiFailure::new(code, message), request_id);
    for result in [
        parse::<PayDealsResponse>(&body).map(|_| ()),
        parse::<DescribeDealsResponse>(&body).map(|_| ()),
    ] {
        match result {
            Err(CallError::Api(e)) => {
                assert_eq!(
                    (e.code.as_str(), e.message.as_str(), e.request_id.as_str()),
                    (code, message, request_id)
                );
                call_error_is_sane(&CallError::Api(e));
            }
            other => panic!("sandbox error envelope read as {other:?}"),
        }
    }

    let split = |s: &str| -> Vec<String> {
        s.split(',')
            .filter(|x| !x.is_empty())
            .map(String::from)
            .collect()
    };
    let fields = json!({
        "OrderIds": split(code),
        "ResourceIds": split(message),
        "BigDealIds": split(request_id),
    });
    let body = api::success_body(&fields, request_id);
    let p: PayDealsResponse = parse(&body).expect("the sandbox's PayDeals answer parses");
    assert_eq!(p.order_ids, split(code));
    assert_eq!(p.resource_ids.all, split(message));
    assert!(p.resource_ids.by_order.is_empty());
    assert_eq!(p.big_deal_ids, split(request_id));
    assert_eq!(p.request_id, request_id);
}

/// Target `parse_response`: the bytes are a response body.
pub fn parse_response(data: &[u8]) {
    let pay = parse::<PayDealsResponse>(data);
    check_envelope(data, &pay);
    if let Ok(p) = &pay {
        check_pay_success(data, p);
    }
    let describe = parse::<DescribeDealsResponse>(data);
    check_envelope(data, &describe);
    if let Ok(d) = &describe {
        check_describe_success(d);
    }
    let raw = parse::<Value>(data);
    check_envelope(data, &raw);
    if let Ok(v) = &raw {
        let value: Value = serde_json::from_slice(data).expect("parsed, so JSON");
        assert_eq!(
            Some(v),
            response_object(&value)
                .map(|m| Value::Object(m.clone()))
                .as_ref()
        );
    }
    check_sandbox_envelopes(data);
}

// ---------------------------------------------------------------------------------------------
// verify_request

fn utf8(b: &[u8]) -> Option<&str> {
    std::str::from_utf8(b).ok()
}

/// The canonical spelling of a parsed Authorization header.
fn format_authorization(p: &ParsedAuthorization) -> String {
    format!(
        "{ALGORITHM} Credential={}/{}/{}/tc3_request, SignedHeaders={}, Signature={}",
        p.secret_id, p.date, p.service, p.signed_headers, p.signature
    )
}

fn check_parsed_authorization(raw: &str) -> Option<ParsedAuthorization> {
    let p = parse_authorization(raw)?;
    assert!(!p.secret_id.is_empty());
    assert_eq!(
        parse_authorization(&format_authorization(&p)).as_ref(),
        Some(&p),
        "re-formatted Authorization parses differently"
    );
    Some(p)
}

/// Arbitrary headers: no panic, and success only with a signature the signer recomputes.
fn verify_arbitrary(data: &[u8]) {
    let mut fields = data.splitn(7, |b| *b == b'\n');
    let mut next = || fields.next().and_then(utf8);
    let authorization = next();
    let host = next();
    let content_type = next();
    let timestamp = next();
    let token = next();
    let content_sha256 = next();
    let body = data.splitn(7, |b| *b == b'\n').nth(6).unwrap_or_default();
    let parsed = authorization.and_then(check_parsed_authorization);
    let input = AuthInput {
        authorization,
        host,
        content_type,
        timestamp,
        token,
        content_sha256,
        body,
    };
    let world = auth_world();
    match auth::authenticate(world, &input, NOW) {
        Ok(account) => {
            let parsed = parsed.expect("authenticated without a parsable Authorization");
            assert_eq!(parsed.secret_id, account.secret_id);
            let ts: i64 = timestamp.unwrap().trim().parse().unwrap();
            let signed_body = match content_sha256 {
                Some(v) if v.eq_ignore_ascii_case(UNSIGNED_PAYLOAD) => UNSIGNED_PAYLOAD.as_bytes(),
                _ => body,
            };
            let creds = Credentials::new(&account.secret_id, &account.secret_key, None);
            let expected = sign(
                &creds,
                &SignInput {
                    service: auth::SERVICE,
                    host: host.unwrap(),
                    content_type: content_type.unwrap(),
                    timestamp: ts,
                    body: signed_body,
                },
            );
            assert_eq!(expected.signature, parsed.signature);
        }
        Err(f) => assert!(!f.code.is_empty()),
    }
}

const ID_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_/";
const HOST_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789.-:[]";

/// One part of the request the sandbox reads, as bytes; `None` when absent.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Part {
    Authorization,
    Host,
    ContentType,
    Timestamp,
    Token,
    ContentSha256,
    Body,
}

const PARTS: [Part; 7] = [
    Part::Authorization,
    Part::Host,
    Part::ContentType,
    Part::Timestamp,
    Part::Token,
    Part::ContentSha256,
    Part::Body,
];

/// A signed request: sign.rs output plus what was signed, and whether verification must pass.
fn verify_signed(data: &[u8]) {
    let mut r = Reader(data);
    let flags = r.u8();
    let secret_id = {
        let w = r.word(ID_CHARS, 40);
        if w.is_empty() { "AKID".to_string() } else { w }
    };
    let key_len = usize::from(r.u8() % 48);
    let secret_key = String::from_utf8_lossy(r.take(key_len)).into_owned();
    let token = (flags & 1 != 0)
        .then(|| r.word(ID_CHARS, 32))
        .filter(|t| !t.is_empty());
    let unsigned = flags & 2 != 0;
    let host = match flags >> 2 & 3 {
        0 => "127.0.0.1:8080".to_string(),
        1 => "billing.intl.tencentcloudapi.com".to_string(),
        _ => r.word(HOST_CHARS, 40),
    };
    let content_type = match flags >> 4 & 3 {
        0 => "application/json".to_string(),
        1 => "application/json; charset=utf-8".to_string(),
        _ => {
            let n = usize::from(r.u8() % 40);
            String::from_utf8_lossy(r.take(n)).into_owned()
        }
    };
    let skew = i64::from(r.u16() % 601) - 300;
    let ts = NOW + skew;
    let mutate = flags & 64 != 0;
    let (part_pick, pos, byte, kind) = (r.u8(), r.u16(), r.u8(), r.u8() % 3);
    let body = r.0;

    let mut account = auth_world().accounts[0].clone();
    account.uin = "fuzz".into();
    account.secret_id = secret_id.clone();
    account.secret_key = secret_key.clone();
    account.token = token.clone();
    let world = World {
        accounts: vec![account],
        ..World::default()
    };

    let creds = Credentials::new(&secret_id, &secret_key, token.clone());
    let signed_body: &[u8] = if unsigned {
        UNSIGNED_PAYLOAD.as_bytes()
    } else {
        body
    };
    let sign_with = |content_type: &str| {
        sign(
            &creds,
            &SignInput {
                service: "billing",
                host: &host,
                content_type,
                timestamp: ts,
                body: signed_body,
            },
        )
    };
    // The client's header set (what `Client` sends) carries sign.rs's signature.
    let headers = request_headers(&creds, &host, PAY_DEALS, None, ts, signed_body);
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| *k == n)
            .map(|(_, v)| v.as_bytes().to_vec())
    };
    let client_content_type = get("Content-Type").expect("Content-Type is always sent");
    let client_authorization = get("Authorization").expect("Authorization is always sent");
    assert_eq!(
        client_authorization,
        sign_with(utf8(&client_content_type).unwrap())
            .authorization
            .as_bytes()
    );
    assert_eq!(get("X-TC-Timestamp"), Some(ts.to_string().into_bytes()));
    assert_eq!(
        get("X-TC-Token"),
        token.as_ref().map(|t| t.as_bytes().to_vec())
    );

    // The same request with the content type chosen above, signed by sign.rs directly.
    let sig = sign_with(&content_type);
    let original = parse_authorization(&sig.authorization).expect("a signed Authorization parses");
    assert_eq!(
        original,
        ParsedAuthorization {
            secret_id: secret_id.clone(),
            date: scope_date(ts),
            service: "billing".into(),
            signed_headers: SIGNED_HEADERS.into(),
            signature: sig.signature.clone(),
        }
    );

    let verify = |values: &[Option<Vec<u8>>]| {
        let s = |i: usize| values[i].as_deref().and_then(utf8);
        let input = AuthInput {
            authorization: s(0),
            host: s(1),
            content_type: s(2),
            timestamp: s(3),
            token: s(4),
            content_sha256: s(5),
            body: values[6].as_deref().unwrap_or_default(),
        };
        auth::authenticate(&world, &input, NOW)
            .map(|a| a.uin.clone())
            .map_err(|f| f.code)
    };
    let mut values: Vec<Option<Vec<u8>>> = vec![
        Some(client_authorization),
        Some(host.as_bytes().to_vec()),
        Some(client_content_type),
        get("X-TC-Timestamp"),
        get("X-TC-Token"),
        unsigned.then(|| UNSIGNED_PAYLOAD.as_bytes().to_vec()),
        Some(body.to_vec()),
    ];
    let ok = Ok("fuzz".to_string());
    assert_eq!(
        verify(&values),
        ok,
        "the client's signed request does not verify (host {host:?}, ts {ts}, unsigned {unsigned})"
    );
    values[0] = Some(sig.authorization.clone().into_bytes());
    values[2] = Some(content_type.as_bytes().to_vec());
    assert_eq!(
        verify(&values),
        ok,
        "a request signed by sign.rs does not verify (content type {content_type:?})"
    );
    if !mutate {
        return;
    }

    // One single-byte change in one part.
    let part = PARTS[usize::from(part_pick) % PARTS.len()];
    let idx = PARTS.iter().position(|p| *p == part).unwrap();
    let before = values[idx].clone();
    let mut bytes = before.clone().unwrap_or_default();
    let pos = usize::from(pos);
    match kind {
        0 if !bytes.is_empty() => {
            let i = pos % bytes.len();
            bytes[i] = if bytes[i] == byte { byte ^ 1 } else { byte };
        }
        1 if !bytes.is_empty() => {
            bytes.remove(pos % bytes.len());
        }
        _ => bytes.insert(pos % (bytes.len() + 1), byte),
    }
    values[idx] = Some(bytes.clone());
    let result = verify(&values);
    if result.is_err() {
        return;
    }
    // It still verified: only a change the sandbox cannot see is allowed to.
    let before_str = before.as_deref().and_then(utf8);
    let after_str = utf8(&bytes);
    // A value that is not UTF-8 reaches the sandbox as an absent header (`HeaderValue::to_str`).
    let invisible = after_str == before_str
        || match part {
            Part::Authorization => {
                after_str.and_then(parse_authorization) == before_str.and_then(parse_authorization)
            }
            Part::Timestamp => after_str.and_then(|s| s.trim().parse::<i64>().ok()) == Some(ts),
            // Only "UNSIGNED-PAYLOAD" (any case) means something; other values are not read.
            Part::ContentSha256 => {
                let declares =
                    |s: Option<&str>| s.is_some_and(|s| s.eq_ignore_ascii_case(UNSIGNED_PAYLOAD));
                declares(after_str) == declares(before_str)
            }
            Part::Body => unsigned,
            Part::Host | Part::ContentType | Part::Token => false,
        };
    assert!(
        invisible,
        "a single-byte change to {part:?} still verifies: {:?} -> {:?}",
        before
            .as_deref()
            .map(<[u8]>::escape_ascii)
            .map(|e| e.to_string()),
        bytes.escape_ascii().to_string()
    );
}

/// Target `verify_request`: first byte even — arbitrary headers; odd — a signed request, maybe mutated.
pub fn verify_request(data: &[u8]) {
    match data.split_first() {
        Some((mode, rest)) if mode % 2 == 1 => verify_signed(rest),
        Some((_, rest)) => verify_arbitrary(rest),
        None => {}
    }
}

// ---------------------------------------------------------------------------------------------
// sandbox_body

const BODY_CODES: &[&str] = &["InvalidParameter", "UnknownParameter", "MissingParameter"];

/// Target `sandbox_body`: the bytes are a PayDeals or DescribeDealsByCond request body.
pub fn sandbox_body(data: &[u8]) {
    let world = demo_world();
    match api::parse_pay_deals(data) {
        Ok(req) => {
            let again = api::parse_pay_deals(&serde_json::to_vec(&req).expect("serialisable"))
                .expect("a serialised PayDeals request is accepted");
            assert_eq!(
                again, req,
                "PayDeals request changed through serialise → parse"
            );
            if let Err(f) = pay::plan(world, DEMO_UIN, &req) {
                assert!(!f.code.is_empty());
            }
        }
        Err(f) => assert!(BODY_CODES.contains(&f.code.as_str()), "{f:?}"),
    }
    match api::parse_describe_deals(data) {
        Ok(req) => {
            let again = api::parse_describe_deals(&serde_json::to_vec(&req).expect("serialisable"))
                .expect("a serialised DescribeDealsByCond request is accepted");
            assert_eq!(
                again, req,
                "DescribeDealsByCond request changed through serialise → parse"
            );
            match describe::describe_deals(world, DEMO_UIN, &req) {
                Ok(answer) => {
                    assert!(answer.deals.len() <= req.limit as usize);
                    assert!(answer.total_count >= answer.deals.len() as u64);
                    let body = api::success_body(&answer, "fuzz-rid");
                    let read: DescribeDealsResponse =
                        parse(&body).expect("the sandbox's DescribeDealsByCond answer parses");
                    assert_eq!(read.request_id, "fuzz-rid");
                    assert_eq!(read.total_count, answer.total_count);
                    assert_eq!(read.deals.len(), answer.deals.len());
                    for (got, sent) in read.deals.iter().zip(&answer.deals) {
                        assert_eq!(got.order_id, sent.order_id);
                        assert_eq!(got.status, sent.status);
                        assert_eq!(got.real_total_cost, sent.real_total_cost.map(|c| c as f64));
                        assert_eq!(got.currency.as_deref(), Some(sent.currency.as_str()));
                        assert_eq!(got.resource_id, sent.resource_id);
                    }
                }
                Err(f) => assert!(!f.code.is_empty()),
            }
        }
        Err(f) => assert!(BODY_CODES.contains(&f.code.as_str()), "{f:?}"),
    }
}
