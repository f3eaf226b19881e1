//! Choosing the next action, and the conditions that explain it.
//!
//! `choose` runs gates in order; the first that returns an action wins. The order is the protocol:
//! an unknown outcome is settled before anything else, nothing is paid twice, and every wait says why.

use std::time::Duration;

use super::apply::{Ctx, describe};
use super::conditions::{self, Desired, PAID, PAYABLE, READY, RECONCILING, STALLED};
use super::spend::WindowBudget;
use super::time::{api_time, rfc3339};
use super::{Action, CredentialsState, Decision, NoteType};
use dealpay_api::money::{format_cents, parse_cents};
use dealpay_api::{
    Attempt, IdKind, LastError, LookupReason, OrderState, PendingLookup, Quote, validate_spec,
};
use dealpay_api::{ErrorClass, Reason, Time};
use tencent_billing::models::{PayDealsRequest, status};

/// Why the resource is where it is.
struct Summary {
    ready: bool,
    stalled: bool,
    reconciling: bool,
    reason: Reason,
    message: String,
}

impl Summary {
    fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            ready: false,
            stalled: false,
            reconciling: true,
            reason,
            message: message.into(),
        }
    }
    fn stalled(mut self) -> Self {
        self.stalled = true;
        self.reconciling = false;
        self
    }
    fn stalled_if(self, cond: bool) -> Self {
        if cond { self.stalled() } else { self }
    }
    fn idle(mut self) -> Self {
        self.reconciling = false;
        self
    }
}

type Gate = (Action, Summary);

fn error_reason(e: &LastError) -> Reason {
    match e.class {
        ErrorClass::OutcomeUnknown => Reason::OutcomeUnknown,
        _ => Reason::from_code(&e.code),
    }
}

fn left_until(ctx: &Ctx<'_>, at: Option<Time>) -> Option<Duration> {
    let left = ctx.now.duration_until(at?.get());
    (left.is_positive()).then(|| Duration::try_from(left).unwrap_or_default())
}

fn lookup_action(ctx: &Ctx<'_>, p: &PendingLookup) -> Action {
    let since = p.since.get();
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
        list_big_deals: checks_pay_together(ctx, p.kind) && p.reason == LookupReason::Quote,
        since: p.since,
        reason: p.reason,
    }
}

/// A dry run of sub-order ids also checks the pay-together groups a lookup can see: the other
/// sub-orders of the same big deals. A real payment does not: PayDeals itself decides, and refuses
/// an incomplete group without charging anything.
fn checks_pay_together(ctx: &Ctx<'_>, kind: IdKind) -> bool {
    ctx.spec.dry_run && kind == IdKind::Order
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

fn credentials_problem(ctx: &Ctx<'_>) -> Option<(Reason, String)> {
    match &ctx.credentials {
        CredentialsState::Unavailable { reason, message } => {
            Some((reason.clone(), message.clone()))
        }
        CredentialsState::Available { .. } => None,
    }
}

/// An attempt recorded without an outcome: the process died or the answer was lost.
fn recover_in_flight(ctx: &mut Ctx<'_>) {
    if !ctx.observed {
        return;
    }
    if let Some(a) = ctx.st.in_flight.take() {
        ctx.note(
            NoteType::Warning,
            Reason::OutcomeUnknown,
            format!("PayDeals attempt {} for {} has no recorded outcome (operator restarted?); looking the orders up", a.id, a.ids.join(", ")),
        );
        ctx.unknown_outcome(*a, LookupReason::OutcomeUnknown);
    }
}

/// A lookup is due but there is nothing to call with: stalled until the credentials come back.
fn no_credentials(ctx: &Ctx<'_>, why: &str) -> Option<Gate> {
    let (code, message) = credentials_problem(ctx)?;
    let s = Summary::new(
        code,
        format!("{why}, but credentials are unavailable: {message}"),
    );
    let recheck = Some(ctx.policy.credentials_recheck);
    Some((Action::AwaitChange { recheck }, s.stalled()))
}

fn unknown_outcomes_exhausted(ctx: &Ctx<'_>) -> bool {
    ctx.st.unknown_outcomes >= ctx.policy.max_unknown_outcomes
}

/// Ids whose outcome is unknown block every new payment until a lookup settles them.
fn unknown_gate(ctx: &Ctx<'_>) -> Option<Gate> {
    let p = ctx.st.pending_lookup.as_ref()?;
    let unknown: Vec<&String> = p
        .ids
        .iter()
        .filter(|id| !ctx.state_of(id).is_some_and(OrderState::awaiting))
        .collect();
    if unknown.is_empty() {
        return None;
    }
    let ids: Vec<&str> = unknown.iter().map(|s| s.as_str()).collect();
    if p.reason == LookupReason::Quote {
        return Some(pricing_gate(ctx, p, &ids));
    }
    let mut last = ctx
        .st
        .last_error
        .as_ref()
        .map(|e| format!("; last error {}", describe(e)))
        .unwrap_or_default();
    if let Some(e) = &p.error {
        last.push_str(&format!("; last lookup error {}", describe(e)));
    }
    let mut why = format!(
        "outcome of paying {} is unknown ({}{last}); no new payment until DescribeDealsByCond settles it",
        ids.join(", "),
        p.reason.as_str(),
    );
    let dead_after = ctx.policy.request_dead_after(p.since.get());
    if p.reason == LookupReason::OutcomeUnknown && ctx.now < dead_after {
        why.push_str(&format!(
            " and the request given up on can no longer execute ({}, its signature window)",
            rfc3339(dead_after)
        ));
    }
    if let Some(g) = no_credentials(ctx, &why) {
        return Some(g);
    }
    // Stalled or not is decided before the timer, so the condition does not flap at each lookup.
    let stalled = p.tries >= ctx.policy.max_lookups || unknown_outcomes_exhausted(ctx);
    let all_missing = p.tries > 0 && unknown.iter().all(|id| p.not_found.contains(id));
    let (reason, what) = if all_missing {
        (Reason::OrderNotFound, "not found by DescribeDealsByCond")
    } else {
        (Reason::OutcomeUnknown, "not settled")
    };
    let Some(left) = left_until(ctx, p.next_at) else {
        let s = Summary::new(
            if stalled {
                reason
            } else {
                Reason::OutcomeUnknown
            },
            why,
        );
        return Some((lookup_action(ctx, p), s.stalled_if(stalled)));
    };
    let s = Summary::new(
        reason,
        format!(
            "{why}; {what} after {} lookup(s), looking again in {}s",
            p.tries,
            left.as_secs()
        ),
    )
    .stalled_if(stalled);
    Some((Action::RequeueAfter(left), s))
}

/// Orders being priced before a capped or dry-run payment: nothing was sent, so nothing is unknown.
fn pricing_gate(ctx: &Ctx<'_>, p: &PendingLookup, ids: &[&str]) -> Gate {
    let why = format!(
        "pricing {} with DescribeDealsByCond before paying",
        ids.join(", ")
    );
    if let Some(g) = no_credentials(ctx, &why) {
        return g;
    }
    match left_until(ctx, p.next_at) {
        None => (lookup_action(ctx, p), Summary::new(Reason::Pricing, why)),
        Some(left) => {
            let err = p.error.as_ref().map(describe).unwrap_or_default();
            let s = Summary::new(
                Reason::Pricing,
                format!("{why}; lookup failed ({err}), again in {}s", left.as_secs()),
            );
            (Action::RequeueAfter(left), s)
        }
    }
}

/// Where a cap comes from.
#[derive(Clone, Copy)]
enum Source {
    Spec,
    Operator,
    Budget(WindowBudget),
}

/// A cap on what the orders still to pay may cost, in cents.
#[derive(Clone, Copy)]
struct Cap {
    cents: i64,
    source: Source,
}

impl Cap {
    fn describe(&self) -> String {
        match self.source {
            Source::Spec => "spec.maxTotalCost".into(),
            Source::Operator => "the operator's limit (--max-total-cost)".into(),
            Source::Budget(b) => format!(
                "the namespace budget ({} per {}, {} spent in the window)",
                format_cents(b.limit_cents),
                b.window_text(),
                format_cents(b.spent_cents)
            ),
        }
    }
}

/// The strictest cap: the spec's, the operator's, or what the namespace budget has left (on a tie
/// the fixed caps win, since waiting for the window would not help).
fn cap(ctx: &Ctx<'_>) -> Option<Cap> {
    let spec = ctx
        .spec
        .max_total_cost
        .as_deref()
        .and_then(parse_cents)
        .map(|cents| Cap {
            cents,
            source: Source::Spec,
        });
    let operator = ctx.policy.max_total_cents.map(|cents| Cap {
        cents,
        source: Source::Operator,
    });
    let budget = ctx.policy.namespace_budget.map(|b| Cap {
        cents: b.left_cents(),
        source: Source::Budget(b),
    });
    [spec, operator, budget]
        .into_iter()
        .flatten()
        .reduce(|a, b| if b.cents < a.cents { b } else { a })
}

fn fresh_quote<'q>(ctx: &'q Ctx<'_>, remaining: &[String]) -> Option<&'q Quote> {
    let q = ctx.st.quote.as_ref()?;
    let age = ctx.now.duration_since(q.checked_at.get());
    let max_age = jiff::SignedDuration::try_from(ctx.policy.quote_max_age).unwrap_or_default();
    // A price dated in the future comes from a clock that runs fast: it is not fresh, it is unknown.
    (q.ids == remaining && !age.is_negative() && age <= max_age).then_some(q)
}

/// Above a cap: nothing is paid. Above what the namespace budget has left, the payment waits for the
/// oldest charge to leave the window (then it is priced again); above any fixed cap it stalls.
fn over_cap(ctx: &Ctx<'_>, q: &Quote, c: Cap, remaining: &[String]) -> Gate {
    let total = format_cents(q.total_cents);
    let recheck = Some(ctx.policy.credentials_recheck);
    let priced = format!(
        "{} cost {total} (RealTotalCost, priced at {})",
        remaining.join(", "),
        q.checked_at
    );
    let idle_or_stalled = |s: Summary| {
        if ctx.spec.dry_run {
            s.idle()
        } else {
            s.stalled()
        }
    };
    let Source::Budget(b) = c.source else {
        let s = Summary::new(
            Reason::OverBudget,
            format!(
                "{priced}, above {} set by {}: nothing is paid",
                format_cents(c.cents),
                c.describe()
            ),
        );
        return (Action::AwaitChange { recheck }, idle_or_stalled(s));
    };
    let figures = format!(
        "{priced}; the namespace budget is {} per {}: {} spent in the window, {} left; nothing is paid",
        format_cents(b.limit_cents),
        b.window_text(),
        format_cents(b.spent_cents),
        format_cents(b.left_cents())
    );
    match b.frees_at {
        Some(at) if q.total_cents <= b.limit_cents => {
            let wait = Duration::try_from(ctx.now.duration_until(at))
                .unwrap_or_default()
                .max(Duration::from_secs(1));
            let s = Summary::new(
                Reason::OverBudget,
                format!(
                    "{figures}; the oldest charge leaves the window at {}, then the payment is checked again",
                    rfc3339(at)
                ),
            );
            if ctx.spec.dry_run {
                (Action::AwaitChange { recheck }, s.idle())
            } else {
                (Action::RequeueAfter(wait), s)
            }
        }
        _ => {
            let s = Summary::new(
                Reason::OverBudget,
                format!(
                    "{figures}; more than the whole budget, it can never be paid in this namespace"
                ),
            );
            (Action::AwaitChange { recheck }, idle_or_stalled(s))
        }
    }
}

/// With a cap or a dry run, nothing is paid without a recent price within every cap.
fn quote_gate(ctx: &mut Ctx<'_>, kind: IdKind, remaining: &[String]) -> Option<Gate> {
    let cap = cap(ctx);
    if cap.is_none() && !ctx.spec.dry_run {
        return None;
    }
    // A price whose lookup did not list the big deals does not answer a dry run's pay-together check.
    let answers = |q: &&Quote| !checks_pay_together(ctx, kind) || q.pay_together.is_some();
    let Some(q) = fresh_quote(ctx, remaining).filter(answers).cloned() else {
        ctx.pend(
            kind,
            remaining.to_vec(),
            Time::seconds(ctx.now),
            LookupReason::Quote,
        );
        let p = ctx.st.pending_lookup.clone()?;
        let ids: Vec<&str> = remaining.iter().map(String::as_str).collect();
        return Some(pricing_gate(ctx, &p, &ids));
    };
    let total = format_cents(q.total_cents);
    let recheck = Some(ctx.policy.credentials_recheck);
    if !q.problems.is_empty() {
        let s = Summary::new(
            Reason::NotPayable,
            format!("nothing is paid: {}", q.problems.join("; ")),
        );
        let s = if ctx.spec.dry_run {
            s.idle()
        } else {
            s.stalled()
        };
        return Some((Action::AwaitChange { recheck }, s));
    }
    if let Some(text) = pay_together_text(&q).filter(|_| checks_pay_together(ctx, kind)) {
        let s = Summary::new(Reason::NeedPayTogether, format!("dry run: {text}")).idle();
        return Some((Action::AwaitChange { recheck }, s));
    }
    if let Some(c) = cap
        && q.total_cents > c.cents
    {
        return Some(over_cap(ctx, &q, c, remaining));
    }
    if ctx.spec.dry_run {
        let within = cap.map(|c| format!(", within {} ({})", format_cents(c.cents), c.describe()));
        // DescribeDealsByCond lists no package membership: the one check a lookup cannot make.
        let packages = if kind == IdKind::Order {
            "; package membership cannot be checked before paying (FailedOperation.NeedPayTogether)"
        } else {
            ""
        };
        let s = Summary::new(
            Reason::DryRun,
            format!(
                "dry run: {} can be paid now for {total}{}; set spec.dryRun to false to pay{packages}",
                remaining.join(", "),
                within.unwrap_or_default()
            ),
        )
        .idle();
        return Some((Action::AwaitChange { recheck: None }, s));
    }
    None
}

/// What a dry run found left out of the big deals of the priced sub-orders, if anything.
///
/// A prediction: Tencent decides per product whether the sub-orders of one big deal must be paid
/// together (PayDeals then answers `FailedOperation.NeedPayTogeter` and charges nothing), and a lookup
/// cannot tell which products do. A dry run never says Payable when PayDeals may refuse.
fn pay_together_text(q: &Quote) -> Option<String> {
    let groups = q.pay_together.as_deref().filter(|g| !g.is_empty())?;
    let each: Vec<String> = groups
        .iter()
        .map(|g| {
            format!(
                "big deal {} also has unpaid {}",
                g.big_deal_id,
                g.missing.join(", ")
            )
        })
        .collect();
    let deals: Vec<&str> = groups.iter().map(|g| g.big_deal_id.as_str()).collect();
    Some(format!(
        "{}, not in spec.orderIds: PayDeals may refuse to pay sub-orders of one big deal apart (FailedOperation.NeedPayTogeter, charging nothing); add them to spec.orderIds, or pay the whole big deal with spec.bigDealIds: [{}]",
        each.join("; "),
        deals.join(", ")
    ))
}

/// The Payable condition, when a cap or a dry run asks for pricing.
fn payable_condition(ctx: &Ctx<'_>) -> Option<Desired> {
    if cap(ctx).is_none() && !ctx.spec.dry_run {
        return None;
    }
    let Some(q) = &ctx.st.quote else {
        return Some(Desired {
            type_: PAYABLE,
            status: false,
            reason: Reason::NotPriced,
            message: "the orders have not been priced yet".into(),
        });
    };
    let total = format_cents(q.total_cents);
    // Only a dry run predicts: a real payment leaves the verdict to PayDeals.
    let together = pay_together_text(q).filter(|_| ctx.spec.dry_run);
    let (status, reason, message) = match (cap(ctx), together) {
        _ if !q.problems.is_empty() => (false, Reason::NotPayable, q.problems.join("; ")),
        (_, Some(text)) => (false, Reason::NeedPayTogether, text),
        (Some(c), None) if q.total_cents > c.cents => (
            false,
            Reason::OverBudget,
            format!(
                "{total} is above {} ({})",
                format_cents(c.cents),
                c.describe()
            ),
        ),
        _ => (
            true,
            Reason::Payable,
            format!("{} can be paid for {total}", q.ids.join(", ")),
        ),
    };
    Some(Desired {
        type_: PAYABLE,
        status,
        reason,
        message: format!("{message} (priced at {})", q.checked_at),
    })
}

/// What the charged orders cost together, once every one of them has a price.
fn total_cost(ctx: &Ctx<'_>) -> Option<String> {
    let charged: Vec<_> = ctx.st.orders.iter().filter(|o| o.state.charged()).collect();
    if charged.is_empty() {
        return None;
    }
    let sum: Option<i64> = charged.iter().map(|o| o.cost_cents).sum();
    sum.map(format_cents)
}

/// Once the charged orders are priced: a charge that differs from the pricing it was paid on is an
/// Event, and one above a fixed cap says so (the price rose between the pricing and PayDeals).
fn price_drift(ctx: &mut Ctx<'_>) {
    let Some(q) = ctx.st.quote.clone() else {
        return;
    };
    let charged: Option<i64> = q
        .ids
        .iter()
        .map(|id| {
            ctx.record_of(id)
                .filter(|o| o.state.charged())
                .and_then(|o| o.cost_cents)
        })
        .sum();
    let Some(charged) = charged.filter(|&c| c != q.total_cents) else {
        return;
    };
    let mut message = format!(
        "{} charged {} (RealTotalCost after payment), priced {} at {}",
        q.ids.join(", "),
        format_cents(charged),
        format_cents(q.total_cents),
        q.checked_at
    );
    let fixed = cap(ctx).filter(|c| !matches!(c.source, Source::Budget(_)));
    if let Some(c) = fixed.filter(|c| charged > c.cents) {
        message.push_str(&format!(
            "; above {} set by {}: the price rose after the pricing",
            format_cents(c.cents),
            c.describe()
        ));
    }
    ctx.note(NoteType::Warning, Reason::PriceChanged, message);
}

fn spec_gate(ctx: &Ctx<'_>) -> Option<Gate> {
    let errors = validate_spec(ctx.spec);
    (!errors.is_empty()).then(|| {
        (
            Action::AwaitChange { recheck: None },
            Summary::new(Reason::InvalidSpec, errors.join("; ")).stalled(),
        )
    })
}

/// Every id has a final state: done, or a stall that names what a person must do.
fn settled_gate(ctx: &Ctx<'_>, ids: &[String]) -> Gate {
    let of = |st: OrderState| -> Vec<String> {
        ids.iter()
            .filter(|id| ctx.state_of(id) == Some(st))
            .cloned()
            .collect()
    };
    let (failed, unpayable, partly) = (
        of(OrderState::DeliveryFailed),
        of(OrderState::Unpayable),
        of(OrderState::PartlyUnpayable),
    );
    if failed.is_empty() && unpayable.is_empty() && partly.is_empty() {
        let rid = ctx.st.request_id.clone().unwrap_or_default();
        let mut s = Summary::new(
            Reason::Paid,
            format!("paid and delivered {} (RequestId {rid})", ids.join(", ")),
        )
        .idle();
        s.ready = true;
        return (Action::Done, s);
    }
    let mut parts = Vec::new();
    if !failed.is_empty() {
        parts.push(format!("{} charged but delivery failed: contact Tencent Cloud support; they will not be paid again", failed.join(", ")));
    }
    if !partly.is_empty() {
        parts.push(format!("{} settled part charged, part unpayable (see status.orders): contact Tencent Cloud support; they will not be paid again", partly.join(", ")));
    }
    if !unpayable.is_empty() {
        let detail: Vec<String> = unpayable
            .iter()
            .map(|id| {
                let st = ctx.record_of(id).and_then(|r| r.tencent_status);
                format!("{id} ({})", st.map_or("unpayable", status::name))
            })
            .collect();
        parts.push(format!("{} can never be paid", detail.join(", ")));
    }
    let reason = match (failed.is_empty(), partly.is_empty()) {
        (false, _) => Reason::DeliveryFailed,
        (true, false) => Reason::PartlyUnpayable,
        (true, true) => Reason::OrderUnpayable,
    };
    (
        Action::AwaitChange { recheck: None },
        Summary::new(reason, parts.join("; ")).stalled(),
    )
}

/// Why the remaining ids cannot be paid right now, if they cannot.
fn pay_blocked(ctx: &mut Ctx<'_>, remaining: &[String]) -> Option<Gate> {
    if ctx.st.stalled_generation == Some(ctx.generation) {
        let (reason, msg) = match &ctx.st.last_error {
            Some(e) => (
                error_reason(e),
                format!("PayDeals failed: {}; change the spec to retry", describe(e)),
            ),
            None => (
                Reason::Failed,
                "payment failed; change the spec to retry".into(),
            ),
        };
        let s = Summary::new(reason, msg).stalled();
        return Some((Action::AwaitChange { recheck: None }, s));
    }
    if ctx.spec.suspend {
        // Reconciling=True (reason Suspended), not idle: an approval gate is work not done, so
        // kstatus (Flux, `kubectl wait`) reads InProgress, never Current, and Ready stays False.
        let s = Summary::new(
            Reason::Suspended,
            format!(
                "spec.suspend is true: {} will be paid when it is set to false",
                remaining.join(", ")
            ),
        );
        return Some((Action::AwaitChange { recheck: None }, s));
    }
    if let Some((reason, message)) = credentials_problem(ctx) {
        ctx.st.last_error = Some(Box::new(LastError {
            code: reason.to_string(),
            message: message.clone(),
            request_id: None,
            class: ErrorClass::NeedsHuman,
        }));
        let recheck = Some(ctx.policy.credentials_recheck);
        let s = Summary::new(reason, message).stalled();
        return Some((Action::AwaitChange { recheck }, s));
    }
    let left = left_until(ctx, ctx.st.next_retry_at)?;
    Some((Action::RequeueAfter(left), backoff_summary(ctx, left)))
}

fn backoff_summary(ctx: &Ctx<'_>, left: Duration) -> Summary {
    let secs = left.as_secs();
    let Some(e) = &ctx.st.last_error else {
        return Summary::new(Reason::Backoff, format!("waiting; retrying in {secs}s"));
    };
    let n = ctx.st.unknown_outcomes;
    if n > 0 {
        return Summary::new(
            Reason::OutcomeUnknown,
            format!(
                "PayDeals outcome unknown {n} time(s) in a row, the orders proved unpaid each time; last error {}; next attempt in {secs}s",
                describe(e)
            ),
        )
        .stalled_if(unknown_outcomes_exhausted(ctx));
    }
    let human = e.class == ErrorClass::NeedsHuman;
    let mut s = Summary::new(
        error_reason(e),
        format!("PayDeals failed: {}; retrying in {secs}s", describe(e)),
    )
    .stalled_if(human);
    if human {
        s.message
            .push_str(" (or at once when the credentials Secret changes)");
    }
    s
}

fn start_attempt(ctx: &mut Ctx<'_>, kind: IdKind, remaining: Vec<String>) -> Gate {
    let quoted_cents = fresh_quote(ctx, &remaining).map(|q| q.total_cents);
    let attempt = Attempt {
        id: ctx.attempt_id.clone(),
        started_at: Time::seconds(ctx.now),
        kind,
        ids: remaining.clone(),
        generation: ctx.generation,
        quoted_cents,
        answered: None,
        number: ctx.st.attempts.saturating_add(1),
    };
    let request = pay_request(ctx, kind, &remaining);
    ctx.st.in_flight = Some(Box::new(attempt.clone()));
    ctx.st.open_attempts.push(attempt.clone());
    ctx.st.attempts = ctx.st.attempts.saturating_add(1);
    let priced = quoted_cents.map(|c| format!(", priced {}", format_cents(c)));
    let what = format!(
        "{} (attempt {}{})",
        remaining.join(", "),
        ctx.st.attempts,
        priced.unwrap_or_default()
    );
    ctx.note(
        NoteType::Normal,
        Reason::PaymentStarted,
        format!("calling PayDeals for {what}"),
    );
    let s = Summary::new(
        Reason::Paying,
        format!("PayDeals call in flight for {what}"),
    );
    (Action::Pay { attempt, request }, s)
}

/// Payable now, but the shell holds new attempts back (its budget or deadline is spent).
fn held(remaining: &[String]) -> Gate {
    let s = Summary::new(
        Reason::Paying,
        format!(
            "{} will be paid next (no PayDeals call made yet)",
            remaining.join(", ")
        ),
    );
    (Action::RequeueAfter(Duration::ZERO), s)
}

/// Paid ids whose delivery is not confirmed: look them up (on their own backoff).
fn delivery_gate(ctx: &mut Ctx<'_>, delivering: Vec<String>) -> Gate {
    let listed = ctx.st.pending_lookup.as_ref().map(|p| p.ids.clone());
    let missing: Vec<String> = delivering
        .iter()
        .filter(|id| !listed.as_ref().is_some_and(|l| l.contains(id)))
        .cloned()
        .collect();
    // Each id is looked up as what it is; ids of the other kind wait for this lookup to settle.
    let kind = ctx
        .st
        .pending_lookup
        .as_ref()
        .map(|p| p.kind)
        .or_else(|| missing.first().map(|id| ctx.kind_of(id)));
    let missing: Vec<String> = missing
        .into_iter()
        .filter(|id| Some(ctx.kind_of(id)) == kind)
        .collect();
    if let Some(kind) = kind.filter(|_| !missing.is_empty()) {
        let since = ctx.st.paid_at.unwrap_or_else(|| Time::seconds(ctx.now));
        ctx.pend(kind, missing, since, LookupReason::Delivery);
    }
    let Some(p) = ctx.st.pending_lookup.clone() else {
        unreachable!("every delivering id is pending")
    };
    let seen: Vec<String> = delivering
        .iter()
        .map(|id| {
            let st = ctx.record_of(id).and_then(|r| r.tencent_status);
            let what = if ctx.state_of(id) == Some(OrderState::PartlyPaid) {
                "some sub-orders paid, others unpaid"
            } else {
                st.map_or("paid", status::name)
            };
            format!("{id}: {what}")
        })
        .collect();
    let why = format!("paid; waiting for delivery ({})", seen.join(", "));
    if let Some(g) = no_credentials(ctx, &why) {
        return g;
    }
    let exhausted = p.tries >= ctx.policy.max_lookups;
    let missing = !p.not_found.is_empty() && exhausted;
    let partly = exhausted
        && delivering
            .iter()
            .any(|id| ctx.state_of(id) == Some(OrderState::PartlyPaid));
    let reason = match (missing, partly) {
        (true, _) => Reason::OrderNotFound,
        (false, true) => Reason::PartlyPaid,
        _ => Reason::Delivering,
    };
    match left_until(ctx, p.next_at) {
        None => (
            lookup_action(ctx, &p),
            Summary::new(reason, why).stalled_if(missing || partly),
        ),
        Some(left) => {
            let s = Summary::new(
                reason,
                format!("{why}; looking again in {}s", left.as_secs()),
            )
            .stalled_if(missing || partly);
            (Action::RequeueAfter(left), s)
        }
    }
}

/// While payment is blocked and a delivery is pending, do the delivery's work but explain the block.
fn combine(blocked: Gate, delivery: Gate) -> Gate {
    let (b_action, b_summary) = blocked;
    let action = match (&b_action, delivery.0) {
        (Action::RequeueAfter(a), Action::RequeueAfter(b)) => Action::RequeueAfter(*a.min(&b)),
        (_, Action::AwaitChange { .. }) => b_action,
        (_, d) => d,
    };
    (action, b_summary)
}

/// Picks the action; gates run in order, the first that holds wins.
fn choose(ctx: &mut Ctx<'_>) -> Gate {
    recover_in_flight(ctx);
    if let Some(a) = &ctx.st.in_flight {
        // Another replica's call, met while folding an answer: leave it to that replica (or, if it
        // died, to the next observation).
        let s = Summary::new(
            Reason::Paying,
            format!(
                "PayDeals call in flight for {} (attempt {})",
                a.ids.join(", "),
                a.id
            ),
        );
        return (Action::RequeueAfter(Duration::from_secs(1)), s);
    }
    if let Some(g) = unknown_gate(ctx).or_else(|| spec_gate(ctx)) {
        return g;
    }
    let (kind, ids) = ctx.spec.targets();
    let ids = ids.to_vec();
    let remaining: Vec<String> = ids
        .iter()
        .filter(|id| ctx.record_of(id).is_none())
        .cloned()
        .collect();
    let delivering: Vec<String> = ctx
        .st
        .orders
        .iter()
        .filter(|o| o.state.awaiting())
        .map(|o| o.id.clone())
        .collect();
    if remaining.is_empty() && delivering.is_empty() {
        return settled_gate(ctx, &ids);
    }
    let blocked = if remaining.is_empty() {
        None
    } else {
        match pay_blocked(ctx, &remaining) {
            None => match quote_gate(ctx, kind, &remaining) {
                Some(g) => Some(g),
                None if ctx.policy.start_attempts => return start_attempt(ctx, kind, remaining),
                None => Some(held(&remaining)),
            },
            b => b,
        }
    };
    if delivering.is_empty() {
        return blocked.unwrap_or_else(|| unreachable!("remaining is not empty"));
    }
    let delivery = delivery_gate(ctx, delivering);
    match blocked {
        Some(b) => combine(b, delivery),
        None => delivery,
    }
}

fn paid_condition(ctx: &Ctx<'_>) -> Desired {
    let charged: Vec<&str> = ctx
        .st
        .orders
        .iter()
        .filter(|o| o.state.charged())
        .map(|o| o.id.as_str())
        .collect();
    if charged.is_empty() {
        return Desired {
            type_: PAID,
            status: false,
            reason: Reason::NotPaid,
            message: "no money has moved".into(),
        };
    }
    let targets = ctx.spec.targets().1;
    let all_charged =
        !targets.is_empty() && targets.iter().all(|id| charged.contains(&id.as_str()));
    let any_failed = ctx.st.orders.iter().any(|o| {
        matches!(
            o.state,
            OrderState::DeliveryFailed | OrderState::PartlyUnpayable
        )
    });
    let reason = match (all_charged, any_failed) {
        (_, true) => Reason::DeliveryFailed,
        (true, false) => Reason::Paid,
        (false, false) => Reason::PartiallyPaid,
    };
    Desired {
        type_: PAID,
        status: true,
        reason,
        message: format!("charged for {}", charged.join(", ")),
    }
}

/// kstatus shape: Reconciling and Stalled carry the reason only while True.
fn desired(s: &Summary, paid: Desired) -> Vec<Desired> {
    let when = |on: bool, off: Reason| -> (Reason, String) {
        if on {
            (s.reason.clone(), s.message.clone())
        } else {
            (off, String::new())
        }
    };
    let (rec_reason, rec_msg) = when(s.reconciling, Reason::Settled);
    let (st_reason, st_msg) = when(s.stalled, Reason::Progressing);
    vec![
        Desired {
            type_: READY,
            status: s.ready,
            reason: s.reason.clone(),
            message: s.message.clone(),
        },
        Desired {
            type_: RECONCILING,
            status: s.reconciling,
            reason: rec_reason,
            message: rec_msg,
        },
        Desired {
            type_: STALLED,
            status: s.stalled,
            reason: st_reason,
            message: st_msg,
        },
        paid,
    ]
}

/// Chooses the action and writes the conditions that explain it.
pub(super) fn plan(mut ctx: Ctx<'_>) -> Decision {
    let (action, s) = choose(&mut ctx);
    ctx.settle_open_attempts();
    let paid = paid_condition(&ctx);
    let payable = payable_condition(&ctx);
    let before = ctx.st.total_cost.take();
    ctx.st.total_cost = total_cost(&ctx);
    if before.is_none() && ctx.st.total_cost.is_some() {
        price_drift(&mut ctx);
    }
    if s.ready {
        ctx.st.last_error = None;
        ctx.st.next_retry_at = None;
        ctx.st.consecutive_failures = 0;
        ctx.st.unknown_outcomes = 0;
    }
    let mut all = desired(&s, paid);
    all.extend(payable);
    ctx.st.conditions = conditions::merge(&ctx.st.conditions, all, ctx.generation, ctx.now);
    Decision {
        status: ctx.st,
        action,
        notes: ctx.notes,
        settled: ctx.settled,
    }
}
