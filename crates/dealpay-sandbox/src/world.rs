//! The simulated billing world: accounts, orders, vouchers and fault rules, as the state file holds them, plus the demo world.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::SandboxError;
use super::faults::FaultRule;
use tencent_billing::models::status;

/// SecretId of the demo account.
pub const DEMO_SECRET_ID: &str = "sandbox-secret-id";
/// SecretKey of the demo account.
pub const DEMO_SECRET_KEY: &str = "sandbox-secret-key";
/// Uin (account number) of the demo account; it is the `Payer` of every demo order.
pub const DEMO_UIN: &str = "100000000001";
/// Balance of the demo account in cents (one million yuan: nobody runs out by accident).
pub const DEMO_BALANCE: i64 = 100_000_000;
/// The demo voucher, valid for order `20261128000000000003`.
pub const DEMO_VOUCHER_ID: &str = "sandbox-voucher-1";
/// How many load-test orders the demo world has (see [`demo_load_order_id`]).
pub const DEMO_LOAD_ORDERS: u64 = 20;

/// Id of load-test order `i` (0-based): `20261128000000001000` + i, so `...1000` to `...1019`.
pub fn demo_load_order_id(i: u64) -> String {
    format!("2026112800000000{}", 1000 + i)
}
/// Format of every time in the world and on the wire (`YYYY-MM-DD HH:MM:SS`, UTC+8 like the real API).
pub const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// The whole simulated state; this is what `--state FILE` holds (YAML, camelCase keys).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct World {
    /// API keys and the money behind them.
    #[serde(default)]
    pub accounts: Vec<Account>,
    /// Orders by order id; written to the file as a list.
    #[serde(
        default,
        serialize_with = "orders_as_list",
        deserialize_with = "orders_from_list"
    )]
    pub orders: BTreeMap<String, Order>,
    /// Vouchers that PayDeals can spend.
    #[serde(default)]
    pub vouchers: Vec<Voucher>,
    /// Fault rules active from the start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<FaultRule>,
}

fn yes() -> bool {
    true
}

fn is_false(v: &bool) -> bool {
    !*v
}

fn is_true(v: &bool) -> bool {
    *v
}

fn cny() -> String {
    "CNY".into()
}

fn is_cny(v: &String) -> bool {
    v == "CNY"
}

fn unpaid() -> i64 {
    status::UNPAID
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

/// One Tencent Cloud account (one API key pair; a sub-account is just another entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Account {
    /// Account number; orders and vouchers name their owner by it, and DescribeDealsByCond shows it as `Payer`.
    pub uin: String,
    /// SecretId of the key pair.
    pub secret_id: String,
    /// SecretKey of the key pair.
    pub secret_key: String,
    /// STS token: when set, every request must carry it as `X-TC-Token`; when unset, none may.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Cash balance in cents.
    pub balance: i64,
    /// Real-name verification done (else `UnauthorizedOperation.NotCertification`).
    #[serde(default = "yes")]
    pub real_name_certified: bool,
    /// Real-name data must be completed (answers `UnauthorizedOperation.CertificationNeedUpgrade`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub certification_needs_upgrade: bool,
    /// The key may call billing actions at all (else `UnauthorizedOperation.CamNoAuth`).
    #[serde(default = "yes")]
    pub cam_permission: bool,
    /// The key may spend money (else `UnauthorizedOperation.CamNoAuth`, as PayDeals answers it).
    #[serde(default = "yes")]
    pub finance_permission: bool,
}

/// One sub-order, the unit PayDeals charges and DescribeDealsByCond lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Order {
    /// Sub-order number.
    pub order_id: String,
    /// Uin of the paying account; empty means the first account.
    #[serde(default)]
    pub account: String,
    /// Order (big deal) the sub-order belongs to; paying the big deal pays all its sub-orders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub big_deal_id: Option<String>,
    /// Status code (see `tencent_billing::models::status`); 1 = unpaid.
    #[serde(default = "unpaid")]
    pub status: i64,
    /// Price in cents.
    pub price: i64,
    /// False: DescribeDealsByCond lists the order with `RealTotalCost` null (a price not known yet);
    /// PayDeals still charges `price`.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub priced: bool,
    /// Currency of the amounts, as DescribeDealsByCond's `Currency` shows it.
    #[serde(default = "cny", skip_serializing_if = "is_cny")]
    pub currency: String,
    /// Resources delivered when paid; empty means `ins-<last 8 digits of the order id>`.
    #[serde(default)]
    pub resource_ids: Vec<String>,
    /// Orders sharing a group must be paid in one request (`FailedOperation.NeedPayTogether`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay_together_group: Option<String>,
    /// Orders purchased together: paying this sub-order while an unpaid sub-order of its big deal is
    /// left out of the request answers `FailedOperation.NeedPayTogeter` (the API's spelling).
    #[serde(default, skip_serializing_if = "is_false")]
    pub pay_with_big_deal: bool,
    /// When false, paying charges but delivery fails (status 5, `FailedOperation.PaySuccDeliverFailed`).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub deliverable: bool,
    /// AgentPay 3/4 is allowed for this order (else `FailedOperation.AgentPayDealCannotDown`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub agent_pay_allowed: bool,
    /// `YYYY-MM-DD HH:MM:SS` (UTC+8); empty means 24 hours before the sandbox started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_time: Option<String>,
    /// Cents paid by vouchers when the order was paid.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub voucher_decline: i64,
    /// When the order was paid (`YYYY-MM-DD HH:MM:SS`, UTC+8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay_time: Option<String>,
    /// Milliseconds from charge to delivery; 0 delivers (or fails) at once. See `sandbox::delivery`.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub delivery_delay_ms: u64,
    /// Unix milliseconds of the last charge, recorded only when `delivery_delay_ms` > 0: the
    /// delivery phase is derived from it at read time, so no background task is needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charged_at_ms: Option<i64>,
}

impl Order {
    /// An unpaid, deliverable order of `account` with default resources.
    pub fn new(order_id: impl Into<String>, account: impl Into<String>, price: i64) -> Self {
        Self {
            order_id: order_id.into(),
            account: account.into(),
            big_deal_id: None,
            status: status::UNPAID,
            price,
            priced: true,
            currency: cny(),
            resource_ids: Vec::new(),
            pay_together_group: None,
            pay_with_big_deal: false,
            deliverable: true,
            agent_pay_allowed: false,
            create_time: None,
            voucher_decline: 0,
            pay_time: None,
            delivery_delay_ms: 0,
            charged_at_ms: None,
        }
    }
}

/// A voucher: money that can only be spent on orders of its account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Voucher {
    /// Voucher id, as passed in `VoucherIds`.
    pub id: String,
    /// Uin of the owning account.
    pub account: String,
    /// Remaining amount in cents; spending lowers it.
    pub amount: i64,
    /// False for expired or frozen vouchers.
    #[serde(default = "yes")]
    pub valid: bool,
}

fn orders_as_list<S: Serializer>(m: &BTreeMap<String, Order>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(m.values())
}

fn orders_from_list<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Order>, D::Error> {
    let list = Vec::<Order>::deserialize(d)?;
    let mut m = BTreeMap::new();
    for o in list {
        let id = o.order_id.clone();
        if m.insert(id.clone(), o).is_some() {
            return Err(serde::de::Error::custom(format!("duplicate orderId {id}")));
        }
    }
    Ok(m)
}

/// The current time as the API formats it (UTC+8).
pub fn format_time(ts: jiff::Timestamp) -> String {
    ts.to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(8)))
        .strftime(TIME_FORMAT)
        .to_string()
}

/// Parses `YYYY-MM-DD HH:MM:SS` strictly; the canonical form compares correctly as a string.
pub fn parse_time(s: &str) -> Option<jiff::civil::DateTime> {
    if s.len() != 19 {
        return None;
    }
    jiff::civil::DateTime::strptime(TIME_FORMAT, s).ok()
}

/// `ins-` plus the last 8 characters of the order id.
pub fn default_resource_id(order_id: &str) -> String {
    let start = order_id
        .char_indices()
        .rev()
        .nth(7)
        .map(|(i, _)| i)
        .unwrap_or(0);
    format!("ins-{}", &order_id[start..])
}

impl World {
    /// Reads a YAML state file.
    pub fn from_yaml_file(path: &Path) -> Result<Self, SandboxError> {
        let text = std::fs::read_to_string(path).map_err(|e| SandboxError::Io {
            context: format!("reading state file {}", path.display()),
            source: e,
        })?;
        Self::from_yaml(&text).map_err(|e| SandboxError::State(format!("{}: {e}", path.display())))
    }

    /// Parses YAML text.
    pub fn from_yaml(text: &str) -> Result<Self, String> {
        serde_norway::from_str(text).map_err(|e| e.to_string())
    }

    /// Renders the world as YAML.
    pub fn to_yaml(&self) -> String {
        serde_norway::to_string(self).unwrap_or_default()
    }

    /// The account owning `secret_id`.
    pub fn account_by_secret_id(&self, secret_id: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.secret_id == secret_id)
    }

    /// The account with number `uin`.
    pub fn account(&self, uin: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.uin == uin)
    }

    /// The account with number `uin`, mutably.
    pub fn account_mut(&mut self, uin: &str) -> Option<&mut Account> {
        self.accounts.iter_mut().find(|a| a.uin == uin)
    }

    /// Checks references and uniqueness and fills defaults (owner, resources, creation time relative to `now`).
    pub fn normalize(&mut self, now: jiff::Timestamp) -> Result<(), String> {
        let mut uins = BTreeSet::new();
        let mut ids = BTreeSet::new();
        for a in &self.accounts {
            if a.uin.is_empty() || a.secret_id.is_empty() {
                return Err("every account needs a uin and a secretId".into());
            }
            if !uins.insert(a.uin.as_str()) {
                return Err(format!("duplicate account uin {}", a.uin));
            }
            if !ids.insert(a.secret_id.as_str()) {
                return Err(format!("duplicate secretId {}", a.secret_id));
            }
        }
        let default_time = format_time(now - jiff::SignedDuration::from_hours(24));
        let first = self.accounts.first().map(|a| a.uin.clone());
        let orders = std::mem::take(&mut self.orders);
        for (id, mut o) in orders {
            fill_order(&mut o, first.as_deref(), &default_time)?;
            if !uins.contains(o.account.as_str()) {
                return Err(format!("order {id}: unknown account {}", o.account));
            }
            self.orders.insert(id, o);
        }
        let mut vids = BTreeSet::new();
        for v in &self.vouchers {
            if !uins.contains(v.account.as_str()) {
                return Err(format!("voucher {}: unknown account {}", v.id, v.account));
            }
            if !vids.insert(v.id.as_str()) {
                return Err(format!("duplicate voucher id {}", v.id));
            }
        }
        Ok(())
    }

    /// Adds one order after filling its defaults; fails on a duplicate id or an unknown account.
    pub fn add_order(&mut self, mut order: Order, now: jiff::Timestamp) -> Result<(), String> {
        if self.orders.contains_key(&order.order_id) {
            return Err(format!("order {} already exists", order.order_id));
        }
        let first = self.accounts.first().map(|a| a.uin.clone());
        fill_order(&mut order, first.as_deref(), &format_time(now))?;
        if self.account(&order.account).is_none() {
            return Err(format!("unknown account {}", order.account));
        }
        self.orders.insert(order.order_id.clone(), order);
        Ok(())
    }

    /// The demo world as the server holds it at `2026-11-28T00:00:00Z` (normalised), for unit tests.
    #[cfg(test)]
    pub(crate) fn demo_normalized() -> Self {
        let mut w = Self::demo();
        w.normalize("2026-11-28T00:00:00Z".parse().unwrap())
            .unwrap();
        w
    }

    /// The demo world plus a second account with an STS token (SecretId `sts-id`, key `sts-key`,
    /// token `sts-token`, uin 2): what the authentication tests and the fuzz targets sign against.
    pub fn demo_with_sts() -> Self {
        let mut w = Self::demo();
        let mut sts = w.accounts[0].clone();
        sts.uin = "2".into();
        sts.secret_id = "sts-id".into();
        sts.secret_key = "sts-key".into();
        sts.token = Some("sts-token".into());
        w.accounts.push(sts);
        w
    }

    /// The demo world that `dealpay sandbox` serves without `--state` (see docs/sandbox.md).
    pub fn demo() -> Self {
        let u = DEMO_UIN;
        let mut orders = vec![
            Order::new("20261128000000000001", u, 1200),
            Order::new("20261128000000000002", u, 3400),
            Order::new("20261128000000000003", u, 4500),
            Order::new("20261128000000000004", u, 5600),
        ];
        for (id, price) in [
            ("20261128000000000101", 2500),
            ("20261128000000000102", 1500),
        ] {
            let mut o = Order::new(id, u, price);
            o.big_deal_id = Some("20261128000000000100".into());
            orders.push(o);
        }
        for (id, price) in [
            ("20261128000000000201", 1000),
            ("20261128000000000202", 2000),
        ] {
            let mut o = Order::new(id, u, price);
            o.pay_together_group = Some("pkg-20261128000000000200".into());
            orders.push(o);
        }
        for (id, price) in [
            ("20261128000000000401", 1800),
            ("20261128000000000402", 700),
        ] {
            let mut o = Order::new(id, u, price);
            o.big_deal_id = Some("20261128000000000400".into());
            o.pay_with_big_deal = true;
            orders.push(o);
        }
        let mut undeliverable = Order::new("20261128000000000301", u, 990);
        undeliverable.deliverable = false;
        orders.push(undeliverable);
        for i in 0..DEMO_LOAD_ORDERS {
            orders.push(Order::new(demo_load_order_id(i), u, 100 + i as i64));
        }
        let orders = orders
            .into_iter()
            .map(|mut o| {
                o.resource_ids = vec![default_resource_id(&o.order_id)];
                (o.order_id.clone(), o)
            })
            .collect();
        World {
            accounts: vec![Account {
                uin: u.into(),
                secret_id: DEMO_SECRET_ID.into(),
                secret_key: DEMO_SECRET_KEY.into(),
                token: None,
                balance: DEMO_BALANCE,
                real_name_certified: true,
                certification_needs_upgrade: false,
                cam_permission: true,
                finance_permission: true,
            }],
            orders,
            vouchers: vec![Voucher {
                id: DEMO_VOUCHER_ID.into(),
                account: u.into(),
                amount: 5000,
                valid: true,
            }],
            faults: Vec::new(),
        }
    }
}

fn fill_order(o: &mut Order, first: Option<&str>, default_time: &str) -> Result<(), String> {
    if o.order_id.is_empty() {
        return Err("every order needs an orderId".into());
    }
    if o.price < 0 {
        return Err(format!("order {}: negative price", o.order_id));
    }
    if o.account.is_empty() {
        o.account = first
            .ok_or_else(|| format!("order {}: no account", o.order_id))?
            .to_string();
    }
    if o.resource_ids.is_empty() {
        o.resource_ids = vec![default_resource_id(&o.order_id)];
    }
    match &o.create_time {
        None => o.create_time = Some(default_time.to_string()),
        Some(t) if parse_time(t).is_none() => {
            return Err(format!(
                "order {}: createTime {t:?} is not YYYY-MM-DD HH:MM:SS",
                o.order_id
            ));
        }
        Some(_) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> jiff::Timestamp {
        "2026-11-28T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn demo_world_round_trips_through_yaml() {
        let demo = World::demo();
        let yaml = demo.to_yaml();
        let back = World::from_yaml(&yaml).unwrap();
        assert_eq!(back, demo);
        assert!(yaml.contains("secretId: sandbox-secret-id"), "{yaml}");
        assert!(yaml.contains("orderId: '20261128000000000001'"), "{yaml}");
    }

    #[test]
    fn demo_world_has_the_documented_ids() {
        let mut w = World::demo();
        w.normalize(now()).unwrap();
        let o = |id: &str| w.orders.get(id).unwrap_or_else(|| panic!("{id}"));
        assert_eq!(o("20261128000000000001").price, 1200);
        assert_eq!(o("20261128000000000002").price, 3400);
        assert_eq!(o("20261128000000000001").resource_ids, ["ins-00000001"]);
        assert_eq!(
            o("20261128000000000101").big_deal_id.as_deref(),
            Some("20261128000000000100")
        );
        assert_eq!(
            o("20261128000000000201").pay_together_group,
            o("20261128000000000202").pay_together_group
        );
        assert!(!o("20261128000000000301").deliverable);
        for id in ["20261128000000000401", "20261128000000000402"] {
            assert!(o(id).pay_with_big_deal, "{id}");
            assert_eq!(o(id).big_deal_id.as_deref(), Some("20261128000000000400"));
        }
        assert!(!o("20261128000000000101").pay_with_big_deal);
        assert!(o("20261128000000000004").status == status::UNPAID);
        for i in 0..DEMO_LOAD_ORDERS {
            assert!(w.orders.contains_key(&demo_load_order_id(i)));
        }
        assert_eq!(demo_load_order_id(0), "20261128000000001000");
        assert_eq!(o("20261128000000001019").resource_ids, ["ins-00001019"]);
        assert_eq!(o("20261128000000001019").price, 119);
        assert_eq!(w.vouchers[0].amount, 5000);
        assert!(o("20261128000000000003").price <= w.vouchers[0].amount);
        assert_eq!(w.orders.len(), 11 + DEMO_LOAD_ORDERS as usize);
        assert!(w.orders.values().all(|o| o.account == DEMO_UIN));
        assert_eq!(
            o("20261128000000000001").create_time.as_deref(),
            Some("2026-11-27 20:00:00")
        );
    }

    #[test]
    fn minimal_state_file_gets_defaults() {
        let yaml = r#"
accounts:
  - uin: "1"
    secretId: id
    secretKey: key
    balance: 100
orders:
  - orderId: "42"
    price: 10
  - orderId: "43"
    price: 10
    createTime: "2026-01-02 03:04:05"
    deliverable: false
vouchers:
  - id: v
    account: "1"
    amount: 5
"#;
        let mut w = World::from_yaml(yaml).unwrap();
        w.normalize(now()).unwrap();
        let a = &w.accounts[0];
        assert!(a.real_name_certified && a.cam_permission && a.finance_permission);
        assert!(a.token.is_none());
        let o = &w.orders["42"];
        assert_eq!(o.account, "1");
        assert_eq!(o.status, status::UNPAID);
        assert_eq!(o.resource_ids, ["ins-42"]);
        assert!(o.deliverable);
        assert!(!w.orders["43"].deliverable);
        assert_eq!(
            w.orders["43"].create_time.as_deref(),
            Some("2026-01-02 03:04:05")
        );
        assert!(w.vouchers[0].valid);
    }

    #[test]
    fn bad_state_files_are_refused() {
        assert!(World::from_yaml("accounts: 3").is_err());
        assert!(World::from_yaml("bogus: []").is_err());
        let dup = "orders:\n  - {orderId: a, price: 1}\n  - {orderId: a, price: 2}\n";
        assert!(World::from_yaml(dup).unwrap_err().contains("duplicate"));
        for yaml in [
            "accounts: [{uin: '1', secretId: a, secretKey: k, balance: 0}, {uin: '1', secretId: b, secretKey: k, balance: 0}]",
            "accounts: [{uin: '1', secretId: a, secretKey: k, balance: 0}]\norders: [{orderId: x, price: 1, account: '2'}]",
            "accounts: [{uin: '1', secretId: a, secretKey: k, balance: 0}]\norders: [{orderId: x, price: 1, createTime: yesterday}]",
            "accounts: [{uin: '1', secretId: a, secretKey: k, balance: 0}]\nvouchers: [{id: v, account: '9', amount: 1}]",
            "orders: [{orderId: x, price: 1}]",
        ] {
            let mut w = World::from_yaml(yaml).unwrap();
            assert!(w.normalize(now()).is_err(), "{yaml}");
        }
    }

    #[test]
    fn resource_ids_use_the_last_eight_characters() {
        assert_eq!(default_resource_id("20261128000000000101"), "ins-00000101");
        assert_eq!(default_resource_id("7"), "ins-7");
    }

    #[test]
    fn times_are_strict_and_utc_plus_eight() {
        assert!(parse_time("2026-11-28 00:00:00").is_some());
        assert!(parse_time("2026-11-28T00:00:00").is_none());
        assert!(parse_time("2026-11-28 0:00:00").is_none());
        assert!(parse_time("2026-13-28 00:00:00").is_none());
        assert_eq!(format_time(now()), "2026-11-28 20:00:00");
    }
}
