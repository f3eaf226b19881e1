//! A namespace budget across DealPayments: the controller's protocol (`controller::pipeline`) with
//! the controller's ledger, against the sandbox over HTTP. The status store here is in memory and the
//! "reflector" view the ledger reads lags on purpose (it is refreshed only between reconciles), as a
//! real cache may: the reservation, not the cache, must keep two payments from sharing a budget.

use std::sync::Mutex;
use std::time::Duration;

use dealpay_operator::api::{DealPaymentSpec, DealPaymentStatus};
use dealpay_operator::controller::budget::{Ledger, Seen, parse_flag};
use dealpay_operator::controller::error::Error;
use dealpay_operator::controller::pipeline::{self, Caller, Fresh, Next, Start, StatusStore};
use dealpay_operator::engine::conditions::{PAID, READY, STALLED, find};
use dealpay_operator::engine::spend::charge;
use dealpay_operator::engine::{Action, CredentialsState, Event, Note, Policy};
use dealpay_operator::sandbox::{DEMO_SECRET_ID, DEMO_SECRET_KEY, Sandbox, SandboxConfig};
use dealpay_operator::tencent::{Client, ClientConfig, Credentials};
use jiff::Timestamp;

const NS: &str = "team-a";
const O1: &str = "20261128000000000001"; // 12.00
const O2: &str = "20261128000000000002"; // 34.00

/// The namespace: its ledger, and the statuses as the (lagging) reflector last saw them.
struct Namespace {
    ledger: Ledger,
    cache: Mutex<Vec<Seen>>,
}

/// One DealPayment's status on the "apiserver".
struct Object<'n> {
    uid: &'static str,
    spec: DealPaymentSpec,
    ns: &'n Namespace,
    slot: Mutex<(Option<DealPaymentStatus>, u64)>,
}

impl StatusStore for Object<'_> {
    async fn write(
        &self,
        st: &DealPaymentStatus,
        expect_rv: Option<&str>,
    ) -> Result<String, Error> {
        let mut slot = self.slot.lock().unwrap();
        if expect_rv != Some(slot.1.to_string().as_str()) {
            return Err(Error::Conflict);
        }
        let stored = slot.0.as_ref().and_then(|s| s.in_flight.as_ref());
        let cache = self.ns.cache.lock().unwrap().clone();
        let _admitted = self
            .ns
            .ledger
            .admit(
                NS,
                self.uid,
                stored.map(|a| a.id.as_str()),
                st,
                &cache,
                Timestamp::now(),
            )
            .map_err(Error::OverBudget)?;
        slot.0 = Some(st.clone());
        slot.1 += 1;
        Ok(slot.1.to_string())
    }

    async fn read(&self) -> Result<Fresh, Error> {
        let slot = self.slot.lock().unwrap();
        Ok(Fresh {
            status: slot.0.clone(),
            resource_version: slot.1.to_string(),
            spec: self.spec.clone(),
            generation: 1,
        })
    }

    fn publish(&self, _: &Note) {}
}

struct Tencent {
    client: Client,
    creds: Credentials,
}

impl Caller for Tencent {
    async fn perform(&self, action: &Action) -> Option<Event> {
        dealpay_operator::driver::perform(&self.client, &self.creds, None, action).await
    }
    fn may_pay(&self) -> bool {
        true
    }
}

fn tencent(sb: &Sandbox) -> Tencent {
    Tencent {
        client: Client::new(&ClientConfig {
            endpoint: sb.url(),
            rate_per_second: 0,
            ..Default::default()
        })
        .unwrap(),
        creds: Credentials::new(DEMO_SECRET_ID, DEMO_SECRET_KEY, None),
    }
}

fn object<'n>(ns: &'n Namespace, uid: &'static str, order: &str) -> Object<'n> {
    Object {
        uid,
        spec: DealPaymentSpec {
            order_ids: vec![order.into()],
            ..Default::default()
        },
        ns,
        slot: Mutex::new((None, 0)),
    }
}

impl Namespace {
    fn new(flag: &str) -> Self {
        Self {
            ledger: Ledger::new(vec![parse_flag(flag).unwrap()]),
            cache: Mutex::default(),
        }
    }

    /// The policy a reconcile starts with: the budget as the ledger measures it now.
    fn policy(&self) -> Policy {
        let cache = self.cache.lock().unwrap().clone();
        Policy {
            namespace_budget: self.ledger.measure(NS, &cache, Timestamp::now()),
            ..Policy::default()
        }
    }

    /// The reflector catches up with the objects.
    fn refresh(&self, objects: &[&Object<'_>]) {
        *self.cache.lock().unwrap() = objects
            .iter()
            .map(|o| Seen {
                uid: o.uid.into(),
                charge: o.slot.lock().unwrap().0.as_ref().and_then(charge),
                receipt_of: None,
            })
            .collect();
    }
}

/// One reconcile of `o` until the engine asks to wait.
async fn reconcile(o: &Object<'_>, t: &Tencent, policy: &Policy) -> Result<Next, Error> {
    let Fresh {
        status,
        resource_version: rv,
        ..
    } = o.read().await?;
    let creds = CredentialsState::Available {
        version: "1".into(),
    };
    let start = Start {
        spec: &o.spec,
        generation: 1,
        status,
        resource_version: Some(rv),
        credentials: &creds,
    };
    pipeline::run(o, t, start, policy).await
}

/// Reconciles until the engine waits on its own (a refused write is retried like error_policy does).
async fn settle(ns: &Namespace, o: &Object<'_>, t: &Tencent) -> Next {
    for _ in 0..20 {
        match reconcile(o, t, &ns.policy()).await {
            Ok(Next::After(d)) if d < Duration::from_secs(1) => continue,
            Ok(next) => return next,
            Err(Error::OverBudget(_)) => continue,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("{} did not settle", o.uid)
}

fn condition(o: &Object<'_>, t: impl AsRef<str>) -> (String, String, String) {
    let slot = o.slot.lock().unwrap();
    let c = find(&slot.0.as_ref().unwrap().conditions, t).unwrap();
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_payments_at_once_with_budget_for_one_exactly_one_is_paid() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let t = tencent(&sb);
    // 40.00 a day: 34.00 or 12.00 fits, both (46.00) do not.
    let ns = Namespace::new("team-a=40.00/24h");
    let (a, b) = (object(&ns, "a", O2), object(&ns, "b", O1));
    // Both reconciles measure the budget before either has written anything: both see 40.00 left.
    let (pa, pb) = (ns.policy(), ns.policy());
    assert_eq!(pa.namespace_budget.unwrap().spent_cents, 0);
    let (ra, rb) = tokio::join!(reconcile(&a, &t, &pa), reconcile(&b, &t, &pb));
    let refused = [&ra, &rb]
        .iter()
        .filter(|r| matches!(r, Err(Error::OverBudget(_))))
        .count();
    assert_eq!(refused, 1, "{ra:?} {rb:?}");
    assert_eq!(sb.ledger().len(), 1, "exactly one PayDeals charged");
    // The refused one reconciles again (as after error_policy): the engine now sees the budget
    // taken and says so with the figures, and waits for the window instead of paying.
    ns.refresh(&[&a, &b]);
    let loser = if ra.is_err() { &a } else { &b };
    let winner = if ra.is_err() { &b } else { &a };
    settle(&ns, winner, &t).await;
    let next = settle(&ns, loser, &t).await;
    assert!(
        matches!(next, Next::After(d) if d > Duration::from_secs(3600)),
        "again when the charge leaves the window: {next:?}"
    );
    let (_, reason, msg) = condition(loser, READY);
    assert_eq!(reason, "OverBudget");
    assert!(msg.contains("40.00 per 1d"), "{msg}");
    assert_eq!(condition(loser, PAID).0, "False");
    assert_eq!(condition(winner, PAID).0, "True");
    assert_eq!(sb.ledger().len(), 1);
    assert_eq!(sb.stats().duplicate_charges, 0);
    sb.shutdown().await;
}

#[tokio::test]
async fn budget_window_exhaustion_across_two_deal_payments_in_one_namespace() {
    // A short window so the test sees it free up, long enough that a loaded machine still checks the
    // second payment inside it.
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let t = tencent(&sb);
    let ns = Namespace::new("team-a=40.00/10s");
    let (a, b) = (object(&ns, "a", O2), object(&ns, "b", O1));
    assert_eq!(
        settle(&ns, &a, &t).await,
        Next::Await,
        "34.00 fits in 40.00"
    );
    assert_eq!(condition(&a, READY).1, "Paid");
    ns.refresh(&[&a, &b]);
    // 12.00 more would make 46.00 in the window: nothing is paid, and the message has the figures.
    let Next::After(wait) = settle(&ns, &b, &t).await else {
        panic!("waits for the window")
    };
    assert!(wait <= Duration::from_secs(10), "{wait:?}");
    let (stalled, reason, msg) = condition(&b, READY);
    assert_eq!(reason, "OverBudget", "{msg}");
    for figure in [
        "12.00",
        "40.00 per 10s",
        "34.00 spent in the window",
        "6.00 left",
    ] {
        assert!(msg.contains(figure), "{figure} in {msg}");
    }
    assert_eq!(condition(&b, STALLED).0, "False", "{stalled}");
    assert_eq!(sb.ledger().len(), 1);
    // The engine asked to be woken when the charge leaves the window; then it prices and pays.
    tokio::time::sleep(wait).await;
    assert_eq!(settle(&ns, &b, &t).await, Next::Await);
    assert_eq!(condition(&b, READY).1, "Paid");
    let charged: Vec<i64> = sb.ledger().iter().map(|c| c.amount).collect();
    assert_eq!(charged, [3400, 1200]);
    sb.shutdown().await;
}
