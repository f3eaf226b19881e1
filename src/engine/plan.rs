//! Choosing the next action, and the conditions that explain it.

use std::time::Duration;

use super::apply::{Ctx, OUTCOME_UNKNOWN, describe};
use super::conditions::{self, Desired, PAID, READY, RECONCILING, STALLED};
use super::time::{api_time, parse, rfc3339};
use super::{Action, CredentialsState, Decision, NoteType};
use crate::api::{Attempt, IdKind, LastError, OrderState, PendingLookup, validate_spec};
use crate::tencent::ErrorClass;
use crate::tencent::error::reason_for_code;
use crate::tencent::models::{PayDealsRequest, status};

/// Why the resource is where it is.
struct Summary {
    ready: bool,
    stalled: bool,
    reconciling: bool,
    reason: String,
    message: String,
}

impl Summary {
    fn new(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            ready: false,
            stalled: false,
            reconciling: true,
            reason: reason.into(),
            message: message.into(),
        }
    }
    fn stalled(mut self) -> Self {
        self.stalled = true;
        self.reconciling = false;
        self
    }
    fn idle(mut self) -> Self {
        self.reconciling = false;
        self
    }
}

fn error_reason(e: &LastError) -> String {
    match e.class {
        ErrorClass::OutcomeUnknown => OUTCOME_UNKNOWN.to_string(),
        _ => reason_for_code(&e.code),
    }
}

fn wait_until(ctx: &Ctx<'_>) -> Option<Duration> {
    let at = parse(ctx.st.next_retry_at.as_deref()?);
    let left = ctx.now.duration_until(at);
    (left.is_positive()).then(|| Duration::try_from(left).unwrap_or_default())
}

fn lookup_action(ctx: &Ctx<'_>, p: &PendingLookup) -> Action {
    let since = parse(&p.since);
    let start = since.checked_sub(ctx.policy.lookback).unwrap_or(since);
    let end = ctx
        .now
        .checked_add(Duration::from_secs(24 * 3600))
        .unwrap_or(ctx.now);
    Action::LookUp {
        kind: p.kind,
        ids: p.ids.clone(),
        start_time: api_time(start),
        end_time: api_time(end),
    }
}

fn pay_request(ctx: &Ctx<'_>, kind: IdKind, ids: &[String]) -> PayDealsRequest {
    let spec = ctx.spec;
    let (order_ids, big_deal_ids) = match kind {
        IdKind::Order => (ids.to_vec(), vec![]),
        IdKind::BigDeal => (vec![], ids.to_vec()),
    };
    PayDealsRequest {
        order_ids,
        big_deal_ids,
        auto_voucher: u8::from(spec.auto_voucher),
        voucher_ids: spec.voucher_ids.clone(),
        agent_pay: u8::try_from(spec.agent_pay).unwrap_or_default(),
        cps_uin: spec.cps_uin.clone().filter(|c| !c.is_empty()),
    }
}

/// Picks the action; gates run in order, the first that holds wins.
///
/// A pre-payment check (a spending cap against `RealTotalCost`, a dry run proving the orders payable) slots
/// in as one more gate just before the attempt is recorded: an `Action::Check` whose answer comes back as
/// an event, folded like a lookup.
fn choose(ctx: &mut Ctx<'_>) -> (Action, Summary) {
    // An attempt recorded without an outcome: the process died or the answer was lost.
    if let Some(a) = ctx.st.in_flight.take() {
        ctx.note(
            NoteType::Warning,
            OUTCOME_UNKNOWN,
            format!("PayDeals attempt {} for {} has no recorded outcome (operator restarted?); looking the orders up", a.id, a.ids.join(", ")),
        );
        ctx.st.pending_lookup = Some(PendingLookup {
            kind: a.kind,
            ids: a.ids,
            since: a.started_at,
            reason: OUTCOME_UNKNOWN.into(),
        });
        ctx.clear_backoff();
    }
    let creds_problem = match &ctx.credentials {
        CredentialsState::Unavailable { code, message } => Some((code.clone(), message.clone())),
        CredentialsState::Available { .. } => None,
    };
    if let Some(p) = ctx.st.pending_lookup.clone() {
        let why = format!(
            "outcome of paying {} is unknown ({}); no new payment until DescribeDealsByCond settles it",
            p.ids.join(", "),
            p.reason
        );
        if let Some((code, message)) = creds_problem {
            let s = Summary::new(
                code,
                format!("{why}, but credentials are unavailable: {message}"),
            )
            .stalled();
            return (
                Action::AwaitChange {
                    recheck: Some(ctx.policy.credentials_recheck),
                },
                s,
            );
        }
        if let Some(left) = wait_until(ctx) {
            let detail = ctx
                .st
                .last_error
                .as_ref()
                .map(|e| format!("; last lookup error {}", describe(e)))
                .unwrap_or_default();
            let mut s = Summary::new(
                OUTCOME_UNKNOWN,
                format!("{why}{detail}; looking again in {}s", left.as_secs()),
            );
            // Orders that keep not showing up need a person to look.
            s.stalled = ctx.st.consecutive_failures >= 5;
            s.reconciling = !s.stalled;
            return (Action::RequeueAfter(left), s);
        }
        return (lookup_action(ctx, &p), Summary::new(OUTCOME_UNKNOWN, why));
    }

    let errors = validate_spec(ctx.spec);
    if !errors.is_empty() {
        return (
            Action::AwaitChange { recheck: None },
            Summary::new("InvalidSpec", errors.join("; ")).stalled(),
        );
    }

    let (kind, ids) = ctx.spec.targets();
    let ids = ids.to_vec();
    let remaining: Vec<String> = ids
        .iter()
        .filter(|id| ctx.record_of(id).is_none())
        .cloned()
        .collect();
    let of_state = |ctx: &Ctx<'_>, st: OrderState| -> Vec<String> {
        ids.iter()
            .filter(|id| ctx.record_of(id).is_some_and(|r| r.state == st))
            .cloned()
            .collect()
    };
    let failed = of_state(ctx, OrderState::DeliveryFailed);
    let unpayable = of_state(ctx, OrderState::Unpayable);
    if remaining.is_empty() {
        if failed.is_empty() && unpayable.is_empty() {
            let rid = ctx.st.request_id.clone().unwrap_or_default();
            let mut s =
                Summary::new("Paid", format!("paid {} (RequestId {rid})", ids.join(", "))).idle();
            s.ready = true;
            return (Action::Done, s);
        }
        let mut parts = Vec::new();
        if !failed.is_empty() {
            parts.push(format!("{} charged but delivery failed: contact Tencent Cloud support; they will not be paid again", failed.join(", ")));
        }
        if !unpayable.is_empty() {
            let detail: Vec<String> = unpayable
                .iter()
                .map(|id| {
                    format!(
                        "{id} ({})",
                        ctx.record_of(id)
                            .and_then(|r| r.tencent_status)
                            .map_or("unpayable", status::name)
                    )
                })
                .collect();
            parts.push(format!("{} can never be paid", detail.join(", ")));
        }
        let reason = if failed.is_empty() {
            "OrderUnpayable"
        } else {
            "DeliveryFailed"
        };
        return (
            Action::AwaitChange { recheck: None },
            Summary::new(reason, parts.join("; ")).stalled(),
        );
    }

    if ctx.st.stalled_generation == Some(ctx.generation) {
        let (reason, msg) = match &ctx.st.last_error {
            Some(e) => (
                error_reason(e),
                format!("PayDeals failed: {}; change the spec to retry", describe(e)),
            ),
            None => (
                "Failed".to_string(),
                "payment failed; change the spec to retry".to_string(),
            ),
        };
        return (
            Action::AwaitChange { recheck: None },
            Summary::new(reason, msg).stalled(),
        );
    }
    if ctx.spec.suspend {
        let s = Summary::new(
            "Suspended",
            format!(
                "spec.suspend is true: {} will be paid when it is set to false",
                remaining.join(", ")
            ),
        )
        .idle();
        return (Action::AwaitChange { recheck: None }, s);
    }
    if let Some((code, message)) = creds_problem {
        ctx.st.last_error = Some(LastError {
            code: code.clone(),
            message: message.clone(),
            request_id: None,
            class: ErrorClass::NeedsHuman,
        });
        return (
            Action::AwaitChange {
                recheck: Some(ctx.policy.credentials_recheck),
            },
            Summary::new(code, message).stalled(),
        );
    }
    if let Some(left) = wait_until(ctx) {
        let (reason, detail, stalled) = match &ctx.st.last_error {
            Some(e) => (
                error_reason(e),
                describe(e),
                e.class == ErrorClass::NeedsHuman,
            ),
            None => ("Backoff".to_string(), "waiting".to_string(), false),
        };
        let mut s = Summary::new(
            reason,
            format!("PayDeals failed: {detail}; retrying in {}s", left.as_secs()),
        );
        if stalled {
            s = s.stalled();
            s.message
                .push_str(" (or at once when the credentials Secret changes)");
        }
        return (Action::RequeueAfter(left), s);
    }

    let attempt = Attempt {
        id: ctx.attempt_id.clone(),
        started_at: rfc3339(ctx.now),
        kind,
        ids: remaining.clone(),
        generation: ctx.generation,
    };
    let request = pay_request(ctx, kind, &remaining);
    ctx.st.in_flight = Some(attempt.clone());
    ctx.st.attempts = ctx.st.attempts.saturating_add(1);
    ctx.note(
        NoteType::Normal,
        "PaymentStarted",
        format!(
            "calling PayDeals for {} (attempt {})",
            remaining.join(", "),
            ctx.st.attempts
        ),
    );
    let s = Summary::new(
        "Paying",
        format!(
            "PayDeals call in flight for {} (attempt {})",
            remaining.join(", "),
            ctx.st.attempts
        ),
    );
    (Action::Pay { attempt, request }, s)
}

/// Chooses the action and writes the conditions that explain it.
pub(super) fn plan(mut ctx: Ctx<'_>) -> Decision {
    let (action, s) = choose(&mut ctx);
    let charged: Vec<&str> = ctx
        .st
        .orders
        .iter()
        .filter(|o| matches!(o.state, OrderState::Paid | OrderState::DeliveryFailed))
        .map(|o| o.id.as_str())
        .collect();
    let kind_ids = ctx.spec.targets().1;
    let all_charged =
        !kind_ids.is_empty() && kind_ids.iter().all(|id| charged.contains(&id.as_str()));
    let paid = if charged.is_empty() {
        Desired {
            type_: PAID,
            status: false,
            reason: "NotPaid".into(),
            message: "no money has moved".into(),
        }
    } else {
        let any_failed = ctx
            .st
            .orders
            .iter()
            .any(|o| o.state == OrderState::DeliveryFailed);
        let reason = match (all_charged, any_failed) {
            (_, true) => "DeliveryFailed",
            (true, false) => "Paid",
            (false, false) => "PartiallyPaid",
        };
        Desired {
            type_: PAID,
            status: true,
            reason: reason.into(),
            message: format!("charged for {}", charged.join(", ")),
        }
    };
    let desired = vec![
        Desired {
            type_: READY,
            status: s.ready,
            reason: s.reason.clone(),
            message: s.message.clone(),
        },
        Desired {
            type_: RECONCILING,
            status: s.reconciling,
            reason: if s.reconciling {
                s.reason.clone()
            } else {
                "Settled".into()
            },
            message: if s.reconciling {
                s.message.clone()
            } else {
                String::new()
            },
        },
        Desired {
            type_: STALLED,
            status: s.stalled,
            reason: if s.stalled {
                s.reason.clone()
            } else {
                "Progressing".into()
            },
            message: if s.stalled {
                s.message.clone()
            } else {
                String::new()
            },
        },
        paid,
    ];
    if s.ready {
        ctx.st.last_error = None;
        ctx.st.next_retry_at = None;
        ctx.st.consecutive_failures = 0;
    }
    ctx.st.conditions = conditions::merge(&ctx.st.conditions, desired, ctx.generation, ctx.now);
    Decision {
        status: ctx.st,
        action,
        notes: ctx.notes,
    }
}
