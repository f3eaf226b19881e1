//! Every branch of the engine, as plain unit tests.

use std::time::Duration;

use jiff::Timestamp;

use super::conditions::{ConditionType, PAID, PAYABLE, READY, RECONCILING, STALLED, find, is_true};
use super::*;
use dealpay_api::{DealPaymentSpec, DealPaymentStatus, OrderState, Time};
use tencent_billing::models::{Deal, PayDealsResponse, ResourceIds};
use tencent_billing::{ApiError, CallError};

const T0: &str = "2026-11-28T10:00:00Z";

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn spec(ids: &[&str]) -> DealPaymentSpec {
    DealPaymentSpec {
        order_ids: ids.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn creds(v: &str) -> CredentialsState {
    CredentialsState::Available { version: v.into() }
}

struct Run {
    spec: DealPaymentSpec,
    status: Option<DealPaymentStatus>,
    generation: i64,
    now: Timestamp,
    creds: CredentialsState,
    n: u32,
    policy: Policy,
}

impl Run {
    fn new(spec: DealPaymentSpec) -> Self {
        Self {
            spec,
            status: None,
            generation: 1,
            now: ts(T0),
            creds: creds("1"),
            n: 0,
            policy: Policy::default(),
        }
    }
    /// A `Paid` event built with an empty attempt answers the attempt in flight.
    fn step(&mut self, mut event: Event) -> Decision {
        self.n += 1;
        if let Event::Paid { attempt, .. } = &mut event
            && attempt.id.is_empty()
            && let Some(a) = self.status.as_ref().and_then(|s| s.in_flight.clone())
        {
            *attempt = *a;
        }
        let event = bind_lookup(self.status.as_ref(), self.now, event);
        let d = decide(
            Input {
                spec: &self.spec,
                status: self.status.as_ref(),
                generation: self.generation,
                now: self.now,
                jitter: 0.999_999,
                attempt_id: format!("a{}", self.n),
                credentials: self.creds.clone(),
                event,
            },
            &self.policy,
        );
        self.status = Some(d.status.clone());
        d
    }
    fn advance(&mut self, secs: i64) {
        self.now = self
            .now
            .checked_add(jiff::SignedDuration::from_secs(secs))
            .unwrap();
    }
    fn st(&self) -> &DealPaymentStatus {
        self.status.as_ref().unwrap()
    }
    fn cond(&self, t: ConditionType) -> (String, String, String) {
        let c = find(&self.st().conditions, t).unwrap();
        (c.status.clone(), c.reason.clone(), c.message.clone())
    }
}

/// An answer to the attempt in flight (see [`Run::step`]).
fn answer(result: Result<PayDealsResponse, CallError>) -> Event {
    Event::Paid {
        attempt: dealpay_api::Attempt {
            id: String::new(),
            started_at: "2026-11-28T00:00:00Z".parse().unwrap(),
            kind: IdKind::Order,
            ids: vec![],
            generation: 0,
            quoted_cents: None,
            answered: None,
            number: 0,
        },
        result,
    }
}

fn ok(order_ids: &[&str], rid: &str) -> Event {
    answer(Ok(PayDealsResponse {
        order_ids: order_ids.iter().map(|s| s.to_string()).collect(),
        resource_ids: ResourceIds {
            all: vec!["ins-1".into()],
            ..Default::default()
        },
        big_deal_ids: vec!["b1".into()],
        request_id: rid.into(),
    }))
}

fn api_err(code: &str) -> Event {
    answer(Err(CallError::Api(ApiError {
        code: code.into(),
        message: format!("{code} happened"),
        request_id: "rid-9".into(),
    })))
}

fn lost() -> Event {
    answer(Err(CallError::OutcomeUnknown(
        "timeout after sending".into(),
    )))
}

fn deal(id: &str, big: &str, status: i64) -> Deal {
    Deal {
        order_id: id.into(),
        big_deal_id: big.into(),
        status,
        resource_id: vec![format!("ins-{id}")],
        ..Default::default()
    }
}

/// A `LookedUp` event built with no ids answers the pending lookup, asked at `now`.
fn bind_lookup(status: Option<&DealPaymentStatus>, now: Timestamp, mut event: Event) -> Event {
    if let Event::LookedUp { asked, .. } = &mut event
        && asked.ids.is_empty()
        && let Some(p) = status.and_then(|s| s.pending_lookup.clone())
    {
        *asked = Asked {
            kind: p.kind,
            ids: p.ids,
            since: p.since,
            reason: p.reason,
            at: now,
        };
    }
    event
}

/// An answer to the pending lookup, asked now (see [`Run::step`]).
fn lookup_answer(result: Result<LookupAnswer, CallError>) -> Event {
    Event::LookedUp {
        asked: Asked {
            kind: IdKind::Order,
            ids: vec![],
            since: Time::new(Timestamp::UNIX_EPOCH),
            reason: dealpay_api::LookupReason::Resume,
            at: Timestamp::UNIX_EPOCH,
        },
        result,
    }
}

fn looked_up(deals: Vec<Deal>) -> Event {
    lookup_answer(Ok(LookupAnswer {
        deals,
        request_id: "lookup-rid".into(),
    }))
}

fn is_pay(a: &Action) -> bool {
    matches!(a, Action::Pay { .. })
}

#[test]
fn new_payment_records_intent_before_paying() {
    let mut r = Run::new(spec(&["o1", "o2"]));
    let d = r.step(Event::Observe);
    let Action::Pay { attempt, request } = &d.action else {
        panic!("{:?}", d.action)
    };
    assert_eq!(request.order_ids, ["o1", "o2"]);
    assert_eq!(request.auto_voucher, 0);
    assert_eq!(
        d.status.in_flight.as_deref(),
        Some(attempt),
        "the write-ahead record is in the status to persist"
    );
    assert_eq!(attempt.id, "a1");
    assert_eq!(attempt.started_at, T0);
    assert_eq!(d.status.attempts, 1);
    assert_eq!(r.cond(READY).0, "False");
    assert_eq!(r.cond(READY).1, "Paying");
    assert_eq!(r.cond(RECONCILING).0, "True");
    assert_eq!(r.cond(STALLED).0, "False");
    assert_eq!(r.cond(PAID).0, "False");
    assert_eq!(d.status.observed_generation, Some(1));
    assert!(d.notes.iter().any(|n| n.reason == "PaymentStarted"));
}

#[test]
fn success_is_paid_then_ready_only_once_delivered() {
    let mut r = Run::new(spec(&["o1", "o2"]));
    r.step(Event::Observe);
    r.advance(1);
    let d = r.step(ok(&["o1", "o2"], "rid-1"));
    let Action::LookUp { ids, .. } = &d.action else {
        panic!("{:?}", d.action)
    };
    assert_eq!(ids, &["o1", "o2"], "delivery is confirmed by a lookup");
    let st = r.st();
    assert!(st.in_flight.is_none());
    assert_eq!(st.order_ids, ["o1", "o2"]);
    assert_eq!(st.request_id.as_deref(), Some("rid-1"));
    assert_eq!(
        st.paid_at.map(|t| t.to_string()).as_deref(),
        Some("2026-11-28T10:00:01Z")
    );
    assert_eq!(st.orders[0].state, OrderState::Delivering);
    assert_eq!(r.cond(PAID).0, "True");
    assert_eq!(r.cond(READY).0, "False");
    assert_eq!(r.cond(READY).1, "Delivering");
    // Still delivering: Ready stays False, and it looks again after a while.
    let d = r.step(looked_up(vec![deal("o1", "", 4), deal("o2", "", 3)]));
    assert!(
        matches!(d.action, Action::RequeueAfter(_)),
        "{:?}",
        d.action
    );
    assert_eq!(r.cond(READY).1, "Delivering");
    assert_eq!(r.cond(RECONCILING).0, "True");
    assert_eq!(r.cond(STALLED).0, "False");
    assert!(
        r.cond(READY).2.contains("o2: delivering"),
        "{}",
        r.cond(READY).2
    );
    r.advance(5);
    let d = r.step(Event::Observe);
    let Action::LookUp { ids, .. } = &d.action else {
        panic!("{:?}", d.action)
    };
    assert_eq!(ids, &["o2"]);
    let d = r.step(looked_up(vec![deal("o2", "", 4)]));
    assert_eq!(d.action, Action::Done);
    assert_eq!(r.st().resource_ids, ["ins-1", "ins-o1", "ins-o2"]);
    assert_eq!(
        r.st().request_id.as_deref(),
        Some("rid-1"),
        "the PayDeals RequestId stays the proof"
    );
    assert_eq!(r.cond(READY).0, "True");
    assert_eq!(r.cond(READY).1, "Paid");
    assert_eq!(r.cond(RECONCILING).0, "False");
    assert_eq!(r.cond(STALLED).0, "False");
    assert_eq!(r.cond(PAID).0, "True");
    assert_eq!(r.st().attempts, 1);
    // Settled stays settled, even without credentials.
    r.creds = CredentialsState::Unavailable {
        reason: dealpay_api::Reason::SecretNotFound,
        message: "gone".into(),
    };
    assert_eq!(r.step(Event::Observe).action, Action::Done);
}

#[test]
fn delivery_that_fails_later_is_seen() {
    let mut r = Run::new(spec(&["o1"]));
    r.step(Event::Observe);
    r.step(ok(&["o1"], "rid-1"));
    r.step(looked_up(vec![deal("o1", "", 2)]));
    assert_eq!(r.cond(READY).1, "Delivering");
    r.advance(10);
    r.step(Event::Observe);
    let d = r.step(looked_up(vec![deal("o1", "", 5)]));
    assert_eq!(d.action, Action::AwaitChange { recheck: None });
    assert_eq!(r.cond(READY).1, "DeliveryFailed");
    assert_eq!(r.cond(STALLED).0, "True");
    assert_eq!(
        r.cond(PAID),
        ("True".into(), "DeliveryFailed".into(), r.cond(PAID).2)
    );
    assert_eq!(r.st().attempts, 1);
}

#[test]
fn partial_success_looks_up_the_rest_and_never_repays_the_paid() {
    let mut r = Run::new(spec(&["o1", "o2"]));
    r.step(Event::Observe);
    let d = r.step(ok(&["o1"], "rid-1"));
    let Action::LookUp { ids, kind, .. } = &d.action else {
        panic!("{:?}", d.action)
    };
    assert_eq!(ids, &["o1", "o2"]);
    assert_eq!(*kind, IdKind::Order);
    assert_eq!(r.cond(PAID).1, "PartiallyPaid");
    assert_eq!(r.cond(READY).1, "OutcomeUnknown");
    // o2 proves unpaid: after a pause (an unlisted id is an unknown outcome), only o2 is paid again.
    let d = r.step(looked_up(vec![deal("o1", "b", 4), deal("o2", "b", 1)]));
    assert!(
        matches!(d.action, Action::RequeueAfter(_)),
        "{:?}",
        d.action
    );
    r.advance(10);
    let d = r.step(Event::Observe);
    let Action::Pay { request, .. } = &d.action else {
        panic!("{:?}", d.action)
    };
    assert_eq!(request.order_ids, ["o2"]);
}

#[test]
fn terminal_error_waits_for_a_spec_change() {
    let mut r = Run::new(spec(&["o1"]));
    r.step(Event::Observe);
    let d = r.step(api_err("FailedOperation.NeedPayTogether"));
    assert_eq!(d.action, Action::AwaitChange { recheck: None });
    let (s, reason, msg) = r.cond(STALLED);
    assert_eq!((s.as_str(), reason.as_str()), ("True", "NeedPayTogether"));
    assert!(
        msg.contains("FailedOperation.NeedPayTogether") && msg.contains("rid-9"),
        "{msg}"
    );
    assert_eq!(r.cond(READY).1, "NeedPayTogether");
    assert_eq!(r.cond(RECONCILING).0, "False");
    assert_eq!(
        r.st().last_error.as_ref().unwrap().class,
        dealpay_api::ErrorClass::Terminal
    );
    r.advance(3600);
    assert_eq!(
        r.step(Event::Observe).action,
        Action::AwaitChange { recheck: None }
    );
    r.generation = 2;
    r.spec.order_ids.push("o9".into());
    let d = r.step(Event::Observe);
    assert!(
        is_pay(&d.action),
        "a new generation re-decides: {:?}",
        d.action
    );
    assert!(r.st().last_error.is_none());
}

#[test]
fn invalid_deal_is_looked_up_and_may_mean_already_paid() {
    let mut r = Run::new(spec(&["o1"]));
    r.step(Event::Observe);
    let d = r.step(api_err("FailedOperation.InvalidDeal"));
    assert!(matches!(d.action, Action::LookUp { .. }), "{:?}", d.action);
    let d = r.step(looked_up(vec![deal("o1", "b", 4)]));
    assert_eq!(d.action, Action::Done);
    assert_eq!(r.st().request_id.as_deref(), Some("lookup-rid"));
    assert_eq!(r.st().resource_ids, ["ins-o1"]);
    assert!(r.st().last_error.is_none());
}

#[test]
fn invalid_deal_on_an_unpaid_order_stalls_instead_of_looping() {
    let mut r = Run::new(spec(&["o1"]));
    r.step(Event::Observe);
    r.step(api_err("FailedOperation.InvalidDeal"));
    let d = r.step(looked_up(vec![deal("o1", "b", 1)]));
    assert_eq!(d.action, Action::AwaitChange { recheck: None });
    assert_eq!(r.cond(STALLED).0, "True");
    assert_eq!(r.cond(READY).1, "InvalidDeal");
}

#[test]
fn invalid_deal_on_a_batch_records_the_paid_and_pays_the_unpaid_rest() {
    let mut r = Run::new(spec(&["o1", "o2"]));
    r.step(Event::Observe);
    r.step(api_err("FailedOperation.InvalidDeal"));
    let d = r.step(looked_up(vec![deal("o1", "", 4), deal("o2", "", 1)]));
    let Action::Pay { request, .. } = &d.action else {
        panic!("{:?}", d.action)
    };
    assert_eq!(request.order_ids, ["o2"]);
    assert_eq!(r.st().orders[0].state, OrderState::Paid);
    assert_eq!(r.cond(STALLED).0, "False");
    // And if PayDeals calls the unpaid rest invalid again, it stalls naming what to do.
    let d = r.step(api_err("FailedOperation.InvalidDeal"));
    assert!(matches!(d.action, Action::LookUp { .. }));
    let d = r.step(looked_up(vec![deal("o2", "", 1)]));
    assert_eq!(d.action, Action::AwaitChange { recheck: None });
    assert_eq!(r.cond(STALLED).1, "InvalidDeal");
    assert!(
        d.notes
            .iter()
            .any(|n| n.message.contains("toggle spec.suspend"))
    );
}

#[test]
fn invalid_deal_then_not_found_stalls_but_keeps_looking() {
    let mut r = Run::new(spec(&["o1"]));
    r.step(Event::Observe);
    r.step(api_err("FailedOperation.InvalidDeal"));
    let mut lookups = 0;
    for _ in 0..6 {
        if matches!(r.step(Event::Observe).action, Action::LookUp { .. }) {
            lookups += 1;
            r.step(looked_up(vec![]));
        }
        r.advance(600);
    }
    assert!(lookups >= 5);
    assert_eq!(r.cond(STALLED).0, "True");
    assert_eq!(r.cond(STALLED).1, "OrderNotFound");
    assert!(matches!(
        r.step(Event::Observe).action,
        Action::LookUp { .. }
    ));
    assert_eq!(r.st().attempts, 1);
}

#[test]
fn needs_human_backs_off_slowly_and_resets_on_new_credentials() {
    let mut r = Run::new(spec(&["o1"]));
    r.step(Event::Observe);
    let d = r.step(api_err("FailedOperation.BalanceInsufficient"));
    assert_eq!(
        d.action,
        Action::RequeueAfter(Duration::from_millis(29_999)),
        "30s base, jitter 0.999"
    );
    assert_eq!(r.cond(READY).1, "BalanceInsufficient");
    assert_eq!(r.cond(STALLED).0, "True");
    assert!(r.cond(READY).2.contains("The") || r.cond(READY).2.contains("happened"));
    // Before the time: still waiting.
    r.advance(10);
    assert!(
        matches!(r.step(Event::Observe).action, Action::RequeueAfter(d) if d.as_millis() == 19_999)
    );
    // After: pays again; fails again; the delay doubles.
    r.advance(30);
    assert!(is_pay(&r.step(Event::Observe).action));
    let d = r.step(api_err("FailedOperation.BalanceInsufficient"));
    assert_eq!(
        d.action,
        Action::RequeueAfter(Duration::from_millis(59_999))
    );
    assert_eq!(r.st().consecutive_failures, 2);
    // The Secret changes: retry now.
    r.creds = creds("2");
    let d = r.step(Event::Observe);
    assert!(is_pay(&d.action), "{:?}", d.action);
    assert!(d.notes.iter().any(|n| n.reason == "CredentialsChanged"));
    // Success resets everything.
    r.step(ok(&["o1"], "r"));
    assert_eq!(r.st().consecutive_failures, 0);
    assert!(r.st().next_retry_at.is_none());
}

#[test]
fn backoff_is_capped() {
    let mut r = Run::new(spec(&["o1"]));
    for _ in 0..12 {
        r.advance(3600);
        assert!(is_pay(&r.step(Event::Observe).action));
        r.step(api_err("UnauthorizedOperation.CamNoAuth"));
    }
    assert_eq!(
        r.step(Event::Observe).action,
        Action::RequeueAfter(Duration::from_millis(899_999))
    );
}

#[test]
fn transient_errors_retry_fast_without_stalling() {
    let mut r = Run::new(spec(&["o1"]));
    r.step(Event::Observe);
    let d = r.step(api_err("RequestLimitExceeded"));
    assert_eq!(d.action, Action::RequeueAfter(Duration::from_millis(999)));
    assert_eq!(r.cond(READY).1, "RateLimited");
    assert_eq!(r.cond(STALLED).0, "False");
    assert_eq!(r.cond(RECONCILING).0, "True");
    r.advance(1);
    assert!(is_pay(&r.step(Event::Observe).action));
    let d = r.step(answer(Err(CallError::NotSent("connection refused".into()))));
    assert!(matches!(d.action, Action::RequeueAfter(_)));
    r.advance(5);
    assert!(is_pay(&r.step(Event::Observe).action));
    let d = r.step(api_err("AuthFailure.SignatureExpire"));
    assert!(matches!(d.action, Action::RequeueAfter(_)));
    assert!(r.cond(READY).2.contains("clock"), "{}", r.cond(READY).2);
}

#[test]
fn charged_not_delivered_is_never_paid_again() {
    let mut r = Run::new(spec(&["o1"]));
    r.step(Event::Observe);
    let d = r.step(api_err("FailedOperation.PaySuccDeliverFailed"));
    assert!(matches!(d.action, Action::LookUp { .. }), "{:?}", d.action);
    let d = r.step(looked_up(vec![deal("o1", "", 5)]));
    assert_eq!(d.action, Action::AwaitChange { recheck: None });
    assert_eq!(
        r.cond(STALLED),
        ("True".into(), "DeliveryFailed".into(), r.cond(STALLED).2)
    );
    assert_eq!(r.cond(PAID).0, "True");
    assert_eq!(r.cond(PAID).1, "DeliveryFailed");
    assert_eq!(r.cond(READY).0, "False");
    r.generation = 2;
    assert!(
        !is_pay(&r.step(Event::Observe).action),
        "even a new generation does not pay it again"
    );
}

#[test]
fn deliver_failed_on_several_orders_records_each_order_as_it_is() {
    let mut r = Run::new(spec(&["o1", "o2", "o3"]));
    r.step(Event::Observe);
    let d = r.step(api_err("FailedOperation.PaySuccDeliverFailed"));
    assert!(matches!(d.action, Action::LookUp { .. }), "{:?}", d.action);
    assert_eq!(
        r.cond(PAID).0,
        "False",
        "nothing is claimed before the lookup"
    );
    r.step(looked_up(vec![
        deal("o1", "", 4),
        deal("o2", "", 5),
        deal("o3", "", 3),
    ]));
    let st = r.st();
    let state = |id: &str| st.orders.iter().find(|o| o.id == id).unwrap().state;
    assert_eq!(state("o1"), OrderState::Paid);
    assert_eq!(state("o2"), OrderState::DeliveryFailed);
    assert_eq!(state("o3"), OrderState::Delivering);
    assert!(st.resource_ids.contains(&"ins-o1".to_string()));
    assert_eq!(r.cond(PAID).1, "DeliveryFailed");
    assert_eq!(st.attempts, 1);
}

#[test]
fn outcome_unknown_looks_up_over_a_window_around_the_attempt() {
    for e in [
        lost(),
        api_err("InternalError"),
        api_err("FailedOperation"),
        api_err("Something.New"),
    ] {
        let mut r = Run::new(spec(&["o1"]));
        r.step(Event::Observe);
        let d = r.step(e);
        let Action::LookUp {
            ids,
            start_time,
            end_time,
            ..
        } = &d.action
        else {
            panic!("{:?}", d.action)
        };
        assert_eq!(ids, &["o1"]);
        // T0 is 18:00 in UTC+8; 31 days back, one day ahead.
        assert_eq!(start_time, "2026-10-28 18:00:00");
        assert_eq!(end_time, "2026-11-29 18:00:00");
        assert_eq!(r.cond(READY).1, "OutcomeUnknown");
        assert!(r.st().pending_lookup.is_some());
        assert!(d.notes.iter().any(|n| n.reason == "OutcomeUnknown"));
    }
}

fn after_unknown(status: Option<i64>) -> (Run, Decision) {
    let mut r = Run::new(spec(&["o1"]));
    r.step(Event::Observe);
    r.step(lost());
    let deals = status
        .map(|s| vec![deal("o1", "b", s), deal("other", "b", 1)])
        .unwrap_or_default();
    let d = r.step(looked_up(deals));
    (r, d)
}

#[test]
fn every_lookup_status_has_its_verdict() {
    let (r, d) = after_unknown(Some(4));
    assert_eq!(d.action, Action::Done);
    assert_eq!(r.st().orders[0].state, OrderState::Paid);
    for s in [2, 3] {
        let (r, d) = after_unknown(Some(s));
        assert!(matches!(d.action, Action::RequeueAfter(_)), "status {s}");
        assert_eq!(r.st().orders[0].state, OrderState::Delivering);
        assert_eq!(r.cond(READY).1, "Delivering");
        assert_eq!(r.cond(PAID).0, "True");
        assert_eq!(r.st().attempts, 1, "never paid twice");
        assert_eq!(r.st().unknown_outcomes, 0, "the outcome is known now");
    }
    let (r, d) = after_unknown(Some(5));
    assert_eq!(d.action, Action::AwaitChange { recheck: None });
    assert_eq!(r.cond(READY).1, "DeliveryFailed");
    assert_eq!(r.cond(PAID).0, "True");
    let (r, d) = after_unknown(Some(1));
    assert!(
        matches!(d.action, Action::RequeueAfter(_)),
        "unpaid proves a new attempt safe, after a pause: {:?}",
        d.action
    );
    assert_eq!(r.st().attempts, 1);
    assert_eq!(r.cond(READY).1, "OutcomeUnknown");
    for s in [6, 7, 8, 9, 10, 11, 13] {
        let (r, d) = after_unknown(Some(s));
        assert_eq!(
            d.action,
            Action::AwaitChange { recheck: None },
            "status {s}"
        );
        assert_eq!(r.cond(READY).1, "OrderUnpayable");
        assert_eq!(r.cond(STALLED).0, "True");
    }
    for s in [Some(12), Some(30), None] {
        let (r, d) = after_unknown(s);
        assert_eq!(
            d.action,
            Action::RequeueAfter(Duration::from_millis(1999)),
            "status {s:?}"
        );
        assert!(r.st().pending_lookup.is_some());
        assert_eq!(
            r.cond(READY).1,
            if s.is_none() {
                "OrderNotFound"
            } else {
                "OutcomeUnknown"
            }
        );
    }
}

#[test]
fn a_persistent_unknown_outcome_backs_off_then_stalls_and_never_storms() {
    let mut r = Run::new(spec(&["o1"]));
    let mut pays: Vec<Timestamp> = Vec::new();
    let mut lookups = 0;
    // An hour of a PayDeals that always answers InternalError and never charges.
    let end = r
        .now
        .checked_add(jiff::SignedDuration::from_secs(3600))
        .unwrap();
    while r.now < end {
        let d = r.step(Event::Observe);
        match d.action {
            Action::Pay { .. } => {
                pays.push(r.now);
                let d = r.step(api_err("InternalError"));
                assert!(
                    matches!(d.action, Action::LookUp { .. }),
                    "lookup before anything: {:?}",
                    d.action
                );
            }
            Action::LookUp { .. } => {
                lookups += 1;
                let d = r.step(looked_up(vec![deal("o1", "", 1)]));
                assert!(
                    matches!(d.action, Action::RequeueAfter(_)),
                    "{:?}",
                    d.action
                );
            }
            Action::RequeueAfter(w) => r.advance(w.as_secs().max(1) as i64),
            a => panic!("{a:?}"),
        }
    }
    let gaps: Vec<i64> = pays
        .windows(2)
        .map(|w| w[1].duration_since(w[0]).as_secs())
        .collect();
    assert!(
        pays.len() <= 8,
        "{} PayDeals in an hour: {gaps:?}",
        pays.len()
    );
    // The request given up on may execute for 300 s (+60 s margin): never a new one before that.
    assert!(gaps.iter().all(|&g| g > 360), "{gaps:?}");
    assert!(gaps.windows(2).all(|w| w[1] >= w[0]), "{gaps:?}");
    assert!(
        lookups <= pays.len() * 8,
        "{lookups} lookups for {} payments",
        pays.len()
    );
    assert!(r.st().unknown_outcomes >= 5);
    let (s, reason, msg) = r.cond(STALLED);
    assert_eq!((s.as_str(), reason.as_str()), ("True", "OutcomeUnknown"));
    let ready = r.cond(READY).2;
    assert!(
        ready.contains("InternalError") && ready.contains("happened") && ready.contains("rid-9"),
        "{ready}"
    );
    assert!(
        msg.contains("next attempt in") || msg.contains("signature window"),
        "{msg}"
    );
    // A new generation starts the curve afresh, once the last request is surely dead.
    r.generation = 2;
    let mut paid_again = false;
    for _ in 0..6 {
        match r.step(Event::Observe).action {
            Action::Pay { .. } => {
                paid_again = true;
                break;
            }
            Action::LookUp { .. } => {
                r.step(looked_up(vec![deal("o1", "", 1)]));
            }
            Action::RequeueAfter(w) => {
                assert!(w.as_secs() <= 361, "the curve started afresh: {w:?}");
                r.advance(w.as_secs().max(1) as i64);
            }
            a => panic!("{a:?}"),
        }
    }
    assert!(paid_again);
    assert_eq!(r.st().unknown_outcomes, 0);
}

/// After a lost answer, the lookups that prove `o1` unpaid once the request given up on is dead.
fn settle_unpaid_after_the_window(r: &mut Run) {
    r.step(looked_up(vec![deal("o1", "", 1)]));
    r.advance(361);
    assert!(matches!(
        r.step(Event::Observe).action,
        Action::LookUp { .. }
    ));
    r.step(looked_up(vec![deal("o1", "", 1)]));
    assert!(
        r.st().pending_lookup.is_none(),
        "{:?}",
        r.st().pending_lookup
    );
}

#[test]
fn new_credentials_reset_the_unknown_outcome_curve() {
    let mut r = Run::new(spec(&["o1"]));
    for _ in 0..3 {
        r.advance(3600);
        assert!(is_pay(&r.step(Event::Observe).action));
        r.step(api_err("InternalError"));
        settle_unpaid_after_the_window(&mut r);
    }
    assert_eq!(r.st().unknown_outcomes, 3);
    assert!(matches!(
        r.step(Event::Observe).action,
        Action::RequeueAfter(_)
    ));
    r.creds = creds("2");
    assert!(is_pay(&r.step(Event::Observe).action));
}

#[test]
fn unsettled_lookups_repeat_and_finally_stall() {
    let (mut r, _) = after_unknown(Some(12));
    for _ in 0..4 {
        r.advance(600);
        assert!(matches!(
            r.step(Event::Observe).action,
            Action::LookUp { .. }
        ));
        r.step(looked_up(vec![]));
    }
    assert_eq!(
        r.cond(STALLED).0,
        "True",
        "five inconclusive lookups need a person"
    );
    r.advance(600);
    assert!(
        matches!(r.step(Event::Observe).action, Action::LookUp { .. }),
        "but it keeps looking"
    );
    let d = r.step(looked_up(vec![deal("o1", "b", 4)]));
    assert_eq!(d.action, Action::Done);
}

#[test]
fn failing_lookups_retry_with_backoff_and_say_so() {
    let (mut r, _) = after_unknown(None);
    r.advance(600);
    assert!(matches!(
        r.step(Event::Observe).action,
        Action::LookUp { .. }
    ));
    let d = r.step(lookup_answer(Err(CallError::NotSent("refused".into()))));
    assert!(matches!(d.action, Action::RequeueAfter(_)));
    assert!(d.notes.iter().any(|n| n.reason == "LookupFailed"));
    assert!(
        r.cond(READY).2.contains("Transport.NotSent"),
        "{}",
        r.cond(READY).2
    );
    assert!(r.st().in_flight.is_none());
    assert_eq!(r.st().attempts, 1);
}

#[test]
fn crash_between_intent_and_outcome_looks_up_first() {
    let mut r = Run::new(spec(&["o1"]));
    let d = r.step(Event::Observe);
    assert!(is_pay(&d.action));
    // The process dies after persisting the intent; a new one observes.
    r.advance(120);
    let d = r.step(Event::Observe);
    assert!(matches!(d.action, Action::LookUp { .. }), "{:?}", d.action);
    assert!(r.st().in_flight.is_none());
    assert!(d.notes.iter().any(|n| n.reason == "OutcomeUnknown"));
    // Even suspended or with a changed spec, the lookup comes first.
    r.spec.suspend = true;
    r.generation = 2;
    assert!(matches!(
        r.step(Event::Observe).action,
        Action::LookUp { .. }
    ));
}

#[test]
fn suspend_pays_nothing_until_flipped() {
    let mut s = spec(&["o1"]);
    s.suspend = true;
    let mut r = Run::new(s);
    let d = r.step(Event::Observe);
    assert_eq!(d.action, Action::AwaitChange { recheck: None });
    assert_eq!(r.cond(READY).1, "Suspended");
    assert_eq!(r.cond(STALLED).0, "False");
    // An approval gate reads as work in progress (kstatus InProgress), never as settled.
    assert_eq!(r.cond(RECONCILING).0, "True");
    assert_eq!(r.cond(RECONCILING).1, "Suspended");
    assert_eq!(r.st().attempts, 0);
    r.spec.suspend = false;
    r.generation = 2;
    assert!(is_pay(&r.step(Event::Observe).action));
}

#[test]
fn missing_credentials_stall_with_the_reason() {
    let mut r = Run::new(spec(&["o1"]));
    r.creds = CredentialsState::Unavailable {
        reason: dealpay_api::Reason::SecretNotFound,
        message: "Secret ns/x not found".into(),
    };
    let d = r.step(Event::Observe);
    assert!(matches!(d.action, Action::AwaitChange { recheck: Some(_) }));
    assert_eq!(r.cond(READY).1, "SecretNotFound");
    assert_eq!(r.cond(STALLED).0, "True");
    r.creds = creds("7");
    assert!(is_pay(&r.step(Event::Observe).action));
}

#[test]
fn invalid_spec_stalls_naming_the_field() {
    let mut r = Run::new(DealPaymentSpec {
        order_ids: vec!["o1".into()],
        big_deal_ids: vec!["b1".into()],
        ..Default::default()
    });
    assert_eq!(
        r.step(Event::Observe).action,
        Action::AwaitChange { recheck: None }
    );
    assert_eq!(r.cond(READY).1, "InvalidSpec");
    assert!(r.cond(READY).2.contains("spec.orderIds"));
}

#[test]
fn added_orders_pay_only_the_new_ones() {
    let mut r = Run::new(spec(&["o1"]));
    r.step(Event::Observe);
    r.step(ok(&["o1"], "r1"));
    r.spec.order_ids.push("o2".into());
    r.generation = 2;
    let d = r.step(Event::Observe);
    let Action::Pay { request, .. } = &d.action else {
        panic!()
    };
    assert_eq!(request.order_ids, ["o2"]);
}

#[test]
fn big_deals_pay_and_look_up_by_big_deal_id() {
    let mut r = Run::new(DealPaymentSpec {
        big_deal_ids: vec!["b1".into()],
        auto_voucher: true,
        voucher_ids: vec!["v1".into()],
        agent_pay: 3,
        cps_uin: Some("42".into()),
        ..Default::default()
    });
    let d = r.step(Event::Observe);
    let Action::Pay { request, .. } = &d.action else {
        panic!()
    };
    assert_eq!(request.big_deal_ids, ["b1"]);
    assert!(request.order_ids.is_empty());
    assert_eq!((request.auto_voucher, request.agent_pay), (1, 3));
    assert_eq!(request.voucher_ids, ["v1"]);
    assert_eq!(request.cps_uin.as_deref(), Some("42"));
    let d = r.step(lost());
    assert!(matches!(
        &d.action,
        Action::LookUp {
            kind: IdKind::BigDeal,
            ..
        }
    ));
    // Mixed sub-order states are not settled.
    let d = r.step(looked_up(vec![deal("s1", "b1", 4), deal("s2", "b1", 1)]));
    assert!(matches!(d.action, Action::RequeueAfter(_)));
    r.advance(60);
    r.step(Event::Observe);
    let d = r.step(looked_up(vec![deal("s1", "b1", 4), deal("s2", "b1", 3)]));
    assert!(matches!(d.action, Action::RequeueAfter(_)));
    assert_eq!(r.cond(READY).1, "Delivering");
    r.advance(60);
    r.step(Event::Observe);
    let d = r.step(looked_up(vec![deal("s1", "b1", 4), deal("s2", "b1", 4)]));
    assert_eq!(d.action, Action::Done);
    assert_eq!(r.st().order_ids, ["s1", "s2"]);
    assert_eq!(r.st().big_deal_ids, ["b1"]);
}

#[test]
fn big_deals_with_mixed_final_sub_orders_settle_with_money_shown_as_moved() {
    for (a, b, reason) in [
        (4, 6, "PartlyUnpayable"),
        (4, 7, "PartlyUnpayable"),
        (4, 5, "DeliveryFailed"),
    ] {
        let mut r = Run::new(DealPaymentSpec {
            big_deal_ids: vec!["b1".into()],
            ..Default::default()
        });
        r.step(Event::Observe);
        r.step(lost());
        let d = r.step(looked_up(vec![deal("s1", "b1", a), deal("s2", "b1", b)]));
        assert_eq!(d.action, Action::AwaitChange { recheck: None }, "{a},{b}");
        assert_eq!(r.cond(PAID).0, "True", "{a},{b}: money moved");
        assert_eq!(r.cond(READY).1, reason, "{a},{b}");
        assert_eq!(r.cond(STALLED).0, "True");
        assert_eq!(r.st().attempts, 1);
    }
}

/// A PayDeals attempt recorded and, `secs` later, taken over by a lookup (crash recovery or another
/// replica) before its answer came: the setting of every late-answer test.
fn taken_over(secs: i64) -> (Run, dealpay_api::Attempt) {
    let mut r = Run::new(spec(&["o1"]));
    r.step(Event::Observe);
    let attempt = *r.st().in_flight.clone().unwrap();
    r.advance(secs);
    assert!(matches!(
        r.step(Event::Observe).action,
        Action::LookUp { .. }
    ));
    (r, attempt)
}

#[test]
fn a_late_success_is_kept_as_proof_of_payment() {
    // The attempt was taken over (crash recovery turned it into a lookup) before its answer came.
    let (mut r, attempt) = taken_over(60);
    let d = r.step(Event::Paid {
        attempt,
        result: Ok(PayDealsResponse {
            order_ids: vec!["o1".into()],
            request_id: "late".into(),
            ..Default::default()
        }),
    });
    assert!(d.notes.iter().any(|n| n.reason == "LateAnswer"));
    assert_eq!(r.st().orders[0].state, OrderState::Delivering);
    assert_eq!(r.cond(PAID).0, "True");
    assert!(!is_pay(&d.action));
}

#[test]
fn a_late_failure_changes_nothing() {
    let mut r = Run::new(spec(&["o1"]));
    r.status = Some(DealPaymentStatus::default());
    let d = r.step(api_err("InternalError"));
    assert!(d.notes.iter().any(|n| n.reason == "UnexpectedResult"));
    assert!(is_pay(&d.action), "nothing was recorded as paid");
}

#[test]
fn a_held_attempt_is_not_recorded() {
    let mut r = Run::new(spec(&["o1"]));
    let d = decide(
        Input {
            spec: &r.spec,
            status: None,
            generation: 1,
            now: r.now,
            jitter: 0.5,
            attempt_id: "x".into(),
            credentials: r.creds.clone(),
            event: Event::Observe,
        },
        &Policy::default().holding(),
    );
    assert_eq!(d.action, Action::RequeueAfter(Duration::ZERO));
    assert!(d.status.in_flight.is_none());
    assert_eq!(d.status.attempts, 0);
    r.status = Some(d.status);
    assert!(
        find(&r.st().conditions, READY)
            .unwrap()
            .message
            .contains("no PayDeals call made yet")
    );
}

#[test]
fn a_carried_over_status_is_verified_before_it_is_believed() {
    let mut r = Run::new(spec(&["o1"]));
    r.step(Event::Observe);
    r.step(ok(&["o1"], "old-endpoint"));
    r.step(looked_up(vec![deal("o1", "", 4)]));
    assert!(is_true(&r.st().conditions, READY));
    r.status = Some(verify_first(r.st().clone(), &r.spec, r.now));
    let d = r.step(Event::Observe);
    assert!(matches!(d.action, Action::LookUp { .. }), "{:?}", d.action);
    assert!(!is_true(&r.st().conditions, READY));
    assert!(r.st().request_id.is_none());
    // Unknown here: pays it.
    let d = r.step(looked_up(vec![deal("o1", "", 1)]));
    assert!(is_pay(&d.action), "{:?}", d.action);
}

#[test]
fn transition_times_are_stable_across_decisions() {
    let mut r = Run::new(spec(&["o1"]));
    r.step(Event::Observe);
    let t = find(&r.st().conditions, READY)
        .unwrap()
        .last_transition_time
        .clone();
    r.advance(5);
    r.step(api_err("RequestLimitExceeded"));
    assert_eq!(
        find(&r.st().conditions, READY)
            .unwrap()
            .last_transition_time,
        t
    );
    r.advance(5);
    r.step(Event::Observe);
    r.step(ok(&["o1"], "r"));
    r.step(looked_up(vec![deal("o1", "", 4)]));
    assert_ne!(
        find(&r.st().conditions, READY)
            .unwrap()
            .last_transition_time,
        t
    );
    assert!(is_true(&r.st().conditions, READY));
}

fn priced(id: &str, status: i64, cents: f64) -> Deal {
    Deal {
        real_total_cost: Some(cents),
        ..deal(id, "", status)
    }
}

fn capped(ids: &[&str], cap: &str) -> DealPaymentSpec {
    DealPaymentSpec {
        max_total_cost: Some(cap.into()),
        ..spec(ids)
    }
}

#[test]
fn a_cap_prices_the_orders_first_and_pays_within_it() {
    let mut r = Run::new(capped(&["o1", "o2"], "46.00"));
    let d = r.step(Event::Observe);
    let Action::LookUp { ids, .. } = &d.action else {
        panic!("priced before paying: {:?}", d.action)
    };
    assert_eq!(ids, &["o1", "o2"]);
    assert_eq!(r.cond(READY).1, "Pricing");
    assert_eq!(r.st().attempts, 0);
    let d = r.step(looked_up(vec![
        priced("o1", 1, 1200.0),
        priced("o2", 1, 3400.0),
    ]));
    let Action::Pay { attempt, .. } = &d.action else {
        panic!("{:?}", d.action)
    };
    assert_eq!(
        attempt.quoted_cents,
        Some(4600),
        "the write-ahead record notes the price"
    );
    assert_eq!(r.cond(PAYABLE).0, "True");
    assert!(d.notes.iter().any(|n| n.message.contains("priced 46.00")));
    r.step(ok(&["o1", "o2"], "rid"));
    // The price charged may differ from the quote: the total is what the delivered orders cost.
    let d = r.step(looked_up(vec![
        priced("o1", 4, 1200.0),
        priced("o2", 4, 3300.0),
    ]));
    assert_eq!(d.action, Action::Done);
    assert_eq!(r.st().total_cost.as_deref(), Some("45.00"));
    assert_eq!(r.st().orders[0].cost_cents, Some(1200));
}

#[test]
fn above_the_cap_nothing_is_paid() {
    for (cap, policy_cap) in [("45.99", None), ("100", Some(4599))] {
        let mut r = Run::new(capped(&["o1", "o2"], cap));
        let policy = Policy {
            max_total_cents: policy_cap,
            ..Policy::default()
        };
        let step = |r: &mut Run, event: Event| {
            let event = bind_lookup(r.status.as_ref(), r.now, event);
            let d = decide(
                Input {
                    spec: &r.spec,
                    status: r.status.as_ref(),
                    generation: 1,
                    now: r.now,
                    jitter: 0.5,
                    attempt_id: "a".into(),
                    credentials: r.creds.clone(),
                    event,
                },
                &policy,
            );
            r.status = Some(d.status.clone());
            d
        };
        step(&mut r, Event::Observe);
        let d = step(
            &mut r,
            looked_up(vec![priced("o1", 1, 1200.0), priced("o2", 1, 3400.0)]),
        );
        assert!(
            matches!(d.action, Action::AwaitChange { .. }),
            "{:?}",
            d.action
        );
        let (s, reason, msg) = r.cond(STALLED);
        assert_eq!((s.as_str(), reason.as_str()), ("True", "OverBudget"));
        assert!(msg.contains("46.00") && msg.contains("45.99"), "{msg}");
        assert_eq!(r.cond(PAYABLE).1, "OverBudget");
        assert_eq!(r.st().attempts, 0);
        assert_eq!(r.cond(PAID).0, "False");
    }
}

#[test]
fn a_cap_never_pays_blind() {
    for (deals, what) in [
        (vec![priced("o1", 1, 100.0)], "o2: not found"),
        (
            vec![priced("o1", 1, 100.0), deal("o2", "", 1)],
            "o2: no price",
        ),
        (
            vec![priced("o1", 1, 100.0), priced("o2", 12, 100.0)],
            "o2: not unpaid",
        ),
    ] {
        let mut r = Run::new(capped(&["o1", "o2"], "1000"));
        r.step(Event::Observe);
        let d = r.step(looked_up(deals));
        assert!(!is_pay(&d.action), "{what}");
        assert_eq!(r.cond(STALLED).1, "NotPayable", "{what}");
        assert!(r.cond(READY).2.contains(what), "{}", r.cond(READY).2);
        assert_eq!(r.cond(PAYABLE).0, "False");
    }
}

#[test]
fn an_old_price_is_checked_again_before_paying() {
    let mut r = Run::new(capped(&["o1"], "20"));
    r.spec.suspend = true;
    r.step(Event::Observe);
    r.spec.suspend = false;
    r.spec.dry_run = true;
    r.generation = 2;
    assert!(matches!(
        r.step(Event::Observe).action,
        Action::LookUp { .. }
    ));
    r.step(looked_up(vec![priced("o1", 1, 1200.0)]));
    r.advance(600);
    r.spec.dry_run = false;
    r.generation = 3;
    let d = r.step(Event::Observe);
    assert!(
        matches!(d.action, Action::LookUp { .. }),
        "a 10 minutes old price: {:?}",
        d.action
    );
    let d = r.step(looked_up(vec![priced("o1", 1, 2500.0)]));
    assert_eq!(r.cond(STALLED).1, "OverBudget", "{:?}", d.action);
}

#[test]
fn a_dry_run_proves_payability_then_turning_it_off_pays() {
    let mut r = Run::new(DealPaymentSpec {
        dry_run: true,
        ..spec(&["o1", "o2"])
    });
    assert!(matches!(
        r.step(Event::Observe).action,
        Action::LookUp { .. }
    ));
    let d = r.step(looked_up(vec![
        priced("o1", 1, 1200.0),
        priced("o2", 1, 3400.0),
    ]));
    assert_eq!(d.action, Action::AwaitChange { recheck: None });
    assert_eq!(r.cond(PAYABLE).0, "True");
    assert!(r.cond(PAYABLE).2.contains("46.00"), "{}", r.cond(PAYABLE).2);
    assert_eq!(r.cond(READY).1, "DryRun");
    assert_eq!(r.cond(STALLED).0, "False");
    assert_eq!(r.st().attempts, 0);
    r.spec.dry_run = false;
    r.generation = 2;
    let d = r.step(Event::Observe);
    assert!(
        is_pay(&d.action),
        "the recent price is reused: {:?}",
        d.action
    );
}

#[test]
fn without_a_cap_nothing_is_priced() {
    let mut r = Run::new(spec(&["o1"]));
    assert!(is_pay(&r.step(Event::Observe).action));
    assert!(find(&r.st().conditions, PAYABLE).is_none());
}

#[test]
fn a_late_refusal_keeps_its_own_backoff() {
    // Another replica took the attempt over and is about to look it up; then the refusal arrives.
    let (mut r, attempt) = taken_over(1);
    let d = r.step(Event::Paid {
        attempt,
        result: Err(CallError::Api(ApiError {
            code: "FailedOperation.BalanceInsufficient".into(),
            message: "no money".into(),
            request_id: "r".into(),
        })),
    });
    assert!(
        r.st().pending_lookup.is_none(),
        "nothing to look up: it was refused"
    );
    assert_eq!(r.st().unknown_outcomes, 0);
    assert!(
        matches!(d.action, Action::RequeueAfter(w) if w >= Duration::from_secs(15)),
        "{:?}",
        d.action
    );
    assert_eq!(r.cond(READY).1, "BalanceInsufficient");
}

#[test]
fn a_half_charged_big_deal_shows_the_money_moved_and_is_never_paid_again() {
    let mut r = Run::new(DealPaymentSpec {
        big_deal_ids: vec!["b1".into()],
        ..Default::default()
    });
    r.step(Event::Observe);
    r.step(lost());
    for _ in 0..7 {
        r.step(looked_up(vec![deal("s1", "b1", 4), deal("s2", "b1", 1)]));
        assert_eq!(r.cond(PAID).0, "True");
        r.advance(3600);
        let d = r.step(Event::Observe);
        assert!(matches!(d.action, Action::LookUp { .. }), "{:?}", d.action);
    }
    assert_eq!(r.st().attempts, 1);
    assert_eq!(r.cond(STALLED).1, "PartlyPaid");
    // If the rest gets paid after all, it settles.
    r.step(looked_up(vec![deal("s1", "b1", 4), deal("s2", "b1", 4)]));
    assert!(is_true(&r.st().conditions, READY));
}

#[test]
fn a_late_refusal_after_the_lookup_still_sets_its_backoff() {
    let mut r = Run::new(spec(&["o1"]));
    r.step(Event::Observe);
    let attempt = *r.st().in_flight.clone().unwrap();
    r.advance(1);
    r.step(Event::Observe);
    r.step(looked_up(vec![deal("o1", "", 1)]));
    assert_eq!(r.st().unknown_outcomes, 1);
    let d = r.step(Event::Paid {
        attempt,
        result: Err(CallError::Api(ApiError {
            code: "FailedOperation.BalanceInsufficient".into(),
            message: "no money".into(),
            request_id: "r".into(),
        })),
    });
    assert_eq!(r.st().unknown_outcomes, 0);
    assert!(
        matches!(d.action, Action::RequeueAfter(w) if w >= Duration::from_secs(15)),
        "{:?}",
        d.action
    );
}

fn budget(limit: i64, spent: i64, frees_at: Option<&str>) -> Option<WindowBudget> {
    Some(WindowBudget {
        limit_cents: limit,
        window: Duration::from_secs(24 * 3600),
        spent_cents: spent,
        frees_at: frees_at.map(ts),
    })
}

#[test]
fn the_namespace_budget_holds_a_payment_until_the_window_frees_up() {
    let mut r = Run::new(spec(&["o1", "o2"]));
    r.policy.namespace_budget = budget(5000, 4000, Some("2026-11-28T12:00:00Z"));
    assert!(
        matches!(r.step(Event::Observe).action, Action::LookUp { .. }),
        "a budget is a cap: priced first"
    );
    let d = r.step(looked_up(vec![
        priced("o1", 1, 1200.0),
        priced("o2", 1, 3400.0),
    ]));
    assert_eq!(
        d.action,
        Action::RequeueAfter(Duration::from_secs(2 * 3600)),
        "again when the oldest charge leaves the window"
    );
    let (_, reason, msg) = r.cond(READY);
    assert_eq!(reason, "OverBudget");
    for figure in [
        "46.00",
        "50.00 per 1d",
        "40.00 spent",
        "10.00 left",
        "2026-11-28T12:00:00Z",
    ] {
        assert!(msg.contains(figure), "{figure} in {msg}");
    }
    assert_eq!(r.cond(STALLED).0, "False", "it will progress by itself");
    assert_eq!(r.cond(RECONCILING).0, "True");
    assert_eq!(r.cond(PAYABLE).1, "OverBudget");
    assert_eq!(r.st().attempts, 0);
    // The window freed up: the old price is not trusted, the orders are priced again, then paid.
    r.advance(2 * 3600);
    r.policy.namespace_budget = budget(5000, 0, None);
    assert!(matches!(
        r.step(Event::Observe).action,
        Action::LookUp { .. }
    ));
    let d = r.step(looked_up(vec![
        priced("o1", 1, 1200.0),
        priced("o2", 1, 3400.0),
    ]));
    let Action::Pay { attempt, .. } = d.action else {
        panic!("{:?}", d.action)
    };
    assert_eq!(attempt.quoted_cents, Some(4600));
}

/// Prices o1 at 12.00 and expects the engine to hold the payment back (a cap or the budget).
fn priced_and_held(r: &mut Run) {
    r.step(Event::Observe);
    let d = r.step(looked_up(vec![priced("o1", 1, 1200.0)]));
    assert!(
        matches!(d.action, Action::AwaitChange { .. }),
        "{:?}",
        d.action
    );
}

#[test]
fn a_payment_above_the_whole_budget_stalls() {
    let mut r = Run::new(spec(&["o1"]));
    r.policy.namespace_budget = budget(1000, 500, Some("2026-11-28T12:00:00Z"));
    priced_and_held(&mut r);
    let (s, reason, msg) = r.cond(STALLED);
    assert_eq!((s.as_str(), reason.as_str()), ("True", "OverBudget"));
    assert!(msg.contains("can never be paid"), "{msg}");
}

#[test]
fn the_strictest_of_spec_operator_and_budget_wins() {
    // (spec cap, --max-total-cost, budget left, the source the message names, paid?)
    let cases = [
        (Some("45.00"), Some(9000), 8000, "spec.maxTotalCost", false),
        (Some("90.00"), Some(4500), 8000, "--max-total-cost", false),
        (
            Some("90.00"),
            Some(9000),
            4500,
            "the namespace budget",
            false,
        ),
        (None, None, 4600, "", true),
        (Some("46.00"), Some(4600), 4600, "", true),
    ];
    for (spec_cap, flag, left, source, paid) in cases {
        let mut r = Run::new(DealPaymentSpec {
            max_total_cost: spec_cap.map(str::to_string),
            ..spec(&["o1", "o2"])
        });
        r.policy.max_total_cents = flag;
        r.policy.namespace_budget = budget(10_000, 10_000 - left, Some("2026-11-28T12:00:00Z"));
        r.step(Event::Observe);
        let d = r.step(looked_up(vec![
            priced("o1", 1, 1200.0),
            priced("o2", 1, 3400.0),
        ]));
        assert_eq!(is_pay(&d.action), paid, "{spec_cap:?} {flag:?} {left}");
        if !paid {
            let msg = r.cond(READY).2;
            assert!(msg.contains(source), "{source} in {msg}");
            assert_eq!(r.cond(READY).1, "OverBudget");
        }
    }
}

#[test]
fn a_dry_run_judges_the_budget_without_waiting_for_it() {
    let mut r = Run::new(DealPaymentSpec {
        dry_run: true,
        ..spec(&["o1"])
    });
    r.policy.namespace_budget = budget(5000, 4500, Some("2026-11-28T12:00:00Z"));
    priced_and_held(&mut r);
    let (s, reason, msg) = r.cond(PAYABLE);
    assert_eq!((s.as_str(), reason.as_str()), ("False", "OverBudget"));
    assert!(msg.contains("45.00 spent"), "{msg}");
    assert_eq!(r.cond(STALLED).0, "False");
}

#[test]
fn the_currency_the_api_gives_is_carried_into_the_quote_and_the_total() {
    let cny = |id: &str, st: i64, c: f64| Deal {
        currency: Some("CNY".into()),
        ..priced(id, st, c)
    };
    let mut r = Run::new(capped(&["o1", "o2"], "100"));
    r.step(Event::Observe);
    r.step(looked_up(vec![cny("o1", 1, 1200.0), cny("o2", 1, 3400.0)]));
    assert_eq!(
        r.st().quote.as_ref().unwrap().currency.as_deref(),
        Some("CNY")
    );
    r.step(ok(&["o1", "o2"], "rid"));
    r.step(looked_up(vec![cny("o1", 4, 1200.0), cny("o2", 4, 3400.0)]));
    assert_eq!(r.st().total_cost.as_deref(), Some("46.00"));
    assert_eq!(r.st().currency.as_deref(), Some("CNY"));
    // Two currencies cannot be held to one cap: nothing is paid.
    let mut r = Run::new(capped(&["o1", "o2"], "100"));
    r.step(Event::Observe);
    let usd = Deal {
        currency: Some("USD".into()),
        ..priced("o2", 1, 3400.0)
    };
    let d = r.step(looked_up(vec![cny("o1", 1, 1200.0), usd]));
    assert!(!is_pay(&d.action));
    assert!(
        r.cond(READY)
            .2
            .contains("more than one currency (CNY, USD)"),
        "{}",
        r.cond(READY).2
    );
}

#[test]
fn a_charge_that_differs_from_its_pricing_is_an_event_naming_both() {
    let mut r = Run::new(capped(&["o1"], "12.50"));
    r.step(Event::Observe);
    r.step(looked_up(vec![priced("o1", 1, 1200.0)]));
    r.step(ok(&["o1"], "rid"));
    // The price rose between the pricing and PayDeals: the total is what was charged, and it says so.
    let d = r.step(looked_up(vec![priced("o1", 4, 1300.0)]));
    assert_eq!(r.st().total_cost.as_deref(), Some("13.00"));
    let n = d
        .notes
        .iter()
        .find(|n| n.reason == "PriceChanged")
        .expect("an event");
    assert_eq!(n.type_, NoteType::Warning);
    for part in ["charged 13.00", "priced 12.00", "above 12.50"] {
        assert!(n.message.contains(part), "{part} in {}", n.message);
    }
    // Once: later decisions do not repeat it.
    let d = r.step(Event::Observe);
    assert!(d.notes.iter().all(|n| n.reason != "PriceChanged"));
    // Charged as priced: no event.
    let mut r = Run::new(capped(&["o1"], "12.50"));
    r.step(Event::Observe);
    r.step(looked_up(vec![priced("o1", 1, 1200.0)]));
    r.step(ok(&["o1"], "rid"));
    let d = r.step(looked_up(vec![priced("o1", 4, 1200.0)]));
    assert!(d.notes.iter().all(|n| n.reason != "PriceChanged"));
}

mod pay_together;
mod real_world;
mod receipts;
