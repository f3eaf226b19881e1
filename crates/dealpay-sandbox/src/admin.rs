//! The admin API under `/_sandbox/` (a path the Tencent API never uses): inspect and steer the world.
//!
//! Unauthenticated by default, for tests on loopback; `--admin-token` makes every route here require
//! `Authorization: Bearer <token>` (the sandbox refuses a non-loopback address without --allow-remote).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::faults::FaultRule;
use super::pay::ChargeMode;
use super::state::Shared;
use super::world::{Account, Order, Voucher, parse_time};

type AppState = Arc<Shared>;

/// One item or a list of items in a request body.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    /// A single item.
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(t) => vec![t],
            OneOrMany::Many(v) => v,
        }
    }
}

/// Fields of an account that `PATCH /_sandbox/accounts/{uin or secretId}` can change.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountPatch {
    /// New balance in cents.
    pub balance: Option<i64>,
    /// Cents added to (or, negative, taken from) the balance.
    pub add_balance: Option<i64>,
    /// Real-name verification flag.
    pub real_name_certified: Option<bool>,
    /// Certification-upgrade flag.
    pub certification_needs_upgrade: Option<bool>,
    /// CAM permission flag.
    pub cam_permission: Option<bool>,
    /// Finance permission flag.
    pub finance_permission: Option<bool>,
    /// New SecretKey.
    pub secret_key: Option<String>,
    /// New STS token; an empty string removes it.
    pub token: Option<String>,
}

impl AccountPatch {
    /// Applies the set fields.
    pub fn apply(&self, a: &mut Account) {
        if let Some(b) = self.balance {
            a.balance = b;
        }
        if let Some(d) = self.add_balance {
            a.balance += d;
        }
        if let Some(v) = self.real_name_certified {
            a.real_name_certified = v;
        }
        if let Some(v) = self.certification_needs_upgrade {
            a.certification_needs_upgrade = v;
        }
        if let Some(v) = self.cam_permission {
            a.cam_permission = v;
        }
        if let Some(v) = self.finance_permission {
            a.finance_permission = v;
        }
        if let Some(k) = &self.secret_key {
            a.secret_key = k.clone();
        }
        if let Some(t) = &self.token {
            a.token = Some(t.clone()).filter(|t| !t.is_empty());
        }
    }
}

/// Fields of an order that `PATCH /_sandbox/orders/{orderId}` can change.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderPatch {
    /// New status code (e.g. 4 to simulate a payment made elsewhere).
    pub status: Option<i64>,
    /// New price in cents.
    pub price: Option<i64>,
    /// False: DescribeDealsByCond shows no price (`RealTotalCost` null).
    pub priced: Option<bool>,
    /// New currency, e.g. `USD`.
    pub currency: Option<String>,
    /// Delivery succeeds when paid.
    pub deliverable: Option<bool>,
    /// AgentPay 3/4 allowed.
    pub agent_pay_allowed: Option<bool>,
    /// New pay-together group; an empty string removes it.
    pub pay_together_group: Option<String>,
    /// The sub-orders of its big deal must be paid in one request (`FailedOperation.NeedPayTogeter`).
    pub pay_with_big_deal: Option<bool>,
    /// New creation time, `YYYY-MM-DD HH:MM:SS`.
    pub create_time: Option<String>,
    /// Milliseconds from charge to delivery; also changes a delivery already under way.
    pub delivery_delay_ms: Option<u64>,
}

/// Fields of a voucher that `PATCH /_sandbox/vouchers/{id}` can change.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VoucherPatch {
    /// Remaining amount in cents.
    pub amount: Option<i64>,
    pub valid: Option<bool>,
}

/// Runtime settings (`GET`/`PATCH /_sandbox/settings`).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// Requests per second per account and action; 0 = off.
    pub rate_limit: Option<u32>,
    /// Charge already charged orders again instead of refusing them.
    pub double_charge: Option<bool>,
}

impl Settings {
    fn of(st: &super::state::State) -> Self {
        Settings {
            rate_limit: Some(st.limiter.rate()),
            double_charge: Some(st.charge_mode == ChargeMode::DoubleCharge),
        }
    }
}

fn err(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({"error": msg.into()}))).into_response()
}

/// Answer for paths that exist nowhere.
pub async fn not_found() -> Response {
    err(
        StatusCode::NOT_FOUND,
        "no such route: the Tencent API is POST /, the admin API lives under /_sandbox/",
    )
}

/// The admin routes behind a bearer token: 401 without `Authorization: Bearer <token>`.
pub fn routes_with_token(token: String) -> Router<AppState> {
    let token: Arc<str> = token.into();
    routes().layer(axum::middleware::from_fn_with_state(token, require_token))
}

async fn require_token(
    State(token): State<Arc<str>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if given.is_some_and(|g| tencent_billing::sign::signatures_equal(g, &token)) {
        return next.run(req).await;
    }
    let mut r = err(
        StatusCode::UNAUTHORIZED,
        "the admin API needs Authorization: Bearer <token> (dealpay sandbox --admin-token)",
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    r
}

/// The admin routes, to be nested under `/_sandbox`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/ledger", get(ledger))
        .route("/stats", get(stats))
        .route("/state", get(state_yaml))
        .route("/reset", post(reset))
        .route("/settings", get(get_settings).patch(patch_settings))
        .route("/orders", get(list_orders).post(add_orders))
        .route("/orders/{id}", get(get_order).patch(patch_order))
        .route("/accounts", get(list_accounts).post(add_accounts))
        .route("/accounts/{id}", get(get_account).patch(patch_account))
        .route("/vouchers", get(list_vouchers).post(add_vouchers))
        .route("/vouchers/{id}", axum::routing::patch(patch_voucher))
        .route(
            "/faults",
            get(list_faults).post(add_faults).delete(clear_faults),
        )
        .route("/faults/{id}", delete(delete_fault))
}

async fn health() -> Response {
    Json(serde_json::json!({"ok": true})).into_response()
}

async fn ledger(State(s): State<AppState>) -> Response {
    Json(s.lock().ledger.clone()).into_response()
}

async fn stats(State(s): State<AppState>) -> Response {
    Json(s.lock().stats.clone()).into_response()
}

async fn state_yaml(State(s): State<AppState>) -> Response {
    let yaml = s.lock().world.to_yaml();
    ([(header::CONTENT_TYPE, "application/yaml")], yaml).into_response()
}

async fn reset(State(s): State<AppState>) -> Response {
    s.lock().reset();
    Json(serde_json::json!({"reset": true})).into_response()
}

async fn get_settings(State(s): State<AppState>) -> Response {
    Json(Settings::of(&s.lock())).into_response()
}

async fn patch_settings(State(s): State<AppState>, Json(p): Json<Settings>) -> Response {
    let mut st = s.lock();
    if let Some(r) = p.rate_limit {
        st.limiter.set_rate(r);
    }
    if let Some(on) = p.double_charge {
        st.charge_mode = ChargeMode::from_flag(on);
    }
    Json(Settings::of(&st)).into_response()
}

async fn list_orders(State(s): State<AppState>) -> Response {
    let orders: Vec<Order> = s.lock().world.orders.values().cloned().collect();
    Json(orders).into_response()
}

async fn get_order(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    match s.lock().world.orders.get(&id) {
        Some(o) => Json(o.clone()).into_response(),
        None => err(StatusCode::NOT_FOUND, format!("no order {id}")),
    }
}

async fn add_orders(State(s): State<AppState>, Json(body): Json<OneOrMany<Order>>) -> Response {
    let mut st = s.lock();
    let mut world = st.world.clone();
    let now = jiff::Timestamp::now();
    let mut added = Vec::new();
    for o in body.into_vec() {
        let id = o.order_id.clone();
        if let Err(e) = world.add_order(o, now) {
            return err(StatusCode::CONFLICT, e);
        }
        added.push(world.orders[&id].clone());
    }
    st.world = world;
    (StatusCode::CREATED, Json(added)).into_response()
}

async fn patch_order(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(p): Json<OrderPatch>,
) -> Response {
    if let Some(t) = &p.create_time
        && parse_time(t).is_none()
    {
        return err(
            StatusCode::BAD_REQUEST,
            "createTime must be YYYY-MM-DD HH:MM:SS",
        );
    }
    let mut st = s.lock();
    let Some(o) = st.world.orders.get_mut(&id) else {
        return err(StatusCode::NOT_FOUND, format!("no order {id}"));
    };
    if let Some(v) = p.status {
        o.status = v;
        // An explicit status takes effect at once, ending any delivery still under way.
        o.charged_at_ms = None;
    }
    if let Some(v) = p.delivery_delay_ms {
        o.delivery_delay_ms = v;
    }
    if let Some(v) = p.price {
        o.price = v;
    }
    if let Some(v) = p.priced {
        o.priced = v;
    }
    if let Some(v) = &p.currency {
        o.currency = v.clone();
    }
    if let Some(v) = p.deliverable {
        o.deliverable = v;
    }
    if let Some(v) = p.agent_pay_allowed {
        o.agent_pay_allowed = v;
    }
    if let Some(g) = &p.pay_together_group {
        o.pay_together_group = Some(g.clone()).filter(|g| !g.is_empty());
    }
    if let Some(v) = p.pay_with_big_deal {
        o.pay_with_big_deal = v;
    }
    if let Some(t) = &p.create_time {
        o.create_time = Some(t.clone());
    }
    Json(o.clone()).into_response()
}

async fn list_accounts(State(s): State<AppState>) -> Response {
    Json(s.lock().world.accounts.clone()).into_response()
}

async fn get_account(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let st = s.lock();
    match st
        .world
        .accounts
        .iter()
        .find(|a| a.uin == id || a.secret_id == id)
    {
        Some(a) => Json(a.clone()).into_response(),
        None => err(StatusCode::NOT_FOUND, format!("no account {id}")),
    }
}

async fn add_accounts(State(s): State<AppState>, Json(body): Json<OneOrMany<Account>>) -> Response {
    let mut st = s.lock();
    let mut world = st.world.clone();
    let new = body.into_vec();
    world.accounts.extend(new.iter().cloned());
    if let Err(e) = world.normalize(jiff::Timestamp::now()) {
        return err(StatusCode::CONFLICT, e);
    }
    st.world = world;
    (StatusCode::CREATED, Json(new)).into_response()
}

async fn patch_account(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(p): Json<AccountPatch>,
) -> Response {
    let mut st = s.lock();
    let Some(a) = st
        .world
        .accounts
        .iter_mut()
        .find(|a| a.uin == id || a.secret_id == id)
    else {
        return err(StatusCode::NOT_FOUND, format!("no account {id}"));
    };
    p.apply(a);
    Json(a.clone()).into_response()
}

async fn list_vouchers(State(s): State<AppState>) -> Response {
    Json(s.lock().world.vouchers.clone()).into_response()
}

async fn add_vouchers(State(s): State<AppState>, Json(body): Json<OneOrMany<Voucher>>) -> Response {
    let mut st = s.lock();
    let mut world = st.world.clone();
    let new = body.into_vec();
    world.vouchers.extend(new.iter().cloned());
    if let Err(e) = world.normalize(jiff::Timestamp::now()) {
        return err(StatusCode::CONFLICT, e);
    }
    st.world = world;
    (StatusCode::CREATED, Json(new)).into_response()
}

async fn patch_voucher(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(p): Json<VoucherPatch>,
) -> Response {
    let mut st = s.lock();
    let Some(v) = st.world.vouchers.iter_mut().find(|v| v.id == id) else {
        return err(StatusCode::NOT_FOUND, format!("no voucher {id}"));
    };
    if let Some(a) = p.amount {
        v.amount = a;
    }
    if let Some(b) = p.valid {
        v.valid = b;
    }
    Json(v.clone()).into_response()
}

async fn list_faults(State(s): State<AppState>) -> Response {
    Json(s.lock().world.faults.clone()).into_response()
}

async fn add_faults(State(s): State<AppState>, Json(body): Json<OneOrMany<FaultRule>>) -> Response {
    let mut st = s.lock();
    let added: Vec<FaultRule> = body
        .into_vec()
        .into_iter()
        .map(|r| st.add_fault(r))
        .collect();
    (StatusCode::CREATED, Json(added)).into_response()
}

async fn clear_faults(State(s): State<AppState>) -> Response {
    s.lock().world.faults.clear();
    StatusCode::NO_CONTENT.into_response()
}

async fn delete_fault(State(s): State<AppState>, Path(id): Path<u64>) -> Response {
    let mut st = s.lock();
    let before = st.world.faults.len();
    st.world.faults.retain(|r| r.id != id);
    if st.world.faults.len() == before {
        return err(StatusCode::NOT_FOUND, format!("no fault {id}"));
    }
    StatusCode::NO_CONTENT.into_response()
}
