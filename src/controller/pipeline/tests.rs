//! The shell's protocol against an in-memory API server and a scripted Tencent (fakes: the real
//! apiserver and sandbox are exercised by the end-to-end tests; these pin the order of operations).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use super::*;
use crate::api::{OrderState, PendingLookup};
use crate::engine::LookupAnswer;
use crate::tencent::models::{Deal, PayDealsResponse};
use crate::tencent::{ApiError, CallError};

/// What happened, in order, across the fake apiserver and the fake Tencent.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Write { in_flight: bool },
    Conflict,
    Read,
    Pay(Vec<String>),
    LookUp(Vec<String>),
}

#[derive(Default)]
struct Server {
    status: Option<DealPaymentStatus>,
    rv: u64,
    /// Write attempts (1-based) just before which someone else changes the status, so they meet a 409.
    interfere: BTreeMap<usize, fn(&mut DealPaymentStatus)>,
    /// Write attempts just before which a person edits the spec (a new generation, so a 409).
    edits: BTreeMap<usize, fn(&mut DealPaymentSpec)>,
    spec: Option<DealPaymentSpec>,
    generation: i64,
    writes: usize,
}

#[derive(Default)]
struct World {
    server: Mutex<Server>,
    log: Mutex<Vec<Step>>,
    answers: Mutex<VecDeque<Event>>,
    leader: Mutex<VecDeque<bool>>,
}

impl World {
    fn log(&self, s: Step) {
        self.log.lock().unwrap().push(s);
    }
    fn steps(&self) -> Vec<Step> {
        self.log.lock().unwrap().clone()
    }
    fn stored(&self) -> DealPaymentStatus {
        self.server.lock().unwrap().status.clone().unwrap()
    }
}

impl StatusStore for World {
    async fn write(
        &self,
        status: &DealPaymentStatus,
        expect_rv: Option<&str>,
    ) -> Result<String, Error> {
        let mut s = self.server.lock().unwrap();
        s.writes += 1;
        let n = s.writes;
        if let Some(change) = s.interfere.remove(&n) {
            let mut other = s.status.clone().unwrap_or_default();
            change(&mut other);
            s.status = Some(other);
            s.rv += 1;
        }
        if let Some(edit) = s.edits.remove(&n) {
            edit(s.spec.as_mut().expect("a spec"));
            s.generation += 1;
            s.rv += 1;
        }
        if expect_rv.is_some_and(|rv| rv != s.rv.to_string()) {
            drop(s);
            self.log(Step::Conflict);
            return Err(Error::Conflict);
        }
        s.status = Some(status.clone());
        s.rv += 1;
        let rv = s.rv.to_string();
        drop(s);
        self.log(Step::Write {
            in_flight: status.in_flight.is_some(),
        });
        Ok(rv)
    }
    async fn read(&self) -> Result<Fresh, Error> {
        self.log(Step::Read);
        let s = self.server.lock().unwrap();
        Ok(Fresh {
            status: s.status.clone(),
            resource_version: s.rv.to_string(),
            spec: s.spec.clone().expect("a spec"),
            generation: s.generation,
        })
    }
    fn publish(&self, _note: &Note) {}
}

impl Caller for World {
    async fn perform(&self, action: &Action) -> Option<Event> {
        match action {
            Action::Pay { attempt, .. } => self.log(Step::Pay(attempt.ids.clone())),
            Action::LookUp { ids, .. } => self.log(Step::LookUp(ids.clone())),
            _ => return None,
        }
        let next = self.answers.lock().unwrap().pop_front();
        Some(match (next.expect("a scripted answer"), action) {
            (Event::Paid { result, .. }, Action::Pay { attempt, .. }) => Event::Paid {
                attempt: attempt.clone(),
                result,
            },
            (Event::LookedUp { result, .. }, a @ Action::LookUp { .. }) => Event::LookedUp {
                asked: a.asked(jiff::Timestamp::now()).expect("a lookup"),
                result,
            },
            (e, _) => e,
        })
    }
    fn may_pay(&self) -> bool {
        self.leader.lock().unwrap().pop_front().unwrap_or(true)
    }
}

fn paid(ids: &[&str]) -> Event {
    Event::Paid {
        attempt: crate::api::Attempt {
            id: String::new(),
            started_at: "2026-11-28T00:00:00Z".parse().unwrap(),
            kind: crate::api::IdKind::Order,
            ids: vec![],
            generation: 1,
            quoted_cents: None,
            answered: None,
            number: 0,
        },
        result: Ok(PayDealsResponse {
            order_ids: ids.iter().map(|s| s.to_string()).collect(),
            request_id: "rid-pay".into(),
            ..Default::default()
        }),
    }
}

fn unknown() -> Event {
    let mut e = paid(&[]);
    if let Event::Paid { result, .. } = &mut e {
        *result = Err(CallError::Api(ApiError {
            code: "InternalError".into(),
            message: "boom".into(),
            request_id: "rid-x".into(),
        }));
    }
    e
}

/// A scripted lookup answer; the fake Tencent binds it to the lookup it answers.
fn found(ids: &[&str], status: i64) -> Event {
    looked_up(Ok(LookupAnswer {
        deals: ids
            .iter()
            .map(|id| Deal {
                order_id: id.to_string(),
                status,
                resource_id: vec![format!("ins-{id}")],
                ..Default::default()
            })
            .collect(),
        request_id: "rid-look".into(),
    }))
}

fn looked_up(result: Result<LookupAnswer, CallError>) -> Event {
    Event::LookedUp {
        asked: crate::engine::Asked {
            kind: crate::api::IdKind::Order,
            ids: vec![],
            since: crate::api::Time::new(jiff::Timestamp::UNIX_EPOCH),
            reason: crate::api::LookupReason::Resume,
            at: jiff::Timestamp::UNIX_EPOCH,
        },
        result,
    }
}

fn spec(ids: &[&str]) -> DealPaymentSpec {
    DealPaymentSpec {
        order_ids: ids.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn creds() -> CredentialsState {
    CredentialsState::Available {
        version: "1".into(),
    }
}

async fn reconcile(world: &World, spec: &DealPaymentSpec) -> Result<Next, Error> {
    let (status, rv, generation) = {
        let mut s = world.server.lock().unwrap();
        if s.spec.is_none() {
            s.spec = Some(spec.clone());
            s.generation = 1;
        }
        (s.status.clone(), s.rv.to_string(), s.generation)
    };
    let c = creds();
    let start = Start {
        spec,
        generation,
        status,
        resource_version: Some(rv),
        credentials: &c,
    };
    run(world, world, start, &Policy::default()).await
}

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn the_attempt_is_stored_before_paydeals_and_every_answer_is_stored() {
    let w = World::default();
    w.answers
        .lock()
        .unwrap()
        .extend([paid(&["o1"]), found(&["o1"], 4)]);
    let next = block_on(reconcile(&w, &spec(&["o1"]))).unwrap();
    assert_eq!(next, Next::Await);
    // The answer of PayDeals is written with the delivery lookup's: the attempt in flight stays
    // recorded until both are.
    assert_eq!(
        w.steps(),
        [
            Step::Write { in_flight: true },
            Step::Pay(vec!["o1".into()]),
            Step::LookUp(vec!["o1".into()]),
            Step::Write { in_flight: false },
        ]
    );
    let st = w.stored();
    assert_eq!(st.orders[0].state, OrderState::Paid);
    assert_eq!(st.resource_ids, ["ins-o1"]);
}

#[test]
fn answers_written_together_are_one_normal_event_and_warnings_stay_apart() {
    let note = |type_, reason, message: &str| Note {
        type_,
        reason,
        message: message.into(),
    };
    use crate::api::Reason;
    let out = one_normal(
        [
            note(NoteType::Normal, Reason::PaymentSucceeded, "paid o1"),
            note(
                NoteType::Warning,
                Reason::PriceChanged,
                "12.00 became 13.00",
            ),
            note(NoteType::Normal, Reason::OutcomeResolved, "o1 delivered"),
        ]
        .into_iter(),
    );
    assert_eq!(
        out,
        [
            note(
                NoteType::Normal,
                Reason::PaymentSucceeded,
                "paid o1; o1 delivered"
            ),
            note(
                NoteType::Warning,
                Reason::PriceChanged,
                "12.00 became 13.00"
            ),
        ]
    );
}

#[test]
fn an_answer_not_written_yet_is_written_when_the_next_call_cannot_be_made() {
    struct NoLookup(World);
    impl StatusStore for NoLookup {
        async fn write(&self, st: &DealPaymentStatus, rv: Option<&str>) -> Result<String, Error> {
            self.0.write(st, rv).await
        }
        async fn read(&self) -> Result<Fresh, Error> {
            self.0.read().await
        }
        fn publish(&self, note: &Note) {
            self.0.publish(note)
        }
    }
    impl Caller for NoLookup {
        async fn perform(&self, action: &Action) -> Option<Event> {
            match action {
                Action::LookUp { .. } => None,
                _ => self.0.perform(action).await,
            }
        }
        fn may_pay(&self) -> bool {
            self.0.may_pay()
        }
    }
    let w = NoLookup(World::default());
    w.0.answers.lock().unwrap().extend([paid(&["o1"])]);
    let (spec, creds) = (spec(&["o1"]), creds());
    let start = Start {
        spec: &spec,
        generation: 1,
        status: None,
        resource_version: Some("0".into()),
        credentials: &creds,
    };
    let next = block_on(run(&w, &w, start, &Policy::default())).unwrap();
    assert_eq!(next, Next::After(NOT_NOW));
    assert_eq!(
        w.0.steps(),
        [
            Step::Write { in_flight: true },
            Step::Pay(vec!["o1".into()]),
            Step::Write { in_flight: false },
        ]
    );
    let st = w.0.stored();
    assert_eq!(
        st.orders[0].state,
        OrderState::Delivering,
        "the payment is recorded"
    );
    assert!(
        st.pending_lookup.is_some(),
        "and its delivery is still to be looked up"
    );
}

fn interfere(w: &World, write: usize, change: fn(&mut DealPaymentStatus)) {
    w.server.lock().unwrap().interfere.insert(write, change);
}

#[test]
fn a_conflict_on_the_write_ahead_record_means_no_call() {
    let w = World::default();
    interfere(&w, 1, |s| s.attempts = 7);
    let r = block_on(reconcile(&w, &spec(&["o1"])));
    assert!(matches!(r, Err(Error::Conflict)), "{r:?}");
    assert_eq!(w.steps(), [Step::Conflict]);
}

#[test]
fn losing_the_lease_after_recording_means_no_call() {
    let w = World::default();
    // Leader when starting, not any more when about to call.
    w.leader.lock().unwrap().extend([true, false]);
    let next = block_on(reconcile(&w, &spec(&["o1"]))).unwrap();
    assert_eq!(next, Next::After(NOT_NOW));
    assert_eq!(w.steps(), [Step::Write { in_flight: true }]);
    assert!(w.stored().in_flight.is_some(), "left for a lookup");
}

#[test]
fn a_conflict_while_folding_an_answer_refolds_it_into_the_newer_status() {
    let w = World::default();
    w.answers
        .lock()
        .unwrap()
        .extend([paid(&["o1"]), found(&["o1"], 4)]);
    interfere(&w, 2, |st| st.credentials_version = Some("other".into()));
    let next = block_on(reconcile(&w, &spec(&["o1"]))).unwrap();
    assert_eq!(next, Next::Await);
    // Both answers (PayDeals, then the delivery lookup) are folded again into the newer status.
    assert_eq!(
        w.steps(),
        [
            Step::Write { in_flight: true },
            Step::Pay(vec!["o1".into()]),
            Step::LookUp(vec!["o1".into()]),
            Step::Conflict,
            Step::Read,
            Step::Write { in_flight: false },
        ]
    );
    let st = w.stored();
    assert_eq!(
        st.orders[0].state,
        OrderState::Paid,
        "the answers were kept"
    );
    assert_eq!(
        st.request_id.as_deref(),
        Some("rid-pay"),
        "PayDeals' answer was kept"
    );
    assert_eq!(st.attempts, 1);
}

#[test]
fn a_late_answer_never_downgrades_what_another_replica_established() {
    let w = World::default();
    w.answers
        .lock()
        .unwrap()
        .extend([paid(&["o1"]), found(&["o1"], 4)]);
    // While our calls are out, another replica settles the attempt by lookup: delivered.
    interfere(&w, 2, |st| {
        st.in_flight = None;
        st.pending_lookup = None::<Box<PendingLookup>>;
        st.orders = vec![crate::api::OrderRecord {
            id: "o1".into(),
            state: OrderState::Paid,
            tencent_status: Some(4),
            request_id: Some("rid-other".into()),
            cost_cents: None,
            kind: None,
        }];
    });
    let next = block_on(reconcile(&w, &spec(&["o1"]))).unwrap();
    assert_eq!(next, Next::Await);
    let st = w.stored();
    assert_eq!(st.orders.len(), 1);
    assert_eq!(
        st.orders[0].state,
        OrderState::Paid,
        "not downgraded to Delivering"
    );
    assert_eq!(st.orders[0].request_id.as_deref(), Some("rid-other"));
    assert!(st.pending_lookup.is_none());
}

#[test]
fn repeated_unknown_outcomes_end_the_reconcile_in_a_backoff_not_a_loop() {
    let w = World::default();
    w.answers
        .lock()
        .unwrap()
        .extend([unknown(), found(&["o1"], 1)]);
    let next = block_on(reconcile(&w, &spec(&["o1"]))).unwrap();
    let Next::After(d) = next else {
        panic!("{next:?}")
    };
    assert!(d >= Duration::from_millis(2500), "{d:?}");
    let pays = w
        .steps()
        .iter()
        .filter(|s| matches!(s, Step::Pay(_)))
        .count();
    assert_eq!(pays, 1);
    assert_eq!(w.stored().unknown_outcomes, 1);
}

fn invalid_deal() -> Event {
    let mut e = unknown();
    if let Event::Paid { result, .. } = &mut e {
        *result = Err(CallError::Api(ApiError {
            code: "FailedOperation.InvalidDeal".into(),
            message: "invalid".into(),
            request_id: "rid-i".into(),
        }));
    }
    e
}

#[test]
fn the_call_budget_holds_new_work_back_but_never_drops_an_answer() {
    let ids: Vec<String> = (1..=10).map(|i| format!("o{i}")).collect();
    let w = World::default();
    // Each round: PayDeals refuses the batch as invalid, the lookup finds one more order delivered
    // and the rest unpaid, so the engine pays the rest at once: a chain without backoff.
    for i in 0..10 {
        let mut deals: Vec<&str> = vec![];
        for (j, id) in ids.iter().enumerate() {
            if j >= i {
                deals.push(id);
            }
        }
        let mut answer = found(&deals[..1], 4);
        if let Event::LookedUp { result: Ok(a), .. } = &mut answer
            && let Event::LookedUp {
                result: Ok(rest), ..
            } = found(&deals[1..], 1)
        {
            a.deals.extend(rest.deals);
        }
        w.answers.lock().unwrap().extend([invalid_deal(), answer]);
    }
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let next = block_on(reconcile(&w, &spec(&refs))).unwrap();
    assert_eq!(next, Next::After(YIELD));
    let calls = w
        .steps()
        .iter()
        .filter(|s| matches!(s, Step::Pay(_) | Step::LookUp(_)))
        .count();
    assert_eq!(calls, MAX_CALLS);
    assert_eq!(
        w.steps().last(),
        Some(&Step::Write { in_flight: false }),
        "the last answer is folded and stored, no attempt left recorded"
    );
    let st = w.stored();
    assert!(st.in_flight.is_none());
    assert_eq!(
        st.orders.len(),
        MAX_CALLS / 2,
        "every lookup's finding is kept"
    );
    assert!(st.orders.iter().all(|o| o.state == OrderState::Paid));
}

fn priced(ids: &[&str], cents: f64) -> Event {
    looked_up(Ok(LookupAnswer {
        deals: ids
            .iter()
            .map(|id| Deal {
                order_id: id.to_string(),
                status: 1,
                real_total_cost: Some(cents),
                ..Default::default()
            })
            .collect(),
        request_id: "rid-price".into(),
    }))
}

fn pays(w: &World) -> usize {
    w.steps()
        .iter()
        .filter(|s| matches!(s, Step::Pay(_)))
        .count()
}

/// Issue 21, defect 1: the user suspends the payment while its pricing lookup runs; the fold's write
/// meets the new generation, and the decision on the fresh object pays nothing.
#[test]
fn a_spec_edited_during_a_pricing_call_is_obeyed_after_the_conflict() {
    type Edit = fn(&mut DealPaymentSpec);
    let edits: [(&str, Edit); 4] = [
        ("suspend", |s| s.suspend = true),
        ("dry run", |s| s.dry_run = true),
        ("lower cap", |s| s.max_total_cost = Some("1.00".into())),
        ("order removed", |s| s.order_ids = vec!["o2".into()]),
    ];
    for (what, edit) in edits {
        let w = World::default();
        w.answers.lock().unwrap().extend([
            priced(&["o1"], 1200.0),
            priced(&["o1", "o2"], 1200.0),
            priced(&["o1", "o2"], 1200.0),
        ]);
        // Write 1 records the pricing lookup; write 2 would record the attempt.
        w.server.lock().unwrap().edits.insert(2, edit);
        let capped = DealPaymentSpec {
            max_total_cost: Some("46.00".into()),
            ..spec(&["o1"])
        };
        let _ = block_on(reconcile(&w, &capped));
        let o1 = Step::Pay(vec!["o1".into()]);
        assert!(!w.steps().contains(&o1), "{what}: {:?}", w.steps());
        assert!(
            w.steps().contains(&Step::Conflict),
            "{what}: {:?}",
            w.steps()
        );
        let in_flight = w.stored().in_flight.map(|a| a.ids).unwrap_or_default();
        assert!(!in_flight.contains(&"o1".to_string()), "{what}");
    }
}

/// The same after InvalidDeal: the lookup finds the rest unpaid and would pay it at once.
#[test]
fn a_spec_edited_during_an_invalid_deal_lookup_is_obeyed_after_the_conflict() {
    let w = World::default();
    let mut answer = found(&["o1"], 4);
    if let Event::LookedUp { result: Ok(a), .. } = &mut answer
        && let Event::LookedUp {
            result: Ok(rest), ..
        } = found(&["o2"], 1)
    {
        a.deals.extend(rest.deals);
    }
    w.answers
        .lock()
        .unwrap()
        .extend([invalid_deal(), answer, paid(&["o2"])]);
    w.server
        .lock()
        .unwrap()
        .edits
        .insert(2, |s| s.suspend = true);
    let _ = block_on(reconcile(&w, &spec(&["o1", "o2"])));
    assert_eq!(pays(&w), 1, "{:?}", w.steps());
    let st = w.stored();
    assert!(st.in_flight.is_none());
    assert_eq!(st.orders.len(), 1, "o1 recorded paid, o2 left unpaid");
}
