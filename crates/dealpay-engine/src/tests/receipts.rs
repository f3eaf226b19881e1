//! Every attempt leaves `openAttempts` exactly once, with the outcome its PaymentReceipt records.

use super::*;
use dealpay_api::ReceiptState;

fn settled(d: &Decision) -> Vec<(String, ReceiptState, Option<String>, Option<&'static str>)> {
    d.settled
        .iter()
        .map(|s| {
            (
                s.attempt.id.clone(),
                s.state,
                s.code.clone(),
                s.confirmed_by,
            )
        })
        .collect()
}

#[test]
fn a_paid_attempt_settles_charged_once_its_delivery_and_cost_are_known() {
    let mut r = Run::new(spec(&["o1"]));
    let d = r.step(Event::Observe);
    assert!(d.settled.is_empty());
    assert_eq!(
        r.st().open_attempts.len(),
        1,
        "open from the write-ahead record on"
    );
    let d = r.step(ok(&["o1"], "rid-1"));
    assert!(d.settled.is_empty(), "delivery not confirmed yet");
    let d = r.step(looked_up(vec![Deal {
        real_total_cost: Some(1234.0),
        ..deal("o1", "", 4)
    }]));
    assert_eq!(
        settled(&d),
        [("a1".into(), ReceiptState::Charged, None, Some("Answer"))]
    );
    assert_eq!(d.settled[0].orders[0].cost_cents, Some(1234));
    assert!(r.st().open_attempts.is_empty());
    assert!(r.step(Event::Observe).settled.is_empty(), "settled once");
}

#[test]
fn a_refused_attempt_settles_not_charged_at_once() {
    for code in [
        "FailedOperation.BalanceInsufficient",
        "FailedOperation.InvalidDeal",
        "RequestLimitExceeded",
    ] {
        let mut r = Run::new(spec(&["o1"]));
        r.step(Event::Observe);
        let d = r.step(api_err(code));
        assert_eq!(
            settled(&d),
            [(
                "a1".into(),
                ReceiptState::NotCharged,
                Some(code.into()),
                Some("Answer")
            )],
            "{code}"
        );
        if code.ends_with("InvalidDeal") {
            // Paid, but not by this call: the receipt of this attempt stays NotCharged.
            let d = r.step(looked_up(vec![deal("o1", "", 4)]));
            assert!(d.settled.is_empty());
        }
    }
}

#[test]
fn a_lost_answer_settles_by_lookup_either_way() {
    // Found paid: this attempt charged it.
    let mut r = Run::new(spec(&["o1"]));
    r.step(Event::Observe);
    assert!(r.step(lost()).settled.is_empty());
    let d = r.step(looked_up(vec![deal("o1", "", 4)]));
    assert_eq!(
        settled(&d),
        [("a1".into(), ReceiptState::Charged, None, Some("Lookup"))]
    );
    // Found unpaid after the signature window: nothing charged; the retry gets its own receipt.
    let mut r = Run::new(spec(&["o1"]));
    r.step(Event::Observe);
    r.step(lost());
    assert!(
        r.step(looked_up(vec![deal("o1", "", 1)]))
            .settled
            .is_empty(),
        "the request may still run"
    );
    r.advance(400);
    r.step(Event::Observe);
    let d = r.step(looked_up(vec![deal("o1", "", 1)]));
    assert_eq!(settled(&d)[0].1, ReceiptState::NotCharged);
    assert_eq!(
        settled(&d)[0].2.as_deref(),
        Some("Transport.OutcomeUnknown")
    );
    r.advance(60);
    let d = r.step(Event::Observe);
    assert!(is_pay(&d.action));
    assert_eq!(r.st().open_attempts.len(), 1);
    assert_ne!(
        r.st().open_attempts[0].id,
        "a1",
        "a new attempt, a new receipt"
    );
}
