//! The Tencent API endpoint (`POST /`): checks the request as the real API does, applies faults, runs the action.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::api::{self, ApiFailure};
use super::auth::{self, AuthInput};
use super::conn::ConnHandle;
use super::delivery::unix_ms;
use super::describe;
use super::faults::{self, Fault};
use super::pay::{self, PayContext};
use super::state::{Shared, State};
use super::world::format_time;
use tencent_billing::models::{
    API_VERSION, DESCRIBE_DEALS_BY_COND, DescribeDealsRequest, PAY_DEALS, PayDealsRequest,
};

/// The body a broken gateway answers with.
pub const BAD_GATEWAY_HTML: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>stgw</center>\r\n</body>\r\n</html>\r\n";

enum Call {
    Pay(PayDealsRequest),
    Describe(DescribeDealsRequest),
}

struct Accepted {
    account: String,
    secret_id: String,
    call: Call,
    plan: faults::Plan,
    /// X-TC-Timestamp, as authenticated.
    timestamp: i64,
}

enum Answer {
    Json(Vec<u8>),
    BadGateway,
    Drop,
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

fn json_response(body: Vec<u8>) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Order and big deal ids a request names (and their relatives), for fault rules that target orders.
fn touched_ids(st: &State, call: &Call) -> Vec<String> {
    let mut ids = BTreeSet::new();
    match call {
        Call::Pay(r) => {
            for id in &r.order_ids {
                ids.insert(id.clone());
                if let Some(d) = st.world.orders.get(id).and_then(|o| o.big_deal_id.clone()) {
                    ids.insert(d);
                }
            }
            for d in &r.big_deal_ids {
                ids.insert(d.clone());
                for o in st.world.orders.values() {
                    if o.big_deal_id.as_ref() == Some(d) {
                        ids.insert(o.order_id.clone());
                    }
                }
            }
        }
        Call::Describe(r) => {
            ids.extend(r.order_id.iter().cloned());
            ids.extend(r.big_deal_id.iter().cloned());
        }
    }
    ids.into_iter().collect()
}

/// Every check up to the point where the action runs, in the order documented in docs/sandbox.md.
fn accept(
    st: &mut State,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
    action: &str,
) -> Result<Accepted, ApiFailure> {
    check_envelope(method, headers, action)?;
    let content_type = header_str(headers, "content-type");
    let input = AuthInput {
        authorization: header_str(headers, "authorization"),
        host: header_str(headers, "host"),
        content_type,
        timestamp: header_str(headers, "x-tc-timestamp"),
        token: header_str(headers, "x-tc-token"),
        content_sha256: header_str(headers, "x-tc-content-sha256"),
        body,
    };
    let account = auth::authenticate_within(&st.world, &input, unix_now(), st.signature_ttl)?;
    let timestamp = input
        .timestamp
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or_default();
    let (uin, secret_id) = (account.uin.clone(), account.secret_id.clone());
    let media = content_type
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase());
    if media.as_deref() != Some("application/json") {
        return Err(ApiFailure::new(
            "InvalidParameter",
            "The sandbox accepts only Content-Type application/json.",
        ));
    }
    admit(st, &uin, action)?;
    let call = if action == PAY_DEALS {
        Call::Pay(api::parse_pay_deals(body)?)
    } else {
        Call::Describe(api::parse_describe_deals(body)?)
    };
    let touched = touched_ids(st, &call);
    let plan = faults::plan(&mut st.world.faults, action, &touched);
    Ok(Accepted {
        account: uin,
        secret_id,
        call,
        plan,
        timestamp,
    })
}

/// What Tencent checks before authentication: method, action and version.
fn check_envelope(method: &Method, headers: &HeaderMap, action: &str) -> Result<(), ApiFailure> {
    if method != Method::POST {
        return Err(ApiFailure::new(
            "UnsupportedOperation",
            "The sandbox accepts only POST requests with a JSON body.",
        ));
    }
    if action.is_empty() {
        return Err(ApiFailure::new(
            "MissingParameter",
            "The request is missing a required parameter `Action` (header X-TC-Action).",
        ));
    }
    if action != PAY_DEALS && action != DESCRIBE_DEALS_BY_COND {
        return Err(ApiFailure::new(
            "InvalidAction",
            format!("The action `{action}` does not exist in billing."),
        ));
    }
    match header_str(headers, "x-tc-version") {
        None => {
            return Err(ApiFailure::new(
                "MissingParameter",
                "The request is missing a required parameter `Version` (header X-TC-Version).",
            ));
        }
        Some(v) if v != API_VERSION => {
            return Err(ApiFailure::new(
                "NoSuchVersion",
                format!("The API version `{v}` does not exist; billing uses {API_VERSION}."),
            ));
        }
        Some(_) => {}
    }
    Ok(())
}

/// The per-account, per-action rate limit, counted as Tencent counts it: after authentication.
fn admit(st: &mut State, uin: &str, action: &str) -> Result<(), ApiFailure> {
    if !st.limiter.try_acquire(uin, action, Instant::now()) {
        st.stats.action(action).rate_limited += 1;
        return Err(ApiFailure::new(
            "RequestLimitExceeded",
            format!(
                "Your current request times exceed the limit of {} per second for {action}.",
                st.limiter.rate()
            ),
        ));
    }
    Ok(())
}

fn fault_name(f: &Fault) -> &'static str {
    match f {
        Fault::Latency { .. } => "latency",
        Fault::Http502 => "http502",
        Fault::Drop => "drop",
        Fault::InternalError => "internalError",
        Fault::Error { .. } => "error",
        Fault::ChargeThenDrop => "chargeThenDrop",
        Fault::ChargeThenInternalError => "chargeThenInternalError",
        Fault::PartialPayment => "partialPayment",
        Fault::Late { .. } => "late",
    }
}

fn internal_error() -> ApiFailure {
    ApiFailure::new(
        "InternalError",
        "An internal error has occurred. Retry your request, but if the problem persists, contact us.",
    )
}

fn record(st: &mut State, action: &str, result: &Result<(), ApiFailure>) {
    let s = st.stats.action(action);
    match result {
        Ok(()) => s.succeeded += 1,
        Err(f) => *s.errors.entry(f.code.clone()).or_default() += 1,
    }
}

fn record_fault(st: &mut State, action: &str, f: &Fault) {
    *st.stats
        .action(action)
        .faults
        .entry(fault_name(f).to_string())
        .or_default() += 1;
}

/// Runs the action under the lock; after-charge faults fire here, once something is about to be charged.
fn run_call(st: &mut State, a: &Accepted, action: &str, request_id: &str) -> Answer {
    let outcome: Result<Vec<u8>, ApiFailure>;
    let mut answer_drop = false;
    match &a.call {
        Call::Describe(req) => {
            let now = jiff::Timestamp::now();
            outcome = describe::describe_deals_at(&st.world, &a.account, req, now)
                .map(|ans| api::success_body(&ans, request_id));
        }
        Call::Pay(req) => match pay::plan_with(&st.world, &a.account, req, st.charge_mode) {
            Err(f) => outcome = Err(f),
            Ok(plan) => {
                let fired = a
                    .plan
                    .after_rule
                    .and_then(|id| faults::fire(&mut st.world.faults, id));
                let mut skip: BTreeSet<usize> = BTreeSet::new();
                if let Some(rule) = &fired {
                    record_fault(st, action, &rule.fault);
                    if rule.fault == Fault::PartialPayment {
                        for (i, id) in plan.orders.iter().enumerate() {
                            let deal = st.world.orders.get(id).and_then(|o| o.big_deal_id.as_ref());
                            let named = rule.orders.contains(id)
                                || deal.is_some_and(|d| rule.orders.contains(d));
                            let second_half = i >= plan.orders.len().div_ceil(2);
                            if (rule.orders.is_empty() && second_half) || named {
                                skip.insert(i);
                            }
                        }
                    }
                }
                let now = jiff::Timestamp::now();
                let time = format_time(now);
                let ctx = PayContext {
                    account: &a.account,
                    secret_id: &a.secret_id,
                    request_id,
                    time: &time,
                    now_ms: unix_ms(now),
                };
                let result = pay::execute(&mut st.world, &plan, &|i, _| skip.contains(&i), &ctx);
                st.record_charges(result.charges.iter().cloned());
                outcome = match fired.map(|r| r.fault) {
                    Some(Fault::ChargeThenDrop) => {
                        answer_drop = true;
                        Ok(Vec::new())
                    }
                    Some(Fault::ChargeThenInternalError) => Err(internal_error()),
                    _ => result
                        .answer()
                        .map(|ans| api::success_body(&ans, request_id)),
                };
            }
        },
    }
    if answer_drop {
        return Answer::Drop;
    }
    record(
        st,
        action,
        &outcome.as_ref().map(|_| ()).map_err(Clone::clone),
    );
    Answer::Json(outcome.unwrap_or_else(|f| api::error_body(&f, request_id)))
}

/// `POST /`: the simulated Billing API.
pub async fn tencent_api(
    AxumState(shared): AxumState<Arc<Shared>>,
    conn: Option<Extension<ConnHandle>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let action = header_str(&headers, "x-tc-action")
        .unwrap_or_default()
        .to_string();
    let accepted = {
        let mut st = shared.lock();
        st.stats.action(&action).requests += 1;
        let r = accept(&mut st, &method, &headers, &body, &action);
        if let Err(f) = &r {
            record(&mut st, &action, &Err(f.clone()));
        }
        r
    };
    let a = match accepted {
        Ok(a) => a,
        Err(f) => return json_response(api::error_body(&f, &request_id)),
    };
    if !a.plan.delay_before.is_zero() {
        tokio::time::sleep(a.plan.delay_before).await;
    }
    if let Some(late @ Fault::Late { ms }) = a.plan.instead.clone() {
        record_fault(&mut shared.lock(), &action, &late);
        tokio::spawn(run_late(shared.clone(), a, action, request_id, ms));
        return cut_off(conn).await;
    }
    let answer = if let Some(f) = &a.plan.instead {
        let mut st = shared.lock();
        record_fault(&mut st, &action, f);
        match f {
            Fault::Http502 => Answer::BadGateway,
            Fault::Drop => Answer::Drop,
            Fault::Error { code, message } => {
                let msg = if message.is_empty() {
                    format!("Injected fault {code}.")
                } else {
                    message.clone()
                };
                let failure = ApiFailure::new(code, msg);
                record(&mut st, &action, &Err(failure.clone()));
                Answer::Json(api::error_body(&failure, &request_id))
            }
            _ => {
                record(&mut st, &action, &Err(internal_error()));
                Answer::Json(api::error_body(&internal_error(), &request_id))
            }
        }
    } else {
        let mut st = shared.lock();
        run_call(&mut st, &a, &action, &request_id)
    };
    if !a.plan.delay_after.is_zero() {
        tokio::time::sleep(a.plan.delay_after).await;
    }
    match answer {
        Answer::Json(body) => json_response(body),
        Answer::BadGateway => {
            let mut r = (StatusCode::BAD_GATEWAY, BAD_GATEWAY_HTML).into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
            r
        }
        Answer::Drop => cut_off(conn).await,
    }
}

async fn cut_off(conn: Option<Extension<ConnHandle>>) -> Response {
    if let Some(Extension(c)) = conn {
        c.kill();
    }
    // The connection task drops the socket before this future is polled again.
    std::future::pending().await
}

/// A request the client was cut off from, run `ms` later if its signature is still valid then.
async fn run_late(shared: Arc<Shared>, a: Accepted, action: String, request_id: String, ms: u64) {
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    let mut st = shared.lock();
    if unix_now().abs_diff(a.timestamp) > st.signature_ttl.unsigned_abs() {
        let expired = ApiFailure::new(
            "AuthFailure.SignatureExpire",
            "Signature expired while the request was queued.",
        );
        record(&mut st, &action, &Err(expired));
        return;
    }
    run_call(&mut st, &a, &action, &request_id);
}
