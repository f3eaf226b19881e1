//! Faults of the real world the engine must survive: a request given up on that executes later, an
//! answer that arrives for a lookup another replica already replaced, a price from a clock that runs
//! fast (issue 21, defects 2, 3 and 5).

use super::*;

fn unpaid() -> Event {
    looked_up(vec![deal("o1", "", 1)])
}

/// Every action of `r` from now until `secs` later, answering lookups with `answer`.
fn run_for(r: &mut Run, secs: i64, answer: fn() -> Event) -> Vec<Action> {
    let end = r
        .now
        .checked_add(jiff::SignedDuration::from_secs(secs))
        .unwrap();
    let mut seen = Vec::new();
    while r.now < end {
        let d = r.step(Event::Observe);
        seen.push(d.action.clone());
        match d.action {
            Action::LookUp { .. } => {
                r.step(answer());
            }
            Action::RequeueAfter(w) => r.advance(w.as_secs().max(1) as i64),
            Action::Pay { .. } => return seen,
            a => panic!("{a:?}"),
        }
    }
    seen
}

#[test]
fn no_new_attempt_while_the_request_given_up_on_may_still_execute() {
    let mut r = Run::new(spec(&["o1"]));
    assert!(is_pay(&r.step(Event::Observe).action));
    let started = r.now;
    // A timeout after sending: the request may sit in Tencent's queue and execute up to 300 s later.
    r.step(lost());
    r.advance(1);
    let d = r.step(unpaid());
    assert!(!is_pay(&d.action), "{:?}", d.action);
    assert!(
        r.st().pending_lookup.is_some(),
        "still unknown: the answer predates the request's deadline"
    );
    assert_eq!(
        r.st().pending_lookup.as_ref().unwrap().tries,
        0,
        "waiting is not a failed lookup"
    );
    let ready = r.cond(READY).2;
    assert!(ready.contains("signature window"), "{ready}");
    let seen = run_for(&mut r, 400, unpaid);
    let paid_at = r.now.duration_since(started).as_secs();
    assert!(is_pay(seen.last().unwrap()), "{seen:?}");
    assert!(
        paid_at > 360,
        "retried {paid_at}s after the attempt started"
    );
    let lookups = seen
        .iter()
        .filter(|a| matches!(a, Action::LookUp { .. }))
        .count();
    assert!(
        (2..=8).contains(&lookups),
        "lookups in between and one after: {seen:?}"
    );
    assert_eq!(r.st().attempts, 2);
}

#[test]
fn a_lookup_in_the_window_that_finds_the_order_paid_settles_it_at_once() {
    let mut r = Run::new(spec(&["o1"]));
    r.step(Event::Observe);
    r.step(lost());
    r.step(unpaid());
    // The late request executes 40 s after the client gave up.
    r.advance(60);
    assert!(matches!(
        r.step(Event::Observe).action,
        Action::LookUp { .. }
    ));
    let d = r.step(looked_up(vec![deal("o1", "", 4)]));
    assert_eq!(d.action, Action::Done);
    assert_eq!(r.cond(PAID).0, "True");
    assert_eq!(r.st().attempts, 1, "paid once");
}

#[test]
fn a_crash_recovery_waits_out_the_window_of_the_orphaned_attempt() {
    let mut r = Run::new(spec(&["o1"]));
    r.step(Event::Observe);
    // The replica froze (SIGSTOP, VM pause) holding the request; another one recovers 10 s later.
    r.advance(10);
    assert!(matches!(
        r.step(Event::Observe).action,
        Action::LookUp { .. }
    ));
    let d = r.step(unpaid());
    assert!(!is_pay(&d.action));
    let seen = run_for(&mut r, 600, unpaid);
    assert!(is_pay(seen.last().unwrap()));
    let since_start = r.now.duration_since(ts(T0)).as_secs();
    assert!(since_start > 360, "{since_start}");
}

#[test]
fn a_lookup_answer_for_a_replaced_lookup_is_ignored() {
    let mut r = Run::new(spec(&["o1"]));
    r.step(Event::Observe);
    r.step(lost());
    // Replica A asks about attempt a1 and pauses before folding the answer.
    let a1 = r.st().pending_lookup.clone().unwrap();
    let stale = Event::LookedUp {
        asked: Asked {
            kind: a1.kind,
            ids: a1.ids.clone(),
            since: a1.since,
            reason: a1.reason,
            at: r
                .now
                .checked_add(jiff::SignedDuration::from_secs(400))
                .unwrap(),
        },
        result: Ok(LookupAnswer {
            deals: vec![deal("o1", "", 1)],
            request_id: "stale".into(),
        }),
    };
    // Replica B settles a1 after its window, pays again (a2), and loses that answer too.
    let seen = run_for(&mut r, 800, unpaid);
    assert!(is_pay(seen.last().unwrap()));
    r.step(lost());
    let a2 = r.st().pending_lookup.clone().unwrap();
    assert_ne!(a2.since, a1.since);
    // A resumes: its answer about a1 must not prove a2 unpaid.
    r.advance(400);
    let d = r.step(stale);
    assert!(!is_pay(&d.action), "{:?}", d.action);
    assert_eq!(
        r.st().pending_lookup.as_deref(),
        Some(&*a2),
        "a2 is still unknown"
    );
    assert!(
        d.notes.iter().any(|n| n.reason == "LateAnswer"),
        "{:?}",
        d.notes
    );
    assert_eq!(r.st().attempts, 2);
}

#[test]
fn a_price_from_the_future_is_not_fresh() {
    let mut r = Run::new(DealPaymentSpec {
        max_total_cost: Some("10.00".into()),
        ..spec(&["o1"])
    });
    // A replica whose clock runs an hour fast wrote a quote of 0.01.
    r.status = Some(DealPaymentStatus {
        quote: Some(Box::new(dealpay_api::Quote {
            ids: vec!["o1".into()],
            total_cents: 1,
            currency: None,
            checked_at: "2026-11-28T11:00:00Z".parse().unwrap(),
            request_id: None,
            problems: vec![],
            pay_together: None,
        })),
        ..Default::default()
    });
    let d = r.step(Event::Observe);
    assert!(
        matches!(d.action, Action::LookUp { .. }),
        "priced again: {:?}",
        d.action
    );
    let d = r.step(looked_up(vec![Deal {
        real_total_cost: Some(100_000.0),
        ..deal("o1", "", 1)
    }]));
    assert!(!is_pay(&d.action));
    assert_eq!(r.cond(STALLED).1, "OverBudget");
}

#[test]
fn a_resumed_status_is_priced_again() {
    let st = DealPaymentStatus {
        quote: Some(Box::new(dealpay_api::Quote {
            ids: vec!["o1".into()],
            total_cents: 1,
            currency: None,
            checked_at: T0.parse().unwrap(),
            request_id: None,
            problems: vec![],
            pay_together: None,
        })),
        ..Default::default()
    };
    let st = verify_first(st, &spec(&["o1"]), ts(T0));
    assert!(st.quote.is_none());
}

/// Issue 21, defect 7: o1 is delivering when the spec switches to `bigDealIds: [b1]` and b1's answer
/// is lost. b1 must be looked up as a big deal (not merged into o1's order lookup, never found), and
/// o1's delivery check comes back afterwards, as an order.
#[test]
fn ids_of_different_kinds_are_never_looked_up_as_one_kind() {
    let mut r = Run::new(spec(&["o1"]));
    r.step(Event::Observe);
    r.step(ok(&["o1"], "rid-1"));
    assert_eq!(r.st().orders[0].state, OrderState::Delivering);
    r.spec = DealPaymentSpec {
        big_deal_ids: vec!["b1".into()],
        ..Default::default()
    };
    r.generation = 2;
    let d = r.step(Event::Observe);
    let Action::Pay { attempt, .. } = &d.action else {
        panic!("{:?}", d.action)
    };
    assert_eq!(attempt.kind, IdKind::BigDeal);
    let d = r.step(lost());
    let Action::LookUp { kind, ids, .. } = &d.action else {
        panic!("{:?}", d.action)
    };
    assert_eq!(
        (*kind, ids.as_slice()),
        (IdKind::BigDeal, &["b1".to_string()][..])
    );
    r.advance(400);
    let d = r.step(looked_up(vec![deal("s1", "b1", 4)]));
    let Action::LookUp { kind, ids, .. } = &d.action else {
        panic!("o1's delivery is checked next: {:?}", d.action)
    };
    assert_eq!(
        (*kind, ids.as_slice()),
        (IdKind::Order, &["o1".to_string()][..])
    );
    let d = r.step(looked_up(vec![deal("o1", "", 4)]));
    assert_eq!(d.action, Action::Done);
    assert_eq!(r.st().attempts, 2);
}
