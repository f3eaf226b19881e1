//! Planted bugs, so the self-test can show the checker fails when the engine is wrong.

use dealpay_operator::api::IdKind;
use dealpay_operator::engine::{Action, Decision, Event, Input, Policy, decide};

use super::adapter::is_charged;

fn pay(input: &Input<'_>, mut d: Decision, ids: Vec<String>) -> Decision {
    // A template attempt and request from the real engine (a fresh resource pays at once), so the
    // mutant keeps compiling when the records grow fields.
    let fresh = decide(
        Input {
            status: None,
            event: Event::Observe,
            ..input.clone()
        },
        &Policy::default(),
    );
    let Action::Pay {
        mut attempt,
        mut request,
    } = fresh.action
    else {
        return d;
    };
    attempt.ids = ids.clone();
    match attempt.kind {
        IdKind::Order => request.order_ids = ids,
        IdKind::BigDeal => request.big_deal_ids = ids,
    }
    d.status.in_flight = Some(Box::new(attempt.clone()));
    d.status.pending_lookup = None;
    d.status.attempts += 1;
    d.action = Action::Pay { attempt, request };
    d
}

/// Pays every spec id again once anything is recorded charged (a double payment).
pub fn pays_twice(input: &Input<'_>, d: Decision) -> Decision {
    let charged = d.status.orders.iter().any(|o| is_charged(&o.state));
    if charged && !matches!(d.action, Action::Pay { .. }) && d.status.in_flight.is_none() {
        let ids = input.spec.targets().1.to_vec();
        return pay(input, d, ids);
    }
    d
}

/// Pays instead of looking an unknown outcome up.
pub fn skips_lookup(input: &Input<'_>, d: Decision) -> Decision {
    if let Action::LookUp { ids, .. } = &d.action {
        let ids = ids.clone();
        return pay(input, d, ids);
    }
    d
}

/// Claims Paid=True from the start.
pub fn claims_paid(_input: &Input<'_>, mut d: Decision) -> Decision {
    for c in d.status.conditions.iter_mut() {
        if c.type_ == "Paid" {
            c.status = "True".into();
        }
    }
    d
}
